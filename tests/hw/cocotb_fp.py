"""cocotb tests of the streaming FP primitives (toplevel tests/hw/tb/dfx_fp_tb.v).

References: dfx.sim.numerics (nx.f32, nx.rne16) and numpy float32 add / multiply, which
numerics.py names as the hardware's FP32 arithmetic. FP32 NaNs compare as "any NaN"
(the payload never reaches an FP16 result: rne16 makes every NaN 0x7E00).
"""

from __future__ import annotations

import numpy as np

import cocotb

from dfx.sim import numerics as nx

from hwlib import check_equal, record, start, stream, target

EDGE16 = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x7BFF, 0xFBFF,
                   0x0400, 0x8400, 0x0001, 0x03FF, 0x83FF, 0x3C00, 0xBC00, 0x3C01, 0x3BFF,
                   0x0401, 0x5BFF, 0x1000, 0x9000, 0x7800, 0x0200], dtype=np.uint16)


def canon32(u):
    """FP32 bits with every NaN made 0x7FC00000."""
    u = np.asarray(u, dtype=np.uint64).astype(np.uint32)
    nan = ((u & 0x7F800000) == 0x7F800000) & ((u & 0x7FFFFF) != 0)
    return np.where(nan, np.uint32(0x7FC00000), u)


def bits32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def rand32(rng, n, elo, ehi):
    """Random FP32 bit patterns with biased exponents in [elo, ehi] and random signs."""
    s = rng.integers(0, 2, n, dtype=np.uint32) << 31
    e = rng.integers(elo, ehi + 1, n, dtype=np.uint32) << 23
    m = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    # a quarter of them with short significands, to make exact ties and cancellations likely
    short = rng.random(n) < 0.25
    m = np.where(short, m & np.uint32(0x7F0000), m)
    return (s | e | m).astype(np.uint32)


SPECIAL32 = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F7FFFFF,
                      0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x33800000, 0x3F800001, 0x00800000,
                      0x4B800000, 0x34000000], dtype=np.uint32)


async def run_unit(dut, prefix, a, b, gap_p, stall_p, seed):
    beats = [{"a": int(x)} if b is None else {"a": int(x), "b": int(y)}
             for x, y in zip(a, a if b is None else b)]
    outs, ic, oc = await stream(dut, beats, f"{prefix}_in", f"{prefix}_out", ["y"],
                                gap_p=gap_p, stall_p=stall_p, seed=seed)
    return np.array([o["y"] for o in outs], dtype=np.uint64), ic, oc


def ctx2(a, b):
    return lambda j: f"a={int(a[j]):#x} b={int(b[j]):#x}"


@cocotb.test()
async def fp16_mul_random(dut):
    """FP16 x FP16 -> exact FP32: random pairs and every pair of edge values, gaps and stalls."""
    await start(dut)
    rng = np.random.default_rng(11)
    a = rng.integers(0, 1 << 16, 3000, dtype=np.uint32).astype(np.uint16)
    b = rng.integers(0, 1 << 16, 3000, dtype=np.uint32).astype(np.uint16)
    ea, eb = np.meshgrid(EDGE16, EDGE16)
    a = np.concatenate([a, ea.ravel()])
    b = np.concatenate([b, eb.ravel()])
    got, _, _ = await run_unit(dut, "m16", a, b, 0.3, 0.3, 1)
    with np.errstate(all="ignore"):
        want = bits32(nx.f32(a) * nx.f32(b))
    check_equal("fp16_mul", canon32(got), canon32(want), ctx2(a, b))


@cocotb.test()
async def fp32_add_random(dut):
    """FP32 adder: random operands over wide and near exponents (ties, cancellation)."""
    await start(dut)
    rng = np.random.default_rng(12)
    n = 2500
    a = rand32(rng, n, 40, 215)
    # b: half with a nearby exponent (0..26 apart: alignment, guard bits, ties), half anywhere
    near = ((a >> 23) & 0xFF).astype(np.int64) - rng.integers(-3, 27, n)
    eb = np.where(rng.random(n) < 0.5, np.clip(near, 40, 215), rng.integers(40, 216, n))
    b = (rand32(rng, n, 40, 40) & np.uint32(0x807FFFFF)) | (eb.astype(np.uint32) << 23)
    # exact negations and ulp-neighbour cancellations
    k = n // 10
    b[:k] = a[:k] ^ np.uint32(0x80000000)
    b[k:2 * k] = (a[k:2 * k] + 1) ^ np.uint32(0x80000000)
    sa, sb = np.meshgrid(SPECIAL32, SPECIAL32)
    a = np.concatenate([a, sa.ravel()])
    b = np.concatenate([b, sb.ravel()])
    got, _, _ = await run_unit(dut, "add", a, b, 0.2, 0.2, 2)
    with np.errstate(all="ignore"):
        want = bits32(a.view(np.float32) + b.view(np.float32))
    check_equal("fp32_add", canon32(got), canon32(want), ctx2(a, b))


