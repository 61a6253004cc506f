# mirrors csrc/fastformer.h line for line, in its order
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "fastformer.h" nogil:
    # status codes
    enum:
        FF_OK
        FF_ENOMEM
        FF_EINVAL

    # cpu: feature detection, the dispatch tables and the int8 dot choice
    enum ff_isa:
        FF_ISA_SCALAR
        FF_ISA_AVX2
        FF_ISA_AVX512
        FF_ISA_COUNT
    enum:
        FF_F_COUNT
    int ff_cpu_init()
    int ff_cpu_has(int feature)
    const char *ff_feature_name(int feature)
    const char *ff_isa_name(int isa)
    int ff_isa_usable(int isa)
    int ff_isa_current()
    int ff_isa_select(int isa)
    int ff_qtype_kernels(int isa, int qtype)
    int ff_quant_set_vnni(int on)
    int ff_quant_vnni()
    enum:
        FF_DOT256_MADDUBS
        FF_DOT256_AVXVNNI
        FF_DOT256_VNNI256
    int ff_quant_set_dot256(int mode)
    int ff_quant_dot256()
    enum:
        FF_AHEAD_MAX
    int ff_quant_set_ahead(int64_t nbytes, int64_t above)
    int64_t ff_quant_ahead()
    int64_t ff_quant_ahead_above()
    int64_t ff_quant_ahead_default()
    int64_t ff_quant_ahead_above_default()
    int64_t ff_quant_ahead_for(int64_t stream)

    # threads
    void ff_set_num_threads(int n)
    int ff_get_num_threads()
    int ff_default_num_threads()
    void ff_read_ahead_stats(int64_t *spans, int64_t *bytes)
    void ff_tail_stats(int64_t *grants, int64_t *rows)
    int64_t ff_qdot_many_calls()
    uint64_t ff_read_sum(const uint64_t *p, int64_t n) nogil
    enum:
        FF_MAX_THREADS

    # matmul
    int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n)
    int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n)

    # norms
    void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n)
    void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows,
                           int64_t n)

    # activations and softmax
    void ff_softmax_f32(float *y, const float *x, int64_t rows, int64_t n)
    int64_t ff_argmax_f32(const float *x, int64_t n) nogil
    void ff_gelu_tanh_f32(float *y, const float *x, int64_t n)
    void ff_gelu_erf_f32(float *y, const float *x, int64_t n)
    void ff_silu_f32(float *y, const float *x, int64_t n)

    # rotary embeddings
    void ff_rope_table_f32(float *cos, float *sin, const int64_t *pos, const float *inv_freq, int64_t t,
                           int64_t half)
    void ff_rope_f32(float *x, const float *cos, const float *sin, int64_t h, int64_t t, int64_t d, int interleaved)

    # attention
    int ff_attention_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv,
                         int64_t tq, int64_t tk, int64_t d, float scale, int causal)
    int ff_attention_kv_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv,
                            int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, int causal)
    int ff_attention_kv_cap_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv,
                                int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap,
                                int causal)
    int ff_attention_cache(float *o, const float *q, const void *k, const void *v, int kv_type, int64_t h,
                           int64_t hkv, int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap,
                           int causal)

    # model forward pass
    enum ff_dtype:
        FF_DT_F32
    ctypedef struct ff_tensor:
        const void *data
        int dtype
        int64_t rows, cols
    enum ff_norm_kind:
        FF_NORM_RMS
        FF_NORM_LAYER
    enum ff_act_kind:
        FF_ACT_SILU
        FF_ACT_GELU_TANH
        FF_ACT_GELU_ERF
    enum ff_rope_kind:
        FF_ROPE_NONE
        FF_ROPE_HALVES
        FF_ROPE_INTERLEAVED
    ctypedef struct ff_layer:
        const float *attn_norm_w
        const float *attn_norm_b
        ff_tensor wq, wk, wv, wo
        const float *bq
        const float *bk
        const float *bv
        const float *bo
        const float *ffn_norm_w
        const float *ffn_norm_b
        ff_tensor w_gate, w_up, w_down
        const float *b_up
        const float *b_down
        const float *q_norm_w
        const float *k_norm_w
        const float *attn_post_norm_w
        const float *ffn_post_norm_w
        int64_t window
        const float *rope_inv_freq
    ctypedef struct ff_model:
        int norm
        int act
        int rope
        int64_t n_layers, d, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_ctx
        float eps
        int64_t window
        const float *tok_emb
        const void *tok_emb_q
        int tok_emb_qtype
        const float *pos_emb
        const float *type_emb
        const float *norm_w
        const float *norm_b
        ff_tensor lm_head
        const float *rope_inv_freq
        const float *rope_inv_freq_long
        int64_t rope_dim
        float rope_attn_factor
        float emb_scale
        float attn_scale
        float attn_softcap
        float final_softcap
        const ff_layer *layers
        int64_t stream_bytes
    ctypedef struct ff_session:
        void *k_cache
        void *v_cache
        int kv_type
        int64_t cap
        int64_t n_past
        int64_t max_t
        int rope_long
        float *x
        float *h
        float *q
        float *att
        float *qt
        float *ot
        float *k
        float *v
        float *f1
        float *f2
        float *cos
        float *sin
    int64_t ff_session_bytes(const ff_model *m, int64_t max_t)
    void ff_session_init(ff_session *s, const ff_model *m, void *buf, void *k_cache, void *v_cache, int kv_type,
                         int64_t cap, int64_t max_t)
    int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                         int all_logits)
    int ff_model_forward_path(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                              int all_logits, int path)
    ctypedef struct ff_seq:
        ff_session *s
        int64_t t
        int path
        int all_logits
    enum: FF_BATCH_MAX
    int ff_model_forward_batch(const ff_model *m, ff_session *b, const ff_seq *seqs, int nseq, const int32_t *ids,
                               float *logits)

    # encoder forward pass
    int64_t ff_encoder_bytes(const ff_model *m, int64_t rows, int64_t max_len)
    int ff_encoder_forward(const ff_model *m, float *out, const int32_t *ids, const int64_t *lens, int64_t n_seq,
                           void *scratch)

    # tokenizer: split scanners and byte-pair encoding
    enum ff_pretok:
        FF_PRETOK_NONE
        FF_PRETOK_GPT2
        FF_PRETOK_CL100K
        FF_PRETOK_O200K
        FF_PRETOK_LLAMA3
        FF_PRETOK_QWEN2
        FF_PRETOK_GPT4O
        FF_PRETOK_TEKKEN
        FF_PRETOK_GGUF_DEFAULT
        FF_PRETOK_FALCON
        FF_PRETOK_DEEPSEEK_LLM
        FF_PRETOK_DEEPSEEK_CODER
        FF_PRETOK_DIGITS_GPT2
        FF_PRETOK_COUNT
    int64_t ff_pretok_split(int64_t *ends, const uint8_t *text, int64_t n, int kind)
    const char *ff_unicode_version()
    int ff_unicode_category(uint32_t cp)

    ctypedef struct ff_bpe:
        pass
    enum:
        FF_TOKEN_UNUSED
        FF_TOKEN_MERGEABLE
        FF_TOKEN_SPECIAL
    enum:
        FF_BPE_PLAIN
        FF_BPE_ALLOWED
        FF_BPE_DISALLOWED
    ff_bpe *ff_bpe_new(const uint8_t *bytes, const int64_t *off, const uint8_t *kind, int32_t n)
    void ff_bpe_free(ff_bpe *b)
    int32_t ff_bpe_token_id(const ff_bpe *b, const uint8_t *bytes, int64_t n)
    int64_t ff_bpe_merges_list(ff_bpe *b, const int32_t *left, const int32_t *right, int64_t n)
    int ff_bpe_merges_ranked(ff_bpe *b, const int32_t *rank)
    int ff_bpe_config(ff_bpe *b, int pretok, int by_char, const int32_t *byte_id, int32_t unk_id, int fuse_unk,
                      int whole_first)
    int ff_bpe_specials(ff_bpe *b, const int32_t *ids, int32_t n)
    int ff_bpe_set_decode(ff_bpe *b, const uint8_t *bytes, const int64_t *off)
    int64_t ff_bpe_encode(const ff_bpe *b, int32_t *ids, const uint8_t *text, int64_t n, const uint8_t *mode)
    int64_t ff_bpe_encode_pieces(const ff_bpe *b, int32_t *ids, const uint8_t *text, const int64_t *starts,
                                 const int64_t *ends, int64_t n_pieces)
    void ff_bpe_encode_batch(const ff_bpe *b, int32_t *ids, const int64_t *starts, int64_t *counts,
                             const uint8_t *const *texts, const int64_t *lens, int64_t n, const uint8_t *mode,
                             int nth)
    int64_t ff_bpe_decode_len(const ff_bpe *b, const int32_t *ids, int64_t n)
    void ff_bpe_decode(const ff_bpe *b, uint8_t *out, const int32_t *ids, int64_t n)

    # tokenizer: WordPiece with BERT's normalizer and pre-tokenizer
    ctypedef struct ff_wordpiece:
        pass
    enum:
        FF_WP_CLEAN
        FF_WP_CJK
        FF_WP_STRIP_MN
    ff_wordpiece *ff_wordpiece_new(const uint8_t *bytes, const int64_t *off, int32_t n, int32_t unk,
                                   const uint8_t *prefix, int64_t plen, int64_t max_chars, int flags)
    void ff_wordpiece_free(ff_wordpiece *w)
    int32_t ff_wordpiece_token_id(const ff_wordpiece *w, const uint8_t *s, int64_t n)
    int64_t ff_wordpiece_encode(const ff_wordpiece *w, int32_t *ids, const uint8_t *text, int64_t n)

    # quantized weights, ggml-compatible
    enum ff_qtype:
        FF_QT_F32
        FF_QT_F16
        FF_QT_Q4_0
        FF_QT_Q4_1
        FF_QT_Q5_0
        FF_QT_Q5_1
        FF_QT_Q8_0
        FF_QT_Q8_1
        FF_QT_Q2_K
        FF_QT_Q3_K
        FF_QT_Q4_K
        FF_QT_Q5_K
        FF_QT_Q6_K
        FF_QT_Q8_K
        FF_QT_IQ2_XXS
        FF_QT_IQ2_XS
        FF_QT_IQ3_XXS
        FF_QT_IQ1_S
        FF_QT_IQ4_NL
        FF_QT_IQ3_S
        FF_QT_IQ2_S
        FF_QT_IQ4_XS
        FF_QT_I8
        FF_QT_I16
        FF_QT_I32
        FF_QT_I64
        FF_QT_F64
        FF_QT_IQ1_M
        FF_QT_BF16
        FF_QT_TQ1_0
        FF_QT_TQ2_0
        FF_QT_MXFP4
        FF_QT_NVFP4
        FF_QT_Q1_0
        FF_QT_COUNT
        FF_QT_R16
    enum:
        FF_QF_DEQUANT
        FF_QF_LINEAR
        FF_QF_QUANTIZE
        FF_QF_R16
    ctypedef struct ff_qtype_info:
        int id
        const char *name
        int64_t block
        int64_t block_bytes
        int flags
        int scale_lo, scale_hi
    const ff_qtype_info *ff_qtype_get(int qtype)
    int ff_qtype_has(int qtype, int flags)
    int64_t ff_qtype_block(int qtype)
    int64_t ff_qtype_block_bytes(int qtype)
    int64_t ff_qtype_row_bytes(int qtype, int64_t cols)
    int ff_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols)
    int ff_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols)
    int ff_linear_q(float *y, const float *x, const void *w, int qtype, const float *bias, int64_t m, int64_t k,
                    int64_t n)
    void ff_fp32_to_fp16_row(uint16_t *y, const float *x, int64_t n)
    void ff_fp16_to_fp32_row(float *y, const uint16_t *x, int64_t n)
    int ff_qrepack_r16(void *dst, const void *src, int qtype, int64_t rows, int64_t cols)
    int ff_qrepack_r16_pays()
