"""Errors every part of dfx raises. The CLI prints any DfxError as one line, without a traceback."""


class DfxError(Exception):
    """Base of every error meant for a user: printed as one line by the CLI."""


class TargetError(DfxError):
    """A hardware target file is missing, malformed or inconsistent."""


class EncodingError(DfxError):
    """An instruction cannot be encoded, decoded or assembled."""


class MachineError(DfxError):
    """An error raised while a core executes its program.

    Names the core id, the program counter and the instruction in assembly.
    """

    def __init__(self, msg, core=None, pc=None, asm=None):
        self.msg, self.core, self.pc, self.asm = msg, core, pc, asm
        where = []
        if core is not None:
            where.append(f"core {core}")
        if pc is not None:
            where.append(f"pc {pc}")
        text = (", ".join(where) + ": " if where else "") + msg
        if asm:
            text += f" [{asm}]"
        super().__init__(text)


class IllegalInstruction(MachineError):
    """An opcode or field that the ISA does not allow."""


class AddressError(MachineError):
    """An address outside its channel, memory or on-chip buffer."""


class RingDeadlock(MachineError):
    """Every live core waits on the ring and no message can arrive."""


class RingFault(MachineError):
    """A ring word was dropped, duplicated, corrupted, or came from the wrong core."""


class SyncMismatch(MachineError):
    """Two cores disagree on a ring transfer (size or kind), or a core ends with a peer waiting."""


class DeviceTimeout(DfxError):
    """A device did not raise done within the timeout."""


class BundleError(DfxError):
    """A bundle on disk is missing, incomplete or corrupted."""


class ModelError(DfxError):
    """A model (checkpoint, ONNX graph, preset) cannot be read or lowered."""
