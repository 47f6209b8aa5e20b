"""Where the RTL core and the exact simulator part ways: whole-HBM comparison after every call,
and the first instruction whose writes differ.

    RecordingSession(bundle, backend, ...)   a Session that keeps every card's HBM after each call
    hbm_difference(cards, a, b)              the first byte where two backends' HBM differ, named by
                                             card, address, channel and the manifest's region
    SimWriteLog(devices)                     every write of the simulator's cores, per run, core, pc
    read_wlog(path, target)                  the RTL testbench's write log (+wlog) in the same form
    first_divergence(sim, rtl, cards)        the first instruction whose writes differ
    localise(bundle, prompt, new, wlog)      run both backends with the logs on, then the above

An instruction's writes are the final value of every address it writes (buffer words, HBM bytes):
if the RTL writes an address twice inside one instruction only the last value counts, as in the
simulator, which executes each instruction whole. The status record the RTL writes at the end of
a run is not compared (the simulator does not write one; its address is the card's io.status).
The programs have no jumps, so an instruction runs at most once per call: (call, core, pc) names
one execution. Among the cores, the first divergent instruction is the one the RTL retired
first: a wrong value reaches another instruction, on this core or through the ring on another,
only after the instruction that wrote it has retired. (Between two simulator logs, the one the
simulator ran first, for the same reason.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dfx.arch import kernel
from dfx.arch.encoding import to_asm
from dfx.arch.target import Target
from dfx.errors import DfxError
from dfx.host.runtime import Session
from dfx.arch.hbm import channel_of

SPACE_NAMES = {"buf": "buffer word", "hbm": "HBM byte", "ddr": "DDR byte"}
UNITS = {"d": "dma", "m": "mpu", "v": "vpu", "n": "net", "s": "status"}


# ---------------------------------------------------------------------------- whole HBM
@dataclasses.dataclass
class HbmDifference:
    card: int
    addr: int          # flat HBM byte address
    channel: int
    offset: int        # byte offset in that channel
    region: str        # the manifest region holding addr
    a: int             # the byte on each side
    b: int
    count: int         # differing bytes on this card

    def __str__(self):
        return (f"card {self.card}: HBM byte 0x{self.addr:x} (channel {self.channel} offset 0x{self.offset:x}, "
                f"{self.region}) differs: 0x{self.a:02x} vs 0x{self.b:02x} ({self.count} bytes differ on this card)")


def region_of(card: dict, addr: int, space: str = "hbm") -> str:
    """The name of the manifest region of `card` that holds `addr`."""
    for r in card["regions"]:
        if r["space"] == space and r["addr"] <= addr < r["addr"] + r["bytes"]:
            return f"region {r['name']} ({r['kind']}) + 0x{addr - r['addr']:x}"
    return "outside every region of the memory map"


def hbm_difference(cards: list[dict], a: list[np.ndarray], b: list[np.ndarray], target: Target) -> HbmDifference | None:
    """The first byte (lowest card, then address) where flat HBM images a and b (one per card) differ,
    or None. Images of different lengths are compared as if padded with zeros (memory nothing
    wrote holds zeros on every backend). Each card's status record (io.status) is skipped."""
    for j, (x, y) in enumerate(zip(a, b)):
        n = max(x.size, y.size)
        x = np.concatenate([x, np.zeros(n - x.size, np.uint8)]) if x.size < n else x
        y = np.concatenate([y, np.zeros(n - y.size, np.uint8)]) if y.size < n else y
        diff = x != y
        st = cards[j]["io"]["status"]
        diff[st: st + kernel.STATUS_BYTES] = False
        where = np.flatnonzero(diff)
        if where.size:
            addr = int(where[0])
            ch, off = channel_of(addr, target.port_bytes, target.hbm.channels)
            return HbmDifference(j, addr, ch, off, region_of(cards[j], addr), int(x[addr]), int(y[addr]),
                                 int(where.size))
    return None


@dataclasses.dataclass
class Call:
    phase: str
    ntok: int
    pos: int
    hbm: list          # per card: the flat HBM bytes after the call


class RecordingSession(Session):
    """A Session that keeps, after every call (summarization block or generation step), the call's
    phase, size and position and every card's whole HBM (Device.hbm_image) in `calls`."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.calls: list[Call] = []

    def call(self, phase, ids, pos):
        out = super().call(phase, ids, pos)
        self.calls.append(Call(phase, len(ids), pos, [d.hbm_image() for d in self.devices]))
        return out


# ---------------------------------------------------------------------------- write logs
@dataclasses.dataclass
class RunLog:
    """One core's writes in one run (call)."""

    entry: int = 0
    program: list | None = None                  # decoded instructions, when known
    writes: dict = dataclasses.field(default_factory=dict)   # pc -> space -> [(addrs, values)]
    units: dict = dataclasses.field(default_factory=dict)    # pc -> unit letter (RTL)
    retired: dict = dataclasses.field(default_factory=dict)  # pc -> retire cycle (RTL)
    seq: dict = dataclasses.field(default_factory=dict)      # pc -> number of its last write (simulator)

    def add(self, pc, space, addrs, values):
        self.writes.setdefault(pc, {}).setdefault(space, []).append((addrs, values))


