// q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.h): quantizers, dequantizers and the scalar dot kernels
#include "ff_qlegacy.h"

#include <math.h>
#include <string.h>

#include "ff_internal.h"
#include "ff_qk2.h"  // FF_IQ4_XS_BYTES
#include "ff_quant.h"

const int8_t ff_iq4_nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// trunc(v) clipped to 0..top, as the gguf package (nan -> 0)
static inline int trunc_clip(float v, int top) { return v >= (float)top ? top : v > 0.0f ? (int)v : 0; }

// 32 codes -> 16 nibble bytes (weights j and j + 16 share byte j) and, for 5-bit codes, the 32 high bits
static void pack_codes(uint8_t *restrict qs, uint8_t *restrict qh, const uint8_t *restrict q) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j;
    if (qh) memcpy(qh, &h, 4);
}

// code of weight j of a 32-block: nibble j % 16 of qs, low for j < 16, plus bit j of qh << 4 for 5 bits
static inline int code_of(const uint8_t *qs, const uint8_t *qh, int j) {
    int q = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    if (qh) {
        uint32_t h;
        memcpy(&h, qh, 4);
        q |= (int)((h >> j) & 1) << 4;
    }
    return q;
}

// ---- quantizers ----

// with a minimum (q4_1, q5_1): d = (max - min) / top, q = trunc((x - min) / d + 0.5)
static void quantize_min(uint8_t *restrict dst, const float *restrict x, int64_t k, int top, int bsz) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += bsz) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < 32; j++) {
            if (x[j] < mn) mn = x[j];
            if (x[j] > mx) mx = x[j];
        }
        float d = (mx - mn) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
        ff_st_fp16(dst, d);
        ff_st_fp16(dst + 2, mn);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)trunc_clip((x[j] - mn) * id + 0.5f, top);
        pack_codes(dst + (top == 31 ? 8 : 4), top == 31 ? dst + 4 : NULL, q);
    }
}

void ff_quantize_row_q4_1(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    quantize_min(dst, x, k, 15, FF_Q4_1_BYTES);
}

void ff_quantize_row_q5_1(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    quantize_min(dst, x, k, 31, FF_Q5_1_BYTES);
}

void ff_quantize_row_q5_0(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // d = -(the value of largest magnitude, first one wins) / 16, q = min(31, trunc(x/d + 16.5))
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_Q5_0_BYTES) {
        float amax = fabsf(x[0]), max = x[0];
        for (int j = 1; j < 32; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        ff_st_fp16(dst, d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)trunc_clip(x[j] * id + 16.5f, 31);
        pack_codes(dst + 6, dst + 2, q);
    }
}

// index of the iq4_nl value nearest to v, ties as ggml's bisection: the upper one, and nan -> 15
static int iq4_nl_nearest(float v) {
    static const float t[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    if (v <= t[0]) return 0;
    if (!(v < t[15])) return 15;
    // lo: the last value <= v, counted without branches
    int lo = 0;
    for (int j = 1; j < 15; j++) lo += t[j] <= v;
    return v - t[lo] < t[lo + 1] - v ? lo : lo + 1;
}

// codes of xb for 1/scale id; sums w*q*x and w*q*q over the block with weights x*x
static void iq4_nl_fit(uint8_t *restrict q, float *sqx, float *sq2, const float *restrict xb, float id) {
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
        int l = iq4_nl_nearest(id * xb[j]);
        if (q) q[j] = (uint8_t)l;
        float v = ff_iq4_nl_values[l], wq = xb[j] * xb[j] * v;
        sumqx += wq * xb[j];
        sumq2 += wq * v;
    }
    *sqx = sumqx;
    *sq2 = sumq2;
}

