"""The golden arithmetic (sim/numerics.py) against plain numpy, float64 and exact rational references,
and sim/_exact.c's dot products against it bit for bit."""

from fractions import Fraction

import numpy as np
import pytest

from dfx.sim import _exact, kernels, plan
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


def test_block_sum_examples():
    assert nx.block_sum(np.arange(1, 11).astype(np.float16), 4) == 55.0
    # products 2^13.3 beside 1 sit 13 bits below the tile's largest: kept whole (FP32 trees lost them)
    assert nx.block_sum(nx.to_f16_bits([1e4, 1.0, -1e4, 1.0]), 4) == 2.0
    assert nx.block_sum(nx.to_f16_bits([-3.0, 0.5]), 8, square=True) == 9.25
    z = nx.block_sum(nx.to_f16_bits([2.0, -2.0, -0.0]), 8)
    assert z == 0 and not np.signbit(z)  # an exact zero sum is +0


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
    mag = np.where(r >= 65536, 0x7C00,
                   np.where(r < 2.0 ** -14, 0, np.minimum(r, 65504).astype(np.float16).view(np.uint16)))
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


# ------------------------------------------------------------------ dot products
# docs/numerics.md, "Dot products", written again straight from the text with exact rationals:
# per tile, every product aligned to 2^(emax - 58) and truncated toward zero; the sum (and the bias)
# exact; one rounding to binary32, nearest even. nx.dot_exact must equal it bit for bit.
def _parts(b):
    b = int(b)
    return b >> 15, (b >> 10) & 31, b & 0x3FF


def _q(b) -> Fraction:
    """An FP16 operand after the input flush, exactly: (-1)^s m 2^(e - 25), 0 for e = 0."""
    s, e, f = _parts(b)
    assert e < 31
    v = Fraction(0) if e == 0 else Fraction(1024 + f) * Fraction(2) ** (e - 25)
    return -v if s else v


def _rne32(r: Fraction) -> np.float32:
    """A rational to the nearest binary32, ties to even (the doc: never subnormal, never overflows)."""
    if r == 0:
        return np.float32(0.0)
    a = abs(r)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    e -= Fraction(2) ** e > a  # now 2^e <= a < 2^(e + 1)
    assert -126 <= e <= 127 and Fraction(2) ** e <= a < Fraction(2) ** (e + 1)
    ulp = Fraction(2) ** (e - 23)
    n, rem = divmod(a, ulp)
    n += rem > ulp / 2 or (rem == ulp / 2 and n % 2 == 1)
    v = np.float32(float(n * ulp))
    assert Fraction(float(v)) == n * ulp
    return -v if r < 0 else v


def dot_fraction(x, w, T, bias=None):
    """(the result as binary32, the exact real sum, the truncation bound sum_t T 2^-28 max_t |p|)."""
    nan = pinf = ninf = False
    total, real, bound = Fraction(0), Fraction(0), Fraction(0)
    for t0 in range(0, len(x), T):
        prods = []  # (p, E) of the tile's finite products
        for xb, wb in zip(x[t0:t0 + T], w[t0:t0 + T]):
            (sx, ex, fx), (sw, ew, fw) = _parts(xb), _parts(wb)
            xnan, wnan, xinf, winf = ex == 31 and fx, ew == 31 and fw, ex == 31 and not fx, ew == 31 and not fw
            if xnan or wnan or (xinf and ew == 0) or (winf and ex == 0):
                nan = True
            elif xinf or winf:
                pinf, ninf = pinf or sx == sw, ninf or sx != sw
            else:
                p = _q(xb) * _q(wb)
                prods.append((p, ex + ew if p else 0))
        emax = max([E for _, E in prods], default=0)
        unit = Fraction(2) ** (emax - 58)
        total += sum(int(p / unit) * unit for p, _ in prods)  # int() truncates toward zero
        real += sum(p for p, _ in prods)
        bound += T * Fraction(2) ** -28 * max([abs(p) for p, _ in prods], default=0)
    if bias is not None:
        sb, eb, fb = _parts(bias)
        if eb == 31:
            nan, pinf, ninf = nan or fb != 0, pinf or (not fb and not sb), ninf or (not fb and sb)
        else:
            total += _q(bias)
            real += _q(bias)
    if nan or (pinf and ninf):
        return np.float32(np.nan), real, bound
    if pinf or ninf:
        return np.float32(np.inf if pinf else -np.inf), real, bound
    return _rne32(total), real, bound


def bits32(v):
    return int(np.asarray(v, np.float32).view(np.uint32))


