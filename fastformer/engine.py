"""The batched decode engine: many sequences of one model advance together, one forward step at a time.

Each step runs one row per decoding sequence plus at most one prompt chunk (of PREFILL_CHUNK tokens) of the
sequences still reading their prompt, through every weight once; sequences join and leave between steps
(continuous batching), each with its own kv cache, sampler, seed, stop ids and stop strings.

Batch invariance: a prompt token always runs on the blocked kernels and a generated token on the few-rows
kernels, prompts are cut into chunks at the same positions as `Model.generate` cuts them, and no kernel sums
across rows or threads; so a request's logits, tokens and text are bit for bit those of the same request run
alone with `Model.generate`, whatever else shares its steps and whatever the thread count.

Prefix cache: the kv rows of finished requests' prompts are kept (a few, least recently used first out); a new
prompt that starts with one of them copies the rows of the whole chunks they share instead of computing them
(`Completion.cached_tokens`). Rows are only reused at chunk edges, where they equal what the request computes.

>>> engine = Engine(model, parallel=8)  # doctest: +SKIP
>>> engine.submit(model.encode_prompt("Hello"), SamplingParams(max_tokens=8)).result().text  # doctest: +SKIP
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fastformer import _core
from fastformer.sampling import Sampler
from fastformer.tokenizer import utf8_split

__all__ = ["Completion", "Engine", "Event", "QueueFullError", "Request", "SamplingParams"]

PREFILL_CHUNK = 256  # tokens per forward call while reading a prompt


class QueueFullError(RuntimeError):
    """The engine's bounded queue of waiting requests is full: try again later."""


@dataclass
class SamplingParams:
    """How one request generates. Validated on construction (ValueError naming the field).

    max_tokens=None generates until the context window is full; logprobs=k reports each chosen token's
    log-probability under the model and the k most likely alternatives (k=0: the chosen token's only)."""

    max_tokens: int | None = 16
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: str | Sequence[str] | None = None
    stop_ids: Sequence[int] | None = None
    ignore_eos: bool = False
    logprobs: int | None = None

    def __post_init__(self):
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 0
        ):
            raise ValueError(f"max_tokens must be an int >= 0 or None, got {self.max_tokens!r}")
        if self.logprobs is not None and (
            isinstance(self.logprobs, bool) or not isinstance(self.logprobs, int) or not 0 <= self.logprobs <= 20
        ):
            raise ValueError(f"logprobs must be an int in [0, 20] or None, got {self.logprobs!r}")
        if not isinstance(self.ignore_eos, bool):
            raise ValueError(f"ignore_eos must be a bool, got {self.ignore_eos!r}")
        self.sampler()  # validates temperature, top_k, top_p, min_p, repetition_penalty, seed
        self.stops = _stop_list(self.stop)

    def sampler(self) -> Sampler:
        return Sampler(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
        )


@dataclass
class Event:
    """One step of a request: a new token (token_id, its text piece once safe to show, its logprobs), or the
    final event (token_id None, the rest of the text, finish_reason "stop" | "length" | "cancelled" | "error")."""

    token_id: int | None
    text: str = ""
    logprob: float | None = None
    top_logprobs: list[tuple[int, float]] | None = None
    finish_reason: str | None = None
    error: str | None = None


@dataclass
class Completion:
    """A finished request: its text and tokens (the EOS or stop id that ended it included in token_ids, never
    in text), why it ended, and token counts."""

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] | None = None
    error: str | None = None


class Request:
    """A submitted request: iterate it for its events (blocking), or wait for `result()`; `cancel()` from
    any thread drops it before the engine's next step."""

    def __init__(self, engine, ids, params, on_event):
        self._engine = engine
        self.ids = ids
        self.params = params
        self._on_event = on_event
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._done = threading.Event()
        self._cancelled = False
        self._completion: Completion | None = None
        self.prompt_tokens = len(ids)
        self.cached_tokens = 0
        self.submitted = time.perf_counter()

    def cancel(self) -> None:
        self._cancelled = True
        self._engine._wake.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done.is_set()

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self._events.get()
            yield ev
            if ev.finish_reason is not None:
                return

    def result(self, timeout: float | None = None) -> Completion:
        if not self._done.wait(timeout):
            raise TimeoutError(f"the request did not finish within {timeout} s")
        return self._completion

    def _emit(self, ev: Event) -> None:
        if self._on_event is not None:
            try:
                self._on_event(ev)
            except Exception:  # a listener's failure must not stop the engine; the request goes on
                pass
        self._events.put(ev)


