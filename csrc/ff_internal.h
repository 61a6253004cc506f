// declarations shared by the kernel files: the dispatch table, quantized activations, the thread pool and
// scratch, and the per-ISA row kernels behind ff_kernels
#ifndef FF_INTERNAL_H
#define FF_INTERNAL_H

#include "fastformer.h"

#if defined(__x86_64__) || defined(_M_X64)
#define FF_HAVE_X86 1
#endif

#define FF_AVX2 __attribute__((target("avx2,fma,f16c")))
#define FF_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

// a spin-wait's pause (lets the other hyperthread run, and the core leave the loop without a misprediction storm)
#ifdef FF_HAVE_X86
#include <immintrin.h>
#define ff_cpu_relax() _mm_pause()
#else
#define ff_cpu_relax() ((void)0)
#endif

#define FF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FF_MAX(a, b) ((a) > (b) ? (a) : (b))

// ---- threads: a persistent pool (ff_threads.c) ----
typedef void (*ff_task_fn)(void *ctx, int ith, int nth);
void ff_parallel(ff_task_fn fn, void *ctx, int nth_max);  // run fn(ctx, i, nth) for i < nth, caller is i=0
// a span of memory a worker reads into its caches after its part of a job, while it waits for the next
typedef struct ff_span {
    const void *p;
    int64_t bytes;
} ff_span;
// ff_parallel, and then the worker that ran task i (i >= 1) reads ahead[i] (or nothing: ahead NULL) until it ends
// or the pool's next job is posted. The spans must stay mapped until then: the caller posts another job after
// this one, or calls ff_pool_settle before it lets them go
void ff_parallel_pf(ff_task_fn fn, void *ctx, int nth_max, const ff_span *ahead);
void ff_pool_settle(void);       // returns once no worker reads ahead any more (at once if none does)
void *ff_scratch(size_t bytes);  // per-OS-thread 64-byte aligned buffer; NULL on OOM

// split [0, n) into nth near-equal chunks; chunk ith is [*lo, *hi), aligned to `align` elements
static inline void ff_split(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi) {
    int64_t blocks = (n + align - 1) / align;
    int64_t per = blocks / nth, extra = blocks % nth;
    int64_t b0 = ith * per + FF_MIN(ith, extra);
    int64_t b1 = b0 + per + (ith < extra);
    *lo = FF_MIN(b0 * align, n);
    *hi = FF_MIN(b1 * align, n);
}

// ---- quantized activations and the int8 dot kernels' slots (ff_quant.c, ff_qdot.c) ----
typedef struct ff_qact ff_qact;
// m rows of quantized activations: row i at q + i*kp, d + i*kp/32, s + i*kp/16, lanes + i*kp/4, zero past k
struct ff_qact {
    const int8_t *q;       // (m, kp) int8
    const float *d;        // (m, kp/32) scale per 32 (q4_k, q5_k, q6_k: per 256, in each of its 8 entries)
    const int16_t *s;      // (m, kp/16) sums of q per 16
    const int32_t *lanes;  // (m, kp/4) -c * sum of q per 32 at lane 8b, 0 elsewhere (c 128 q8_0, 8 q4_0); q6_k:
                           // -32 * sum of q per 16 at lane t; q4_k, q5_k: int16 sums of q per 32; or NULL
    int64_t k, kp;         // columns, padded columns (a multiple of 512)
    int64_t ahead;         // how far ahead the one-row r16 kernels prefetch W, 0 for none (ff_quant_ahead_for)
};

// the activations from row i0 on
static inline ff_qact ff_qact_from(const ff_qact *a, int64_t i0) {
    ff_qact r = *a;
    r.q += i0 * a->kp;
    r.d += i0 * (a->kp / 32);
    r.s += i0 * (a->kp / 16);
    if (r.lanes) r.lanes += i0 * (a->kp / 4);
    return r;
}

// y (m,n) row stride ldy = A (m,k) . W (n,k)^T for m <= 4 activation rows, W rows `stride` bytes apart
typedef void (*ff_qdot_fn)(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                           const ff_qact *a, int m);
// the same for exactly FF_QDOT_MANY activation rows (prefill: each block of W decoded once for all of them)
#define FF_QDOT_MANY 16
_Static_assert(FF_QDOT_MANY % 4 == 0, "the 256-bit kernels sweep 4 rows at a time");
typedef void (*ff_qdot_many_fn)(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                                const ff_qact *a);
// the same for W (n,k) in the r16 layout (ff_quant.h), n % 16 == 0, m <= FF_R16_MR or FF_R16_MR_K (ff_quant.h)
typedef void (*ff_qdot_r16_fn)(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                               int m);
// y (m, nr) row stride ldy = A (m,k) . W (nr,k)^T for nr <= FF_QP_NR rows of W, any m; panel: FF_QP_BYTES(k/32)
// bytes of scratch the rows are packed into
typedef void (*ff_qgemm_panel_fn)(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                  int64_t m, void *panel);
// a (n, kc) slice of a row-major matrix, row stride lds -> a (kc, ld) panel, n < ld zero-padded (pack_t); a
// (kc, n) slice -> (kc, ld) (pack_n)
typedef void (*ff_gemm_pack_fn)(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t n,
                                int64_t kc);
