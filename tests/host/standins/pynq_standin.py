"""A stand-in for PYNQ 3.0.1 on Alveo (not PYNQ): the classes and calls dfx's pynq backend uses,
with PYNQ's behaviour and limits, over stand-in cards (cards.py). `make_pynq(cards)` returns a
module object to put in sys.modules["pynq"].

What is reproduced, from PYNQ v3.0.1's sources:
  - pynq/buffer.py: PynqBuffer is an ndarray whose flush / invalidate (sync_to_device /
    sync_from_device) move exactly its own bytes, `self.offset` .. + `self.nbytes` of its BO;
    __array_finalize__ gives a slice its own offset (copied below), so syncing the whole buffer
    moves the whole buffer and syncing a slice moves the slice;
  - pynq/overlay.py: DefaultIP.start is _start_ert when the device has the ERT capability (it
    has: XRT >= 2.x), else _start_sw; arguments are packed with struct per the kernel's argument
    types (_create_call: "=" standard sizes, pointers as "Q" of their device_address; a value out of
    its type's range raises struct.error); _start_sw writes the registers and returns a WaitHandle
    that polls ap_idle (mmio.read(0) & 4); ip.read(0) reads CTRL, whose ap_done is clear-on-read;
  - pynq/pl_server/xrt_device.py: ErtWaitHandle (done, wait without a timeout, a future that gets
    an exception when the command's state is not COMPLETED) and _handle_events(timeout), which
    blocks in xclExecWait up to timeout ms and then reaps completed commands. The scheduler sees a
    command complete only through the CU's ap_done: if the host reads CTRL first (clear-on-read),
    the command never completes here, as on a card whose scheduler polls the CU.
The kernel's argument types are assumed to be kernel.xml's "unsigned int" (32-bit scalars),
"unsigned long long" (64-bit scalars) and pointers, as dfx.arch.kernel declares the arguments.
"""

from __future__ import annotations

import collections
import ctypes
import struct
import time
import types
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from dfx.arch import kernel as karch

XrtArgument = collections.namedtuple("XrtArgument", ["name", "index", "type", "mem"])  # overlay.py
TYPES = {32: ("unsigned int", "I"), 64: ("unsigned long long", "Q")}


