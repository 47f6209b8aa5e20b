"""A cycle-level performance model of dfx cores, driven by a target file and compiled programs.

The model walks the real instruction stream of each card (the programs the compiler emits,
with r1 = ntok and r2 = pos set per call, as the functional simulator does) and gives every
instruction a start and a completion time in kernel cycles:

* dispatch: one instruction per cycle in program order into four unit queues (DMA, MPU,
  VPU, NET) of ``buffers.instr_fifo`` entries each; a full queue stalls dispatch.
* scoreboard: an instruction starts once every earlier instruction whose write set overlaps
  its read or write set, or whose read set overlaps its write set, has completed (address
  tags over the on-chip buffer, HBM and DDR: dfx.arch.isa). Ranges are the bounding word or
  byte intervals of each operand.
* units run their own queue in order; an instruction occupies its unit for its issue time
  and completes after the unit's pipeline latency (all latencies from the target file).
* MPU: one weight tile times one input row per cycle (lanes x width MACs). Weight tiles
  stream from HBM at one tile per cycle at most, bounded by the HBM bandwidth: the unit is
  busy max(compute cycles, stream cycles). Partial sums of one output column are added in
  k order (the ISA's semantics), so a k-step of a group of ``perf.mpu_interleave_ntiles``
  n-tiles cannot be shorter than ``matrix.add_latency``. With ``perf.weight_prefetch_tiles``
  > 0 the weight stream may run ahead of the MPU's inputs by that many tiles (it still waits
  for HBM hazards, e.g. a KV-cache write): HBM keeps streaming during syncs and VPU work.
* DMA: per HBM pseudo-channel at min(port width x kernel clock, channel bandwidth x
  ``hbm.efficiency``); the busiest channel sets the time. DDR at ``ddr.gbps``.
* VPU: ``vector.width`` elements per cycle; reductions chain across width-sized chunks
  at the accumulate latency (as the MPU's accumulators do).
* NET: ring links at min(link_gbps x (1 - overhead), words_per_cycle x 16 bit x clock),
  ``ring.hop_latency_cycles`` per hop; an all-gather is (N-1) ring steps and starts when the
  last core reaches it. send/recv pair across neighbours.

What each instruction reads and writes (its scoreboard ranges) and the bytes it moves on
each HBM channel come from the table of instruction effects (dfx.arch.effects), which
tests/test_effects.py holds equal to the functional simulator's counters on every opcode.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict, deque

import numpy as np

from dfx.arch import isa
from dfx.arch.effects import effects
from dfx.arch.regs import apply_alu, arg_regs
from dfx.arch.layout import ktiles, ntiles
from dfx.arch.target import Target
from dfx.errors import DfxError

UNITS = ("dma", "mpu", "vpu", "net")
CATEGORY = {"mpu": "matrix", "vpu": "vector", "dma": "dma", "net": "sync"}
REDUCE = ("vsum", "vsumsq", "vrmax")


class PerfError(DfxError):
    """The performance model cannot evaluate a program or a request."""


# ---------------------------------------------------------------------------------- rates
@dataclasses.dataclass(frozen=True)
class Rates:
    """Per-cycle rates and latencies of one target, derived from its file once."""

    hz: float
    channel_bpc: float  # bytes per kernel cycle one HBM pseudo-channel moves
    hbm_bpc: float  # all channels
    ddr_bpc: float
    link_bpc: float
    pcie_bps: float
    hbm_peak_bps: float  # channels x channel_gbps (the data sheet)
    hbm_reach_bps: float  # x efficiency: the roofline's bandwidth
    mpu_fill: int  # multiplier + adder tree + accumulator + SFU
    hbm_lat: int
    ddr_lat: int

    @classmethod
    def of(cls, t: Target) -> "Rates":
        hz = t.clock.kernel_mhz * 1e6
        ch = min(t.port_bytes, t.hbm.channel_gbps * 1e9 * t.hbm.efficiency / hz)
        ddr = t.ddr.gbps * 1e9 / hz if t.ddr.present else 0.0
        link = min(t.ring.link_gbps * 1e9 / 8 * (1 - t.ring.overhead), t.ring.words_per_cycle * 2 * hz) / hz
        m = t.matrix
        fill = m.mul_latency + math.ceil(math.log2(m.width)) * m.add_latency + m.add_latency + m.sfu_latency
        return cls(hz, ch, ch * t.hbm.channels, ddr, link, t.host.pcie_gbps * 1e9,
                   t.hbm.channels * t.hbm.channel_gbps * 1e9,
                   t.hbm.channels * t.hbm.channel_gbps * 1e9 * t.hbm.efficiency,
                   fill, t.perf.hbm_latency_cycles, t.perf.ddr_latency_cycles)


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
class _Core:
    def __init__(self, t: Target, rates: Rates, prog: list, core: int, ncores: int):
        self.t, self.r, self.prog, self.core, self.n = t, rates, prog, core, ncores
        self.C = t.hbm.channels

    # ---- the schedule of one call (a generator: yields at ring instructions)
    def run(self, ntok: int, pos: int, ids=None):
        t, R = self.t, self.r
        C = self.C
        L, W = t.matrix.lanes, t.matrix.width
        pf = t.perf
        regs = arg_regs(ntok, pos, self.core, self.n)
        q = t.buffers.instr_fifo
        starts = {u: deque() for u in UNITS}  # start times of queued instructions per unit
        free = dict.fromkeys(UNITS, 0.0)  # unit can take its next instruction
        stream_free = 0.0  # MPU weight stream
        stream_gate = 0.0  # the prefetch FIFO has room again (tiles of earlier products drained)
        hbm_free = 0.0
        tags = {}  # (space, lo, hi, is_write) -> latest completion (the scoreboard's address tags)
        dispatch = 0.0
        end_all = 0.0
        unit_done = dict.fromkeys(UNITS, 0.0)
        hread = np.zeros(C, np.int64)
        hwrite = np.zeros(C, np.int64)
        ddr = 0
        macs = 0
        ring = 0
        intervals = []  # (start, end, unit)
        ubusy = defaultdict(float)
        reg_done = 0.0
        retired = []  # (pc, unit, start, done) of every unit instruction, in program order
        for pc, ins in enumerate(self.prog):
            op = ins.op
            name, unit = op.name, op.unit
            dispatch += 1
            if unit == "ctrl":
                if name == "end":
                    end_all = max([dispatch, *unit_done.values()])
                    break
                if name == "barrier":
                    dispatch = max([dispatch] + [unit_done[u] for u, b in isa.BARRIER_BITS.items()
                                                 if ins.units & b])
                    continue
                apply_alu(ins, regs)
                reg_done = max(reg_done, dispatch)
                continue
            # queue space: the instruction q places earlier in this unit has started
            sq = starts[unit]
            if len(sq) >= q:
                dispatch = max(dispatch, sq[-q])
            e = effects(ins, regs, t, self.n, ids if name == "embed" else None)
            reads = [(sp_, (lo, hi)) for sp_, lo, hi in e.reads]
            writes = [(sp_, (lo, hi)) for sp_, lo, hi in e.writes]
            hread += e.hbm_read
            hwrite += e.hbm_write
            ddr += e.ddr_read + e.ddr_write
            macs += e.macs
            ring += e.ring_sent
            if unit == "dma":
                chan = e.hbm_read + e.hbm_write  # this instruction's bytes on each HBM channel
                nbytes = e.ddr_read + e.ddr_write
                ready = self._ready(tags, reads, writes, dispatch, reg_done)
                start = max(ready, free["dma"])
                if name == "kvstore":
                    beats_max = int(e.kv_beats.max()) if e.kv_beats is not None else 0
                    xfer = beats_max  # one (partial) beat per cycle per channel
                    lat = R.hbm_lat if beats_max else 0
                    hs = max(start, hbm_free) if beats_max else start
                elif name != "embed" and not chan.any():  # DDR load or store
                    xfer = nbytes / R.ddr_bpc if nbytes else 0
                    lat, hs = (R.ddr_lat if nbytes else 0), start
                else:
                    xfer = float(np.max(chan)) / R.channel_bpc if np.any(chan) else 0
                    if name == "embed" and nbytes:
                        xfer += nbytes / R.ddr_bpc
                        lat = R.hbm_lat + R.ddr_lat  # ids first, then the rows they name
                    else:
                        lat = R.hbm_lat if xfer else 0
                    hs = max(start, hbm_free) if xfer else start
                busy_end = hs + xfer
                if chan.any():
                    hbm_free = max(hbm_free, busy_end) if xfer else hbm_free
                done = busy_end + lat
                free["dma"] = busy_end
            elif unit == "mpu":
                B = max(1, ins.batch)
                M = e.counts["m"]
                KT, NT = ktiles(e.counts["k"], W), ntiles(e.counts["n"], L)
                tiles = e.tiles
                compute = self.mpu_cycles(B, M, KT, NT) if M else 0
                stream = tiles * t.tile_bytes / R.hbm_bpc if M else 0
                dep = self._ready(tags, [x for x in reads if x[0] != "hbm"], writes, dispatch, reg_done)
                hdep = self._ready(tags, [x for x in reads if x[0] == "hbm"], [], dispatch, reg_done)
                cstart = max(dep, free["mpu"], hdep)
                if pf.weight_prefetch_tiles > 0:
                    sstart = max(dispatch, stream_free, hdep, hbm_free, stream_gate)
                    ahead = min(tiles, pf.weight_prefetch_tiles)
                    per_tile = compute / tiles if tiles else 0
                    send = max(sstart + stream, cstart + (tiles - ahead) * per_tile)
                    stream_gate = cstart + compute - pf.weight_prefetch_tiles * per_tile
                else:
                    sstart = max(cstart, hbm_free)
                    send = sstart + stream
                busy_end = max(cstart + compute, send + (R.hbm_lat if stream else 0))
                done = busy_end + R.mpu_fill
                if stream:
                    hbm_free = max(hbm_free, sstart + stream)
                    stream_free = send
                free["mpu"] = busy_end
                start = cstart
            elif unit == "vpu":
                rows, cols = e.counts["rows"], e.counts["cols"]
                occ, lat = self.vpu_cycles(name, rows, cols, bool(ins.imm))
                ready = self._ready(tags, reads, writes, dispatch, reg_done)
                start = max(ready, free["vpu"])
                busy_end = start + occ
                done = busy_end + (lat if occ else 0)
                free["vpu"] = busy_end
            else:  # net
                nbytes = e.counts["rows"] * e.counts["cols"] * 2
                ready = max(self._ready(tags, reads, writes, dispatch, reg_done), free["net"])
                done = yield (name, ready, nbytes)
                start, busy_end = ready, done
                free["net"] = done
            for isw, lst in ((False, reads), (True, writes)):
                for sp_, rg in lst:
                    key = (sp_, rg[0], rg[1], isw)
                    if tags.get(key, -1.0) < done:
                        tags[key] = done
            sq.append(start)
            if len(sq) > q:
                sq.popleft()
            unit_done[unit] = max(unit_done[unit], done)
            intervals.append((start, done, unit))
            retired.append((pc, unit, start, done))
            ubusy[unit] += max(0.0, done - start)
            if len(tags) > 96:  # drop tags that can delay nothing any more
                for key in [k for k, d in tags.items() if d <= dispatch]:
                    del tags[key]
        else:
            raise PerfError(f"core {self.core}: program has no end instruction")
        return dict(cycles=end_all, hbm_read=hread, hbm_write=hwrite, ddr=ddr, macs=macs, ring=ring,
                    intervals=intervals, unit_cycles=dict(ubusy), retired=retired)

    @staticmethod
    def _ready(tags, reads, writes, dispatch, reg_done):
        t = max(dispatch, reg_done)
        for (sp, lo, hi, isw), done in tags.items():
            if done <= t:
                continue
            if isw:
                for s2, rg in reads:
                    if rg and s2 == sp and rg[0] < hi and lo < rg[1]:
                        t = done
                        break
                else:
                    for s2, rg in writes:
                        if rg and s2 == sp and rg[0] < hi and lo < rg[1]:
                            t = done
                            break
            else:
                for s2, rg in writes:
                    if rg and s2 == sp and rg[0] < hi and lo < rg[1]:
                        t = done
                        break
        return t

    def mpu_cycles(self, B, M, KT, NT) -> float:
        """Issue cycles of B x (M x K) @ (K x N): one tile x one row per cycle, with the
        accumulator's dependence across k-steps (interleave groups of n-tiles over batches)."""
        acc = self.t.matrix.add_latency
        I = self.t.perf.mpu_interleave_ntiles
        chains = B * NT
        if KT == 1:
            return chains * M
        full, rem = divmod(chains, I)
        step = full * max(I * M, acc) + (max(rem * M, acc) if rem else 0)
        return KT * step

    def vpu_cycles(self, name, rows, cols, scaled) -> tuple[float, int]:
        t = self.t
        vt, VW = t.vector, t.vector.width
        if rows == 0 or cols == 0:
            return 0, 0
        chunks = -(-cols // VW)
        if name in REDUCE:
            acc = vt.add_latency if name != "vrmax" else vt.reduce_latency
            occ = rows * chunks if chunks == 1 else chunks * max(rows, acc)
            lat = math.ceil(math.log2(VW)) * vt.reduce_latency + acc
            if name == "vsumsq":
                lat += vt.mul_latency
            if scaled and name != "vrmax":
                lat += vt.mul_latency
            return occ, lat
        lat = {"vadd": vt.add_latency, "vsub": vt.add_latency, "vmul": vt.mul_latency,
               "vmax": vt.reduce_latency, "vcopy": 1, "vexp": vt.exp_latency,
               "vrecip": vt.recip_latency, "vrsqrt": vt.rsqrt_latency}[name]
        return rows * chunks, lat


# ---------------------------------------------------------------------------------- appliance
class CycleModel:
    """The timing of N cores running their programs of one phase, joined by the ring."""

    def __init__(self, target: Target, programs: dict):
        """programs: phase -> [list[Instr] per card]."""
        self.t = target
        self.r = Rates.of(target)
        self.programs = programs
        self.n = len(next(iter(programs.values())))
        self._cache = {}

    def call(self, phase: str, ntok: int, pos: int) -> CallTiming:
        key = (phase, ntok, pos)
        if key not in self._cache:
            self._cache[key] = self._call(phase, ntok, pos)
        return self._cache[key]

    def _call(self, phase, ntok, pos) -> CallTiming:
        n, R = self.n, self.r
        cores = [_Core(self.t, R, self.programs[phase][j], j, n) for j in range(n)]
        gens = [c.run(ntok, pos) for c in cores]
        results = [None] * n
        pending = [None] * n
        for j, g in enumerate(gens):
            pending[j] = self._advance(g, None, results, j)
        links = [deque() for _ in range(n)]  # arrival times on link j -> j+1
        hop = self.t.ring.hop_latency_cycles
        while any(p is not None for p in pending):
            live = [j for j in range(n) if pending[j] is not None]
            if len(live) != n:
                raise PerfError("the cores' ring instructions do not match (a core ended early)")
            kinds = {pending[j][0] for j in live}
            if len(kinds) != 1:
                raise PerfError(f"the cores' ring instructions do not match: {sorted(kinds)}")
            kind = kinds.pop()
            done = [0.0] * n
            if kind == "allgather":
                t0 = max(pending[j][1] for j in range(n))
                step = max(hop + pending[j][2] / R.link_bpc for j in range(n)) if n > 1 else 0
                done = [t0 + (n - 1) * step] * n
            elif kind == "send":
                for j in range(n):
                    _, rdy, nb = pending[j]
                    done[j] = rdy + nb / R.link_bpc
                    links[j].append(done[j] + hop)
            else:  # recv
                for j in range(n):
                    link = links[(j - 1) % n]
                    if not link:
                        raise PerfError(f"core {j} receives with nothing sent to it")
                    done[j] = max(pending[j][1], link.popleft())
            for j in range(n):
                pending[j] = self._advance(gens[j], done[j], results, j)
        return self._timing(results)

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


def bundle_cycles(bundle, n_in: int, n_out: int) -> dict:
    """Modelled kernel cycles of one request on a compiled bundle (a Bundle or its folder):
    {'summarization': ..., 'generation': ..., 'total': ...} (dfx.arch.isa.PHASES); host overheads
    are not cycles."""
    from dfx.perf.report import Predictor, load_programs

    path = getattr(bundle, "path", bundle)
    pr = Predictor(load_programs(str(path)))
    hz = pr.app.r.hz
    s = sum(r["device_seconds"] for r in pr.summarization_calls(n_in)) * hz
    g = sum(r["device_seconds"] for r in pr.generation_calls(n_in, n_out)) * hz if n_out > 1 else 0.0
    s, g = int(round(s)), int(round(g))
    return {isa.SUMMARIZATION: s, isa.GENERATION: g, "total": s + g}
