"""The dfx instruction set, declared once as field tables.

Every instruction is one 512-bit word (64 bytes: one HBM beat on the U280, so the fetch
unit reads one instruction per cycle). Bits 5:0 hold the opcode, bits 7:6 are reserved
(zero), and the format's fields follow from bit 8 upward in table order; every bit not
covered by a field must be zero. The encoder, the decoder, the assembler, the
disassembler, docs/isa.md and hw/gen/include/dfx_isa.vh all derive from the tables below.

Field kinds:
  u    unsigned integer
  s    signed integer (two's complement)
  reg  integer register index r0..r15
  cnt  a count: bit 15 clear -> immediate 0..32767; bit 15 set -> the value of register
       r[bits 3:0] (bits 14:4 zero). Written `12` or `r1` in assembly.
  flag one bit, written as a bare word in assembly when set
  enum a small unsigned code with names
  f16  an IEEE binary16 bit pattern, written as a number in assembly
  f32  an IEEE binary32 bit pattern, written as a number in assembly

Ordering rule (the scoreboard): Instructions issue in program order to four units (DMA,
MPU, VPU, NET) that run in parallel. An instruction waits until every earlier instruction
whose write set overlaps its read or write set, or whose read set overlaps its write set,
has completed (address tags over the on-chip buffer, HBM and DDR; the register file is
one tag). The result therefore equals strictly sequential execution, which is what the
functional simulator does. BARRIER waits for the named units to drain regardless.
"""

from __future__ import annotations

import dataclasses
import hashlib

INSTR_BITS = 512
INSTR_BYTES = INSTR_BITS // 8
OPCODE_BITS = 6
FIELD_BASE = 8  # first bit after the opcode and two reserved bits
NUM_REGS = 16
CNT_REG_FLAG = 1 << 15

# Argument registers: name -> (register, meaning). The controller loads each from the kernel
# argument of the same name (dfx.arch.kernel) before a run starts; the registers after them
# are free for programs.
ARG_REGS = {
    "ntok": (1, "tokens in this call (rows of the summarization block, 1 when generating)"),
    "pos": (2, "position of the first token of this call (tokens already in the KV cache)"),
    "core": (3, "this core's id on the ring, 0 .. ncores-1"),
    "ncores": (4, "cores on the ring"),
}
FIRST_FREE_REG = 1 + max(r for r, _doc in ARG_REGS.values())

# The two phases of generation. Each card holds one program per phase (in this order in its
# code region); bundles, manifests, the runtime's statistics, `dfx generate --json` and the
# performance model all name them so.
SUMMARIZATION, GENERATION = PHASES = ("summarization", "generation")

# lmhead's argmax record: FP16 words index low half, index high half, value (see its ref below)
ARGMAX_WORDS = 3

UNITS = ("ctrl", "dma", "mpu", "vpu", "net")
BARRIER_BITS = {"dma": 1, "mpu": 2, "vpu": 4, "net": 8}
SPACES = ("hbm", "ddr")
BCAST = ("none", "row", "col", "imm")


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    width: int
    kind: str = "u"
    doc: str = ""
    values: tuple = ()  # names for kind == "enum"

    @property
    def signed(self) -> bool:
        return self.kind == "s"


def F(name, width, kind="u", doc="", values=()):
    return Field(name, width, kind, doc, tuple(values))


def CNT(name, doc):
    return Field(name, 16, "cnt", doc)


