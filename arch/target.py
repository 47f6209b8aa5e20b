"""Hardware targets: one TOML data file per target under hw/targets/.

Everything that needs a size, a width, a latency or a bandwidth reads it from here:
the compiler, the simulators, the performance model, the generated RTL parameters
(dfx.arch.verilog) and the Vitis link config. Nothing restates a size by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path

from dfx.errors import TargetError

TARGET_DIR = Path(__file__).resolve().parent.parent / "hw" / "targets"


def _is_pow2(v: int) -> bool:
    return v > 0 and (v & (v - 1)) == 0


@dataclasses.dataclass(frozen=True)
class Clock:
    kernel_mhz: float
    memory_mhz: float


@dataclasses.dataclass(frozen=True)
class Matrix:
    lanes: int
    width: int
    mul_latency: int  # FP multipliers of the MPU and the VPU (RTL MUL_LAT)
    add_latency: int  # FP32 adders of the MPU tree and the VPU (RTL ADD_LAT)


@dataclasses.dataclass(frozen=True)
class Vector:
    width: int
    recip_latency: int  # RTL RECIP_LAT
    rsqrt_latency: int  # RTL RSQRT_LAT


@dataclasses.dataclass(frozen=True)
class Hbm:
    channels: int
    channel_bytes: int
    port_bits: int
    channel_gbps: float
    efficiency: float


@dataclasses.dataclass(frozen=True)
class Ddr:
    present: bool
    bytes: int
    gbps: float
    port_bits: int


@dataclasses.dataclass(frozen=True)
class Ring:
    links: int
    link_gbps: float
    overhead: float
    words_per_cycle: int
    link_beat_bits: int  # one beat of the link's stream: a ring word travels as whole beats (Target.ring_word_beats)
    # one hop, core i's ring port to core i+1's, in three clock domains (docs/perf.md, "The ring hop")
    hop_kernel_cycles: int  # kernel clock: our ring adapters, SLR crossings, the RX FIFO's read side
    hop_link_cycles: int  # link_mhz: the TX FIFO's read side, width converters, the Aurora core
    link_mhz: float  # the Aurora user_clk: lane rate / 64
    cable_ns: float  # the QSFP28 cable


@dataclasses.dataclass(frozen=True)
class Buffers:
    vbuf_words: int
    max_rows: int
    instr_fifo: int  # instructions fetched ahead of issue (RTL IQ_DEPTH)
    unit_queue: int  # slots of each of the three unit queues (RTL UQ, a power of two)
    read_queue: int  # read requests the HBM read engine holds, so keeps in flight (RTL RD_QD, a power of two)


@dataclasses.dataclass(frozen=True)
class Host:
    pcie_gbps: float


@dataclasses.dataclass(frozen=True)
class Perf:
    """Scheduling properties of the core that change timing, never results (dfx.perf reads them)."""

    token_serial_summarization: bool  # summarization as one matrix-vector pass per prompt token
    hbm_latency_cycles: int  # kernel cycles from an HBM read request to its first beat
    ddr_latency_cycles: int  # the same for DDR
    call_overhead_us: float  # host time per kernel call (start, done, argument writes)


_SECTIONS = {
    "clock": Clock,
    "matrix": Matrix,
    "vector": Vector,
    "hbm": Hbm,
    "ddr": Ddr,
    "ring": Ring,
    "buffers": Buffers,
    "host": Host,
    "perf": Perf,
}


@dataclasses.dataclass(frozen=True)
class Target:
    """A hardware target, as read from hw/targets/<name>.toml."""

    name: str
    description: str
    card: str
    clock: Clock
    matrix: Matrix
    vector: Vector
    hbm: Hbm
    ddr: Ddr
    ring: Ring
    buffers: Buffers
    host: Host
    perf: Perf
    path: str = ""

    # ---- derived facts (computed here once, never restated) ----
    @property
    def port_bytes(self) -> int:
        """Bytes one pseudo-channel port moves per beat; also the HBM interleave granule."""
        return self.hbm.port_bits // 8

    @property
    def ring_word_bits(self) -> int:
        """Bits of one ring word: words_per_cycle FP16 words and the header (arch/kernel.py)."""
        from dfx.arch.kernel import RING_HDR_BITS
        return 16 * self.ring.words_per_cycle + RING_HDR_BITS

    @property
    def ring_word_beats(self) -> int:
        """Link beats one ring word takes: the card's ring adapters (dfx.hw.vitis) send each word
        as whole beats of ring.link_beat_bits, its tlast in a spare bit."""
        return -(-self.ring_word_bits // self.ring.link_beat_bits)

    @property
    def hop_cycles(self) -> float:
        """Kernel cycles from a word leaving one core's ring port to its arrival at the next core's
        (the three parts of [ring], each converted at its own clock)."""
        r, k = self.ring, self.clock.kernel_mhz
        return r.hop_kernel_cycles + r.hop_link_cycles * k / r.link_mhz + r.cable_ns * k / 1000

    @property
    def tile_elems(self) -> int:
        """FP16 elements in one weight tile: lanes x width."""
        return self.matrix.lanes * self.matrix.width

    @property
    def tile_bytes(self) -> int:
        """Bytes of one weight tile, which is one beat on every HBM channel."""
        return self.tile_elems * 2

    @property
    def hbm_bytes(self) -> int:
        return self.hbm.channels * self.hbm.channel_bytes

    @property
    def hbm_peak_gbps(self) -> float:
        return self.hbm.channels * self.hbm.channel_gbps

    @property
    def kernel_hbm_gbps(self) -> float:
        """What the kernel's ports can move per second: channels x port bytes x kernel clock."""
        return self.hbm.channels * self.port_bytes * self.clock.kernel_mhz * 1e6 / 1e9

    @property
    def macs_per_cycle(self) -> int:
        return self.matrix.lanes * self.matrix.width

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path", None)
        return d


