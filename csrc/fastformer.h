// fastformer: C kernels for CPU transformer inference.
// Every entry point takes float32, C-contiguous buffers; outputs come first, sizes last.
// Everything that can fail is checked by the caller (the Cython layer) before a kernel runs.
#ifndef FASTFORMER_H
#define FASTFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- status codes returned by entry points that can run out of memory ----
#define FF_OK 0
#define FF_ENOMEM 1
#define FF_EINVAL 2

// ---- cpu: feature detection and the dispatch table (ff_cpu.c) ----
enum ff_isa { FF_ISA_SCALAR = 0, FF_ISA_AVX2 = 1, FF_ISA_AVX512 = 2, FF_ISA_COUNT = 3 };

enum ff_feature {
    FF_F_SSE42, FF_F_AVX, FF_F_AVX2, FF_F_FMA, FF_F_F16C, FF_F_AVX512F, FF_F_AVX512BW, FF_F_AVX512DQ,
    FF_F_AVX512VL, FF_F_AVX512VNNI, FF_F_AVX512BF16, FF_F_AVXVNNI, FF_F_AMX_TILE, FF_F_AMX_INT8,
    FF_F_AMX_BF16, FF_F_NEON, FF_F_COUNT
};

// one row-level kernel per op; a table per ISA, chosen once at import
typedef struct ff_kernels {
    // y (n,) = W (n,k) @ x (k,), W rows k-contiguous
    void (*gemv_f32)(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k);
    // C (mr,nr) tile, ldc: C = A_packed (kc,MR) . B_packed (kc,NR) (+ C if accumulate); mr<=MR, nr<=NR
    void (*gemm_f32_tile)(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc,
                          int64_t ldc, int64_t mr, int64_t nr, int accumulate);
    int gemm_mr, gemm_nr;  // micro-tile shape of gemm_f32_tile
    // y (n,) = x (n,) * rsqrt(mean(x^2) + eps) * w (n,)
    void (*norm_rms_f32)(float *restrict y, const float *restrict x, const float *restrict w, float eps, int64_t n);
    // y (n,) = (x - mean) / sqrt(var + eps) * w + b  (b may be NULL)
    void (*norm_layer_f32)(float *restrict y, const float *restrict x, const float *restrict w,
                           const float *restrict b, float eps, int64_t n);
    // y (n,) = softmax(x (n,)), y may alias x
    void (*softmax_f32)(float *y, const float *x, int64_t n);
    // y (n,) = gelu(x) with the tanh approximation / the exact erf form / silu; y may alias x
    void (*gelu_tanh_f32)(float *y, const float *x, int64_t n);
    void (*gelu_erf_f32)(float *y, const float *x, int64_t n);
    void (*silu_f32)(float *y, const float *x, int64_t n);
    // x (d,) rotated in place by cos/sin (d/2,); interleaved pairs (2i,2i+1) or split halves (i,i+d/2)
    void (*rope_f32)(float *restrict x, const float *restrict cos, const float *restrict sin, int64_t d,
                     int interleaved);
    // s (n,) = K (n,d) @ q (d,) * scale
    void (*attn_scores_f32)(float *restrict s, const float *restrict q, const float *restrict k, float scale,
                            int64_t n, int64_t d);
    // o (d,) = o * a + sum_j p[j] * V[j] (n,d)
    void (*attn_accum_f32)(float *restrict o, float a, const float *restrict p, const float *restrict v,
                           int64_t n, int64_t d);
} ff_kernels;

extern const ff_kernels *ff_kern;          // the table in use
int ff_cpu_init(void);                     // detect features, pick the best usable ISA; returns it
int ff_cpu_has(int feature);               // 1 if the cpu and the OS support feature
const char *ff_feature_name(int feature);  // "avx2", "avx512f", ...
const char *ff_isa_name(int isa);          // "scalar", "avx2", "avx512"
int ff_isa_usable(int isa);                // 1 if isa can run here
int ff_isa_current(void);                  // the ISA in use
int ff_isa_select(int isa);                // switch tables; 0 ok, -1 not usable

// ---- threads: a persistent pool, work split by index (ff_threads.c) ----
typedef void (*ff_task_fn)(void *ctx, int ith, int nth);
void ff_parallel(ff_task_fn fn, void *ctx, int nth_max);  // run fn(ctx, i, nth) for i < nth, caller is i=0
void ff_set_num_threads(int n);                             // 1 <= n <= FF_MAX_THREADS
int ff_get_num_threads(void);
int ff_default_num_threads(void);                           // usable cores (affinity mask)
void *ff_scratch(size_t bytes);                             // per-OS-thread 64-byte aligned buffer; NULL on OOM
#define FF_MAX_THREADS 256

