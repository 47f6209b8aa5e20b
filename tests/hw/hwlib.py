"""Shared helpers of the cocotb tests (imported inside the simulator, from tests/hw).

One coroutine per test drives the whole clock-cycle loop: on each falling edge it
drives the next input beat (or a random gap) and a random out_ready, then reads the
settled handshakes in ReadOnly. A beat moves at the next rising edge exactly when
valid and ready were both high at that ReadOnly, so the bookkeeping is cycle exact.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from dfx.arch.target import load_target

ROOT = Path(__file__).resolve().parents[2]


def target():
    return load_target(os.environ.get("DFX_TARGET", "tiny"))


def sim_key() -> str:
    name = cocotb.SIM_NAME.lower()
    return "verilator" if "verilator" in name else "icarus" if "icarus" in name else name


def pack(bits, width: int = 16) -> int:
    """A vector of unsigned fields -> one integer, element 0 in the low bits."""
    v = 0
    for i, b in enumerate(np.asarray(bits).reshape(-1).tolist()):
        v |= (int(b) & ((1 << width) - 1)) << (i * width)
    return v


def unpack(v: int, n: int, width: int = 16) -> np.ndarray:
    mask = (1 << width) - 1
    return np.array([(v >> (i * width)) & mask for i in range(n)], dtype=np.uint64)


async def start(dut, rst: bool = True):
    """Start a 10 ns clock and hold reset for 3 cycles (signals named clk, rst)."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    if rst:
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0


async def stream(dut, beats, inp: str, out: str, out_fields, gap_p: float = 0.0,
                 stall_p: float = 0.0, n_out: int | None = None, seed: int = 1,
                 max_cycles: int = 200000, idle: dict | None = None):
    """Push `beats` (dicts: port suffix -> int) into <inp>_valid/_ready and collect
    `n_out` beats (default len(beats)) from <out>_valid/_ready, reading `out_fields`.

    gap_p: chance of an idle input cycle; stall_p: chance of out_ready low.
    Returns (outputs, in_cycles, out_cycles): a list of dicts and the cycle number of
    every input and output handshake (cycle 0 = first loop cycle).
    """
    rng = random.Random(seed)
    n_out = len(beats) if n_out is None else n_out
    iv = getattr(dut, f"{inp}_valid")
    ir = getattr(dut, f"{inp}_ready")
    ov = getattr(dut, f"{out}_valid")
    orr = getattr(dut, f"{out}_ready")
    ports = {}
    outs, in_cyc, out_cyc = [], [], []
    i = 0
    cyc = 0
    idle = idle or {}
    while len(outs) < n_out:
        await FallingEdge(dut.clk)
        valid = i < len(beats) and not (gap_p and rng.random() < gap_p)
        if valid:
            for k, v in beats[i].items():
                if k not in ports:
                    ports[k] = getattr(dut, f"{inp}_{k}")
                ports[k].value = v
        else:
            for k, v in idle.items():
                getattr(dut, f"{inp}_{k}").value = v
        iv.value = int(valid)
        rdy = not (stall_p and rng.random() < stall_p)
        orr.value = int(rdy)
        await ReadOnly()
        if valid and int(ir.value):
            in_cyc.append(cyc)
            i += 1
        if rdy and int(ov.value):
            outs.append({f: int(getattr(dut, f"{out}_{f}").value) for f in out_fields})
            out_cyc.append(cyc)
        cyc += 1
        if cyc > max_cycles:
            raise AssertionError(f"timeout: {i}/{len(beats)} beats in, {len(outs)}/{n_out} out")
    await FallingEdge(dut.clk)
    iv.value = 0
    return outs, in_cyc, out_cyc


def record(unit: str, figures: dict) -> None:
    """Write measured figures to build/hw/measured/<sim>_<target>_<unit>.json (merged by conftest)."""
    d = ROOT / "build" / "hw" / "measured"
    d.mkdir(parents=True, exist_ok=True)
    t = target().name
    (d / f"{sim_key()}_{t}_{unit}.json").write_text(json.dumps(
        {"simulator": sim_key(), "target": t, "unit": unit, **figures}, indent=1, sort_keys=True))


def check_equal(name: str, got, want, ctx=None) -> None:
    got = np.asarray(got, dtype=np.uint64)
    want = np.asarray(want, dtype=np.uint64)
    bad = np.nonzero(got != want)[0]
    if bad.size:
        j = int(bad[0])
        extra = f" inputs {ctx(j)}" if ctx else ""
        raise AssertionError(f"{name}: {bad.size}/{got.size} mismatches; first at {j}: "
                             f"got {int(got[j]):#x} want {int(want[j]):#x}{extra}")
