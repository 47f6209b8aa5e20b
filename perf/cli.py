"""`dfx perf MODEL`: the performance model's predictions as a table, JSON or plots.

The lead's dfx/cli.py calls add_parser(subparsers); `python -m dfx.perf.cli` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import sys

from dfx.errors import DfxError


def _int(v):
    try:
        return int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}") from None


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("model", metavar="MODEL", help="a preset (gpt2 .. gpt2-xl, dfx-1.5b), a checkpoint folder, "
                                                  "an .onnx file or a compiled bundle folder")
    p.add_argument("--fpgas", type=_int, default=None, help="cards on the ring (default 1; a bundle has its own)")
    p.add_argument("--target", default="u280", help="hardware target (default u280; ignored for a bundle)")
    p.add_argument("--in", dest="n_in", type=_int, default=64, help="prompt tokens (default 64)")
    p.add_argument("--out", dest="n_out", type=_int, default=64, help="output tokens (default 64)")
    p.add_argument("--max-seq", type=_int, default=1024, help="context the programs are compiled for")
    p.add_argument("--exact", action="store_true", help="evaluate every call instead of a grid of positions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="DIR", help="write PNG plots (latency, scaling, roofline) to DIR")
    p.set_defaults(fn=run)
    return p


def add_parser(subparsers):
    p = subparsers.add_parser("perf", help="predict latency, tokens/s and HBM roofline use from the cycle model")
    return configure(p)


def run(args) -> int:
    from dfx.perf.report import Predictor, format_table, load_programs

    progs = load_programs(args.model, args.fpgas, args.target, args.max_seq)
    pred = Predictor(progs, exact=args.exact)
    r = pred.predict(args.n_in, args.n_out)
    if args.plot:
        from dfx.perf.plots import write_plots

        r["plots"] = [str(p) for p in write_plots(args.plot, args.model, progs, pred, args.n_in, args.n_out)]
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print(format_table(r))
        for p in r.get("plots", []):
            print(f"  wrote {p}")
    return 0


def main(argv=None) -> int:
    p = configure(argparse.ArgumentParser(prog="dfx perf", description=__doc__.splitlines()[0]))
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except DfxError as e:
        print(f"dfx perf: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
