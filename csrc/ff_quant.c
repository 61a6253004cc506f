// ggml-compatible quantized weights: q8_0 and q4_0 (32 weights per block), q4_k and q6_k (256 per
// super-block), f16 and bf16; their quantizers, dequantizers, fp16 conversion, the activation quantizer,
// the scalar dot kernels (the SIMD dot kernels are in ff_qdot.c, the quantized linear in ff_qlinear.c)
#include "ff_quant.h"

#include "ff_qk2.h"  // FF_Q5_K_BYTES, ff_repack_r16_q2_k/q3_k, ff_qlegacy.h's q4_1/q5_0/q5_1/iq4_xs ones

#include <math.h>
#include <string.h>

// ---- block layouts, byte for byte as ggml stores them (little-endian, fp16 scales) ----
typedef struct {
    uint16_t d;
    int8_t qs[32];
} blk_q8_0;  // w[j] = d * qs[j]
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} blk_q4_0;  // w[j] = d * ((qs[j] & 15) - 8), w[j+16]: qs[j] >> 4
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
} blk_q4_k;  // 8 x 32: d*sc*q - dmin*m
typedef struct {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} blk_q6_k;  // 16 x 16: d*sc*(q-32)
_Static_assert(sizeof(blk_q8_0) == FF_Q8_0_BYTES && sizeof(blk_q4_0) == FF_Q4_0_BYTES, "ggml block sizes");
_Static_assert(sizeof(blk_q4_k) == FF_Q4_K_BYTES && sizeof(blk_q6_k) == FF_Q6_K_BYTES, "ggml super-block sizes");

// ---- fp16 and bf16 (ff_quant.h has the scalar fp16 conversions; the f16c kernels in ff_qdot.c round the same way) ----

static inline uint16_t bf16_from_f32(float f) {
    // round to nearest even; nan becomes quiet (as ggml and the gguf package)
    uint32_t x = ff_f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static inline float bf16_to_f32(uint16_t h) { return ff_f32_from_bits((uint32_t)h << 16); }

void ff_fp32_to_fp16_row_ref(uint16_t *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ff_fp32_to_fp16(x[i]);
}

void ff_fp16_to_fp32_row_ref(float *restrict y, const uint16_t *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ff_fp16_to_fp32(x[i]);
}

// ---- quantizers: the same arithmetic as the gguf package's reference (and ggml's *_ref) ----

void ff_quantize_row_q8_0(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // x (k,) -> k/32 blocks: d = max|x| / 127, q = round(x / d) half away from zero
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        ff_st_fp16(dst, d);
        for (int j = 0; j < 32; j++) {
            float v = roundf(x[j] * id);
            dst[2 + j] = (uint8_t)(int8_t)(v == v ? v : 0.0f);  // nan only from non-finite input
        }
    }
}

void ff_quantize_row_q4_0(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // x (k,) -> k/32 blocks: d = -(the value of largest magnitude, first one wins) / 8, q = min(15, trunc(x/d + 8.5))
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_Q4_0_BYTES) {
        float amax = fabsf(x[0]), max = x[0];
        for (int j = 1; j < 32; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        ff_st_fp16(dst, d);
        for (int j = 0; j < 16; j++) {
            float v0 = x[j] * id + 8.5f, v1 = x[j + 16] * id + 8.5f;
            uint8_t q0 = v0 >= 15.0f ? 15 : v0 > 0.0f ? (uint8_t)v0 : 0;
            uint8_t q1 = v1 >= 15.0f ? 15 : v1 > 0.0f ? (uint8_t)v1 : 0;
            dst[2 + j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

// ---- dequantizers: the gguf package's arithmetic, so results are bitwise equal ----

void ff_dequantize_row_q8_0(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_Q8_0_BYTES, y += 32) {
        float d = ff_ld_fp16(src);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)src[2 + j] * d;
    }
}

void ff_dequantize_row_q4_0(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_Q4_0_BYTES, y += 32) {
        float d = ff_ld_fp16(src);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((src[2 + j] & 15) - 8);
            y[j + 16] = d * (float)((src[2 + j] >> 4) - 8);
        }
    }
}

static void q4_k_scales(uint8_t sc[8], uint8_t mn[8], const uint8_t *s) {
    // 12 bytes -> 8 six-bit scales and 8 six-bit mins (ggml's get_scale_min_k4)
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
            mn[j] = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
        }
    }
}

