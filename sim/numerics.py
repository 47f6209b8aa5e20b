"""The exact arithmetic of the dfx hardware (docs/numerics.md), as vectorised numpy.

These functions are the golden model: the exact simulator calls them, and the RTL tests
compare every output bit with them. FP16 values travel as uint16 bit patterns; FP32
intermediates as numpy float32 (numpy's float32 add and multiply are IEEE round to
nearest even, which is what the hardware's FP32 adders and multipliers do).

Rules (docs/numerics.md explains each):
  * inputs: an FP16 subnormal is read as a zero of the same sign (flush on input);
  * rne16: round an FP32 value to 11 significant bits, nearest even, with an unbounded
    exponent; then a magnitude below 2^-14 becomes a zero of the same sign, one of
    2^16 or more becomes infinity; every NaN becomes 0x7E00;
  * a dot product (the matrix unit, vsum, vsumsq) aligns each W-wide tile of exact products to
    its largest exponent (truncating G = 8 bits below it), sums the tiles exactly in fixed point
    and rounds once to FP32; other FP32 operations round at each step;
  * max reductions are trees that compare neighbours (0 with 1, 2 with 3, ...) level by level;
  * exp, reciprocal, rsqrt and GELU are the table algorithms below, not libm calls.
"""

from __future__ import annotations

import functools
import math

import numpy as np

F16_NAN = 0x7E00
F16_INF = 0x7C00
F16_NINF = 0xFC00
F16_MAX = 0x7BFF  # 65504


# ----------------------------------------------------------------------- conversions
def as_u16(x) -> np.ndarray:
    """Bits of an FP16 array (accepts float16 or uint16)."""
    x = np.asarray(x)
    return x.view(np.uint16) if x.dtype == np.float16 else x.astype(np.uint16, copy=False)


def _f32_table() -> np.ndarray:
    b = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    b = np.where((b & 0x7C00) == 0, b & 0x8000, b).astype(np.uint16)
    return b.view(np.float16).astype(np.float32)


_F32 = _f32_table()


def f32(bits) -> np.ndarray:
    """FP16 bits -> FP32 values, flushing subnormal inputs to signed zero (a 65,536-entry table)."""
    return _F32[as_u16(bits)]


def rne16_reference(x) -> np.ndarray:
    """rne16 spelled out on the bit fields: the definition (rne16 below is a faster equal)."""
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.int64)
    sign = (u >> 16) & 0x8000
    e = (u >> 23) & 0xFF
    m = u & 0x7FFFFF
    lsb = (m >> 13) & 1
    mr = m + 0x0FFF + lsb
    e2 = e + (mr >> 23)
    mr = (mr >> 13) & 0x3FF
    eh = e2 - 127 + 15
    out = sign | (np.clip(eh, 0, 31) << 10) | mr
    out = np.where(eh <= 0, sign, out)
    out = np.where(eh >= 31, sign | F16_INF, out)
    out = np.where(e == 255, np.where(m != 0, F16_NAN, sign | F16_INF), out)
    return out.astype(np.uint16)


# Below this magnitude rne16 gives zero: the value rounds (with an unbounded exponent) to at most
# 2^-14 - 2^-25, which is then flushed. From it upwards the result is >= 2^-14, where IEEE
# conversion (numpy's astype) rounds the same way.
_FLUSH_BELOW = np.float32(2.0 ** -14 - 2.0 ** -26)