// x (k,) -> k/block blocks, and back
typedef void (*ff_quantize_row_fn)(uint8_t *restrict dst, const float *restrict x, int64_t k);
typedef void (*ff_dequantize_row_fn)(float *restrict y, const uint8_t *restrict src, int64_t k);

// the int8 dot kernels of one table, by ggml type id; NULL where a type has none
typedef struct ff_qkernels {
    ff_qdot_fn qdot[FF_QT_COUNT];                // FF_QF_LINEAR types
    ff_qdot_many_fn qdot_many[FF_QT_COUNT];      // FF_QDOT_MANY rows at once (256-bit q4_k, q5_k, q6_k), or NULL
    ff_qdot_r16_fn qdot_r16[FF_QT_COUNT];        // FF_QF_R16 types
    ff_qgemm_panel_fn qgemm_panel[FF_QT_COUNT];  // prefill panels (avx-512 vnni only), used from 5 activation rows
    int r16_fast;                                // the r16 kernels are the fast ones: repacking pays
} ff_qkernels;

// ---- the dispatch table (ff_cpu.c) ----
// one row-level kernel per op; a table per ISA and int8 dot, chosen at import (ff_cpu.c)
typedef struct ff_kernels {
    // y (n,) = W (n,k) @ x (k,), W rows k-contiguous
    // stream: W comes from memory (rows one after another) rather than from cache (rows in groups); same bits
    void (*gemv_f32)(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k,
                     int stream);
    // C (mr,nr) tile, ldc: C = A_packed (kc,MR) . B_packed (kc,NR) (+ C if accumulate); mr<=MR, nr<=NR
    void (*gemm_f32_tile)(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc,
                          int64_t ldc, int64_t mr, int64_t nr, int accumulate);
    int gemm_mr, gemm_nr;                              // micro-tile shape of gemm_f32_tile
    ff_gemm_pack_fn gemm_pack_t_f32, gemm_pack_n_f32;  // the panels gemm_f32_tile reads
    // y (n,) = x (n,) * rsqrt(mean(x^2) + eps) * w (n,)
    void (*norm_rms_f32)(float *restrict y, const float *restrict x, const float *restrict w, float eps, int64_t n);
    // y (n,) = (x - mean) / sqrt(var + eps) * w + b  (b may be NULL)
    void (*norm_layer_f32)(float *restrict y, const float *restrict x, const float *restrict w, const float *restrict b,
                           float eps, int64_t n);
    // y (n,) = softmax(x (n,)), y may alias x
    void (*softmax_f32)(float *y, const float *x, int64_t n);
    // y (n,) = gelu(x) with the tanh approximation / the exact erf form / silu; y may alias x
    void (*gelu_tanh_f32)(float *y, const float *x, int64_t n);
    void (*gelu_erf_f32)(float *y, const float *x, int64_t n);
    void (*silu_f32)(float *y, const float *x, int64_t n);
    // x (d,) rotated in place by cos/sin (d/2,); interleaved pairs (2i,2i+1) or split halves (i,i+d/2)
    void (*rope_f32)(float *restrict x, const float *restrict cos, const float *restrict sin, int64_t d,
                     int interleaved);
    // st (n,m) = K (n,d) @ QT (d,m); m % 16 == 0
    void (*attn_qk_f32)(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m, int64_t n,
                        int64_t d);
    // online softmax of st (n,m) in place; row r drops key j0+j > pos[r] (pos may be NULL); running max mx,
    // sum l and the rescale alpha of earlier blocks, all (m,); m % 16 == 0
    void (*attn_softmax_f32)(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,
                             const int32_t *restrict pos, int64_t j0, int64_t m, int64_t n);
    // O (m,d) row stride ldo = O * alpha (m,) + P (m,n) @ V (n,d), P[r][j] at p[r*prs + j*pjs]; ldo % 16 == 0
    void (*attn_pv_f32)(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                        int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d, int64_t ldo);
    // s (m,n) = Q (m,d) @ K (n,d)^T
    void (*attn_qk_dot_f32)(float *restrict s, const float *restrict q, const float *restrict k, int64_t m, int64_t n,
                            int64_t d);
    // the same three products with K or V rows of cache type t (FF_QT_F16, or FF_QT_Q8_0 with d % 32 == 0,
    // ff_attention_kv.c), read in that type
    void (*attn_qk_kv)(float *restrict st, const float *restrict qt, const void *restrict k, int t, int64_t m,
                       int64_t n, int64_t d);
    void (*attn_pv_kv)(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                       int64_t pjs, const void *restrict v, int t, int64_t m, int64_t n, int64_t d, int64_t ldo);
    void (*attn_qk_dot_kv)(float *restrict s, const float *restrict q, const void *restrict k, int t, int64_t m,
                           int64_t n, int64_t d);
    // online softmax of one row s (n,) in place over its first nv keys (the rest become 0); scalars mx, l, alpha
    void (*attn_softmax_dot_f32)(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,
                                 int64_t nv, int64_t n);
    // x (k,) -> q (k,) int8 with d (k/32,) scales, x ~ d * q rounded to nearest even, s (k/16,) sums of q; one
    // scale per bs (32 or 256; k % bs == 0) elements, stored in each of its bs/32 entries of d
    void (*quant_act_q8)(int8_t *restrict q, float *restrict d, int16_t *restrict s, const float *restrict x, int64_t k,
                         int bs);
    // y (n,) = fp16(x (n,)) rounding to nearest even, and back (exact)
    void (*fp32_to_fp16_row)(uint16_t *restrict y, const float *restrict x, int64_t n);
    void (*fp16_to_fp32_row)(float *restrict y, const uint16_t *restrict x, int64_t n);
    // per ggml type id: a row (k,) to blocks and back, NULL where the type has no FF_QF_QUANTIZE / FF_QF_DEQUANT
    ff_quantize_row_fn quantize_row[FF_QT_COUNT];
    ff_dequantize_row_fn dequantize_row[FF_QT_COUNT];
    ff_qkernels q;  // the int8 dot kernels, by the int8 dot in use (ff_cpu.c)
} ff_kernels;