// ---- matmul (ff_matmul.c) ----
// y (m,n) = x (m,k) @ W^T + bias; W (n,k), bias (n,) or NULL
int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n);
// c (m,n) = a (m,k) @ b (k,n)
int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n);

// ---- norms (ff_norm.c): rows of length n ----
void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n);
void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows,
                       int64_t n);

// ---- activations and softmax (ff_act.c): y may alias x ----
void ff_softmax_f32(float *y, const float *x, int64_t rows, int64_t n);
void ff_gelu_tanh_f32(float *y, const float *x, int64_t n);
void ff_gelu_erf_f32(float *y, const float *x, int64_t n);
void ff_silu_f32(float *y, const float *x, int64_t n);

// ---- rotary embeddings (ff_rope.c) ----
// cos, sin (t, half) from positions (t,) and inv_freq (half,), angles computed in double
void ff_rope_table_f32(float *cos, float *sin, const int64_t *pos, const float *inv_freq, int64_t t, int64_t half);
// x (h,t,d) rotated in place with cos, sin (t, d/2)
void ff_rope_f32(float *x, const float *cos, const float *sin, int64_t h, int64_t t, int64_t d, int interleaved);

// ---- attention (ff_attention.c) ----
// o (h,tq,d) = softmax(q (h,tq,d) @ k^T (hkv,tk,d) * scale [+ causal mask]) @ v (hkv,tk,d); h % hkv == 0;
// causal: query i sits at position tk - tq + i and sees keys 0..that position (tq <= tk)
int ff_attention_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                     int64_t tk, int64_t d, float scale, int causal);

// ---- model forward pass (ff_model.c) ----
enum ff_dtype { FF_DT_F32 = 0 };
// a weight matrix (rows, cols), rows k-contiguous, as HF stores linear weights (out, in)
typedef struct ff_tensor {
    const void *data;
    int dtype;
    int64_t rows, cols;
} ff_tensor;

enum ff_arch { FF_ARCH_LLAMA = 0, FF_ARCH_GPT2 = 1 };

typedef struct ff_layer {
    const float *attn_norm_w, *attn_norm_b;  // (d,); b NULL for rms norm
    ff_tensor wq, wk, wv, wo;                // (h*hd, d), (hkv*hd, d), (hkv*hd, d), (d, h*hd)
    const float *bq, *bk, *bv, *bo;          // biases or NULL
    const float *ffn_norm_w, *ffn_norm_b;    // (d,)
    ff_tensor w_gate, w_up, w_down;          // (f, d), (f, d), (d, f); gpt2 has no gate
    const float *b_up, *b_down;              // biases or NULL
} ff_layer;

typedef struct ff_model {
    int arch;                      // enum ff_arch
    int64_t n_layers, d, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_ctx;
    float eps;                     // norm epsilon
    int rope_interleaved;          // pairwise (gguf llama) instead of split halves
    int64_t window;                // sliding-window attention span, 0 = none
    const float *tok_emb;          // (vocab, d)
    const float *pos_emb;          // (max_ctx, d) learned positions, or NULL
    const float *norm_w, *norm_b;  // final norm (d,)
    ff_tensor lm_head;             // (vocab, d)
    const float *rope_inv_freq;    // (head_dim/2,) or NULL without rope
    const ff_layer *layers;        // (n_layers,)
} ff_model;

// one sequence's state: the kv cache and scratch for up to max_t tokens per call, all owned by the caller
typedef struct ff_session {
    float *k_cache, *v_cache;      // (n_layers, n_kv_heads, cap, head_dim)
    int64_t cap;                   // positions the cache holds (<= max_ctx)
    int64_t n_past;                // positions already in the cache
    int64_t max_t;                 // most tokens one forward call may take
    float *x, *h;                  // (max_t, d)
    float *q, *att, *qt, *ot;      // (max_t, n_heads*head_dim)
    float *k, *v;                  // (max_t, n_kv_heads*head_dim)
    float *f1, *f2;                // (max_t, d_ff)
    float *cos, *sin;              // (max_t, head_dim/2)
} ff_session;

// scratch floats a session needs for each of its buffers, in the order of ff_session's fields after max_t
void ff_session_sizes(const ff_model *m, int64_t max_t, int64_t sizes[10]);
// run ids (t,) at positions n_past.. and append them to the cache; logits (t, vocab) if all_logits else (1, vocab)
// for the last token; ids must be < vocab and n_past + t <= cap, t <= max_t (checked by the caller)
int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                     int all_logits);

#ifdef __cplusplus
}
#endif
#endif
