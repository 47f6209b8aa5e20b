"""The device interface: the simulator backend's register protocol, status records, and the
card backends' refusal without their software (their stand-in tests: test_cards_standin.py)."""

import sys

import pytest

from dfx import errors
from dfx.arch import kernel
from dfx.arch.encoding import encode, make, to_asm
from dfx.arch.target import load_target
from dfx.errors import DfxError
from dfx.host import hal


def test_sim_backend_register_protocol():
    t = load_target("tiny")
    devs = hal.open_devices("sim", 2, t)
    assert [d.read_reg(hal.REG_CTRL) for d in devs] == [hal.AP_IDLE, hal.AP_IDLE]
    devs[0].write_mem("hbm", 0x100, b"\x01\x02\x03\x04")
    assert devs[0].read_mem("hbm", 0x100, 4) == b"\x01\x02\x03\x04"
    with pytest.raises(DfxError, match="has no DDR"):
        devs[0].write_mem("ddr", 0, b"\0")
    with pytest.raises(DfxError, match="unknown backend"):
        hal.open_devices("fpga", 1, t)


def test_status_record_faults_name_core_pc_and_instruction():
    """A card's status record raises the simulator's error type with the core, the pc and the
    instruction in assembly; a missing END names none (its pc is past the last instruction)."""
    load = make("load", rows=1, cols=8, m=0x40)
    with pytest.raises(errors.AddressError) as e:
        hal.check_status(kernel.build_status(code=kernel.STATUS_CODE["address"], core=1, pc=7, instr=encode(load)), 1)
    assert (e.value.core, e.value.pc, e.value.asm) == (1, 7, to_asm(load))
    with pytest.raises(errors.IllegalInstruction) as e:
        hal.check_status(kernel.build_status(code=kernel.STATUS_CODE["no_end"], core=0, pc=3,
                                             instr=encode(make("nop"))), 0)
    assert (e.value.core, e.value.pc, e.value.asm) == (0, 3, None)


def test_xrt_backend_without_xrt_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyxrt", None)
    with pytest.raises(DfxError, match="pyxrt"):
        hal.open_devices("xrt", 1, load_target("tiny"), xclbin="x.xclbin")
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(DfxError, match="PYNQ 3.0.1"):
        hal.open_devices("pynq", 1, load_target("tiny"), xclbin="x.xclbin")
