"""The dfx_core kernel's host interface, declared once: register map, arguments, status record.

dfx_core is an XRT-managed RTL kernel (ap_ctrl_hs). Its AXI4-Lite slave `s_axi_control`
holds the control word, the interrupt registers and the kernel arguments in the order
below; pointers take two 32-bit registers, low word first. The two 64-bit scalars (entry and
status) are declared as two 32-bit arguments each, low word then high word (WIDE): pyxrt passes a
scalar as a C int and copies only its 4 bytes (host/cards.py), so a 64-bit scalar argument would
get its high word from whatever the command buffer held. The Verilog header
hw/gen/include/dfx_kernel.vh, the host backends (dfx.host) and docs/hw.md are derived from
these tables (tests fail if the generated files drift).

pyxrt cannot read kernel registers, so the core reports through memory: at END, and when it
stops on an error, it writes a status record to the flat HBM address in the `status`
argument. The record's layout and error codes are declared here too.
"""

from __future__ import annotations

import dataclasses

from dfx.arch import isa
from dfx.arch.target import Target

REG_CTRL, REG_GIE, REG_IER, REG_ISR = 0x00, 0x04, 0x08, 0x0C
AP_START, AP_DONE, AP_IDLE, AP_READY = 1, 2, 4, 8
ARG_BASE = 0x10
CTRL_BITS = {"ap_start": 0, "ap_done": 1, "ap_idle": 2, "ap_ready": 3, "auto_restart": 7}


@dataclasses.dataclass(frozen=True)
class Arg:
    name: str
    bits: int  # 32 or 64
    kind: str  # "scalar" or "pointer"
    doc: str
    offset: int = 0
    port: str = ""  # the m_axi port a pointer addresses


