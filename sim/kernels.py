"""Matrix-unit kernels for the two simulator modes.

exact: the hardware's sums bit for bit (docs/numerics.md): the compiled sim/_exact.c (built by
       `pip install -e .`, setup.py); numerics.matmul_exact_f32 is the same sums in numpy, and
       tests/test_numerics.py checks the two agree.
fast:  one BLAS FP32 matmul; the sum order differs, so results differ from exact within the
       bound of docs/numerics.md ("Exact and fast modes"), which tests/test_sim.py checks.
"""

from __future__ import annotations

import numpy as np

from dfx.sim import _exact as _c


def sums_exact(xf: np.ndarray, wf: np.ndarray, width: int) -> np.ndarray:
    """FP32 x (M, K) times FP32 w (K, N), both exact FP16 values: the tile-tree sums."""
    M, K = xf.shape
    N = wf.shape[1]
    out = np.empty((M, N), np.float32)
    _c.mm_exact(np.ascontiguousarray(xf, np.float32), np.ascontiguousarray(wf, np.float32), out, M, K, N, width)
    return out


def sums_fast(xf: np.ndarray, wf: np.ndarray, width: int) -> np.ndarray:
    return np.matmul(xf, wf, dtype=np.float32)


KERNELS = {"exact": sums_exact, "fast": sums_fast}
