"""The OpenAI completions protocol of `dfx serve`: request checking, stop strings, response objects.

Nothing here touches the appliance: a request that fails `parse_completion` gets its 400 before
it is queued. Errors are OpenAI's error object, {"error": {"message", "type", "param", "code"}},
with `param` naming the field at fault.
"""

from __future__ import annotations

import dataclasses
import json
import math
import secrets

import numpy as np

# Fields of OpenAI's /v1/completions that a GPT-2 appliance can honour only at their neutral value.
_NEUTRAL = {"echo": (False, None), "suffix": (None,), "best_of": (1, None), "presence_penalty": (0, 0.0, None),
            "frequency_penalty": (0, 0.0, None), "logit_bias": (None,), "user": None}
MAX_LOGPROBS = 20
MAX_STOP = 4


class ApiError(Exception):
    """An answer other than 200, as OpenAI writes it."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or {400: "invalid_request_error", 404: "invalid_request_error",
                             429: "rate_limit_error"}.get(status, "server_error")
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(param: str | None, message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, param, code)


@dataclasses.dataclass
class Completion:
    """One checked /v1/completions request."""

    prompt_ids: list[int]
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    seed_given: bool = False
    stop: list[str] = dataclasses.field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    logprobs: int | None = None
    ignore_eos: bool = False
    return_token_ids: bool = False

    def session_args(self) -> dict:
        """Session.stream's arguments, as `dfx generate` makes them from its options: temperature 0
        is greedy, any other samples with top_k (0: all), top_p and the seed."""
        return dict(max_new_tokens=self.max_tokens, do_sample=self.temperature != 0,
                    temperature=self.temperature or 1.0, top_k=self.top_k, top_p=self.top_p, seed=self.seed)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _type_name(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> dict:
    try:
        obj = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(None, f"the request body is not valid JSON: {e}", "invalid_json") from None
    if not isinstance(obj, dict):
        raise bad(None, f"the request body must be a JSON object, got {_type_name(obj)}", "invalid_json")
    return obj


def parse_completion(obj: dict, *, encode, vocab: int, context: int, model_names: tuple[str, ...]) -> Completion:
    """Check a /v1/completions body; ApiError (400, or 404 for an unknown model) names the field.

    encode: text -> token ids (the bundle's tokenizer); vocab: the model's vocabulary size;
    context: the length the bundle was compiled for (--max-seq); model_names: the names the
    served bundle answers to."""
    known = {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream",
             "stream_options", "n", "logprobs", "ignore_eos", "return_token_ids", *_NEUTRAL}
    for k in obj:
        if k not in known:
            raise bad(k, f"unrecognized request argument: {k}", "unknown_parameter")
    model = obj.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise bad("model", f"model must be a string, got {_type_name(model)}", "invalid_type")
        if model not in model_names:
            raise ApiError(404, f"the model {model!r} does not exist; this server has {model_names[0]!r}",
                           "model", "model_not_found")
    for k, allowed in _NEUTRAL.items():
        v = obj.get(k)
        if allowed is None:  # accepted and ignored (user)
            if v is not None and not isinstance(v, str):
                raise bad(k, f"{k} must be a string, got {_type_name(v)}", "invalid_type")
        elif k == "logit_bias" and (v is None or v == {}):
            continue
        elif not any(v == a and type(v) is type(a) for a in allowed):
            raise bad(k, f"{k} = {json.dumps(v)} is not supported by dfx serve (only {json.dumps(allowed[0])})",
                      "unsupported_parameter")

    c = Completion(prompt_ids=_prompt(obj, encode, vocab, context))
    n = obj.get("n")
    if n is not None:
        if not _is_int(n):
            raise bad("n", f"n must be an integer, got {_type_name(n)}", "invalid_type")
        if n != 1:
            raise bad("n", f"n = {n}: the appliance runs one sequence per request, so n must be 1", "invalid_value")
    mt = obj.get("max_tokens")
    if mt is not None:
        if not _is_int(mt):
            raise bad("max_tokens", f"max_tokens must be an integer, got {_type_name(mt)}", "invalid_type")
        if mt <= 0:
            raise bad("max_tokens", f"max_tokens must be at least 1, got {mt}", "invalid_value")
        c.max_tokens = mt
    t = obj.get("temperature")
    if t is not None:
        if not _is_num(t) or t < 0:
            raise bad("temperature", f"temperature must be a number >= 0 (0 = greedy), got {json.dumps(t)}",
                      "invalid_value" if _is_num(t) else "invalid_type")
        c.temperature = float(t)
    p = obj.get("top_p")
    if p is not None:
        if not _is_num(p) or not 0 < p <= 1:
            raise bad("top_p", f"top_p must be a number in (0, 1], got {json.dumps(p)}",
                      "invalid_value" if _is_num(p) else "invalid_type")
        c.top_p = float(p)
    k = obj.get("top_k")
    if k is not None:
        if not _is_int(k) or k < 0:
            raise bad("top_k", f"top_k must be an integer >= 0 (0 = no limit), got {json.dumps(k)}",
                      "invalid_value" if _is_int(k) else "invalid_type")
        c.top_k = k
    s = obj.get("seed")
    if s is not None:
        if not _is_int(s) or not 0 <= s < 2**64:
            raise bad("seed", f"seed must be an integer in [0, 2**64), got {json.dumps(s)}",
                      "invalid_value" if _is_int(s) else "invalid_type")
        c.seed, c.seed_given = s, True
    else:
        c.seed = secrets.randbits(63)  # as OpenAI: without a seed, sampling differs from run to run
    c.stop = _stop(obj.get("stop"))
    for name in ("stream", "ignore_eos", "return_token_ids"):
        v = obj.get(name)
        if v is not None:
            if not isinstance(v, bool):
                raise bad(name, f"{name} must be a boolean, got {_type_name(v)}", "invalid_type")
            setattr(c, name, v)
    so = obj.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise bad("stream_options", f"stream_options must be an object, got {_type_name(so)}", "invalid_type")
        if not c.stream:
            raise bad("stream_options", "stream_options is only allowed with stream: true", "invalid_value")
        for key, v in so.items():
            if key != "include_usage":
                raise bad(f"stream_options.{key}", f"unrecognized stream option: {key}", "unknown_parameter")
            if not isinstance(v, bool):
                raise bad("stream_options.include_usage", f"include_usage must be a boolean, got {_type_name(v)}",
                          "invalid_type")
            c.include_usage = v
    lp = obj.get("logprobs")
    if lp is not None:
        if not _is_int(lp) or not 0 <= lp <= MAX_LOGPROBS:
            raise bad("logprobs", f"logprobs must be an integer from 0 to {MAX_LOGPROBS} (the most likely tokens "
                      f"to list at each position), got {json.dumps(lp)}", "invalid_value" if _is_int(lp) else
                      "invalid_type")
        c.logprobs = lp
    return c


def _prompt(obj: dict, encode, vocab: int, context: int) -> list[int]:
    if "prompt" not in obj:
        raise bad("prompt", "prompt is required: a string or an array of token ids", "missing_required_parameter")
    p = obj["prompt"]
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], (str, list)):
        p = p[0]  # a batch of one
    elif isinstance(p, list) and p and all(isinstance(x, (str, list)) for x in p):
        raise bad("prompt", f"prompt holds {len(p)} prompts: the appliance takes one per request", "invalid_value")
    if isinstance(p, str):
        ids = encode(p)
        what = "the prompt's text"
    elif isinstance(p, list):
        for i, t in enumerate(p):
            if not _is_int(t):
                raise bad("prompt", f"prompt[{i}] must be a token id (an integer), got {_type_name(t)}",
                          "invalid_type")
        ids = list(p)
        what = "the prompt"
    else:
        raise bad("prompt", f"prompt must be a string or an array of token ids, got {_type_name(p)}", "invalid_type")
    if not ids:
        raise bad("prompt", "the prompt is empty: give at least one token", "invalid_value")
    for i, t in enumerate(ids):
        if not 0 <= t < vocab:
            raise bad("prompt", f"{what} has token id {t} (position {i}), outside the model's vocabulary "
                      f"(0 .. {vocab - 1})", "invalid_token")
    if len(ids) > context:
        raise bad("prompt", f"{what} has {len(ids)} tokens, more than the context of {context} the bundle was "
                  "compiled for (dfx compile --max-seq)", "context_length_exceeded")
    return ids


def _stop(v) -> list[str]:
    if v is None:
        return []
    stops = [v] if isinstance(v, str) else v
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad("stop", f"stop must be a string or an array of strings, got {_type_name(v)}", "invalid_type")
    if len(stops) > MAX_STOP:
        raise bad("stop", f"stop holds {len(stops)} strings, at most {MAX_STOP} are allowed", "invalid_value")
    if any(s == "" for s in stops):
        raise bad("stop", "a stop string must not be empty", "invalid_value")
    return stops


class StopText:
    """Text of a completion as it grows, cut before the first stop string.

    feed(piece) -> (text safe to send now, whether a stop string was found). Text that could be the
    start of a stop string is held back until the next piece tells; flush() releases it at the end."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.text = ""  # everything produced so far
        self.sent = 0  # how much of it went out
        self.stopped = False

    def feed(self, piece: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        self.text += piece
        if not self.stops:
            return self._release(len(self.text)), False
        hits = [i for i in (self.text.find(s, self.sent) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            self.text = self.text[:min(hits)]
            return self._release(len(self.text)), True
        hold = 0
        for s in self.stops:  # the longest tail of the text that begins some stop string
            for k in range(min(len(s) - 1, len(self.text) - self.sent), hold, -1):
                if self.text.endswith(s[:k]):
                    hold = k
                    break
        return self._release(len(self.text) - hold), False

    def flush(self) -> str:
        return "" if self.stopped else self._release(len(self.text))

    def _release(self, upto: int) -> str:
        out, self.sent = self.text[self.sent:upto], max(self.sent, upto)
        return out


def token_logprobs(logits: np.ndarray, token: int, top: int, token_text) -> tuple[float | None, dict | None]:
    """log softmax of the appliance's logits at `token`, and the `top` most likely tokens (text -> logprob)."""
    x = np.asarray(logits, np.float64)
    x = np.where(np.isnan(x), -np.inf, x)
    m = x.max()
    lp = x - (m + math.log(np.exp(x - m).sum()))

    def f(v):
        return float(v) if math.isfinite(v) else None

    best = None
    if top:
        idx = np.argsort(-lp, kind="stable")[:top]
        best = {token_text(int(i)): f(lp[i]) for i in idx}
    return f(lp[token]), best


class LogprobsBuilder:
    """OpenAI's legacy completions `logprobs` object: tokens, token_logprobs, top_logprobs, text_offset."""

    def __init__(self):
        self.tokens: list[str] = []
        self.token_logprobs: list[float | None] = []
        self.top_logprobs: list[dict | None] = []
        self.text_offset: list[int] = []

    def add(self, text: str, lp: float | None, top: dict | None, offset: int) -> dict:
        self.tokens.append(text)
        self.token_logprobs.append(lp)
        self.top_logprobs.append(top)
        self.text_offset.append(offset)
        return {"tokens": [text], "token_logprobs": [lp], "top_logprobs": [top], "text_offset": [offset]}

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "token_logprobs": self.token_logprobs, "top_logprobs": self.top_logprobs,
                "text_offset": self.text_offset}


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