class WriteLog:
    """runs[k][core] -> RunLog: the writes of call k on each core."""

    def __init__(self):
        self.runs: dict = {}

    def run(self, k: int, core: int) -> RunLog:
        return self.runs.setdefault(k, {}).setdefault(core, RunLog())


def _bytes_of(addrs, values):
    """FP16 words at byte addresses -> (byte addresses, bytes), little-endian."""
    a = np.asarray(addrs, np.int64)
    v = np.asarray(values, np.uint16)
    return np.stack([a, a + 1], 1).ravel(), np.stack([v & 0xFF, v >> 8], 1).ravel().astype(np.uint16)


class SimWriteLog(WriteLog):
    """Records every write of the exact simulator's cores (dfx.sim.core.Core.on_write) behind
    `devices` (a SimBackend group), by run: run k is the group's (k+1)-th appliance run."""

    def __init__(self, devices: list):
        super().__init__()
        self.n = 0  # writes so far, all cores: the simulator's order of execution
        for d in devices:
            d.core.on_write = self._hook(d)

    def _hook(self, dev):
        def on_write(core, pc, space, addrs, values):
            log = self.run(dev.group.runs - 1, core)
            if log.program is None:
                log.entry = dev.entry
                log.program = dev.core.program(log.entry)
            if space != "buf":
                addrs, values = _bytes_of(addrs, values)
            log.add(pc, space, np.array(addrs, np.int64), np.array(values, np.uint16))
            self.n += 1
            log.seq[pc] = self.n
        return on_write


def read_wlog(path, target: Target) -> WriteLog:
    """The write log of the rtl backend (RtlBackend.open(wlog=PATH); format in hw/sim/dfx_tb.v).
    Run k of a core is what follows its (k+1)-th start. Status record writes are left out."""
    log = WriteLog()
    run: dict = {}  # core -> index of its current run
    words, pb = target.buffers.vbuf_words, target.port_bytes
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if not f:
            continue
        kind, core = f[0], int(f[1])
        if kind == "s":
            run[core] = run.get(core, -1) + 1
            log.run(run[core], core).entry = int(f[2], 16)
            continue
        r = log.run(run.get(core, 0), core)
        if kind == "r":
            r.retired[int(f[2])] = int(f[4])
        elif kind in ("b", "h", "x") and f[2] != "s":
            pc, addr, mask, data = int(f[3]), int(f[4], 16), int(f[5], 16), int(f[6], 16)
            r.units[pc] = f[2]
            width = 16 if kind == "b" else 8
            lanes = [i for i in range(mask.bit_length()) if mask >> i & 1]
            vals = np.array([data >> (width * i) & ((1 << width) - 1) for i in lanes], np.uint16)
            if kind == "b":
                r.add(pc, "buf", (addr + np.array(lanes, np.int64)) % words, vals)
            else:  # h: an HBM beat, x: a DDR beat (in beats of the HBM port too)
                r.add(pc, "hbm" if kind == "h" else "ddr", addr * pb + np.array(lanes, np.int64), vals)
    return log


def _final(chunks):
    """The last value written to each address: (sorted addresses, values)."""
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, np.uint16)
    a = np.concatenate([c[0] for c in chunks])[::-1]
    v = np.concatenate([c[1] for c in chunks])[::-1]
    u, i = np.unique(a, return_index=True)  # first index in the reversed order: the last write
    return u, v[i]


def _compare(x: dict, y: dict):
    """(space, address, x value, y value, count) of the lowest differing address of the first
    space that differs (values None where one side did not write), or None."""
    for space in sorted(set(x) | set(y)):
        xa, xv = _final(x.get(space, []))
        ya, yv = _final(y.get(space, []))
        if np.array_equal(xa, ya) and np.array_equal(xv, yv):
            continue
        allw = np.union1d(xa, ya)
        xval = np.full(allw.size, -1, np.int64)   # -1: not written on that side
        yval = np.full(allw.size, -1, np.int64)
        xval[np.searchsorted(allw, xa)] = xv
        yval[np.searchsorted(allw, ya)] = yv
        bad = np.flatnonzero(xval != yval)
        k = int(bad[0])
        val = (lambda v: None if v < 0 else int(v))
        return space, int(allw[k]), val(xval[k]), val(yval[k]), int(bad.size)
    return None


