# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""Native core: cpu dispatch, the thread pool and thin wrappers over the fp32 kernels.

Each wrapper checks dtypes and shapes, allocates the output, releases the GIL around one C call
and returns. Public, documented entry points live in fastformer.ops; these are the checked primitives.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t

from fastformer._ff cimport *
from cpython.mem cimport PyMem_Malloc, PyMem_Free


cnp.import_array()

# ---- cpu dispatch ----

ff_cpu_init()


def isa_names():
    """All ISA path names this build knows, lowest first."""
    return [ff_isa_name(i).decode() for i in range(FF_ISA_COUNT)]


def supported_isas():
    """ISA path names usable on this machine, lowest first (always starts with "scalar")."""
    return [ff_isa_name(i).decode() for i in range(FF_ISA_COUNT) if ff_isa_usable(i)]


def current_isa():
    """The ISA path whose kernels are in use."""
    return ff_isa_name(ff_isa_current()).decode()


def set_isa(str name):
    """Switch every kernel to the ISA path `name` (one of supported_isas())."""
    names = isa_names()
    if name not in names:
        raise ValueError(f"unknown ISA {name!r}; known: {', '.join(names)}")
    if ff_isa_select(names.index(name)) != 0:
        raise ValueError(f"ISA {name!r} is not supported on this CPU; supported: {', '.join(supported_isas())}")


def set_decode_prefetch(nbytes, above=None):
    """Prefetch W `nbytes` ahead into L2 in the one-row (decode) kernels, avx-512 vnni and 256-bit (a multiple of 64 in
    0..65536, 0 for none) when the weights read in turn (a model's matrices, else the call's own W) exceed `above`
    bytes (None: keep the current threshold). Defaults: decode_prefetch_default(). Any setting gives the same bits."""
    for name, v in (("nbytes", nbytes), ("above", above)):
        if (v is not None or name == "nbytes") and (isinstance(v, bool) or not isinstance(v, int)):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if above is None:
        above = ff_quant_ahead_above()
    if above < 0:
        raise ValueError(f"above must be >= 0, got {above}")
    if not 0 <= nbytes <= FF_AHEAD_MAX or nbytes % 64 or ff_quant_set_ahead(nbytes, above) != FF_OK:
        raise ValueError(f"nbytes must be a multiple of 64 in 0..{FF_AHEAD_MAX}, got {nbytes}")


def decode_prefetch():
    """(nbytes, above): how far ahead the decode kernels prefetch W (0: not at all), and above how many bytes of
    weights read in turn."""
    return ff_quant_ahead(), ff_quant_ahead_above()


def decode_prefetch_default():
    """This CPU's defaults for set_decode_prefetch: 8192 bytes ahead on Intel (0 elsewhere), above half the L3
    cache's bytes (0 if the OS does not say)."""
    return ff_quant_ahead_default(), ff_quant_ahead_above_default()


def decode_prefetch_for(int64_t stream):
    """The distance the decode kernels prefetch at for `stream` bytes of weights read in turn."""
    return ff_quant_ahead_for(stream)


def cpu_features():
    """CPU features the processor and the OS both support, by name."""
    return [ff_feature_name(i).decode() for i in range(FF_F_COUNT) if ff_cpu_has(i)]


# ---- threads ----

def set_num_threads(n):
    """Use `n` threads (1 <= n <= 256) for every later kernel call."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1 or n > FF_MAX_THREADS:
        raise ValueError(f"n must be between 1 and {FF_MAX_THREADS}, got {n}")
    ff_set_num_threads(n)


def get_num_threads():
    """The number of threads kernels use."""
    return ff_get_num_threads()


def read_ahead_stats():
    """(spans, bytes): how many times the pool's workers have read the start of their share of a model's next
    matrix call while they waited for it, and how many bytes they read (a statistic)."""
    cdef int64_t spans, nbytes
    ff_read_ahead_stats(&spans, &nbytes)
    return int(spans), int(nbytes)


def tail_stats():
    """(grants, rows): how many times a thread of a quantized linear has given part of the end of its share of W's
    rows to a thread done with its own, and how many rows (a statistic)."""
    cdef int64_t grants, rows
    ff_tail_stats(&grants, &rows)
    return int(grants), int(rows)


def qdot_many_calls():
    """How many calls of the 256-bit Q4_K/Q5_K/Q6_K kernels have taken 16 activation rows at once (prefill on machines
    without AVX-512 VNNI; a statistic)."""
    return int(ff_qdot_many_calls())


def default_num_threads():
    """The number of cores this process may run on."""
    return ff_default_num_threads()


def read_sum(a):
    """The sum (mod 2**64) of a C-contiguous uint64 array, read by the thread pool: a memory read probe
    (fastformer.read_bandwidth)."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64 or a.ndim != 1 or not a.flags.c_contiguous:
        raise ValueError("read_sum: a must be a 1-D C-contiguous uint64 array")
    cdef const uint64_t[::1] a_ = a
    cdef int64_t n = a.shape[0]
    cdef uint64_t s = 0
    if n:
        with nogil:
            s = ff_read_sum(&a_[0], n)
    return s


