"""The performance model: traffic equal to the functional simulator's counters, sane trends,
the CLI's JSON and errors, and the u280 design changes keeping results bit-identical."""

import json

import numpy as np
import pytest

from dfx.arch.target import TARGET_DIR, load_target_file
from dfx.compiler.driver import compile_model
from dfx.compiler.model import GPT2Config, GPT2Model
from dfx.compiler.presets import random_weights
from dfx.errors import TargetError
from dfx.perf import cli
from dfx.perf.model import CycleModel
from dfx.perf.report import JSON_KEYS, Predictor, load_programs
from dfx.sim.appliance import Appliance

SMALL = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=96, n_positions=64, name="small")


def small_model(cfg=SMALL, seed=1):
    return GPT2Model(cfg, random_weights(cfg, seed, 0.2, bias_std=0.1, ln_std=0.1))


def compiled(target, fpgas, cfg=SMALL, max_seq=64):
    return compile_model("small", fpgas, None, target=target, max_seq=max_seq, model=small_model(cfg),
                         progress=False, stop_after="manifest")


def sim_run(s, ids, pos, phase):
    """Run one call of `phase` on the exact simulator; returns (counters per core, appliance)."""
    app = s._sim
    for j, core in enumerate(app.cores):
        addr = s.plans[j].regions["io.ids"].addr
        core.hbm.write(addr, np.asarray(ids, "<i4").tobytes(), count=False)
    entries = [s.manifest["cards"][j]["programs"][phase]["entry"] for j in range(s.fpgas)]
    return app.run(entries, {"ntok": len(ids), "pos": pos})


def load_sim(s):
    app = Appliance(s.target, s.fpgas, "exact")
    for j, core in enumerate(app.cores):
        core.hbm.write(0, s.images.hbm[j], count=False)
        if core.ddr is not None and s.images.ddr[j].size:
            core.ddr.write(0, s.images.ddr[j], count=False)
    s._sim = app
    return s


@pytest.mark.parametrize("target,fpgas", [("tiny", 1), ("tiny", 2), ("u280-dfx", 1), ("u280", 2)])
def test_traffic_equals_simulator(target, fpgas):
    s = load_sim(compiled(target, fpgas))
    model = CycleModel(s.target, s.programs)
    ids = [3, 17, 42, 5, 77]
    for phase, toks, pos in (("summarization", ids, 0), ("generation", [9], len(ids))):
        got = sim_run(s, toks, pos, phase)
        c = model._call(phase, len(toks), pos)
        for j in range(fpgas):
            assert c.hbm_read[j].tolist() == got[j]["hbm_read_bytes"], (phase, j)
            assert c.hbm_write[j].tolist() == got[j]["hbm_write_bytes"], (phase, j)
            assert c.macs[j] == got[j]["macs"]
            assert c.ring_bytes[j] == got[j]["ring_bytes_sent"]
            assert c.ddr_bytes[j] == got[j].get("ddr_read_bytes", 0) + got[j].get("ddr_write_bytes", 0)
        # no call ends before its busiest unit has done its work, nor before HBM moved its bytes
        assert c.cycles >= max(max(u.values()) for u in c.unit_cycles)
        assert c.cycles >= max(c.hbm_bytes) / model.r.hbm_bpc


def test_u280_design_changes_keep_results(tmp_path):
    """u280 differs from u280-dfx in its ring word and scheduling, and u280 as it was until 0c7ed0b
    (32 lanes, 1024-bit ports) in lanes and port width: same logits, bit for bit."""
    cfg = GPT2Config(n_layer=2, n_embd=128, n_head=2, vocab_size=128, n_positions=64, name="small")
    src = (TARGET_DIR / "u280.toml").read_text()
    wide = (src.replace('name = "u280"', 'name = "u280-32-lanes"', 1).replace("lanes = 16  ", "lanes = 32  ", 1)
            .replace("port_bits = 512           # one AXI port per pseudo-channel", "port_bits = 1024  #", 1))
    (tmp_path / "u280-32-lanes.toml").write_text(wide)
    t = load_target_file(tmp_path / "u280-32-lanes.toml")
    assert (t.matrix.lanes, t.hbm.port_bits) == (32, 1024)
    out = {}
    for target in ("u280-dfx", "u280", str(tmp_path / "u280-32-lanes.toml")):
        s = load_sim(compiled(target, 1, cfg))
        ids = [1, 2, 3, 4, 5, 6, 7]
        logits = []
        for phase, toks, pos in (("summarization", ids, 0), ("generation", [11], len(ids))):
            sim_run(s, toks, pos, phase)
            r = s.plans[0].regions["io.logits"]
            logits.append(bytes(s._sim.cores[0].hbm.read(r.addr, cfg.vocab_size * 2, count=False)))
        out[target] = logits
    assert out["u280"] == out["u280-dfx"] == out[str(tmp_path / "u280-32-lanes.toml")]
    assert any(b != 0 for b in out["u280"][1])


