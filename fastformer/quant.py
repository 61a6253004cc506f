"""Quantized weights in ggml's block formats (what GGUF files hold), and quantized linear layers.

A `QuantizedTensor` is a (rows, cols) weight matrix whose rows are consecutive blocks in ggml's exact byte
layout: q8_0 (34 bytes per 32 weights), q4_0 (18 per 32), the 256-weight super-blocks q2_k (84), q3_k (110),
q4_k (144), q5_k (176), q6_k (210) and iq4_xs (136), f16, bf16 and f32. `quantize` writes the same bytes as
ggml's reference quantizers (the `gguf` package's where it has them);
`ops.linear(x, qt)` quantizes x to 8 bits per 32 on the fly and runs int8 dot-product kernels.

>>> import numpy as np
>>> import fastformer
>>> qt = fastformer.quantize(np.full((4, 64), -127.0, np.float32), "q8_0")
>>> qt.shape, qt.nbytes, float(qt.dequantize()[0, 0])
((4, 64), 272, -127.0)
"""

import numpy as np

from fastformer import _core
from fastformer.errors import UnsupportedError

__all__ = ["QTYPES", "QuantizedTensor", "linear", "quantize"]

# name -> (ggml type id, weights per block, bytes per block) of every type fastformer reads (_core.QTYPE_TABLE)
QTYPES = {
    name: (tid, block, nbytes)
    for tid, name, block, nbytes, flags, _, _ in _core.QTYPE_TABLE
    if flags & _core.QF_DEQUANT
}
_QUANTIZABLE = tuple(_core.qtype_names(_core.QF_QUANTIZE).split("/"))  # most bits per weight first
_LINEAR = tuple(_core.qtype_names(_core.QF_LINEAR).split("/"))


def _qtype_name(qtype):
    if isinstance(qtype, str) and qtype.lower() in QTYPES:
        return qtype.lower()
    if isinstance(qtype, int) and not isinstance(qtype, bool):
        for name, (tid, _, _) in QTYPES.items():
            if tid == qtype:
                return name
    raise ValueError(f"unknown qtype {qtype!r}; known: {', '.join(QTYPES)} (or their ggml type ids)")


class QuantizedTensor:
    """A (rows, cols) matrix of weights in a ggml block format; `.data` holds the raw blocks, row by row.

    Build one with `quantize(w, qtype)` or, for bytes read from a file, `QuantizedTensor.from_bytes`.

    >>> QuantizedTensor.from_bytes(bytes(18), "q4_0", (1, 32)).dequantize().shape
    (1, 32)
    """

    __slots__ = ("data", "qtype", "shape")

    def __init__(self, data, qtype, shape):
        qtype = _qtype_name(qtype)
        rows, cols = _shape2(shape)
        row_bytes = _row_bytes(qtype, cols)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
            raise TypeError(f"data must be a uint8 numpy.ndarray, got {getattr(data, 'dtype', type(data))}")
        if data.shape != (rows, row_bytes) or not data.flags.c_contiguous:
            raise ValueError(
                f"data has shape {data.shape}, expected C-contiguous {(rows, row_bytes)} for {qtype} {shape}"
            )
        self.data = data
        self.qtype = qtype
        self.shape = (rows, cols)

    @classmethod
    def from_bytes(cls, raw, qtype, shape):
        """Wrap raw blocks (bytes, memoryview, mmap slice or uint8 array) as a tensor, without a copy."""
        qtype = _qtype_name(qtype)
        rows, cols = _shape2(shape)
        row_bytes = _row_bytes(qtype, cols)
        buf = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.uint8)
        if buf.dtype != np.uint8:
            raise TypeError(f"raw must hold uint8 bytes, got an array of {buf.dtype}")
        if buf.size != rows * row_bytes:
            raise ValueError(
                f"{qtype} {(rows, cols)} needs {rows * row_bytes} bytes ({row_bytes} per row), got {buf.size}"
            )
        return cls(np.ascontiguousarray(buf.reshape(rows, row_bytes)), qtype, (rows, cols))

    @property
    def nbytes(self):
        """Bytes of block data."""
        return self.data.nbytes

    @property
    def ggml_type(self):
        """ggml's type id (GGMLQuantizationType) of the format."""
        return QTYPES[self.qtype][0]

    def dequantize(self):
        """The weights as a float32 (rows, cols) array, computed exactly as the gguf package dequantizes."""
        return _core.dequantize_rows(self.data, self.ggml_type, self.shape[1])

    def __repr__(self):
        return f"QuantizedTensor({self.qtype}, shape={self.shape}, nbytes={self.nbytes})"


