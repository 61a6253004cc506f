# included by _core.pyx: the 32-weight legacy ggml types q4_1, q5_0, q5_1 and iq4_nl (csrc/ff_qlegacy.h) until
# they join the qtype table. Blocks are C-contiguous uint8 arrays (rows, row_bytes) in ggml's byte layout.

from libc.stdint cimport uint8_t

cdef extern from "ff_qlegacy.h" nogil:
    enum:
        FF_QL_Q4_1
        FF_QL_Q5_0
        FF_QL_Q5_1
        FF_QL_IQ4_NL
    int64_t ff_qlegacy_block_bytes(int qtype)
    int ff_qlegacy_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols)
    int ff_qlegacy_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols)
    int ff_qlegacy_linear(float *y, const float *x, const void *w, int qtype, int64_t m, int64_t k, int64_t n)


QLEGACY_IDS = {"q4_1": FF_QL_Q4_1, "q5_0": FF_QL_Q5_0, "q5_1": FF_QL_Q5_1, "iq4_nl": FF_QL_IQ4_NL}


cdef int _ql_id(object qtype) except -1:
    if isinstance(qtype, str) and qtype.lower() in QLEGACY_IDS:
        return QLEGACY_IDS[qtype.lower()]
    if isinstance(qtype, int) and not isinstance(qtype, bool) and qtype in QLEGACY_IDS.values():
        return qtype
    raise ValueError(f"unknown legacy qtype {qtype!r}; known: {', '.join(QLEGACY_IDS)} (or their ggml type ids)")


cdef int64_t _ql_row_bytes(int qt, int64_t cols) except -1:
    if cols < 0 or cols % 32:
        raise ValueError(f"a row of {cols} weights is not a whole number of 32-weight blocks")
    return cols // 32 * ff_qlegacy_block_bytes(qt)


cdef object _ql_finite(object a, str name):
    """ValueError naming the first non-finite element of float32 array `a`."""
    bad = ~np.isfinite(a)
    if bad.any():
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
        raise ValueError(f"{name} has a non-finite value {a[at]} at {at}; quantized types hold finite values only")


def qlegacy_quantize(w, qtype):
    """w (rows, cols) float32, cols % 32 == 0 -> uint8 (rows, row_bytes) blocks of q4_1, q5_0, q5_1 or iq4_nl
    (the gguf package's bytes; iq4_nl: llama.cpp's without an importance matrix)."""
    cdef int qt = _ql_id(qtype)
    w = _f32(w, "w", 2)
    cdef int64_t rows = w.shape[0], cols = w.shape[1]
    out = np.empty((rows, _ql_row_bytes(qt, cols)), dtype=np.uint8)
    if out.size == 0:
        return out
    _ql_finite(w, "w")
    cdef uint8_t[:, ::1] o_ = out
    cdef const float[::1] w_ = w.reshape(-1)
    with nogil:
        ff_qlegacy_quantize(&o_[0, 0], &w_[0], qt, rows, cols)
    return out


def qlegacy_dequantize(data, qtype, int64_t cols):
    """uint8 (rows, row_bytes) blocks of q4_1, q5_0, q5_1 or iq4_nl -> float32 (rows, cols)."""
    cdef int qt = _ql_id(qtype)
    data = _ql_blocks(data, qt, cols, "data")
    cdef int64_t rows = data.shape[0]
    out = np.empty((rows, cols), dtype=np.float32)
    if out.size == 0:
        return out
    cdef const uint8_t[:, ::1] d_ = data
    cdef float[::1] o_ = out.reshape(-1)
    with nogil:
        ff_qlegacy_dequantize(&o_[0], &d_[0, 0], qt, rows, cols)
    return out


cdef object _ql_blocks(object data, int qt, int64_t cols, str name):
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 numpy.ndarray of blocks, got {getattr(data, 'dtype', type(data))}")
    rb = _ql_row_bytes(qt, cols)
    if data.ndim != 2 or data.shape[1] != rb:
        raise ValueError(f"{name} has shape {data.shape}, expected (rows, {rb}) for rows of {cols} weights")
    return np.ascontiguousarray(data)


def qlegacy_linear(x, data, qtype, int64_t cols):
    """x (M, K) float32 @ W.T for W (N, K) given as q4_1, q5_0, q5_1 or iq4_nl blocks: x quantized to int8 per
    32 as linear_q does, then the current ISA path's int8 dot kernel."""
    cdef int qt = _ql_id(qtype)
    x = _f32(x, "x", 2)
    data = _ql_blocks(data, qt, cols, "w")
    cdef int64_t m = x.shape[0], k = x.shape[1], n = data.shape[0]
    if k != cols:
        raise ValueError(f"linear: x has shape {x.shape} and w has shape ({n}, {cols}); w must be (N, {k})")
    out = np.empty((m, n), dtype=np.float32)
    if out.size == 0:
        return out
    if k == 0:
        out[:] = 0
        return out
    _ql_finite(x, "x")
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    cdef const uint8_t[:, ::1] w_ = data
    cdef int rc
    with nogil:
        rc = ff_qlegacy_linear(&y_[0], &x_[0], &w_[0, 0], qt, m, k, n)
    if rc == FF_ENOMEM:
        raise MemoryError("linear: out of memory for the quantized activations")
    return out
