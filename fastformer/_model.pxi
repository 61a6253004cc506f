# included by _core.pyx: the model forward pass. ModelCore owns the C view of the weights (numpy arrays
# kept alive here); Session owns one sequence's kv cache and scratch.

from libc.stdlib cimport calloc, free
from libc.stdint cimport int32_t, uint8_t
import math


cdef const float *_wptr(object keep, object arr, tuple shape, str name) except? NULL:
    """Pointer to a float32 C-contiguous array of exactly `shape`; None gives NULL."""
    if arr is None:
        return NULL
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or not arr.flags.c_contiguous:
        raise TypeError(f"{name} must be a C-contiguous float32 array")
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    keep.append(arr)
    cdef const float[::1] v = arr.reshape(-1)
    return &v[0]


_HUGE_PAGE = 2 << 20
_LINEAR_QTYPES = qtype_names(FF_QF_LINEAR)  # block formats the linear kernels (and embedding rows) take, "a/b/.."


def hugepages_available():
    """True where the kernel offers transparent huge pages to a program that asks (Linux, THP not "never")."""
    import mmap

    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


def huge_buffer(int64_t nbytes):
    """A zeroed, writable uint8 array of nbytes in its own anonymous mapping, 2 MiB aligned and advised for
    transparent huge pages, which decode streams faster than a file's page cache (README, "Weights in huge
    pages"). Only touched pages count."""
    import mmap

    if nbytes < 0:
        raise ValueError(f"huge_buffer: nbytes must be >= 0, got {nbytes}")
    try:
        m = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError as e:
        raise MemoryError(f"could not map {nbytes} bytes for model weights ({e.strerror}); Model.load(..., "
                          "hugepages=False) keeps float32 weights in the file's own mapping") from None
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            m.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # a kernel without THP: plain pages
            pass
    buf = np.frombuffer(m, np.uint8)
    off = -buf.ctypes.data % _HUGE_PAGE
    return buf[off:off + nbytes]


class _Arena:
    """One huge_buffer the weight matrices are copied into, 64-byte aligned, in the order they are taken."""

    def __init__(self, int64_t nbytes):
        self.buf = huge_buffer(nbytes)
        self.used = 0

    def take(self, int64_t nbytes):
        cdef int64_t lo = self.used
        if lo + nbytes > self.buf.shape[0]:
            raise MemoryError(f"weight arena: {lo + nbytes} bytes asked of {self.buf.shape[0]}")
        self.used = lo + (nbytes + 63) // 64 * 64
        return self.buf[lo:lo + nbytes]


def _arena_bytes(w, layers):
    """Bytes an arena needs for the head and every matrix (2-d array or block tensor) in the layers, each
    rounded up to 64."""
    cdef int64_t total = 0
    for a in [w.get("lm_head")] + [a for lw in layers for a in lw.values()]:
        a = a.data if hasattr(a, "ggml_type") else a
        if isinstance(a, np.ndarray) and a.ndim == 2:
            total += (a.nbytes + 63) // 64 * 64
    return total


def _arena_copy(arena, a):
    """`a` copied into the arena (same dtype and shape); the file pages `a` viewed are dropped."""
    copy = arena.take(a.nbytes).view(a.dtype).reshape(a.shape)
    np.copyto(copy, a)
    if a.flags.c_contiguous:
        _drop_file_pages(a)
    return copy


cdef int64_t _tensor_bytes(const ff_tensor *t):
    """The bytes of a weight matrix (0 if unset)."""
    if t.data == NULL:
        return 0
    if t.dtype == FF_DT_F32:
        return 4 * t.rows * t.cols
    return ff_qtype_row_bytes(t.dtype & ~FF_QT_R16, t.cols) * t.rows


cdef int64_t _stream_bytes(const ff_model *m):
    """The bytes of every weight matrix of m (the token table aside, of which a step reads a row)."""
    cdef int64_t n = _tensor_bytes(&m.lm_head)
    cdef const ff_layer *ly
    for i in range(m.n_layers):
        ly = &m.layers[i]
        n += _tensor_bytes(&ly.wq) + _tensor_bytes(&ly.wk) + _tensor_bytes(&ly.wv) + _tensor_bytes(&ly.wo)
        n += _tensor_bytes(&ly.w_gate) + _tensor_bytes(&ly.w_up) + _tensor_bytes(&ly.w_down)
    return n


