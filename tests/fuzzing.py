"""Fuzz targets shared by tests/test_fuzz.py (a few hundred cases, in CI) and scripts/fuzz.py
(thousands, with a tally): what dfx reads from outside, fed with corrupted and random input.

    bundle          a real bundle with its manifest's bytes or values changed (re-signed or not),
                    program files, HBM/DDR images and link.cfg truncated, flipped, deleted ...:
                    Bundle(), verify() and every reading method
    cli-bundle      the same bundles through `dfx inspect` and `dfx disasm`
    decode          arbitrary bytes and ints, and legal words with flipped bits: decode()
    program         arbitrary bytes and packed programs with a changed header or body:
                    unpack_program() and decode_stream()
    asm             arbitrary text and near-legal lines: parse_asm_line() and assemble()
    cli-asm         the same text (and bytes that are not UTF-8) through `dfx asm`, then `dfx disasm`
                    of what it wrote; program files and raw words through `dfx disasm`
    roundtrip       any instruction the ISA tables allow: encode -> decode and to_asm ->
                    parse_asm_line give it back, bit for bit
    onnx-bytes      random bytes, and a real GPT-2 export truncated or with flipped bytes: load_onnx()
    onnx-graph      the real export with nodes removed, op types, inputs and attributes changed,
                    initializers with wrong shapes, dtypes or external data: load_onnx() and
                    every weight read
    hf-folder       a real checkpoint folder with config.json and model.safetensors corrupted:
                    load_model() and every weight read
    cli-compile     corrupted ONNX files and checkpoint folders through `dfx compile`, into an
                    output path that is absent, an empty folder, a file, a folder, an earlier
                    bundle or next to a stale OUT.tmp

The contract: a call succeeds or raises a DfxError subclass whose message is one line; no other
exception escapes; `dfx` prints that one line and exits with 1; a failed `dfx compile` leaves the
output path as it was and no OUT.tmp behind, and never replaces anything but an earlier bundle or
an empty folder. Where a decoder succeeds, its input must be exactly what the encoder writes
(decode, unpack_program), and the assembler must read back what it prints.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, given, settings, strategies as st

from dfx.arch import isa
from dfx.arch.encoding import (PROG_HEADER, Instr, assemble, decode, decode_stream, encode, encode_int,
                               pack_program, parse_asm_line, to_asm, unpack_program)
from dfx.compiler.onnx_frontend import KNOWN_OPS
from dfx.errors import DfxError

# Examples per target in CI (tests/test_fuzz.py): DFX_FUZZ_EXAMPLES overrides; each target's
# `share` scales it (the compile target runs whole compiles, so it gets a quarter).
CI_EXAMPLES = 40
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=384, n_positions=32)


# ---------------------------------------------------------------------------- the contract
class ContractBroken(AssertionError):
    """An untyped exception, a message of more than one line, or output left half-written."""


@dataclass
class Tally:
    """What scripts/fuzz.py counts per target; tests run without one and fail on the first break."""

    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)  # "ok" or the DfxError subclass name
    broken: list = field(default_factory=list)  # (kind, what, case)
    messages: dict = field(default_factory=dict)  # DfxError subclass name -> a few distinct messages


TALLY: Tally | None = None
CASE = None  # the case being run, for the tally's report


def broken(what: str, case=None, kind: str | None = None) -> str:
    """Fail (tests), or count under `kind` (scripts/fuzz.py groups the breaks by it)."""
    if TALLY is None:
        raise ContractBroken(what)
    case = CASE if CASE is not None else case
    TALLY.broken.append((kind or what, what, (str(case) if isinstance(case, Instr) else repr(case))[:400]))
    return "BROKEN"


def note(outcome: str, msg: str) -> None:
    """Keep a sample of the distinct messages (without the scratch folders' names) for the tally."""
    if TALLY is not None:
        seen = TALLY.messages.setdefault(outcome, set())
        if len(seen) < 1000:
            seen.add(re.sub(re.escape(str(workdir())) + r"/[^/]+/", "", msg))


def typed(fn, *args, **kw) -> str:
    """Run fn: 'ok', or the name of the DfxError it raised; anything else breaks the contract
    (as does fn itself, calling broken())."""
    known = len(TALLY.broken) if TALLY is not None else 0
    try:
        with warnings.catch_warnings():  # numpy and onnx warn about odd input: not the contract
            warnings.simplefilter("ignore")
            fn(*args, **kw)
    except DfxError as e:
        msg = str(e)
        if not msg.strip() or "\n" in msg or "\r" in msg:
            return broken(f"{type(e).__name__} message is not one line: {msg[:300]!r}", (fn, args))
        note(type(e).__name__, msg)
        return type(e).__name__
    except ContractBroken:
        raise
    except Exception as e:  # noqa: BLE001 - the contract: nothing else may escape
        import traceback

        tb = traceback.extract_tb(e.__traceback__)
        at = next((f for f in reversed(tb) if f.filename.startswith(str(ROOT))
                   and not f.filename.startswith(str(ROOT / "tests"))), tb[-1])  # the last frame of dfx
        at = f"{Path(at.filename).name}:{at.lineno}"
        return broken(f"untyped {type(e).__name__}: {str(e)[:200]} (at {at})", (fn, args),
                      kind=f"untyped {type(e).__name__} at {at}")
    return "BROKEN" if TALLY is not None and len(TALLY.broken) > known else "ok"


def cli(*argv) -> str:
    """`dfx ARGV` in this process: exit 0, or exit 1 with one `dfx: error:` line on stderr."""
    from dfx.cli import main

    out, err = io.StringIO(), io.StringIO()
    rc = "ok"

    def run():
        nonlocal rc
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in argv])

    outcome = typed(run)
    if outcome != "ok":
        return outcome
    lines = err.getvalue().splitlines()
    if rc == 0:
        return "ok"
    if rc != 1 or len(lines) != 1 or not lines[0].startswith("dfx: error: "):
        return broken(f"dfx {argv[0]}: exit {rc}, stderr {err.getvalue()[:300]!r}", argv)
    note("exit 1", lines[0])
    return "exit 1"


