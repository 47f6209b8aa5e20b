"""Hugging Face GPT-2 checkpoint folders -> the IR. Every HF convention lives in this file.

A folder holds ``config.json`` and the weights: ``model.safetensors`` (read lazily, one tensor at a
time, with ``safetensors.safe_open``), a sharded ``model.safetensors.index.json``, or
``pytorch_model.bin`` (or its ``.index.json``), read with ``torch.load(weights_only=True,
mmap=True)``: no pickle code runs, and tensors stay memory-mapped until asked for.

Conventions handled here: checkpoint keys with or without the ``transformer.`` prefix; the Conv1D
(in, out) layout, which is the canonical layout (no transposes); the ``attn.bias`` and
``attn.masked_bias`` buffers are ignored; ``lm_head.weight`` is tied to ``wte`` and, when stored,
must equal it. config.json keys: n_layer, n_embd, n_head, vocab_size, n_positions (n_ctx in old
files), layer_norm_epsilon, activation_function (a GELU; the tanh forms map to "gelu_new"). Missing
keys take Hugging Face's GPT2Config defaults.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from dfx.errors import ModelError

from .model import FFN_MULT, GPT2Config, GPT2Model, Weights, canonical_shapes, check_shape

PREFIX = "transformer."
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers, not parameters
TIED_HEAD = "lm_head.weight"
EMBEDDINGS = {"wte.weight": "wte", "wpe.weight": "wpe"}  # nn.Embedding keys -> canonical names
# HF activation_function -> IR activation. gelu_new, gelu_pytorch_tanh and gelu_fast are the same
# tanh formula; "gelu" is the exact erf form.
HF_ACTIVATIONS = {"gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu_fast": "gelu_new",
                  "gelu": "gelu"}
# HF GPT2Config defaults, used for keys a config.json leaves out.
HF_DEFAULTS = {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024,
               "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def config_from_hf(cfg: dict, name: str, where: str = "config.json") -> GPT2Config:
    """GPT2Config from a parsed HF config.json; refuses what the IR cannot represent."""
    mt = cfg.get("model_type")
    if mt is not None and mt != "gpt2":
        raise ModelError(f"{where}: model_type is {mt!r}, only 'gpt2' is supported")
    act = cfg.get("activation_function", HF_DEFAULTS["activation_function"])
    if not isinstance(act, str) or act not in HF_ACTIVATIONS:
        raise ModelError(f"{where}: activation_function {act!r} is not supported "
                         f"(supported: {', '.join(HF_ACTIVATIONS)})")
    for key, want in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                      ("add_cross_attention", False)):
        if key in cfg and bool(cfg[key]) != want:
            raise ModelError(f"{where}: {key}={cfg[key]!r} is not supported (GPT-2 uses {want})")
    n_pos = cfg.get("n_positions", cfg.get("n_ctx", HF_DEFAULTS["n_positions"]))
    vals = {k: cfg.get(k, HF_DEFAULTS[k]) for k in ("n_layer", "n_embd", "n_head", "vocab_size")}
    for k, v in list(vals.items()) + [("n_positions", n_pos)]:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ModelError(f"{where}: {k} must be an integer, got {v!r}")
    if cfg.get("n_inner") not in (None, FFN_MULT * vals["n_embd"]):
        raise ModelError(f"{where}: n_inner={cfg['n_inner']!r} is not supported (GPT-2 uses {FFN_MULT} * n_embd)")
    eps = cfg.get("layer_norm_epsilon", HF_DEFAULTS["layer_norm_epsilon"])
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
        raise ModelError(f"{where}: layer_norm_epsilon must be a number, got {eps!r}")
    try:
        return GPT2Config(n_layer=vals["n_layer"], n_embd=vals["n_embd"], n_head=vals["n_head"],
                          vocab_size=vals["vocab_size"], n_positions=n_pos,
                          layer_norm_epsilon=float(eps), name=name, activation=HF_ACTIVATIONS[act])
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None


def canonical_key(key: str) -> str | None:
    """Checkpoint key -> canonical name (None for the buffers we ignore and the tied head)."""
    if key.endswith(IGNORED_SUFFIXES) or key == TIED_HEAD:
        return None
    key = key[len(PREFIX):] if key.startswith(PREFIX) else key
    return EMBEDDINGS.get(key, key)


class _SafetensorsFiles:
    """Lazy reader over one or more safetensors files (one handle per file)."""

    def __init__(self, files: list[Path]):
        from safetensors import safe_open

        self.handles, self.where = {}, {}
        for f in files:
            if not f.is_file():
                raise ModelError(f"missing weights file {f}")
            try:
                h = safe_open(str(f), framework="np")
                keys = list(h.keys())
            except Exception as e:  # SafetensorError: truncated, corrupted header, ...
                raise ModelError(f"cannot read {f}: {e} (truncated or corrupted safetensors file)") from None
            self.handles[f] = h
            for k in keys:
                self.where[k] = f

    def keys(self):
        return list(self.where)

    def shape(self, key):
        return tuple(self.handles[self.where[key]].get_slice(key).get_shape())

    def dtype(self, key):
        return self.handles[self.where[key]].get_slice(key).get_dtype()

    def get(self, key) -> np.ndarray:
        f = self.where[key]
        try:
            if self.dtype(key) == "BF16":  # numpy has no bfloat16: widen the raw bits
                from safetensors import safe_open

                with safe_open(str(f), framework="pt") as h:
                    return h.get_tensor(key).float().numpy()
            return self.handles[f].get_tensor(key)
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"cannot read tensor {key!r} from {f}: {e}") from None


class _TorchFiles:
    """pytorch_model.bin files through torch.load(weights_only=True, mmap=True)."""

    def __init__(self, files: list[Path]):
        try:
            import torch
        except ImportError:
            raise ModelError("reading pytorch_model.bin needs torch (pip install 'dfx[ml]'); "
                             "or convert the checkpoint to model.safetensors") from None
        self.tensors = {}
        for f in files:
            if not f.is_file():
                raise ModelError(f"missing weights file {f}")
            try:
                try:
                    sd = torch.load(str(f), map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as e:
                    if "mmap" not in str(e):
                        raise
                    sd = torch.load(str(f), map_location="cpu", weights_only=True)  # legacy format
            except Exception as e:
                msg = str(e).strip()
                if "weights only load failed" in msg.lower() or not msg:
                    msg = (f"{type(e).__name__}: corrupted, or it holds pickled objects other than "
                           f"tensors, which dfx refuses to unpickle")
                raise ModelError(f"cannot read {f}: {msg.splitlines()[0]}") from None
            if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
                raise ModelError(f"{f} does not hold a state dict of tensors")
            self.tensors.update(sd)

    def keys(self):
        return list(self.tensors)

    def shape(self, key):
        return tuple(self.tensors[key].shape)

    def get(self, key) -> np.ndarray:
        t = self.tensors[key]
        if not t.is_floating_point():
            raise ModelError(f"tensor {key!r} has dtype {t.dtype}, expected a float type")
        return t.detach().float().numpy()


def _index_files(index: Path) -> list[Path]:
    try:
        wm = json.loads(index.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"cannot read shard index {index}: {e}") from None
    return [index.parent / f for f in dict.fromkeys(wm.values())]


def open_weight_files(folder: Path):
    """The reader for a folder's weights (safetensors preferred)."""
    if (folder / "model.safetensors").is_file():
        return _SafetensorsFiles([folder / "model.safetensors"]), folder / "model.safetensors"
    if (folder / "model.safetensors.index.json").is_file():
        idx = folder / "model.safetensors.index.json"
        return _SafetensorsFiles(_index_files(idx)), idx
    if (folder / "pytorch_model.bin").is_file():
        return _TorchFiles([folder / "pytorch_model.bin"]), folder / "pytorch_model.bin"
    if (folder / "pytorch_model.bin.index.json").is_file():
        idx = folder / "pytorch_model.bin.index.json"
        return _TorchFiles(_index_files(idx)), idx
    raise ModelError(f"{folder}: no weights file (looked for {', '.join(WEIGHT_FILES)})")


