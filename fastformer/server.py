"""An OpenAI-compatible HTTP server over the batched engine (needs the server extra: pip install "fastformer[server]").

    fastformer serve --model PATH --host 127.0.0.1 --port 8000 --api-key KEY --parallel 8 --threads 2

Routes: GET /health (no key; 503 while the model loads), GET /v1/models, POST /v1/completions,
POST /v1/chat/completions (server-sent events with "stream": true), POST /tokenize, POST /detokenize and
GET /metrics (Prometheus text). Every error has OpenAI's shape {"error": {"message", "type", "param", "code"}}:
400 for malformed JSON, bad values, unsupported fields and prompts beyond the context window, 401 for a missing
or wrong key, 404 for another model's name, 429 when the engine's queue is full.

>>> app = create_app("model.gguf", api_key="secret", parallel=8)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import os
import threading
import time
import traceback
import uuid
from functools import partial

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(f'fastformer.server needs the server extra: pip install "fastformer[server]" ({e})') from None

from fastformer.chat import ChatTemplateError
from fastformer.engine import Engine, QueueFullError, SamplingParams
from fastformer.model import DEFAULT_MODEL, KV_DTYPES

__all__ = ["create_app", "serve"]

log = logging.getLogger("fastformer.server")
MAX_BODY = 8 << 20  # bytes of a request body
MAX_TOP_LOGPROBS = 20  # alternatives per token, as OpenAI allows
ROUTES = ("/health", "/v1/models", "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/metrics")

# request fields each generation route reads (the extras top_k, min_p, repetition_penalty and ignore_eos are
# llama.cpp's and vLLM's); "user" is accepted and not used, as it only names the caller
COMMON_FIELDS = {"model", "max_tokens", "temperature", "top_p", "stop", "seed", "stream", "stream_options", "user"}
COMMON_FIELDS |= {"top_k", "min_p", "repetition_penalty", "ignore_eos"}
COMPLETION_FIELDS = COMMON_FIELDS | {"prompt", "logprobs"}
CHAT_FIELDS = COMMON_FIELDS | {"messages", "max_completion_tokens", "logprobs", "top_logprobs"}
# OpenAI fields fastformer does not implement: accepted only at their neutral value (or null), else 400
NEUTRAL = {"n": 1, "best_of": 1, "presence_penalty": 0, "frequency_penalty": 0, "echo": False, "suffix": None}
NEUTRAL.update(dict.fromkeys(("logit_bias", "tools", "tool_choice", "functions", "function_call"), None))
NEUTRAL.update(dict.fromkeys(("response_format", "parallel_tool_calls", "logprobs_mode", "prediction"), None))
NEUTRAL.update(dict.fromkeys(("modalities", "audio", "reasoning_effort", "service_tier", "store", "metadata"), None))


class ApiError(Exception):
    """An error answered in OpenAI's shape; `param` names the request field at fault."""

    def __init__(self, status, message, *, type="invalid_request_error", code=None, param=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers


def _error_response(e):
    body = {"error": {"message": e.message, "type": e.type, "param": e.param, "code": e.code}}
    return JSONResponse(body, status_code=e.status, headers=e.headers)


def _bad(message, param=None, code=None):
    return ApiError(400, message, param=param, code=code)


# ---- reading requests ----


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(s):
    x = float(s)
    if not math.isfinite(x):
        raise ValueError(f"number {s} is out of range")
    return x


async def _read_json(request):
    """The body as a JSON object; 400 for anything else (NaN and Infinity are not JSON), 413 past MAX_BODY."""
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > MAX_BODY:
        raise ApiError(413, f"request body of {size} bytes exceeds the limit of {MAX_BODY}", code="request_too_large")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > MAX_BODY:
            raise ApiError(413, f"request body exceeds the limit of {MAX_BODY} bytes", code="request_too_large")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        raise _bad(f"the request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {type(body).__name__}", code="invalid_json")
    return body


def _check_fields(body, allowed):
    for name, value in body.items():
        if name in allowed:
            continue
        if name in NEUTRAL:
            neutral = NEUTRAL[name]
            if value is None or value == neutral and isinstance(value, bool) == isinstance(neutral, bool):
                continue
            raise _bad(f"'{name}' is not supported by this server (only its default, {json.dumps(neutral)})", name)
        raise _bad(f"unknown field '{name}'", name, code="unknown_field")


def _get(body, name, kinds, default=None, what=None):
    """body[name] checked against JSON types `kinds` (bool is never an int), default when absent or null."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        want = what or " or ".join({bool: "a boolean", int: "an integer", float: "a number", str: "a string",
                                    list: "an array", dict: "an object"}[k] for k in kinds)  # fmt: skip
        raise _bad(f"'{name}' must be {want}, got {json.dumps(value)[:80]}", name)
    return value


def _sampling(body, *, max_tokens, logprobs):
    """SamplingParams of a request (OpenAI's defaults: temperature 1, top_p 1); 400 naming a bad field."""
    num = (int, float)
    fields = dict(
        max_tokens=max_tokens,
        temperature=_get(body, "temperature", num, 1.0, "a number"),
        top_p=_get(body, "top_p", num, 1.0, "a number"),
        top_k=_get(body, "top_k", (int,), 0),
        min_p=_get(body, "min_p", num, 0.0, "a number"),
        repetition_penalty=_get(body, "repetition_penalty", num, 1.0, "a number"),
        seed=_get(body, "seed", (int,)),
        stop=_get(body, "stop", (str, list), what="a string or an array of strings"),
        ignore_eos=_get(body, "ignore_eos", (bool,), False),
        logprobs=logprobs,
    )
    try:
        return SamplingParams(**fields)
    except (ValueError, TypeError) as e:
        msg = str(e)
        raise _bad(msg, next((k for k in fields if msg.startswith(k)), None)) from None


def _max_tokens(body, name, default):
    return _get(body, name, (int,), default)


def _stream_options(body):
    """(stream, include_usage)"""
    stream = _get(body, "stream", (bool,), False)
    opts = _get(body, "stream_options", (dict,))
    if opts is None:
        return stream, False
    if not stream:
        raise _bad("'stream_options' is only allowed when 'stream' is true", "stream_options")
    unknown = set(opts) - {"include_usage"}
    if unknown:
        raise _bad(f"unknown field 'stream_options.{sorted(unknown)[0]}'", "stream_options")
    return stream, _get(opts, "include_usage", (bool,), False)


def _chat_messages(body):
    """The messages as the chat template takes them: text parts of a content array joined by newlines."""
    messages = _get(body, "messages", (list,))
    if not messages:
        raise _bad("'messages' must be a non-empty array of {role, content} objects", "messages")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"{where} must be an object with a string 'role'", "messages")
        content = m.get("content")
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise _bad(f"{where}.content[{j}]: only text parts {{type: text, text}} are supported", "messages")
                texts.append(part["text"])
            content = "\n".join(texts)
        elif not isinstance(content, str):
            raise _bad(f"{where}.content must be a string or an array of text parts", "messages")
        out.append({**m, "content": content})
    return out


# ---- the engine's events in asyncio ----


class _Job:
    """The engine requests of one HTTP call (one per prompt) and the asyncio queue their events arrive on."""

    def __init__(self, engine, prompts, params, param):
        loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        self.reqs = []
        try:
            for i, ids in enumerate(prompts):
                self.reqs.append(engine.submit(ids, params, on_event=partial(self._put, loop, i)))
        except QueueFullError as e:
            self.cancel()
            raise ApiError(429, f"the server is busy: {e}", type="rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None  # fmt: skip
        except ValueError as e:
            self.cancel()
            code = "context_length_exceeded" if "context" in str(e) else None
            raise _bad(str(e), param, code) from None
        except BaseException:
            self.cancel()
            raise

    def _put(self, loop, i, ev):
        # engine thread: hand the event to the event loop, never block
        try:
            loop.call_soon_threadsafe(self.queue.put_nowait, (i, ev))
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def cancel(self):
        for r in self.reqs:
            r.cancel()

    async def events(self):
        """(prompt index, event) until every request has finished."""
        left = len(self.reqs)
        while left:
            i, ev = await self.queue.get()
            left -= ev.finish_reason is not None
            yield i, ev


async def _cancel_on_disconnect(receive, job):
    """Wait for the client to go away, then cancel its sequences (they leave the batch before the next step)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    job.cancel()


class _EventStream(StreamingResponse):
    """Server-sent events from an async iterator of str; a client that goes away has its job cancelled at once
    (starlette's own disconnect check only runs on some ASGI versions and cancels the stream, not the job)."""

    def __init__(self, chunks, job):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(chunks, media_type="text/event-stream", headers=headers)
        self.job = job

    async def __call__(self, scope, receive, send):
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, self.job))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the connection broke mid-write
            self.job.cancel()
        finally:
            watcher.cancel()
            self.job.cancel()  # a no-op for finished requests


def _sse(obj):
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


# ---- the server ----


class _Server:
    """The model, its engine and the counters behind one app."""

    def __init__(self, model_or_path, *, api_key, parallel, max_queue, threads, model_name, kv_dtype):
        self.source, self.threads = model_or_path, threads
        self.load_options = {} if kv_dtype is None else dict(kv_dtype=kv_dtype)
        self.parallel, self.max_queue = parallel, max_queue
        self.api_key = None if api_key is None else api_key.encode()
        self.model = self.engine = self.error = None
        path = getattr(model_or_path, "path", model_or_path) or DEFAULT_MODEL
        self.name = model_name or os.path.basename(os.fspath(path).rstrip("/"))
        self.created = int(time.time())
        self.http = {}  # (route, status) -> count
        self.finished = {}  # finish reason -> count

    # loading runs in a thread so /health answers 503 meanwhile
    def load(self):
        from fastformer import Model, set_num_threads

        try:
            src = self.source
            if src is None:
                model = Model.default(threads=self.threads, **self.load_options)
            elif isinstance(src, (str, os.PathLike)):
                model = Model.load(src, threads=self.threads, **self.load_options)
            else:
                model = src
                if self.threads is not None:
                    set_num_threads(self.threads)
            self.model = model  # before the engine: a request that sees the engine uses the model
            # an encoder serves /v1/embeddings and has no engine
            self.engine = (
                ENCODER if model.is_encoder else Engine(model, parallel=self.parallel, max_queue=self.max_queue)
            )
            log.info("fastformer: %s ready (%d slots, queue %d)", self.name, self.parallel, self.max_queue)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            log.error("fastformer: loading %s failed: %s", self.name, self.error)

    def close(self):
        if self.engine is not None and self.engine is not ENCODER:
            self.engine.close()

    def check_key(self, request):
        if self.api_key is None:
            return
        got = request.headers.get("authorization", "")
        scheme, _, key = got.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), self.api_key)
        if not ok:
            message = "invalid API key" if got else "missing API key: send Authorization: Bearer KEY"
            raise ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    def ready(self, encoder=False):
        """The engine (ENCODER for an encoder model); 503 while loading or after a failed load, 400 for a route
        the model cannot serve (encoder: True for an encoder's route, False for a decoder's, None for either)."""
        if self.engine is not None:
            if encoder is not None and encoder != (self.engine is ENCODER):
                what = "an encoder: it serves /v1/embeddings" if not encoder else "not an encoder: no /v1/embeddings"
                raise _bad(f"the model `{self.name}` is {what}", "model", code="unsupported_model")
            return self.engine
        if self.error is not None:
            raise ApiError(503, f"the model failed to load: {self.error}", type="server_error", code="load_failed")
        raise ApiError(503, "the model is loading", type="server_error", code="model_loading",
                       headers={"Retry-After": "1"})  # fmt: skip

    async def open(self, request, fields, encoder=False):
        """(body, engine) of a POST request, checked in this order: key (401), JSON (400), model loaded and of the
        route's kind (503 / 400), known fields (400), model name (404)."""
        self.check_key(request)
        body = await _read_json(request)
        engine = self.ready(encoder)
        _check_fields(body, fields)
        self.check_model(body)
        return body, engine

    def check_model(self, body):
        name = _get(body, "model", (str,))
        if name is not None and name != self.name:
            raise ApiError(404, f"the model `{name}` does not exist (this server serves `{self.name}`)",
                           param="model", code="model_not_found")  # fmt: skip

    def encode(self, text, param):
        tok = self.model.tokenizer
        if tok is None:
            raise _bad("this model has no tokenizer: send token ids", param)
        return tok.encode_prompt(text)

    def ids(self, value, param):
        vocab = self.model.config.vocab_size
        if not value or not all(type(i) is int for i in value):
            raise _bad(f"'{param}' must be a non-empty array of token ids", param)
        bad = [i for i in value if not 0 <= i < vocab]
        if bad:
            raise _bad(f"'{param}' holds token id {bad[0]} outside the vocabulary [0, {vocab})", param)
        return value

    def prompts(self, body):
        """Token ids of each prompt: a string, an array of ids, or an array of strings or of id arrays."""
        p = body.get("prompt")
        if isinstance(p, str):
            return [self.encode(p, "prompt")]
        if isinstance(p, list) and p and all(type(x) is int for x in p):
            return [self.ids(p, "prompt")]
        if isinstance(p, list) and p and all(isinstance(x, str) for x in p):
            return [self.encode(x, "prompt") for x in p]
        if isinstance(p, list) and p and all(isinstance(x, list) for x in p):
            return [self.ids(x, "prompt") for x in p]
        raise _bad("'prompt' must be a string, an array of strings, an array of token ids or of id arrays", "prompt")

    def chat_ids(self, body):
        messages = _chat_messages(body)
        if self.model.tokenizer is None:
            raise _bad("this model has no tokenizer, so it cannot chat", "messages")
        try:
            return self.model._chat_ids(messages, {})
        except ChatTemplateError as e:
            raise _bad(str(e), "messages") from None
        except Exception as e:  # the template's raise_exception (roles out of order ...) and bad content
            raise _bad(f"the chat template rejected the messages: {e}", "messages") from None

    def token_text(self, i):
        return self.model.tokenizer.decode_bytes([i]).decode("utf-8", errors="replace")

    def count_finish(self, reason):
        self.finished[reason] = self.finished.get(reason, 0) + 1