# ---- argument checks ----

cdef object _f32(object x, str name, int ndim=-1):
    """x as a C-contiguous float32 array; TypeError for other dtypes, ValueError for a wrong rank."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {x.dtype}")
    if ndim >= 0 and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    return x if x.flags.c_contiguous else np.array(x, order="C")  # keeps 0-d arrays 0-d


cdef object _out(object out, tuple shape, list inputs):
    """A fresh output array, or `out` checked for dtype, shape, contiguity and overlap with the inputs."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise TypeError("out must be a float32 numpy.ndarray")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    for a in inputs:
        if a is not None and np.shares_memory(out, a):
            raise ValueError("out must not overlap an input")
    return out


cdef inline float *_fp(float[::1] view) noexcept nogil:
    return &view[0] if view.shape[0] > 0 else NULL


cdef inline const float *_cp(const float[::1] view) noexcept nogil:
    return &view[0] if view.shape[0] > 0 else NULL


# ---- matmul ----

def matmul(a, b, *, out=None):
    a = _f32(a, "a", 2)
    b = _f32(b, "b", 2)
    cdef int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"matmul: a has shape {a.shape} and b has shape {b.shape}; a.shape[1] must equal b.shape[0]")
    out = _out(out, (m, n), [a, b])
    cdef float[::1] c_ = out.reshape(-1)
    cdef const float[::1] a_ = a.reshape(-1), b_ = b.reshape(-1)
    cdef int rc
    with nogil:
        rc = ff_matmul_f32(_fp(c_), _cp(a_), _cp(b_), m, k, n)
    if rc != FF_OK:
        raise MemoryError("matmul: out of memory for packing buffers")
    return out


def linear_f32(x, w, bias=None, *, out=None):
    x = _f32(x, "x", 2)
    w = _f32(w, "w", 2)
    cdef int64_t m = x.shape[0], k = x.shape[1], n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"linear: x has shape {x.shape} and w has shape {w.shape}; w must be (N, {k})")
    if bias is not None:
        bias = _f32(bias, "bias", 1)
        if bias.shape[0] != n:
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({n},) for w of shape {w.shape}")
    out = _out(out, (m, n), [x, w, bias])
    # raw pointers straight from the checked arrays: this call sits on the decode hot path
    cdef float *yp = <float *>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef const float *xp = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef const float *wp = <const float *>cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef const float *bp = NULL if bias is None else <const float *>cnp.PyArray_DATA(<cnp.ndarray>bias)
    cdef int rc
    with nogil:
        rc = ff_linear_f32(yp, xp, wp, bp, m, k, n)
    if rc != FF_OK:
        raise MemoryError("linear: out of memory for packing buffers")
    return out


# ---- norms ----

cdef object _norm_weight(object w, str name, str op, int64_t n):
    w = _f32(w, name, 1)
    if w.shape[0] != n:
        raise ValueError(f"{op}: {name} has shape {w.shape}, expected ({n},) to match the last axis of x")
    return w


def rms_norm(x, weight, *, float eps=1e-6):
    x = _f32(x, "x")
    if x.ndim < 1 or x.shape[x.ndim - 1] == 0:
        raise ValueError(f"rms_norm: x must have a non-empty last axis, got shape {x.shape}")
    cdef int64_t n = x.shape[x.ndim - 1], rows = x.size // n
    weight = _norm_weight(weight, "weight", "rms_norm", n)
    out = np.empty(x.shape, dtype=np.float32)
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1), w_ = weight
    with nogil:
        ff_norm_rms_f32(_fp(y_), _cp(x_), _cp(w_), eps, rows, n)
    return out


def layer_norm(x, weight, bias, *, float eps=1e-5):
    x = _f32(x, "x")
    if x.ndim < 1 or x.shape[x.ndim - 1] == 0:
        raise ValueError(f"layer_norm: x must have a non-empty last axis, got shape {x.shape}")
    cdef int64_t n = x.shape[x.ndim - 1], rows = x.size // n
    weight = _norm_weight(weight, "weight", "layer_norm", n)
    cdef const float[::1] b_
    cdef const float *bp = NULL
    if bias is not None:
        bias = _norm_weight(bias, "bias", "layer_norm", n)
        b_ = bias
        bp = _cp(b_)
    out = np.empty(x.shape, dtype=np.float32)
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1), w_ = weight
    with nogil:
        ff_norm_layer_f32(_fp(y_), _cp(x_), _cp(w_), bp, eps, rows, n)
    return out


