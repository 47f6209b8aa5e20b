"""One entry point for every model frontend: presets, HF checkpoint folders, ONNX files."""

from __future__ import annotations

from pathlib import Path

from dfx.errors import ModelError

from .model import GPT2Model
from . import presets
from .presets import PRESETS, load_preset


def load_model(spec: str, random_weights: bool = False, seed: int = 0, init_std: float = 0.02,
               n_head: int | None = None, **random_kw) -> GPT2Model:
    """``spec`` is a preset name, a Hugging Face checkpoint folder or a ``*.onnx`` file.

    With ``random_weights`` the model keeps its configuration (from the preset, config.json or the
    graph) and gets seeded random weights instead of its own (see presets.random_weights;
    ``random_kw`` passes wte_std, bias_std, ln_std, scale_residual). ``n_head`` is only used for
    ONNX graphs whose head count is not visible in constant shapes.
    """
    spec = str(spec)
    if spec in PRESETS:
        return load_preset(spec, random=random_weights, seed=seed, init_std=init_std, **random_kw)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"no such model or file: {spec} (presets: {', '.join(PRESETS)})")
    if path.is_dir():
        from .hf import load_hf_config, load_hf_folder

        if random_weights:  # config.json is all it needs: no weights file is opened
            config = load_hf_config(path)
            weights = presets.random_weights(config, seed, init_std, **random_kw)
            weights.source["config_from"] = {"kind": "hf", "path": str(path.resolve()), "file": "config.json"}
            return GPT2Model(config, weights)
        model = load_hf_folder(path)
    elif path.suffix.lower() == ".onnx":
        from .onnx_frontend import load_onnx

        model = load_onnx(path, n_head=n_head)
    elif path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
        raise ModelError(f"{spec}: give the checkpoint folder ({path.parent}), not one of its files")
    else:
        raise ModelError(f"{spec}: not a preset, a checkpoint folder or an .onnx file")
    if random_weights:
        weights = presets.random_weights(model.config, seed, init_std, **random_kw)
        weights.source["config_from"] = model.weights.source
        return GPT2Model(model.config, weights)
    return model
