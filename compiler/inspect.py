"""`dfx inspect`: what a bundle holds and what it costs, read statically from its programs.

`walk(program, ntok, pos, core, ncores)` follows the register writes of a straight-line
program and yields each instruction with the registers it issues with; the bytes each
instruction moves come from dfx.arch.effects.
"""

from __future__ import annotations

from collections import Counter

from dfx.arch.effects import effects
from dfx.arch.isa import GENERATION, SUMMARIZATION
from dfx.arch.encoding import to_asm
from dfx.arch.regs import apply_alu, arg_regs


def walk(prog, ntok: int, pos: int, core: int = 0, ncores: int = 1):
    """Yield (instr, registers as it issues) along a straight-line program."""
    regs = arg_regs(ntok, pos, core, ncores)
    for ins in prog:
        apply_alu(ins, regs)
        yield ins, regs


def program_summary(prog, target, ntok: int, pos: int, core: int, ncores: int) -> dict:
    units, ops = Counter(), Counter()
    t = Counter()
    for ins, regs in walk(prog, ntok, pos, core, ncores):
        units[ins.op.unit] += 1
        ops[ins.op.name] += 1
        t.update(effects(ins, regs, target, ncores).totals())
    return {"instructions": sum(units.values()), "by_unit": dict(units), "by_op": dict(ops), "bytes": dict(t)}


def inspect_bundle(bundle, context: int | None = None) -> dict:
    m = bundle.manifest
    from dfx.arch.target import load_target

    target = load_target(m["target"]["name"])
    ctx = m["max_seq"] - 1 if context is None else context
    cards = []
    for j, card in enumerate(bundle.cards):
        progs = {}
        for ph in card["programs"]:
            prog = bundle.program(j, ph)
            ntok = card["programs"][ph]["rows"] if ph == SUMMARIZATION else 1
            pos = 0 if ph == SUMMARIZATION else ctx
            progs[ph] = program_summary(prog, target, ntok, pos, j, m["fpgas"])
            progs[ph]["ntok"], progs[ph]["pos"] = ntok, pos
        cards.append({
            "id": j,
            "hbm_bytes": card["hbm_bytes"],
            "ddr_bytes": card["ddr_bytes"],
            "regions": card["regions"],
            "programs": progs,
            "bytes_per_token": sum(progs[GENERATION]["bytes"].get(k, 0) for k in ("hbm_read", "ddr_read")),
        })
    return {"model": m["model"], "target": target.name, "fpgas": m["fpgas"], "max_seq": m["max_seq"],
            "weights": m["weights"], "context_for_generation": ctx, "cards": cards}


def format_inspect(info: dict) -> str:
    lines = []
    mdl = info["model"]
    lines.append(f"model {mdl['name']}: {mdl['n_layer']} layers, d {mdl['n_embd']}, {mdl['n_head']} heads; "
                 f"target {info['target']}; {info['fpgas']} FPGA(s); max-seq {info['max_seq']}; "
                 f"weights: {info['weights'].get('kind')}")
    for card in info["cards"]:
        lines.append("")
        lines.append(f"FPGA {card['id']}: HBM {card['hbm_bytes'] / 2**20:.1f} MiB, DDR {card['ddr_bytes'] / 2**20:.1f} MiB")
        lines.append(f"  {'region':<14} {'space':<5} {'kind':<8} {'flat addr':>14} {'bytes':>12}  "
                     f"{'channels':<8} {'ch offset':>12} {'per ch':>10}")
        for r in card["regions"]:
            ch = "all" if r["channels"] == "all" else ",".join(map(str, r["channels"]))
            lines.append(f"  {r['name']:<14} {r['space']:<5} {r['kind']:<8} 0x{r['addr']:012x} {r['bytes']:>12}  "
                         f"{ch:<8} 0x{r['channel_offset']:010x} {r['channel_bytes']:>10}")
        for ph, p in card["programs"].items():
            units = ", ".join(f"{u} {n}" for u, n in sorted(p["by_unit"].items()))
            lines.append(f"  {ph}: {p['instructions']} instructions ({units}); "
                         f"at ntok {p['ntok']}, pos {p['pos']}: reads {sum(v for k, v in p['bytes'].items() if 'read' in k) / 2**20:.2f} MiB")
        lines.append(f"  streams per generated token (context {info['context_for_generation']}): "
                     f"{card['bytes_per_token'] / 2**20:.2f} MiB")
    return "\n".join(lines)


def disasm_lines(prog) -> list[str]:
    return [f"{pc:6d}  {to_asm(ins)}" for pc, ins in enumerate(prog)]
