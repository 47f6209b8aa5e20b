"""The whole dfx core in RTL against the exact simulator, call by call, on compiled bundles.

`dfx compile --target tiny` bundles of small random GPT-2s run on N cores of hw/rtl/dfx_core_flat
joined in a ring (the `rtl` host backend: hw/sim/dfx_tb.v on Verilator, memory models in HDL)
and on dfx.sim in exact mode, through the same Session.stream. For every call that chooses a
token (the prompt's last summarization block, then each generation call) the logits and the
chosen id must be equal bit for bit. Both sides write a retire trace (core, pc, opcode): they
must hold the same instructions the same number of times, every opcode of the bundle's programs
must have retired on every core, and each core's status record must report a clean END.
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from dfx.arch import encoding, isa
from dfx.compiler.driver import compile_model
from dfx.host.runtime import Session

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

# (model shape, cards, prompt tokens, generated tokens). Uneven head splits: 4 heads on 3 cards
# (2, 1, 1) and 6 heads on 4 cards (2, 2, 1, 1). A 20-token prompt takes two summarization
# calls on the tiny target (summarization_rows = 16).
SHAPES = {"d32h4": dict(n_layer=2, n_embd=32, n_head=4, vocab_size=128),
          "d48h6": dict(n_layer=1, n_embd=48, n_head=6, vocab_size=100)}
CASES = [("d32h4", 1, 5, 4), ("d32h4", 2, 20, 8), ("d32h4", 3, 20, 8), ("d48h6", 4, 20, 8)]


def _model(folder: Path, shape: str) -> Path:
    if not (folder / "config.json").exists():
        torch.manual_seed(1)
        cfg = GPT2Config(n_positions=64, initializer_range=0.2, bos_token_id=0, eos_token_id=0, **SHAPES[shape])
        GPT2LMHeadModel(cfg).eval().save_pretrained(folder)
    return folder


def _run(session: Session, prompt: list[int], new: int, stats: dict | None = None, cycles: list | None = None):
    """(token, logits) of every call of one generation: the summarization's, then each step's.
    cycles: receives each call's device_cycles, read from card 0 after the step."""
    out = []
    for s in session.stream(prompt, max_new_tokens=new, eos_token_id=None, keep_logits=True, stats=stats):
        out.append((s.token, s.logits))
        if cycles is not None:
            cycles.append(session.devices[0].counters()["device_cycles"])
    return out


def _opcodes(bundle: Path, card: dict) -> set[int]:
    ops = set()
    for prog in card["programs"].values():
        ops |= {ins.op.code for ins in encoding.unpack_program((bundle / prog["file"]).read_bytes())}
    return ops


@pytest.mark.parametrize("shape,n,prompt_len,new", CASES, ids=[f"{s}-n{n}" for s, n, _, _ in CASES])
def test_bundle_rtl_equals_exact_sim(tmp_path_factory, tmp_path, shape, n, prompt_len, new):
    model = _model(tmp_path_factory.getbasetemp() / f"gpt2-{shape}", shape)
    bundle = tmp_path / "b"
    compile_model(str(model), n, bundle, target="tiny", max_seq=64, progress=False)
    rng = np.random.default_rng(prompt_len * 10 + n)
    prompt = [int(t) for t in rng.integers(1, SHAPES[shape]["vocab_size"], prompt_len)]
    sim = Session(bundle, backend="sim", mode="exact", trace=tmp_path / "sim-retire.txt")
    try:
        want = _run(sim, prompt, new)
    finally:
        sim.close()
    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    trace = tmp_path / "retire.txt"
    rtl = Session(bundle, backend="rtl", sim="verilator", hbm_bytes=max(c["hbm_bytes"] for c in cards), trace=trace)
    try:
        stats, cycles = {}, []
        got = _run(rtl, prompt, new, stats, cycles)
        counters = [d.counters() for d in rtl.devices]
    finally:
        rtl.close()
    assert len(got) == len(want) == new
    for k, ((gt, gl), (wt, wl)) in enumerate(zip(got, want)):
        assert gt == wt, f"call {k}: rtl chose {gt}, the exact simulator {wt}"
        assert np.array_equal(gl.view(np.uint32), wl.view(np.uint32)), f"call {k}: logits differ"
    # `dfx generate --json` reports device_cycles per phase: the generation calls' cycles, summed
    assert stats["generation"].counters["device_cycles"] == sum(cycles[1:])
    # both retire traces (lines: core pc op cycle) hold the same instructions, as often
    rtl_ret = Counter(tuple(map(int, line.split()[:3])) for line in trace.read_text().splitlines())
    sim_ret = Counter(tuple(map(int, line.split()[:3])) for line in (tmp_path / "sim-retire.txt").read_text().splitlines())
    for key in sim_ret.keys() | rtl_ret.keys():
        assert rtl_ret[key] == sim_ret[key], (f"core {key[0]} pc {key[1]} ({isa.BY_CODE[key[2]].name}) retired "
                                              f"{rtl_ret[key]} times on the RTL, {sim_ret[key]} in the simulator")
    # every opcode of the programs retired on every core
    retired = [set() for _ in range(n)]
    for core, _pc, op in rtl_ret:
        retired[core].add(op)
    for c, card in enumerate(cards):
        want_ops = _opcodes(bundle, card)
        assert retired[c] == want_ops, (f"core {c}: opcodes in the programs but never retired: "
                                        f"{sorted(isa.BY_CODE[o].name for o in want_ops - retired[c])}")
    # the last call's status record: a clean END, with cycles counted
    for c in counters:
        assert c["code"] == 0 and c["cycles"] > 0 and c["retired"] == c["pc"] + 1
