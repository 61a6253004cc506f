// q2_k, q3_k, q5_k and iq4_xs: ggml's byte layouts, quantizers equal to ggml's reference ones (no importance
// matrix), dequantizers equal to the gguf package's, and the scalar dot kernels against int8 activations
#include "ff_qk2.h"

#include <math.h>
#include <string.h>

#include "ff_quant.h"

// ---- layouts (little-endian, fp16 d/dmin), byte offsets within a super-block ----
// q2_k:   scales[16] (low nibble scale, high nibble min) @0, qs[64] (2 bits) @16, d @80, dmin @82
// q3_k:   hmask[32] (high bit) @0, qs[64] (low 2 bits) @32, scales[12] (6 bits, -32) @96, d @108
// q5_k:   d @0, dmin @2, scales[12] (q4_k's 6-bit scales and mins) @4, qh[32] (5th bit) @16, qs[128] @48
// iq4_xs: d @0, scales_h (2 bits x 8) @2, scales_l[4] (4 bits x 8) @4, qs[128] (nibbles) @8

// q4_k/q5_k's 12 bytes -> eight 6-bit scales and eight 6-bit mins
static void k4_scales(uint8_t sc[8], uint8_t mn[8], const uint8_t *s) {
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

void ff_q3_k_scales(int8_t sc[16], const uint8_t *s) {
    // low 4 bits: bytes 0..7, low then high nibble; high 2 bits: bytes 8..11, pair t/4 of byte 8 + t%4
    for (int t = 0; t < 16; t++) {
        int lo = t < 8 ? s[t] & 15 : s[t - 8] >> 4;
        int hi = (s[8 + t % 4] >> (2 * (t / 4))) & 3;
        sc[t] = (int8_t)((lo | hi << 4) - 32);
    }
}

void ff_qk2_unpack(int qtype, const uint8_t *blk, int8_t q[256], float sc[16], float mn[16]) {
    switch (qtype) {
    case FF_QT_Q2_K: {
        // element 128h + 32s + l: bits 2s of qs[32h + l]; sub-block t: scale d * (sc & 15), min dmin * (sc >> 4)
        float d = ff_ld_fp16(blk + 80), dmin = ff_ld_fp16(blk + 82);
        for (int l = 0; l < 256; l++) q[l] = (int8_t)((blk[16 + 32 * (l / 128) + l % 32] >> (2 * (l % 128 / 32))) & 3);
        for (int t = 0; t < 16; t++) sc[t] = d * (float)(blk[t] & 15), mn[t] = dmin * (float)(blk[t] >> 4);
        break;
    }
    case FF_QT_Q3_K: {
        // as q2_k's 2 bits, minus 4 where bit l/32 of hmask[l % 32] is clear
        float d = ff_ld_fp16(blk + 108);
        int8_t s[16];
        ff_q3_k_scales(s, blk + 96);
        for (int l = 0; l < 256; l++) {
            int lo = (blk[32 + 32 * (l / 128) + l % 32] >> (2 * (l % 128 / 32))) & 3;
            int hi = (blk[l % 32] >> (l / 32)) & 1;
            q[l] = (int8_t)(lo - (hi ? 0 : 4));
        }
        for (int t = 0; t < 16; t++) sc[t] = d * (float)s[t], mn[t] = 0.0f;
        break;
    }
    case FF_QT_Q5_K: {
        // element 64g + 32n + l: nibble n of qs[32g + l] plus bit (2g + n) of qh[l] as 16; per 32 a scale and min
        float d = ff_ld_fp16(blk), dmin = ff_ld_fp16(blk + 2);
        uint8_t s[8], m[8];
        k4_scales(s, m, blk + 4);
        for (int l = 0; l < 256; l++) {
            int c = l / 32, e = l % 32;
            int lo = (blk[48 + 32 * (c / 2) + e] >> (4 * (c & 1))) & 15;
            q[l] = (int8_t)(lo | ((blk[16 + e] >> c) & 1) << 4);
        }
        for (int t = 0; t < 16; t++) sc[t] = d * (float)s[t / 2], mn[t] = dmin * (float)m[t / 2];
        break;
    }
    default: {
        // iq4_xs: element 32j + 16n + l: value of nibble n of qs[16j + l]; per 32 a 6-bit scale - 32
        float d = ff_ld_fp16(blk);
        uint16_t sh;
        memcpy(&sh, blk + 2, 2);
        for (int l = 0; l < 256; l++) {
            int j = l / 32, e = l % 32;
            q[l] = ff_iq4_nl_values[(blk[8 + 16 * j + e % 16] >> (4 * (e / 16))) & 15];
        }
        for (int t = 0; t < 16; t++) {
            int j = t / 2, ls = ((blk[4 + j / 2] >> (4 * (j & 1))) & 15) | ((sh >> (2 * j)) & 3) << 4;
            sc[t] = d * (float)(ls - 32), mn[t] = 0.0f;
        }
        break;
    }
    }
}

// ---- dequantizers: w = sc * q - mn, the gguf package's float products ----

static void dequantize_k2(float *restrict y, const uint8_t *restrict src, int64_t k, int qtype, int64_t bytes) {
    int8_t q[256];
    float sc[16], mn[16];
    for (int64_t b = 0; b < k / 256; b++, src += bytes, y += 256) {
        ff_qk2_unpack(qtype, src, q, sc, mn);
        for (int l = 0; l < 256; l++) y[l] = sc[l / 16] * (float)q[l] - mn[l / 16];
    }
}

void ff_dequantize_row_q2_k(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_k2(y, src, k, FF_QT_Q2_K, FF_Q2_K_BYTES);
}

void ff_dequantize_row_q3_k(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_k2(y, src, k, FF_QT_Q3_K, FF_Q3_K_BYTES);
}

void ff_dequantize_row_q5_k(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_k2(y, src, k, FF_QT_Q5_K, FF_Q5_K_BYTES);
}

void ff_dequantize_row_iq4_xs(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_k2(y, src, k, FF_QT_IQ4_XS, FF_IQ4_XS_BYTES);
}

// ---- quantizers: ggml's reference arithmetic, step by step, so the bytes are equal ----

// round to nearest, ties to even, as ggml's nearest_int (valid for |f| < 2^22)
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// x (n,) ~ scale * L - min with L in 0..nmax: a first guess from the range, then nstep + 1 trial scales, each
// refined by weighted least squares, keeping the one of least weighted |error| (mad) or squared error
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, float rmin,
                           float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best += w[i] * diff;
    }
    uint8_t aux[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            aux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0) {
            float s = (sum_w * sum_xl - sum_x * sum_l) / det, m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (m > 0) m = 0, s = sum_xl / sum_l2;
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = s * aux[i] + m - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                err += w[i] * diff;
            }
            if (err < best) {
                memcpy(L, aux, (size_t)n);
                best = err, scale = s, min = m;
            }
        }
    }
    *the_min = -min;
    return scale;
}

