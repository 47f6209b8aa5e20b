"""The golden arithmetic (sim/numerics.py) against plain numpy and float64 references."""

import numpy as np
import pytest

from dfx.sim import kernels
from dfx.sim import numerics as nx

ALL = nx.ALL16
F = ALL.view(np.float16).astype(np.float64)
NORMAL = np.isfinite(F) & ((ALL & 0x7C00) != 0)


def test_rne16_matches_numpy_on_normal_results():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(200_000) * np.exp(rng.uniform(-9, 11, 200_000))).astype(np.float32)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16)
    ok = np.isfinite(ref) & (np.abs(ref) >= np.float16(2 ** -14))
    assert (nx.rne16(x)[ok] == ref.view(np.uint16)[ok]).all()


def test_rne16_edge_cases():
    cases = [
        (0.0, 0x0000), (-0.0, 0x8000), (np.inf, 0x7C00), (-np.inf, 0xFC00), (np.nan, 0x7E00),
        (65504.0, 0x7BFF), (65519.99, 0x7BFF), (65520.0, 0x7C00),  # the overflow tie rounds to even: inf
        (2.0 ** -14, 0x0400), (-(2.0 ** -14), 0x8400),
        (2.0 ** -15, 0x0000), (-(2.0 ** -20), 0x8000),  # would be subnormal: flushed, sign kept
        (2.0 ** -14 - 2.0 ** -26, 0x0400),  # rounds up to the smallest normal before the flush
        (1.0 + 2.0 ** -11, 0x3C00), (1.0 + 3 * 2.0 ** -11, 0x3C02),  # ties to even
        (1e-30, 0x0000), (1e30, 0x7C00),
    ]
    for v, bits in cases:
        assert int(nx.rne16(np.float32(v))) == bits, v


def test_f32_flushes_subnormal_inputs():
    assert nx.f32(np.uint16(0x0001)) == 0.0
    assert np.signbit(nx.f32(np.uint16(0x8200)))
    assert nx.f32(np.uint16(0x0400)) == np.float32(2.0 ** -14)


def test_tree_sum_pairs_neighbours():
    p = np.array([1e8, 1.0, -1e8, 1.0], np.float32)
    # neighbours: (1e8 + 1) + (-1e8 + 1) = 1e8 + -1e8 (the ones are lost in FP32) = 0
    assert nx.tree_sum(p) == 0.0
    assert float(np.float32(1e8) + np.float32(-1e8) + 1 + 1) == 2.0  # another order gives 2
    s = nx.chunked_sum(np.arange(1, 11, dtype=np.float32)[None, :], 4)
    assert s[0] == 55.0


def test_max16_rules():
    a = nx.to_f16_bits([0.0, -0.0, 1.0, np.nan, -np.inf])
    b = nx.to_f16_bits([-0.0, 0.0, 2.0, 1.0, -1.0])
    r = nx.max16(a, b)
    assert list(r[:3]) == [0x0000, 0x8000, 0x4000]  # +-0 equal: keep a
    assert r[3] == nx.F16_NAN and r[4] == nx.to_f16_bits(-1.0)
    assert nx.argmax16(nx.to_f16_bits([1.0, np.nan, 3.0, 3.0])) == (2, 0x4200)


def test_recip_is_correctly_rounded():
    with np.errstate(divide="ignore", over="ignore"):
        ref = (1.0 / F[NORMAL]).astype(np.float16)
    got = nx.recip16(ALL[NORMAL]).view(np.float16)
    ok = np.abs(ref.astype(np.float64)) >= 2.0 ** -14
    assert (got[ok].view(np.uint16) == ref[ok].view(np.uint16)).all()
    assert (got[~ok] == 0).all()  # results below the normal range are flushed
    assert nx.recip16(np.uint16(0x0000)) == nx.F16_MAX and nx.recip16(np.uint16(0x8000)) == 0xFBFF
    assert nx.recip16(np.uint16(0x7C00)) == 0 and nx.recip16(np.uint16(0x7E00)) == nx.F16_NAN


