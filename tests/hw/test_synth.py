"""The dfx core synthesizes with Yosys (scripts/synth.py, synth_xilinx for UltraScale+), target
tiny-ddr: tiny with a DDR, so that the DDR port (a generate branch of dfx_core_flat) is in it too.

The synthesis test is slow (minutes) and needs Debian's yosys (scripts/setup.sh --hw installs it,
so CI runs it). What it checks could each fail: Yosys accepts every hw/rtl file (no ERROR or
unsupported line, exit 0), its `stat` counts cells for dfx_core_flat, the only latches are
integer loop variables of combinational blocks, the MPU's multipliers become DSP48E2s, the on-chip
buffer becomes UltraRAM, and every module the core instantiates is in the synthesized hierarchy.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dfx.hw import synth, timing, vitis

ROOT = Path(__file__).resolve().parents[2]

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None,
                                 reason="yosys is not installed (apt-get install -y yosys, or scripts/setup.sh --hw)")
# The ROM tables (GELU, exp, recip, rsqrt: generated, checked by tests/test_generated.py and the cocotb
# tests) are black boxes here (dfx.hw.timing.ROMS): Yosys turns each into thousands of LUT multiplexers,
# which is most of the run time and says nothing about the rest of the core. scripts/synth.py
# synthesizes them, and so does dfx.hw.timing (alone) for the timing test below.
OUT = ROOT / "build" / "hw" / "synth" / "tiny-ddr"


@pytest.fixture(scope="module")
def tiny():
    return synth.synthesize("tiny-ddr", out=OUT, blackbox=timing.ROMS)


def _row(res, module):
    rows = [r for r in res["blocks"] if r["module"] == module]
    assert rows, f"no {module} in the synthesized hierarchy"
    return rows[0]


@pytest.mark.slow
@needs_yosys
def test_yosys_accepts_the_core(tiny):
    log = (ROOT / tiny["log"]).read_text()
    bad = [ln for ln in log.splitlines() if "ERROR" in ln or re.search("unsupported", ln, re.I)]
    assert tiny["yosys_exit"] == 0 and not bad, bad[:10]
    assert tiny["problems"] == [], tiny["problems"]


@pytest.mark.slow
@needs_yosys
def test_stat_counts_the_core(tiny):
    log = (ROOT / tiny["log"]).read_text()
    stat = log[log.rfind("=== design hierarchy ==="):]
    assert "dfx_core_flat" in stat, "no stat of the core's hierarchy in the log"
    m = re.search(r"Number of cells:\s+(\d+)", stat)
    assert m and int(m.group(1)) > 0
    t = tiny["total"]
    assert t["lut"] > 0 and t["ff"] > 0


@pytest.mark.slow
@needs_yosys
def test_no_unexpected_latch(tiny):
    assert tiny["latches_unexpected"] == [], tiny["latches_unexpected"]
    assert tiny["total"]["latch"] == 0


@pytest.mark.slow
@needs_yosys
def test_mpu_multipliers_are_dsps(tiny):
    p = tiny["params"]
    assert tiny["total"]["dsp"] > 0
    # one DSP48E2 per FP16 significand product (11 x 11 bits): LANES x WIDTH of them
    assert _row(tiny, "dfx_mpu")["dsp"] >= p["LANES"] * p["WIDTH"]


@pytest.mark.slow
@needs_yosys
def test_buffer_is_uram(tiny):
    buf = _row(tiny, "dfx_vbuf")
    assert buf["uram"] * 288 * 1024 >= 16 * tiny["params"]["VBUF_WORDS"], buf
    assert buf["ff"] < 1000, "the buffer's banks became flip-flops"


@pytest.mark.slow
@needs_yosys
def test_every_instantiated_module_is_in_the_hierarchy(tiny):
    want = synth.instantiated_modules()
    assert {"dfx_dma", "dfx_mpu_path", "dfx_vpu_path", "dfx_net", "dfx_vbuf", "dfx_hbm_rd",
            "dfx_hbm_wr", "dfx_ddr", "dfx_mpu", "dfx_vpu"} <= want
    missing = want - set(tiny["hierarchy_modules"])
    assert not missing, f"instantiated in hw/rtl but not in the synthesized hierarchy: {sorted(missing)}"


def test_missing_yosys_is_one_line(capsys):
    assert synth.main(["--yosys", "/nonexistent/yosys", "--out", str(ROOT / "build" / "hw" / "synth" / "none")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("synth.py: error: yosys not found")


def test_stat_json_of_yosys_023_reads(tmp_path):
    # Yosys 0.23 writes its text hierarchy and trailing commas into `stat -json`
    p = tmp_path / "stat.json"
    p.write_text('{\n "modules": {\n  "\\\\top": {\n   "num_cells_by_type": {\n    "LUT2": 3,\n'
                 '    "leaf": 2\n   }\n  },\n  "leaf": {\n   "num_cells_by_type": {\n    "DSP48E2": 1,\n'
                 '    "FDRE": 4\n   }\n  }\n },\n "design": {\n   top     1\n     leaf    2\n'
                 '   "num_cells": 13,\n },\n\n}\n')
    h = synth.Hierarchy(synth.load_stat_json(p))
    assert h.total("top")["dsp"] == 2 and h.total("top")["ff"] == 8 and h.total("top")["lut"] == 3
    assert h.used("top") == {"leaf"}


def test_latch_classification():
    log = ("Latch inferred for signal `\\dfx_i2f.\\k' from process "
           "`\\dfx_i2f.$proc$hw/rtl/fp/dfx_i2f.v:14$5303': $auto$proc_dlatch.cc:427\n"
           "Latch inferred for signal `$paramod$ab\\dfx_mpu.\\acc' from process "
           "`$paramod$ab\\dfx_mpu.$proc$hw/rtl/dfx_mpu.v:99$1': $auto$proc_dlatch.cc:427\n")
    r = synth.parse_log(log, synth.module_sources())
    assert [x["signal"] for x in r["latches_harmless"]] == ["k"]
    assert [(x["module"], x["signal"]) for x in r["latches_unexpected"]] == [("dfx_mpu", "acc")]


ADD_REF = ROOT / "tests" / "hw" / "tb" / "dfx_f32_add_ref.v"
FP = ROOT / "hw" / "rtl" / "fp"


def _miter(rtl: Path, tmp_path: Path) -> str:
    """Yosys SAT: the core's FP32 adder against the plain reference, over every pair of inputs."""
    import subprocess
    dut = tmp_path / "dut.v"
    dut.write_text(rtl.read_text().replace("module dfx_f32_add_c", "module dut_add"))
    script = (f"read_verilog {ADD_REF} {dut}; proc; opt_clean; "
              "miter -equiv -flatten -make_assert dfx_f32_add_ref dut_add miter; hierarchy -top miter; "
              "flatten; opt; sat -verify -prove-asserts -show-inputs miter")
    r = subprocess.run(["yosys", "-p", script], capture_output=True, text=True, timeout=600)
    return r.stdout + r.stderr


