/* Compiled equal of dfx.sim.numerics' dot products and of the units around them.
 *
 * Dot products (docs/numerics.md, "Dot products"; numerics.dot_exact): the matrix unit's outputs
 * (mm_exact, a compiled numerics.matmul_exact without the scale) and the vector unit's vsum and
 * vsumsq (numerics.block_sum). Each tile of `width` exact products is aligned to its largest
 * exponent and truncated toward zero ALIGN_GUARD bits below it, summed exactly in an int64; the
 * tile sums (and a bias) accumulate exactly in an __int128 in units of 2^ACC_LSB; one rounding
 * to binary32, to nearest even, done by hand on the integer (acc_f32).
 *
 * Also the precompiled interpreter's kernels (dfx.sim.plan): one vector-unit instruction
 * (vec) and the matrix unit's output stage (mm_out), computed on the buffer in place with
 * the rules of dfx.sim.numerics (rne16, max16, block_sum, chunked_max, argmax16).
 * tests/test_plan.py checks them against the reference interpreter (dfx.sim.core) op by op.
 * Built with -ffp-contract=off and without fast-math, so every binary32 add and multiply is one
 * IEEE operation rounded to nearest even, as numpy does it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define API 2         /* the arithmetic and signatures of this file: dfx.sim.kernels refuses an older build */
#define NB 16         /* mm_exact's columns in one vector pass (a multiple of 8) */
#define NBIG 256      /* mm_exact's block of output columns (a multiple of NB) */
#define MAXW 1024     /* widest matrix tile */
#define ALIGN_GUARD 8 /* numerics.ALIGN_GUARD */
#define ACC_LSB (-56) /* numerics.ACC_LSB */
#define K_MAX 65536   /* numerics.K_MAX */

/* ------------------------------------------------------------------ FP16 rules */
#define F16_NAN 0x7E00u
#define F16_INF 0x7C00u
#define F16_NINF 0xFC00u
#define MAXV 4096 /* widest vector / lane tree handled here (the plan falls back beyond) */

/* numerics.rne16_reference on one value: round to 11 bits (nearest even, unbounded exponent),
 * flush below 2^-14 to a signed zero, saturate to infinity, one NaN pattern. */
static inline uint16_t rne16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, e = (u >> 23) & 0xFFu, m = u & 0x7FFFFFu;
    uint32_t mr = m + 0x0FFFu + ((m >> 13) & 1u);
    int32_t eh = (int32_t)(e + (mr >> 23)) - 127 + 15;
    /* selects rather than branches, so that loops over it vectorise */
    uint32_t inf = sign | F16_INF, special = m != 0 ? F16_NAN : inf;
    uint32_t r = sign | (((uint32_t)eh & 31u) << 10) | ((mr >> 13) & 0x3FFu);
    r = eh <= 0 ? sign : r;
    r = eh >= 31 ? inf : r;
    r = e == 255 ? special : r;
    return (uint16_t)r;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* numerics.max16 with tab = numerics._F32 (the FP16 -> FP32 table that flushes subnormals) */
static inline uint16_t max16(const float *tab, uint16_t a, uint16_t b) {
    float fa = tab[a], fb = tab[b];
    if (fa != fa || fb != fb) return F16_NAN;
    return fb > fa ? b : a;
}

/* numerics.chunked_max of n values: `width`-wide trees padded with -inf, then in order */
static uint16_t chunked_max(const float *tab, const uint16_t *v, Py_ssize_t n, Py_ssize_t width, uint16_t *t) {
    uint16_t acc = 0;
    for (Py_ssize_t c0 = 0; c0 < n || c0 == 0; c0 += width) {
        for (Py_ssize_t j = 0; j < width; j++) t[j] = c0 + j < n ? v[c0 + j] : F16_NINF;
        for (Py_ssize_t h = width / 2; h >= 1; h /= 2)
            for (Py_ssize_t j = 0; j < h; j++) t[j] = max16(tab, t[2 * j], t[2 * j + 1]);
        acc = c0 == 0 ? t[0] : max16(tab, acc, t[0]);
    }
    return acc;
}

/* ------------------------------------------------------------------ dot products
 * docs/numerics.md, "Dot products"; numerics.dot_tiles and dot_exact. An FP16 operand (flushed)
 * is a sign, an exponent field e and a significand m (1024 + fraction, 0 for a zero); a product is
 * +-P 2^(E - 50) with P = mx mw (22 bits) and E = ex + ew (E = 0 for a zero product). In tile t,
 * emax = max E and S = sum of +-floor(P 2^G / 2^(emax - E)) is worth S 2^(emax - 58): the
 * accumulator, in units of 2^ACC_LSB, adds S << (emax - 2). */

typedef struct {
    __int128 acc; /* units of 2^ACC_LSB */
    int nan, pinf, ninf;
} Dot;

