"""The RTL simulation harness (hw/sim, dfx.host.rtl) on Icarus and Verilator.

The memory model runs alone under a self-checking bench (tests/hw/tb/dfx_axi_mem_tb.v). The
whole testbench runs with a stub in place of dfx_core_flat (tests/hw/tb/stub_core_flat.v): on
start it reads the beat at `entry`, sends its low word round the ring, counts the words it
receives and writes a status record at `status`. Through the `rtl` backend's devices the tests
check that bytes move both ways through the HBM interleave, AXI4-Lite works, runs end with
cycle counts and a checked status record, memory latency and backpressure change cycles but not
results, ring faults reach the receiver, and timeouts and a dead simulator are reported.
Builds are cached in build/rtl/<sim>/ (a Verilator build of the bench takes about 25 s once).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dfx import hw
from dfx.arch.target import load_target
from dfx.compiler.bundle import Bundle
from dfx.errors import DeviceTimeout, DfxError, RingDeadlock
from dfx.host import rtl
from dfx.host.hal import REG_CTRL, REG_GIE, REG_IER, AP_IDLE, ARG_OFFSETS, open_devices
from dfx.arch.hbm import channel_of, interleave

pytestmark = pytest.mark.rtl

TB = Path(__file__).resolve().parent / "tb"
STUB = [TB / "stub_core_flat.v"]
SIMS = ["icarus", "verilator"]
T = load_target("tiny")
P, C = T.port_bytes, T.hbm.channels
RING_TIMEOUT = 2000
STATUS = 0x2000
MEM_RUNS: dict = {}  # simulator -> the memory bench's figures


def need(sim: str) -> None:
    if shutil.which("iverilog" if sim == "icarus" else "verilator") is None:
        pytest.skip(f"{sim} is not installed")


def ring(sim: str, n: int = 2, target=T, **opts):
    need(sim)
    opts.setdefault("ring_timeout", RING_TIMEOUT)
    return open_devices("rtl", n, target, sim=sim, rtl_sources=STUB, **opts)


def images(n: int, nbytes: int = 2048, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, 256, nbytes, dtype=np.uint8) for _c in range(C)] for _d in range(n)]


def flat(chans) -> np.ndarray:
    """The flat HBM image whose per-channel images are `chans`."""
    return interleave(chans, P)


def load(devs, imgs) -> None:
    for d, chans in zip(devs, imgs):
        for c, img in enumerate(chans):
            d.load_hbm_channel(c, img)


def call(devs, entries) -> list[dict]:
    """One run as dfx.host.runtime.Session makes it: arguments, start every core, wait for each."""
    for j, d in enumerate(devs):
        d.set_args(entry=entries[j], status=STATUS, core=j, ncores=len(devs))
    for d in devs:
        d.start()
    for d in devs:
        d.wait(60)
    return [d.counters() for d in devs]


def word(img: np.ndarray, addr: int) -> int:
    return int.from_bytes(img[addr: addr + 4].tobytes(), "little")


# ------------------------------------------------------------------ the memory model alone
@pytest.mark.parametrize("sim", SIMS)
def test_memory_model_bursts_latency_backpressure(sim):
    need(sim)
    exe = rtl.build(sim, "dfx_axi_mem_tb", {}, [hw.SIM_DIR / "dfx_axi_mem.v", TB / "dfx_axi_mem_tb.v"],
                    "axi_mem_tb")
    runs = {}
    for lat, stall in [(1, 0), (9, 0), (3, 30)]:
        argv = (["vvp", "-n", str(exe)] if sim == "icarus" else [str(exe)]) + [
            f"+hbm_lat={lat}", f"+hbm_stall={stall}", "+seed=5"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
        figs = dict(line.split() for line in out.splitlines() if line.split()[:1] in (["lat"], ["cycles"], ["errors"]))
        assert figs["errors"] == "0", out
        runs[lat, stall] = int(figs["lat"]), int(figs["cycles"])
    assert runs[1, 0][0] == 1 and runs[9, 0][0] == 9  # first beat `lat` cycles after the address
    # reads stay pipelined: 8 more cycles of latency cost far less than 8 per burst
    assert runs[1, 0][1] < runs[9, 0][1] < runs[1, 0][1] + 100
    assert runs[3, 30][1] > runs[9, 0][1] + 300  # 30 % stalls on every handshake
    MEM_RUNS[sim] = runs


def test_memory_model_gives_the_same_cycles_on_both_simulators():
    if len(MEM_RUNS) < 2:
        pytest.skip("needs the memory model's runs on both simulators (the two tests above)")
    assert MEM_RUNS["icarus"] == MEM_RUNS["verilator"]


# ------------------------------------------------------------------ the testbench, stub core
@pytest.mark.parametrize("sim", SIMS)
def test_host_memory_io_through_the_interleave(sim, tmp_path):
    devs = ring(sim)
    try:
        imgs = images(2)
        load(devs, imgs)
        for d, chans in zip(devs, imgs):  # flat reads cross beats and channels, unaligned
            f = flat(chans)
            assert d.read_mem("hbm", 5, 1000) == f[5:1005].tobytes()
        data = np.random.default_rng(1).integers(0, 256, 301, dtype=np.uint8).tobytes()
        devs[1].write_mem("hbm", 1003, data)
        assert devs[1].read_mem("hbm", 1003, 301) == data
        assert devs[0].read_mem("hbm", 1003, 301) == flat(imgs[0])[1003:1304].tobytes()  # other core untouched
        proc = devs[0].group.proc
        for k in (0, 150, 300):  # each byte sits where channel_of says, in that channel's memory
            ch, off = channel_of(1003 + k, P, C)
            assert proc.command(f"rmem 1 {ch:x} {off:x} 1") == f"ok {data[k]:02x}"
        devs[0].group.dump(1, 2, tmp_path / "ch2.hex")  # $writememh: one beat per line, MSB first
        beats = [bytes.fromhex(line)[::-1] for line in (tmp_path / "ch2.hex").read_text().splitlines()
                 if line and not line.startswith("//")]
        want = flat(imgs[1]).copy()
        want[1003:1304] = np.frombuffer(data, np.uint8)
        want_ch2 = want.reshape(-1, C, P)[:, 2, :].reshape(-1)
        assert b"".join(beats)[: want_ch2.size] == want_ch2.tobytes()
        assert len(beats) == devs[0].group.mem_beats and not any(b"".join(beats)[want_ch2.size:])
        with pytest.raises(DfxError, match="outside the memory"):
            proc.command(f"rmem 0 0 {devs[0].group.mem_beats * P - 2:x} 4")
        with pytest.raises(DfxError, match="no such memory"):
            proc.command(f"rmem 0 {C:x} 0 4")  # tiny has no DDR
    finally:
        devs[0].close()


@pytest.mark.parametrize("sim", SIMS)
def test_axi_lite_registers(sim):
    devs = ring(sim)
    try:
        assert [d.read_reg(REG_GIE) for d in devs] == [1, 1]  # the bench enables the interrupt
        assert [d.read_reg(REG_IER) for d in devs] == [1, 1]
        assert devs[0].read_reg(REG_CTRL) & AP_IDLE
        devs[0].set_args(entry=0x123456789A, ntok=7)
        devs[1].set_args(pos=0xDEADBEEF)
        assert devs[0].read_reg(ARG_OFFSETS["entry"]) == 0x3456789A
        assert devs[0].read_reg(ARG_OFFSETS["entry"] + 4) == 0x12
        assert devs[0].read_reg(ARG_OFFSETS["ntok"]) == 7
        assert devs[1].read_reg(ARG_OFFSETS["pos"]) == 0xDEADBEEF and devs[0].read_reg(ARG_OFFSETS["pos"]) == 0
    finally:
        devs[0].close()


@pytest.mark.parametrize("sim", SIMS)
def test_run_reports_done_cycles_status_and_trace(sim, tmp_path):
    trace = tmp_path / "trace.txt"
    devs = ring(sim, trace=trace)
    try:
        imgs = images(2)
        load(devs, imgs)
        f = [flat(chans) for chans in imgs]
        for entries in ([0x40, 0x90], [0x300, 0x10]):  # two runs: done is seen again after the first
            cnt = call(devs, entries)
            for j, c in enumerate(cnt):
                assert c["code"] == 0 and c["core"] == j and c["retired"] == 3
                assert c["detail"] == word(f[j], entries[j])  # read from HBM through channel_of
                assert c["detail2"] == word(f[j - 1], entries[j - 1])  # from the previous core, over the ring
                assert c["busy_net"] == 1
                assert c["rtl_cycles"] == c["done_cycle"] - c["start_cycle"] > c["cycles"] > 0
            assert cnt[0]["device_cycles"] == cnt[1]["device_cycles"] == (
                max(c["done_cycle"] for c in cnt) - min(c["start_cycle"] for c in cnt))
        # the trace: three retires per core and run, inside that core's run
        lines = [tuple(int(v) for v in line.split()) for line in trace.read_text().splitlines()]
        assert len(lines) == 12
        for core, pc, op, cyc, began in lines[6:]:
            assert op == pc + 1 and cnt[core]["start_cycle"] < cyc <= cnt[core]["done_cycle"]
            assert began == cyc - 1  # control retirements: the cycle before
    finally:
        devs[0].close()


@pytest.mark.parametrize("sim", SIMS)
def test_latency_and_backpressure_change_cycles_not_results(sim):
    imgs = images(2, seed=3)
    got = {}
    for opts in ({"hbm_lat": 1}, {"hbm_lat": 40}, {"hbm_lat": 1, "hbm_stall": 60, "seed": 1},
                 {"hbm_lat": 1, "hbm_stall": 60, "seed": 2}):
        devs = ring(sim, **opts)
        try:
            load(devs, imgs)
            cnt = call(devs, [0x70, 0x1A0])
            mem = devs[1].read_mem("hbm", STATUS, 64)
        finally:
            devs[0].close()
        got[tuple(opts.items())] = ([(c["detail"], c["detail2"]) for c in cnt], mem[:24],
                                    [c["rtl_cycles"] for c in cnt])
    assert len({(tuple(v[0]), v[1]) for v in got.values()}) == 1  # the same values read, sent and written
    cyc = [v[2] for v in got.values()]
    assert cyc[1][0] >= cyc[0][0] + 39  # one read on the critical path, 39 cycles slower
    assert cyc[2][0] > cyc[0][0] and cyc[2] != cyc[3]  # stalls cost cycles; the seed picks them


@pytest.mark.parametrize("sim", SIMS)
def test_ring_faults_reach_the_receiver(sim):
    devs = ring(sim)
    g = devs[0].group
    try:
        imgs = images(2, seed=4)
        load(devs, imgs)
        sent = word(flat(imgs[0]), 0x40)
        g.fault(0, "corrupt", 1, 5)  # link 0: core 0 -> core 1
        assert call(devs, [0x40, 0x80])[1]["detail2"] == sent ^ (1 << 5)
        g.fault(0, "dup", 1)
        c = call(devs, [0x40, 0x80])
        assert c[1]["busy_net"] == 2 and c[0]["busy_net"] == 1 and c[1]["detail2"] == sent
        g.fault(0, "drop", 1)  # core 1 waits RING_TIMEOUT cycles, then reports it
        with pytest.raises(RingDeadlock, match="core 1.*ring timeout"):
            call(devs, [0x40, 0x80])
        assert devs[1].counters()["rtl_cycles"] > RING_TIMEOUT
    finally:
        devs[0].close()


@pytest.mark.parametrize("sim", SIMS)
def test_timeout_is_reported(sim):
    devs = ring(sim, max_cycles=1000)  # below RING_TIMEOUT: the stub is still waiting
    try:
        load(devs, images(2))
        devs[0].group.fault(1, "drop", 1)
        with pytest.raises(DeviceTimeout, match=r"devices \[0\] did not raise done within 1000 cycles"):
            call(devs, [0x40, 0x80])
    finally:
        devs[0].close()


def test_a_dead_simulator_is_reported_with_its_log():
    devs = ring("icarus")
    try:
        devs[0].read_reg(REG_GIE)
        devs[0].group.proc.proc.kill()
        with pytest.raises(DfxError, match="simulator exited"):
            devs[0].read_reg(REG_GIE)
    finally:
        devs[0].close()


def test_builds_are_reused():
    need("icarus")
    a = rtl.build_tb(T, 2, "icarus", ring_timeout=RING_TIMEOUT, rtl_sources=STUB)
    mtime = a.stat().st_mtime_ns
    assert rtl.build_tb(T, 2, "icarus", ring_timeout=RING_TIMEOUT, rtl_sources=STUB) == a
    assert a.stat().st_mtime_ns == mtime
    assert rtl.build_tb(T, 3, "icarus", ring_timeout=RING_TIMEOUT, rtl_sources=STUB) != a


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_waves(sim, tmp_path):
    path = tmp_path / "w.vcd"  # (Verilator's .fst writer needs liblz4-dev, not installed by setup)
    devs = ring(sim, n=1, waves=path)
    try:
        load(devs, images(1))
        call(devs, [0x40])
    finally:
        devs[0].close()
    assert path.stat().st_size > 1000


def test_ddr_and_32_channels_on_u280_icarus():
    t = load_target("u280")
    devs = ring("icarus", n=1, target=t)
    try:
        d = devs[0]
        d.load_ddr(np.arange(256, dtype=np.uint8))
        d.write_mem("ddr", 300, b"\x11" * 700)
        assert d.read_mem("ddr", 250, 8) == bytes([250, 251, 252, 253, 254, 255, 0, 0])
        assert d.read_mem("ddr", 299, 702) == b"\0" + b"\x11" * 700 + b"\0"
        d.write_mem("hbm", 31 * t.port_bytes - 3, b"abcdef")  # the end of channel 30, start of 31
        assert d.read_mem("hbm", 31 * t.port_bytes - 3, 6) == b"abcdef"
        assert d.group.proc.command(f"rmem 0 1f 0 3") == "ok " + b"def"[::-1].hex()
    finally:
        devs[0].close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A one-layer random GPT-2 (vocabulary 512) compiled for 2 tiny cores."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from dfx.compiler.driver import compile_model

    d = tmp_path_factory.mktemp("rtl_bundle")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=1, n_embd=64, n_head=4, n_positions=32, vocab_size=512,
                                  bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d / "m")
    compile_model(str(d / "m"), 2, d / "b", target="tiny", progress=False)
    return d / "b"


def test_session_drives_the_rtl_devices(bundle):
    """dfx.host.runtime.Session on the rtl backend: the bundle's channel images, arguments, start,
    wait and the status record go through the testbench (the stub reads the program's first beat)."""
    need("icarus")
    from dfx.host.runtime import Session

    sess = Session(bundle, backend="rtl", sim="icarus", rtl_sources=STUB, ring_timeout=RING_TIMEOUT,
                   hbm_bytes=max(c["hbm_bytes"] for c in Bundle(bundle).cards))
    try:
        b = sess.bundle
        logits, _best, cnt = sess.call("generation", [5], 3)
        for j, c in enumerate(cnt):
            image = flat([b.hbm_channel(j, ch) for ch in range(C)])
            assert c["detail"] == word(image, b.cards[j]["programs"]["generation"]["entry"]) != 0
            assert c["code"] == 0 and c["rtl_cycles"] > 0
        assert sess.devices[1].read_reg(ARG_OFFSETS["pos"]) == 3 and sess.devices[1].read_reg(ARG_OFFSETS["core"]) == 1
        assert logits.size == 512
    finally:
        sess.close()


def test_cli_generate_passes_the_rtl_options(bundle, monkeypatch):
    """`dfx generate --backend rtl --rtl-sim S --waves W` opens the Session with those options and
    memories as large as the bundle's map (a recording stand-in for Session stops it there)."""
    from dfx import cli
    from dfx.host import runtime

    seen = {}

    def stand_in(bundle, backend, **kw):
        seen.update(kw, backend=backend)
        raise DfxError("stand-in")

    monkeypatch.setattr(runtime, "Session", stand_in)
    assert cli.main(["generate", str(bundle), "--prompt-ids", "1", "--backend", "rtl",
                     "--rtl-sim", "icarus", "--waves", "w.vcd"]) == 1
    cards = Bundle(bundle).cards
    assert seen["backend"] == "rtl" and seen["sim"] == "icarus" and seen["waves"] == "w.vcd"
    assert seen["hbm_bytes"] == max(c["hbm_bytes"] for c in cards) and seen["ddr_bytes"] == 0