@needs_yosys
def test_f32_add_equals_the_reference_for_every_input(tmp_path):
    """dfx_f32_add_c (written for LUT count) gives the reference adder's bits for all 2^64 input
    pairs: a SAT proof, not a sample. The reference is the straightforward adder the cocotb FP tests
    held against numpy before the rewrite."""
    out = _miter(ROOT / "hw" / "rtl" / "fp" / "dfx_f32_add_c.v", tmp_path)
    assert "SAT proof finished - no model found: SUCCESS!" in out, out[-3000:]


@needs_yosys
def test_f32_add_miter_finds_a_wrong_adder(tmp_path):
    """The proof above can fail: an adder that rounds ties up instead of to even is caught."""
    src = (ROOT / "hw" / "rtl" / "fp" / "dfx_f32_add_c.v").read_text()
    bad = src.replace("(n0[2] | n0[1] | n0[0] | n0[4])", "1'b1")
    assert bad != src
    p = tmp_path / "bad.v"
    p.write_text(bad)
    out = _miter(p, tmp_path)
    assert "proof did fail" in out, out[-3000:]


def _module_cells(tmp_path: Path, module: str, chparam: str = "", extra=()) -> dict:
    """Yosys's cells for one module of hw/rtl/fp alone (synth_xilinx for UltraScale+), with the
    modules of `extra` (names in hw/rtl/fp) it instantiates, flattened into it."""
    import subprocess
    src = " ".join(str(FP / f"{m}.v") for m in (module, *extra))
    script = (f"read_verilog {src}; {chparam} synth_xilinx -family xcup -noiopad -flatten -top {module}; "
              f"tee -o {tmp_path / 'stat.txt'} stat")
    r = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    stat = (tmp_path / "stat.txt").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+)\s+(\d+)$", stat, re.M)}


@needs_yosys
def test_f32_adder_shifts_are_dsps(tmp_path):
    """The adder's two shifts are products with a one-hot power of two, one DSP48E2 each (u280-dfx
    has 1,360 adders): 338 LUTs with Yosys 0.23 where the all-LUT shifters took 521. A rewrite that
    puts them back in LUTs fails here."""
    cells = _module_cells(tmp_path, "dfx_f32_add_c")
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k))
    assert cells.get("DSP48E2") == 2, cells
    assert luts < 400, cells


def _delay_cells(tmp_path: Path, ff: int) -> dict:
    """Yosys's cells for one dfx_delay of 32 bits x 11 stages (u280's FP32 adder pipeline) with FF=ff."""
    return _module_cells(tmp_path, "dfx_delay", f"chparam -set W 32 -set LAT 11 -set FF {ff} dfx_delay;")


@needs_yosys
def test_fp_pipeline_stages_stay_flip_flops(tmp_path):
    """A delay line behind an FP unit (FF=1: dfx_f32_add_p, dfx_f32_mul_p, the MPU's products) is 352
    flip-flops, which the implementation tool can retime into the unit, not 32 shift-register LUTs;
    an alignment delay (FF=0) may still be an SRL."""
    ffs = _delay_cells(tmp_path, 1)
    assert ffs.get("FDRE") == 32 * 11 and not any(k.startswith("SRL") for k in ffs), ffs
    srl = _delay_cells(tmp_path, 0)
    assert sum(v for k, v in srl.items() if k.startswith("SRL")) == 32 and "FDRE" not in srl, srl


