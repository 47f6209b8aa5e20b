"""The flat-address-to-channel rule (dfx.arch.hbm): every function agrees with channel_of,
checked byte by byte against a brute-force placement."""

import numpy as np
import pytest

from dfx.arch import hbm

P, C = 16, 4


def brute(addr, nbytes):
    out = np.zeros(C, np.int64)
    for a in range(addr, addr + nbytes):
        out[hbm.channel_of(a, P, C)[0]] += 1
    return out


def test_channel_of_places_beats_round_robin():
    assert hbm.channel_of(0, P, C) == (0, 0)
    assert hbm.channel_of(P + 3, P, C) == (1, 3)
    assert hbm.channel_of(C * P + 5, P, C) == (0, P + 5)


@pytest.mark.parametrize("addr,nbytes", [(0, 0), (0, 1), (5, 11), (5, 12), (13, 200), (64, 64), (1003, 777)])
def test_channel_split_counts_each_byte_on_its_channel(addr, nbytes):
    assert hbm.channel_split(addr, nbytes, P, C).tolist() == brute(addr, nbytes).tolist()


def test_rows_split_sums_rows():
    rng = np.random.default_rng(1)
    for _ in range(50):
        addr, rows, cols = int(rng.integers(0, 500)) * 2, int(rng.integers(0, 6)), int(rng.integers(0, 40))
        stride = cols * 2 + int(rng.integers(0, 3)) * 2 * int(rng.integers(0, 2))
        want = sum((brute(addr + r * stride, cols * 2) for r in range(rows)), np.zeros(C, np.int64))
        assert hbm.rows_split(addr, rows, cols, stride, P, C).tolist() == want.tolist()


def test_deinterleave_puts_each_byte_where_channel_of_says_and_interleave_inverts_it():
    rng = np.random.default_rng(2)
    flat = rng.integers(0, 256, 1000, dtype=np.uint8)  # not a whole number of stripes: padded
    chans = hbm.deinterleave(flat, P, C)
    assert {c.size for c in chans} == {-(-1000 // (P * C)) * P}
    for a in range(flat.size):
        ch, off = hbm.channel_of(a, P, C)
        assert chans[ch][off] == flat[a]
    back = hbm.interleave(chans, P)
    assert back[:1000].tolist() == flat.tolist() and not back[1000:].any()


def test_beat_chunks_cover_the_range_once_at_beat_boundaries():
    chunks = list(hbm.beat_chunks(13, 100, P, C))
    assert sum(n for *_x, n in chunks) == 100
    assert [off for _c, _o, off, _n in chunks] == [0] + list(np.cumsum([n for *_x, n in chunks])[:-1])
    for ch, coff, off, n in chunks:
        assert (ch, coff) == hbm.channel_of(13 + off, P, C)
        assert (13 + off) // P == (13 + off + n - 1) // P  # never across a beat


def test_region_extent_of_a_stripe_aligned_region_holds_exactly_its_bytes():
    addr, nbytes = 3 * P * C, 5 * P * C + 7
    off, per = hbm.region_extent(addr, nbytes, P, C)
    for a in (addr, addr + nbytes - 1):
        ch, coff = hbm.channel_of(a, P, C)
        assert off <= coff < off + per


def test_beats_per_channel_counts_partial_beats_once():
    addrs = np.array([0, 2, 4, P, P + 2, 5 * P])  # beats 0, 1, 5
    assert hbm.beats_per_channel(addrs, P, C).tolist() == [1, 2, 0, 0]
