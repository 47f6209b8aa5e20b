"""`dfx serve`: a real server (uvicorn in a thread, on a free loopback port) over the demo bundle
on the fast simulator, the official `openai` client streaming and not, each answer equal to `dfx
generate` (the Session) on the same prompt, seed and settings; the error cases over raw HTTP; the
FIFO with its 429, cancellation on disconnect, device faults (500, then the next request runs),
metrics, the playground page, SIGTERM on the command line, and the xrt backend through the
stand-in cards.

The appliance's first device is wrapped by a Gate (the test's, not part of the server): while the
gate is closed each call waits for a permit, so a test can hold a request on the appliance for as
long as it needs and count the calls it makes.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import dfx  # noqa: E402
from dfx.arch import isa  # noqa: E402
from dfx.cli import main  # noqa: E402
from dfx.host.runtime import Session  # noqa: E402
from dfx.host.serve import Engine, Perf, bind, bundle_info, create_app, make_server  # noqa: E402
from dfx.host.tokenizer import bundle_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo-gpt2"
CONTEXT = 96
PROMPT = "The quick brown fox jumps over the lazy dog."


class Gate:
    """Holds the appliance's calls: while closed, each call on device 0 waits for a permit."""

    def __init__(self):
        self.closed = False
        self.permits = threading.Semaphore(0)
        self.calls = 0
        self.waiting = 0  # calls held at the gate now

    def wrap(self, session):
        dev = session.devices[0]
        inner = dev.wait

        def wait(timeout_s):
            self.calls += 1
            if self.closed:
                self.waiting += 1
                try:
                    assert self.permits.acquire(timeout=30), "the test never released the gate"
                finally:
                    self.waiting -= 1
            return inner(timeout_s)

        dev.wait = wait
        return session

    def close(self):
        self.permits = threading.Semaphore(0)
        self.closed = True

    def release(self, n=1):
        self.permits.release(n)

    def open(self):
        self.closed = False
        self.permits.release(1000)


def until(cond, what, timeout=20.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def start_server(bundle, open_session, queue=2, backend="sim", mode="fast"):
    tok = bundle_tokenizer(bundle)
    engine = Engine(bundle, tok, open_session, queue=queue, info=bundle_info(bundle, backend, mode),
                    log=lambda m: print(m, file=sys.stderr))  # shown with a failing test
    engine.start()
    sock = bind("127.0.0.1", 0)
    srv = make_server(engine, create_app(engine, Perf(bundle)), sock, drain_timeout=5, log=engine.log)
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    until(lambda: srv.started, "the server to start")
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    def stop():
        srv.should_exit = True
        t.join(20)
        sock.close()
    return SimpleNamespace(url=url, port=port, engine=engine, tok=tok, bundle=bundle, stop=stop,
                           client=openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return dfx.compile(DEMO, fpgas=1, out=tmp_path_factory.mktemp("serve") / "demo.dfx", max_seq=CONTEXT)


@pytest.fixture(scope="module")
def ref(bundle):
    """`dfx generate`'s run: the Session with the command line's sampling arguments."""
    s = Session(bundle, backend="sim", mode="fast")
    tok = bundle_tokenizer(bundle)

    def run(prompt, max_tokens=16, temperature=1.0, top_k=0, top_p=1.0, seed=0, logits=False):
        ids = tok.encode(prompt) if isinstance(prompt, str) else prompt
        steps = list(s.stream(ids, max_new_tokens=max_tokens, do_sample=temperature != 0,
                              temperature=temperature or 1.0, top_k=top_k, top_p=top_p, seed=seed,
                              eos_token_id=tok.eos_id, keep_logits=logits))
        new = [st.token for st in steps]
        text = tok.decode(new[:-1] if new and new[-1] == tok.eos_id else new)
        return SimpleNamespace(ids=ids, new=new, text=text, steps=steps)
    yield run
    s.close()


@pytest.fixture(scope="module")
def server(bundle):
    gate = Gate()
    srv = start_server(bundle, lambda first: gate.wrap(Session(bundle, backend="sim", mode="fast", verify=first)))
    srv.gate = gate
    yield srv
    gate.open()
    srv.stop()


@pytest.fixture
def s(server):
    """The shared server, idle, its gate open."""
    server.gate.open()
    until(lambda: server.engine.ready and not server.engine.running and not server.engine.waiting, "an idle server")
    return server


def metrics(srv) -> dict:
    """(name, labels) -> value of every sample on /metrics."""
    text = httpx.get(srv.url + "/metrics").text
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(text) for smp in fam.samples}


def metric(m: dict, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


SETTINGS = [dict(temperature=0), dict(temperature=0.9, seed=7), dict(temperature=1.3, top_k=40, top_p=0.9, seed=123)]


# ------------------------------------------------------------------------- the openai client
@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "sampled", "top-k-top-p"])
def test_openai_client_completion_equals_generate(s, ref, settings):
    extra = {"top_k": settings["top_k"]} if "top_k" in settings else {}
    kw = {k: v for k, v in settings.items() if k != "top_k"}
    r = s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=20,
                                    extra_body=dict(extra, return_token_ids=True), **kw)
    want = ref(PROMPT, 20, **settings)
    c = r.choices[0]
    assert c.text == want.text
    assert c.token_ids == want.new and c.prompt_token_ids == want.ids
    assert c.finish_reason == ("stop" if want.new[-1] == s.tok.eos_id else "length")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == \
        (len(want.ids), len(want.new), len(want.ids) + len(want.new))
    assert r.object == "text_completion" and r.model == "demo.dfx"


