"""dfx.hw.timing, the static timing estimate: its arithmetic on hand-made netlists (each figure is
the corner's sum, so a wrong weight or a lost net fails), its hierarchy (a path through two
instances costs what the flat path costs), the DSP48E2 registers Vivado pulls in, false loops, and
Yosys's real netlists of a one-stage FP32 adder (over budget) and of a plain register chain (within).
The budget of the whole core is held in tests/hw/test_synth.py, on the netlist of its synthesis run
(one Yosys run of the core per test session)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dfx.hw import timing
from dfx.hw.timing import OPTIMISTIC, PESSIMISTIC

ROOT = Path(__file__).resolve().parents[2]
needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")

FF_DIRS = {"C": "input", "CE": "input", "D": "input", "R": "input", "Q": "output"}
LUT_DIRS = {"I0": "input", "I1": "input", "O": "output"}


def ff(d, q, ce="1"):
    return {"type": "FDRE", "parameters": {}, "port_directions": FF_DIRS,
            "connections": {"C": [2], "CE": [ce], "D": [d], "R": ["0"], "Q": [q]}}


def lut(a, b, o):
    return {"type": "LUT2", "parameters": {}, "port_directions": LUT_DIRS,
            "connections": {"I0": [a], "I1": [b], "O": [o]}}


def module(cells, ports):
    return {"attributes": {}, "ports": ports, "cells": cells, "netnames": {}}


def port(direction, *bits):
    return {"direction": direction, "bits": list(bits)}


def test_a_lut_chain_costs_register_plus_levels_plus_nets():
    """FF -> LUT -> LUT -> FF: reg + 2 (net + LUT) + net, in both corners."""
    cells = {"r0": ff(10, 20), "r1": ff(11, 21), "l0": lut(20, 21, 30), "l1": lut(30, 21, 31), "r2": ff(31, 40)}
    nl = {"modules": {"top": module(cells, {"clk": port("input", 2), "a": port("input", 10),
                                            "b": port("input", 11), "y": port("output", 40)})}}
    for c in (OPTIMISTIC, PESSIMISTIC):
        p = timing.analyze(nl, "top", c).worst(1)[0]
        assert p.ns == pytest.approx(c.reg + 2 * (c.net + c.lut) + c.net, abs=1e-3)
        assert p.levels == 2


def test_a_path_through_two_instances_costs_what_the_flat_path_costs():
    """The same LUT chain with each LUT in an instance of a child module: the boundary models add up
    to the flat figure (the net into each LUT counted once, inside the child)."""
    child = module({"l": lut(3, 4, 5)}, {"a": port("input", 3), "b": port("input", 4), "y": port("output", 5)})
    inst = lambda a, b, y: {"type": "child", "parameters": {}, "connections": {"a": [a], "b": [b], "y": [y]}}  # noqa: E731
    cells = {"r0": ff(10, 20), "r1": ff(11, 21), "u0": inst(20, 21, 30), "u1": inst(30, 21, 31), "r2": ff(31, 40)}
    top = module(cells, {"clk": port("input", 2), "a": port("input", 10), "b": port("input", 11),
                         "y": port("output", 40)})
    rep = timing.analyze({"modules": {"top": top, "child": child}}, "top", PESSIMISTIC)
    c = PESSIMISTIC
    p = rep.worst(1)[0]
    assert p.ns == pytest.approx(c.reg + 2 * (c.net + c.lut) + c.net, abs=1e-3)
    assert p.module == "top" and p.levels == 2


def test_a_carry_chain_pays_its_entry_once_and_its_hops():
    """S[0] of the first CARRY8 to CO[7] of the second: entry + 15/8 hops, CI on the dedicated route."""
    dirs = {**{p: "input" for p in ("CI", "CI_TOP", "S", "DI")}, "O": "output", "CO": "output"}
    c0 = {"type": "CARRY8", "parameters": {}, "port_directions": dirs,
          "connections": {"CI": ["0"], "CI_TOP": ["0"], "DI": ["0"] * 8, "S": [20] + ["1"] * 7,
                          "O": list(range(100, 108)), "CO": list(range(110, 118))}}
    c1 = {"type": "CARRY8", "parameters": {}, "port_directions": dirs,
          "connections": {"CI": [117], "CI_TOP": ["0"], "DI": ["0"] * 8, "S": ["1"] * 8,
                          "O": list(range(120, 128)), "CO": list(range(130, 138))}}
    cells = {"r0": ff(10, 20), "c0": c0, "c1": c1, "r1": ff(137, 40)}
    nl = {"modules": {"top": module(cells, {"clk": port("input", 2), "a": port("input", 10),
                                            "y": port("output", 40)})}}
    c = PESSIMISTIC
    p = timing.analyze(nl, "top", c).worst(1)[0]
    assert p.ns == pytest.approx(c.reg + c.net + c.carry_in + c.carry_hop * 15 / 8 + c.net, abs=1e-3)


def _dsp(a, b, p, preg=0):
    dirs = {"A": "input", "B": "input", "CLK": "input", "P": "output"}
    return {"type": "DSP48E2", "parameters": {"PREG": str(preg), "MREG": "0", "AREG": "0", "BREG": "0",
                                              "USE_MULT": "MULTIPLY"},
            "port_directions": dirs, "connections": {"A": [a], "B": [b], "CLK": [2], "P": [p]}}


def test_dsp_registers_vivado_pulls_in_cost_no_net():
    """FF -> DSP -> FF with nothing else on the nets: the FFs are the DSP's A/B and P registers, so the
    path is reg + multiplier + ALU. With logic between (a LUT on A), the nets count again."""
    c = PESSIMISTIC
    cells = {"ra": ff(10, 20), "rb": ff(11, 21), "m": _dsp(20, 21, 30), "rp": ff(30, 40)}
    ports = {"clk": port("input", 2), "a": port("input", 10), "b": port("input", 11), "y": port("output", 40)}
    p = timing.analyze({"modules": {"top": module(cells, ports)}}, "top", c).worst(1)[0]
    assert p.ns == pytest.approx(c.reg + c.dsp_mult + c.dsp_alu, abs=1e-3)
    cells = {"ra": ff(10, 20), "rb": ff(11, 21), "l": lut(20, 21, 25), "m": _dsp(25, 21, 30),
             "rp": ff(30, 40), "rq": ff(30, 41)}
    ports["z"] = port("output", 41)
    p = timing.analyze({"modules": {"top": module(cells, ports)}}, "top", c).worst(1)[0]
    assert p.ns == pytest.approx(c.reg + c.net + c.lut + c.net + c.dsp_mult + c.dsp_alu + c.net, abs=1e-3)


def test_a_real_combinational_loop_is_broken_and_counted():
    cells = {"r0": ff(10, 20), "l0": lut(20, 31, 30), "l1": lut(30, 20, 31), "r1": ff(31, 40)}
    nl = {"modules": {"top": module(cells, {"clk": port("input", 2), "a": port("input", 10),
                                            "y": port("output", 40)})}}
    rep = timing.analyze(nl, "top", PESSIMISTIC)
    assert rep.loops["top"] == 1
    assert rep.worst(1)[0].levels >= 1


def test_unknown_cells_and_missing_tops_are_one_line_errors():
    cells = {"x": {"type": "GTYE4_CHANNEL", "parameters": {}, "port_directions": {}, "connections": {}}}
    nl = {"modules": {"top": module(cells, {})}}
    with pytest.raises(timing.TimingError, match="no timing for cell x of type GTYE4_CHANNEL"):
        timing.analyze(nl, "top")
    with pytest.raises(timing.TimingError, match="no module nope"):
        timing.analyze(nl, "nope")


def _yosys(tmp_path: Path, src: str, top: str, chparam: str = "") -> dict:
    v = tmp_path / "t.v"
    v.write_text(src)
    files = " ".join(str(ROOT / "hw" / "rtl" / "fp" / f) for f in ("dfx_f32_add_c.v", "dfx_delay.v"))
    script = (f"read_verilog -defer {files} {v}; {chparam} hierarchy -top {top}; "
              f"synth_xilinx -family xcup -noiopad -top {top}; write_json {tmp_path / 'n.json'}")
    r = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((tmp_path / "n.json").read_text())


ADD_BEHIND_REGS = """
module t(input clk, input [31:0] a, input [31:0] b, output reg [31:0] y);
    reg [31:0] ar, br;
    wire [31:0] s;
    dfx_f32_add_c u (.a(ar), .b(br), .y(s));
    always @(posedge clk) begin ar <= a; br <= b; y <= s; end
