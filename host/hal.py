"""The device interface (host HAL): one interface, one implementation per place dfx runs.

    sim    the functional simulator (dfx.sim), exact or fast mode     -- works everywhere
    rtl    the RTL core in Verilator or Icarus (dfx.host.rtl)         -- needs a simulator
    xrt    Alveo U280 cards through XRT's Python binding `pyxrt`       -- needs XRT + cards
    pynq   Alveo U280 cards through PYNQ 3.0.1 (optional extra)        -- needs XRT + cards
           (both in dfx.host.cards)

Every device exposes the same operations: load a bundle's HBM images per channel (and DDR),
set the kernel arguments, start, wait with a timeout, read and write memory for host I/O, and
read per-run counters. The simulators also model the ap_ctrl_hs registers (write_reg, read_reg);
the cards' APIs give no register access, so the card backends refuse them and read the status
record instead. `open_devices(name, n, ...)` picks the backend by name.

The register map (ap_ctrl_hs, as Vitis RTL kernels use it), the kernel arguments and the
status record the core writes to HBM are declared once in dfx.arch.kernel.
"""

from __future__ import annotations

import abc
import time

import numpy as np

from dfx import errors
from dfx.arch import kernel
from dfx.arch.encoding import decode, to_asm
from dfx.arch.target import Target, load_target
from dfx.errors import DeviceTimeout, DfxError, EncodingError

REG_CTRL, REG_GIE, REG_IER, REG_ISR = kernel.REG_CTRL, kernel.REG_GIE, kernel.REG_IER, kernel.REG_ISR
AP_START, AP_DONE, AP_IDLE = kernel.AP_START, kernel.AP_DONE, kernel.AP_IDLE
# scalar arguments: name -> register offset (the same for every target: pointers come after them)
ARG_OFFSETS = {a.name: a.offset for a in kernel.kernel_args(load_target("tiny")) if a.kind == "scalar"}
REG_ENTRY, REG_NTOK, REG_POS, REG_CORE, REG_NCORES, REG_STATUS = (
    ARG_OFFSETS[k] for k in ("entry", "ntok", "pos", "core", "ncores", "status"))


def check_status(raw: bytes, index: int) -> dict:
    """Parse a status record read back from a card; raise the simulator's typed error for a fault.

    Returns the record's fields (cycle counters) when the run ended cleanly."""
    st = kernel.parse_status(raw)
    if st["magic"] != kernel.STATUS_MAGIC:
        raise DfxError(f"device {index}: no status record (magic 0x{st['magic']:08x}): the core did not finish")
    code = st["code"]
    if code == 0:
        return st
    name, cls = kernel.STATUS_CODES.get(code, (f"code {code}", "MachineError"))
    if name == "no_end":
        asm = None  # pc is one past the last instruction: there is none to name (as in the simulator)
    else:
        try:
            asm = to_asm(decode(st["instr"]))
        except EncodingError:
            asm = f"raw 0x{int.from_bytes(st['instr'], 'little'):x}"
    msg = {
        "illegal_instruction": "illegal instruction (hardware decode)",
        "address": f"address outside its memory (detail 0x{st['detail']:x})",
        "embed_id": f"token id {st['detail']} in row {st['detail2']} is outside the table",
        "ring_fault": f"ring fault on the link from core {st['detail2']} (cause {st['detail']}: "
                      "1 wrong sender, 2 sequence gap or repeat, 3 check byte)",
        "ring_timeout": "ring timeout: no word arrived from the previous core",
        "sync_mismatch": f"ring transfer mismatch (got header 0x{st['detail']:x}, expected 0x{st['detail2']:x})",
        "no_end": "program has no end instruction",
    }.get(name, name)
    raise getattr(errors, cls)(msg, st["core"], st["pc"], asm)


