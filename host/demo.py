"""`dfx demo`: a bundle on N cards, text streamed from prompts, and the run's figures beside the
performance model's for the same run.

    cards     xrt / pynq: the cards the binding finds (dfx.host.cards.find_cards); none, or no
              binding, is one line that offers --backend sim or --backend rtl, where the same
              demo runs on the simulator or the RTL core
    load      the xclbin (checked against the bundle) and the bundle's memory images on N cards
    prompts   the one given, or one per line of stdin (interactive at a terminal)
    figures   time to first token, ms per generated token, tokens/s, and the HBM bandwidth the
              busiest card achieved: the bytes it reads and writes in HBM per generated token (the
              performance model's count, from dfx.arch.effects at each token's position, what
              `dfx inspect` reports at one context) divided by the measured time per token; beside
              each, dfx perf's prediction for the same prompt and output lengths
              (dfx.perf.report.Predictor on the bundle's programs; its times include the modelled
              host overhead per call).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable

from dfx.arch.isa import GENERATION
from dfx.errors import DfxError
from dfx.host.runtime import Session

CARD_BACKENDS = ("xrt", "pynq")


def list_cards(backend: str, n: int, target: str, mode: str = "exact", rtl_sim: str = "verilator") -> list[str]:
    """One line per card the demo will use (the real ones a card backend finds)."""
    if backend in CARD_BACKENDS:
        from dfx.host.cards import find_cards

        hint = ("the same demo runs here on --backend sim (the functional simulator) "
                "or --backend rtl (the RTL core in Verilator)")
        try:
            found = find_cards(backend)
        except DfxError as e:
            raise DfxError(f"no cards: {e}; {hint}") from None
        if not found:
            raise DfxError(f"no cards: {backend} finds none; {hint}")
        return found
    what = f"dfx.sim, {mode} mode" if backend == "sim" else f"the RTL core in {rtl_sim}"
    return [f"{i}: simulated {target} card ({what})" for i in range(n)]


class Model:
    """dfx perf's figures for runs of one bundle (None when it cannot model it)."""

    def __init__(self, bundle_path):
        from dfx.perf.model import PerfError
        from dfx.perf.report import Predictor, load_programs

        try:
            self.pr = Predictor(load_programs(str(bundle_path)))
        except PerfError:
            self.pr = None

    def predict(self, n_in: int, n_out: int) -> dict | None:
        if self.pr is None or n_out < 1:
            return None
        p = self.pr.predict(n_in, n_out)
        gen = self.pr.generation_calls(n_in, n_out) or self.pr.series(GENERATION, 1, [n_in])
        return {"ttft_ms": p["ttft_ms"], "ms_per_token": p["generation_ms_per_token"],
                "tokens_per_s": 1e3 / p["generation_ms_per_token"],
                "hbm_bytes_per_token": sum(r["hbm_bytes"] for r in gen) / len(gen),
                "hbm_peak_gbps": self.pr.app.r.hbm_peak_bps / 1e9}


def run_prompt(session: Session, tok, ids: list[int], model: Model, out, gen_opts: dict, json_out: bool) -> dict:
    """Generate from one prompt, streaming its text to `out`; returns the run's figures."""
    stats: dict = {}
    new: list[int] = []
    stream = tok.stream()
    t0 = time.perf_counter()
    first = None
    for step in session.stream(ids, stats=stats, **gen_opts):
        if first is None:
            first = time.perf_counter() - t0
        new.append(step.token)
        if not json_out:
            out.write(stream.push(step.token))
            out.flush()
    if not json_out:
        out.write(stream.flush() + "\n")
    gen = stats[GENERATION]
    ms_tok = gen.wall_s / gen.tokens * 1e3 if gen.tokens else None
    run = {"prompt_ids": ids, "new_ids": new, "ttft_ms": None if first is None else first * 1e3,
           "ms_per_token": ms_tok, "tokens_per_s": gen.tokens / gen.wall_s if gen.tokens else None,
           "model": model.predict(len(ids), len(new))}
    m = run["model"]
    if m and ms_tok:
        run["hbm_gbps"] = m["hbm_bytes_per_token"] / (ms_tok * 1e-3) / 1e9
    return run


def format_run(r: dict) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    m = r["model"] or {}
    lines = [f"  time to first token  {f(r['ttft_ms'], '.1f')} ms"
             + (f"   (model {m['ttft_ms']:.2f} ms)" if m else "")]
    if r["ms_per_token"] is not None:
        lines.append(f"  generation           {r['ms_per_token']:.2f} ms/token, {r['tokens_per_s']:.1f} tokens/s"
                     + (f"   (model {m['ms_per_token']:.3f} ms/token, {m['tokens_per_s']:.1f} tokens/s)" if m else ""))
        if m:
            model_gbps = m["hbm_bytes_per_token"] / (m["ms_per_token"] * 1e-3) / 1e9
            b = m["hbm_bytes_per_token"]
            size = f"{b / 2**20:.2f} MiB" if b >= 2**20 else f"{b / 2**10:.1f} KiB"
            lines.append(f"  HBM per token        {size} on the busiest card: "
                         f"{r['hbm_gbps']:.3f} GB/s achieved   (model {model_gbps:.1f} GB/s; "
                         f"peak {m['hbm_peak_gbps']:.1f} GB/s)")
    return "\n".join(lines)


def prompts_from(stdin) -> Iterable[str]:
    """Lines of stdin, one prompt each (a prompt is shown at a terminal; an empty line there ends)."""
    tty = stdin.isatty()
    while True:
        if tty:
            sys.stderr.write("prompt> ")
            sys.stderr.flush()
        line = stdin.readline()
        if not line or (tty and not line.strip()):
            return
        if line.strip():
            yield line.rstrip("\n")


def demo(bundle, backend: str, prompts: Iterable[list[int] | str], tok, gen_opts: dict, mode: str = "exact",
         timeout_s: float = 600.0, json_out: bool = False, out=None, info=None, **backend_opts) -> list[dict]:
    """List the cards, load the bundle onto them, and generate from each prompt (token ids, or text
    for `tok`). Text and figures go to `out` (JSON lines with json_out); the card list to `info`."""
    out = out or sys.stdout
    info = info or (sys.stderr if json_out else out)
    m = bundle.manifest
    tname = m["target"]["name"]
    cards = list_cards(backend, bundle.n, tname, mode, backend_opts.get("sim", "verilator"))
    info.write(f"{len(cards)} card(s) with {backend}:\n" + "".join(f"  {c}\n" for c in cards))
    t0 = time.perf_counter()
    session = Session(bundle, backend=backend, mode=mode, timeout_s=timeout_s, **backend_opts)
    info.write(f"loaded {bundle.path.name} ({m['model'].get('name', '?')}, {bundle.n} x {tname}) onto "
               f"{bundle.n} card(s) in {time.perf_counter() - t0:.1f} s\n")
    info.flush()
    model = Model(bundle.path)
    runs = []
    try:
        for p in prompts:
            ids = tok.encode(p) if isinstance(p, str) else list(p)
            if not json_out:
                out.write(p if isinstance(p, str) else tok.decode(ids))
            r = run_prompt(session, tok, ids, model, out, gen_opts, json_out)
            out.write((json.dumps(r) if json_out else format_run(r)) + "\n")
            out.flush()
            runs.append(r)
    finally:
        session.close()
    return runs
