"""Plain numpy oracles of every kernel, computed in float64: what the C kernels are tested against."""

import math

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def matmul(a, b):
    return _f64(a) @ _f64(b)


def linear(x, w, bias=None):
    y = _f64(x) @ _f64(w).T
    return y if bias is None else y + _f64(bias)


def softmax(x, axis=-1):
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
    x = _f64(x)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps) * _f64(weight)
    return y if bias is None else y + _f64(bias)


def rms_norm(x, weight, eps=1e-6):
    x = _f64(x)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * _f64(weight)


def gelu(x, approximate="tanh"):
    x = _f64(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def silu(x):
    x = _f64(x)
    return x / (1.0 + np.exp(-x))


def rope(x, positions, theta=10000.0, interleaved=False):
    x = _f64(x)
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]  # (T, D/2)
    cos, sin = np.cos(ang), np.sin(ang)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., : d // 2], x[..., d // 2 :]
    ra, rb = a * cos - b * sin, b * cos + a * sin
    out = np.empty_like(x)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = ra, rb
    else:
        out[..., : d // 2], out[..., d // 2 :] = ra, rb
    return out


def attention(q, k, v, causal=True, scale=None):
    q, k, v = _f64(q), _f64(k), _f64(v)
    h, tq, d = q.shape
    hkv, tk, _ = k.shape
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    # repeat each key/value head for its group of query heads
    k = np.repeat(k, h // hkv, axis=0)
    v = np.repeat(v, h // hkv, axis=0)
    s = np.einsum("htd,hsd->hts", q, k) * scale
    if causal:
        qpos = np.arange(tk - tq, tk)[:, None]
        s = np.where(np.arange(tk)[None, :] <= qpos, s, -np.inf)
    return np.einsum("hts,hsd->htd", softmax(s, axis=-1), v)