def _section(path: Path, raw: dict, name: str, cls):
    if name not in raw or not isinstance(raw[name], dict):
        raise TargetError(f"{path}: missing section [{name}]")
    sec = raw[name]
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in sec:
            raise TargetError(f"{path}: missing field {name}.{f.name}")
        v = sec[f.name]
        want = {"int": int, "float": (int, float), "bool": bool}[f.type]
        if f.type == "int" and isinstance(v, bool) or not isinstance(v, want):
            raise TargetError(f"{path}: field {name}.{f.name} must be {f.type}, got {v!r}")
        kwargs[f.name] = float(v) if f.type == "float" else v
    extra = set(sec) - {f.name for f in dataclasses.fields(cls)}
    if extra:
        raise TargetError(f"{path}: unknown field {name}.{sorted(extra)[0]}")
    return cls(**kwargs)


# The fewest cycles the FP pipelines of hw/rtl take (docs/hw.md, Timing estimate): dfx_f32_add_p has
# 6 register stages of its own (ADD_MIN), dfx_f32_mul_p 4 (MUL_MIN; dfx_f16_mul_p needs 3), and the exp
# and GELU pipelines (dfx_exp16_p, dfx_gelu16_p) take one stage from each unit for the logic between
# units. tests/hw/test_rtl.py holds these to the RTL's localparams.
ADD_LATENCY_MIN = 6 + 1
MUL_LATENCY_MIN = 4 + 1