@pytest.mark.slow
@needs_yosys
def test_slr_budget_places_the_whole_core_once(tiny):
    """scripts/synth.py --slr: every block of the synthesized core is shared out over the three
    SLRs, and the SLRs' sums are the whole core's totals."""
    rows = synth.slr_budget(tiny)
    for k in ("lut", "ff", "dsp", "bram36", "uram"):
        assert sum(r[k] for r in rows) == pytest.approx(tiny["total"][k]), k
    assert "SLR2" in synth.slr_report(tiny, rows)


def test_slr_plan_shares_lanes_and_refuses_an_unplaced_block():
    assert vitis.mpu_lanes_per_slr(16) == vitis.MPU_LANE_SHARE
    for lanes in (1, 2, 4, 8, 32):
        assert sum(vitis.mpu_lanes_per_slr(lanes)) == lanes
    res = {"params": {"LANES": 16}, "blocks": [
        {"level": 1, "module": "dfx_mpu_path", "block": "MPU path (dfx_mpu_path)",
         **dict.fromkeys(synth.KEYS, 160.0)},
        {"level": 1, "module": "dfx_new_block", "block": "dfx_new_block", **dict.fromkeys(synth.KEYS, 1.0)}]}
    with pytest.raises(synth.SynthError, match="does not place block dfx_new_block"):
        synth.slr_budget(res)
    res["blocks"].pop()
    assert [r["lut"] for r in synth.slr_budget(res)] == [10.0 * n for n in vitis.MPU_LANE_SHARE]


# The blocks of the tiny-ddr core still over the 5.0 ns budget, each with its longest path in the
# pessimistic corner (closed in that block, ns), as `python scripts/timing.py --target tiny-ddr`
# printed it once the FP units were pipelined (Yosys 0.23): issue 26 takes each of them to the budget.
# A block may not get slower than its figure; one that gets faster must have its figure lowered here,
# and one that reaches the budget leaves the table, so the table is always today's state.
CEILINGS_NS = {
    "dfx_core_flat": 25.65,    # decode (an instruction's class) to the DMA's state register
    "dfx_dma": 23.05,          # address arithmetic: a 64-bit product of a register and a stride
    "dfx_exp16_p": 18.31,      # range, floor and i2f between two units: one register stage is not enough
    "dfx_mpu_path": 18.25,     # counts to the state register
    "dfx_gelu16_p": 17.48,     # floor and i2f between two units, the same
    "dfx_vpu_path": 16.72,     # its operand mask into the VPU's max tree
    "dfx_net": 14.63,          # row count to the state register
    "dfx_hbm_rd": 13.82,       # a channel's remaining beats to its reservation
    "dfx_vpu": 6.85,           # a lane's adder result through the op select into the output register
    "dfx_rsqrt16_p": 5.79,     # exponent logic
    "dfx_mpu": 5.58,           # the rne16 register into the GELU's first adder (its FP16 -> FP32 input)
}
# Yosys/ABC maps an unchanged block a little differently when other modules change (dfx_dma 23.70
# and 23.05 ns, dfx_net 14.63 and 14.73 on the same RTL): a figure holds within TOL either way.
TOL = 0.03
PORT_CEILING_NS = 6.47         # u_net's ring TX data through logic to m_axis_ring_tdata


@pytest.mark.slow
@needs_yosys
def test_no_block_of_the_core_gets_slower_and_fixed_ones_leave_the_table(tiny):
    """The timing budget (dfx.hw.timing) held in CI on the whole tiny-ddr core (this module's
    synthesis run; the ROMs synthesized alone): every block's longest path within 5.0 ns or within
    its CEILINGS_NS figure, and every figure there still true to TOL (a faster block lowers it)."""
    res = timing.run("tiny-ddr", netlist=OUT / "netlist.json")
    rows = {r["block"]: r["own_worst"] for r in res["corners"]["pessimistic"]["blocks"]}
    slower, faster = [], []
    for block, p in rows.items():
        if p is None:
            continue
        ceiling = CEILINGS_NS.get(block, timing.BUDGET_NS)
        if p["ns"] > (ceiling * (1 + TOL) if block in CEILINGS_NS else timing.BUDGET_NS):
            slower.append(f"{block}: {p['ns']} ns > {ceiling} ({p['start']} -> {p['end']})")
        elif block in CEILINGS_NS and p["ns"] < ceiling * (1 - TOL):
            faster.append(f"{block}: {p['ns']} ns" + (" (within budget: remove it)" if p["ns"] <= 5.0 else ""))
    gone = [b for b in CEILINGS_NS if rows.get(b) is None]
    assert not slower, "slower than the table allows: " + "; ".join(slower)
    assert not faster and not gone, ("faster than CEILINGS_NS says, update it: " + "; ".join(faster)
                                     + (f"; no path left in {gone}" if gone else ""))
    ports = res["corners"]["pessimistic"]["ports"]
    assert ports and ports[0]["ns"] <= PORT_CEILING_NS * (1 + TOL), ports[:1]
    assert res["corners"]["optimistic"]["over_budget"] <= res["corners"]["pessimistic"]["over_budget"]