def test_more_fpgas_less_time_per_token():
    dec = []
    for n in (1, 2, 4):
        p = load_programs("gpt2-medium", n, "u280")
        dec.append(CycleModel(p.target, p.programs).call("generation", 1, 64).seconds)
    assert dec[0] > dec[1] > dec[2]


def test_sync_dominates_eventually():
    """Tiny per-card work on many cards: the ring's share grows with the card count."""
    shares = []
    for n in (2, 8):
        p = load_programs("gpt2", n, "u280-dfx")
        c = CycleModel(p.target, p.programs).call("generation", 1, 64)
        shares.append(c.busy["sync"] / c.cycles)
    assert shares[1] > shares[0] > 0


def test_longer_context_more_attention_time():
    p = load_programs("gpt2", 1, "u280")
    a = CycleModel(p.target, p.programs)
    short, long = a.call("generation", 1, 16), a.call("generation", 1, 900)
    assert long.cycles > short.cycles
    assert long.macs[0] > short.macs[0]
    assert sum(long.hbm_bytes) > sum(short.hbm_bytes)


def test_dfx_summarization_is_token_serial():
    p = load_programs("gpt2", 1, "u280-dfx")
    r = Predictor(p, exact=True).predict(16, 2)
    # one matrix-vector pass per prompt token: about n_in times one token's cost
    assert r["ttft_ms"] == pytest.approx(16 * r["generation_ms_per_token"], rel=0.05)
    ours = Predictor(load_programs("gpt2", 1, "u280"), exact=True).predict(16, 2)
    # ours runs the 16 rows in one call, but the RTL's MPU path streams every weight tile once per
    # input row (dfx_mpu_path.v): the block saves vector and control work, not weight traffic
    assert 8 * ours["generation_ms_per_token"] < ours["ttft_ms"] < r["ttft_ms"]


def test_latencies_come_from_the_target(tmp_path):
    src = (TARGET_DIR / "u280-dfx.toml").read_text()
    path = tmp_path / "slow.toml"
    path.write_text(src.replace("add_latency = 11          # FP32 adders", "add_latency = 22          # FP32 adders", 1)
                    .replace('name = "u280-dfx"', 'name = "slow"'))
    slow = load_target_file(path)
    assert slow.matrix.add_latency == 22
    base = load_programs("gpt2", 1, "u280-dfx")
    a = CycleModel(base.target, base.programs).call("generation", 1, 8)
    b = CycleModel(slow, base.programs).call("generation", 1, 8)
    assert b.cycles > a.cycles


def test_attention_is_bound_by_the_read_queue(tmp_path):
    """Attention's products ask for one or two k-tiles per request: with rt = 37 and 8 requests in
    flight each takes about (rt - 1 + n) / 8 cycles, so halving the queue slows them, while the
    one-row weight products (16 k-tiles per request) do not move."""
    src = (TARGET_DIR / "u280.toml").read_text()
    path = tmp_path / "q4.toml"
    path.write_text(src.replace("read_queue = 8 ", "read_queue = 4 ", 1).replace('name = "u280"', 'name = "q4"'))
    q4 = load_target_file(path)
    assert q4.buffers.read_queue == 4
    base = load_programs("gpt2", 1, "u280")
    dur = {}
    for t in (base.target, q4):
        res = CycleModel(t, base.programs)._pass("generation", 1, 200, None)[0]
        prog = base.programs["generation"][0]
        dur[t.name] = {}
        for pc, _u, s, e in res["retired"]:
            dur[t.name].setdefault(prog[pc].op.name, e - s)
    assert dur["q4"]["maskedmm"] > 1.5 * dur["u280"]["maskedmm"]
    assert dur["q4"]["conv1d"] == dur["u280"]["conv1d"]


