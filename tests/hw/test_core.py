"""The whole dfx core in RTL against the exact simulator, call by call, on compiled bundles.

`dfx compile --target tiny` bundles of a small random GPT-2 run on N cores of hw/rtl/dfx_core_flat
joined in a ring (the `rtl` host backend: hw/sim/dfx_tb.v on Verilator, memory models in HDL)
and on dfx.sim in exact mode. For every call (summarization of the prompt, then generation
steps) the logits of every card and the chosen ids must be equal bit for bit, and the core's
status record must report a clean END with its cycle counters.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from dfx.compiler.driver import compile_model
from dfx.host.runtime import Session

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

PROMPT = [3, 5, 7, 9, 11]
STEPS = 3  # generation calls after the summarization call


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=128, initializer_range=0.2,
                     bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).eval().save_pretrained(folder)
    return folder


def _calls(session: Session):
    """Logits (FP32 of the FP16 results) and argmax of the summarization call and STEPS generation calls."""
    out = []
    logits, best, _ = session.call("summarize", PROMPT, 0)
    out.append((logits, best))
    pos, tok = len(PROMPT), best
    for _ in range(STEPS):
        logits, best, _ = session.call("generate", [tok], pos)
        out.append((logits, best))
        pos, tok = pos + 1, best
    return out


@pytest.mark.parametrize("n", [1, 2])
def test_bundle_rtl_equals_exact_sim(model, tmp_path, n):
    compile_model(str(model), n, tmp_path / "b", target="tiny", max_seq=64, progress=False)
    bundle = tmp_path / "b"
    sim = Session(bundle, backend="sim", mode="exact")
    want = _calls(sim)
    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    rtl = Session(bundle, backend="rtl", sim="verilator", hbm_bytes=max(c["hbm_bytes"] for c in cards))
    try:
        got = _calls(rtl)
        counters = [d.counters() for d in rtl.devices]
    finally:
        rtl.close()
    for k, ((gl, gb), (wl, wb)) in enumerate(zip(got, want)):
        assert gb == wb, f"call {k}: rtl argmax {gb}, exact sim {wb}"
        assert np.array_equal(gl.view(np.uint32), wl.view(np.uint32)), f"call {k}: logits differ"
    # the last call's status record: a clean END, with cycles counted
    for c in counters:
        assert c["code"] == 0 and c["cycles"] > 0 and c["retired"] == c["pc"] + 1
