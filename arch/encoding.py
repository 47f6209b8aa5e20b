"""Binary encoding and text assembly of dfx instructions, derived from dfx.arch.isa.

Assembly syntax, one instruction per line:

    mnemonic [flag ...] [field=value ...]      ; comment

Fields left out are zero. Values are decimal or 0x-hex integers, `rN` for registers
(and for counts taken from a register), names for enum fields, and decimal numbers
for f16/f32 fields (or their bit patterns in 0x-hex: NaNs print so, keeping their payload).
The disassembler prints every non-zero field in table order, so
`assemble(disassemble(x)) == x` for every legal instruction.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct

import numpy as np

from dfx.arch import isa
from dfx.errors import EncodingError

PROG_MAGIC = b"DFXPROG\0"
PROG_HEADER = struct.Struct("<8sIIQ16s24s")  # magic, isa version, count, entry, fingerprint, reserved (zero)
assert PROG_HEADER.size == isa.INSTR_BYTES


@dataclasses.dataclass(frozen=True)
class Instr:
    """One decoded instruction: the op and its raw field values (ints)."""

    op: isa.Op
    f: dict

    def __post_init__(self):  # fields as plain attributes: the interpreters read them often
        for k, v in self.f.items():
            object.__setattr__(self, k, v)

    def __str__(self):
        return to_asm(self)


def make(name: str, **fields) -> Instr:
    """Build an instruction from python values (floats for f16/f32, 'rN' or ints for counts)."""
    op = isa.BY_NAME.get(name)
    if op is None:
        raise EncodingError(f"unknown instruction {name!r}")
    known = {f.name: f for f in op.fields}
    out = {}
    for key, val in fields.items():
        fld = known.get(key)
        if fld is None:
            raise EncodingError(f"{name}: no field {key!r}")
        out[key] = _to_raw(name, fld, val)
    for fld in op.fields:
        out.setdefault(fld.name, 0)
    ins = Instr(op, out)
    encode(ins)  # range checks
    return ins


def cnt(v) -> int:
    """Raw encoding of a count: an int immediate or a register name 'rN'."""
    if isinstance(v, str):
        return isa.CNT_REG_FLAG | _reg_index(v)
    if not 0 <= v < isa.CNT_REG_FLAG:
        raise EncodingError(f"count {v} out of range 0..{isa.CNT_REG_FLAG - 1}")
    return int(v)


def _reg_index(s: str) -> int:
    m = re.fullmatch(r"r(\d+)", s.strip().lower())
    if not m or int(m.group(1)) >= isa.NUM_REGS:
        raise EncodingError(f"bad register {s!r} (r0..r{isa.NUM_REGS - 1})")
    return int(m.group(1))


def f16_bits(x: float) -> int:
    return int(np.array(x, dtype=np.float16).view(np.uint16))


def f32_bits(x: float) -> int:
    return int(np.array(x, dtype=np.float32).view(np.uint32))


def _to_raw(opname, fld: isa.Field, val):
    if fld.kind == "cnt":
        return cnt(val)
    if fld.kind == "reg":
        return _reg_index(val) if isinstance(val, str) else int(val)
    if fld.kind == "enum":
        if isinstance(val, str):
            if val not in fld.values:
                raise EncodingError(f"{opname}: {fld.name} must be one of {', '.join(fld.values)}")
            return fld.values.index(val)
        return int(val)
    if fld.kind == "f16":
        return f16_bits(val) if isinstance(val, float) else int(val)
    if fld.kind == "f32":
        return f32_bits(val) if isinstance(val, float) else int(val)
    if fld.kind == "flag":
        return int(bool(val))
    return int(val)


def _check_field(op: isa.Op, fld: isa.Field, v: int) -> None:
    if fld.kind == "s":
        lo, hi = -(1 << (fld.width - 1)), (1 << (fld.width - 1)) - 1
    else:
        lo, hi = 0, (1 << fld.width) - 1
    if not lo <= v <= hi:
        raise EncodingError(f"{op.name}: field {fld.name}={v} out of range {lo}..{hi}")
    if fld.kind == "enum" and v >= len(fld.values):
        raise EncodingError(f"{op.name}: field {fld.name}={v} is not one of {', '.join(fld.values)}")
    if fld.kind == "cnt" and v & isa.CNT_REG_FLAG and v & 0x7FF0:
        raise EncodingError(f"{op.name}: count field {fld.name} names a register with stray bits 0x{v:04x}")
    if fld.name == "rd" and v == 0:
        raise EncodingError(f"{op.name}: r0 is constant zero and cannot be written")


def encode_int(ins: Instr) -> int:
    word = ins.op.code
    for fld, pos in isa.LAYOUTS[ins.op.fmt]:
        v = ins.f.get(fld.name, 0)
        _check_field(ins.op, fld, v)
        if fld.kind == "s" and v < 0:
            v += 1 << fld.width
        word |= v << pos
    return word


def encode(ins: Instr) -> bytes:
    return encode_int(ins).to_bytes(isa.INSTR_BYTES, "little")


def decode(raw: bytes | int) -> Instr:
    """Decode one instruction word; raises EncodingError for anything the ISA does not allow."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        if len(raw) != isa.INSTR_BYTES:
            raise EncodingError(f"an instruction word is {isa.INSTR_BYTES} bytes, got {len(raw)}")
        raw = int.from_bytes(raw, "little")
    word = raw
    code = word & ((1 << isa.OPCODE_BITS) - 1)
    op = isa.BY_CODE.get(code)
    if op is None:
        raise EncodingError(f"illegal opcode 0x{code:02x}")
    used = (1 << isa.OPCODE_BITS) - 1
    f = {}
    for fld, pos in isa.LAYOUTS[op.fmt]:
        mask = (1 << fld.width) - 1
        v = (word >> pos) & mask
        used |= mask << pos
        if fld.kind == "s" and v >> (fld.width - 1):
            v -= 1 << fld.width
        _check_field(op, fld, v)
        f[fld.name] = v
    stray = word & ~used
    if stray:
        raise EncodingError(f"{op.name}: reserved bits set (bit {stray.bit_length() - 1})")
    return Instr(op, f)


