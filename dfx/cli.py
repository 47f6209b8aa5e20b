"""The `dfx` command line: compile, generate, demo, serve, inspect, asm, disasm, perf, targets.

Every user error (a DfxError) prints as one line, `dfx: error: ...`, with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from dfx.arch.isa import GENERATION, PHASES, SUMMARIZATION
from dfx.errors import DfxError


def _int(v):
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}") from None
    return n


# ------------------------------------------------------------------------- compile
def cmd_compile(a) -> int:
    from dfx.compiler.driver import compile_model, default_output

    out = Path(a.output) if a.output else default_output(a.model, a.fpgas)
    t0 = time.perf_counter()
    s = compile_model(a.model, a.fpgas, out, target=a.target, max_seq=a.max_seq,
                      random_weights=a.random_weights, seed=a.seed, init_std=a.init_std,
                      progress=not a.quiet and sys.stderr.isatty())
    cfg = s.model.config
    counts = ", ".join(f"{ph} {len(s.programs[ph][0])}" for ph in s.programs)
    print(f"compiled {cfg.name} ({cfg.n_layer} layers, d {cfg.n_embd}, {cfg.n_head} heads) for "
          f"{a.fpgas} x {s.target.name} in {time.perf_counter() - t0:.1f} s -> {out}")
    prompt = ("one token per call (the target's token-serial schedule)" if s.target.perf.token_serial_summarization
              else f"{s.buffers[SUMMARIZATION][0].rows} rows per call")
    print(f"  weights: {s.model.weights.source.get('kind')}; instructions per card: {counts}; "
          f"HBM per card: {max(p.hbm_end for p in s.plans) / 2**20:.1f} MiB; prompt: {prompt}")
    return 0


# ------------------------------------------------------------------------- generate
def _prompt_ids(a, tok) -> list[int] | None:
    """--prompt-ids, else the prompt's tokens; None when neither is given."""
    if a.prompt_ids:
        try:
            return [int(x) for x in a.prompt_ids.split(",") if x.strip()]
        except ValueError:
            raise DfxError(f"--prompt-ids must be comma-separated integers, got {a.prompt_ids!r}") from None
    return None if a.prompt is None else tok.encode(a.prompt)


def _backend_opts(a, bundle) -> dict:
    opts = {"xclbin": a.xclbin} if a.xclbin else {}
    if a.backend == "rtl":  # memories as large as the compiler's map (KV cache included)
        cards = bundle.cards
        opts.update(sim=a.rtl_sim, waves=a.waves, hbm_bytes=max(c["hbm_bytes"] for c in cards),
                    ddr_bytes=max(c["ddr_bytes"] for c in cards))
    return opts


def _gen_opts(a, tok) -> dict:
    """Session.stream's sampling arguments: --temperature 0 is greedy; any other value samples
    (a negative one is refused)."""
    return dict(max_new_tokens=a.max_new_tokens, do_sample=a.temperature != 0, temperature=a.temperature or 1.0,
                top_k=a.top_k, top_p=a.top_p, seed=a.seed, eos_token_id=None if a.ignore_eos else tok.eos_id)


