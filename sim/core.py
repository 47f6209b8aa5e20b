"""One dfx core: its HBM and DDR, on-chip buffer, registers, and an interpreter of the ISA.

Instructions execute one after another: the scoreboard rule of dfx.arch.isa makes the
hardware's overlapped execution equal to this sequential order. Ring transfers go through
dfx.sim.appliance.Ring; `Core.run` is a generator that yields whenever it waits on the ring,
so the appliance can interleave cores and detect deadlock.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from dfx.arch import isa
from dfx.arch.encoding import decode, to_asm
from dfx.arch.layout import ktiles, ntiles, tile_word_offsets, unpack_batch
from dfx.arch.regs import apply_alu, arg_regs, count
from dfx.arch.target import Target
from dfx.errors import AddressError, EncodingError, IllegalInstruction, MachineError
from dfx.sim import numerics as nx
from dfx.sim import plan
from dfx.sim.kernels import KERNELS
from dfx.sim.memory import Memory

MAX_PROGRAM = 1 << 20
BLOCKED = "blocked"
UNARY_LUT = {"vexp": "exp", "vrecip": "recip", "vrsqrt": "rsqrt"}
BINARY = {"vadd": np.add, "vsub": np.subtract, "vmul": np.multiply}


class RangeCache:
    """Data derived from memory ranges (FP32 weights, decoded programs), dropped when written.

    Entries are indexed by 1 MiB buckets of address, so a write looks only at the entries
    near it (KV-cache appends happen every layer of every step, beside hundreds of weights)."""

    SHIFT = 20

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.entries: dict = {}  # key -> (lo, hi, value, nbytes); insertion order = age
        self.buckets: dict = {}  # bucket -> set of keys
        self.size = 0

    def _span(self, lo, hi):
        return range(lo >> self.SHIFT, ((max(hi, lo + 1) - 1) >> self.SHIFT) + 1)

    def get(self, key):
        e = self.entries.get(key)
        return None if e is None else e[2]

    def put(self, key, lo, hi, value, nbytes):
        if nbytes > self.limit:
            return
        if key in self.entries:
            self._drop(key)
        while self.size + nbytes > self.limit and self.entries:
            self._drop(next(iter(self.entries)))
        self.entries[key] = (lo, hi, value, nbytes)
        for b in self._span(lo, hi):
            self.buckets.setdefault(b, set()).add(key)
        self.size += nbytes

    def _drop(self, key):
        lo, hi, _v, nbytes = self.entries.pop(key)
        for b in self._span(lo, hi):
            keys = self.buckets.get(b)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.buckets[b]
        self.size -= nbytes

    def invalidate(self, lo, hi):
        if not self.entries:
            return
        dead = set()
        for b in self._span(lo, hi):
            for k in self.buckets.get(b, ()):
                e = self.entries[k]
                if e[0] < hi and lo < e[1]:
                    dead.add(k)
        for k in dead:
            self._drop(k)


def fresh_counters() -> dict:
    return {
        "instructions": Counter(),
        "ops": Counter(),
        "macs": 0,
        "syncs": 0,
        "ring_bytes_sent": 0,
        "ring_bytes_received": 0,
        "vector_elems": 0,
    }


class Core:
    def __init__(self, target: Target, core_id: int = 0, ncores: int = 1, mode: str = "exact",
                 cache_bytes: int | None = None):
        if mode not in KERNELS:
            raise ValueError(f"mode must be one of {', '.join(KERNELS)}")
        self.t, self.id, self.ncores, self.mode = target, core_id, ncores, mode
        self.kernel = KERNELS[mode]
        t = target
        self.hbm = Memory("HBM", t.hbm_bytes, t.port_bytes, t.hbm.channels)
        self.ddr = Memory("DDR", t.ddr.bytes, t.ddr.port_bits // 8, 1) if t.ddr.present else None
        self.vbuf = np.zeros(t.buffers.vbuf_words, np.uint16)
        self.regs = [0] * isa.NUM_REGS
        if cache_bytes is None:
            cache_bytes = int(os.environ.get("DFX_SIM_CACHE_MB", "8192")) * (1 << 20) // max(1, ncores)
        self.wcache = RangeCache(cache_bytes)
        self.pcache = RangeCache(1 << 30)
        self.hbm.watch(self.wcache)
        self.hbm.watch(self.pcache)
        if self.ddr is not None:
            self.ddr_wcache = RangeCache(cache_bytes)
            self.ddr.watch(self.ddr_wcache)
        self.counters = fresh_counters()
        self.pc = 0
        self.cur = None
        self.done = False
        self.on_retire = None  # called (core id, pc, opcode) after each instruction completes
        # called (core id, pc, space, addresses, FP16 values) for every write an instruction makes:
        # space "buf" (word addresses) or "hbm" / "ddr" (byte addresses of the words)
        self.on_write = None
        # run programs with the precompiled interpreter (dfx.sim.plan) when no hook is set;
        # False: always this module's reference interpreter, one instruction at a time
        self.precompiled = True

    # ------------------------------------------------------------------ program
    def program(self, entry: int) -> list:
        """Decode the instruction stream at HBM byte address `entry` up to its END."""
        prog = self.pcache.get(entry)
        if prog is not None:
            return prog
        if entry % isa.INSTR_BYTES:
            raise IllegalInstruction(f"program entry 0x{entry:x} is not {isa.INSTR_BYTES}-byte aligned", self.id, 0)
        prog = []
        addr = entry
        while True:
            if len(prog) >= MAX_PROGRAM or addr + isa.INSTR_BYTES > self.hbm.capacity:
                raise IllegalInstruction("program has no end instruction", self.id, len(prog))
            raw = self.hbm.read(addr, isa.INSTR_BYTES, count=False).tobytes()
            try:
                ins = decode(raw)
            except EncodingError as e:
                raw_hex = f"raw 0x{int.from_bytes(raw, 'little'):x}"
                raise IllegalInstruction(str(e), self.id, len(prog), raw_hex) from None
            prog.append(ins)
            addr += isa.INSTR_BYTES
            if ins.op.name == "end":
                break
        self.pcache.put(entry, entry, addr, prog, len(prog) * 64)
        return prog

    # ------------------------------------------------------------------ run
    def reset_counters(self):
        self.counters = fresh_counters()
        for m in (self.hbm, self.ddr):
            if m is not None:
                m.read_bytes[:] = 0
                m.write_bytes[:] = 0

    def snapshot(self) -> dict:
        c = self.counters
        out = {
            "instructions": dict(c["instructions"]),
            "ops": dict(c["ops"]),
            "macs": c["macs"],
            "syncs": c["syncs"],
            "ring_bytes_sent": c["ring_bytes_sent"],
            "ring_bytes_received": c["ring_bytes_received"],
            "vector_elems": c["vector_elems"],
            "hbm_read_bytes": self.hbm.read_bytes.tolist(),
            "hbm_write_bytes": self.hbm.write_bytes.tolist(),
        }
        if self.ddr is not None:
            out["ddr_read_bytes"] = int(self.ddr.read_bytes.sum())
            out["ddr_write_bytes"] = int(self.ddr.write_bytes.sum())
        return out

    def run(self, entry: int, args: dict, ring):
        """Generator: execute the program at `entry`; yields BLOCKED while waiting on the ring."""
        self.reset_counters()
        self.regs = arg_regs(int(args.get("ntok", 0)), int(args.get("pos", 0)), self.id, self.ncores)
        for i, v in enumerate(args.get("extra", ()), start=isa.FIRST_FREE_REG):
            self.regs[i] = int(v)
        self.done = False
        self.pc = 0
        prog = self.program(entry)
        self._ring = ring
        if self.precompiled and plan.AVAILABLE and self.on_retire is None and self.on_write is None:
            yield from plan.run(self, entry, prog)
            self.done = True
            return
        for pc, ins in enumerate(prog):
            self.pc, self.cur = pc, ins
            name = ins.op.name
            self.counters["instructions"][ins.op.unit] += 1
            self.counters["ops"][name] += 1
            try:
                if ins.op.unit == "net":
                    yield from getattr(self, "_x_" + name)(ins)
                else:
                    getattr(self, "_x_" + name)(ins)
            except MachineError as e:
                if e.pc is None:
                    raise type(e)(e.msg, self.id, pc, to_asm(ins)) from None
                raise
            if self.on_retire is not None:
                self.on_retire(self.id, pc, ins.op.code)
            if name == "end":
                break
        self.done = True

    # ------------------------------------------------------------------ operands
    def cnt(self, v: int) -> int:
        val = count(self.regs, v)
        if val < 0:
            raise IllegalInstruction(f"count register r{v & 0xF} holds {val}")
        return val

    def mem(self, space: int) -> Memory:
        if isa.SPACES[space] == "ddr":
            if self.ddr is None:
                raise IllegalInstruction(f"target {self.t.name} has no DDR")
            return self.ddr
        return self.hbm

    def _vcheck(self, addr, rows, cols, stride):
        if rows == 0 or cols == 0:
            return False
        if rows > 1 and stride < cols:
            raise IllegalInstruction(f"buffer row stride {stride} is less than the {cols} columns")
        last = addr + (rows - 1) * stride + cols
        if addr < 0 or last > self.vbuf.size:
            raise AddressError(f"buffer access [{addr}, {last}) is outside the {self.vbuf.size}-word buffer")
        return True

    def _view(self, addr, rows, cols, stride):
        """A (rows, cols) view of the buffer; bounds were checked by _vcheck."""
        if stride == cols or rows == 1:
            return self.vbuf[addr: addr + rows * cols].reshape(rows, cols)
        if addr + rows * stride <= self.vbuf.size:
            return self.vbuf[addr: addr + rows * stride].reshape(rows, stride)[:, :cols]
        return np.lib.stride_tricks.as_strided(self.vbuf[addr:], (rows, cols), (stride * 2, 2))

    def vread(self, addr, rows, cols, stride) -> np.ndarray:
        if not self._vcheck(addr, rows, cols, stride):
            return np.zeros((rows, cols), np.uint16)
        return self._view(addr, rows, cols, stride).copy()

    def vwrite(self, addr, data, stride):
        rows, cols = data.shape
        if self._vcheck(addr, rows, cols, stride):
            self._view(addr, rows, cols, stride)[...] = data
            if self.on_write is not None:
                words = addr + stride * np.arange(rows)[:, None] + np.arange(cols)[None, :]
                self.on_write(self.id, self.pc, "buf", words.ravel(), np.asarray(data, np.uint16).ravel())

    def weight_read_bytes(self, K, N, batch, mem) -> int:
        """Bytes each channel of `mem` reads for `batch` K x N weights: every tile is one beat on
        every channel."""
        W, L = self.t.matrix.width, self.t.matrix.lanes
        return batch * ktiles(K, W) * ntiles(N, L) * self.t.tile_bytes // mem.channels

    def weights(self, mem: Memory, cache: RangeCache, addr, K, N, wn, batch=1, wbs=0) -> np.ndarray:
        """The (batch, K, N) FP32 matrices of the tiles at `addr`, `wbs` tiles apart
        (cached until the range is written)."""
        t = self.t
        L, W = t.matrix.lanes, t.matrix.width
        KT, NT = ktiles(K, W), ntiles(N, L)
        if addr % t.tile_bytes:
            raise IllegalInstruction(f"weight address 0x{addr:x} is not aligned to the {t.tile_bytes}-byte tile")
        if NT > 1 and wn < KT:
            raise IllegalInstruction(f"n-tile stride wn={wn} is less than the {KT} k-tiles of k={K}")
        span = ((batch - 1) * wbs + (NT - 1) * wn + KT) * t.tile_bytes
        mem.read_bytes += self.weight_read_bytes(K, N, batch, mem)
        key = (addr, K, N, wn, batch, wbs)
        wf = cache.get(key)
        if wf is None:
            words = mem.read(addr, span, count=False).view(np.uint16)
            wf = nx.f32(unpack_batch(words, K, N, L, W, wn, batch, wbs))
            cache.put(key, addr, addr + span, wf, wf.nbytes)
        return wf

    # ------------------------------------------------------------------ control
    def _x_nop(self, ins):
        pass

    def _x_end(self, ins):
        pass

    def _x_barrier(self, ins):
        pass  # sequential execution: every unit is always drained

    def _x_seti(self, ins):
        apply_alu(ins, self.regs)

    _x_addi = _x_muli = _x_add = _x_seti

    # ------------------------------------------------------------------ DMA
    def _x_load(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        base = ins.m + self.regs[ins.mreg] * ins.mregs
        data = self.mem(ins.space).rows16(base, rows, cols, ins.ms)
        self.vwrite(ins.v, data, ins.vs)

    def _x_store(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        base = ins.m + self.regs[ins.mreg] * ins.mregs
        data = self.vread(ins.v, rows, cols, ins.vs)
        self.mem(ins.space).write_rows16(base, data, ins.ms)
        if self.on_write is not None and data.size:
            addrs = base + ins.ms * np.arange(rows)[:, None] + 2 * np.arange(cols)[None, :]
            self.on_write(self.id, self.pc, isa.SPACES[ins.space], addrs.ravel(), data.ravel())

    def _x_embed(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        if ins.ids % 4:
            raise IllegalInstruction(f"token id address 0x{ins.ids:x} is not 4-byte aligned")
        ids = self.hbm.read(ins.ids, 4 * rows).view("<i4")
        mem = self.mem(ins.space)
        out = np.empty((rows, cols), np.uint16)
        for i, tok in enumerate(ids.tolist()):
            if not 0 <= tok < ins.limit:
                raise AddressError(f"token id {tok} in row {i} is outside the {ins.limit}-row table")
            out[i] = mem.rows16(ins.m + tok * ins.ms, 1, cols, cols * 2)[0]
        self.vwrite(ins.v, out, ins.vs)

    def _x_kvstore(self, ins):
        t = self.t
        L, W = t.matrix.lanes, t.matrix.width
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        if rows == 0 or cols == 0:
            return
        if ins.m % t.tile_bytes:
            raise IllegalInstruction(f"cache address 0x{ins.m:x} is not aligned to the {t.tile_bytes}-byte tile")
        p = self.regs[ins.preg] + np.arange(rows)[:, None]
        c = np.arange(cols)[None, :]
        k, n = (p, c) if ins.tr else (c, p)
        k, n = np.broadcast_to(k, (rows, cols)), np.broadcast_to(n, (rows, cols))
        if int(k.max()) >= ins.wn * W:
            what = "token position" if ins.tr else "head dim"
            raise AddressError(f"{what} {int(k.max())} is past the cache's {ins.wn} k-tiles of {W}")
        off = tile_word_offsets(k, n, ins.wn, L, W) * 2
        addrs, vals = [], []
        for b in range(max(1, ins.batch)):
            addrs.append(ins.m + b * ins.mbs * t.tile_bytes + off)
            vals.append(self.vread(ins.v + b * ins.vbs, rows, cols, ins.vs))
        addrs, vals = np.concatenate([a.ravel() for a in addrs]), np.concatenate([v.ravel() for v in vals])
        self.hbm.scatter16(addrs, vals)
        if self.on_write is not None:
            self.on_write(self.id, self.pc, "hbm", addrs, vals)

    # ------------------------------------------------------------------ matrix unit
    def _mm(self, ins):
        t = self.t
        W = t.matrix.width
        B = max(1, ins.batch)
        M, K, N = self.cnt(ins.m), self.cnt(ins.k), self.cnt(ins.n)
        name = ins.op.name
        x0 = ins.x + self.regs[ins.xreg] * ins.xs
        xs = [nx.f32(self.vread(x0 + b * ins.xbs, M, K, ins.xs)) for b in range(B)]
        ws = self.weights(self.hbm, self.wcache, ins.w, K, N, ins.wn, B, ins.wbs)  # (B, K, N)
        bias = nx.f32(self.vread(ins.aux, 1, N, N))[0] if ins.bias else None  # in the dot products' sums
        acc = self.sums(xs, ws, bias)
        y = nx.rne16(nx.scale32(acc, ins.scale))  # (B, M, N)
        if name == "maskedmm":
            limit = self.regs[ins.mreg] + np.arange(M)[:, None]
            y = np.where(np.arange(N)[None, :] > limit, np.uint16(nx.F16_NINF), y)
        if ins.gelu:
            y = nx.gelu16(y)
        if name == "maskedmm":
            npad = -(-N // W) * W
            full = np.full((B, M, npad), nx.F16_NINF, np.uint16)
            full[:, :, :N] = y
            rmax = nx.chunked_max(y, t.matrix.lanes)  # (B, M)
        for b in range(B):
            if name == "maskedmm":
                self.vwrite(ins.out + b * ins.obs, full[b], ins.os)
                self.vwrite(ins.aux + b * ins.abs, rmax[b][:, None], ins.f["as"])
            else:
                self.vwrite(ins.out + b * ins.obs, y[b], ins.os)
            if name == "lmhead":
                res = np.zeros((M, isa.ARGMAX_WORDS), np.uint16)
                for i in range(M):
                    idx, val = nx.argmax16(y[b, i])
                    res[i] = (idx & 0xFFFF, idx >> 16, val)
                self.vwrite(ins.aux + b * ins.abs, res, max(isa.ARGMAX_WORDS, ins.f["as"]))
        self.counters["macs"] += B * M * K * N

    _x_conv1d = _x_maskedmm = _x_mm = _x_lmhead = _mm

    def sums(self, xs: list, ws: np.ndarray, bias=None) -> np.ndarray:
        """The FP32 sums of each FP32 x (M, K) times its w of ws (B, K, N), plus the FP32 bias row
        (N,) when given (the matrix unit's dot products: in exact mode the bias is in the
        accumulator, in fast mode an FP32 add after BLAS): (B, M, N)."""
        W = self.t.matrix.width
        if self.mode == "fast" and len(xs) > 1:  # one batched BLAS call for all heads
            return self.kernel(np.stack(xs), ws, W, bias)
        if len(xs) == 1:
            return self.kernel(xs[0], ws[0], W, bias)[None]
        return np.stack([self.kernel(x, w, W, bias) for x, w in zip(xs, ws)])

    # ------------------------------------------------------------------ vector unit
    def _operand_b(self, ins, rows, cols):
        mode = isa.BCAST[ins.bcast]
        if mode == "none":
            return self.vread(ins.b, rows, cols, ins.bs)
        if mode == "row":
            return self.vread(ins.b, 1, cols, cols)
        if mode == "col":
            return self.vread(ins.b, rows, 1, max(1, ins.bs))
        return None  # imm

    def _vec(self, ins):
        name = ins.op.name
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        a = self.vread(ins.a, rows, cols, ins.f["as"])
        VW = self.t.vector.width
        self.counters["vector_elems"] += rows * cols
        imm = np.array(ins.imm, np.uint32).view(np.float32)
        if name in BINARY:
            b = self._operand_b(ins, rows, cols)
            bf = imm if b is None else nx.f32(b)
            d = nx.rne16(BINARY[name](nx.f32(a), bf).astype(np.float32))
        elif name == "vmax":
            b = self._operand_b(ins, rows, cols)
            bb = nx.rne16(imm) if b is None else b
            d = nx.max16(a, np.broadcast_to(bb, a.shape))
        elif name == "vcopy":
            d = a
        elif name in UNARY_LUT:
            d = nx.lut(UNARY_LUT[name])[a]
        elif name in ("vsum", "vsumsq"):  # dot products of the row with 1.0 or itself, in tiles of VW
            s = nx.block_sum(a, VW, square=name == "vsumsq")
            s = s * imm if ins.imm else s
            self.vwrite(ins.d, nx.rne16(s.astype(np.float32))[:, None], max(1, ins.ds))
            return
        elif name == "vrmax":
            self.vwrite(ins.d, nx.chunked_max(a, VW)[:, None], max(1, ins.ds))
            return
        else:  # pragma: no cover - the tables and this dispatch are tested together
            raise IllegalInstruction(f"no vector semantics for {name}")
        self.vwrite(ins.d, d if d.shape == (rows, cols) else np.broadcast_to(d, (rows, cols)), ins.ds)

    _x_vadd = _x_vsub = _x_vmul = _x_vmax = _x_vcopy = _x_vexp = _x_vrecip = _x_vrsqrt = _vec
    _x_vsum = _x_vsumsq = _x_vrmax = _vec

    # ------------------------------------------------------------------ router
    def _x_send(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        data = self.vread(ins.v, rows, cols, ins.vs)
        self._ring.push(self, ("send", rows, cols), data)
        return
        yield  # a generator, like every router instruction

    def _x_recv(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        data = yield from self._ring.pop(self, ("send", rows, cols))
        self.vwrite(ins.v, data, ins.vs)

    def _x_allgather(self, ins):
        rows, cols = self.cnt(ins.rows), self.cnt(ins.cols)
        n, me = self.ncores, self.id
        mine = self.vread(ins.src, rows, cols, ins.ss)
        self._vcheck(ins.dst, rows, cols * n, ins.ds)
        self.vwrite(ins.dst + me * cols, mine, ins.ds)
        kind = ("allgather", rows, cols)
        cur = mine
        for step in range(1, n):
            self._ring.push(self, kind, cur)
            cur = yield from self._ring.pop(self, kind)
            src = (me - step) % n
            self.vwrite(ins.dst + src * cols, cur, ins.ds)