# ---------------------------------------------------------------------------------------------
# The pipelined FP units (dfx_f32_add_p, dfx_f32_mul_p, dfx_f16_mul_p): the combinational unit's
# datapath cut by registers. Each is proved equal to its combinational unit LAT enabled edges later
# in two parts, both needed: (1) staging: every register is enabled by `en`, every cell's inputs
# come from one stage (as many registers behind the inputs a, b) and every output bit is at stage
# LAT, so the pipeline computes each result from one input pair, LAT enabled edges later;
# (2) with the registers made wires, a Yosys SAT miter proves the circuit equal to the
# combinational unit for every input pair. test_fp_pipeline_bmc (slow) checks the adder in one
# piece by bounded model checking from reset, `en` free.
#
# SAT cannot prove two differently built multipliers equal in useful time, so the multipliers'
# miters cut both circuits at their significand products (PRODUCT_CUTS): the products become
# inputs, the pipeline's (p; pl and ph) free, the reference's the same values (p; pl + ph * 2^17),
# and SAT proves everything around them. What the cut leaves is arithmetic read off the RTL: the
# pipeline's operands are the reference's ({1, f}, with b's significand split as {1, fb[22:17]} *
# 2^17 + fb[16:0]) except that their leading 1 is !zero, and when an operand is zero the
# reference's result does not depend on its product (proved: _product_unused_when_zero).

PIPES = {  # pipeline: (combinational unit, operand bits, result bits)
    "dfx_f32_add_p": ("dfx_f32_add_c", 32, 32),
    "dfx_f32_mul_p": ("dfx_f32_mul_c", 32, 32),
    "dfx_f16_mul_p": ("dfx_f16_mul_c", 16, 32),
}
PIPE_DSPS = {"dfx_f32_add_p": 2, "dfx_f32_mul_p": 2, "dfx_f16_mul_p": 1}
# the products cut for the miter: (source line, replacement, new port) in the pipeline, the
# reference's product line and port, and the value the reference's product gets
PRODUCT_CUTS = {
    "dfx_f16_mul_p": (
        [("wire [21:0] p = sa_1 * sb_1;", "wire [21:0] p = cut_p;", "input wire [21:0] cut_p")],
        ("wire [21:0] p = {1'b1, a[9:0]} * {1'b1, b[9:0]};", "wire [21:0] p = cut_ref;", "input wire [21:0] cut_ref"),
        "cut_p"),
    "dfx_f32_mul_p": (
        [("wire [47:0] pl = {24'd0, sa_1} * {31'd0, bl_1};", "wire [47:0] pl = {7'd0, cut_pl};",
          "input wire [40:0] cut_pl"),
         ("wire [47:0] ph = {24'd0, sa_1} * {41'd0, bh_1};", "wire [47:0] ph = {17'd0, cut_ph};",
          "input wire [30:0] cut_ph")],
        ("wire [47:0] p = {1'b1, a[22:0]} * {1'b1, b[22:0]};", "wire [47:0] p = cut_ref;", "input wire [47:0] cut_ref"),
        "{7'd0, cut_pl} + {cut_ph, 17'd0}"),
}


def pipe_min(unit: str, src: Path | None = None) -> int:
    """A pipeline's own stage count, its minimum latency (localparam ADD_MIN, MUL_MIN, MUL16_MIN)."""
    m = re.search(r"localparam integer (\w+_MIN) = (\d+);", (src or FP / f"{unit}.v").read_text())
    assert m, f"{unit}: no localparam *_MIN"
    return int(m.group(2))