cdef int _tensor(ff_tensor *t, object keep, object arr, tuple shape, str name, object arena=None,
                 object holder=None, object key=None) except -1:
    """A weight matrix: float32 array, or a QuantizedTensor in a block format the linear kernels take.

    With an arena the matrix is copied into it and holder[key] is replaced by the copy (so the original can be
    freed, and its file pages are dropped); an r16 repack is written into the arena instead."""
    cdef const unsigned char[:, ::1] raw
    t.rows = shape[0]
    t.cols = shape[1]
    if isinstance(arr, np.ndarray):
        if arena is not None and arr.dtype == np.float32 and arr.shape == shape:
            arr = holder[key] = _arena_copy(arena, arr)
        t.data = _wptr(keep, arr, shape, name)
        t.dtype = FF_DT_F32
        return 0
    if not hasattr(arr, "ggml_type") or not ff_qtype_has(arr.ggml_type, FF_QF_LINEAR):
        raise TypeError(f"{name} must be a float32 array or a {_LINEAR_QTYPES} QuantizedTensor, got {arr!r}")
    if tuple(arr.shape) != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    t.dtype = arr.ggml_type
    if ff_qtype_has(arr.ggml_type, FF_QF_R16) and shape[0] % 16 == 0 and ff_qrepack_r16_pays():
        # an owned copy in the layout the vnni decode kernels read fastest (the same number of bytes);
        # holder[key] keeps the ggml layout (save_gguf writes it), its file pages dropped
        out = None if arena is None else arena.take(arr.data.nbytes).reshape(arr.data.shape)
        packed = repack_r16(arr.data, arr.ggml_type, shape[1], out=out)
        _drop_file_pages(arr.data)
        keep.append(packed)
        t.dtype |= FF_QT_R16
    else:
        if arena is not None:
            arr = holder[key] = type(arr)(_arena_copy(arena, arr.data), arr.qtype, arr.shape)
        packed = arr.data
    keep.append(arr)
    raw = packed
    t.data = &raw[0, 0]
    return 0


