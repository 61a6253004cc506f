"""Causal attention, prefill (Tq = Tk = 512) and decode (Tq = 1, Tk = 1024): fastformer vs numpy and torch.

Head configs (H, Hkv, D): multi-head (12, 12, 64) and grouped-query (32, 8, 64), (32, 8, 128), (32, 8, 80).
torch runs scaled_dot_product_attention twice: with enable_gqa=True ("torch") and with the key/value heads
repeated by repeat_interleave first ("torch-repeat"); for decode the one query is the last position, so
torch gets no mask (its is_causal aligns the mask top-left). numpy materialises the scores per head group.
"""

import functools

import numpy as np
import pytest

from benchmarks.conftest import need, set_threads, torch
from fastformer import _reference, ops

HEADS = [(12, 12, 64), (32, 8, 64), (32, 8, 128), (32, 8, 80)]
LENGTHS = [(512, 512), (1, 1024)]  # (Tq, Tk)


@functools.cache
def _case(h, hkv, d, tq, tk):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((h, tq, d), dtype=np.float32)
    k = rng.standard_normal((hkv, tk, d), dtype=np.float32)
    v = rng.standard_normal((hkv, tk, d), dtype=np.float32)
    return q, k, v, _reference.attention(q, k, v, causal=True)


def _numpy_attention(q, k, v):
    h, tq, d = q.shape
    hkv, tk, _ = k.shape
    # the query heads of a group become rows of one (group * tq, tk) score matrix per key/value head
    qg = q.reshape(hkv, h // hkv * tq, d) * np.float32(1.0 / np.sqrt(d))
    s = qg @ k.transpose(0, 2, 1)
    pos = np.tile(np.arange(tk - tq, tk), h // hkv)[:, None]
    s = np.where(np.arange(tk)[None, :] <= pos, s, np.float32(-np.inf))
    e = np.exp(s - s.max(-1, keepdims=True))
    return ((e / e.sum(-1, keepdims=True)) @ v).reshape(h, tq, d)


def _impl(impl, q, k, v):
    if impl == "fastformer":
        return lambda: ops.attention(q, k, v, causal=True)
    if impl == "numpy":
        return lambda: _numpy_attention(q, k, v)
    need(torch, "torch")
    tq_, tk_, tv_ = torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v)
    causal = q.shape[1] > 1
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if impl == "torch":
        return lambda: sdpa(tq_, tk_, tv_, is_causal=causal, enable_gqa=True)
    group = q.shape[0] // k.shape[0]

    def repeat():
        return sdpa(tq_, tk_.repeat_interleave(group, 0), tv_.repeat_interleave(group, 0), is_causal=causal)

    return repeat


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "numpy", "torch", "torch-repeat"])
@pytest.mark.parametrize("tq,tk", LENGTHS)
@pytest.mark.parametrize("h,hkv,d", HEADS)
def test_attention(benchmark, h, hkv, d, tq, tk, impl, threads):
    set_threads(threads)
    q, k, v, want = _case(h, hkv, d, tq, tk)
    fn = _impl(impl, q, k, v)
    got = fn()
    np.testing.assert_allclose(got.numpy() if hasattr(got, "numpy") else got, want, rtol=1e-4, atol=2e-5)
    benchmark.group = f"attention H={h} Hkv={hkv} D={d} Tq={tq} Tk={tk} t={threads}"
    benchmark(fn)
