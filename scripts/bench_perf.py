#!/usr/bin/env python
"""Predicted against published figures (u280-dfx) and % of the HBM roofline (u280), from dfx.perf.

    python scripts/bench_perf.py [--quick]

--quick evaluates calls on a grid of KV positions and interpolates (the default evaluates
every call of every request). Every number printed comes from the model; the published DFX
figures are the only constants here, and nothing is fitted to them.
"""

from __future__ import annotations

import argparse
import sys
import time

from dfx.arch.target import load_target
from dfx.compiler.presets import PRESETS
from dfx.perf.report import Predictor, load_programs, with_target

# DFX, MICRO 2022 (shared/design/dfx-brief.md): (what, model, fpgas, in, out, key, value)
PUBLISHED = [
    ("decode ms/token", "gpt2-medium", 1, 64, 64, "generation_ms_per_token", 5.4),
    ("decode ms/token", "dfx-1.5b", 4, 64, 64, "generation_ms_per_token", 6.9),
    ("end-to-end tokens/s, 64:64", "dfx-1.5b", 4, 64, 64, "tokens_per_s", 72.68),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    exact = not a.quick
    t0 = time.time()
    cache = {}

    def progs(model, n, target):
        key = (model, n, target)
        if key not in cache:
            cache[key] = load_programs(model, n, target)
        return cache[key]

    print("## u280-dfx: our core with DFX's sizes against DFX's published results\n")
    print("| figure | model | FPGAs | published | predicted | error |")
    print("|---|---|---|---|---|---|")
    for what, model, n, i, o, key, pub in PUBLISHED:
        r = Predictor(progs(model, n, "u280-dfx"), exact=exact).predict(i, o)
        print(f"| {what} | {model} | {n} | {pub:g} | {r[key]:.2f} | {100 * (r[key] - pub) / pub:+.1f} % |")

    print("\n### u280-dfx profile (decode, share of time by unit) and HBM use\n")
    print("| model | FPGAs | matrix | vector | DMA | sync | HBM use (of 460 GB/s) | TTFT 64 tokens (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for model, n in (("gpt2-medium", 1), ("dfx-1.5b", 4)):
        r = Predictor(progs(model, n, "u280-dfx"), exact=exact).predict(64, 64)
        b = r["breakdown"]["generation"]
        print(f"| {model} | {n} | {100 * b['matrix']:.1f} % | {100 * b['vector']:.1f} % | {100 * b['dma']:.1f} % | "
              f"{100 * b['sync']:.1f} % | {100 * r['hbm_utilization']:.1f} % | {r['ttft_ms']:.1f} |")

    t = load_target("u280-dfx")
    r = t.ring
    print(f"\n### gpt2-medium on 1, 2 and 4 cards, 64:64 (ring hop {t.hop_cycles:.1f} cycles: "
          f"{r.hop_kernel_cycles} + {r.hop_link_cycles} x {t.clock.kernel_mhz:g} / {r.link_mhz:g} + "
          f"{r.cable_ns:g} ns)\n")
    print("| target | FPGAs | ms/token | sync share of decode | TTFT (ms) | tokens/s | DFX published ms/token |")
    print("|---|---|---|---|---|---|---|")
    for tname in ("u280-dfx", "u280"):
        for n in (1, 2, 4):
            r = Predictor(progs("gpt2-medium", n, tname), exact=exact).predict(64, 64)
            pub = "5.4" if n == 1 else "not published"
            print(f"| {tname} | {n} | {r['generation_ms_per_token']:.2f} | "
                  f"{100 * r['breakdown']['generation']['sync']:.1f} % | {r['ttft_ms']:.1f} | "
                  f"{r['tokens_per_s']:.1f} | {pub} |")

    print("\n### Sensitivity: u280-dfx decode ms/token with one modelling assumption changed\n")
    print("| change | gpt2-medium, 1 FPGA (published 5.4) | dfx-1.5b, 4 FPGAs (published 6.9) |")
    print("|---|---|---|")
    for label, sec, ch in (("as modelled", "perf", {}),
                           ("HBM read latency 64 cycles, not 32", "perf", {"hbm_latency_cycles": 64}),
                           ("ring hop 0 cycles, not 47", "ring", {"hop_kernel_cycles": 0, "hop_link_cycles": 0,
                                                                  "cable_ns": 0.0}),
                           ("ring hop 4 x 47 cycles", "ring", {"hop_kernel_cycles": 60, "hop_link_cycles": 252,
                                                                 "cable_ns": 20.0})):
        cells = []
        for model, n, pub in (("gpt2-medium", 1, 5.4), ("dfx-1.5b", 4, 6.9)):
            r = Predictor(with_target(progs(model, n, "u280-dfx"), sec, **ch), exact=False).predict(64, 64)
            d = r["generation_ms_per_token"]
            cells.append(f"{d:.2f} ({100 * (d - pub) / pub:+.1f} %)")
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\n## u280 (ours) against the HBM roofline, 64:64\n")
    h = load_target("u280").hbm
    eff, peak = h.efficiency, h.channels * h.channel_gbps
    print(f"| model | FPGAs | roofline ms/token | u280-dfx ms/token | u280 ms/token | u280 % of roofline "
          f"({peak * eff:.0f} GB/s) | u280 % of {peak:.0f} GB/s | u280 TTFT (ms) | u280 tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in PRESETS:
        for n in (1, 4):
            if n > PRESETS[model].n_head:
                continue
            d = Predictor(progs(model, n, "u280-dfx"), exact=False).predict(64, 64)
            r = Predictor(progs(model, n, "u280"), exact=exact).predict(64, 64)
            print(f"| {model} | {n} | {r['roofline_ms_per_token']:.3f} | {d['generation_ms_per_token']:.3f} | "
                  f"{r['generation_ms_per_token']:.3f} | {100 * r['roofline_fraction']:.1f} % | "
                  f"{100 * eff * r['roofline_fraction']:.1f} % | {r['ttft_ms']:.1f} | "
                  f"{r['tokens_per_s']:.1f} |")

    print("\n### u280: how far design changes could move decode (bounds, not the core)\n")
    print("Each row makes the parts named cost one cycle per instruction (dfx.perf.model.Costs.FREE), or changes the")
    print("kernel clock, and keeps everything else as modelled; ms/token and % of 460 GB/s.\n")
    print("| change | gpt2-medium, 1 FPGA | dfx-1.5b, 4 FPGAs |")
    print("|---|---|---|")
    for label, free, mhz in (("as modelled", (), None),
                             ("vector ops free", ("vector",), None),
                             ("vector and DMA ops free", ("vector", "dma"), None),
                             ("vector, DMA and product fills free", ("vector", "dma", "fill"), None),
                             ("vector, DMA, fills and ring syncs free", ("vector", "dma", "fill", "sync"), None),
                             ("kernel clock 250 MHz", (), 250.0),
                             ("kernel clock 300 MHz", (), 300.0)):
        cells = []
        for model, n in (("gpt2-medium", 1), ("dfx-1.5b", 4)):
            p = progs(model, n, "u280")
            if mhz:
                p = with_target(p, "clock", kernel_mhz=mhz)
            r = Predictor(p, exact=False, free=free).predict(64, 64)
            d = r["generation_ms_per_token"]
            cells.append(f"{d:.3f} ({100 * eff * r['roofline_ms_per_token'] / d:.1f} %)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n({'every call evaluated' if exact else 'grid of positions'}; {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