void ff_dequantize_row_q4_k(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 256; b++, src += FF_Q4_K_BYTES) {
        float d = ff_ld_fp16(src), dmin = ff_ld_fp16(src + 2);
        uint8_t sc[8], mn[8];
        q4_k_scales(sc, mn, src + 4);
        const uint8_t *q = src + 16;
        // four groups of 32 bytes: low nibbles are sub-block 2j, high nibbles 2j+1
        for (int j = 0; j < 4; j++, q += 32) {
            float d1 = d * sc[2 * j], m1 = dmin * mn[2 * j], d2 = d * sc[2 * j + 1], m2 = dmin * mn[2 * j + 1];
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

// q (0..63) of element l (0..255) of a q6_k super-block, and its sub-block (0..15)
static inline int q6_k_value(const uint8_t *src, int l, int *sub) {
    int h = l / 128, g = (l % 128) / 32, e = l % 32;
    const uint8_t *ql = src + 64 * h, *qh = src + 128 + 32 * h;
    int lo = (g & 1) ? ql[32 + e] : ql[e];
    lo = (g & 2) ? lo >> 4 : lo & 15;
    *sub = 8 * h + 2 * g + e / 16;
    return lo | ((qh[e] >> (2 * g)) & 3) << 4;
}

void ff_dequantize_row_q6_k(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 256; b++, src += FF_Q6_K_BYTES, y += 256) {
        float d = ff_ld_fp16(src + 208);
        const int8_t *sc = (const int8_t *)(src + 192);
        for (int l = 0; l < 256; l++) {
            int sub, q = q6_k_value(src, l, &sub);
            y[l] = d * (float)sc[sub] * (float)(q - 32);
        }
    }
}

// f32, f16 and bf16 rows: one element per block
void ff_quantize_row_f32(uint8_t *restrict dst, const float *restrict x, int64_t k) { memcpy(dst, x, (size_t)k * 4); }

void ff_dequantize_row_f32(float *restrict y, const uint8_t *restrict src, int64_t k) { memcpy(y, src, (size_t)k * 4); }

void ff_quantize_row_f16(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    ff_kern->fp32_to_fp16_row((uint16_t *)(void *)dst, x, k);
}

void ff_dequantize_row_f16(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t j = 0; j < k; j++) y[j] = ff_ld_fp16(src + 2 * j);
}

void ff_quantize_row_bf16(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    for (int64_t j = 0; j < k; j++) {
        uint16_t h = bf16_from_f32(x[j]);
        memcpy(dst + 2 * j, &h, 2);
    }
}

void ff_dequantize_row_bf16(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t j = 0; j < k; j++) {
        uint16_t h;
        memcpy(&h, src + 2 * j, 2);
        y[j] = bf16_to_f32(h);
    }
}

typedef struct {
    void *q;
    float *f;
    ff_quantize_row_fn quantize;
    ff_dequantize_row_fn dequantize;
    int64_t rows, cols, row_bytes;
} convert_ctx;

static void convert_task(void *arg, int ith, int nth) {
    convert_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->rows, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        uint8_t *q = (uint8_t *)c->q + r * c->row_bytes;
        float *f = c->f + r * c->cols;
        if (c->quantize)
            c->quantize(q, f, c->cols);
        else
            c->dequantize(f, q, c->cols);
    }
}

// one row converter over every row, split across threads
static int convert(void *q, float *f, ff_quantize_row_fn quantize, ff_dequantize_row_fn dequantize, int qtype,
                   int64_t rows, int64_t cols) {
    int64_t rb = ff_qtype_row_bytes(qtype, cols);
    if (rb < 0 || rows < 0 || (!quantize && !dequantize)) return FF_EINVAL;
    convert_ctx c = {q, f, quantize, dequantize, rows, cols, rb};
    ff_parallel(convert_task, &c, rows * cols < (1 << 16) ? 1 : ff_get_num_threads());
    return FF_OK;
}

int ff_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols) {
    if (!ff_qtype_has(qtype, FF_QF_QUANTIZE)) return FF_EINVAL;
    return convert(dst, (float *)w, ff_kern->quantize_row[qtype], NULL, qtype, rows, cols);
}

int ff_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols) {
    if (!ff_qtype_has(qtype, FF_QF_DEQUANT)) return FF_EINVAL;
    return convert((void *)src, y, NULL, ff_kern->dequantize_row[qtype], qtype, rows, cols);
}

// ---- activations: int8 with a float scale per 32 (or 256), round to nearest even ----

