#!/usr/bin/env python
"""Generation speed (issue 4): tokens/s of the simulated appliance, fast and exact mode,
against HF transformers generate() on the same model, in one run.

    python scripts/bench_generate.py [--model models/demo-gpt2] [--fpgas 1 4] [--tokens 32]

Greedy decoding of --tokens new tokens after a 16-token prompt; each figure is the best of
--repeat runs after a warm-up. tokens/s = new tokens / wall time of the whole generate call
(summarization included), the same definition for HF and for the appliance. Targets: fast
mode at least 0.5x HF with 1 card (issue 4) and with 4 cards (issue 13). Compare ratios of one
run only: other work on the machine slows both sides (HF's two threads and the LM head's
multi-threaded BLAS call most), so the header gives the CPU count and the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel

from dfx.compiler.driver import compile_model
from dfx.host.runtime import Session

PROMPT = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 198, 11748, 28686, 198, 4299, 220]


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "models" / "demo-gpt2"))
    ap.add_argument("--fpgas", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    load = os.getloadavg()[0]  # other work on the machine, before this script's own
    torch.set_num_threads(2)
    hf = GPT2LMHeadModel.from_pretrained(a.model, dtype=torch.float32).eval()
    ids = torch.tensor([PROMPT])

    def hf_run():
        with torch.no_grad():
            hf.generate(ids, max_new_tokens=a.tokens, min_new_tokens=a.tokens, do_sample=False, pad_token_id=0)
    t_hf = best(hf_run, a.repeat)
    print(f"model {a.model}, {len(PROMPT)}-token prompt, {a.tokens} new tokens, greedy")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} before the runs")
    print(f"{'runner':<28} {'tokens/s':>9} {'vs HF':>7}")
    print(f"{'HF transformers generate()':<28} {a.tokens / t_hf:>9.1f} {1.0:>6.2f}x")
    for n in a.fpgas:
        out = Path(tempfile.mkdtemp()) / "b"
        compile_model(a.model, n, out, progress=False)
        for mode in ("fast", "exact"):
            sess = Session(out, mode=mode)
            t = best(lambda: sess.generate(PROMPT, max_new_tokens=a.tokens, eos_token_id=None), a.repeat)
            tps = a.tokens / t
            note = f"  (target >= 0.5x: {'met' if t_hf / t >= 0.5 else 'missed'})" if mode == "fast" else ""
            print(f"{f'dfx sim {mode}, {n} FPGA(s)':<28} {tps:>9.1f} {t_hf / t:>6.2f}x{note}", flush=True)


if __name__ == "__main__":
    main()