class _Choice:
    """What one prompt's events add up to."""

    def __init__(self):
        self.text, self.tokens, self.finish_reason, self.error = [], [], None, None
        self.n_tokens = 0  # generated tokens: each has an event, the EOS that ended generation included

    def add(self, ev):
        self.n_tokens += ev.token_id is not None
        if ev.text:
            self.text.append(ev.text)
        if ev.token_id is not None and ev.logprob is not None:
            self.tokens.append((ev.token_id, ev.logprob, ev.top_logprobs or []))
        if ev.finish_reason is not None:
            self.finish_reason, self.error = ev.finish_reason, ev.error


def _usage(job, choices):
    p, c = sum(r.prompt_tokens for r in job.reqs), sum(ch.n_tokens for ch in choices)
    cached = sum(r.cached_tokens for r in job.reqs)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
            "prompt_tokens_details": {"cached_tokens": cached}}  # fmt: skip


def _completion_logprobs(srv, tokens, offset=0):
    """OpenAI's legacy completions logprobs: tokens, token_logprobs, top_logprobs, text_offset."""
    out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for tid, lp, top in tokens:
        text = srv.token_text(tid)
        out["tokens"].append(text)
        out["token_logprobs"].append(lp)
        out["top_logprobs"].append({srv.token_text(t): v for t, v in top})
        out["text_offset"].append(offset)
        offset += len(text)
    return out


