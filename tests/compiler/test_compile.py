"""The compiler back end: presets lower for every N, bundles are deterministic, bad input is refused."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from dfx.arch.layout import unpack_view
from dfx.compiler.bundle import Bundle
from dfx.compiler.driver import PASSES, compile_model
from dfx.compiler.frontend import load_model
from dfx.compiler.memmap import plan_card
from dfx.compiler.partition import plan_partition, split_even
from dfx.compiler.presets import PRESETS
from dfx.errors import BundleError, ModelError


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_hf")
    with torch.random.fork_rng():  # its own seed; torch's global generator is left as it was
        torch.manual_seed(1)
        GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64)).save_pretrained(folder)
    return folder


def test_passes_are_named_and_ordered():
    names = [n for n, _ in PASSES]
    assert names == ["load_model", "partition", "plan_memory", "plan_buffers", "lower", "place_code",
                     "pack_weights", "manifest", "emit"]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("n", [1, 2, 4])
def test_every_preset_lowers_for_1_2_4_fpgas(preset, n):
    s = compile_model(preset, n, None, random_weights=True, progress=False, stop_after="place_code")
    cfg = s.model.config
    assert len(s.plans) == n
    for ph in ("summarization", "generation"):
        for prog in s.programs[ph]:
            assert prog[-1].op.name == "end"
            ops = [i.op.name for i in prog]
            assert ops.count("maskedmm") == cfg.n_layer
            # 4 syncs per layer: an all-gather, or for uneven slices n-1 send/recv steps
            syncs = ops.count("allgather") + ops.count("send") / max(1, n - 1)
            assert ops.count("send") == ops.count("recv")
            assert syncs == (0 if n == 1 else 4 * cfg.n_layer)
    # every weight column lands on exactly one card
    for key, total in (("proj", cfg.n_embd), ("ffn", 4 * cfg.n_embd), ("vocab", cfg.vocab_size)):
        cols = [hi - lo for lo, hi in getattr(s.part, key)]
        assert sum(cols) == total


def test_partition_splits():
    assert split_even(25, 4) == [(0, 7), (7, 13), (13, 19), (19, 25)]
    assert split_even(1600, 4, 16) == [(0, 400), (400, 800), (800, 1200), (1200, 1600)]
    cfg = load_model("gpt2-xl", random_weights=True).config
    p = plan_partition(cfg, 4, 16)
    assert [h1 - h0 for h0, h1 in p.heads] == [7, 6, 6, 6] and not p.even
    with pytest.raises(ModelError, match="more than the 25 attention heads"):
        plan_partition(cfg, 26, 16)
    with pytest.raises(ModelError, match="positive integer, got 0"):
        plan_partition(cfg, 0, 16)


def test_regions_are_striped_and_disjoint():
    from dfx.arch.target import load_target

    t = load_target("u280")
    cfg = load_model("gpt2", random_weights=True).config
    plan = plan_card(cfg, plan_partition(cfg, 2, 16), 0, t, 1024)
    hbm = sorted((r for r in plan.regions.values() if r.space == "hbm"), key=lambda r: r.addr)
    for a, b in zip(hbm, hbm[1:]):
        assert a.end <= b.addr
    assert all(r.addr % t.tile_bytes == 0 for r in hbm)  # one beat on every channel per stripe
    kinds = {r.kind for r in plan.regions.values()}
    assert kinds == {"code", "params", "weights", "embed", "io", "kv"}


def test_model_too_big_names_the_smallest_n():
    with pytest.raises(ModelError, match=r"gpt2-large does not fit: .* GiB of HBM per card at --fpgas 1, "
                                          r"the tiny card has 1.00 GiB; the smallest --fpgas that fits is 2"):
        compile_model("gpt2-large", 1, None, target="tiny", random_weights=True, progress=False,
                      stop_after="plan_memory")


def test_random_weights_need_only_config_json(tiny_hf, tmp_path):
    """--random-weights takes the shapes from config.json: no weights file is needed, and a model
    too big for the cards gets the capacity answer."""
    from dfx.cli import main

    only = tmp_path / "only"
    only.mkdir()
    (only / "config.json").write_text((tiny_hf / "config.json").read_text())
    assert main(["compile", str(only), "--random-weights", "--fpgas", "2", "--target", "tiny", "--max-seq", "64",
                 "-q", "-o", str(tmp_path / "b")]) == 0
    m = Bundle(tmp_path / "b").manifest
    assert m["model"]["n_layer"] == 2 and m["model"]["n_embd"] == 64 and m["fpgas"] == 2
    assert m["weights"]["config_from"] == {"kind": "hf", "path": str(only.resolve()), "file": "config.json"}
    with pytest.raises(ModelError, match="no weights file"):  # its own weights are needed without the flag
        compile_model(str(only), 1, tmp_path / "c", target="tiny", progress=False)
    cfg = json.loads((tiny_hf / "config.json").read_text())
    cfg.update(n_layer=36, n_embd=1280, n_head=20, n_positions=1024, vocab_size=50257)  # gpt2-large's shape
    (only / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"only does not fit: .* the smallest --fpgas that fits is 2"):
        compile_model(str(only), 1, tmp_path / "d", target="tiny", random_weights=True, progress=False)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bundle_is_deterministic_and_holds_the_weights(tiny_hf, tmp_path):
    a = compile_model(str(tiny_hf), 2, tmp_path / "a", target="tiny", max_seq=64, progress=False)
    compile_model(str(tiny_hf), 2, tmp_path / "b", target="tiny", max_seq=64, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    b = Bundle(tmp_path / "a")
    b.verify()
    m = b.manifest
    assert m["fpgas"] == 2 and m["dtype"] == "float16" and m["weights"]["kind"] == "hf"
    assert (tmp_path / "a" / "link.cfg").read_text().count("sp=dfx_core_1.m_axi_hbm") == 4
    # card 1's QKV tiles, read back through the channel images, are its heads' columns of c_attn
    t = a.target
    flat = np.stack([b.hbm_channel(1, c).reshape(-1, t.port_bytes) for c in range(t.hbm.channels)], 1).reshape(-1)
    r = b.region(1, "h1.qkv")
    words = flat[r["addr"]: r["addr"] + r["bytes"]].view(np.uint16)
    w = unpack_view(words, 64, 3 * 32, t.matrix.lanes, t.matrix.width, 64 // t.matrix.width)
    sd = GPT2LMHeadModel.from_pretrained(tiny_hf).state_dict()
    full = sd["transformer.h.1.attn.c_attn.weight"].numpy().astype(np.float16).view(np.uint16)
    cols = np.r_[32:64, 96:128, 160:192]
    assert (w == full[:, cols]).all()


def test_manifest_layout_is_checked(tiny_hf, tmp_path):
    """Found by tests/fuzzing.py: a signed manifest of the wrong shape is refused in one line."""
    from dfx.compiler.bundle import _canonical

    out = tmp_path / "b"
    compile_model(str(tiny_hf), 1, out, target="tiny", max_seq=64, progress=False)
    good = json.loads((out / "manifest.json").read_text())
    for edit, match in [(("programs", "generation", "entry", -1),
                         r"cards\[0\].programs.generation.entry must be a non-negative integer, got -1"),
                        (("hbm_channels", 0, "file", "/etc/passwd"), "must be a relative path inside the bundle"),
                        (("regions", 0, "name", None), r"cards\[0\].regions\[0\].name must be a string")]:
        m = json.loads(json.dumps(good))
        *keys, last, value = edit
        target = m["cards"][0]
        for k in keys:
            target = target[k]
        target[last] = value
        m["manifest_sha256"] = hashlib.sha256(_canonical(m)).hexdigest()
        bad = tmp_path / "bad"
        shutil.copytree(out, bad, dirs_exist_ok=True)
        (bad / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(BundleError, match="malformed manifest: .*" + match):
            Bundle(bad)


def test_compile_replaces_only_a_bundle_or_an_empty_folder(tiny_hf, tmp_path):
    """Found by tests/fuzzing.py: -o naming a file or a folder of other things is refused, both
    left as they were, and no OUT.tmp stays behind."""
    out = tmp_path / "b"
    compile_model(str(tiny_hf), 1, out, target="tiny", max_seq=64, progress=False)
    compile_model(str(tiny_hf), 1, out, target="tiny", max_seq=64, progress=False)  # an earlier bundle
    Bundle(out).verify()
    (tmp_path / "empty").mkdir()
    compile_model(str(tiny_hf), 1, tmp_path / "empty", target="tiny", max_seq=64, progress=False)
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(BundleError, match="notes exists and is not a dfx bundle: not replacing it"):
        compile_model(str(tiny_hf), 1, tmp_path / "notes", target="tiny", max_seq=64, progress=False)
    assert (tmp_path / "notes").read_text() == "mine" and not (tmp_path / "notes.tmp").exists()
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes").write_text("mine")
    with pytest.raises(BundleError, match="folder exists and is not a dfx bundle"):
        compile_model(str(tiny_hf), 1, tmp_path / "folder", target="tiny", max_seq=64, progress=False)
    assert [p.name for p in (tmp_path / "folder").iterdir()] == ["notes"]


def test_compile_cli_errors_are_one_line(tiny_hf, tmp_path):
    def dfx(*args):
        return subprocess.run([sys.executable, "-m", "dfx.cli", *args], capture_output=True, text=True)

    cases = [
        (["compile", str(tmp_path / "missing")], "no such model or file"),
        (["compile", str(tiny_hf), "--fpgas", "0"], "--fpgas must be a positive integer, got 0"),
        (["compile", str(tiny_hf), "--fpgas", "5", "-o", str(tmp_path / "x")], "more than the 4 attention heads"),
        (["compile", "gpt2-large", "--target", "tiny", "--random-weights", "-o", str(tmp_path / "y")],
         "the smallest --fpgas that fits is 2"),
    ]
    for args, msg in cases:
        r = dfx(*args)
        assert r.returncode == 1, r.stderr
        assert msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing written half-way
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "config.json").write_text((tiny_hf / "config.json").read_text())
    (trunc / "model.safetensors").write_bytes((tiny_hf / "model.safetensors").read_bytes()[:5000])
    r = dfx("compile", str(trunc))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_inspect_and_disasm(tiny_hf, tmp_path):
    compile_model(str(tiny_hf), 2, tmp_path / "b", target="tiny", max_seq=64, progress=False)
    r = subprocess.run([sys.executable, "-m", "dfx.cli", "inspect", str(tmp_path / "b"), "--json"],
                       capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    card = info["cards"][0]
    assert card["programs"]["generation"]["by_unit"]["mpu"] == 2 * 6 + 1
    # at context max_seq - 1 a generated token reads every weight, parameter and KV-cache byte of
    # its card once, one row each of wte and wpe (d FP16 words) and its int32 id
    whole = sum(r["bytes"] for r in card["regions"] if r["kind"] in ("weights", "params", "kv"))
    assert card["bytes_per_token"] == whole + 2 * (64 * 2) + 4
    r = subprocess.run([sys.executable, "-m", "dfx.cli", "disasm", str(tmp_path / "b"), "--fpga", "1",
                        "--phase", "generation"], capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("; fpga 1 generation")
    assert any(" conv1d gelu bias m=r1 k=64 n=128 " in ln for ln in lines)
    assert lines[-1].split()[1] == "end"
    # a corrupted program file: one line, no traceback
    prog = tmp_path / "b" / "fpga0" / "generation.bin"
    data = bytearray(prog.read_bytes())
    data[64 * 5] = 0x3F
    prog.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-m", "dfx.cli", "disasm", str(prog)], capture_output=True, text=True)
    assert r.returncode == 1 and "pc 4: illegal opcode 0x3f" in r.stderr and "Traceback" not in r.stderr