def record(outcome: str) -> None:
    if TALLY is not None:
        TALLY.cases += 1
        TALLY.outcomes[outcome] += 1


# ---------------------------------------------------------------------------- targets
@dataclass
class Target:
    name: str
    strategy: object  # a function returning the strategy (it may need the fixtures built)
    run: object  # case -> outcome
    share: float = 1.0


TARGETS: dict[str, Target] = {}


def target(name, strategy, share=1.0):
    def deco(fn):
        TARGETS[name] = Target(name, strategy, fn, share)
        return fn
    return deco


def examples(name: str, per_target: int) -> int:
    return max(1, round(per_target * TARGETS[name].share))


def ci_examples(name: str) -> int:
    return examples(name, int(os.environ.get("DFX_FUZZ_EXAMPLES", CI_EXAMPLES)))


def hypothesis_test(name: str, n: int, seed: int | None = None):
    """The target as a hypothesis test of n examples: always the same ones (derandomized), or
    those of `seed`."""
    t = TARGETS[name]

    # deadline: whole compiles and a shared 2-core machine make single cases slow now and then
    @settings(max_examples=n, derandomize=seed is None, database=None, deadline=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow])  # the manifest/graph edits draw a lot
    @given(t.strategy())
    def test(case):
        global CASE
        CASE = case
        record(t.run(case))

    return test if seed is None else hypothesis.seed(seed)(test)


# ---------------------------------------------------------------------------- scratch space
@functools.cache
def workdir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="dfx-fuzz-"))
    atexit.register(shutil.rmtree, d, True)
    return d


@contextlib.contextmanager
def scratch():
    d = Path(tempfile.mkdtemp(dir=workdir()))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)


def replace_file(p: Path, data: bytes | None) -> None:
    """Write data at p (None: an empty folder) without touching a file p may be linked to."""
    remove(p)
    if data is None:
        p.mkdir()
    else:
        p.write_bytes(data)


def copy_tree(src: Path, dst: Path) -> None:
    """Hard links (cases replace files, never write into them): cheap for big fixtures."""
    shutil.copytree(src, dst, copy_function=os.link)


