"""What each instruction reads, writes and moves, described once.

`effects(ins, regs, target, ncores, ids)` gives, for one instruction with its count fields
resolved against the registers as they are when it issues:

* `reads`, `writes`: the address ranges it reads and writes, as (space, lo, hi) with space
  "buf" (on-chip buffer, word addresses) or "hbm" / "ddr" (byte addresses); each is the hull
  of one operand, the granularity of the scoreboard rule of dfx.arch.isa (and of the RTL
  core's decode stage, docs/hw.md);
* `hbm_read`, `hbm_write`: bytes per HBM pseudo-channel (the interleave of dfx.arch.hbm);
  `ddr_read`, `ddr_write`: DDR bytes;
* `macs` (matrix unit), `vector_elems` (vector unit), `ring_sent`, `ring_received` (bytes)
  and `syncs` (messages sent on the ring);
* `tiles` (weight tiles the matrix unit streams) and `kv_beats` (kvstore: the beats, partial
  ones included, each HBM channel writes; the transpose scatters words over them).

The performance model (dfx.perf.model) and `dfx inspect` (dfx.compiler.inspect) read their
traffic and hazards from here. The functional simulator does not: it counts what its memory
models actually move, and tests/test_effects.py holds this table equal to those counters on
every opcode.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dfx.arch import isa
from dfx.arch.isa import ARGMAX_WORDS
from dfx.arch.hbm import beats_per_channel, channel_split, rows_split
from dfx.arch.layout import ktiles, ntiles, tile_word_offsets
from dfx.arch.regs import count

@dataclasses.dataclass
class Effects:
    counts: dict  # count fields resolved: name -> value
    reads: list  # (space, lo, hi)
    writes: list
    hbm_read: np.ndarray  # bytes per channel
    hbm_write: np.ndarray
    ddr_read: int = 0
    ddr_write: int = 0
    macs: int = 0
    vector_elems: int = 0
    ring_sent: int = 0
    ring_received: int = 0
    syncs: int = 0
    tiles: int = 0
    kv_beats: np.ndarray | None = None

    def totals(self) -> dict:
        """External-memory bytes: {"hbm_read", "hbm_write", "ddr_read", "ddr_write"}."""
        return {"hbm_read": int(self.hbm_read.sum()), "hbm_write": int(self.hbm_write.sum()),
                "ddr_read": self.ddr_read, "ddr_write": self.ddr_write}


def span(addr: int, rows: int, cols: int, stride: int):
    """The hull [addr, addr + (rows-1)*stride + cols) of a strided row set, None when empty."""
    if rows <= 0 or cols <= 0:
        return None
    return addr, addr + (rows - 1) * stride + cols


def effects(ins, regs: list, target, ncores: int = 1, ids=None) -> Effects:
    """The effects of `ins` issued with register file `regs` on a core of `target` in a ring of
    `ncores`. `ids`: the token ids an embed reads (None: id 0 for every row, which moves the
    same number of bytes, on other channels)."""
    op, f = ins.op, ins.f
    C, P = target.hbm.channels, target.port_bytes
    counts = {fl.name: count(regs, f[fl.name]) for fl in op.fields if fl.kind == "cnt"}
    e = Effects(counts, [], [], np.zeros(C, np.int64), np.zeros(C, np.int64))
    reads, writes = e.reads, e.writes

    def add(lst, space, rg):
        if rg is not None:
            lst.append((space, rg[0], rg[1]))

    name, unit = op.name, op.unit
    if unit == "dma":
        rows, cols = counts["rows"], counts["cols"]
        sp = isa.SPACES[ins.space] if "space" in f else "hbm"
        if name in ("load", "store"):
            base = ins.m + regs[ins.mreg] * ins.mregs
            mem = span(base, rows, cols * 2, ins.ms)
            buf = span(ins.v, rows, cols, ins.vs)
            nbytes = rows_split(base, rows, cols, ins.ms, P, C) if sp == "hbm" else rows * cols * 2
            if name == "load":
                add(reads, sp, mem), add(writes, "buf", buf)
            else:
                add(reads, "buf", buf), add(writes, sp, mem)
            _count(e, sp, "read" if name == "load" else "write", nbytes)
        elif name == "embed":
            e.hbm_read += channel_split(ins.ids, 4 * rows, P, C)
            reads.append(("hbm", ins.ids, ins.ids + 4 * rows))
            tok = [0] * rows if ids is None else [int(x) for x in list(ids)[:rows]]
            tok += [0] * (rows - len(tok))
            if sp == "hbm":
                for tk in tok:
                    e.hbm_read += channel_split(ins.m + tk * ins.ms, cols * 2, P, C)
            else:
                e.ddr_read += rows * cols * 2
            reads.append((sp, ins.m, ins.m + ins.limit * ins.ms))
            add(writes, "buf", span(ins.v, rows, cols, ins.vs))
        else:  # kvstore: the transpose unit's scatter into the cache's tile layout
            if rows and cols:
                L, W = target.matrix.lanes, target.matrix.width
                B = max(1, ins.batch)
                p = regs[ins.preg] + np.arange(rows)[:, None]
                c = np.arange(cols)[None, :]
                k, n = (p, c) if ins.tr else (c, p)
                k, n = np.broadcast_to(k, (rows, cols)), np.broadcast_to(n, (rows, cols))
                off = (tile_word_offsets(k, n, ins.wn, L, W) * 2).ravel()
                # heads' caches start on tiles (stripes), so every head touches the same channels
                e.hbm_write += np.bincount((off // P) % C, minlength=C).astype(np.int64) * 2 * B
                e.kv_beats = beats_per_channel(off, P, C) * B
                writes.append(("hbm", ins.m + int(off.min()),
                               ins.m + (B - 1) * ins.mbs * target.tile_bytes + int(off.max()) + 2))
                reads.append(("buf", ins.v, ins.v + (B - 1) * ins.vbs + (rows - 1) * ins.vs + cols))
    elif unit == "mpu":
        L, W = target.matrix.lanes, target.matrix.width
        B = max(1, ins.batch)
        M, K, N = counts["m"], counts["k"], counts["n"]
        KT, NT = ktiles(K, W), ntiles(N, L)
        e.tiles = B * KT * NT
        e.macs = B * M * K * N
        e.hbm_read += e.tiles * target.tile_bytes // C  # every tile is one beat on every channel
        reads.append(("hbm", ins.w, ins.w + ((B - 1) * ins.wbs + (NT - 1) * ins.wn + KT) * target.tile_bytes))
        x0 = ins.x + regs[ins.xreg] * ins.xs
        if M and K:
            reads.append(("buf", x0, x0 + (B - 1) * ins.xbs + (M - 1) * ins.xs + K))
        if ins.bias:
            reads.append(("buf", ins.aux, ins.aux + N))
        npad = -(-N // W) * W if name == "maskedmm" else N  # maskedmm pads its rows with -inf
        if M and npad:
            writes.append(("buf", ins.out, ins.out + (B - 1) * ins.obs + (M - 1) * ins.os + npad))
        if name == "maskedmm" and M:
            writes.append(("buf", ins.aux, ins.aux + (B - 1) * ins.abs + (M - 1) * f["as"] + 1))
        if name == "lmhead" and M:
            writes.append(("buf", ins.aux, ins.aux + (B - 1) * ins.abs + (M - 1) * max(ARGMAX_WORDS, f["as"])
                           + ARGMAX_WORDS))
    elif unit == "vpu":
        rows, cols = counts["rows"], counts["cols"]
        e.vector_elems = rows * cols
        add(reads, "buf", span(ins.a, rows, cols, f["as"]))
        bc = isa.BCAST[ins.bcast]
        if name in ("vadd", "vsub", "vmul", "vmax") and rows and cols:
            if bc == "none":
                add(reads, "buf", span(ins.b, rows, cols, ins.bs))
            elif bc == "row":
                reads.append(("buf", ins.b, ins.b + cols))
            elif bc == "col":
                reads.append(("buf", ins.b, ins.b + (rows - 1) * max(1, ins.bs) + 1))
        if rows and cols:
            if name in ("vsum", "vsumsq", "vrmax"):
                writes.append(("buf", ins.d, ins.d + (rows - 1) * max(1, ins.ds) + 1))
            else:
                add(writes, "buf", span(ins.d, rows, cols, ins.ds))
    elif unit == "net":
        rows, cols = counts["rows"], counts["cols"]
        nbytes = rows * cols * 2
        if name == "allgather":
            add(reads, "buf", span(ins.src, rows, cols, ins.ss))
            add(writes, "buf", span(ins.dst, rows, cols * ncores, ins.ds))
            e.syncs = ncores - 1
            e.ring_sent = e.ring_received = nbytes * (ncores - 1)
        elif name == "send":
            add(reads, "buf", span(ins.v, rows, cols, ins.vs))
            e.syncs, e.ring_sent = 1, nbytes
        else:
            add(writes, "buf", span(ins.v, rows, cols, ins.vs))
            e.ring_received = nbytes
    return e


def _count(e: Effects, space: str, way: str, nbytes) -> None:
    if space == "hbm":
        (e.hbm_read if way == "read" else e.hbm_write)[:] += nbytes
    elif way == "read":
        e.ddr_read += int(nbytes)
    else:
        e.ddr_write += int(nbytes)
