"""Read an xclbin (the axlf container XRT loads onto a card) far enough to check its identity.

The layout is XRT's src/runtime_src/core/include/xrt/detail/xclbin.h (little-endian, packed as
the C structs it declares, each size checked there by XCLBIN_STATIC_ASSERT):

    struct axlf                      0   m_magic[8] "xclbin2\\0"
                                     8   int32 m_signature_length, 12 reserved[28]
                                    40   m_keyBlock[256], 296 uint64 m_uniqueId
                                   304   struct axlf_header (152 bytes):
                                           +0 uint64 m_length (the whole file), ... +144 uint32 m_numSections
                                   456   struct axlf_section_header m_sections[m_numSections] (40 bytes each):
                                           +0 uint32 m_sectionKind, +4 char m_sectionName[16],
                                           +24 uint64 m_sectionOffset, +32 uint64 m_sectionSize

Section kind 15 is KEYVALUE_METADATA. `xclbinutil --key-value USER:<key>:<value>` (XRT's
src/runtime_src/tools/xclbinutil/XclBinClass.cxx, XclBin::setKeyValue) keeps the USER keys in that
section as the JSON that SectionKeyValueMetadata::marshalFromJSON writes with boost's write_json:
{"key_values":[{"key":"...","value":"..."},...]}.

`user_keys(path)` returns those keys; `check_identity(path, bundle_target)` compares them with
dfx.arch.kernel.xclbin_keys (what `make xclbin` stamps) and raises one DfxError naming every
difference. Only the headers and that one section are read, not the bitstream.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from dfx.errors import DfxError

MAGIC = b"xclbin2\0"
AXLF_HEADER_AT = 304  # offsetof(struct axlf, m_header)
SECTIONS_AT = 456  # offsetof(struct axlf, m_sections)
SECTION_HEADER = struct.Struct("<I16s4xQQ")  # struct axlf_section_header: 40 bytes
MAX_SECTIONS = 0x10000  # XCLBIN_MAX_NUM_SECTION
KEYVALUE_METADATA = 15  # enum axlf_section_kind


class XclbinError(DfxError):
    """An xclbin that cannot be read, or that was built for another bundle."""


def sections(path) -> list[tuple[int, str, int, int]]:
    """(kind, name, offset, size) of every section of an axlf file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(SECTIONS_AT)
            size = p.stat().st_size
            if len(head) < SECTIONS_AT or head[:8] != MAGIC:
                raise XclbinError(f"{p}: not an xclbin (no 'xclbin2' axlf header)")
            (n,) = struct.unpack_from("<I", head, AXLF_HEADER_AT + 144)
            if n > MAX_SECTIONS or SECTIONS_AT + n * SECTION_HEADER.size > size:
                raise XclbinError(f"{p}: truncated or corrupt xclbin ({n} sections in {size} bytes)")
            raw = f.read(n * SECTION_HEADER.size)
    except FileNotFoundError:
        raise XclbinError(f"no such xclbin: {p}") from None
    except IsADirectoryError:
        raise XclbinError(f"{p} is a folder, not an xclbin") from None
    out = []
    for i in range(n):
        kind, name, off, nbytes = SECTION_HEADER.unpack_from(raw, i * SECTION_HEADER.size)
        if off + nbytes > size:
            raise XclbinError(f"{p}: section {i} (kind {kind}) lies past the end of the file")
        out.append((kind, name.split(b"\0", 1)[0].decode("latin-1"), off, nbytes))
    return out


def user_keys(path) -> dict[str, str]:
    """The USER key-value pairs of an xclbin ({} when it has no KEYVALUE_METADATA section)."""
    keys: dict[str, str] = {}
    for kind, _name, off, nbytes in sections(path):
        if kind != KEYVALUE_METADATA or nbytes == 0:
            continue
        with open(path, "rb") as f:
            f.seek(off)
            data = f.read(nbytes)
        try:  # the section may end in NULs or a newline (boost's write_json ends with one)
            doc = json.loads(data.rstrip(b"\0").decode("utf-8"))
            for kv in doc["key_values"]:
                keys[str(kv["key"])] = str(kv["value"])
        except (ValueError, KeyError, TypeError):
            raise XclbinError(f"{path}: its KEYVALUE_METADATA section is not the JSON xclbinutil writes") from None
    return keys


def check_identity(path, bundle_target: dict) -> dict[str, str]:
    """Raise one XclbinError naming every USER key of the xclbin that differs from what a bundle
    compiled for `bundle_target` (its manifest's "target") needs; return the keys when all match."""
    from dfx.arch.kernel import xclbin_keys

    want = xclbin_keys(bundle_target)
    have = user_keys(path)
    if not any(k in have for k in want):
        raise XclbinError(f"{path} carries no dfx identity (USER keys {', '.join(want)}): it was not built "
                          f"by dfx's `make xclbin`, which stamps them with xclbinutil --key-value")
    diffs = [f"{k} is {have[k]!r} in the xclbin, {v!r} for the bundle" if k in have else f"{k} is missing"
             for k, v in want.items() if have.get(k) != v]
    if diffs:
        raise XclbinError(f"{path} does not match the bundle: {'; '.join(diffs)}")
    return have
