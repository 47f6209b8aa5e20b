"""The golden arithmetic (sim/numerics.py) against plain numpy and float64 references."""

import numpy as np
import pytest

from dfx.sim import kernels
from dfx.sim import numerics as nx

ALL = nx.ALL16


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


# The classes of the 65,536 FP16 bit patterns: every table function is checked on all of them.
EXP = (ALL >> 10) & 0x1F
NAN = (EXP == 31) & ((ALL & 0x3FF) != 0)  # all 2,046 NaN patterns, either sign
INF = (EXP == 31) & ((ALL & 0x3FF) == 0)
ZS = EXP == 0  # +-0 and the subnormals, which the units read as zeros of the same sign
NEG = (ALL & 0x8000) != 0
with np.errstate(invalid="ignore"):  # numpy warns casting NaN patterns
    V = nx.f32(ALL).astype(np.float64)  # the value the hardware reads (subnormals flushed)


def ref16(v):
    """docs/numerics.md's rne16 on float64 values: 11 significant bits, ties to even, unbounded
    exponent, then +-inf from 2^16 and a signed zero below 2^-14 (NaN -> 0x7E00)."""
    v = np.asarray(v, np.float64)
    a = np.abs(v)
    fin = np.isfinite(a) & (a > 0)
    m, e = np.frexp(np.where(fin, a, 1.0))
    r = np.rint(m * 2048) * np.exp2(e - 11.0)
    mag = np.where(r >= 65536, 0x7C00, np.where(r < 2.0 ** -14, 0, np.minimum(r, 65504).astype(np.float16).view(np.uint16)))
    mag = np.where(fin, mag, np.where(np.isinf(a), 0x7C00, 0))
    out = (mag.astype(np.uint16) | (np.signbit(v).astype(np.uint16) << 15)).astype(np.uint16)
    return np.where(np.isnan(v), np.uint16(nx.F16_NAN), out)


def steps(bits):
    """Position of non-negative FP16 values on the line of representable values with the
    flush (0, then 2^-14 onward, inf last): one step = one FP16 ulp."""
    b = bits.astype(np.int64) & 0x7FFF
    return np.where(b >= 0x400, b - 0x3FF, 0)


def test_ref16_is_rne16():
    rng = np.random.default_rng(21)
    x = rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(invalid="ignore"):
        assert (ref16(x.astype(np.float64)) == nx.rne16(x)).all()


def test_recip_on_every_input():
    with np.errstate(divide="ignore"):
        want = ref16(1.0 / V)  # correctly rounded, flushed below 2^-14
    want[ZS] = np.where(NEG[ZS], 0xFBFF, nx.F16_MAX)  # +-0: saturated +-65504
    want[INF] = np.where(NEG[INF], 0x8000, 0x0000)
    want[NAN] = nx.F16_NAN
    assert (nx.recip16(ALL) == want).all()


def test_rsqrt_on_every_input():
    with np.errstate(divide="ignore", invalid="ignore"):
        want = ref16(1.0 / np.sqrt(V))
    want[ZS] = nx.F16_MAX  # +-0: +65504, either sign
    want[NEG & ~ZS] = nx.F16_NAN  # negative (-inf included)
    want[INF & ~NEG] = 0
    want[NAN] = nx.F16_NAN
    assert (nx.rsqrt16(ALL) == want).all()


def test_exp_on_every_input():
    with np.errstate(over="ignore"):
        ref = ref16(np.exp(V))  # exp(+-0) = 1 for zeros and subnormals, exp(-inf) = 0
    got = nx.exp16(ALL)
    assert (got[NAN] == nx.F16_NAN).all()
    ok = ~NAN
    err = np.abs(steps(got[ok]) - steps(ref[ok]))
    assert err.max() <= 1  # at most one FP16 ulp from exp (overflow to inf and flush counted as steps)
    assert (got[ZS] == 0x3C00).all() and (got[INF & NEG] == 0).all() and (got[INF & ~NEG] == 0x7C00).all()
    assert (err == 0).mean() > 0.97  # correctly rounded for over 97 % of the inputs


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


# Linear interpolation over segments of 1/128 is off by at most max|gelu''| / (8 * 128^2), and
# |gelu_tanh''| <= 0.8 (its maximum, sqrt(2/pi) = 0.798, is at 0); the binary32 table entries
# and the two binary32 operations add less than 2^-20 (|G| < 8).
GELU_INTERP = 0.8 / (8 * 128 ** 2) + 2.0 ** -20


def test_gelu_on_every_input():
    got = nx.gelu16(ALL)
    assert (got[NAN] == nx.F16_NAN).all()
    assert (got[ZS] == 0).all() and (got[INF & NEG] == 0).all() and (got[INF & ~NEG] == 0x7C00).all()
    fin = ~NAN & ~INF
    x = V[fin]
    ref = gelu_tanh(x)
    err = np.abs(nx.f32(got[fin]).astype(np.float64) - ref)
    far = np.abs(ref) >= 2.0 ** -13  # half an FP16 ulp of the result plus the segments' error
    half_ulp = np.exp2(np.floor(np.log2(np.abs(ref[far]))) - 11)
    assert (err[far] <= half_ulp + GELU_INTERP).all()
    assert (err[~far] <= 2.0 ** -14 + GELU_INTERP).all()  # near the flush to zero below 2^-14
    assert (got[fin][x >= 8] == ALL[fin][x >= 8]).all() and (got[fin][x <= -8] == 0).all()


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