/* numerics._round_f32: A units of 2^ACC_LSB -> the nearest binary32, ties to even; 0 -> +0.
 * |A| < 2^105, so the result is a normal number: never subnormal, never infinite. */
static float acc_f32(__int128 A) {
    if (A == 0) return 0.0f;
    uint32_t sign = A < 0 ? 0x80000000u : 0u;
    unsigned __int128 a = A < 0 ? -(unsigned __int128)A : (unsigned __int128)A;
    uint64_t hi = (uint64_t)(a >> 64), lo = (uint64_t)a;
    int bl = hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll(lo); /* bit length */
    int e = bl - 1 + ACC_LSB;                                            /* exponent of the leading bit */
    uint32_t q;                                                          /* 24-bit significand */
    if (bl <= 24) {
        q = (uint32_t)lo << (24 - bl);
    } else {
        int sh = bl - 24;
        unsigned __int128 half = (unsigned __int128)1 << (sh - 1), r = a & ((half << 1) - 1);
        q = (uint32_t)(a >> sh);
        if (r > half || (r == half && (q & 1u))) q++;
        if (q == 1u << 24) { q >>= 1; e++; }
    }
    return bits_f32(sign | (uint32_t)(e + 127) << 23 | (q & 0x7FFFFFu));
}

/* step 6: NaN if a product (or the bias) is NaN or infinities of both signs meet */
static float dot_result(const Dot *d) {
    if (d->nan || (d->pinf && d->ninf)) return bits_f32(0x7FC00000u);
    if (d->pinf) return INFINITY;
    if (d->ninf) return -INFINITY;
    return acc_f32(d->acc);
}

enum { C_FIN, C_ZERO, C_INF, C_NAN }; /* an FP16 operand's class; C_ZERO includes flushed subnormals */

static inline int cls16(uint32_t u) {
    uint32_t e = (u >> 10) & 31u;
    return e == 31 ? ((u & 0x3FFu) ? C_NAN : C_INF) : e == 0 ? C_ZERO : C_FIN;
}

/* a product's special case: NaN when an operand is NaN or it is inf x 0, else an infinity of
 * its sign when an operand is infinite (its finite part is 0: m = 0 for e = 31) */
static inline void dot_special(Dot *d, int cx, int cw, int neg) {
    if (cx == C_NAN || cw == C_NAN || (cx == C_INF && cw == C_ZERO) || (cx == C_ZERO && cw == C_INF))
        d->nan = 1;
    else if (cx == C_INF || cw == C_INF) {
        if (neg) d->ninf = 1;
        else d->pinf = 1;
    }
}

/* the matrix unit's bias, FP16 bits b, in the accumulator: +-m 2^(e - 25) = m << (e + 31) units */
static inline void dot_bias(Dot *d, uint32_t b) {
    int c = cls16(b);
    if (c == C_NAN) d->nan = 1;
    else if (c == C_INF) dot_special(d, C_INF, C_FIN, (b >> 15) & 1);
    else if (c == C_FIN) {
        __int128 B = (__int128)(1024 | (b & 0x3FFu)) << (((b >> 10) & 31u) + 31);
        d->acc += (b & 0x8000u) ? -B : B;
    }
}

/* FP32 bits holding an exact FP16 value -> the FP16 bits, a subnormal flushed to a signed zero
 * (FP32 exponents 143 .. 254 hold no FP16 value: read as infinities) */
static inline uint32_t f16_of_f32(uint32_t u) {
    uint32_t s = (u >> 16) & 0x8000u, e = (u >> 23) & 0xFFu, f = u & 0x7FFFFFu;
    if (e == 255) return s | F16_INF | (f ? 0x200u : 0u);
    if (e > 142) return s | F16_INF;
    if (e <= 112) return s;
    return s | (e - 112) << 10 | f >> 13;
}

/* numerics.block_sum of n FP16 values a: the dot product of a with 1.0 (square = 0) or with
 * itself (square = 1), in tiles of `width` (the last one padded with +0 products). P and E: room
 * for `width` int32 each. */
static float block_sum16(const uint16_t *a, Py_ssize_t n, Py_ssize_t width, int square, int32_t *P, int32_t *E) {
    Dot d = {0, 0, 0, 0};
    for (Py_ssize_t c0 = 0; c0 < n; c0 += width) {
        Py_ssize_t w = n - c0 < width ? n - c0 : width;
        int32_t emax = 0;
        for (Py_ssize_t j = 0; j < w; j++) {
            uint32_t u = a[c0 + j];
            int32_t e = (u >> 10) & 31, m = (e == 0 || e == 31) ? 0 : 1024 | (int32_t)(u & 0x3FFu);
            int32_t p = square ? m * m : m << 10, neg = !square && (u & 0x8000u);
            E[j] = p ? (square ? 2 * e : e + 15) : 0; /* 1.0 is m = 1024, e = 15 */
            P[j] = neg ? -p : p;
            emax = E[j] > emax ? E[j] : emax;
            if (e == 31) dot_special(&d, cls16(u), square ? cls16(u) : C_FIN, neg);
        }
        int64_t S = 0;
        for (Py_ssize_t j = 0; j < w; j++) {
            int32_t dd = emax - E[j], p = P[j], mag = (p < 0 ? -p : p) << ALIGN_GUARD;
            int32_t t = mag >> (dd < 31 ? dd : 31); /* 0 once dd >= 22 + G */
            S += p < 0 ? -t : t;
        }
        if (S) d.acc += (__int128)S << (emax - 2);
    }
    return dot_result(&d);
}

