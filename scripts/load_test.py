"""Load test of `dfx serve`: N concurrent streaming clients for T seconds, then a check of every answer.

    python scripts/load_test.py [--clients 64] [--seconds 20] [--bundle B] [--fpgas 2] [--mode fast]

Starts `dfx serve` on a free loopback port (the demo model compiled for --fpgas cards unless
--bundle is given; --queue as large as the number of clients, so that none is refused), runs
--clients clients that each send streaming completions one after another (a prompt from a small
list, a seed and a length of their own, sampled), and after --seconds stops them, lets the
requests in flight end and stops the server with SIGTERM. It prints latency percentiles (time to
first token, time per output token, whole request) and throughput, then checks that no request
was lost or duplicated (one answer per request, each with its own id and its own place in the
server's order, as many 200s in /metrics as requests sent) or mixed with another: every answer's
tokens equal the same request run alone on a Session with `dfx generate`'s arguments. Exit status 1
if any check fails. Traffic goes to 127.0.0.1 only, and the run ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["The quick brown fox", "Once upon a time", "In the beginning", "It was a dark and stormy night",
           "The appliance", "Hello, my name is"]


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


async def client(http, url, k, deadline, results):
    import httpx

    rnd = random.Random(k)
    n = 0
    while time.monotonic() < deadline:
        req = {"prompt": rnd.choice(PROMPTS), "max_tokens": rnd.randint(8, 32), "temperature": 0.9,
               "seed": k * 100_000 + n, "stream": True, "return_token_ids": True, "ignore_eos": True}
        n += 1
        rec = {"req": req, "tokens": [], "text": "", "ids": set(), "seq": None, "error": None}
        t0 = time.perf_counter()
        times = []
        try:
            async with http.stream("POST", url + "/v1/completions", json=req) as r:
                if r.status_code != 200:
                    rec["error"] = f"{r.status_code}: {(await r.aread()).decode()[:200]}"
                else:
                    async for line in r.aiter_lines():
                        if not line.startswith("data: {"):
                            continue
                        msg = json.loads(line[6:])
                        if "error" in msg:
                            rec["error"] = msg["error"]["message"]
                            break
                        rec["ids"].add(msg["id"])
                        c = msg["choices"][0]
                        rec["text"] += c["text"]
                        if c["finish_reason"] is None:
                            times.append(time.perf_counter())
                            rec["tokens"] += c["token_ids"]
                        else:
                            rec["seq"] = msg["dfx"]["seq"]
        except httpx.HTTPError as e:
            rec["error"] = f"{type(e).__name__}: {e}"
        rec["total_s"] = time.perf_counter() - t0
        rec["ttft_s"] = times[0] - t0 if times else None
        rec["gaps_s"] = [b - a for a, b in zip(times, times[1:])]
        results.append(rec)


async def drive(url, clients, seconds):
    import httpx

    results = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as http:
        deadline = time.monotonic() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http, url, k, deadline, results) for k in range(clients)))
        wall = time.perf_counter() - t0
    return results, wall


def check(results, bundle, mode, metrics_text):
    """Problems found: lost, duplicated or mixed answers."""
    from dfx.host.runtime import Session
    from dfx.host.tokenizer import bundle_tokenizer

    problems = [f"request {i} failed: {r['error']}" for i, r in enumerate(results) if r["error"]]
    ok = [r for r in results if not r["error"]]
    ids = [next(iter(r["ids"])) for r in ok if len(r["ids"]) == 1]
    if len(ids) != len(ok):
        problems.append(f"{len(ok) - len(ids)} answer(s) with other than one id")
    if len(set(ids)) != len(ids):
        problems.append("two answers share an id")
    seqs = [r["seq"] for r in ok]
    if None in seqs or len(set(seqs)) != len(seqs):
        problems.append("the server's order (dfx.seq) repeats or misses a request")
    m = re.search(r'^dfx_requests_total\{status="200"\} ([\d.e+]+)$', metrics_text, re.M)
    if not m or int(float(m.group(1))) != len(ok):
        problems.append(f"/metrics counts {m.group(1) if m else 'no'} answers with status 200, the clients {len(ok)}")
    tok = bundle_tokenizer(bundle)
    s = Session(bundle, backend="sim", mode=mode)
    try:
        for r in ok:
            q = r["req"]
            ids = tok.encode(q["prompt"])
            alone = s.generate(ids, max_new_tokens=q["max_tokens"], do_sample=True, temperature=q["temperature"],
                               top_k=0, top_p=1.0, seed=q["seed"], eos_token_id=None)[len(ids):]
            if r["tokens"] != alone or r["text"] != tok.decode(alone):
                problems.append(f"request {q} differs from the same request run alone")
    finally:
        s.close()
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--bundle", help="a compiled bundle (default: the demo model for --fpgas cards)")
    ap.add_argument("--fpgas", type=int, default=2)
    ap.add_argument("--mode", default="fast", choices=["exact", "fast"])
    a = ap.parse_args(argv)

    import httpx

    from dfx.compiler.bundle import Bundle

    with tempfile.TemporaryDirectory() as tmp:
        if a.bundle:
            bundle = Bundle(a.bundle)
        else:
            import dfx
            bundle = dfx.compile(ROOT / "models" / "demo-gpt2", fpgas=a.fpgas, out=Path(tmp) / "demo.dfx")
        server = subprocess.Popen([sys.executable, "-m", "dfx.cli", "serve", str(bundle.path), "--mode", a.mode,
                                   "--port", "0", "--queue", str(a.clients)], stderr=subprocess.PIPE, text=True)
        try:
            url = None
            for line in server.stderr:
                if "serving on" in line:
                    url = re.search(r"serving on (http://\S+) ", line).group(1)
                    break
            if url is None:
                print("load_test: the server did not start", file=sys.stderr)
                return 1
            log = []  # the server's later lines (read, so that its pipe never fills)
            threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()
            print(f"load_test: {a.clients} streaming clients for {a.seconds:g} s against {url} "
                  f"({bundle.path.name}, {bundle.n} card(s), {a.mode} simulator)")
            results, wall = asyncio.run(drive(url, a.clients, a.seconds))
            metrics_text = httpx.get(url + "/metrics").text
        finally:
            server.terminate()
            server.wait(60)
        ok = [r for r in results if not r["error"]]
        tokens = sum(len(r["tokens"]) for r in ok)
        ttft = [r["ttft_s"] * 1e3 for r in ok if r["ttft_s"] is not None]
        gaps = [g * 1e3 for r in ok for g in r["gaps_s"]]
        total = [r["total_s"] * 1e3 for r in ok]

        def row(name, v):
            return (f"  {name:<24} p50 {pct(v, 50):9.1f}  p90 {pct(v, 90):9.1f}  p99 {pct(v, 99):9.1f}  "
                    f"max {max(v) if v else float('nan'):9.1f} ms")
        print(f"  requests {len(results)} ({len(results) - len(ok)} failed), {tokens} tokens in {wall:.1f} s: "
              f"{tokens / wall:.1f} tokens/s, {len(ok) / wall:.2f} requests/s")
        print(row("time to first token", ttft))
        print(row("time per output token", gaps))
        print(row("whole request", total))
        if gaps:
            print(f"  mean time per output token {statistics.mean(gaps):.2f} ms")
        problems = check(results, bundle, a.mode, metrics_text)
    if problems:
        print(f"load_test: {len(problems)} problem(s):", *problems[:20], sep="\n  ")
        return 1
    print("load_test: every answer equals its request run alone; none lost, duplicated or mixed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
