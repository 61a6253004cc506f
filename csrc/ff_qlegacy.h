// the 32-weight legacy ggml types q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.c scalar, ff_qlegacy_simd.c simd):
// block layouts, row quantizers and dequantizers, and the int8 dot kernels in the ff_kernels qdot signature
#ifndef FF_QLEGACY_H
#define FF_QLEGACY_H

#include "ff_internal.h"

// bytes per block of 32, byte for byte as ggml stores them (little-endian, fp16 d and m):
// q4_1   d, m, qs[16]          w = d * q + m, q in 0..15 (low nibbles weights 0..15, high nibbles 16..31)
// q5_0   d, qh[4], qs[16]      w = d * (q - 16), q in 0..31, bit 4 of weight j is bit j of qh
// q5_1   d, m, qh[4], qs[16]   w = d * q + m, q in 0..31
// iq4_nl d, qs[16]             w = d * ff_iq4_nl_values[q], q in 0..15
#define FF_Q4_1_BYTES 20
#define FF_Q5_0_BYTES 22
#define FF_Q5_1_BYTES 24
#define FF_IQ4_NL_BYTES 18

extern const int8_t ff_iq4_nl_values[16];

// x (k,) -> k/32 blocks, k % 32 == 0, x finite; the bytes of the gguf package's quantizers (q4_1, q5_0, q5_1)
// and of llama.cpp's iq4_nl quantizer without an importance matrix
void ff_quantize_row_q4_1(uint8_t *restrict dst, const float *restrict x, int64_t k);
void ff_quantize_row_q5_0(uint8_t *restrict dst, const float *restrict x, int64_t k);
void ff_quantize_row_q5_1(uint8_t *restrict dst, const float *restrict x, int64_t k);
void ff_quantize_row_iq4_nl(uint8_t *restrict dst, const float *restrict x, int64_t k);
// k/32 blocks -> y (k,), the gguf package's dequantize bit for bit
void ff_dequantize_row_q4_1(float *restrict y, const uint8_t *restrict src, int64_t k);
void ff_dequantize_row_q5_0(float *restrict y, const uint8_t *restrict src, int64_t k);
void ff_dequantize_row_q5_1(float *restrict y, const uint8_t *restrict src, int64_t k);
void ff_dequantize_row_iq4_nl(float *restrict y, const uint8_t *restrict src, int64_t k);

// y (m,n) row stride ldy = A (m,k) . W (n,k)^T for m <= 4 activation rows of a (ff_quant_act_q8's q, d, s;
// lanes unused), W rows `stride` bytes apart: the ff_kernels qdot slots (ff_cpu.c). _ref the scalar twin, the
// 256-bit kernels once per int8 dot (maddubs, avxvnni, vnni256), _vnni avx-512 vnni on 512-bit registers
#define FF_QLEGACY_DECLARE(qt, sfx)                                                                                    \
    void ff_qdot_##qt##_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,    \
                              const ff_qact *a, int m);
#define FF_QLEGACY_DECLARE_ALL(sfx)                                                                                    \
    FF_QLEGACY_DECLARE(q4_1, sfx)                                                                                      \
    FF_QLEGACY_DECLARE(q5_0, sfx) FF_QLEGACY_DECLARE(q5_1, sfx) FF_QLEGACY_DECLARE(iq4_nl, sfx)
FF_QLEGACY_DECLARE_ALL(ref)

// q4_1, q5_0, q5_1, iq4_nl and iq4_xs on r16 layouts (ff_quant.h), 4 activations per vpdpbusd. q4_1 groups 16
// rows' blocks: 16 fp16 d, 16 fp16 m, then bytes 4c..4c+3 of every row's nibbles at 64 + 64c + 4r. q5_0 and q5_1
// likewise (q5_0 without m), the nibbles after 64 bytes of high bits: bit g of byte 4r + e is weight 4g + e's. iq4_nl takes q4_0's layout (16
// fp16 d, then the nibble bytes at 32 + 64c + 4r), its values + 128 by a table shuffle. an iq4_xs super-block of
// 16 rows: 16 fp16 d, 16 scales_h words at 32 + 2r, 16 scales_l words at 64 + 4r, then per 32-block j at 128 + 256j
// the nibble bytes 16j + 4c..+3 of row r at 64c + 4r. per block of each row: the int dot (iq4: from -128 * sum(a))
// times d_w * d_a (iq4_xs: d * (scale - 32)), then for q4_1 m_w times d_a * sum(a), each fused into the chain of
// the block's parity
#define FF_QLEGACY_R16_DECLARE(qt, sfx)                                                                                \
    void ff_qdot_r16_##qt##_##sfx(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                \
                                  const ff_qact *a, int m);