void ff_quant_act_q8_ref(int8_t *restrict q, float *restrict d, int16_t *restrict s, const float *restrict x, int64_t k,
                         int bs) {
    // x (k,) -> q (k,), d (k/32,) with x ~ d * q (one scale per bs elements), s (k/16,) sums of q
    float db = 0.0f, id = 0.0f;
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        if (b % (bs / 32) == 0) {
            float amax = 0.0f;
            for (int j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(xb[j]));
            db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        }
        d[b] = db;
        for (int h = 0; h < 2; h++) {
            int sum = 0;
            for (int j = 16 * h; j < 16 * h + 16; j++) {
                int v = (int)nearbyintf(xb[j] * id);
                q[32 * b + j] = (int8_t)v;
                sum += v;
            }
            s[2 * b + h] = (int16_t)sum;
        }
    }
}

// ---- scalar dot kernels: y (m,n) row stride ldy = A (m,k) . W (n,k)^T ----

void ff_qdot_q8_0_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    // one int dot per 32-block, scaled by d_w * d_a
    int64_t nb = a->k / 32;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        for (int i = 0; i < m; i++) {
            const int8_t *aq = a->q + i * a->kp;
            const float *ad = a->d + i * (a->kp / 32);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + FF_Q8_0_BYTES * b;
                int32_t isum = 0;
                for (int t = 0; t < 32; t++) isum += (int8_t)blk[2 + t] * aq[32 * b + t];
                acc += (float)isum * (ff_ld_fp16(blk) * ad[b]);
            }
            y[i * ldy + j] = acc;
        }
    }
}

void ff_qdot_q4_0_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    // int dot of the nibbles minus 8 * the activation sum, per 32-block, scaled by d_w * d_a
    int64_t nb = a->k / 32;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        for (int i = 0; i < m; i++) {
            const int8_t *aq = a->q + i * a->kp;
            const float *ad = a->d + i * (a->kp / 32);
            const int16_t *as = a->s + i * (a->kp / 16);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + FF_Q4_0_BYTES * b;
                int32_t isum = -8 * (as[2 * b] + as[2 * b + 1]);
                for (int t = 0; t < 16; t++)
                    isum += (blk[2 + t] & 15) * aq[32 * b + t] + (blk[2 + t] >> 4) * aq[32 * b + 16 + t];
                acc += (float)isum * (ff_ld_fp16(blk) * ad[b]);
            }
            y[i * ldy + j] = acc;
        }
    }
}

// one q4_k (q5 = 0) or q5_k (q5 = 1) super-block . its 256 activations (one activation scale per 256, as the K
// types' are quantized): the exact int sums over its 32-blocks s of sc_s * (q . a) and of m_s * sum(a), scaled once
// by d * d_a and dmin * d_a into the row's one float accumulator, super-blocks in order. q5_k's value of weight
// 32s + l is q4_k's nibble (its qs at 48) plus bit s of qh[l] (at 16) as 16. |sums| <= 8 * 63 * 32 * 31 * 127
static float k4_sb_ref(float acc, const uint8_t *blk, const int8_t *aq, float ad, const int16_t *as, int q5) {
    const uint8_t *q = blk + (q5 ? 48 : 16), *qh = blk + 16;
    uint8_t sc[8], mn[8];
    q4_k_scales(sc, mn, blk + 4);
    int32_t isum = 0, msum = 0;
    for (int s = 0; s < 8; s++) {
        int32_t dot = 0;
        for (int t = 0; t < 32; t++) {
            int v = (q[32 * (s / 2) + t] >> (4 * (s & 1))) & 15;
            if (q5) v |= ((qh[t] >> s) & 1) << 4;
            dot += v * aq[32 * s + t];
        }
        isum += sc[s] * dot;
        msum += mn[s] * (as[2 * s] + as[2 * s + 1]);
    }
    acc = fmaf((float)isum, ff_ld_fp16(blk) * ad, acc);
    return fmaf(-(float)msum, ff_ld_fp16(blk + 2) * ad, acc);
}

static void qdot_k4_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                        const ff_qact *a, int m, int q5) {
    int64_t nsb = a->k / 256, kp = a->kp, bsz = q5 ? FF_Q5_K_BYTES : FF_Q4_K_BYTES;
    for (int64_t j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int64_t sb = 0; sb < nsb; sb++)
                acc = k4_sb_ref(acc, w + j * stride + bsz * sb, a->q + i * kp + 256 * sb, a->d[i * (kp / 32) + 8 * sb],
                                a->s + i * (kp / 16) + 16 * sb, q5);
            y[i * ldy + j] = acc;
        }
}