/* mm_exact's tile kernel, on NBIG output columns at once. Two equal implementations: the portable
 * one below, one column at a time; and on x86-64 with AVX2 (chosen when the module loads; see
 * simd()), the same steps in 256-bit vectors on NB columns at once. tests/test_numerics.py checks
 * both against numerics.matmul_exact. */
#define NO_EXP (-1024) /* the exponent of a zero (or special) operand: its products never win emax */

/* An FP32 operand holding an FP16 value as the tile sums read it: the value if it is normal in
 * FP16, else 0 (zeros, flushed subnormals and specials have no finite part), and its FP32
 * exponent field (e + 112), else NO_EXP. Returns whether it is an infinity or a NaN. */
static inline int mm_operand(uint32_t u, uint32_t *v, int32_t *e32) {
    int32_t e = (u >> 23) & 0xFF, ok = e > 112 && e <= 142;
    *v = ok ? u : 0u;
    *e32 = ok ? e : NO_EXP;
    return e > 142;
}

/* The tile k0 .. k0 + width - 1 of the columns n0 .. n0 + nb - 1 (nb <= NBIG) for every row, added
 * to A (M x NBIG): per row and column, emax = max (ex + ew - 224) over the tile's nonzero products
 * (E = ex + ew in FP16 exponent fields, 224 = 2 x 112); each product x w (exact in FP32) times
 * 2^(58 - emax) (exact: a power of two, and nothing underflows) truncated toward zero to an int32
 * is floor(P 2^G / 2^(emax - E)) with the product's sign; their int64 sum S; A += S << (emax - 2).
 * xv, xe: the rows' operands (mm_operand; row stride Kp, zero past K). wv, we: room for
 * width x NBIG, laid out as blocks of width x NB; spec[j] |= column j holds an infinity or a NaN. */
typedef void (*mm_tile_fn)(const uint32_t *w, Py_ssize_t K, Py_ssize_t N, Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t k0,
                           Py_ssize_t width, const uint32_t *xv, const int32_t *xe, Py_ssize_t Kp, Py_ssize_t M,
                           uint32_t *wv, int32_t *we, int32_t *spec, __int128 *A);

/* w[k][n0 + j] as mm_operand reads it into its place in wv, we (0 past K and past nb) */
static inline void mm_wput(const uint32_t *w, Py_ssize_t K, Py_ssize_t N, Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t k0,
                           Py_ssize_t width, Py_ssize_t kk, Py_ssize_t j, uint32_t *wv, int32_t *we, int32_t *spec) {
    Py_ssize_t k = k0 + kk, at = (j / NB) * width * NB + kk * NB + j % NB;
    spec[j] |= mm_operand(k < K && j < nb ? w[k * N + n0 + j] : 0u, wv + at, we + at);
}

