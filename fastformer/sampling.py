"""Choosing the next token from logits: greedy, or sampling in the usual order
(repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw), as Hugging Face's generate() does.
Logits holding NaN or +inf raise ValueError rather than yield an arbitrary token.

>>> import numpy as np
>>> s = Sampler(temperature=0.0)
>>> s.next_token(np.array([0.1, 2.0, 0.3], np.float32), [])
1
"""

import math

import numpy as np

from fastformer import _core


class Sampler:
    """Validated sampling options plus this generation's own random generator (never shared)."""

    def __init__(self, *, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0, seed=None):
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0 disables it), got {top_k!r}")
        if not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if not (isinstance(min_p, (int, float)) and 0.0 <= min_p <= 1.0):
            raise ValueError(f"min_p must be in [0, 1], got {min_p!r}")
        if not (
            isinstance(repetition_penalty, (int, float))
            and math.isfinite(repetition_penalty)
            and repetition_penalty > 0
        ):
            raise ValueError(f"repetition_penalty must be a finite number > 0, got {repetition_penalty!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self.temperature = float(temperature)
        self.top_k, self.top_p, self.min_p = top_k, float(top_p), float(min_p)
        self.repetition_penalty = float(repetition_penalty)
        self.rng = np.random.default_rng(seed)

    def probs(self, logits, history):
        """The distribution the next token is drawn from (float64, sums to 1), after every option."""
        x = self._penalized(logits, history) / self.temperature
        return _filtered_probs(x, self.top_k, self.top_p, self.min_p)

    def next_token(self, logits, history):
        """The next token id for `logits` (vocab,) given the ids so far (`history`)."""
        if self.temperature == 0.0:
            x = np.asarray(logits)
            if self.repetition_penalty == 1.0 and x.dtype == np.float32 and x.ndim == 1 and x.flags.c_contiguous:
                # float32 logits as they are (a float64 copy picks the same id, and at a 32k vocabulary cost a fresh
                # quarter-MB array, about 0.1 ms a token), each thread scanning the part it wrote
                at = _core.argmax_f32(x)
                if at >= 0:
                    return at
            return int(np.argmax(self._penalized(logits, history)))
        p = self.probs(logits, history)
        return int(self.rng.choice(p.shape[0], p=p))

    def _penalized(self, logits, history):
        x = np.asarray(logits, dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"logits must be a non-empty 1-D array, got shape {x.shape}")
        if not np.isfinite(x.max()):  # NaN anywhere, +inf, or nothing but -inf: no distribution to draw from
            raise ValueError(f"logits must be finite (-inf masks allowed), got max {x.max()}")
        if self.repetition_penalty != 1.0 and len(history):
            x = x.copy()
            seen = np.unique(np.asarray(history, dtype=np.int64))
            if seen[0] < 0 or seen[-1] >= x.size:
                raise ValueError(f"history holds token ids outside [0, {x.size})")
            v = x[seen]
            x[seen] = np.where(v > 0, v / self.repetition_penalty, v * self.repetition_penalty)
        return x


def _filtered_probs(x, top_k, top_p, min_p):
    """softmax(x) restricted by top-k, then top-p (smallest set reaching top_p), then min-p; renormalised."""
    keep = np.ones(x.shape[0], dtype=bool)
    if 0 < top_k < x.shape[0]:
        kth = np.partition(x, -top_k)[-top_k]
        keep &= x >= kth
    p = _softmax(np.where(keep, x, -np.inf))
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        # keep the most likely tokens until their mass reaches top_p (always at least one)
        n = int(np.searchsorted(cum, top_p, side="left")) + 1
        drop = order[n:]
        keep[drop] = False
        p = _softmax(np.where(keep, x, -np.inf))
    if min_p > 0.0:
        keep &= p >= min_p * p.max()
        p = _softmax(np.where(keep, x, -np.inf))
    return p


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()
