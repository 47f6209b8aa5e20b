"""cocotb tests of the vector unit (hw/rtl/vpu/dfx_vpu.v) against dfx.sim.numerics.

Every output bit is compared with nx.add16/sub16/mul16/max16, nx.exp16/recip16/rsqrt16,
nx.block_sum (+ nx.scale32, nx.rne16) and nx.chunked_max. (GELU is the MPU's: cocotb_mpu.)
"""

from __future__ import annotations

import numpy as np

import cocotb

from dfx.hw.gen_tables import VPU_OPS
from dfx.perf.model import Costs
from dfx.sim import numerics as nx

from hwlib import pack, record, start, stream, target, unpack

EDGE16 = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x7BFF, 0xFBFF,
                   0x0400, 0x8400, 0x0001, 0x03FF, 0x83FF, 0x3C00, 0xBC00, 0x3C01, 0x3BFF,
                   0x4800, 0xC800, 0x47FF, 0xC7FF, 0x4C00, 0xCE40, 0x4A00, 0xCA40, 0x0401,
                   0x5BFF, 0x1000, 0x9000, 0x7800, 0x0200, 0x3555, 0xB555, 0x2E00], dtype=np.uint16)

UNARY = {"exp": nx.exp16, "recip": nx.recip16, "rsqrt": nx.rsqrt16, "copy": lambda a: a}
BINARY = {"add": nx.add16, "sub": nx.sub16, "mul": nx.mul16, "max": nx.max16}


def V():
    return target().vector.width


