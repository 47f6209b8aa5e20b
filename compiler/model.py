"""The compiler's model IR: a GPT-2 configuration and its weights under canonical names.

Every frontend (presets, Hugging Face folders, ONNX graphs, random weights) produces a
:class:`GPT2Model`. Weights are lazy: a frontend hands over a function that loads one tensor,
and nothing large is materialised until :meth:`Weights.get` or :meth:`Weights.get_f16` is called.
Weights are not cached here either: a caller that needs a tensor twice keeps it itself.

Canonical names follow Hugging Face GPT-2 without the ``transformer.`` prefix, in its Conv1D
layout: a linear layer's weight is stored (in, out) and computes ``y = x @ W + b``::

    wte                      (vocab_size, d)         token embedding; the LM head is tied to it
    wpe                      (n_positions, d)        position embedding
    h.{i}.ln_1.weight/bias   (d,)
    h.{i}.attn.c_attn.weight (d, 3d)                 columns [Q | K | V], heads contiguous in each
    h.{i}.attn.c_attn.bias   (3d,)
    h.{i}.attn.c_proj.weight (d, d)      .bias (d,)
    h.{i}.ln_2.weight/bias   (d,)
    h.{i}.mlp.c_fc.weight    (d, 4d)     .bias (4d,)
    h.{i}.mlp.c_proj.weight  (4d, d)     .bias (d,)
    ln_f.weight/bias         (d,)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dfx.errors import ModelError

# Activations the IR can describe. "gelu_new" is the tanh form (HF gelu_new, gelu_pytorch_tanh,
# gelu_fast: the form the hardware computes); "gelu" is the exact erf form.
ACTIVATIONS = ("gelu_new", "gelu")
FFN_MULT = 4  # GPT-2's MLP width is 4 * n_embd (d_ff)
# Largest values a config may hold: far beyond GPT-2 (48 layers) and GPT-3 (96), yet small enough
# that per-layer work (canonical names, memory plans) and shape arithmetic stay bounded.
LIMITS = {"n_layer": 1024, "n_embd": 1 << 31, "n_head": 1 << 31, "vocab_size": 1 << 31, "n_positions": 1 << 31}


@dataclass(frozen=True)
class GPT2Config:
    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int = 50257
    n_positions: int = 1024
    layer_norm_epsilon: float = 1e-5
    name: str = "gpt2"
    activation: str = "gelu_new"

    def __post_init__(self):
        for key in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ModelError(f"model {self.name!r}: {key} must be a positive integer, got {v!r}")
            if v > LIMITS[key]:
                raise ModelError(f"model {self.name!r}: {key} {v} is more than dfx handles ({LIMITS[key]})")
        if self.n_embd % self.n_head:
            raise ModelError(f"model {self.name!r}: n_embd {self.n_embd} is not a multiple of "
                             f"n_head {self.n_head}")
        eps = self.layer_norm_epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps > 0:
            raise ModelError(f"model {self.name!r}: layer_norm_epsilon must be > 0, got {eps!r}")
        if self.activation not in ACTIVATIONS:
            raise ModelError(f"model {self.name!r}: activation {self.activation!r} is not one of "
                             f"{', '.join(ACTIVATIONS)}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def d_ff(self) -> int:
        return FFN_MULT * self.n_embd

    @property
    def n_params(self) -> int:
        """Parameters, counting the tied LM head once (wte)."""
        d, f, L = self.n_embd, self.d_ff, self.n_layer
        # qkv and projection (4 d x d), fc and fc2 (2 d x f), their biases, two LayerNorms
        per_layer = 4 * d * d + 2 * d * f + (3 * d + d + f + d) + 4 * d
        return self.vocab_size * d + self.n_positions * d + L * per_layer + 2 * d

    @property
    def fp16_bytes(self) -> int:
        return 2 * self.n_params

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def canonical_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in the fixed canonical order."""
    d, f = config.n_embd, config.d_ff
    shapes: dict[str, tuple[int, ...]] = {
        "wte": (config.vocab_size, d),
        "wpe": (config.n_positions, d),
    }
    for i in range(config.n_layer):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
            p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
            p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
            p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
            p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
            p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,),
        })
    shapes["ln_f.weight"] = (d,)
    shapes["ln_f.bias"] = (d,)
    return shapes