static void mm_tile_portable(const uint32_t *w, Py_ssize_t K, Py_ssize_t N, Py_ssize_t n0, Py_ssize_t nb,
                             Py_ssize_t k0, Py_ssize_t width, const uint32_t *xv, const int32_t *xe, Py_ssize_t Kp,
                             Py_ssize_t M, uint32_t *wv, int32_t *we, int32_t *spec, __int128 *A) {
    Py_ssize_t nbr = (nb + NB - 1) / NB * NB;
    for (Py_ssize_t kk = 0; kk < width; kk++)
        for (Py_ssize_t j = 0; j < nbr; j++) mm_wput(w, K, N, n0, nb, k0, width, kk, j, wv, we, spec);
    for (Py_ssize_t j = 0; j < nb; j++) {
        const uint32_t *wvj = wv + (j / NB) * width * NB + j % NB;
        const int32_t *wej = we + (j / NB) * width * NB + j % NB;
        for (Py_ssize_t i = 0; i < M; i++) {
            const uint32_t *xr = xv + i * Kp + k0;
            const int32_t *xq = xe + i * Kp + k0;
            int32_t emax = INT32_MIN;
            for (Py_ssize_t kk = 0; kk < width; kk++) {
                int32_t E = xq[kk] + wej[kk * NB];
                emax = E > emax ? E : emax;
            }
            emax -= 224;
            if (emax <= 0) continue; /* no nonzero product */
            float sc = bits_f32((uint32_t)(185 - emax) << 23); /* 2^(58 - emax) */
            int64_t S = 0;
            for (Py_ssize_t kk = 0; kk < width; kk++)
                S += (int32_t)((bits_f32(xr[kk]) * bits_f32(wvj[kk * NB])) * sc);
            if (S) A[i * NBIG + j] += (__int128)S << (emax - 2);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2 1
#define AVX2 __attribute__((target("avx2")))

/* w operands of 8 columns as mm_operand reads them; *spec |= their infinities and NaNs */
AVX2 static inline void mm_operand8(__m256i u, uint32_t *v, int32_t *e32, __m256i *spec) {
    __m256i e = _mm256_and_si256(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(0xFF));
    __m256i big = _mm256_cmpgt_epi32(e, _mm256_set1_epi32(142));
    __m256i ok = _mm256_andnot_si256(big, _mm256_cmpgt_epi32(e, _mm256_set1_epi32(112)));
    *spec = _mm256_or_si256(*spec, big);
    _mm256_store_si256((__m256i *)v, _mm256_and_si256(u, ok));
    _mm256_store_si256((__m256i *)e32, _mm256_blendv_epi8(_mm256_set1_epi32(NO_EXP), e, ok));
}

/* one block of NB columns for every row (wv, we: its width x NB operands; A: row stride NBIG) */
AVX2 static inline void mm_block_avx2(Py_ssize_t k0, Py_ssize_t width, const uint32_t *xv, const int32_t *xe,
                                      Py_ssize_t Kp, Py_ssize_t M, const uint32_t *wv, const int32_t *we, __int128 *A) {
    const __m256i one = _mm256_set1_epi32(0x3F800000), c224 = _mm256_set1_epi32(224), c185 = _mm256_set1_epi32(185);
    for (Py_ssize_t i = 0; i < M; i++) {
        const uint32_t *xr = xv + i * Kp + k0;
        const int32_t *xq = xe + i * Kp + k0;
        __m256i m0 = _mm256_set1_epi32(INT32_MIN), m1 = m0;
        for (Py_ssize_t kk = 0; kk < width; kk++) {
            __m256i q = _mm256_set1_epi32(xq[kk]);
            m0 = _mm256_max_epi32(m0, _mm256_add_epi32(q, _mm256_load_si256((const __m256i *)(we + kk * NB))));
            m1 = _mm256_max_epi32(m1, _mm256_add_epi32(q, _mm256_load_si256((const __m256i *)(we + kk * NB + 8))));
        }
        m0 = _mm256_sub_epi32(m0, c224);
        m1 = _mm256_sub_epi32(m1, c224);
        __m256i z = _mm256_setzero_si256(), some0 = _mm256_cmpgt_epi32(m0, z), some1 = _mm256_cmpgt_epi32(m1, z);
        __m256i some = _mm256_or_si256(some0, some1);
        if (_mm256_testz_si256(some, some)) continue; /* no nonzero product */
        /* 2^(58 - emax) where there are nonzero products, else 1 (all products are 0) */
        __m256i pw0 = _mm256_slli_epi32(_mm256_sub_epi32(c185, m0), 23);
        __m256i pw1 = _mm256_slli_epi32(_mm256_sub_epi32(c185, m1), 23);
        __m256 sc0 = _mm256_castsi256_ps(_mm256_blendv_epi8(one, pw0, some0));
        __m256 sc1 = _mm256_castsi256_ps(_mm256_blendv_epi8(one, pw1, some1));
        __m256i S0 = _mm256_setzero_si256(), S1 = S0, S2 = S0, S3 = S0;
        for (Py_ssize_t kk = 0; kk < width; kk += 2) { /* two products at a time: |a| < 2^30, so a sum fits int32 */
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            for (Py_ssize_t h = kk; h < kk + 2 && h < width; h++) {
                __m256 xk = _mm256_castsi256_ps(_mm256_set1_epi32((int)xr[h]));
                __m256 p0 = _mm256_mul_ps(_mm256_mul_ps(xk, _mm256_load_ps((const float *)(wv + h * NB))), sc0);
                __m256 p1 = _mm256_mul_ps(_mm256_mul_ps(xk, _mm256_load_ps((const float *)(wv + h * NB + 8))), sc1);
                a0 = _mm256_add_epi32(a0, _mm256_cvttps_epi32(p0));
                a1 = _mm256_add_epi32(a1, _mm256_cvttps_epi32(p1));
            }
            S0 = _mm256_add_epi64(S0, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(a0)));
            S1 = _mm256_add_epi64(S1, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a0, 1)));
            S2 = _mm256_add_epi64(S2, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(a1)));
            S3 = _mm256_add_epi64(S3, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a1, 1)));
        }
        int64_t S[NB];
        int32_t emax[NB];
        _mm256_storeu_si256((__m256i *)S, S0);
        _mm256_storeu_si256((__m256i *)(S + 4), S1);
        _mm256_storeu_si256((__m256i *)(S + 8), S2);
        _mm256_storeu_si256((__m256i *)(S + 12), S3);
        _mm256_storeu_si256((__m256i *)emax, m0);
        _mm256_storeu_si256((__m256i *)(emax + 8), m1);
        __int128 *a = A + i * NBIG;
        for (int j = 0; j < NB; j++)
            if (S[j]) a[j] += (__int128)S[j] << (emax[j] - 2);
    }
}

