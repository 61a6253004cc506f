# included by _core.pyx: ggml-compatible quantized weights. A quantized (rows, cols) matrix is a C-contiguous
# uint8 array (rows, row_bytes) of blocks in ggml's byte layout; qtypes are ggml's type ids.

from libc.stdint cimport uint8_t, uint16_t


QF_DEQUANT = FF_QF_DEQUANT    # dequantize_rows takes the type
QF_LINEAR = FF_QF_LINEAR      # linear_q has dot kernels for it (and a model takes it for weights and embeddings)
QF_QUANTIZE = FF_QF_QUANTIZE  # quantize_rows writes it
QF_R16 = FF_QF_R16            # repack_r16 takes it and linear_q takes it | QTYPE_R16


def _qtype_table():
    cdef const ff_qtype_info *q
    rows = []
    for i in range(FF_QT_COUNT):
        q = ff_qtype_get(i)
        if q != NULL:
            rows.append((q.id, q.name.decode(), q.block, q.block_bytes, q.flags, q.scale_lo, q.scale_hi))
    return tuple(rows)


# every ggml type id gguf files may hold, by id: (id, name, weights per block, bytes per block, QF_* flags,
# (lo, hi) byte range of the fp16 scales in a block or (0, 0)), from csrc/ff_qtype.c
QTYPE_TABLE = _qtype_table()
QTYPE_IDS = {row[1]: row[0] for row in QTYPE_TABLE if row[4] & QF_DEQUANT}  # the types fastformer can read
QTYPE_R16 = FF_QT_R16  # flag on a QF_R16 id: W in the r16 layout (repack_r16)


def qtype_names(int flags):
    """Names of the types with every flag in `flags`, most bits per weight first, as "q8_0/q4_0"."""
    rows = sorted((row for row in QTYPE_TABLE if row[4] & flags == flags), key=lambda row: -row[3] / row[2])
    return "/".join(row[1] for row in rows)


def qtype_kernels(str isa, int qtype):
    """The QF_* flags of ggml type `qtype` whose kernels every dispatch table of ISA path `isa` has (one table
    per int8 dot); for a type of QTYPE_TABLE they equal its flags."""
    names = isa_names()
    if isa not in names:
        raise ValueError(f"unknown ISA {isa!r}; known: {', '.join(names)}")
    return ff_qtype_kernels(names.index(isa), qtype)


def qtype_block(int qtype):
    """(weights per block, bytes per block) of the ggml type id `qtype`; (0, 0) if unknown."""
    return ff_qtype_block(qtype), ff_qtype_block_bytes(qtype)


def qtype_row_bytes(int qtype, int64_t cols):
    """Bytes of one row of `cols` weights; ValueError if cols is not a whole number of blocks."""
    cdef int64_t rb = ff_qtype_row_bytes(qtype, cols)
    if rb < 0:
        blk = ff_qtype_block(qtype)
        if blk == 0:
            raise ValueError(f"unknown ggml type id {qtype}")
        raise ValueError(f"a row of {cols} weights is not a whole number of {blk}-weight blocks")
    return rb


cdef object _finite(object a, str name):
    """ValueError naming the first non-finite element of float32 array `a`."""
    bad = ~np.isfinite(a)
    if bad.any():
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
        raise ValueError(f"{name} has a non-finite value {a[at]} at {at}; quantized types hold finite values only")


