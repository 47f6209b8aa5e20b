"""Matrix-unit kernels for the two simulator modes.

exact: the hardware's sums bit for bit (docs/numerics.md, "Dot products"): each output one
       dot product of exact products, aligned and truncated per k-tile of `width`, accumulated
       with the bias in fixed point and rounded once to FP32. The compiled sim/_exact.c (built
       by `pip install -e .`, setup.py); numerics.matmul_exact is the readable reference, and
       tests/test_numerics.py checks the two agree bit for bit.
fast:  one BLAS FP32 matmul of the same exact products, then the bias added in FP32; the sum
       order and rounding differ, so results differ from exact within the bound of
       docs/numerics.md ("Exact and fast modes"), which tests/test_sim.py checks.
"""

from __future__ import annotations

import numpy as np

from dfx.sim import _exact as _c

if getattr(_c, "API", 1) < 2:  # an extension built from an older sim/_exact.c sums with FP32 adder trees
    raise ImportError("dfx.sim._exact was built from an older sim/_exact.c: rebuild it (pip install -e .)")


def sums_exact(xf: np.ndarray, wf: np.ndarray, width: int, bias=None) -> np.ndarray:
    """FP32 x (M, K) times FP32 w (K, N) (+ FP32 bias (N,)), all exact FP16 values: the matrix
    unit's dot products (numerics.matmul_exact without the scale)."""
    M, K = xf.shape
    N = wf.shape[1]
    out = np.empty((M, N), np.float32)
    b = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(N)
    _c.mm_exact(np.ascontiguousarray(xf, np.float32), np.ascontiguousarray(wf, np.float32), out, M, K, N, width, b)
    return out


def sums_fast(xf: np.ndarray, wf: np.ndarray, width: int, bias=None) -> np.ndarray:
    """The same in BLAS's order: FP32 products summed by np.matmul, then + bias in FP32 (also
    batched: xf (B, M, K), wf (B, K, N))."""
    y = np.matmul(xf, wf, dtype=np.float32)
    return y if bias is None else (y + np.asarray(bias, np.float32)).astype(np.float32, copy=False)


KERNELS = {"exact": sums_exact, "fast": sums_fast}