@dataclasses.dataclass
class Divergence:
    call: int            # run index from 0: the Session's call number
    core: int
    pc: int
    op: str
    asm: str
    unit: str            # the RTL unit that wrote (dma, mpu, vpu, net), "" if the RTL did not write
    space: str           # buf (word address), hbm or ddr (byte address)
    addr: int
    rtl: int | None      # the value each side left there (None: that side did not write it)
    sim: int | None
    count: int           # addresses of this instruction that differ
    cycle: int | None    # the RTL's retire cycle of the instruction
    where: str = ""      # the manifest region, for HBM addresses when the cards are known
    phase: str = ""      # the program (phase) of the call, when the cards are known
    rtl_error: str = ""  # the error the RTL run ended with, if any

    def __str__(self):
        fmt = (lambda v: "not written" if v is None else f"0x{v:0{4 if self.space == 'buf' else 2}x}")
        call = f"call {self.call}" + (f" ({self.phase})" if self.phase else "")
        return (f"{call}, core {self.core}, pc {self.pc}: {self.asm}"
                + (f" [{self.unit}]" if self.unit else "")
                + f"; {SPACE_NAMES.get(self.space, self.space)} 0x{self.addr:x}"
                + (f" ({self.where})" if self.where else "")
                + f": rtl {fmt(self.rtl)}, sim {fmt(self.sim)} ({self.count} addresses differ in this instruction)"
                + (f"; retired on the RTL at cycle {self.cycle}" if self.cycle is not None else "")
                + (f"; the RTL run ended with: {self.rtl_error}" if self.rtl_error else ""))


def first_divergence(sim: WriteLog, rtl: WriteLog, cards: list[dict] | None = None) -> Divergence | None:
    """The first instruction whose writes differ between the simulator's and the RTL's logs: calls
    in order; in a call, on each core the lowest pc that differs; of those, the one the RTL retired
    first (one it never retired counts as last), else the one the simulator ran first (when neither
    log has cycles: two simulator logs); then the lowest core. None: every write matches."""
    for k in sorted(set(sim.runs) | set(rtl.runs)):
        s_run, r_run = sim.runs.get(k, {}), rtl.runs.get(k, {})
        found = []
        for core in sorted(set(s_run) | set(r_run)):
            s, r = s_run.get(core, RunLog()), r_run.get(core, RunLog())
            for pc in sorted(set(s.writes) | set(r.writes)):
                d = _compare(r.writes.get(pc, {}), s.writes.get(pc, {}))
                if d is not None:
                    inf = float("inf")
                    when = (r.retired.get(pc, inf), s.retired.get(pc, inf), r.seq.get(pc, inf), s.seq.get(pc, inf))
                    found.append((when, core, pc, d, s, r))
                    break
        if not found:
            continue
        when, core, pc, (space, addr, rv, sv, count), s, r = min(found, key=lambda f: (f[0], f[1]))
        cycle = when[0]
        prog = s.program
        ins = prog[pc] if prog is not None and pc < len(prog) else None
        div = Divergence(k, core, pc, ins.op.name if ins else "?", to_asm(ins) if ins else "(program unknown)",
                         UNITS.get(r.units.get(pc, ""), ""), space, addr, rv, sv, count,
                         None if cycle == float("inf") else int(cycle))
        if cards is not None:
            card = cards[core]
            if space != "buf":
                div.where = region_of(card, addr, space)
            div.phase = next((name for name, p in card["programs"].items() if p["entry"] == (s.entry or r.entry)), "")
        return div
    return None


def localise(bundle, prompt: list[int], max_new_tokens: int, wlog, **rtl_opts) -> Divergence | None:
    """Generate greedily (no end-of-text stop) from `prompt` on the exact simulator and on the rtl
    backend (rtl_opts: RtlBackend.open's, e.g. sim, hbm_bytes, corrupt) with both write logs on
    (the RTL's in file `wlog`), and return the first instruction whose writes differ
    (first_divergence), or None. An error of the RTL run is kept in the result (rtl_error); when
    nothing differs it is raised."""
    sim = Session(bundle, backend="sim", mode="exact")
    try:
        slog = SimWriteLog(sim.devices)
        for _ in sim.stream(prompt, max_new_tokens=max_new_tokens, eos_token_id=None):
            pass
        cards = sim.bundle.cards
    finally:
        sim.close()
    rtl = Session(bundle, backend="rtl", wlog=wlog, **rtl_opts)
    err = None
    try:
        for _ in rtl.stream(prompt, max_new_tokens=max_new_tokens, eos_token_id=None):
            pass
    except DfxError as e:
        err = e
    finally:
        rtl.close()
    div = first_divergence(slog, read_wlog(wlog, rtl.target), cards)
    if div is None and err is not None:
        raise err
    if div is not None and err is not None:
        div.rtl_error = str(err)
    return div