def load_hf_config(path, name: str | None = None):
    """The GPT2Config of a checkpoint folder, from its config.json alone (no weights file needed)."""
    folder = Path(path)
    if not folder.exists():
        raise ModelError(f"no such checkpoint folder: {folder}")
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder (a Hugging Face checkpoint is a folder with config.json)")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{folder}: no config.json (not a Hugging Face checkpoint folder)")
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{cfg_path}: cannot parse: {e}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{cfg_path}: not a JSON object")
    return config_from_hf(raw, name or folder.resolve().name, str(cfg_path))


def load_hf_folder(path, name: str | None = None) -> GPT2Model:
    """A GPT-2 LM-head checkpoint folder (save_pretrained layout) -> GPT2Model, weights lazy.

    All names and shapes are checked here, from the file headers, before any tensor is read
    (so the compiler's capacity check answers before any weight is loaded); that a stored
    lm_head.weight equals wte is checked when wte is read.
    """
    folder = Path(path)
    config = load_hf_config(folder, name)
    files, wfile = open_weight_files(folder)

    shapes = canonical_shapes(config)
    key_of: dict[str, str] = {}
    for key in files.keys():
        canon = canonical_key(key)
        if canon is None:
            continue
        if canon not in shapes:
            raise ModelError(f"{wfile}: unexpected tensor {key!r} (not part of a {config.n_layer}-layer "
                             f"GPT-2 LM head)")
        if canon in key_of:
            raise ModelError(f"{wfile}: tensor {canon!r} is stored twice ({key_of[canon]!r} and {key!r})")
        key_of[canon] = key
    for canon, want in shapes.items():
        if canon not in key_of:
            raise ModelError(f"{wfile}: missing tensor {canon!r} (also looked for {PREFIX + canon!r})")
        check_shape(canon, files.shape(key_of[canon]), want, str(wfile))

    tied = TIED_HEAD in set(files.keys())
    if tied:
        check_shape(TIED_HEAD, files.shape(TIED_HEAD), shapes["wte"], str(wfile))

    def get(n):
        t = files.get(key_of[n])
        if n == "wte" and tied and not np.array_equal(files.get(TIED_HEAD), t):
            raise ModelError(f"{wfile}: lm_head.weight differs from wte; dfx supports only GPT-2 with "
                             f"the LM head tied to the token embedding")
        return t

    source = {"kind": "hf", "path": str(folder.resolve()), "weights_file": wfile.name}
    return GPT2Model(config, Weights(config, source, get))