def _yosys(script: str, timeout: int = 600):
    import subprocess
    r = subprocess.run(["yosys", "-p", script], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def _cut(text: str, module: str, edits) -> str:
    """`text` with each (line, replacement, port) edit made: the line replaced, the port added
    before the module's first port."""
    for line, repl, port in edits:
        assert text.count(line) == 1, f"{module}: the product line {line!r} changed; update PRODUCT_CUTS"
        text = text.replace(line, repl)
        head, body = text.split(f"module {module}", 1)
        i = body.index("\n    input")
        text = f"{head}module {module}{body[:i]}\n    {port},{body[i:]}"
    return text


# $dff / $dffe cells made wires: the pipeline's registers become transparent
TRANSPARENT = """
(* techmap_celltype = "$dff" *)
module _dfx_dff_wire (CLK, D, Q);
    parameter WIDTH = 1;
    parameter CLK_POLARITY = 1'b1;
    input CLK;
    input [WIDTH-1:0] D;
    output [WIDTH-1:0] Q;
    assign Q = D;
endmodule
(* techmap_celltype = "$dffe" *)
module _dfx_dffe_wire (CLK, EN, D, Q);
    parameter WIDTH = 1;
    parameter CLK_POLARITY = 1'b1;
    parameter EN_POLARITY = 1'b1;
    input CLK, EN;
    input [WIDTH-1:0] D;
    output [WIDTH-1:0] Q;
    assign Q = D;
endmodule
"""


def _pipe_miter(unit: str, tmp_path: Path, lat: int, src: Path | None = None) -> str:
    """Yosys SAT: the pipeline with its registers made wires (en = 1) against its combinational
    unit, over every input pair (for the multipliers: and every value of the cut products)."""
    ref, wa, wy = PIPES[unit]
    gate_src = (src or FP / f"{unit}.v").read_text()
    ref_src = (FP / f"{ref}.v").read_text()
    ports, gate_cut, ref_cut = "", "", ""
    if unit in PRODUCT_CUTS:
        edits, ref_edit, ref_value = PRODUCT_CUTS[unit]
        gate_src = _cut(gate_src, unit, edits)
        ref_src = _cut(ref_src, ref, [ref_edit])
        ports = "".join(f"{port}, " for _, _, port in edits)
        names = [re.search(r"(\w+)$", port).group(1) for _, _, port in edits]
        gate_cut = "".join(f".{n}({n}), " for n in names)
        ref_cut = f".cut_ref({ref_value}), "
    (tmp_path / "gate.v").write_text(gate_src)
    (tmp_path / "ref.v").write_text(ref_src)
    wrap = tmp_path / "wrap.v"
    wrap.write_text(
        f"module gate_comb ({ports}input wire clk, input wire [{wa - 1}:0] a, input wire [{wa - 1}:0] b,\n"
        f"                  output wire [{wy - 1}:0] y);\n"
        f"    {unit} #(.LAT({lat})) u ({gate_cut}.clk(clk), .en(1'b1), .a(a), .b(b), .y(y));\n"
        "endmodule\n"
        f"module gold_comb ({ports}input wire clk, input wire [{wa - 1}:0] a, input wire [{wa - 1}:0] b,\n"
        f"                  output wire [{wy - 1}:0] y);\n"
        f"    {ref} u ({ref_cut}.a(a), .b(b), .y(y));\n"
        "    wire _unused_ok = clk;\n"
        "endmodule\n")
    tmap = tmp_path / "transparent.v"
    tmap.write_text(TRANSPARENT)
    srcs = f"{wrap} {tmp_path / 'gate.v'} {FP / 'dfx_delay.v'} {tmp_path / 'ref.v'}"
    script = (f"read_verilog {srcs}; hierarchy -check; proc; flatten; opt -nodffe -nosdff; "
              f"techmap -map {tmap}; opt; select -assert-none gate_comb/t:$*dff*; "
              "miter -equiv -flatten -make_assert gold_comb gate_comb miter; hierarchy -top miter; "
              "flatten; opt; sat -verify -prove-asserts -show-inputs miter")
    return _yosys(script)[1]


def _product_unused_when_zero(ref: str, wa: int, tmp_path: Path) -> str:
    """Yosys SAT: the multiplier `ref`, its product cut into an input, gives the same result for
    any two products when an operand's exponent is 0 (a zero): the pipeline may multiply anything."""
    (edits, ref_edit, _) = next(v for k, v in PRODUCT_CUTS.items() if PIPES[k][0] == ref)
    (tmp_path / "ref.v").write_text(_cut((FP / f"{ref}.v").read_text(), ref, [ref_edit]))
    we = 5 if wa == 16 else 8
    pw = int(re.search(r"\[(\d+):0\]", ref_edit[2]).group(1)) + 1
    wrap = tmp_path / "zero.v"
    wrap.write_text(
        f"module zero_top (input wire [{wa - 1}:0] a, input wire [{wa - 1}:0] b, input wire [{pw - 1}:0] p1,\n"
        f"                 input wire [{pw - 1}:0] p2);\n"
        "    wire [31:0] y1, y2;\n"
        f"    {ref} u1 (.cut_ref(p1), .a(a), .b(b), .y(y1));\n"
        f"    {ref} u2 (.cut_ref(p2), .a(a), .b(b), .y(y2));\n"
        f"    always @* if (a[{wa - 2}:{wa - 1 - we}] == 0 || b[{wa - 2}:{wa - 1 - we}] == 0) assert (y1 == y2);\n"
        "endmodule\n")
    return _yosys(f"read_verilog -formal {wrap} {tmp_path / 'ref.v'}; prep -top zero_top; flatten; opt; "
                  "sat -verify -prove-asserts -show-inputs zero_top")[1]


def _pipe_stages(unit: str, tmp_path: Path, lat: int, src: Path | None = None) -> list[str]:
    """The staging of a pipeline (with its dfx_delay tail), read from Yosys's coarse netlist:
    problems found, [] when every register has clock clk and enable en, every cell's inputs are
    of one stage and every bit of y is at stage `lat`."""
    import json
    out = tmp_path / f"{unit}.json"
    code, log = _yosys(f"read_verilog {src or FP / f'{unit}.v'} {FP / 'dfx_delay.v'}; "
                       f"chparam -set LAT {lat} {unit}; hierarchy -check -top {unit}; proc; flatten; "
                       f"opt -nosdff; opt_clean; write_json {out}")
    assert code == 0, log[-3000:]
    m = json.loads(out.read_text())["modules"][unit]
    ports = {k: v["bits"] for k, v in m["ports"].items()}
    clk, en = ports["clk"][0], ports["en"][0]
    data = {b: 0 for n in ("a", "b") for b in ports[n]}
    drv = {}
    for c in m["cells"].values():
        for p, bits in c["connections"].items():
            if c["port_directions"][p] == "output":
                for i, b in enumerate(bits):
                    drv[b] = (c, i)
    problems: list[str] = []
    memo: dict = {}

    def stage(b):
        """Registers between the inputs and bit b; None for a constant."""
        if isinstance(b, str):
            return None
        if b in memo:
            if memo[b] == "busy":
                problems.append(f"a loop through bit {b}")
                return None
            return memo[b]
        memo[b] = "busy"
        if b in data:
            s = 0
        elif b in (clk, en):
            problems.append("clk or en used as data")
            s = None
        else:
            c, i = drv[b]
            conn = c["connections"]
            if "CLK" in conn:                      # a register
                if c["type"] != "$dffe" or conn["CLK"] != [clk] or conn["EN"] != [en] \
                        or c["parameters"].get("EN_POLARITY") not in ("1", 1, "00000000000000000000000000000001"):
                    problems.append(f"register {c['type']} not clocked by clk and enabled by en")
                d = stage(conn["D"][i])
                s = None if d is None else d + 1
            else:
                ins = {stage(x) for p, bits in conn.items() if c["port_directions"][p] == "input"
                       for x in bits} - {None}
                if len(ins) > 1:
                    problems.append(f"{c['type']} mixes stages {sorted(ins)}")
                s = max(ins) if ins else None
        memo[b] = s
        return s

    import sys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    ys = {stage(b) for b in ports["y"]} - {None}
    if ys != {lat}:
        problems.append(f"y at stages {sorted(ys)}, not {lat}")
    return problems


@needs_yosys
@pytest.mark.parametrize("unit", sorted(PIPES))
def test_fp_pipeline_equals_its_combinational_unit(unit, tmp_path):
    """Each pipeline, at its minimum latency and with 2 extra stages, is its combinational unit
    (dfx_f32_add_c, dfx_f32_mul_c, dfx_f16_mul_c) LAT enabled edges later, for every input pair:
    staging checked, registers made wires and SAT-proved equal (the multipliers cut at their
    products, see PRODUCT_CUTS)."""
    mn = pipe_min(unit)
    for lat in (mn, mn + 2):
        assert _pipe_stages(unit, tmp_path, lat) == [], (unit, lat)
        out = _pipe_miter(unit, tmp_path, lat)
        assert "SAT proof finished - no model found: SUCCESS!" in out, out[-3000:]
    if unit in PRODUCT_CUTS:
        out = _product_unused_when_zero(PIPES[unit][0], PIPES[unit][1], tmp_path)
        assert "SAT proof finished - no model found: SUCCESS!" in out, out[-3000:]


@needs_yosys
def test_fp_pipeline_proof_finds_a_wrong_pipeline(tmp_path):
    """Both parts of the proof can fail: an adder that rounds ties up is caught by the SAT miter (and
    a multiplier that does, by the miter cut at its products); an adder that takes a value from a
    stage too early (its result mixes two input pairs, which the miter with transparent registers
    cannot see) and one with a register not enabled by en are caught by the staging check."""
    src = (FP / "dfx_f32_add_p.v").read_text()
    mn = pipe_min("dfx_f32_add_p")
    for name, old, new, part in (
            ("ties", "(pn_5[0] | lor_5 | pn_5[2])", "1'b1", "miter"),
            ("early", "eg_3 <= eg_2;", "eg_3 <= eg_1;", "stages"),
            ("enable", "        if (en) y_6 <= {s_5, ye, yf};", "        y_6 <= {s_5, ye, yf};", "stages")):
        bad = src.replace(old, new)
        assert bad != src, name
        p = tmp_path / f"{name}.v"
        p.write_text(bad)
        stages = _pipe_stages("dfx_f32_add_p", tmp_path, mn, p)
        out = _pipe_miter("dfx_f32_add_p", tmp_path, mn, p)
        if part == "miter":
            assert stages == [] and "proof did fail" in out, (name, stages, out[-3000:])
        else:
            assert stages and "SUCCESS!" in out, (name, stages, out[-3000:])
    # and the multipliers' miter, cut at the products: a multiplier that rounds half up
    src = (FP / "dfx_f32_mul_p.v").read_text()
    bad = src.replace("wire        up0 = s31[5] & (st0 | s31[6]);", "wire        up0 = s31[5];")
    assert bad != src
    p = tmp_path / "mul_ties.v"
    p.write_text(bad)
    assert "proof did fail" in _pipe_miter("dfx_f32_mul_p", tmp_path, pipe_min("dfx_f32_mul_p"), p)


@needs_yosys
@pytest.mark.parametrize("unit", sorted(PIPES))
def test_fp_pipeline_refuses_a_latency_below_its_minimum(unit, tmp_path):
    """LAT below the pipeline's stage count does not elaborate, in Yosys, Icarus and Verilator:
    the instance of a module that does not exist names the rule."""
    import subprocess
    mn = pipe_min(unit)
    srcs = [str(FP / f"{unit}.v"), str(FP / "dfx_delay.v")]
    code, log = _yosys(f"read_verilog {' '.join(srcs)}; chparam -set LAT {mn - 1} {unit}; "
                       f"hierarchy -check -top {unit}")
    assert code != 0 and f"{unit}_LAT_below_minimum" in log, log[-2000:]
    code, log = _yosys(f"read_verilog {' '.join(srcs)}; chparam -set LAT {mn} {unit}; hierarchy -check -top {unit}")
    assert code == 0, log[-2000:]
    if shutil.which("iverilog"):
        r = subprocess.run(["iverilog", "-o", str(tmp_path / "a.vvp"), f"-P{unit}.LAT={mn - 1}", "-s", unit, *srcs],
                           capture_output=True, text=True)
        assert r.returncode != 0 and f"{unit}_LAT_below_minimum" in r.stdout + r.stderr
    if shutil.which("verilator"):
        r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-GLAT={mn - 1}", "--top-module", unit, *srcs],
                           capture_output=True, text=True)
        assert r.returncode != 0 and f"{unit}_LAT_below_minimum" in r.stderr
        r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-GLAT={mn}", "--top-module", unit, *srcs],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-2000:]