void ff_quantize_row_q2_k(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // per 16: scale and min fitted with |x| weights; both to 4 bits against the largest; then q = (x + m) / d
    for (int64_t b = 0; b < k / 256; b++, x += 256, dst += FF_Q2_K_BYTES) {
        uint8_t L[256];
        float w[16], scales[16], mins[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(dst, 0, 16);
        ff_st_fp16(dst + 80, 0.0f);
        ff_st_fp16(dst + 82, 0.0f);
        if (max_scale > 0) {
            float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) dst[j] = (uint8_t)nearest_int(iscale * scales[j]);
            ff_st_fp16(dst + 80, max_scale / 15.f);
        }
        if (max_min > 0) {
            float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) dst[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            ff_st_fp16(dst + 82, max_min / 15.f);
        }
        for (int j = 0; j < 16; j++) {
            float d = ff_ld_fp16(dst + 80) * (dst[j] & 15);
            if (!d) continue;
            float dm = ff_ld_fp16(dst + 82) * (dst[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(nearest_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *p = L + 128 * h + l;
                dst[16 + 32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
            }
    }
}

// x (n,) ~ scale * L with L in -nmax..nmax-1, from the value of largest magnitude, then up to 5 passes moving
// single L that raise the x^2-weighted fit (ggml's make_q3_quants with rmse)
static float fit_scale_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (!amax) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl, sumlx = slx, suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

void ff_quantize_row_q3_k(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // per 16: a signed scale; scales to 6 bits against the largest in magnitude; q = x / d in -4..3
    for (int64_t b = 0; b < k / 256; b++, x += 256, dst += FF_Q3_K_BYTES) {
        int8_t L[256];
        float scales[16], max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) amax = fabsf(scales[j]), max_scale = scales[j];
        }
        uint8_t *s = dst + 96;
        memset(s, 0, 12);
        ff_st_fp16(dst + 108, 0.0f);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int8_t l8 = (int8_t)nearest_int(iscale * scales[j]);  // ggml keeps it in an int8_t
                int l = clampi(l8, -32, 31) + 32;
                if (j < 8)
                    s[j] = (uint8_t)(l & 15);
                else
                    s[j - 8] |= (uint8_t)((l & 15) << 4);
                s[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            ff_st_fp16(dst + 108, 1 / iscale);
        }
        int8_t sc[16];
        ff_q3_k_scales(sc, s);
        for (int j = 0; j < 16; j++) {
            float d = ff_ld_fp16(dst + 108) * sc[j];
            if (!d) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        // high bit of element l into bit l/32 of hmask[l % 32], the low 2 bits as q2_k packs them
        memset(dst, 0, 32);
        for (int l = 0; l < 256; l++)
            if (L[l] > 3) dst[l % 32] |= (uint8_t)(1 << (l / 32)), L[l] = (int8_t)(L[l] - 4);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *p = L + 128 * h + l;
                dst[32 + 32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
            }
    }
}

void ff_quantize_row_q5_k(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // per 32: scale and min fitted with rms + |x| weights; both to 6 bits against the largest; q = (x + m) / d
    for (int64_t b = 0; b < k / 256; b++, x += 256, dst += FF_Q5_K_BYTES) {
        uint8_t L[256];
        float w[32], scales[8], mins[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = fit_scale_min(32, 31, x + 32 * j, w, L + 32 * j, &mins[j], -0.5f, 0.1f, 15, 0);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        uint8_t *s = dst + 4;
        for (int j = 0; j < 8; j++) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                s[j] = ls;
                s[j + 4] = lm;
            } else {
                s[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
                s[j - 4] |= (uint8_t)((ls >> 4) << 6);
                s[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        ff_st_fp16(dst, max_scale / 63.f);
        ff_st_fp16(dst + 2, max_min / 63.f);
        uint8_t sc[8], mn[8];
        k4_scales(sc, mn, s);
        for (int j = 0; j < 8; j++) {
            float d = ff_ld_fp16(dst) * sc[j];
            if (!d) continue;
            float dm = ff_ld_fp16(dst + 2) * mn[j];
            for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / d), 0, 31);
        }
        // element 64g + 32n + l: nibble n of qs[32g + l], its 5th bit at bit 2g + n of qh[l]
        memset(dst + 16, 0, 32);
        for (int l = 0; l < 256; l++) {
            int c = l / 32, e = l % 32;
            if (c % 2 == 0) dst[48 + 32 * (c / 2) + e] = 0;
            dst[48 + 32 * (c / 2) + e] |= (uint8_t)((L[l] & 15) << (4 * (c & 1)));
            dst[16 + e] |= (uint8_t)((L[l] >> 4) << c);
        }
    }
}

// index of the iq4 value nearest to x; on a tie the upper one (as ggml)
static int iq4_index(float x) {
    const int8_t *v = ff_iq4_nl_values;
    if (x <= v[0]) return 0;
    if (x >= v[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < v[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

void ff_quantize_row_iq4_xs(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // per 32: the x^2-weighted best of 15 trial scales; scales to 6 bits against the largest in magnitude;
    // then each value's nearest iq4 value at its rounded scale
    const int8_t *v = ff_iq4_nl_values;
    for (int64_t b = 0; b < k / 256; b++, x += 256, dst += FF_IQ4_XS_BYTES) {
        float scales[8], max_scale = 0, amax_scale = 0;
        for (int j = 0; j < 8; j++) {
            const float *xb = x + 32 * j;
            float amax = 0, max = 0;
            for (int l = 0; l < 32; l++)
                if (fabsf(xb[l]) > amax) amax = fabsf(xb[l]), max = xb[l];
            if (amax < 1e-15f) {
                scales[j] = 0;
                continue;
            }
            float d = -max / v[0], id = 1 / d, sumqx = 0, sumq2 = 0;
            for (int l = 0; l < 32; l++) {
                float q = v[iq4_index(id * xb[l])], w = xb[l] * xb[l];
                sumqx += w * q * xb[l];
                sumq2 += w * q * q;
            }
            d = sumqx / sumq2;
            float best = d * sumqx;
            for (int itry = -7; itry <= 7; itry++) {
                id = (itry + v[0]) / max;
                sumqx = sumq2 = 0;
                for (int l = 0; l < 32; l++) {
                    float q = v[iq4_index(id * xb[l])], w = xb[l] * xb[l];
                    sumqx += w * q * xb[l];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) d = sumqx / sumq2, best = d * sumqx;
            }
            scales[j] = d;
            if (fabsf(d) > amax_scale) amax_scale = fabsf(d), max_scale = d;
        }
        float d = -max_scale / 32, id = d ? 1 / d : 0.f;
        ff_st_fp16(dst, d);
        uint16_t sh = 0;
        memset(dst + 4, 0, 4 + 128);
        for (int j = 0; j < 8; j++) {
            int l = clampi(nearest_int(id * scales[j]), -32, 31);
            float dl = d * l, idl = dl ? 1 / dl : 0.f;
            for (int e = 0; e < 32; e++)
                dst[8 + 16 * j + e % 16] |= (uint8_t)(iq4_index(idl * x[32 * j + e]) << (4 * (e / 16)));
            l += 32;
            dst[4 + j / 2] |= (uint8_t)((l & 15) << (4 * (j & 1)));
            sh |= (uint16_t)((l >> 4) << (2 * j));
        }
        memcpy(dst + 2, &sh, 2);
    }
}

// ---- scalar dot kernels: y (m,n) row stride ldy = A (m,k) . W (n,k)^T ----

static void qdot_k2_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                        const ff_qact *a, int m, int qtype, int64_t bytes) {
    // per 16-sub-block t: d_a * (sc_t * (q . a) - mn_t * sum(a))
    int64_t nsb = a->k / 256;
    int8_t q[256];
    float sc[16], mn[16];
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        for (int i = 0; i < m; i++) {
            const int8_t *aq = a->q + i * a->kp;
            const float *ad = a->d + i * (a->kp / 32);
            const int16_t *as = a->s + i * (a->kp / 16);
            float acc = 0.0f, corr = 0.0f;
            for (int64_t sb = 0; sb < nsb; sb++) {
                ff_qk2_unpack(qtype, row + bytes * sb, q, sc, mn);
                for (int t = 0; t < 16; t++) {
                    int64_t e = 256 * sb + 16 * t, b = e / 32;
                    int32_t isum = 0;
                    for (int l = 0; l < 16; l++) isum += q[16 * t + l] * aq[e + l];
                    acc += (float)isum * (sc[t] * ad[b]);
                    corr += mn[t] * (ad[b] * (float)as[e / 16]);
                }
            }
            y[i * ldy + j] = acc - corr;
        }
    }
}

void ff_qdot_q2_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    qdot_k2_ref(y, ldy, w, stride, n, a, m, FF_QT_Q2_K, FF_Q2_K_BYTES);
}

void ff_qdot_q3_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                      const ff_qact *a, int m) {
    qdot_k2_ref(y, ldy, w, stride, n, a, m, FF_QT_Q3_K, FF_Q3_K_BYTES);
}

// q5_k's dot kernels are q4_k's (ff_quant.c, ff_qdot.c), with its fifth bits

void ff_qdot_iq4_xs_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                        const ff_qact *a, int m) {
    qdot_k2_ref(y, ldy, w, stride, n, a, m, FF_QT_IQ4_XS, FF_IQ4_XS_BYTES);
}

// ---- q2_k on its r16 layout (ff_qk2.h): repacking and the scalar twin ----

void ff_repack_r16_q2_k(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb) {
    for (int r = 0; r < FF_R16; r++)
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = src + ((g * FF_R16 + r) * nsb + sb) * FF_Q2_K_BYTES;
            uint8_t *t = dst + (g * nsb + sb) * FF_R16 * FF_Q2_K_BYTES;
            memcpy(t + 2 * r, blk + 80, 2);
            memcpy(t + 32 + 2 * r, blk + 82, 2);
            for (int j = 0; j < 8; j++) {
                memcpy(t + 64 + 32 * j + 2 * r, blk + 2 * j, 2);
                // weight 4(4k + s) + e of 32-block j into bits 2s of byte 4r + e of its k-th 64 bytes
                uint8_t *x = t + 320 + 128 * j;
                for (int k = 0; k < 2; k++)
                    for (int e = 0; e < 4; e++) {
                        uint8_t v = 0;
                        for (int s2 = 0; s2 < 4; s2++) {
                            int l = 32 * j + 4 * (4 * k + s2) + e;
                            v |= (uint8_t)(((blk[16 + 32 * (l / 128) + l % 32] >> (2 * (l % 128 / 32))) & 3) << 2 * s2);
                        }
                        x[64 * k + 4 * r + e] = v;
                    }
            }
        }
}

void ff_qdot_r16_q2_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    // per 32-block of each row: the int dots D0, D1 of its two 16-sub-blocks, sc0 D0 + sc1 D1 times d * d_a, then
    // minus (m0 s0 + m1 s1) times dmin * d_a (s: the activation 16-sums), fused into the chain of the block's parity
    int64_t nsb = a->k / 256, kp = a->kp, tb = FF_R16 * FF_Q2_K_BYTES;
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t sb = 0; sb < nsb; sb++) {
                    const uint8_t *t = w + (g * nsb + sb) * tb;
                    float d = ff_ld_fp16(t + 2 * r), dmin = ff_ld_fp16(t + 32 + 2 * r);
                    for (int j = 0; j < 8; j++) {
                        int64_t b = 8 * sb + j;
                        const int8_t *aq = a->q + i * kp + 32 * b;
                        const int16_t *as = a->s + i * (kp / 16) + 2 * b;
                        const uint8_t *x = t + 320 + 128 * j, *sc = t + 64 + 32 * j + 2 * r;
                        int32_t dot[2] = {0, 0};
                        for (int k = 0; k < 2; k++)
                            for (int s2 = 0; s2 < 4; s2++)
                                for (int e = 0; e < 4; e++)
                                    dot[k] += ((x[64 * k + 4 * r + e] >> (2 * s2)) & 3) * aq[16 * k + 4 * s2 + e];
                        int32_t isum = (sc[0] & 15) * dot[0] + (sc[1] & 15) * dot[1];
                        int32_t msum = (sc[0] >> 4) * as[0] + (sc[1] >> 4) * as[1];
                        float da = a->d[i * (kp / 32) + b];
                        acc[j & 1] = fmaf((float)isum, d * da, acc[j & 1]);
                        acc[j & 1] = fmaf(-(float)msum, dmin * da, acc[j & 1]);
                    }
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}

// ---- q3_k on its r16 layout (ff_qk2.h): repacking and the scalar twin ----

void ff_repack_r16_q3_k(uint8_t *restrict dst, const uint8_t *restrict src, int64_t g, int64_t nsb) {
    for (int r = 0; r < FF_R16; r++)
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = src + ((g * FF_R16 + r) * nsb + sb) * FF_Q3_K_BYTES;
            uint8_t *t = dst + (g * nsb + sb) * FF_R16 * FF_Q3_K_BYTES;
            memcpy(t + 2 * r, blk + 108, 2);
            // the raw 6-bit scales u = sc + 32: low nibbles of sub-blocks 2j, 2j + 1 in one byte, the high 2 bits
            // of all 16 in one little-endian word, sub-block 2j's at bits 2j and 2j + 1's at 16 + 2j
            int8_t sc[16];
            ff_q3_k_scales(sc, blk + 96);
            uint32_t hi = 0;
            for (int c = 0; c < 16; c++) hi |= (uint32_t)((sc[c] + 32) >> 4) << (16 * (c & 1) + 2 * (c / 2));
            for (int j = 0; j < 8; j++)
                t[32 + 16 * j + r] = (uint8_t)(((sc[2 * j] + 32) & 15) | ((sc[2 * j + 1] + 32) & 15) << 4);
            memcpy(t + 160 + 4 * r, &hi, 4);
            // each weight's code q + 4 (0..7, ff_qk2_unpack's q): for weight 4(4k + s) + e of 32-block j its low 2
            // bits into bits 2s of byte 4r + e of group k, its high bit into bit 4k + s of byte 4r + e of group 2
            int8_t q[256];
            float fs[16], fm[16];
            ff_qk2_unpack(FF_QT_Q3_K, blk, q, fs, fm);
            for (int j = 0; j < 8; j++)
                for (int e = 0; e < 4; e++) {
                    uint8_t v[3] = {0, 0, 0};
                    for (int o = 0; o < 8; o++) {
                        int code = q[32 * j + 4 * o + e] + 4;
                        v[o / 4] |= (uint8_t)((code & 3) << 2 * (o % 4));
                        v[2] |= (uint8_t)((code >> 2) << o);
                    }
                    for (int k = 0; k < 3; k++) t[224 + 192 * j + 64 * k + 4 * r + e] = v[k];
                }
        }
}

