"""The HTTP side of `dfx serve`: a Starlette app on uvicorn.

    GET  /                      the playground page (host/static/playground.html)
    GET  /health                200 when the appliance takes requests, else 503 with its state
    GET  /v1/models             the served bundle: model, target, FPGA count, context length
    POST /v1/completions        OpenAI's completions, streaming as server-sent events
    GET  /v1/dfx/perf           dfx perf's prediction for the bundle (?prompt_tokens=&completion_tokens=)
    GET  /metrics               Prometheus text format

A request is checked (400s) before it is queued; a full queue is a 429 with Retry-After. A
streaming response's status is decided by its first token (a device error before it is a 500);
after that an error arrives as an SSE event with OpenAI's error object, then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dfx.errors import DfxError
from dfx.host.serve.engine import Engine, Final, Job, QueueFull, Token
from dfx.host.serve.metrics import CONTENT_TYPE_LATEST
from dfx.host.serve.protocol import ApiError, parse_completion, parse_json

PLAYGROUND = Path(__file__).resolve().parents[1] / "static" / "playground.html"
MAX_BODY = 4 << 20


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


class Perf:
    """dfx perf's prediction for the served bundle (dfx.host.demo.Model: the Predictor `dfx perf`
    and `dfx demo` use), cached per (prompt, completion) length."""

    def __init__(self, bundle):
        from dfx.host.demo import Model

        self.model = Model(bundle.path)
        self.context = bundle.manifest["max_seq"]
        self.lock = threading.Lock()

    @functools.lru_cache(maxsize=256)
    def predict(self, n_in: int, n_out: int) -> dict | None:
        from dfx.perf.model import PerfError

        with self.lock:
            try:
                return self.model.predict(n_in, n_out)
            except PerfError:
                return None


def _wait_disconnect(receive):
    async def wait():
        while (await receive())["type"] != "http.disconnect":
            pass
    return asyncio.ensure_future(wait())


async def _next_event(job: Job, disconnected: asyncio.Future):
    """The job's next event, or None when the client disconnects first."""
    get = asyncio.ensure_future(job.events.get())
    done, _ = await asyncio.wait({get, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    if get in done:
        return get.result()
    get.cancel()
    return None


def create_app(engine: Engine, perf: Perf | None = None) -> Starlette:
    """The app for an engine whose appliance is loaded (Engine.start); the end of the app's
    lifespan stops the engine."""
    info = engine.info
    model_id = info["id"]
    names = tuple(dict.fromkeys(n for n in (model_id, info.get("model")) if n))
    created = int(info.get("created", time.time()))
    vocab, context = info["vocab_size"], info["context_length"]

    def card() -> dict:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "dfx",
                **{k: info[k] for k in ("model", "target", "fpgas", "context_length", "vocab_size", "backend", "mode")},
                "max_model_len": context}

    async def playground(request: Request):
        return HTMLResponse(PLAYGROUND.read_text(encoding="utf-8"))

    async def health(request: Request):
        body = {"status": engine.state, "model": model_id, "queue_depth": engine.waiting, "running": engine.running}
        if engine.error:
            body["error"] = engine.error
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [card()]})

    async def model(request: Request):
        if request.path_params["model"] not in names:
            raise HTTPException(404, f"the model {request.path_params['model']!r} does not exist")
        return JSONResponse(card())

    async def metrics(request: Request):
        return Response(engine.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def perf_route(request: Request):
        q = request.query_params
        try:
            n_in, n_out = int(q.get("prompt_tokens", "64")), int(q.get("completion_tokens", "64"))
        except ValueError:
            return error_response(ApiError(400, "prompt_tokens and completion_tokens must be integers",
                                           "prompt_tokens", "invalid_type"))
        if not 1 <= n_in <= context or n_out < 1:
            return error_response(ApiError(400, f"prompt_tokens must be in 1 .. {context} and completion_tokens "
                                           ">= 1", "prompt_tokens", "invalid_value"))
        n_out = min(n_out, context - n_in + 1)  # generation stops when the context is full
        body = {"object": "dfx.perf", "model": model_id, "target": info["target"], "fpgas": info["fpgas"],
                "prompt_tokens": n_in, "completion_tokens": n_out}
        p = None if perf is None else await run_in_threadpool(perf.predict, n_in, n_out)
        if p is None:
            return JSONResponse(dict(body, available=False, reason="the performance model cannot model this bundle"))
        return JSONResponse(dict(body, available=True, **p))

    async def completions(request: Request):
        try:
            body = await request.body()
            if len(body) > MAX_BODY:
                raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes", code="too_large",
                               type="invalid_request_error")
            req = parse_completion(parse_json(body), encode=engine.tok.encode, vocab=vocab, context=context,
                                   model_names=names)
            job = Job(req, asyncio.get_running_loop())
            engine.submit(job)
        except QueueFull as e:
            engine.metrics.request_done("429")
            return error_response(ApiError(429, str(e), code="queue_full", headers={"Retry-After": str(e.retry_after)}))
        except ApiError as e:
            engine.metrics.request_done(str(e.status))
            return error_response(e)
        rid, ts = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        disconnected = _wait_disconnect(request.receive)
        handed_over = False
        try:
            ev = await _next_event(job, disconnected)
            if ev is None:
                return Response(status_code=499)  # nobody reads it
            if isinstance(ev, ApiError):
                return error_response(ev)
            if not req.stream:
                return JSONResponse(_completion(rid, ts, model_id, req, ev))
            handed_over = True
            return StreamingResponse(_sse(engine, job, ev, rid, ts, model_id), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        finally:
            disconnected.cancel()
            if not handed_over:
                engine.cancel(job)  # a no-op for a job that has ended

    async def http_error(request: Request, exc: HTTPException):
        return error_response(ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404
                                       else None, type="invalid_request_error"))

    async def crash(request: Request, exc: Exception):  # a bug: still OpenAI's error object (uvicorn logs it)
        return error_response(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", code="internal_error"))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            await run_in_threadpool(engine.stop)

    return Starlette(routes=[
        Route("/", playground),
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/models/{model:path}", model),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/dfx/perf", perf_route),
        Route("/metrics", metrics),
    ], exception_handlers={HTTPException: http_error, Exception: crash}, lifespan=lifespan)