def test_rsqrt_is_correctly_rounded():
    pos = NORMAL & (F > 0)
    ref = (1.0 / np.sqrt(F[pos])).astype(np.float16)
    assert (nx.rsqrt16(ALL[pos]) == ref.view(np.uint16)).all()
    neg = NORMAL & (F < 0)
    assert (nx.rsqrt16(ALL[neg]) == nx.F16_NAN).all()
    assert nx.rsqrt16(np.uint16(0)) == nx.F16_MAX and nx.rsqrt16(np.uint16(0x7C00)) == 0


def test_exp_within_one_ulp():
    x = F[NORMAL]
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    got = nx.exp16(ALL[NORMAL]).view(np.float16).astype(np.float64)
    inrange = (ref >= 2.0 ** -14) & (ref < 65504)
    ulp = 2.0 ** (np.floor(np.log2(ref[inrange])) - 10)
    err = np.abs(got[inrange] - ref[inrange]) / ulp
    assert err.max() <= 1.0
    assert (err <= 0.5 + 1e-9).mean() > 0.97  # almost always correctly rounded
    assert (got[ref < 2.0 ** -15] == 0).all() and np.isinf(got[ref > 65520]).all()


def test_gelu_table_close_to_tanh_gelu():
    x = F[NORMAL & (np.abs(F) < 16)]
    ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    got = nx.gelu16(nx.to_f16_bits(x)).view(np.float16).astype(np.float64)
    assert np.abs(got - ref).max() < 2e-3 + 1e-3 * np.abs(ref).max() * 0
    big = np.abs(ref) > 1
    assert (np.abs(got[big] - ref[big]) / np.abs(ref[big])).max() < 2e-3


@pytest.mark.parametrize("M,K,N,width", [(1, 64, 16, 64), (3, 100, 37, 64), (5, 8, 4, 8), (2, 2304, 48, 64)])
def test_compiled_kernel_equals_reference(M, K, N, width):
    rng = np.random.default_rng(M * 1000 + K)
    x = nx.to_f16_bits(rng.standard_normal((M, K)) * 3)
    w = nx.to_f16_bits(rng.standard_normal((K, N)))
    x[0, :3] = [0x7C00, 0x0001, 0x8000]  # inf, a subnormal, -0
    ref = nx.matmul_exact_f32(nx.f32(x), nx.f32(w), width)
    got = kernels.sums_exact(nx.f32(x), nx.f32(w), width)
    assert (np.nan_to_num(ref).view(np.uint32) == np.nan_to_num(got).view(np.uint32)).all()
    assert (np.isnan(ref) == np.isnan(got)).all()


def test_exact_matmul_close_to_float64():
    rng = np.random.default_rng(3)
    x = nx.to_f16_bits(rng.standard_normal((4, 768)))
    w = nx.to_f16_bits(rng.standard_normal((768, 64)) * 0.05)
    ref = nx.f32(x).astype(np.float64) @ nx.f32(w).astype(np.float64)
    got = nx.matmul_exact(x, w, 64)
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()
    fast = kernels.sums_fast(nx.f32(x), nx.f32(w), 64)
    assert np.abs(fast - ref).max() < 1e-4 * np.abs(ref).max()


def test_fast_rne16_equals_the_bitfield_definition():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 2 ** 32, 2_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert (nx.rne16(x) == nx.rne16_reference(x)).all()
    for c in (2.0 ** -14, 2.0 ** -15, 65504.0, 65520.0, 1.0):  # every float32 near the boundaries
        b = int(np.array(c, np.float32).view(np.uint32))
        r = (np.arange(-2 ** 20, 2 ** 20, dtype=np.int64) + b).astype(np.uint32)
        for sign in (0, 0x80000000):
            xx = (r | np.uint32(sign)).view(np.float32)
            assert (nx.rne16(xx) == nx.rne16_reference(xx)).all(), c
