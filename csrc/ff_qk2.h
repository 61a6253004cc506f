// the second family of 256-weight super-block types: q2_k, q3_k, q5_k (ggml's k-quants) and iq4_xs (the
// iq4_nl values with 6-bit scales per 32); formats and scalar kernels in ff_qk2.c, SIMD dots in ff_qk2_simd.c
// (q5_k's dot kernels are q4_k's, in ff_quant.c and ff_qdot.c)
#ifndef FF_QK2_H
#define FF_QK2_H

#include "ff_internal.h"
#include "ff_qlegacy.h"  // ff_iq4_nl_values

// bytes per super-block of 256 weights
#define FF_Q2_K_BYTES 84
#define FF_Q3_K_BYTES 110
#define FF_Q5_K_BYTES 176
#define FF_IQ4_XS_BYTES 136

// iq4_xs indexes the 16 non-linear values of iq4_nl: ff_iq4_nl_values (ff_qlegacy.h)

// a super-block as 256 small ints q, 16 scales sc and 16 offsets mn per 16 weights: w[l] = sc[l/16] * q[l] -
// mn[l/16] (q 0..31 for the k types, the signed iq4 values for iq4_xs whose mn is 0); the same float products as
// the dequantizers
void ff_qk2_unpack(int qtype, const uint8_t *blk, int8_t q[256], float sc[16], float mn[16]);
// 6-bit scales of a q3_k super-block's 12 bytes, as 16 signed values (-32..31)
void ff_q3_k_scales(int8_t sc[16], const uint8_t *s);

FF_DECLARE_CONVERT(q2_k)
FF_DECLARE_CONVERT(q3_k)
FF_DECLARE_CONVERT(q5_k)
FF_DECLARE_CONVERT(iq4_xs)

// their slots in every dispatch table (ff_cpu.c)
#define FF_QK2_QUANTIZE_SLOTS                                                                                          \
    [FF_QT_Q2_K] = ff_quantize_row_q2_k, [FF_QT_Q3_K] = ff_quantize_row_q3_k, [FF_QT_Q5_K] = ff_quantize_row_q5_k,     \
    [FF_QT_IQ4_XS] = ff_quantize_row_iq4_xs
#define FF_QK2_DEQUANTIZE_SLOTS                                                                                        \
    [FF_QT_Q2_K] = ff_dequantize_row_q2_k, [FF_QT_Q3_K] = ff_dequantize_row_q3_k,                                      \
    [FF_QT_Q5_K] = ff_dequantize_row_q5_k, [FF_QT_IQ4_XS] = ff_dequantize_row_iq4_xs
#define FF_QK2_QDOT_SLOTS(sfx)                                                                                         \
    [FF_QT_Q2_K] = ff_qdot_q2_k_##sfx, [FF_QT_Q3_K] = ff_qdot_q3_k_##sfx, [FF_QT_Q5_K] = ff_qdot_q5_k_##sfx,           \
    [FF_QT_IQ4_XS] = ff_qdot_iq4_xs_##sfx

#define FF_DECLARE_QDOT_K2(sfx)                                                                                        \
    void ff_qdot_q2_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_q3_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_q5_k_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_iq4_xs_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,    \
                              const ff_qact *a, int m);

FF_DECLARE_QDOT_K2(ref)
#ifdef FF_HAVE_X86
FF_DECLARE_QDOT_K2(maddubs)
FF_DECLARE_QDOT_K2(avxvnni)
FF_DECLARE_QDOT_K2(vnni256)
FF_DECLARE_QDOT_K2(vnni)
#endif

#endif