def rne16(x) -> np.ndarray:
    """FP32 values -> FP16 bits: round to nearest even, then flush, saturate to inf, canonical NaN.

    Equal to rne16_reference on every input (tests/test_numerics.py); built on numpy's IEEE
    conversion, with the flush and the NaN pattern fixed up."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x.astype(np.float16).view(np.uint16)
    small = np.abs(x) < _FLUSH_BELOW
    if small.any():
        h = np.where(small, (x.view(np.uint32) >> 16).astype(np.uint16) & 0x8000, h)
    nan = np.isnan(x)
    if nan.any():
        h = np.where(nan, np.uint16(F16_NAN), h)
    return h.astype(np.uint16, copy=False)


def to_f16_bits(x) -> np.ndarray:
    """Python/numpy floats -> FP16 bits under the same rule (via FP32)."""
    return rne16(np.asarray(x, dtype=np.float32))


def from_f16_bits(bits) -> np.ndarray:
    """FP16 bits -> float32, for reading results (no flush needed: results are never subnormal)."""
    return as_u16(bits).view(np.float16).astype(np.float32)


# ----------------------------------------------------------------------- dot products
# docs/numerics.md, "Dot products": each tile's exact products aligned to its largest exponent
# and truncated toward zero ALIGN_GUARD bits below that product's significand, summed exactly;
# the tile sums (and a bias) accumulated exactly in fixed point; one rounding to binary32.
ALIGN_GUARD = 8  # G: bits kept below the largest product's 22-bit significand
ACC_LSB = -56  # the accumulator's unit: 2^-56 (a product's lowest bit is 2^-48, less G)
K_MAX = 1 << 16  # longest dot product the accumulator holds without overflow
ACC_BITS = 106  # the accumulator: |A| < K_MAX 2^(30 + 58) + 2^72 <= 2^105, two's complement


def _fields(bits):
    """FP16 bits (flushed) -> (sign, 11-bit significand or 0, exponent field, is NaN, is inf, is zero)."""
    b = as_u16(bits).astype(np.int64)
    s = (b >> 15) & 1
    e = (b >> 10) & 0x1F
    f = b & 0x3FF
    normal = (e > 0) & (e < 31)
    m = np.where(normal, f | 0x400, 0)
    return s, m, e, (e == 31) & (f != 0), (e == 31) & (f == 0), e == 0


def dot_tiles(x, w, width: int):
    """The tile sums of sum_k x_k w_k over the last axis of FP16 bits x, w (broadcast):
    (T (..., tiles) int64, emax (..., tiles) int64, nan, +inf, -inf (...) bool).

    Tile t holds k = t*width .. t*width + width - 1 (padded with +0). A product of significands
    P = mx mw with exponent field sum E (E = 0 for a zero product) is worth P 2^(E - 50); the
    tile's sum T is worth T 2^(emax - 50 - G)."""
    x, w = np.broadcast_arrays(as_u16(x), as_u16(w))
    K = x.shape[-1]
    tiles = max(1, -(-K // width))
    if tiles * width != K:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, tiles * width - K)]
        x, w = np.pad(x, pad), np.pad(w, pad)
    shape = x.shape[:-1] + (tiles, width)
    sx, mx, ex, nx_, ix, zx = (v.reshape(shape) for v in _fields(x))
    sw, mw, ew, nw, iw, zw = (v.reshape(shape) for v in _fields(w))
    P = mx * mw
    E = np.where(P != 0, ex + ew, 0)
    emax = E.max(axis=-1)
    d = emax[..., None] - E
    a = np.where(d < 22 + ALIGN_GUARD, (P << ALIGN_GUARD) >> np.minimum(d, 31), 0)
    neg = (sx ^ sw) == 1
    T = np.where(neg, -a, a).sum(axis=-1)
    nan = nx_ | nw | (ix & zw) | (zx & iw)
    inf = (ix | iw) & ~nan
    return T, emax, nan.any(axis=(-2, -1)), (inf & ~neg).any(axis=(-2, -1)), (inf & neg).any(axis=(-2, -1))


def _round_f32(A: int) -> float:
    """An integer count of 2^ACC_LSB -> the nearest binary32 (ties to even); 0 -> +0."""
    if A == 0:
        return 0.0
    a = abs(A)
    sh = max(0, a.bit_length() - 24)
    q = a >> sh
    r = a - (q << sh)
    if sh and (r > 1 << (sh - 1) or (r == 1 << (sh - 1) and q & 1)):
        q += 1
    v = math.ldexp(q, sh + ACC_LSB)
    return -v if A < 0 else v


_round_f32_v = np.frompyfunc(_round_f32, 1, 1)


