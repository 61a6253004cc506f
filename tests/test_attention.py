"""ops.attention against the float64 reference, on every ISA path and at 1 and 2 threads.

Shapes cross the kernels' blocks: 64 keys per block and 64 rows (query heads x queries) per work item on
the block path, 256 keys per block on the dot (decode) path, 16 lanes of avx-512 and 8 of avx2 along D.
"""

import functools

import numpy as np
import pytest
from helpers import assert_close

from fastformer import _reference as ref
from fastformer import ops


@functools.cache
def case(h, hkv, tq, tk, d, causal, scale=None, seed=0):
    """Inputs and the reference output, computed once per shape."""
    rng = np.random.default_rng([h, hkv, tq, tk, d, seed])
    q = rng.standard_normal((h, tq, d), dtype=np.float32)
    k = rng.standard_normal((hkv, tk, d), dtype=np.float32)
    v = rng.standard_normal((hkv, tk, d), dtype=np.float32)
    for a in (q, k, v):
        a.flags.writeable = False
    return q, k, v, ref.attention(q, k, v, causal=causal, scale=scale)


def check(h, hkv, tq, tk, d, causal, scale=None):
    q, k, v, want = case(h, hkv, tq, tk, d, causal, scale)
    got = ops.attention(q, k, v, causal=causal, scale=scale)
    assert got.shape == (h, tq, d)
    assert_close(got, want, "attention")


@pytest.mark.parametrize("ratio", [1, 2, 4])
@pytest.mark.parametrize("tk", [1, 7, 97, 300, 1100])
@pytest.mark.parametrize("d", [1, 7, 64, 80, 128])
def test_attention_matches_reference(isa, threads, d, tk, ratio):
    hkv = 2 if ratio < 4 else 1
    h = hkv * ratio
    # causal prefill (tq == tk, a long chunk only once per d to bound the scalar path's time)
    check(h, hkv, tk if tk <= 300 or d == 80 else 300, tk, d, True)
    # causal decode and a later chunk of queries (tq < tk)
    check(h, hkv, 1, tk, d, True)
    check(h, hkv, max(1, tk // 3), tk, d, True)
    # no mask, with more queries than keys
    check(h, hkv, 33, tk, d, False)


@pytest.mark.parametrize("h,hkv,tq", [(1, 1, 1), (4, 1, 1), (1, 1, 3), (8, 2, 5), (16, 1, 1)])
@pytest.mark.parametrize("tk", [300, 1100])
def test_attention_decode(isa, threads, h, hkv, tq, tk):
    # few rows per key/value head: the dot path, split over keys when there are fewer heads than threads
    check(h, hkv, tq, tk, 64, True)
    check(h, hkv, tq, tk, 80, False)


@pytest.mark.parametrize("scale", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("h,hkv,tq,tk", [(4, 2, 1, 97), (4, 2, 97, 97), (2, 2, 40, 300)])
def test_attention_custom_scale(isa, threads, scale, h, hkv, tq, tk):
    check(h, hkv, tq, tk, 64, True, scale)
    check(h, hkv, tq, tk, 64, False, scale)


@pytest.mark.parametrize("offset", [-20000.0, 0.0, 20000.0])
@pytest.mark.parametrize("tq,tk,h", [(1, 300, 4), (97, 97, 2), (70, 1100, 1)])
def test_attention_large_scores(isa, threads, offset, tq, tk, h):
    # integer q and k make every fp32 score exact, so scores in the tens of thousands compare tightly;
    # a constant extra feature shifts all scores by `offset` (a naive softmax over- or underflows)
    rng = np.random.default_rng(7)
    d = 17
    q = rng.integers(-30, 31, (h, tq, d)).astype(np.float32)
    k = rng.integers(-30, 31, (1, tk, d)).astype(np.float32)
    q[..., -1], k[..., -1] = 1.0, offset
    v = rng.standard_normal((1, tk, d), dtype=np.float32)
    got = ops.attention(q, k, v, causal=True, scale=1.0)
    assert np.isfinite(got).all()
    assert_close(got, ref.attention(q, k, v, causal=True, scale=1.0), "attention")


def test_attention_masked_keys_ignored(isa, threads):
    # causal: changing keys/values past a query's position must not change its output
    q, k, v, _ = case(4, 2, 100, 300, 64, True)
    base = ops.attention(q, k, v, causal=True)
    k2, v2 = k.copy(), v.copy()
    k2[:, 250:], v2[:, 250:] = -k2[:, 250:], 1e6
    got = ops.attention(q, k2, v2, causal=True)
    first = 250 - (300 - 100)  # queries before this one sit at positions < 250
    np.testing.assert_array_equal(got[:, :first], base[:, :first])
    assert (np.abs(got[:, first:] - base[:, first:]).max(axis=-1) > 1.0).all()


def test_attention_non_contiguous(isa, threads):
    rng = np.random.default_rng(3)
    h, hkv, tq, tk, d = 8, 2, 70, 130, 80
    # (T, H, D) layouts seen through a transpose, and every other key
    q = rng.standard_normal((tq, h, d), dtype=np.float32).transpose(1, 0, 2)
    k = rng.standard_normal((2 * tk, hkv, d), dtype=np.float32)[::2].transpose(1, 0, 2)
    v = rng.standard_normal((hkv, tk, 2 * d), dtype=np.float32)[:, :, ::2]
    assert not (q.flags.c_contiguous or k.flags.c_contiguous or v.flags.c_contiguous)
    for causal in (True, False):
        got = ops.attention(q, k, v, causal=causal)
        assert_close(got, ref.attention(q, k, v, causal=causal), "attention")


def test_attention_empty():
    q = np.zeros((2, 0, 8), np.float32)
    k = v = np.zeros((1, 5, 8), np.float32)
    assert ops.attention(q, k, v).shape == (2, 0, 8)


def test_attention_bad_inputs():
    q = np.zeros((6, 4, 8), np.float32)
    kv = np.zeros((2, 4, 8), np.float32)
    with pytest.raises(ValueError, match=r"6 query heads.*4 key/value heads"):
        ops.attention(q, np.zeros((4, 4, 8), np.float32), np.zeros((4, 4, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(6, 4, 8\).*\(2, 4, 7\)"):
        ops.attention(q, np.zeros((2, 4, 7), np.float32), np.zeros((2, 4, 7), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 4, 8\).*\(2, 5, 8\)"):
        ops.attention(q, kv, np.zeros((2, 5, 8), np.float32))
    with pytest.raises(ValueError, match=r"Tq=4, Tk=3"):
        ops.attention(q, kv[:, :3], kv[:, :3], causal=True)
    with pytest.raises(ValueError, match=r"no keys"):
        ops.attention(q, kv[:, :0], kv[:, :0], causal=False)
    with pytest.raises(TypeError, match="float32"):
        ops.attention(q.astype(np.float64), kv, kv)
    with pytest.raises(TypeError, match="float32"):
        ops.attention(q, kv.astype(np.float16), kv)
    with pytest.raises(TypeError, match="ndarray"):
        ops.attention(q.tolist(), kv, kv)
    with pytest.raises(ValueError, match=r"3-D.*\(4, 8\)"):
        ops.attention(q[0], kv, kv)
    with pytest.raises(ValueError, match=r"3-D.*\(1, 2, 4, 8\)"):
        ops.attention(q, kv[None], kv)
