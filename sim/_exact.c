/* Compiled equal of dfx.sim.numerics.matmul_exact: the matrix unit's exact FP32 arithmetic.
 *
 * acc[i][j] = tile_0 ; acc += tile_t, where tile_t = neighbour adder tree over `width`
 * exact products x[i][k] * w[k][j] (k in tile t; products with k >= K are +0).
 * Built with -ffp-contract=off and without fast-math, so every add and multiply is one
 * IEEE binary32 operation rounded to nearest even, exactly as numpy does it.
 *
 * Also the precompiled interpreter's kernels (dfx.sim.plan): one vector-unit instruction
 * (vec) and the matrix unit's output stage (mm_out), computed on the buffer in place with
 * the rules of dfx.sim.numerics (rne16, max16, chunked_sum, chunked_max, argmax16).
 * tests/test_plan.py checks them against the reference interpreter (dfx.sim.core) op by op.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NB 16
#define MAXW 1024

static PyObject *mm_exact(PyObject *self, PyObject *args) {
    Py_buffer xb, wb, ob;
    Py_ssize_t M, K, N, width;
    if (!PyArg_ParseTuple(args, "y*y*w*nnnn", &xb, &wb, &ob, &M, &K, &N, &width))
        return NULL;
    PyObject *ret = NULL;
    if (width <= 0 || width > MAXW || (width & (width - 1))) {
        PyErr_SetString(PyExc_ValueError, "width must be a power of two <= 1024");
        goto done;
    }
    if (xb.len < (Py_ssize_t)(M * K * 4) || wb.len < (Py_ssize_t)(K * N * 4) || ob.len < (Py_ssize_t)(M * N * 4)) {
        PyErr_SetString(PyExc_ValueError, "buffer too small");
        goto done;
    }
    const float *x = (const float *)xb.buf, *w = (const float *)wb.buf;
    float *out = (float *)ob.buf;
    Py_ssize_t T = (K + width - 1) / width;
    if (T == 0) T = 1;
    float *wt = malloc(sizeof(float) * width * NB);
    float *p = malloc(sizeof(float) * width * NB);
    float *acc = malloc(sizeof(float) * (M > 0 ? M : 1) * NB);
    if (!wt || !p || !acc) { PyErr_NoMemory(); free(wt); free(p); free(acc); goto done; }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n0 = 0; n0 < N; n0 += NB) {
        Py_ssize_t nb = N - n0 < NB ? N - n0 : NB;
        for (Py_ssize_t t = 0; t < T; t++) {
            for (Py_ssize_t kk = 0; kk < width; kk++) {
                Py_ssize_t k = t * width + kk;
                for (int j = 0; j < NB; j++)
                    wt[kk * NB + j] = (k < K && j < nb) ? w[k * N + n0 + j] : 0.0f;
            }
            for (Py_ssize_t i = 0; i < M; i++) {
                const float *xr = x + i * K;
                for (Py_ssize_t kk = 0; kk < width; kk++) {
                    Py_ssize_t k = t * width + kk;
                    if (k < K) {
                        float xv = xr[k];
                        for (int j = 0; j < NB; j++) p[kk * NB + j] = xv * wt[kk * NB + j];
                    } else {
                        for (int j = 0; j < NB; j++) p[kk * NB + j] = 0.0f;
                    }
                }
                for (Py_ssize_t h = width / 2; h >= 1; h /= 2)
                    for (Py_ssize_t kk = 0; kk < h; kk++)
                        for (int j = 0; j < NB; j++)
                            p[kk * NB + j] = p[2 * kk * NB + j] + p[(2 * kk + 1) * NB + j];
                float *a = acc + i * NB;
                if (t == 0)
                    for (int j = 0; j < NB; j++) a[j] = p[j];
                else
                    for (int j = 0; j < NB; j++) a[j] = a[j] + p[j];
            }
        }
        for (Py_ssize_t i = 0; i < M; i++)
            memcpy(out + i * N + n0, acc + i * NB, sizeof(float) * nb);
    }
    Py_END_ALLOW_THREADS
    free(wt); free(p); free(acc);
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    PyBuffer_Release(&xb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ob);
    return ret;
}

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

/* numerics.chunked_sum of n FP32 values: `width`-wide neighbour trees padded with +0, in order */
static float chunked_sum(const float *v, Py_ssize_t n, Py_ssize_t width, float *t) {
    float acc = 0.0f;
    for (Py_ssize_t c0 = 0; c0 < n || c0 == 0; c0 += width) {
        for (Py_ssize_t j = 0; j < width; j++) t[j] = c0 + j < n ? v[c0 + j] : 0.0f;
        for (Py_ssize_t h = width / 2; h >= 1; h /= 2)
            for (Py_ssize_t j = 0; j < h; j++) t[j] = t[2 * j] + t[2 * j + 1];
        acc = c0 == 0 ? t[0] : acc + t[0];
    }
    return acc;
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
                   float *row, float *tmp) {
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
            for (Py_ssize_t c = 0; c < cols; c++) {
                float x = tab[ar[c]];
                row[c] = op == V_SUMSQ ? x * x : x;
            }
            float s = chunked_sum(row, cols, width, tmp);
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
    float *row = NULL;
    const long long *params = (const long long *)pb.buf;
    Py_ssize_t n = pb.len / (Py_ssize_t)(VP * sizeof(long long)), nluts = lb.len / (Py_ssize_t)(65536 * sizeof(uint16_t));
    Py_ssize_t most = 1, widest = 1;
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
        if (p[P_ROWS] * p[P_COLS] > most) most = p[P_ROWS] * p[P_COLS];
        if (p[P_COLS] > widest) widest = p[P_COLS];
    }
    out = malloc(sizeof(uint16_t) * most);
    row = malloc(sizeof(float) * (widest + 2 * MAXV));
    if (!out || !row) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < n; k++) {
        const long long *p = params + k * VP;
        if (!vec_one((uint16_t *)vb.buf, (const float *)tb.buf, (const uint16_t *)lb.buf + p[P_LUT] * 65536, p, out,
                     row, row + widest)) {
            PyErr_SetString(PyExc_ValueError, "unknown vector op");
            goto done;
        }
    }
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    free(out);
    free(row);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&lb);
    PyBuffer_Release(&pb);
    return ret;
}