@pytest.mark.parametrize("settings", SETTINGS[:2], ids=["greedy", "sampled"])
def test_openai_client_stream_is_one_chunk_per_token_and_equals_generate(s, ref, settings):
    chunks = list(s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=24, stream=True,
                                              stream_options={"include_usage": True},
                                              extra_body={"return_token_ids": True}, **settings))
    want = ref(PROMPT, 24, **settings)
    tokens = [c for c in chunks if c.choices and c.choices[0].finish_reason is None]
    assert [c.choices[0].token_ids[0] for c in tokens] == want.new  # one chunk per token, in order
    assert "".join(c.choices[0].text for c in chunks if c.choices) == want.text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == len(want.new) and chunks[-1].choices == []
    assert len({c.id for c in chunks}) == 1


def test_dfx_generate_command_gives_the_same_ids(s, bundle, capsys):
    """The command line itself (`dfx generate --json`) against the server, on token ids."""
    ids = s.tok.encode("Once upon a time")
    assert main(["generate", str(bundle.path), "--prompt-ids", ",".join(map(str, ids)), "--json", "--mode", "fast",
                 "--max-new-tokens", "12", "--temperature", "0.8", "--top-k", "30", "--seed", "5"]) == 0
    cli = json.loads(capsys.readouterr().out)
    r = s.client.completions.create(model="demo-gpt2", prompt=ids, max_tokens=12, temperature=0.8, seed=5,
                                    extra_body={"top_k": 30, "return_token_ids": True})
    assert r.choices[0].token_ids == cli["new_ids"] and r.choices[0].text == cli["text"]