# ---------------------------------------------------------------------------- byte edits
# (kind, position as a fraction of the length, payload): applied in order
BYTE_EDITS = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "insert", "delete", "set"]),
                                st.floats(0, 1), st.binary(min_size=1, max_size=8)), min_size=1, max_size=4)


def edit_bytes(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for kind, where, payload in edits:
        i = min(int(where * len(b)), max(len(b) - 1, 0))
        if kind == "flip" and b:
            b[i] ^= 1 << (payload[0] % 8)
        elif kind == "truncate":
            del b[i:]
        elif kind == "insert":
            b[i:i] = payload
        elif kind == "delete":
            del b[i:i + len(payload)]
        elif kind == "set":
            b[i:i + len(payload)] = payload
    return bytes(b)


# ---------------------------------------------------------------------------- JSON edits
TRICKY_STRINGS = ["", "../../../etc/passwd", "/etc/passwd", "fpga0", "fpga0/hbm", "a\x00b", "manifest.json",
                  "summarization", "generation", "hbm", "ddr", "all", "u280", "tiny", "nope", "\n", "0" * 64]
TRICKY_INTS = [-1, 0, 1, 2, 3, 31, 32, 2**31, 2**32 + 1, 2**63, 2**64, 10**30, -(2**63)]
SCALARS = (st.none() | st.booleans() | st.integers() | st.sampled_from(TRICKY_INTS)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | st.sampled_from(TRICKY_STRINGS))
JSON_VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=8)


def json_paths(v, at=()):
    """Every path into a parsed JSON value (keys and list indices)."""
    out = [at]
    if isinstance(v, dict):
        for k, x in v.items():
            out += json_paths(x, at + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += json_paths(x, at + (i,))
    return out


def json_edits(doc):
    """Strategy: a list of (path, action, value) edits of the JSON value `doc`."""
    paths = json_paths(doc)
    edit = st.tuples(st.sampled_from(paths), st.sampled_from(["set", "set", "delete", "copy"]),
                     JSON_VALUES | st.sampled_from(paths))
    return st.lists(edit, min_size=1, max_size=3)


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def apply_json_edits(doc, edits):
    doc = copy.deepcopy(doc)
    for path, action, value in edits:
        if action == "copy":  # a value of the right kind, from the wrong place
            if not isinstance(value, tuple):
                continue
            try:
                value = copy.deepcopy(_get(doc, value))
            except (KeyError, IndexError, TypeError):
                continue
        if not path:
            if action != "delete":
                doc = value
            continue
        try:
            parent = _get(doc, path[:-1])
            if action == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return doc


# ---------------------------------------------------------------------------- fixtures
@functools.cache
def tiny_torch_model():
    """A random tiny GPT2LMHeadModel, every parameter non-trivial (no zero biases to drop)."""
    import torch
    import transformers

    cfg = transformers.GPT2Config(**TINY, use_cache=False, bos_token_id=0, eos_token_id=0)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(1234)
        model = transformers.GPT2LMHeadModel(cfg).eval()
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.config._attn_implementation = "eager"
    return model


@functools.cache
def pristine_hf() -> Path:
    folder = workdir() / "hf"
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        tiny_torch_model().save_pretrained(folder)
    return folder


@functools.cache
def pristine_onnx() -> Path:
    """A real dynamic-shape export (mask subgraph, wpe initializer), weights in external data."""
    import torch

    path = workdir() / "onnx" / "gpt2.onnx"
    path.parent.mkdir()
    dyn = {"input_ids": {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=TINY["n_positions"])}}
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" and the like
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(tiny_torch_model(), (torch.zeros(1, 8, dtype=torch.long),), str(path),
                          dynamic_shapes=dyn)
    quiet.setLevel(level)
    return path


@functools.cache
def pristine_bundle() -> Path:
    """A 2-card u280 bundle (HBM channels, DDR, link.cfg) of a one-layer model: 344 KB."""
    from dfx.compiler.driver import compile_model

    cfg = workdir() / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps(dict(model_type="gpt2", n_layer=1, n_embd=64, n_head=4,
                                                     vocab_size=64, n_positions=16)))
    out = workdir() / "bundle"
    compile_model(str(cfg), 2, out, target="u280", random_weights=True, progress=False)
    return out