# ---------------------------------------------------------------------------------------
# Formats: named field lists. Several opcodes share one format.
# ---------------------------------------------------------------------------------------
FORMATS: dict[str, tuple[Field, ...]] = {
    "none": (),
    "barrier": (F("units", 4, doc="units to drain: 1 dma, 2 mpu, 4 vpu, 8 net"),),
    "seti": (F("rd", 4, "reg", "destination register (not r0)"), F("imm", 32, "s", "value")),
    "alui": (F("rd", 4, "reg", "destination register (not r0)"), F("rs", 4, "reg", "source register"),
             F("imm", 32, "s", "immediate operand")),
    "alu": (F("rd", 4, "reg", "destination register (not r0)"), F("rs", 4, "reg", "first source"),
            F("rt", 4, "reg", "second source")),
    "mem": (
        F("space", 2, "enum", "external memory", SPACES),
        CNT("rows", "rows moved"),
        CNT("cols", "FP16 words per row"),
        F("v", 24, doc="buffer word address of row 0"),
        F("vs", 16, doc="buffer row stride (words)"),
        F("m", 40, doc="memory byte address of row 0"),
        F("ms", 32, doc="memory row stride (bytes)"),
        F("mreg", 4, "reg", "index register added to the memory address (r0: none)"),
        F("mregs", 32, doc="bytes per unit of mreg"),
    ),
    "embed": (
        F("space", 2, "enum", "memory holding the table", SPACES),
        CNT("rows", "tokens gathered"),
        CNT("cols", "FP16 words per table row"),
        F("v", 24, doc="buffer word address of row 0"),
        F("vs", 16, doc="buffer row stride (words)"),
        F("m", 40, doc="table byte address"),
        F("ms", 32, doc="table row stride (bytes)"),
        F("ids", 40, doc="HBM byte address of the int32 token ids"),
        F("limit", 24, doc="rows in the table; an id at or past it is an error"),
    ),
    "kv": (
        F("tr", 1, "flag", "transpose: rows become the reduction (k) axis, as V is stored"),
        F("batch", 8, doc="heads stored"),
        CNT("rows", "tokens stored"),
        CNT("cols", "values per token and head (head dim)"),
        F("v", 24, doc="buffer word address of row 0, head 0"),
        F("vs", 16, doc="buffer row stride (words)"),
        F("vbs", 16, doc="buffer stride between heads (words)"),
        F("m", 40, doc="HBM byte address of head 0's cache (tile aligned)"),
        F("wn", 16, doc="tiles between n-tiles of the cache (its k-tile count)"),
        F("mbs", 32, doc="tiles between heads' caches"),
        F("preg", 4, "reg", "register holding the token position of row 0"),
    ),
    "mm": (
        F("gelu", 1, "flag", "apply GELU to the FP16 result"),
        F("bias", 1, "flag", "add the FP16 bias vector at aux"),
        F("batch", 8, doc="independent products (heads); 0 is treated as 1"),
        CNT("m", "rows of x"),
        CNT("k", "reduction length"),
        CNT("n", "output columns"),
        F("x", 24, doc="buffer word address of x"),
        F("xs", 16, doc="x row stride (words)"),
        F("xbs", 16, doc="x batch stride (words)"),
        F("xreg", 4, "reg", "register: x starts at row r[xreg] (r0: row 0)"),
        F("w", 40, doc="HBM byte address of the weight tiles (tile aligned)"),
        F("wn", 16, doc="tiles between consecutive n-tiles (the k-tile count of a weight)"),
        F("wbs", 32, doc="tiles between batches"),
        F("out", 24, doc="buffer word address of the result"),
        F("os", 16, doc="result row stride (words)"),
        F("obs", 16, doc="result batch stride (words)"),
        F("aux", 24, doc="bias (conv1d), row max (maskedmm) or argmax (lmhead) address"),
        F("as", 16, doc="aux row stride (words)"),
        F("abs", 16, doc="aux batch stride (words)"),
        F("scale", 16, "f16", "multiplies the FP32 sum before rounding; 0 means no scaling"),
        F("mreg", 4, "reg", "mask register: column j of row i is masked when j > r[mreg] + i"),
    ),
    "vec": (
        F("bcast", 2, "enum", "shape of operand b", BCAST),
        CNT("rows", "rows"),
        CNT("cols", "columns"),
        F("d", 24, doc="destination word address"),
        F("ds", 16, doc="destination row stride"),
        F("a", 24, doc="operand a word address"),
        F("as", 16, doc="operand a row stride"),
        F("b", 24, doc="operand b word address"),
        F("bs", 16, doc="operand b row stride (col broadcast: stride between rows' scalars)"),
        F("imm", 32, "f32", "scalar operand (bcast=imm) or scale of a reduction (0: none)"),
    ),
    "net": (
        CNT("rows", "rows"),
        CNT("cols", "FP16 words per row"),
        F("v", 24, doc="buffer word address"),
        F("vs", 16, doc="buffer row stride (words)"),
    ),
    "gather": (
        CNT("rows", "rows"),
        CNT("cols", "FP16 words per row of each core's slice"),
        F("src", 24, doc="this core's slice"),
        F("ss", 16, doc="slice row stride (words)"),
        F("dst", 24, doc="gathered rows: core j's slice lands at column j*cols"),
        F("ds", 16, doc="gathered row stride (words)"),
    ),
}


