"""The card backends: Alveo U280s through XRT's Python binding pyxrt (`xrt`) and PYNQ 3.0.1 (`pynq`).

Both are written against the real APIs (no card is reachable where dfx is developed; the tests
drive them through stand-ins that reproduce these limits, tests/host/standins/):

  pyxrt (XRT's src/python/pybind11/src/pyxrt.cpp at master, and at 2.14 / 2.16 / 2.17 for what
  came when; tests/python/02_simple/main.py)
    - no kernel register access: read_register / write_register left the binding in 2021
      (commit 17f9eba5). Status and counters come from the status record the core writes to
      HBM at END or on an error (dfx.arch.kernel), read back with a sync of its 256 bytes only.
    - scalar arguments go through a C `int`: run.set_arg(int, int&) refuses (TypeError) a Python
      int outside [-2^31, 2^31), and kernel(*args) silently leaves such an argument unset
      (its item.cast<int>() error is swallowed), so runs are built with run.set_arg, never
      kernel(...). XRT copies the int's 4 bytes into the argument (xrt_kernel.cpp,
      hs_arg_setter::set_arg_value copies min(arg size, value size) bytes; the same in XRT 2.14,
      2.16, 2.18 and master), so a 64-bit scalar argument would get its high word from whatever
      the command buffer held (XRT reuses command buffers without clearing them,
      core/common/bo_cache.h). dfx.arch.kernel therefore declares every scalar 32-bit, entry and
      status as two arguments each (entry, entry_hi; status, status_hi), and every word is set on
      every run, as the two's-complement C int of its 32 bits (c_int), so any 64-bit address goes.
    - run.wait(timeout_ms) returns an ert_cmd_state: COMPLETED goes on, TIMEOUT is a
      DeviceTimeout, anything else a DfxError naming it. pyxrt binds no xrt::run::abort, and an
      xrt::run destroyed while its command runs aborts the process (run_impl's destructor), so a
      timed-out run is kept; the next call on that card first waits for it (up to the last timeout)
      and then goes on, the card usable again, or says the card must be reset (xbutil reset).
    - one bo per HBM pseudo-channel (and DDR) in the bank of its kernel argument,
      kernel.group_id(argument index); host I/O syncs only the bytes it touches:
      bo.sync(direction, size, offset).
  PYNQ 3.0.1 (the last with Alveo: pynq/overlay.py, pynq/buffer.py, pynq/pl_server/xrt_device.py)
    - ip.start(*args) goes through the card's scheduler (ERT) and returns an ErtWaitHandle; its
      wait() has no timeout, so this backend polls handle.done and lets PYNQ reap completions with
      device._handle_events(ms), the call ErtWaitHandle.wait() loops on; a failed command is the
      exception of handle._future (ErtWaitHandle._complete). Never read CTRL to wait: ap_done is
      clear-on-read and the scheduler needs to see it. Without ERT, start() returns a WaitHandle
      that polls ap_idle (mmio.read(0) & 4), which is what this backend then polls, with a timeout.
      PYNQ cannot abort a command either: as with pyxrt, the next call waits for a late one.
    - scalars are packed with struct per the kernel's argument types (_create_call): every
      scalar is an "unsigned int" (a "uint64_t" is not in PYNQ's _struct_dict and the IP would
      get no start()).
    - buffers: one pynq.allocate per bank, found from the argument's memory (ip.args[name].mem,
      from the xclbin's CONNECTIVITY). A PynqBuffer's sync_to_device() / sync_from_device() flush
      the array's own bytes (buffer.py: flush(bo, self.offset, ..., self.nbytes)); a slice of it
      is a PynqBuffer whose offset and nbytes are the slice's (__array_finalize__), so
      buf[lo:hi].sync_to_device() moves hi - lo bytes. Host I/O syncs only those slices: a token
      moves its ids, logits, argmax and status record, never a whole 256 MB channel buffer. (The
      I/O stays in the channel buffers: the core addresses ids, logits, argmax and status in the
      flat HBM space it interleaves over all channels, compiler/memmap.py's io.* regions.)

Before anything is loaded, both check the xclbin's identity (dfx.host.xclbin.check_identity).
"""

from __future__ import annotations

import math
import re
import time

import numpy as np