# ---------------------------------------------------------------------------- bundles
def resign(manifest):
    from dfx.compiler.bundle import _canonical

    if isinstance(manifest, dict):
        manifest["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    return manifest


@functools.cache
def _bundle_files() -> list[str]:
    root = pristine_bundle()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")


def bundle_cases():
    m = json.loads((pristine_bundle() / "manifest.json").read_text())
    raw = st.tuples(st.just("manifest-bytes"), BYTE_EDITS | st.binary(max_size=200).map(lambda b: [("set", 0.0, b)]))
    values = st.tuples(st.just("manifest-values"), json_edits(m), st.booleans())  # re-signed or not
    files = st.tuples(st.just("file"), st.sampled_from(_bundle_files()),
                      BYTE_EDITS | st.sampled_from(["delete", "dir", "empty"]), st.booleans())  # update its sha256
    return st.lists(raw | values | values | files, min_size=1, max_size=3)


def make_bundle(case, root: Path) -> Path:
    out = root / "b"
    copy_tree(pristine_bundle(), out)
    mpath = out / "manifest.json"
    for edit in case:
        if edit[0] == "manifest-bytes":
            replace_file(mpath, edit_bytes(mpath.read_bytes(), edit[1]))
            continue
        try:
            m = json.loads(mpath.read_bytes())
        except ValueError:
            m = None
        if edit[0] == "manifest-values" and m is not None:
            m = apply_json_edits(m, edit[1])
            replace_file(mpath, json.dumps(resign(m) if edit[2] else m).encode())
        elif edit[0] == "file":
            _, rel, how, update_sha = edit
            p = out / rel
            if how == "delete":
                remove(p)
            elif how == "dir":
                replace_file(p, None)
            else:
                replace_file(p, b"" if how == "empty" else edit_bytes(p.read_bytes() if p.is_file() else b"", how))
            if update_sha and m is not None and p.is_file():  # so the bytes reach the decoder
                _set_sha(m, rel, hashlib.sha256(p.read_bytes()).hexdigest())
                replace_file(mpath, json.dumps(resign(m)).encode())
    return out


def _set_sha(doc, rel, sha):
    if isinstance(doc, dict):
        if doc.get("file") == rel:
            doc["sha256"] = sha
        for v in doc.values():
            _set_sha(v, rel, sha)
    elif isinstance(doc, list):
        for v in doc:
            _set_sha(v, rel, sha)


def read_whole_bundle(path):
    """Everything a reader of a bundle does: open, verify, read every program, image and region."""
    from dfx.compiler.bundle import Bundle

    b = Bundle(path)
    b.verify()
    for j in range(b.n):
        for ph in isa.PHASES:
            b.program(j, ph)
            b.program_bytes(j, ph)
        for c in range(b.manifest["target"]["hbm"]["channels"]):
            b.hbm_channel(j, c)
        b.ddr(j)
        b.region(j, "code")


@target("bundle", bundle_cases)
def fuzz_bundle(case):
    with scratch() as d:
        return typed(read_whole_bundle, make_bundle(case, d))


@target("cli-bundle", bundle_cases, share=0.5)
def fuzz_cli_bundle(case):
    with scratch() as d:
        path = make_bundle(case, d)
        outcomes = [cli("inspect", path), cli("disasm", path, "--phase", "generation")]
        return next((o for o in outcomes if o != "ok"), "ok")


# ---------------------------------------------------------------------------- ISA
def field_values(f):
    """Strategy: every raw value the ISA allows in field f."""
    if f.kind == "cnt":
        return st.integers(0, isa.CNT_REG_FLAG - 1) | st.integers(0, 15).map(lambda r: isa.CNT_REG_FLAG | r)
    if f.kind == "enum":
        return st.integers(0, len(f.values) - 1)
    if f.kind == "s":
        return st.integers(-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1)
    if f.name == "rd":
        return st.integers(1, isa.NUM_REGS - 1)
    return st.integers(0, (1 << f.width) - 1)  # u, reg, flag, f16 and f32 (any bit pattern, NaNs too)


@st.composite
def instructions(draw):
    op = draw(st.sampled_from(isa.OPS))
    return Instr(op, {f.name: draw(field_values(f)) for f in op.fields})


def flipped_words():
    """Legal words with a few bits flipped: near misses the decoder must judge bit by bit."""
    return st.tuples(instructions(), st.lists(st.integers(0, isa.INSTR_BITS - 1), min_size=1, max_size=3)).map(
        lambda t: encode_int(t[0]) ^ sum({1 << b for b in t[1]}))


def decode_cases():
    ints = st.integers() | st.integers(-(1 << 520), 1 << 520) | flipped_words()
    return ints | ints.filter(lambda w: 0 <= w < 1 << isa.INSTR_BITS).map(
        lambda w: w.to_bytes(isa.INSTR_BYTES, "little")) | st.binary(max_size=80)


def _decode_exactly(raw):
    ins = decode(raw)  # it took the word: it must be exactly the word the encoder writes
    want = encode(ins) if isinstance(raw, bytes) else encode_int(ins)
    if want != raw:
        broken(f"decode accepted a word the encoder does not write: {raw!r} -> {to_asm(ins)}", raw)


@target("decode", decode_cases, share=2)
def fuzz_decode(raw):
    return typed(_decode_exactly, raw)


def program_cases():
    prog = st.lists(instructions(), max_size=6)
    packed = st.tuples(prog, st.integers(0, (1 << 64) - 1)).map(lambda t: pack_program(*t))
    return packed | st.tuples(packed, BYTE_EDITS).map(lambda t: edit_bytes(*t)) | st.binary(max_size=400)


def _unpack_exactly(data):
    prog = unpack_program(data)
    entry = PROG_HEADER.unpack_from(data)[3]
    if pack_program(prog, entry) != data:
        broken("unpack_program accepted a file pack_program does not write", data)


@target("program", program_cases)
def fuzz_program(data):
    stream = typed(decode_stream, data[PROG_HEADER.size:])
    return stream if stream == "BROKEN" else typed(_unpack_exactly, data)


def asm_cases():
    def line(op, toks):
        return " ".join([op.name, *toks])

    tok = st.one_of(
        st.tuples(st.sampled_from(sorted({f.name for fs in isa.FORMATS.values() for f in fs})),
                  st.text(max_size=6) | st.integers().map(str) | st.floats().map(str)
                  | st.sampled_from(["r0", "r15", "r16", "R3", "0x10", "-0x1", "nan", "inf", "1e9", "none", "hbm"])
                  ).map(lambda t: f"{t[0]}={t[1]}"),
        st.text(max_size=8))
    near = st.tuples(st.sampled_from(isa.OPS), st.lists(tok, max_size=5)).map(lambda t: line(*t))
    exact = instructions().map(to_asm)
    return st.lists(near | exact | st.text(max_size=40), max_size=5).map("\n".join)


def _assemble_exactly(text):
    for ln in text.splitlines():
        parse_asm_line(ln)
    prog = assemble(text)
    again = assemble("\n".join(to_asm(i) for i in prog))  # what it prints, it reads back
    if [encode(i) for i in again] != [encode(i) for i in prog]:
        broken("to_asm of an assembled program does not assemble to the same words", text)


@target("asm", asm_cases)
def fuzz_asm(text):
    return typed(_assemble_exactly, text)


def cli_asm_cases():
    return asm_cases() | st.binary(max_size=200) | program_cases().map(lambda b: ("bin", b))


@target("cli-asm", cli_asm_cases, share=0.5)
def fuzz_cli_asm(case):
    """`dfx asm` of text (or of bytes that are not UTF-8), then `dfx disasm` of what it wrote;
    `dfx disasm` of program files and raw instruction streams."""
    with scratch() as d:
        if isinstance(case, tuple):
            (d / "p.bin").write_bytes(case[1])
            return cli("disasm", d / "p.bin")
        src = d / "p.s"
        src.write_bytes(case.encode() if isinstance(case, str) else case)
        outcome = cli("asm", src, "-o", d / "p.bin")
        return cli("disasm", d / "p.bin") if outcome == "ok" else outcome


def _roundtrip(ins):
    raw = encode(ins)
    back = decode(raw)
    if back.op is not ins.op or back.f != ins.f:
        broken(f"encode/decode changed {ins.f} into {back.f}", ins)
    text = to_asm(ins)
    again = parse_asm_line(text)
    if encode(again) != raw:
        broken(f"{text!r} assembles to {to_asm(again)!r}", ins)


@target("roundtrip", instructions, share=5)
def fuzz_roundtrip(ins):
    outcome = typed(_roundtrip, ins)
    return outcome if outcome in ("ok", "BROKEN") else broken(f"a legal instruction raised {outcome}", ins)


# ---------------------------------------------------------------------------- model frontends
def read_model(spec, **kw):
    """Load a model and read every weight as the compiler does (float16)."""
    from dfx.compiler.frontend import load_model

    m = load_model(str(spec), **kw)
    for n in m.weights.names():
        m.weights.get_f16(n)


def onnx_bytes_cases():
    return st.binary(max_size=300) | BYTE_EDITS


@target("onnx-bytes", onnx_bytes_cases, share=0.5)
def fuzz_onnx_bytes(case):
    src = pristine_onnx()
    with scratch() as d:
        p = d / src.name
        p.write_bytes(case if isinstance(case, bytes) else edit_bytes(src.read_bytes(), case))
        os.link(src.with_name(src.name + ".data"), d / (src.name + ".data"))
        return typed(read_model, p)


@functools.cache
def _onnx_proto():
    import onnx

    return onnx.load(str(pristine_onnx()), load_external_data=False)


ONNX_NAMES = (st.sampled_from(["", "input_ids", "x", "nope", "transformer.wte.weight", "lm_head.weight"])
              | st.text(max_size=8))
ATTR_VALUES = (st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, -1, 2, 3]) | st.floats(width=32)
               | st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=4) | st.text(max_size=6))
