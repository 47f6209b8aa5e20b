"""The device interface: the simulator backend's register protocol, and the pyxrt backend driven
against a stand-in for XRT's pyxrt module (no card here; the test's name says so)."""

import sys
import types

import numpy as np
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


class _StandInPyxrt(types.ModuleType):
    """Just enough of pyxrt's API (device, kernel, bo, sync directions, run states) to drive
    XrtDevice: bos hold bytes, a kernel call records its arguments and completes at once."""

    def __init__(self):
        super().__init__("pyxrt")
        calls = self.calls = []

        class xclBOSyncDirection:
            XCL_BO_SYNC_BO_TO_DEVICE, XCL_BO_SYNC_BO_FROM_DEVICE = "to", "from"

        class ert_cmd_state:
            ERT_CMD_STATE_COMPLETED = "completed"

        class device:
            def __init__(self, index):
                self.index = index

            def load_xclbin(self, path):
                calls.append(("load_xclbin", path))
                return "uuid"

        class bo:
            normal = "normal"

            def __init__(self, dev, nbytes, flags, group):
                self.data, self.group = bytearray(nbytes), group
                calls.append(("bo", nbytes, group))

            def size(self):
                return len(self.data)

            def write(self, arr, offset):
                b = bytes(np.asarray(arr, np.uint8))
                self.data[offset: offset + len(b)] = b

            def read(self, n, offset):
                return np.frombuffer(bytes(self.data[offset: offset + n]), np.uint8)

            def sync(self, direction, n, offset):
                calls.append(("sync", direction, n, offset))

        class _run:
            def wait(self, timeout_ms):
                return ert_cmd_state.ERT_CMD_STATE_COMPLETED

        class kernel:
            class cu_access_mode:
                exclusive = "exclusive"

            def __init__(self, dev, uuid, name, mode):
                calls.append(("kernel", name, mode))

            def group_id(self, arg):
                return 100 + arg

            def __call__(self, *args):
                n = len(hal.ARG_OFFSETS)
                calls.append(("run", args[:n], len(args) - n))
                return _run()

            def read_register(self, offset):
                return hal.AP_DONE

        self.device, self.bo, self.kernel = device, bo, kernel
        self.xclBOSyncDirection, self.ert_cmd_state = xclBOSyncDirection, ert_cmd_state


def test_xrt_backend_with_stand_in_pyxrt(monkeypatch):
    fake = _StandInPyxrt()
    monkeypatch.setitem(sys.modules, "pyxrt", fake)
    t = load_target("tiny")
    (dev,) = hal.open_devices("xrt", 1, t, xclbin="dfx_core.xclbin")
    assert ("load_xclbin", "dfx_core.xclbin") in fake.calls and ("kernel", "dfx_core", "exclusive") in fake.calls
    for c in range(t.hbm.channels):  # one buffer per pseudo-channel, in its bank's group
        dev.load_hbm_channel(c, np.full(256, c, np.uint8))
    assert [g for (k, *rest) in fake.calls if k == "bo" for g in [rest[1]]] == [100 + len(hal.ARG_OFFSETS) + c for c in range(4)]
    # host I/O goes through the channel interleave: flat beat b is on channel b % C
    P = t.port_bytes
    payload = bytes(range(3 * P))
    dev.write_mem("hbm", 2 * P, payload)
    assert dev.read_mem("hbm", 2 * P, 3 * P) == payload
    assert bytes(dev.bos[2].data[:P]) == payload[:P] and bytes(dev.bos[3].data[:P]) == payload[P:2 * P]
    assert bytes(dev.bos[0].data[P:2 * P]) == payload[2 * P:]  # beat 4 -> channel 0, second beat
    dev.set_args(entry=0x1234_0000_0040, ntok=5, pos=7, core=0, ncores=1, status=0x80)
    dev.start()
    dev.wait(1.0)
    run = [c for c in fake.calls if c[0] == "run"][-1]
    assert run == ("run", (0x1234_0000_0040, 5, 7, 0, 1, 0x80), t.hbm.channels)


def test_xrt_backend_without_xrt_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyxrt", None)
    with pytest.raises(DfxError, match="pyxrt"):
        hal.open_devices("xrt", 1, load_target("tiny"), xclbin="x.xclbin")