void ff_quantize_row_iq4_nl(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // llama.cpp's search without an importance matrix: start from d = max / -127, try 15 scales around it,
    // keep the least-squares scale (weights x^2) of the best fit, then requantize with the fp32 scale
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_IQ4_NL_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        uint8_t q[32];
        float d = 0.0f;
        if (amax >= 1e-15f) {
            float sumqx, sumq2;
            iq4_nl_fit(NULL, &sumqx, &sumq2, x, 1.0f / (max / 127.0f));
            d = sumqx / sumq2;
            float best = d * sumqx;
            for (int t = -7; t <= 7; t++) {
                iq4_nl_fit(NULL, &sumqx, &sumq2, x, (float)(t - 127) / max);
                if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) d = sumqx / sumq2, best = d * sumqx;
            }
        }
        ff_st_fp16(dst, d);
        float sumqx, sumq2;
        iq4_nl_fit(q, &sumqx, &sumq2, x, d != 0.0f ? 1.0f / d : 0.0f);
        pack_codes(dst + 2, NULL, q);
    }
}

// ---- dequantizers: the gguf package's arithmetic (d * q, then + m), so results are bitwise equal ----

static void dequantize_min(float *restrict y, const uint8_t *restrict src, int64_t k, int five, int bsz) {
    for (int64_t b = 0; b < k / 32; b++, src += bsz, y += 32) {
        float d = ff_ld_fp16(src), m = ff_ld_fp16(src + 2);
        for (int j = 0; j < 32; j++) y[j] = d * (float)code_of(src + (five ? 8 : 4), five ? src + 4 : NULL, j) + m;
    }
}

void ff_dequantize_row_q4_1(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_min(y, src, k, 0, FF_Q4_1_BYTES);
}

void ff_dequantize_row_q5_1(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_min(y, src, k, 1, FF_Q5_1_BYTES);
}

void ff_dequantize_row_q5_0(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_Q5_0_BYTES, y += 32) {
        float d = ff_ld_fp16(src);
        for (int j = 0; j < 32; j++) y[j] = d * (float)(code_of(src + 6, src + 2, j) - 16);
    }
}

void ff_dequantize_row_iq4_nl(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_IQ4_NL_BYTES, y += 32) {
        float d = ff_ld_fp16(src);
        for (int j = 0; j < 32; j++) y[j] = d * (float)ff_iq4_nl_values[code_of(src + 2, NULL, j)];
    }
}

// ---- scalar dot kernels: y (m,n) row stride ldy = A (m,k) . W (n,k)^T ----

// per 32-block b of every row: the exact int dot of the (signed) weight codes with a, times d_w * d_a, and
// for q4_1/q5_1 the minimum's term m_w * d_a * sum(a), summed apart
static void qdot_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                     const ff_qact *a, int m, int qtype) {
    int64_t nb = a->k / 32, bsz = ff_qtype_block_bytes(qtype);
    int has_min = qtype == FF_QT_Q4_1 || qtype == FF_QT_Q5_1;
    int qs_at = qtype == FF_QT_Q5_1 ? 8 : qtype == FF_QT_Q5_0 ? 6 : has_min ? 4 : 2;
    int qh_at = qtype == FF_QT_Q5_1 ? 4 : qtype == FF_QT_Q5_0 ? 2 : 0;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        for (int i = 0; i < m; i++) {
            const int8_t *aq = a->q + i * a->kp;
            const float *ad = a->d + i * (a->kp / 32);
            const int16_t *as = a->s + i * (a->kp / 16);
            float acc = 0.0f, corr = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + bsz * b;
                int32_t isum = 0;
                for (int t = 0; t < 32; t++) {
                    int q = code_of(blk + qs_at, qh_at ? blk + qh_at : NULL, t);
                    int v = qtype == FF_QT_IQ4_NL ? ff_iq4_nl_values[q] : qtype == FF_QT_Q5_0 ? q - 16 : q;
                    isum += v * aq[32 * b + t];
                }
                acc += (float)isum * (ff_ld_fp16(blk) * ad[b]);
                if (has_min) corr += ff_ld_fp16(blk + 2) * (ad[b] * (float)(as[2 * b] + as[2 * b + 1]));
            }
            y[i * ldy + j] = acc + corr;
        }
    }
}