EXT_VALUES = st.sampled_from(["", "-1", "0", "1", "64", "abc", "1e3", "99999999999999999999", "missing.data",
                              "../gpt2.onnx.data", "/etc/passwd", "gpt2.onnx", "gpt2.onnx.data", "."])


def onnx_graph_edits():
    i = st.integers(0, 10**6)  # taken modulo the number of nodes, inputs, ...
    ops = st.sampled_from(sorted(KNOWN_OPS) + ["FancySoftmax", "Conv", "Loop", "If", ""])
    edit = st.one_of(
        st.tuples(st.just("drop-node"), i),
        st.tuples(st.just("op-type"), i, ops),
        st.tuples(st.just("domain"), i, st.sampled_from(["com.microsoft", "ai.onnx.ml", "ai.onnx", "x"])),
        st.tuples(st.just("node-input"), i, i, ONNX_NAMES | st.just("<other>")),
        st.tuples(st.just("node-output"), i, i, ONNX_NAMES),
        st.tuples(st.just("attr-drop"), i, i),
        st.tuples(st.just("attr-set"), i, i, ATTR_VALUES),
        st.tuples(st.just("init-dims"), i,
                  st.lists(st.integers(-2, 2**62) | st.sampled_from([0, 1, 8, 64]), max_size=4)),
        st.tuples(st.just("init-dtype"), i, st.integers(0, 25)),
        st.tuples(st.just("init-drop"), i),
        st.tuples(st.just("init-raw"), i, st.floats(0, 1)),
        st.tuples(st.just("init-external"), i, st.sampled_from(["location", "offset", "length"]), EXT_VALUES),
        st.tuples(st.just("data-file"), st.sampled_from(["delete", "dir"]) | BYTE_EDITS),
        st.tuples(st.just("input-drop"), i),
        st.tuples(st.just("input-type"), i, st.integers(0, 25)),
        st.tuples(st.just("output-drop"), i),
    )
    n_head = st.none() | st.none() | st.integers(-2, 80) | st.sampled_from([2**40, -(2**40)])
    return st.tuples(st.lists(edit, min_size=1, max_size=4), n_head)


