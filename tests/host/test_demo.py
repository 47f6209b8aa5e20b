"""`dfx demo`: on the simulator (fast), on the xrt and pynq backends over their stand-ins, and on
the RTL core (Verilator, marked rtl), each giving the exact simulator's ids for the same prompt;
without cards it is one line that offers --backend sim or rtl."""

import json
import sys

import pytest

from dfx.arch import kernel
from dfx.arch.target import load_target
from dfx.cli import main
from dfx.compiler.bundle import Bundle
from dfx.host.runtime import Session
from standins.axlf import dfx_xclbin
from standins.cards import StandinCards
from standins.pynq_standin import make_pynq
from standins.pyxrt_standin import make_pyxrt

NEW = 6


def exact_ids(bundle, prompt, new=NEW):
    s = Session(bundle, backend="sim", mode="exact")
    try:
        return s.generate(prompt, max_new_tokens=new, eos_token_id=None)[len(prompt):]
    finally:
        s.close()


def run_demo(capsys, bundle, prompt, *extra, new=NEW):
    rc = main(["demo", str(bundle), "--prompt-ids", ",".join(map(str, prompt)), "--max-new-tokens", str(new),
               "--ignore-eos", "--json", *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (line,) = out.splitlines()
    return json.loads(line), err


@pytest.mark.parametrize("n", [1, 4])
def test_demo_on_the_simulator(capsys, tiny_bundle, tiny_prompt, n):
    r, err = run_demo(capsys, tiny_bundle(n), tiny_prompt, "--backend", "sim")
    assert r["new_ids"] == exact_ids(tiny_bundle(n), tiny_prompt)
    assert f"{n} card(s) with sim" in err and err.count("simulated tiny card") == n
    m = r["model"]  # dfx perf's figures for the same run, and the bandwidth from its byte count
    assert m["ms_per_token"] > 0 and m["hbm_bytes_per_token"] > 0 and r["ttft_ms"] > 0
    assert r["hbm_gbps"] == pytest.approx(m["hbm_bytes_per_token"] / (r["ms_per_token"] * 1e-3) / 1e9)


def test_demo_text_output_on_the_simulator(capsys, tiny_bundle, tiny_prompt):
    assert main(["demo", str(tiny_bundle(1)), "--backend", "sim", "--prompt-ids", "5,6,7", "--max-new-tokens", "4",
                 "--ignore-eos"]) == 0
    out = capsys.readouterr().out
    for text in ("1 card(s) with sim", "loaded", "time to first token", "ms/token", "tokens/s",
                 "GB/s achieved", "(model"):
        assert text in out


@pytest.mark.parametrize("api", ["xrt", "pynq"])
def test_demo_standin_cards_give_the_exact_simulators_ids(capsys, monkeypatch, tmp_path, tiny_bundle, tiny_prompt, api):
    b = Bundle(tiny_bundle(4))
    cards = StandinCards(load_target("tiny"), 4)
    monkeypatch.setitem(sys.modules, "pyxrt" if api == "xrt" else "pynq",
                        make_pyxrt(cards) if api == "xrt" else make_pynq(cards))
    x = dfx_xclbin(tmp_path / "dfx_core.xclbin", kernel.xclbin_keys(b.manifest["target"]))
    r, err = run_demo(capsys, b.path, tiny_prompt, "--backend", api, "--xclbin", str(x))
    assert r["new_ids"] == exact_ids(b.path, tiny_prompt)
    assert f"4 card(s) with {api}" in err and err.count("(stand-in)") == 4


def test_demo_without_cards_is_one_line(capsys, monkeypatch, tiny_bundle):
    monkeypatch.setitem(sys.modules, "pyxrt", None)
    assert main(["demo", str(tiny_bundle(1)), "--prompt-ids", "1,2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("dfx: error: no cards:") and "pyxrt" in err
    assert "--backend sim" in err and "--backend rtl" in err
    pynq = make_pynq(StandinCards(load_target("tiny"), 1))
    pynq.Device.devices = []
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    assert main(["demo", str(tiny_bundle(1)), "--backend", "pynq", "--prompt-ids", "1,2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("dfx: error: no cards: pynq finds none; the same demo runs here on --backend sim "
                   "(the functional simulator) or --backend rtl (the RTL core in Verilator)")


def test_demo_reads_prompts_from_stdin(capsys, monkeypatch, tiny_bundle):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n\ny\n"))  # one-byte tokens: ids below the tiny vocabulary
    assert main(["demo", str(tiny_bundle(1)), "--backend", "sim", "--json", "--max-new-tokens", "2",
                 "--ignore-eos"]) == 0
    runs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(runs) == 2 and [len(r["new_ids"]) for r in runs] == [2, 2]


@pytest.mark.rtl
@pytest.mark.slow
def test_demo_on_the_rtl_core_gives_the_exact_simulators_ids(capsys, tiny_bundle, tiny_prompt):
    """The RTL core in Verilator (built once, ~3-4 min, cached under build/rtl)."""
    prompt = tiny_prompt[:5]
    r, err = run_demo(capsys, tiny_bundle(1), prompt, "--backend", "rtl", new=4)
    assert r["new_ids"] == exact_ids(tiny_bundle(1), prompt, 4)
    assert "the RTL core in verilator" in err