AVX2 static void mm_tile_avx2(const uint32_t *w, Py_ssize_t K, Py_ssize_t N, Py_ssize_t n0, Py_ssize_t nb,
                              Py_ssize_t k0, Py_ssize_t width, const uint32_t *xv, const int32_t *xe, Py_ssize_t Kp,
                              Py_ssize_t M, uint32_t *wv, int32_t *we, int32_t *spec, __int128 *A) {
    Py_ssize_t full = nb / 8 * 8, nbr = (nb + NB - 1) / NB * NB; /* columns read 8 at once, the rest one by one */
    __m256i sp[NBIG / 8];
    for (Py_ssize_t j = 0; j < full; j += 8) sp[j / 8] = _mm256_setzero_si256();
    for (Py_ssize_t kk = 0; kk < width; kk++) { /* row by row: each reads nb contiguous words of w */
        const uint32_t *wr = w + (k0 + kk < K ? (k0 + kk) * N + n0 : 0);
        for (Py_ssize_t j = 0; j < full; j += 8) {
            Py_ssize_t at = (j / NB) * width * NB + kk * NB + j % NB;
            __m256i u = k0 + kk < K ? _mm256_loadu_si256((const __m256i *)(wr + j)) : _mm256_setzero_si256();
            mm_operand8(u, wv + at, we + at, sp + j / 8);
        }
        for (Py_ssize_t j = full; j < nbr; j++) mm_wput(w, K, N, n0, nb, k0, width, kk, j, wv, we, spec);
    }
    for (Py_ssize_t j = 0; j < full; j += 8) {
        int32_t s[8];
        _mm256_storeu_si256((__m256i *)s, sp[j / 8]);
        for (int l = 0; l < 8; l++) spec[j + l] |= s[l] != 0;
    }
    for (Py_ssize_t b = 0; b < nb; b += NB)
        mm_block_avx2(k0, width, xv, xe, Kp, M, wv + b * width, we + b * width, A + b);
}
#endif

static mm_tile_fn mm_tile = mm_tile_portable;

/* simd(on): use the AVX2 kernel (when the CPU has it) or the portable one; returns whether the AVX2
 * one is in use now. For the tests, which check both. */
static PyObject *simd(PyObject *self, PyObject *args) {
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    mm_tile = mm_tile_portable;
#ifdef HAVE_AVX2
    if (on && __builtin_cpu_supports("avx2")) mm_tile = mm_tile_avx2;
    return PyBool_FromLong(mm_tile == mm_tile_avx2);
#else
    return PyBool_FromLong(0);
#endif
}

/* mm_exact(x_f32, w_f32, out_f32, M, K, N, width[, bias_f32 or None])
 * out = x (M x K) times w (K x N) (+ the bias row, N values) as the matrix unit sums it:
 * numerics.matmul_exact without the scale. The operands are FP32 arrays holding exact FP16 values.
 * The finite part comes from mm_tile, a block of NBIG columns at a time; rows and columns holding an
 * infinity or a NaN then get their special case (step 6) from a scalar pass. */