def dot_exact(x, w, width: int, bias=None) -> np.ndarray:
    """sum_k x_k w_k (+ bias) over the last axis of FP16 bits (broadcast) as the hardware does it
    (docs/numerics.md, "Dot products"), as binary32. bias: FP16 bits of the leading shape, or None."""
    T, emax, nan, pinf, ninf = dot_tiles(x, w, width)
    if T.shape[-1] > K_MAX // width:
        raise ValueError(f"a dot product of more than {K_MAX} terms overflows the accumulator")
    sh = np.maximum(emax - 2, 0)  # a tile's unit 2^(emax - 58) in units of 2^ACC_LSB
    A = (T.astype(object) << sh.astype(object)).sum(axis=-1)
    if bias is not None:
        sb, mb, eb, nb, ib, _ = _fields(np.broadcast_to(as_u16(bias), np.shape(A)))  # A: an int for 1-D x, w
        B = (mb.astype(object) << (eb + 31).astype(object))  # m 2^(e - 25) in units of 2^-56
        A = A + np.where(sb == 1, -1, 1).astype(object) * B  # (np.where would make a Python int an int64)
        nan, pinf, ninf = nan | nb, pinf | (ib & (sb == 0)), ninf | (ib & (sb == 1))
    y = np.asarray(_round_f32_v(A), dtype=np.float64).astype(np.float32).reshape(np.shape(A))
    y = np.where(pinf, np.float32(np.inf), y)
    y = np.where(ninf, np.float32(-np.inf), y)
    return np.where(nan | (pinf & ninf), np.float32(np.nan), y).astype(np.float32)


def block_sum(a, width: int, square: bool = False) -> np.ndarray:
    """The vector unit's vsum (sum of a) or vsumsq (sum of a * a) over the last axis of FP16 bits:
    the dot product of a with ones (or with a itself), in tiles of `width`."""
    a = as_u16(a)
    return dot_exact(a, a if square else np.uint16(0x3C00), width)


def max16(a, b) -> np.ndarray:
    """The comparator of the max trees: NaN if either is NaN, else b if b > a, else a."""
    a, b = as_u16(a), as_u16(b)
    fa, fb = f32(a), f32(b)
    nan = np.isnan(fa) | np.isnan(fb)
    r = np.where(fb > fa, b, a)
    return np.where(nan, np.uint16(F16_NAN), r).astype(np.uint16)


def chunked_max(a, width: int) -> np.ndarray:
    """Row maximum of FP16 bits: `width`-wide comparator trees (padded with -inf), then in order."""
    a = as_u16(a)
    n = a.shape[-1]
    chunks = max(1, -(-n // width))
    if chunks * width != n:
        pad = np.full(a.shape[:-1] + (chunks * width - n,), F16_NINF, np.uint16)
        a = np.concatenate([a, pad], axis=-1)
    a = a.reshape(a.shape[:-1] + (chunks, width))
    while a.shape[-1] > 1:
        a = max16(a[..., 0::2], a[..., 1::2])
    a = a[..., 0]
    acc = a[..., 0]
    for t in range(1, chunks):
        acc = max16(acc, a[..., t])
    return acc


def argmax16(a) -> tuple[int, int]:
    """Index and bits of the first maximum of a 1-D FP16 vector; NaNs never win."""
    v = f32(a).astype(np.float64)
    v[np.isnan(v)] = -np.inf
    i = int(np.argmax(v))
    return i, int(as_u16(a)[i])


# ----------------------------------------------------------------------- element-wise
def add16(a, b) -> np.ndarray:
    return rne16(f32(a) + f32(b))


def sub16(a, b) -> np.ndarray:
    return rne16(f32(a) - f32(b))


def mul16(a, b) -> np.ndarray:
    return rne16(f32(a) * f32(b))


def scale32(acc: np.ndarray, scale_bits: int) -> np.ndarray:
    """Multiply an FP32 sum by an FP16 scale (bits); 0 means no scaling."""
    if scale_bits == 0:
        return acc
    return (acc * f32(np.uint16(scale_bits))).astype(np.float32)


# ----------------------------------------------------------------------- the matrix unit
def matmul_exact(x, w, width: int, bias=None, scale_bits: int = 0) -> np.ndarray:
    """The matrix unit: x (M, K) FP16 bits times w (K, N) FP16 bits (+ bias, N FP16 bits) ->
    FP32, each output dot_exact in k-tiles of `width`, then times the FP16 scale (0 = none).
    This is the readable reference; sim/_exact.c is a compiled equal."""
    x, w = as_u16(x), as_u16(w)
    acc = dot_exact(x[:, None, :], w.T[None, :, :], width,
                    None if bias is None else as_u16(bias)[None, :])
    return scale32(acc, scale_bits)


def matmul_exact_f32(xf: np.ndarray, wf: np.ndarray, width: int) -> np.ndarray:
    """matmul_exact of FP32 operands that hold exact FP16 values (the simulator's form)."""
    with np.errstate(over="ignore"):
        x, w = (np.asarray(a, np.float32).astype(np.float16) for a in (xf, wf))
    return matmul_exact(x, w, width)


# ----------------------------------------------------------------------- table functions
GELU_LO, GELU_HI, GELU_SAMPLES = -8.0, 8.0, 2048
LOG2E_F32 = np.float32(1.4426950408889634)
EXP_SEGMENTS = 64


@functools.lru_cache(maxsize=None)
def gelu_tables() -> tuple[np.ndarray, np.ndarray]:
    """G[j] = fp32(gelu_tanh(-8 + j/128)), j = 0..2048; D[j] = fp32(G[j+1] - G[j])."""
    xs = GELU_LO + np.arange(GELU_SAMPLES + 1, dtype=np.float64) * ((GELU_HI - GELU_LO) / GELU_SAMPLES)
    g = 0.5 * xs * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (xs + 0.044715 * xs ** 3)))
    G = g.astype(np.float32)
    D = (G[1:] - G[:-1]).astype(np.float32)
    return G, D


