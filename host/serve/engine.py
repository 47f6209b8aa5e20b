"""The appliance behind `dfx serve`: one Session, one sequence at a time, a bounded FIFO before it.

A single worker thread owns the Session (it loads it, runs every request on it, reloads it after a
device error and closes it), so every backend sees the same single-threaded use as `dfx generate`.
The web side submits jobs (`Engine.submit`, from the event loop) and gets their events back on an
asyncio queue: one per token for a streaming request, one at the end for the others.

    waiting   at most `queue` jobs; one more gets QueueFull (the server's 429)
    running   one job; `cancel` makes it stop before its next token (a job still waiting is dropped)
    errors    a device error fails the job (500 naming card and pc); the worker then reloads the
              Session, and the requests after it run on the reloaded appliance
    drain     (SIGTERM) no new jobs, the waiting ones get 503, the running one goes on
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import sys
import threading
import time
import traceback

from dfx.errors import DeviceTimeout, DfxError, MachineError
from dfx.host.runtime import GenerationError
from dfx.host.sampling import SamplingError
from dfx.host.serve.metrics import Metrics
from dfx.host.serve.protocol import ApiError, Completion, LogprobsBuilder, StopText, token_logprobs, usage


class QueueFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"the appliance is busy and its queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclasses.dataclass
class Token:
    """One generated token as the web side sends it."""

    token: int
    text: str  # what it adds to the completion's text (held back while it may begin a stop string)
    logprobs: dict | None  # this token's entry of OpenAI's logprobs object


@dataclasses.dataclass
class Final:
    text: str  # the whole completion (non-streaming) or what is left to send (streaming)
    finish_reason: str  # "length" or "stop"
    token_ids: list[int]
    usage: dict
    logprobs: dict | None
    timing: dict


class Job:
    """One request on its way through the appliance."""

    def __init__(self, req: Completion, loop: asyncio.AbstractEventLoop):
        self.req = req
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.arrived = time.perf_counter()
        self.outcome: str | None = None  # "200", "500", "499" (the client went away), ...
        self.seq: int | None = None  # its place among the jobs that reached the appliance

    def emit(self, event) -> None:
        """From the worker: hand an event (Token, Final or ApiError) to the request's coroutine."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass


def device_error_message(e: Exception) -> str:
    """A device error as one line naming the card and the pc (MachineError knows both)."""
    if isinstance(e, MachineError):
        where = ", ".join(w for w in ((f"card {e.core}" if e.core is not None else ""),
                                      (f"pc {e.pc}" if e.pc is not None else "")) if w)
        return f"device error on {where or 'the appliance'}: {e.msg}" + (f" [{e.asm}]" if e.asm else "")
    return f"device error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"