def cmd_generate(a) -> int:
    from dfx.host.runtime import Session
    from dfx.host.tokenizer import bundle_tokenizer
    from dfx.compiler.bundle import Bundle

    bundle = Bundle(a.bundle)
    tok = bundle_tokenizer(bundle)
    ids = _prompt_ids(a, tok)
    if ids is None:
        raise DfxError("give a prompt or --prompt-ids")
    sess = Session(bundle, backend=a.backend, mode=a.mode, timeout_s=a.timeout, **_backend_opts(a, bundle))
    stats: dict = {}
    new = []
    stream = tok.stream()
    t0 = time.perf_counter()
    first = None
    if not a.json:
        sys.stdout.write(a.prompt if a.prompt is not None and not a.prompt_ids else tok.decode(ids))
        sys.stdout.flush()
    for step in sess.stream(ids, stats=stats, **_gen_opts(a, tok)):
        if first is None:
            first = time.perf_counter() - t0
        new.append(step.token)
        if not a.json:
            sys.stdout.write(stream.push(step.token))
            sys.stdout.flush()
    total = time.perf_counter() - t0
    phases = {k: v.as_dict() for k, v in stats.items()}
    cycles = _modelled_cycles(bundle, len(ids), len(new), "testbench" if a.backend == "rtl" else "link")
    if cycles:
        for k in phases:
            phases[k]["modelled_cycles"] = cycles.get(k)
    if a.json:
        print(json.dumps({"prompt_ids": ids, "new_ids": new, "text": tok.decode(new), "phases": phases}))
        return 0
    sys.stdout.write(stream.flush() + "\n")
    gen = stats[GENERATION]
    tps = gen.tokens / gen.wall_s if gen.wall_s else float("nan")
    cyc = f"; modelled cycles: {cycles['total']:,}" if cycles else ""
    print(f"[{a.backend}/{a.mode}, {sess.n} FPGA(s)] {len(ids)} prompt + {len(new)} new tokens; "
          f"time to first token {first if first is not None else 0:.2f} s; "
          f"{tps:.1f} tokens/s generating; total {total:.2f} s{cyc}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------- demo
def cmd_demo(a) -> int:
    from dfx.compiler.bundle import Bundle
    from dfx.host.demo import demo, prompts_from
    from dfx.host.tokenizer import bundle_tokenizer

    bundle = Bundle(a.bundle)
    tok = bundle_tokenizer(bundle)
    ids = _prompt_ids(a, tok)
    prompts = prompts_from(sys.stdin) if ids is None else [a.prompt if a.prompt is not None and not a.prompt_ids
                                                            else ids]
    demo(bundle, a.backend, prompts, tok, _gen_opts(a, tok), mode=a.mode, timeout_s=a.timeout, json_out=a.json,
         **_backend_opts(a, bundle))
    return 0


# ------------------------------------------------------------------------- serve
def cmd_serve(a) -> int:
    try:
        from dfx.host.serve import serve_bundle
    except ImportError as e:
        raise DfxError(f"dfx serve needs the serve extra (pip install 'dfx[serve]'): "
                       f"no module named {e.name or e}") from None
    from dfx.compiler.bundle import Bundle

    bundle = Bundle(a.bundle)
    return serve_bundle(bundle, backend=a.backend, mode=a.mode, host=a.host, port=a.port, queue=a.queue,
                        timeout_s=a.timeout, backend_opts=_backend_opts(a, bundle), drain_timeout=a.drain_timeout,
                        access_log=a.access_log)


def _modelled_cycles(bundle, n_in, n_out, ring="link"):
    """Cycles of this run from the performance model (ring: "testbench" for the rtl backend, whose
    ring links are the testbench's); None when it cannot model the bundle (compiled for an older
    version of its target)."""
    from dfx.perf.model import PerfError, bundle_cycles

    try:
        return bundle_cycles(bundle, n_in, n_out, ring)
    except PerfError:
        return None


# ------------------------------------------------------------------------- inspect
def cmd_inspect(a) -> int:
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.inspect import format_inspect, inspect_bundle

    b = Bundle(a.bundle)
    info = inspect_bundle(b, a.context)
    if a.json:
        print(json.dumps(info, indent=1))
    else:
        print(format_inspect(info))
    return 0


# ------------------------------------------------------------------------- asm / disasm
def cmd_asm(a) -> int:
    from dfx.arch.encoding import assemble, pack_program

    path = Path(a.file)
    try:
        text = sys.stdin.read() if a.file == "-" else path.read_text()
    except FileNotFoundError:
        raise DfxError(f"no such file: {a.file}") from None
    except UnicodeDecodeError as e:
        raise DfxError(f"{a.file}: not assembly text (byte {e.start} is not UTF-8)") from None
    prog = assemble(text)
    out = Path(a.output) if a.output else path.with_suffix(".bin")
    out.write_bytes(pack_program(prog))
    print(f"assembled {len(prog)} instructions -> {out}")
    return 0


def cmd_disasm(a) -> int:
    from dfx.arch.encoding import decode_stream, unpack_program, PROG_MAGIC
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.inspect import disasm_lines
    from dfx.errors import EncodingError

    path = Path(a.file)
    if not path.exists():
        raise DfxError(f"no such file or bundle: {a.file}")
    if path.is_dir():
        b = Bundle(path)
        cards = range(b.n) if a.fpga is None else [a.fpga]
        for j in cards:
            if not 0 <= j < b.n:
                raise DfxError(f"--fpga {j}: the bundle has FPGAs 0 .. {b.n - 1}")
            for ph in (b.cards[j]["programs"] if a.phase == "all" else [a.phase]):
                print(f"; fpga {j} {ph} (entry 0x{b.cards[j]['programs'][ph]['entry']:x})")
                print("\n".join(disasm_lines(b.program(j, ph))))
        return 0
    data = path.read_bytes()
    try:
        prog = unpack_program(data, str(path)) if data[:8] == PROG_MAGIC else decode_stream(data)
    except EncodingError as e:
        raise DfxError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
    print("\n".join(disasm_lines(prog)))
    return 0


# ------------------------------------------------------------------------- targets
def cmd_targets(a) -> int:
    from dfx.arch.target import load_target, target_names

    for name in target_names():
        t = load_target(name)
        print(f"{name:<10} {t.matrix.lanes}x{t.matrix.width} MPU, {t.vector.width}-wide VPU, "
              f"{t.hbm.channels} HBM channels x {t.hbm.port_bits} bit, {t.clock.kernel_mhz:g} MHz: {t.description}")
    return 0


# ------------------------------------------------------------------------- parser
def _generation_args(g, backend: str) -> None:
    """The options `dfx generate` and `dfx demo` share (backend: the default)."""
    g.add_argument("bundle")
    g.add_argument("prompt", nargs="?")
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--backend", default=backend, choices=["sim", "rtl", "xrt", "pynq"],
                   help=f"sim, rtl (the RTL core in an HDL simulator), xrt or pynq (U280 cards); default {backend}")
    g.add_argument("--mode", default="exact", choices=["exact", "fast"], help="simulator mode (default exact)")
    g.add_argument("--prompt-ids", help="comma-separated token ids instead of a text prompt")
    g.add_argument("--json", action="store_true", help="print JSON instead of streaming text")
    g.add_argument("--ignore-eos", action="store_true", help="do not stop at the end-of-text token")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a device (default 600)")
    g.add_argument("--xclbin", help="the linked dfx_core binary (xrt and pynq backends)")
    g.add_argument("--rtl-sim", default="verilator", choices=["verilator", "icarus"],
                   help="HDL simulator of the rtl backend (default verilator)")
    g.add_argument("--waves", metavar="PATH", help="rtl backend: write waveforms to PATH (.vcd, or .fst)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dfx", description="An open DFX-style multi-FPGA appliance for GPT-2: "
                                "compile models to per-FPGA programs, run them, model their speed.")
    from dfx import __version__
    p.add_argument("--version", action="version", version=f"dfx {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    c = sub.add_parser("compile", help="lower a GPT-2 model to a bundle of per-FPGA programs and HBM images",
                       description="MODEL: a preset (gpt2, gpt2-medium, gpt2-large, gpt2-xl, dfx-1.5b), a Hugging "
                       "Face checkpoint folder, or an .onnx file.")
    c.add_argument("model")
    c.add_argument("--fpgas", type=_int, default=1, help="number of FPGAs (default 1)")
    c.add_argument("-o", "--output", help="bundle folder (default MODEL-NFPGA.dfx)")
    c.add_argument("--target", default="u280", help="hardware target (default u280; see `dfx targets`)")
    c.add_argument("--max-seq", type=int, help="context length the KV cache is sized for (default: the model's, 1024 for GPT-2)")
    c.add_argument("--random-weights", action="store_true", help="seeded random weights (sizing, performance work)")
    c.add_argument("--seed", type=int, default=0, help="seed of --random-weights (default 0)")
    c.add_argument("--init-std", type=float, default=0.02, help="std of --random-weights (default 0.02)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(fn=cmd_compile)

    g = sub.add_parser("generate", help="generate text from a bundle on the simulated (or real) appliance")
    _generation_args(g, "sim")
    g.set_defaults(fn=cmd_generate)

    dm = sub.add_parser("demo", help="list the cards, load a bundle onto them, stream text, and show the run's "
                        "speed and HBM bandwidth beside the performance model's",
                        description="Without a prompt, each line of stdin is one. With no cards (no pyxrt, or "
                        "none found) it says so: --backend sim or --backend rtl run the same demo here.")
    _generation_args(dm, "xrt")
    dm.set_defaults(fn=cmd_demo)

    sv = sub.add_parser("serve", help="serve a bundle over HTTP: OpenAI's completions API, metrics, a playground page",
                        description="Loads BUNDLE onto the appliance of a backend and serves it: POST /v1/completions "
                        "(OpenAI's API, streaming as server-sent events), GET /v1/models, /health, /metrics "
                        "(Prometheus), /v1/dfx/perf (dfx perf's prediction) and a playground page at /. One sequence "
                        "runs at a time; up to --queue requests wait, later ones get 429. SIGTERM finishes the "
                        "running request and exits. Needs the serve extra: pip install 'dfx[serve]' (docs/serve.md).")
    sv.add_argument("bundle")
    sv.add_argument("--backend", default="sim", choices=["sim", "rtl", "xrt", "pynq"],
                    help="sim, rtl (the RTL core in an HDL simulator), xrt or pynq (U280 cards); default sim")
    sv.add_argument("--mode", default="exact", choices=["exact", "fast"], help="simulator mode (default exact)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_int, default=8000, help="port (default 8000; 0: a free one, printed)")
    sv.add_argument("--queue", type=_int, default=16, help="requests that may wait for the appliance (default 16)")
    sv.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a device (default 600)")
    sv.add_argument("--drain-timeout", type=float, default=30.0,
                    help="on SIGTERM, seconds the running request may take before it is cancelled (default 30)")
    sv.add_argument("--access-log", action="store_true", help="log every HTTP request (uvicorn's access log)")
    sv.add_argument("--xclbin", help="the linked dfx_core binary (xrt and pynq backends)")
    sv.add_argument("--rtl-sim", default="verilator", choices=["verilator", "icarus"],
                    help="HDL simulator of the rtl backend (default verilator)")
    sv.set_defaults(fn=cmd_serve, waves=None)

    i = sub.add_parser("inspect", help="memory map, instruction counts and bytes per token of a bundle")
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true")
    i.add_argument("--context", type=int, help="KV length for the per-token figures (default max-seq - 1)")
    i.set_defaults(fn=cmd_inspect)

    s = sub.add_parser("asm", help="assemble a text program into a program file")
    s.add_argument("file", help="assembly source ('-' for stdin)")
    s.add_argument("-o", "--output")
    s.set_defaults(fn=cmd_asm)

    d = sub.add_parser("disasm", help="print a bundle's or a program file's instructions as assembly")
    d.add_argument("file", help="a bundle folder or a program file")
    d.add_argument("--fpga", type=int, help="only this FPGA of a bundle")
    d.add_argument("--phase", default="all", choices=["all", *PHASES])
    d.set_defaults(fn=cmd_disasm)

    t = sub.add_parser("targets", help="list the hardware targets")
    t.set_defaults(fn=cmd_targets)

    from dfx.perf import cli as perf_cli

    perf_cli.add_parser(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "fn", None):
        parser.print_help()
        return 2
    try:
        return a.fn(a) or 0
    except DfxError as e:
        print(f"dfx: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dfx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
