"""Lowering: GPT-2 decoder -> one instruction stream per card and phase.

Both phases run the same code over a block of rows held in registers (dfx.arch.isa.ARG_REGS):
r1 = ntok (rows in this call), r2 = pos (tokens already in the KV cache). Summarization
runs up to `max_rows` prompt tokens per call (the host walks longer prompts block by
block); generation runs one token. Only the on-chip buffer layout differs (its rows).

Derived registers: r8 = pos + ntok (keys visible), r9 = ntok * local heads (score rows),
r10 = ntok - 1 (the row whose logits are wanted); r11..r15 hold constants too wide for a
15-bit count immediate.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dfx.arch import isa
from dfx.arch.encoding import Instr, f16_bits, f32_bits, make
from dfx.arch.layout import ktiles
from dfx.arch.target import Target
from dfx.compiler.memmap import CardPlan
from dfx.errors import ModelError

R_NTOK, R_POS = (f"r{isa.ARG_REGS[k][0]}" for k in ("ntok", "pos"))
R_L, R_SROWS, R_LAST = "r8", "r9", "r10"
CONST_REGS = ("r11", "r12", "r13", "r14", "r15")


@dataclasses.dataclass
class BufferPlan:
    rows: int
    addr: dict  # name -> word address
    words: int


def plan_buffers(cfg, card: CardPlan, target: Target, rows: int, max_seq: int) -> BufferPlan:
    d, F = cfg.n_embd, cfg.d_ff
    W = target.matrix.width
    h0, h1 = card.widths["heads"]
    hl = h1 - h0
    lrow = -(-max_seq // W) * W
    v0, v1 = card.widths["vocab"]
    sizes = [
        ("X", rows * d), ("HN", rows * d), ("T", rows * d),
        ("MEAN", rows), ("VAR", rows), ("RSTD", rows),
        ("LNP", 4 * d), ("BIAS", card.widths["bias_words"]),
        ("QKV", rows * 3 * (card.widths["attn"][1] - card.widths["attn"][0])),
        ("S", rows * hl * lrow), ("RMAX", rows * hl), ("RSUM", rows * hl), ("RINV", rows * hl),
        ("AFULL", rows * d), ("PFULL", rows * d), ("FFULL", rows * F),
        ("LOGITS", v1 - v0), ("ARGMAX", isa.ARGMAX_WORDS),
    ]
    addr, pos = {}, 0
    for name, size in sizes:
        pos = -(-pos // 64) * 64  # keep buffers on 64-word boundaries
        addr[name] = pos
        pos += size
    addr["LROW"] = lrow
    return BufferPlan(rows, addr, pos)


def fit_rows(cfg, card, target, want: int, max_seq: int) -> BufferPlan:
    """The buffer plan for the most rows (<= want) that fit the target's on-chip buffer."""
    rows = want
    while rows >= 1:
        bp = plan_buffers(cfg, card, target, rows, max_seq)
        if bp.words <= target.buffers.vbuf_words:
            return bp
        rows //= 2
    bp = plan_buffers(cfg, card, target, 1, max_seq)
    raise ModelError(f"{cfg.name} needs {bp.words} on-chip buffer words for one token; "
                     f"the {target.name} target has {target.buffers.vbuf_words}")


class Emitter:
    def __init__(self):
        self.prog: list[Instr] = []
        self.consts: dict[int, str] = {}

    def __call__(self, name, **f):
        self.prog.append(make(name, **f))

    def count(self, v: int):
        """A count operand: an immediate, or a constant register for values past 15 bits."""
        if v < 1 << 15:
            return v
        if v not in self.consts:
            if len(self.consts) == len(CONST_REGS):
                raise ModelError("too many wide constants for the constant registers")
            reg = CONST_REGS[len(self.consts)]
            self.consts[v] = reg
            self.prog.insert(0, make("seti", rd=reg, imm=v))
        return self.consts[v]


