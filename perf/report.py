"""End-to-end predictions from the cycle model: summarization, generation, roofline, breakdown.

A request of `n_in` prompt tokens and `n_out` output tokens runs as the host runs it:

* summarization: blocks of up to `rows` prompt tokens per call (the summarization program, r1 =
  block size, r2 = tokens before it); on a target whose ``perf.token_serial_summarization`` is
  set (DFX), one matrix-vector pass per prompt token instead (the generation program at
  positions 0 .. n_in-1). The last block's logits give the first output token.
* generation: n_out - 1 calls of the generation program at positions n_in .. n_in+n_out-2.
* every call adds the host's ``perf.call_overhead_us`` and the PCIe transfer of its ids and
  argmax.

Calls at many positions are evaluated on a grid of positions and interpolated linearly
(the cost of a call is piecewise linear in the KV length); ``exact=True`` evaluates every one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dfx.arch.isa import GENERATION, PHASES, SUMMARIZATION
from dfx.arch.target import Target, load_target
from dfx.compiler.partition import check_fpgas
from dfx.perf.model import CallTiming, CycleModel, PerfError

CATS = ("matrix", "vector", "dma", "sync", "other")
JSON_KEYS = ("ttft_ms", "generation_ms_per_token", "total_ms", "tokens_per_s", "hbm_utilization",
             "roofline_ms_per_token", "breakdown")


@dataclasses.dataclass
class Programs:
    name: str  # model name
    target: Target
    fpgas: int
    programs: dict  # phase -> [list[Instr] per card]
    rows: int  # summarization rows per call
    max_seq: int
    n_layer: int = 0
    params: int = 0


def load_programs(model: str, fpgas: int | None = None, target: str = "u280", max_seq: int = 1024) -> Programs:
    """Programs of a preset / checkpoint folder / ONNX file (compiled to place_code, no weights
    packed), or of a compiled bundle folder (its own target and FPGA count)."""
    p = Path(str(model))
    if p.is_dir() and (p / "manifest.json").exists():
        from dfx.compiler.bundle import Bundle

        b = Bundle(p)
        m = b.manifest
        tname = m["target"]["name"]
        t = load_target(tname)
        if t.as_dict() != m["target"]:  # the manifest holds the target as it was compiled for
            raise PerfError(f"{p}: compiled for an older version of target {tname!r}; recompile the bundle")
        if fpgas is not None and check_fpgas(fpgas) != b.n:
            raise PerfError(f"{p}: the bundle is compiled for {b.n} FPGA(s), not --fpgas {fpgas}")
        progs = {ph: [b.program(j, ph) for j in range(b.n)] for ph in PHASES}
        cfg = m["model"]
        return Programs(cfg.get("name", p.name), t, b.n, progs, int(m["summarization_rows"]), int(m["max_seq"]),
                        cfg["n_layer"], 0)
    from dfx.compiler.driver import compile_model

    s = compile_model(str(model), 1 if fpgas is None else fpgas, None, target=target, max_seq=max_seq,
                      random_weights=True, progress=False, stop_after="place_code")
    cfg = s.model.config
    return Programs(cfg.name, s.target, s.fpgas, s.programs, s.buffers[SUMMARIZATION][0].rows, s.max_seq,
                    cfg.n_layer, cfg.n_params)


def with_target(progs: Programs, section: str, **changes) -> Programs:
    """The same programs on their target with some fields of one section changed (what-if and
    sensitivity rows; the RTL testbench's HBM latency)."""
    t = progs.target
    t2 = dataclasses.replace(t, **{section: dataclasses.replace(getattr(t, section), **changes)})
    return dataclasses.replace(progs, target=t2)


class Predictor:
    def __init__(self, progs: Programs, exact: bool = False, samples: int = 9, ring: str = "link", free=()):
        self.p = progs
        self.t = progs.target
        self.app = CycleModel(progs.target, progs.programs, ring=ring, free=free)
        self.exact = exact
        self.samples = max(2, samples)

    # ---- one call, in seconds on the host's clock
    def call_seconds(self, c: CallTiming, ntok: int) -> float:
        t = self.t
        pcie = (4 * ntok + 8) / (t.host.pcie_gbps * 1e9)
        return c.seconds + t.perf.call_overhead_us * 1e-6 + pcie

    def _grid(self, positions: list[int]) -> list[int]:
        if self.exact or len(positions) <= self.samples:
            return positions
        lo, hi = positions[0], positions[-1]
        g = np.unique(np.round(np.linspace(lo, hi, self.samples)).astype(int))
        return [int(x) for x in g]

    def series(self, phase: str, ntok: int, positions: list[int]) -> list[dict]:
        """Per position: seconds, cycles, busy shares, HBM bytes (interpolated on a grid)."""
        if not positions:
            return []
        grid = self._grid(positions)
        pts = {p: self.app.call(phase, ntok, p) for p in grid}
        rows = []
        for pos in positions:
            if pos in pts:
                rows.append(self._row(pts[pos], ntok))
                continue
            i = int(np.searchsorted(grid, pos))
            a, b = grid[i - 1], grid[i]
            w = (pos - a) / (b - a)
            ra, rb = self._row(pts[a], ntok), self._row(pts[b], ntok)
            rows.append({k: (ra[k] * (1 - w) + rb[k] * w) if not isinstance(ra[k], dict)
                         else {c: ra[k][c] * (1 - w) + rb[k][c] * w for c in ra[k]} for k in ra})
        return rows

    def _row(self, c: CallTiming, ntok: int) -> dict:
        return {"seconds": self.call_seconds(c, ntok), "device_seconds": c.seconds, "cycles": c.cycles,
                "busy": {k: c.busy.get(k, 0.0) / self.app.r.hz for k in CATS},
                "hbm_bytes": float(max(c.hbm_bytes)), "macs": float(max(c.macs))}

    # ---- a whole request
    def summarization_calls(self, n_in: int) -> list[dict]:
        if n_in < 1:
            raise PerfError("--in must be at least 1 prompt token")
        if n_in > self.p.max_seq:
            raise PerfError(f"--in {n_in} is past the {self.p.max_seq}-token context the model is compiled for")
        if self.t.perf.token_serial_summarization:
            return self.series(GENERATION, 1, list(range(n_in)))
        rows, out, pos = self.p.rows, [], 0
        while pos < n_in:
            k = min(rows, n_in - pos)
            out += self.series(SUMMARIZATION, k, [pos])
            pos += k
        return out

    def generation_calls(self, n_in: int, n_out: int) -> list[dict]:
        if n_out < 1:
            raise PerfError("--out must be at least 1 output token")
        if n_in + n_out - 1 > self.p.max_seq:
            raise PerfError(f"--in {n_in} + --out {n_out} is past the {self.p.max_seq}-token context")
        return self.series(GENERATION, 1, list(range(n_in, n_in + n_out - 1)))

    def predict(self, n_in: int = 64, n_out: int = 64) -> dict:
        summ = self.summarization_calls(n_in)
        gen = self.generation_calls(n_in, n_out)
        ttft = sum(r["seconds"] for r in summ)
        gen_s = sum(r["seconds"] for r in gen)
        total = ttft + gen_s
        # decode per-token figures: the generation calls, or one at the last prompt position
        dec = gen if gen else self.series(GENERATION, 1, [n_in])
        dec_s = sum(r["seconds"] for r in dec) / len(dec)
        dec_dev = sum(r["device_seconds"] for r in dec) / len(dec)
        bytes_tok = sum(r["hbm_bytes"] for r in dec) / len(dec)
        roof = bytes_tok / self.app.r.hbm_reach_bps
        util = bytes_tok / dec_s / self.app.r.hbm_peak_bps

        def shares(rows):
            tot = {k: sum(r["busy"][k] for r in rows) for k in CATS}
            s = sum(tot.values()) or 1.0
            return {k: round(v / s, 4) for k, v in tot.items()}

        return {
            "model": self.p.name,
            "target": self.t.name,
            "fpgas": self.p.fpgas,
            "in_tokens": n_in,
            "out_tokens": n_out,
            "summarization": "token-serial (matrix-vector)" if self.t.perf.token_serial_summarization
            else f"blocks of {self.p.rows} rows (matrix-matrix)",
            "ttft_ms": ttft * 1e3,
            "generation_ms_per_token": dec_s * 1e3,
            "generation_device_ms_per_token": dec_dev * 1e3,
            "total_ms": total * 1e3,
            "tokens_per_s": n_out / total,
            "hbm_utilization": util,
            "hbm_bytes_per_token": bytes_tok,
            "roofline_ms_per_token": roof * 1e3,
            "roofline_fraction": roof / dec_s,
            "breakdown": {GENERATION: shares(dec), SUMMARIZATION: shares(summ)},
            "exact": self.exact,
        }

    def latency_curve(self, n_in: int, max_out: int) -> tuple[list[int], list[float]]:
        """Total ms for 1 .. max_out output tokens (one evaluation of the calls)."""
        ttft = sum(r["seconds"] for r in self.summarization_calls(n_in))
        gen = self.generation_calls(n_in, max_out)
        outs, tot, acc = [], [], ttft
        for k in range(1, max_out + 1):
            if k > 1:
                acc += gen[k - 2]["seconds"]
            outs.append(k)
            tot.append(acc * 1e3)
        return outs, tot


def predict(model: str, fpgas: int = 1, target: str = "u280", n_in: int = 64, n_out: int = 64,
            max_seq: int = 1024, exact: bool = False) -> dict:
    return Predictor(load_programs(model, fpgas, target, max_seq), exact=exact).predict(n_in, n_out)


def format_table(r: dict) -> str:
    b = r["breakdown"][GENERATION]
    lines = [
        f"{r['model']} on {r['fpgas']} x {r['target']}, {r['in_tokens']}:{r['out_tokens']} tokens "
        f"(summarization: {r['summarization']})",
        f"  time to first token     {r['ttft_ms']:10.2f} ms",
        f"  generation per token    {r['generation_ms_per_token']:10.3f} ms",
        f"  end to end              {r['total_ms']:10.2f} ms   ({r['tokens_per_s']:.2f} output tokens/s)",
        f"  HBM roofline per token  {r['roofline_ms_per_token']:10.3f} ms   "
        f"({r['hbm_bytes_per_token'] / 1e6:.1f} MB per card per token; generation at "
        f"{100 * r['roofline_fraction']:.1f} % of the roofline)",
        f"  HBM bandwidth use       {100 * r['hbm_utilization']:9.1f} %    of the data-sheet peak",
        "  generation time by unit " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in b.items()),
    ]
    return "\n".join(lines)
