"""External memories of one card: HBM (flat, interleaved over pseudo-channels) and DDR.

The ISA addresses HBM with one flat byte address, interleaved over the pseudo-channels by
the rule of dfx.arch.hbm; the per-channel byte counters follow it.
"""

from __future__ import annotations

import numpy as np

from dfx.arch.hbm import channel_split, rows_split, stripes
from dfx.errors import AddressError


class Memory:
    """A flat byte-addressed memory that grows on demand up to its capacity."""

    def __init__(self, name: str, capacity: int, port_bytes: int, channels: int):
        self.name, self.capacity = name, capacity
        self.port_bytes, self.channels = port_bytes, channels
        self.buf = np.zeros(0, np.uint8)
        self.read_bytes = np.zeros(channels, np.int64)
        self.write_bytes = np.zeros(channels, np.int64)
        self._watch: list = []  # caches over ranges: objects with .invalidate(lo, hi)
        self._splits: dict = {}  # (addr, rows, cols, stride) -> rows_split: the same rows move every step

    # --------------------------------------------------------------- extent
    def ensure(self, end: int) -> None:
        if end > self.capacity:
            raise AddressError(f"{self.name} address 0x{end:x} is past its capacity of {self.capacity} bytes")
        if end > self.buf.size:
            new = max(end, min(self.capacity, self.buf.size * 3 // 2))
            new += new & 1
            grown = np.zeros(new, np.uint8)
            grown[: self.buf.size] = self.buf
            self.buf = grown

    def _check(self, addr: int, nbytes: int) -> None:
        if addr < 0 or addr + nbytes > self.capacity:
            raise AddressError(
                f"{self.name} access [0x{addr:x}, 0x{addr + nbytes:x}) is outside its {self.capacity} bytes"
            )
        self.ensure(addr + nbytes)

    # --------------------------------------------------------------- raw access
    def read(self, addr: int, nbytes: int, count: bool = True) -> np.ndarray:
        self._check(addr, nbytes)
        if count:
            self.read_bytes += channel_split(addr, nbytes, self.port_bytes, self.channels)
        return self.buf[addr: addr + nbytes]

    def write(self, addr: int, data, count: bool = True) -> None:
        data = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).ravel()
        self._check(addr, data.size)
        self.buf[addr: addr + data.size] = data
        if count:
            self.write_bytes += channel_split(addr, data.size, self.port_bytes, self.channels)
        self.invalidate(addr, addr + data.size)

    def watch(self, cache) -> None:
        self._watch.append(cache)

    def invalidate(self, lo: int, hi: int) -> None:
        for c in self._watch:
            c.invalidate(lo, hi)

    # --------------------------------------------------------------- FP16 matrices
    def rows16(self, addr: int, rows: int, cols: int, stride: int) -> np.ndarray:
        """rows x cols FP16 words at addr with a row stride in bytes (a strided view, counted)."""
        if rows == 0 or cols == 0:
            return np.zeros((rows, cols), np.uint16)
        if addr % 2 or stride % 2:
            raise AddressError(f"{self.name} FP16 access at 0x{addr:x} (stride {stride}) is not 2-byte aligned")
        span = (rows - 1) * stride + cols * 2
        self._check(addr, span)
        self._count_rows(self.read_bytes, addr, rows, cols, stride)
        base = self.buf[addr: addr + span + (span & 1)].view(np.uint16)
        if stride == cols * 2 or rows == 1:
            return base[: rows * cols].reshape(rows, cols)
        if stride > cols * 2 and addr + rows * stride <= self.buf.size:  # rows apart: one reshape
            return self.buf[addr: addr + rows * stride].view(np.uint16).reshape(rows, stride // 2)[:, :cols]
        return np.lib.stride_tricks.as_strided(base, (rows, cols), (stride, 2))

    def _count_rows(self, counter, addr, rows, cols, stride):
        key = (addr, rows, cols, stride)
        split = self._splits.get(key)
        if split is None:
            if len(self._splits) >= 4096:
                self._splits.clear()
            split = self._splits[key] = rows_split(addr, rows, cols, stride, self.port_bytes, self.channels)
        counter += split

    def write_rows16(self, addr: int, data: np.ndarray, stride: int) -> None:
        rows, cols = data.shape
        if rows == 0 or cols == 0:
            return
        if addr % 2 or stride % 2:
            raise AddressError(f"{self.name} FP16 access at 0x{addr:x} (stride {stride}) is not 2-byte aligned")
        span = (rows - 1) * stride + cols * 2
        self._check(addr, span)
        base = self.buf[addr: addr + span + (span & 1)].view(np.uint16)
        view = np.lib.stride_tricks.as_strided(base, (rows, cols), (stride, 2), writeable=True)
        view[...] = data
        self._count_rows(self.write_bytes, addr, rows, cols, stride)
        self.invalidate(addr, addr + span)

    def scatter16(self, addrs: np.ndarray, values: np.ndarray) -> None:
        """Write FP16 words at arbitrary (even) byte addresses: the transpose unit's writes."""
        if addrs.size == 0:
            return
        lo, hi = int(addrs.min()), int(addrs.max()) + 2
        if lo % 2 or (addrs & 1).any():
            raise AddressError(f"{self.name} FP16 scatter at odd address")
        self._check(lo, hi - lo)
        self.buf[: self.buf.size - (self.buf.size & 1)].view(np.uint16)[addrs // 2] = values
        beats = addrs // self.port_bytes
        self.write_bytes += np.bincount(beats % self.channels, minlength=self.channels) * 2
        self.invalidate(lo, hi)

    # --------------------------------------------------------------- channel images
    def load_channel_image(self, channel: int, data: np.ndarray) -> None:
        stripe = self.port_bytes * self.channels
        nbeats = -(-data.size // self.port_bytes)
        self.ensure(nbeats * stripe)
        padded = np.zeros(nbeats * self.port_bytes, np.uint8)
        padded[: data.size] = data
        stripes(self.buf[: nbeats * stripe], self.port_bytes, self.channels)[:, channel, :] = \
            padded.reshape(-1, self.port_bytes)
        self.invalidate(0, nbeats * stripe)