extern const ff_kernels *ff_kern;  // the table in use

// micro-tile shapes of the gemm kernels
#define FF_GEMM_MR_REF 4
#define FF_GEMM_NR_REF 8
#define FF_GEMM_MR_AVX2 6
#define FF_GEMM_NR_AVX2 16
#define FF_GEMM_MR_AVX512 12
#define FF_GEMM_NR_AVX512 32

#define FF_DECLARE_ISA(sfx)                                                                                            \
    void ff_gemv_f32_##sfx(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k,  \
                           int stream);                                                                                \
    void ff_gemm_f32_tile_##sfx(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc,     \
                                int64_t ldc, int64_t mr, int64_t nr, int accumulate);                                  \
    void ff_norm_rms_f32_##sfx(float *restrict y, const float *restrict x, const float *restrict w, float eps,         \
                               int64_t n);                                                                             \
    void ff_norm_layer_f32_##sfx(float *restrict y, const float *restrict x, const float *restrict w,                  \
                                 const float *restrict b, float eps, int64_t n);                                       \
    void ff_softmax_f32_##sfx(float *y, const float *x, int64_t n);                                                    \
    void ff_gelu_tanh_f32_##sfx(float *y, const float *x, int64_t n);                                                  \
    void ff_gelu_erf_f32_##sfx(float *y, const float *x, int64_t n);                                                   \
    void ff_silu_f32_##sfx(float *y, const float *x, int64_t n);                                                       \
    void ff_rope_f32_##sfx(float *restrict x, const float *restrict cos, const float *restrict sin, int64_t d,         \
                           int interleaved);                                                                           \
    void ff_attn_qk_f32_##sfx(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m,        \
                              int64_t n, int64_t d);                                                                   \
    void ff_attn_softmax_f32_##sfx(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,    \
                                   const int32_t *restrict pos, int64_t j0, int64_t m, int64_t n);                     \
    void ff_attn_pv_f32_##sfx(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,    \
                              int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d, int64_t ldo);     \
    void ff_attn_qk_dot_f32_##sfx(float *restrict s, const float *restrict q, const float *restrict k, int64_t m,      \
                                  int64_t n, int64_t d);                                                               \
    void ff_attn_softmax_dot_f32_##sfx(float *restrict p, float *restrict mx, float *restrict l,                       \
                                       float *restrict alpha, int64_t nv, int64_t n);                                  \
    void ff_attn_qk_kv_##sfx(float *restrict st, const float *restrict qt, const void *restrict k, int t, int64_t m,   \
                             int64_t n, int64_t d);                                                                    \
    void ff_attn_pv_kv_##sfx(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,     \
                             int64_t pjs, const void *restrict v, int t, int64_t m, int64_t n, int64_t d,              \
                             int64_t ldo);                                                                             \
    void ff_attn_qk_dot_kv_##sfx(float *restrict s, const float *restrict q, const void *restrict k, int t, int64_t m, \
                                 int64_t n, int64_t d);                                                                \
    void ff_quant_act_q8_##sfx(int8_t *restrict q, float *restrict d, int16_t *restrict s, const float *restrict x,    \
                               int64_t k, int bs);                                                                     \
    void ff_fp32_to_fp16_row_##sfx(uint16_t *restrict y, const float *restrict x, int64_t n);                          \
    void ff_fp16_to_fp32_row_##sfx(float *restrict y, const uint16_t *restrict x, int64_t n);

