// shared by the quantization files: block sizes and the scalar fp16 conversions
#ifndef FF_QUANT_H
#define FF_QUANT_H

#include "ff_internal.h"

// bytes per block of 32 (q8_0, q4_0) or per super-block of 256 (q4_k, q6_k)
#define FF_Q8_0_BYTES 34
#define FF_Q4_0_BYTES 18
#define FF_Q4_K_BYTES 144
#define FF_Q6_K_BYTES 210

uint16_t ff_fp16_from_f32(float f);  // round to nearest even, as f16c
float ff_fp16_to_f32(uint16_t h);
void ff_q4_k_scales(uint8_t sc[8], uint8_t mn[8], const uint8_t *s);  // 12 packed bytes -> six-bit scales, mins

// prefill with avx-512 vnni (ff_qdot.c): 32 rows of a q8_0/q4_0 W packed into a panel of 4-byte groups
// interleaved across the rows, swept by every activation row
#define FF_QP_NR 32
#define FF_QP_BYTES(nb) ((size_t)(nb) * (8 * 4 * FF_QP_NR + 4 * FF_QP_NR))  // a panel of nb blocks
// y (m, nr) row stride ldy = A (m,k) . W (nr,k)^T for nr <= 32 rows of W; panel: FF_QP_BYTES(k/32) of scratch
void ff_qgemm_panel_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a, int64_t m,
                         int qtype, void *panel);

// the r16 layout of a q8_0/q4_0 W (n % 16 == 0): groups of 16 rows, each group's blocks in order, a block of
// the group being 16 fp16 scales then the values as 4-byte groups interleaved across the 16 rows, group c at
// 64c: q8_0 bytes 4c..4c+3 + 128 (c < 8), q4_0 nibble bytes 4c..4c+3 (c < 4); a block of 16 rows takes the bytes
// of 16 ggml blocks. one vpdpbusd then multiplies 4 activations with 16 rows.
#define FF_R16 16

// several Ws (n_p, k) sharing one x (m, k): x is quantized once and one parallel job covers every row of
// them; the same base qtype for all, each n_p but the last a multiple of FF_QP_NR (FF_EINVAL otherwise)
typedef struct ff_qpart {
    float *y;           // (m, n)
    const void *w;      // (n, k) blocks
    const float *bias;  // (n,) or NULL
    int64_t n;
    int dtype;          // ggml type id, | FF_QT_R16 for the r16 layout
} ff_qpart;
int ff_linear_q_parts(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k);
// y (m, n) row stride ldy = A (m <= 4 rows) . W (n, k)^T for W in the r16 layout (q4: q4_0, else q8_0)
void ff_qdot_r16_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a, int m,
                     int q4);
void ff_qdot_r16_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a, int m,
                      int q4);

#endif
