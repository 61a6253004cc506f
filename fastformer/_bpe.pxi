# byte-pair encoding wrappers (included by _core.pyx); fastformer.tokenizer builds the public Tokenizer on them

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, uint8_t, uint32_t

PRETOK_KINDS = {"none": FF_PRETOK_NONE, "gpt2": FF_PRETOK_GPT2, "cl100k": FF_PRETOK_CL100K,
                "o200k": FF_PRETOK_O200K, "llama3": FF_PRETOK_LLAMA3, "qwen2": FF_PRETOK_QWEN2,
                "gpt4o": FF_PRETOK_GPT4O, "tekken": FF_PRETOK_TEKKEN, "gguf-default": FF_PRETOK_GGUF_DEFAULT,
                "falcon": FF_PRETOK_FALCON, "deepseek-llm": FF_PRETOK_DEEPSEEK_LLM,
                "deepseek-coder": FF_PRETOK_DEEPSEEK_CODER, "digits-gpt2": FF_PRETOK_DIGITS_GPT2}
# what an id is (Bpe's kind argument) and how encode treats a special token's text (its mode argument)
TOKEN_UNUSED, TOKEN_MERGEABLE, TOKEN_SPECIAL = FF_TOKEN_UNUSED, FF_TOKEN_MERGEABLE, FF_TOKEN_SPECIAL
BPE_PLAIN, BPE_ALLOWED, BPE_DISALLOWED = FF_BPE_PLAIN, FF_BPE_ALLOWED, FF_BPE_DISALLOWED


def unicode_version():
    """The Unicode version of the category table the split scanners use."""
    return ff_unicode_version().decode()


def unicode_categories():
    """The scanners' category of every code point (0x110000,) uint8: 0 other, 1 Lu, 2 Ll, 3 Lt, 4 Lm, 5 Lo,
    6 M, 7 N, 8 whitespace other than \\r \\n, 9 \\r or \\n, 10 P."""
    out = np.empty(0x110000, dtype=np.uint8)
    cdef uint8_t[::1] o = out
    cdef uint32_t cp
    for cp in range(0x110000):
        o[cp] = ff_unicode_category(cp)
    return out


cdef const char *_utf8(str text, Py_ssize_t *n, list keep) except NULL:
    """text as utf-8; lone surrogates become U+FFFD (as tiktoken does), the fixed str is kept alive in `keep`."""
    try:
        return PyUnicode_AsUTF8AndSize(text, n)
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        keep.append(text)
        return PyUnicode_AsUTF8AndSize(text, n)


cdef list _id_list(const int32_t *ids, int64_t n):
    cdef list out = PyList_New(n)
    cdef int64_t k
    for k in range(n):
        v = PyLong_FromLong(ids[k])
        Py_INCREF(v)
        PyList_SET_ITEM(out, k, v)
    return out


cdef bint _offsets_ok(const int64_t[::1] off, Py_ssize_t size):
    """off starts at 0, never decreases and ends within size bytes."""
    cdef Py_ssize_t k, m = off.shape[0]
    if m == 0 or off[0] != 0 or off[m - 1] > size:
        return False
    for k in range(1, m):
        if off[k] < off[k - 1]:
            return False
    return True


def pretok_split(str text, str kind):
    """The pieces of `text` under a split scanner (a key of PRETOK_KINDS other than "none")."""
    cdef Py_ssize_t n
    cdef list keep = []
    cdef const char *p = _utf8(text, &n, keep)
    cdef int k = PRETOK_KINDS[kind]
    ends = np.empty(max(n, 1), dtype=np.int64)
    cdef int64_t[::1] e = ends
    cdef int64_t m
    with nogil:
        m = ff_pretok_split(&e[0], <const uint8_t *>p, n, k)
    data = p[:n]
    out, start = [], 0
    for j in range(m):
        out.append(data[start:e[j]].decode("utf-8"))
        start = e[j]
    return out


