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
without a step here (control, store, embed, kvstore, the router) always run the reference
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
REDUCE = ("vsum", "vsumsq", "vrmax")
USES_B = ("vadd", "vsub", "vmul", "vmax")
LUT = {"vexp": "exp", "vrecip": "recip", "vrsqrt": "rsqrt"}
MM_KIND = {"conv1d": 0, "mm": 0, "maskedmm": 1, "lmhead": 2}  # the kinds of mm_out() in sim/_exact.c


def _tree_ok(width: int) -> bool:
    return 0 < width <= MAXV and width & (width - 1) == 0


def _count(raw: int):
    """A count field as (register or None, immediate): the value is regs[reg] or the immediate."""
    return (raw & 0xF, 0) if raw & isa.CNT_REG_FLAG else (None, raw)


class Plan:
    """The steps of one program on one core (cached with the decoded program: dropped when
    its memory is written)."""

    def __init__(self, core, prog: list):
        self.prog = prog
        self.steps = []
        for ins in prog:
            build = BUILDERS.get(ins.op.name)
            step = build(core, ins) if build is not None else None
            ring = ins.op.unit == "net"
            self.steps.append((ins.op.unit, ins.op.name, step or functools.partial(
                getattr(core, "_x_" + ins.op.name), ins), ring))


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
    pc = 0
    try:
        for pc, (unit, name, step, ring) in enumerate(steps):
            units[unit] += 1
            ops[name] += 1
            if ring:
                core.pc, core.cur = pc, prog[pc]
                yield from step()
            else:
                step()
    except MachineError as e:
        core.pc, core.cur = pc, prog[pc]
        if e.pc is None:
            raise type(e)(e.msg, core.id, pc, to_asm(prog[pc])) from None
        raise
    core.pc, core.cur = pc, prog[pc]


# ---------------------------------------------------------------------- vector unit
def _vec_step(core, ins):
    name = ins.op.name
    ref = functools.partial(core._vec, ins)
    vw = core.t.vector.width
    if not _tree_ok(vw):
        return ref
    rr, ri = _count(ins.rows)
    cr, ci = _count(ins.cols)
    lut = nx.lut(LUT[name]) if name in LUT else nx.ALL16
    a, as_, b, bs, d, ds = ins.a, ins.f["as"], ins.b, ins.bs, ins.d, ins.ds
    mode = isa.BCAST[ins.bcast]
    shapes: dict = {}

    def prepare(rows, cols):
        """vec()'s arguments for this shape, or None where the reference must run."""
        if rows <= 0 or cols <= 0:
            return None
        brs, bcs, use_imm = 0, 0, False
        try:
            core._vcheck(a, rows, cols, as_)
            if name in USES_B:
                if mode == "none":
                    core._vcheck(b, rows, cols, bs)
                    brs, bcs = bs, 1
                elif mode == "row":
                    core._vcheck(b, 1, cols, cols)
                    bcs = 1
                elif mode == "col":
                    brs = max(1, bs)
                    core._vcheck(b, rows, 1, brs)
                else:
                    use_imm = True
            drs = max(1, ds) if name in REDUCE else ds
            core._vcheck(d, rows, 1 if name in REDUCE else cols, drs)
        except MachineError:
            return None
        return (F32, lut, VEC_OP[name], rows, cols, a, as_, b, brs, bcs, use_imm, ins.imm, d, drs, vw)

    def step():
        regs = core.regs
        rows = ri if rr is None else regs[rr]
        cols = ci if cr is None else regs[cr]
        args = shapes.get((rows, cols))
        if args is None:
            args = shapes[rows, cols] = prepare(rows, cols) or False
        if not args:
            return ref()
        _c.vec(core.vbuf, *args)
        core.counters["vector_elems"] += rows * cols

    return step


# ---------------------------------------------------------------------- matrix unit
def _mm_step(core, ins):
    t = core.t
    W, lanes = t.matrix.width, t.matrix.lanes
    ref = functools.partial(core._mm, ins)
    if not _tree_ok(lanes):
        return ref
    kind = MM_KIND[ins.op.name]
    B = max(1, ins.batch)
    mr, mi = _count(ins.m)
    kr, ki = _count(ins.k)
    nr, ni = _count(ins.n)
    xs, xreg, xbs = ins.xs, ins.xreg, ins.xbs
    as_ = ins.f["as"]
    aux_stride = max(3, as_) if kind == 2 else as_
    tail = (ins.aux if ins.bias else -1, ins.scale, bool(ins.gelu))
    outs = (W, lanes, ins.out, ins.os, ins.obs, ins.aux, aux_stride, ins.abs)
    gelu = nx.lut("gelu")
    shapes: dict = {}

    def prepare(M, K, N, x0):
        """The x operands' addresses for this shape, or None where the reference must run."""
        if M <= 0 or K <= 0 or N <= 0:
            return None
        try:
            for bi in range(B):
                core._vcheck(x0 + bi * xbs, M, K, xs)
            if ins.bias:
                core._vcheck(ins.aux, 1, N, N)
            npad = -(-N // W) * W
            for bi in range(B):
                core._vcheck(ins.out + bi * ins.obs, M, npad if kind == 1 else N, ins.os)
                if kind:
                    core._vcheck(ins.aux + bi * ins.abs, M, 3 if kind == 2 else 1, aux_stride)
        except MachineError:
            return None
        return [x0 + bi * xbs for bi in range(B)]

    def step():
        regs = core.regs
        M = mi if mr is None else regs[mr]
        K = ki if kr is None else regs[kr]
        N = ni if nr is None else regs[nr]
        x0 = ins.x + regs[xreg] * xs
        key = (M, K, N, x0)
        xaddr = shapes.get(key)
        if xaddr is None:
            xaddr = shapes[key] = prepare(M, K, N, x0) or False
        if not xaddr:
            return ref()
        xf = [F32[core._view(x, M, K, xs)] for x in xaddr]
        ws = core.weights(core.hbm, core.wcache, ins.w, K, N, ins.wn, B, ins.wbs)
        acc = np.ascontiguousarray(core.sums(xf, ws))
        _c.mm_out(core.vbuf, F32, gelu, acc, kind, B, M, N, *tail, regs[ins.mreg] if kind == 1 else 0, *outs)
        core.counters["macs"] += B * M * K * N

    return step


BUILDERS = {**{name: _vec_step for name in VEC_OP}, **{name: _mm_step for name in MM_KIND}}