class Job:
    """Beats and expected outputs of a VPU stream."""

    def __init__(self, seed=0):
        self.beats, self.want, self.what = [], [], []
        self.rng = np.random.default_rng(seed)

    def elementwise(self, op, a, b=None):
        v = V()
        n = -(-len(a) // v) * v
        a = np.resize(a, n).astype(np.uint16)
        b = a if b is None else np.resize(b, n).astype(np.uint16)
        f = UNARY.get(op)
        y = f(a) if f else BINARY[op](a, b)
        for c in range(n // v):
            s = slice(c * v, (c + 1) * v)
            self.beats.append(self._beat(op, a[s], b[s], (1 << v) - 1, 1, 1, 0))
            self.want.append([int(t) for t in y[s]])
            self.what.append((op, a[s], b[s]))

    def reduce(self, op, row, scale=0):
        v = V()
        row = np.asarray(row, dtype=np.uint16)
        n = len(row)
        chunks = max(1, -(-n // v))
        for c in range(chunks):
            part = row[c * v:(c + 1) * v]
            k = len(part)
            # lanes past the row carry garbage: the mask must hide it
            a = np.concatenate([part, self.rng.integers(0, 1 << 16, v - k, dtype=np.uint32).astype(np.uint16)])
            self.beats.append(self._beat(op, a, a, (1 << k) - 1, int(c == 0), int(c == chunks - 1), scale))
        if op == "rmax":
            y = int(nx.chunked_max(row, v))
        else:
            with np.errstate(all="ignore"):
                y = int(nx.rne16(nx.scale32(nx.block_sum(row, v, square=op == "sumsq"), scale)))
        self.want.append([y] + [0] * (v - 1))
        self.what.append((op, row, scale))

    def _beat(self, op, a, b, mask, first, last, scale):
        # the VPU's scale is binary32 (the ISA's imm): an FP16 scale converts exactly
        imm = int(np.float32(nx.f32(np.uint16(scale))).view(np.uint32)) if scale else 0
        return {"op": VPU_OPS[op], "a": pack(a), "b": pack(b), "mask": mask, "first": first,
                "last": last, "imm": imm, "imm_b": 0}

    async def run(self, dut, gap_p=0.3, stall_p=0.3, seed=1):
        outs, ic, oc = await stream(dut, self.beats, "in", "out", ["y", "op"], gap_p=gap_p,
                                    stall_p=stall_p, n_out=len(self.want), seed=seed)
        got = np.array([unpack(o["y"], V()) for o in outs], dtype=np.uint64)
        want = np.array(self.want, dtype=np.uint64)
        for j in range(len(want)):
            if not np.array_equal(got[j], want[j]):
                lane = int(np.nonzero(got[j] != want[j])[0][0])
                op = self.what[j][0]
                raise AssertionError(f"beat {j} ({op}) lane {lane}: got {int(got[j][lane]):#06x} "
                                     f"want {int(want[j][lane]):#06x}; inputs {self.what[j][1:]}")
        return ic, oc


def rand16(rng, n):
    return rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)


def near16(rng, n, lo=0x2000, hi=0x5000):
    """Random FP16 of both signs with magnitudes between two bit patterns (useful range)."""
    m = rng.integers(lo, hi, n, dtype=np.uint32)
    return (m | (rng.integers(0, 2, n, dtype=np.uint32) << 15)).astype(np.uint16)


async def unary(dut, op, n, seed):
    await start(dut)
    rng = np.random.default_rng(seed)
    j = Job(seed)
    j.elementwise(op, np.concatenate([EDGE16, rand16(rng, n // 2), near16(rng, n // 2)]))
    await j.run(dut, seed=seed)


@cocotb.test()
async def vpu_add_sub(dut):
    """add and sub: random, edge pairs (inf - inf, -0 + -0, overflow, results that flush)."""
    await start(dut)
    rng = np.random.default_rng(1)
    ea, eb = np.meshgrid(EDGE16, EDGE16)
    a = np.concatenate([ea.ravel(), rand16(rng, 200), near16(rng, 200)])
    b = np.concatenate([eb.ravel(), rand16(rng, 200), near16(rng, 200)])
    # tiny differences: results that would be subnormal and flush, and ties
    a = np.concatenate([a, np.array([0x0400, 0x0401, 0x0800, 0x3C01, 0x7BFF, 0x7BFF], np.uint16)])
    b = np.concatenate([b, np.array([0x83FF, 0x8400, 0x8401, 0x1000, 0x5000, 0x4FFF], np.uint16)])
    j = Job(1)
    j.elementwise("add", a, b)
    j.elementwise("sub", a, b)
    await j.run(dut, seed=1)


@cocotb.test()
async def vpu_mul(dut):
    """mul: random, edge pairs, products that overflow, flush or land on ties."""
    await start(dut)
    rng = np.random.default_rng(2)
    ea, eb = np.meshgrid(EDGE16, EDGE16)
    a = np.concatenate([ea.ravel(), rand16(rng, 200), near16(rng, 200)])
    b = np.concatenate([eb.ravel(), rand16(rng, 200), near16(rng, 200)])
    j = Job(2)
    j.elementwise("mul", a, b)
    await j.run(dut, seed=2)


@cocotb.test()
async def vpu_max_copy(dut):
    """max (NaN wins, +0/-0 keeps a, subnormals compare as zero but keep their bits) and copy."""
    await start(dut)
    rng = np.random.default_rng(3)
    ea, eb = np.meshgrid(EDGE16, EDGE16)
    a = np.concatenate([ea.ravel(), rand16(rng, 400)])
    b = np.concatenate([eb.ravel(), rand16(rng, 400)])
    j = Job(3)
    j.elementwise("max", a, b)
    j.elementwise("copy", a)
    await j.run(dut, seed=3)


@cocotb.test()
async def vpu_exp(dut):
    """exp (nx.exp_alg): random, edges, the t >= 16 and t < -25 limits."""
    await unary(dut, "exp", 800, 4)


@cocotb.test()
async def vpu_recip(dut):
    """recip (nx.recip_alg): random, +-0 -> +-65504, inf -> 0, results that flush."""
    await unary(dut, "recip", 800, 5)


@cocotb.test()
async def vpu_rsqrt(dut):
    """rsqrt (nx.rsqrt_alg): random, negatives -> NaN, 0 -> 65504, odd and even exponents."""
    await unary(dut, "rsqrt", 800, 6)


@cocotb.test()
async def vpu_exp_recip_rsqrt_sweep(dut):
    """exp, recip and rsqrt on every 64th FP16 pattern (1,024 values each)."""
    await start(dut)
    a = np.arange(0, 1 << 16, 64, dtype=np.uint32).astype(np.uint16) + np.uint16(7)
    j = Job(8)
    for op in ("exp", "recip", "rsqrt"):
        j.elementwise(op, a)
    await j.run(dut, gap_p=0.05, stall_p=0.05, seed=8)


@cocotb.test()
async def vpu_sum_sumsq(dut):
    """row sum and sum of squares over rows of 1..5 chunks (partial chunks masked), scaled or not."""
    await start(dut)
    rng = np.random.default_rng(9)
    v = V()
    j = Job(9)
    for r in range(24):
        n = int(rng.integers(1, 5 * v + 1))
        row = near16(rng, n, 0x1800, 0x5400) if r % 3 else rand16(rng, n)
        scale = 0 if r % 2 else int(near16(rng, 1, 0x1C00, 0x3C00)[0] & 0x7FFF)
        j.reduce("sum", row, scale)
        j.reduce("sumsq", row, scale)
    # edge rows: cancellation to +0, -0 sums, infinities, NaN, overflow of the squares
    for row in ([0x3C00, 0xBC00], [0x8000, 0x8000, 0x8000], [0x7C00, 0xFC00], [0x7E00, 0x3C00],
                [0x7BFF] * (v + 1), [0x0001, 0x8001, 0x0400], [0x5BFF, 0xDBFF, 0x1000]):
        j.reduce("sum", row)
        j.reduce("sumsq", row, 0x2C00)
    await j.run(dut, seed=9)


@cocotb.test()
async def vpu_rmax(dut):
    """row max (nx.chunked_max): NaN, +-0 order, all -inf rows, partial chunks."""
    await start(dut)
    rng = np.random.default_rng(10)
    v = V()
    j = Job(10)
    for r in range(40):
        n = int(rng.integers(1, 4 * v + 1))
        row = rand16(rng, n) if r % 2 else near16(rng, n)
        if r % 5 == 0:
            row[rng.integers(0, n)] = 0x7E00
        j.reduce("rmax", row)
    for row in ([0x8000, 0x0000], [0x0000, 0x8000], [0xFC00] * 3, [0x0001, 0x8000], [0x8000] * (v + 2),
                [0xFC00] * v + [0x8000]):
        j.reduce("rmax", row)
    await j.run(dut, seed=10)


@cocotb.test()
async def vpu_mixed_stream(dut):
    """Every op interleaved beat by beat, heavy gaps and backpressure."""
    await start(dut)
    rng = np.random.default_rng(11)
    v = V()
    j = Job(11)
    ops = list(UNARY) + list(BINARY) + ["sum", "sumsq", "rmax"]
    for _ in range(40):
        op = ops[int(rng.integers(0, len(ops)))]
        if op in ("sum", "sumsq", "rmax"):
            j.reduce(op, near16(rng, int(rng.integers(1, 3 * v))), 0 if rng.random() < 0.5 else 0x3400)
        else:
            j.elementwise(op, near16(rng, v), near16(rng, v))
    await j.run(dut, gap_p=0.5, stall_p=0.5, seed=11)


@cocotb.test()
async def vpu_latency_throughput(dut):
    """Measure latency and throughput: element-wise beats per cycle, reduction rows per cycle."""
    await start(dut)
    rng = np.random.default_rng(12)
    v = V()
    figs = {}
    exits = Costs.of(target()).vpu_exit      # the performance model's, computed from the target
    j = Job(12)
    j.elementwise("exp", near16(rng, 32 * v))
    ic, oc = await j.run(dut, gap_p=0, stall_p=0, seed=12)
    lat = oc[0] - ic[0]
    beats_per_cycle = (len(oc) - 1) / (oc[-1] - oc[0])
    assert beats_per_cycle == 1.0, beats_per_cycle
    assert [o - i for i, o in zip(ic, oc)] == [lat] * len(ic)
    assert lat == exits["vexp"], (lat, exits["vexp"])
    figs["exp_latency_cycles"] = lat
    figs["elementwise_beats_per_cycle"] = beats_per_cycle
    figs["elementwise_results_per_cycle"] = beats_per_cycle * v
    # every element-wise op at its own latency, each as the model has it (dfx_vpu.v exit_of)
    for op in ("add", "sub", "mul", "max", "copy", "recip", "rsqrt"):
        j = Job(13)
        j.elementwise(op, near16(rng, 4 * v), near16(rng, 4 * v))
        ic, oc = await j.run(dut, gap_p=0, stall_p=0, seed=13)
        assert oc[0] - ic[0] == exits["v" + op], f"{op}: latency {oc[0] - ic[0]} != {exits['v' + op]}"
        assert oc[-1] - oc[0] == len(oc) - 1, f"{op}: not one beat per cycle"
        figs[f"{op}_latency_cycles"] = oc[0] - ic[0]
    j = Job(14)
    rows = 16
    for _ in range(rows):
        j.reduce("sum", near16(rng, 4 * v), 0x3400)
    ic, oc = await j.run(dut, gap_p=0, stall_p=0, seed=14)
    assert len(ic) == 4 * rows and ic[-1] - ic[0] == 4 * rows - 1, "reduction input stalled"
    figs["reduce_latency_cycles"] = oc[0] - ic[3]      # from the row's last chunk
    assert figs["reduce_latency_cycles"] == exits["vsum"], (figs["reduce_latency_cycles"], exits["vsum"])
    figs["reduce_chunks_per_cycle"] = (len(ic) - 1) / (ic[-1] - ic[0])
    figs["reduce_elements_per_cycle"] = figs["reduce_chunks_per_cycle"] * v
    record("vpu", figs)


@cocotb.test()
async def smoke(dut):
    """A short mixed stream (used on the u280 configuration too)."""
    await start(dut)
    rng = np.random.default_rng(15)
    v = V()
    j = Job(15)
    for op in ("add", "mul", "exp", "recip", "rsqrt", "max"):
        j.elementwise(op, near16(rng, v), near16(rng, v))
    j.reduce("sum", near16(rng, 2 * v + 3), 0x3000)
    j.reduce("sumsq", near16(rng, v), 0)
    j.reduce("rmax", rand16(rng, 2 * v))
    await j.run(dut, gap_p=0.2, stall_p=0.2, seed=15)
