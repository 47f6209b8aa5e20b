#!/usr/bin/env python
"""Compiler speed and memory (issue 3): `dfx compile gpt2-xl --fpgas 4 --random-weights`.

    python scripts/bench_compile.py [--model gpt2-xl] [--fpgas 4]

Runs the real command in a child process and prints its wall time and peak RSS, against
the targets: at most 60 s, and a peak RSS of at most 2x the model's FP16 weight bytes.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dfx.compiler.frontend import load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gpt2-xl")
    ap.add_argument("--fpgas", type=int, default=4)
    a = ap.parse_args()
    cfg = load_model(a.model, random_weights=True).config
    fp16 = cfg.fp16_bytes
    out = Path(tempfile.mkdtemp()) / "bundle"
    cmd = [sys.executable, "-m", "dfx.cli", "compile", a.model, "--fpgas", str(a.fpgas), "--random-weights",
           "-q", "-o", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out.parent)
    print(f"command: dfx compile {a.model} --fpgas {a.fpgas} --random-weights")
    print(f"model FP16 weights: {fp16 / 2**30:.2f} GiB ({cfg.n_params:,} parameters); bundle on disk: "
          f"{size / 2**30:.2f} GiB")
    print(f"wall time: {wall:.1f} s (target <= 60 s: {'met' if wall <= 60 else 'missed'})")
    print(f"peak RSS: {rss / 2**30:.2f} GiB = {rss / fp16:.2f}x the FP16 weights "
          f"(target <= 2x: {'met' if rss <= 2 * fp16 else 'missed'})")


if __name__ == "__main__":
    main()
