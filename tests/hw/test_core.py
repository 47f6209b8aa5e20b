"""The whole dfx core in RTL against the exact simulator, call by call, on compiled bundles.

`dfx compile --target tiny` bundles of small random GPT-2s run on N cores of hw/rtl/dfx_core_flat
joined in a ring (the `rtl` host backend: hw/sim/dfx_tb.v on Verilator, memory models in HDL)
and on dfx.sim in exact mode, through the same Session.stream. After every call (each
summarization block and each generation step) every card's whole HBM must be equal bit for bit
(the logits, argmax and KV cache are in it; the RTL's status record is not compared), and for
every call that chooses a token the logits and the chosen id. Both sides write a retire trace
(core, pc, opcode): they must hold the same instructions the same number of times, every opcode
of the bundle's programs must have retired on every core, and each core's status record must
report a clean END. On any difference the test runs the same calls again with both write logs
on and fails naming the first instruction whose writes differ (dfx.host.divergence).

At DFX's sizes, one gpt2-medium-shaped layer on a u280-dfx core runs the same checks, opt-in
(DFX_RTL_U280_SMOKE=1: a 4-minute build and about 3 minutes of simulation).

The localiser itself is tested by fault injection: the testbench inverts one bit of one buffer
write (+corrupt) and the localiser must name the instruction that made that write.
"""

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from dfx.arch import encoding, isa
from dfx.compiler.bundle import Bundle
from dfx.compiler.driver import compile_model
from dfx.host.divergence import RecordingSession, hbm_difference, localise

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

# (model shape, cards, prompt tokens, generated tokens, target). Uneven head splits: 4 heads on
# 3 cards (2, 1, 1) and 6 heads on 4 cards (2, 2, 1, 1). A 20-token prompt takes two
# summarization calls on the tiny target (summarization_rows = 16). tiny-ddr is tiny with a DDR,
# where the compiler puts the embedding tables: its embeds read their rows from the DDR.
SHAPES = {"d32h4": dict(n_layer=2, n_embd=32, n_head=4, vocab_size=128),
          "d48h6": dict(n_layer=1, n_embd=48, n_head=6, vocab_size=100),
          # one layer of gpt2-medium's shape, its vocabulary too: the u280-dfx smoke run
          "medium1": dict(n_layer=1, n_embd=1024, n_head=16, vocab_size=50257)}
CASES = [("d32h4", 1, 5, 4, "tiny"), ("d32h4", 2, 20, 8, "tiny"), ("d32h4", 3, 20, 8, "tiny"),
         ("d48h6", 4, 20, 8, "tiny"), ("d32h4", 2, 20, 4, "tiny-ddr")]


def _model(folder: Path, shape: str) -> Path:
    if not (folder / "config.json").exists():
        torch.manual_seed(1)
        cfg = GPT2Config(n_positions=64, initializer_range=0.2, bos_token_id=0, eos_token_id=0, **SHAPES[shape])
        GPT2LMHeadModel(cfg).eval().save_pretrained(folder)
    return folder


def _run(session: RecordingSession, prompt: list[int], new: int, stats: dict | None = None, cycles: list | None = None):
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


def _bundle(tmp_path_factory, tmp_path, shape, n, prompt_len, target="tiny"):
    model = _model(tmp_path_factory.getbasetemp() / f"gpt2-{shape}", shape)
    bundle = tmp_path / "b"
    compile_model(str(model), n, bundle, target=target, max_seq=64, progress=False)
    rng = np.random.default_rng(prompt_len * 10 + n)
    prompt = [int(t) for t in rng.integers(1, SHAPES[shape]["vocab_size"], prompt_len)]
    cards = json.loads((bundle / "manifest.json").read_text())["cards"]
    return bundle, prompt, cards, dict(sim="verilator", hbm_bytes=max(c["hbm_bytes"] for c in cards))


def _differences(cards, target, sim: RecordingSession, rtl: RecordingSession, want, got, sim_ret, rtl_ret) -> list[str]:
    """Every difference between the two runs, first call first: HBM after each call, the chosen
    ids and logits, then the retire counts."""
    out = []
    assert len(rtl.calls) == len(sim.calls)
    for k, (r, s) in enumerate(zip(rtl.calls, sim.calls)):
        d = hbm_difference(cards, r.hbm, s.hbm, target)
        if d is not None:
            out.append(f"call {k} ({r.phase}, pos {r.pos}, {r.ntok} tokens): HBM differs, rtl vs sim: {d}")
    for k, ((gt, gl), (wt, wl)) in enumerate(zip(got, want)):
        if gt != wt:
            out.append(f"step {k}: rtl chose {gt}, the exact simulator {wt}")
        if not np.array_equal(gl.view(np.uint32), wl.view(np.uint32)):
            out.append(f"step {k}: logits differ")
    for key in sorted(sim_ret.keys() | rtl_ret.keys()):
        if rtl_ret[key] != sim_ret[key]:
            out.append(f"core {key[0]} pc {key[1]} ({isa.BY_CODE[key[2]].name}) retired {rtl_ret[key]} times "
                       f"on the RTL, {sim_ret[key]} in the simulator")
    return out


def _retired(path: Path) -> Counter:
    return Counter(tuple(map(int, line.split()[:3])) for line in path.read_text().splitlines())


def _ddr(session, cards) -> list[bytes]:
    """Each card's DDR bytes up to the end of its last DDR region (none: empty)."""
    ends = [max((r["addr"] + r["bytes"] for r in c["regions"] if r["space"] == "ddr"), default=0) for c in cards]
    return [d.read_mem("ddr", 0, e) if e else b"" for d, e in zip(session.devices, ends)]


