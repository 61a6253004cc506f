# mirrors csrc/fastformer.h line for line
from libc.stdint cimport int32_t, int64_t

cdef extern from "fastformer.h" nogil:
    int FF_OK
    int FF_ENOMEM

    # cpu: feature detection and the dispatch table
    int FF_ISA_COUNT
    int FF_F_COUNT
    int FF_MAX_THREADS
    int ff_cpu_init()
    int ff_cpu_has(int feature)
    const char *ff_feature_name(int feature)
    const char *ff_isa_name(int isa)
    int ff_isa_usable(int isa)
    int ff_isa_current()
    int ff_isa_select(int isa)

    # threads
    void ff_set_num_threads(int n)
    int ff_get_num_threads()
    int ff_default_num_threads()

    # matmul
    int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n)
    int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n)

    # norms
    void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n)
    void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows,
                           int64_t n)

    # activations and softmax
    void ff_softmax_f32(float *y, const float *x, int64_t rows, int64_t n)
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

    # model forward pass
    int FF_EINVAL
    enum: FF_DT_F32
    enum: FF_ARCH_LLAMA
    enum: FF_ARCH_GPT2
    ctypedef struct ff_tensor:
        const void *data
        int dtype
        int64_t rows, cols
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
    ctypedef struct ff_model:
        int arch
        int64_t n_layers, d, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_ctx
        float eps
        int rope_interleaved
        int64_t window
        const float *tok_emb
        const float *pos_emb
        const float *norm_w
        const float *norm_b
        ff_tensor lm_head
        const float *rope_inv_freq
        const ff_layer *layers
    ctypedef struct ff_session:
        float *k_cache
        float *v_cache
        int64_t cap, n_past, max_t
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
    void ff_session_sizes(const ff_model *m, int64_t max_t, int64_t sizes[10])
    int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                         int all_logits)