def _shape2(shape):
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (rows, cols), got {shape!r}") from None
    if rows < 0 or cols < 0:
        raise ValueError(f"shape must be non-negative, got {shape!r}")
    return rows, cols


def _row_bytes(qtype, cols):
    tid, block, _ = QTYPES[qtype]
    if cols % block:
        raise ValueError(f"{qtype} rows must be a multiple of {block} weights, got {cols} columns")
    return _core.qtype_row_bytes(tid, cols)


def quantize(w, qtype):
    """Quantize a (rows, cols) float matrix to `qtype` (one of `_QUANTIZABLE`: "q8_0", "q5_k", "q4_0", "iq4_nl" ...).

    Float64 and float16 inputs are converted to float32 first, as the gguf package does; the bytes equal
    ggml's reference quantizers' (without an importance matrix). cols must be a multiple of the block size (32
    for the 32-weight types, 256 for q2_k, q3_k, q5_k and iq4_xs).

    >>> quantize(np.zeros((2, 32), np.float32), "q4_0").nbytes
    36
    """
    qtype = _qtype_name(qtype)
    if qtype not in _QUANTIZABLE:
        raise UnsupportedError(
            f"no quantizer for {qtype}; quantize to {', '.join(_QUANTIZABLE)} (load {qtype} with from_bytes)"
        )
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w must be a numpy.ndarray of floats, got {type(w).__name__}")
    if w.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"w must have a float dtype (float16, float32 or float64), got {w.dtype}")
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D (rows, cols) matrix, got shape {w.shape}")
    _row_bytes(qtype, w.shape[1])
    data = _core.quantize_rows(np.ascontiguousarray(w, dtype=np.float32), QTYPES[qtype][0])
    return QuantizedTensor(data, qtype, w.shape)


def linear(x, w, bias=None, *, out=None):
    """x (..., K) @ w.T + bias for a QuantizedTensor w (N, K) in a type with dot kernels (`_LINEAR`).

    x is quantized to int8 per 32 values (one float scale each) and multiplied with int8 dot products;
    each output row is computed independently of the thread count.
    """
    if w.qtype not in _LINEAR:
        kernels = ", ".join(_LINEAR)
        raise UnsupportedError(f"linear has no {w.qtype} kernel (it has {kernels}); dequantize() first")
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise TypeError(f"x must be a float32 numpy.ndarray with at least one axis, got {type(x).__name__}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: x has shape {x.shape} and w has shape {w.shape}; w must be (N, {x.shape[-1]})")
    tid = w.ggml_type
    if x.ndim == 2:
        return _core.linear_q(x, w.data, tid, w.shape[1], bias, out=out)
    if out is not None:
        raise ValueError(f"out is only accepted for 2-D x, got x of shape {x.shape}")
    y = _core.linear_q(np.reshape(x, (-1, x.shape[-1])), w.data, tid, w.shape[1], bias)
    return y.reshape(x.shape[:-1] + (w.shape[0],))


# block formats Model.load(quantize=...) writes: the ones with a quantizer and a linear kernel
QUANTIZABLE_AT_LOAD = tuple(_core.qtype_names(_core.QF_QUANTIZE | _core.QF_LINEAR).split("/"))