# ---- softmax and activations ----

def softmax_lastaxis(x):
    x = _f32(x, "x")
    if x.ndim < 1:
        raise ValueError(f"softmax: x must have at least one axis, got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.float32)
    cdef int64_t n = x.shape[x.ndim - 1]
    if x.size == 0:
        return out
    cdef int64_t rows = x.size // n
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    with nogil:
        ff_softmax_f32(_fp(y_), _cp(x_), rows, n)
    return out


def argmax_f32(const float[::1] x):
    """The first index of the largest of x (1-D float32), or -1 if x is empty, holds a NaN, or its largest is
    not finite; the threads scan the parts a matrix call's threads wrote (a greedy pick of fresh logits)."""
    cdef int64_t r
    with nogil:
        r = ff_argmax_f32(&x[0], x.shape[0]) if x.shape[0] > 0 else -1
    return r


def gelu(x, *, str approximate="tanh"):
    x = _f32(x, "x")
    if approximate not in ("tanh", "none"):
        raise ValueError(f"gelu: approximate must be 'tanh' or 'none', got {approximate!r}")
    out = np.empty(x.shape, dtype=np.float32)
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    cdef int64_t n = x.size
    cdef bint exact = approximate == "none"
    with nogil:
        if exact:
            ff_gelu_erf_f32(_fp(y_), _cp(x_), n)
        else:
            ff_gelu_tanh_f32(_fp(y_), _cp(x_), n)
    return out


def silu(x):
    x = _f32(x, "x")
    out = np.empty(x.shape, dtype=np.float32)
    cdef float[::1] y_ = out.reshape(-1)
    cdef const float[::1] x_ = x.reshape(-1)
    cdef int64_t n = x.size
    with nogil:
        ff_silu_f32(_fp(y_), _cp(x_), n)
    return out


# ---- rotary embeddings ----

def rope_table(positions, inv_freq):
    """cos, sin tables (T, D/2) for int64 positions (T,) and float32 inv_freq (D/2,)."""
    cdef const int64_t[::1] p_ = positions
    cdef const float[::1] f_ = inv_freq
    cdef int64_t t = p_.shape[0], half = f_.shape[0]
    cos = np.empty((t, half), dtype=np.float32)
    sin = np.empty((t, half), dtype=np.float32)
    cdef float[::1] c_ = cos.reshape(-1), s_ = sin.reshape(-1)
    with nogil:
        if t > 0 and half > 0:
            ff_rope_table_f32(&c_[0], &s_[0], &p_[0], &f_[0], t, half)
    return cos, sin


def rope_apply(x, cos, sin, *, bint interleaved=False):
    """Rotate a copy of x (H, T, D) by cos, sin (T, D/2)."""
    x = _f32(x, "x", 3)
    cdef int64_t h = x.shape[0], t = x.shape[1], d = x.shape[2]
    if d % 2:
        raise ValueError(f"rope: the head size (last axis of x) must be even, got shape {x.shape}")
    cos = _f32(cos, "cos", 2)
    sin = _f32(sin, "sin", 2)
    if cos.shape != (t, d // 2) or sin.shape != (t, d // 2):
        raise ValueError(f"rope: cos and sin must have shape {(t, d // 2)}, got {cos.shape} and {sin.shape}")
    out = np.array(x, dtype=np.float32, copy=True, order="C")
    cdef float[::1] o_ = out.reshape(-1)
    cdef const float[::1] c_ = cos.reshape(-1), s_ = sin.reshape(-1)
    with nogil:
        ff_rope_f32(_fp(o_), _cp(c_), _cp(s_), h, t, d, interleaved)
    return out


# ---- attention ----

def attention(q, k, v, *, bint causal=True, scale=None):
    q = _f32(q, "q", 3)
    k = _f32(k, "k", 3)
    v = _f32(v, "v", 3)
    cdef int64_t h = q.shape[0], tq = q.shape[1], d = q.shape[2]
    cdef int64_t hkv = k.shape[0], tk = k.shape[1]
    if k.shape[2] != d or v.shape != k.shape:
        raise ValueError(f"attention: q {q.shape}, k {k.shape} and v {v.shape} must be (H,Tq,D), (Hkv,Tk,D), (Hkv,Tk,D)")
    if hkv == 0 or h % hkv:
        raise ValueError(f"attention: the {h} query heads must be a multiple of the {hkv} key/value heads")
    if d == 0:
        raise ValueError(f"attention: the head size must be positive, got q shape {q.shape}")
    if tk == 0 and tq > 0:
        raise ValueError(f"attention: no keys to attend to (k shape {k.shape})")
    if causal and tq > tk:
        raise ValueError(f"attention: causal attention needs Tq <= Tk, got Tq={tq}, Tk={tk}")
    cdef float s = (1.0 / np.sqrt(d)) if scale is None else float(scale)
    out = np.empty((h, tq, d), dtype=np.float32)
    if out.size == 0:
        return out
    cdef float[::1] o_ = out.reshape(-1)
    cdef const float[::1] q_ = q.reshape(-1), k_ = k.reshape(-1), v_ = v.reshape(-1)
    cdef int rc
    with nogil:
        rc = ff_attention_f32(_fp(o_), _cp(q_), _cp(k_), _cp(v_), h, hkv, tq, tk, d, s, causal)
    if rc != FF_OK:
        raise MemoryError("attention: out of memory for scratch buffers")
    return out


# the kv cache's storage types: name -> (ggml type id, numpy dtype of its array, values per block, bytes per block)
KV_DTYPES = {"f32": (FF_QT_F32, np.float32, 1, 4), "f16": (FF_QT_F16, np.float16, 1, 2),
             "q8_0": (FF_QT_Q8_0, np.uint8, 32, 34)}


def kv_row_bytes(str kv_dtype, int64_t d):
    """Bytes of one cached key or value row of d values stored as kv_dtype; ValueError where it cannot hold one."""
    if kv_dtype not in KV_DTYPES:
        raise ValueError(f"kv_dtype must be one of {', '.join(map(repr, KV_DTYPES))}, got {kv_dtype!r}")
    _, _, block, nbytes = KV_DTYPES[kv_dtype]
    if d % block:
        raise ValueError(f"kv_dtype {kv_dtype!r} stores the head in blocks of {block}: head_dim {d} is not a multiple")
    return d // block * nbytes


def attention_cache(q, k, v, str kv_dtype, *, int64_t tk=-1, bint causal=True, scale=None, float softcap=0.0):
    """attention of q (H,Tq,D) float32 over the first tk (default all) rows of a kv cache k, v (Hkv,rows,...)
    stored as kv_dtype: float32 or float16 (Hkv,rows,D), or q8_0 blocks along D as uint8 (Hkv,rows,D/32*34)."""
    q = _f32(q, "q", 3)
    cdef int64_t h = q.shape[0], tq = q.shape[1], d = q.shape[2]
    rb = kv_row_bytes(kv_dtype, d)
    cdef int kt = KV_DTYPES[kv_dtype][0]
    dtype = KV_DTYPES[kv_dtype][1]
    if not (isinstance(k, np.ndarray) and isinstance(v, np.ndarray) and k.dtype == dtype and v.dtype == dtype):
        raise TypeError(f"attention_cache: a {kv_dtype} cache takes k and v of dtype {np.dtype(dtype)}")
    if k.ndim != 3 or k.shape != v.shape or k.shape[2] * k.itemsize != rb or k.shape[0] == 0 or h % k.shape[0]:
        raise ValueError(f"attention_cache: q {q.shape}, k {k.shape}, v {v.shape} do not fit a {kv_dtype} cache")
    cdef int64_t hkv = k.shape[0], rows = k.shape[1]
    if tk < 0:
        tk = rows
    if tk > rows or (tk == 0 and tq > 0) or (causal and tq > tk):
        raise ValueError(f"attention_cache: tk={tk} with Tq={tq} and {rows} cache rows")
    cdef float s = (1.0 / np.sqrt(d)) if scale is None else float(scale)
    out = np.empty((h, tq, d), dtype=np.float32)
    if out.size == 0:
        return out
    kb = np.ascontiguousarray(k).view(np.uint8).reshape(-1)
    vb = np.ascontiguousarray(v).view(np.uint8).reshape(-1)
    cdef float[::1] o_ = out.reshape(-1)
    cdef const float[::1] q_ = q.reshape(-1)
    cdef const uint8_t[::1] k_ = kb, v_ = vb
    cdef int rc
    with nogil:
        rc = ff_attention_cache(_fp(o_), _cp(q_), &k_[0], &v_[0], kt, h, hkv, tq, tk, rows, d, s, softcap, causal)
    if rc == FF_ENOMEM:
        raise MemoryError("attention: out of memory for scratch buffers")
    if rc != FF_OK:
        raise ValueError(f"attention_cache: the kernels do not take a {kv_dtype} cache with head size {d}")
    return out


include "_quant.pxi"
include "_model.pxi"
include "_encoder.pxi"
include "_bpe.pxi"
include "_wordpiece.pxi"
