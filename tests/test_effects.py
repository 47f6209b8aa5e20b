"""The table of instruction effects (dfx.arch.effects) against the functional simulator, one
instruction at a time: its external-memory bytes per channel, DDR bytes, MACs, vector
elements and ring traffic equal the simulator's counters, every word the simulator writes
lies in one of its write ranges, whose ends are written, and every buffer range the
simulator reads lies in one of its read ranges. Run on every opcode of the ISA (a
hand-written program, HBM and DDR) and on every instruction of compiled GPT-2 programs
(1, 2 and 3 cards, with and without DDR)."""

import dataclasses
import zlib

import numpy as np
import pytest

from dfx.arch import isa
from dfx.arch.effects import effects
from dfx.arch.encoding import encode, make
from dfx.arch.layout import pack_tiles
from dfx.arch.target import load_target
from dfx.compiler.driver import compile_model
from dfx.compiler.model import GPT2Config, GPT2Model
from dfx.compiler.presets import random_weights
from dfx.sim.appliance import Appliance

TINY = load_target("tiny")
# tiny with a DDR, so the DDR forms of load, store and embed run too
TINY_DDR = dataclasses.replace(TINY, ddr=dataclasses.replace(TINY.ddr, present=True, bytes=1 << 24, gbps=10.0,
                                                             port_bits=128))
COUNTERS = ("macs", "vector_elems", "ring_bytes_sent", "ring_bytes_received", "syncs")


def _flat(snap: dict) -> dict:
    out = {k: snap[k] for k in COUNTERS}
    out["hbm_read_bytes"] = np.array(snap["hbm_read_bytes"])
    out["hbm_write_bytes"] = np.array(snap["hbm_write_bytes"])
    out["ddr_read_bytes"] = snap.get("ddr_read_bytes", 0)
    out["ddr_write_bytes"] = snap.get("ddr_write_bytes", 0)
    return out


class Checker:
    """Hooks every core of an appliance; after each instruction, compares the counters it moved,
    the words it wrote and the buffer ranges it read with its effects."""

    def __init__(self, app: Appliance):
        self.app = app
        self.ops = set()
        self.prev, self.wrote, self.read = {}, {}, {}
        for c in app.cores:
            c.on_retire = self.retire
            c.on_write = self.write
            c.vread = self._vread(c, c.vread)

    def _vread(self, c, orig):
        def vread(addr, rows, cols, stride):
            if rows and cols:
                self.read.setdefault(c.id, []).append((addr, addr + (rows - 1) * stride + cols))
            return orig(addr, rows, cols, stride)
        return vread

    def run(self, entries, args):
        self.prev = {c.id: _flat(c.snapshot()) for c in self.app.cores}
        for c in self.app.cores:
            for k in self.prev[c.id]:
                self.prev[c.id][k] = self.prev[c.id][k] * 0
        return self.app.run(entries, args)

    def write(self, core, pc, space, addrs, values):
        self.wrote.setdefault(core, []).append((space, np.asarray(addrs)))

    def retire(self, cid, pc, code):
        c = self.app.cores[cid]
        ins = c.cur
        now = _flat(c.snapshot())
        before, self.prev[cid] = self.prev[cid], now
        ids = None
        if ins.op.name == "embed":
            rows = c.cnt(ins.rows)
            ids = c.hbm.read(ins.ids, 4 * rows, count=False).view("<i4")
        e = effects(ins, c.regs, c.t, c.ncores, ids)
        where = f"core {cid} pc {pc} {ins}"
        assert (now["hbm_read_bytes"] - before["hbm_read_bytes"]).tolist() == e.hbm_read.tolist(), where
        assert (now["hbm_write_bytes"] - before["hbm_write_bytes"]).tolist() == e.hbm_write.tolist(), where
        assert now["ddr_read_bytes"] - before["ddr_read_bytes"] == e.ddr_read, where
        assert now["ddr_write_bytes"] - before["ddr_write_bytes"] == e.ddr_write, where
        got = {k: now[k] - before[k] for k in COUNTERS}
        want = {"macs": e.macs, "vector_elems": e.vector_elems, "ring_bytes_sent": e.ring_sent,
                "ring_bytes_received": e.ring_received, "syncs": e.syncs}
        assert got == want, where
        wrote = {}
        for space, addrs in self.wrote.pop(cid, []):
            wrote[space] = np.concatenate([wrote.get(space, np.zeros(0, np.int64)), addrs])
        for space, addrs in wrote.items():
            step = 1 if space == "buf" else 2  # buffer words; memory byte addresses of FP16 words
            rngs = [(lo, hi) for s, lo, hi in e.writes if s == space]
            inside = np.zeros(addrs.size, bool)
            for lo, hi in rngs:
                inside |= (addrs >= lo) & (addrs + step <= hi)
            assert inside.all(), (where, space, rngs, addrs[~inside][:4])
        for space, lo, hi in e.writes:  # the hulls are tight: both ends are written
            got = set(wrote.get(space, np.zeros(0, np.int64)).tolist())
            assert lo in got and hi - (1 if space == "buf" else 2) in got, (where, space, lo, hi)
        for lo, hi in self.read.pop(cid, []):
            assert any(s == "buf" and a <= lo and hi <= b for s, a, b in e.reads), (where, (lo, hi), e.reads)
        self.ops.add(ins.op.name)


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# ------------------------------------------------------------------ every opcode, by hand
CODE, WBASE, DATA, IDS, OUT = 0, 1 << 16, 0x8000, 0x7000, 0x20000