void ff_qdot_q4_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    qdot_k4_ref(y, ldy, w, stride, n, a, m, 0);
}

void ff_qdot_q5_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    qdot_k4_ref(y, ldy, w, stride, n, a, m, 1);
}

// one q6_k super-block . its 256 activations (one activation scale per 256, as q6_k's are quantized): the exact
// int sum over the 16-sub-blocks t of sc_t * (q . a - 32 * sum(a)), q in 0..63, scaled once by d * d_a into the
// row's one float accumulator, super-blocks in order. |sum| <= 16 * 128 * 16 * 32 * 127 < 2^31
static float q6_k_sb_ref(float acc, const uint8_t *blk, const int8_t *aq, float ad, const int16_t *as) {
    const int8_t *sc = (const int8_t *)(blk + 192);
    int32_t isum[16] = {0}, sum = 0;
    for (int l = 0; l < 256; l++) {
        int sub, q = q6_k_value(blk, l, &sub);
        isum[sub] += q * aq[l];
    }
    for (int t = 0; t < 16; t++) sum += sc[t] * (isum[t] - 32 * as[t]);
    return fmaf((float)sum, ff_ld_fp16(blk + 208) * ad, acc);
}

void ff_qdot_q6_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    int64_t nsb = a->k / 256, kp = a->kp;
    for (int64_t j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int64_t sb = 0; sb < nsb; sb++)
                acc = q6_k_sb_ref(acc, w + j * stride + FF_Q6_K_BYTES * sb, a->q + i * kp + 256 * sb,
                                  a->d[i * (kp / 32) + 8 * sb], a->s + i * (kp / 16) + 16 * sb);
            y[i * ldy + j] = acc;
        }
}

// ---- the r16 layout (ff_quant.h): repacking and the scalar kernel ----

typedef struct {
    uint8_t *dst;
    const uint8_t *src;
    int qtype;
    int64_t rows, nb;  // nb: blocks (q8_0, q4_0) or super-blocks (q4_k, q5_k, q6_k) per row
} repack_ctx;

// q8_0 / q4_0 group g: block b of its 16 rows, scales then 4-byte groups interleaved across the rows
static void repack_group_q(const repack_ctx *c, int64_t g) {
    int q4 = c->qtype == FF_QT_Q4_0 || c->qtype == FF_QT_IQ4_NL;  // iq4_nl: q4_0's layout
    int64_t bsz = q4 ? FF_Q4_0_BYTES : FF_Q8_0_BYTES;
    for (int64_t b = 0; b < c->nb; b++) {
        uint8_t *t = c->dst + (g * c->nb + b) * FF_R16 * bsz;
        for (int r = 0; r < FF_R16; r++) {
            const uint8_t *blk = c->src + ((g * FF_R16 + r) * c->nb + b) * bsz;
            // scale of row r, then its 4-byte groups at 64c + 4r (q8_0 + 128: xor of the sign bits)
            memcpy(t + 2 * r, blk, 2);
            for (int q = 0; q < (q4 ? 4 : 8); q++) {
                uint32_t u;
                memcpy(&u, blk + 2 + 4 * q, 4);
                if (!q4) u ^= 0x80808080u;
                memcpy(t + 2 * FF_R16 + 64 * q + 4 * r, &u, 4);
            }
        }
    }
}

// q4_k/q5_k group g: per super-block a tile of its 16 rows, the header, then per p q5_k's qh bytes and the nibble
// bytes of each c (ff_quant.h)
static void repack_group_k4(const repack_ctx *c, int64_t g) {
    int q5 = c->qtype == FF_QT_Q5_K;
    int64_t bsz = q5 ? FF_Q5_K_BYTES : FF_Q4_K_BYTES, qs = q5 ? 48 : 16;
    for (int64_t sb = 0; sb < c->nb; sb++) {
        uint8_t *h = c->dst + (g * c->nb + sb) * FF_R16 * bsz, *v = h + FF_R16_K_HEAD;
        for (int r = 0; r < FF_R16; r++) {
            const uint8_t *blk = c->src + ((g * FF_R16 + r) * c->nb + sb) * bsz;
            memcpy(h + 2 * r, blk, 2);
            memcpy(h + 32 + 2 * r, blk + 2, 2);
            for (int w = 0; w < 3; w++) memcpy(h + 64 + 64 * w + 4 * r, blk + 4 + 4 * w, 4);
            for (int q = 0; q < 4; q++)
                for (int p = 0; p < 8; p++) memcpy(v + FF_R16_K_NIB(q5, q, p) + 4 * r, blk + qs + 32 * q + 4 * p, 4);
            for (int p = 0; q5 && p < 8; p++) memcpy(v + FF_R16_K_QH(p) + 4 * r, blk + 16 + 4 * p, 4);
        }
    }
}

