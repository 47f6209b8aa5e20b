"""The precompiled interpreter: a core's program turned once into steps, one per instruction.

The reference interpreter (the Core._x_* methods of dfx.sim.core) reads an instruction's fields,
checks its operands and builds numpy temporaries every time it runs it; a generation step runs
the same few hundred instructions with the same shapes over and over. Here each instruction
becomes a closure with its fields read out once; its operand checks run once per shape (the
counts an instruction takes from registers change with the token count and position only); and
the vector unit and the matrix unit's output stage run in sim/_exact.c on the buffer in place.
Only ring instructions are generators, so a core runs on without yielding until it waits on
the ring.

A step that meets anything unusual (a check that fails, an empty shape) runs the reference
method instead, so every error, and whatever happened before it, is the reference's. Ops
without a step here (control, load, store, embed, send, recv) always run the reference
method. Core.run uses this interpreter unless Core.precompiled is False or a hook (on_retire,
on_write) is set; tests/test_plan.py runs both on every op and on whole 4-card generations
and compares every bit: buffers, memories, counters, errors.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from dfx.arch import isa
from dfx.arch.encoding import to_asm
from dfx.errors import MachineError
from dfx.sim import _exact as _c
from dfx.sim import numerics as nx

# an extension built from an older sim/_exact.c lacks the kernels: Core.run then keeps to the reference
AVAILABLE = hasattr(_c, "vec") and hasattr(_c, "mm_out")
if not AVAILABLE:
    warnings.warn("dfx.sim._exact was built from an older sim/_exact.c: rebuild it (pip install -e .); "
                  "until then the simulator runs its slower reference interpreter", stacklevel=2)
MAXV = 4096  # widest vector or lane tree sim/_exact.c handles (its MAXV); wider: the reference
F32 = nx._F32  # the FP16 -> FP32 table (subnormals flushed) every FP16 operand goes through
VEC_OP = {"vadd": 0, "vsub": 1, "vmul": 2, "vmax": 3, "vcopy": 4, "vexp": 5, "vrecip": 5, "vrsqrt": 5,
          "vsum": 6, "vsumsq": 7, "vrmax": 8}  # the enum of vec() in sim/_exact.c
LUT_INDEX = {"vexp": 0, "vrecip": 1, "vrsqrt": 2}  # which table of luts()
REDUCE = ("vsum", "vsumsq", "vrmax")
USES_B = ("vadd", "vsub", "vmul", "vmax")
MM_KIND = {"conv1d": 0, "mm": 0, "maskedmm": 1, "lmhead": 2}  # the kinds of mm_out() in sim/_exact.c


@functools.lru_cache(maxsize=None)
def luts() -> np.ndarray:
    """The vector unit's function tables end to end, as vec() in sim/_exact.c takes them."""
    return np.concatenate([nx.lut(name) for name in ("exp", "recip", "rsqrt")])


def _tree_ok(width: int) -> bool:
    return 0 < width <= MAXV and width & (width - 1) == 0


def _count(raw: int):
    """A count field as (register or None, immediate): the value is regs[reg] or the immediate."""
    return (raw & 0xF, 0) if raw & isa.CNT_REG_FLAG else (None, raw)


class Plan:
    """The steps of one program on one core (cached with the decoded program: dropped when
    its memory is written). steps[pc] = (unit, op name, step, ring, group): group is set on the
    first of two or more vector instructions in a row, which then run as one call of vec()."""

    def __init__(self, core, prog: list):
        self.prog = prog
        self.steps = []
        vecs = []  # per instruction: its _VecParts, or None for the other ops
        for ins in prog:
            parts = _VecParts(core, ins) if ins.op.name in VEC_OP and _tree_ok(core.t.vector.width) else None
            build = BUILDERS.get(ins.op.name)
            step = parts.step() if parts else build(core, ins) if build else None
            self.steps.append((ins.op.unit, ins.op.name, step or functools.partial(
                getattr(core, "_x_" + ins.op.name), ins), ins.op.unit == "net", None))
            vecs.append(parts)
        pc = 0
        while pc < len(prog):
            end = pc
            while end < len(prog) and vecs[end] is not None:
                end += 1
            if end - pc > 1:
                self.steps[pc] = self.steps[pc][:4] + (_Group(core, vecs[pc:end]),)
            pc = max(end, pc + 1)


