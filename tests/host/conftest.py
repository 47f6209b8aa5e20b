"""Fixtures of the host tests: small bundles for the tiny target (the RTL's target too)."""

from pathlib import Path

import pytest

MODEL = dict(n_layer=2, n_embd=32, n_head=4, vocab_size=128)  # 4 heads: N = 1, 2, 4 cards
PROMPT = [46, 20, 75, 21, 18, 62, 26, 16, 32, 13, 7, 99, 5, 64, 3, 87, 41, 2, 111, 9]  # 20: two prompt calls


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """tiny_bundle(n, target="tiny") -> the folder of a bundle of a random 2-layer model for n cards
    of a target (tiny: the RTL's; u280 keeps the embeddings in DDR)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dfx.compiler.driver import compile_model

    base = tmp_path_factory.mktemp("tiny-bundles")
    model = base / "model"
    cache: dict[tuple, Path] = {}

    def get(n: int, target: str = "tiny") -> Path:
        if (n, target) not in cache:
            if not (model / "config.json").exists():
                with torch.random.fork_rng():
                    torch.manual_seed(1)
                    cfg = GPT2Config(n_positions=64, initializer_range=0.2, bos_token_id=0, eos_token_id=0, **MODEL)
                    GPT2LMHeadModel(cfg).eval().save_pretrained(model)
            out = base / f"{target}-{n}"
            compile_model(str(model), n, out, target=target, max_seq=64, progress=False)
            cache[n, target] = out
        return cache[n, target]
    return get


@pytest.fixture(scope="session")
def tiny_prompt():
    return list(PROMPT)