def _completion(rid: str, ts: int, model_id: str, req, f: Final) -> dict:
    choice = {"index": 0, "text": f.text, "logprobs": f.logprobs, "finish_reason": f.finish_reason}
    if req.return_token_ids:
        choice.update(prompt_token_ids=req.prompt_ids, token_ids=f.token_ids)
    return {"id": rid, "object": "text_completion", "created": ts, "model": model_id, "choices": [choice],
            "usage": f.usage, "dfx": f.timing}


async def _sse(engine: Engine, job: Job, ev, rid: str, ts: int, model_id: str):
    """One `data:` event per token, a last one with the finish reason (and the usage if asked), then [DONE]."""
    req = job.req

    def data(obj) -> str:
        return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"

    def chunk(choice: dict, **extra) -> str:
        return data({"id": rid, "object": "text_completion", "created": ts, "model": model_id, "choices": [choice],
                     **extra})

    ended = False
    try:
        while True:
            if isinstance(ev, Token):
                c = {"index": 0, "text": ev.text, "logprobs": ev.logprobs, "finish_reason": None}
                if req.return_token_ids:
                    c["token_ids"] = [ev.token]
                yield chunk(c)
            elif isinstance(ev, Final):
                ended = True
                yield chunk({"index": 0, "text": ev.text, "logprobs": None, "finish_reason": ev.finish_reason},
                            dfx=ev.timing)
                if req.include_usage:
                    yield data({"id": rid, "object": "text_completion", "created": ts, "model": model_id,
                                "choices": [], "usage": ev.usage})
                yield "data: [DONE]\n\n"
                return
            else:  # an ApiError after the first token: the status line has gone out already
                ended = True
                yield data(ev.body())
                yield "data: [DONE]\n\n"
                return
            ev = await job.events.get()
    finally:
        if not ended:
            engine.cancel(job)  # the client went away (or the server stops): no more tokens for it


