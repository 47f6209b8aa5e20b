"""The register semantics of the control instructions, defined once.

The simulator executes them, and every tool that walks a program statically (dfx inspect,
the performance model) follows them to resolve counts that name registers.
"""

from __future__ import annotations

from dfx.arch import isa

ALU = ("seti", "addi", "muli", "add")


def wrap32(v: int) -> int:
    """Two's-complement 32-bit wrap: the registers are 32 bits wide."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def apply_alu(ins, regs: list) -> bool:
    """Execute seti/addi/muli/add on `regs` in place; False for any other instruction."""
    name = ins.op.name
    if name == "seti":
        regs[ins.rd] = wrap32(ins.imm)
    elif name == "addi":
        regs[ins.rd] = wrap32(regs[ins.rs] + ins.imm)
    elif name == "muli":
        regs[ins.rd] = wrap32(regs[ins.rs] * ins.imm)
    elif name == "add":
        regs[ins.rd] = wrap32(regs[ins.rs] + regs[ins.rt])
    else:
        return False
    return True


def count(regs: list, raw: int) -> int:
    """The value of a count field: an immediate, or the register it names."""
    return regs[raw & 0xF] if raw & isa.CNT_REG_FLAG else raw


def arg_regs(ntok: int, pos: int, core: int, ncores: int) -> list:
    """The register file as the host leaves it at the start of a run (dfx.arch.isa.ARG_REGS)."""
    regs = [0] * isa.NUM_REGS
    for name, v in (("ntok", ntok), ("pos", pos), ("core", core), ("ncores", ncores)):
        regs[isa.ARG_REGS[name][0]] = v
    return regs