def test_free_parts_bound_decode_from_below():
    """Costs.FREE bounds (scripts/bench_perf.py): each part made free takes time off, all of them
    leave the weight stream, and an unknown part is an error."""
    from dfx.perf.model import Costs, PerfError

    p = load_programs("gpt2", 2, "u280")
    cycles = [CycleModel(p.target, p.programs, free=Costs.FREE[:k]).call("generation", 1, 64).cycles
              for k in range(len(Costs.FREE) + 1)]
    assert all(a > b for a, b in zip(cycles, cycles[1:])), cycles
    with pytest.raises(PerfError, match="unknown free parts"):
        Costs.of(p.target, ("mpu",))


def test_perf_section_is_validated(tmp_path):
    src = (TARGET_DIR / "tiny.toml").read_text()
    p = tmp_path / "t.toml"
    p.write_text(src.replace("hbm_latency_cycles = 8", "hbm_latency_cycles = -1"))
    with pytest.raises(TargetError, match=r"perf\.hbm_latency_cycles must be >= 0"):
        load_target_file(p)
    p.write_text(src.replace("unit_queue = 4", "unit_queue = 3"))
    with pytest.raises(TargetError, match=r"buffers\.unit_queue must be a power of two"):
        load_target_file(p)
    p.write_text(src.replace("read_queue = 8", "read_queue = 6"))
    with pytest.raises(TargetError, match=r"buffers\.read_queue must be a power of two"):
        load_target_file(p)
    p.write_text(src.replace("call_overhead_us = 20.0", "call_overhead_us = 20.0\nwarp = 3"))
    with pytest.raises(TargetError, match=r"unknown field perf\.warp"):
        load_target_file(p)


