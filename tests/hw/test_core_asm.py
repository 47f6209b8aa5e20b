"""Hand-written programs on the RTL core (hw/rtl/dfx_core_flat) against the exact simulator.

Every program runs from zeroed memory with the same HBM image on the `rtl` backend (hw/sim/dfx_tb.v
on Verilator: one testbench build, RTL_CORES cores, shared by the whole module) and on dfx.sim in
exact mode, both driven through the host's Device interface. The HBM bytes the program leaves must
be equal bit for bit; a program that faults must raise the same dfx.errors type on both, naming the
same core, pc and instruction (assembly). Sections:

* every instruction (control, DMA, matrix, vector, router);
* every error the core reports (the status codes of arch/kernel.py), and the ring faults the
  simulator's ring cannot have (the testbench breaks a link on purpose);
* ordering hazards that the scoreboard rule of arch/isa.py must keep sequential once the units
  run in parallel. In each program, barriers order everything but one pair of instructions (the
  second one touches what the long first one reaches last), and the test checks on the simulator
  that the pair in the other order leaves other bytes, so an overlap that broke the order would be
  seen. And barriers on their own.

Four tests run on Icarus too: a short program, a program that runs into the end of HBM (no END), and
the unaligned load/store programs on HBM and on the DDR.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from dfx import errors
from dfx.arch import isa, kernel
from dfx.arch.encoding import assemble, encode, encode_int, make, to_asm
from dfx.arch.layout import ktiles, ntiles, pack_tiles
from dfx.arch.target import load_target
from dfx.arch.hbm import deinterleave
from dfx.host import rtl
from dfx.host.hal import open_devices

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

T = load_target("tiny")
TD = load_target("tiny-ddr")  # tiny with a DDR (16 MB, 64-bit beats: half the HBM port)
L, W = T.matrix.lanes, T.matrix.width
RW = T.ring.words_per_cycle
VB = T.buffers.vbuf_words
WORD = 2  # bytes of an FP16 word
RTL = "verilator"
RTL_CORES = 2  # one-core programs leave core 1 idle
RING_TIMEOUT = 2000  # cycles without a ring word before a core reports a ring timeout
TIMEOUT_S = 120
# Flat HBM layout of every test, inside the testbench's smallest memory models (so every test
# uses the same build): program, inputs, weight tiles and KV caches, status record, outputs.
MEM = rtl.MIN_BEATS * T.port_bytes * T.hbm.channels
CODE, DATA, WBASE, OUT = 0, MEM // 8, MEM // 4, MEM // 2
STATUS = OUT - kernel.STATUS_BYTES
NEVER_WRITTEN = MEM - 0x100  # past every image a test loads
OUT_BYTES = 1024  # bytes read back from OUT unless a test says otherwise
# FP16 edge values: +-0, +-inf, NaN, subnormals (read as zero), largest and smallest normals, +-1
SPECIALS = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x8001, 0x7BFF, 0xFBFF, 0x0400, 0x3C00,
                     0xBC00], np.uint16)
NINF = 0xFC00


def need(sim: str) -> None:
    if shutil.which("iverilog" if sim == "icarus" else "verilator") is None:
        pytest.skip(f"{sim} is not installed")


@pytest.fixture(scope="module", autouse=True)
def testbench():
    """Build the shared testbench before the first test (cached in build/rtl across sessions)."""
    need(RTL)
    rtl.build_tb(T, RTL_CORES, RTL, ring_timeout=RING_TIMEOUT)


# ------------------------------------------------------------------ running a program on both
def f16(rng, shape, scale=1.0) -> np.ndarray:
    """Random FP16 bit patterns: normal values times scale."""
    return (rng.standard_normal(shape) * scale).astype(np.float16).view(np.uint16)


def code_bytes(prog: list) -> bytes:
    """Encode a program: Instr objects, or ints for raw words the encoder refuses to make."""
    return b"".join(w.to_bytes(isa.INSTR_BYTES, "little") if isinstance(w, int) else encode(w) for w in prog)


def image(prog: list, data: dict, end: bool = True, entry: int = CODE) -> np.ndarray:
    """A core's flat HBM image: the program at `entry` (END appended unless end=False) and
    data {address: bytes or array}."""
    code = code_bytes(prog + ([make("end")] if end else []))
    blobs = {**({entry: code} if code else {}),
             **{a: (d.tobytes() if isinstance(d, np.ndarray) else bytes(d)) for a, d in data.items()}}
    flat = np.zeros(max((a + len(b) for a, b in blobs.items()), default=0), np.uint8)
    for a, b in blobs.items():
        flat[a: a + len(b)] = np.frombuffer(b, np.uint8)
    return flat


def execute(backend: str, progs: list, data=None, read=(OUT, OUT_BYTES), args=None, end=True, entry=CODE,
            target=T, before_start=None, counters: list | None = None, ddr=None, read_ddr=None) -> list:
    """Run one program per core (`progs`) on `backend` ("sim": the exact simulator; "verilator" or
    "icarus": the rtl backend) from zeroed memory; return each core's HBM bytes at read = (address,
    bytes). data: {address: bytes or array} for every core, or a list of them, one per core; args:
    ntok and pos; before_start(group): called with the rtl devices' group before the start (to break
    a ring link); counters: a list that receives each core's status counters; ddr: {address: bytes
    or array} in every core's DDR (a target with one); read_ddr = (address, bytes): DDR bytes
    appended to what is returned. A faulting run raises its dfx.errors type."""
    n = len(progs)
    per_core = data if isinstance(data, list) else [data or {}] * n
    if backend == "sim":
        devs = open_devices("sim", n, target, mode="exact")
    else:  # Verilator: the one build of RTL_CORES cores; an Icarus build is quick, so exactly n
        cores = RTL_CORES if backend == RTL and target in (T, TD) else n
        devs = open_devices("rtl", cores, target, sim=backend, ring_timeout=RING_TIMEOUT)[:n]
    try:
        for j, d in enumerate(devs):
            img = image(progs[j], per_core[j], end, entry)
            for c, chan in enumerate(deinterleave(img, target.port_bytes, target.hbm.channels)):
                d.load_hbm_channel(c, chan)
            if ddr:
                d.load_ddr(image([], ddr, end=False))
            d.set_args(entry=entry, core=j, ncores=n, status=STATUS, **{"ntok": 1, "pos": 0, **(args or {})})
        if before_start is not None:
            before_start(devs[0].group)
        for d in devs:
            d.start()
        for d in devs:
            d.wait(TIMEOUT_S)
        if counters is not None:
            counters.extend(d.counters() for d in devs)
        return [d.read_mem("hbm", *read) + (d.read_mem("ddr", *read_ddr) if read_ddr else b"") for d in devs]
    finally:
        devs[0].close()


def _first_diff(got: bytes, want: bytes) -> str:
    g, w = np.frombuffer(got, np.uint16), np.frombuffer(want, np.uint16)
    i = int(np.flatnonzero(g != w)[0])
    return f"{int((g != w).sum())} FP16 words differ, the first at byte {2 * i}: rtl 0x{g[i]:04x}, sim 0x{w[i]:04x}"


def same_result(progs: list, backend=RTL, **kw) -> list:
    """Run on the simulator and on the RTL core (execute's arguments): the bytes read back must be
    equal, and differ from what the image held there (the program did write them). Returns them."""
    want = execute("sim", progs, **kw)
    got = execute(backend, progs, **kw)
    for j, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"core {j}: {_first_diff(g, w)}"
    data = kw.get("data")
    addr, nbytes = kw.get("read", (OUT, OUT_BYTES))
    for j, w in enumerate(want):
        before = np.zeros(addr + nbytes, np.uint8)
        img = image(progs[j], (data[j] if isinstance(data, list) else data) or {})[:addr + nbytes]
        before[:img.size] = img
        assert w[:nbytes] != before[addr:].tobytes(), f"core {j}: the program left the bytes read back unchanged"
    return want


def same_error(cls, progs: list, backend=RTL, **kw):
    """Run on the simulator and on the RTL core: both raise exactly `cls`, naming the same core, pc
    and instruction. Returns (the simulator's error, the RTL's error)."""
    with pytest.raises(cls) as want:
        execute("sim", progs, **kw)
    with pytest.raises(cls) as got:
        execute(backend, progs, **kw)
    w, g = want.value, got.value
    assert type(w) is cls and type(g) is cls
    assert (g.core, g.pc, g.asm) == (w.core, w.pc, w.asm), f"rtl: {g}\nsim: {w}"
    return w, g


# ================================================================== every instruction
def test_alu_ops_nop_barrier_through_register_counts_and_index():
    """seti/addi/muli/add (with 32-bit wrap) and the ntok argument, nop, barrier; the registers then
    give a load's rows and cols, and the index registers of a load and a store (negative)."""
    mat = f16(np.random.default_rng(1), (8, 8))
    got = same_result([assemble(f"""
        seti rd=r5 imm=3
        addi rd=r6 rs=r5 imm=2            ; 5
        muli rd=r7 rs=r6 imm=-3           ; -15
        add rd=r8 rs=r7 rt=r1             ; -15 + ntok = 3
        seti rd=r9 imm=0x7fffffff
        addi rd=r9 rs=r9 imm=1            ; wraps to -2^31
        add rd=r10 rs=r9 rt=r9            ; wraps to 0
        add rd=r10 rs=r10 rt=r6           ; 5
        nop
        barrier units=15
        load rows=r8 cols=r10 v=0 vs=8 m={DATA} ms=16 mreg=r5 mregs=16
        store rows=r8 cols=8 v=0 vs=8 m={OUT + 15 * 16} ms=16 mreg=r7 mregs=16
    """)], data={DATA: mat}, args={"ntok": 18})
    want = np.zeros((3, 8), np.uint16)
    want[:, :5] = mat[3:6, :5]
    assert np.frombuffer(got[0], np.uint16)[:want.size].tolist() == want.ravel().tolist()


@pytest.mark.parametrize("sim", [RTL, "icarus"])
def test_load_store_strides_index_and_unaligned_addresses(sim):
    """Rows at odd word addresses in HBM and in the buffer, strides that are not whole beats, an
    index register, a row over several beats and channels; the bytes around the stored rows (a
    random background) must survive the partial-beat writes. On Icarus too: there a store row
    whose first beat was the beat after the previous row's last kept that row's buffer offset,
    until dfx_dma's functions took every signal they read as an argument."""
    need(sim)
    rng = np.random.default_rng(2)
    src = f16(rng, (8, 24))
    background = rng.integers(0, 256, OUT_BYTES, dtype=np.uint8)
    got = same_result([assemble(f"""
        seti rd=r5 imm=2
        load rows=3 cols=11 v=5 vs=13 m={DATA + 3 * WORD} ms={24 * WORD} mreg=r5 mregs={24 * WORD}
        store rows=3 cols=11 v=5 vs=13 m={OUT + 5 * WORD} ms={19 * WORD}
        load rows=1 cols=37 v=101 vs=37 m={DATA + WORD}
        store rows=1 cols=37 v=101 vs=37 m={OUT + 512 + 7 * WORD}
    """)], backend=sim, data={DATA: src, OUT: background})
    want = background.copy().view(np.uint16)
    for i in range(3):
        want[5 + 19 * i: 5 + 19 * i + 11] = src[2 + i, 3:14]
    want[256 + 7: 256 + 7 + 37] = src.reshape(-1)[1:38]
    assert got[0] == want.tobytes()


@pytest.mark.parametrize("space", ["hbm", "ddr"])
def test_embed_gathers_table_rows_by_id(space):
    """Ids in HBM at a 4-byte (not beat) aligned address, repeated, and the table's last row; the
    table in HBM, or in the DDR (target tiny-ddr)."""
    rng = np.random.default_rng(3 if space == "hbm" else 5)
    rows, cols, stride = 9, 12, 16
    table = f16(rng, (rows, stride))
    ids = np.array([rows - 1, 0, 3, 3, int(rng.integers(rows))], "<i4")
    ids_at = DATA + 0x1000 + 4
    if space == "hbm":
        table_at, where = DATA, dict(data={DATA: table, ids_at: ids})
    else:
        table_at, where = D_DATA, dict(target=TD, data={ids_at: ids}, ddr={D_DATA: table})
    got = same_result([assemble(f"""
        embed space={space} rows={ids.size} cols={cols} v=7 vs=16 m={table_at} ms={stride * WORD} \
            ids={ids_at} limit={rows}
        store rows={ids.size} cols={cols} v=7 vs=16 m={OUT} ms={cols * WORD}
    """)], **where)
    assert np.frombuffer(got[0], np.uint16)[:ids.size * cols].tolist() == table[ids, :cols].ravel().tolist()


# ------------------------------------------------------------------ the DDR space (target tiny-ddr)
D_DATA, D_OUT = 0x100, 0x4000  # DDR byte addresses, inside the testbench's smallest DDR model (32 KB)


def ddr_load_store(target, backend=RTL):
    """Load and store on the DDR space (test_ddr_load_store_strides_index_and_unaligned_addresses)."""
    rng = np.random.default_rng(4)
    src = f16(rng, (8, 24))
    background = rng.integers(0, 256, OUT_BYTES, dtype=np.uint8)
    got = same_result([assemble(f"""
        seti rd=r5 imm=2
        seti rd=r6 imm=-2
        load space=ddr rows=3 cols=11 v=5 vs=13 m={D_DATA + 3 * WORD} ms={24 * WORD} mreg=r5 mregs={24 * WORD}
        store space=ddr rows=3 cols=11 v=5 vs=13 m={D_OUT + (5 + 2 * 19) * WORD} ms={19 * WORD} mreg=r6 \
            mregs={19 * WORD}
        load space=ddr rows=1 cols=37 v=101 vs=37 m={D_DATA + WORD}
        store space=ddr rows=1 cols=37 v=101 vs=37 m={D_OUT + 512 + 7 * WORD}
        load space=ddr rows=1 cols={OUT_BYTES // WORD} v=2000 m={D_OUT}
        store rows=1 cols={OUT_BYTES // WORD} v=2000 m={OUT}
    """)], backend=backend, target=target, ddr={D_DATA: src, D_OUT: background}, read_ddr=(D_OUT, OUT_BYTES))
    want = background.copy().view(np.uint16)
    for i in range(3):
        want[5 + 19 * i: 5 + 19 * i + 11] = src[2 + i, 3:14]
    want[256 + 7: 256 + 7 + 37] = src.reshape(-1)[1:38]
    assert got[0] == want.tobytes() * 2  # in HBM (loaded back) and in the DDR


@pytest.mark.parametrize("sim", [RTL, "icarus"])
def test_ddr_load_store_strides_index_and_unaligned_addresses(sim):
    """The DDR space: rows at odd word addresses, strides that are not whole beats, an index
    register on a load and (negative) on a store, a row over several beats; the DDR rows stored
    are loaded back (right after the stores: the DMA waits for their write responses) and stored
    to HBM. The DDR bytes around the stored rows (a random background) must survive the
    partial-beat writes; the DDR itself is compared too."""
    need(sim)
    ddr_load_store(TD, backend=sim)


def test_ddr_beats_as_wide_as_the_port():
    """The same with DDR beats as wide as the HBM port (as u280-dfx has them: the DDR port without
    its width adapter; a build of its own, one core)."""
    ddr_load_store(dataclasses.replace(TD, name="tiny-ddr-wide", ddr=dataclasses.replace(TD.ddr, port_bits=128)))


def test_ddr_and_hbm_are_separate_spaces():
    """The same numeric address X in HBM and in the DDR holds two different rows: each load reads
    its own space's row, a DDR store at X leaves the HBM row as it was and an HBM store at X
    leaves the DDR row."""
    rng = np.random.default_rng(6)
    x = DATA - 0x800  # free in HBM (past the program) and inside the DDR model (32 KB)
    hbm_row, ddr_row = f16(rng, (16,)), f16(rng, (16,))
    got = same_result([assemble(f"""
        load rows=1 cols=16 v=0 m={x}
        load space=ddr rows=1 cols=16 v=16 m={x}
        store space=ddr rows=1 cols=16 v=0 m={x}
        load rows=1 cols=16 v=32 m={x}
        store rows=1 cols=16 v=16 m={x}
        load space=ddr rows=1 cols=16 v=48 m={x}
        store rows=4 cols=16 v=0 vs=16 m={OUT} ms=32
    """)], target=TD, data={x: hbm_row}, ddr={x: ddr_row}, read=(OUT, 128), read_ddr=(x, 32))
    assert got[0] == b"".join(r.tobytes() for r in (hbm_row, ddr_row, hbm_row, hbm_row, hbm_row))


@pytest.mark.parametrize("prog", [
    pytest.param(assemble(f"load space=ddr rows=1 cols=8 v=0 vs=8 m={TD.ddr.bytes - 4} ms=16"), id="load-past-ddr"),
    pytest.param(assemble(f"store space=ddr rows=2 cols=8 v=0 vs=8 m={TD.ddr.bytes - 32} ms=32"), id="store-past-ddr"),
    pytest.param(assemble(f"load space=ddr rows=1 cols=8 v=0 vs=8 m={TD.ddr.bytes} ms=16"),
                 id="inside-hbm-past-ddr"),
    pytest.param(assemble(f"load space=ddr rows=1 cols=8 v=0 vs=8 m={D_DATA + 1} ms=16"), id="odd-ddr-address"),
    pytest.param(assemble(f"embed space=ddr rows=2 cols=8 v=0 vs=8 m={TD.ddr.bytes - 64} ms=32 ids={DATA} limit=4"),
                 id="embed-row-past-ddr"),
])
def test_address_error_in_the_ddr(prog):
    """Addresses past the DDR's 16 MB (though inside HBM's 1 GB) and an odd one; the embed's second
    id (2) names a row past the DDR."""
    same_error(errors.AddressError, [prog], target=TD, data={DATA: np.array([0, 2], "<i4")})


def test_raw_ddr_store_then_load_of_the_same_bytes():
    """A DDR store over old bytes (not beat aligned) and, next, a DDR load of them and their
    neighbours: the load sees the stored bytes."""
    rng = np.random.default_rng(7)
    at = D_DATA + 0x800 + 3 * WORD
    prog, swap = hazard(f"store space=ddr rows=2 cols=11 v=0 vs=11 m={at} ms=30",
                        f"load space=ddr rows=2 cols=15 v=100 vs=15 m={at - 2 * WORD} ms=30",
                        before=(f"load rows=2 cols=11 v=0 vs=11 m={DATA} ms=22",),
                        after=(f"store rows=2 cols=15 v=100 vs=15 m={OUT} ms=30",))
    same_result_in_order(prog, swap, target=TD, data={DATA: f16(rng, (2, 11))},
                         ddr={D_DATA + 0x800: f16(rng, (64,))})


def kv_geometry(tr: int, max_seq: int, head_dim: int) -> tuple[int, int]:
    """(wn, tiles per head) of a K cache (tr=0: k = head dim, n = token) or a V cache (tr=1)."""
    k_len, n_len = (max_seq, head_dim) if tr else (head_dim, max_seq)
    return ktiles(k_len, W), ntiles(n_len, L) * ktiles(k_len, W)


@pytest.mark.parametrize("tr", [0, 1])
def test_kvstore_appends_to_the_tile_layout(tr):
    """Two heads of three tokens at position 5 into caches with a random background (the words
    around the new ones must survive); the head dim, 12, is not a whole number of tiles."""
    rng = np.random.default_rng(10 + tr)
    heads, tokens, head_dim, max_seq, pos = 2, 3, 12, 16, 5
    wn, per_head = kv_geometry(tr, max_seq, head_dim)
    nbytes = heads * per_head * T.tile_bytes
    background = rng.integers(0, 256, nbytes, dtype=np.uint8)
    rows = f16(rng, (tokens, heads * head_dim))
    got = same_result([assemble(f"""
        load rows={tokens} cols={heads * head_dim} v=3 vs={heads * head_dim} m={DATA} ms={heads * head_dim * WORD}
        seti rd=r6 imm={pos}
        kvstore {"tr" if tr else ""} batch={heads} rows={tokens} cols={head_dim} v=3 vs={heads * head_dim} \
            vbs={head_dim} m={WBASE} wn={wn} mbs={per_head} preg=r6
    """)], data={DATA: rows, WBASE: background}, read=(WBASE, nbytes))
    changed = np.frombuffer(got[0], np.uint16) != background.view(np.uint16)
    assert changed.sum() <= rows.size


def mm_data(rng, M, K, N, wn=None, wscale=0.3):
    """x (M x K) and the tiles of W (K x N), their n-tiles wn tiles apart."""
    x, w = f16(rng, (M, K)), f16(rng, (K, N), wscale)
    return x, pack_tiles(w, L, W, wn)


@pytest.mark.parametrize("post", ["", "bias", "gelu", "scale=0.375", "bias gelu scale=-1.5"])
def test_conv1d(post):
    """x W (+ bias) (x scale) (GELU): K and N are not whole tiles, n-tiles are one tile further
    apart than needed, the row strides of x and y are wider than their rows."""
    rng = np.random.default_rng(20)
    M, K, N = 3, 20, 10
    wn = ktiles(K, W) + 1
    x, tiles = mm_data(rng, M, K, N, wn)
    same_result([assemble(f"""
        load rows={M} cols={K} v=0 vs=24 m={DATA} ms={K * WORD}
        load rows=1 cols={N} v=900 m={DATA + 0x800}
        conv1d {post} m={M} k={K} n={N} x=0 xs=24 w={WBASE} wn={wn} out=1000 os=12 aux=900
        store rows={M} cols=12 v=1000 vs=12 m={OUT} ms={12 * WORD}
    """)], data={DATA: x, DATA + 0x800: f16(rng, (N,)), WBASE: tiles})


def test_maskedmm_mask_register_scale_padding_and_row_max():
    """Q K^T: column j of row i is -inf past r6 + i, rows are padded with -inf to a whole W, and
    the row max goes to aux (stride 2); three n-tiles, two k-tiles."""
    rng = np.random.default_rng(21)
    M, K, N, pos = 3, 16, 11, 4
    npad = -(-N // W) * W
    x, tiles = mm_data(rng, M, K, N)
    got = same_result([assemble(f"""
        load rows={M} cols={K} v=0 vs={K} m={DATA} ms={K * WORD}
        seti rd=r6 imm={pos}
        maskedmm m={M} k={K} n={N} x=0 xs={K} w={WBASE} wn={ktiles(K, W)} out=1000 os={npad} aux=800 as=2 \
            scale=0.25 mreg=r6
        store rows={M} cols={npad} v=1000 vs={npad} m={OUT} ms={npad * WORD}
        store rows={M} cols=1 v=800 vs=2 m={OUT + 512} ms={WORD}
    """)], data={DATA: x, WBASE: tiles})
    out = np.frombuffer(got[0], np.uint16)[:M * npad].reshape(M, npad)
    assert (out[0, pos + 1:] == NINF).all() and (out[M - 1, :pos + M] != NINF).all()


def test_mm_batched_with_strides():
    """Two heads: the columns of x and of y side by side (batch strides), the weights of the second
    head wbs tiles after the first's (one more than they take)."""
    rng = np.random.default_rng(22)
    B, M, K, N = 2, 2, 16, 5
    wn = ktiles(K, W)
    per = ntiles(N, L) * wn + 1
    tiles = np.zeros((B, per * T.tile_bytes // WORD), np.uint16)
    for b in range(B):
        t = mm_data(rng, 0, K, N)[1]
        tiles[b, :t.size] = t
    same_result([assemble(f"""
        load rows={M} cols={B * K} v=0 vs={B * K} m={DATA} ms={B * K * WORD}
        mm batch={B} m={M} k={K} n={N} x=0 xs={B * K} xbs={K} w={WBASE} wn={wn} wbs={per} out=1000 \
            os={B * N} obs={N}
        store rows={M} cols={B * N} v=1000 vs={B * N} m={OUT} ms={B * N * WORD}
    """)], data={DATA: f16(rng, (M, B * K)), WBASE: tiles})


def test_lmhead_logits_and_argmax_record():
    """Rows r7.. of x; in the first row two columns of equal weights tie for the maximum (the first
    index must win); the argmax records (index low, high, value) are 4 words apart."""
    rng = np.random.default_rng(23)
    M, K, N, tie = 2, 12, 10, (2, 6)
    x = f16(rng, (M + 1, K))
    x[1] = np.abs(rng.standard_normal(K)).astype(np.float16).view(np.uint16)  # a positive row
    w = f16(rng, (K, N), 0.3)
    w[:, tie[0]] = w[:, tie[1]] = (np.abs(rng.standard_normal(K)) + 1).astype(np.float16).view(np.uint16)
    wn = ktiles(K, W)
    got = same_result([assemble(f"""
        load rows={M + 1} cols={K} v=0 vs={K} m={DATA} ms={K * WORD}
        seti rd=r7 imm=1
        lmhead m={M} k={K} n={N} x=0 xs={K} xreg=r7 w={WBASE} wn={wn} out=1000 os={N} aux=900 as=4
        store rows={M} cols={N} v=1000 vs={N} m={OUT} ms={N * WORD}
        store rows={M} cols=4 v=900 vs=4 m={OUT + 512} ms={4 * WORD}
    """)], data={DATA: x, WBASE: pack_tiles(w, L, W, wn)})
    records = np.frombuffer(got[0], np.uint16)[256:256 + 4 * M].reshape(M, 4)
    assert records[0, 0] == tie[0]


# ------------------------------------------------------------------ vector unit
VR, VC = 3, 11  # rows, cols: a row is one whole and one partial chunk of the VPU's width


def vec_inputs(rng, scale=1.0):
    """a and b (VR x 16 words), random, with the FP16 edge values in a row of each."""
    a, b = f16(rng, (VR, 16), scale), f16(rng, (VR, 16))
    a[0, :VC] = SPECIALS[:VC]
    b[1, :VC] = SPECIALS[1:VC + 1]
    return a, b


def vec_run(op_line: str, a, b, out_cols=VC):
    """Load a (buffer 0, row stride 13) and b (buffer 100, stride 16), run op_line, store d
    (buffer 500, stride 12): VR rows of out_cols words."""
    return same_result([assemble(f"""
        load rows={VR} cols={VC} v=0 vs=13 m={DATA} ms=32
        load rows={VR} cols=16 v=100 vs=16 m={DATA + 0x400} ms=32
        {op_line}
        store rows={VR} cols={out_cols} v=500 vs=12 m={OUT} ms={out_cols * WORD}
    """)], data={DATA: a, DATA + 0x400: b})


@pytest.mark.parametrize("bcast", isa.BCAST)
@pytest.mark.parametrize("name", ["vadd", "vsub", "vmul", "vmax"])
def test_vector_binary(name, bcast):
    """b as a matrix, one row, one value per row (stride 16) or imm (0.1 is not an FP16 value)."""
    a, b = vec_inputs(np.random.default_rng(30))
    vec_run(f"{name} bcast={bcast} rows={VR} cols={VC} d=500 ds=12 a=0 as=13 b=100 bs=16 imm=0.1", a, b)


@pytest.mark.parametrize("name,scale", [("vcopy", 1.0), ("vexp", 4.0), ("vrecip", 1.0), ("vrsqrt", 1.0)])
def test_vector_unary(name, scale):
    a, b = vec_inputs(np.random.default_rng(31), scale)
    vec_run(f"{name} rows={VR} cols={VC} d=500 ds=12 a=0 as=13", a, b)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf + -inf in a sum
@pytest.mark.parametrize("name,imm", [("vsum", 0), ("vsum", 0.3), ("vsumsq", 0), ("vsumsq", 0.3), ("vrmax", 0)])
def test_vector_reduction(name, imm):
    """One result per row at d + i*ds (ds = 3); imm scales a sum (0: none)."""
    a, _b = vec_inputs(np.random.default_rng(32))
    a[2, :5] = SPECIALS[[0, 1, 5, 6, 0]]  # a row whose first chunk holds only zeros and subnormals
    vec_run(f"{name} rows={VR} cols={VC} d=500 ds=3 a=0 as=13 imm={imm}", a, a, out_cols=3)


# ------------------------------------------------------------------ router
# tiny with a ring word of 6 FP16 words, fewer than a buffer access (8): u280's ring (30 words, one
# 512-bit link beat) is narrower than its buffer access (64 words) too, which tiny's 8 and 8 never were
TRW6 = dataclasses.replace(T, name="tiny-rw6", ring=dataclasses.replace(T.ring, words_per_cycle=6))


@pytest.mark.parametrize("target", [T, TRW6], ids=["tiny", "ring-narrower-than-the-buffer"])
def test_send_recv_allgather_on_two_cores(target):
    """Each core sends its rows to the next core and receives the previous core's, then all-gathers
    its slice; a row of 11 words takes two ring words (the second padded). Each core stores at an
    offset indexed by its id (r3)."""
    rng = np.random.default_rng(40)
    R, C = 2, 11
    slices = [f16(rng, (R, C)) for _ in range(2)]
    got = same_result([assemble(f"""
        load rows={R} cols={C} v=0 vs={C} m={DATA} ms={C * WORD}
        send rows={R} cols={C} v=0 vs={C}
        recv rows={R} cols={C} v=100 vs=13
        allgather rows={R} cols={C} src=0 ss={C} dst=200 ds=24
        store rows={R} cols=13 v=100 vs=13 m={OUT} ms={13 * WORD} mreg=r3 mregs=256
        store rows={R} cols=24 v=200 vs=24 m={OUT + 64} ms={24 * WORD} mreg=r3 mregs=256
    """)] * 2, data=[{DATA: s} for s in slices], target=target)
    for j in range(2):
        out = np.frombuffer(got[j], np.uint16)[128 * j:]
        assert (out[:R * 13].reshape(R, 13)[:, :C] == slices[1 - j]).all()
        assert (out[32: 32 + R * 24].reshape(R, 24)[:, :2 * C] == np.hstack(slices)).all()


# ================================================================== throughput
MPU_SHAPE = (4, 128, 256)  # M x K x N: 4 rows of x, 16 k-tiles, 64 n-tiles; the weights fill WBASE..OUT


def mpu_program(M: int, K: int, N: int) -> tuple[list, dict]:
    """A conv1d of random M x K by K x N between a load and a store: (program, HBM data)."""
    rng = np.random.default_rng(30)
    x, tiles = mm_data(rng, M, K, N)
    assert WBASE + tiles.nbytes <= OUT
    prog = assemble(f"""
        load rows={M} cols={K} v=0 vs={K} m={DATA} ms={K * WORD}
        conv1d m={M} k={K} n={N} x=0 xs={K} w={WBASE} wn={ktiles(K, W)} out=4096 os={N}
        store rows={M} cols={N} v=4096 vs={N} m={OUT} ms={N * WORD}
    """)
    return prog, {DATA: x, WBASE: tiles}


def mpu_run(M: int, K: int, N: int, backend: str = RTL) -> tuple[dict, bytes]:
    """mpu_program on core 0 (the rtl backend's memory never stalls unless asked: full rate, with
    the target's HBM latency): (core 0's status counters, the product read back from HBM)."""
    prog, data = mpu_program(M, K, N)
    counters: list = []
    out = execute(backend, [prog], data=data, read=(OUT, M * N * WORD), counters=counters)
    return counters[0], out[0]


def test_mpu_takes_one_weight_tile_per_cycle_at_full_rate_memory():
    """A conv1d of 4 x 128 x 256 (4,096 weight tiles of L x W) on the tiny core: the MPU is busy
    (running the instruction: setup, checks, the tiles, the pipeline drain) for at most 1/0.95 cycles
    per tile, and its result is the simulator's. scripts/bench_rtl.py prints the figure."""
    M, K, N = MPU_SHAPE
    counters, got = mpu_run(M, K, N)
    _, want = mpu_run(M, K, N, backend="sim")
    assert got == want, _first_diff(got, want)
    n_tiles = M * ktiles(K, W) * ntiles(N, L)
    busy = counters["busy_mpu"]
    assert n_tiles / busy >= 0.95, f"{n_tiles} tiles in {busy} MPU-busy cycles: {n_tiles / busy:.3f} per cycle"


# ================================================================== every error the core reports
UNUSED_OPCODE = min(set(range(1 << isa.OPCODE_BITS)) - set(isa.BY_CODE))
LOAD8 = make("load", rows=1, cols=8, v=0, vs=8, m=DATA, ms=16)
VCOPY8 = make("vcopy", rows=1, cols=8, d=0, ds=8, a=8, **{"as": 8})


def with_field(ins, field: str, value: int) -> int:
    """The word of `ins` with one field's bits replaced by `value`, unchecked."""
    fld, pos = next((f, p) for f, p in isa.LAYOUTS[ins.op.fmt] if f.name == field)
    return encode_int(ins) & ~(((1 << fld.width) - 1) << pos) | value << pos


def past_the_fields(ins) -> int:
    """The word of `ins` with the first reserved bit after its format's fields set."""
    f, pos = isa.LAYOUTS[ins.op.fmt][-1]
    return encode_int(ins) | 1 << (pos + f.width)


@pytest.mark.parametrize("prog", [
    pytest.param([make("nop"), UNUSED_OPCODE], id="unused-opcode"),
    pytest.param([make("nop"), encode_int(make("nop")) | 1 << isa.OPCODE_BITS], id="reserved-bit-7:6"),
    pytest.param([past_the_fields(LOAD8)], id="reserved-bit-past-the-fields"),
    pytest.param([with_field(LOAD8, "space", len(isa.SPACES))], id="enum-out-of-range"),
    pytest.param([with_field(VCOPY8, "rows", isa.CNT_REG_FLAG | 1 << 4 | 1)], id="count-register-stray-bits"),
    *(pytest.param([with_field(make(op, rd="r1"), "rd", 0)], id=f"{op}-rd-r0") for op in ("seti", "addi", "muli",
                                                                                          "add")),
    pytest.param(assemble("seti rd=r5 imm=-1\nvcopy rows=r5 cols=8 d=0 ds=8 a=8 as=8"), id="negative-count"),
    pytest.param(assemble("vcopy rows=2 cols=8 d=0 ds=8 a=64 as=4"), id="buffer-stride-below-cols"),
    pytest.param([make("load", space="ddr", rows=1, cols=8, v=0, vs=8)], id="ddr-on-a-target-without"),
    pytest.param(assemble(f"embed space=ddr rows=1 cols=8 v=0 vs=8 m=0 ms=16 ids={DATA} limit=4"),
                 id="embed-ddr-on-a-target-without"),
    pytest.param(assemble(f"mm m=1 k=8 n=4 x=0 xs=8 w={WBASE + WORD} wn=1 out=64 os=4"),
                 id="weights-not-tile-aligned"),
    pytest.param(assemble(f"embed rows=1 cols=8 v=0 vs=8 m={DATA} ms=16 ids={DATA + WORD} limit=4"),
                 id="token-ids-not-4-byte-aligned"),
    pytest.param(assemble(f"kvstore rows=1 cols=8 v=0 vs=8 m={WBASE + WORD} wn=1 mbs=1"),
                 id="cache-not-tile-aligned"),
])
def test_illegal_instruction(prog):
    same_error(errors.IllegalInstruction, [prog])


@pytest.mark.parametrize("prog", [
    pytest.param(assemble(f"load rows=1 cols=8 v=0 vs=8 m={T.hbm_bytes - 4} ms=16"), id="load-past-hbm"),
    pytest.param(assemble(f"store rows=2 cols=8 v=0 vs=8 m={T.hbm_bytes - 32} ms=32"), id="store-past-hbm"),
    pytest.param(assemble(f"load rows=1 cols=8 v=0 vs=8 m={DATA + 1} ms=16"), id="odd-hbm-address"),
    pytest.param(assemble(f"load rows=2 cols=8 v={VB - 12} vs=8 m={DATA} ms=16"), id="load-past-buffer"),
    pytest.param(assemble(f"vadd rows=1 cols=8 d={VB - 3} ds=8 a=0 as=8 b=0 bs=8"), id="vadd-past-buffer"),
    pytest.param(assemble(f"vsum rows=2 cols=8 d={VB - 1} ds=1 a=0 as=8"), id="vsum-past-buffer"),
    pytest.param(assemble(f"conv1d m=1 k=8 n=4 x=0 xs=8 w={WBASE} wn=1 out={VB - 2} os=4"),
                 id="conv1d-past-buffer"),
    pytest.param(assemble(f"maskedmm m=1 k=8 n=4 x=0 xs=8 w={WBASE} wn=1 out=64 os=8 aux={VB}"),
                 id="row-max-past-buffer"),
    pytest.param(assemble(f"send rows=1 cols=8 v={VB - 4} vs=8"), id="send-past-buffer"),
    pytest.param(assemble(f"allgather rows=1 cols=8 src=0 ss=8 dst={VB - 4} ds=8"), id="allgather-past-buffer"),
    pytest.param(assemble(f"seti rd=r6 imm={2 * W}\nkvstore tr rows=1 cols=8 v=0 vs=8 m={WBASE} wn=2 mbs=4 preg=r6"),
                 id="kv-position-past-the-cache"),
])
def test_address_error(prog):
    same_error(errors.AddressError, [prog])


@pytest.mark.parametrize("bad", [5, -1])
def test_embed_id_outside_the_table(bad):
    """The second of three ids is at the limit of a 5-row table, or negative."""
    ids = np.array([4, bad, 0], "<i4")
    sim, hw = same_error(errors.AddressError, [assemble(
        f"embed rows=3 cols=8 v=0 vs=8 m={DATA} ms=16 ids={DATA + 0x100} limit=5")], data={DATA + 0x100: ids})
    assert f"token id {bad} in row 1" in str(sim)
    assert f"token id {bad & 0xFFFFFFFF} in row 1" in str(hw)  # the status record's detail is unsigned


# ------------------------------------------------------------------ ring errors (two cores)
SEND = assemble(f"load rows=1 cols={RW} v=0 vs={RW} m={DATA} ms={RW * WORD}\nsend rows=1 cols={RW} v=0 vs={RW}")
RECV = assemble(f"recv rows=1 cols={RW} v=0 vs={RW}\nstore rows=1 cols={RW} v=0 vs={RW} m={OUT} ms={RW * WORD}")
PAYLOAD_BITS = 16 * RW  # a ring word: payload, then src [7:0], seq [23:8], check [31:24] (arch/kernel.py)


@pytest.mark.parametrize("kind,k,bit,cause", [
    pytest.param("drop", 1, 0, 2, id="drop-header"),
    pytest.param("dup", 1, 0, 2, id="dup-header"),
    pytest.param("corrupt", 2, 5, 3, id="corrupt-payload"),
    pytest.param("corrupt", 1, PAYLOAD_BITS, 1, id="corrupt-src"),
    pytest.param("corrupt", 2, PAYLOAD_BITS + 8, 2, id="corrupt-seq"),
])
def test_ring_fault_on_the_link(kind, k, bit, cause):
    """The k-th word of core 0's message to core 1 (header, one data word) dropped, repeated or with
    a bit flipped on the link: core 1 reports a RingFault at its recv, with the cause (1 wrong sender,
    2 sequence, 3 check byte). The simulator's ring has no faulty links: the program runs there."""
    progs, data = [SEND, RECV], {DATA: f16(np.random.default_rng(50), (RW,))}
    execute("sim", progs, data=data)
    with pytest.raises(errors.RingFault) as e:
        execute(RTL, progs, data=data, before_start=lambda group: group.fault(0, kind, k, bit))
    assert (e.value.core, e.value.pc, e.value.asm) == (1, 0, to_asm(RECV[0]))
    assert f"link from core 0 (cause {cause}:" in str(e.value)


def test_ring_timeout_is_a_deadlock():
    """Both cores wait to receive: the simulator finds every live core blocked, the RTL cores time
    out (RING_TIMEOUT cycles without a word); both name core 0 at its recv."""
    _sim, hw = same_error(errors.RingDeadlock, [RECV, RECV])
    assert "ring timeout" in str(hw)


@pytest.mark.parametrize("receiver", [
    pytest.param(assemble(f"recv rows=2 cols={RW} v=0 vs={RW}"), id="rows"),
    pytest.param(assemble(f"recv rows=1 cols={RW + 1} v=0 vs={RW + 1}"), id="cols"),
    pytest.param(assemble(f"allgather rows=1 cols={RW} src=0 ss={RW} dst=64 ds={2 * RW}"), id="kind"),
])
def test_sync_mismatch(receiver):
    """Core 1 expects another transfer than core 0's send (size or kind): core 1 reports it."""
    same_error(errors.SyncMismatch, [SEND, receiver], data={DATA: f16(np.random.default_rng(51), (RW,))})


# ------------------------------------------------------------------ no END
def test_no_end_when_the_entry_leaves_no_room():
    """The entry is the end of HBM: not one instruction can be fetched (pc 0)."""
    same_error(errors.IllegalInstruction, [[]], end=False, entry=T.hbm_bytes)


# tiny with HBM as large as the testbench's memory models, so that a program can run into its end
SMALL_HBM = dataclasses.replace(T, name="tiny-small-hbm",
                                hbm=dataclasses.replace(T.hbm, channel_bytes=MEM // T.hbm.channels))


def test_no_end_when_the_program_runs_into_the_end_of_hbm():
    """Three instructions in the last words of HBM and no END: both stop at pc 3 (on Icarus, whose
    build of this target takes seconds)."""
    need("icarus")
    prog = assemble(f"seti rd=r5 imm=7\nload rows=1 cols=8 v=0 vs=8 m={DATA} ms=16\nnop")
    sim, _hw = same_error(errors.IllegalInstruction, [prog], backend="icarus", end=False, target=SMALL_HBM,
                          entry=SMALL_HBM.hbm_bytes - len(prog) * isa.INSTR_BYTES)
    assert sim.pc == len(prog) and "no end instruction" in str(sim)


# ================================================================== Icarus
def test_icarus_runs_a_program_as_the_simulator_does():
    """Loads (one of memory no image covers: the memory models start as zeros, as the simulator's
    memory does), vector and matrix ops, a store: on Icarus the simulator's bytes."""
    need("icarus")
    x, tiles = mm_data(np.random.default_rng(60), 2, 8, 4)
    same_result([assemble(f"""
        load rows=2 cols=8 v=0 vs=8 m={DATA} ms=16
        load rows=2 cols=8 v=16 vs=8 m={NEVER_WRITTEN} ms=16
        vadd bcast=row rows=2 cols=8 d=32 ds=8 a=0 as=8 b=16 bs=8
        conv1d gelu m=2 k=8 n=4 x=32 xs=8 w={WBASE} wn=1 out=64 os=4
        store rows=6 cols=8 v=16 vs=8 m={OUT} ms=16
    """)], backend="icarus", data={DATA: x, WBASE: tiles})


# ================================================================== ordering hazards
ALL_UNITS = sum(isa.BARRIER_BITS.values())


def swapped(prog: list, i: int, j: int) -> list:
    out = list(prog)
    out[i], out[j] = out[j], out[i]
    return out


def hazard(first: str, second: str, before=(), after=()) -> tuple[list, tuple]:
    """A program in which only the pair (first, second) is left to the scoreboard: barriers on
    every unit after `before` and before `after`. Returns it and the pair's positions."""
    lines = [*before, f"barrier units={ALL_UNITS}", first, second, f"barrier units={ALL_UNITS}", *after]
    return assemble("\n".join(lines)), (len(before) + 1, len(before) + 2)


def same_result_in_order(prog: list, swap: tuple, cores: int = 1, **kw) -> list:
    """same_result of `prog` on `cores` cores, after checking on the simulator that the order of
    the instructions at swap = (i, j) matters: swapped, they leave other bytes."""
    assert execute("sim", [swapped(prog, *swap)] * cores, **kw) != execute("sim", [prog] * cores, **kw), \
        "the order of these instructions does not show in the bytes read back"
    return same_result([prog] * cores, **kw)


@pytest.mark.parametrize("tr", [0, 1])
def test_raw_hbm_kvstore_then_a_product_reads_the_cache(tr):
    """kvstore appends two tokens of four heads to caches of stale values, and the next instruction
    reads the last head's cache (written last) as its weights: maskedmm (K caches, tr=0: Q K^T) or
    mm (V caches, tr=1: scores x V)."""
    rng = np.random.default_rng(70 + tr)
    heads, head_dim, max_seq, tokens, pos = 4, 8, 8, 2, 2
    wn, per_head = kv_geometry(tr, max_seq, head_dim)
    last = WBASE + (heads - 1) * per_head * T.tile_bytes
    product = (f"mm m={tokens} k={pos + tokens} n={head_dim} x=0 xs={head_dim} w={last} wn={wn} out=200 os={W}"
               if tr else f"maskedmm m={tokens} k={head_dim} n={pos + tokens} x=0 xs={head_dim} w={last} wn={wn} "
                          f"out=200 os={W} aux=300 as=1 scale=0.35 mreg=r6")
    new = heads * head_dim
    prog, swap = hazard(
        f"kvstore {'tr' if tr else ''} batch={heads} rows={tokens} cols={head_dim} v=100 vs={new} vbs={head_dim} "
        f"m={WBASE} wn={wn} mbs={per_head} preg=r6", product,
        before=(f"load rows={tokens} cols={head_dim} v=0 vs={head_dim} m={DATA} ms={head_dim * WORD}",
                f"load rows={tokens} cols={new} v=100 vs={new} m={DATA + 0x100} ms={new * WORD}",
                f"seti rd=r6 imm={pos}"),
        after=(f"store rows={tokens} cols={W} v=200 vs={W} m={OUT} ms={W * WORD}",
               f"store rows={tokens} cols=1 v=300 vs=1 m={OUT + 256} ms={WORD}"))
    same_result_in_order(prog, swap, data={DATA: f16(rng, (tokens, head_dim)), DATA + 0x100: f16(rng, (tokens, new)),
                                           WBASE: f16(rng, (heads * per_head * T.tile_bytes // WORD,))})


def test_raw_hbm_store_then_load_of_the_same_bytes():
    """A store over old bytes (not beat aligned) and, next, a load of them and their neighbours."""
    rng = np.random.default_rng(72)
    at = DATA + 0x800 + 3 * WORD
    prog, swap = hazard(f"store rows=2 cols=11 v=0 vs=11 m={at} ms=30",
                        f"load rows=2 cols=15 v=100 vs=15 m={at - 2 * WORD} ms=30",
                        before=(f"load rows=2 cols=11 v=0 vs=11 m={DATA} ms=22",),
                        after=(f"store rows=2 cols=15 v=100 vs=15 m={OUT} ms=30",))
    same_result_in_order(prog, swap, data={DATA: f16(rng, (2, 11)), DATA + 0x800: f16(rng, (64,))})


# Buffer regions of the hazard tests. The second instruction of a pair touches the last row of a
# region, which the long first one reaches last, so that running both at once changes the bytes.
HR = 8  # rows of x
X_IN = f"load rows={HR} cols=16 v=0 vs=16 m={DATA} ms=32"  # x: buffer words 0 .. 16*HR
X2_IN = f"load rows={HR} cols=16 v=200 vs=16 m={DATA + 0x200} ms=32"  # x2: from word 200
X_LAST = 16 * (HR - 1)  # x's last row
CONV = f"conv1d m={HR} k=16 n=8 xs=16 w={WBASE} wn=2"  # HR x 8 from x= (give out= os=)
Y = 400  # HR x 8 results
Y_OUT = f"store rows={HR} cols=8 v={Y} vs=8 m={OUT} ms=16"
X_OUT = f"store rows={HR} cols=16 v=0 vs=16 m={OUT + 256} ms=32"


def hazard_data(rng) -> dict:
    return {DATA: f16(rng, (HR, 16)), DATA + 0x200: f16(rng, (HR, 16)), WBASE: mm_data(rng, 0, 16, 8)[1]}


@pytest.mark.parametrize("reader,writer", [
    pytest.param(f"{CONV} x=0 out={Y} os=8", f"load rows=1 cols=16 v={X_LAST} vs=16 m={DATA + 0x200} ms=32",
                 id="mpu-reads-then-dma-writes"),
    pytest.param(f"vmul rows={HR} cols=8 d={Y} ds=8 a=0 as=16 b=0 bs=16", f"{CONV} x=200 out=0 os=16",
                 id="vpu-reads-then-mpu-writes"),
    pytest.param(f"store rows={HR} cols=16 v=0 vs=16 m={OUT + 512} ms=32",
                 f"vexp rows=1 cols=16 d={X_LAST} ds=16 a={X_LAST} as=16", id="dma-reads-then-vpu-writes"),
])
def test_war_on_the_buffer(reader, writer):
    """One instruction reads buffer region x and the next overwrites x: the reader sees the old x."""
    prog, swap = hazard(reader, writer, before=(X_IN, X2_IN), after=(Y_OUT, X_OUT))
    same_result_in_order(prog, swap, data=hazard_data(np.random.default_rng(73)))


LONG = 8 * HR  # rows of a long reduction (over x, x2 and zeros: 16 words a row from word 0)
LONG_Y = 2000  # its LONG results, one word a row


@pytest.mark.parametrize("first,second,after", [
    pytest.param(f"{CONV} gelu x=0 out={Y} os=8", f"vcopy rows={HR} cols=8 d={Y} ds=8 a=200 as=16", Y_OUT,
                 id="mpu-then-vpu"),
    pytest.param(f"vsum rows={LONG} cols=16 d={LONG_Y} ds=1 a=0 as=16",
                 f"load rows=1 cols=8 v={LONG_Y + LONG - 8} vs=8 m={DATA + 0x200} ms=32",
                 f"store rows=1 cols=16 v={LONG_Y + LONG - 16} vs=16 m={OUT} ms=32", id="vpu-then-dma"),
    pytest.param(f"load rows={HR} cols=8 v={Y} vs=8 m={DATA + 0x200} ms=32",
                 f"maskedmm m={HR} k=16 n=7 x=0 xs=16 w={WBASE} wn=2 out={Y} os=8 aux=900 as=1", Y_OUT,
                 id="dma-then-mpu"),
])
def test_waw_on_the_buffer(first, second, after):
    """Two instructions of different units write the same buffer region: the second one's words stay."""
    prog, swap = hazard(first, second, before=(X_IN, X2_IN), after=(after,))
    same_result_in_order(prog, swap, data=hazard_data(np.random.default_rng(74)))


def test_war_in_hbm_a_store_over_the_weights_of_a_product():
    """conv1d reads its weight tiles from HBM and the next instruction stores over the last of them."""
    last_tile = WBASE + 3 * T.tile_bytes
    prog, swap = hazard(f"{CONV} x=0 out={Y} os=8", f"store rows=2 cols=16 v=0 vs=16 m={last_tile} ms=32",
                        before=(X_IN,), after=(Y_OUT,))
    same_result_in_order(prog, swap, data=hazard_data(np.random.default_rng(78)))


def test_waw_in_hbm_two_stores_over_the_same_bytes():
    """Two stores over overlapping HBM bytes (not beat aligned): the second one's bytes stay."""
    prog, swap = hazard(f"store rows=2 cols=9 v=0 vs=16 m={OUT + 2 * WORD} ms=32",
                        f"store rows=2 cols=9 v=16 vs=16 m={OUT + 5 * WORD} ms=32",
                        before=(f"load rows=2 cols=16 v=0 vs=16 m={DATA} ms=32",))
    same_result_in_order(prog, swap, data={DATA: f16(np.random.default_rng(75), (2, 16))})


SEND_X = "send rows=2 cols=11 v=0 vs=11"
RECV_Y = "recv rows=2 cols=11 v=100 vs=11"
X_NEXT = f"load rows=2 cols=11 v=0 vs=11 m={DATA + 0x100} ms=22"
STORE_Y = f"store rows=2 cols=11 v=100 vs=11 m={OUT} ms=22"


@pytest.mark.parametrize("pair,before,after", [
    pytest.param((SEND_X, X_NEXT), (), (RECV_Y, STORE_Y), id="war-send-then-load"),
    pytest.param((RECV_Y, STORE_Y), (SEND_X,), (), id="raw-recv-then-store"),
])
def test_router_and_dma_on_two_cores(pair, before, after):
    """On both cores: a send reads rows that the next load overwrites, or a store reads the rows
    that the recv before it wrote."""
    rng = np.random.default_rng(79)
    prog, swap = hazard(*pair, before=(f"load rows=2 cols=11 v=0 vs=11 m={DATA} ms=22", *before),
                        after=(*after, f"store rows=2 cols=11 v=0 vs=11 m={OUT + 64} ms=22"))
    same_result_in_order(prog, swap, cores=2, data=[{DATA: f16(rng, (2, 11)), DATA + 0x100: f16(rng, (2, 11))}
                                                    for _core in range(2)])


@pytest.mark.parametrize("first,second,before", [
    pytest.param(f"load rows=3 cols=16 v=0 vs=16 m={DATA} ms=32 mreg=r5 mregs=32", "seti rd=r5 imm=0",
                 ("seti rd=r5 imm=1",), id="load-index-register"),
    pytest.param(f"kvstore tr rows=3 cols=8 v=0 vs=16 m={OUT + 768} wn=1 preg=r6", "addi rd=r6 rs=r6 imm=3",
                 ("seti rd=r6 imm=2", X_IN), id="kvstore-position-register"),
    pytest.param(f"maskedmm m={HR} k=16 n=8 x=0 xs=16 w={WBASE} wn=2 out={Y} os=8 aux=900 as=1 mreg=r6",
                 "seti rd=r6 imm=4", ("seti rd=r6 imm=0", X_IN), id="maskedmm-mask-register"),
])
def test_war_on_a_register(first, second, before):
    """A unit instruction reads a register (index, position, mask) and the next instruction sets it:
    the unit uses the old value (the register file is one scoreboard tag)."""
    prog, swap = hazard(first, second, before=before, after=(X_OUT, Y_OUT))
    same_result_in_order(prog, swap, data=hazard_data(np.random.default_rng(76)))


@pytest.mark.parametrize("unit", ["mpu", "vpu", "dma"])
def test_barrier_between_a_producer_and_its_consumer(unit):
    """Barriers order every dependency of this program by themselves (the scoreboard would too): on
    the loads, on the producer's unit before its consumer (of another unit), and on the consumer."""
    producer = {"mpu": f"{CONV} x=0 out={Y} os=8", "vpu": f"vsub rows={HR} cols=8 d={Y} ds=8 a=0 as=16 b=200 bs=16",
                "dma": f"load rows={HR} cols=8 v={Y} vs=8 m={DATA + 0x200} ms=32"}[unit]
    prog = assemble(f"""
        {X_IN}
        {X2_IN}
        barrier units={isa.BARRIER_BITS["dma"]}
        {producer}
        barrier units={isa.BARRIER_BITS[unit]}
        vmax rows={HR} cols=8 d=700 ds=8 a={Y} as=8 b=200 bs=16
        barrier units={isa.BARRIER_BITS["vpu"]}
        store rows={HR} cols=8 v=700 vs=8 m={OUT} ms=16
    """)
    same_result_in_order(prog, (3, 5), data=hazard_data(np.random.default_rng(77)))
