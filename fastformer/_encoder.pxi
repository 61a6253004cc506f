# included by _core.pyx: the encoder forward pass over a ModelCore (fastformer.encoder batches and pools).


def encoder_forward(ModelCore core, ids, lens):
    """Last hidden states (sum(lens), d) float32 of sequences ids (int32, laid end to end) of lengths lens."""
    cdef const int32_t[::1] ids_ = np.ascontiguousarray(ids, dtype=np.int32)
    cdef const int64_t[::1] lens_ = np.ascontiguousarray(lens, dtype=np.int64)
    cdef ff_model *m = &core.m
    cdef int64_t n_seq = lens_.shape[0], rows = ids_.shape[0]
    if m.act != FF_ACT_GELU_ERF or m.norm != FF_NORM_LAYER:
        raise ValueError("encoder_forward needs an encoder (layer norm, gelu erf) model core")
    arr_lens = np.asarray(lens_)
    if n_seq < 1 or arr_lens.min() < 1 or arr_lens.max() > m.max_ctx:
        raise ValueError(f"sequence lengths must be in [1, {m.max_ctx}], got {arr_lens.tolist()[:8]}")
    if arr_lens.sum() != rows:
        raise ValueError(f"{rows} ids for sequence lengths summing to {arr_lens.sum()}")
    arr = np.asarray(ids_)
    if arr.min() < 0 or arr.max() >= m.vocab:
        raise ValueError(f"token ids must be in [0, {m.vocab}), got min {arr.min()} max {arr.max()}")
    scratch = np.empty(ff_encoder_bytes(m, rows, arr_lens.max()), dtype=np.uint8)
    out = np.empty((rows, m.d), dtype=np.float32)
    cdef uint8_t[::1] buf = scratch
    cdef float[:, ::1] o_ = out
    cdef int rc
    with nogil:
        rc = ff_encoder_forward(m, &o_[0, 0], &ids_[0], &lens_[0], n_seq, &buf[0])
    if rc == FF_ENOMEM:
        raise MemoryError("encoder forward: out of memory for scratch buffers")
    if rc != FF_OK:
        raise ValueError("encoder forward: a weight has an unsupported storage type")
    return out
