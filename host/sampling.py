"""Next-token selection from a logits vector: greedy, temperature, top-k, top-p.

`sample(logits, temperature=0.0, top_k=0, top_p=1.0, rng=None) -> int`

* temperature 0 (or None): greedy, the first index of the maximum; NaN never wins.
* otherwise: softmax(logits / temperature), restricted to the top_k most likely
  tokens (0: all), then to the smallest set of the most likely tokens whose
  probability reaches top_p (Hugging Face semantics: the token whose mass crosses
  the threshold is kept), renormalised and sampled with a numpy Generator.

Ordering is deterministic: tokens are ranked by probability, ties by lower index
first, so top-k and top-p keep the lower index of equally likely tokens. NaN
logits and -inf logits are never sampled. The caller passes a seeded
``numpy.random.Generator`` for reproducible results (``rng=None`` makes a fresh,
unseeded one).
"""

from __future__ import annotations

import math

import numpy as np

from dfx.errors import DfxError


class SamplingError(DfxError, ValueError):
    """Bad sampling arguments or logits."""


def check_params(temperature, top_k, top_p) -> None:
    """Raise SamplingError for temperature < 0, top_k < 0 or top_p outside (0, 1]."""
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)) \
                or not math.isfinite(temperature) or temperature < 0:
            raise SamplingError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise SamplingError(f"top_k must be an integer >= 0 (0 = no limit), got {top_k!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.number)) \
            or not (0.0 < top_p <= 1.0):
        raise SamplingError(f"top_p must be in (0, 1], got {top_p!r}")


def _as_logits(logits) -> np.ndarray:
    x = np.asarray(logits)
    if x.ndim != 1 or x.size == 0:
        raise SamplingError(f"logits must be a non-empty 1-D vector, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise SamplingError(f"logits must be floating point, got {x.dtype}")
    return x


def greedy(logits) -> int:
    """First index of the maximum; NaN never wins (all NaN: SamplingError)."""
    x = _as_logits(logits)
    nan = np.isnan(x)
    if nan.all():
        raise SamplingError("all logits are NaN: nothing to choose")
    if nan.any():
        x = np.where(nan, -np.inf, x)
        if np.isneginf(x).all():  # only NaN and -inf: the first -inf is the maximum
            return int(np.flatnonzero(~nan)[0])
    return int(np.argmax(x))


def probabilities(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
                  ) -> np.ndarray:
    """The float64 distribution `sample` draws from (zeros outside the kept set)."""
    check_params(temperature, top_k, top_p)
    if not temperature:
        raise SamplingError("temperature 0 is greedy: it has no distribution")
    x = _as_logits(logits).astype(np.float64)
    x = np.where(np.isnan(x), -np.inf, x)
    if x.max() == -np.inf:
        raise SamplingError("every logit is -inf or NaN: nothing can be sampled")
    z = (x - x.max()) / float(temperature)  # shift first: no overflow for small temperatures
    p = np.exp(z)  # exp(-inf) = 0, exp(0) = 1 for the maximum
    p /= p.sum()
    # Rank: most likely first, ties by lower index (stable sort on -p).
    order = np.argsort(-p, kind="stable")
    n_pos = int(np.count_nonzero(p > 0))
    keep = n_pos if top_k == 0 else min(top_k, n_pos)
    if top_p < 1.0:
        cum = np.cumsum(p[order[:keep]])
        # Smallest prefix whose mass reaches top_p of the top-k mass (HF renormalises after
        # top-k); the token that crosses the threshold is kept.
        keep = min(keep, int(np.searchsorted(cum, top_p * cum[-1], side="left")) + 1)
    out = np.zeros_like(p)
    idx = order[:max(1, keep)]
    out[idx] = p[idx]
    out /= out.sum()
    return out


def sample(logits, temperature: float | None = 0.0, top_k: int = 0, top_p: float = 1.0,
           rng: np.random.Generator | None = None) -> int:
    """Pick the next token id from a 1-D logits vector (see the module docstring)."""
    check_params(temperature, top_k, top_p)
    if not temperature:
        return greedy(logits)
    p = probabilities(logits, temperature, top_k, top_p)
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise SamplingError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    nz = np.flatnonzero(p)
    if nz.size == 1:
        return int(nz[0])
    # Inverse-CDF draw over the kept tokens (in index order): one uniform per call.
    cum = np.cumsum(p[nz])
    u = rng.random() * cum[-1]
    j = int(np.searchsorted(cum, u, side="right"))
    return int(nz[min(j, nz.size - 1)])
