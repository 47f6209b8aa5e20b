"""The weight-tile layout the matrix unit reads, defined once.

A K x N matrix W (k: reduction axis, n: output column) is cut into tiles of `width` k's by
`lanes` n's. Tile (kt, nt) lives at byte address

    base + (nt * wn + kt) * tile_bytes           (wn: tiles between n-tiles, >= ceil(K/width))

and inside a tile, element (k, n) is FP16 word (n % lanes) * width + (k % width): lane l's
`width` weights are contiguous. A tile is one beat on every HBM channel, so one read of all
channels feeds every lane of the MPU for one cycle. KV caches use the same layout: K is stored
with tokens as columns (n = token), V transposed with tokens as rows (k = token).
"""

from __future__ import annotations

import numpy as np


def ktiles(K: int, width: int) -> int:
    return max(1, -(-K // width))


def ntiles(N: int, lanes: int) -> int:
    return max(1, -(-N // lanes))


def tile_word_offsets(k: np.ndarray, n: np.ndarray, wn: int, lanes: int, width: int) -> np.ndarray:
    """FP16 word offset of element (k, n) from the base (vectorised)."""
    k = np.asarray(k, np.int64)
    n = np.asarray(n, np.int64)
    tile = (n // lanes) * wn + (k // width)
    return tile * (lanes * width) + (n % lanes) * width + (k % width)


def pack_tiles(w: np.ndarray, lanes: int, width: int, wn: int | None = None) -> np.ndarray:
    """K x N FP16 (bits or float16) -> the tile stream (uint16), zero padded to whole tiles."""
    w = np.asarray(w)
    if w.dtype == np.float16:
        w = w.view(np.uint16)
    K, N = w.shape
    KT, NT = ktiles(K, width), ntiles(N, lanes)
    wn = KT if wn is None else wn
    if wn < KT:
        raise ValueError(f"wn={wn} is less than the {KT} k-tiles of a {K}-long reduction")
    padded = np.zeros((KT * width, NT * lanes), np.uint16)
    padded[:K, :N] = w
    # (KT, W, NT, L) -> (NT, KT, L, W)
    t = padded.reshape(KT, width, NT, lanes).transpose(2, 0, 3, 1)
    if wn > KT:
        full = np.zeros((NT, wn, lanes, width), np.uint16)
        full[:, :KT] = t
        t = full
    return np.ascontiguousarray(t).reshape(-1)


def unpack_view(words: np.ndarray, K: int, N: int, lanes: int, width: int, wn: int) -> np.ndarray:
    """Inverse of pack_tiles on a uint16 array starting at the base: a K x N array (copy)."""
    return unpack_batch(words, K, N, lanes, width, wn)[0]


def unpack_batch(words: np.ndarray, K: int, N: int, lanes: int, width: int, wn: int,
                 batch: int = 1, bstride: int = 0) -> np.ndarray:
    """`batch` matrices whose tiles start `bstride` tiles apart: a (batch, K, N) array (copy)."""
    KT, NT = ktiles(K, width), ntiles(N, lanes)
    tw = lanes * width
    need = (batch - 1) * bstride * tw + ((NT - 1) * wn + KT) * tw
    if words.size < need:
        raise ValueError("tile stream too short")
    s = words.strides[0]
    t = np.lib.stride_tricks.as_strided(
        words, (batch, NT, KT, lanes, width), (bstride * tw * s, wn * tw * s, tw * s, width * s, s))
    return t.transpose(0, 2, 4, 1, 3).reshape(batch, KT * width, NT * lanes)[:, :K, :N]


def tile_bytes_needed(K: int, N: int, lanes: int, width: int, wn: int | None = None) -> int:
    KT, NT = ktiles(K, width), ntiles(N, lanes)
    wn = KT if wn is None else wn
    return ((NT - 1) * wn + KT) * lanes * width * 2