static PyObject *mm_exact(PyObject *self, PyObject *args) {
    Py_buffer xb, wb, ob, bb;
    Py_ssize_t M, K, N, width;
    memset(&bb, 0, sizeof bb);
    if (!PyArg_ParseTuple(args, "y*y*w*nnnn|z*", &xb, &wb, &ob, &M, &K, &N, &width, &bb)) return NULL;
    PyObject *ret = NULL;
    uint32_t *xv = NULL, *wv = NULL;
    int32_t *xe = NULL, *we = NULL;
    __int128 *A = NULL;
    char *xsp = NULL;
    if (width <= 0 || width > MAXW || (width & (width - 1))) {
        PyErr_SetString(PyExc_ValueError, "width must be a power of two <= 1024");
        goto done;
    }
    if (M < 0 || K < 0 || N < 0 || xb.len < (Py_ssize_t)(M * K * 4) || wb.len < (Py_ssize_t)(K * N * 4) ||
        ob.len < (Py_ssize_t)(M * N * 4) || (bb.buf && bb.len < (Py_ssize_t)(N * 4))) {
        PyErr_SetString(PyExc_ValueError, "buffer too small");
        goto done;
    }
    if (K > K_MAX) {
        PyErr_Format(PyExc_ValueError, "a dot product of more than %d terms overflows the accumulator", K_MAX);
        goto done;
    }
    const uint32_t *x = (const uint32_t *)xb.buf, *w = (const uint32_t *)wb.buf, *bias = (const uint32_t *)bb.buf;
    float *out = (float *)ob.buf;
    Py_ssize_t T = K ? (K + width - 1) / width : 1, Kp = T * width, Mc = M ? M : 1;
    xv = malloc(sizeof(uint32_t) * Mc * Kp);
    xe = malloc(sizeof(int32_t) * Mc * Kp);
    wv = aligned_alloc(64, sizeof(uint32_t) * width * NBIG);
    we = aligned_alloc(64, sizeof(int32_t) * width * NBIG);
    A = aligned_alloc(64, sizeof(__int128) * Mc * NBIG);
    xsp = calloc(Mc, 1);
    if (!xv || !xe || !wv || !we || !A || !xsp) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < M; i++) /* the rows' operands, padded with zeros to whole tiles */
        for (Py_ssize_t k = 0; k < Kp; k++)
            xsp[i] |= (char)mm_operand(k < K ? x[i * K + k] : 0u, xv + i * Kp + k, xe + i * Kp + k);
    for (Py_ssize_t n0 = 0; n0 < N; n0 += NBIG) {
        Py_ssize_t nb = N - n0 < NBIG ? N - n0 : NBIG;
        int32_t csp[NBIG] = {0};
        memset(A, 0, sizeof(__int128) * Mc * NBIG);
        for (Py_ssize_t t = 0; t < T; t++) mm_tile(w, K, N, n0, nb, t * width, width, xv, xe, Kp, M, wv, we, csp, A);
        for (Py_ssize_t i = 0; i < M; i++)
            for (Py_ssize_t j = 0; j < nb; j++) {
                Dot d = {A[i * NBIG + j], 0, 0, 0};
                if (bias) dot_bias(&d, f16_of_f32(bias[n0 + j]));
                if (xsp[i] || csp[j])
                    for (Py_ssize_t k = 0; k < K; k++) {
                        uint32_t a = f16_of_f32(x[i * K + k]), b = f16_of_f32(w[k * N + n0 + j]);
                        dot_special(&d, cls16(a), cls16(b), ((a ^ b) >> 15) & 1);
                    }
                out[i * N + n0 + j] = dot_result(&d);
            }
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    free(xv); free(xe); free(wv); free(we); free(A); free(xsp);
    PyBuffer_Release(&xb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&bb);
    return ret;
}