def check_dot(x, w, T, bias=None):
    """nx.dot_exact(x, w) (1-D FP16 bits) equals the rational reference bit for bit; returns them."""
    x, w = nx.as_u16(x), nx.as_u16(w)
    got = nx.dot_exact(x, w, T, None if bias is None else np.uint16(bias))
    want, real, bound = dot_fraction(x, w, T, bias)
    assert bits32(got) == bits32(want), (got, want)
    return got, real, bound


def f16s(a):
    return nx.to_f16_bits(np.asarray(a, np.float64))


@pytest.mark.parametrize("T", [8, 64])
def test_dot_exact_equals_the_rational_definition_on_random_vectors(T):
    rng = np.random.default_rng(T)
    for trial in range(60):
        K = int(rng.integers(1, 3 * T + 5))
        spread = [0, 4, 12][trial % 3]  # exponent spread of the operands (12: products 2^-24 .. 2^24 apart)
        x = f16s(rng.standard_normal(K) * np.exp2(rng.integers(-spread, spread + 1, K)))
        w = f16s(rng.standard_normal(K) * np.exp2(rng.integers(-spread, spread + 1, K)))
        if trial % 4 == 1:
            x = x | np.uint16(0x8000)  # all of x negative: with w of mixed signs
        if trial % 4 == 2:
            w = w & np.uint16(0x7FFF)
        bias = f16s(rng.standard_normal() * 10) if trial % 2 else None
        got, real, bound = check_dot(x, w, T, bias)
        # the documented error: the truncation (< T 2^-28 of each tile's largest product) and one rounding
        half_ulp = Fraction(2) ** (int(np.floor(np.log2(abs(float(got))))) - 24) if got else Fraction(0)
        assert abs(Fraction(float(got)) - real) <= bound + half_ulp
        # negating x negates the result exactly (a zero result is +0 both times)
        neg = nx.dot_exact(x ^ np.uint16(0x8000), w, T, None if bias is None else np.uint16(bias) ^ np.uint16(0x8000))
        assert bits32(neg) == (bits32(-got) if got else 0)


