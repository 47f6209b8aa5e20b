"""`dfx compile`: the compiler as named, ordered passes over one CompileState.

    load_model    frontend (preset, HF folder or ONNX file) -> GPT2Model (lazy weights)
    partition     heads, columns and vocabulary over the cards (dfx.compiler.partition)
    plan_memory   each card's memory map, checked against HBM/DDR capacity before any
                  weight is materialised (dfx.compiler.memmap)
    plan_buffers  the on-chip buffer layout of each phase (rows per call)
    lower         the instruction streams: summarization and generation, per card
    place_code    size the code region to the streams, re-plan and re-lower
    pack_weights  materialise the tiles and images (progress bar)
    emit          programs into the code region, manifest, link config, bundle on disk

Each pass is a plain function of the state and can be run and tested on its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

import dfx
from dfx.arch import isa
from dfx.arch.isa import GENERATION, PHASES, SUMMARIZATION
from dfx.arch.encoding import encode, pack_program
from dfx.arch.hbm import region_extent
from dfx.arch.target import Target, load_target
from dfx.compiler import bundle as bundle_mod
from dfx.compiler.lower import fit_rows, lower_program
from dfx.compiler.memmap import check_fits, plan_card
from dfx.compiler.pack import pack_weights
from dfx.compiler.partition import check_fpgas, plan_partition
from dfx.compiler.vitis import link_config
from dfx.errors import ModelError

@dataclasses.dataclass
class CompileState:
    spec: str
    fpgas: int
    target: Target
    max_seq: int | None = None  # default: the model's context (n_positions)
    random_weights: bool = False
    seed: int = 0
    init_std: float = 0.02
    progress: bool = True
    model: object = None
    part: object = None
    plans: list = None
    buffers: dict = None  # phase -> [BufferPlan per card]
    programs: dict = None  # phase -> [list[Instr] per card]
    images: object = None
    manifest: dict = None
    out: Path | None = None


def load_model_pass(s: CompileState) -> None:
    if s.model is None:
        from dfx.compiler.frontend import load_model
        s.model = load_model(s.spec, random_weights=s.random_weights, seed=s.seed, init_std=s.init_std)
    cfg = s.model.config
    if getattr(cfg, "activation", "gelu_new") != "gelu_new":
        raise ModelError(f"{cfg.name} uses the {cfg.activation!r} activation; the hardware's GELU table is the "
                         f"tanh form (HF gelu_new / gelu_pytorch_tanh)")
    if s.max_seq is None:
        s.max_seq = cfg.n_positions
    if not 1 <= s.max_seq <= cfg.n_positions:
        raise ModelError(f"--max-seq {s.max_seq} must lie in 1 .. {cfg.n_positions} (the context of {cfg.name})")


def partition_pass(s: CompileState) -> None:
    s.part = plan_partition(s.model.config, s.fpgas, s.target.matrix.lanes)


def plan_memory_pass(s: CompileState, code_bytes: list[int] | None = None) -> None:
    cfg = s.model.config
    s.plans = [plan_card(cfg, s.part, j, s.target, s.max_seq, code_bytes[j] if code_bytes else 0)
               for j in range(s.fpgas)]
    check_fits(cfg, s.fpgas, s.target, s.max_seq, s.plans)


def plan_buffers_pass(s: CompileState) -> None:
    cfg = s.model.config
    want = {SUMMARIZATION: s.target.buffers.max_rows, GENERATION: 1}
    s.buffers = {ph: [fit_rows(cfg, p, s.target, want[ph], s.max_seq) for p in s.plans] for ph in PHASES}
    rows = {bp.rows for bp in s.buffers[SUMMARIZATION]}
    if len(rows) > 1:  # every card must take the same block of prompt rows
        m = min(rows)
        s.buffers[SUMMARIZATION] = [fit_rows(cfg, p, s.target, m, s.max_seq) for p in s.plans]


def lower_pass(s: CompileState) -> None:
    cfg = s.model.config
    s.programs = {ph: [lower_program(cfg, p, s.part, s.target, s.buffers[ph][j], s.max_seq)
                       for j, p in enumerate(s.plans)] for ph in PHASES}


def place_code_pass(s: CompileState) -> None:
    sizes = [sum(len(s.programs[ph][j]) for ph in PHASES) * isa.INSTR_BYTES for j in range(s.fpgas)]
    before = {ph: [len(p) for p in s.programs[ph]] for ph in PHASES}
    plan_memory_pass(s, sizes)
    plan_buffers_pass(s)
    lower_pass(s)
    after = {ph: [len(p) for p in s.programs[ph]] for ph in PHASES}
    assert before == after, "instruction counts must not depend on addresses"


def pack_weights_pass(s: CompileState) -> None:
    s.images = pack_weights(s.model, s.plans, s.part, s.target, s.max_seq, progress=s.progress)


def entries(plan, programs, j) -> dict:
    code = plan.regions["code"].addr
    out, pos = {}, code
    for ph in PHASES:
        out[ph] = pos
        pos += len(programs[ph][j]) * isa.INSTR_BYTES
    return out


def manifest_pass(s: CompileState) -> None:
    cfg, t = s.model.config, s.target
    cards = []
    for j, plan in enumerate(s.plans):
        ent = entries(plan, s.programs, j)
        for ph in PHASES:  # the instruction memory is a region of HBM like any other
            words = b"".join(encode(i) for i in s.programs[ph][j])
            s.images.hbm[j][ent[ph]: ent[ph] + len(words)] = np.frombuffer(words, np.uint8)
        regions = [{
            "name": r.name, "space": r.space, "kind": r.kind, "addr": r.addr, "bytes": r.nbytes,
            "zero": r.zero, "sha256": None,
            "channels": "all" if r.space == "hbm" else [0],
            **dict(zip(("channel_offset", "channel_bytes"),
                       region_extent(r.addr, r.nbytes, t.port_bytes, t.hbm.channels) if r.space == "hbm"
                       else (r.addr, r.nbytes))),
        } for r in sorted(plan.regions.values(), key=lambda r: (r.space, r.addr))]
        cards.append({
            "id": j,
            "heads": list(plan.widths["heads"]),
            "columns": {k: list(plan.widths[k]) for k in ("attn", "proj", "ffn", "vocab")},
            "hbm_bytes": plan.hbm_end,
            "hbm_data_bytes": plan.hbm_data_end,
            "ddr_bytes": plan.ddr_end,
            "regions": regions,
            "programs": {ph: {"entry": ent[ph], "instructions": len(s.programs[ph][j]),
                              "rows": s.buffers[ph][j].rows, "buffer_words": s.buffers[ph][j].words}
                         for ph in PHASES},
            "io": {"ids": plan.regions["io.ids"].addr, "logits": plan.regions["io.logits"].addr,
                   "argmax": plan.regions["io.argmax"].addr, "status": plan.regions["io.status"].addr,
                   "vocab": list(plan.widths["vocab"])},
        })
    s.manifest = {
        "format": bundle_mod.FORMAT,
        "format_version": bundle_mod.FORMAT_VERSION,
        "dfx_version": dfx.__version__,
        "isa": {"version": isa.ISA_VERSION, "fingerprint": isa.isa_fingerprint(), "instr_bytes": isa.INSTR_BYTES},
        "model": dataclasses.asdict(cfg),
        "weights": s.model.weights.source,
        "target": {"name": t.name, **t.as_dict()},
        "fpgas": s.fpgas,
        "dtype": "float16",
        "max_seq": s.max_seq,
        "summarization_rows": s.buffers[SUMMARIZATION][0].rows,
        "partition": s.part.as_dict(),
        "cards": cards,
        "link_config_text": link_config(t, s.plans[0], s.fpgas),
    }


def emit_pass(s: CompileState) -> None:
    progs = [{ph: pack_program(s.programs[ph][j], entry=s.manifest["cards"][j]["programs"][ph]["entry"])
              for ph in PHASES} for j in range(s.fpgas)]
    bundle_mod.write_bundle(s.out, s.manifest, progs, s.images, s.target)


PASSES = (
    ("load_model", load_model_pass),
    ("partition", partition_pass),
    ("plan_memory", plan_memory_pass),
    ("plan_buffers", plan_buffers_pass),
    ("lower", lower_pass),
    ("place_code", place_code_pass),
    ("pack_weights", pack_weights_pass),
    ("manifest", manifest_pass),
    ("emit", emit_pass),
)


def default_output(spec, fpgas: int) -> Path:
    """Where a bundle goes when no output is named: MODEL-NFPGA.dfx in the working folder."""
    return Path(f"{Path(str(spec)).name.removesuffix('.onnx')}-{fpgas}fpga.dfx")


def compile_model(spec: str, fpgas: int, out, target: str = "u280", max_seq: int | None = None,
                  random_weights: bool = False, seed: int = 0, init_std: float = 0.02, model=None,
                  progress: bool = True, stop_after: str | None = None) -> CompileState:
    """Run the passes in order (up to `stop_after`); returns the state."""
    check_fpgas(fpgas)
    s = CompileState(spec=spec, fpgas=fpgas, target=load_target(target), max_seq=max_seq,
                     random_weights=random_weights, seed=seed, init_std=init_std, progress=progress,
                     model=model, out=Path(out) if out is not None else None)
    for name, fn in PASSES:
        if name == "emit" and s.out is None:
            break
        fn(s)
        if name == stop_after:
            break
    return s