def _dsp_register_problems(unit: str, tmp_path: Path) -> tuple[int, list[str]]:
    """The products of a pipeline in Yosys's coarse netlist: (count, problems). Each must have a
    register on its operands and one on its product, clocked by clk, enabled by en and driving or
    driven by nothing else: registers the implementation tool packs into the DSP48E2 (AREG/BREG,
    PREG). Yosys 0.23 itself packs no register into a DSP48E2 (its xilinx_dsp pass knows only
    DSP48E1), so this is checked on the RTL's structure."""
    import json
    out = tmp_path / f"{unit}-dsp.json"
    code, log = _yosys(f"read_verilog {FP / f'{unit}.v'} {FP / 'dfx_delay.v'}; hierarchy -check -top {unit}; "
                       f"proc; flatten; opt -nosdff; opt_clean; write_json {out}")
    assert code == 0, log[-3000:]
    m = json.loads(out.read_text())["modules"][unit]
    en = m["ports"]["en"]["bits"][0]
    drv, loads = {}, {}
    for name, c in m["cells"].items():
        for p, bits in c["connections"].items():
            for b in bits:
                if c["port_directions"][p] == "output":
                    drv[b] = (name, c)
                else:
                    loads.setdefault(b, []).append((c, p))
    for v in m["ports"].values():                  # output ports count as loads
        if v["direction"] == "output":
            for b in v["bits"]:
                loads.setdefault(b, []).append(({"type": "port"}, "y"))
    problems = []

    def enabled_ff(c):
        return c["type"] == "$dffe" and c["connections"]["EN"] == [en]

    muls = [c for c in m["cells"].values() if c["type"] == "$mul"]
    for c in muls:
        for p in ("A", "B"):
            for b in c["connections"][p]:
                if isinstance(b, str):
                    continue
                if not enabled_ff(drv[b][1]):
                    problems.append(f"$mul {p} bit not from a register enabled by en")
                elif any(lc["type"] != "$mul" or lp not in ("A", "B") for lc, lp in loads[b]):
                    problems.append(f"$mul {p} register drives other logic")
        used = [b for b in c["connections"]["Y"] if loads.get(b)]
        if not used:
            problems.append("$mul product unused")
        for b in used:
            if any(not enabled_ff(lc) or lp != "D" for lc, lp in loads[b]) or len(loads[b]) != 1:
                problems.append("$mul product bit not only into one register enabled by en")
    return len(muls), problems


