"""A stand-in for XRT's Python binding `pyxrt` (not XRT): the classes and calls dfx's xrt backend
uses, with the limits of the real binding, over stand-in cards (cards.py). `make_pyxrt(cards)`
returns a module object to put in sys.modules["pyxrt"].

Each behaviour is the one of XRT's src/python/pybind11/src/pyxrt.cpp (and the C++ it calls,
src/runtime_src/core/common/api/xrt_kernel.cpp), as read at XRT master:
  - scalar arguments go through a C `int` (run.set_arg(int, int&), kernel.__call__'s
    item.cast<int>()): pybind11 refuses a Python int outside [-2^31, 2^31) -- set_arg raises
    TypeError, while kernel(...) swallows the cast error and leaves the argument unset;
  - a C int set on a 64-bit argument fills its low 4 bytes only (hs_arg_setter::set_arg_value
    copies min(arg size, value size) bytes): the high word stays as the command buffer had it,
    zero here (a fresh buffer);
  - kernel objects bind no read_register / write_register (dropped in 2021, commit 17f9eba5);
  - run.wait(timeout_ms) returns an ert_cmd_state, ERT_CMD_STATE_TIMEOUT when the time runs out
    ("deprecated wait() semantics" in xrt_kernel.cpp), and waits forever for 0; run binds no abort;
  - destroying a run whose command is still in progress aborts the process (run_impl's destructor):
    here it is recorded in FATAL instead, for tests to assert on;
  - bo.read returns a numpy array of C char (int8); bo.sync(direction, size, offset) moves only
    that range between the host buffer and the card; write/read touch the host buffer only.
"""

from __future__ import annotations

import enum
import operator
import time
import types
from pathlib import Path

import numpy as np

from dfx.arch import kernel as karch
from .cards import StandinError

FATAL: list[str] = []  # what would have aborted the process on a real XRT
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


def _c_int(v):
    """pybind11's type_caster<int>: an integer within C int, or None (the cast fails)."""
    if isinstance(v, float) or not hasattr(v, "__index__"):
        return None
    v = operator.index(v)
    return v if INT_MIN <= v <= INT_MAX else None