class Engine:
    """A bundle loaded on one appliance (any backend), serving jobs one at a time in FIFO order."""

    def __init__(self, bundle, tokenizer, open_session, queue: int = 16, info: dict | None = None, log=None,
                 metrics: Metrics | None = None, warmup: bool = True):
        """open_session(first: bool) -> a dfx Session on the appliance (first: the load at start,
        else a reload after a device error). warmup: run two calls after each load, so that the
        first request does not pay for the simulator's first decoding of the programs."""
        self.bundle, self.tok, self.open_session = bundle, tokenizer, open_session
        self.warmup = warmup
        self.queue_max = queue
        self.info = info or {}
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.metrics = metrics or Metrics()
        self.session = None
        self.state = "loading"  # loading, ready, reloading, failed, draining, stopped
        self.error: str | None = None
        self._cv = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._stop = False
        self._loaded = threading.Event()
        self._service_s = 1.0  # running mean of a request's time on the appliance (for Retry-After)
        self.jobs_started = 0  # jobs that reached the appliance
        self.thread = threading.Thread(target=self._run, name="dfx-appliance", daemon=True)
        self.metrics.bind(self)

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> None:
        """Start the worker and wait for the appliance to load; the load's DfxError is raised here."""
        self.thread.start()
        self._loaded.wait()
        if self.session is None:
            self.thread.join()
            raise DfxError(self.error or "the appliance did not load")

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return int(self._running is not None)

    def submit(self, job: Job) -> None:
        """Queue a job (event loop); QueueFull past the queue, ApiError 503 while draining or stopped."""
        with self._cv:
            if self._stop or self.state in ("draining", "stopped"):
                raise ApiError(503, "the server is shutting down", code="shutting_down")
            if self.running + len(self._waiting) > self.queue_max:
                # as many waits as there are jobs before it, each as long as the mean so far
                raise QueueFull(max(1, round(self._service_s * (len(self._waiting) + 1))))
            self._waiting.append(job)
            self._cv.notify()

    def cancel(self, job: Job) -> None:
        """The client went away: a waiting job leaves the queue, a running one stops at its next token."""
        job.cancelled.set()
        with self._cv:
            if job in self._waiting:
                self._waiting.remove(job)
                job.outcome = "499"
                self.metrics.request_done("499")

    def drain(self) -> None:
        """Stop taking jobs; the waiting ones get 503 and the running one goes on (SIGTERM)."""
        with self._cv:
            if self.state not in ("stopped",):
                self.state = "draining"
            dropped = list(self._waiting)
            self._waiting.clear()
        for job in dropped:
            job.outcome = "503"
            self.metrics.request_done("503")
            job.emit(ApiError(503, "the server is shutting down", code="shutting_down"))
        if dropped:
            self.log(f"dfx serve: draining: {len(dropped)} waiting request(s) refused (503), "
                     f"{self.running} running to its end")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel whatever still runs, end the worker and close the appliance."""
        self.drain()
        with self._cv:
            self._stop = True
            if self._running is not None:
                self._running.cancelled.set()
            self._cv.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    # ------------------------------------------------------------------ the worker
    def _load(self, first: bool) -> bool:
        t0 = time.perf_counter()
        try:
            self.session = self.open_session(first)
            if self.warmup:
                self.session.generate([0], max_new_tokens=2, eos_token_id=None)
        except Exception as e:  # a DfxError names the problem; anything else is shown as one line too
            self._close_session()
            with self._cv:
                if self.state not in ("draining", "stopped"):
                    self.state = "failed"
            self.error = str(e).splitlines()[0] if isinstance(e, DfxError) else f"{type(e).__name__}: {e}"
            if not first:  # (a failed first load is start()'s error)
                self.log(f"dfx serve: the appliance did not reload: {self.error}")
            return False
        self.error = None
        with self._cv:
            if self.state not in ("draining", "stopped"):
                self.state = "ready"
        if not first:
            self.log(f"dfx serve: appliance reloaded in {time.perf_counter() - t0:.1f} s")
        return True

    def _close_session(self) -> None:
        s, self.session = self.session, None
        if s is not None:
            try:
                s.close()
            except Exception as e:  # closing a faulty appliance may fail too: nothing more to do with it
                self.log(f"dfx serve: closing the appliance: {str(e).splitlines()[0] if str(e) else e}")

    def _run(self) -> None:
        ok = self._load(first=True)
        self._loaded.set()
        if not ok:
            return
        try:
            while True:
                with self._cv:
                    while not self._waiting and not self._stop:
                        self._cv.wait()
                    if self._stop:
                        break
                    job = self._running = self._waiting.popleft()
                try:
                    self._serve(job)
                finally:
                    with self._cv:
                        self._running = None
        finally:
            self._close_session()
            self.state = "stopped"

    def _serve(self, job: Job) -> None:
        if job.cancelled.is_set():  # the client left between the queue and here
            job.outcome = "499"
            self.metrics.request_done("499")
            return
        if self.session is None:  # an earlier reload failed: try again before saying no
            with self._cv:
                self.state = "reloading"
            if not self._load(first=False):
                job.outcome = "503"
                self.metrics.request_done("503")
                job.emit(ApiError(503, f"the appliance is not usable: {self.error}", code="appliance_unavailable"))
                return
        self.jobs_started += 1
        job.seq = self.jobs_started
        sess, t0 = self.session, time.perf_counter()
        self.metrics.queue_wait.observe(t0 - job.arrived)
        stats: dict = {}
        try:
            final = self._generate(job, stats, t0)
        except (GenerationError, SamplingError) as e:  # parse_completion lets none through; kept as a 400
            job.outcome = "400"
            job.emit(ApiError(400, str(e), code="invalid_value"))
        except Exception as e:
            device = isinstance(e, (DfxError, OSError))
            msg = device_error_message(e) if device else f"internal error: {type(e).__name__}: {e}"
            self.log(f"dfx serve: request failed: {msg}")
            if not device:
                traceback.print_exc(file=sys.stderr)
            job.outcome = "500"
            self.metrics.device_errors.inc()
            job.emit(ApiError(500, msg, code="device_error" if device else "internal_error"))
            with self._cv:
                if self.state == "ready":
                    self.state = "reloading"
            self._close_session()  # a card may be left mid-call: reload the appliance before the next job
            self._load(first=False)
        else:
            job.outcome = "499" if job.cancelled.is_set() else "200"
            if job.outcome == "200":
                job.emit(final)
        finally:
            self._service_s = 0.8 * self._service_s + 0.2 * (time.perf_counter() - t0)
            self.metrics.request_done(job.outcome or "500")
            self.metrics.device_counters(stats, sess)

    def _generate(self, job: Job, stats: dict, started: float) -> Final:
        req, tok, sess = job.req, self.tok, self.session
        stream = req.stream
        dec = tok.stream()
        text = StopText(req.stop)
        lps = LogprobsBuilder() if req.logprobs is not None else None
        eos = None if req.ignore_eos else tok.eos_id
        ids: list[int] = []
        finish = "length"
        first = last = None
        m = self.metrics
        for step in sess.stream(req.prompt_ids, eos_token_id=eos, stats=stats, keep_logits=lps is not None,
                                **req.session_args()):
            now = time.perf_counter()
            if first is None:
                first = now
                m.ttft.observe(now - job.arrived)
            else:
                m.tpot.observe(now - last)
            last = now
            ids.append(step.token)
            m.generated.inc()
            is_eos = eos is not None and step.token == eos
            offset = len(text.text)
            out, hit = text.feed("" if is_eos else dec.push(step.token))  # end-of-text adds no text (as OpenAI)
            lp = None
            if lps is not None:
                value, top = token_logprobs(step.logits, step.token, req.logprobs, self._token_text)
                lp = lps.add(self._token_text(step.token), value, top, offset)
            if stream:
                job.emit(Token(step.token, out, lp))
            if hit or is_eos:
                finish = "stop"
                break
            if job.cancelled.is_set():
                break
        out, hit = text.feed(dec.flush())  # bytes of a character cut short, then text held back for a stop
        tail = out + text.flush()
        if hit:
            finish = "stop"
        m.prompt_tokens.inc(len(req.prompt_ids))
        timing = {"seq": job.seq, "queue_ms": (started - job.arrived) * 1e3,
                  "ttft_ms": None if first is None else (first - started) * 1e3,
                  "ms_per_token": None if len(ids) < 2 else (last - first) / (len(ids) - 1) * 1e3}
        return Final(text=tail if stream else text.text, finish_reason=finish, token_ids=ids,
                     usage=usage(len(req.prompt_ids), len(ids)), logprobs=None if lps is None else lps.as_dict(),
                     timing=timing)

    def _token_text(self, i: int) -> str:
        try:
            return self.tok.decode([i])
        except DfxError:  # a model vocabulary larger than the tokenizer's
            return f"<{i}>"

    # ------------------------------------------------------------------ for the web side
    def describe(self) -> dict:
        return dict(self.info, state=self.state, queue=self.queue_max)


__all__ = ["Engine", "Job", "Token", "Final", "QueueFull", "DeviceTimeout", "device_error_message"]
