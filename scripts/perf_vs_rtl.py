#!/usr/bin/env python
"""The performance model against the RTL core's measured cycles (issue 12).

    python scripts/perf_vs_rtl.py                      # the table: shapes x N = 1..4, both phases
    python scripts/perf_vs_rtl.py --cards 1 --shapes 32:2:4 --detail generation
                                                       # + one call, instruction by instruction

Random GPT-2s (HF transformers, saved to a temporary folder) are compiled for the tiny target
and run on the `rtl` backend (Verilator: hw/sim/dfx_tb.v, N cores on a ring; builds are cached
in build/rtl/). One request per model: a prompt of --prompt tokens (more than one summarization
block of the tiny target's 16 rows by default), then --tokens generated. Per phase, the measured
cycles are the runtime's `device_cycles` (ap_start to the last card's done, summed over the
phase's calls, as `dfx generate --backend rtl --json` reports them) and the modelled ones are
`dfx.perf.model.bundle_cycles` for the same request (what `dfx generate` prints as
`modelled_cycles`). Error = (model - RTL) / RTL.

--detail PHASE compares one call of that phase on card 0 instruction by instruction: the RTL's
retire trace (hw/sim/dfx_tb.v +trace: core, pc, opcode, retire cycle, start cycle) beside the
model's start and retirement of the same pc (both from the call's first instruction), which shows
the instructions whose cost the model gets wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def shapes_arg(s: str) -> tuple[int, int, int]:
    d, layers, heads = (int(x) for x in s.split(":"))
    return d, layers, heads


def build_model(folder: Path, d: int, layers: int, heads: int, vocab: int) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=layers, n_embd=d, n_head=heads, n_positions=64, vocab_size=vocab,
                     initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).eval().save_pretrained(folder)


def run_rtl(bundle: Path, prompt: list[int], tokens: int, trace: Path | None = None, hbm_lat=None) -> dict:
    from dfx.host.runtime import Session

    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    s = Session(bundle, backend="rtl", hbm_bytes=max(c["hbm_bytes"] for c in cards),
                trace=str(trace) if trace else None, hbm_lat=hbm_lat)
    try:
        stats: dict = {}
        for _ in s.stream(prompt, max_new_tokens=tokens, eos_token_id=None, stats=stats):
            pass
    finally:
        s.close()
    return {ph: st.counters["device_cycles"] for ph, st in stats.items()}


def modelled(bundle: Path, n_in: int, n_out: int, hbm_lat=None) -> dict:
    """dfx.perf.model.request_cycles on the bundle with the testbench's ring; with hbm_lat, on the
    bundle's target with perf.hbm_latency_cycles = hbm_lat (what the testbench's memories then
    answer with)."""
    from dfx.perf.model import request_cycles
    from dfx.perf.report import load_programs

    return request_cycles(with_hbm_lat(load_programs(str(bundle)), hbm_lat), n_in, n_out, ring="testbench",
                          exact=True)


def with_hbm_lat(progs, hbm_lat):
    """Programs on their target with perf.hbm_latency_cycles = hbm_lat (None: as they are)."""
    from dfx.perf.report import with_target

    return progs if hbm_lat is None else with_target(progs, "perf", hbm_latency_cycles=hbm_lat)


def detail(bundle: Path, phase: str, prompt: list[int], hbm_lat=None) -> None:
    """One call of `phase` on card 0: the RTL's retire trace against the model, instruction by
    instruction (start and duration of every unit instruction)."""
    from dfx.arch.encoding import to_asm
    from dfx.host.runtime import Session
    from dfx.perf.model import CycleModel
    from dfx.perf.report import load_programs

    progs = with_hbm_lat(load_programs(str(bundle)), hbm_lat)
    rows = progs.rows
    if phase == "summarization":
        ids, pos = prompt[:rows], 0
    else:
        ids, pos = prompt[-1:], len(prompt)
    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    with tempfile.TemporaryDirectory() as tmp:
        tr = Path(tmp) / "trace.txt"
        s = Session(bundle, backend="rtl", hbm_bytes=max(c["hbm_bytes"] for c in cards), trace=str(tr),
                    hbm_lat=hbm_lat)
        try:
            if phase == "generation":  # a KV cache to attend to, as in a real request
                for b in range(0, len(prompt), rows):
                    s.call("summarization", prompt[b: b + rows], b)
            mark = tr.stat().st_size if tr.exists() else 0
            s.call(phase, ids, pos)
        finally:
            s.close()
        text = tr.read_bytes()[mark:].decode()
    rtl = []  # (pc, retire cycle, start cycle) of card 0
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] == "0":
            rtl.append((int(f[1]), int(f[3]), int(f[4])))
    prog = progs.programs[phase][0]
    cm = CycleModel(progs.target, progs.programs, ring="testbench")
    first = cm._pass(phase, len(ids), pos, None)
    res = cm._pass(phase, len(ids), pos, [r["ports"] for r in first])[0]
    model = {pc: (st, done) for pc, _u, st, done in res["retired"]}
    # both from the first instruction's pop (the model's first fetch; the RTL's first retirement - 1)
    m0 = rtl[0][2]
    f0 = 3 + cm.c.rt
    print(f"{'pc':>4} {'rtl start':>9} {'dur':>6} {'model start':>11} {'dur':>6}  instruction")
    for pc, cyc, st in rtl:
        if pc not in model:
            continue
        ms, md = model[pc]
        print(f"{pc:>4} {st - m0:>9} {cyc - st:>6} {ms - f0:>11.0f} {md - ms:>6.0f}  {to_asm(prog[pc])[:70]}")
    print(f"call: RTL {rtl[-1][1] - m0} cycles from the first instruction to END; model "
          f"{max(r['cycles'] for r in first) - f0 - cm.c.status_beats - 5:.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", type=shapes_arg, nargs="+", default=[(32, 2, 4), (48, 1, 6), (64, 1, 8), (96, 2, 6)],
                    metavar="D:LAYERS:HEADS", help="model shapes (default 32:2:4 48:1:6 64:1:8 96:2:6)")
    ap.add_argument("--cards", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=20, help="prompt tokens (default 20: two summarization blocks)")
    ap.add_argument("--tokens", type=int, default=8, help="tokens generated (default 8)")
    ap.add_argument("--detail", choices=("summarization", "generation"),
                    help="also compare one call of this phase instruction by instruction (first shape and N)")
    ap.add_argument("--hbm-lat", type=int, metavar="CYCLES",
                    help="HBM read latency of the testbench's memories and of the model (default: the target's)")
    ap.add_argument("--json", action="store_true", help="one JSON object per row instead of the table")
    a = ap.parse_args(argv)

    from dfx.compiler.driver import compile_model
    from dfx.errors import DfxError

    tmp = Path(tempfile.mkdtemp(prefix="dfx-perf-rtl-"))
    prompt = [int(t) for t in np.random.default_rng(0).integers(1, a.vocab, a.prompt)]
    rows = []
    if not a.json:
        lat = f"HBM read latency {a.hbm_lat} cycles" if a.hbm_lat is not None else "the target's HBM read latency"
        print(f"tiny target, Verilator, {lat}; prompt {a.prompt} tokens, {a.tokens} generated; "
              f"cycles per phase summed over its calls\n")
        print("| d_model | layers | heads | N | phase | RTL cycles | model cycles | error |")
        print("|---:|---:|---:|---:|---|---:|---:|---:|")
    for d, layers, heads in a.shapes:
        folder = tmp / f"m{d}-{layers}-{heads}"
        build_model(folder, d, layers, heads, a.vocab)
        for n in a.cards:
            bundle = tmp / f"b{d}-{layers}-{heads}-n{n}"
            try:
                compile_model(str(folder), n, bundle, target="tiny", max_seq=64, progress=False)
                measured = run_rtl(bundle, prompt, a.tokens, hbm_lat=a.hbm_lat)
            except DfxError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            model = modelled(bundle, a.prompt, a.tokens, a.hbm_lat)
            for ph in ("summarization", "generation"):
                row = {"d_model": d, "layers": layers, "heads": heads, "cards": n, "phase": ph,
                       "rtl_cycles": measured[ph], "model_cycles": model[ph],
                       "error": (model[ph] - measured[ph]) / measured[ph]}
                rows.append(row)
                if a.json:
                    print(json.dumps(row))
                else:
                    print(f"| {d} | {layers} | {heads} | {n} | {ph} | {measured[ph]} | {model[ph]} | "
                          f"{100 * row['error']:+.1f} % |")
            sys.stdout.flush()
    if not a.json and rows:
        worst = max(rows, key=lambda r: abs(r["error"]))
        print(f"\nlargest error: {100 * worst['error']:+.1f} % ({worst['d_model']}:{worst['layers']}:"
              f"{worst['heads']}, N={worst['cards']}, {worst['phase']})")
    if a.detail:
        d, layers, heads = a.shapes[0]
        print(f"\n{a.detail}, card 0 of {d}:{layers}:{heads} on N={a.cards[0]}:")
        detail(tmp / f"b{d}-{layers}-{heads}-n{a.cards[0]}", a.detail, prompt, a.hbm_lat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