def kernel_args(t: Target) -> tuple[Arg, ...]:
    """Every argument of dfx_core for target t, with its register offset."""
    args = [
        Arg("entry", 32, "scalar", "flat HBM byte address of the program to run, low word"),
        Arg("entry_hi", 32, "scalar", "its high word"),
        *(Arg(name, 32, "scalar", f"r{reg}: {doc}") for name, (reg, doc) in isa.ARG_REGS.items()),
        Arg("status", 32, "scalar", "flat HBM byte address of the status record the core writes, low word"),
        Arg("status_hi", 32, "scalar", "its high word"),
    ]
    for c in range(t.hbm.channels):
        args.append(Arg(f"hbm{c:02d}", 64, "pointer", f"base of HBM pseudo-channel {c}'s buffer",
                        port=f"m_axi_hbm{c:02d}"))
    if t.ddr.present:
        args.append(Arg("ddr", 64, "pointer", "base of the DDR buffer", port="m_axi_ddr"))
    out, off = [], ARG_BASE
    for a in args:
        off = -(-off // (a.bits // 8)) * (a.bits // 8)
        out.append(dataclasses.replace(a, offset=off))
        off += a.bits // 8
    return tuple(out)


# 64-bit values the host sets by one name, carried by two 32-bit arguments: name -> high word's
WIDE = {"entry": "entry_hi", "status": "status_hi"}


def split_wide(values: dict) -> dict:
    """Host argument values -> kernel argument values: each WIDE value as its two 32-bit words."""
    out = {}
    for k, v in values.items():
        if k in WIDE:
            out[k], out[WIDE[k]] = int(v) & 0xFFFFFFFF, int(v) >> 32
        else:
            out[k] = v
    return out


def arg_offsets(t: Target) -> dict[str, int]:
    return {a.name: a.offset for a in kernel_args(t)}


def control_bytes(t: Target) -> int:
    """Size of the AXI4-Lite address space (a power of two)."""
    end = max(a.offset + a.bits // 8 for a in kernel_args(t))
    n = 1
    while n < end:
        n *= 2
    return max(n, 0x40)


# ------------------------------------------------------------------ status record
STATUS_MAGIC = 0x53584644  # "DFXS"
STATUS_BYTES = 256
# code -> (name, the dfx.errors class the host raises)
STATUS_CODES = {
    0: ("ok", None),
    1: ("illegal_instruction", "IllegalInstruction"),
    2: ("address", "AddressError"),
    3: ("embed_id", "AddressError"),
    4: ("ring_fault", "RingFault"),
    5: ("ring_timeout", "RingDeadlock"),
    6: ("sync_mismatch", "SyncMismatch"),
    7: ("no_end", "IllegalInstruction"),
}
STATUS_CODE = {name: code for code, (name, _cls) in STATUS_CODES.items()}

# Ring words (AXI4-Stream tdata): RING_WORDS FP16 payload words in the low bits, then a 32-bit
# header: src core [7:0], sequence number [23:8] (per link, from 0 at every start), check [31:24]
# (the XOR of every payload byte and the src and seq bytes). The first word of every message
# carries kind (payload word 0: 1 send, 2 allgather step), rows (word 1) and cols (word 2);
# tlast marks a message's last word. A receiver checks src, seq and check on every word and
# kind, rows and cols on every message header.
RING_HDR_BITS = 32
RING_KIND = {"send": 1, "allgather": 2}
UNIT_COUNTERS = ("dma", "mpu", "vpu", "net")
# (name, byte offset, bytes)
STATUS_FIELDS = (
    ("magic", 0x00, 4),
    ("code", 0x04, 4),
    ("core", 0x08, 4),
    ("pc", 0x0C, 4),
    ("detail", 0x10, 4),
    ("detail2", 0x14, 4),
    ("cycles", 0x18, 8),
    *((f"busy_{u}", 0x20 + 8 * i, 8) for i, u in enumerate(UNIT_COUNTERS)),
    *((f"stall_{u}", 0x40 + 8 * i, 8) for i, u in enumerate(UNIT_COUNTERS)),
    ("retired", 0x60, 8),
    ("instr", 0x80, 64),
)


def parse_status(raw: bytes) -> dict:
    """A status record's bytes -> its fields (ints; `instr` as bytes)."""
    if len(raw) < STATUS_BYTES:
        raise ValueError(f"status record is {len(raw)} bytes, expected {STATUS_BYTES}")
    out = {}
    for name, off, n in STATUS_FIELDS:
        b = raw[off: off + n]
        out[name] = b if name == "instr" else int.from_bytes(b, "little")
    return out


def build_status(**fields) -> bytes:
    """The inverse of parse_status (tests and stand-ins)."""
    buf = bytearray(STATUS_BYTES)
    for name, off, n in STATUS_FIELDS:
        v = fields.get(name, STATUS_MAGIC if name == "magic" else 0)
        buf[off: off + n] = v if isinstance(v, (bytes, bytearray)) else int(v).to_bytes(n, "little")
    return bytes(buf)



# ------------------------------------------------------------------ xclbin identity
# The hardware sections of a target: what the generated RTL parameters and the link depend on
# (perf and host are the model's and the runtime's, description is prose).
HW_SECTIONS = ("card", "clock", "matrix", "vector", "hbm", "ddr", "ring", "buffers")


def hw_digest(target: dict) -> str:
    """sha256 (first 16 hex digits) of a target's hardware sections; `target` is Target.as_dict()
    or a bundle manifest's "target" object, so a bundle can be checked without its target file."""
    import hashlib
    import json
    hw = {k: target[k] for k in HW_SECTIONS}
    return hashlib.sha256(json.dumps(hw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def xclbin_keys(target: dict) -> dict[str, str]:
    """The USER key-value metadata `make xclbin` stamps into dfx_core's xclbin
    (xclbinutil --key-value USER:<key>:<value>), which the card backends compare with a bundle's
    manifest before they load anything: the ISA the core decodes and the target it was built for."""
    return {"dfx_isa": isa.isa_fingerprint(), "dfx_target": target["name"], "dfx_hw": hw_digest(target)}