def make_onnx(edits, d: Path) -> Path:
    from onnx import helper

    src = pristine_onnx()
    proto = copy.deepcopy(_onnx_proto())
    g = proto.graph
    data = d / (src.name + ".data")
    os.link(src.with_name(src.name + ".data"), data)
    for e in edits:
        kind = e[0]
        nodes, inits = g.node, g.initializer
        if kind == "data-file":
            if e[1] == "delete":
                remove(data)
            elif e[1] == "dir":
                replace_file(data, None)
            elif data.is_file():
                replace_file(data, edit_bytes(data.read_bytes(), e[1]))
        elif kind.startswith(("drop-node", "op-type", "domain", "node-", "attr-")) and len(nodes):
            n = nodes[e[1] % len(nodes)]
            if kind == "drop-node":
                nodes.remove(n)
            elif kind == "op-type":
                n.op_type = e[2]
            elif kind == "domain":
                n.domain = e[2]
            elif kind in ("node-input", "node-output"):
                vals = n.input if kind == "node-input" else n.output
                if len(vals):
                    name = e[3]
                    if name == "<other>":  # a real value from elsewhere in the graph
                        name = nodes[e[2] % len(nodes)].output[0] if nodes[e[2] % len(nodes)].output else ""
                    vals[e[2] % len(vals)] = name
            elif kind == "attr-drop" and len(n.attribute):
                del n.attribute[e[2] % len(n.attribute)]
            elif kind == "attr-set" and len(n.attribute):
                k = e[2] % len(n.attribute)
                n.attribute[k].CopyFrom(helper.make_attribute(n.attribute[k].name, e[3]))
        elif kind.startswith("init-") and len(inits):
            t = inits[e[1] % len(inits)]
            if kind == "init-dims":
                del t.dims[:]
                t.dims.extend(e[2])
            elif kind == "init-dtype":
                t.data_type = e[2]
            elif kind == "init-drop":
                inits.remove(t)
            elif kind == "init-raw":
                t.raw_data = t.raw_data[:int(e[2] * len(t.raw_data))]
            elif kind == "init-external":
                ext = {x.key: x for x in t.external_data}
                if e[2] in ext:
                    ext[e[2]].value = e[3]
                else:
                    t.external_data.add(key=e[2], value=e[3])
                t.data_location = 1
        elif kind in ("input-drop", "input-type") and len(g.input):
            v = g.input[e[1] % len(g.input)]
            if kind == "input-drop":
                g.input.remove(v)
            else:
                v.type.tensor_type.elem_type = e[2]
        elif kind == "output-drop" and len(g.output):
            g.output.remove(g.output[e[1] % len(g.output)])
    path = d / src.name
    path.write_bytes(proto.SerializeToString())
    return path