def _chat_logprobs(srv, tokens):
    """OpenAI's chat logprobs: content = [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]."""

    def entry(tid, lp):
        b = srv.model.tokenizer.decode_bytes([tid])
        return {"token": b.decode("utf-8", errors="replace"), "logprob": lp, "bytes": list(b)}

    content = [dict(entry(t, lp), top_logprobs=[entry(a, v) for a, v in top]) for t, lp, top in tokens]
    return {"content": content, "refusal": None}


def _stream_error(choice):
    return {"error": {"message": choice.error or "generation failed", "type": "server_error", "param": None,
                      "code": "generation_error"}}  # fmt: skip


async def _collect(srv, request, job):
    """Every choice of a job; the job is cancelled if the client goes away meanwhile."""
    choices = [_Choice() for _ in job.reqs]
    watcher = asyncio.ensure_future(_cancel_on_disconnect(request.receive, job))
    try:
        async for i, ev in job.events():
            choices[i].add(ev)
            if ev.finish_reason is not None:
                srv.count_finish(ev.finish_reason)
    finally:
        watcher.cancel()
        job.cancel()
    for c in choices:
        if c.finish_reason == "error":
            raise ApiError(500, f"generation failed: {c.error}", type="server_error", code="generation_error")
    return choices


ENCODER = object()  # the engine slot of a server that runs an encoder model
MAX_EMBED_INPUTS = 2048


