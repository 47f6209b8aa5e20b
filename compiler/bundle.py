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
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dfx.arch.encoding import unpack_program
from dfx.arch.hbm import deinterleave
from dfx.errors import BundleError, EncodingError

FORMAT = "dfx-bundle"
FORMAT_VERSION = 2  # 2: programs and manifest keys named by dfx.arch.isa.PHASES


def sha256(data) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(data)).cast("B") if isinstance(data, np.ndarray)
                          else data).hexdigest()


def _canonical(manifest: dict) -> bytes:
    m = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return json.dumps(m, sort_keys=True, separators=(",", ":")).encode()


def write_bundle(out: Path, manifest: dict, programs: list[dict], images, target) -> Path:
    """Write a bundle atomically: into OUT.tmp, then renamed, so a failure leaves nothing half-way."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
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
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


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
            self.manifest = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BundleError(f"{mpath}: corrupted manifest ({e.__class__.__name__})") from None
        m = self.manifest
        if m.get("format") != FORMAT:
            raise BundleError(f"{mpath}: not a dfx bundle manifest")
        if m.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"{mpath}: bundle format {m.get('format_version')}, "
                              f"this dfx reads {FORMAT_VERSION}: recompile the model")
        if hashlib.sha256(_canonical(m)).hexdigest() != m.get("manifest_sha256"):
            raise BundleError(f"{mpath}: checksum mismatch: the manifest was modified or corrupted")

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
        if sha256(data) != want_sha:
            raise BundleError(f"{self.path}: checksum mismatch in {rel}: the file is corrupted")
        return data

    def program(self, card: int, phase: str) -> list:
        info = self.cards[card]["programs"][phase]
        data = self.read_file(info["file"], info["sha256"])
        try:
            return unpack_program(data, info["file"])
        except EncodingError as e:
            raise BundleError(f"{self.path}: {e}") from None

    def program_bytes(self, card: int, phase: str) -> bytes:
        info = self.cards[card]["programs"][phase]
        return self.read_file(info["file"], info["sha256"])

    def hbm_channel(self, card: int, channel: int) -> np.ndarray:
        f = self.cards[card]["hbm_channels"][channel]
        return np.frombuffer(self.read_file(f["file"], f["sha256"]), np.uint8)

    def ddr(self, card: int) -> np.ndarray | None:
        f = self.cards[card].get("ddr")
        return None if f is None else np.frombuffer(self.read_file(f["file"], f["sha256"]), np.uint8)

    def region(self, card: int, name: str) -> dict:
        for r in self.cards[card]["regions"]:
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
