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

// q2_k on an r16 layout (ff_quant.h), a super-block of 16 rows (1344 bytes): 16 fp16 d, 16 fp16 dmin at 32, per
// 32-block j the scale bytes 2j, 2j + 1 of row r at 64 + 32j + 2r, then at 320 + 128j two 64-byte groups k whose
// byte 4r + e holds in bits 2s the code of weight 4 (4k + s) + e of row r's block j: (x >> 2s) & 3 of a group is
// 4 weights of 16 rows for one vpdpbusd
void ff_qdot_r16_q2_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m);
// group g of 16 rows (nsb super-blocks each) of a q2_k W into the r16 layout
void ff_repack_r16_q2_k(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb);
// q3_k on an r16 layout, a super-block of 16 rows (1760 bytes): 16 fp16 d, per 32-block j the low 4 bits of the
// raw (+ 32) scales of row r's sub-blocks 2j, 2j + 1 in the two nibbles of byte 32 + 16j + r, their high 2 bits at
// bits 2j and 16 + 2j of the word at 160 + 4r, then at 224 + 192j three 64-byte groups:
// groups 0 and 1 as q2_k's two (each weight's low 2 bits), group 2's byte 4r + e holding in bit o the high bit of
// weight 4o + e: (low | high << 2) - 4 is the weight's signed value
void ff_qdot_r16_q3_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m);
void ff_repack_r16_q3_k(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb);
#define FF_QK2_R16_SLOTS(sfx) [FF_QT_Q2_K] = ff_qdot_r16_q2_k_##sfx, [FF_QT_Q3_K] = ff_qdot_r16_q3_k_##sfx
#ifdef FF_HAVE_X86
FF_DECLARE_QDOT_K2(maddubs)
FF_DECLARE_QDOT_K2(avxvnni)
FF_DECLARE_QDOT_K2(vnni256)
FF_DECLARE_QDOT_K2(vnni)
void ff_qdot_r16_q2_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                           int m);
void ff_qdot_r16_q3_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                           int m);
// prefill panels (ff_internal.h's ff_qgemm_panel_fn) of avx-512 vnni
void ff_qgemm_panel_q2_k_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                              int64_t m, void *panel);
void ff_qgemm_panel_q3_k_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                              int64_t m, void *panel);
#define FF_QK2_PANEL_SLOTS [FF_QT_Q2_K] = ff_qgemm_panel_q2_k_vnni, [FF_QT_Q3_K] = ff_qgemm_panel_q3_k_vnni
#endif

#endif