def make_pynq(cards, cu_name: str = "dfx_core_1", ert: bool = True):
    m = types.ModuleType("pynq")
    m.__doc__ = "stand-in for PYNQ 3.0.1 (tests/host/standins/pynq_standin.py)"
    m.cards = cards
    t = cards.t
    args = cards.args

    class PynqBuffer(np.ndarray):  # buffer.py, v3.0.1
        def __new__(cls, *a, device=None, device_address=0, bo=0, coherent=False, **kw):
            self = super().__new__(cls, *a, **kw)
            self.device_address, self.coherent, self.bo, self.device = device_address, coherent, bo, device
            self.offset = 0
            return self

        def __array_finalize__(self, obj):
            if isinstance(obj, PynqBuffer) and obj.coherent is not None:
                self.coherent = obj.coherent
                offset = self.virtual_address - obj.virtual_address
                self.device_address = obj.device_address + offset
                self.offset = obj.offset + offset
                self.device = obj.device
                self.bo = obj.bo
            else:
                self.device_address = None
                self.coherent = None

        # numpy 2 gives every ndarray a read-only .device (the array API); PYNQ 3.0.1 pins numpy < 2,
        # where there is none. The stand-in runs under numpy 2, so it keeps PYNQ's .device in a property.
        device = property(lambda self: self.__dict__.get("_pynq_device"),
                          lambda self, v: self.__dict__.__setitem__("_pynq_device", v))

        @property
        def virtual_address(self):
            return self.__array_interface__["data"][0]

        def flush(self):
            if not self.coherent:
                self.device.flush(self.bo, self.offset, self.virtual_address, self.nbytes)

        def invalidate(self):
            if not self.coherent:
                self.device.invalidate(self.bo, self.offset, self.virtual_address, self.nbytes)

        sync_to_device = flush
        sync_from_device = invalidate

    class XrtMemory:
        def __init__(self, device, bank):
            self.device, self.bank = device, bank

        def allocate(self, shape, dtype, **kw):
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            addr = cards.allocate(self.device.index, self.bank, nbytes)
            bo = len(self.device.bos)
            self.device.bos.append(addr)
            return PynqBuffer(shape, dtype, buffer=bytearray(nbytes), device_address=addr, bo=bo,
                              device=self.device, coherent=False)

    class ErtWaitHandle:  # xrt_device.py
        def __init__(self, cmd, device):
            self._future, self.cmd, self.device = Future(), cmd, device

        @property
        def done(self):
            return self._future.done()

        def wait(self):
            while not self.done:
                self.device._handle_events(1000)

    class WaitHandle:  # overlay.py
        def __init__(self, target):
            self.target = target

        def wait(self):
            while self.target.mmio.read(0) & 0x4 != 0x4:
                pass

    class Device:
        devices: list = []

        def __init__(self, index):
            self.index, self.name = index, "xilinx_u280_gen3x16_xdma_base_1 (stand-in)"
            self.bos: list[int] = []  # BO handle -> device address of the buffer
            self.active: list[ErtWaitHandle] = []
            self.capabilities = {"REGISTER_RW": True, "CALLABLE": True, **({"ERT": True} if ert else {})}

        def has_capability(self, cap):
            return self.capabilities.get(cap, False)

        def flush(self, bo, offset, ptr, size):  # xclSyncBO(..., XCL_BO_SYNC_BO_TO_DEVICE, size, offset)
            bank, base = cards.locate(self.bos[bo])
            cards.to_device(self.index, bank, base + offset, ctypes.string_at(ptr, size))

        def invalidate(self, bo, offset, ptr, size):
            bank, base = cards.locate(self.bos[bo])
            data = cards.from_device(self.index, bank, base + offset, size)
            ctypes.memmove(ptr, data, size)

        def _handle_events(self, timeout=0):
            """xclExecWait(timeout ms), then reap what completed."""
            due = [h.cmd.done_at for h in self.active if h.cmd.done_at is not None and not h.cmd.stolen]
            wait = timeout / 1000
            if due:
                wait = min(wait, max(0.0, min(due) - time.monotonic()))
            time.sleep(wait)
            keep = []
            for h in self.active:
                if h.cmd.done() and not h.cmd.stolen:
                    h.cmd.reaped = True
                    h._future.set_result(None)
                else:
                    keep.append(h)
            self.active = keep

    class DefaultIP:
        def __init__(self, device):
            self.device = device
            self.args, fmt, pos = {}, "=I", 4  # CTRL at 0
            for i, a in enumerate(args):
                if a.offset > pos:
                    fmt += f"{a.offset - pos}x"
                pos = a.offset + a.bits // 8
                mem = None
                if a.kind == "pointer":
                    typ, code = "void*", "Q"
                    mem = f"HBM[{int(a.name[3:])}]" if a.name.startswith("hbm") else "DDR[0]"
                else:
                    typ, code = TYPES[a.bits]
                fmt += code
                self.args[a.name] = XrtArgument(a.name, i + 1, typ, mem)
            self._call_struct = struct.Struct(fmt)
            self._ptr = [a.kind == "pointer" for a in args]
            self.cmd = None
            self.regs = bytearray(karch.control_bytes(t))
            self.mmio = self
            self.start = self._start_ert if device.has_capability("ERT") else self._start_sw

        def _pack(self, vals):
            if len(vals) != len(args):
                raise TypeError(f"start() takes {len(args)} arguments, got {len(vals)}")
            vals = [a.device_address if p else a for a, p in zip(vals, self._ptr)]
            return self._call_struct.pack(0, *vals)  # struct.error when a value is out of its type's range

        def _submit(self, regs):
            self.cmd = cards.submit(self.device.index, bytes(regs).ljust(len(self.regs), b"\0"))
            self.cmd.stolen = self.cmd.reaped = False
            return self.cmd

        def _start_ert(self, *vals):
            h = ErtWaitHandle(self._submit(self._pack(vals)), self.device)
            self.device.active.append(h)
            return h

        def _start_sw(self, *vals):
            self.write(0, self._pack(vals))
            self.write(0, 1)
            return WaitHandle(self)

        def read(self, offset=0):
            if offset != 0:
                return int.from_bytes(self.regs[offset: offset + 4], "little")
            c = self.cmd
            if c is None or c.reaped:
                return karch.AP_IDLE
            if not c.done():
                return 0
            done = karch.AP_DONE if not c.stolen else 0
            c.stolen = True  # clear-on-read: whoever reads ap_done first takes it
            if not ert:
                c.reaped = True
            return karch.AP_IDLE | done

        def write(self, offset, value):
            if isinstance(value, (bytes, bytearray)):
                self.regs[offset: offset + len(value)] = value
            elif offset == 0 and value & karch.AP_START:
                self._submit(self.regs)
            else:
                self.regs[offset: offset + 4] = int(value).to_bytes(4, "little")

    class Overlay:
        def __init__(self, path, device=None, download=True):
            if Path(path).read_bytes()[:8] != b"xclbin2\0":
                raise RuntimeError(f"{path} is not an xclbin")
            self.device = device if device is not None else Device.devices[0]
            self.mem_dict = {name: {"idx": i, "used": 1, "tag": name} for i, name in enumerate(cards.banks)}
            self.ip_dict = {cu_name: {"cu_name": f"{cu_name.rsplit('_', 1)[0]}:{cu_name}"}}
            setattr(self, cu_name, DefaultIP(self.device))
            for i, name in enumerate(cards.banks):
                setattr(self, name.replace("[", "").replace("]", ""), XrtMemory(self.device, i))

    def allocate(shape, dtype="u4", target=None, **kw):
        return target.allocate(shape, dtype, **kw)

    Device.devices = [Device(i) for i in range(cards.n)]
    for obj in (PynqBuffer, Device, Overlay, allocate, DefaultIP, ErtWaitHandle, WaitHandle):
        setattr(m, obj.__name__, obj)
    return m
