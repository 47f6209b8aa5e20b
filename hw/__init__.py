"""The dfx hardware: where its files are (one place for every tool that reads them).

    hw/rtl/<block>/   hand-written synthesizable Verilog, one folder per block of the core
                      (core: controller and queues; mem: HBM engines, DMA, on-chip buffer;
                      mpu, vpu, net; fp: the FP16/FP32 arithmetic both units share)
    hw/rtl/*.vh       hand-written headers shared by blocks
    hw/gen/           every GENERATED file, written by `python -m dfx.hw.generate`:
                      include/ (ISA, kernel registers, target parameters, numerics constants),
                      rom/ (the VPU's tables), <target>/dfx_core.v (the Vitis top per target)
    hw/sim/           the testbench of the `rtl` backend (N cores, HBM/DDR models, ring links)
    hw/targets/       the hardware targets (TOML), read by compiler, simulators, model and RTL

Wrappers only the unit tests use live under tests/hw/tb.
"""

from __future__ import annotations

from pathlib import Path

HW_DIR = Path(__file__).resolve().parent
RTL_DIR = HW_DIR / "rtl"
GEN_DIR = HW_DIR / "gen"
GEN_INCLUDE_DIR = GEN_DIR / "include"
GEN_ROM_DIR = GEN_DIR / "rom"
SIM_DIR = HW_DIR / "sim"


def rtl_sources() -> list[Path]:
    """Every Verilog file of the core: the hand-written blocks and the generated ROMs."""
    return sorted(RTL_DIR.rglob("*.v")) + sorted(GEN_ROM_DIR.glob("*.v"))


def include_dirs() -> list[Path]:
    """The folders `include finds headers in."""
    return [RTL_DIR, GEN_INCLUDE_DIR]


def headers() -> list[Path]:
    """Every header the sources may include."""
    return sorted(p for d in include_dirs() for p in d.glob("*.vh"))


def top_file(target: str) -> Path:
    """The generated Vitis top of a target."""
    return GEN_DIR / target / "dfx_core.v"