def check_shape(name: str, got, want, where: str = "") -> None:
    """ModelError naming the tensor and both shapes unless ``got == want``."""
    got, want = tuple(int(x) for x in got), tuple(int(x) for x in want)
    if got != want:
        at = f"{where}: " if where else ""
        raise ModelError(f"{at}tensor {name!r} has shape {list(got)}, expected {list(want)} "
                         f"from the model config")


class Weights:
    """Lazy canonical weights of one GPT-2 model.

    ``fetch(name)`` returns the tensor in any float dtype (float32, float16, a memory map...);
    ``fetch_f16(name)``, when given, returns it directly in float16 (random weights are made
    that way so that no fp32 copy of a large model ever exists).
    """

    def __init__(self, config: GPT2Config, source: dict, fetch: Callable[[str], np.ndarray],
                 fetch_f16: Callable[[str], np.ndarray] | None = None):
        self.config = config
        self.source = dict(source)
        self._fetch = fetch
        self._fetch_f16 = fetch_f16
        self._shapes = canonical_shapes(config)

    def names(self) -> list[str]:
        return list(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        try:
            return self._shapes[name]
        except KeyError:
            raise ModelError(f"no tensor named {name!r} in a GPT-2 model") from None

    def _checked(self, name: str, arr) -> np.ndarray:
        arr = np.asarray(arr)
        check_shape(name, arr.shape, self.shape(name), self.source.get("path") or "")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(f"tensor {name!r} has dtype {arr.dtype}, expected a float type")
        return arr

    def get(self, name: str) -> np.ndarray:
        """The tensor as a float32 array of its canonical shape (a fresh array)."""
        self.shape(name)
        if self._fetch_f16 is not None and self._fetch is None:
            arr = self._checked(name, self._fetch_f16(name))
        else:
            arr = self._checked(name, self._fetch(name))
        return np.array(arr, dtype=np.float32, copy=True)

    def get_f16(self, name: str) -> np.ndarray:
        """The tensor as float16 (rounded to nearest even from the stored values)."""
        self.shape(name)
        if self._fetch_f16 is not None:
            arr = self._checked(name, self._fetch_f16(name))
        else:
            arr = self._checked(name, self._fetch(name))
        if arr.dtype == np.float16:
            return np.array(arr, copy=True)
        with np.errstate(over="ignore"):
            out = np.asarray(arr, dtype=np.float32).astype(np.float16)
        if not np.isfinite(out).all() and np.isfinite(np.asarray(arr, dtype=np.float32)).all():
            raise ModelError(f"tensor {name!r} has values outside the float16 range (|x| > 65504)")
        return out

    def __repr__(self) -> str:
        return f"Weights({self.config.name!r}, {self.source.get('kind')}, {len(self._shapes)} tensors)"


def array_weights(config: GPT2Config, arrays: dict[str, np.ndarray], source: dict | None = None) -> Weights:
    """Weights from an in-memory dict of canonical name -> array (tests, small tools).

    Every canonical tensor must be present with its canonical shape; extra names are refused.
    """
    shapes = canonical_shapes(config)
    missing = [n for n in shapes if n not in arrays]
    if missing:
        raise ModelError(f"missing tensor {missing[0]!r} ({len(missing)} missing in all)")
    extra = sorted(set(arrays) - set(shapes))
    if extra:
        raise ModelError(f"unexpected tensor {extra[0]!r} for a {config.n_layer}-layer GPT-2")
    for n, want in shapes.items():
        check_shape(n, np.shape(arrays[n]), want)
    return Weights(config, source or {"kind": "arrays", "path": None}, lambda n: arrays[n])


@dataclass
class GPT2Model:
    config: GPT2Config
    weights: Weights