def _check(path: Path, t: Target) -> None:
    def bad(field, why):
        raise TargetError(f"{path}: field {field} {why}")

    for field, v in [("matrix.lanes", t.matrix.lanes), ("matrix.width", t.matrix.width),
                     ("vector.width", t.vector.width), ("hbm.channels", t.hbm.channels),
                     ("hbm.port_bits", t.hbm.port_bits)]:
        if not _is_pow2(v):
            bad(field, f"must be a power of two, got {v}")
    if t.matrix.add_latency < ADD_LATENCY_MIN:
        bad("matrix.add_latency", f"must be at least {ADD_LATENCY_MIN} (the FP32 adder's pipeline, "
            f"and one stage the exp and GELU pipelines take from it), got {t.matrix.add_latency}")
    if t.matrix.mul_latency < MUL_LATENCY_MIN:
        bad("matrix.mul_latency", f"must be at least {MUL_LATENCY_MIN} (the FP multipliers' pipeline, "
            f"and one stage the exp and GELU pipelines take from it), got {t.matrix.mul_latency}")
    if t.matrix.width % t.matrix.lanes:
        bad("matrix.width", f"({t.matrix.width}) must be a multiple of matrix.lanes ({t.matrix.lanes})")
    if t.matrix.lanes * t.matrix.width * 16 != t.hbm.channels * t.hbm.port_bits:
        bad("hbm.port_bits",
            f"x hbm.channels ({t.hbm.channels} x {t.hbm.port_bits} bits) must equal one weight tile, "
            f"matrix.lanes x matrix.width x 16 bits ({t.matrix.lanes} x {t.matrix.width} x 16)")
    if t.hbm.channel_bytes <= 0 or t.hbm.channel_bytes % t.port_bytes:
        bad("hbm.channel_bytes", "must be a positive multiple of the port width")
    if not 0 < t.hbm.efficiency <= 1:
        bad("hbm.efficiency", "must lie in (0, 1]")
    if t.ddr.present and (t.ddr.bytes <= 0 or t.ddr.gbps <= 0):
        bad("ddr.bytes", "and ddr.gbps must be positive when ddr.present is true")
    if t.buffers.vbuf_words <= 0 or t.buffers.vbuf_words > (1 << 24):
        bad("buffers.vbuf_words", "must lie in 1 .. 2^24 (the ISA's 24-bit buffer addresses)")
    if not 1 <= t.buffers.max_rows <= 1024:
        bad("buffers.max_rows", "must lie in 1 .. 1024")
    for sec in ("clock", "matrix", "vector", "ring", "host"):
        for f in dataclasses.fields(_SECTIONS[sec]):
            v = getattr(getattr(t, sec), f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0 and f.name != "overhead":
                bad(f"{sec}.{f.name}", f"must be positive, got {v}")
    uq = t.buffers.unit_queue
    if uq < 2 or uq & (uq - 1):
        bad("buffers.unit_queue", f"must be a power of two, at least 2, got {uq}")
    rq = t.buffers.read_queue
    if rq < 2 or rq & (rq - 1):
        bad("buffers.read_queue", f"must be a power of two, at least 2, got {rq}")
    if t.buffers.instr_fifo < 2 or t.buffers.instr_fifo & (t.buffers.instr_fifo - 1):
        bad("buffers.instr_fifo", f"must be a power of two, at least 2, got {t.buffers.instr_fifo}")
    for f in ("hbm_latency_cycles", "ddr_latency_cycles", "call_overhead_us"):
        if getattr(t.perf, f) < 0:
            bad(f"perf.{f}", f"must be >= 0, got {getattr(t.perf, f)}")


def load_target_file(path) -> Target:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TargetError(f"{path}: no such target file") from None
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"{path}: not valid TOML: {e}") from None
    for key in ("name", "description", "card"):
        if not isinstance(raw.get(key), str):
            raise TargetError(f"{path}: missing field {key}")
    unknown = set(raw) - {"name", "description", "card"} - set(_SECTIONS)
    if unknown:
        raise TargetError(f"{path}: unknown section [{sorted(unknown)[0]}]")
    secs = {name: _section(path, raw, name, cls) for name, cls in _SECTIONS.items()}
    t = Target(name=raw["name"], description=raw["description"], card=raw["card"], path=str(path), **secs)
    _check(path, t)
    return t


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.toml"))


@functools.lru_cache(maxsize=None)
def load_target(name_or_path: str) -> Target:
    """Load a target by name (hw/targets/<name>.toml) or by path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return load_target_file(p)
    path = TARGET_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise TargetError(f"unknown target {name_or_path!r}; known: {', '.join(target_names())}")
    t = load_target_file(path)
    if t.name != name_or_path:
        raise TargetError(f"{path}: field name is {t.name!r}, expected {name_or_path!r}")
    return t