@needs_yosys
@pytest.mark.parametrize("unit", sorted(PIPES))
def test_fp_pipeline_products_are_dsps_with_registers(unit, tmp_path):
    """Each product of a pipeline is one DSP48E2 (2 in either FP32 unit, 1 in the FP16 product)
    between registers the DSP absorbs, so no path crosses a DSP48E2 from pin to pin. Its Yosys
    cells at the minimum latency are printed: `pytest -s` shows them."""
    n, problems = _dsp_register_problems(unit, tmp_path)
    assert n == PIPE_DSPS[unit] and problems == [], (n, problems[:10])
    cells = _module_cells(tmp_path, unit, f"chparam -set LAT {pipe_min(unit)} {unit};", extra=("dfx_delay",))
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k))
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD\w+", k))
    print(f"{unit} LAT={pipe_min(unit)}: {luts} LUTs, {ffs} FFs, {cells.get('DSP48E2')} DSP48E2, {cells}")
    assert cells.get("DSP48E2") == PIPE_DSPS[unit], cells
    assert not any(k.startswith("SRL") for k in cells), cells
    if unit == "dfx_f32_add_p":
        assert luts < 400, cells                  # as dfx_f32_add_c (test_f32_adder_shifts_are_dsps)
    # the pipeline stays flip-flops, with plain stages at its end too (dfx_delay FF=1)
    cells = _module_cells(tmp_path, unit, f"chparam -set LAT {pipe_min(unit) + 2} {unit};", extra=("dfx_delay",))
    assert not any(k.startswith("SRL") for k in cells), cells