cdef object _qdata(object data, int qtype, int64_t cols, str name):
    """data as a C-contiguous uint8 (rows, row_bytes) array for rows of `cols` weights."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 numpy.ndarray of blocks, got {getattr(data, 'dtype', type(data))}")
    rb = qtype_row_bytes(qtype, cols)
    if data.ndim != 2 or data.shape[1] != rb:
        raise ValueError(f"{name} has shape {data.shape}, expected (rows, {rb}) for rows of {cols} weights")
    return np.ascontiguousarray(data)


def quantize_rows(w, int qtype):
    """w (rows, cols) float32 -> uint8 (rows, row_bytes) blocks of ggml type `qtype` (a QF_QUANTIZE type);
    block types take finite values only."""
    w = _f32(w, "w", 2)
    cdef int64_t rows = w.shape[0], cols = w.shape[1]
    out = np.empty((rows, qtype_row_bytes(qtype, cols)), dtype=np.uint8)
    if out.size == 0:
        return out
    if ff_qtype_block(qtype) > 1:
        _finite(w, "w")
    cdef uint8_t[:, ::1] o_ = out
    cdef const float[::1] w_ = w.reshape(-1)
    cdef int rc
    with nogil:
        rc = ff_quantize(&o_[0, 0], _cp(w_), qtype, rows, cols)
    if rc != FF_OK:
        raise ValueError(f"cannot quantize to ggml type {qtype}: only {qtype_names(FF_QF_QUANTIZE)} have quantizers")
    return out


def dequantize_rows(data, int qtype, int64_t cols):
    """uint8 (rows, row_bytes) blocks of ggml type `qtype` -> float32 (rows, cols)."""
    data = _qdata(data, qtype, cols, "data")
    cdef int64_t rows = data.shape[0]
    out = np.empty((rows, cols), dtype=np.float32)
    if out.size == 0:
        return out
    cdef const uint8_t[:, ::1] d_ = data
    cdef float[::1] o_ = out.reshape(-1)
    cdef int rc
    with nogil:
        rc = ff_dequantize(&o_[0], &d_[0, 0], qtype, rows, cols)
    if rc != FF_OK:
        raise ValueError(f"cannot dequantize ggml type {qtype}: only {qtype_names(FF_QF_DEQUANT)} have dequantizers")
    return out


def repack_r16(data, int qtype, int64_t cols, *, out=None):
    """Blocks of a QF_R16 type (q8_0, q4_0, q4_k, q5_k, q6_k, q4_1, q5_0, q5_1, iq4_nl, iq4_xs, q2_k, q3_k) (rows,
    row_bytes), rows a multiple of 16 -> the same bytes in the r16 layout, which linear_q takes as qtype | QTYPE_R16
    (the layout the AVX-512 VNNI kernels read fastest); written
    into `out` (a uint8 array of data's shape) if given."""
    if not ff_qtype_has(qtype, FF_QF_R16):
        raise ValueError(f"repack_r16: ggml type {qtype} is not {qtype_names(FF_QF_R16).replace('/', ' or ')}")
    data = _qdata(data, qtype, cols, "w")
    cdef int64_t rows = data.shape[0]
    if rows % 16:
        raise ValueError(f"repack_r16: w has {rows} rows, expected a multiple of 16")
    if out is None:
        out = np.empty_like(data)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != data.shape
          or not out.flags.c_contiguous or not out.flags.writeable or np.shares_memory(out, data)):
        raise ValueError(f"repack_r16: out must be a writeable C-contiguous uint8 array of shape {data.shape} "
                         "apart from w")
    if out.size == 0:
        return out
    cdef const uint8_t[:, ::1] d_ = data
    cdef uint8_t[:, ::1] o_ = out
    with nogil:
        ff_qrepack_r16(&o_[0, 0], &d_[0, 0], qtype, rows, cols)
    return out


def repack_r16_pays():
    """True if the r16 kernels in use are the fast ones (the avx512 path with VNNI); others run a scalar twin."""
    return bool(ff_qrepack_r16_pays())


