#!/usr/bin/env python
"""Fuzzing (issue 13), at length: every target of tests/fuzzing.py (the bundle loader, the
program decoder and assembler, the ONNX and checkpoint frontends, the CLI) with thousands of
cases, counting the outcomes.

    python scripts/fuzz.py                      # 2000 examples per target (each target's share)
    python scripts/fuzz.py --examples 200 --only bundle decode
    python scripts/fuzz.py --seed 7             # other cases than the fixed ones

Prints per target: cases run, broken contracts (untyped exceptions, messages of more than one
line, output left behind: must be 0), the wall time (the first ONNX target includes the export
of the model, some 6 s) and the outcomes: ok, the typed DfxError subclass, or for the CLI targets
"exit 1" (one `dfx: error:` line). Without --seed the cases are always the same ones (hypothesis
derandomized, as in CI). Exit status 1 if anything broke.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=2000, help="examples per target, times its share (default 2000)")
    ap.add_argument("--seed", type=int, help="other cases: those of this seed (default: the fixed, derandomized ones)")
    ap.add_argument("--only", nargs="*", choices=list(fuzzing.TARGETS), help="these targets only")
    ap.add_argument("--show", type=int, default=1, help="cases printed per kind of break (default 1)")
    ap.add_argument("--messages", type=int, default=0, help="print this many sample error messages per class")
    a = ap.parse_args()
    total_broken = total_cases = 0
    t_all = time.perf_counter()
    print(f"{'target':<12} {'cases':>6} {'broken':>6} {'wall s':>7}  outcomes")
    for name in a.only or fuzzing.TARGETS:
        fuzzing.TALLY = tally = fuzzing.Tally()
        t0 = time.perf_counter()
        fuzzing.hypothesis_test(name, fuzzing.examples(name, a.examples), a.seed)()
        wall = time.perf_counter() - t0
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes.items(), key=lambda kv: -kv[1]))
        print(f"{name:<12} {tally.cases:>6} {len(tally.broken):>6} {wall:>7.1f}  {outcomes}", flush=True)
        for cls, msgs in sorted(tally.messages.items()) if a.messages else ():
            ordered = sorted(msgs, key=lambda m: (len(m), m))
            for msg in ordered[::max(1, len(ordered) // a.messages)][:a.messages]:  # short to long
                print(f"    {cls}: {msg[:220]}")
        kinds = {}
        for kind, what, case in tally.broken:
            kinds.setdefault(kind, []).append((what, case))
        for kind, cases in kinds.items():
            print(f"    BROKEN x{len(cases)}: {kind}")
            for what, case in cases[:a.show]:
                print(f"        {what}\n          case {case}")
        total_broken += len(tally.broken)
        total_cases += tally.cases
    fuzzing.TALLY = None
    print(f"{'all':<12} {total_cases:>6} {total_broken:>6} {time.perf_counter() - t_all:>7.1f}  "
          f"(untyped errors, multi-line messages, output left behind: must be 0)")
    return 1 if total_broken else 0


if __name__ == "__main__":
    sys.exit(main())
