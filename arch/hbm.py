"""The flat-address-to-channel rule of HBM, defined once.

The ISA addresses a card's HBM with one flat byte address. It is interleaved over the
pseudo-channels at the port width P (`target.port_bytes`): flat beat b = addr // P lives on
channel b % C at channel byte offset (b // C) * P. A weight tile (lanes x width x 2 bytes =
C x P, `target.tile_bytes`) is therefore exactly one beat on every channel, and every region
of the compiler's memory map starts on such a stripe (dfx.compiler.memmap), so a region at
flat address a of n bytes lies in channel bytes [a / C, a / C + ceil(n / (C P)) P) of every channel.

The simulator's memory (dfx.sim.memory), the bundle's per-channel images (dfx.compiler.bundle),
the manifest and link.cfg (dfx.compiler.driver, dfx.compiler.vitis), the host's I/O
(dfx.host.hal), the cycle model and the instruction-effects table (dfx.arch.effects) all use
these functions. The RTL's HBM engines implement the same rule (hw/rtl/mem/dfx_hbm_rd.v).
"""

from __future__ import annotations

import numpy as np


def channel_of(addr: int, port_bytes: int, channels: int) -> tuple[int, int]:
    """Flat HBM byte address -> (pseudo-channel, byte offset in that channel)."""
    beat = addr // port_bytes
    return beat % channels, (beat // channels) * port_bytes + addr % port_bytes


def channel_split(addr: int, nbytes: int, port_bytes: int, channels: int) -> np.ndarray:
    """Bytes of the flat range [addr, addr+nbytes) that fall on each channel."""
    out = np.zeros(channels, np.int64)
    if nbytes <= 0:
        return out
    b0, b1 = addr // port_bytes, (addr + nbytes - 1) // port_bytes
    nb = b1 - b0 + 1
    out += (nb // channels) * port_bytes
    rem = nb % channels
    if rem:
        idx = (b0 % channels + np.arange(rem)) % channels
        out[idx] += port_bytes
    out[b0 % channels] -= addr - b0 * port_bytes
    out[b1 % channels] -= (b1 + 1) * port_bytes - (addr + nbytes)
    return out


def rows_split(addr: int, rows: int, cols: int, stride: int, port_bytes: int, channels: int) -> np.ndarray:
    """Bytes per channel of rows x cols FP16 words at `addr` with a row stride in bytes."""
    if rows == 0 or cols == 0:
        return np.zeros(channels, np.int64)
    if stride == cols * 2:
        return channel_split(addr, rows * cols * 2, port_bytes, channels)
    out = np.zeros(channels, np.int64)
    for r in range(rows):
        out += channel_split(addr + r * stride, cols * 2, port_bytes, channels)
    return out


def beats_per_channel(addrs: np.ndarray, port_bytes: int, channels: int) -> np.ndarray:
    """Distinct beats each channel sees when the bytes at `addrs` are written (partial beats count)."""
    beats = np.unique(np.asarray(addrs) // port_bytes)
    return np.bincount(beats % channels, minlength=channels).astype(np.int64)


def beat_chunks(addr: int, nbytes: int, port_bytes: int, channels: int):
    """A flat range split at beat boundaries: (channel, channel offset, offset in the range, bytes)."""
    off = 0
    while off < nbytes:
        ch, caddr = channel_of(addr + off, port_bytes, channels)
        n = min(port_bytes - (addr + off) % port_bytes, nbytes - off)
        yield ch, caddr, off, n
        off += n


def region_extent(addr: int, nbytes: int, port_bytes: int, channels: int) -> tuple[int, int]:
    """(channel offset, channel bytes) of a stripe-aligned region of the flat space: every byte of
    it lies in [offset, offset + bytes) of its channel (the last stripe may be partly used)."""
    stripe = port_bytes * channels
    if addr % stripe:
        raise ValueError(f"region at 0x{addr:x} is not aligned to the {stripe}-byte stripe")
    return addr // channels, -(-nbytes // stripe) * port_bytes


def deinterleave(flat: np.ndarray, port_bytes: int, channels: int) -> list[np.ndarray]:
    """A flat HBM image -> its per-channel images (zero-padded to whole stripes)."""
    stripe = channels * port_bytes
    n = -(-flat.size // stripe) * stripe
    if n != flat.size:
        flat = np.concatenate([flat, np.zeros(n - flat.size, np.uint8)])
    v = flat.reshape(-1, channels, port_bytes)
    return [np.ascontiguousarray(v[:, c, :]).reshape(-1) for c in range(channels)]


def stripes(flat: np.ndarray, port_bytes: int, channels: int) -> np.ndarray:
    """A flat image of whole stripes as a (beats per channel, channel, port bytes) view."""
    return flat.reshape(-1, channels, port_bytes)


def interleave(chans: list[np.ndarray], port_bytes: int) -> np.ndarray:
    """Per-channel images of equal size -> the flat image they interleave into (the inverse of
    `deinterleave`)."""
    return np.stack([np.asarray(c, np.uint8).reshape(-1, port_bytes) for c in chans], axis=1).reshape(-1)
