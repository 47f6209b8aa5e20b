"""The precompiled interpreter (dfx.sim.plan) equals the reference interpreter (Core._x_*) bit
for bit: every op, on buffers full of FP16 edge values (NaN with payloads, infinities, signed
zeros, subnormals, the largest finite value), both modes, counts from registers, every machine
error; and whole generations on a 4-card bundle (tokens, logits, memories, counters)."""

import zlib
from pathlib import Path

import numpy as np
import pytest

from dfx.arch import isa
from dfx.arch.encoding import encode, make
from dfx.arch.layout import pack_tiles
from dfx.arch.target import load_target
from dfx.compiler.driver import compile_model
from dfx.errors import MachineError
from dfx.host.runtime import Session
from dfx.sim import _exact
from dfx.sim import numerics as nx
from dfx.sim.appliance import Appliance

# the reference interpreter's numpy warns where edge values meet (inf - inf, 0 * inf): expected here
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

T = load_target("tiny")
L, W = T.matrix.lanes, T.matrix.width
CODE, WBASE = 0, 1 << 16
DEMO = Path(__file__).resolve().parents[1] / "models" / "demo-gpt2"
PROMPT = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]
EDGES = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7D01, 0xFE37, 0x0001, 0x83FF, 0x0400, 0x7BFF, 0xFBFF,
                  0x3C00, 0xBC00, 0x0200], np.uint16)


def words(rng, n, edge_share=0.1):
    """FP16 bits: mostly normal values of moderate size, with a share of edge values."""
    w = (rng.standard_normal(n) * 4).astype(np.float16).view(np.uint16)
    pick = rng.random(n) < edge_share
    w[pick] = rng.choice(EDGES, pick.sum())
    return w


def _fill(rng, ncores, edge_share):
    vb = words(rng, 1 << 14, edge_share)
    tiles = pack_tiles(words(rng, 48 * 40, edge_share * 0.2).reshape(48, 40), L, W)
    ids = np.array([3, 9, 0, 7], "<i4").tobytes()
    table = words(rng, 10 * 16, edge_share).tobytes()

    def setup(c):
        c.vbuf[: vb.size] = np.roll(vb, 37 * c.id)
        c.hbm.write(WBASE, tiles.tobytes(), count=False)
        c.hbm.write(0x3000, ids, count=False)
        c.hbm.write(0x4000, table, count=False)
    return setup


def _state(ap):
    out = []
    for c in ap.cores:
        out.append((c.vbuf.tobytes(), c.hbm.buf.tobytes(), c.regs, c.snapshot(), c.pc, c.done))
    return out


def run_both(prog, ncores=1, args=None, mode="exact", seed=0, edge_share=0.1):
    """Run `prog` with the precompiled and the reference interpreter; assert equal results.
    Returns the result (counters or the error's text)."""
    results = []
    for precompiled in (True, False):
        rng = np.random.default_rng(seed)
        ap = Appliance(T, ncores, mode)
        setup = _fill(rng, ncores, edge_share)
        code = b"".join(encode(i) for i in prog + [make("end")])
        for c in ap.cores:
            c.precompiled = precompiled
            c.hbm.write(CODE, code, count=False)
            setup(c)
        try:
            got = ("ok", ap.run(CODE, args or {"ntok": 3, "pos": 5}))
        except MachineError as e:
            got = (type(e).__name__, str(e), e.core, e.pc, e.asm)
        results.append((got, _state(ap)))
    (got_p, st_p), (got_r, st_r) = results
    assert got_p == got_r
    for core, (a, b) in enumerate(zip(st_p, st_r)):
        for what, x, y in zip(("buffer", "hbm", "registers", "counters", "pc", "done"), a, b):
            assert x == y, f"core {core}: {what} differs"
    return got_p


