#!/usr/bin/env python
"""Compile every preset for 1, 2 and 4 FPGAs with random weights, all the way to a bundle on
disk, verify its checksums, and print one line each (issue 3: "every preset compiles").

    python scripts/check_presets.py [--fpgas 1 2 4] [--target u280]

Bundles are written to a temporary folder and deleted after each check.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from dfx.compiler.bundle import Bundle
from dfx.compiler.driver import compile_model
from dfx.compiler.presets import PRESETS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fpgas", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--target", default="u280")
    a = ap.parse_args()
    print(f"{'preset':<12} {'FPGAs':>5} {'compile':>8} {'bundle':>10} {'instr/card':>10}  checksums")
    for name in PRESETS:
        for n in a.fpgas:
            out = Path(tempfile.mkdtemp()) / "b"
            t0 = time.perf_counter()
            s = compile_model(name, n, out, target=a.target, random_weights=True, progress=False)
            dt = time.perf_counter() - t0
            Bundle(out).verify()
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            print(f"{name:<12} {n:>5} {dt:>7.1f}s {size / 2**30:>8.2f}GiB {len(s.programs['generation'][0]):>10}  ok",
                  flush=True)
            shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