def lower_program(cfg, card: CardPlan, part, target: Target, bp: BufferPlan, max_seq: int) -> list[Instr]:
    """The instruction stream of one card for a block of up to bp.rows tokens."""
    W = target.matrix.width
    AW = isa.ARGMAX_WORDS
    d, F, V = cfg.n_embd, cfg.d_ff, cfg.vocab_size
    hd = cfg.head_dim
    n, j = part.n, card.card
    B = bp.addr
    R = card.regions
    a0, a1 = card.widths["attn"]
    p0, p1 = card.widths["proj"]
    f0, f1 = card.widths["ffn"]
    v0, v1 = card.widths["vocab"]
    aw, pw, fw, vw = a1 - a0, p1 - p0, f1 - f0, v1 - v0
    h0, h1 = card.widths["heads"]
    hl = h1 - h0
    lrow = B["LROW"]
    kv = card.kv
    inv_d = f32_bits(float(np.float32(1.0) / np.float32(d)))
    eps = f32_bits(float(cfg.layer_norm_epsilon))
    scale = f16_bits(1.0 / np.sqrt(hd))
    emb_space = "ddr" if target.ddr.present else "hbm"
    for field, v in (("score row stride", hl * lrow), ("FFN width", F), ("model width", d)):
        if v >= 1 << 16:
            raise ModelError(f"{cfg.name}: {field} {v} exceeds the ISA's 16-bit strides")

    e = Emitter()
    rows = R_NTOK

    def layernorm(src, g, b, dst):
        e("vsum", rows=rows, cols=d, d=B["MEAN"], ds=1, a=src, **{"as": d}, imm=inv_d)
        e("vsub", bcast="col", rows=rows, cols=d, d=B["T"], ds=d, a=src, **{"as": d}, b=B["MEAN"], bs=1)
        e("vsumsq", rows=rows, cols=d, d=B["VAR"], ds=1, a=B["T"], **{"as": d}, imm=inv_d)
        e("vadd", bcast="imm", rows=rows, cols=1, d=B["VAR"], ds=1, a=B["VAR"], **{"as": 1}, imm=eps)
        e("vrsqrt", rows=rows, cols=1, d=B["RSTD"], ds=1, a=B["VAR"], **{"as": 1})
        e("vmul", bcast="col", rows=rows, cols=d, d=B["T"], ds=d, a=B["T"], **{"as": d}, b=B["RSTD"], bs=1)
        e("vmul", bcast="row", rows=rows, cols=d, d=B["T"], ds=d, a=B["T"], **{"as": d}, b=g)
        e("vadd", bcast="row", rows=rows, cols=d, d=dst, ds=d, a=B["T"], **{"as": d}, b=b)

    def gather(buf, full, slices):
        """Every core wrote its columns of `buf` in place; make every core hold all of them."""
        if n == 1:
            return
        widths = [hi - lo for lo, hi in slices]
        lo_j, hi_j = slices[j]
        if len(set(widths)) == 1:
            e("allgather", rows=rows, cols=e.count(widths[j]), src=buf + lo_j, ss=full, dst=buf, ds=full)
            return
        for s in range(1, n):  # uneven slices: the same ring walk, slice by slice
            fwd, rcv = (j - s + 1) % n, (j - s) % n
            e("send", rows=rows, cols=e.count(widths[fwd]), v=buf + slices[fwd][0], vs=full)
            e("recv", rows=rows, cols=e.count(widths[rcv]), v=buf + slices[rcv][0], vs=full)

    def conv1d(x, xs, k, ncols, w, out, os, bias, gelu=False):
        e("conv1d", bias=1, gelu=int(gelu), m=rows, k=e.count(k), n=e.count(ncols), x=x, xs=xs,
          w=w, wn=ktiles(k, W), out=out, os=os, aux=bias)

    e("add", rd=R_L, rs=R_NTOK, rt=R_POS)
    e("muli", rd=R_SROWS, rs=R_NTOK, imm=hl)
    e("addi", rd=R_LAST, rs=R_NTOK, imm=-1)
    e("embed", space=emb_space, rows=rows, cols=d, v=B["X"], vs=d, m=R["wte_rows"].addr, ms=d * 2,
      ids=R["io.ids"].addr, limit=V)
    e("load", space=emb_space, rows=rows, cols=d, v=B["T"], vs=d, m=R["wpe_rows"].addr, ms=d * 2,
      mreg=R_POS, mregs=d * 2)
    e("vadd", rows=rows, cols=d, d=B["X"], ds=d, a=B["X"], **{"as": d}, b=B["T"], bs=d)
    bias_words = card.widths["bias_words"]
    b_qkv, b_proj, b_fc = B["BIAS"], B["BIAS"] + 3 * aw, B["BIAS"] + 3 * aw + pw
    b_fc2 = b_fc + fw
    for layer in range(cfg.n_layer):
        pr = R[f"h{layer}.params"].addr
        e("load", rows=4, cols=d, v=B["LNP"], vs=d, m=pr, ms=d * 2)
        e("load", rows=1, cols=e.count(bias_words), v=B["BIAS"], vs=bias_words, m=pr + 8 * d, ms=bias_words * 2)
        # attention
        layernorm(B["X"], B["LNP"], B["LNP"] + d, B["HN"])
        conv1d(B["HN"], d, d, 3 * aw, R[f"h{layer}.qkv"].addr, B["QKV"], 3 * aw, b_qkv)
        for part_off, cache, wn, tiles, tr in ((aw, "k", kv["k_wn"], kv["k_head_tiles"], 0),
                                               (2 * aw, "v", kv["v_wn"], kv["v_head_tiles"], 1)):
            e("kvstore", tr=tr, batch=hl, rows=rows, cols=hd, v=B["QKV"] + part_off, vs=3 * aw, vbs=hd,
              m=R[f"h{layer}.{cache}"].addr, wn=wn, mbs=tiles, preg=R_POS)
        e("maskedmm", batch=hl, m=rows, k=hd, n=R_L, x=B["QKV"], xs=3 * aw, xbs=hd,
          w=R[f"h{layer}.k"].addr, wn=kv["k_wn"], wbs=kv["k_head_tiles"],
          out=B["S"], os=hl * lrow, obs=lrow, aux=B["RMAX"], abs=1, scale=scale, mreg=R_POS, **{"as": hl})
        e("vsub", bcast="col", rows=R_SROWS, cols=R_L, d=B["S"], ds=lrow, a=B["S"], **{"as": lrow},
          b=B["RMAX"], bs=1)
        e("vexp", rows=R_SROWS, cols=R_L, d=B["S"], ds=lrow, a=B["S"], **{"as": lrow})
        e("vsum", rows=R_SROWS, cols=R_L, d=B["RSUM"], ds=1, a=B["S"], **{"as": lrow})
        e("vrecip", rows=R_SROWS, cols=1, d=B["RINV"], ds=1, a=B["RSUM"], **{"as": 1})
        e("vmul", bcast="col", rows=R_SROWS, cols=R_L, d=B["S"], ds=lrow, a=B["S"], **{"as": lrow},
          b=B["RINV"], bs=1)
        e("mm", batch=hl, m=rows, k=R_L, n=hd, x=B["S"], xs=hl * lrow, xbs=lrow,
          w=R[f"h{layer}.v"].addr, wn=kv["v_wn"], wbs=kv["v_head_tiles"],
          out=B["AFULL"] + a0, os=d, obs=hd)
        gather(B["AFULL"], d, part.attn)
        conv1d(B["AFULL"], d, d, pw, R[f"h{layer}.proj"].addr, B["PFULL"] + p0, d, b_proj)
        gather(B["PFULL"], d, part.proj)
        e("vadd", rows=rows, cols=d, d=B["X"], ds=d, a=B["X"], **{"as": d}, b=B["PFULL"], bs=d)
        # feed-forward
        layernorm(B["X"], B["LNP"] + 2 * d, B["LNP"] + 3 * d, B["HN"])
        conv1d(B["HN"], d, d, fw, R[f"h{layer}.fc"].addr, B["FFULL"] + f0, F, b_fc, gelu=True)
        gather(B["FFULL"], F, part.ffn)
        conv1d(B["FFULL"], F, F, pw, R[f"h{layer}.fc2"].addr, B["PFULL"] + p0, d, b_fc2)
        gather(B["PFULL"], d, part.proj)
        e("vadd", rows=rows, cols=d, d=B["X"], ds=d, a=B["X"], **{"as": d}, b=B["PFULL"], bs=d)
    e("load", rows=2, cols=d, v=B["LNP"], vs=d, m=R["ln_f"].addr, ms=d * 2)
    layernorm(B["X"], B["LNP"], B["LNP"] + d, B["HN"])
    e("lmhead", m=1, k=e.count(d), n=e.count(vw), x=B["HN"], xs=d, xreg=R_LAST, w=R["lm_head"].addr,
      wn=ktiles(d, W), out=B["LOGITS"], os=vw, aux=B["ARGMAX"], **{"as": AW})
    e("store", rows=1, cols=e.count(vw), v=B["LOGITS"], vs=vw, m=R["io.logits"].addr, ms=vw * 2)
    e("store", rows=1, cols=AW, v=B["ARGMAX"], vs=AW, m=R["io.argmax"].addr, ms=2 * AW)
    e("end")
    return e.prog
