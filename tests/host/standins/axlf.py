"""Write a small xclbin (axlf container) for tests, byte for byte as XRT lays it out (not a
bitstream: its sections are what the test gives).

The structs are XRT's src/runtime_src/core/include/xrt/detail/xclbin.h, declared here again with
ctypes (natural C alignment, so the offsets come from the declarations, not from the reader in
dfx.host.xclbin, which hard-codes them); the sizes xclbin.h asserts are asserted below. The file is
written as xclbinutil writes it (XRT's tools/xclbinutil/XclBinClass.cxx: magic "xclbin2",
m_signature_length -1 and reserved bytes 0xFF, the section headers after the axlf struct, each
section 8-byte aligned, m_length = the file's size). A KEYVALUE_METADATA payload is the JSON of
SectionKeyValueMetadata::marshalFromJSON, written with boost::property_tree::write_json(pretty=false),
which escapes '/' and ends with a newline.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

KEYVALUE_METADATA, MEM_TOPOLOGY, BITSTREAM = 15, 6, 0


class axlf_section_header(ctypes.LittleEndianStructure):
    _fields_ = [("m_sectionKind", ctypes.c_uint32), ("m_sectionName", ctypes.c_char * 16),
                ("m_sectionOffset", ctypes.c_uint64), ("m_sectionSize", ctypes.c_uint64)]


class axlf_header(ctypes.LittleEndianStructure):
    _fields_ = [("m_length", ctypes.c_uint64), ("m_timeStamp", ctypes.c_uint64),
                ("m_featureRomTimeStamp", ctypes.c_uint64), ("m_versionPatch", ctypes.c_uint16),
                ("m_versionMajor", ctypes.c_uint8), ("m_versionMinor", ctypes.c_uint8),
                ("m_mode", ctypes.c_uint16), ("m_actionMask", ctypes.c_uint16),
                ("m_interface_uuid", ctypes.c_ubyte * 16), ("m_platformVBNV", ctypes.c_char * 64),
                ("uuid", ctypes.c_ubyte * 16), ("m_debug_bin", ctypes.c_char * 16),
                ("m_numSections", ctypes.c_uint32)]


class axlf(ctypes.LittleEndianStructure):
    _fields_ = [("m_magic", ctypes.c_char * 8), ("m_signature_length", ctypes.c_int32),
                ("reserved", ctypes.c_ubyte * 28), ("m_keyBlock", ctypes.c_ubyte * 256),
                ("m_uniqueId", ctypes.c_uint64), ("m_header", axlf_header),
                ("m_sections", axlf_section_header * 1)]


assert ctypes.sizeof(axlf_section_header) == 40 and ctypes.sizeof(axlf_header) == 152  # as xclbin.h asserts


def keyvalue_payload(keys: dict[str, str]) -> bytes:
    doc = {"key_values": [{"key": k, "value": v} for k, v in keys.items()]}
    return (json.dumps(doc, separators=(",", ":")).replace("/", "\\/") + "\n").encode()


def write_xclbin(path, sections: list[tuple[int, str, bytes]], uuid: bytes = bytes(range(16)),
                 vbnv: bytes = b"xilinx_u280_gen3x16_xdma_1_202211_1") -> Path:
    """sections: (kind, name, payload). Returns the path."""
    n = len(sections)
    head = ctypes.sizeof(axlf) - ctypes.sizeof(axlf_section_header)
    offsets, pos = [], head + n * ctypes.sizeof(axlf_section_header)
    for _kind, _name, data in sections:
        pos += -pos % 8
        offsets.append(pos)
        pos += len(data)
    top = axlf()
    top.m_magic = b"xclbin2"
    top.m_signature_length = -1
    ctypes.memset(ctypes.addressof(top) + axlf.reserved.offset, 0xFF, 28)
    h = top.m_header
    h.m_length, h.m_versionMajor, h.m_numSections = pos, 2, n
    h.m_platformVBNV = vbnv
    ctypes.memmove(ctypes.addressof(h) + axlf_header.uuid.offset, uuid, 16)
    out = bytearray(bytes(top)[:head])
    for (kind, name, data), off in zip(sections, offsets):
        out += bytes(axlf_section_header(kind, name.encode(), off, len(data)))
    for (_kind, _name, data), off in zip(sections, offsets):
        out += bytes(off - len(out)) + data
    assert len(out) == pos
    Path(path).write_bytes(out)
    return Path(path)


def dfx_xclbin(path, keys: dict[str, str], bitstream: bytes = b"\xaa" * 1000) -> Path:
    """An xclbin with a stand-in bitstream section, then the USER keys (as `make xclbin` adds them)."""
    return write_xclbin(path, [(BITSTREAM, "", bitstream), (KEYVALUE_METADATA, "", keyvalue_payload(keys))])
