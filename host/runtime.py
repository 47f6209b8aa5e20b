"""The host runtime: load a bundle onto N devices and drive the two phases of generation.

    summarization  the prompt, in blocks of the bundle's `summarization_rows` tokens per call
                   (r1 = ntok, r2 = pos), leaving K and V of every prompt token on the cards; on a
                   target whose perf.token_serial_summarization is set (u280-dfx: DFX's schedule),
                   one generation-program call per prompt token instead, as dfx.perf models it
    generation     one token per call, appending to the KV cache on the cards

After each call the host reads each card's slice of the logits and its fused argmax; greedy
decoding takes the argmax (the first maximum over the cards in vocabulary order), sampling
uses dfx.host.sampling on the gathered logits.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import numpy as np

from dfx.arch.isa import ARGMAX_WORDS, GENERATION, PHASES, SUMMARIZATION
from dfx.arch.target import load_target
from dfx.compiler.bundle import Bundle
from dfx.errors import DfxError
from dfx.host.hal import BACKENDS, open_devices
from dfx.host.sampling import check_params, sample
from dfx.host.tokenizer import GPT2_EOS_ID  # the default eos_token_id (as in GPT-2's HF generation config)
from dfx.sim import numerics as nx



class GenerationError(DfxError):
    """A prompt or argument the appliance cannot take."""


def prompt_list(input_ids) -> list[int]:
    """Token ids as a list of ints: a sequence, or one row of a 2-D array (batch 1)."""
    a = np.asarray(input_ids)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise GenerationError(f"input_ids must be token ids, 1-D or one row, got shape {a.shape} of {a.dtype}")
    return [int(t) for t in a]


@dataclasses.dataclass
class PhaseStats:
    calls: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    counters: dict = dataclasses.field(default_factory=dict)

    def add(self, tokens: int, wall: float, per_card: list[dict]) -> None:
        self.calls += 1
        self.tokens += tokens
        self.wall_s += wall
        c = self.counters
        dev = [card["device_cycles"] for card in per_card if "device_cycles" in card]
        if dev:  # a device that counts cycles (rtl): ap_start to the last card's done, summed over calls
            c["device_cycles"] = c.get("device_cycles", 0) + max(dev)
        for card in per_card:
            for key in ("macs", "syncs", "ring_bytes_sent"):
                c[key] = c.get(key, 0) + card.get(key, 0)
            c["hbm_read_bytes"] = c.get("hbm_read_bytes", 0) + int(sum(card.get("hbm_read_bytes", [])))
            c["hbm_write_bytes"] = c.get("hbm_write_bytes", 0) + int(sum(card.get("hbm_write_bytes", [])))
            for k, v in card.get("instructions", {}).items():
                c.setdefault("instructions", {})
                c["instructions"][k] = c["instructions"].get(k, 0) + v

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Step:
    """One generated token, as the iterator yields it."""

    index: int
    token: int
    phase: str  # the phase whose logits chose it
    logits: np.ndarray | None = None


class Session:
    """A bundle loaded onto N devices of one backend."""

    def __init__(self, bundle, backend: str = "sim", mode: str = "exact", timeout_s: float = 600.0,
                 verify: bool = True, **backend_opts):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        b = self.bundle
        m = b.manifest
        if verify:
            b.verify()
        self.target = load_target(m["target"]["name"])
        self.n = m["fpgas"]
        self.vocab = m["model"]["vocab_size"]
        self.max_seq = m["max_seq"]
        self.rows = m["summarization_rows"]
        self.token_serial = self.target.perf.token_serial_summarization
        self.timeout_s = timeout_s
        if getattr(BACKENDS.get(backend), "wants_layout", False):  # the card backends size buffers by these
            backend_opts.setdefault("hbm_bytes", max(c["hbm_bytes"] for c in b.cards))
            backend_opts.setdefault("ddr_bytes", max(c["ddr_bytes"] for c in b.cards))
            backend_opts.setdefault("bundle_target", m["target"])  # what the xclbin must have been built for
        self.devices = open_devices(backend, self.n, self.target, mode=mode, **backend_opts)
        for j, dev in enumerate(self.devices):
            for c in range(self.target.hbm.channels):
                dev.load_hbm_channel(c, b.hbm_channel(j, c))
            ddr = b.ddr(j)
            if ddr is not None:
                dev.load_ddr(ddr)

    # ------------------------------------------------------------------ one call
    def call(self, phase: str, ids: list[int], pos: int):
        """Run one program call on every card; returns (logits float32, argmax id, counters)."""
        cards = self.bundle.cards
        for j, dev in enumerate(self.devices):
            dev.write_mem("hbm", cards[j]["io"]["ids"], np.asarray(ids, "<i4").tobytes())
            dev.set_args(entry=cards[j]["programs"][phase]["entry"], ntok=len(ids), pos=pos, core=j, ncores=self.n,
                         status=cards[j]["io"]["status"])
        for dev in self.devices:
            dev.start()
        for dev in self.devices:
            dev.wait(self.timeout_s)
        logits, best = [], None
        for j, dev in enumerate(self.devices):
            v0, v1 = cards[j]["io"]["vocab"]
            raw = np.frombuffer(dev.read_mem("hbm", cards[j]["io"]["logits"], (v1 - v0) * 2), np.uint16)
            logits.append(raw)
            am = np.frombuffer(dev.read_mem("hbm", cards[j]["io"]["argmax"], 2 * ARGMAX_WORDS), np.uint16)
            idx, val = v0 + (int(am[0]) | int(am[1]) << 16), nx.from_f16_bits(am[2:3])[0]
            if not np.isnan(val) and (best is None or val > best[1]):
                best = (idx, val)
        all_logits = nx.from_f16_bits(np.concatenate(logits))
        return all_logits, (best[0] if best else 0), [d.counters() for d in self.devices]

    # ------------------------------------------------------------------ generation
    def check_prompt(self, ids: list[int]) -> None:
        if not ids:
            raise GenerationError("the prompt is empty")
        bad = [t for t in ids if not 0 <= int(t) < self.vocab]
        if bad:
            raise GenerationError(f"token id {bad[0]} is outside the vocabulary (0 .. {self.vocab - 1})")
        if len(ids) > self.max_seq:
            raise GenerationError(f"the prompt has {len(ids)} tokens, more than the context of {self.max_seq} "
                                  f"this bundle was compiled for (--max-seq)")

    def stream(self, input_ids, max_new_tokens: int = 32, do_sample: bool = False, temperature: float = 1.0,
               top_k: int = 50, top_p: float = 1.0, eos_token_id: int | None = GPT2_EOS_ID, seed: int = 0,
               stats: dict | None = None, keep_logits: bool = False) -> Iterator[Step]:
        """Yield the generated tokens one by one (generate() takes the same arguments).
        `stats` (a dict) receives PhaseStats per phase."""
        if not do_sample:
            temperature = 0.0  # greedy: temperature, top_k and top_p are not used (as in HF)
        elif not temperature:
            raise GenerationError("do_sample needs a temperature > 0")
        check_params(temperature, top_k, top_p)
        if max_new_tokens < 0:
            raise GenerationError(f"max-new-tokens must be >= 0, got {max_new_tokens}")
        ids = prompt_list(input_ids)
        self.check_prompt(ids)
        rng = np.random.default_rng(seed)
        st = stats if stats is not None else {}
        for ph in PHASES:
            st.setdefault(ph, PhaseStats())
        if max_new_tokens == 0:
            return

        def choose(logits, argmax):
            if not temperature:
                return argmax
            return sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, rng=rng)

        pos = 0
        if self.token_serial:  # the prompt token by token, through the generation program
            blocks = [(GENERATION, [t]) for t in ids]
        else:  # the prompt, block by block
            blocks = [(SUMMARIZATION, ids[s: s + self.rows]) for s in range(0, len(ids), self.rows)]
        for program, block in blocks:
            t0 = time.perf_counter()
            logits, argmax, cnt = self.call(program, block, pos)
            st[SUMMARIZATION].add(len(block), time.perf_counter() - t0, cnt)
            pos += len(block)
        tok = choose(logits, argmax)
        yield Step(0, tok, SUMMARIZATION, logits if keep_logits else None)
        for i in range(1, max_new_tokens):
            if eos_token_id is not None and tok == eos_token_id:
                return
            if pos >= self.max_seq:
                return  # the context is full
            t0 = time.perf_counter()
            logits, argmax, cnt = self.call(GENERATION, [tok], pos)
            st[GENERATION].add(1, time.perf_counter() - t0, cnt)
            pos += 1
            tok = choose(logits, argmax)
            yield Step(i, tok, GENERATION, logits if keep_logits else None)

    def generate(self, input_ids, max_new_tokens: int = 32, do_sample: bool = False, temperature: float = 1.0,
                 top_k: int = 50, top_p: float = 1.0, eos_token_id: int | None = GPT2_EOS_ID, seed: int = 0,
                 stats: dict | None = None) -> list[int]:
        """Hugging Face generate() for one sequence: the prompt's ids followed by the new ones.

        input_ids: token ids, 1-D or one row (batch 1). do_sample=False is greedy decoding
        (the first maximum of the logits); do_sample=True samples softmax(logits / temperature)
        restricted to the top_k (0: all) and then top_p most likely tokens, from a numpy
        generator seeded with `seed`. Stops after max_new_tokens, at eos_token_id (None: never)
        or when the context the bundle was compiled for is full.
        """
        ids = prompt_list(input_ids)
        return ids + [s.token for s in self.stream(ids, max_new_tokens, do_sample, temperature, top_k, top_p,
                                                     eos_token_id, seed, stats)]

    def close(self):
        for d in self.devices:
            d.close()