FF_QLEGACY_R16_DECLARE(q4_1, ref)
FF_QLEGACY_R16_DECLARE(q5_0, ref)
FF_QLEGACY_R16_DECLARE(q5_1, ref)
FF_QLEGACY_R16_DECLARE(iq4_nl, ref)
FF_QLEGACY_R16_DECLARE(iq4_xs, ref)
// group g of 16 rows (nb blocks, nsb super-blocks each) of a q4_1 / q5_0 / q5_1 / iq4_xs W into its r16 layout
void ff_repack_r16_q4_1(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb);
void ff_repack_r16_q5_0(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb);
void ff_repack_r16_q5_1(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb);
void ff_repack_r16_iq4_xs(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb);
#define FF_QLEGACY_R16_SLOTS(sfx)                                                                                      \
    [FF_QT_Q4_1] = ff_qdot_r16_q4_1_##sfx, [FF_QT_Q5_0] = ff_qdot_r16_q5_0_##sfx,                                      \
    [FF_QT_Q5_1] = ff_qdot_r16_q5_1_##sfx, [FF_QT_IQ4_NL] = ff_qdot_r16_iq4_nl_##sfx,                                  \
    [FF_QT_IQ4_XS] = ff_qdot_r16_iq4_xs_##sfx
#ifdef FF_HAVE_X86
FF_QLEGACY_R16_DECLARE(q4_1, vnni)
FF_QLEGACY_R16_DECLARE(q5_0, vnni)
FF_QLEGACY_R16_DECLARE(q5_1, vnni)
FF_QLEGACY_R16_DECLARE(iq4_nl, vnni)
FF_QLEGACY_R16_DECLARE(iq4_xs, vnni)
FF_QLEGACY_DECLARE_ALL(maddubs)
FF_QLEGACY_DECLARE_ALL(avxvnni)
FF_QLEGACY_DECLARE_ALL(vnni256)
FF_QLEGACY_DECLARE_ALL(vnni)
// prefill panels (ff_internal.h's ff_qgemm_panel_fn) of avx-512 vnni
#define FF_QLEGACY_DECLARE_PANEL(qt)                                                                                   \
    void ff_qgemm_panel_##qt##_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a, \
                                    int64_t m, void *panel);
FF_QLEGACY_DECLARE_PANEL(q4_1)
FF_QLEGACY_DECLARE_PANEL(q5_0)
FF_QLEGACY_DECLARE_PANEL(q5_1)
FF_QLEGACY_DECLARE_PANEL(iq4_nl)
#endif

// their entries in ff_cpu.c's tables: the row converters and the qdot slots of the int8 dot sfx
#define FF_QLEGACY_QUANTIZE_SLOTS                                                                                      \
    [FF_QT_Q4_1] = ff_quantize_row_q4_1, [FF_QT_Q5_0] = ff_quantize_row_q5_0, [FF_QT_Q5_1] = ff_quantize_row_q5_1,     \
    [FF_QT_IQ4_NL] = ff_quantize_row_iq4_nl
#define FF_QLEGACY_DEQUANTIZE_SLOTS                                                                                    \
    [FF_QT_Q4_1] = ff_dequantize_row_q4_1, [FF_QT_Q5_0] = ff_dequantize_row_q5_0,                                      \
    [FF_QT_Q5_1] = ff_dequantize_row_q5_1, [FF_QT_IQ4_NL] = ff_dequantize_row_iq4_nl
#define FF_QLEGACY_QDOT_SLOTS(sfx)                                                                                     \
    [FF_QT_Q4_1] = ff_qdot_q4_1_##sfx, [FF_QT_Q5_0] = ff_qdot_q5_0_##sfx, [FF_QT_Q5_1] = ff_qdot_q5_1_##sfx,           \
    [FF_QT_IQ4_NL] = ff_qdot_iq4_nl_##sfx
#define FF_QLEGACY_PANEL_SLOTS                                                                                         \
    [FF_QT_Q4_1] = ff_qgemm_panel_q4_1_vnni, [FF_QT_Q5_0] = ff_qgemm_panel_q5_0_vnni,                                  \
    [FF_QT_Q5_1] = ff_qgemm_panel_q5_1_vnni, [FF_QT_IQ4_NL] = ff_qgemm_panel_iq4_nl_vnni

#endif