endmodule
"""


@needs_yosys
def test_a_one_stage_fp32_adder_is_far_over_budget(tmp_path):
    """The core's FP32 adder as one combinational stage between registers (as the FP units were
    before they were pipelined): the estimate finds the path through the adder's instance, and it
    is several times the 5 ns budget in both corners (about 19 and 30 ns with Yosys 0.23)."""
    nl = _yosys(tmp_path, ADD_BEHIND_REGS, "t")
    for c, lo in ((OPTIMISTIC, 12.0), (PESSIMISTIC, 18.0)):
        p = timing.analyze(nl, "t", c).worst(1)[0]
        assert p.ns > lo, p
        assert p.start.startswith(("ar", "br")) and p.end.startswith("y"), p
        assert p.levels >= 10


@needs_yosys
def test_a_register_chain_is_within_budget(tmp_path):
    nl = _yosys(tmp_path, "", "dfx_delay", "chparam -set W 32 -set LAT 4 -set FF 1 dfx_delay;")
    rep = timing.analyze(nl, "dfx_delay", PESSIMISTIC)
    assert rep.worst(1)[0].ns == pytest.approx(PESSIMISTIC.reg + PESSIMISTIC.net)


def test_cli_bad_input_is_one_line(capsys, tmp_path):
    assert timing.main(["--target", "nope"]) == 1
    assert capsys.readouterr().err.strip().startswith("timing.py: error: unknown target 'nope'")
    assert timing.main(["--target", "tiny", "--netlist", str(tmp_path / "none.json")]) == 1
    assert "no netlist at" in capsys.readouterr().err

