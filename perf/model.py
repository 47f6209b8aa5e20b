"""A cycle-level performance model of dfx cores, driven by a target file and compiled programs.

The model is the core in hw/rtl (dfx_core_flat and its units), not an idealised one. It walks the
real instruction stream of each card (the programs the compiler emits, with r1 = ntok and r2 = pos
set per call, as the functional simulator does) and gives every unit instruction the cycle its
unit starts it and the cycle it retires, as the RTL's retire trace reports them
(hw/sim/dfx_tb.v +trace; scripts/perf_vs_rtl.py compares the two):

* fetch: 64-byte instructions over the HBM port, max(1, 64 / port bytes) beats each, at most
  ``buffers.instr_fifo`` instructions ahead of issue; one instruction leaves the fetch queue per
  cycle; ALU instructions retire there.
* issue: one decoded stage; three unit queues of 4 slots (DMA; compute = MPU or VPU, one at a
  time; router), each run in order; an instruction enters its queue when the queue has room and
  no slot of another queue holds a range that conflicts with its own (the scoreboard rule of
  arch/isa.py over one hull per space of what it reads and writes, dfx_core_flat.v "ranges");
  it leaves when its unit is done. BARRIER and END wait for the queues they name to drain.
* units: Costs (below): VPU beats + pipeline; MPU weight tiles streamed once per input row in
  requests the read engine keeps ``buffers.read_queue`` of in flight; DMA row by row, a full HBM
  read latency per row; the router's words and steps. HBM sustains min(1, channel GB/s x
  efficiency / port bytes per cycle) beats per cycle per channel (the testbench's memories: one).
* buffer ports: the running compute unit has priority on the buffer's ports (dfx_core_flat.v
  "buffer ports"): a DMA load waits while the VPU writes its results, a store or kvstore while a
  binary vector op (or a product with a bias) reads both ports. A call is evaluated twice: the
  second pass takes the compute unit's port windows from the first.
* ring: a message is a header word and ceil(cols / words_per_cycle) words per row; one word per
  max(1, its link beats x beat bits / link bits per cycle) cycles (``Target.ring_word_beats``:
  the card's adapters send a word as whole beats), ``Target.hop_cycles`` per hop (or the
  testbench's links, CycleModel(ring="testbench"), to compare with the RTL).
* end: END waits for every queue; the status record is written; ap_done.

What each instruction reads and writes and the bytes it moves on each HBM channel come from the
table of instruction effects (dfx.arch.effects), which tests/test_effects.py holds equal to the
functional simulator's counters on every opcode.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import defaultdict, deque

import numpy as np

from dfx.arch import isa, kernel
from dfx.arch.effects import effects
from dfx.arch.regs import apply_alu, arg_regs
from dfx.arch.layout import ktiles, ntiles
from dfx.arch.target import Target
from dfx.errors import DfxError

CATEGORY = {"mpu": "matrix", "vpu": "vector", "dma": "dma", "net": "sync"}
FREE_UNIT = {"vpu": "vector", "dma": "dma"}  # units a Costs.FREE part makes one cycle per instruction


class PerfError(DfxError):
    """The performance model cannot evaluate a program or a request."""


# ---------------------------------------------------------------------------------- rates
@dataclasses.dataclass(frozen=True)
class Rates:
    """Per-cycle rates of one target, derived from its file once."""

    hz: float
    channel_bpc: float  # bytes per kernel cycle one HBM pseudo-channel moves (at most a port beat)
    hbm_bpc: float  # all channels
    ddr_bpc: float
    link_bpc: float  # bytes per kernel cycle a ring link carries (after its framing)
    hbm_peak_bps: float  # channels x channel_gbps (the data sheet)
    hbm_reach_bps: float  # x efficiency: the roofline's bandwidth

    @classmethod
    def of(cls, t: Target) -> "Rates":
        hz = t.clock.kernel_mhz * 1e6
        ch = min(t.port_bytes, t.hbm.channel_gbps * 1e9 * t.hbm.efficiency / hz)
        ddr = t.ddr.gbps * 1e9 / hz if t.ddr.present else 0.0
        link = t.ring.link_gbps * 1e9 / 8 * (1 - t.ring.overhead) / hz
        return cls(hz, ch, ch * t.hbm.channels, ddr, link,
                   t.hbm.channels * t.hbm.channel_gbps * 1e9,
                   t.hbm.channels * t.hbm.channel_gbps * 1e9 * t.hbm.efficiency)


# ---------------------------------------------------------------------------------- results
@dataclasses.dataclass
class CallTiming:
    """One call (summarization block or one generated token) on the appliance."""

    cycles: float  # kernel cycles, from start to the last core's END
    seconds: float  # including the host's per-call overhead
    busy: dict  # category -> cycles of wall time attributed to it (slowest core)
    hbm_read: list  # per core: bytes per channel
    hbm_write: list
    ddr_bytes: list  # per core
    macs: list  # per core
    ring_bytes: list  # per core, sent
    unit_cycles: list  # per core: unit -> busy cycles (overlapping)

    @property
    def hbm_bytes(self) -> list[int]:
        return [int(np.sum(r) + np.sum(w)) for r, w in zip(self.hbm_read, self.hbm_write)]


# ---------------------------------------------------------------------------------- one core
def _log2(x: int) -> int:
    return max(0, (int(x) - 1).bit_length())


def dot_latency(n: int) -> int:
    """Cycles from a dot product's last tile into dfx_dot_tile (n wide) to its binary32 result
    out of dfx_dot_acc: dfx_dot.vh's dfx_dot_tile_lat(n) + dfx_dot_acc_lat."""
    ts = (_log2(n) + 1) // 2  # registered stages of each tree: two levels per stage
    return max(2, 1 + ts) + 3 + ts + 9