def test_stop_strings_cut_the_text_stream_or_not(s, ref):
    want = ref(PROMPT, 30, temperature=0.9, seed=3)
    full = want.text
    i = next(i for i in range(len(full) // 3, len(full)) if not full[i].isspace())
    stop = full[i: i + 2]  # a stop string that the completion reaches after a third of its text
    cut = full[:full.index(stop)]
    args = dict(model="demo.dfx", prompt=PROMPT, max_tokens=30, temperature=0.9, seed=3, stop=[stop, "\x00never"])
    r = s.client.completions.create(**args)
    assert r.choices[0].text == cut and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens < len(want.new)
    chunks = list(s.client.completions.create(stream=True, **args))
    assert "".join(c.choices[0].text for c in chunks) == cut and chunks[-1].choices[0].finish_reason == "stop"


def test_logprobs_are_the_appliances_log_softmax(s, ref):
    import numpy as np

    r = s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=5, temperature=0, logprobs=3)
    want = ref(PROMPT, 5, temperature=0, logits=True)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    for i, st in enumerate(want.steps):
        x = st.logits.astype(np.float64)
        ls = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
        assert lp.token_logprobs[i] == pytest.approx(ls[st.token], abs=1e-9)
        assert lp.tokens[i] == s.tok.decode([st.token])
        assert len(lp.top_logprobs[i]) == 3 and max(lp.top_logprobs[i].values()) == pytest.approx(ls.max(), abs=1e-9)
    assert lp.text_offset[0] == 0 and "".join(lp.tokens) == r.choices[0].text


def test_generation_stops_when_the_context_is_full(s, ref):
    ids = (s.tok.encode(PROMPT) * 20)[:CONTEXT - 3]
    r = s.client.completions.create(model="demo.dfx", prompt=ids, max_tokens=50, temperature=0,
                                    extra_body={"ignore_eos": True, "return_token_ids": True})
    assert r.usage.completion_tokens == 4 and r.choices[0].finish_reason == "length"  # positions 93 .. 96
    ids = (s.tok.encode(PROMPT) * 20)[:CONTEXT]  # a prompt that fills the context still gets one token
    assert s.client.completions.create(model="demo.dfx", prompt=ids, max_tokens=5).usage.completion_tokens == 1


# ------------------------------------------------------------------------- models, health, perf, page
def test_models_health_perf_and_playground(s, bundle):
    (m,) = s.client.models.list().data
    assert m.id == "demo.dfx"
    d = m.model_dump()
    assert (d["model"], d["target"], d["fpgas"], d["context_length"], d["backend"], d["mode"]) == \
        ("demo-gpt2", "u280", 1, CONTEXT, "sim", "fast")
    assert s.client.models.retrieve("demo.dfx").id == "demo.dfx"
    h = httpx.get(s.url + "/health")
    assert h.status_code == 200 and h.json()["status"] == "ready"

    p = httpx.get(s.url + "/v1/dfx/perf", params={"prompt_tokens": 10, "completion_tokens": 20}).json()
    from dfx.host.demo import Model
    want = Model(bundle.path).predict(10, 20)
    assert p["available"] and p["ttft_ms"] == pytest.approx(want["ttft_ms"])
    assert p["tokens_per_s"] == pytest.approx(want["tokens_per_s"]) and p["target"] == "u280"
    assert httpx.get(s.url + "/v1/dfx/perf", params={"prompt_tokens": 0}).status_code == 400

    page = httpx.get(s.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('id="prompt"', 'id="temperature"', 'id="top_p"', 'id="top_k"', 'id="seed"', 'id="ttft"',
                   'id="tps"', 'id="pttft"', "/v1/completions", "/v1/dfx/perf", "/v1/models", "stream: true"):
        assert needle in page.text


# ------------------------------------------------------------------------- bad requests, over raw HTTP
BAD = [
    (b'{"prompt": "hi", "max_tokens": 4', None, "invalid_json"),
    (b"[1, 2]", None, "invalid_json"),
    (b'{"prompt": "hi", "max_tokens": NaN}', None, "invalid_json"),
    ({"max_tokens": 4}, "prompt", "missing_required_parameter"),
    ({"prompt": 5}, "prompt", "invalid_type"),
    ({"prompt": [1, "2"]}, "prompt", "invalid_type"),
    ({"prompt": [1, True]}, "prompt", "invalid_type"),
    ({"prompt": []}, "prompt", "invalid_value"),
    ({"prompt": ["a", "b"]}, "prompt", "invalid_value"),
    ({"prompt": [1, 50257]}, "prompt", "invalid_token"),
    ({"prompt": [-1]}, "prompt", "invalid_token"),
    ({"prompt": list(range(CONTEXT + 1))}, "prompt", "context_length_exceeded"),
    ({"prompt": " the" * (CONTEXT + 1)}, "prompt", "context_length_exceeded"),
    ({"prompt": "hi", "max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"prompt": "hi", "max_tokens": -3}, "max_tokens", "invalid_value"),
    ({"prompt": "hi", "max_tokens": "5"}, "max_tokens", "invalid_type"),
    ({"prompt": "hi", "max_tokens": 2.5}, "max_tokens", "invalid_type"),
    ({"prompt": "hi", "n": 2}, "n", "invalid_value"),
    ({"prompt": "hi", "temperature": -0.5}, "temperature", "invalid_value"),
    ({"prompt": "hi", "temperature": "hot"}, "temperature", "invalid_type"),
    ({"prompt": "hi", "top_p": 0}, "top_p", "invalid_value"),
    ({"prompt": "hi", "top_k": -1}, "top_k", "invalid_value"),
    ({"prompt": "hi", "seed": "x"}, "seed", "invalid_type"),
    ({"prompt": "hi", "stop": 3}, "stop", "invalid_type"),
    ({"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
    ({"prompt": "hi", "stream": "yes"}, "stream", "invalid_type"),
    ({"prompt": "hi", "stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ({"prompt": "hi", "logprobs": 21}, "logprobs", "invalid_value"),
    ({"prompt": "hi", "echo": True}, "echo", "unsupported_parameter"),
    ({"prompt": "hi", "best_of": 3}, "best_of", "unsupported_parameter"),
    ({"prompt": "hi", "max_new_tokens": 5}, "max_new_tokens", "unknown_parameter"),
]


def test_bad_requests_are_400_naming_the_field_and_never_reach_the_appliance(s):
    started, calls = s.engine.jobs_started, s.gate.calls
    before = metric(metrics(s), "dfx_requests_total", status="400")
    with httpx.Client(base_url=s.url) as c:
        for body, param, code in BAD:
            r = c.post("/v1/completions", content=body if isinstance(body, bytes) else json.dumps(body),
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (body, r.text)
            e = r.json()["error"]
            assert set(e) == {"message", "type", "param", "code"} and e["type"] == "invalid_request_error"
            assert (e["param"], e["code"]) == (param, code), (body, e)
            assert param is None or param in e["message"] or param == "prompt", e
        r = c.post("/v1/completions", json={"prompt": "hi", "model": "gpt-4"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        assert c.get("/v1/nothing").json()["error"]["type"] == "invalid_request_error"
        ok = c.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2
    assert s.engine.jobs_started == started + 1 and s.gate.calls == calls + 2  # only the good one ran
    assert metric(metrics(s), "dfx_requests_total", status="400") == before + len(BAD)
    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        s.client.completions.create(model="demo.dfx", prompt="hi", n=2)


# ------------------------------------------------------------------------- one at a time, FIFO, 429
def test_queue_serves_one_at_a_time_in_order_and_answers_429_past_it(s, ref):
    s.gate.close()
    res, threads = {}, []
    jobs = [("A", PROMPT, 1), ("B", "Once upon a time", 2), ("C", "In the beginning", 3)]
    for name, prompt, seed in jobs:
        def run(name=name, prompt=prompt, seed=seed):
            res[name] = s.client.completions.create(model="demo.dfx", prompt=prompt, max_tokens=6, temperature=1.0,
                                                    seed=seed, extra_body={"return_token_ids": True})
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
        until(lambda n=len(threads): s.engine.running + s.engine.waiting == n, f"request {name} to be queued")
    m = metrics(s)
    assert metric(m, "dfx_queue_depth") == 2 and metric(m, "dfx_requests_running") == 1
    r = httpx.post(s.url + "/v1/completions", json={"prompt": "one too many", "max_tokens": 2})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error" and r.json()["error"]["code"] == "queue_full"
    s.gate.open()
    for t in threads:
        t.join(60)
    for name, prompt, seed in jobs:
        want = ref(prompt, 6, temperature=1.0, seed=seed)
        assert res[name].choices[0].token_ids == want.new and res[name].choices[0].text == want.text, name
    seqs = [res[name].model_extra["dfx"]["seq"] for name, _, _ in jobs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3  # first in, first served
    assert metric(metrics(s), "dfx_requests_total", status="429") >= 1


# ------------------------------------------------------------------------- cancellation
def test_a_client_that_disconnects_mid_stream_is_cancelled_at_the_next_token(s):
    before = metric(metrics(s), "dfx_requests_total", status="499")
    calls = s.gate.calls
    s.gate.close()
    s.gate.release(2)  # the prompt's call and one generation call: two tokens
    body = {"prompt": PROMPT, "max_tokens": 60, "temperature": 0, "stream": True}
    with httpx.Client(timeout=30) as c, c.stream("POST", s.url + "/v1/completions", json=body) as r:
        assert r.status_code == 200
        lines, got = r.iter_lines(), 0
        while got < 2:  # (not a `for` with a break: closing the iterator would close the connection now)
            got += next(lines).startswith("data: {")
        until(lambda: s.gate.waiting == 1, "the third call to wait at the gate")
    # the connection is closed: the server marks the job cancelled while its third call still runs
    until(lambda: s.engine._running is None or s.engine._running.cancelled.is_set(), "the cancellation")
    s.gate.open()
    until(lambda: not s.engine.running, "the appliance to be free")
    assert s.gate.calls - calls == 3  # not 60
    assert metric(metrics(s), "dfx_requests_total", status="499") == before + 1


def _raw_post(port, body: dict) -> socket.socket:
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def test_a_waiting_or_running_request_whose_client_leaves_is_dropped(s):
    before = metric(metrics(s), "dfx_requests_total", status="499")
    calls = s.gate.calls
    s.gate.close()
    running = _raw_post(s.port, {"prompt": PROMPT, "max_tokens": 40, "temperature": 0})
    until(lambda: s.gate.waiting == 1, "the first request on the appliance")
    waiting = _raw_post(s.port, {"prompt": PROMPT, "max_tokens": 40})
    until(lambda: s.engine.waiting == 1, "the second request in the queue")
    waiting.close()
    until(lambda: s.engine.waiting == 0, "the queue to drop the request that left")
    running.close()
    until(lambda: s.engine._running is None or s.engine._running.cancelled.is_set(), "the cancellation")
    s.gate.open()
    until(lambda: not s.engine.running, "the appliance to be free")
    assert s.gate.calls - calls == 1  # the prompt's call; no generation call after it
    assert metric(metrics(s), "dfx_requests_total", status="499") == before + 2


# ------------------------------------------------------------------------- device errors
def _break_generation_program(srv, pc=5):
    """A real fault, not a mock: an illegal instruction written over the generation program in the
    simulated card's HBM, which the simulator decodes and refuses (IllegalInstruction, card 0, pc)."""
    entry = srv.bundle.cards[0]["programs"]["generation"]["entry"]
    srv.engine.session.devices[0].write_mem("hbm", entry + pc * isa.INSTR_BYTES, b"\xff" * isa.INSTR_BYTES)


def test_a_device_fault_fails_that_request_with_500_naming_card_and_pc_and_the_next_one_runs(s, ref):
    errors0 = metric(metrics(s), "dfx_device_errors_total")
    _break_generation_program(s)
    r = httpx.post(s.url + "/v1/completions", json={"prompt": PROMPT, "max_tokens": 4}, timeout=30)
    assert r.status_code == 500
    e = r.json()["error"]
    assert e["type"] == "server_error" and e["code"] == "device_error"
    assert "card 0" in e["message"] and "pc 5" in e["message"] and "illegal" in e["message"]
    want = ref(PROMPT, 8, temperature=0.7, seed=11)  # the reloaded appliance answers as before
    r = s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=8, temperature=0.7, seed=11)
    assert r.choices[0].text == want.text
    assert metric(metrics(s), "dfx_device_errors_total") == errors0 + 1

    _break_generation_program(s, pc=7)  # mid-stream: the first token went out, the error follows as an event
    stream = s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=4, stream=True)
    first = next(iter(stream))
    assert first.choices[0].finish_reason is None
    with pytest.raises(openai.APIError, match="card 0, pc 7"):
        list(stream)
    until(lambda: s.engine.ready, "the reload")
    assert s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=3).usage.completion_tokens == 3


# ------------------------------------------------------------------------- metrics
def test_metrics_count_tokens_latencies_and_the_counters_the_simulator_measures(s):
    m0 = metrics(s)
    s.client.completions.create(model="demo.dfx", prompt=PROMPT, max_tokens=5, temperature=0)
    m = metrics(s)

    def d(name, **labels):
        return metric(m, name, **labels) - metric(m0, name, **labels)
    assert d("dfx_requests_total", status="200") == 1
    assert d("dfx_generation_tokens_total") == 5 and d("dfx_prompt_tokens_total") == len(s.tok.encode(PROMPT))
    assert d("dfx_time_to_first_token_seconds_count") == 1 and d("dfx_time_per_output_token_seconds_count") == 4
    assert d("dfx_device_hbm_read_bytes_total", phase="generation") > 0
    assert d("dfx_device_macs_total", phase="summarization") > 0
    assert metric(m, "dfx_appliance_ready") == 1 and metric(m, "dfx_queue_depth") == 0
    assert not any(name.startswith("dfx_device_cycles") for name, _ in m)  # the simulator counts no cycles


# ------------------------------------------------------------------------- another backend
def test_the_xrt_backend_serves_through_the_standin_cards(monkeypatch, tmp_path, tiny_bundle, tiny_prompt):
    """The same server on `--backend xrt` over the stand-in pyxrt (two simulated U280s behind XRT's
    API): the exact simulator's ids, a fault reported by the card's status record as a 500, and no
    HBM byte counters in /metrics, since the cards do not measure them. Each load of the appliance
    gets new stand-in cards: the stand-in cannot place a second set of buffers on the same ones."""
    from standins.axlf import dfx_xclbin
    from standins.cards import StandinCards
    from standins.pyxrt_standin import make_pyxrt

    from dfx.arch import kernel
    from dfx.arch.target import load_target
    from dfx.compiler.bundle import Bundle

    b = Bundle(tiny_bundle(2))
    x = dfx_xclbin(tmp_path / "dfx_core.xclbin", kernel.xclbin_keys(b.manifest["target"]))
    cards = []

    def open_session(first):
        cards.append(StandinCards(load_target("tiny"), 2))
        monkeypatch.setitem(sys.modules, "pyxrt", make_pyxrt(cards[-1]))
        return Session(b, backend="xrt", xclbin=str(x))

    srv = start_server(b, open_session, backend="xrt", mode="exact")
    try:
        sess = Session(b, backend="sim", mode="exact")
        want = sess.generate(tiny_prompt, max_new_tokens=6, eos_token_id=None)[len(tiny_prompt):]
        sess.close()
        r = srv.client.completions.create(model=b.path.name, prompt=tiny_prompt, max_tokens=6, temperature=0,
                                          extra_body={"return_token_ids": True, "ignore_eos": True})
        assert r.choices[0].token_ids == want
        entry = b.cards[0]["programs"]["generation"]["entry"]
        cards[-1].app.cores[0].hbm.write(entry + 3 * isa.INSTR_BYTES, b"\xff" * isa.INSTR_BYTES, count=False)
        r = httpx.post(srv.url + "/v1/completions", json={"prompt": tiny_prompt, "max_tokens": 3}, timeout=30)
        assert r.status_code == 500 and "card 0, pc 3" in r.json()["error"]["message"], r.text
        r = srv.client.completions.create(model=b.path.name, prompt=tiny_prompt, max_tokens=6, temperature=0,
                                          extra_body={"return_token_ids": True, "ignore_eos": True})
        assert r.choices[0].token_ids == want  # after the reload
        names = {name for name, _ in metrics(srv)}
        assert "dfx_generation_tokens_total" in names
        assert not any(n.startswith(("dfx_device_hbm", "dfx_device_macs", "dfx_device_cycles")) for n in names)
    finally:
        srv.stop()


# ------------------------------------------------------------------------- the page in a browser
class Chromium:
    """Headless Chromium (Debian's package) driven over the DevTools protocol on a pipe: commands
    on its fd 3, answers on its fd 4, each a JSON object ended by a NUL byte."""

    def __init__(self, exe: str):
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        self.tmp = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)

        def fds():
            a, b = os.dup(cmd_r), os.dup(resp_w)  # above 4 first, whatever numbers the pipes have
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                                      f"--user-data-dir={self.tmp.name}", "--window-size=900,1000", "about:blank"],
                                     preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self.buf, self.n = b"", 0

    def send(self, method, session=None, **params):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.resp_r, 1 << 16)
                assert chunk, "chromium closed its DevTools pipe"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            m = json.loads(raw)
            if m.get("id") == self.n:
                assert "error" not in m, m["error"]
                return m["result"]

    def open(self, url):
        target = self.send("Target.createTarget", url=url)["targetId"]
        return self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def texts(self, page, ids):
        js = f"JSON.stringify({json.dumps(ids)}.map(i => (document.getElementById(i) || {{}}).textContent || null))"
        r = self.send("Runtime.evaluate", page, expression=js, returnByValue=True)
        return dict(zip(ids, json.loads(r["result"]["value"])))

    def close(self):
        self.proc.kill()
        self.proc.wait(10)
        os.close(self.cmd_w)
        os.close(self.resp_r)
        self.tmp.cleanup()


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (scripts/setup.sh --hw installs it)")
def test_the_playground_streams_a_completion_in_chromium_and_shows_the_figures(s, ref, tmp_path):
    settings = {"prompt": "Once upon a time", "max_tokens": "24", "temperature": "0.8", "top_k": "40", "seed": "2"}
    url = f"{s.url}/?{urllib.parse.urlencode(settings)}&run"  # ?run: the page generates once it has loaded
    want = ref("Once upon a time", 24, temperature=0.8, top_k=40, seed=2)
    pred = httpx.get(s.url + "/v1/dfx/perf", params={"prompt_tokens": len(want.ids),
                                                       "completion_tokens": len(want.new)}).json()
    ids = ["model", "completion", "status", "ttft", "tps", "mspt", "ntok", "server", "pttft", "ptps", "pntok"]
    chrome = Chromium(shutil.which("chromium"))
    try:
        page = chrome.open(url)
        t0 = time.monotonic()
        while (got := chrome.texts(page, ids))["pntok"] in (None, "-") and time.monotonic() - t0 < 30:
            assert "error" not in (got["status"] or ""), got
            time.sleep(0.05)
        (tmp_path / "playground.png").write_bytes(base64.b64decode(
            chrome.send("Page.captureScreenshot", page, format="png")["data"]))
    finally:
        chrome.close()
    assert got["model"].startswith("demo.dfx: demo-gpt2 on 1 × u280 (sim, fast mode)"), got
    assert got["completion"] == want.text and got["status"] == "finished: length", got
    assert got["ntok"] == got["pntok"] == f"{len(want.ids)} + {len(want.new)}"
    assert float(got["ttft"].split()[0]) > 0 and float(got["tps"]) > 0 and got["mspt"].endswith(" ms")
    assert re.fullmatch(r"[\d.]+ ms / [\d.]+ ms", got["server"]), got
    assert got["pttft"] == f"{pred['ttft_ms']:.3f} ms" and got["ptps"] == f"{pred['tokens_per_s']:.0f}"


# ------------------------------------------------------------------------- README.md
def test_readme_examples_run_against_the_server(s, ref, capsys):
    """README's "Serving over HTTP": the curl request's JSON and the openai example, with the test
    server's address and bundle name in place of theirs."""
    text = (ROOT / "README.md").read_text().split("## Serving over HTTP", 1)[1].split("\n## ", 1)[0]
    sh = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert "dfx serve demo-2fpga.dfx --mode fast --port 8000" in sh
    body = json.loads(re.search(r"-d '(.*?)'", sh).group(1).replace("demo-2fpga.dfx", "demo.dfx"))
    r = httpx.post(s.url + "/v1/completions", json=body)
    want = ref(body["prompt"], body["max_tokens"], temperature=body["temperature"])
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == want.text
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace("http://127.0.0.1:8000", s.url).replace("demo-2fpga.dfx", "demo.dfx")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    streamed = ref("Once upon a time", 32, temperature=0.8, seed=1, top_k=40).text
    assert out.startswith(want.text + " CompletionUsage(") and out.endswith("\n" + streamed + "\n")


# ------------------------------------------------------------------------- the command line
def test_serve_command_errors_are_one_line(capsys, monkeypatch, tmp_path, bundle):
    assert main(["serve", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dfx: error: ") and "nothing" in err
    for name in [m for m in sys.modules if m.startswith("dfx.host.serve")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", str(bundle.path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dfx[serve]'" in err and "uvicorn" in err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for opt in ("--backend", "--mode", "--host", "--port", "--queue", "/v1/completions"):
        assert opt in out


def test_serve_command_loads_serves_and_exits_cleanly_on_sigterm(bundle):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "dfx.cli", "serve", str(bundle.path), "--mode", "fast", "--port", "0",
                          "--queue", "1"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                         cwd=bundle.path.parent)
    try:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if "serving on" in line:
                break
        url = re.search(r"serving on (http://\S+) ", lines[-1]).group(1)
        assert any("loaded in" in x for x in lines) and any("verifying" in x for x in lines)
        body = {"prompt": PROMPT, "max_tokens": 40, "temperature": 0, "stream": True, "ignore_eos": True}
        with httpx.Client(timeout=30) as c, c.stream("POST", url + "/v1/completions", json=body) as r:
            events = []
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                    if len(events) == 1:
                        p.send_signal(signal.SIGTERM)  # mid-stream: the request in flight still finishes
        assert events[-1] == "data: [DONE]" and len(events) == 40 + 2
        assert p.wait(30) == 0
        rest = p.stderr.read()
        assert "SIGTERM" in rest and "stopped" in rest and "Traceback" not in rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