cdef class Bpe:
    """A built BPE vocabulary in C (see ff_bpe_* in fastformer.h); fastformer.Tokenizer drives it.

    Construct with the merge-space bytes of every id, then call merges_*, config, specials and
    set_decode once each (in that order) before encoding.
    """
    cdef ff_bpe *b
    cdef readonly int32_t n
    cdef readonly int32_t n_special

    def __cinit__(self, const uint8_t[::1] data, const int64_t[::1] off, const uint8_t[::1] kind):
        cdef int32_t n = kind.shape[0]
        if off.shape[0] != n + 1 or n == 0 or not _offsets_ok(off, data.shape[0]):
            raise ValueError(f"Bpe: {n} ids need {n + 1} offsets (rising from 0, within {data.shape[0]} bytes), "
                             f"got {off.shape[0]}")
        cdef uint8_t dummy = 0
        self.b = ff_bpe_new(&data[0] if data.shape[0] else &dummy, &off[0], &kind[0], n)
        if self.b == NULL:
            raise MemoryError("Bpe: out of memory")
        self.n = n

    def __dealloc__(self):
        ff_bpe_free(self.b)

    def merges_list(self, const int32_t[::1] left, const int32_t[::1] right):
        """Merge i joins (left[i], right[i]) with rank i; returns -1, or the index of a merge whose result is
        not a token."""
        if left.shape[0] != right.shape[0]:
            raise ValueError(f"merges_list: left has {left.shape[0]} ids, right {right.shape[0]}")
        cdef int64_t r, m = left.shape[0]
        for a in (np.asarray(left), np.asarray(right)):
            if m and (a.min() < 0 or a.max() >= self.n):
                raise ValueError(f"merges_list: ids must lie in [0, {self.n})")
        cdef int32_t dummy = 0
        with nogil:
            r = ff_bpe_merges_list(self.b, &left[0] if m else &dummy, &right[0] if m else &dummy, m)
        if r == FF_ENOMEM:
            raise MemoryError("Bpe: out of memory")
        return -1 if r == 0 else -1 - r

    def merges_ranked(self, const int32_t[::1] rank):
        """Every split of token t into two tokens merges to t with rank[t] (< 0: never)."""
        if rank.shape[0] != self.n:
            raise ValueError(f"merges_ranked: rank has shape ({rank.shape[0]},), expected ({self.n},)")
        cdef int r
        with nogil:
            r = ff_bpe_merges_ranked(self.b, &rank[0])
        if r != FF_OK:
            raise MemoryError("Bpe: out of memory")

    def config(self, str pretok, *, bint by_char=False, byte_id=None, int unk_id=-1, bint fuse_unk=False,
               bint whole_first=True):
        """Split scanner, initial symbols (bytes, or characters with byte_id fallback / unk_id) and whether a
        piece that is a token is taken whole."""
        cdef const int32_t[::1] bid
        cdef const int32_t *bp = NULL
        if byte_id is not None:
            bid = np.ascontiguousarray(byte_id, dtype=np.int32)
            # byte-level vocabularies may miss a byte (-1: a symbol that merges with nothing and is dropped)
            if bid.shape[0] != 256 or np.min(bid) < (0 if by_char else -1) or np.max(bid) >= self.n:
                raise ValueError("config: byte_id must hold 256 valid ids (-1 allowed for byte-level symbols)")
            bp = &bid[0]
        elif not by_char:
            raise ValueError("config: byte-level symbols need byte_id")
        if unk_id >= self.n:
            raise ValueError(f"config: unk_id {unk_id} is out of range")
        cdef int r, k = PRETOK_KINDS[pretok]
        with nogil:
            r = ff_bpe_config(self.b, k, by_char, bp, unk_id, fuse_unk, whole_first)
        if r != FF_OK:
            raise MemoryError("Bpe: out of memory")

    def specials(self, const int32_t[::1] ids):
        """Ids whose bytes encode() looks for in the text, indexed by position in `ids` in its mode argument."""
        cdef int32_t dummy = 0
        if ids.shape[0] and (np.min(ids) < 0 or np.max(ids) >= self.n):
            raise ValueError(f"specials: ids must lie in [0, {self.n})")
        if ff_bpe_specials(self.b, &ids[0] if ids.shape[0] else &dummy, ids.shape[0]) != FF_OK:
            raise MemoryError("Bpe: out of memory")
        self.n_special = ids.shape[0]

    def set_decode(self, const uint8_t[::1] data, const int64_t[::1] off):
        """Decoded bytes of every id (by default the merge-space bytes)."""
        cdef uint8_t dummy = 0
        if off.shape[0] != self.n + 1 or not _offsets_ok(off, data.shape[0]):
            raise ValueError(f"set_decode: expected {self.n + 1} offsets (rising from 0, within {data.shape[0]} bytes)")
        if ff_bpe_set_decode(self.b, &data[0] if data.shape[0] else &dummy, &off[0]) != FF_OK:
            raise MemoryError("Bpe: out of memory")

    def token_id(self, bytes piece):
        """Id of the mergeable token spelled `piece`, or -1."""
        return ff_bpe_token_id(self.b, <const uint8_t *>PyBytes_AS_STRING(piece), len(piece))

    cdef const uint8_t *_mode(self, mode) except? NULL:
        if mode is None:
            return NULL
        if len(mode) != self.n_special:
            raise ValueError(f"mode must have {self.n_special} entries, got {len(mode)}")
        return <const uint8_t *>PyBytes_AS_STRING(mode) if self.n_special else NULL

    def encode(self, str text, bytes mode=None):
        """Ids of text; mode[k] for special k: BPE_PLAIN, BPE_ALLOWED or BPE_DISALLOWED. Returns a list of ids,
        or the int k of a disallowed special found in the text."""
        cdef Py_ssize_t n
        cdef list keep = []
        cdef const char *p = _utf8(text, &n, keep)
        return self._encode(<const uint8_t *>p, n, self._mode(mode))

    def encode_utf8(self, const uint8_t[::1] data, bytes mode=None):
        """encode() of text given as utf-8 bytes."""
        cdef uint8_t dummy = 0
        return self._encode(&data[0] if data.shape[0] else &dummy, data.shape[0], self._mode(mode))

    cdef object _encode(self, const uint8_t *p, int64_t n, const uint8_t *mode):
        cdef int32_t stack[256]
        cdef int32_t *ids = &stack[0] if n <= 256 else <int32_t *>PyMem_Malloc(sizeof(int32_t) * n)
        cdef int64_t m
        if ids == NULL:
            raise MemoryError("encode: out of memory")
        try:
            with nogil:
                m = ff_bpe_encode(self.b, ids, p, n, mode)
            if m == -1:
                raise MemoryError("encode: out of memory")
            return _id_list(ids, m) if m >= 0 else int(-2 - m)
        finally:
            if ids != &stack[0]:
                PyMem_Free(ids)

    def encode_pieces(self, const uint8_t[::1] data, const int64_t[::1] starts, const int64_t[::1] ends):
        """Ids of utf-8 bytes already split into pieces data[starts[k]:ends[k]]."""
        cdef int64_t k, m, total = 0, np_ = starts.shape[0]
        if ends.shape[0] != np_:
            raise ValueError(f"encode_pieces: {np_} starts but {ends.shape[0]} ends")
        for k in range(np_):
            if not 0 <= starts[k] <= ends[k] <= data.shape[0]:
                raise ValueError(f"encode_pieces: piece {k} [{starts[k]}, {ends[k]}) is outside the text")
            total += ends[k] - starts[k]
        if total == 0:
            return []
        out = np.empty(total, dtype=np.int32)
        cdef int32_t[::1] o = out
        with nogil:
            m = ff_bpe_encode_pieces(self.b, &o[0], &data[0], &starts[0], &ends[0], np_)
        if m < 0:
            raise MemoryError("encode: out of memory")
        return _id_list(&o[0], m)

    def encode_batch(self, list texts, bytes mode, int num_threads):
        """encode() of every str in texts on up to num_threads threads; an int entry k is a disallowed special."""
        cdef Py_ssize_t i, nt = len(texts), n
        cdef list keep = []
        cdef const uint8_t *md = self._mode(mode)
        ptrs = np.empty(max(nt, 1), dtype=np.uintp)
        lens = np.empty(max(nt, 1), dtype=np.int64)
        starts = np.zeros(max(nt, 1), dtype=np.int64)
        counts = np.empty(max(nt, 1), dtype=np.int64)
        cdef size_t[::1] pv = ptrs
        cdef int64_t[::1] lv = lens, sv = starts, cv = counts
        cdef int64_t total = 0
        for i in range(nt):
            t = texts[i]
            if not isinstance(t, str):
                raise TypeError(f"encode_batch: texts[{i}] is {type(t).__name__}, expected str")
            pv[i] = <size_t>_utf8(t, &n, keep)
            lv[i] = n
            sv[i] = total
            total += n
        out = np.empty(max(total, 1), dtype=np.int32)
        cdef int32_t[::1] o = out
        with nogil:
            ff_bpe_encode_batch(self.b, &o[0], &sv[0], &cv[0], <const uint8_t *const *>&pv[0], &lv[0], nt, md,
                                num_threads)
        res = []
        for i in range(nt):
            if cv[i] == -1:
                raise MemoryError("encode_batch: out of memory")
            res.append(_id_list(&o[sv[i]], cv[i]) if cv[i] >= 0 else int(-2 - cv[i]))
        return res

    def decode(self, ids):
        """The decoded bytes of a sequence of ids; raises ValueError naming the first invalid id."""
        cdef Py_ssize_t k, n = len(ids)
        cdef int32_t stack[256]
        cdef int32_t *buf = &stack[0] if n <= 256 else <int32_t *>PyMem_Malloc(sizeof(int32_t) * n)
        cdef int64_t total
        cdef uint8_t *dst
        if buf == NULL:
            raise MemoryError("decode: out of memory")
        try:
            for k, x in enumerate(ids):
                if not 0 <= x < self.n:
                    raise ValueError(f"decode: token id {x} at position {k} is out of range [0, {self.n})")
                buf[k] = x
            total = ff_bpe_decode_len(self.b, buf, n)
            if total < 0:
                raise ValueError(f"decode: token id {buf[-1 - total]} at position {-1 - total} is not in the "
                                 "vocabulary")
            out = PyBytes_FromStringAndSize(NULL, total)
            dst = <uint8_t *>PyBytes_AS_STRING(out)
            with nogil:
                ff_bpe_decode(self.b, dst, buf, n)
            return out
        finally:
            if buf != &stack[0]:
                PyMem_Free(buf)