@dataclasses.dataclass(frozen=True)
class Costs:
    """The cycle costs of one dfx_core_flat (hw/rtl/core) of a target, in kernel cycles.

    Pipeline depths are the RTL's localparams, computed from the same target fields the generated
    top passes it (dfx.arch.verilog.core_params): the VPU's per-op exits (dfx_vpu.v exit_of) and
    LAT of dfx_mpu.v. The small integers are the states of each unit's state machine, counted in
    the RTL and checked against the testbench's retire trace (scripts/perf_vs_rtl.py --detail;
    docs/perf.md):

    * rt: a unit's HBM read request to its first beat: the request register, the read engine's
      channel queue, burst issue and AR handshake, the memory's latency, its R register and the
      engine's read FIFO (dfx_hbm_rd.v): hbm latency + 5.
    * a VPU instruction: its beats + its op's exit depth (dfx_vpu.v exit_of: the op's pipeline +
      the output register) + 4 (S_CHECK, the feeder's address cycle, the writer, done).
    * a matrix product: 5 + rt + LAT (three control states, the first tile's request, the MPU
      pipeline, the writer; LAT includes the GELU pipeline only for products with gelu) + its
      weight stream. The stream goes in requests of at most 16 tiles (CHUNK) for one output row's
      k-tiles; the read engine keeps QD (``buffers.read_queue``) requests in flight and each
      channel takes a request and issues its burst in 2 cycles, so a request of n tiles takes
      max(n / rho, (rt - 1 + n) / QD, 2) cycles: few k-tiles are bound by requests. rho = the
      tile rate HBM sustains (1 in the testbench's memories).
    * the DMA: row by row (dfx_dma.v). load 4 + per row (rt + 3 + beats); store 6 + per row
      (5 + beats); kvstore of K 6 + per segment (a row's W words: 5 + beats); kvstore of V
      (transposed) streams one word per cycle: 9 + words; embed 13 + per row (2 rt + 5 + beats):
      the id first, then its row.
    * fetch: one 64-byte instruction in BPI = max(1, 64 / port bytes) beats, IQ (buffers.instr_fifo)
      instructions ahead; the first one rt + BPI + 3 cycles after ap_start.
    * the end: the status record's beats + 5 after END.
    """

    rt: int
    rt_ddr: int
    bpi: int
    iq: int
    uq: int
    vpu_exit: dict  # ISA vector op -> dfx_vpu.v exit_of (cycles from a beat in to its result out)
    mpu_lat: int  # dfx_mpu.v LAT - GL: a product without gelu
    mpu_gelu: int  # GL: the GELU pipeline, which only products with gelu go through
    rho: float  # weight tiles per cycle HBM sustains (<= 1)
    beat_rate: float  # DMA beats per cycle (<= 1)
    ddr_beat_rate: float
    status_beats: int
    ring_words: int
    qd: int  # read requests in flight (dfx_hbm_rd.v QD = the target's buffers.read_queue)
    free: frozenset = frozenset()  # what-if bounds (FREE), never the core: parts that cost 1 cycle

    FREE = ("vector", "dma", "fill", "sync")  # VPU ops, DMA ops, products' pipeline fills, ring ops
    # (the first two in _Core.run by FREE_UNIT, the fill in mpu, the ring in CycleModel._pass)
    CHUNK = 16  # dfx_mpu_path.v: tiles per read request
    REQ_CYCLES = 2  # dfx_hbm_rd.v: a channel pops a request, then issues its burst (one, up to MAXB beats)

    @classmethod
    def of(cls, t: Target, free=()) -> "Costs":
        """free: parts of FREE taken to cost one cycle, for bounds on what a design change could
        gain (scripts/bench_perf.py); the core's costs have none."""
        bad = set(free) - set(cls.FREE)
        if bad:
            raise PerfError(f"unknown free parts {sorted(bad)}; known: {', '.join(cls.FREE)}")
        m = t.matrix
        mul, add = m.mul_latency, m.add_latency
        V, W = t.vector.width, m.width
        red = dot_latency(V) + mul + 1  # dfx_vpu.v: E_RD = RED_L
        vexit = {"vadd": add + 1, "vsub": add + 1, "vmul": mul + 1, "vmax": 1, "vcopy": 1,
                 "vexp": 3 * add + 2 * mul + 2, "vrecip": t.vector.recip_latency + 1,
                 "vrsqrt": t.vector.rsqrt_latency + 1, "vsum": red, "vsumsq": red, "vrmax": red}
        gl = 3 * add + 2 * mul + 1
        # dfx_mpu.v: D_Y, then dfx_mpu_tail: a register, one per level of its L-lane trees, the output
        mlat = (dot_latency(W) + mul + 1) + 1 + _log2(m.lanes) + 1
        pb = t.port_bytes
        r = Rates.of(t)
        rho = r.channel_bpc / pb  # the channel rate is capped at one port beat per cycle
        beat = min(1.0, r.hbm_bpc / pb)
        ddr = min(1.0, r.ddr_bpc / pb) if t.ddr.present else 1.0
        return cls(rt=t.perf.hbm_latency_cycles + 5, rt_ddr=t.perf.ddr_latency_cycles + 5,
                   bpi=max(1, 64 // pb), iq=t.buffers.instr_fifo, uq=t.buffers.unit_queue, vpu_exit=vexit,
                   mpu_lat=mlat, mpu_gelu=gl,
                   rho=rho, beat_rate=beat, ddr_beat_rate=ddr,
                   status_beats=-(-kernel.STATUS_BYTES // pb), ring_words=t.ring.words_per_cycle,
                   qd=t.buffers.read_queue, free=frozenset(free))

    # ---- unit durations: the unit's start pulse to its retirement
    def vpu(self, name: str, rows: int, cols: int, V: int) -> int:
        if rows == 0 or cols == 0:
            return 3
        return rows * -(-cols // V) + self.vpu_exit[name] + 4

    def mpu(self, name: str, B: int, M: int, KT: int, NT: int, npad_extra: bool, gelu: bool = False) -> float:
        if M == 0 or KT == 0 or NT == 0:
            return 4
        full, rest = divmod(KT, self.CHUNK)
        per_row = full * self._req(self.CHUNK) + (self._req(rest) if rest else 0)
        tail = (1 if name in ("maskedmm", "lmhead") else 0) + (1 if npad_extra else 0)
        fill = 1 if "fill" in self.free else 5 + self.rt + self.mpu_lat + (self.mpu_gelu if gelu else 0)
        return fill + B * M * NT * per_row + tail

    def _req(self, n: int) -> float:
        return max(n / self.rho, (self.rt - 1 + n) / self.qd, self.REQ_CYCLES)

    def dma_rows(self, name: str, rows: int, beats: int, ddr: bool) -> float:
        """load / store / embed of `rows` rows of `beats` beats each."""
        if rows == 0 or beats == 0:
            return 4
        rt = self.rt_ddr if ddr else self.rt
        xfer = beats / (self.ddr_beat_rate if ddr else self.beat_rate)
        if name == "load":
            return 4 + rows * (rt + 3 + xfer)
        if name == "store":
            return 6 + rows * (5 + xfer)
        return 13 + rows * (self.rt + rt + 5 + xfer)  # embed: the id in HBM, then its row

    def kvstore(self, segs: int, beats: int) -> float:
        if segs == 0:
            return 4
        return 6 + segs * 5 + beats / self.beat_rate

    def kvstore_tr(self, words: int) -> float:
        """V's transposed store (dfx_dma.v S_VT): one buffer read and one one-word write per cycle."""
        return 9 + words if words else 4


def _beats(lo: int, nbytes: int, pb: int) -> int:
    """Port beats a row of nbytes starting at byte lo spans."""
    return (lo % pb + nbytes + pb - 1) // pb if nbytes else 0


class _Core:
    """One core's instruction stream as dfx_core_flat runs it (docs/hw.md, "Issue, queues and the
    scoreboard"): fetch into a queue of IQ instructions; one decoded stage; three unit queues of
    UQ slots (DMA; compute = MPU or VPU, one at a time; router) that run in order; an instruction
    enters its queue when no slot of another queue holds a range it conflicts with (arch/isa.py),
    and leaves when its unit is done. Times are kernel cycles from ap_start."""

    def __init__(self, t: Target, costs: Costs, prog: list, core: int, ncores: int):
        self.t, self.c, self.prog, self.core, self.n = t, costs, prog, core, ncores
        self.C = t.hbm.channels

    def run(self, ntok: int, pos: int, ids=None, ports=None):
        """ports: the compute unit's hold on the buffer ports from a first pass of this call
        ({"w": write-port windows, "ab": windows holding both read ports}, sorted): the DMA's
        buffer writes (load, embed) wait out the first, its reads (store, kvstore) the second
        (the core's port arbiter gives the running compute unit priority)."""
        t, c = self.t, self.c
        held = {"w": [], "ab": []}  # this pass's windows (returned for the next)
        C, V = self.C, t.vector.width
        regs = arg_regs(ntok, pos, self.core, self.n)
        QUEUE = {"dma": 0, "mpu": 1, "vpu": 1, "net": 2}
        qret = [deque(), deque(), deque()]  # retire cycles of each queue's last UQ instructions
        last_ret = [0.0, 0.0, 0.0]
        slots = []  # (queue, retire, reads, writes) of instructions that may still hold a slot
        pops = deque()  # pop cycles of the last IQ instructions (fetch queue room)
        f_last = 3 + c.rt - c.bpi  # ap_start to the first instruction: control states, one HBM read
        pop = 0.0  # the last instruction left the fetch queue
        dec_free = 0.0  # the decoded stage takes the next unit instruction
        hread = np.zeros(C, np.int64)
        hwrite = np.zeros(C, np.int64)
        ddr = macs = ring = 0
        intervals, retired = [], []
        ubusy = defaultdict(float)
        for pc, ins in enumerate(self.prog):
            op = ins.op
            name, unit = op.name, op.unit
            # fetch: BPI beats per instruction, IQ instructions ahead of the pops
            arrive = f_last + c.bpi
            if len(pops) >= c.iq:
                arrive = max(arrive, pops[-c.iq] + c.rt + c.bpi)
            f_last = arrive
            p = max(arrive, pop + 1)
            if unit == "ctrl":
                if name == "end":
                    p = max([p, *last_ret])
                    pop = p
                    end_all = p + c.status_beats + 5
                    break
                if name == "barrier":  # the decoded stage empty and the queues it names drained
                    sel = {QUEUE[u] for u, b in isa.BARRIER_BITS.items() if ins.units & b and u in QUEUE}
                    p = max([p, dec_free] + [last_ret[q] for q in sel])
                else:
                    apply_alu(ins, regs)
                pop = p
                pops.append(p)
                if len(pops) > c.iq:
                    pops.popleft()
                continue
            p = max(p, dec_free)
            pop = p
            pops.append(p)
            if len(pops) > c.iq:
                pops.popleft()
            q = QUEUE[unit]
            e = effects(ins, regs, t, self.n, ids if name == "embed" else None)
            reads, writes = _hulls(e.reads), _hulls(e.writes)
            hread += e.hbm_read
            hwrite += e.hbm_write
            ddr += e.ddr_read + e.ddr_write
            macs += e.macs
            ring += e.ring_sent
            g = p + 1  # the decoded stage's go: queue room, then no conflicting slot of another queue
            if len(qret[q]) >= c.uq:
                g = max(g, qret[q][-c.uq])
            moved = True
            while moved:
                moved = False
                for sq, sret, sr, sw in slots:
                    if sq != q and sret > g and _clash(reads, writes, sr, sw):
                        g = sret
                        moved = True
            dec_free = g
            start = max(g + 2, last_ret[q] + 1)
            if unit == "net":
                nw = self._ring_words(name, e)
                done = yield (name, start, nw)
                ret = done
            else:
                dur = self._duration(ins, name, unit, e, regs)
                if FREE_UNIT.get(unit) in c.free:  # a bound: the unit's instructions take one cycle
                    dur = 1
                if unit == "dma" and ports:
                    dur += _blocked(ports["w" if name in ("load", "embed") else "ab"], start, dur)
                ret = start + dur
                if unit == "vpu" and e.counts["rows"] and e.counts["cols"]:
                    beats = e.counts["rows"] * -(-e.counts["cols"] // V)
                    lat = c.vpu_exit[name]
                    held["w"].append((start + 3 + lat, start + 3 + lat + beats))
                    if name in ("vadd", "vsub", "vmul", "vmax") and isa.BCAST[ins.bcast] != "imm":
                        held["ab"].append((start + 2, start + 2 + beats))
                elif unit == "mpu" and ins.bias:
                    held["ab"].append((start + 3, ret - 1))
            last_ret[q] = ret
            qret[q].append(ret)
            if len(qret[q]) > c.uq:
                qret[q].popleft()
            slots.append((q, ret, reads, writes))
            if len(slots) > 3 * c.uq + 8:
                slots = [s for s in slots if s[1] > g]
            intervals.append((start, ret, unit))
            retired.append((pc, unit, start, ret))
            ubusy[unit] += ret - start
        else:
            raise PerfError(f"core {self.core}: program has no end instruction")
        return dict(cycles=end_all, hbm_read=hread, hbm_write=hwrite, ddr=ddr, macs=macs, ring=ring,
                    intervals=intervals, unit_cycles=dict(ubusy), retired=retired, ports=held)

    def _ring_words(self, name, e) -> tuple:
        rows, cols = e.counts["rows"], e.counts["cols"]
        return rows, rows * -(-cols // self.c.ring_words)

    def _duration(self, ins, name, unit, e, regs) -> float:
        t, c = self.t, self.c
        L, W, V, PB = t.matrix.lanes, t.matrix.width, t.vector.width, t.port_bytes
        cn = e.counts
        if unit == "vpu":
            return c.vpu(name, cn["rows"], cn["cols"], V)
        if unit == "mpu":
            B = max(1, ins.batch)
            N = cn["n"]
            KT, NT = ktiles(cn["k"], W), ntiles(N, L)
            pad = name == "maskedmm" and -(-N // W) * W > NT * L
            return c.mpu(name, B, cn["m"], KT, NT, pad, bool(ins.gelu))
        rows, cols = cn["rows"], cn["cols"]
        if name == "kvstore":
            if not rows or not cols:
                return 4
            B = max(1, ins.batch)
            if ins.tr:
                return c.kvstore_tr(B * rows * cols)
            segs = B * rows * -(-cols // W)
            return c.kvstore(segs, segs * -(-min(cols, W) * 2 // PB))
        ddr_sp = "space" in ins.f and isa.SPACES[ins.space] == "ddr"
        if name == "embed":
            return c.dma_rows(name, rows, -(-cols * 2 // PB), ddr_sp)
        lo = ins.m + regs[ins.mreg] * ins.mregs
        return c.dma_rows(name, rows, _beats(lo, cols * 2, PB), ddr_sp)


def _blocked(windows, start: float, dur: float) -> float:
    """Cycles a unit that needs a buffer port for `dur` cycles from `start` waits for `windows`
    (sorted, disjoint intervals in which the compute unit holds that port)."""
    if not windows:
        return 0.0
    k = bisect.bisect_right(windows, (start, math.inf)) - 1
    k = max(k, 0)
    end, waited = start + dur, 0.0
    while k < len(windows) and windows[k][0] < end:
        a, b = windows[k]
        o = min(b, end) - max(a, start)
        if o > 0:
            waited += o
            end += o
        k += 1
    return waited


def _hulls(ranges) -> list:
    """The scoreboard's view of an instruction's ranges (dfx_core_flat.v, "ranges"): one hull per
    space of everything it reads (writes) on the buffer and in HBM; DDR ranges are not kept (the
    DMA, in order, is the only unit that reaches the DDR)."""
    out = {}
    for sp, lo, hi in ranges:
        if sp == "ddr" or hi <= lo:
            continue
        if sp in out:
            a, b = out[sp]
            out[sp] = (min(a, lo), max(b, hi))
        else:
            out[sp] = (lo, hi)
    return [(sp, lo, hi) for sp, (lo, hi) in out.items()]


def _clash(r1, w1, r2, w2) -> bool:
    """The scoreboard rule: one writes what the other reads or writes."""
    for a, b in ((w1, r2), (w1, w2), (r1, w2)):
        for s1, lo1, hi1 in a:
            for s2, lo2, hi2 in b:
                if s1 == s2 and lo1 < hi2 and lo2 < hi1:
                    return True
    return False


# ---------------------------------------------------------------------------------- appliance
class CycleModel:
    """The timing of N cores running their programs of one phase, joined by the ring."""

    def __init__(self, target: Target, programs: dict, ring: str = "link", free=()):
        """programs: phase -> [list[Instr] per card]. ring: "link" (the target's links: its
        bandwidth and Target.hop_cycles) or "testbench" (hw/sim/dfx_ring_link.v: one ring
        word per cycle, TB_HOP cycles per hop), for comparisons with the RTL. free: Costs.FREE
        parts taken to cost one cycle (bounds, not the core)."""
        self.t = target
        self.r = Rates.of(target)
        self.c = Costs.of(target, free)
        self.programs = programs
        self.n = len(next(iter(programs.values())))
        self._cache = {}
        if ring == "testbench":
            self.word_cycles, self.hop = 1.0, TB_HOP
        else:  # a word crosses the link as whole beats (the card's ring adapters, dfx.hw.vitis)
            link_bytes = target.ring_word_beats * target.ring.link_beat_bits / 8
            self.word_cycles = max(1.0, link_bytes / self.r.link_bpc)
            self.hop = target.hop_cycles

    def call(self, phase: str, ntok: int, pos: int) -> CallTiming:
        key = (phase, ntok, pos)
        if key not in self._cache:
            self._cache[key] = self._call(phase, ntok, pos)
        return self._cache[key]

    def _call(self, phase, ntok, pos) -> CallTiming:
        first = self._pass(phase, ntok, pos, None)
        return self._timing(self._pass(phase, ntok, pos, [r["ports"] for r in first]))

    def _pass(self, phase, ntok, pos, ports) -> list:
        """One evaluation of the call on every core (ports: the buffer-port windows of a first pass)."""
        n = self.n
        cores = [_Core(self.t, self.c, self.programs[phase][j], j, n) for j in range(n)]
        gens = [c.run(ntok, pos, ports=ports[j] if ports else None) for j, c in enumerate(cores)]
        results = [None] * n
        pending = [None] * n
        for j, g in enumerate(gens):
            pending[j] = self._advance(g, None, results, j)
        links = [deque() for _ in range(n)]  # per link j -> j+1: (first word's arrival, words)
        wc, hop = self.word_cycles, self.hop
        while any(p is not None for p in pending):
            live = [j for j in range(n) if pending[j] is not None]
            if len(live) != n:
                raise PerfError("the cores' ring instructions do not match (a core ended early)")
            kinds = {pending[j][0] for j in live}
            if len(kinds) != 1:
                raise PerfError(f"the cores' ring instructions do not match: {sorted(kinds)}")
            kind = kinds.pop()
            done = [0.0] * n
            if "sync" in self.c.free:  # a bound: every ring instruction takes one cycle
                for j in range(n):
                    done[j] = pending[j][1] + 1
                    pending[j] = self._advance(gens[j], done[j], results, j)
                continue
            # dfx_net.v: S_IDLE, S_CHECK, S_STEP, then the engines; a step ends in S_WAIT when
            # both are idle. A message is a header word and then the words of its rows.
            if kind == "allgather":
                words = [pending[j][2][1] for j in range(n)]
                # the own slice copied into place, then N-1 steps that each send the last slice
                # and receive the next; a step ends when both engines are idle (GATHER_STEP: the
                # cycles of a step around its words, from the retire trace: 15 + 2 words on 2
                # cores, 35 + 4 words on 4, in step)
                a = [pending[j][1] + NET_GO + words[j] for j in range(n)]
                for _ in range(n - 1):
                    tx_end = [a[j] + (words[j] + 1) * wc for j in range(n)]
                    rx_end = [max(a[j], a[(j - 1) % n] + hop) + (words[(j - 1) % n] + 1) * wc + GATHER_STEP
                              for j in range(n)]
                    a = [max(tx_end[j], rx_end[j]) + NET_STEP for j in range(n)]
                done = [x + NET_DONE for x in a]
            elif kind == "send":
                for j in range(n):
                    _, rdy, (_rows, w) = pending[j]
                    go = rdy + NET_GO
                    done[j] = go + (w + 1) * wc + NET_STEP + NET_DONE
                    links[j].append(go + hop)
            else:  # recv
                for j in range(n):
                    link = links[(j - 1) % n]
                    if not link:
                        raise PerfError(f"core {j} receives with nothing sent to it")
                    _, rdy, (_rows, w) = pending[j]
                    done[j] = max(rdy + NET_GO, link.popleft()) + (w + 1) * wc + NET_STEP + NET_DONE
            for j in range(n):
                pending[j] = self._advance(gens[j], done[j], results, j)
        return results

    @staticmethod
    def _advance(gen, value, results, j):
        try:
            return gen.send(value) if value is not None else next(gen)
        except StopIteration as e:
            results[j] = e.value
            return None

    def _timing(self, results) -> CallTiming:
        cyc = max(r["cycles"] for r in results)
        slow = max(range(len(results)), key=lambda j: results[j]["cycles"])
        busy = attribute(results[slow]["intervals"], results[slow]["cycles"])
        return CallTiming(
            cycles=cyc, seconds=cyc / self.r.hz, busy=busy,
            hbm_read=[r["hbm_read"] for r in results], hbm_write=[r["hbm_write"] for r in results],
            ddr_bytes=[r["ddr"] for r in results], macs=[r["macs"] for r in results],
            ring_bytes=[r["ring"] for r in results],
            unit_cycles=[r["unit_cycles"] for r in results])


PRIORITY = ("mpu", "vpu", "dma", "net")
TB_HOP = 2  # hw/sim/dfx_ring_link.v: a word through the link's FIFO
NET_GO = 4  # dfx_net.v: start pulse to the engines' first word (S_IDLE, S_CHECK, S_STEP, go)
NET_STEP = 2  # S_WAIT sees both engines idle, S_STEP starts the next step
NET_DONE = 1
GATHER_STEP = 5  # an all-gather step past its words and the hop (measured: docs/perf.md)


def attribute(intervals, total) -> dict:
    """Split wall time among units: a cycle counts for the highest-priority active unit
    (matrix > vector > DMA > sync); what no unit covers is 'other' (dispatch, latency tails)."""
    ev = []
    for s, e, u in intervals:
        if e > s:
            ev.append((s, 1, u))
            ev.append((e, -1, u))
    ev.sort(key=lambda x: (x[0], x[1]))
    active = dict.fromkeys(PRIORITY, 0)
    out = {CATEGORY[u]: 0.0 for u in PRIORITY}
    out["other"] = 0.0
    last = 0.0
    for tm, d, u in ev:
        if tm > last:
            cur = next((p for p in PRIORITY if active[p] > 0), None)
            out[CATEGORY[cur] if cur else "other"] += tm - last
            last = tm
        active[u] += d
    if total > last:
        out["other"] += total - last
    return out


def request_cycles(progs, n_in: int, n_out: int, ring: str = "link", exact: bool | None = None) -> dict:
    """Modelled kernel cycles of one request of n_in prompt and n_out output tokens on compiled
    programs (dfx.perf.report.Programs): {'summarization': ..., 'generation': ..., 'total': ...}
    (dfx.arch.isa.PHASES); host overheads are not cycles. ring="testbench": the RTL testbench's
    ring links (CycleModel), for runs on the rtl backend. exact (default: at most 64 generated
    tokens) evaluates every call."""
    from dfx.perf.report import Predictor

    pr = Predictor(progs, exact=n_out <= 64 if exact is None else exact, ring=ring)
    hz = pr.app.r.hz
    s = sum(r["device_seconds"] for r in pr.summarization_calls(n_in)) * hz
    g = sum(r["device_seconds"] for r in pr.generation_calls(n_in, n_out)) * hz if n_out > 1 else 0.0
    s, g = int(round(s)), int(round(g))
    return {isa.SUMMARIZATION: s, isa.GENERATION: g, "total": s + g}


def bundle_cycles(bundle, n_in: int, n_out: int, ring: str = "link") -> dict:
    """request_cycles on a compiled bundle (a Bundle or its folder)."""
    from dfx.perf.report import load_programs

    return request_cycles(load_programs(str(getattr(bundle, "path", bundle))), n_in, n_out, ring)