void ff_qdot_r16_q3_k_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                          int m) {
    // per 32-block of each row: the int dots D0, D1 of its two 16-sub-blocks' codes 0..7, sc0 (D0 - 4 s0) + sc1 (D1 -
    // 4 s1) (s: the activation 16-sums, sc: the signed scales) times d * d_a into the chain of the block's parity
    int64_t nsb = a->k / 256, kp = a->kp, tb = FF_R16 * FF_Q3_K_BYTES;
    for (int64_t g = 0; g < n / FF_R16; g++)
        for (int i = 0; i < m; i++)
            for (int r = 0; r < FF_R16; r++) {
                float acc[2] = {0.0f, 0.0f};
                for (int64_t sb = 0; sb < nsb; sb++) {
                    const uint8_t *t = w + (g * nsb + sb) * tb;
                    float d = ff_ld_fp16(t + 2 * r);
                    uint32_t hi;
                    memcpy(&hi, t + 160 + 4 * r, 4);
                    for (int j = 0; j < 8; j++) {
                        int64_t b = 8 * sb + j;
                        const int8_t *aq = a->q + i * kp + 32 * b;
                        const int16_t *as = a->s + i * (kp / 16) + 2 * b;
                        const uint8_t *x = t + 224 + 192 * j;
                        int32_t isum = 0;
                        for (int k = 0; k < 2; k++) {
                            int32_t dot = 0;
                            for (int s2 = 0; s2 < 4; s2++)
                                for (int e = 0; e < 4; e++) {
                                    int code = (x[64 * k + 4 * r + e] >> (2 * s2)) & 3;
                                    code |= ((x[128 + 4 * r + e] >> (4 * k + s2)) & 1) << 2;
                                    dot += code * aq[16 * k + 4 * s2 + e];
                                }
                            int sc =
                                (((t[32 + 16 * j + r] >> (4 * k)) & 15) | (((hi >> (16 * k + 2 * j)) & 3) << 4)) - 32;
                            isum += sc * (dot - 4 * as[k]);
                        }
                        float da = a->d[i * (kp / 32) + b];
                        acc[j & 1] = fmaf((float)isum, d * da, acc[j & 1]);
                    }
                }
                y[i * ldy + g * FF_R16 + r] = acc[0] + acc[1];
            }
}