static int check_tab(Py_buffer *tab, Py_buffer *lut) {
    if (tab->len < (Py_ssize_t)(65536 * sizeof(float)) || lut->len < (Py_ssize_t)(65536 * sizeof(uint16_t))) {
        PyErr_SetString(PyExc_ValueError, "tables must have 65536 entries");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ vector unit
 * vec(vbuf, f32_table, luts, params): vector instructions (Core._vec) one after another on the
 * buffer `vbuf` (uint16 words). params: int64, one row of VP values per instruction:
 *   op, lut, rows, cols, a, as, b, b_row_stride, b_col_stride, use_imm, imm_bits, d, d_row_stride, width
 * Element (i, c) of a is vbuf[a + i*as + c], of b vbuf[b + i*b_row_stride + c*b_col_stride]
 * (strides 0 broadcast) or the FP32 immediate when use_imm; results go to vbuf[d + i*d_row_stride + c]
 * (one column for the row reductions). luts: 65,536-entry FP16 tables end to end, `lut` picks one.
 * Each instruction reads all its operands before it writes, as the reference does. The caller
 * has checked every address and shape. */
enum { V_ADD, V_SUB, V_MUL, V_MAX, V_COPY, V_LUT, V_SUM, V_SUMSQ, V_RMAX };
enum { P_OP, P_LUT, P_ROWS, P_COLS, P_A, P_AS, P_B, P_BRS, P_BCS, P_USE_IMM, P_IMM, P_D, P_DRS, P_WIDTH, VP };

static int vec_one(uint16_t *v, const float *tab, const uint16_t *lut, const long long *p, uint16_t *out,
                   int32_t *tmp) {
    int op = (int)p[P_OP], use_imm = p[P_USE_IMM] != 0;
    Py_ssize_t rows = p[P_ROWS], cols = p[P_COLS], a = p[P_A], as = p[P_AS], b = p[P_B], brs = p[P_BRS],
               bcs = p[P_BCS], d = p[P_D], drs = p[P_DRS], width = p[P_WIDTH];
    uint32_t imm_bits = (uint32_t)p[P_IMM];
    float immf = bits_f32(imm_bits);
    uint16_t immh = rne16(immf);
    int reduce = op == V_SUM || op == V_SUMSQ || op == V_RMAX;
    for (Py_ssize_t i = 0; i < rows; i++) {
        const uint16_t *ar = v + a + i * as;
        uint16_t *o = out + (reduce ? i : i * cols);
        const uint16_t *br = v + b + i * brs;
        switch (op) {
        case V_ADD: case V_SUB: case V_MUL:
            for (Py_ssize_t c = 0; c < cols; c++) {
                float x = tab[ar[c]], y = use_imm ? immf : tab[br[c * bcs]];
                o[c] = rne16(op == V_ADD ? x + y : op == V_SUB ? x - y : x * y);
            }
            break;
        case V_MAX:
            for (Py_ssize_t c = 0; c < cols; c++) o[c] = max16(tab, ar[c], use_imm ? immh : br[c * bcs]);
            break;
        case V_COPY:
            memcpy(o, ar, sizeof(uint16_t) * cols);
            break;
        case V_LUT:
            for (Py_ssize_t c = 0; c < cols; c++) o[c] = lut[ar[c]];
            break;
        case V_SUM: case V_SUMSQ: {
            float s = block_sum16(ar, cols, width, op == V_SUMSQ, tmp, tmp + MAXV);
            o[0] = rne16(imm_bits ? s * immf : s);
            break;
        }
        case V_RMAX:
            o[0] = chunked_max(tab, ar, cols, width, (uint16_t *)tmp);
            break;
        default:
            return 0;
        }
    }
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (reduce) v[d + i * drs] = out[i];
        else memcpy(v + d + i * drs, out + i * cols, sizeof(uint16_t) * cols);
    }
    return 1;
}

static PyObject *vec(PyObject *self, PyObject *args) {
    Py_buffer vb, tb, lb, pb;
    if (!PyArg_ParseTuple(args, "w*y*y*y*", &vb, &tb, &lb, &pb)) return NULL;
    PyObject *ret = NULL;
    uint16_t *out = NULL;
    int32_t *tmp = NULL;
    const long long *params = (const long long *)pb.buf;
    Py_ssize_t n = pb.len / (Py_ssize_t)(VP * sizeof(long long)), nluts = lb.len / (Py_ssize_t)(65536 * sizeof(uint16_t));
    Py_ssize_t most = 1;
    if (tb.len < (Py_ssize_t)(65536 * sizeof(float))) {
        PyErr_SetString(PyExc_ValueError, "the FP32 table must have 65536 entries");
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        const long long *p = params + k * VP;
        long long w = p[P_WIDTH];
        if (w <= 0 || w > MAXV || (w & (w - 1)) || p[P_ROWS] <= 0 || p[P_COLS] <= 0 || p[P_LUT] < 0 ||
            p[P_LUT] >= nluts) {
            PyErr_SetString(PyExc_ValueError, "bad vector instruction parameters");
            goto done;
        }
        if ((p[P_OP] == V_SUM || p[P_OP] == V_SUMSQ) && p[P_COLS] > K_MAX) {
            PyErr_Format(PyExc_ValueError, "a dot product of more than %d terms overflows the accumulator", K_MAX);
            goto done;
        }
        if (p[P_ROWS] * p[P_COLS] > most) most = p[P_ROWS] * p[P_COLS];
    }
    out = malloc(sizeof(uint16_t) * most);
    tmp = malloc(sizeof(int32_t) * 2 * MAXV);
    if (!out || !tmp) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < n; k++) {
        const long long *p = params + k * VP;
        if (!vec_one((uint16_t *)vb.buf, (const float *)tb.buf, (const uint16_t *)lb.buf + p[P_LUT] * 65536, p, out,
                     tmp)) {
            PyErr_SetString(PyExc_ValueError, "unknown vector op");
            goto done;
        }
    }
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    free(out);
    free(tmp);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&lb);
    PyBuffer_Release(&pb);
    return ret;
}

/* ------------------------------------------------------------------ matrix unit output stage
 * mm_out(vbuf, f32_table, gelu_lut, acc, kind, B, M, N, scale_bits, gelu, limit, W, lanes,
 *        out, os, obs, aux, as, abs)
 * Core._mm after the sums (the bias is in them: mm_exact): acc (B*M*N FP32) times the FP16 scale
 * (0: none), rne16; kind 1 (maskedmm) sets column n of row i to -inf when
 * n > limit + i; the GELU table when `gelu`. Then per matrix b: kind 1 writes each row padded with
 * -inf to whole W-tiles at out + b*obs (row stride os) and the row maxima (chunked_max over
 * `lanes`) at aux + b*abs (stride as); kinds 0 and 2 write the rows at out + b*obs, and kind 2
 * (lmhead) then each row's argmax (index low, index high, value) at aux + b*abs (row stride as). */