@needs_yosys
@pytest.mark.parametrize("unit", sorted(PIPES))
def test_fp_pipeline_stages_meet_the_timing_budget(unit, tmp_path):
    """Every register-to-register path of each pipeline (with a plain stage at its end), and every
    path from its inputs (launched by a register), fits dfx.hw.timing's budget in the pessimistic
    corner, from Yosys's netlist (synth_xilinx -family xcup -noiopad, as scripts/timing.py)."""
    import json
    out = tmp_path / f"{unit}-t.json"
    code, log = _yosys(f"read_verilog {FP / f'{unit}.v'} {FP / 'dfx_delay.v'}; "
                       f"chparam -set LAT {pipe_min(unit) + 1} {unit}; "
                       f"synth_xilinx -family xcup -noiopad -top {unit}; write_json {out}")
    assert code == 0, log[-3000:]
    rep = timing.analyze(json.loads(out.read_text()), top=unit, corner=timing.PESSIMISTIC, keep=1000)
    paths = rep.paths() + rep.port_paths
    worst = max(paths, key=lambda p: p.ns)
    print(f"{unit}: worst {worst.row()}")
    assert worst.ns <= timing.BUDGET_NS, [p.row() for p in sorted(paths, key=lambda p: -p.ns)[:5]]


@needs_yosys
def test_fp_multiplier_registers_pack_where_yosys_packs(tmp_path):
    """Where Yosys does pack DSP registers (the 7-series DSP48E1, xilinx_dsp), the multipliers'
    registers all go into the DSPs, enabled by en: operands in A/B, the product in M (Vivado puts a
    lone register after a product in P). The adder's 26-bit operand is too wide for a DSP48E1."""
    import json
    for unit in ("dfx_f16_mul_p", "dfx_f32_mul_p"):
        out = tmp_path / f"{unit}-xc7.json"
        code, log = _yosys(f"read_verilog {FP / f'{unit}.v'} {FP / 'dfx_delay.v'}; "
                           f"synth_xilinx -family xc7 -noiopad -flatten -top {unit}; write_json {out}")
        assert code == 0, log[-3000:]
        m = json.loads(out.read_text())["modules"][unit]
        en = m["ports"]["en"]["bits"]
        dsps = [c for c in m["cells"].values() if c["type"] == "DSP48E1"]
        assert len(dsps) == PIPE_DSPS[unit]
        for c in dsps:
            regs = {k: int(c["parameters"][k], 2) for k in ("AREG", "BREG", "MREG", "PREG")}
            assert regs["AREG"] == regs["BREG"] == 1 and regs["MREG"] + regs["PREG"] == 1, (unit, regs)
            assert c["connections"]["CEA2"] == c["connections"]["CEB2"] == en, unit


@pytest.mark.slow
@needs_yosys
def test_fp_pipeline_bmc(tmp_path):
    """Sequential proof of the adder in one piece: from reset, with `en` free in every cycle, the
    pipeline's output equals dfx_f32_add_c's output through a dfx_delay of LAT (stalled by the same
    en) at every step once LAT enabled edges have passed (bounded model check, LAT + 2 steps: about
    6 minutes). The multipliers' uncut products are out of SAT's reach (PRODUCT_CUTS)."""
    unit = "dfx_f32_add_p"
    ref, wa, wy = PIPES[unit]
    lat = pipe_min(unit)
    wrap = tmp_path / "bmc.v"
    wrap.write_text(
        f"module bmc (input wire clk, input wire en, input wire [{wa - 1}:0] a, input wire [{wa - 1}:0] b);\n"
        f"    wire [{wy - 1}:0] yp, yc, ycd;\n"
        f"    {unit} #(.LAT({lat})) u_p (.clk(clk), .en(en), .a(a), .b(b), .y(yp));\n"
        f"    {ref} u_c (.a(a), .b(b), .y(yc));\n"
        f"    dfx_delay #(.W({wy}), .LAT({lat}), .FF(1)) u_d (.clk(clk), .en(en), .d(yc), .q(ycd));\n"
        "    reg [3:0] n = 4'd0;                  // enabled edges so far, up to LAT\n"
        f"    always @(posedge clk) if (en && n < {lat}) n <= n + 4'd1;\n"
        f"    always @* if (n >= {lat}) assert (yp == ycd);\n"
        "endmodule\n")
    srcs = f"{wrap} {FP / f'{unit}.v'} {FP / f'{ref}.v'} {FP / 'dfx_delay.v'}"
    code, out = _yosys(f"read_verilog -formal {srcs}; prep -top bmc; flatten; opt -fast; async2sync; dffunmap; "
                       f"sat -seq {lat + 2} -prove-asserts -set-init-zero -show-inputs -verify", timeout=1800)
    assert code == 0 and "SAT proof finished - no model found: SUCCESS!" in out, out[-3000:]