def decode_stream(data: bytes, base_pc: int = 0) -> list[Instr]:
    if len(data) % isa.INSTR_BYTES:
        raise EncodingError(f"instruction stream of {len(data)} bytes is not a multiple of {isa.INSTR_BYTES}")
    out = []
    for i in range(len(data) // isa.INSTR_BYTES):
        try:
            out.append(decode(data[i * isa.INSTR_BYTES:(i + 1) * isa.INSTR_BYTES]))
        except EncodingError as e:
            raise EncodingError(f"pc {base_pc + i}: {e}") from None
    return out


# ------------------------------------------------------------------ assembly text
def _float_of(fld: isa.Field, v: int) -> float:
    """The number an f16/f32 field's bits hold."""
    return float(np.array(v, dtype=f"<u{fld.width // 8}").view(f"<f{fld.width // 8}"))


def _fmt_value(fld: isa.Field, v: int) -> str:
    if fld.kind == "cnt":
        return f"r{v & 0xF}" if v & isa.CNT_REG_FLAG else str(v)
    if fld.kind == "reg":
        return f"r{v}"
    if fld.kind == "enum":
        return fld.values[v]
    if fld.kind in ("f16", "f32"):
        x = _float_of(fld, v)
        if x != x:  # a NaN: its bits, or the payload would be lost
            return f"0x{v:x}"
        return repr(x) if fld.kind == "f16" else f"{x:.9g}"
    if fld.width >= 20 and fld.kind == "u":
        return f"0x{v:x}"
    return str(v)


def to_asm(ins: Instr) -> str:
    parts = [ins.op.name]
    for fld in ins.op.fields:
        v = ins.f.get(fld.name, 0)
        if v == 0:
            continue
        parts.append(fld.name if fld.kind == "flag" else f"{fld.name}={_fmt_value(fld, v)}")
    return " ".join(parts)


def _parse_value(op: isa.Op, fld: isa.Field, text: str) -> int:
    try:
        if fld.kind in ("cnt", "reg") and text.lower().startswith("r"):
            return _to_raw(op.name, fld, text)
        if fld.kind == "enum":
            return _to_raw(op.name, fld, text)
        if fld.kind in ("f16", "f32"):
            if text.lower().startswith("0x"):  # the bit pattern
                return int(text, 16)
            x = float(text)
            with np.errstate(over="ignore"):  # refused just below
                raw = _to_raw(op.name, fld, x)
            if math.isfinite(x) and not math.isfinite(_float_of(fld, raw)):
                raise EncodingError(f"{op.name}: {text} is outside the {fld.kind} range of field {fld.name}")
            return raw
        if fld.kind == "flag":
            return int(text, 0)
        return _to_raw(op.name, fld, int(text, 0))
    except ValueError:
        raise EncodingError(f"{op.name}: bad value {text!r} for field {fld.name}") from None


def parse_asm_line(line: str) -> Instr | None:
    line = line.split(";", 1)[0].split("#", 1)[0].strip()
    if not line:
        return None
    toks = line.split()
    op = isa.BY_NAME.get(toks[0].lower())
    if op is None:
        raise EncodingError(f"unknown instruction {toks[0]!r}")
    fields = {f.name: f for f in op.fields}
    vals = {f.name: 0 for f in op.fields}
    for tok in toks[1:]:
        if "=" in tok:
            key, _, text = tok.partition("=")
            fld = fields.get(key)
            if fld is None:
                raise EncodingError(f"{op.name}: no field {key!r}")
            vals[key] = _parse_value(op, fld, text)
        else:
            fld = fields.get(tok)
            if fld is None or fld.kind != "flag":
                raise EncodingError(f"{op.name}: {tok!r} is not a flag of this instruction")
            vals[tok] = 1
    ins = Instr(op, vals)
    encode(ins)
    return ins


def assemble(text: str) -> list[Instr]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            ins = parse_asm_line(line)
        except EncodingError as e:
            raise EncodingError(f"line {n}: {e}") from None
        if ins is not None:
            out.append(ins)
    return out


def disassemble(prog: list[Instr], base_pc: int = 0) -> str:
    return "\n".join(f"{base_pc + i:6d}  {to_asm(ins)}" for i, ins in enumerate(prog))


# ------------------------------------------------------------------ program files
def pack_program(prog: list[Instr], entry: int = 0) -> bytes:
    """A program file: one 64-byte header word, then the instruction words."""
    head = PROG_HEADER.pack(PROG_MAGIC, isa.ISA_VERSION, len(prog), entry, isa.isa_fingerprint().encode(), bytes(24))
    return head + b"".join(encode(i) for i in prog)


def unpack_program(data: bytes, name: str = "program") -> list[Instr]:
    if len(data) < PROG_HEADER.size or data[:8] != PROG_MAGIC:
        raise EncodingError(f"{name}: not a dfx program (bad magic)")
    magic, ver, count, _entry, fp, reserved = PROG_HEADER.unpack_from(data)
    if ver != isa.ISA_VERSION:
        raise EncodingError(f"{name}: ISA version {ver}, this dfx reads version {isa.ISA_VERSION}")
    if fp != isa.isa_fingerprint().encode():
        raise EncodingError(f"{name}: written for ISA tables with fingerprint {fp.decode('ascii', 'replace')!r}, "
                            f"this dfx has {isa.isa_fingerprint()!r}: recompile it")
    if any(reserved):
        raise EncodingError(f"{name}: reserved header bytes are set (corrupted)")
    body = data[PROG_HEADER.size:]
    if len(body) != count * isa.INSTR_BYTES:
        raise EncodingError(f"{name}: header says {count} instructions, file holds {len(body) / isa.INSTR_BYTES:g}")
    try:
        return decode_stream(body)
    except EncodingError as e:
        raise EncodingError(f"{name}: {e}") from None