// q6_k group g: per super-block a tile of its 16 rows, the header then the 4-byte groups (h, p, j) (ff_quant.h)
static void repack_group_q6_k(const repack_ctx *c, int64_t g) {
    for (int64_t sb = 0; sb < c->nb; sb++) {
        uint8_t *h = c->dst + (g * c->nb + sb) * FF_R16 * FF_Q6_K_BYTES, *v = h + FF_R16_Q6_K_HEAD;
        for (int r = 0; r < FF_R16; r++) {
            const uint8_t *blk = c->src + ((g * FF_R16 + r) * c->nb + sb) * FF_Q6_K_BYTES;
            memcpy(h + 2 * r, blk + 208, 2);
            for (int t = 0; t < 16; t++) h[32 + 16 * t + r] = blk[192 + t];
            for (int hf = 0; hf < 2; hf++)
                for (int p = 0; p < 8; p++) {
                    uint8_t *o = v + (hf * 8 + p) * 3 * 64 + 4 * r;
                    memcpy(o, blk + 64 * hf + 4 * p, 4);
                    memcpy(o + 64, blk + 64 * hf + 32 + 4 * p, 4);
                    memcpy(o + 128, blk + 128 + 32 * hf + 4 * p, 4);
                }
        }
    }
}

static void repack_task(void *arg, int ith, int nth) {
    repack_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->rows / FF_R16, ith, nth, 1, &lo, &hi);
    for (int64_t g = lo; g < hi; g++) {
        if (c->qtype == FF_QT_Q4_K || c->qtype == FF_QT_Q5_K)
            repack_group_k4(c, g);
        else if (c->qtype == FF_QT_Q6_K)
            repack_group_q6_k(c, g);
        else if (c->qtype == FF_QT_Q4_1)
            ff_repack_r16_q4_1(c->dst, c->src, g, c->nb);
        else if (c->qtype == FF_QT_Q5_0)
            ff_repack_r16_q5_0(c->dst, c->src, g, c->nb);
        else if (c->qtype == FF_QT_Q5_1)
            ff_repack_r16_q5_1(c->dst, c->src, g, c->nb);
        else if (c->qtype == FF_QT_IQ4_XS)
            ff_repack_r16_iq4_xs(c->dst, c->src, g, c->nb);
        else if (c->qtype == FF_QT_Q2_K)
            ff_repack_r16_q2_k(c->dst, c->src, g, c->nb);
        else if (c->qtype == FF_QT_Q3_K)
            ff_repack_r16_q3_k(c->dst, c->src, g, c->nb);
        else
            repack_group_q(c, g);
    }
}

int ff_qrepack_r16(void *dst, const void *src, int qtype, int64_t rows, int64_t cols) {
    int64_t per = ff_qtype_has(qtype, FF_QF_R16) ? ff_qtype_block(qtype) : 0;
    if (!per || rows < 0 || rows % FF_R16 || cols < 0 || cols % per) return FF_EINVAL;
    repack_ctx c = {dst, src, qtype, rows, cols / per};
    ff_parallel(repack_task, &c, rows * cols < (1 << 20) ? 1 : ff_get_num_threads());
    return FF_OK;
}

int ff_qrepack_r16_pays(void) { return ff_kern->q.r16_fast; }

static void qdot_r16_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a, int m,
                         int q4) {
    // per block of each row: the int dot of its (unsigned) values with a, from the lane sum -c * sum(a),
    // times d_w * d_a in one fused multiply-add; even and odd blocks summed apart (the vnni kernel's operations)
    int64_t nb = a->k / 32, kp = a->kp, tb = FF_R16 * (q4 ? FF_Q4_0_BYTES : FF_Q8_0_BYTES);
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *t = w + (g * nb + b) * tb, *v = t + 2 * FF_R16;
                    const int8_t *aq = a->q + i * kp + 32 * b;
                    int32_t isum = a->lanes[i * (kp / 4) + 8 * b];
                    for (int c = 0; c < (q4 ? 4 : 8); c++)
                        for (int e = 0; e < 4; e++) {
                            int u = v[64 * c + 4 * r + e];
                            if (q4)
                                isum += (u & 15) * aq[4 * c + e] + (u >> 4) * aq[16 + 4 * c + e];
                            else
                                isum += u * aq[4 * c + e];
                        }
                    acc[b & 1] = fmaf((float)isum, ff_ld_fp16(t + 2 * r) * a->d[i * (kp / 32) + b], acc[b & 1]);
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}