def test_cli_json_keys(capsys):
    assert cli.main(["gpt2", "--fpgas", "2", "--in", "8", "--out", "4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for k in JSON_KEYS:
        assert k in r
    assert r["tokens_per_s"] == pytest.approx(4 / (r["total_ms"] / 1e3))
    assert 0 < r["hbm_utilization"] < 1
    assert 0 < r["roofline_ms_per_token"] < r["generation_ms_per_token"]
    assert set(r["breakdown"]["generation"]) == {"matrix", "vector", "dma", "sync", "other"}
    assert sum(r["breakdown"]["generation"].values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("argv,msg", [
    (["no-such-model"], "no such model or file: no-such-model"),
    (["gpt2", "--fpgas", "0"], "--fpgas must be a positive integer, got 0"),
    (["gpt2", "--in", "2000"], "past the 1024-token context"),
    (["gpt2", "--target", "nope"], "unknown target 'nope'"),
])
def test_cli_one_line_errors(capsys, argv, msg):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err and "Traceback" not in err


def test_plots(tmp_path):
    p = load_programs("gpt2", 1, "u280")
    from dfx.perf.plots import write_plots

    files = write_plots(tmp_path, "not-a-preset", p, Predictor(p), 8, 4)
    assert {f.name for f in files} == {"latency.png", "roofline.png"}
    assert all(f.stat().st_size > 1000 and f.read_bytes()[:4] == b"\x89PNG" for f in files)


def test_perf_and_generate_read_a_bundle(tmp_path, capsys):
    """A bundle carries its target: dfx perf models it, and dfx generate's summary gets cycles."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dfx.cli import main
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.driver import compile_model
    from dfx.perf.model import bundle_cycles

    with torch.random.fork_rng():  # its own seed; torch's global generator is left as it was
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=64, n_head=2, n_positions=32, vocab_size=256)
                        ).save_pretrained(tmp_path / "m")
    compile_model(str(tmp_path / "m"), 2, tmp_path / "b", target="tiny", progress=False)
    assert main(["perf", str(tmp_path / "b"), "--in", "8", "--out", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fpgas"] == 2 and out["generation_ms_per_token"] > 0
    cycles = bundle_cycles(Bundle(tmp_path / "b"), 8, 4)
    assert cycles["total"] == cycles["summarization"] + cycles["generation"]
    # three generation calls cost more than one and less than five; one output token needs none
    one, five = bundle_cycles(Bundle(tmp_path / "b"), 8, 2), bundle_cycles(Bundle(tmp_path / "b"), 8, 6)
    assert one["generation"] < cycles["generation"] < five["generation"]
    assert bundle_cycles(Bundle(tmp_path / "b"), 8, 1)["generation"] == 0
    # `dfx generate --json` reports the model's cycles under the runtime's phase names
    assert main(["generate", str(tmp_path / "b"), "--prompt-ids", "1,2,3,4,5,6,7,8", "--max-new-tokens", "4",
                 "--ignore-eos", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert len(run["new_ids"]) == 4
    assert set(run["phases"]) == {"summarization", "generation"}
    for ph, info in run["phases"].items():
        assert info["modelled_cycles"] is not None, ph
        assert info["modelled_cycles"] == cycles[ph], ph


def test_docs_dfx_figures_are_the_models():
    """docs/perf.md's comparison with DFX's published figures is what the model computes now
    (scripts/bench_perf.py wrote it): a change to the model that moves a figure by more than
    rounding fails here until the docs are regenerated."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_perf", root / "scripts" / "bench_perf.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = (root / "docs" / "perf.md").read_text()
    for what, model, n, i, o, key, pub in bench.PUBLISHED:
        row = next(line for line in doc.splitlines() if line.startswith(f"| {what} | {model} | {n} | {pub:g} |"))
        documented = float(row.split("|")[5])
        r = Predictor(load_programs(model, n, "u280-dfx")).predict(i, o)
        assert r[key] == pytest.approx(documented, rel=0.01), (what, model, n)


def test_docs_u280_roofline_figures_are_the_models():
    """The issue-12 figures of docs/perf.md (u280 decode against 460 GB/s, gpt2-medium x 1 and
    dfx-1.5b x 4) are what the model computes now, to 0.2 points."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "perf.md").read_text()
    for model, n in (("gpt2-medium", 1), ("dfx-1.5b", 4)):
        row = next(line for line in doc.splitlines()
                   if line.startswith(f"| {model} | {n} | ") and line.count("|") == 10)
        documented = float(row.split("|")[7].strip().rstrip(" %"))
        p = load_programs(model, n, "u280")
        r = Predictor(p).predict(64, 64)
        assert 100 * p.target.hbm.efficiency * r["roofline_fraction"] == pytest.approx(documented, abs=0.2), (model, n)


def test_docs_ring_hop_table_is_the_targets():
    """docs/perf.md's ring-hop table (its parts and their sum) is what the u280 targets hold: the
    kernel-clock rows add up to ring.hop_kernel_cycles, the link rows to ring.hop_link_cycles, the
    cable row is ring.cable_ns, and the total is Target.hop_cycles."""
    from pathlib import Path

    from dfx.arch.target import load_target

    doc = (Path(__file__).resolve().parents[2] / "docs" / "perf.md").read_text()
    sec = doc[doc.index("### The ring hop"):]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in sec.splitlines()
            if line.startswith("| ") and not line.startswith("| part")]
    rows = rows[:next(i for i, r in enumerate(rows) if r[0] == "**hop**") + 1]
    kernel = sum(int(r[2]) for r in rows if r[1] == "kernel")
    link = sum(int(r[2]) for r in rows if r[1] == "link")
    cable = next(float(r[2].removesuffix(" ns")) for r in rows if r[0] == "cable")
    total = float(rows[-1][2].strip("*"))
    for name in ("u280", "u280-dfx"):
        t = load_target(name)
        assert (kernel, link, cable) == (t.ring.hop_kernel_cycles, t.ring.hop_link_cycles, t.ring.cable_ns), name
        assert total == pytest.approx(t.hop_cycles, abs=0.05), name
