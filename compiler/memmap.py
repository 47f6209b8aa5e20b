"""The memory map of each card: every tensor placed in HBM (or DDR), made once here.

The HBM is one flat address space interleaved over the pseudo-channels at the port width
(dfx.arch.hbm), and every region is aligned to a stripe (one beat on every channel =
one weight tile), so region r occupies the same channel bytes on *every* channel
(dfx.arch.hbm.region_extent): weights stream from all 32 channels at once. The manifest, the host's buffers,
the Vitis link config and the cocotb memory models all read this map.

Order in HBM: code, small parameters (LayerNorm, biases), weight tiles layer by layer, the
LM head, embeddings (when the target has no DDR); then the zero-initialised regions, which
need no bytes in the bundle: host I/O and the KV caches.
"""

from __future__ import annotations

import dataclasses

from dfx.arch import isa, kernel
from dfx.arch.layout import ktiles, ntiles, tile_bytes_needed
from dfx.arch.target import Target
from dfx.compiler.partition import Partition, plan_partition
from dfx.errors import ModelError


@dataclasses.dataclass
class Region:
    name: str
    space: str  # "hbm" | "ddr"
    addr: int
    nbytes: int
    kind: str  # code | params | weights | embed | io | kv
    zero: bool = False  # zero-initialised: no bytes in the bundle

    @property
    def end(self) -> int:
        return self.addr + self.nbytes


@dataclasses.dataclass
class CardPlan:
    card: int
    regions: dict  # name -> Region
    hbm_end: int  # end of all HBM regions
    hbm_data_end: int  # end of the regions that carry bytes
    ddr_end: int
    widths: dict  # attn, proj, ffn, vocab widths and offsets of this card
    kv: dict  # per-cache geometry

    def r(self, name) -> Region:
        return self.regions[name]


class _Alloc:
    def __init__(self, space, align, start=0):
        self.space, self.align, self.pos = space, align, start
        self.regions = {}

    def add(self, name, nbytes, kind, zero=False):
        nbytes = max(nbytes, 1)
        self.pos = -(-self.pos // self.align) * self.align
        r = Region(name, self.space, self.pos, nbytes, kind, zero)
        self.regions[name] = r
        self.pos += nbytes
        return r


def kv_geometry(cfg, target: Target, max_seq: int) -> dict:
    L, W = target.matrix.lanes, target.matrix.width
    hd = cfg.head_dim
    k_wn = ktiles(hd, W)  # K: k = head dim, n = token
    v_wn = ktiles(max_seq, W)  # V (transposed): k = token, n = head dim
    return {
        "k_wn": k_wn, "k_head_tiles": ntiles(max_seq, L) * k_wn,
        "v_wn": v_wn, "v_head_tiles": ntiles(hd, L) * v_wn,
    }


def plan_card(cfg, part: Partition, j: int, target: Target, max_seq: int, code_bytes: int = 0) -> CardPlan:
    L, W = target.matrix.lanes, target.matrix.width
    d, F, V = cfg.n_embd, cfg.d_ff, cfg.vocab_size
    a0, a1 = part.attn[j]
    p0, p1 = part.proj[j]
    f0, f1 = part.ffn[j]
    v0, v1 = part.vocab[j]
    aw, pw, fw, vw = a1 - a0, p1 - p0, f1 - f0, v1 - v0
    heads = part.heads[j][1] - part.heads[j][0]
    stripe = target.tile_bytes
    hbm = _Alloc("hbm", stripe)
    hbm.add("code", max(code_bytes, isa.INSTR_BYTES), "code")
    bias_words = 3 * aw + pw + fw + pw
    for layer in range(cfg.n_layer):
        hbm.add(f"h{layer}.params", (4 * d + bias_words) * 2, "params")
    hbm.add("ln_f", 2 * d * 2, "params")
    for layer in range(cfg.n_layer):
        hbm.add(f"h{layer}.qkv", tile_bytes_needed(d, 3 * aw, L, W), "weights")
        hbm.add(f"h{layer}.proj", tile_bytes_needed(d, pw, L, W), "weights")
        hbm.add(f"h{layer}.fc", tile_bytes_needed(d, fw, L, W), "weights")
        hbm.add(f"h{layer}.fc2", tile_bytes_needed(F, pw, L, W), "weights")
    hbm.add("lm_head", tile_bytes_needed(d, vw, L, W), "weights")
    emb = _Alloc("ddr", 64) if target.ddr.present else hbm
    emb.add("wte_rows", V * d * 2, "embed")
    emb.add("wpe_rows", max_seq * d * 2, "embed")
    data_end = hbm.pos
    hbm.add("io.ids", target.buffers.max_rows * 4, "io", zero=True)
    hbm.add("io.logits", vw * 2, "io", zero=True)
    hbm.add("io.argmax", 2 * isa.ARGMAX_WORDS, "io", zero=True)
    hbm.add("io.status", kernel.STATUS_BYTES, "io", zero=True)
    kv = kv_geometry(cfg, target, max_seq)
    for layer in range(cfg.n_layer):
        hbm.add(f"h{layer}.k", heads * kv["k_head_tiles"] * target.tile_bytes, "kv", zero=True)
        hbm.add(f"h{layer}.v", heads * kv["v_head_tiles"] * target.tile_bytes, "kv", zero=True)
    regions = dict(hbm.regions)
    if emb is not hbm:
        regions.update(emb.regions)
    widths = {"attn": (a0, a1), "proj": (p0, p1), "ffn": (f0, f1), "vocab": (v0, v1), "heads": part.heads[j],
              "bias_words": bias_words}
    return CardPlan(j, regions, hbm.pos, data_end, emb.pos if emb is not hbm else 0, widths, kv)


def check_fits(cfg, n: int, target: Target, max_seq: int, plans: list[CardPlan]) -> None:
    """Refuse, in one line, a model that does not fit; name the smallest N that would."""
    worst = max(plans, key=lambda p: p.hbm_end)
    over_hbm = worst.hbm_end > target.hbm_bytes
    over_ddr = target.ddr.present and max(p.ddr_end for p in plans) > target.ddr.bytes
    if not (over_hbm or over_ddr):
        return
    need = worst.hbm_end if over_hbm else max(p.ddr_end for p in plans)
    have = target.hbm_bytes if over_hbm else target.ddr.bytes
    what = "HBM" if over_hbm else "DDR"
    fits = None
    for m in range(n + 1, cfg.n_head + 1):
        part = plan_partition(cfg, m, target.matrix.lanes)
        ps = [plan_card(cfg, part, j, target, max_seq) for j in range(m)]
        if max(p.hbm_end for p in ps) <= target.hbm_bytes and (
                not target.ddr.present or max(p.ddr_end for p in ps) <= target.ddr.bytes):
            fits = m
            break
    hint = f"the smallest --fpgas that fits is {fits}" if fits else "no --fpgas up to the head count fits"
    raise ModelError(f"{cfg.name} does not fit: {need / 2**30:.2f} GiB of {what} per card at --fpgas {n}, "
                     f"the {target.name} card has {have / 2**30:.2f} GiB; {hint}")