/* ------------------------------------------------------------------ matrix unit output stage
 * mm_out(vbuf, f32_table, gelu_lut, acc, kind, B, M, N, bias, scale_bits, gelu, limit, W, lanes,
 *        out, os, obs, aux, as, abs)
 * Core._mm after the sums: acc (B*M*N FP32) + the bias row at vbuf[bias..] (bias < 0: none), times
 * the FP16 scale (0: none), rne16; kind 1 (maskedmm) sets column n of row i to -inf when
 * n > limit + i; the GELU table when `gelu`. Then per matrix b: kind 1 writes each row padded with
 * -inf to whole W-tiles at out + b*obs (row stride os) and the row maxima (chunked_max over
 * `lanes`) at aux + b*abs (stride as); kinds 0 and 2 write the rows at out + b*obs, and kind 2
 * (lmhead) then each row's argmax (index low, index high, value) at aux + b*abs (row stride as). */
static PyObject *mm_out(PyObject *self, PyObject *args) {
    Py_buffer vb, tb, gb, ab;
    int kind, gelu;
    unsigned int scale_bits;
    long long limit;
    Py_ssize_t B, M, N, bias, W, lanes, out, os, obs, aux, as, abs_;
    if (!PyArg_ParseTuple(args, "w*y*y*y*innnnIpLnnnnnnnn", &vb, &tb, &gb, &ab, &kind, &B, &M, &N, &bias,
                          &scale_bits, &gelu, &limit, &W, &lanes, &out, &os, &obs, &aux, &as, &abs_))
        return NULL;
    PyObject *ret = NULL;
    uint16_t *y = NULL, *t = NULL;
    float *bf = NULL;
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
    bf = malloc(sizeof(float) * N);
    if (!y || !t || !bf) { PyErr_NoMemory(); goto done; }
    if (bias >= 0)
        for (Py_ssize_t n = 0; n < N; n++) bf[n] = tab[v[bias + n]];
    float sc = tab[scale_bits & 0xFFFFu];
    for (Py_ssize_t r = 0; r < B * M; r++) { /* stage by stage over a row: each loop vectorises */
        const float *a = acc + r * N;
        uint16_t *h = y + r * N;
        if (bias >= 0 && scale_bits)
            for (Py_ssize_t n = 0; n < N; n++) h[n] = rne16((a[n] + bf[n]) * sc);
        else if (bias >= 0)
            for (Py_ssize_t n = 0; n < N; n++) h[n] = rne16(a[n] + bf[n]);
        else if (scale_bits)
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
    free(bf);
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
     "mm_exact(x_f32, w_f32, out_f32, M, K, N, width): the matrix unit's exact FP32 sums."},
    {"vec", vec, METH_VARARGS, "vector-unit instructions on the buffer (see the comment above it)"},
    {"mm_out", mm_out, METH_VARARGS, "the matrix unit's output stage on the buffer (see the comment above it)"},
    {"rne16_array", rne16_array, METH_VARARGS, "rne16_array(f32 in, uint16 out)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_exact", NULL, -1, methods};

PyMODINIT_FUNC PyInit__exact(void) { return PyModule_Create(&module); }