# ------------------------------------------------------------------ every op
VEC_BINARY = ["vadd", "vsub", "vmul", "vmax"]
VEC_OTHER = ["vcopy", "vexp", "vrecip", "vrsqrt", "vsum", "vsumsq", "vrmax"]


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("name,bcast", [(n, b) for n in VEC_BINARY for b in isa.BCAST] + [(n, "none") for n in VEC_OTHER])
def test_vector_ops(name, bcast, mode):
    seed = zlib.crc32(f"{name}{bcast}".encode())
    for rows, cols, imm in [(3, 11, 0.75), (1, 40, -3.5), (5, 8, 0.0), (2, 17, float("inf")), (4, 3, 1e-6)]:
        prog = [make(name, bcast=bcast, rows=rows, cols=cols, d=3000, ds=cols + 2, a=100, **{"as": cols + 1},
                     b=700, bs=cols + 3 if bcast != "col" else 2, imm=imm)]
        run_both(prog, mode=mode, seed=seed)
        # in place, and with counts from registers (r1 = 3 rows, r2 = 5 columns)
        run_both([make(name, bcast=bcast, rows="r1", cols="r2", d=100, ds=9, a=100, **{"as": 9}, b=100, bs=9,
                       imm=imm)], mode=mode, seed=seed + 1)


def test_vector_sums_over_several_chunks_and_large_values():
    for name in ("vsum", "vsumsq", "vrmax"):
        for cols in (1, 7, 8, 9, 64, 100):
            for imm in (0.0, 0.125, -2.0, 65504.0):
                for share in (0.0, 0.3):
                    run_both([make(name, rows=3, cols=cols, d=5000, ds=1, a=0, **{"as": 128}, imm=imm)],
                             seed=cols, edge_share=share)


def test_runs_of_vector_ops():
    """Vector instructions in a row run as one call: in place, chained, and falling back to one
    at a time where one of them fails its check (the error then comes at that one)."""
    chain = [make("vadd", rows="r1", cols=8, d=100, ds=8, a=100, **{"as": 8}, b=200, bs=8),
             make("vmul", bcast="col", rows="r1", cols=8, d=100, ds=8, a=100, **{"as": 8}, b=100, bs=8),
             make("vsum", rows="r1", cols=8, d=300, ds=1, a=100, **{"as": 8}, imm=0.5),
             make("vrecip", rows="r1", cols=1, d=300, ds=1, a=300, **{"as": 1}),
             make("vmax", bcast="row", rows="r1", cols=8, d=400, ds=8, a=100, **{"as": 8}, b=300),
             make("vexp", rows="r2", cols=8, d=100, ds=8, a=96, **{"as": 8})]
    for ntok in (1, 2, 3):
        run_both(chain, args={"ntok": ntok, "pos": 4})
        run_both([make("seti", rd="r1", imm=0)] + chain + [make("addi", rd="r1", rs="r1", imm=2)] + chain,
                 args={"ntok": ntok, "pos": 2})
    big = T.buffers.vbuf_words
    bad = make("vcopy", rows="r1", cols=8, d=big - 8, ds=8, a=0, **{"as": 8})
    for at in range(len(chain)):
        got = run_both(chain[:at] + [bad] + chain[at:], args={"ntok": 2, "pos": 1})
        assert got[0] == "AddressError" and got[3] == at
        assert run_both(chain[:at] + [bad] + chain[at:], args={"ntok": 1, "pos": 1})[0] == "ok"


