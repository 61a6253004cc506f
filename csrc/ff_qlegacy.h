// the 32-weight legacy ggml types q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.c scalar, ff_qlegacy_simd.c simd):
// block layouts, row quantizers and dequantizers, and the int8 dot kernels in the ff_kernels qdot signature
#ifndef FF_QLEGACY_H
#define FF_QLEGACY_H

#include "fastformer.h"

// ggml's type ids
enum { FF_QL_Q4_1 = 3, FF_QL_Q5_0 = 6, FF_QL_Q5_1 = 7, FF_QL_IQ4_NL = 20 };

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

int64_t ff_qlegacy_block_bytes(int qtype);  // bytes per 32-block, 0 if qtype is not one of the four

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
// lanes unused), W rows `stride` bytes apart: the ff_kernels qdot slots. _avx2 runs the int8 dot
// ff_quant_dot256() names, _avx512 the avx-512 vnni kernel when ff_quant_vnni() (else _avx2)
#define FF_QLEGACY_DECLARE(qt)                                                                                         \
    void ff_qdot_##qt##_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m);                                                                  \
    void ff_qdot_##qt##_avx2(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,     \
                             const ff_qact *a, int m);                                                                 \
    void ff_qdot_##qt##_avx512(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,   \
                               const ff_qact *a, int m);
FF_QLEGACY_DECLARE(q4_1)
FF_QLEGACY_DECLARE(q5_0)
FF_QLEGACY_DECLARE(q5_1)
FF_QLEGACY_DECLARE(iq4_nl)

// until these types sit in the qtype table: dst (rows, cols/32 blocks) = w quantized; y (rows, cols) = src
// dequantized; y (m,n) = x (m,k) @ W^T with the current ISA's dot kernel on the thread pool.
// FF_EINVAL for another qtype or cols % 32 != 0, FF_ENOMEM if the activation scratch cannot be had
int ff_qlegacy_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols);
int ff_qlegacy_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols);
int ff_qlegacy_linear(float *y, const float *x, const void *w, int qtype, int64_t m, int64_t k, int64_t n);

#endif
