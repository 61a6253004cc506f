// shared by the quantization files: block sizes, the scalar fp16 conversions, the panel and r16 layouts
#ifndef FF_QUANT_H
#define FF_QUANT_H

#include "ff_internal.h"

#include <string.h>

// bytes per block of 32 (q8_0, q4_0) or per super-block of 256 (q4_k, q6_k)
#define FF_Q8_0_BYTES 34
#define FF_Q4_0_BYTES 18
#define FF_Q4_K_BYTES 144
#define FF_Q6_K_BYTES 210

static inline uint32_t ff_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float ff_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// one float to fp16, rounding to nearest even like f16c's vcvtps2ph; nan keeps its sign and top payload bits
// and becomes quiet
static inline uint16_t ff_fp32_to_fp16(float f) {
    uint32_t x = ff_f32_bits(f), sign = (x >> 16) & 0x8000, a = x & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00);  // 65520 and up round to inf
    if (a < 0x38800000) {
        // below 2^-14 the result is subnormal: adding 0.5 rounds |f| to a multiple of 2^-24, nearest even
        return (uint16_t)(sign | (ff_f32_bits(ff_f32_from_bits(a) + 0.5f) - 0x3f000000));
    }
    a -= 0x38000000;  // rebias the exponent from 127 to 15
    return (uint16_t)(sign | ((a + 0xfff + ((a >> 13) & 1)) >> 13));
}

// one fp16 to float, exact; nan becomes quiet like f16c's vcvtph2ps
static inline float ff_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return ff_f32_from_bits(sign | 0x7f800000 | (m << 13) | (m ? 0x400000 : 0));
    if (e == 0) return ff_f32_from_bits(sign | ff_f32_bits((float)m * 0x1p-24f));
    return ff_f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

// an fp16 stored at p (any alignment, little-endian as in ggml blocks), as float; and the reverse
static inline float ff_ld_fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return ff_fp16_to_fp32(h);
}

static inline void ff_st_fp16(uint8_t *p, float f) {
    uint16_t h = ff_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

// prefill with avx-512 vnni (ff_qdot.c): 32 rows of a q8_0/q4_0 W packed into a panel of 4-byte groups
// interleaved across the rows, swept by every activation row
#define FF_QP_NR 32
#define FF_QP_BYTES(nb) ((size_t)(nb) * (8 * 4 * FF_QP_NR + 4 * FF_QP_NR))  // a panel of nb blocks

// the r16 layout of a q8_0/q4_0 W (n % 16 == 0): groups of 16 rows, each group's blocks in order, a block of
// the group being 16 fp16 scales then the values as 4-byte groups interleaved across the 16 rows, group c at
// 64c: q8_0 bytes 4c..4c+3 + 128 (c < 8), q4_0 nibble bytes 4c..4c+3 (c < 4); a block of 16 rows takes the bytes
// of 16 ggml blocks. one vpdpbusd then multiplies 4 activations with 16 rows.
#define FF_R16 16
// activation rows one r16 call takes: up to 8 for q8_0/q4_0/q4_k/q5_k/q6_k, up to 4 for the other types
#define FF_R16_MR 8
#define FF_R16_MR_K 4
// the r16 layout of a q4_k/q5_k W: groups of 16 rows, a group being a tile per super-block of 16 * 144 (176)
// bytes: the header, FF_R16_K_HEAD bytes (16 fp16 d, 16 fp16 dmin, then the 12 scale bytes as 3 words w at 64 +
// 64w + 4r for row r), then 64-byte groups of 4 bytes per row, p < 8 outermost: q5_k's qh bytes 4p..+3 (at
// FF_R16_K_QH(p)), then for c < 4 the nibble bytes 32c + 4p..+3 (at FF_R16_K_NIB(q5, c, p)), whose low nibbles are
// weights 64c + 4p.. (32-block 2c) and high ones 64c + 32 + 4p.. (32-block 2c + 1). decode reads a tile front to
// back, which the hardware prefetchers follow
#define FF_R16_K_HEAD 256
#define FF_R16_K_QH(p) (320 * (p))
#define FF_R16_K_NIB(q5, c, p) ((q5) ? 320 * (p) + 64 + 64 * (c) : 256 * (p) + 64 * (c))
// the r16 layout of a q6_k W: a tile per super-block of 16 * 210 bytes: the header, FF_R16_Q6_K_HEAD bytes (16
// fp16 d, then the int8 scale of 16-sub-block t of row r at 32 + 16t + r), then 64-byte groups (h, p, j), h < 2
// outermost, of 4 bytes per row: j = 0 ql bytes 64h + 4p..+3, j = 1 ql bytes 64h + 32 + 4p..+3, j = 2 qh bytes
// 32h + 4p..+3. the q4_k/q5_k/q6_k kernels (row, r16 and scalar) sum a super-block's scaled 32-blocks (q4_k,
// q5_k) or 16-sub-blocks (q6_k) in int32, exactly, and scale that once per super-block (activations quantized per
// 256), so every kernel gives the scalar twin's bits
#define FF_R16_Q6_K_HEAD 288

// several Ws (n_p, k) sharing one x (m, k): x is quantized once and one parallel job covers every row of
// them; the same base qtype for all, each n_p but the last a multiple of FF_QP_NR (FF_EINVAL otherwise)
typedef struct ff_qpart {
    float *y;           // (m, n)
    const void *w;      // (n, k) blocks
    const float *bias;  // (n,) or NULL
    int64_t n;
    int dtype;  // ggml type id, | FF_QT_R16 for the r16 layout
} ff_qpart;
int ff_linear_q_parts(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k);
// as ff_linear_q_parts on the given enum ff_lin_path
int ff_linear_q_parts_path(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k, int path);
// as ff_linear_q_parts_path, naming the call that comes next (next_k columns; NULL: none): a worker done with its
// share reads the start of its share of that one while it waits. The caller makes that call next, or calls
// ff_pool_settle before it lets next's weights go. `stream`: the bytes of weights the caller reads in turn, this
// call's among them (a model's decode step), which decide the decode kernels' prefetch (ff_quant_ahead_for); 0:
// this call's own
int ff_linear_q_parts_next(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k, int path,
                           const ff_qpart *next, int nnext, int64_t next_k, int64_t stream);
#endif
