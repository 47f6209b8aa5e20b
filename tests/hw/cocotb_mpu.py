"""cocotb tests of the matrix unit (hw/rtl/mpu/dfx_mpu.v) against dfx.sim.numerics.

Reference per output row: y = nx.rne16(nx.matmul_exact(x, w, W, bias, scale)); (gelu)
nx.gelu16; (mask) -inf where column > pos + row; row max nx.chunked_max(y, LANES);
argmax nx.argmax16(y). Every output bit is compared.
"""

from __future__ import annotations

import numpy as np

import cocotb

from dfx.perf.model import Costs
from dfx.sim import numerics as nx

from hwlib import pack, record, start, stream, target, unpack

EDGE16 = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7BFF, 0xFBFF, 0x0400, 0x8400,
                   0x0001, 0x83FF, 0x3C00, 0xBC00, 0x3C01], dtype=np.uint16)


def dims():
    t = target()
    return t.matrix.lanes, t.matrix.width


def near16(rng, shape, lo=0x2C00, hi=0x4400):
    m = rng.integers(lo, hi, shape, dtype=np.uint32)
    return (m | (rng.integers(0, 2, shape, dtype=np.uint32) << 15)).astype(np.uint16)


class MM:
    """One matrix product as a stream of MPU beats, with its expected outputs."""

    def __init__(self, x, w, bias=None, scale=0, gelu=False, pos=None, seed=0):
        L, W = dims()
        rng = np.random.default_rng(seed)
        self.x, self.w = np.asarray(x, np.uint16), np.asarray(w, np.uint16)
        M, K = self.x.shape
        N = self.w.shape[1]
        T, G = -(-K // W), -(-N // L)
        with np.errstate(all="ignore"):
            y = nx.rne16(nx.matmul_exact(self.x, self.w, W, bias, scale))
        if gelu:
            y = nx.gelu16(y)
        if pos is not None:
            cols = np.arange(N)[None, :]
            rows = np.arange(M)[:, None]
            y = np.where(cols > pos + rows, np.uint16(nx.F16_NINF), y).astype(np.uint16)
        self.y = y
        self.rowmax = [int(nx.chunked_max(y[i], L)) for i in range(M)]
        self.argmax = [nx.argmax16(y[i]) for i in range(M)]
        self.beats = []
        self.want = []
        for i in range(M):
            for g in range(G):
                c0, nc = g * L, min(L, N - g * L)
                b = np.zeros(L, np.uint16)
                if bias is not None:
                    b[:nc] = bias[c0:c0 + nc]
                for t in range(T):
                    k0, nk = t * W, min(W, K - t * W)
                    # past K and past N the beat carries garbage: kmask / lane_mask must hide it
                    xv = rng.integers(0, 1 << 16, W, dtype=np.uint32).astype(np.uint16)
                    xv[:nk] = self.x[i, k0:k0 + nk]
                    wt = rng.integers(0, 1 << 16, (L, W), dtype=np.uint32).astype(np.uint16)
                    wt[:nc, :nk] = self.w[k0:k0 + nk, c0:c0 + nc].T
                    self.beats.append({
                        "x": pack(xv), "w": pack(wt), "kmask": (1 << nk) - 1, "first": int(t == 0),
                        "last": int(t == T - 1), "bias": pack(b), "bias_en": int(bias is not None),
                        "scale": int(scale), "gelu": int(gelu), "mask_en": int(pos is not None),
                        "mask_lim": (pos or 0) + i, "col0": c0, "lane_mask": (1 << nc) - 1,
                        "row_last": int(g == G - 1)})
                self.want.append((i, g, c0, nc, g == G - 1))

    async def run(self, dut, gap_p=0.3, stall_p=0.3, seed=1):
        L, _ = dims()
        outs, ic, oc = await stream(dut, self.beats, "in", "out",
                                    ["y", "col0", "row_last", "rowmax", "argmax", "argval"],
                                    gap_p=gap_p, stall_p=stall_p, n_out=len(self.want), seed=seed)
        for o, (i, g, c0, nc, rl) in zip(outs, self.want):
            got = unpack(o["y"], L)[:nc]
            want = self.y[i, c0:c0 + nc]
            if not np.array_equal(got, want):
                lane = int(np.nonzero(got != want)[0][0])
                raise AssertionError(f"row {i} col {c0 + lane}: got {int(got[lane]):#06x} want "
                                     f"{int(want[lane]):#06x}; x={self.x[i].tolist()} "
                                     f"w[:, col]={self.w[:, c0 + lane].tolist()}")
            assert o["col0"] == c0 and o["row_last"] == int(rl), (o, c0, rl)
            if rl:
                assert o["rowmax"] == self.rowmax[i], f"row {i} max {o['rowmax']:#06x} want {self.rowmax[i]:#06x}"
                ai, av = self.argmax[i]
                assert (o["argmax"], o["argval"]) == (ai, av), \
                    f"row {i} argmax ({o['argmax']}, {o['argval']:#06x}) want ({ai}, {av:#06x})"
        return ic, oc


@cocotb.test()
async def mpu_matmul_bias(dut):
    """Random product with partial k-tiles and column groups, bias, gaps and backpressure."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(1)
    M, K, N = 3, 2 * W + 3, 2 * L + 1
    mm = MM(near16(rng, (M, K)), near16(rng, (K, N)), bias=near16(rng, N), seed=1)
    await mm.run(dut, seed=1)


@cocotb.test()
async def mpu_scale_edge_values(dut):
    """Scale plus +-0, +-inf, NaN, largest normals, subnormal inputs, overflow and flush."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(2)
    M, K, N = 6, W + 2, L + 2
    x = near16(rng, (M, K))
    w = near16(rng, (K, N))
    x.flat[rng.integers(0, x.size, 10)] = rng.choice(EDGE16, 10)
    w.flat[rng.integers(0, w.size, 10)] = rng.choice(EDGE16, 10)
    x[1] = 0x7BFF            # products that overflow FP16 after the sum
    x[2] = 0x0401            # tiny values: results flushed to zero
    w[:, 0] = 0x8000         # -0 weights: signed-zero sums
    bias = near16(rng, N)
    bias[1] = 0x8000
    mm = MM(x, w, bias=bias, scale=0x3155, seed=2)
    await mm.run(dut, seed=2)


@cocotb.test()
async def mpu_signed_zero_sums(dut):
    """Sums of +-0 products (and of flushed subnormals) are +0 (docs/numerics.md, "Dot products"),
    with or without a -0 bias."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(3)
    M, K, N = 4, 2 * W, L
    x = rng.choice(np.array([0x0000, 0x8000, 0x0001, 0x8001], np.uint16), (M, K))
    w = rng.choice(np.array([0x3C00, 0xBC00, 0x8000], np.uint16), (K, N))
    x[0] = 0x8000
    w[:, 0] = 0x3C00
    await MM(x, w, seed=3).run(dut, seed=3)
    await MM(x, w, bias=np.full(N, 0x8000, np.uint16), seed=4).run(dut, seed=4)


@cocotb.test()
async def mpu_dot_adversarial(dut):
    """The dot product's hard cases (docs/numerics.md, "Dot products"): products from 2^-28 to
    2^32 in one tile (truncation), sums that cancel to exactly 0 across tiles and within one,
    tile sums near the accumulator's top bits, infinities of one and of both signs, inf x 0,
    NaN and infinite biases."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(13)
    M, K, N = 8, 4 * W, L
    x = near16(rng, (M, K), 0x0400, 0x7C00)          # every normal exponent
    w = near16(rng, (K, N), 0x0400, 0x7C00)
    x[0, :W] = 0x7BFF                                # 65504^2 = 2^32 beside 2^-28 products
    x[0, 1::2] = 0x0400
    x[1, :W] = 0x6400                                # +1024 x w, then -1024 x w: cancels exactly
    x[1, W:2 * W] = 0xE400
    w[W:2 * W] = w[:W]
    x[1, 2 * W:] = 0x1000                            # a small remainder the FP32 trees would lose
    x[2] = np.where(np.arange(K) % 2 == 0, 0x5555, 0xD555).astype(np.uint16)
    w[:, 1] = 0x3C00                                 # column 1: x[2] sums to exactly 0 (+0)
    x[3, :] = 0x7BFF                                 # every product 2^32 with w = 65504
    w[:, 2] = 0x7BFF
    x[4, 3] = 0x7C00                                 # +inf in tile 0
    x[5, 3], x[5, W + 1] = 0x7C00, 0xFC00            # both signs: NaN
    x[6, 5] = 0x7C00                                 # inf x 0 (column 3's weight) : NaN
    w[5, 3] = 0x0000
    x[7, 2] = 0x7E01                                 # a NaN operand
    bias = near16(rng, N)
    bias[0], bias[3] = 0x7C00, 0x7E00                 # infinite and NaN bias
    await MM(x, w, seed=13).run(dut, seed=13)
    await MM(x, w, bias=bias, scale=0x0400, seed=14).run(dut, seed=14)
    neg = (x ^ 0x8000).astype(np.uint16)             # negating x negates every finite result
    await MM(neg, w, seed=15).run(dut, seed=15)


@cocotb.test()
async def mpu_rounding_ties(dut):
    """Products and partial sums built to land on FP32 and FP16 rounding ties."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(5)
    M, K, N = 4, 3 * W, L
    # 1 + 2^-10 style values: exact products with long significands, sums across exponents
    x = (rng.integers(0, 4, (M, K)) + np.where(rng.random((M, K)) < 0.5, 0x3C00, 0x1000)).astype(np.uint16)
    w = (rng.integers(0, 3, (K, N)) + np.where(rng.random((K, N)) < 0.5, 0x6400, 0xBC00)).astype(np.uint16)
    await MM(x, w, seed=5).run(dut, seed=5)


@cocotb.test()
async def mpu_gelu(dut):
    """Fused GELU (nx.gelu16) on FFN-like outputs, bias on."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(6)
    M, K, N = 4, 2 * W, 2 * L
    mm = MM(near16(rng, (M, K), 0x2000, 0x3E00), near16(rng, (K, N), 0x2000, 0x3E00),
            bias=near16(rng, N, 0x3000, 0x4600), gelu=True, seed=6)
    await mm.run(dut, seed=6)


@cocotb.test()
async def mpu_gelu_sweep(dut):
    """Fused GELU on every 64th FP16 pattern (1,024 values): x = e0, so row 0 of W comes out as y."""
    await start(dut)
    _, W = dims()
    vals = np.arange(0, 1 << 16, 64, dtype=np.uint32).astype(np.uint16) + np.uint16(7)
    x = np.zeros((1, W), np.uint16)
    x[0, 0] = 0x3C00
    w = np.zeros((W, vals.size), np.uint16)
    w[0] = vals
    await MM(x, w, gelu=True, seed=16).run(dut, gap_p=0.05, stall_p=0.05, seed=16)


@cocotb.test()
async def mpu_masked_rowmax(dut):
    """Causal mask with scale (Q K^T), row max over column groups, rows fully masked but one."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(7)
    M, K, N = 5, W, 3 * L - 1
    x = near16(rng, (M, K))
    w = near16(rng, (K, N))
    mm = MM(x, w, scale=0x3000, pos=1, seed=7)
    await mm.run(dut, seed=7)
    x[2, 0] = 0x7E00  # a NaN row: max is NaN, argmax ignores NaNs
    await MM(x, w, scale=0x3000, pos=0, seed=8).run(dut, seed=8)


@cocotb.test()
async def mpu_argmax(dut):
    """LM-head style argmax: ties (first index wins), NaNs never win, +0 / -0, -inf rows."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(9)
    M, K, N = 1, W, 4 * L + 3
    x = np.full((M, K), 0x3C00, np.uint16)
    w = np.zeros((K, N), np.uint16)
    w[0] = near16(rng, N, 0x3000, 0x4000)
    w[0, 5] = w[0, N - 2] = 0x4C00           # tie at the maximum
    w[0, 3] = 0x7E00                         # NaN column
    await MM(x, w, seed=9).run(dut, seed=9)
    w2 = np.zeros((K, N), np.uint16)
    w2[0] = 0x8000                           # all -0 except a +0: the first one wins
    w2[0, 7] = 0x0000
    await MM(x, w2, seed=10).run(dut, seed=10)
    w3 = np.zeros((K, N), np.uint16)
    w3[0] = 0xFC00                           # all -inf with NaNs: index 0
    w3[0, 0] = 0x7E00
    await MM(x, w3, seed=11).run(dut, seed=11)


@cocotb.test()
async def mpu_random_shapes(dut):
    """A few random shapes and options back to back, heavy gaps and backpressure."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(12)
    for r in range(4):
        M, K, N = int(rng.integers(1, 3)), int(rng.integers(1, 3 * W)), int(rng.integers(1, 3 * L))
        bias = near16(rng, N) if r % 2 else None
        scale = int(near16(rng, 1, 0x3000, 0x3C00)[0] & 0x7FFF) if r % 3 else 0
        mm = MM(near16(rng, (M, K)), near16(rng, (K, N)), bias=bias, scale=scale,
                gelu=(r == 1), pos=(0 if r == 2 else None), seed=12 + r)
        await mm.run(dut, gap_p=0.5, stall_p=0.5, seed=12 + r)


@cocotb.test()
async def mpu_throughput(dut):
    """Steady state: one k-tile (LANES x WIDTH MACs) per cycle; latency from the last tile."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(13)
    M, T, N = 6, 8, 2 * L
    mm = MM(near16(rng, (M, T * W)), near16(rng, (T * W, N)), bias=near16(rng, N), seed=13)
    ic, oc = await mm.run(dut, gap_p=0.0, stall_p=0.0, seed=13)
    beats = len(mm.beats)
    span = ic[-1] - ic[0] + 1
    assert len(ic) == beats and span == beats, f"{beats} tiles took {span} cycles"
    lat = oc[0] - ic[T - 1]
    assert all(o - ic[T - 1 + T * n] == lat for n, o in enumerate(oc)), "latency varies"
    # the performance model's MPU latency is computed from the target, as dfx_mpu.v's LAT is
    assert lat == Costs.of(target()).mpu_lat, (lat, Costs.of(target()).mpu_lat)
    tiles_per_cycle = beats / span
    record("mpu", {"latency_cycles": lat, "tiles_per_cycle": tiles_per_cycle,
                   "macs_per_cycle": tiles_per_cycle * L * W, "lanes": L, "width": W,
                   "measured_tiles": beats, "measured_cycles": span})
    # the same product under backpressure: the output stall must not lose or reorder anything
    await mm.run(dut, gap_p=0.0, stall_p=0.7, seed=14)
    # with GELU every beat also goes through the GELU pipeline: the model's mpu_gelu cycles more
    mg = MM(near16(rng, (M, T * W)), near16(rng, (T * W, N)), bias=near16(rng, N), gelu=True, seed=15)
    ic, oc = await mg.run(dut, gap_p=0.0, stall_p=0.0, seed=15)
    c = Costs.of(target())
    assert oc[0] - ic[T - 1] == c.mpu_lat + c.mpu_gelu, (oc[0] - ic[T - 1], c.mpu_lat + c.mpu_gelu)


@cocotb.test()
async def smoke(dut):
    """One short product with bias and scale (used on the u280 configuration too)."""
    await start(dut)
    L, W = dims()
    rng = np.random.default_rng(15)
    M, K, N = 2, W + 5, L + 1
    mm = MM(near16(rng, (M, K)), near16(rng, (K, N)), bias=near16(rng, N), scale=0x3400, seed=15)
    await mm.run(dut, gap_p=0.2, stall_p=0.2, seed=15)
