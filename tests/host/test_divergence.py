"""dfx.host.divergence on the simulator alone: two exact-mode runs of one bundle, one of them with
one weight word changed in HBM before it starts. (The RTL side, with a fault injected by the
testbench, is tests/hw/test_core.py.)"""

import json

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from dfx.compiler.bundle import Bundle
from dfx.compiler.driver import compile_model
from dfx.host.divergence import RecordingSession, SimWriteLog, first_divergence, hbm_difference
from dfx.arch.hbm import channel_of

PROMPT, NEW = [3, 1, 4, 1, 5], 2


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("div")
    torch.manual_seed(2)
    cfg = GPT2Config(n_positions=64, n_layer=2, n_embd=32, n_head=4, vocab_size=64, initializer_range=0.2)
    GPT2LMHeadModel(cfg).eval().save_pretrained(root / "m")
    compile_model(str(root / "m"), 2, root / "b", target="tiny", max_seq=64, progress=False)
    return root / "b"


def _run(bundle, poke=None):
    """A recorded exact-simulator generation; poke = (card, address, byte) is written first."""
    s = RecordingSession(bundle, backend="sim", mode="exact")
    log = SimWriteLog(s.devices)
    if poke is not None:
        card, addr, value = poke
        s.devices[card].write_mem("hbm", addr, bytes([value]))
    for _ in s.stream(PROMPT, max_new_tokens=NEW, eos_token_id=None):
        pass
    s.close()
    return s, log


def test_equal_runs_have_no_difference(bundle):
    a, alog = _run(bundle)
    b, blog = _run(bundle)
    assert len(a.calls) == NEW and sum(len(r) for r in alog.runs.values()) == 2 * NEW  # 2 cards, every call
    for x, y in zip(a.calls, b.calls):
        assert hbm_difference(a.bundle.cards, x.hbm, y.hbm, a.target) is None
    assert first_divergence(alog, blog) is None


def test_hbm_difference_names_card_address_channel_and_region(bundle):
    a, _ = _run(bundle)
    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    region = next(r for r in cards[1]["regions"] if r["kind"] == "kv")
    addr = region["addr"] + 37
    imgs = [h.copy() for h in a.calls[-1].hbm]
    imgs[1][addr] ^= 0x10
    d = hbm_difference(cards, imgs, a.calls[-1].hbm, a.target)
    assert (d.card, d.addr, d.a ^ d.b, d.count) == (1, addr, 0x10, 1)
    assert (d.channel, d.offset) == channel_of(addr, a.target.port_bytes, a.target.hbm.channels)
    assert region["name"] in d.region
    # the status record is not compared (the simulator writes none, the RTL does)
    imgs = [h.copy() for h in a.calls[-1].hbm]
    imgs[0][cards[0]["io"]["status"]] ^= 1
    assert hbm_difference(cards, imgs, a.calls[-1].hbm, a.target) is None


def test_changed_weight_is_found_at_the_first_instruction_reading_it(bundle):
    b = Bundle(bundle)
    card = 1
    region = next(r for r in b.cards[card]["regions"] if r["kind"] == "weights" and r["name"].endswith(".fc"))
    prog = b.program(card, "summarization")
    want = next(pc for pc, ins in enumerate(prog) if ins.op.unit == "mpu" and ins.w == region["addr"])
    a, alog = _run(bundle)
    addr = region["addr"] + 1  # the high byte of the first weight word: its sign and exponent
    orig = int(a.devices[card].core.hbm.buf[addr])
    _, blog = _run(bundle, (card, addr, orig ^ 0x40))
    div = first_divergence(blog, alog, b.cards)
    assert div is not None
    assert (div.call, div.core, div.pc, div.op) == (0, card, want, prog[want].op.name), str(div)
    assert div.phase == "summarization" and div.space == "buf"
