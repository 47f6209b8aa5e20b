/* Compiled equal of dfx.sim.numerics.matmul_exact: the matrix unit's exact FP32 arithmetic.
 *
 * acc[i][j] = tile_0 ; acc += tile_t, where tile_t = neighbour adder tree over `width`
 * exact products x[i][k] * w[k][j] (k in tile t; products with k >= K are +0).
 * Built with -ffp-contract=off and without fast-math, so every add and multiply is one
 * IEEE binary32 operation rounded to nearest even, exactly as numpy does it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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

static PyMethodDef methods[] = {
    {"mm_exact", mm_exact, METH_VARARGS,
     "mm_exact(x_f32, w_f32, out_f32, M, K, N, width): the matrix unit's exact FP32 sums."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_exact", NULL, -1, methods};

PyMODINIT_FUNC PyInit__exact(void) { return PyModule_Create(&module); }