@functools.lru_cache(maxsize=None)
def exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """T[i] = fp32(2^(i/64)); S[i] = fp32(64 * (2^((i+1)/64) - 2^(i/64))), i = 0..63."""
    i = np.arange(EXP_SEGMENTS + 1, dtype=np.float64)
    t = np.exp2(i / EXP_SEGMENTS)
    return t[:-1].astype(np.float32), ((t[1:] - t[:-1]) * EXP_SEGMENTS).astype(np.float32)


def gelu_alg(bits) -> np.ndarray:
    """GELU as a 2,048-segment piecewise-linear table over [-8, 8] (DFX's SFU)."""
    G, D = gelu_tables()
    x = f32(bits)
    with np.errstate(invalid="ignore"):
        u = (x + np.float32(8.0)) * np.float32(GELU_SAMPLES / (GELU_HI - GELU_LO))
        inside = (x > np.float32(GELU_LO)) & (x < np.float32(GELU_HI))
        uc = np.where(inside, u, np.float32(0.0))
        i = np.floor(uc).astype(np.int64)
        f = (uc - i.astype(np.float32)).astype(np.float32)
        y = G[i] + (f * D[i]).astype(np.float32)
    y = np.where(x >= np.float32(GELU_HI), x, y)
    y = np.where(x <= np.float32(GELU_LO), np.float32(0.0), y)
    y = np.where(np.isnan(x), np.float32(np.nan), y)
    return rne16(y.astype(np.float32))


def exp_alg(bits) -> np.ndarray:
    """exp(x) = 2^(x log2 e): split t into n + f, 64-segment linear table for 2^f, scale by 2^n."""
    T, S = exp_tables()
    x = f32(bits)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (x * LOG2E_F32).astype(np.float32)
        big = t >= np.float32(16.0)
        small = t < np.float32(-25.0)
        tc = np.where(big | small | np.isnan(t), np.float32(0.0), t)
        n = np.floor(tc)
        f = (tc - n).astype(np.float32)
        i = np.floor(f * np.float32(EXP_SEGMENTS)).astype(np.int64)
        r = (f - (i.astype(np.float32) / np.float32(EXP_SEGMENTS))).astype(np.float32)
        p = (T[i] + (r * S[i]).astype(np.float32)).astype(np.float32)
        y = np.ldexp(p, n.astype(np.int32)).astype(np.float32)
    y = np.where(big, np.float32(np.inf), y)
    y = np.where(small, np.float32(0.0), y)
    y = np.where(np.isnan(x), np.float32(np.nan), y)
    return rne16(y)