def plan(core, entry: int, prog: list) -> Plan:
    key = ("plan", entry)
    p = core.pcache.get(key)
    if p is None or p.prog is not prog:
        p = Plan(core, prog)
        core.pcache.put(key, entry, entry + len(prog) * isa.INSTR_BYTES, p, len(prog) * 64)
    return p


def run(core, entry: int, prog: list):
    """Generator: run `prog` on `core` as Core.run does (which has set up registers and counters)."""
    steps = plan(core, entry, prog).steps
    c = core.counters
    units, ops = c["instructions"], c["ops"]
    vbuf, table = core.vbuf, luts()
    pc, n = 0, len(steps)
    try:
        while pc < n:
            unit, name, step, ring, group = steps[pc]
            if group is not None:
                ready = group.ready()
                if ready:  # every instruction of the run checked for its shapes: all at once
                    for u, op in group.names:
                        units[u] += 1
                        ops[op] += 1
                    _c.vec(vbuf, F32, table, ready[0])
                    c["vector_elems"] += ready[1]
                    pc += len(group.names)
                    continue
            units[unit] += 1
            ops[name] += 1
            if ring:
                core.pc, core.cur = pc, prog[pc]
                yield from step()
            else:
                step()
            pc += 1
    except MachineError as e:
        core.pc, core.cur = pc, prog[pc]
        if e.pc is None:
            raise type(e)(e.msg, core.id, pc, to_asm(prog[pc])) from None
        raise
    except BaseException:  # anything else (or the generator closed): pc names the instruction, as in Core.run
        core.pc, core.cur = pc, prog[pc]
        raise
    core.pc, core.cur = n - 1, prog[-1]


# ---------------------------------------------------------------------- vector unit
class _VecParts:
    """One vector instruction: the registers its counts read, and its row of vec() parameters
    for a shape (None where the reference must run: an empty shape or a failing check)."""

    def __init__(self, core, ins):
        self.core, self.ins = core, ins
        self.rows, self.cols = _count(ins.rows), _count(ins.cols)
        self.regs = {r for r, _ in (self.rows, self.cols) if r is not None}

    def shape(self, regs):
        (rr, ri), (cr, ci) = self.rows, self.cols
        return ri if rr is None else regs[rr], ci if cr is None else regs[cr]

    def params(self, rows, cols):
        core, ins = self.core, self.ins
        name = ins.op.name
        if rows <= 0 or cols <= 0 or (name in ("vsum", "vsumsq") and cols > nx.K_MAX):  # past K_MAX: its error
            return None
        brs, bcs, use_imm = 0, 0, 0
        try:
            core._vcheck(ins.a, rows, cols, ins.f["as"])
            if name in USES_B:
                mode = isa.BCAST[ins.bcast]
                if mode == "none":
                    core._vcheck(ins.b, rows, cols, ins.bs)
                    brs, bcs = ins.bs, 1
                elif mode == "row":
                    core._vcheck(ins.b, 1, cols, cols)
                    bcs = 1
                elif mode == "col":
                    brs = max(1, ins.bs)
                    core._vcheck(ins.b, rows, 1, brs)
                else:
                    use_imm = 1
            drs = max(1, ins.ds) if name in REDUCE else ins.ds
            core._vcheck(ins.d, rows, 1 if name in REDUCE else cols, drs)
        except MachineError:
            return None
        # the row of vec()'s parameter table (the P_* enum of sim/_exact.c)
        return (VEC_OP[name], LUT_INDEX.get(name, 0), rows, cols, ins.a, ins.f["as"], ins.b, brs, bcs, use_imm,
                ins.imm, ins.d, drs, core.t.vector.width)

    def step(self):
        """The step of this instruction on its own."""
        core, ref, shapes = self.core, functools.partial(self.core._vec, self.ins), {}
        table = luts()

        def step():
            rows, cols = self.shape(core.regs)
            got = shapes.get((rows, cols))
            if got is None:
                prm = self.params(rows, cols)
                got = shapes[rows, cols] = prm is not None and np.array([prm], np.int64)
            if got is False:
                return ref()
            _c.vec(core.vbuf, F32, table, got)
            core.counters["vector_elems"] += rows * cols

        return step


