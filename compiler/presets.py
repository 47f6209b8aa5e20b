"""Named GPT-2 models and seeded random weights.

A preset's real weights come only from a local Hugging Face cache (never the network):
``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``, in
``models--<org>--<name>/snapshots/*/`` with ``config.json`` and the weights. ``dfx-1.5b`` (DFX's
48-layer, d 1536, 24-head variant) was never released: it has random weights only.

Random weights: each tensor has its own generator, seeded from ``(seed, sha256(name))``, so a
tensor does not depend on which tensors were generated before it. Values are drawn as float32
standard normals in chunks and written straight into a float16 array (no fp32 copy of the whole
model). Initialisation follows Hugging Face GPT-2: normal(0, std) for wte, wpe and the linear
weights, std / sqrt(2 n_layer) for the two residual projections (attn.c_proj, mlp.c_proj), LayerNorm
weight 1 and bias 0, linear biases 0. ``wte_std``, ``bias_std`` and ``ln_std`` let tests make models
with larger logits or non-trivial biases and LayerNorm parameters.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from dfx.errors import ModelError

from .model import GPT2Config, GPT2Model, Weights

PRESETS: dict[str, GPT2Config] = {
    "gpt2": GPT2Config(n_layer=12, n_embd=768, n_head=12, name="gpt2"),
    "gpt2-medium": GPT2Config(n_layer=24, n_embd=1024, n_head=16, name="gpt2-medium"),
    "gpt2-large": GPT2Config(n_layer=36, n_embd=1280, n_head=20, name="gpt2-large"),
    "gpt2-xl": GPT2Config(n_layer=48, n_embd=1600, n_head=25, name="gpt2-xl"),
    "dfx-1.5b": GPT2Config(n_layer=48, n_embd=1536, n_head=24, name="dfx-1.5b"),
}

# Hub repository ids that hold each preset's released weights (old and new names).
HUB_REPOS: dict[str, tuple[str, ...]] = {
    "gpt2": ("gpt2", "openai-community/gpt2"),
    "gpt2-medium": ("gpt2-medium", "openai-community/gpt2-medium"),
    "gpt2-large": ("gpt2-large", "openai-community/gpt2-large"),
    "gpt2-xl": ("gpt2-xl", "openai-community/gpt2-xl"),
    "dfx-1.5b": (),
}

_CHUNK = 1 << 20  # values drawn per call; fixed so the stream never depends on it


def preset_config(name: str) -> GPT2Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})") from None


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / f).is_file() for f in ("model.safetensors", "model.safetensors.index.json",
                                         "pytorch_model.bin", "pytorch_model.bin.index.json"))


def find_cached_checkpoint(name: str) -> Path | None:
    """The snapshot folder of a preset in the local HF cache, or None. Prefers refs/main."""
    cache = hf_hub_cache()
    for repo in HUB_REPOS.get(name, ()):
        root = cache / ("models--" + repo.replace("/", "--"))
        snaps = root / "snapshots"
        if not snaps.is_dir():
            continue
        ref = root / "refs" / "main"
        if ref.is_file():
            cand = snaps / ref.read_text().strip()
            if _has_weights(cand):
                return cand
        found = sorted((p for p in snaps.iterdir() if p.is_dir() and _has_weights(p)),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        if found:
            return found[0]
    return None


def _tensor_seed(seed: int, name: str) -> np.random.SeedSequence:
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, h])


def _normal_f16(shape, std: float, seed_seq, mean: float = 0.0) -> np.ndarray:
    out = np.empty(int(np.prod(shape)), dtype=np.float16)
    if std == 0.0:
        out[:] = mean
        return out.reshape(shape)
    rng = np.random.default_rng(seed_seq)
    buf = np.empty(min(_CHUNK, out.size), dtype=np.float32)
    for s in range(0, out.size, _CHUNK):
        b = buf[: min(_CHUNK, out.size - s)]
        rng.standard_normal(out=b, dtype=np.float32)
        b *= np.float32(std)
        if mean:
            b += np.float32(mean)
        out[s:s + b.size] = b
    return out.reshape(shape)


def random_weights(config: GPT2Config, seed: int = 0, std: float = 0.02, *,
                   wte_std: float | None = None, bias_std: float = 0.0, ln_std: float = 0.0,
                   scale_residual: bool = True) -> Weights:
    """Seeded random weights, generated per tensor directly in float16 (see the module doc)."""
    for label, v in (("std", std), ("bias_std", bias_std), ("ln_std", ln_std),
                     ("wte_std", std if wte_std is None else wte_std)):
        if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
            raise ModelError(f"random weights: {label} must be a finite number >= 0, got {v!r}")
    proj_std = std / np.sqrt(2.0 * config.n_layer) if scale_residual else std
    shapes = {}

    def fetch_f16(name: str) -> np.ndarray:
        shape = shapes[name]
        ss = _tensor_seed(seed, name)
        if name == "wte":
            return _normal_f16(shape, std if wte_std is None else wte_std, ss)
        if name == "wpe":
            return _normal_f16(shape, std, ss)
        if ".ln_" in name or name.startswith("ln_f"):
            if name.endswith(".weight"):
                return _normal_f16(shape, ln_std, ss, mean=1.0)
            return _normal_f16(shape, ln_std, ss)
        if name.endswith(".bias"):
            return _normal_f16(shape, bias_std, ss)
        if name.endswith("c_proj.weight"):
            return _normal_f16(shape, proj_std, ss)
        return _normal_f16(shape, std, ss)

    w = Weights(config, {"kind": "random", "path": None, "seed": int(seed), "std": float(std),
                         "wte_std": None if wte_std is None else float(wte_std),
                         "bias_std": float(bias_std), "ln_std": float(ln_std),
                         "scale_residual": bool(scale_residual)},
                fetch=None, fetch_f16=fetch_f16)
    shapes.update({n: w.shape(n) for n in w.names()})
    return w


def load_preset(name: str, random: bool = False, seed: int = 0, init_std: float = 0.02,
                **random_kw) -> GPT2Model:
    """A preset with its real weights from the local HF cache, or seeded random weights."""
    config = preset_config(name)
    if random:
        return GPT2Model(config, random_weights(config, seed, init_std, **random_kw))
    if not HUB_REPOS.get(name):
        raise ModelError(f"preset {name!r} has no released weights; use --random-weights")
    folder = find_cached_checkpoint(name)
    if folder is None:
        raise ModelError(f"no weights for preset {name!r} in the local Hugging Face cache "
                         f"{hf_hub_cache()} (looked for {', '.join('models--' + r.replace('/', '--') for r in HUB_REPOS[name])}); "
                         f"dfx never downloads: put a checkpoint there, pass a checkpoint folder, "
                         f"or use --random-weights")
    from .hf import load_hf_folder

    model = load_hf_folder(folder)
    c = model.config
    if (c.n_layer, c.n_embd, c.n_head) != (config.n_layer, config.n_embd, config.n_head):
        raise ModelError(f"cached checkpoint {folder} is not {name}: it has {c.n_layer} layers, "
                         f"d {c.n_embd}, {c.n_head} heads")
    from dataclasses import replace

    model.config = replace(c, name=name)
    model.weights.config = model.config
    model.weights.source["preset"] = name
    return model
