"""The Python API: compile a model to a bundle, load it, generate (Hugging Face's names).

    import dfx
    bundle = dfx.compile("models/demo-gpt2", fpgas=2, out="demo.dfx")
    session = dfx.Session(bundle, backend="sim", mode="fast")
    ids = session.generate([464, 2068, 7586], max_new_tokens=8)   # prompt + new ids

`dfx.compile` is `dfx compile`; `dfx.Session` is dfx.host.runtime.Session, whose `generate`
takes HF generate()'s arguments and `stream` yields the tokens one by one. Everything is
imported when first used, so `import dfx` stays light.
"""

from __future__ import annotations

from pathlib import Path


def compile(model, fpgas: int = 1, out=None, *, target: str = "u280", max_seq: int | None = None,
            random_weights: bool = False, seed: int = 0, init_std: float = 0.02, progress: bool = False):
    """`dfx compile MODEL --fpgas N [-o OUT] ...`: writes the bundle and returns it (a Bundle).

    model: a preset name, a Hugging Face checkpoint folder or an .onnx file; out: the bundle
    folder (default MODEL-NFPGA.dfx in the working folder, as the command line)."""
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.driver import compile_model, default_output

    out = Path(out) if out is not None else default_output(model, fpgas)
    compile_model(str(model), fpgas, out, target=target, max_seq=max_seq, random_weights=random_weights,
                  seed=seed, init_std=init_std, progress=progress)
    return Bundle(out)


def tokenizer(bundle=None):
    """The tokenizer for a bundle (its checkpoint folder's, else GPT-2's); None: GPT-2's."""
    from dfx.compiler.bundle import Bundle
    from dfx.host.tokenizer import bundle_tokenizer, load_tokenizer

    if bundle is None:
        return load_tokenizer(None)
    return bundle_tokenizer(bundle if isinstance(bundle, Bundle) else Bundle(bundle))