@pytest.mark.parametrize("shape,n,prompt_len,new,target", CASES,
                         ids=[f"{s}-n{n}" + ("" if t == "tiny" else f"-{t}") for s, n, _, _, t in CASES])
def test_bundle_rtl_equals_exact_sim(tmp_path_factory, tmp_path, shape, n, prompt_len, new, target):
    _check_bundle(tmp_path_factory, tmp_path, shape, n, prompt_len, new, target)


@pytest.mark.skipif(os.environ.get("DFX_RTL_U280_SMOKE") != "1",
                    reason="opt-in (DFX_RTL_U280_SMOKE=1): a u280-dfx Verilator build and a d=1024 layer")
def test_u280_dfx_smoke_one_gpt2_medium_layer(tmp_path_factory, tmp_path):
    """DFX's own sizes (u280-dfx: 16 x 64 MPU, 64-wide VPU, 32 HBM channels of 512 bits, the
    embeddings in the DDR): one layer of gpt2-medium's shape with its 50,257-token vocabulary on
    one card, a 5-token prompt (token by token, u280-dfx's schedule: five calls) and 3 tokens (two
    generation calls), with every check of the tiny bundles. Its cycles are printed by `python scripts/bench_rtl.py --target
    u280-dfx --cards 1 --layers 1 --d 1024 --heads 16 --vocab 50257 --prompt 5 --tokens 3 --no-mpu`
    (docs/hw.md records them)."""
    _check_bundle(tmp_path_factory, tmp_path, "medium1", 1, 5, 3, "u280-dfx")


def _check_bundle(tmp_path_factory, tmp_path, shape, n, prompt_len, new, target):
    bundle, prompt, cards, rtl_opts = _bundle(tmp_path_factory, tmp_path, shape, n, prompt_len, target)
    sim = RecordingSession(bundle, backend="sim", mode="exact", trace=tmp_path / "sim-retire.txt")
    try:
        want = _run(sim, prompt, new)
        sim_ddr = _ddr(sim, cards)
    finally:
        sim.close()
    trace = tmp_path / "retire.txt"
    rtl = RecordingSession(bundle, backend="rtl", trace=trace, **rtl_opts)
    try:
        stats, cycles = {}, []
        got = _run(rtl, prompt, new, stats, cycles)
        counters = [d.counters() for d in rtl.devices]
        rtl_ddr = _ddr(rtl, cards)
    finally:
        rtl.close()
    assert len(got) == len(want) == new
    # both retire traces (lines: core pc op cycle) hold the same instructions, as often
    rtl_ret, sim_ret = _retired(trace), _retired(tmp_path / "sim-retire.txt")
    problems = _differences(cards, sim.target, sim, rtl, want, got, sim_ret, rtl_ret)
    problems += [f"card {j}: the DDR differs after the last call" for j, (r, s) in enumerate(zip(rtl_ddr, sim_ddr))
                 if r != s]
    if problems:
        div = localise(bundle, prompt, new, tmp_path / "rtl-writes.log", **rtl_opts)
        pytest.fail(f"{len(problems)} differences, the first: {problems[0]}\nthe first instruction whose writes "
                    f"differ: {div if div is not None else 'none (every write of every instruction matches)'}")
    # `dfx generate --json` reports device_cycles per phase: the generation calls' cycles, summed
    assert stats["generation"].counters["device_cycles"] == sum(cycles[1:])
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


def test_fault_injected_into_one_buffer_write_is_named_by_the_localiser(tmp_path_factory, tmp_path):
    """+corrupt inverts bit 14 of the lowest word of core 1's N-th buffer write, N chosen in the
    middle of the second call (the first generation step). Without it the localiser reports
    nothing; with it, it names that call, core and pc (the instruction the clean run's write log
    shows making the N-th write), the word, and values that differ in exactly that bit."""
    core, bit = 1, 14
    bundle, prompt, cards, rtl_opts = _bundle(tmp_path_factory, tmp_path, "d32h4", 2, 5)
    clean_log = tmp_path / "clean.log"
    clean = localise(bundle, prompt, 2, clean_log, **rtl_opts)
    assert clean is None, f"without a fault the localiser reports {clean}"
    writes, call = [], -1  # core 1's buffer writes in order: (call, pc, word of the lowest lane)
    for f in (line.split() for line in clean_log.read_text().splitlines()):
        if f[0] == "s" and int(f[1]) == core:
            call += 1
        elif f[0] == "b" and int(f[1]) == core:
            mask = int(f[5], 16)
            writes.append((call, int(f[3]), int(f[4], 16) + (mask & -mask).bit_length() - 1))
    second = [i for i, w in enumerate(writes) if w[0] == 1]
    assert second, "core 1 made no buffer write in the second call"
    nth = second[len(second) // 2] + 1
    _call, pc, word = writes[nth - 1]
    op = Bundle(bundle).program(core, "generation")[pc].op.name
    div = localise(bundle, prompt, 2, tmp_path / "faulty.log", corrupt=(core, nth, bit), **rtl_opts)
    assert div is not None, "the injected fault was not found"
    assert (div.call, div.core, div.pc, div.op) == (1, core, pc, op), f"expected call 1, core {core}, pc {pc} ({op}): {div}"
    assert div.space == "buf" and div.addr == word and div.rtl ^ div.sim == 1 << bit, str(div)
