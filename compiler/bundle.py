"""The bundle on disk: what the compiler writes and the host, simulators and Vitis read.

    BUNDLE/manifest.json                      format version, model, target, partition,
                                              per card: regions, channel files, programs
    BUNDLE/link.cfg                           Vitis v++ --config for the link step
    BUNDLE/fpga<i>/summarization.bin          program files, one per phase (dfx.arch.isa.PHASES;
    BUNDLE/fpga<i>/generation.bin             dfx.arch.encoding.pack_program)
    BUNDLE/fpga<i>/hbm/ch<cc>.bin             one image per HBM pseudo-channel
    BUNDLE/fpga<i>/ddr.bin                    the DDR image (targets with DDR)

Every file and every region carries a sha256 in the manifest, and the manifest carries
the sha256 of its own canonical form, so a flipped bit anywhere is caught on load.
Output is deterministic: the same input gives a byte-identical bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import reprlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dfx.arch.encoding import unpack_program
from dfx.arch.hbm import deinterleave
from dfx.arch.isa import PHASES, SPACES
from dfx.errors import BundleError, EncodingError

FORMAT = "dfx-bundle"
FORMAT_VERSION = 2  # 2: programs and manifest keys named by dfx.arch.isa.PHASES


def sha256(data) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(data)).cast("B") if isinstance(data, np.ndarray)
                          else data).hexdigest()


def _canonical(manifest: dict) -> bytes:
    m = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return json.dumps(m, sort_keys=True, separators=(",", ":")).encode()


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def write_bundle(out: Path, manifest: dict, programs: list[dict], images, target) -> Path:
    """Write a bundle atomically: into OUT.tmp, then renamed, so a failure leaves nothing half-way.
    An earlier bundle (or an empty folder) at OUT is replaced; anything else there is refused."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / "manifest.json").is_file() or not any(out.iterdir()))):
        raise BundleError(f"{out} exists and is not a dfx bundle: not replacing it")
    tmp = out.with_name(out.name + ".tmp")
    try:
        _remove(tmp)
        tmp.mkdir(parents=True)
        _write_files(tmp, manifest, programs, images, target)
        _remove(out)
        os.replace(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # no space, no permission, ...
            raise BundleError(f"cannot write the bundle {out}: {e.strerror or e}") from None
        raise
    return out


def _write_files(tmp: Path, manifest: dict, programs: list[dict], images, target) -> None:
    C, P = target.hbm.channels, target.port_bytes

    def write_card(card):
        j = card["id"]
        cdir = tmp / f"fpga{j}"
        (cdir / "hbm").mkdir(parents=True)
        for phase, blob in programs[j].items():
            (cdir / f"{phase}.bin").write_bytes(blob)
            card["programs"][phase]["file"] = f"fpga{j}/{phase}.bin"
            card["programs"][phase]["sha256"] = sha256(blob)
        flat = images.hbm[j]
        for r in card["regions"]:
            if not r["zero"]:
                src = images.ddr[j] if r["space"] == "ddr" else flat
                r["sha256"] = sha256(src[r["addr"]: r["addr"] + r["bytes"]])
        files = []
        for c, img in enumerate(deinterleave(flat, P, C)):
            name = f"fpga{j}/hbm/ch{c:02d}.bin"
            img.tofile(tmp / name)
            files.append({"channel": c, "file": name, "bytes": int(img.size), "sha256": sha256(img)})
        card["hbm_channels"] = files
        if target.ddr.present:
            name = f"fpga{j}/ddr.bin"
            images.ddr[j].tofile(tmp / name)
            card["ddr"] = {"file": name, "bytes": int(images.ddr[j].size), "sha256": sha256(images.ddr[j])}

    # Cards are independent: hashing, copying and writing release the GIL, so two threads
    # use both cores. Each card fills only its own manifest entry: the output is unchanged.
    with ThreadPoolExecutor(min(2, len(manifest["cards"]))) as pool:
        list(pool.map(write_card, manifest["cards"]))
    link = manifest.get("link_config_text")
    if link is not None:
        (tmp / "link.cfg").write_text(manifest.pop("link_config_text"))
        manifest["link_config"] = {"file": "link.cfg", "sha256": sha256((tmp / "link.cfg").read_bytes())}
    manifest["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------ manifest layout
class _Kind:
    def __init__(self, desc: str, ok):
        self.desc, self.ok = desc, ok


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_rel_file(v) -> bool:
    """A file inside the bundle: a relative path without '..' (nor a NUL byte)."""
    return isinstance(v, str) and v != "" and "\0" not in v and not Path(v).is_absolute() \
        and ".." not in Path(v).parts


NAT = _Kind("a non-negative integer", lambda v: _is_int(v) and 0 <= v < 1 << 63)
POS = _Kind("a positive integer", lambda v: _is_int(v) and 0 < v < 1 << 63)
STR = _Kind("a string", lambda v: isinstance(v, str))
OBJ = _Kind("an object", lambda v: isinstance(v, dict))
FILE = _Kind("a relative path inside the bundle", _is_rel_file)
SPACE = _Kind(" or ".join(map(repr, SPACES)), lambda v: v in SPACES)
CHANNELS = _Kind("'all' or a list of channels", lambda v: v == "all" or (
    isinstance(v, list) and all(NAT.ok(c) for c in v)))
SPAN = _Kind("[first, end) with first <= end", lambda v: isinstance(v, list) and len(v) == 2
             and all(NAT.ok(x) for x in v) and v[0] <= v[1])
FILE_ENTRY = {"file": FILE, "sha256": STR}
# What the readers of a bundle (this class, the runtime, inspect, perf, the CLI) take from its
# manifest. A key ending in '?' may be absent; [spec] is a list of spec.
MANIFEST = {
    "fpgas": POS, "max_seq": POS, "summarization_rows": POS,
    "model": {"name": STR, **{k: POS for k in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")}},
    "weights": OBJ,
    "target": {"name": STR, "hbm": {"channels": POS}},
    "link_config?": FILE_ENTRY,
    "cards": [{
        "id": NAT, "hbm_bytes": NAT, "ddr_bytes": NAT,
        "programs": {ph: {**FILE_ENTRY, "entry": NAT, "instructions": NAT, "rows": POS} for ph in PHASES},
        "hbm_channels": [{**FILE_ENTRY, "channel": NAT, "bytes": NAT}],
        "ddr?": {**FILE_ENTRY, "bytes": NAT},
        "regions": [{"name": STR, "space": SPACE, "kind": STR, "addr": NAT, "bytes": NAT, "channels": CHANNELS,
                     "channel_offset": NAT, "channel_bytes": NAT}],
        "io": {"ids": NAT, "logits": NAT, "argmax": NAT, "status": NAT, "vocab": SPAN},
    }],
}


def _check_layout(v, spec, where: str) -> None:
    """Raise ValueError naming the first place where v does not follow spec."""
    if isinstance(spec, _Kind):
        if not spec.ok(v):
            raise ValueError(f"{where} must be {spec.desc}, got {reprlib.repr(v)}")
    elif isinstance(spec, list):
        if not isinstance(v, list):
            raise ValueError(f"{where} must be a list, got {reprlib.repr(v)}")
        for i, x in enumerate(v):
            _check_layout(x, spec[0], f"{where}[{i}]")
    else:
        if not isinstance(v, dict):
            raise ValueError(f"{where or 'the manifest'} must be an object, got {reprlib.repr(v)}")
        for key, sub in spec.items():
            name = key.rstrip("?")
            if name in v:
                _check_layout(v[name], sub, f"{where}.{name}" if where else name)
            elif not key.endswith("?"):
                raise ValueError(f"{where + '.' if where else ''}{name} is missing")


def check_manifest(m: dict) -> None:
    """The manifest's layout and its counts agree (cards, channels, phases); ValueError if not."""
    _check_layout(m, MANIFEST, "")
    if len(m["cards"]) != m["fpgas"]:
        raise ValueError(f"fpgas is {m['fpgas']} but there are {len(m['cards'])} cards")
    channels = m["target"]["hbm"]["channels"]
    for j, card in enumerate(m["cards"]):
        if card["id"] != j:
            raise ValueError(f"cards[{j}].id is {card['id']}")
        if set(card["programs"]) != set(PHASES):
            raise ValueError(f"cards[{j}].programs must be exactly {', '.join(PHASES)}")
        if [f["channel"] for f in card["hbm_channels"]] != list(range(channels)):
            raise ValueError(f"cards[{j}].hbm_channels must be channels 0 .. {channels - 1} in order")


class Bundle:
    """A bundle read from disk; `verify()` checks every checksum."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise BundleError(f"no such bundle: {self.path}")
        if not self.path.is_dir():
            raise BundleError(f"{self.path} is not a bundle folder")
        mpath = self.path / "manifest.json"
        if not mpath.exists():
            raise BundleError(f"{self.path} has no manifest.json: not a dfx bundle")
        try:
            self.manifest = json.loads(mpath.read_bytes())
        except OSError as e:
            raise BundleError(f"{mpath}: cannot read the manifest ({e.strerror or e})") from None
        except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, nested too deep
            raise BundleError(f"{mpath}: corrupted manifest ({e.__class__.__name__})") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise BundleError(f"{mpath}: not a dfx bundle manifest")
        if m.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"{mpath}: bundle format {reprlib.repr(m.get('format_version'))}, "
                              f"this dfx reads {FORMAT_VERSION}: recompile the model")
        if hashlib.sha256(_canonical(m)).hexdigest() != m.get("manifest_sha256"):
            raise BundleError(f"{mpath}: checksum mismatch: the manifest was modified or corrupted")
        try:  # signed, yet written by something else or edited by hand
            check_manifest(m)
        except ValueError as e:
            raise BundleError(f"{mpath}: malformed manifest: {e}") from None

    @property
    def cards(self) -> list[dict]:
        return self.manifest["cards"]

    @property
    def n(self) -> int:
        return self.manifest["fpgas"]

    def read_file(self, rel: str, want_sha: str) -> bytes:
        p = self.path / rel
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{self.path}: missing file {rel}") from None
        except OSError as e:  # a folder where the file should be, no permission, ...
            raise BundleError(f"{self.path}: cannot read {rel} ({e.strerror or e})") from None
        if sha256(data) != want_sha:
            raise BundleError(f"{self.path}: checksum mismatch in {rel}: the file is corrupted")
        return data

    def _card(self, card: int) -> dict:
        if not 0 <= card < self.n:
            raise BundleError(f"{self.path}: no FPGA {card} (the bundle has 0 .. {self.n - 1})")
        return self.cards[card]

    def _program_entry(self, card: int, phase: str) -> dict:
        info = self._card(card)["programs"].get(phase)
        if info is None:
            raise BundleError(f"{self.path}: no {phase!r} program (phases: {', '.join(PHASES)})")
        return info

    def program(self, card: int, phase: str) -> list:
        info = self._program_entry(card, phase)
        data = self.read_file(info["file"], info["sha256"])
        try:
            return unpack_program(data, info["file"])
        except EncodingError as e:
            raise BundleError(f"{self.path}: {e}") from None

    def program_bytes(self, card: int, phase: str) -> bytes:
        info = self._program_entry(card, phase)
        return self.read_file(info["file"], info["sha256"])

    def hbm_channel(self, card: int, channel: int) -> np.ndarray:
        files = self._card(card)["hbm_channels"]
        if not 0 <= channel < len(files):
            raise BundleError(f"{self.path}: no HBM channel {channel} (the bundle has 0 .. {len(files) - 1})")
        f = files[channel]
        return np.frombuffer(self.read_file(f["file"], f["sha256"]), np.uint8)

    def ddr(self, card: int) -> np.ndarray | None:
        f = self._card(card).get("ddr")
        return None if f is None else np.frombuffer(self.read_file(f["file"], f["sha256"]), np.uint8)

    def region(self, card: int, name: str) -> dict:
        for r in self._card(card)["regions"]:
            if r["name"] == name:
                return r
        raise BundleError(f"{self.path}: card {card} has no region {name}")

    def verify(self) -> None:
        """Check every file's checksum (the manifest's own was checked on open)."""
        for j, card in enumerate(self.cards):
            for phase in card["programs"]:
                self.program(j, phase)
            for c in range(len(card["hbm_channels"])):
                self.hbm_channel(j, c)
            self.ddr(j)
        lc = self.manifest.get("link_config")
        if lc:
            self.read_file(lc["file"], lc["sha256"])