@target("onnx-graph", onnx_graph_edits)
def fuzz_onnx_graph(case):
    edits, n_head = case
    with scratch() as d:
        return typed(read_model, make_onnx(edits, d), n_head=n_head)


HF_KEYS = ["n_layer", "n_embd", "n_head", "vocab_size", "n_positions", "n_ctx", "layer_norm_epsilon",
           "activation_function", "model_type", "n_inner", "scale_attn_weights", "add_cross_attention",
           "scale_attn_by_inverse_layer_idx"]


def hf_cases():
    cfg = json.loads((pristine_hf() / "config.json").read_text())
    config = st.one_of(
        st.tuples(st.just("config-values"), json_edits(cfg)),
        st.tuples(st.just("config-keys"),
                  st.lists(st.tuples(st.sampled_from(HF_KEYS), JSON_VALUES), min_size=1, max_size=3)),
        st.tuples(st.just("config-bytes"), BYTE_EDITS))
    weights = st.one_of(
        st.tuples(st.just("weights-bytes"), BYTE_EDITS),
        st.tuples(st.just("weights-header"), json_edits(_safetensors_header(pristine_hf() / "model.safetensors")[0])),
        st.tuples(st.just("weights-file"), st.sampled_from(["delete", "pytorch_model.bin", "index"])))
    return st.lists(config | weights, min_size=1, max_size=3)


