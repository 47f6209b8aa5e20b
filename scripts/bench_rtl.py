#!/usr/bin/env python
"""Speed of the RTL core in simulation, and its cycles (issue 10).

    python scripts/bench_rtl.py                  # a 2-layer d=32 GPT-2 on 1 and 4 tiny cores, Verilator
    python scripts/bench_rtl.py --cards 2 --sim icarus
    python scripts/bench_rtl.py --target u280-dfx --cards 1 --layers 1 --d 1024 --heads 16 --vocab 50257 \
        --prompt 5 --tokens 3 --no-mpu        # the u280-dfx smoke run: one gpt2-medium-shaped layer

A random GPT-2 (HF transformers, saved to a temporary folder) is compiled for --target (tiny
unless asked) and run through the `rtl` backend (hw/sim/dfx_tb.v: N cores on a ring, memories in HDL). The
testbench is built first (its time printed apart: builds are cached in build/rtl/), then one
generation runs: the prompt's summarization calls and --tokens - 1 generation calls. Printed
per card count: simulated cycles per wall second (device cycles of all calls / their wall
time), the wall time of one generated token, the device cycles per phase (ap_start to the last
card's done, summed over the phase's calls) beside the performance model's cycles for the same
request (dfx.perf.model.bundle_cycles with the testbench's ring, what `dfx generate --json` reports
as modelled_cycles), and card 0's busy cycles per unit in the last generation call (from its
status record).

Then the MPU's throughput with full-rate memory: the conv1d program of
tests/hw/test_core_asm.py (mpu_program; 4 x 128 x 256, 4,096 weight tiles, tiny target, HBM
latency 8 cycles, no stalls) on Verilator: tiles per MPU-busy cycle, which that test requires to
be at least 0.95. --mpu-shape M K N runs another conv1d (its weights must fit the test's HBM
layout); --no-mpu leaves it out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cards", type=int, nargs="+", default=[1, 4], help="cores on the ring (default: 1 4)")
    ap.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    ap.add_argument("--target", default="tiny", help="hardware target (default tiny; see `dfx targets`)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d", type=int, default=32, help="d_model (default 32)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=8, help="prompt tokens (default 8)")
    ap.add_argument("--tokens", type=int, default=8, help="tokens generated (default 8)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per card count")
    ap.add_argument("--no-mpu", action="store_true", help="skip the MPU throughput figure")
    ap.add_argument("--mpu-shape", type=int, nargs=3, metavar=("M", "K", "N"),
                    help="the conv1d of the MPU figure (default the test's, 4 128 256)")
    a = ap.parse_args(argv)

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dfx.compiler.driver import compile_model
    from dfx.errors import DfxError
    from dfx.host.runtime import Session
    from dfx.perf.model import bundle_cycles

    tmp = Path(tempfile.mkdtemp(prefix="dfx-bench-rtl-"))
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=a.layers, n_embd=a.d, n_head=a.heads, n_positions=64, vocab_size=a.vocab,
                     initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).eval().save_pretrained(tmp / "model")
    prompt = [int(t) for t in np.random.default_rng(0).integers(1, a.vocab, a.prompt)]
    if not a.json:
        print(f"model: {a.layers} layers, d={a.d}, {a.heads} heads, vocab {a.vocab}; prompt {a.prompt} tokens, "
              f"{a.tokens} generated; target {a.target}; {a.sim}")
    for n in a.cards:
        try:
            bundle = tmp / f"b{n}"
            compile_model(str(tmp / "model"), n, bundle, target=a.target, max_seq=64, progress=False)
            cards = json.loads((bundle / "manifest.json").read_text())["cards"]
            s = Session(bundle, backend="rtl", sim=a.sim, hbm_bytes=max(c["hbm_bytes"] for c in cards))
        except DfxError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        try:
            t0 = time.perf_counter()
            s.devices[0].group.proc  # build (or take from the cache) and start the testbench
            build = time.perf_counter() - t0
            stats: dict = {}
            t0 = time.perf_counter()
            for _ in s.stream(prompt, max_new_tokens=a.tokens, eos_token_id=None, stats=stats):
                pass
            wall = time.perf_counter() - t0
            last = s.devices[0].counters()
        finally:
            s.close()
        summ, gen = stats["summarization"], stats["generation"]
        cyc = summ.counters["device_cycles"] + gen.counters["device_cycles"]
        model = bundle_cycles(bundle, a.prompt, a.tokens, ring="testbench")  # as dfx generate --json
        row = {"cards": n, "sim": a.sim, "build_s": round(build, 2), "run_s": round(wall, 3),
               "cycles_per_s": round(cyc / wall), "ms_per_token": round(1000 * gen.wall_s / max(gen.calls, 1), 2),
               "summarization_cycles": summ.counters["device_cycles"], "summarization_calls": summ.calls,
               "generation_cycles": gen.counters["device_cycles"], "generation_calls": gen.calls,
               "modelled_cycles": {ph: model[ph] for ph in ("summarization", "generation")},
               "last_call": {k: last[k] for k in ("cycles", "busy_dma", "busy_mpu", "busy_vpu", "busy_net")}}
        if a.json:
            print(json.dumps(row))
            continue
        lc = row["last_call"]
        busy = ", ".join(f"{u} {lc['busy_' + u]} ({100 * lc['busy_' + u] / lc['cycles']:.0f} %)"
                         for u in ("dma", "mpu", "vpu", "net"))
        print(f"N={n}: build {build:.1f} s; {cyc} cycles in {wall:.2f} s = {row['cycles_per_s']:,} cycles/s; "
              f"{row['ms_per_token']} ms per generated token")
        err = {ph: 100 * (model[ph] - stats[ph].counters["device_cycles"]) / stats[ph].counters["device_cycles"]
               for ph in ("summarization", "generation")}
        print(f"      device cycles: summarization {summ.counters['device_cycles']} ({summ.calls} calls), "
              f"generation {gen.counters['device_cycles']} ({gen.calls} calls, "
              f"{gen.counters['device_cycles'] / max(gen.calls, 1):.0f} per token)")
        print(f"      performance model (dfx.perf, the testbench's ring): summarization {model['summarization']} "
              f"({err['summarization']:+.1f} %), generation {model['generation']} ({err['generation']:+.1f} %)")
        print(f"      card 0, last call: {lc['cycles']} cycles, busy {busy}")
    if not a.no_mpu:
        mpu_figure(a.json, a.mpu_shape)
    return 0


def mpu_figure(as_json: bool, shape=None) -> None:
    """The MPU throughput figure, from the same program and runner as its test."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hw"))
    import test_core_asm as asm
    from dfx.arch.layout import ktiles, ntiles

    M, K, N = shape or asm.MPU_SHAPE
    asm.rtl.build_tb(asm.T, asm.RTL_CORES, asm.RTL, ring_timeout=asm.RING_TIMEOUT)
    counters, _ = asm.mpu_run(M, K, N)
    tiles = M * ktiles(K, asm.W) * ntiles(N, asm.L)
    row = {"mpu_conv1d": [M, K, N], "tiles": tiles, "busy_mpu": counters["busy_mpu"],
           "stall_mpu": counters["stall_mpu"], "tiles_per_busy_cycle": round(tiles / counters["busy_mpu"], 4)}
    if as_json:
        print(json.dumps(row))
    else:
        print(f"MPU, conv1d {M} x {K} x {N} with full-rate memory (tiny, Verilator): {tiles} tiles in "
              f"{row['busy_mpu']} MPU-busy cycles = {row['tiles_per_busy_cycle']:.3f} tiles per cycle "
              f"({row['stall_mpu']} cycles waiting for a tile)")


if __name__ == "__main__":
    sys.exit(main())