def _rne_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Round num/den to the nearest integer, ties to even (positive int64 arrays)."""
    q, r = np.divmod(num, den)
    up = (2 * r > den) | ((2 * r == den) & (q & 1 == 1))
    return q + up


@functools.lru_cache(maxsize=None)
def recip_table() -> np.ndarray:
    """R[m] for m = 1..1023: 11-bit significand rne(2^21 / (1024 + m)) of 2/(1.m), in 1024..2047."""
    m = np.arange(1024, dtype=np.int64)
    r = _rne_div(np.full(1024, 1 << 21, np.int64), 1024 + m)
    r[0] = 2048  # m = 0 is an exact power of two, handled separately
    return r


@functools.lru_cache(maxsize=None)
def rsqrt_table() -> np.ndarray:
    """Q[a - 1024] for a = 1024..4095 (a = 1.m * 1024, doubled for odd exponents):
    the 11-bit significand rne(2^16 / sqrt(a)); 2048 at a = 1024, else 1024..2047."""
    a = np.arange(1024, 4096, dtype=np.int64)
    # q = floor(2^17 / sqrt(a)) exactly, by integer square root: one guard bit below the significand.
    q = np.array([math.isqrt(int(v)) for v in (1 << 34) // a], dtype=np.int64)
    exact = q * q * a == (1 << 34)
    half = q & 1
    s = q >> 1
    up = (half == 1) & ((~exact) | (s & 1 == 1))
    return s + up


def _pack16(sign, exp_unbiased, sig11) -> np.ndarray:
    """Pack sign (0/0x8000), an unbiased exponent and an 11-bit significand (1024..2047)."""
    eh = exp_unbiased + 15
    out = sign | (np.clip(eh, 0, 31) << 10) | (sig11 & 0x3FF)
    out = np.where(eh <= 0, sign, out)
    out = np.where(eh >= 31, sign | F16_INF, out)
    return out


def recip_alg(bits) -> np.ndarray:
    """1/x correctly rounded to FP16 (then flushed). ±0 gives ±65504 (saturated, see numerics.md)."""
    b = as_u16(bits).astype(np.int64)
    sign = b & 0x8000
    e = (b >> 10) & 0x1F
    m = b & 0x3FF
    R = recip_table()
    exp_u = e - 15
    # m == 0: 1/2^e = 2^-e; else 2/(1.m) in (1,2) -> 1/x = (R/1024) * 2^(-e-1)
    sig = np.where(m == 0, 1024, R[m])
    ex = np.where(m == 0, -exp_u, -exp_u - 1)
    out = _pack16(sign, ex, sig)
    zero = e == 0  # zero or flushed subnormal
    out = np.where(zero, sign | F16_MAX, out)
    out = np.where((e == 31) & (m == 0), sign, out)
    out = np.where((e == 31) & (m != 0), F16_NAN, out)
    return out.astype(np.uint16)


def rsqrt_alg(bits) -> np.ndarray:
    """1/sqrt(x) correctly rounded to FP16. +0 and -0 give +65504; negatives give NaN."""
    b = as_u16(bits).astype(np.int64)
    sign = b & 0x8000
    e = (b >> 10) & 0x1F
    m = b & 0x3FF
    exp_u = e - 15
    odd = exp_u & 1
    a = (1024 + m) << odd  # x = a/1024 * 2^(exp_u - odd), exp_u - odd even
    half_e = (exp_u - odd) >> 1
    Q = rsqrt_table()
    s = Q[np.clip(a, 1024, 4095) - 1024]  # rne(2^16/sqrt(a))
    # 1/sqrt(x) = 32/sqrt(a) * 2^-half_e = (s/2048) * 2^-half_e = (s/1024) * 2^(-half_e-1)
    carry = s >= 2048
    sig = np.where(carry, 1024, s)
    ex = np.where(carry, -half_e, -half_e - 1)
    out = _pack16(0, ex, sig)
    zero = e == 0
    out = np.where(zero, F16_MAX, out)
    out = np.where((e == 31) & (m == 0), 0, out)
    out = np.where((sign != 0) & ~zero, F16_NAN, out)
    out = np.where((e == 31) & (m != 0), F16_NAN, out)
    return out.astype(np.uint16)


ALL16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


@functools.lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """A 65,536-entry FP16 -> FP16 table of one function, built from its algorithm above."""
    return {"gelu": gelu_alg, "exp": exp_alg, "recip": recip_alg, "rsqrt": rsqrt_alg}[name](ALL16)


def gelu16(bits) -> np.ndarray:
    return lut("gelu")[as_u16(bits)]


def exp16(bits) -> np.ndarray:
    return lut("exp")[as_u16(bits)]


def recip16(bits) -> np.ndarray:
    return lut("recip")[as_u16(bits)]


def rsqrt16(bits) -> np.ndarray:
    return lut("rsqrt")[as_u16(bits)]