#define FF_QLEGACY_REF(qt, id)                                                                                         \
    void ff_qdot_##qt##_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m) {                                                                 \
        qdot_ref(y, ldy, w, stride, n, a, m, id);                                                                      \
    }
FF_QLEGACY_REF(q4_1, FF_QT_Q4_1)
FF_QLEGACY_REF(q5_0, FF_QT_Q5_0)
FF_QLEGACY_REF(q5_1, FF_QT_Q5_1)
FF_QLEGACY_REF(iq4_nl, FF_QT_IQ4_NL)

// ---- q4_1, iq4_nl and iq4_xs on their r16 layouts (ff_qlegacy.h): repacking and the scalar twins ----

// q4_1 (five = 0), q5_0 and q5_1 group g: d, m (q4_1, q5_1), high bits transposed (q5_0, q5_1), nibble groups
static void repack_r16_legacy(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb, int qtype) {
    int64_t bsz = ff_qtype_block_bytes(qtype);
    int has_min = qtype != FF_QT_Q5_0, five = qtype != FF_QT_Q4_1, at = 32 + 32 * has_min;
    for (int r = 0; r < FF_R16; r++)
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = src + ((g * FF_R16 + r) * nb + b) * bsz;
            uint8_t *t = dst + (g * nb + b) * FF_R16 * bsz;
            memcpy(t + 2 * r, blk, 2);
            if (has_min) memcpy(t + 32 + 2 * r, blk + 2, 2);
            if (five) {
                // bit g of byte 4r + e: the high bit of weight 4g + e (bit 4g + e of qh)
                uint32_t h;
                memcpy(&h, blk + 2 + 2 * has_min, 4);
                for (int e = 0; e < 4; e++) {
                    uint8_t v = 0;
                    for (int q = 0; q < 8; q++) v |= (uint8_t)(((h >> (4 * q + e)) & 1) << q);
                    t[at + 4 * r + e] = v;
                }
            }
            const uint8_t *qs = blk + bsz - 16;
            for (int c = 0; c < 4; c++) memcpy(t + at + 64 * five + 64 * c + 4 * r, qs + 4 * c, 4);
        }
}

void ff_repack_r16_q4_1(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb) {
    repack_r16_legacy(dst, src, g, nb, FF_QT_Q4_1);
}

void ff_repack_r16_q5_0(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb) {
    repack_r16_legacy(dst, src, g, nb, FF_QT_Q5_0);
}

void ff_repack_r16_q5_1(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nb) {
    repack_r16_legacy(dst, src, g, nb, FF_QT_Q5_1);
}

static void qdot_r16_legacy_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                                int m, int qtype) {
    // per block of each row: the int dot of its codes (q5_0: from -16 * sum(a)) times d_w * d_a, then for q4_1 and
    // q5_1 m_w times d_a * sum(a)
    int64_t nb = a->k / 32, kp = a->kp, tb = FF_R16 * ff_qtype_block_bytes(qtype);
    int has_min = qtype != FF_QT_Q5_0, five = qtype != FF_QT_Q4_1, at = 32 + 32 * has_min;
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *t = w + (g * nb + b) * tb, *h = t + at, *v = t + at + 64 * five;
                    const int8_t *aq = a->q + i * kp + 32 * b;
                    const int16_t *as = a->s + i * (kp / 16) + 2 * b;
                    int32_t isum = has_min ? 0 : -16 * (as[0] + as[1]);
                    for (int c = 0; c < 4; c++)
                        for (int e = 0; e < 4; e++) {
                            int u = v[64 * c + 4 * r + e], hb = five ? h[4 * r + e] : 0;
                            isum += ((u & 15) | ((hb >> c) & 1) << 4) * aq[4 * c + e] +
                                    ((u >> 4) | ((hb >> (c + 4)) & 1) << 4) * aq[16 + 4 * c + e];
                        }
                    float da = a->d[i * (kp / 32) + b];
                    acc[b & 1] = fmaf((float)isum, ff_ld_fp16(t + 2 * r) * da, acc[b & 1]);
                    if (has_min) acc[b & 1] = fmaf(ff_ld_fp16(t + 32 + 2 * r), da * (float)(as[0] + as[1]), acc[b & 1]);
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}