class Device(abc.ABC):
    """One card (one dfx core)."""

    index: int

    @abc.abstractmethod
    def load_hbm_channel(self, channel: int, data: np.ndarray) -> None: ...

    @abc.abstractmethod
    def load_ddr(self, data: np.ndarray) -> None: ...

    @abc.abstractmethod
    def write_mem(self, space: str, addr: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_mem(self, space: str, addr: int, nbytes: int) -> bytes: ...

    @abc.abstractmethod
    def write_reg(self, offset: int, value: int) -> None: ...

    @abc.abstractmethod
    def read_reg(self, offset: int) -> int: ...

    @abc.abstractmethod
    def wait(self, timeout_s: float) -> None:
        """Block until ap_done; raise DeviceTimeout past timeout_s."""

    @abc.abstractmethod
    def counters(self) -> dict:
        """Counters of the last run (the simulator's profile; on cards, what XRT reports)."""

    def set_args(self, **args) -> None:
        for k, v in kernel.split_wide(args).items():
            self.write_reg(ARG_OFFSETS[k], v & 0xFFFFFFFF)

    def start(self) -> None:
        self.write_reg(REG_CTRL, AP_START)

    def hbm_image(self, nbytes: int) -> np.ndarray:
        """The flat HBM bytes [0, nbytes), to compare one backend's memory with another's."""
        return np.frombuffer(self.read_mem("hbm", 0, nbytes), np.uint8)

    def close(self) -> None:
        pass


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    def open(self, n: int, target: Target, **opts) -> list[Device]: ...


# --------------------------------------------------------------------------- simulator
class SimDevice(Device):
    def __init__(self, group: "SimGroup", index: int):
        self.group, self.index = group, index
        self.core = group.appliance.cores[index]
        self.regs = {REG_CTRL: AP_IDLE}
        self._counters: dict = {}

    def _mem(self, space):
        m = self.core.ddr if space == "ddr" else self.core.hbm
        if m is None:
            raise DfxError(f"device {self.index} has no {space.upper()}")
        return m

    def load_hbm_channel(self, channel, data):
        self.core.hbm.load_channel_image(channel, np.asarray(data, np.uint8))

    def load_ddr(self, data):
        self._mem("ddr").write(0, np.asarray(data, np.uint8), count=False)

    def write_mem(self, space, addr, data):
        self._mem(space).write(addr, data, count=False)

    def read_mem(self, space, addr, nbytes):
        return self._mem(space).read(addr, nbytes, count=False).tobytes()

    @property
    def entry(self) -> int:
        """The 64-bit entry argument as the host wrote it (low word at REG_ENTRY)."""
        return self.regs.get(REG_ENTRY, 0) | (self.regs.get(REG_ENTRY + 4, 0) << 32)

    def hbm_image(self, nbytes=None):
        """nbytes None: every byte up to the highest one loaded or written (zeros lie past it)."""
        buf = self.core.hbm.buf
        if nbytes is None or nbytes <= buf.size:
            return buf[:nbytes].copy()
        return np.concatenate([buf, np.zeros(nbytes - buf.size, np.uint8)])

    def write_reg(self, offset, value):
        if offset == REG_CTRL:
            if value & AP_START:
                self.regs[REG_CTRL] = AP_START
                self.group.started.add(self.index)
            return
        self.regs[offset] = int(value)

    def read_reg(self, offset):
        return self.regs.get(offset, 0)

    def wait(self, timeout_s):
        ctrl = self.regs[REG_CTRL]
        if ctrl & AP_DONE or ctrl & AP_IDLE:
            return
        self.group.run_if_ready(timeout_s)
        if not self.regs[REG_CTRL] & AP_DONE:
            missing = sorted(set(range(self.group.n)) - self.group.started)
            raise DeviceTimeout(f"device {self.index} did not raise done within {timeout_s:g} s "
                                f"(its ring peers {missing} were never started)")

    def counters(self):
        return self._counters

    def close(self):
        if self.group.trace is not None:
            self.group.trace.close()


class SimGroup:
    """The simulated cards of one appliance: they run together once all have been started."""

    def __init__(self, target: Target, n: int, mode: str, trace=None):
        from dfx.sim.appliance import Appliance
        self.appliance = Appliance(target, n, mode)
        self.n = n
        self.devices = [SimDevice(self, i) for i in range(n)]
        self.started: set[int] = set()
        self.runs = 0  # runs of the appliance started so far
        self.trace = None
        if trace is not None:  # the rtl testbench's retire trace format; the last field is the
            self.trace = open(trace, "w")  # position in the run (the simulator has no clock)
            for core in self.appliance.cores:
                core.on_retire = lambda c, pc, op: self.trace.write(f"{c} {pc} {op} {pc}\n")

    def run_if_ready(self, timeout_s):
        if self.started != set(range(self.n)):
            return
        args = []
        for d in self.devices:
            r = d.regs
            if r.get(REG_CORE, d.index) != d.index or r.get(REG_NCORES, self.n) != self.n:
                raise DfxError(f"device {d.index}: core id / ncores registers do not match the ring")
            args.append({"entry": d.entry,
                         "ntok": r.get(REG_NTOK, 0), "pos": r.get(REG_POS, 0)})
        t0 = time.perf_counter()
        self.runs += 1
        try:
            counters = self.appliance.run([a["entry"] for a in args], args)
        finally:
            if self.trace is not None:
                self.trace.flush()
        elapsed = time.perf_counter() - t0
        self.started.clear()
        for d, c in zip(self.devices, counters):
            d._counters = c
            d.regs[REG_CTRL] = AP_DONE | AP_IDLE
        if elapsed > timeout_s:
            raise DeviceTimeout(f"the simulated appliance took {elapsed:.1f} s, past the {timeout_s:g} s timeout")


class SimBackend(Backend):
    name = "sim"

    def open(self, n, target, mode="exact", trace=None, **opts):
        """trace: a file that gets a line "core pc opcode pc" for every retired instruction."""
        return SimGroup(target, n, mode, trace).devices


# --------------------------------------------------------------------------- lazily imported
class LazyBackend(Backend):
    """A backend whose module is imported on first use (dfx.host.rtl and dfx.host.cards build on
    this one). wants_layout: Session passes it the bundle's memory sizes and target."""

    def __init__(self, name: str, module: str, cls: str, wants_layout: bool = False):
        self.name, self.module, self.cls, self.wants_layout = name, module, cls, wants_layout

    def open(self, n, target, **opts):
        import importlib
        return getattr(importlib.import_module(self.module), self.cls)().open(n, target, **opts)


BACKENDS = {b.name: b for b in (SimBackend(), LazyBackend("rtl", "dfx.host.rtl", "RtlBackend"),
                                LazyBackend("xrt", "dfx.host.cards", "XrtBackend", wants_layout=True),
                                LazyBackend("pynq", "dfx.host.cards", "PynqBackend", wants_layout=True))}


def open_devices(backend: str, n: int, target: Target, **opts) -> list[Device]:
    b = BACKENDS.get(backend)
    if b is None:
        raise DfxError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    return b.open(n, target, **opts)