def linear_q(x, data, int qtype, int64_t cols, bias=None, *, out=None):
    """x (M, K) @ W.T + bias for W (N, K) given as uint8 (N, row_bytes) blocks of ggml type `qtype` (a QF_LINEAR
    type; QF_R16 ones may carry QTYPE_R16 for data from repack_r16)."""
    x = _f32(x, "x", 2)
    cdef int base = qtype & ~FF_QT_R16
    data = _qdata(data, base, cols, "w")
    cdef int64_t m = x.shape[0], k = x.shape[1], n = data.shape[0]
    if k != cols:
        raise ValueError(f"linear: x has shape {x.shape} and w has shape ({n}, {cols}); w must be (N, {k})")
    if not ff_qtype_has(base, FF_QF_LINEAR | (FF_QF_R16 if qtype & FF_QT_R16 else 0)):
        raise ValueError(f"linear: no quantized kernel for ggml type {qtype}; dequantize() the weight first")
    if qtype & FF_QT_R16 and n % 16:
        raise ValueError(f"linear: an r16 w has {n} rows, expected a multiple of 16")
    if bias is not None:
        bias = _f32(bias, "bias", 1)
        if bias.shape[0] != n:
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({n},) for w of shape ({n}, {cols})")
    out = _out(out, (m, n), [x, data, bias])
    if out.size == 0:
        return out
    if k == 0:
        out[:] = 0 if bias is None else bias
        return out
    _finite(x, "x")
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    cdef const uint8_t[:, ::1] w_ = data
    cdef const float[::1] b_
    cdef const float *bp = NULL
    if bias is not None:
        b_ = bias
        bp = _cp(b_)
    cdef int rc
    with nogil:
        rc = ff_linear_q(&y_[0], _cp(x_), &w_[0, 0], qtype, bp, m, k, n)
    if rc == FF_ENOMEM:
        raise MemoryError("linear: out of memory for the quantized activations")
    if rc != FF_OK:
        raise ValueError(f"linear: ggml type {qtype} with K={k} is not supported")
    return out


def fp32_to_fp16(x):
    """float32 array -> uint16 fp16 bit patterns, rounding to nearest even (f16c when the ISA path has it)."""
    x = _f32(x, "x")
    out = np.empty(x.shape, dtype=np.uint16)
    if x.size == 0:
        return out
    cdef uint16_t[::1] o_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    with nogil:
        ff_fp32_to_fp16_row(&o_[0], &x_[0], x_.shape[0])
    return out


def fp16_to_fp32(h):
    """uint16 fp16 bit patterns -> float32 (exact)."""
    if not isinstance(h, np.ndarray) or h.dtype != np.uint16:
        raise TypeError(f"h must be a uint16 numpy.ndarray, got {getattr(h, 'dtype', type(h))}")
    h = np.ascontiguousarray(h)
    out = np.empty(h.shape, dtype=np.float32)
    if h.size == 0:
        return out
    cdef float[::1] o_ = out.reshape(-1)
    cdef const uint16_t[::1] h_ = h.reshape(-1)
    with nogil:
        ff_fp16_to_fp32_row(&o_[0], &h_[0], h_.shape[0])
    return out


def quant_set_vnni(bint on):
    """Let the avx512 path use its AVX-512 VNNI int8 kernels (the default) or its AVX2 ones; returns quant_vnni()."""
    return bool(ff_quant_set_vnni(on))


def quant_vnni():
    """True if the avx512 path runs the VNNI int8 kernels (the CPU has AVX-512 VNNI and they are not disabled)."""
    return bool(ff_quant_vnni())


DOT256_NAMES = ("maddubs", "avxvnni", "vnni256")


def quant_set_dot256(str name):
    """Choose the int8 dot of the 256-bit (avx2 path) quantized kernels: "maddubs" (AVX2), "avxvnni" (AVX-VNNI,
    the default where the CPU has it) or "vnni256" (AVX-512 VNNI on 256-bit registers). All give the same bits;
    IsaError if this CPU cannot run the choice."""
    if name not in DOT256_NAMES:
        raise ValueError(f"unknown 256-bit int8 dot {name!r}; expected one of {DOT256_NAMES}")
    if ff_quant_set_dot256(DOT256_NAMES.index(name)) != 0:
        from fastformer.errors import IsaError

        raise IsaError(f"this CPU cannot run the {name!r} int8 dot (cpu features: {sorted(cpu_features())})")


def quant_dot256():
    """The int8 dot the 256-bit quantized kernels use: "maddubs", "avxvnni" or "vnni256"."""
    return DOT256_NAMES[ff_quant_dot256()]