def _mm(name, **kw):
    base = dict(m=3, k=20, n=12, x=100, xs=40, w=WBASE, wn=-(-48 // W), out=6000, os=40, aux=9000)
    base.update(kw)
    return make(name, **base)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_matrix_ops(mode):
    progs = [
        [_mm("conv1d")], [_mm("conv1d", bias=1)], [_mm("conv1d", bias=1, gelu=1, scale=0.125)],
        [_mm("conv1d", m=1, k=48, n=40, xs=48, os=40)],
        [_mm("mm", batch=2, xbs=20, wbs=4, obs=12, k=8, n=4, wn=1)],  # batched: one BLAS call in fast mode
        [_mm("mm", batch=2, xbs=20, wbs=4, obs=12, k=8, n=4, wn=1, bias=1, scale=0.25)],  # the bias in every sum
        [_mm("mm", batch=3, xbs=5, wbs=8, obs=13, k="r1", n="r2", m="r1", wn=1, xs=20, os=60)],
        [make("seti", rd="r6", imm=2), _mm("maskedmm", mreg="r6", scale=0.5, **{"as": 1}, abs=4)],
        [make("seti", rd="r6", imm=-1), _mm("maskedmm", mreg="r6", n=13, gelu=1, bias=1, **{"as": 2})],
        [make("seti", rd="r6", imm=1), _mm("maskedmm", batch=2, xbs=20, wbs=4, obs=200, abs=8, mreg="r6",
                                           **{"as": 1}, k=8, wn=1)],
        [make("seti", rd="r7", imm=2), _mm("lmhead", m=1, xreg="r7", **{"as": 3})],
        [_mm("lmhead", m=2, n=40, k=48, xs=48, os=40, **{"as": 5}, bias=1)],
        [_mm("conv1d", out=100, os=40)],  # writes over its own input
    ]
    for i, prog in enumerate(progs):
        for share in (0.0, 0.05):
            run_both(prog, mode=mode, seed=i, edge_share=share)
        run_both(prog + prog, mode=mode, seed=i)  # the second time from the weight cache
    # weights rewritten between two products: the cached matrix is dropped
    run_both([_mm("conv1d"), make("store", rows=2, cols=16, v=0, vs=16, m=WBASE + 64, ms=32), _mm("conv1d")],
             mode=mode)


def test_data_movement_control_and_router_ops():
    progs = [
        [make("seti", rd="r5", imm=7), make("addi", rd="r6", rs="r5", imm=-10), make("muli", rd="r7", rs="r6", imm=3),
         make("add", rd="r8", rs="r7", rt="r1"), make("barrier", units=15), make("nop")],
        [make("load", rows=3, cols=4, v=100, vs=8, m=WBASE + 2, ms=20, mreg="r1", mregs=20),
         make("store", rows=3, cols=4, v=100, vs=8, m=0x8000, ms=8)],
        [make("embed", rows=4, cols=8, v=0, vs=8, m=0x4000, ms=16, ids=0x3000, limit=10)],
        [make("kvstore", tr=1, batch=2, rows=3, cols=8, v=0, vs=16, vbs=8, m=WBASE, wn=2, mbs=4, preg="r2")],
        [make("kvstore", batch=2, rows="r1", cols=8, v=0, vs=16, vbs=8, m=WBASE, wn=1, mbs=4, preg="r2")],
        [make("vcopy", rows=0, cols=4, d=0, ds=4, **{"as": 4}), make("vrmax", rows=2, cols="r0", d=0, ds=1),
         make("conv1d", m="r0", k=8, n=4, x=0, xs=8, w=WBASE, wn=1, out=100, os=4)],  # zero counts
    ]
    for prog in progs:
        run_both(prog)
    ring = [make("allgather", rows=2, cols=4, src=0, ss=4, dst=100, ds=12),
            make("vadd", rows=2, cols=12, d=200, ds=12, a=100, **{"as": 12}, b=100, bs=12),
            make("send", rows=1, cols=4, v=200, vs=4), make("recv", rows=1, cols=4, v=300, vs=4)]
    run_both(ring, ncores=3)


def test_errors_are_the_references():
    """Each machine error, with what ran before it, from either interpreter."""
    big = T.buffers.vbuf_words
    cases = [
        ([make("vadd", rows=2, cols=8, d=big - 1, ds=8, bs=8, **{"as": 8})], 1),
        ([make("vadd", rows=2, cols=8, d=0, ds=8, b=big - 4, bs=8, **{"as": 8})], 1),
        ([make("vmul", bcast="col", rows=3, cols=8, d=0, ds=8, b=big - 2, bs=1, **{"as": 8})], 1),
        ([make("vsum", rows=3, cols=8, d=0, ds=4, a=0, **{"as": 4})], 1),  # row stride below the columns
        ([make("seti", rd="r9", imm=-2), make("vcopy", rows="r9", cols=4, d=0, ds=4, **{"as": 4})], 1),
        ([make("mm", m=1, k=8, n=4, w=WBASE + 2, wn=1)], 1),
        ([make("conv1d", m=1, k=20, n=12, x=0, xs=20, w=WBASE, wn=1, out=100, os=12)], 1),  # wn < k-tiles
        ([make("conv1d", bias=1, m=2, k=8, n=4, x=0, xs=8, w=WBASE, wn=1, out=100, os=4, aux=big - 2)], 1),
        ([make("maskedmm", m=2, k=8, n=4, x=0, xs=8, w=WBASE, wn=1, out=big - 12, os=8, aux=100)], 1),
        ([make("lmhead", m=2, k=8, n=4, x=0, xs=8, w=WBASE, wn=1, out=100, os=8, aux=big - 4, **{"as": 3})], 1),
        ([make("mm", m=1, k=8, n=8, x=0, xs=8, w=T.hbm_bytes - 64, wn=1, out=100, os=8)], 1),
        ([make("embed", rows=1, cols=4, m=0x4000, ms=8, ids=0x3000, limit=2)], 1),
        ([make("kvstore", tr=1, rows=4, cols=8, v=0, vs=8, m=WBASE, wn=1, preg="r2")], 1),  # position 5 + 3 >= 8
        ([make("kvstore", rows=3, cols=9, v=0, vs=9, m=WBASE, wn=1, preg="r2")], 1),  # head dim 8 >= 8
        ([make("kvstore", rows=1, cols=8, v=0, vs=8, m=WBASE + 2, wn=1, preg="r2")], 1),  # misaligned
        ([make("seti", rd="r6", imm=-1 << 20), make("kvstore", rows=2, cols=4, v=0, vs=8, m=WBASE, wn=1, preg="r6")], 1),
        ([make("kvstore", rows=2, cols=4, v=big - 4, vs=8, m=WBASE, wn=1, preg="r2")], 1),
        ([make("load", rows=1, cols=8, m=T.hbm_bytes - 4)], 1),
        ([make("recv", rows=1, cols=4, v=0, vs=4)], 2),
        ([make("send", rows=1, cols=4, v=0, vs=4), make("recv", rows=1, cols=8, v=0, vs=8)], 2),
        ([make("allgather", rows=1, cols="r3", src=0, ss=4, dst=100, ds=8)], 2),  # r3: the core id
        ([make("vadd", rows=1, cols=4, d=0, ds=4, **{"as": 4}), make("allgather", rows=1, cols=4, src=0, ss=4,
                                                                    dst=big - 6, ds=8)], 2),
    ]
    for prog, n in cases:
        got = run_both(prog, ncores=n)
        assert got[0] != "ok", prog


def test_rne16_kernel_equals_numerics():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint64).astype(np.uint32),
                        np.arange(0x38000000, 0x38800000, 7, dtype=np.uint32),  # around the flush threshold
                        np.arange(0x477FE000, 0x47800001, dtype=np.uint32),  # around the overflow to infinity
                        np.array([0x7F800001, 0xFFC00000, 0x7FFFFFFF, 0x80000000, 0], np.uint32)])
    x = np.concatenate([x, x | 0x80000000]).view(np.float32)
    out = np.empty(x.size, np.uint16)
    _exact.rne16_array(x, out)
    assert (out == nx.rne16(x)).all()


# ------------------------------------------------------------------ whole generations on 4 cards
@pytest.fixture(scope="module")
def bundle4(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-4") / "b"
    compile_model(str(DEMO), 4, out, target="u280", max_seq=128, progress=False)
    return out


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_generation_on_four_cards(bundle4, mode):
    runs = []
    for precompiled in (True, False):
        s = Session(bundle4, mode=mode)
        for d in s.devices:
            d.core.precompiled = precompiled
        steps, counters = [], []
        for kw in ({}, {"do_sample": True, "top_k": 0, "seed": 3}):
            for st in s.stream(PROMPT * 5, max_new_tokens=6, eos_token_id=None, keep_logits=True, **kw):
                steps.append((st.token, st.phase, st.logits.tobytes()))
                counters.append([d.counters() for d in s.devices])
        mem = [(d.core.hbm.buf.tobytes(), d.core.ddr.buf.tobytes(), d.core.vbuf.tobytes()) for d in s.devices]
        runs.append((steps, counters, mem))
    (sp, cp, mp), (sr, cr, mr) = runs
    assert [t for t, _, _ in sp] == [t for t, _, _ in sr]
    assert sp == sr
    assert cp == cr
    assert mp == mr
