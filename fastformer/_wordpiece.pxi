# included by _core.pyx: the WordPiece encoder (fastformer.wordpiece builds it from tokenizer.json / vocab.txt).

WP_CLEAN, WP_CJK, WP_STRIP_MN = FF_WP_CLEAN, FF_WP_CJK, FF_WP_STRIP_MN


cdef class WordPiece:
    """A WordPiece vocabulary in C: encode(utf-8 bytes) -> token ids, thread-safe, without the GIL."""
    cdef ff_wordpiece *w

    def __cinit__(self, list tokens, int32_t unk, bytes prefix, int64_t max_chars, int flags):
        """tokens: bytes of ids 0..n-1; unk: the unknown token's id; prefix: of pieces after a word's first."""
        cdef int32_t n = len(tokens)
        if n < 1 or not 0 <= unk < n:
            raise ValueError(f"WordPiece: {n} tokens and unknown id {unk}")
        if max_chars < 1:
            raise ValueError(f"WordPiece: max_chars must be >= 1, got {max_chars}")
        off = np.zeros(n + 1, dtype=np.int64)
        off[1:] = np.cumsum([len(t) for t in tokens])
        data = b"".join(tokens) + b"\0"
        cdef const uint8_t[::1] b = data
        cdef const int64_t[::1] o = off
        cdef const uint8_t[::1] p = prefix + b"\0"
        self.w = ff_wordpiece_new(&b[0], &o[0], n, unk, &p[0], len(prefix), max_chars, flags)
        if self.w == NULL:
            raise MemoryError("WordPiece: out of memory")

    def __dealloc__(self):
        ff_wordpiece_free(self.w)

    def token_id(self, bytes s):
        """The id of the token spelled s, or -1."""
        cdef const uint8_t[::1] b = s + b"\0"
        return ff_wordpiece_token_id(self.w, &b[0], len(s))

    def encode(self, bytes text):
        """Token ids (int32 array) of utf-8 text, lower-cased / decomposed already as the normalizer asks."""
        cdef int64_t n = len(text), got
        out = np.empty(max(n, 1), dtype=np.int32)
        cdef int32_t[::1] ids = out
        cdef const uint8_t[::1] b = text + b"\0"
        with nogil:
            got = ff_wordpiece_encode(self.w, &ids[0], &b[0], n)
        if got < 0:
            raise MemoryError("WordPiece.encode: out of memory")
        return out[:got]