from dfx.arch import kernel
from dfx.arch.hbm import beat_chunks
from dfx.compiler.vitis import CU, KERNEL
from dfx.errors import DeviceTimeout, DfxError
from dfx.host import hal
from dfx.host.xclbin import check_identity

# runs and handles still in flight when their device closed: referenced until the process ends,
# since destroying an xrt::run in flight aborts the process
_IN_FLIGHT: list = []


def c_int(word: int) -> int:
    """A 32-bit argument word as the C int pyxrt's run.set_arg(int, int&) takes: the same 4 bytes."""
    return word - (1 << 32) if word >> 31 else word


class CardDevice(hal.Device):
    """One card: buffers per memory port, host I/O through ranged syncs, arguments and the status
    record instead of registers. Subclasses move bytes (_put, _get, _sync) and runs (_launch,
    _finish, _settle)."""

    api = "the card's API"

    def __init__(self, index: int, target, hbm_bytes: int, ddr_bytes: int):
        self.index, self.t = index, target
        self.args = kernel.kernel_args(target)
        self.values: dict[str, int] = {}
        C, P = target.hbm.channels, target.port_bytes
        stripes = -(-int(hbm_bytes) // (C * P))
        # port p < C: HBM pseudo-channel p; port C: DDR. (argument index, bytes of its buffer)
        self.ports = {c: (self._arg(f"hbm{c:02d}"), max(stripes * P, 4096)) for c in range(C)}
        if target.ddr.present:  # the kernel has the port: it gets a buffer even if the bundle leaves DDR empty
            self.ports[C] = (self._arg("ddr"), max(-(-int(ddr_bytes or 0) // 4096) * 4096, 4096))
        self.pending = False  # a run was started and not yet waited for
        self.grace_s = 60.0  # how long a later call waits for a late run (the last timeout given)
        self._counters: dict = {}

    def _arg(self, name: str) -> int:
        return next(i for i, a in enumerate(self.args) if a.name == name)

    # ---------------------------------------------------------------- what subclasses provide
    def _put(self, port: int, off: int, data: bytes) -> None: ...

    def _get(self, port: int, off: int, n: int) -> bytes: ...

    def _sync(self, port: int, to_device: bool, lo: int, hi: int) -> None: ...

    def _launch(self) -> None: ...

    def _finish(self, timeout_s: float) -> None:
        """Wait for the run; raise DeviceTimeout (the run stays pending) or DfxError."""

    def _settle(self, timeout_s: float) -> bool:
        """Wait up to timeout_s for a run that was not waited for; True when it has ended."""

    # ---------------------------------------------------------------- memory
    def _ranges(self, space: str, addr: int, nbytes: int):
        """Per port: (port, [(port offset, offset in the data, bytes)], lo, hi); [lo, hi) holds
        exactly the bytes of the flat range that lie on that port (a flat range covers whole beats of
        a channel between its first and last, dfx.arch.hbm's interleave)."""
        if space == "ddr":
            if self.t.hbm.channels not in self.ports:
                raise DfxError(f"card {self.index} has no DDR")
            return [(self.t.hbm.channels, [(addr, 0, nbytes)], addr, addr + nbytes)]
        per: dict = {}
        for ch, caddr, off, n in beat_chunks(addr, nbytes, self.t.port_bytes, self.t.hbm.channels):
            per.setdefault(ch, []).append((caddr, off, n))
        out = []
        for ch, chunks in sorted(per.items()):
            lo, hi = chunks[0][0], chunks[-1][0] + chunks[-1][2]
            if hi > self.ports[ch][1]:
                raise DfxError(f"card {self.index}: HBM bytes [0x{addr:x}, 0x{addr + nbytes:x}) lie past "
                               f"the buffers sized for the bundle")
            out.append((ch, chunks, lo, hi))
        return out

    def load_hbm_channel(self, channel, data):
        self._load(channel, data)

    def load_ddr(self, data):
        if self.t.hbm.channels not in self.ports:
            raise DfxError(f"card {self.index} has no DDR buffer")
        self._load(self.t.hbm.channels, data)

    def _load(self, port: int, data) -> None:
        """The whole buffer, zeros past the image (as the simulator's memory starts)."""
        size = self.ports[port][1]
        data = np.ascontiguousarray(data, np.uint8)
        if data.size > size:
            raise DfxError(f"card {self.index}: a {data.size}-byte image does not fit its {size}-byte buffer")
        full = np.zeros(size, np.uint8)
        full[: data.size] = data
        self._put(port, 0, full.tobytes())
        self._sync(port, True, 0, size)

    def write_mem(self, space, addr, data):
        self._settle_or_raise()
        data = bytes(data)
        for port, chunks, lo, hi in self._ranges(space, addr, len(data)):
            for caddr, off, n in chunks:
                self._put(port, caddr, data[off: off + n])
            self._sync(port, True, lo, hi)

    def read_mem(self, space, addr, nbytes):
        out = bytearray(nbytes)
        for port, chunks, lo, hi in self._ranges(space, addr, nbytes):
            self._sync(port, False, lo, hi)
            for caddr, off, n in chunks:
                out[off: off + n] = self._get(port, caddr, n)
        return bytes(out)

    # ---------------------------------------------------------------- runs
    def write_reg(self, offset, value=None):
        raise DfxError(f"card {self.index}: {self.api} gives the host no access to the kernel's registers; "
                       "arguments go with each run and the core reports through its status record in HBM")

    def read_reg(self, offset):
        self.write_reg(offset)

    def set_args(self, **args):
        for name, v in args.items():
            bits = 64 if name in kernel.WIDE else self.args[self._arg(name)].bits
            if not 0 <= int(v) < 1 << bits:
                raise DfxError(f"card {self.index}: argument {name} = {v} does not fit {bits} bits")
            self.values[name] = int(v)

    def start(self):
        self._settle_or_raise()
        # a stale record must not pass for this run's: the core overwrites it at END or on an error
        self.write_mem("hbm", self.values["status"], bytes(kernel.STATUS_BYTES))
        self._launch()
        self.pending = True
        self._counters = {}

    def wait(self, timeout_s):
        if not self.pending:
            return
        self.grace_s = timeout_s
        try:
            self._finish(timeout_s)
        except DeviceTimeout:
            raise  # still running: the next call on this card waits for it (_settle_or_raise)
        except BaseException:
            self.pending = False
            raise
        self.pending = False
        st = hal.check_status(self.read_mem("hbm", self.values["status"], kernel.STATUS_BYTES), self.index)
        self._counters = {k: v for k, v in st.items() if k not in ("instr", "magic")}
        if st["cycles"]:
            self._counters["device_cycles"] = st["cycles"]

    def _settle_or_raise(self) -> None:
        """Before touching a card whose last run was not waited for (a timeout, or a call that
        failed on another card): wait for that run to end, dropping its results."""
        if not self.pending:
            return
        if not self._settle(self.grace_s):
            raise DeviceTimeout(f"card {self.index} still runs a call that timed out {self.grace_s:g} s ago; "
                                f"{self.api} cannot abort it: reset the card (xbutil reset) and reload")
        self.pending = False

    def counters(self):
        return dict(self._counters)

    def close(self):
        if self.pending and not self._settle(min(self.grace_s, 5.0)):
            _IN_FLIGHT.append(self)


# --------------------------------------------------------------------------- pyxrt
class XrtDevice(CardDevice):
    api = "pyxrt"

    def __init__(self, pyxrt, index, xclbin, target, hbm_bytes, ddr_bytes=0):
        super().__init__(index, target, hbm_bytes, ddr_bytes)
        self.x = pyxrt
        self.dev = pyxrt.device(index)
        xb = pyxrt.xclbin(str(xclbin))
        if hasattr(pyxrt, "hw_context") and hasattr(pyxrt.device, "register_xclbin"):  # XRT 2.16 on
            self.ctx = pyxrt.hw_context(self.dev, self.dev.register_xclbin(xb))
            self.kernel = pyxrt.kernel(self.ctx, KERNEL)
        else:  # XRT 2.14, 2.15 (load_xclbin and this constructor are deprecated since)
            uuid = self.dev.load_xclbin(xb)
            self.kernel = pyxrt.kernel(self.dev, uuid, KERNEL, pyxrt.kernel.cu_access_mode.exclusive)
        self.bos = {p: pyxrt.bo(self.dev, size, pyxrt.bo.normal, self.kernel.group_id(arg))
                    for p, (arg, size) in self.ports.items()}
        self.run = None
        d = pyxrt.xclBOSyncDirection
        self.dirs = {True: d.XCL_BO_SYNC_BO_TO_DEVICE, False: d.XCL_BO_SYNC_BO_FROM_DEVICE}

    def _put(self, port, off, data):
        self.bos[port].write(np.frombuffer(data, np.uint8), off)

    def _get(self, port, off, n):
        return self.bos[port].read(n, off).tobytes()  # an int8 array (py::array_t<char>)

    def _sync(self, port, to_device, lo, hi):
        self.bos[port].sync(self.dirs[to_device], hi - lo, lo)

    def _launch(self):
        r = self.x.run(self.kernel)
        words = kernel.split_wide(self.values)
        for i, a in enumerate(self.args):
            if a.kind == "pointer":
                port = self.t.hbm.channels if a.name == "ddr" else int(a.name[3:])
                r.set_arg(i, self.bos[port])
            else:
                r.set_arg(i, c_int(words.get(a.name, 0)))  # every word, every run: none left to chance
        r.start()
        self.run = r

    def _finish(self, timeout_s):
        st = self.x.ert_cmd_state
        state = self.run.wait(max(1, math.ceil(timeout_s * 1000)))  # 0 would wait without a limit
        if state == st.ERT_CMD_STATE_TIMEOUT:
            raise DeviceTimeout(f"card {self.index} did not finish within {timeout_s:g} s (ERT_CMD_STATE_TIMEOUT)")
        self.run = None
        if state != st.ERT_CMD_STATE_COMPLETED:
            raise DfxError(f"card {self.index}: the run ended in state {getattr(state, 'name', state)}")

    def _settle(self, timeout_s):
        state = self.run.wait(max(1, math.ceil(timeout_s * 1000)))
        if state == self.x.ert_cmd_state.ERT_CMD_STATE_TIMEOUT:
            return False
        self.run = None
        return True


# --------------------------------------------------------------------------- PYNQ 3.0.1
class PynqDevice(CardDevice):
    api = "PYNQ 3.0.1"

    def __init__(self, pynq, index, xclbin, target, hbm_bytes, ddr_bytes=0):
        super().__init__(index, target, hbm_bytes, ddr_bytes)
        self.ol = pynq.Overlay(str(xclbin), device=pynq.Device.devices[index])  # downloads it
        self.ip = getattr(self.ol, CU)
        self.bufs = {}
        for p, (arg, size) in self.ports.items():
            mem = self.ip.args[self.args[arg].name].mem  # e.g. "HBM[3]", as link.cfg connected the port
            bank = getattr(self.ol, re.sub("[^A-Za-z0-9_]", "", mem))  # overlay.py names banks so
            self.bufs[p] = pynq.allocate((size,), np.uint8, target=bank)
        self.handle = None

    def _put(self, port, off, data):
        self.bufs[port][off: off + len(data)] = np.frombuffer(data, np.uint8)

    def _get(self, port, off, n):
        return self.bufs[port][off: off + n].tobytes()

    def _sync(self, port, to_device, lo, hi):
        view = self.bufs[port][lo:hi]  # a PynqBuffer of its own offset and nbytes
        view.sync_to_device() if to_device else view.sync_from_device()

    def _launch(self):
        vals, words = [], kernel.split_wide(self.values)
        for a in self.args:
            if a.kind == "pointer":
                vals.append(self.bufs[self.t.hbm.channels if a.name == "ddr" else int(a.name[3:])])
            else:
                vals.append(words.get(a.name, 0))
        self.handle = self.ip.start(*vals)

    def _poll(self, timeout_s) -> bool:
        """Until the run ends or timeout_s passes; True when it ended."""
        h, deadline = self.handle, time.monotonic() + timeout_s
        if hasattr(h, "done"):  # ErtWaitHandle
            while not h.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.ip.device._handle_events(max(1, min(100, int(left * 1000))))
            return True
        while not self.ip.read(kernel.REG_CTRL) & kernel.AP_IDLE:  # WaitHandle's ap_idle poll
            if time.monotonic() > deadline:
                return False
            time.sleep(1e-4)
        return True

    def _finish(self, timeout_s):
        if not self._poll(timeout_s):
            raise DeviceTimeout(f"card {self.index} did not finish within {timeout_s:g} s")
        h, self.handle = self.handle, None
        fut = getattr(h, "_future", None)
        if fut is not None and fut.exception() is not None:
            raise DfxError(f"card {self.index}: {fut.exception()}")

    def _settle(self, timeout_s):
        if not self._poll(timeout_s):
            return False
        self.handle = None
        return True


# --------------------------------------------------------------------------- backends
class CardBackend(hal.Backend):
    """Opens N cards after checking the xclbin against the bundle. Session passes the bundle's
    memory sizes (hbm_bytes, ddr_bytes: the buffers are sized for them) and its target."""

    wants_layout = True
    device_class: type = CardDevice

    def module(self):
        raise NotImplementedError

    def count(self, mod) -> int:
        raise NotImplementedError

    def open(self, n, target, xclbin=None, hbm_bytes=None, ddr_bytes=0, bundle_target=None, **opts):
        if not xclbin:
            raise DfxError(f"the {self.name} backend needs --xclbin (the linked dfx_core binary)")
        mod = self.module()
        if hbm_bytes is None:
            raise DfxError(f"the {self.name} backend needs the bundle's hbm_bytes to size its buffers")
        check_identity(xclbin, bundle_target if bundle_target is not None else target.as_dict())
        have = self.count(mod)
        if have < n:
            raise DfxError(f"the bundle needs {n} card(s); {self.name} finds {have}")
        devs = []
        try:
            for i in range(n):
                devs.append(self.device_class(mod, i, xclbin, target, hbm_bytes, ddr_bytes))
        except DfxError:
            raise
        except Exception as e:  # the binding's own errors (RuntimeError from XRT, PYNQ's)
            raise DfxError(f"card {len(devs)}: {self.name} failed to open it: {e}".splitlines()[0]) from None
        return devs


class XrtBackend(CardBackend):
    name = "xrt"
    device_class = XrtDevice

    def module(self):
        try:
            import pyxrt
        except ImportError:
            raise DfxError("the xrt backend needs XRT's Python binding pyxrt "
                           "(source /opt/xilinx/xrt/setup.sh; it is not on PyPI)") from None
        return pyxrt

    def count(self, mod) -> int:
        return len(xrt_cards(mod))


class PynqBackend(CardBackend):
    name = "pynq"
    device_class = PynqDevice

    def module(self):
        try:
            import pynq
        except ImportError:
            raise DfxError("the pynq backend needs `pip install 'dfx[pynq]'` (PYNQ 3.0.1)") from None
        return pynq

    def count(self, mod) -> int:
        return len(mod.Device.devices)


def xrt_cards(pyxrt) -> list[str]:
    """One line per card pyxrt can open: pyxrt.enumerate_devices() (xrt::system::enumerate_devices,
    bound since XRT 2.17) gives the count; older bindings are probed with pyxrt.device(i) until it
    raises. Each card's name and PCIe address come from device.get_info."""
    if hasattr(pyxrt, "enumerate_devices"):
        idx = range(int(pyxrt.enumerate_devices()))
    else:
        idx = []
        while len(idx) < 64:
            try:
                pyxrt.device(len(idx))
            except Exception:
                break
            idx.append(len(idx))
    out = []
    for i in idx:
        try:
            d = pyxrt.device(i)
            info = pyxrt.xrt_info_device
            out.append(f"{i}: {d.get_info(info.name)} at {d.get_info(info.bdf)}")
        except Exception as e:
            out.append(f"{i}: (cannot open: {str(e).splitlines()[0] if str(e) else type(e).__name__})")
    return out


def pynq_cards(pynq) -> list[str]:
    """One line per card PYNQ finds (pynq.Device.devices: XrtDevice._probe_ counts with xclProbe)."""
    return [f"{i}: {d.name}" for i, d in enumerate(pynq.Device.devices)]


def find_cards(backend: str) -> list[str]:
    """The cards a backend can reach, one line each; DfxError (one line) when it has none."""
    if backend == "xrt":
        return xrt_cards(XrtBackend().module())
    return pynq_cards(PynqBackend().module())
