"""Stand-in Alveo cards for tests (not a card): N dfx cores of the exact simulator (dfx.sim's
Appliance) behind what a host sees of U280s through XRT: memory banks named as in an xclbin's
MEM_TOPOLOGY, buffers in them with device addresses, a host-to-card copy only on a sync, one
command queue per card with completion states, and the status record the RTL core writes to HBM
at END (dfx.arch.kernel), since the simulator itself writes none.

The stand-in pyxrt and pynq modules (pyxrt_standin.py, pynq_standin.py) are thin faces over this.
What it models and what it does not:
  - bank k of card j is memory, not a copy: HBM[c] is pseudo-channel c of core j's simulated HBM
    (byte o of the bank is channel byte o, dfx.arch.hbm's interleave), DDR[0] is its DDR;
  - a command runs when every card has one queued (the cores share a ring), in queue order; it
    completes `latency[j]` seconds after that (a test sets it to make a card late);
  - the kernel's pointer arguments must be the base of their own bank (the core adds its channel
    offsets to them); a buffer anywhere else is refused at start, which the real card would not do;
  - bank order (group ids) puts DDR[0], DDR[1] before HBM[0..] so that a group id is never a
    channel number; device addresses are illustrative.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from dfx import errors
from dfx.arch import isa, kernel
from dfx.arch.hbm import stripes
from dfx.sim.appliance import Appliance


class StandinError(RuntimeError):
    """Something the stand-in refuses (named so that tests can tell it from the backend's errors)."""


# error class -> the status code the RTL core reports for it (dfx.arch.kernel.STATUS_CODES)
ERROR_CODE = {"IllegalInstruction": "illegal_instruction", "AddressError": "address",
              "RingFault": "ring_fault", "RingDeadlock": "ring_timeout", "SyncMismatch": "sync_mismatch"}


@dataclasses.dataclass
class Command:
    card: int
    regs: bytes  # the kernel's register map as the host set it
    executed: bool = False
    done_at: float | None = None  # time.monotonic() at which the card raises done
    aborted: bool = False

    def done(self) -> bool:
        return self.done_at is not None and time.monotonic() >= self.done_at


class StandinCards:
    def __init__(self, target, n: int, mode: str = "exact", latency_s: float = 0.0):
        self.t, self.n = target, n
        self.app = Appliance(target, n, mode)
        C = target.hbm.channels
        self.banks = ["DDR[0]", "DDR[1]"] + [f"HBM[{c}]" for c in range(C)] + ["PLRAM[0]"]
        self.latency = [latency_s] * n
        self.queues: list[list[Command]] = [[] for _ in range(n)]
        self.last_done = [0.0] * n
        self.alloc: dict = {}
        self.sync_log: list[list[tuple]] = [[] for _ in range(n)]  # per card: (direction, bank, offset, bytes)
        self.args = kernel.kernel_args(target)

    # ------------------------------------------------------------------ memory banks
    def bank_size(self, bank: int) -> int:
        name = self.banks[bank]
        if name.startswith("HBM"):
            return self.t.hbm.channel_bytes
        if name == "DDR[0]" and self.t.ddr.present:
            return self.t.ddr.bytes
        return 1 << 26  # banks the core has no port to: only their allocator is modelled

    def bank_base(self, bank: int) -> int:
        return 0x40_0000_0000 * (bank + 1)

    def allocate(self, card: int, bank: int, nbytes: int) -> int:
        """Device address of a new buffer of nbytes in a bank (4 KiB aligned, never freed)."""
        if not 0 <= bank < len(self.banks):
            raise StandinError(f"no memory bank with group id {bank}")
        off = self.alloc.get((card, bank), 0)
        if off + nbytes > self.bank_size(bank):
            raise StandinError(f"bank {self.banks[bank]} of card {card} is full")
        self.alloc[card, bank] = off + -(-nbytes // 4096) * 4096
        return self.bank_base(bank) + off

    def locate(self, addr: int) -> tuple[int, int]:
        """Device address -> (bank, offset in it)."""
        bank = addr // 0x40_0000_0000 - 1
        if not 0 <= bank < len(self.banks):
            raise StandinError(f"device address 0x{addr:x} is in no bank")
        return bank, addr - self.bank_base(bank)

    def _memory(self, card: int, bank: int):
        name, core = self.banks[bank], self.app.cores[card]
        if name.startswith("HBM["):
            return core.hbm, int(name[4:-1])
        if name == "DDR[0]" and core.ddr is not None:
            return core.ddr, None
        raise StandinError(f"the stand-in models no memory behind {name}")

    def _channel(self, mem, c: int, lo: int, hi: int):
        """(view of channel c's beats covering [lo, hi), offset of lo in it, flat range)."""
        P, C = mem.port_bytes, mem.channels
        b0, b1 = lo // P, -(-hi // P)
        mem.ensure(b1 * P * C)
        return stripes(mem.buf[: b1 * P * C], P, C)[b0:b1, c, :], lo - b0 * P, (b0 * P * C, b1 * P * C)

    def to_device(self, card: int, bank: int, off: int, data: bytes) -> None:
        self.sync_log[card].append(("to", self.banks[bank], off, len(data)))
        mem, c = self._memory(card, bank)
        if c is None:
            mem.write(off, np.frombuffer(data, np.uint8), count=False)
            return
        view, k, (flo, fhi) = self._channel(mem, c, off, off + len(data))
        flat = view.reshape(-1).copy()
        flat[k: k + len(data)] = np.frombuffer(data, np.uint8)
        view[:] = flat.reshape(view.shape)
        mem.invalidate(flo, fhi)  # the simulator's decoded-program and weight caches

    def from_device(self, card: int, bank: int, off: int, nbytes: int) -> bytes:
        self.sync_log[card].append(("from", self.banks[bank], off, nbytes))
        mem, c = self._memory(card, bank)
        if c is None:
            return mem.read(off, nbytes, count=False).tobytes()
        view, k, _ = self._channel(mem, c, off, off + nbytes)
        return view.reshape(-1)[k: k + nbytes].tobytes()

    def synced_bytes(self, card: int, since: int = 0) -> int:
        return sum(e[3] for e in self.sync_log[card][since:])

    # ------------------------------------------------------------------ commands
    def field(self, regs: bytes, name: str) -> int:
        """An argument's value in a command's registers; entry and status as the core reads them,
        {high word, low word} (dfx_core_flat's a_entry and a_status)."""
        def word(n):
            a = next(a for a in self.args if a.name == n)
            return int.from_bytes(regs[a.offset: a.offset + a.bits // 8], "little")
        return word(name) | (word(kernel.WIDE[name]) << 32 if name in kernel.WIDE else 0)

    def submit(self, card: int, regs: bytes) -> Command:
        for a in self.args:
            if a.kind != "pointer":
                continue
            bank, off = self.locate(self.field(regs, a.name))
            want = f"HBM[{int(a.name[3:])}]" if a.name.startswith("hbm") else "DDR[0]"
            if self.banks[bank] != want or off:
                raise StandinError(f"argument {a.name} points at {self.banks[bank]}+0x{off:x}; the stand-in "
                                   f"models only a buffer at the base of {want}")
        cmd = Command(card, bytes(regs))
        self.queues[card].append(cmd)
        self._dispatch()
        return cmd

    def _dispatch(self) -> None:
        """Run the appliance while every card has a command that has not run."""
        while all(any(not c.executed for c in q) for q in self.queues):
            cmds = [next(c for c in q if not c.executed) for q in self.queues]
            self._execute(cmds)
            self.queues = [[c for c in q if not c.executed] for q in self.queues]

    def _execute(self, cmds: list[Command]) -> None:
        f = self.field
        entries = [f(c.regs, "entry") for c in cmds]
        args = [{"ntok": f(c.regs, "ntok"), "pos": f(c.regs, "pos")} for c in cmds]
        for j, c in enumerate(cmds):
            if f(c.regs, "core") != j or f(c.regs, "ncores") != self.n:
                raise StandinError(f"card {j} was started as core {f(c.regs, 'core')} of {f(c.regs, 'ncores')}")
        records = {}
        try:
            counters = self.app.run(entries, args)
            for j, cnt in enumerate(counters):
                records[j] = kernel.build_status(code=0, core=j, retired=sum(cnt["instructions"].values()))
        except errors.MachineError as e:  # the failing core reports it; its peers time out on the ring
            bad = e.core if e.core is not None else 0
            for j in range(self.n):
                if j == bad:
                    pc, hbm = e.pc or 0, self.app.cores[j].hbm
                    at = entries[j] + pc * isa.INSTR_BYTES
                    instr = (hbm.read(at, isa.INSTR_BYTES, count=False).tobytes()
                             if at + isa.INSTR_BYTES <= hbm.capacity else bytes(isa.INSTR_BYTES))
                    code = kernel.STATUS_CODE[ERROR_CODE.get(type(e).__name__, "illegal_instruction")]
                    records[j] = kernel.build_status(code=code, core=j, pc=pc, instr=instr)
                else:
                    records[j] = kernel.build_status(code=kernel.STATUS_CODE["ring_timeout"], core=j)
        now = time.monotonic()
        for j, c in enumerate(cmds):
            self.app.cores[j].hbm.write(f(c.regs, "status"), records[j], count=False)
            c.executed = True
            c.done_at = max(now, self.last_done[j]) + self.latency[j]
            self.last_done[j] = c.done_at
