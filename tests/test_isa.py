"""The ISA: encode/decode round trips, assembly, refusal of illegal words, generated artefacts."""

import pytest

from dfx.arch import docs, isa, verilog
from dfx.arch.encoding import (assemble, decode, decode_stream, disassemble, encode, encode_int, make, pack_program,
                               unpack_program)
from dfx.errors import EncodingError


# encode -> decode and to_asm -> parse_asm_line round trips of every legal instruction (NaN
# payloads too): the roundtrip target of tests/fuzzing.py, run by tests/test_fuzz.py.


def test_formats_fit_and_opcodes_unique():
    assert len({op.code for op in isa.OPS}) == len(isa.OPS)
    assert len({op.name for op in isa.OPS}) == len(isa.OPS)
    for name, lay in isa.LAYOUTS.items():
        end = max((pos + f.width for f, pos in lay), default=isa.FIELD_BASE)
        assert end <= isa.INSTR_BITS, name


def test_illegal_opcode_is_refused():
    with pytest.raises(EncodingError, match="illegal opcode 0x3f"):
        decode((0x3F).to_bytes(isa.INSTR_BYTES, "little"))


def test_reserved_bits_are_refused():
    word = encode_int(make("end")) | (1 << 400)
    with pytest.raises(EncodingError, match="reserved bits"):
        decode(word.to_bytes(isa.INSTR_BYTES, "little"))


def test_illegal_fields_are_refused():
    lay = {f.name: pos for f, pos in isa.LAYOUTS["vec"]}
    stray = encode_int(make("vadd", rows=1, cols=1)) | ((isa.CNT_REG_FLAG | 0x10) << lay["rows"])
    with pytest.raises(EncodingError, match="stray bits"):
        decode(stray.to_bytes(isa.INSTR_BYTES, "little"))
    mem = {f.name: pos for f, pos in isa.LAYOUTS["mem"]}
    bad_space = encode_int(make("load")) | (3 << mem["space"])
    with pytest.raises(EncodingError, match="space=3 is not one of hbm, ddr"):
        decode(bad_space.to_bytes(isa.INSTR_BYTES, "little"))
    with pytest.raises(EncodingError, match="r0"):
        make("seti", rd=0, imm=1)
    with pytest.raises(EncodingError, match="out of range"):
        make("load", v=1 << 24)
    with pytest.raises(EncodingError, match="space must be one of"):
        make("load", space="sram")


def test_assembler_errors_name_the_line():
    with pytest.raises(EncodingError, match="line 2: unknown instruction 'frob'"):
        assemble("nop\nfrob x=1\n")
    with pytest.raises(EncodingError, match="no field 'q'"):
        assemble("vadd q=1")
    with pytest.raises(EncodingError, match="bad value"):
        assemble("vadd rows=abc")


def test_program_file_round_trip_and_corruption():
    prog = assemble("""
        seti rd=r5 imm=-7        ; comment
        conv1d gelu bias m=r1 k=768 n=3072 x=0x10 xs=768 w=0x800 wn=12 out=0x400 os=3072 aux=0x20
        vsum rows=r1 cols=768 d=0x40 ds=1 as=768 imm=0.00130208337
        allgather rows=r1 cols=192 src=0x100 ss=768 dst=0x100 ds=768
        end
    """)
    blob = pack_program(prog)
    back = unpack_program(blob)
    assert [encode(i) for i in back] == [encode(i) for i in prog]
    text = disassemble(back)
    assert "conv1d gelu bias m=r1 k=768 n=3072" in text
    # a flipped opcode bit in the third instruction
    bad = bytearray(blob)
    bad[isa.INSTR_BYTES * 3] ^= 0x20
    with pytest.raises(EncodingError, match="pc 2"):
        unpack_program(bytes(bad))
    with pytest.raises(EncodingError, match="header says"):
        unpack_program(blob[:-10])
    with pytest.raises(EncodingError, match="bad magic"):
        unpack_program(b"x" * 128)
    with pytest.raises(EncodingError, match="not a multiple"):
        decode_stream(b"\0" * 65)


def test_program_header_and_words_are_checked_whole():
    """Found by tests/fuzzing.py: a decoder takes only what the encoder writes."""
    blob = pack_program(assemble("end"))
    other_isa = blob[:24] + b"0123456789abcdef" + blob[40:]
    with pytest.raises(EncodingError, match="fingerprint '0123456789abcdef'.*recompile it"):
        unpack_program(other_isa)
    with pytest.raises(EncodingError, match="reserved header bytes"):
        unpack_program(blob[:63] + b"\x01" + blob[64:])
    with pytest.raises(EncodingError, match="an instruction word is 64 bytes, got 1"):
        decode(b"\x01")


def test_float_fields_in_assembly():
    nan = make("vmul", bcast="imm", imm=0x7FC00123)  # a NaN with a payload
    assert "imm=0x7fc00123" in str(nan)
    assert encode(assemble(str(nan))[0]) == encode(nan)
    assert encode(assemble("vmul bcast=imm imm=0x3f800000")[0]) == encode(make("vmul", bcast="imm", imm=1.0))
    with pytest.raises(EncodingError, match="1e10 is outside the f16 range of field scale"):
        assemble("mm scale=1e10")
    assert "scale=inf" in str(assemble("mm scale=inf")[0])


def test_asm_command_refuses_binary_input(tmp_path, capsys):
    from dfx.cli import main

    (tmp_path / "p.s").write_bytes(b"nop\n\xd2\x00")
    assert main(["asm", str(tmp_path / "p.s")]) == 1
    assert capsys.readouterr().err == f"dfx: error: {tmp_path / 'p.s'}: not assembly text (byte 4 is not UTF-8)\n"


def test_verilog_header_defines_every_field():
    text = verilog.isa_header()
    for op in isa.OPS:
        assert f"`define DFX_OP_{op.name.upper()}" in text
    for fmt, lay in isa.LAYOUTS.items():
        for f, pos in lay:
            assert f"`define DFX_{fmt.upper()}_{f.name.upper()}_LSB" in text
            line = [ln for ln in text.splitlines() if f"DFX_{fmt.upper()}_{f.name.upper()}_LSB " in ln][0]
            assert int(line.split()[-1]) == pos


def test_isa_doc_matches_tables():
    assert docs.DOC.read_text() == docs.render(), "docs/isa.md drifted: run python -m dfx.arch.docs"