def test_dot_exact_adversarial_cases():
    one, two = 0x3C00, 0x4000
    # cancellation: exactly zero gives +0, whatever the signs of the zeros and products
    for x, w in [([1.0, 1.0], [2.0, -2.0]), ([-0.0, 0.0], [1.0, -1.0]), ([-3.0, 3.0, -0.0], [-5.0, -5.0, 2.0])]:
        got, _, _ = check_dot(f16s(x), f16s(w), 8)
        assert bits32(got) == 0
    # cancellation to nearly zero: what survives is exact when it is within G bits of the largest
    # product's last bit (0.01 is 16 binades below 1000); further down it is truncated
    x = f16s([1000.0, 0.01, -1000.0, 0.01, 7.0, -7.0])
    got, real, _ = check_dot(x, f16s([1.0] * 6), 8)
    assert Fraction(float(got)) == real
    x = f16s([1000.0, 0.001, -1000.0, 0.001])  # 19 binades below: the last bit of each is lost
    got, real, _ = check_dot(x, f16s([1.0] * 4), 8)
    assert Fraction(float(got)) == real - Fraction(2, 2 ** 20)
    # wide spread in one tile: 2^-28 beside 2^30 truncates to nothing; in its own tile it counts
    tiny, big = 0x0400, 0x7800  # 2^-14 and 2^15
    both = np.array([big, tiny], np.uint16)
    got, _, _ = check_dot(both, both, 8)
    assert got == np.float32(2.0 ** 30)
    apart = np.array([big] + [0] * 7 + [tiny], np.uint16)
    got, _, _ = check_dot(apart, apart, 8)
    assert got == np.float32(2.0 ** 30)  # 2^30 + 2^-28 rounds to 2^30 in binary32
    near = np.array([0x6400, tiny], np.uint16)  # 2^20 beside 2^-28 (2^48 apart)
    got, _, _ = check_dot(near, near, 8)
    assert got == np.float32(2.0 ** 20)
    # a product 2^21 below the tile's largest keeps its top bits; 2^30 below it is gone
    got, _, _ = check_dot(f16s([2048.0, 1.0]), f16s([1.0, 1.0 + 2 ** -10]), 8)
    assert got == np.float32(2049.0 + 2 ** -10)
    # ties in the final rounding go to even: 2^24 + 1 -> 2^24, 2^24 + 3 -> 2^24 + 4, in one tile or two
    for T in (8, 2):
        got, _, _ = check_dot(f16s([4096.0, 1.0]), f16s([4096.0, 1.0]), T)
        assert got == np.float32(2.0 ** 24)
        got, _, _ = check_dot(f16s([4096.0, 1.0, 2.0]), f16s([4096.0, 1.0, 1.0]), T)
        assert got == np.float32(2.0 ** 24 + 4)
        got, _, _ = check_dot(f16s([-4096.0, -1.0, -2.0]), f16s([4096.0, 1.0, 1.0]), T)
        assert got == np.float32(-(2.0 ** 24 + 4))
    # the bias is in the sum: it cancels exactly, and its ties round as one sum
    got, _, _ = check_dot(f16s([3.0, 5.0]), f16s([7.0, 11.0]), 8, f16s(-76.0))
    assert bits32(got) == 0
    got, _, _ = check_dot(f16s([4096.0]), f16s([4096.0]), 8, f16s(1.0))
    assert got == np.float32(2.0 ** 24)
    got, _, _ = check_dot(f16s([4096.0, 1.0]), f16s([4096.0, 2.0]), 8, f16s(1.0))
    assert got == np.float32(2.0 ** 24 + 4)
    # specials: infinities of one sign, of both signs, inf x 0 (also x a flushed subnormal), NaN
    inf, ninf, nan, sub = 0x7C00, 0xFC00, 0x7E01, 0x0001
    cases = [([inf, 1.0], [two, 5.0], np.inf), ([inf, 1.0], [0xC000, 5.0], -np.inf), ([inf, ninf], [one, one], np.nan),
             ([inf, inf], [one, 0xBC00], np.nan), ([inf, 3.0], [0x0000, one], np.nan), ([inf, 3.0], [sub, one], np.nan),
             ([nan, 3.0], [one, one], np.nan), ([0x8000, 3.0], [ninf, one], np.nan), ([1.0, 65504.0], [nan, 0], np.nan)]
    for xs, ws, want in cases:
        x = np.array([v if isinstance(v, int) else int(f16s(v)) for v in xs], np.uint16)
        w = np.array([v if isinstance(v, int) else int(f16s(v)) for v in ws], np.uint16)
        got, _, _ = check_dot(x, w, 8)
        assert (np.isnan(got) and np.isnan(want)) or got == want
        assert not np.isnan(got) or bits32(got) == 0x7FC00000
    got, _, _ = check_dot(f16s([1.0]), f16s([1.0]), 8, np.uint16(ninf))
    assert got == -np.inf
    got, _, _ = check_dot(np.array([inf], np.uint16), f16s([1.0]), 8, np.uint16(ninf))
    assert np.isnan(got)
    got, _, _ = check_dot(f16s([1.0]), f16s([1.0]), 8, np.uint16(0x7D00))
    assert np.isnan(got)
    got, _, _ = check_dot(f16s([1.0]), f16s([1.0]), 8, np.uint16(0x83FF))  # a subnormal bias is -0
    assert got == 1.0
    # the largest sums: 65504^2 products, every one in its own tile, no overflow
    got, _, _ = check_dot(np.full(300, 0x7BFF, np.uint16), np.full(300, 0x7BFF, np.uint16), 1)
    assert got == np.float32(300 * 65504.0 ** 2)


def test_dot_exact_refuses_a_sum_past_the_accumulator():
    with pytest.raises(ValueError, match="overflows the accumulator"):
        nx.dot_exact(np.ones(nx.K_MAX + 1, np.uint16), np.ones(nx.K_MAX + 1, np.uint16), 64)


EDGE16 = np.array([0x7C00, 0xFC00, 0x7E00, 0xFD17, 0x0001, 0x83FF, 0x8000, 0x0000, 0x7BFF, 0xFBFF, 0x0400], np.uint16)


def _operands(rng, M, K, N, edges):
    x = nx.to_f16_bits(rng.standard_normal((M, K)) * np.exp2(rng.integers(-6, 7, (M, K))))
    w = nx.to_f16_bits(rng.standard_normal((K, N)) * np.exp2(rng.integers(-6, 7, (K, N))))
    b = nx.to_f16_bits(rng.standard_normal(N) * 8)
    if edges:
        for a in (x, w, b):
            pick = rng.random(a.shape) < 0.02
            a[pick] = rng.choice(EDGE16, int(pick.sum()))
        x[0, :3] = [0x7C00, 0x0001, 0x8000][:K]  # inf, a subnormal, -0
        b[:2] = [0xFC00, 0x7E00]
    return x, w, b


