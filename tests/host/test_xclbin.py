"""The xclbin identity check (dfx.host.xclbin) on axlf files the test writes byte for byte per XRT's
xclbin.h (tests/host/standins/axlf.py: ctypes copies of the structs, no real xclbin here), and the
card backends refusing a mismatched xclbin before they load anything."""

import struct
import sys

import pytest

from dfx.arch import kernel
from dfx.arch.target import load_target
from dfx.compiler.bundle import Bundle
from dfx.host import xclbin
from dfx.host.runtime import Session
from standins.axlf import (BITSTREAM, KEYVALUE_METADATA, MEM_TOPOLOGY, axlf, axlf_header, dfx_xclbin,
                           keyvalue_payload, write_xclbin)
from standins.cards import StandinCards
from standins.pyxrt_standin import make_pyxrt


def test_layout_of_the_written_file_is_xclbin_h():
    """The offsets the reader uses are the C structs' (as ctypes lays them out)."""
    assert axlf.m_header.offset == xclbin.AXLF_HEADER_AT
    assert axlf.m_sections.offset == xclbin.SECTIONS_AT
    assert axlf_header.m_numSections.offset == 144


def test_user_keys_read_back_from_an_xclbinutil_style_file(tmp_path):
    keys = {"dfx_isa": "0123abcd", "dfx_target": "u280", "dfx_hw": "f" * 16, "path": "a/b:c"}
    p = write_xclbin(tmp_path / "a.xclbin", [(BITSTREAM, "bit", b"\x01" * 13),
                                             (MEM_TOPOLOGY, "", bytes(40)),
                                             (KEYVALUE_METADATA, "", keyvalue_payload(keys))])
    kinds = [(k, off % 8, n) for k, _name, off, n in xclbin.sections(p)]
    assert kinds == [(BITSTREAM, 0, 13), (MEM_TOPOLOGY, 0, 40), (KEYVALUE_METADATA, 0, len(keyvalue_payload(keys)))]
    assert b"a\\/b:c" in p.read_bytes()  # boost's write_json escapes '/'
    assert xclbin.user_keys(p) == keys
    data = p.read_bytes()
    assert struct.unpack_from("<Q", data, xclbin.AXLF_HEADER_AT)[0] == len(data)  # m_length


def test_identity_matches_and_mismatches_name_every_difference(tmp_path):
    tiny, u280 = load_target("tiny").as_dict(), load_target("u280").as_dict()
    good = dfx_xclbin(tmp_path / "good.xclbin", kernel.xclbin_keys(tiny))
    assert xclbin.check_identity(good, tiny) == kernel.xclbin_keys(tiny)
    with pytest.raises(xclbin.XclbinError) as e:
        xclbin.check_identity(good, u280)
    msg = str(e.value)
    assert "\n" not in msg and "dfx_target is 'tiny' in the xclbin, 'u280' for the bundle" in msg and "dfx_hw" in msg
    assert "dfx_isa" not in msg
    stale = dict(kernel.xclbin_keys(tiny), dfx_isa="0" * 16)
    with pytest.raises(xclbin.XclbinError, match="dfx_isa is '0000000000000000' in the xclbin"):
        xclbin.check_identity(dfx_xclbin(tmp_path / "isa.xclbin", stale), tiny)
    partial = {"dfx_target": "tiny"}
    with pytest.raises(xclbin.XclbinError, match="dfx_isa is missing; dfx_hw is missing"):
        xclbin.check_identity(dfx_xclbin(tmp_path / "partial.xclbin", partial), tiny)
    bare = write_xclbin(tmp_path / "bare.xclbin", [(BITSTREAM, "", b"\0" * 8)])
    with pytest.raises(xclbin.XclbinError, match="carries no dfx identity"):
        xclbin.check_identity(bare, tiny)


def test_bad_files_are_one_line_errors(tmp_path):
    good = dfx_xclbin(tmp_path / "g.xclbin", {"dfx_target": "tiny"}).read_bytes()
    cases = {
        "not.xclbin": b"PK\3\4" + bytes(600),
        "short.xclbin": good[:100],
        "cut.xclbin": good[:-5],  # the last section runs past the end
        "json.xclbin": good.replace(b'"key_values"', b'"key_valueZ"'),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(xclbin.XclbinError) as e:
            xclbin.user_keys(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(xclbin.XclbinError, match="no such xclbin"):
        xclbin.user_keys(tmp_path / "missing.xclbin")


def test_standin_backend_refuses_a_mismatched_xclbin_before_loading(monkeypatch, tmp_path, tiny_bundle):
    b = Bundle(tiny_bundle(1))
    cards = StandinCards(load_target("tiny"), 1)
    monkeypatch.setitem(sys.modules, "pyxrt", make_pyxrt(cards))
    wrong = dict(b.manifest["target"], name="u280")
    x = dfx_xclbin(tmp_path / "dfx_core.xclbin", kernel.xclbin_keys(wrong))
    with pytest.raises(xclbin.XclbinError, match="dfx_target is 'u280' in the xclbin, 'tiny' for the bundle"):
        Session(b, backend="xrt", xclbin=str(x))
    assert cards.alloc == {} and cards.sync_log == [[]]  # no buffer made, nothing moved