def every_op_program(n):
    L, W = TINY.matrix.lanes, TINY.matrix.width
    e = make
    prog = [
        e("nop"), e("seti", rd="r5", imm=2), e("addi", rd="r6", rs="r5", imm=3), e("muli", rd="r7", rs="r6", imm=2),
        e("add", rd="r8", rs="r6", rt="r1"), e("barrier", units=15),
        # DMA, HBM and DDR, strided, with an index register and a register count
        e("load", rows=3, cols=20, v=0, vs=24, m=DATA + 6, ms=96, mreg="r5", mregs=64),
        e("load", space="ddr", rows="r1", cols=9, v=100, vs=9, m=0x100, ms=40),
        e("store", rows=2, cols=13, v=0, vs=24, m=OUT + 34, ms=100),
        e("store", space="ddr", rows=3, cols=7, v=3, vs=11, m=0x900, ms=14, mreg="r5", mregs=30),
        e("embed", rows=4, cols=16, v=300, vs=20, m=DATA, ms=32, ids=IDS, limit=40),
        e("embed", space="ddr", rows=2, cols=12, v=400, vs=12, m=0x200, ms=24, ids=IDS + 8, limit=40),
        e("kvstore", tr=0, batch=2, rows=3, cols=8, v=0, vs=16, vbs=8, m=WBASE, wn=1, mbs=4, preg="r5"),
        e("kvstore", tr=1, batch=2, rows=3, cols=8, v=0, vs=16, vbs=8, m=WBASE + 16 * TINY.tile_bytes,
          wn=2, mbs=4, preg="r6"),
        # MPU: every product, with bias, batches, a register row, scale and mask
        e("conv1d", gelu=1, bias=1, m=3, k=20, n=10, x=0, xs=24, w=WBASE, wn=3, out=1000, os=12, aux=5000),
        e("maskedmm", batch=2, m=2, k=8, n=6, x=0, xs=16, xbs=8, w=WBASE, wn=1, wbs=4, out=1200, os=16, obs=40,
          aux=1300, **{"as": 2}, abs=5, scale=0.5, mreg="r5"),
        e("mm", batch=2, m=2, k=16, n=4, x=0, xs=32, xbs=16, w=WBASE, wn=2, wbs=2, out=1400, os=8, obs=4),
        e("lmhead", m=1, k=8, n=10, x=0, xs=8, xreg="r5", w=WBASE, wn=1, out=1500, os=10, aux=1600, **{"as": 3}),
    ]
    for name in ("vadd", "vsub", "vmul", "vmax"):
        for bc in isa.BCAST:
            prog.append(e(name, bcast=bc, rows=3, cols=11, d=2000, ds=13, a=0, **{"as": 12}, b=100, bs=16, imm=0.75))
    for name in ("vcopy", "vexp", "vrecip", "vrsqrt"):
        prog.append(e(name, rows=2, cols=9, d=2100, ds=10, a=0, **{"as": 9}))
    for name in ("vsum", "vsumsq", "vrmax"):
        prog.append(e(name, rows="r1", cols=21, d=2200, ds=2, a=0, **{"as": 21}, imm=0.5 if name != "vrmax" else 0.0))
    prog += [e("allgather", rows=2, cols=4, src=0, ss=5, dst=2300, ds=4 * n + 1),
             e("send", rows=2, cols=3, v=0, vs=4), e("recv", rows=2, cols=3, v=2400, vs=5), e("end")]
    del L, W
    return prog


