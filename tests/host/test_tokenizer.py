"""GPT-2 BPE tokenizer, offline: known ids, round trips, folder precedence, stream decoding."""

import json

import pytest

from dfx.errors import DfxError, ModelError
from dfx.host.tokenizer import (GPT2_EOS_ID, GPT2_VOCAB_SIZE, StreamDecoder, load_tokenizer,
                                packaged_gpt2_files, read_vocab_merges)

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. It's 2024, and GPT-2's tokenizer still "
    "splits contractions like don't, I'll and we've; numbers like 1234567 and 3.14159; "
    "    indented code:\n\tdef f(x):\n        return x ** 2  # comment\n\n"
    "Unicode: naïve café, Ångström, 日本語のテキスト, Привет мир, emoji 🤖🎉👍🏽, "
    "and <|endoftext|> as a special token.\r\n  trailing   spaces   "
)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_sizes(tok):
    assert tok.vocab_size == GPT2_VOCAB_SIZE == 50257
    assert tok.eos_id == GPT2_EOS_ID == 50256
    assert tok.decode([tok.eos_id]) == "<|endoftext|>"


@pytest.mark.parametrize("text, ids", [
    ("Hello world", [15496, 995]),
    (" the", [262]),
    ("<|endoftext|>", [50256]),
    ("\n", [198]),
    ("import os", [11748, 28686]),
])
def test_known_gpt2_ids(tok, text, ids):
    assert tok.encode(text) == ids
    assert tok.decode(ids) == text


@pytest.mark.parametrize("text", [
    "", " ", "a", "Hello, world!", "héllo wörld", "🤖 emoji 👍🏽 with skin tone",
    "日本語", "tabs\tand\nnewlines\r\n", "    def f(x):\n        return x\n", PARAGRAPH,
])
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_emoji_spans_several_byte_tokens(tok):
    ids = tok.encode("🤖")
    assert len(ids) > 1  # 4 UTF-8 bytes, no single GPT-2 token
    assert tok.decode(ids) == "🤖"
    assert b"".join(tok.token_bytes(i) for i in ids) == "🤖".encode()


def test_matches_transformers_fast_tokenizer(tok):
    transformers = pytest.importorskip("transformers")
    vocab, merges = read_vocab_merges(*packaged_gpt2_files())
    hf = transformers.GPT2TokenizerFast(vocab=vocab, merges=merges)
    ref = hf.encode(PARAGRAPH)
    assert len(ref) > 100
    assert tok.encode(PARAGRAPH) == ref
    assert hf.decode(ref) == tok.decode(ref) == PARAGRAPH


def test_bad_ids_raise(tok):
    with pytest.raises(ModelError, match="outside the vocabulary"):
        tok.decode([50257])
    with pytest.raises(DfxError):
        tok.decode([-1])


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")


def test_folder_without_files_falls_back(tmp_path):
    t = load_tokenizer(tmp_path)
    assert t.vocab_size == 50257 and t.encode("Hello world") == [15496, 995]


def _word_level_tokenizer_json(path):
    """A different tokenizer: whitespace-split word level with a 5-word vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "</s>": 3, "foo": 4}
    t = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.decoder = decoders.WordPiece()
    t.save(str(path / "tokenizer.json"))


def test_folder_tokenizer_json_takes_precedence(tmp_path):
    pytest.importorskip("tokenizers")
    _word_level_tokenizer_json(tmp_path)
    # vocab.json/merges.txt present too: tokenizer.json still wins.
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    t = load_tokenizer(tmp_path)
    assert t.vocab_size == 5
    assert t.eos_id == 3  # found as </s>
    assert t.encode("hello world foo") == [1, 2, 4]
    assert t.encode("zzz") == [0]
    assert t.decode([1, 2]) == "hello world"
    assert not t.byte_level
    sd = StreamDecoder(t)
    assert sd.push(1) == "hello" and sd.push(2) == " world" and sd.flush() == ""


def test_folder_vocab_merges_used(tmp_path):
    # A tiny byte-level BPE: "ab" merges, everything else single letters.
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "Ġ": 4, "<|endoftext|>": 5}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    t = load_tokenizer(tmp_path)
    assert t.vocab_size == 6 and t.eos_id == 5
    assert t.encode("abc") == [3, 2]
    assert t.decode([3, 2, 5]) == "abc<|endoftext|>"


def test_bad_tokenizer_json_raises(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot load tokenizer"):
        load_tokenizer(tmp_path)


def _complete_prefix(data: bytes) -> str:
    """The text of the longest prefix of data that ends on a complete UTF-8 character."""
    for cut in range(len(data), max(-1, len(data) - 4), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise AssertionError("not UTF-8")


@pytest.mark.parametrize("text", ["a🤖b€", " 🤖🎉", "日本語", "x👍🏽y"])
def test_stream_decoder_holds_partial_utf8(tok, text):
    ids = tok.encode(text)
    sd = StreamDecoder(tok)
    printed, data, held = "", b"", 0
    for i in ids:
        piece = sd.push(i)
        assert "\ufffd" not in piece
        printed += piece
        data += tok.token_bytes(i)
        # Exactly the complete characters so far have been printed.
        assert printed == _complete_prefix(data)
        held += printed != data.decode("utf-8", errors="replace")
    assert held > 0  # some character really was split over tokens
    assert printed + sd.flush() == text


def test_stream_decoder_matches_decode_on_paragraph(tok):
    ids = tok.encode(PARAGRAPH)
    sd = StreamDecoder(tok)
    streamed = "".join(sd.push(i) for i in ids) + sd.flush()
    assert streamed == tok.decode(ids) == PARAGRAPH


def test_stream_decoder_invalid_bytes_flush_as_replacement(tok):
    # The first three bytes of a 4-byte emoji, then end of stream: one U+FFFD at flush.
    ids = tok.encode("🤖")
    sd = StreamDecoder(tok)
    partial = b""
    out = ""
    for i in ids:
        if len(partial + tok.token_bytes(i)) >= 4:
            break
        partial += tok.token_bytes(i)
        out += sd.push(i)
    assert out == ""
    assert sd.flush() == "\ufffd"
