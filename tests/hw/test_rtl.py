"""RTL regression: every cocotb bench on Icarus and Verilator, plus the Verilator lint.

Parameters come from the targets (dfx.arch.target.load_target), never typed here. The
regression runs on `tiny`; DFX's 16 x 64 configuration (u280-dfx) gets a smoke test; every target is linted.
Build folders: build/hw/<simulator>/<bench>-<target>/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dfx import hw
from dfx.arch.target import load_target

pytestmark = pytest.mark.rtl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TB = HERE / "tb"
BUILD = ROOT / "build" / "hw"
SIMS = ["icarus", "verilator"]


def sources():
    return hw.rtl_sources() + sorted(TB.glob("dfx_fp*.v")) + [TB / "dfx_vpipe.v"]


def lint_cmd(exe: str, top: str, gp=()) -> list[str]:
    """verilator --lint-only -Wall on module `top` of the core's sources (every folder searched), no
    category waived."""
    dirs = sorted({f.parent for f in hw.rtl_sources()})
    return [exe, "--lint-only", "-Wall", *(f"-I{d}" for d in hw.include_dirs()),
            *(a for d in dirs for a in ("-y", str(d))), "--top-module", top, *gp]


def params(bench: str, tname: str) -> dict:
    t = load_target(tname)
    m, v = t.matrix, t.vector
    if bench == "fp":
        return {"MUL_LAT": m.mul_latency, "ADD_LAT": m.add_latency}
    if bench == "mpu":
        return {"LANES": m.lanes, "WIDTH": m.width, "MUL_LAT": m.mul_latency, "ADD_LAT": m.add_latency}
    if bench == "vpu":
        return {"VWIDTH": v.width, "MUL_LAT": m.mul_latency, "ADD_LAT": m.add_latency,  # the core's VPU
                "RECIP_LAT": v.recip_latency, "RSQRT_LAT": v.rsqrt_latency}
    raise KeyError(bench)


TOPS = {"fp": "dfx_fp_tb", "mpu": "dfx_mpu", "vpu": "dfx_vpu"}


def have(sim: str) -> bool:
    return shutil.which("iverilog" if sim == "icarus" else "verilator") is not None


def run_bench(sim: str, bench: str, tname: str = "tiny", testcase=None):
    if not have(sim):
        pytest.skip(f"{sim} is not installed")
    from cocotb_tools.runner import get_results, get_runner

    top = TOPS[bench]
    bdir = BUILD / sim / f"{bench}-{tname}"
    p = params(bench, tname)
    r = get_runner(sim)
    args = []
    if sim == "verilator":
        # the u280 models are large (1,024 multipliers): C++ at -O0 builds several times faster,
        # and a smoke test runs only a few hundred cycles
        args = ["-Wno-fatal"] + (["-CFLAGS", "-O0"] if tname != "tiny" else [])
    r.build(sources=sources(), hdl_toplevel=top, parameters=p, build_dir=bdir, includes=hw.include_dirs(),
            timescale=("1ns", "1ps"), build_args=args)
    xml = bdir / "results.xml"
    try:
        r.test(hdl_toplevel=top, test_module=f"cocotb_{bench}", test_dir=HERE, build_dir=bdir,
               testcase=testcase, extra_env={"DFX_TARGET": tname}, results_xml=str(xml))
    except SystemExit:  # the runner exits when a cocotb test fails
        n, f = get_results(xml) if xml.exists() else (0, 0)
        pytest.fail(f"{bench} on {sim}: {f} of {n} cocotb tests failed (log above)", pytrace=False)
    n, f = get_results(xml)
    assert n > 0 and f == 0, f"{bench} on {sim}: {f} of {n} cocotb tests failed"


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("bench", ["fp", "mpu", "vpu"])
def test_tiny(sim, bench):
    run_bench(sim, bench, "tiny")


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("bench", ["mpu", "vpu"])
def test_u280_smoke(sim, bench):
    """DFX's configuration (u280-dfx: 16 x 64 MPU, 64-wide VPU): one smoke stream each. On Verilator
    the C++ build of these models takes about 5 minutes each on 2 cores, so it runs only with
    DFX_RTL_U280_VERILATOR=1 (Icarus always runs it)."""
    if sim == "verilator" and os.environ.get("DFX_RTL_U280_VERILATOR") != "1":
        pytest.skip("u280 Verilator build is slow: set DFX_RTL_U280_VERILATOR=1")
    run_bench(sim, bench, "u280-dfx", testcase="smoke")


def _modules():
    import re
    out = []
    for f in hw.rtl_sources():
        m = re.search(r"^module\s+(\w+)", f.read_text(), re.M)
        out.append((m.group(1), f))
    return out


def test_fp_latency_minimums_are_the_rtls():
    """arch.target's ADD_LATENCY_MIN and MUL_LATENCY_MIN are the FP units' own stages (the localparams
    ADD_MIN of dfx_f32_add_p, MUL_MIN of dfx_f32_mul_p and MUL16_MIN of dfx_f16_mul_p) plus the one
    stage dfx_exp16_p and dfx_gelu16_p take from a unit (each instantiates one at LAT - 1)."""
    import re

    from dfx.arch import target
    fp = hw.RTL_DIR / "fp"

    def stages(f, name):
        return int(re.search(rf"localparam integer {name} = (\d+);", (fp / f).read_text()).group(1))
    assert target.ADD_LATENCY_MIN == stages("dfx_f32_add_p.v", "ADD_MIN") + 1
    assert target.MUL_LATENCY_MIN == max(stages("dfx_f32_mul_p.v", "MUL_MIN"),
                                         stages("dfx_f16_mul_p.v", "MUL16_MIN")) + 1
    for f in (hw.RTL_DIR / "vpu" / "dfx_exp16_p.v", hw.RTL_DIR / "mpu" / "dfx_gelu16_p.v"):
        src = f.read_text()
        assert "dfx_f32_add_p #(.LAT(ADD_LAT - 1))" in src and "dfx_f32_mul_p #(.LAT(MUL_LAT - 1))" in src, f


@pytest.mark.parametrize("tname", ["tiny", "tiny-ddr", "u280-dfx", "u280"])
def test_lint(tname):
    """verilator --lint-only -Wall: no warning on any module, target parameters on the units."""
    exe = shutil.which("verilator")
    if exe is None:
        pytest.skip("verilator is not installed")
    failures = []
    for mod, path in _modules():
        if mod == "dfx_core_flat":
            continue  # linted with the target's parameters through its generated top: test_lint_core_top
        gp = []
        for bench, top in TOPS.items():
            if top == mod:
                gp = [f"-G{k}={v}" for k, v in params(bench, tname).items()]
        cmd = lint_cmd(exe, mod, gp) + [str(path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or "%Warning" in r.stderr:
            failures.append(f"{mod}:\n{r.stderr[-2000:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("tname", ["tiny", "tiny-ddr", "u280-dfx", "u280"])
def test_lint_core_top(tname):
    """The generated kernel top dfx_core of each target (its AXI ports named for Vitis) lints."""
    exe = shutil.which("verilator")
    if exe is None:
        pytest.skip("verilator is not installed")
    r = subprocess.run(lint_cmd(exe, "dfx_core") + [str(hw.top_file(tname))],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]