def _embed(model, texts):
    """(vectors, tokens read) of texts, as Model.embed reads them (truncated at the model's max_seq_length)."""
    tok, limit = model.tokenizer, model.sentence.max_seq_length
    n = sum(len(tok.encode(t, max_length=limit)) for t in texts)
    return model.embed(texts), n


def create_app(
    model_or_path=None, *, api_key=None, parallel=8, max_queue=64, threads=None, model_name=None, kv_dtype=None
):
    """The ASGI app serving `model_or_path` (a Model, a GGUF file or model directory, None for the default model).

    The model loads in a background thread when the app starts (GET /health answers 503 until it is ready).
    `api_key`: every route but /health then needs `Authorization: Bearer KEY`; `parallel`: sequences decoded
    at once; `max_queue`: requests waiting for a slot before 429; `threads`: kernel threads (process-wide);
    `model_name`: the id in /v1/models and the `model` requests must name (default: the file's name);
    `kv_dtype`: the KV cache type of a model loaded from a path (`Model.load`'s; None: its default).
    """
    for name, value, lo in (("parallel", parallel, 1), ("max_queue", max_queue, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise ValueError("api_key must be a non-empty string or None")
    if kv_dtype is not None and kv_dtype not in KV_DTYPES:
        raise ValueError(f"kv_dtype must be one of {', '.join(map(repr, KV_DTYPES))} or None, got {kv_dtype!r}")
    srv = _Server(model_or_path, api_key=api_key, parallel=parallel, max_queue=max_queue, threads=threads,
                  model_name=model_name, kv_dtype=kv_dtype)  # fmt: skip

    async def lifespan(app):
        threading.Thread(target=srv.load, name="fastformer-load", daemon=True).start()
        yield
        srv.close()

    app = FastAPI(title="fastformer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_CountRequests, server=srv)

    @app.exception_handler(ApiError)
    async def api_error(request, e):
        return _error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, e):
        code = "not_found" if e.status_code == 404 else None
        return _error_response(ApiError(e.status_code, str(e.detail), code=code))

    @app.exception_handler(Exception)
    async def internal_error(request, e):
        log.error("fastformer: %s %s failed:\n%s", request.method, request.url.path, traceback.format_exc())
        return _error_response(ApiError(500, f"internal error: {type(e).__name__}", type="server_error"))

    @app.get("/health")
    async def health():
        if srv.engine is not None:
            return {"status": "ok"}
        status = "error" if srv.error is not None else "loading"
        return JSONResponse({"status": status, **({"error": srv.error} if srv.error else {})}, status_code=503)

    @app.get("/v1/models")
    async def models(request: Request):
        srv.check_key(request)
        srv.ready(encoder=None)
        card = {"id": srv.name, "object": "model", "created": srv.created, "owned_by": "fastformer",
                "max_model_len": srv.model.config.max_context}  # fmt: skip
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body, engine = await srv.open(request, COMPLETION_FIELDS)
        k = _get(body, "logprobs", (int,))
        if k is not None and not 0 <= k <= MAX_TOP_LOGPROBS:
            raise _bad(f"'logprobs' must be an integer in [0, {MAX_TOP_LOGPROBS}], got {k}", "logprobs")
        params = _sampling(body, max_tokens=_max_tokens(body, "max_tokens", 16), logprobs=k)
        stream, include_usage = _stream_options(body)
        prompts = await run_in_threadpool(srv.prompts, body)  # tokenizing a long prompt must not stall the loop
        job = _Job(engine, prompts, params, "prompt")
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": srv.name}  # fmt: skip
        if stream:
            return _EventStream(_completion_stream(srv, job, head, include_usage, k is not None), job)
        choices = await _collect(srv, request, job)
        out = []
        for i, c in enumerate(choices):
            lp = _completion_logprobs(srv, c.tokens) if k is not None else None
            out.append({"index": i, "text": "".join(c.text), "logprobs": lp, "finish_reason": c.finish_reason})
        return {**head, "choices": out, "usage": _usage(job, choices)}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body, engine = await srv.open(request, CHAT_FIELDS)
        want = _get(body, "logprobs", (bool,), False)
        k = _get(body, "top_logprobs", (int,))
        if k is not None and not want:
            raise _bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        if k is not None and not 0 <= k <= MAX_TOP_LOGPROBS:
            raise _bad(f"'top_logprobs' must be an integer in [0, {MAX_TOP_LOGPROBS}], got {k}", "top_logprobs")
        if "max_completion_tokens" in body and body.get("max_tokens") is not None:
            raise _bad("give one of 'max_tokens' and 'max_completion_tokens'", "max_completion_tokens")
        n = _max_tokens(body, "max_completion_tokens", _max_tokens(body, "max_tokens", None))
        params = _sampling(body, max_tokens=n, logprobs=(k or 0) if want else None)
        stream, include_usage = _stream_options(body)
        ids = await run_in_threadpool(srv.chat_ids, body)
        job = _Job(engine, [ids], params, "messages")
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": srv.name}  # fmt: skip
        if stream:
            head["object"] = "chat.completion.chunk"
            return _EventStream(_chat_stream(srv, job, head, include_usage, want), job)
        (c,) = await _collect(srv, request, job)
        message = {"role": "assistant", "content": "".join(c.text)}
        choice = {"index": 0, "message": message, "finish_reason": c.finish_reason,
                  "logprobs": _chat_logprobs(srv, c.tokens) if want else None}  # fmt: skip
        return {**head, "choices": [choice], "usage": _usage(job, [c])}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        body, _ = await srv.open(request, {"model", "input", "encoding_format", "dimensions", "user"}, encoder=True)
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise _bad("'input' must be a string or a non-empty array of strings", "input")
        if len(texts) > MAX_EMBED_INPUTS:
            raise _bad(f"'input' holds {len(texts)} strings; at most {MAX_EMBED_INPUTS} per request", "input")
        fmt = _get(body, "encoding_format", (str,), "float")
        if fmt not in ("float", "base64"):
            raise _bad(f"'encoding_format' must be 'float' or 'base64', got {fmt!r}", "encoding_format")
        model = srv.model
        dims = _get(body, "dimensions", (int,))
        vectors, n_tokens = await run_in_threadpool(_embed, model, texts)
        if dims is not None and dims != vectors.shape[1]:
            raise _bad(f"'dimensions' must be the model's {vectors.shape[1]}, got {dims}", "dimensions")
        data = []
        for i, v in enumerate(vectors):
            e = base64.b64encode(v.astype("<f4").tobytes()).decode() if fmt == "base64" else v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": e})
        usage = {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
        return {"object": "list", "data": data, "model": srv.name, "usage": usage}

    @app.post("/tokenize")
    async def tokenize(request: Request):
        body, _ = await srv.open(request, {"model", "prompt", "messages", "add_special_tokens"})
        if ("prompt" in body) == ("messages" in body):
            raise _bad("give one of 'prompt' (a string) and 'messages'", "prompt")
        if "messages" in body:
            ids = srv.chat_ids(body)
        else:
            text = _get(body, "prompt", (str,))
            if text is None:
                raise _bad("'prompt' must be a string", "prompt")
            if srv.model.tokenizer is None:
                raise _bad("this model has no tokenizer", "prompt")
            special = _get(body, "add_special_tokens", (bool,), True)
            ids = srv.encode(text, "prompt") if special else srv.model.tokenizer.encode(text, allowed_special="all")
        return {"tokens": ids, "count": len(ids), "max_model_len": srv.model.config.max_context}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        body, _ = await srv.open(request, {"model", "tokens"})
        tokens = _get(body, "tokens", (list,))
        if tokens is None:
            raise _bad("'tokens' must be an array of token ids", "tokens")
        if srv.model.tokenizer is None:
            raise _bad("this model has no tokenizer", "tokens")
        ids = srv.ids(tokens, "tokens") if tokens else []
        return {"prompt": srv.model.tokenizer.decode(ids)}

    @app.get("/metrics")
    async def metrics(request: Request):
        srv.check_key(request)
        return PlainTextResponse(_metrics_text(srv), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _completion_stream(srv, job, head, include_usage, logprobs):
    choices = [_Choice() for _ in job.reqs]
    offsets = [0] * len(job.reqs)
    extra = {"usage": None} if include_usage else {}
    async for i, ev in job.events():
        c = choices[i]
        c.add(ev)
        if ev.finish_reason is not None:
            srv.count_finish(ev.finish_reason)
            if ev.finish_reason == "error":
                yield _sse(_stream_error(c))
        has_token = logprobs and ev.token_id is not None and ev.logprob is not None
        if not (ev.text or has_token or ev.finish_reason is not None):
            continue
        lp = None
        if has_token:
            lp = _completion_logprobs(srv, c.tokens[-1:], offsets[i])
            offsets[i] += len(lp["tokens"][0])
        choice = {"index": i, "text": ev.text, "logprobs": lp, "finish_reason": ev.finish_reason}
        yield _sse({**head, "choices": [choice], **extra})
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _usage(job, choices)})
    yield "data: [DONE]\n\n"


async def _chat_stream(srv, job, head, include_usage, logprobs):
    c = _Choice()
    extra = {"usage": None} if include_usage else {}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    yield _sse({**head, "choices": [first], **extra})
    async for _, ev in job.events():
        c.add(ev)
        has_token = logprobs and ev.token_id is not None and ev.logprob is not None
        if ev.text or has_token:
            lp = _chat_logprobs(srv, c.tokens[-1:]) if has_token else None
            delta = {"index": 0, "delta": {"content": ev.text}, "logprobs": lp, "finish_reason": None}
            yield _sse({**head, "choices": [delta], **extra})
        if ev.finish_reason is not None:
            srv.count_finish(ev.finish_reason)
            if ev.finish_reason == "error":
                yield _sse(_stream_error(c))
            last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": ev.finish_reason}
            yield _sse({**head, "choices": [last], **extra})
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _usage(job, [c])})
    yield "data: [DONE]\n\n"


