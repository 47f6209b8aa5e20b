"""Weight packing: canonical FP16 tensors -> each card's HBM and DDR images.

Each tensor is read once and sliced for every card (the partition), then written into the
regions of dfx.compiler.memmap in the tile layout of dfx.arch.layout. Shows a progress bar.
"""

from __future__ import annotations

import numpy as np
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from dfx.arch.layout import pack_tiles
from dfx.arch.target import Target
from dfx.compiler.memmap import CardPlan


LAYER_TENSORS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                 "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                 "mlp.c_proj.weight", "mlp.c_proj.bias")


def _f16(a) -> np.ndarray:
    a = np.asarray(a)
    return (a if a.dtype == np.float16 else a.astype(np.float16)).view(np.uint16)


class Images:
    """Flat HBM (and DDR) data images of every card."""

    def __init__(self, plans: list[CardPlan], target: Target):
        self.plans, self.target = plans, target
        self.hbm = [np.zeros(p.hbm_data_end, np.uint8) for p in plans]
        self.ddr = [np.zeros(p.ddr_end, np.uint8) for p in plans]

    def put(self, card: int, region: str, words: np.ndarray, offset: int = 0) -> None:
        r = self.plans[card].regions[region]
        raw = np.ascontiguousarray(words, dtype=np.uint16).view(np.uint8).ravel()
        if offset + raw.size > r.nbytes:
            raise AssertionError(f"{region}: {raw.size} bytes at +{offset} overflow the region's {r.nbytes}")
        img = (self.ddr if r.space == "ddr" else self.hbm)[card]
        img[r.addr + offset: r.addr + offset + raw.size] = raw


def pack_weights(model, plans: list[CardPlan], part, target: Target, max_seq: int,
                 progress: bool = True) -> Images:
    cfg, wts = model.config, model.weights
    L, W = target.matrix.lanes, target.matrix.width
    d = cfg.n_embd
    img = Images(plans, target)
    names = wts.names()
    bar = tqdm(total=len(names), desc="packing weights", unit="tensor", disable=not progress, leave=False)

    def fetch(group):
        return {name: _f16(wts.get_f16(name)) for name in group}

    # Tensors are read (or generated) one layer ahead on a second thread while this one packs:
    # numpy releases the GIL in both, and at most two layers are in memory at once.
    layer_names = [[f"h.{i}.{s}" for s in LAYER_TENSORS] for i in range(cfg.n_layer)]
    groups = layer_names + [["ln_f.weight", "ln_f.bias", "wte", "wpe"]]
    pool = ThreadPoolExecutor(1)
    pending = pool.submit(fetch, groups[0])

    def next_group(i):
        nonlocal pending
        got = pending.result()
        if i + 1 < len(groups):
            pending = pool.submit(fetch, groups[i + 1])
        bar.update(len(got))
        return got

    for layer in range(cfg.n_layer):
        t = next_group(layer)
        p = f"h.{layer}."
        ln = [t[p + s] for s in ("ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias")]
        w_attn, b_attn = t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"]
        w_proj, b_proj = t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"]
        w_fc, b_fc = t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"]
        w_fc2, b_fc2 = t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"]
        for j, plan in enumerate(plans):
            a0, a1 = plan.widths["attn"]
            p0, p1 = plan.widths["proj"]
            f0, f1 = plan.widths["ffn"]
            qkv_cols = np.r_[a0:a1, d + a0:d + a1, 2 * d + a0:2 * d + a1]
            biases = np.concatenate([b_attn[qkv_cols], b_proj[p0:p1], b_fc[f0:f1], b_fc2[p0:p1]])
            img.put(j, f"h{layer}.params", np.concatenate(ln + [biases]))
            img.put(j, f"h{layer}.qkv", pack_tiles(w_attn[:, qkv_cols], L, W))
            img.put(j, f"h{layer}.proj", pack_tiles(w_proj[:, p0:p1], L, W))
            img.put(j, f"h{layer}.fc", pack_tiles(w_fc[:, f0:f1], L, W))
            img.put(j, f"h{layer}.fc2", pack_tiles(w_fc2[:, p0:p1], L, W))
        del t, w_attn, w_proj, w_fc, w_fc2
    t = next_group(cfg.n_layer)
    pool.shutdown()
    lnf = np.concatenate([t["ln_f.weight"], t["ln_f.bias"]])
    wte, wpe = t["wte"], t["wpe"]
    for j, plan in enumerate(plans):
        v0, v1 = plan.widths["vocab"]
        img.put(j, "ln_f", lnf)
        img.put(j, "lm_head", pack_tiles(wte[v0:v1].T, L, W))
        img.put(j, "wte_rows", wte)
        img.put(j, "wpe_rows", wpe[:max_seq])
    bar.close()
    return img
