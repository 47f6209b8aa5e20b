"""Model parallelism over N FPGAs, as Megatron and DFX do it.

Attention is split by heads, the projection and both FFN matrices by output columns, the
LM head by vocabulary columns; LayerNorm and the residual stream are replicated. After
each split product, a ring all-gather gives every core the whole vector (4 syncs per
layer, as DFX). Every output column is computed whole by one core, in the same order as on
one core, so the appliance's result is bit-identical for every N.

Splits may be uneven (gpt2-xl's 25 heads over 4 cards: 7, 6, 6, 6): any N from 1 to the
number of heads works. Column splits prefer multiples of the MPU's lanes.
"""

from __future__ import annotations

import dataclasses

from dfx.errors import ModelError


def split_even(total: int, n: int, quantum: int = 1) -> list[tuple[int, int]]:
    """Split range(total) into n contiguous parts, sizes multiples of `quantum` where possible."""
    units = -(-total // quantum)
    base, extra = divmod(units, n)
    out, lo = [], 0
    for i in range(n):
        size = (base + (1 if i < extra else 0)) * quantum
        hi = min(total, lo + size)
        out.append((lo, hi))
        lo = hi
    return out


@dataclasses.dataclass(frozen=True)
class Partition:
    n: int
    heads: tuple[tuple[int, int], ...]  # per core: [h0, h1)
    attn: tuple[tuple[int, int], ...]  # per core: columns of the attention output (heads * head_dim)
    proj: tuple[tuple[int, int], ...]  # per core: output columns of attn.c_proj and mlp.c_proj
    ffn: tuple[tuple[int, int], ...]  # per core: output columns of mlp.c_fc
    vocab: tuple[tuple[int, int], ...]  # per core: LM-head columns

    @property
    def even(self) -> bool:
        return all(len({hi - lo for lo, hi in s}) == 1 for s in (self.attn, self.proj, self.ffn))

    def as_dict(self) -> dict:
        return {k: [list(r) for r in v] if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def check_fpgas(n) -> int:
    """The one check of a card count (`--fpgas`, `dfx.compile(fpgas=...)`, `dfx perf`)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ModelError(f"--fpgas must be a positive integer, got {n!r}")
    return n


def plan_partition(cfg, n: int, lanes: int) -> Partition:
    check_fpgas(n)
    if n > cfg.n_head:
        raise ModelError(f"--fpgas {n} is more than the {cfg.n_head} attention heads of {cfg.name}; "
                         f"use 1 to {cfg.n_head}")
    hd = cfg.head_dim
    heads = split_even(cfg.n_head, n)
    attn = tuple((lo * hd, hi * hd) for lo, hi in heads)
    proj = split_even(cfg.n_embd, n, lanes)
    ffn = split_even(cfg.d_ff, n, lanes)
    vocab = split_even(cfg.vocab_size, n, lanes)
    for name, s in (("projection", proj), ("FFN", ffn), ("vocabulary", vocab)):
        if any(hi <= lo for lo, hi in s):
            raise ModelError(f"--fpgas {n} leaves a card without {name} columns for {cfg.name}")
    return Partition(n, tuple(heads), attn, tuple(proj), tuple(ffn), tuple(vocab))
