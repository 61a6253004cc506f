"""Transformer building blocks on float32 numpy arrays, computed by fastformer's C kernels.

Every function takes float32 numpy arrays (non-contiguous inputs are copied to C order; any other dtype
raises TypeError), releases the GIL while it computes, and returns a new C-contiguous float32 array
(or writes `out` where offered). Shapes that do not fit raise ValueError naming the shapes.

>>> import numpy as np
>>> from fastformer import ops
>>> ops.softmax(np.zeros((2, 4), np.float32))[0]
array([0.25, 0.25, 0.25, 0.25], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fastformer import _core
from fastformer import quant as _quant
from fastformer.quant import QuantizedTensor

__all__ = ["attention", "gelu", "layer_norm", "linear", "matmul", "rms_norm", "rope", "silu", "softmax"]

F32 = npt.NDArray[np.float32]  # a float32 array (other dtypes raise TypeError)


def matmul(a: F32, b: F32, *, out: F32 | None = None) -> F32:
    """(M,K) @ (K,N) -> (M,N).

    >>> ops.matmul(np.eye(2, dtype=np.float32), np.ones((2, 3), np.float32)).shape
    (2, 3)
    """
    return _core.matmul(a, b, out=out)


def linear(x: F32, w: F32 | QuantizedTensor, bias: F32 | None = None, *, out: F32 | None = None) -> F32:
    """x (..., K) @ w.T + bias -> (..., N), with w (N, K) as Hugging Face checkpoints store it.

    `w` is a float32 array or a `fastformer.QuantizedTensor` (a type with dot kernels: x is then quantized to
    8 bits per 32 values on the fly); leading axes of `x` are flattened into rows and restored on return.

    >>> ops.linear(np.ones((1, 3), np.float32), np.ones((2, 3), np.float32))
    array([[3., 3.]], dtype=float32)
    """
    if isinstance(w, QuantizedTensor):
        return _quant.linear(x, w, bias, out=out)
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise TypeError(f"x must be a float32 numpy.ndarray with at least one axis, got {type(x).__name__}")
    lead = x.shape[:-1]
    if x.ndim == 2:
        return _core.linear_f32(x, w, bias, out=out)
    if out is not None:
        raise ValueError(f"out is only accepted for 2-D x, got x of shape {x.shape}")
    y = _core.linear_f32(np.reshape(x, (-1, x.shape[-1])), w, bias)
    return y.reshape(lead + (y.shape[-1],))


def softmax(x: F32, *, axis: int = -1) -> F32:
    """exp(x - max) / sum along `axis`; stable for large magnitudes.

    >>> ops.softmax(np.array([1000.0, 1000.0], np.float32))
    array([0.5, 0.5], dtype=float32)
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a float32 numpy.ndarray, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("softmax: x must have at least one axis, got a 0-d array")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"softmax: axis {axis} is out of range for x of shape {x.shape}")
    axis %= x.ndim
    if axis == x.ndim - 1:
        return _core.softmax_lastaxis(x)
    y = _core.softmax_lastaxis(np.moveaxis(x, axis, -1))
    return np.ascontiguousarray(np.moveaxis(y, -1, axis))


def layer_norm(x: F32, weight: F32, bias: F32 | None, *, eps: float = 1e-5) -> F32:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis; `bias` may be None.

    >>> ops.layer_norm(np.array([1.0, 3.0], np.float32), np.ones(2, np.float32), None)
    array([-0.999995,  0.999995], dtype=float32)
    """
    return _core.layer_norm(x, weight, bias, eps=eps)


def rms_norm(x: F32, weight: F32, *, eps: float = 1e-6) -> F32:
    """x / sqrt(mean(x^2) + eps) * weight over the last axis.

    >>> ops.rms_norm(np.array([3.0, 4.0], np.float32), np.ones(2, np.float32), eps=0.0)
    array([0.84852815, 1.1313709 ], dtype=float32)
    """
    return _core.rms_norm(x, weight, eps=eps)


def gelu(x: F32, *, approximate: str = "tanh") -> F32:
    """GELU; approximate="tanh" (GPT-2's gelu_new) or "none" (the exact erf form).

    >>> ops.gelu(np.zeros(3, np.float32))
    array([0., 0., 0.], dtype=float32)
    """
    return _core.gelu(x, approximate=approximate)


def silu(x: F32) -> F32:
    """x * sigmoid(x) (a.k.a. swish).

    >>> ops.silu(np.zeros(2, np.float32))
    array([0., 0.], dtype=float32)
    """
    return _core.silu(x)


def rope_inv_freq(dim: int, theta: float = 10000.0) -> F32:
    """The rotary inverse frequencies theta^(-2i/dim) for i < dim/2, as float32 like Hugging Face computes them."""
    return (1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim))).astype(np.float32)


def rope(x: F32, positions: npt.ArrayLike, *, theta: float = 10000.0, interleaved: bool = False) -> F32:
    """Rotary position embedding of x (H, T, D) at `positions` (T,) integers; returns a rotated copy.

    interleaved=False rotates split halves (i, i + D/2) as GPT-NeoX / HF Llama do; True rotates
    adjacent pairs (2i, 2i+1) as GPT-J / Meta / GGUF llama do. Angles are computed in float64.

    >>> ops.rope(np.ones((1, 1, 4), np.float32), [0])
    array([[[1., 1., 1., 1.]]], dtype=float32)
    """
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"rope: x must be a 3-D (H, T, D) float32 array, got {getattr(x, 'shape', type(x))}")
    pos = np.asarray(positions)
    if pos.ndim != 1 or pos.shape[0] != x.shape[1]:
        raise ValueError(f"rope: positions must have shape ({x.shape[1]},) for x of shape {x.shape}, got {pos.shape}")
    if pos.size and pos.dtype.kind not in "iu":
        raise TypeError(f"rope: positions must be integers, got dtype {pos.dtype}")
    if x.shape[2] % 2:
        raise ValueError(f"rope: the head size (last axis of x) must be even, got shape {x.shape}")
    if not theta > 0:
        raise ValueError(f"rope: theta must be positive, got {theta}")
    cos, sin = _core.rope_table(np.ascontiguousarray(pos, dtype=np.int64), rope_inv_freq(x.shape[2], theta))
    return _core.rope_apply(x, cos, sin, interleaved=interleaved)


def attention(q: F32, k: F32, v: F32, *, causal: bool = True, scale: float | None = None) -> F32:
    """softmax(q k^T * scale [causal mask]) v for q (H,Tq,D), k and v (Hkv,Tk,D); H a multiple of Hkv.

    Query heads share key/value heads in groups of H/Hkv (grouped-query attention). With `causal`,
    query i sits at position Tk - Tq + i (the last Tq positions, as in KV-cache decoding). `scale`
    defaults to 1/sqrt(D). The softmax is computed online over key blocks; no (Tq, Tk) matrix is stored.

    >>> kv = np.ones((1, 3, 4), np.float32)
    >>> ops.attention(np.ones((2, 1, 4), np.float32), kv, kv).shape
    (2, 1, 4)
    """
    return _core.attention(q, k, v, causal=causal, scale=scale)
