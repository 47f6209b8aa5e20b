#!/usr/bin/env python
"""Simulator speed (issue 2): one decode step of the simulated appliance against the same
matrices multiplied by plain FP32 numpy, in one run.

    python scripts/bench_sim.py                 # gpt2 (124M) exact, gpt2-xl (1.5B) fast
    python scripts/bench_sim.py --quick         # gpt2 in both modes only

The model is compiled in memory with random weights (one card), loaded into the simulator,
given a 32-token prompt, then one generation step is timed (the best of --repeat, after one
warm-up step that fills the simulator's FP32 weight cache). The numpy reference multiplies
a 1 x K FP32 vector by every weight matrix of that step (QKV, projection, FFN1, FFN2 per
layer and the LM head), taken from the simulator's own cache: the same matrices.
Targets: exact <= 20x numpy, fast <= 2x numpy.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from dfx.compiler.driver import compile_model
from dfx.sim.appliance import Appliance

PROMPT = 32


def load(state, mode):
    ap = Appliance(state.target, state.fpgas, mode)
    for j, core in enumerate(ap.cores):
        img = state.images.hbm[j]
        core.hbm.ensure(state.plans[j].hbm_end)
        core.hbm.buf[: img.size] = img
        if core.ddr is not None:
            core.ddr.ensure(state.images.ddr[j].size)
            core.ddr.buf[: state.images.ddr[j].size] = state.images.ddr[j]
    return ap


def step(ap, state, phase, ids, pos):
    card = state.manifest["cards"][0]
    core = ap.cores[0]
    core.hbm.write(card["io"]["ids"], np.asarray(ids, "<i4").tobytes(), count=False)
    ap.run(card["programs"][phase]["entry"], {"ntok": len(ids), "pos": pos})


def bench(preset, mode, repeat):
    t0 = time.perf_counter()
    state = compile_model(preset, 1, None, random_weights=True, progress=False, stop_after="manifest")
    t_compile = time.perf_counter() - t0
    ap = load(state, mode)
    del state.images
    gc.collect()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50257, PROMPT).tolist()
    step(ap, state, "summarization", ids, 0)
    step(ap, state, "generation", [ids[-1]], PROMPT)  # warm-up: fills the FP32 weight cache
    sim = min(_timed(lambda p=p: step(ap, state, "generation", [ids[-1]], p)) for p in range(PROMPT + 1, PROMPT + 1 + repeat))
    # the same matrices: the weight regions' entries of the simulator's cache
    weights = {r.addr for r in state.plans[0].regions.values() if r.kind == "weights"}
    mats = [v[2][0] for k, v in ap.cores[0].wcache.entries.items() if k[0] in weights]
    xs = [rng.standard_normal((1, m.shape[0])).astype(np.float32) for m in mats]
    ref = min(_timed(lambda: [x @ m for x, m in zip(xs, mats)]) for _ in range(repeat))
    macs = sum(m.size for m in mats)
    return {"model": preset, "mode": mode, "sim_s": sim, "numpy_s": ref, "ratio": sim / ref,
            "matrices": len(mats), "weight_macs": macs, "compile_s": t_compile}


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="gpt2 only, exact and fast")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    runs = [("gpt2", "exact", 20.0), ("gpt2", "fast", 2.0)] if a.quick else [("gpt2", "exact", 20.0),
                                                                           ("gpt2-xl", "fast", 2.0)]
    print(f"{'model':<10} {'mode':<6} {'matrices':>8} {'MACs':>14} {'sim step':>10} {'numpy':>10} "
          f"{'ratio':>7} {'target':>7}")
    ok = True
    for preset, mode, target in runs:
        r = bench(preset, mode, a.repeat)
        met = r["ratio"] <= target
        ok &= met
        print(f"{preset:<10} {mode:<6} {r['matrices']:>8} {r['weight_macs']:>14,} {r['sim_s'] * 1e3:>8.1f}ms "
              f"{r['numpy_s'] * 1e3:>8.1f}ms {r['ratio']:>6.2f}x {'<=' if met else '>'}{target:g}x", flush=True)
        gc.collect()
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
