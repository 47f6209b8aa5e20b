"""The functional simulator: every instruction against a plain numpy reference, exact vs fast,
and every machine error provoked once (each names the core, the pc and the instruction)."""

import zlib

import numpy as np
import pytest

from dfx.arch.encoding import encode, make
from dfx.arch.layout import pack_tiles
from dfx.arch.target import load_target
from dfx.errors import AddressError, IllegalInstruction, RingDeadlock, SyncMismatch
from dfx.sim import kernels
from dfx.sim import numerics as nx
from dfx.sim.appliance import Appliance

T = load_target("tiny")
L, W = T.matrix.lanes, T.matrix.width
CODE, WBASE = 0, 1 << 16


@pytest.fixture
def rng(request):
    """Each test its own generator, seeded by its name (independent of test order and selection)."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def f16(a):
    return np.asarray(a, np.float32).astype(np.float16).view(np.uint16)


def val(bits):
    return np.asarray(bits, np.uint16).view(np.float16).astype(np.float64)


def run(prog, ncores=1, setup=None, args=None, mode="exact"):
    ap = Appliance(T, ncores, mode)
    code = b"".join(encode(i) for i in prog + [make("end")])
    for c in ap.cores:
        c.hbm.write(CODE, code, count=False)
        if setup:
            setup(c)
    counters = ap.run(CODE, args or {"ntok": 1, "pos": 0})
    return ap, counters


def close(got_bits, ref, rel=2e-3, abs_=1e-3):
    got = val(got_bits)
    assert np.allclose(got, ref, rtol=rel, atol=abs_), np.abs(got - ref).max()


# ------------------------------------------------------------------ control
def test_registers_alu_barrier_nop():
    prog = [make("seti", rd="r5", imm=7), make("addi", rd="r6", rs="r5", imm=-10),
            make("muli", rd="r7", rs="r6", imm=3),
            make("add", rd="r8", rs="r7", rt="r1"), make("seti", rd="r9", imm=0x7FFFFFFF),
            make("addi", rd="r9", rs="r9", imm=1), make("barrier", units=15), make("nop")]
    ap, cnt = run(prog, args={"ntok": 4, "pos": 2})
    r = ap.cores[0].regs
    assert r[5:10] == [7, -3, -9, -5, -(1 << 31)]  # 32-bit wrap
    assert r[1:5] == [4, 2, 0, 1]  # the host's arguments: ntok, pos, core, ncores
    assert cnt[0]["instructions"]["ctrl"] == 9


# ------------------------------------------------------------------ data movement
def test_load_store_with_strides_and_index_register(rng):
    mem = f16(rng.standard_normal((6, 10)))
    base = 0x2000

    def setup(c):
        c.hbm.write(base, mem.tobytes())
    prog = [make("seti", rd="r5", imm=2),
            make("load", rows=3, cols=4, v=100, vs=8, m=base + 2, ms=20, mreg="r5", mregs=20),
            make("store", rows=3, cols=4, v=100, vs=8, m=0x8000, ms=8)]
    ap, cnt = run(prog, setup=setup)
    c = ap.cores[0]
    got = c.vbuf[100:100 + 24].reshape(3, 8)[:, :4]
    assert (got == mem[2:5, 1:5]).all()  # rows 2..4 (mreg r5 = 2 rows), columns 1..4
    back = c.hbm.read(0x8000, 24, count=False).view(np.uint16).reshape(3, 4)
    assert (back == mem[2:5, 1:5]).all()
    assert sum(cnt[0]["hbm_read_bytes"]) == 24 and sum(cnt[0]["hbm_write_bytes"]) == 24


def test_embed_gathers_rows_by_id(rng):
    table = f16(rng.standard_normal((50, 8)))
    ids = np.array([3, 49, 0, 3], "<i4")

    def setup(c):
        c.hbm.write(0x4000, table.tobytes())
        c.hbm.write(0x3000, ids.tobytes())
    ap, _ = run([make("embed", rows=4, cols=8, v=0, vs=8, m=0x4000, ms=16, ids=0x3000, limit=50)], setup=setup)
    assert (ap.cores[0].vbuf[:32].reshape(4, 8) == table[ids]).all()


@pytest.mark.parametrize("tr", [0, 1])
def test_kvstore_writes_the_tile_layout(tr, rng):
    rows, hd, heads, pos = 3, 8, 2, 5
    data = f16(rng.standard_normal((rows, heads * hd)))
    maxseq = 16
    wn = 1 if not tr else maxseq // W
    head_tiles = (maxseq // L) * 1 if not tr else (hd // L) * wn

    def setup(c):
        c.vbuf[: data.size] = data.ravel()
    prog = [make("seti", rd="r6", imm=pos),
            make("kvstore", tr=tr, batch=heads, rows=rows, cols=hd, v=0, vs=heads * hd, vbs=hd,
                 m=WBASE, wn=wn, mbs=head_tiles, preg="r6")]
    ap, _ = run(prog, setup=setup)
    hbm = ap.cores[0].hbm
    for b in range(heads):
        words = hbm.read(WBASE + b * head_tiles * T.tile_bytes, head_tiles * T.tile_bytes, count=False).view(np.uint16)
        # the reference: the cache as a plain matrix, packed with the layout's own packer
        if not tr:
            mat = np.zeros((hd, maxseq), np.uint16)  # K: k = head dim, n = token
            mat[:, pos:pos + rows] = data[:, b * hd:(b + 1) * hd].T
        else:
            mat = np.zeros((maxseq, hd), np.uint16)  # V: k = token, n = head dim
            mat[pos:pos + rows] = data[:, b * hd:(b + 1) * hd]
        assert (words == pack_tiles(mat, L, W, wn)).all()


# ------------------------------------------------------------------ matrix unit
def _mm_setup(x, w, bias=None, wn=None):
    tiles = pack_tiles(w, L, W, wn)

    def setup(c):
        c.vbuf[: x.size] = x.ravel()
        c.hbm.write(WBASE, tiles.tobytes())
        if bias is not None:
            c.vbuf[5000:5000 + bias.size] = bias
    return setup


def test_conv1d_bias_gelu_against_numpy(rng):
    M, K, N = 3, 20, 12
    x, w, b = f16(rng.standard_normal((M, K))), f16(rng.standard_normal((K, N)) * 0.3), f16(rng.standard_normal(N))
    prog = [make("conv1d", gelu=1, bias=1, m=M, k=K, n=N, x=0, xs=K, w=WBASE, wn=-(-K // W), out=1000, os=N, aux=5000)]
    ap, cnt = run(prog, setup=_mm_setup(x, w, b))
    y = val(x) @ val(w) + val(b)
    ref = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))
    got = ap.cores[0].vbuf[1000:1000 + M * N].reshape(M, N)
    close(got, ref, rel=5e-3, abs_=5e-3)
    assert (got == nx.gelu16(nx.rne16(nx.matmul_exact(x, w, W, b)))).all()  # the bias inside the sum
    assert cnt[0]["macs"] == M * K * N


def test_maskedmm_mask_scale_rowmax_and_padding(rng):
    M, K, N, pos = 2, 8, 6, 3  # rows see keys 0..pos+i
    x, w = f16(rng.standard_normal((M, K))), f16(rng.standard_normal((K, N)))
    prog = [make("seti", rd="r6", imm=pos),
            make("maskedmm", m=M, k=K, n=N, x=0, xs=K, w=WBASE, wn=1, out=1000, os=16, aux=900, **{"as": 1},
                 scale=0.5, mreg="r6")]
    ap, _ = run(prog, setup=_mm_setup(x, w))
    c = ap.cores[0]
    out = val(c.vbuf[1000:1000 + 32].reshape(M, 16))
    ref = (val(x) @ val(w)) * 0.5
    for i in range(M):
        j = np.arange(N)
        ok = j <= pos + i
        assert np.allclose(out[i, :N][ok], ref[i][ok], rtol=2e-3, atol=1e-3)
        assert np.isneginf(out[i, :N][~ok]).all() and np.isneginf(out[i, N:W]).all()
        assert val(c.vbuf[900 + i]) == out[i, :N].max()


def test_mm_batched_with_strides(rng):
    B, M, K, N = 2, 2, 16, 4
    x = f16(rng.standard_normal((M, B * K)))
    ws = [f16(rng.standard_normal((K, N))) for _ in range(B)]
    tiles = [pack_tiles(w, L, W) for w in ws]
    per = tiles[0].size * 2 // T.tile_bytes

    def setup(c):
        c.vbuf[: x.size] = x.ravel()
        c.hbm.write(WBASE, np.concatenate(tiles).tobytes())
    prog = [make("mm", batch=B, m=M, k=K, n=N, x=0, xs=B * K, xbs=K, w=WBASE, wn=K // W, wbs=per,
                 out=2000, os=B * N, obs=N)]
    ap, _ = run(prog, setup=setup)
    out = ap.cores[0].vbuf[2000:2000 + M * B * N].reshape(M, B * N)
    for b in range(B):
        close(out[:, b * N:(b + 1) * N], val(x[:, b * K:(b + 1) * K]) @ val(ws[b]))


def test_lmhead_argmax_on_a_register_row(rng):
    M, K, N = 4, 8, 10
    x, w = f16(rng.standard_normal((M, K))), f16(rng.standard_normal((K, N)))
    prog = [make("seti", rd="r7", imm=2),
            make("lmhead", m=1, k=K, n=N, x=0, xs=K, xreg="r7", w=WBASE, wn=1, out=1000, os=N, aux=1100, **{"as": 3})]
    ap, _ = run(prog, setup=_mm_setup(x, w))
    c = ap.cores[0]
    logits = val(c.vbuf[1000:1000 + N])
    close(c.vbuf[1000:1000 + N], val(x[2]) @ val(w))
    idx = int(c.vbuf[1100]) | int(c.vbuf[1101]) << 16
    assert idx == int(np.argmax(logits)) and val(c.vbuf[1102]) == logits.max()


# ------------------------------------------------------------------ vector unit
VEC = {"vadd": np.add, "vsub": np.subtract, "vmul": np.multiply, "vmax": np.maximum}


@pytest.mark.parametrize("name", sorted(VEC))
@pytest.mark.parametrize("bcast", ["none", "row", "col", "imm"])
def test_binary_vector_ops(name, bcast, rng):
    R, C = 3, 11
    a = f16(rng.standard_normal((R, C)))
    b = f16(rng.standard_normal((R, 16)))
    imm = 0.75

    def setup(c):
        c.vbuf[:R * C] = a.ravel()
        c.vbuf[100:100 + b.size] = b.ravel()
    prog = [make(name, bcast=bcast, rows=R, cols=C, d=500, ds=C, a=0, **{"as": C}, b=100, bs=16, imm=imm)]
    ap, _ = run(prog, setup=setup)
    bv = {"none": val(b)[:, :C], "row": val(b)[0, :C][None, :], "col": val(b.ravel()[::16][:R])[:, None],
          "imm": imm}[bcast]
    close(ap.cores[0].vbuf[500:500 + R * C].reshape(R, C), VEC[name](val(a), bv))


@pytest.mark.parametrize("name,ref", [("vexp", np.exp), ("vrecip", lambda v: 1 / v),
                                      ("vrsqrt", lambda v: 1 / np.sqrt(v)), ("vcopy", lambda v: v)])
def test_unary_vector_ops(name, ref, rng):
    a = f16(np.abs(rng.standard_normal((2, 9))) + 0.1)
    ap, _ = run([make(name, rows=2, cols=9, d=64, ds=9, a=0, **{"as": 9})],
                setup=lambda c: c.vbuf.__setitem__(slice(0, 18), a.ravel()))
    close(ap.cores[0].vbuf[64:82].reshape(2, 9), ref(val(a)))


@pytest.mark.parametrize("name", ["vsum", "vsumsq", "vrmax"])
def test_reductions(name, rng):
    R, C = 3, 21
    a = f16(rng.standard_normal((R, C)))
    scale = 0.5 if name != "vrmax" else 0.0
    ap, _ = run([make(name, rows=R, cols=C, d=200, ds=2, a=0, **{"as": C}, imm=scale)],
                setup=lambda c: c.vbuf.__setitem__(slice(0, R * C), a.ravel()))
    got = ap.cores[0].vbuf[200:200 + 2 * R:2]
    ref = {"vsum": val(a).sum(1) * 0.5, "vsumsq": (val(a) ** 2).sum(1) * 0.5, "vrmax": val(a).max(1)}[name]
    close(got, ref)


# ------------------------------------------------------------------ router
@pytest.mark.parametrize("n", [2, 3])
def test_allgather_and_send_recv(n):
    def setup(c):
        c.vbuf[:8] = f16(np.arange(8) + 10 * c.id)
    prog = [make("allgather", rows=2, cols=4, src=0, ss=4, dst=100, ds=4 * n),
            make("send", rows=1, cols=4, v=0, vs=4), make("recv", rows=1, cols=4, v=300, vs=4)]
    ap, cnt = run(prog, ncores=n, setup=setup)
    for c in ap.cores:
        full = val(c.vbuf[100:100 + 8 * n].reshape(2, 4 * n))
        for j in range(n):
            assert (full[:, 4 * j:4 * j + 4] == (np.arange(8) + 10 * j).reshape(2, 4)).all()
        assert (val(c.vbuf[300:304]) == np.arange(4) + 10 * ((c.id - 1) % n)).all()
    assert cnt[0]["ring_bytes_sent"] == (n - 1) * 16 + 8


# ------------------------------------------------------------------ exact vs fast
U32 = 2.0 ** -24  # unit roundoff of binary32


def gamma(n):
    return n * U32 / (1 - n * U32)


def half_ulp16(v):
    """Largest error of rne16 at binary32 value v: half an FP16 ulp, or |v| where it flushes."""
    a = np.abs(np.asarray(v, np.float64))
    return np.where(a >= 2.0 ** -14, np.exp2(np.floor(np.log2(np.maximum(a, 2.0 ** -14))) - 11), a)


def fast_exact_bound(xf, wf, width, a, b):
    """docs/numerics.md, "Exact and fast modes": |rne16(a) - rne16(b)| for the exact mode's sums a
    (tiles of T = width products truncated G bits below their largest, one rounding) and
    any-order FP32 sums b of the same exact products."""
    K = xf.shape[1]
    trunc = width * 2.0 ** -(nx.ALIGN_GUARD + 20)  # T 2^-(G+20): the truncation, relative to S
    S = np.abs(xf.astype(np.float64)) @ np.abs(wf.astype(np.float64))
    return (trunc * (1 + U32) + U32 + gamma(K - 1)) * S + half_ulp16(a) + half_ulp16(b)


@pytest.mark.parametrize("K,cancel", [(300, False), (3072, True)])
def test_exact_and_fast_agree_within_the_derived_bound(K, cancel, rng):
    M, N = 4, 40
    x = f16(rng.standard_normal((M, K)))
    w = rng.standard_normal((K, N)) * 0.1
    if cancel:  # every column nearly orthogonal to row 0: its sums cancel to ~1e-3 of sum |x w|
        x0 = val(x[0])
        w = w - np.outer(x0, x0 @ w) / (x0 @ x0)
    w = f16(w)
    prog = [make("conv1d", m=M, k=K, n=N, x=0, xs=K, w=WBASE, wn=-(-K // W), out=3000, os=N)]
    outs = {}
    for mode in ("exact", "fast"):
        ap, _ = run(prog, setup=_mm_setup(x, w), mode=mode)
        outs[mode] = ap.cores[0].vbuf[3000:3000 + M * N].reshape(M, N).copy()
    xf, wf = nx.f32(x), nx.f32(w)
    a, b = kernels.sums_exact(xf, wf, W), kernels.sums_fast(xf, wf, W)
    # exact mode is the hardware's arithmetic bit for bit (the numpy reference, not the C kernel)
    assert (outs["exact"] == nx.rne16(nx.matmul_exact(x, w, W))).all()
    diff = np.abs(val(outs["exact"]) - val(outs["fast"]))
    assert (diff <= fast_exact_bound(xf, wf, W, a, b)).all()
    if cancel:  # where sums cancel, "within one FP16 ulp of the result" does not hold
        ulp = np.exp2(np.floor(np.log2(np.maximum(np.abs(val(outs["exact"][0])), 2.0 ** -14))) - 10)
        assert (diff[0] / ulp).max() > 1


# ------------------------------------------------------------------ errors
def _raw(word_int):
    return word_int.to_bytes(64, "little")


def test_illegal_opcode_names_core_and_pc():
    ap = Appliance(T, 2, "exact")
    for c in ap.cores:
        c.hbm.write(0, encode(make("nop")) + _raw(0x3F) + encode(make("end")))
    with pytest.raises(IllegalInstruction, match=r"core 0, pc 1: illegal opcode 0x3f \[raw 0x3f\]"):
        ap.run(0, {})


def test_illegal_field_value_in_memory():
    word = int.from_bytes(encode(make("load")), "little") | (3 << 8)  # space = 3
    ap = Appliance(T, 1)
    ap.cores[0].hbm.write(0, _raw(word) + encode(make("end")))
    with pytest.raises(IllegalInstruction, match="pc 0: load: field space=3"):
        ap.run(0, {})


def test_buffer_address_out_of_range():
    with pytest.raises(AddressError, match=r"core 0, pc 0: buffer access .* outside the 1048576-word buffer "
                                           r"\[vadd rows=2 cols=8 d=0xffffff"):
        run([make("vadd", rows=2, cols=8, d=(1 << 24) - 1, ds=8, bs=8, **{"as": 8})])


def test_hbm_address_outside_the_memory():
    with pytest.raises(AddressError, match=r"pc 0: HBM access .* outside its .* \[load"):
        run([make("load", rows=1, cols=8, m=T.hbm_bytes - 4)])


def test_misaligned_weights_and_bad_token():
    with pytest.raises(IllegalInstruction, match="not aligned to the 64-byte tile"):
        run([make("mm", m=1, k=8, n=4, w=WBASE + 2, wn=1)])
    ids = np.array([7], "<i4")
    with pytest.raises(AddressError, match=r"token id 7 in row 0 is outside the 5-row table \[embed"):
        run([make("embed", rows=1, cols=4, m=0x4000, ms=8, ids=0x3000, limit=5)],
            setup=lambda c: c.hbm.write(0x3000, ids.tobytes()))


def test_ring_deadlock():
    with pytest.raises(RingDeadlock, match=r"core 0, pc 0: ring deadlock.*core 1 at pc 0.*\[recv rows=1 cols=4"):
        run([make("recv", rows=1, cols=4, v=0, vs=4)], ncores=2)


def test_mismatched_sync_sizes():
    with pytest.raises(SyncMismatch, match=r"expected send of 1x8 words from core 0, but core 0 sent send of 1x4"):
        run([make("send", rows=1, cols=4, v=0, vs=4), make("recv", rows=1, cols=8, v=0, vs=8)], ncores=2)


def test_peer_ended_and_message_never_received():
    ap = Appliance(T, 2)
    progs = [[make("end")], [make("recv", rows=1, cols=4, v=0, vs=4), make("end")]]
    for c, p in zip(ap.cores, progs):
        c.hbm.write(0, b"".join(encode(i) for i in p))
    with pytest.raises(SyncMismatch, match=r"core 1, pc 0: waits on the ring for core 0, which has ended"):
        ap.run(0, {})
    progs = [[make("send", rows=1, cols=4, v=0, vs=4), make("end")], [make("end")]]
    for c, p in zip(ap.cores, progs):
        c.hbm.write(0, b"".join(encode(i) for i in p))
    with pytest.raises(SyncMismatch, match=r"core 0, pc 0: send of 1x4 words sent at pc 0 was never received"):
        ap.run(0, {})


@pytest.mark.parametrize("rows,cols,stride", [(1, 37, 0), (1, 5, 2), (3, 4, 8), (3, 4, 6), (3, 4, 20), (2, 3, 0)])
def test_memory_rows16_reads_each_row_at_its_stride(rows, cols, stride, rng):
    """Memory.rows16 against a word-by-word read, for every stride form (0, overlapping rows,
    packed, spaced): a one-row load with stride 0 once read nothing."""
    from dfx.sim.memory import Memory

    m = Memory("HBM", 1 << 16, T.port_bytes, T.hbm.channels)
    m.write(0, rng.integers(0, 256, 4096, dtype=np.uint8), count=False)
    addr = 0x102
    got = m.rows16(addr, rows, cols, stride)
    words = m.buf.view(np.uint16)
    want = np.array([[words[(addr + i * stride) // 2 + c] for c in range(cols)] for i in range(rows)], np.uint16)
    assert got.tolist() == want.tolist()