# ---------------------------------------------------------------------------- running it
class _Server(uvicorn.Server):
    """uvicorn's server, which on SIGTERM / SIGINT also drains the engine, says when it listens,
    and exits with status 0 after the graceful shutdown (uvicorn re-raises the signal instead)."""

    def __init__(self, config, engine: Engine, log, url: str):
        super().__init__(config)
        self.engine, self.log, self.url = engine, log, url
        self.loop = None

    async def startup(self, sockets=None):
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if not self.should_exit:
            self.log(f"dfx serve: serving on {self.url} (playground {self.url}/, API {self.url}/v1, "
                     f"metrics {self.url}/metrics); queue {self.engine.queue_max}")

    def handle_exit(self, sig, frame):
        if not self.should_exit:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            self.log(f"dfx serve: {name}: no new requests; {self.engine.running} running to its end, "
                     f"{self.engine.waiting} waiting refused")
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.engine.drain)
        super().handle_exit(sig, frame)
        getattr(self, "_captured_signals", []).clear()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); DfxError in one line when it cannot."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        raise DfxError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def make_server(engine: Engine, app: Starlette, sock: socket.socket, drain_timeout: float = 30.0,
                access_log: bool = False, log=None) -> _Server:
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    config = uvicorn.Config(app, log_level="info" if access_log else "warning", access_log=access_log,
                            timeout_graceful_shutdown=drain_timeout, lifespan="on")
    return _Server(config, engine, log or engine.log, url)


def bundle_info(bundle, backend: str, mode: str) -> dict:
    m = bundle.manifest
    mm = m["model"]
    return {"id": bundle.path.name, "model": mm.get("name", "?"), "target": m["target"]["name"], "fpgas": bundle.n,
            "context_length": m["max_seq"], "vocab_size": mm["vocab_size"], "backend": backend, "mode": mode,
            "n_layer": mm.get("n_layer"), "n_embd": mm.get("n_embd"), "n_head": mm.get("n_head"),
            "created": int((bundle.path / "manifest.json").stat().st_mtime)}


def serve_bundle(bundle, backend: str = "sim", mode: str = "exact", host: str = "127.0.0.1", port: int = 8000,
                 queue: int = 16, timeout_s: float = 600.0, backend_opts: dict | None = None,
                 drain_timeout: float = 30.0, access_log: bool = False, log=None) -> int:
    """`dfx serve`: load the bundle (a Bundle or its folder) onto the appliance, then serve until
    SIGTERM / SIGINT."""
    from dfx.compiler.bundle import Bundle
    from dfx.host.runtime import Session
    from dfx.host.tokenizer import bundle_tokenizer

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if queue < 0:
        raise DfxError(f"--queue must be >= 0, got {queue}")
    t0 = time.perf_counter()
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    info = bundle_info(bundle, backend, mode)
    log(f"dfx serve: {bundle.path.name}: {info['model']} ({info['n_layer']} layers, d {info['n_embd']}), "
        f"{info['fpgas']} x {info['target']}, context {info['context_length']}")
    tok = bundle_tokenizer(bundle)
    opts = backend_opts or {}

    def open_session(first: bool):
        return Session(bundle, backend=backend, mode=mode, timeout_s=timeout_s, verify=first, **opts)

    log(f"dfx serve: verifying the bundle and loading it onto {bundle.n} {backend} device(s)"
        f"{f' ({mode} mode)' if backend == 'sim' else ''} ...")
    engine = Engine(bundle, tok, open_session, queue=queue, info=info, log=log)
    sock = bind(host, port)  # before the load: a port in use is known at once
    try:
        engine.start()
        perf = Perf(bundle)
        log(f"dfx serve: loaded in {time.perf_counter() - t0:.1f} s (with dfx perf's model of the bundle)")
        app = create_app(engine, perf)
        server = make_server(engine, app, sock, drain_timeout, access_log, log)
        server.run(sockets=[sock])
    finally:
        engine.stop()
        sock.close()
    log("dfx serve: stopped")
    return 0