static PyObject *mm_out(PyObject *self, PyObject *args) {
    Py_buffer vb, tb, gb, ab;
    int kind, gelu;
    unsigned int scale_bits;
    long long limit;
    Py_ssize_t B, M, N, W, lanes, out, os, obs, aux, as, abs_;
    if (!PyArg_ParseTuple(args, "w*y*y*y*innnIpLnnnnnnnn", &vb, &tb, &gb, &ab, &kind, &B, &M, &N, &scale_bits,
                          &gelu, &limit, &W, &lanes, &out, &os, &obs, &aux, &as, &abs_))
        return NULL;
    PyObject *ret = NULL;
    uint16_t *y = NULL, *t = NULL;
    if (!check_tab(&tb, &gb)) goto done;
    if (B <= 0 || M <= 0 || N <= 0 || W <= 0 || lanes <= 0 || lanes > MAXV || (lanes & (lanes - 1)) ||
        ab.len < (Py_ssize_t)(B * M * N * sizeof(float))) {
        PyErr_SetString(PyExc_ValueError, "bad matrix shape");
        goto done;
    }
    uint16_t *v = (uint16_t *)vb.buf;
    const float *tab = (const float *)tb.buf, *acc = (const float *)ab.buf;
    const uint16_t *glut = (const uint16_t *)gb.buf;
    y = malloc(sizeof(uint16_t) * B * M * N);
    t = malloc(sizeof(uint16_t) * MAXV);
    if (!y || !t) { PyErr_NoMemory(); goto done; }
    float sc = tab[scale_bits & 0xFFFFu];
    for (Py_ssize_t r = 0; r < B * M; r++) { /* stage by stage over a row: each loop vectorises */
        const float *a = acc + r * N;
        uint16_t *h = y + r * N;
        if (scale_bits)
            for (Py_ssize_t n = 0; n < N; n++) h[n] = rne16(a[n] * sc);
        else
            for (Py_ssize_t n = 0; n < N; n++) h[n] = rne16(a[n]);
        if (kind == 1) {
            long long first = limit + r % M + 1; /* row i sees columns 0 .. limit + i */
            for (Py_ssize_t n = first < 0 ? 0 : first; n < N; n++) h[n] = F16_NINF;
        }
        if (gelu)
            for (Py_ssize_t n = 0; n < N; n++) h[n] = glut[h[n]];
    }
    Py_ssize_t npad = (N + W - 1) / W * W;
    for (Py_ssize_t b = 0; b < B; b++) {
        for (Py_ssize_t i = 0; i < M; i++) {
            uint16_t *o = v + out + b * obs + i * os;
            memcpy(o, y + (b * M + i) * N, sizeof(uint16_t) * N);
            if (kind == 1)
                for (Py_ssize_t n = N; n < npad; n++) o[n] = F16_NINF;
        }
        for (Py_ssize_t i = 0; kind != 0 && i < M; i++) {
            const uint16_t *yr = y + (b * M + i) * N;
            if (kind == 1) {
                v[aux + b * abs_ + i * as] = chunked_max(tab, yr, N, lanes, t);
                continue;
            }
            Py_ssize_t best = 0; /* argmax16: the first maximum; NaNs never win */
            float bv = -INFINITY;
            for (Py_ssize_t n = 0; n < N; n++) {
                float f = tab[yr[n]];
                if (f > bv) { bv = f; best = n; }
            }
            uint16_t *r = v + aux + b * abs_ + i * as;
            r[0] = (uint16_t)(best & 0xFFFF);
            r[1] = (uint16_t)(best >> 16);
            r[2] = yr[best];
        }
    }
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    free(y);
    free(t);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&gb);
    PyBuffer_Release(&ab);
    return ret;
}

/* rne16_array(f32 in, uint16 out): rne16 of every value, for the tests */
static PyObject *rne16_array(PyObject *self, PyObject *args) {
    Py_buffer ib, ob;
    if (!PyArg_ParseTuple(args, "y*w*", &ib, &ob)) return NULL;
    Py_ssize_t n = ib.len / 4;
    if (ob.len < n * 2) {
        PyErr_SetString(PyExc_ValueError, "buffer too small");
        PyBuffer_Release(&ib);
        PyBuffer_Release(&ob);
        return NULL;
    }
    const float *x = (const float *)ib.buf;
    uint16_t *o = (uint16_t *)ob.buf;
    for (Py_ssize_t i = 0; i < n; i++) o[i] = rne16(x[i]);
    PyBuffer_Release(&ib);
    PyBuffer_Release(&ob);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mm_exact", mm_exact, METH_VARARGS,
     "mm_exact(x_f32, w_f32, out_f32, M, K, N, width[, bias_f32 or None]): the matrix unit's sums "
     "(numerics.matmul_exact without the scale)"},
    {"simd", simd, METH_VARARGS, "simd(on): mm_exact's AVX2 kernel (if the CPU has it) or its portable one; "
     "returns whether AVX2 is used"},
    {"vec", vec, METH_VARARGS, "vector-unit instructions on the buffer (see the comment above it)"},
    {"mm_out", mm_out, METH_VARARGS, "the matrix unit's output stage on the buffer (see the comment above it)"},
    {"rne16_array", rne16_array, METH_VARARGS, "rne16_array(f32 in, uint16 out)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_exact", NULL, -1, methods};

PyMODINIT_FUNC PyInit__exact(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "API", API) < 0) Py_CLEAR(m);
#ifdef HAVE_AVX2
    if (__builtin_cpu_supports("avx2")) mm_tile = mm_tile_avx2;
#endif
    return m;
}