void ff_qdot_r16_q8_0_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    qdot_r16_ref(y, ldy, w, n, a, m, 0);
}

void ff_qdot_r16_q4_0_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    qdot_r16_ref(y, ldy, w, n, a, m, 1);
}

// row r's ggml super-block sb back from a q4_k, q5_k or q6_k r16 group at w (the inverse of repack_group_*)
static void r16_k_block(uint8_t *blk, const uint8_t *w, int64_t sb, int r, int qtype) {
    if (qtype == FF_QT_Q6_K) {
        const uint8_t *h = w + sb * FF_R16 * FF_Q6_K_BYTES, *v = h + FF_R16_Q6_K_HEAD;
        memcpy(blk + 208, h + 2 * r, 2);
        for (int t = 0; t < 16; t++) blk[192 + t] = h[32 + 16 * t + r];
        for (int hf = 0; hf < 2; hf++)
            for (int p = 0; p < 8; p++) {
                const uint8_t *o = v + (hf * 8 + p) * 3 * 64 + 4 * r;
                memcpy(blk + 64 * hf + 4 * p, o, 4);
                memcpy(blk + 64 * hf + 32 + 4 * p, o + 64, 4);
                memcpy(blk + 128 + 32 * hf + 4 * p, o + 128, 4);
            }
        return;
    }
    int q5 = qtype == FF_QT_Q5_K;
    int64_t bsz = q5 ? FF_Q5_K_BYTES : FF_Q4_K_BYTES, qs = q5 ? 48 : 16;
    const uint8_t *h = w + sb * FF_R16 * bsz, *v = h + FF_R16_K_HEAD;
    memcpy(blk, h + 2 * r, 2);
    memcpy(blk + 2, h + 32 + 2 * r, 2);
    for (int wd = 0; wd < 3; wd++) memcpy(blk + 4 + 4 * wd, h + 64 + 64 * wd + 4 * r, 4);
    for (int q = 0; q < 4; q++)
        for (int p = 0; p < 8; p++) memcpy(blk + qs + 32 * q + 4 * p, v + FF_R16_K_NIB(q5, q, p) + 4 * r, 4);
    for (int p = 0; q5 && p < 8; p++) memcpy(blk + 16 + 4 * p, v + FF_R16_K_QH(p) + 4 * r, 4);
}

static void qdot_r16_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                           int m, int qtype) {
    // each row of each group of 16, gathered back super-block by super-block, through the row kernel's arithmetic
    int64_t nsb = a->k / 256, kp = a->kp, bsz = ff_qtype_row_bytes(qtype, 256);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nsb * FF_R16 * bsz;
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                const int8_t *aq = a->q + i * kp;
                const float *ad = a->d + i * (kp / 32);
                const int16_t *as = a->s + i * (kp / 16);
                float acc = 0.0f;
                for (int64_t sb = 0; sb < nsb; sb++) {
                    uint8_t blk[FF_Q6_K_BYTES];
                    r16_k_block(blk, t, sb, r, qtype);
                    if (qtype == FF_QT_Q6_K)
                        acc = q6_k_sb_ref(acc, blk, aq + 256 * sb, ad[8 * sb], as + 16 * sb);
                    else
                        acc = k4_sb_ref(acc, blk, aq + 256 * sb, ad[8 * sb], as + 16 * sb, qtype == FF_QT_Q5_K);
                }
                y[i * ldy + g * FF_R16 + r] = acc;
            }
    }
}

void ff_qdot_r16_q4_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    qdot_r16_k_ref(y, ldy, w, n, a, m, FF_QT_Q4_K);
}

void ff_qdot_r16_q5_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    qdot_r16_k_ref(y, ldy, w, n, a, m, FF_QT_Q5_K);
}

void ff_qdot_r16_q6_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    qdot_r16_k_ref(y, ldy, w, n, a, m, FF_QT_Q6_K);
}

void ff_fp32_to_fp16_row(uint16_t *y, const float *x, int64_t n) { ff_kern->fp32_to_fp16_row(y, x, n); }

void ff_fp16_to_fp32_row(float *y, const uint16_t *x, int64_t n) { ff_kern->fp16_to_fp32_row(y, x, n); }