class _Seq:
    """A running request's state: its session, what it has read and generated, its text decoder."""

    def __init__(self, req, sess, ids, eos, cached):
        self.req = req
        self.sess = sess
        self.prompt = list(ids)  # the tokens read in prompt mode (the prompt, or the history after longrope)
        self.fed = cached  # prompt tokens already in the cache
        self.history = list(ids)
        self.generated: list[int] = []
        self.sampler = req.params.sampler()
        self.eos = eos
        self.logits = None
        self.pending = b""
        self.held = ""
        self.text: list[str] = []
        self.logprobs: list | None = [] if req.params.logprobs is not None else None
        self.max_tokens = req.params.max_tokens

    @property
    def prefilling(self) -> bool:
        return self.fed < len(self.prompt)


class Engine:
    """Batched generation for one Model: `submit` requests from any thread; one engine thread runs them.

    parallel: sequences decoding at once; max_queue: requests that may wait for a slot (more raise
    QueueFullError); prefix_cache: finished prompts whose kv rows are kept for reuse (0 disables)."""

    def __init__(self, model, *, parallel: int = 8, max_queue: int = 64, prefix_cache: int = 8):
        for name, v, lo in (("parallel", parallel, 1), ("max_queue", max_queue, 0), ("prefix_cache", prefix_cache, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        if parallel > 128:
            raise ValueError(f"parallel must be at most 128, got {parallel}")
        self.model = model
        self.parallel = parallel
        self.max_queue = max_queue
        self.chunk = PREFILL_CHUNK
        self._scratch = _core.Session(model._core, 1, parallel + self.chunk)
        self._waiting: deque[Request] = deque()
        self._running: list[_Seq] = []
        self._prefix: OrderedDict[tuple, tuple] = OrderedDict()  # prompt ids -> (session, rope_long)
        self._prefix_max = prefix_cache
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._stats = {"requests_total": 0, "prompt_tokens_total": 0, "generation_tokens_total": 0}
        self._stats["cached_tokens_total"] = 0
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._thread = threading.Thread(target=self._loop, name="fastformer-engine", daemon=True)
        self._thread.start()

    # ---- the caller's side ----

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams | None = None, on_event=None) -> Request:
        """Queue a request for the token ids of a prompt; returns at once."""
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be a SamplingParams, got {type(params).__name__}")
        ids = self.model.encode_prompt(prompt_ids if isinstance(prompt_ids, str) else list(prompt_ids))
        if not ids:
            raise ValueError("the prompt must not be empty")
        window = self.model.config.max_context
        if len(ids) >= window:
            raise ValueError(f"the prompt has {len(ids)} tokens; the context window is {window} positions")
        if params.max_tokens is not None and len(ids) + params.max_tokens > window:
            raise ValueError(
                f"the prompt ({len(ids)} tokens) + max_tokens ({params.max_tokens}) = "
                f"{len(ids) + params.max_tokens} exceeds the context window of {window} positions"
            )
        if params.stop_ids is not None:
            self.model._eos_ids(params.stop_ids)  # validates the ids
        req = Request(self, ids, params, on_event)
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is closed")
            busy = len(self._running) + len(self._waiting)
            if busy >= self.parallel + self.max_queue:
                raise QueueFullError(
                    f"{len(self._waiting)} requests are waiting (max_queue {self.max_queue}): try again later"
                )
            self._waiting.append(req)
        self._wake.set()
        return req

    def stats(self) -> dict:
        with self._lock:
            out = dict(self._stats)
            out["queue_depth"] = len(self._waiting)
            out["busy_slots"] = len(self._running)
        out["parallel"] = self.parallel
        rate = list(self._rate)
        now = time.perf_counter()
        recent = [(t, n) for t, n in rate if now - t < 10.0]
        span = now - recent[0][0] if recent else 0.0
        out["tokens_per_second"] = sum(n for _, n in recent) / span if span > 0 else 0.0
        return out

    def close(self) -> None:
        """Cancel every request and stop the engine thread."""
        with self._lock:
            self._closed = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the engine thread ----

    def _loop(self):
        try:
            while True:
                with self._lock:
                    closed = self._closed
                if closed:
                    break
                self._admit()
                self._drop_cancelled()
                if not self._running:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                try:
                    self._step()
                except Exception as e:  # a failed step ends its requests with the error, never the engine
                    for seq in list(self._running):
                        self._finish(seq, "error", error=f"{type(e).__name__}: {e}")
        finally:
            with self._lock:
                waiting, self._waiting = list(self._waiting), deque()
            for seq in list(self._running):
                self._finish(seq, "cancelled")
            for req in waiting:
                self._end_unstarted(req, "cancelled")

    def _admit(self):
        while len(self._running) < self.parallel:
            with self._lock:
                if not self._waiting:
                    return
                req = self._waiting.popleft()
            if req.cancelled:
                self._end_unstarted(req, "cancelled")
                continue
            try:
                self._running.append(self._start(req))
            except Exception as e:
                self._end_unstarted(req, "error", f"{type(e).__name__}: {e}")

    def _start(self, req):
        model, p = self.model, req.params
        n = len(req.ids)
        cap = model.config.max_context if p.max_tokens is None else n + p.max_tokens
        cap = max(cap, n + 1)
        rope_long = model._rope_long(n)
        sess = _core.Session(model._core, cap, 1)
        if rope_long:
            sess.rope_long = True
        cached = self._reuse_prefix(sess, req.ids, rope_long)
        seq = _Seq(req, sess, req.ids, model._eos_ids(p.stop_ids, p.ignore_eos), cached)
        req.cached_tokens = cached
        with self._lock:
            self._stats["requests_total"] += 1
            self._stats["prompt_tokens_total"] += n
            self._stats["cached_tokens_total"] += cached
        if p.max_tokens == 0:
            self._finish(seq, "length")
        return seq

    def _drop_cancelled(self):
        for seq in [s for s in self._running if s.req.cancelled]:
            self._finish(seq, "cancelled")
        # a cancelled request still waiting for a slot ends now, not when it reaches the front
        with self._lock:
            gone = [r for r in self._waiting if r.cancelled]
            if gone:
                self._waiting = deque(r for r in self._waiting if not r.cancelled)
        for req in gone:
            self._end_unstarted(req, "cancelled")

    def _step(self):
        """One forward step: a row for every decoding sequence, then prompt chunks up to one chunk's worth."""
        sessions, ids, counts, paths, rows = [], [], [], [], []
        for seq in self._running:
            if not seq.prefilling and seq.logits is None:
                sessions.append(seq.sess)
                ids.append(seq.history[-1])
                counts.append(1)
                paths.append(_core.PATH_ROWS)
                rows.append(seq)
        budget = self.chunk
        for seq in self._running:
            if not seq.prefilling or budget <= 0:
                continue
            n = self.model._prefill_step(seq.fed, len(seq.prompt) - seq.fed)
            if n > budget:
                break  # the next chunk waits for the next step
            sessions.append(seq.sess)
            ids.extend(seq.prompt[seq.fed : seq.fed + n])
            counts.append(n)
            paths.append(_core.PATH_PANELS)
            rows.append(seq)
            seq.fed += n
            budget -= n
        if not sessions:
            return
        logits = _core.forward_batch(self._scratch, sessions, ids, counts, paths)
        decoded = 0
        for i, seq in enumerate(rows):
            if seq.prefilling:
                continue  # mid-prompt: its logits are not needed
            seq.logits = logits[i]
        for seq in list(self._running):
            if seq.logits is not None:
                decoded += self._advance(seq)
        self._rate.append((time.perf_counter(), decoded))
        with self._lock:
            self._stats["generation_tokens_total"] += decoded

    def _advance(self, seq) -> int:
        """Sample the next token from seq.logits, emit it, finish or queue it for the next step."""
        p, logits = seq.req.params, seq.logits
        seq.logits = None
        try:
            tok = seq.sampler.next_token(logits, seq.history)
        except ValueError as e:
            self._finish(seq, "error", error=str(e))
            return 0
        seq.generated.append(tok)
        lp = top = None
        if seq.logprobs is not None:
            lp, top = _logprobs(logits, tok, p.logprobs)
            seq.logprobs.append((tok, lp, top))
        if tok in seq.eos:
            seq.req._emit(Event(tok, "", lp, top))
            self._finish(seq, "stop")
            return 1
        text, stopped = self._text(seq, tok)
        seq.req._emit(Event(tok, text, lp, top))
        if stopped:
            self._finish(seq, "stop", flush=False)
            return 1
        n_gen = len(seq.generated)
        if (seq.max_tokens is not None and n_gen >= seq.max_tokens) or len(seq.history) + 1 > seq.sess.capacity:
            self._finish(seq, "length")
            return 1
        seq.history.append(tok)
        model = self.model
        if model._rope_long(len(seq.history)) and not seq.sess.rope_long:
            # longrope: past the pretraining length the whole sequence is read again with the long factors,
            # as Model.generate does
            sess = _core.Session(model._core, seq.sess.capacity, 1)
            sess.rope_long = True
            seq.sess, seq.prompt, seq.fed = sess, list(seq.history), 0
        return 1

    def _text(self, seq, tok):
        """The text piece of tok safe to show now, and whether a stop string ended the request."""
        stops = seq.req.params.stops
        seq.pending += self.model.tokenizer.decode_bytes([tok]) if self.model.tokenizer is not None else b""
        text, seq.pending = utf8_split(seq.pending)
        seq.held += text
        cut = _find_stop(seq.held, stops)
        if cut is not None:
            out = seq.held[:cut]
            seq.held = ""
            seq.pending = b""
            seq.text.append(out)
            return out, True
        safe = len(seq.held) - _stop_overlap(seq.held, stops)
        out = seq.held[:safe] if safe > 0 else ""
        seq.held = seq.held[len(out) :]
        seq.text.append(out)
        return out, False

    def _finish(self, seq, reason, *, error=None, flush=True):
        if seq in self._running:
            self._running.remove(seq)
        tail = ""
        if flush and reason != "error":
            tail = seq.held + seq.pending.decode("utf-8", errors="replace")
            cut = _find_stop(tail, seq.req.params.stops)
            tail = tail if cut is None else tail[:cut]
            seq.text.append(tail)
        if reason != "error":
            self._keep_prefix(seq)
        req = seq.req
        req._completion = Completion(
            text="".join(seq.text),
            token_ids=list(seq.generated),
            finish_reason=reason,
            prompt_tokens=len(req.ids),
            completion_tokens=len(seq.generated),
            cached_tokens=req.cached_tokens,
            logprobs=seq.logprobs,
            error=error,
        )
        req._emit(Event(None, tail, finish_reason=reason, error=error))
        req._done.set()

    def _end_unstarted(self, req, reason, error=None):
        req._completion = Completion("", [], reason, len(req.ids), 0, 0, None, error)
        req._emit(Event(None, "", finish_reason=reason, error=error))
        req._done.set()

    # ---- prefix cache ----

    def _reuse_prefix(self, sess, ids, rope_long) -> int:
        """Copy the kv rows of the longest cached prompt prefix of ids, cut to whole chunks; its length."""
        if not self._prefix_max:
            return 0
        best, best_n = None, 0
        for key, (_src, long_) in self._prefix.items():
            if long_ != rope_long:
                continue
            n = _common_prefix(key, ids)
            # whole chunks only (there a row's bits are the request's own), at least one token left to run,
            # and not past a sliding window (whose prompts go one token per call there)
            n = min(n, len(ids) - 1)
            window = self.model.config.sliding_window
            if window:
                n = min(n, window)
            n -= n % self.chunk
            if n > best_n:
                best, best_n = key, n
        if not best_n:
            return 0
        self._prefix.move_to_end(best)
        sess.copy_prefix(self._prefix[best][0], best_n)
        return best_n

    def _keep_prefix(self, seq):
        """Keep seq's prompt rows (those computed in prompt mode) for later requests."""
        n = seq.fed - seq.fed % self.chunk
        if not self._prefix_max or not n:
            return
        kept = _core.Session(self.model._core, n, 1)
        kept.rope_long = seq.sess.rope_long
        kept.copy_prefix(seq.sess, n)
        key = tuple(seq.prompt[:n])
        self._prefix[key] = (kept, kept.rope_long)
        self._prefix.move_to_end(key)
        while len(self._prefix) > self._prefix_max:
            self._prefix.popitem(last=False)


def _logprobs(logits, tok, k):
    x = np.asarray(logits, dtype=np.float64)
    m = x.max()
    lse = m + math.log(np.exp(x - m).sum())
    lp = float(x[tok] - lse)
    top = []
    if k:
        idx = np.argpartition(-x, k - 1)[:k] if k < x.size else np.arange(x.size)
        idx = idx[np.argsort(-x[idx], kind="stable")]
        top = [(int(i), float(x[i] - lse)) for i in idx]
    return lp, top


def _common_prefix(a, b) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _stop_list(stop):
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be a non-empty string or a list of them, got {stop!r}")
    return stops


def _find_stop(text, stops):
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _stop_overlap(text, stops):
    """Length of the longest suffix of text that is a proper prefix of some stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best
