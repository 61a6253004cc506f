// declarations shared by the kernel files: the per-ISA row kernels behind ff_kernels
#ifndef FF_INTERNAL_H
#define FF_INTERNAL_H

#include "fastformer.h"

#if defined(__x86_64__) || defined(_M_X64)
#define FF_HAVE_X86 1
#endif

#define FF_AVX2 __attribute__((target("avx2,fma,f16c")))
#define FF_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

#define FF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FF_MAX(a, b) ((a) > (b) ? (a) : (b))

// split [0, n) into nth near-equal chunks; chunk ith is [*lo, *hi), aligned to `align` elements
static inline void ff_split(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi) {
    int64_t blocks = (n + align - 1) / align;
    int64_t per = blocks / nth, extra = blocks % nth;
    int64_t b0 = ith * per + FF_MIN(ith, extra);
    int64_t b1 = b0 + per + (ith < extra);
    *lo = FF_MIN(b0 * align, n);
    *hi = FF_MIN(b1 * align, n);
}

// micro-tile shapes of the gemm kernels
#define FF_GEMM_MR_REF 4
#define FF_GEMM_NR_REF 8
#define FF_GEMM_MR_AVX2 6
#define FF_GEMM_NR_AVX2 16
#define FF_GEMM_MR_AVX512 12
#define FF_GEMM_NR_AVX512 32

#define FF_DECLARE_ISA(sfx)                                                                                         \
    void ff_gemv_f32_##sfx(float *restrict y, const float *restrict w, const float *restrict x, int64_t n,        \
                           int64_t k, int stream);                                                                \
    void ff_gemm_f32_tile_##sfx(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc, \
                                int64_t ldc, int64_t mr, int64_t nr, int accumulate);                             \
    void ff_norm_rms_f32_##sfx(float *restrict y, const float *restrict x, const float *restrict w, float eps,    \
                               int64_t n);                                                                        \
    void ff_norm_layer_f32_##sfx(float *restrict y, const float *restrict x, const float *restrict w,             \
                                 const float *restrict b, float eps, int64_t n);                                  \
    void ff_softmax_f32_##sfx(float *y, const float *x, int64_t n);                                               \
    void ff_gelu_tanh_f32_##sfx(float *y, const float *x, int64_t n);                                             \
    void ff_gelu_erf_f32_##sfx(float *y, const float *x, int64_t n);                                              \
    void ff_silu_f32_##sfx(float *y, const float *x, int64_t n);                                                  \
    void ff_rope_f32_##sfx(float *restrict x, const float *restrict cos, const float *restrict sin, int64_t d,    \
                           int interleaved);                                                                      \
    void ff_attn_qk_f32_##sfx(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m,    \
                              int64_t n, int64_t d);                                                              \
    void ff_attn_softmax_f32_##sfx(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha, \
                                   const int32_t *restrict pos, int64_t j0, int64_t m, int64_t n);                \
    void ff_attn_pv_f32_##sfx(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs, \
                              int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d, int64_t ldo); \
    void ff_attn_qk_dot_f32_##sfx(float *restrict s, const float *restrict q, const float *restrict k, int64_t m,  \
                                  int64_t n, int64_t d);                                                          \
    void ff_attn_softmax_dot_f32_##sfx(float *restrict p, float *restrict mx, float *restrict l,                  \
                                       float *restrict alpha, int64_t nv, int64_t n);                             \
    void ff_quant_act_q8_##sfx(int8_t *restrict q, float *restrict d, int16_t *restrict s, const float *restrict x, \
                               int64_t k);                                                                        \
    void ff_qdot_q8_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,  \
                            const ff_qact *a, int m);                                                             \
    void ff_qdot_q4_0_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,  \
                            const ff_qact *a, int m);                                                             \
    void ff_qdot_q4_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,  \
                            const ff_qact *a, int m);                                                             \
    void ff_qdot_q6_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,  \
                            const ff_qact *a, int m);                                                             \
    void ff_fp32_to_fp16_##sfx(uint16_t *restrict y, const float *restrict x, int64_t n);                         \
    void ff_fp16_to_fp32_##sfx(float *restrict y, const uint16_t *restrict x, int64_t n);

FF_DECLARE_ISA(ref)
#ifdef FF_HAVE_X86
FF_DECLARE_ISA(avx2)
FF_DECLARE_ISA(avx512)
#endif

#endif
