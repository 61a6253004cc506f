"""Attention over a kv cache stored as f32, f16 or q8_0 (ggml blocks along the head), against the float64
reference on the values the cache holds, on every ISA path and at 1 and 2 threads.

The f16 cache is numpy's float16 and the q8_0 one is the gguf package's quantizer, so what the kernels read is
fixed by peers; the reference dequantizes it (numpy, gguf) and runs in float64. Shapes cross the same blocks as
tests/test_attention.py: 64 keys per block and rows of 16 on the block path, 256 keys per block on the dot path,
16 / 8 lanes along D (f16 tails of 1 and 7), GQA groups of 1, 2, 4 and 8.
"""

import functools

import numpy as np
import pytest
from helpers import assert_close

from fastformer import _core
from fastformer import _reference as ref


def to_cache(x, kv_dtype):
    """float32 (H, T, D) -> (the cache array, the float64 values it holds)."""
    if kv_dtype == "f32":
        return x, x.astype(np.float64)
    if kv_dtype == "f16":
        c = x.astype(np.float16)
        return c, c.astype(np.float64)
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    h, t, d = x.shape
    c = quantize(x.reshape(-1, d), GGMLQuantizationType.Q8_0).reshape(h, t, -1)
    return c, dequantize(c.reshape(h * t, -1), GGMLQuantizationType.Q8_0).reshape(h, t, d).astype(np.float64)


@functools.cache
def case(kv_dtype, h, hkv, tq, rows, d, causal, tk):
    rng = np.random.default_rng([h, hkv, tq, rows, d, tk])
    q = rng.standard_normal((h, tq, d), dtype=np.float32)
    k, kr = to_cache(rng.standard_normal((hkv, rows, d), dtype=np.float32), kv_dtype)
    v, vr = to_cache(rng.standard_normal((hkv, rows, d), dtype=np.float32), kv_dtype)
    return q, k, v, ref.attention(q, kr[:, :tk], vr[:, :tk], causal=causal)


def check(kv_dtype, h, hkv, tq, tk, d, causal=True, rows=None):
    rows = rows or tk
    q, k, v, want = case(kv_dtype, h, hkv, tq, rows, d, causal, tk)
    got = _core.attention_cache(q, k, v, kv_dtype, tk=tk, causal=causal)
    assert got.shape == (h, tq, d)
    assert_close(got, want, "attention")


HEADS = [(1, 1), (4, 2), (8, 2), (8, 1)]  # (query heads, kv heads): groups of 1, 2, 4, 8


@pytest.mark.peer("gguf")
@pytest.mark.parametrize("kv_dtype,d", [("f16", 1), ("f16", 7), ("f16", 64), ("f16", 80), ("q8_0", 32),
                                        ("q8_0", 64), ("q8_0", 96), ("q8_0", 128)])  # fmt: skip
@pytest.mark.parametrize("tk", [1, 7, 97, 300, 1100])
@pytest.mark.parametrize("heads", HEADS)
def test_attention_cache_matches_reference(isa, threads, kv_dtype, d, tk, heads):
    h, hkv = heads
    # prefill (a long chunk only for one head size), a decode, a later chunk, no mask with more queries than keys
    check(kv_dtype, h, hkv, tk if tk <= 300 or d == 64 else 300, tk, d)
    check(kv_dtype, h, hkv, 1, tk, d)
    check(kv_dtype, h, hkv, max(1, tk // 3), tk, d)
    check(kv_dtype, h, hkv, 33, tk, d, causal=False)


@pytest.mark.peer("gguf")
@pytest.mark.parametrize("kv_dtype", ["f32", "f16", "q8_0"])
@pytest.mark.parametrize("tq,tk", [(1, 97), (1, 700), (20, 300), (64, 64)])
def test_attention_cache_capacity(isa, threads, kv_dtype, tq, tk):
    # a cache of more rows than positions: heads are `rows` rows apart, rows past tk are never read
    check(kv_dtype, 8, 2, tq, tk, 64, rows=tk + 29)


def test_attention_cache_f32_is_attention():
    # the f32 cache runs the float32 kernels: bitwise what ops.attention gives
    q, k, v, _ = case("f32", 8, 2, 5, 300, 64, True, 300)
    np.testing.assert_array_equal(_core.attention_cache(q, k, v, "f32"), _core.attention(q, k, v))


def test_attention_cache_bad_inputs():
    q = np.zeros((4, 1, 64), np.float32)
    kv = np.zeros((2, 8, 64), np.float16)
    with pytest.raises(ValueError, match="kv_dtype must be one of"):
        _core.attention_cache(q, kv, kv, "q4_0")
    with pytest.raises(TypeError, match="float16"):
        _core.attention_cache(q, kv.astype(np.float32), kv, "f16")
    with pytest.raises(ValueError, match="head_dim 40 is not a multiple"):
        _core.attention_cache(np.zeros((4, 1, 40), np.float32), kv, kv, "q8_0")
    with pytest.raises(ValueError, match="do not fit"):
        _core.attention_cache(q, np.zeros((2, 8, 64), np.uint8), np.zeros((2, 8, 64), np.uint8), "q8_0")
    with pytest.raises(ValueError, match="tk=9"):
        _core.attention_cache(q, kv, kv, "f16", tk=9)