class _Group:
    """Vector instructions in a row: their parameter table per register values (or False where
    one of them must run on its own)."""

    def __init__(self, core, parts: list):
        self.names = [(p.ins.op.unit, p.ins.op.name) for p in parts]
        used = sorted(set().union(*(p.regs for p in parts)))
        tables: dict = {}

        def ready():
            regs = core.regs
            key = tuple([regs[r] for r in used])
            got = tables.get(key)
            if got is None:
                rows, elems = [], 0
                for p in parts:
                    r, c = p.shape(regs)
                    prm = p.params(r, c)
                    if prm is None:
                        got = False
                        break
                    rows.append(prm)
                    elems += r * c
                else:
                    got = (np.array(rows, np.int64), elems)
                tables[key] = got
            return got

        self.ready = ready


# ---------------------------------------------------------------------- matrix unit
def _mm_step(core, ins):
    t = core.t
    W, lanes = t.matrix.width, t.matrix.lanes
    ref = functools.partial(core._mm, ins)
    if not _tree_ok(lanes):
        return ref
    kind = MM_KIND[ins.op.name]
    if kind == 2 and isa.ARGMAX_WORDS != 3:  # mm_out writes the record as index low, index high, value
        return ref
    B = max(1, ins.batch)
    mr, mi = _count(ins.m)
    kr, ki = _count(ins.k)
    nr, ni = _count(ins.n)
    xs, xreg, xbs = ins.xs, ins.xreg, ins.xbs
    as_ = ins.f["as"]
    aux_stride = max(isa.ARGMAX_WORDS, as_) if kind == 2 else as_
    tail = (ins.scale, bool(ins.gelu))
    outs = (W, lanes, ins.out, ins.os, ins.obs, ins.aux, aux_stride, ins.abs)
    gelu = nx.lut("gelu")
    shapes: dict = {}

    def prepare(M, K, N, x0):
        """(the buffer, views of the x operands in it, the weight reads Core.weights counts, a view
        of the bias row or None) for this shape, or False where the reference must run."""
        if M <= 0 or K <= 0 or N <= 0:
            return False
        try:
            for bi in range(B):
                core._vcheck(x0 + bi * xbs, M, K, xs)
            if ins.bias:
                core._vcheck(ins.aux, 1, N, N)
            npad = -(-N // W) * W
            for bi in range(B):
                core._vcheck(ins.out + bi * ins.obs, M, npad if kind == 1 else N, ins.os)
                if kind:
                    core._vcheck(ins.aux + bi * ins.abs, M, isa.ARGMAX_WORDS if kind == 2 else 1, aux_stride)
        except MachineError:
            return False
        reads = core.weight_read_bytes(K, N, B, core.hbm)
        bias = core._view(ins.aux, 1, N, N) if ins.bias else None
        return core.vbuf, [core._view(x0 + bi * xbs, M, K, xs) for bi in range(B)], reads, bias

    def step():
        regs = core.regs
        M = mi if mr is None else regs[mr]
        K = ki if kr is None else regs[kr]
        N = ni if nr is None else regs[nr]
        x0 = ins.x + regs[xreg] * xs
        key = (M, K, N, x0)
        got = shapes.get(key)
        if got is None or got and got[0] is not core.vbuf:
            got = shapes[key] = prepare(M, K, N, x0)
        if not got:
            return ref()
        xf = [F32[x] for x in got[1]]
        # Core.weights' cache (its key): a matrix still there passed its checks when it was read;
        # a miss, or a key Core.weights no longer uses, goes through Core.weights itself
        ws = core.wcache.get((ins.w, K, N, ins.wn, B, ins.wbs))
        if ws is None:
            ws = core.weights(core.hbm, core.wcache, ins.w, K, N, ins.wn, B, ins.wbs)
        else:
            core.hbm.read_bytes += got[2]
        acc = np.ascontiguousarray(core.sums(xf, ws, None if got[3] is None else F32[got[3]][0]))
        _c.mm_out(got[0], F32, gelu, acc, kind, B, M, N, *tail, regs[ins.mreg] if kind == 1 else 0, *outs)
        core.counters["macs"] += B * M * K * N

    return step


# ---------------------------------------------------------------------- KV cache
def _kvstore_step(core, ins):
    """Core._x_kvstore with the tile layout's word offset split in two: the offset of element
    (k, n) is g(k) + h(n) (dfx.arch.layout.tile_word_offsets), so the columns' part is computed
    once per shape and only the rows' part (their token positions) per call."""
    t = core.t
    L, W, tb = t.matrix.lanes, t.matrix.width, t.tile_bytes
    ref = functools.partial(core._x_kvstore, ins)
    if ins.m % tb:
        return ref
    B, wn, tr, vs = max(1, ins.batch), ins.wn, ins.tr, ins.vs
    rr, ri = _count(ins.rows)
    cr, ci = _count(ins.cols)
    vaddr = [ins.v + b * ins.vbs for b in range(B)]
    base = np.array([ins.m + b * ins.mbs * tb for b in range(B)], np.int64)[:, None, None]

    def g(k):  # the k part of the word offset
        return (k // W) * (L * W) + k % W

    def h(n):  # the n part
        return (n // L) * wn * (L * W) + (n % L) * W

    shapes: dict = {}

    def prepare(rows, cols):
        """The byte addresses of the columns' part, (B, 1, cols), or False where the reference must run."""
        if rows <= 0 or cols <= 0 or (not tr and cols > wn * W):
            return False
        try:
            for v in vaddr:
                core._vcheck(v, rows, cols, vs)
        except MachineError:
            return False
        c = np.arange(cols, dtype=np.int64)
        return base + 2 * (h(c) if tr else g(c))[None, None, :]

    def step():
        regs = core.regs
        rows = ri if rr is None else regs[rr]
        cols = ci if cr is None else regs[cr]
        cached = shapes.get((rows, cols))
        if cached is None:
            cached = shapes[rows, cols] = prepare(rows, cols)
        p0 = regs[ins.preg]
        if cached is False or (tr and p0 + rows > wn * W):
            return ref()
        p = np.arange(p0, p0 + rows, dtype=np.int64)
        addrs = (cached + 2 * (g(p) if tr else h(p))[None, :, None]).ravel()
        vals = [core._view(v, rows, cols, vs).ravel() for v in vaddr]
        core.hbm.scatter16(addrs, vals[0] if B == 1 else np.concatenate(vals))

    return step


# ---------------------------------------------------------------------- router
def _allgather_step(core, ins):
    """Core._x_allgather with its checks and buffer views made once per shape."""
    ref = functools.partial(core._x_allgather, ins)
    rr, ri = _count(ins.rows)
    cr, ci = _count(ins.cols)
    n, me = core.ncores, core.id
    shapes: dict = {}

    def prepare(rows, cols):
        """(the buffer, the source view, the destination view of each core's columns), or False."""
        if rows <= 0 or cols <= 0:
            return False
        try:
            core._vcheck(ins.src, rows, cols, ins.ss)
            core._vcheck(ins.dst, rows, cols * n, ins.ds)
        except MachineError:
            return False
        return (core.vbuf, core._view(ins.src, rows, cols, ins.ss),
                [core._view(ins.dst + j * cols, rows, cols, ins.ds) for j in range(n)])

    def gather(rows, cols, src, dst):
        kind = ("allgather", rows, cols)
        ring = core._ring
        cur = src.copy()
        dst[me][...] = cur
        for step in range(1, n):
            ring.push(core, kind, cur)
            cur = yield from ring.pop(core, kind)
            dst[(me - step) % n][...] = cur

    def step():
        regs = core.regs
        rows = ri if rr is None else regs[rr]
        cols = ci if cr is None else regs[cr]
        got = shapes.get((rows, cols))
        if got is None or got and got[0] is not core.vbuf:
            got = shapes[rows, cols] = prepare(rows, cols)
        return gather(rows, cols, *got[1:]) if got else ref()

    return step


BUILDERS = {"allgather": _allgather_step, **{name: _mm_step for name in MM_KIND}, "kvstore": _kvstore_step}