@cocotb.test()
async def fp32_add_ties(dut):
    """FP32 adder: operands half an ulp (and a quarter, three quarters) apart from the grid."""
    await start(dut)
    rng = np.random.default_rng(13)
    n = 1500
    a = rand32(rng, n, 100, 150)
    ea = ((a >> 23) & 0xFF).astype(np.int64)
    d = rng.integers(23, 27, n)                     # b at 2^-24 .. 2^-27 of a's exponent
    mb = rng.choice(np.array([0, 0x400000, 0x200000, 0x600000], np.uint32), n)
    b = (rng.integers(0, 2, n).astype(np.uint32) << 31) | ((ea - d).astype(np.uint32) << 23) | mb
    got, _, _ = await run_unit(dut, "add", a, b, 0.0, 0.0, 3)
    want = bits32(a.view(np.float32) + b.view(np.float32))
    check_equal("fp32_add_ties", canon32(got), canon32(want), ctx2(a, b))


@cocotb.test()
async def fp32_mul_random(dut):
    """FP32 multiplier: random operands, rounding ties from short significands, overflow, specials."""
    await start(dut)
    rng = np.random.default_rng(14)
    n = 2500
    a = rand32(rng, n, 70, 184)
    b = rand32(rng, n, 70, 184)
    # overflow to infinity
    a[:100] = rand32(rng, 100, 190, 254)
    b[:100] = rand32(rng, 100, 190, 254)
    sa, sb = np.meshgrid(SPECIAL32[:10], SPECIAL32[:10])
    a = np.concatenate([a, sa.ravel()])
    b = np.concatenate([b, sb.ravel()])
    got, _, _ = await run_unit(dut, "mul", a, b, 0.2, 0.2, 4)
    with np.errstate(all="ignore"):
        want = bits32(a.view(np.float32) * b.view(np.float32))
    check_equal("fp32_mul", canon32(got), canon32(want), ctx2(a, b))


@cocotb.test()
async def fp16_to_fp32_all(dut):
    """FP16 -> FP32 (nx.f32) over a quarter of all 65,536 patterns, every subnormal included."""
    await start(dut)
    a = np.concatenate([np.arange(0, 1 << 16, 4), np.arange(1, 0x400), np.arange(0x8001, 0x8400),
                        np.arange(0x7C00, 0x7C08), np.arange(0xFC00, 0xFC08)]).astype(np.uint16)
    got, _, _ = await run_unit(dut, "h2f", a, None, 0.1, 0.1, 5)
    check_equal("fp16_to_fp32", canon32(got), canon32(bits32(nx.f32(a))),
                lambda j: f"a={int(a[j]):#x}")


@cocotb.test()
async def fp32_to_fp16_rne(dut):
    """FP32 -> FP16 (nx.rne16): exact ties, values rounding up across binades, the flush and
    overflow thresholds, FP32 subnormals, infinities and NaNs."""
    await start(dut)
    rng = np.random.default_rng(15)
    n = 3000
    a = rand32(rng, n, 95, 145)
    tie = rng.random(n) < 0.3
    a = np.where(tie, (a & np.uint32(0xFFFFE000)) | np.uint32(0x1000), a)   # exactly half an FP16 ulp
    a[:50] = (a[:50] | np.uint32(0x7FFFFF))                                 # rounds up a binade
    extra = np.array([0x38800000, 0x387FFFFF, 0x387FF000, 0x387FF001, 0xB87FF000, 0x477FEFFF,
                      0x477FF000, 0x47800000, 0xC77FF000, 0x00000001, 0x80000010, 0x7F800001,
                      0xFFC00000, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000, 0x33000000,
                      0x38801000, 0x38802000, 0x38803000], dtype=np.uint32)
    a = np.concatenate([a, extra])
    got, _, _ = await run_unit(dut, "f2h", a, None, 0.1, 0.3, 6)
    check_equal("fp32_to_fp16", got, nx.rne16(a.view(np.float32)), lambda j: f"a={int(a[j]):#x}")


def latencies(dut):
    """The bench's MUL_LAT and ADD_LAT: the toplevel's parameters where the simulator shows them,
    else the target's (tests/hw/test_rtl.py builds the bench with the target's)."""
    t = target()
    got = []
    for name, dflt in (("MUL_LAT", t.matrix.mul_latency), ("ADD_LAT", t.matrix.add_latency)):
        try:
            got.append(int(getattr(dut, name).value))
        except (AttributeError, TypeError, ValueError):
            got.append(dflt)
    return got


@cocotb.test()
async def fp_prims_latency(dut):
    """Measure latency (cycles from input to output handshake) and throughput of each primitive:
    the pipelined units (dfx_f16_mul_p, dfx_f32_add_p, dfx_f32_mul_p) at the bench's latencies."""
    await start(dut)
    mul_lat, add_lat = latencies(dut)
    rng = np.random.default_rng(16)
    figs = {}
    for p, want_lat in (("m16", mul_lat), ("add", add_lat), ("mul", mul_lat), ("h2f", 1), ("f2h", 1)):
        a = rng.integers(0x3C00, 0x4000, 200, dtype=np.uint32)
        _, ic, oc = await run_unit(dut, p, a, None if p in ("h2f", "f2h") else a, 0.0, 0.0, 7)
        lat = oc[0] - ic[0]
        thr = (len(oc) - 1) / (oc[-1] - oc[0])
        assert lat == want_lat, f"{p}: latency {lat}, parameter {want_lat}"
        assert thr == 1.0, f"{p}: throughput {thr} per cycle"
        figs[p] = {"latency_cycles": lat, "results_per_cycle": thr}
    record("fp_prims", figs)