@dataclasses.dataclass(frozen=True)
class Op:
    name: str
    code: int
    unit: str
    fmt: str
    doc: str
    ref: str  # semantics as a short reference loop nest

    @property
    def fields(self) -> tuple[Field, ...]:
        return FORMATS[self.fmt]


_MM_REF = """for b < batch, i < m, j < n:
    acc = tile_0; acc = acc + tile_t for each further k-tile t, in order, where
        tile_t = tree_W(f32(x[b,i,k]) * f32(W[b,k,j]) for the W k's of tile t)   # k >= K: +0
    (bias) acc = acc + f32(bias[j]);  (scale) acc = acc * f32(scale)
    y = rne16(acc){mask}; (gelu) y = gelu16(y)
    out[b,i,j] = y{post}"""

OPS: tuple[Op, ...] = (
    # control
    Op("nop", 0x00, "ctrl", "none", "do nothing", "pass"),
    Op("end", 0x01, "ctrl", "none", "finish the run and raise ap_done to the host",
       "wait for every unit to drain; done = 1"),
    Op("barrier", 0x02, "ctrl", "barrier", "wait until the named units have drained",
       "for u in units: wait(idle[u])"),
    Op("seti", 0x03, "ctrl", "seti", "set a register", "r[rd] = imm"),
    Op("addi", 0x04, "ctrl", "alui", "add an immediate", "r[rd] = r[rs] + imm"),
    Op("muli", 0x05, "ctrl", "alui", "multiply by an immediate", "r[rd] = r[rs] * imm"),
    Op("add", 0x06, "ctrl", "alu", "add registers", "r[rd] = r[rs] + r[rt]"),
    # DMA
    Op("load", 0x08, "dma", "mem", "external memory to the buffer",
       "base = m + r[mreg]*mregs\nfor i < rows, c < cols: buf[v + i*vs + c] = mem16[base + i*ms + 2c]"),
    Op("store", 0x09, "dma", "mem", "buffer to external memory",
       "base = m + r[mreg]*mregs\nfor i < rows, c < cols: mem16[base + i*ms + 2c] = buf[v + i*vs + c]"),
    Op("embed", 0x0A, "dma", "embed", "gather table rows by token id (embedding lookup)",
       "for i < rows: t = hbm_i32[ids + 4i]; check t < limit\n"
       "    for c < cols: buf[v + i*vs + c] = mem16[m + t*ms + 2c]"),
    Op("kvstore", 0x0B, "dma", "kv", "append rows to a KV cache in tile layout (tr: V, transposed)",
       "for b < batch, i < rows, c < cols: p = r[preg] + i\n"
       "    (k, j) = (p, c) if tr else (c, p)\n"
       "    hbm16[tile_addr(m + b*mbs*tile_bytes, wn, k, j)] = buf[v + b*vbs + i*vs + c]"),
    # matrix unit
    Op("conv1d", 0x10, "mpu", "mm", "x W + b with optional fused GELU (QKV, projection, FFN)",
       _MM_REF.format(mask="", post="")),
    Op("maskedmm", 0x11, "mpu", "mm", "Q K^T, scaled, causally masked, with the row max",
       _MM_REF.format(mask="; if j > r[mreg] + i: y = -inf", post="") +
       "\nfor j in n .. roundup(n, W)-1: out[b,i,j] = -inf   # padding read by the next product"
       "\naux[b*abs + i*as] = max_L(out[b,i,0:n])      # lanes-wide comparator trees, then in order"),
    Op("mm", 0x12, "mpu", "mm", "plain product (Score x V)", _MM_REF.format(mask="", post="")),
    Op("lmhead", 0x13, "mpu", "mm", "LM-head logits with fused argmax",
       _MM_REF.format(mask="", post="") +
       "\na = aux + b*abs + i*as: a[0], a[1] = low, high half of the index of the first maximum of"
       "\n    out[b,i,0:n] (NaN never wins); a[2] = its value"),
    # vector unit
    Op("vadd", 0x18, "vpu", "vec", "element-wise add", "d[i,c] = rne16(f32(a[i,c]) + B(i,c))"),
    Op("vsub", 0x19, "vpu", "vec", "element-wise subtract", "d[i,c] = rne16(f32(a[i,c]) - B(i,c))"),
    Op("vmul", 0x1A, "vpu", "vec", "element-wise multiply", "d[i,c] = rne16(f32(a[i,c]) * B(i,c))"),
    Op("vmax", 0x1B, "vpu", "vec", "element-wise maximum", "d[i,c] = max16(a[i,c], B(i,c))"),
    Op("vcopy", 0x1C, "vpu", "vec", "copy bits", "d[i,c] = a[i,c]"),
    Op("vexp", 0x1D, "vpu", "vec", "exponential", "d[i,c] = exp16(a[i,c])"),
    Op("vrecip", 0x1E, "vpu", "vec", "reciprocal", "d[i,c] = recip16(a[i,c])"),
    Op("vrsqrt", 0x1F, "vpu", "vec", "reciprocal square root", "d[i,c] = rsqrt16(a[i,c])"),
    Op("vsum", 0x20, "vpu", "vec", "row sum (accumulate), optionally scaled",
       "d[i*ds] = rne16(scale(sum_V(f32(a[i,c]) for c < cols)))"),
    Op("vsumsq", 0x21, "vpu", "vec", "row sum of squares, optionally scaled",
       "d[i*ds] = rne16(scale(sum_V(f32(a[i,c])^2 for c < cols)))"),
    Op("vrmax", 0x22, "vpu", "vec", "row maximum", "d[i*ds] = max_V(a[i,c] for c < cols)"),
    # router
    Op("send", 0x28, "net", "net", "send rows to the next core on the ring",
       "link[core -> core+1].push(buf[v + i*vs + c] for i < rows, c < cols)"),
    Op("recv", 0x29, "net", "net", "receive rows from the previous core on the ring",
       "rows x cols words = link[core-1 -> core].pop(); buf[v + i*vs + c] = them"),
    Op("allgather", 0x2A, "net", "gather", "all-gather of per-core column slices over the ring",
       "for j < ncores, i < rows, c < cols: dst[i*ds + j*cols + c] = src_of_core_j[i*ss + c]\n"
       "(ncores-1 ring steps: send the newest slice on, receive the next)"),
)

BY_NAME = {op.name: op for op in OPS}
BY_CODE = {op.code: op for op in OPS}


def _layout(fields):
    pos = FIELD_BASE
    out = []
    for f in fields:
        out.append((f, pos))
        pos += f.width
    if pos > INSTR_BITS:
        raise AssertionError(f"format overflows {INSTR_BITS} bits")
    return tuple(out)


LAYOUTS = {name: _layout(fields) for name, fields in FORMATS.items()}


def isa_fingerprint() -> str:
    """A short hash of the tables: bundles and headers record it, so drift is caught."""
    h = hashlib.sha256()
    for op in OPS:
        h.update(f"{op.name}:{op.code}:{op.fmt};".encode())
    for name, lay in sorted(LAYOUTS.items()):
        for f, pos in lay:
            h.update(f"{name}.{f.name}:{pos}:{f.width}:{f.kind};".encode())
    return h.hexdigest()[:16]


ISA_VERSION = 1