def _safetensors_header(path: Path):
    """(the JSON header, the tensor bytes) of a safetensors file; (None, b"") if unreadable."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    try:
        return json.loads(raw[8:8 + n]), raw[8 + n:]
    except ValueError:
        return None, b""


def make_hf(case, d: Path) -> Path:
    folder = d / "hf"
    copy_tree(pristine_hf(), folder)
    cfg_path, st_path = folder / "config.json", folder / "model.safetensors"
    for e in case:
        kind = e[0]
        if kind == "config-bytes":
            replace_file(cfg_path, edit_bytes(cfg_path.read_bytes(), e[1]))
        elif kind in ("config-values", "config-keys"):
            try:
                cfg = json.loads(cfg_path.read_bytes())
            except ValueError:
                continue
            if kind == "config-values":
                cfg = apply_json_edits(cfg, e[1])
            elif isinstance(cfg, dict):
                cfg.update(dict(e[1]))
            replace_file(cfg_path, json.dumps(cfg).encode())
        elif kind == "weights-bytes" and st_path.is_file():
            replace_file(st_path, edit_bytes(st_path.read_bytes(), e[1]))
        elif kind == "weights-header" and st_path.is_file():
            head, body = _safetensors_header(st_path)
            if head is not None:
                text = json.dumps(apply_json_edits(head, e[1])).encode()
                replace_file(st_path, len(text).to_bytes(8, "little") + text + body)
        elif kind == "weights-file":
            if e[1] == "delete":
                remove(st_path)
            elif e[1] == "index":
                index = {"weight_map": {"wte": "nope.safetensors"}}
                (folder / "model.safetensors.index.json").write_text(json.dumps(index))
                st_path.unlink(missing_ok=True)
            else:
                (folder / "pytorch_model.bin").write_bytes(st_path.read_bytes()[:4096] if st_path.is_file() else b"PK")
                st_path.unlink(missing_ok=True)
    return folder


@target("hf-folder", hf_cases)
def fuzz_hf_folder(case):
    with scratch() as d:
        return typed(read_model, make_hf(case, d))


OUTPUTS = ["absent", "absent", "empty folder", "file", "folder", "bundle", "stale tmp"]


def compile_cases():
    src = (st.tuples(st.just("onnx"), onnx_graph_edits()) | st.tuples(st.just("hf"), hf_cases())
           | st.tuples(st.just("hf --random-weights"), hf_cases()))  # config.json alone
    return st.tuples(src, st.sampled_from(OUTPUTS))


def _state(p: Path):
    """What is at p: None, a file's bytes, or a folder's files and their bytes."""
    if p.is_dir():
        return {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
    return p.read_bytes() if p.exists() else None


def _compile_leaves_nothing(src, d: Path, output: str = "absent", *options) -> str:
    """`dfx compile` into OUT as it was before (see OUTPUTS): on failure OUT is as it was and
    no OUT.tmp is left; it may replace only an earlier bundle or an empty folder."""
    out = d / "out.dfx"
    tmp = out.with_name(out.name + ".tmp")
    if output == "empty folder":
        out.mkdir()
    elif output == "file":
        out.write_bytes(b"not a bundle")
    elif output == "folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif output == "bundle":
        copy_tree(pristine_bundle(), out)
    elif output == "stale tmp":
        tmp.mkdir()
        (tmp / "junk").write_text("left by a crash")
    before, tmp_before = _state(out), _state(tmp)
    outcome = cli("compile", src, "--target", "tiny", "--fpgas", "1", "-o", out, "-q", *options)
    if outcome != "ok":
        if _state(out) != before or _state(tmp) not in (None, tmp_before):
            return broken(f"dfx compile failed ({outcome}) and changed {out.name} or left {tmp.name}", src)
        return outcome
    if output in ("file", "folder"):
        return broken(f"dfx compile replaced a {output} that is not a bundle", src)
    if tmp.exists():
        return broken(f"dfx compile succeeded and left {tmp.name}", src)
    return typed(read_whole_bundle, out)


@target("cli-compile", compile_cases, share=0.25)
def fuzz_cli_compile(case):
    (kind, edits), output = case
    with scratch() as d:
        src = make_onnx(edits[0], d) if kind == "onnx" else make_hf(edits, d)
        return _compile_leaves_nothing(src, d, output, *kind.split()[1:])