@pytest.mark.parametrize("n", [1, 2])
def test_every_opcode_moves_what_the_table_says(n):
    rng = _rng(f"every-op-{n}")
    app = Appliance(TINY_DDR, n, "exact")
    prog = every_op_program(n)
    code = b"".join(encode(i) for i in prog)
    L, W = TINY.matrix.lanes, TINY.matrix.width
    for c in app.cores:
        c.hbm.write(CODE, code, count=False)
        c.hbm.write(DATA, rng.integers(0, 0x3C00, 4096, dtype=np.uint16).tobytes(), count=False)
        c.hbm.write(IDS, np.array([3, 39, 0, 3], "<i4").tobytes(), count=False)
        c.hbm.write(WBASE, pack_tiles(rng.integers(0, 0x3800, (24, 12), dtype=np.uint16), L, W).tobytes(),
                    count=False)
        c.ddr.write(0, rng.integers(0, 0x3C00, 2048, dtype=np.uint16).tobytes(), count=False)
        c.vbuf[:6000] = rng.integers(0, 0x3C00, 6000, dtype=np.uint16)
    chk = Checker(app)
    chk.run(CODE, {"ntok": 3, "pos": 0})
    assert chk.ops == {op.name for op in isa.OPS}


# ------------------------------------------------------------------ compiled programs
def _compiled(target, fpgas, seed):
    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=96, n_positions=64, name="small")
    model = GPT2Model(cfg, random_weights(cfg, seed, 0.2, bias_std=0.1, ln_std=0.1))
    return compile_model("small", fpgas, None, target=target, max_seq=64, model=model, progress=False,
                         stop_after="manifest")


@pytest.mark.parametrize("target,fpgas", [("tiny", 1), ("tiny", 3), ("u280", 2)])
def test_every_instruction_of_compiled_programs_moves_what_the_table_says(target, fpgas):
    s = _compiled(target, fpgas, seed=fpgas)
    app = Appliance(s.target, fpgas, "exact")
    for j, core in enumerate(app.cores):
        core.hbm.write(0, s.images.hbm[j], count=False)
        if core.ddr is not None and s.images.ddr[j].size:
            core.ddr.write(0, s.images.ddr[j], count=False)
    chk = Checker(app)
    ids = [3, 17, 42, 5, 77]
    for phase, toks, pos in (("summarization", ids, 0), ("generation", [9], len(ids))):
        for j, core in enumerate(app.cores):
            core.hbm.write(s.plans[j].regions["io.ids"].addr, np.asarray(toks, "<i4").tobytes(), count=False)
        chk.run([s.manifest["cards"][j]["programs"][phase]["entry"] for j in range(fpgas)],
                {"ntok": len(toks), "pos": pos})
    emitted = {i.op.name for ph in s.programs.values() for prog in ph for i in prog}
    assert chk.ops == emitted