class _CountRequests:
    """ASGI middleware counting HTTP responses by route and status for /metrics."""

    def __init__(self, app, server):
        self.app, self.server = app, server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in ROUTES else "other"

        async def counted(message):
            if message["type"] == "http.response.start":
                key = (route, message["status"])
                self.server.http[key] = self.server.http.get(key, 0) + 1
            await send(message)

        await self.app(scope, receive, counted)


def _metrics_text(srv):
    """Prometheus text exposition (format 0.0.4) of the server's and the engine's counters."""
    s = srv.engine.stats() if srv.engine is not None and srv.engine is not ENCODER else {}
    lines = []

    def metric(name, kind, help, samples):
        lines.extend([f"# HELP {name} {help}", f"# TYPE {name} {kind}"])
        for labels, value in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")

    metric("fastformer_model_loaded", "gauge", "1 once the model is ready.", [((), int(srv.engine is not None))])
    http = sorted(srv.http.items())
    metric("fastformer_http_requests_total", "counter", "HTTP responses by route and status code.",
           [((("route", r), ("code", c)), n) for (r, c), n in http])  # fmt: skip
    for key, help in (("requests_total", "Generation requests admitted by the engine."),
                      ("prompt_tokens_total", "Prompt tokens read (prefilled or served from the prefix cache)."),
                      ("generation_tokens_total", "Tokens generated."),
                      ("cached_tokens_total", "Prompt tokens served from the prefix cache.")):  # fmt: skip
        metric(f"fastformer_{key}", "counter", help, [((), s.get(key, 0))])
    metric("fastformer_requests_finished_total", "counter", "Generation requests finished, by reason.",
           [((("reason", r),), n) for r, n in sorted(srv.finished.items())])  # fmt: skip
    metric("fastformer_queue_depth", "gauge", "Requests waiting for a slot.", [((), s.get("queue_depth", 0))])
    metric("fastformer_busy_slots", "gauge", "Slots decoding a sequence.", [((), s.get("busy_slots", 0))])
    metric("fastformer_slots", "gauge", "Sequences decoded at once (--parallel).", [((), srv.parallel)])
    metric("fastformer_tokens_per_second", "gauge", "Recent decode rate over all slots.",
           [((), float(s.get("tokens_per_second", 0.0)))])  # fmt: skip
    return "\n".join(lines) + "\n"


def serve(model_or_path=None, *, host="127.0.0.1", port=8000, log_level="info", **options):
    """Run the server (create_app's options) with uvicorn until interrupted."""
    import uvicorn

    # on SIGTERM / Ctrl-C open streams get 10 s to finish; then they are cancelled (and their sequences with them)
    app = create_app(model_or_path, **options)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