FF_DECLARE_ISA(ref)
#ifdef FF_HAVE_X86
FF_DECLARE_ISA(avx2)
FF_DECLARE_ISA(avx512)
#endif

// gemm panel packing (ff_matmul.c): every SIMD table packs with avx2
void ff_gemm_pack_t_f32_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t rows,
                            int64_t kc);
void ff_gemm_pack_n_f32_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t cols,
                            int64_t kc);
#ifdef FF_HAVE_X86
void ff_gemm_pack_t_f32_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t rows,
                             int64_t kc);
void ff_gemm_pack_n_f32_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t cols,
                             int64_t kc);
#endif

// int8 dot kernels: ref, the 256-bit ones once per int8 dot (maddubs, avxvnni, vnni256) and avx-512 vnni (vnni)
#define FF_DECLARE_QDOT(sfx)                                                                                           \
    void ff_qdot_q8_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_q4_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_q4_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_q6_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);
#define FF_DECLARE_QDOT_R16(sfx)                                                                                       \
    void ff_qdot_r16_q8_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m);                                                              \
    void ff_qdot_r16_q4_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m);                                                              \
    void ff_qdot_r16_q4_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m);                                                              \
    void ff_qdot_r16_q5_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m);                                                              \
    void ff_qdot_r16_q6_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m);

FF_DECLARE_QDOT(ref)
FF_DECLARE_QDOT_R16(ref)
#ifdef FF_HAVE_X86
FF_DECLARE_QDOT(maddubs)
FF_DECLARE_QDOT(avxvnni)
FF_DECLARE_QDOT(vnni256)
FF_DECLARE_QDOT(vnni)
FF_DECLARE_QDOT_R16(vnni)
#define FF_DECLARE_QDOT_MANY(sfx)                                                                                      \
    void ff_qdot_many_q4_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n, \
                                 const ff_qact *a);                                                                    \
    void ff_qdot_many_q5_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n, \
                                 const ff_qact *a);                                                                    \
    void ff_qdot_many_q6_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n, \
                                 const ff_qact *a);
FF_DECLARE_QDOT_MANY(maddubs)
FF_DECLARE_QDOT_MANY(avxvnni)
FF_DECLARE_QDOT_MANY(vnni256)
void ff_qgemm_panel_q8_0_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                              int64_t m, void *panel);
void ff_qgemm_panel_q4_0_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                              int64_t m, void *panel);
#endif

// row converters of the FF_QF_QUANTIZE / FF_QF_DEQUANT types (ff_quant.c), the same in every table
#define FF_DECLARE_CONVERT(qt)                                                                                         \
    void ff_quantize_row_##qt(uint8_t *restrict dst, const float *restrict x, int64_t k);                              \
    void ff_dequantize_row_##qt(float *restrict y, const uint8_t *restrict src, int64_t k);
FF_DECLARE_CONVERT(f32)
FF_DECLARE_CONVERT(f16)
FF_DECLARE_CONVERT(bf16)
FF_DECLARE_CONVERT(q8_0)
FF_DECLARE_CONVERT(q4_0)
#ifdef FF_HAVE_X86
void ff_quantize_row_q8_0_avx2(uint8_t *restrict dst, const float *restrict x, int64_t k);  // the same bytes
#endif
void ff_dequantize_row_q4_k(float *restrict y, const uint8_t *restrict src, int64_t k);
void ff_dequantize_row_q6_k(float *restrict y, const uint8_t *restrict src, int64_t k);

#endif