def make_pyxrt(cards, kernel_name: str = "dfx_core", legacy: bool = False):
    """legacy: the binding of XRT 2.14 / 2.15: no hw_context, register_xclbin or enumerate_devices
    (those came with 2.16 and 2.17), only device.load_xclbin and kernel(device, uuid, name, mode)."""
    m = types.ModuleType("pyxrt")
    m.__doc__ = "stand-in for XRT's pyxrt (tests/host/standins/pyxrt_standin.py)"
    m.FATAL = FATAL
    m.cards = cards
    args = cards.args
    regmap_bytes = karch.control_bytes(cards.t)

    class xclBOSyncDirection(enum.IntEnum):
        XCL_BO_SYNC_BO_TO_DEVICE = 0
        XCL_BO_SYNC_BO_FROM_DEVICE = 1

    class ert_cmd_state(enum.IntEnum):  # the values of ert.h; pyxrt binds these names (not RUNNING)
        ERT_CMD_STATE_NEW = 1
        ERT_CMD_STATE_QUEUED = 2
        ERT_CMD_STATE_COMPLETED = 4
        ERT_CMD_STATE_ERROR = 5
        ERT_CMD_STATE_ABORT = 6
        ERT_CMD_STATE_SUBMITTED = 7
        ERT_CMD_STATE_TIMEOUT = 8
        ERT_CMD_STATE_NORESPONSE = 9

    class xrt_info_device(enum.IntEnum):
        bdf = 0
        name = 5

    def enumerate_devices():
        return cards.n

    class uuid:
        def __init__(self, s):
            self.s = s

        def to_string(self):
            return self.s

    class xclbin:
        def __init__(self, path):
            data = Path(path).read_bytes()  # xrt::xclbin reads and checks the whole file
            if data[:8] != b"xclbin2\0":
                raise RuntimeError(f"Invalid xclbin: {path}")
            self.path, self._uuid = str(path), uuid(data[304 + 112: 304 + 128].hex())

        def get_uuid(self):
            return self._uuid

    class device:
        def __init__(self, index):
            if not 0 <= index < cards.n:
                raise RuntimeError(f"Could not open device with index '{index}'")
            self.index, self.xclbins, self.loaded = index, {}, None

        def _register(self, xb):
            self.xclbins[xb.get_uuid().s] = xb
            return xb.get_uuid()

        def load_xclbin(self, xb):  # deprecated compatibility shim in pyxrt.cpp
            if isinstance(xb, str):
                xb = xclbin(xb)
            self._register(xb)
            self.loaded = xb
            return xb.get_uuid()

        def get_info(self, key):
            return {xrt_info_device.bdf: f"0000:{0x3b + self.index:02x}:00.1",
                    xrt_info_device.name: "xilinx_u280_gen3x16_xdma_base_1 (stand-in)"}[key]

    class hw_context:
        def __init__(self, dev, u, *mode):
            if u.s not in dev.xclbins:
                raise RuntimeError("xclbin not registered")
            dev.loaded = dev.xclbins[u.s]
            self.device = dev

    class kernel:
        class cu_access_mode(enum.IntEnum):
            exclusive = 0
            shared = 1
            none = 2

        def __init__(self, ctx_or_dev, *rest):
            dev = ctx_or_dev.device if isinstance(ctx_or_dev, hw_context) else ctx_or_dev
            name = rest[0] if isinstance(ctx_or_dev, hw_context) else rest[1]
            if dev.loaded is None:
                raise RuntimeError("No xclbin loaded")
            if name != kernel_name:
                raise RuntimeError(f"No such compute unit '{name}'")
            self.device = dev

        def group_id(self, argno):
            a = args[argno]
            if a.kind != "pointer":
                raise RuntimeError(f"argument {argno} is not a global memory argument")
            want = f"HBM[{int(a.name[3:])}]" if a.name.startswith("hbm") else "DDR[0]"
            return cards.banks.index(want)

        def __call__(self, *items):  # pyxrt.cpp: a failed cast of an item is swallowed
            r = run(self)
            for i, item in enumerate(items):
                if isinstance(item, bo):
                    r.set_arg(i, item)
                elif _c_int(item) is not None:
                    r.set_arg(i, item)
            r.start()
            return r

    class bo:
        normal, cacheable, device_only, host_only = 0, 1, 2, 3

        def __init__(self, dev, size, flags, group):
            self.card, self.group, self._size = dev.index, int(group), int(size)
            self._addr = cards.allocate(self.card, self.group, self._size)
            self.host = bytearray(self._size)  # the host-side buffer of a normal bo

        def size(self):
            return self._size

        def address(self):
            return self._addr

        def map(self):
            return memoryview(self.host)

        def write(self, buf, seek):
            b = memoryview(buf).cast("B")
            if seek + len(b) > self._size:
                raise RuntimeError("bo.write: offset + size is past the buffer")
            self.host[seek: seek + len(b)] = b

        def read(self, size, skip):
            if skip + size > self._size:
                raise RuntimeError("bo.read: offset + size is past the buffer")
            return np.frombuffer(bytes(self.host[skip: skip + size]), np.int8)  # py::array_t<char>

        def sync(self, direction, size=None, offset=0):
            size = self._size if size is None else size
            if offset + size > self._size:
                raise RuntimeError("bo.sync: offset + size is past the buffer")
            bank, base = cards.locate(self._addr)
            if direction == xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE:
                cards.to_device(self.card, bank, base + offset, bytes(self.host[offset: offset + size]))
            else:
                self.host[offset: offset + size] = cards.from_device(self.card, bank, base + offset, size)

    class run:
        def __init__(self, k):
            self.k, self.regs, self.cmd = k, bytearray(regmap_bytes), None

        def set_arg(self, i, item):
            a = args[i]
            if isinstance(item, bo):
                if a.kind != "pointer" or item.group != self.k.group_id(i):
                    raise RuntimeError(f"bo for argument {i} is not in the memory bank the argument is connected to")
                self.regs[a.offset: a.offset + 8] = item.address().to_bytes(8, "little")
                return
            v = _c_int(item)
            if v is None:
                raise TypeError("set_arg(): incompatible function arguments. The following argument types are "
                                "supported:\n    1. (self: pyxrt.run, arg0: int, arg1: pyxrt.bo) -> None\n"
                                "    2. (self: pyxrt.run, arg0: int, arg1: int) -> None\n\n"
                                f"Invoked with: <pyxrt.run>, {i}, {item!r}")
            self.regs[a.offset: a.offset + 4] = (v & 0xFFFFFFFF).to_bytes(4, "little")  # min(arg size, 4)

        def start(self):
            if self.cmd is not None and not self.cmd.done():
                raise RuntimeError("run is already in progress")
            self.cmd = cards.submit(self.k.device.index, bytes(self.regs))

        def state(self):
            if self.cmd is None:
                return ert_cmd_state.ERT_CMD_STATE_NEW
            return ert_cmd_state.ERT_CMD_STATE_COMPLETED if self.cmd.done() else ert_cmd_state.ERT_CMD_STATE_SUBMITTED

        def wait(self, timeout_ms=0):
            if self.cmd is None:
                raise RuntimeError("run was not started")
            deadline = None if not timeout_ms else time.monotonic() + timeout_ms / 1000
            while not self.cmd.done():
                if deadline is not None and time.monotonic() >= deadline:
                    return ert_cmd_state.ERT_CMD_STATE_TIMEOUT
                due = self.cmd.done_at
                step = 0.001 if due is None else max(0.0, due - time.monotonic())
                if deadline is not None:
                    step = min(step, max(0.0, deadline - time.monotonic()))
                time.sleep(min(step, 0.05) + 1e-4)
            return ert_cmd_state.ERT_CMD_STATE_COMPLETED

        def __del__(self):
            if self.cmd is not None and not self.cmd.done():
                FATAL.append("xrt::run destructed while command is still in progress")

    for obj in (xclBOSyncDirection, ert_cmd_state, xrt_info_device, uuid, xclbin, device, kernel, bo, run):
        setattr(m, obj.__name__, obj)
    if not legacy:
        device.register_xclbin = device._register
        m.hw_context, m.enumerate_devices = hw_context, enumerate_devices
    return m


__all__ = ["make_pyxrt", "FATAL", "StandinError"]