def _drop_file_pages(a):
    """Let the kernel unmap the resident pages of `a` if it views a read-only file mmap (what GGUF files give):
    they are re-read from the file on the next touch, so the copy above does not double the resident size."""
    import mmap

    b = a
    while isinstance(b, np.ndarray) and b.base is not None:
        b = b.base
    if isinstance(b, memoryview):
        b = b.obj
    if not isinstance(b, mmap.mmap) or not memoryview(b).readonly or not hasattr(b, "madvise"):
        return
    start = a.ctypes.data - np.frombuffer(b, np.uint8).ctypes.data
    lo = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside a only
    hi = (start + a.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if hi > lo:
        b.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


# the forward pass's switches by name -> their C enums
NORM_KINDS = {"rms": FF_NORM_RMS, "layer": FF_NORM_LAYER}
ACT_KINDS = {"silu": FF_ACT_SILU, "gelu_tanh": FF_ACT_GELU_TANH, "gelu_erf": FF_ACT_GELU_ERF}  # silu: gated
ROPE_KINDS = {"none": FF_ROPE_NONE, "halves": FF_ROPE_HALVES, "interleaved": FF_ROPE_INTERLEAVED}


cdef class ModelCore:
    """The C view of a loaded model: config numbers and weight pointers (the arrays are kept alive here)."""
    cdef ff_model m
    cdef ff_layer *c_layers
    cdef list keep
    cdef readonly dict dims
    cdef readonly dict weights      # name -> array the model runs on (the hugepages copy where one was made)
    cdef readonly list layers       # per layer: name -> array, as weights
    cdef readonly bint hugepages

    def __cinit__(self):
        self.c_layers = NULL
        self.keep = []

    def __dealloc__(self):
        free(self.c_layers)

    @property
    def stream_bytes(self):
        """The bytes of the weight matrices a decode step reads (the token table aside): the decode kernels
        prefetch ahead when this exceeds the threshold of fastformer._core.decode_prefetch()."""
        return self.m.stream_bytes

    def __init__(self, dict cfg, dict w, list layers, bint hugepages=False):
        """cfg: dimensions plus the named kinds norm ("rms" | "layer"), act ("silu" | "gelu_tanh") and rope
        ("interleaved" | "halves" | "none"). hugepages: copy every weight matrix into one huge_buffer arena (the
        originals' file pages are dropped); otherwise the arrays are used in place. The dicts given are not
        changed: `weights` / `layers` hold what the model runs on."""
        cdef int64_t L = cfg["n_layers"], d = cfg["d"], nh = cfg["n_heads"], nkv = cfg["n_kv_heads"]
        cdef int64_t hd = cfg["head_dim"], f = cfg["d_ff"], V = cfg["vocab"], ctx = cfg["max_ctx"]
        if min(L, d, nh, nkv, hd, f, V, ctx) <= 0 or nh % nkv or len(layers) != L:
            raise ValueError(f"invalid model dimensions {cfg}")
        if cfg["norm"] not in NORM_KINDS or cfg["act"] not in ACT_KINDS or cfg["rope"] not in ROPE_KINDS:
            raise ValueError(f"unsupported model kinds norm={cfg['norm']!r} act={cfg['act']!r} rope={cfg['rope']!r}")
        if cfg["rope"] != "none" and w.get("rope_inv_freq") is None:
            raise ValueError(f"rope={cfg['rope']!r} needs rope_inv_freq")
        w = dict(w)
        layers = [dict(lw) for lw in layers]
        self.weights, self.layers = w, layers
        self.dims = dict(cfg)
        self.hugepages = hugepages
        self.m.norm = NORM_KINDS[cfg["norm"]]
        self.m.act = ACT_KINDS[cfg["act"]]
        self.m.rope = ROPE_KINDS[cfg["rope"]]
        self.m.n_layers, self.m.d, self.m.n_heads, self.m.n_kv_heads = L, d, nh, nkv
        self.m.head_dim, self.m.d_ff, self.m.vocab, self.m.max_ctx = hd, f, V, ctx
        self.m.eps = cfg["eps"]
        self.m.window = cfg["window"]
        k = self.keep
        arena = _Arena(_arena_bytes(w, layers)) if hugepages else None
        tied = w.get("lm_head") is w.get("tok_emb")
        _tensor(&self.m.lm_head, k, w["lm_head"], (V, d), "lm_head", arena, w, "lm_head")
        if tied:  # one copy serves both
            w["tok_emb"] = w["lm_head"]
        te = w["tok_emb"]
        cdef const unsigned char[:, ::1] te_raw
        if hasattr(te, "ggml_type"):  # a block-format table stays so: one row is dequantized per token
            if not ff_qtype_has(te.ggml_type, FF_QF_LINEAR) or tuple(te.shape) != (V, d):
                raise ValueError(f"token embeddings: expected a ({V}, {d}) {_LINEAR_QTYPES} table, got {te!r}")
            te_raw = te.data
            k.append(te)
            self.m.tok_emb = NULL
            self.m.tok_emb_q = &te_raw[0, 0]
            self.m.tok_emb_qtype = te.ggml_type
        else:
            self.m.tok_emb = _wptr(k, te, (V, d), "token embeddings")
        self.m.pos_emb = _wptr(k, w.get("pos_emb"), (ctx, d), "position embeddings")
        tt = w.get("type_emb")  # bert: row 0 (token type 0) is added to every embedding
        self.m.type_emb = NULL if tt is None else _wptr(k, tt, (len(tt), d), "token type embeddings")
        self.m.norm_w = _wptr(k, w["norm_w"], (d,), "final norm weight")
        self.m.norm_b = _wptr(k, w.get("norm_b"), (d,), "final norm bias")
        rd = cfg.get("rope_dim") or hd
        if rd % 2 or rd > hd or rd < 2:
            raise ValueError(f"rope_dim {rd} must be even, >= 2 and at most head_dim {hd}")
        self.m.rope_dim = rd
        self.m.rope_attn_factor = cfg.get("rope_attn_factor", 1.0)
        self.m.rope_inv_freq = _wptr(k, w.get("rope_inv_freq"), (rd // 2,), "rope inv_freq")
        self.m.rope_inv_freq_long = _wptr(k, w.get("rope_inv_freq_long"), (rd // 2,), "rope inv_freq_long")
        # per layer: sliding-window span and whether it rotates by the sliding layers' own set (gemma3)
        windows = [int(x) for x in cfg.get("windows") or [cfg["window"]] * L]
        sliding = [bool(x) for x in cfg.get("sliding") or [False] * L]
        if len(windows) != L or len(sliding) != L or min(windows) < 0:
            raise ValueError(f"windows / sliding must list {L} layers (windows >= 0)")
        cdef const float *local_inv = _wptr(k, w.get("rope_inv_freq_local"), (rd // 2,), "rope inv_freq_local")
        for name in ("emb_scale", "attn_scale", "attn_softcap", "final_softcap"):
            if not (cfg.get(name, 0.0) >= 0.0 and math.isfinite(cfg.get(name, 0.0))):
                raise ValueError(f"{name} must be a finite number >= 0, got {cfg[name]!r}")
        self.m.emb_scale = cfg.get("emb_scale", 0.0)
        self.m.attn_scale = cfg.get("attn_scale", 0.0)
        self.m.attn_softcap = cfg.get("attn_softcap", 0.0)
        self.m.final_softcap = cfg.get("final_softcap", 0.0)
        self.c_layers = <ff_layer *>calloc(L, sizeof(ff_layer))
        if self.c_layers == NULL:
            raise MemoryError()
        cdef ff_layer *ly
        for i, lw in enumerate(layers):
            ly = &self.c_layers[i]
            p = f"layer {i} "
            ly.attn_norm_w = _wptr(k, lw["attn_norm_w"], (d,), p + "attention norm weight")
            ly.attn_norm_b = _wptr(k, lw.get("attn_norm_b"), (d,), p + "attention norm bias")
            _tensor(&ly.wq, k, lw["wq"], (nh * hd, d), p + "q projection", arena, lw, "wq")
            _tensor(&ly.wk, k, lw["wk"], (nkv * hd, d), p + "k projection", arena, lw, "wk")
            _tensor(&ly.wv, k, lw["wv"], (nkv * hd, d), p + "v projection", arena, lw, "wv")
            _tensor(&ly.wo, k, lw["wo"], (d, nh * hd), p + "o projection", arena, lw, "wo")
            ly.bq = _wptr(k, lw.get("bq"), (nh * hd,), p + "q bias")
            ly.bk = _wptr(k, lw.get("bk"), (nkv * hd,), p + "k bias")
            ly.bv = _wptr(k, lw.get("bv"), (nkv * hd,), p + "v bias")
            ly.bo = _wptr(k, lw.get("bo"), (d,), p + "o bias")
            ly.ffn_norm_w = _wptr(k, lw["ffn_norm_w"], (d,), p + "mlp norm weight")
            ly.ffn_norm_b = _wptr(k, lw.get("ffn_norm_b"), (d,), p + "mlp norm bias")
            if lw.get("w_gate") is not None:
                _tensor(&ly.w_gate, k, lw["w_gate"], (f, d), p + "gate projection", arena, lw, "w_gate")
            _tensor(&ly.w_up, k, lw["w_up"], (f, d), p + "up projection", arena, lw, "w_up")
            _tensor(&ly.w_down, k, lw["w_down"], (d, f), p + "down projection", arena, lw, "w_down")
            ly.b_up = _wptr(k, lw.get("b_up"), (f,), p + "up bias")
            ly.b_down = _wptr(k, lw.get("b_down"), (d,), p + "down bias")
            ly.q_norm_w = _wptr(k, lw.get("q_norm_w"), (hd,), p + "q norm weight")
            ly.k_norm_w = _wptr(k, lw.get("k_norm_w"), (hd,), p + "k norm weight")
            ly.attn_post_norm_w = _wptr(k, lw.get("attn_post_norm_w"), (d,), p + "attention post-norm weight")
            ly.ffn_post_norm_w = _wptr(k, lw.get("ffn_post_norm_w"), (d,), p + "mlp post-norm weight")
            ly.window = windows[i]
            ly.rope_inv_freq = local_inv if sliding[i] else NULL
        if self.m.act == FF_ACT_SILU and any(lw.get("w_gate") is None for lw in layers):
            raise ValueError("a gated (silu) mlp needs a gate projection in every layer")
        self.m.layers = self.c_layers
        # the bytes a decode step streams, which turn the decode kernels' prefetch on (ff_quant_ahead_for)
        self.m.stream_bytes = _stream_bytes(&self.m)


cdef class Session:
    """One sequence's kv cache and scratch; forward() runs new tokens and returns their logits."""
    cdef ff_session s
    cdef ModelCore core
    cdef readonly object k_cache, v_cache  # (n_layers, n_kv_heads, capacity, row): see kv_dtype
    cdef readonly str kv_dtype
    cdef readonly object scratch  # uint8 (ff_session_bytes,): every scratch buffer of the forward pass

    def __init__(self, ModelCore core, int64_t capacity, int64_t max_t, str kv_dtype="f32"):
        """kv_dtype: how the cache stores each key and value row of head_dim values: "f32", "f16" (float16
        arrays) or "q8_0" (ggml q8_0 blocks along the head as uint8, head_dim % 32 == 0)."""
        cdef ff_model *m = &core.m
        if capacity < 1 or capacity > m.max_ctx:
            raise ValueError(f"session capacity {capacity} must be between 1 and the context size {m.max_ctx}")
        if max_t < 1:
            raise ValueError(f"max_t must be positive, got {max_t}")
        rb = kv_row_bytes(kv_dtype, m.head_dim)
        self.core = core
        self.kv_dtype = kv_dtype
        kt, dtype = KV_DTYPES[kv_dtype][:2]
        shape = (m.n_layers, m.n_kv_heads, capacity, rb // np.dtype(dtype).itemsize)
        cache_bytes = m.n_layers * m.n_kv_heads * capacity * rb
        if core.hugepages and cache_bytes >= _HUGE_PAGE:
            self.k_cache = huge_buffer(cache_bytes).view(dtype).reshape(shape)
            self.v_cache = huge_buffer(cache_bytes).view(dtype).reshape(shape)
        else:
            self.k_cache = np.zeros(shape, dtype=dtype)
            self.v_cache = np.zeros(shape, dtype=dtype)
        # C sizes the scratch from the model's dimensions and carves its buffers out of this one array
        self.scratch = np.empty(ff_session_bytes(m, max_t), dtype=np.uint8)
        cdef uint8_t[::1] buf = self.scratch
        cdef uint8_t[::1] kc = self.k_cache.reshape(-1).view(np.uint8)
        cdef uint8_t[::1] vc = self.v_cache.reshape(-1).view(np.uint8)
        ff_session_init(&self.s, m, &buf[0], &kc[0], &vc[0], kt, capacity, max_t)

    @property
    def n_past(self):
        return self.s.n_past

    @property
    def rope_long(self):
        """Whether rope uses the model's long set of frequencies (longrope); settable before the first token."""
        return bool(self.s.rope_long)

    @rope_long.setter
    def rope_long(self, bint value):
        if self.s.n_past:
            raise ValueError("rope_long can only be set before the first token")
        if value and self.core.m.rope_inv_freq_long == NULL:
            raise ValueError("this model has one set of rope frequencies")
        self.s.rope_long = value

    def copy_prefix(self, Session src, int64_t n):
        """Take the first n cache positions of src (a session of the same model) into this empty session."""
        if src.core is not self.core:
            raise ValueError("copy_prefix: the sessions belong to different models")
        if self.s.n_past:
            raise ValueError("copy_prefix needs an empty session")
        if n < 0 or n > src.s.n_past or n > self.s.cap:
            raise ValueError(f"copy_prefix: {n} positions, the source has {src.s.n_past}, capacity {self.s.cap}")
        if bool(src.s.rope_long) != bool(self.s.rope_long):
            raise ValueError("copy_prefix: the sessions rotate with different rope frequencies")
        if src.kv_dtype != self.kv_dtype:
            raise ValueError(f"copy_prefix: a {src.kv_dtype} cache into a {self.kv_dtype} one")
        self.k_cache[:, :, :n] = src.k_cache[:, :, :n]
        self.v_cache[:, :, :n] = src.v_cache[:, :, :n]
        self.s.n_past = n

    @property
    def capacity(self):
        return self.s.cap

    @property
    def max_t(self):
        return self.s.max_t

    def forward(self, ids, bint all_logits=False, int path=0, out=None):
        """Run ids (int32, at most max_t) at the next positions; logits (len(ids) or 1, vocab) float32.

        path picks the linears' kernels: 0 by row count, 1 the few-rows kernels, 2 the blocked ones (PATH_*).
        out, a C-contiguous float32 array of that shape, takes the logits instead of a new array (a generation
        loop that reads each step's logits before the next step saves an allocation and its page faults)."""
        cdef const int32_t[::1] ids_ = np.ascontiguousarray(ids, dtype=np.int32)
        cdef int64_t t = ids_.shape[0], V = self.core.m.vocab
        if t < 1 or t > self.s.max_t:
            raise ValueError(f"forward takes 1 to {self.s.max_t} tokens, got {t}")
        if path < 0 or path > 2:
            raise ValueError(f"path must be 0, 1 or 2, got {path}")
        if self.s.n_past + t > self.s.cap:
            raise ValueError(f"{self.s.n_past} + {t} tokens exceed the session capacity of {self.s.cap}")
        arr = np.asarray(ids_)
        if arr.min() < 0 or arr.max() >= V:
            raise ValueError(f"token ids must be in [0, {V}), got min {arr.min()} max {arr.max()}")
        shape = (t if all_logits else 1, V)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape
              or not out.flags.c_contiguous or not out.flags.writeable or not out.flags.aligned):
            raise ValueError(f"out must be a writeable C-contiguous float32 array of shape {shape}, got "
                             f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
        cdef float[::1] o_ = np.asarray(out).reshape(-1)  # a subclass (np.matrix) as a plain array
        cdef int rc
        with nogil:
            rc = ff_model_forward_path(&self.core.m, &self.s, &ids_[0], t, &o_[0], all_logits, path)
        if rc == FF_ENOMEM:
            raise MemoryError("model forward: out of memory for scratch buffers")
        if rc != FF_OK:
            raise ValueError("model forward: a weight has an unsupported storage type")
        return out


PATH_AUTO, PATH_ROWS, PATH_PANELS = 0, 1, 2


def forward_batch(Session scratch, list sessions, ids, counts, paths):
    """One forward step over several sessions of one model: session i takes the next counts[i] of ids (in
    order) on kernel path paths[i]; scratch (a Session of the same model, max_t >= len(ids)) holds the step's
    buffers. Returns the last row's logits of each session (len(sessions), vocab) float32. A row's bits do not
    depend on the other sessions in the step or on the thread count."""
    cdef int n = len(sessions), i
    cdef const int32_t[::1] ids_ = np.ascontiguousarray(ids, dtype=np.int32)
    cdef int64_t total = 0, V = scratch.core.m.vocab
    if n < 1 or n > FF_BATCH_MAX:
        raise ValueError(f"forward_batch takes 1 to {FF_BATCH_MAX} sessions, got {n}")
    if len(counts) != n or len(paths) != n:
        raise ValueError("counts and paths must have one entry per session")
    cdef ff_seq *seqs = <ff_seq *>PyMem_Malloc(n * sizeof(ff_seq))
    if seqs == NULL:
        raise MemoryError()
    cdef Session s
    try:
        seen = set()
        for i in range(n):
            s = sessions[i]
            if s.core is not scratch.core:
                raise ValueError(f"session {i} belongs to another model")
            if id(s) in seen or s is scratch:
                raise ValueError(f"session {i} appears twice in one step")
            seen.add(id(s))
            c, p = int(counts[i]), int(paths[i])
            if c < 1 or s.s.n_past + c > s.s.cap:
                raise ValueError(f"session {i}: {s.s.n_past} + {c} tokens exceed its capacity of {s.s.cap}")
            if p < 0 or p > 2:
                raise ValueError(f"paths[{i}] must be 0, 1 or 2, got {p}")
            seqs[i].s = &s.s
            seqs[i].t = c
            seqs[i].path = p
            seqs[i].all_logits = 0
            total += c
        if total != ids_.shape[0] or total > scratch.s.max_t:
            raise ValueError(f"counts sum to {total}; ids has {ids_.shape[0]}, the scratch takes {scratch.s.max_t}")
        arr = np.asarray(ids_)
        if arr.min() < 0 or arr.max() >= V:
            raise ValueError(f"token ids must be in [0, {V}), got min {arr.min()} max {arr.max()}")
        out = np.empty((n, V), dtype=np.float32)
        rc = _forward_batch(scratch, seqs, n, ids_, out)
    finally:
        PyMem_Free(seqs)
    if rc == FF_ENOMEM:
        raise MemoryError("model forward: out of memory for scratch buffers")
    if rc != FF_OK:
        raise ValueError("model forward: a weight has an unsupported storage type")
    return out


cdef int _forward_batch(Session scratch, ff_seq *seqs, int n, const int32_t[::1] ids, out) except -1:
    cdef float[::1] o_ = out.reshape(-1)
    cdef int rc
    with nogil:
        rc = ff_model_forward_batch(&scratch.core.m, &scratch.s, seqs, n, &ids[0], &o_[0])
    return rc