#define FF_QLEGACY_R16_REF(qt, id)                                                                                     \
    void ff_qdot_r16_##qt##_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,                  \
                                const ff_qact *a, int m) {                                                             \
        qdot_r16_legacy_ref(y, ldy, w, n, a, m, id);                                                                   \
    }
FF_QLEGACY_R16_REF(q4_1, FF_QT_Q4_1)
FF_QLEGACY_R16_REF(q5_0, FF_QT_Q5_0)
FF_QLEGACY_R16_REF(q5_1, FF_QT_Q5_1)

void ff_repack_r16_iq4_xs(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb) {
    for (int r = 0; r < FF_R16; r++)
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = src + ((g * FF_R16 + r) * nsb + sb) * FF_IQ4_XS_BYTES;
            uint8_t *t = dst + (g * nsb + sb) * FF_R16 * FF_IQ4_XS_BYTES;
            memcpy(t + 2 * r, blk, 2);
            memcpy(t + 32 + 2 * r, blk + 2, 2);
            memcpy(t + 64 + 4 * r, blk + 4, 4);
            for (int j = 0; j < 8; j++)
                for (int c = 0; c < 4; c++) memcpy(t + 128 + 256 * j + 64 * c + 4 * r, blk + 8 + 16 * j + 4 * c, 4);
        }
}

// the int dot of row r's 32 values in the 4 x 64 nibble bytes at v with the activations aq, from -128 * sum(a)
static int32_t r16_iq4_dot(const uint8_t *v, int r, const int8_t *aq, const int16_t *as) {
    int32_t isum = -128 * (as[0] + as[1]);
    for (int c = 0; c < 4; c++)
        for (int e = 0; e < 4; e++) {
            int u = v[64 * c + 4 * r + e];
            isum += (ff_iq4_nl_values[u & 15] + 128) * aq[4 * c + e] +
                    (ff_iq4_nl_values[u >> 4] + 128) * aq[16 + 4 * c + e];
        }
    return isum;
}

void ff_qdot_r16_iq4_nl_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                            int m) {
    // per block of each row: the int dot times d_w * d_a, fused into the chain of the block's parity
    int64_t nb = a->k / 32, kp = a->kp, tb = FF_R16 * FF_IQ4_NL_BYTES;
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *t = w + (g * nb + b) * tb;
                    int32_t isum = r16_iq4_dot(t + 2 * FF_R16, r, a->q + i * kp + 32 * b, a->s + i * (kp / 16) + 2 * b);
                    acc[b & 1] = fmaf((float)isum, ff_ld_fp16(t + 2 * r) * a->d[i * (kp / 32) + b], acc[b & 1]);
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}

void ff_qdot_r16_iq4_xs_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                            int m) {
    // as iq4_nl's, with block j's scale d * (6-bit scale j - 32) of its super-block
    int64_t nsb = a->k / 256, kp = a->kp, tb = FF_R16 * FF_IQ4_XS_BYTES;
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t sb = 0; sb < nsb; sb++) {
                    const uint8_t *t = w + (g * nsb + sb) * tb;
                    uint16_t sh;
                    uint32_t sl;
                    memcpy(&sh, t + 32 + 2 * r, 2);
                    memcpy(&sl, t + 64 + 4 * r, 4);
                    float d = ff_ld_fp16(t + 2 * r);
                    for (int j = 0; j < 8; j++) {
                        int64_t b = 8 * sb + j;
                        int ls = (int)((sl >> (4 * j)) & 15) | (int)((sh >> (2 * j)) & 3) << 4;
                        int32_t isum =
                            r16_iq4_dot(t + 128 + 256 * j, r, a->q + i * kp + 32 * b, a->s + i * (kp / 16) + 2 * b);
                        acc[j & 1] = fmaf((float)isum, d * (float)(ls - 32) * a->d[i * (kp / 32) + b], acc[j & 1]);
                    }
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}