@pytest.fixture(params=[True, False], ids=["avx2", "portable"])
def simd(request):
    """Run with each of sim/_exact.c's two implementations of mm_exact (where the CPU has AVX2)."""
    used = _exact.simd(request.param)
    if request.param and not used:
        _exact.simd(True)
        pytest.skip("no AVX2 here")
    yield used
    _exact.simd(True)


@pytest.mark.parametrize("M,K,N,width", [(1, 64, 16, 64), (3, 100, 37, 64), (5, 8, 4, 8), (2, 2304, 48, 64),
                                         (4, 1, 5, 8), (2, 1, 300, 64), (3, 77, 530, 8), (2, 3072, 40, 64),
                                         (1, 129, 257, 64), (2, 0, 3, 8)])
@pytest.mark.parametrize("edges", [False, True])
def test_compiled_kernel_equals_reference(M, K, N, width, edges, simd):
    rng = np.random.default_rng(M * 1000 + K + N + edges)
    x, w, b = _operands(rng, M, K, N, edges)
    for bias in (None, b):
        ref = nx.matmul_exact(x, w, width, bias)
        got = kernels.sums_exact(nx.f32(x), nx.f32(w), width, None if bias is None else nx.f32(bias))
        assert (ref.view(np.uint32) == got.view(np.uint32)).all()  # NaN is 0x7FC00000 in both
    assert (nx.matmul_exact_f32(nx.f32(x), nx.f32(w), width).view(np.uint32) ==
            kernels.sums_exact(nx.f32(x), nx.f32(w), width).view(np.uint32)).all()


def test_compiled_kernel_on_cancelling_and_spread_columns(simd):
    """Columns made to cancel against a row, and a tile's products 2^58 apart, at W = 64 and 8."""
    rng = np.random.default_rng(5)
    K, N = 600, 24
    x = rng.standard_normal((2, K))
    w = rng.standard_normal((K, N))
    w -= np.outer(x[0], x[0] @ w) / (x[0] @ x[0])
    x, w = nx.to_f16_bits(x), nx.to_f16_bits(w)
    w[::7, ::3] = 0x7800  # 2^15 beside
    x[1, ::5] = 0x0400  # 2^-14
    for width in (8, 64):
        got = kernels.sums_exact(nx.f32(x), nx.f32(w), width)
        assert (nx.matmul_exact(x, w, width).view(np.uint32) == got.view(np.uint32)).all()


def test_compiled_kernel_refuses_a_sum_past_the_accumulator():
    K = nx.K_MAX + 1
    with pytest.raises(ValueError, match="overflows the accumulator"):
        kernels.sums_exact(np.ones((1, K), np.float32), np.ones((K, 1), np.float32), 64)


@pytest.mark.parametrize("width", [8, 64])
def test_compiled_block_sums_equal_reference(width):
    """vec()'s vsum and vsumsq (sim/_exact.c) equal nx.block_sum, times imm, rounded: long rows too."""
    rng = np.random.default_rng(width)
    rows, cols = 6, 3072
    a = nx.to_f16_bits(rng.standard_normal((rows, cols)) * np.exp2(rng.integers(-8, 9, (rows, cols))))
    a[1, :cols // 2] = nx.to_f16_bits(-nx.f32(a[1, cols // 2:]))  # cancels to +0
    a[2] = rng.choice(EDGE16[4:], cols)  # subnormals, zeros, the largest values: no inf, no NaN
    a[3, ::97] = rng.choice(EDGE16, len(a[3, ::97]))  # infinities and NaNs too
    a[4, 5], a[4, 3000] = 0x7C00, 0xFC00
    table = plan.luts()
    for name in ("vsum", "vsumsq"):
        for n in (1, 7, width, width + 1, 1000, cols):
            for imm in (0.0, 1 / 768, -3.0):
                buf = np.zeros(rows * cols + 64, np.uint16)
                buf[:rows * cols] = a.ravel()
                immb = int(np.array(imm, np.float32).view(np.uint32))
                prm = (plan.VEC_OP[name], 0, rows, n, 0, cols, 0, 0, 0, 0, immb, rows * cols, 1, width)
                _exact.vec(buf, plan.F32, table, np.array([prm], np.int64))
                s = nx.block_sum(a[:, :n], width, square=name == "vsumsq")
                with np.errstate(over="ignore", invalid="ignore"):
                    want = nx.rne16(s * np.float32(imm) if imm else s)
                assert (buf[rows * cols:rows * cols + rows] == want).all(), (name, n, imm)


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
