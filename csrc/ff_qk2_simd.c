// SIMD int8 dot kernels for q2_k, q3_k and iq4_xs (ff_qk2.c has the formats and the scalar twins; q5_k's are
// q4_k's in ff_qdot.c): a
// super-block is decoded with avx2 into 8 x 32 bytes of small values plus 16 float scales and offsets per 16
// weights, then swept by the int8 dot of the table: 256-bit ones (ff_qk2_avx2.inc, once per int8 dot) and avx-512
// vnni on 512-bit registers. every kernel computes each 16-sub-block's int dot exactly and scales it in float.
#include "ff_hsum.h"
#include "ff_qk2.h"
#include "ff_quant.h"  // FF_QP_NR
#include "ff_vnni.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>
#include <string.h>

// a kernel body with the activation row count m as a constant
#define K2_BY_M(body)                                                                                                  \
    switch (m) {                                                                                                       \
    case 4: body(y, ldy, w, stride, n, a, 4); break;                                                                   \
    case 3: body(y, ldy, w, stride, n, a, 3); break;                                                                   \
    case 2: body(y, ldy, w, stride, n, a, 2); break;                                                                   \
    default: body(y, ldy, w, stride, n, a, 1); break;                                                                  \
    }

// a decoded super-block: w = sc * g - mn per 16 weights (g unsigned, or signed for iq4_xs with mn = 0)
typedef struct {
    __m256i g[8];         // values 32c..32c+31
    __m256 sc[2], mn[2];  // sub-blocks 0..7 and 8..15
} k2blk;

static inline AI FF_AVX2 float fp16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// 8 scales (per 32 weights) -> 16 per 16 weights
static inline AI FF_AVX2 void dup16(__m256 out[2], __m256 v) {
    out[0] = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    out[1] = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
}

// 8 bytes at p as floats times f
static inline AI FF_AVX2 __m256 u8x8_ps(__m128i v, float f) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), _mm256_set1_ps(f));
}

static inline AI FF_AVX2 void dec_q2_k(k2blk *o, const uint8_t *blk) {
    // 2-bit values: element 128h + 32s + l is bits 2s of qs[32h + l]; scale nibble low, min nibble high
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 16 + 32 * h));
        o->g[4 * h] = _mm256_and_si256(v, m3);
        o->g[4 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
        o->g[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
        o->g[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
    }
    __m128i s = _mm_loadu_si128((const __m128i *)(const void *)blk), lo4 = _mm_set1_epi8(15);
    __m128i sc = _mm_and_si128(s, lo4), mn = _mm_and_si128(_mm_srli_epi16(s, 4), lo4);
    float d = fp16_at(blk + 80), dmin = fp16_at(blk + 82);
    o->sc[0] = u8x8_ps(sc, d), o->sc[1] = u8x8_ps(_mm_srli_si128(sc, 8), d);
    o->mn[0] = u8x8_ps(mn, dmin), o->mn[1] = u8x8_ps(_mm_srli_si128(mn, 8), dmin);
}

static inline AI FF_AVX2 void dec_q3_k(k2blk *o, const uint8_t *blk) {
    // 3-bit values + 4 (0..7): the 2 low bits as q2_k's, bit c of hmask[l] as 4; w = sc * (g - 4)
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256i hm = _mm256_loadu_si256((const __m256i *)(const void *)blk);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 32 + 32 * h));
        for (int s = 0; s < 4; s++) {
            int c = 4 * h + s;
            __m256i lo = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), m3);
            __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, c), one);
            o->g[c] = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
        }
    }
    // 16 6-bit scales: low nibbles of bytes 0..7 then their high nibbles, 2 bits each from bytes 8..11
    // (built in registers: a vector load of just-stored words would stall store forwarding)
    uint32_t u[3];
    memcpy(u, blk + 96, 12);
    uint32_t hi = u[2];
    __m128i sv = _mm_setr_epi32((int)((u[0] & 0x0f0f0f0f) | ((hi & 0x03030303) << 4)),
                                (int)((u[1] & 0x0f0f0f0f) | (((hi >> 2) & 0x03030303) << 4)),
                                (int)(((u[0] >> 4) & 0x0f0f0f0f) | (((hi >> 4) & 0x03030303) << 4)),
                                (int)(((u[1] >> 4) & 0x0f0f0f0f) | (((hi >> 6) & 0x03030303) << 4)));
    sv = _mm_sub_epi8(sv, _mm_set1_epi8(32));
    __m256 d = _mm256_set1_ps(fp16_at(blk + 108)), four = _mm256_set1_ps(4.0f);
    o->sc[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sv)), d);
    o->sc[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sv, 8))), d);
    o->mn[0] = _mm256_mul_ps(o->sc[0], four), o->mn[1] = _mm256_mul_ps(o->sc[1], four);
}

static inline AI FF_AVX2 void dec_iq4_xs(k2blk *o, const uint8_t *blk) {
    // signed values: nibbles of qs[16j..16j+15] (low: elements 32j.., high: 32j+16..) through the iq4 table
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)ff_iq4_nl_values));
    const __m256i lo4 = _mm256_set1_epi8(15);
    for (int j = 0; j < 8; j++) {
        __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(blk + 8 + 16 * j));
        __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
        o->g[j] = _mm256_shuffle_epi8(tbl, idx);
    }
    // per 32: 4 low bits from scales_l's nibbles, 2 high bits from scales_h, minus 32
    uint16_t sh;
    uint32_t sl;
    memcpy(&sh, blk + 2, 2);
    memcpy(&sl, blk + 4, 4);
    __m128i l4 = _mm_cvtsi32_si128((int)sl), m4 = _mm_set1_epi8(15);
    l4 = _mm_unpacklo_epi8(_mm_and_si128(l4, m4), _mm_and_si128(_mm_srli_epi16(l4, 4), m4));
    __m256i h2 = _mm256_srlv_epi32(_mm256_set1_epi32(sh), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    __m256i lv =
        _mm256_or_si256(_mm256_cvtepu8_epi32(l4), _mm256_slli_epi32(_mm256_and_si256(h2, _mm256_set1_epi32(3)), 4));
    lv = _mm256_sub_epi32(lv, _mm256_set1_epi32(32));
    dup16(o->sc, _mm256_mul_ps(_mm256_cvtepi32_ps(lv), _mm256_set1_ps(fp16_at(blk))));
    o->mn[0] = o->mn[1] = _mm256_setzero_ps();
}

static inline AI FF_AVX2 void k2_decode(k2blk *o, const uint8_t *blk, const int qtype) {
    switch (qtype) {
    case FF_QT_Q2_K: dec_q2_k(o, blk); break;
    case FF_QT_Q3_K: dec_q3_k(o, blk); break;
    default: dec_iq4_xs(o, blk); break;
    }
}

// ---- the 256-bit kernels, once per int8 dot ----

#define QINC "ff_qk2_avx2.inc"
#include "ff_qdot_modes.h"
#undef QINC

// ---- avx-512 vnni: two decoded 32-value groups per 512-bit dot, 4 lanes per 16-sub-block ----

static inline AI FF_VNNI void k2_rows_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,
                                           int64_t n, const ff_qact *a, const int m, const int qtype,
                                           const int64_t bytes) {
    int64_t nsb = a->k / 256, kp = a->kp;
    const __m256i dlo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), dhi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    for (int64_t j = 0; j < n; j++) {
        __m512 acc[8];
        __m256 corr[4];
        for (int i = 0; i < m; i++) acc[2 * i] = acc[2 * i + 1] = _mm512_setzero_ps(), corr[i] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            k2blk o;
            k2_decode(&o, w + j * stride + bytes * sb, qtype);
            if (qtype == FF_QT_IQ4_XS) {
                // vpdpbusd sums u8 x s8 products without saturating: the values + 128 and an offset of 128 sc
                for (int c = 0; c < 8; c++) o.g[c] = _mm256_xor_si256(o.g[c], _mm256_set1_epi8(-128));
                o.mn[0] = _mm256_mul_ps(o.sc[0], _mm256_set1_ps(128.0f));
                o.mn[1] = _mm256_mul_ps(o.sc[1], _mm256_set1_ps(128.0f));
            }
            __m512 s[4];
            for (int i = 0; i < m; i++) {
                __m256 da = _mm256_load_ps(a->d + i * (kp / 32) + 8 * sb);
                __m256 d0 = _mm256_permutevar8x32_ps(da, dlo), d1 = _mm256_permutevar8x32_ps(da, dhi);
                s[i] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_mul_ps(o.sc[0], d0)),
                                          _mm256_mul_ps(o.sc[1], d1), 1);
                __m256i sums = _mm256_load_si256((const __m256i *)(const void *)(a->s + i * (kp / 16) + 16 * sb));
                __m256 s0 = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(sums)));
                __m256 s1 = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(sums, 1)));
                corr[i] = _mm256_fmadd_ps(_mm256_mul_ps(o.mn[0], d0), s0, corr[i]);
                corr[i] = _mm256_fmadd_ps(_mm256_mul_ps(o.mn[1], d1), s1, corr[i]);
            }
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                // lanes 4t..4t+3 are sub-block 4p + t
                int t = 4 * p;
                __m512i sel = _mm512_setr_epi32(t, t, t, t, t + 1, t + 1, t + 1, t + 1, t + 2, t + 2, t + 2, t + 2,
                                                t + 3, t + 3, t + 3, t + 3);
                __m512i g = _mm512_inserti64x4(_mm512_castsi256_si512(o.g[2 * p]), o.g[2 * p + 1], 1);
                for (int i = 0; i < m; i++) {
                    __m512i av = _mm512_load_si512(a->q + i * kp + 256 * sb + 64 * p);
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), g, av);
                    __m512 *c = &acc[2 * i + (p & 1)];
                    *c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(sel, s[i]), *c);
                }
            }
        }
        for (int i = 0; i < m; i++)
            y[i * ldy + j] = ff_hsum_ps512(_mm512_add_ps(acc[2 * i], acc[2 * i + 1])) - ff_hsum_ps256(corr[i]);
    }
}

#define K2_VNNI(qt, QT)                                                                                                \
    static inline AI FF_VNNI void qt##_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, \
                                            int64_t n, const ff_qact *a, const int m) {                                \
        k2_rows_vnni(y, ldy, w, stride, n, a, m, FF_QT_##QT, FF_##QT##_BYTES);                                         \
    }                                                                                                                  \
    FF_VNNI void ff_qdot_##qt##_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,        \
                                     int64_t n, const ff_qact *a, int m) {                                             \
        K2_BY_M(qt##_vnni)                                                                                             \
    }
K2_VNNI(q2_k, Q2_K)
K2_VNNI(q3_k, Q3_K)
K2_VNNI(iq4_xs, IQ4_XS)

// ---- prefill panels of q2_k and q3_k (avx-512 vnni): 32 rows of W as in ff_qlegacy_simd.c's panels, each
// 16-weight sub-block's codes times its integer scale in one unsigned byte, so a 32-block is one int dot per row
// and one float scaling per tile. q2_k: u = sc * q (0..45), w = d u - dmin m; q3_k: u = sc * q + 124 (0..252, q
// in -4..3), w = d (u - 124). after the codes (nb, 8, 32, 4), per super-block 1024 bytes: fp16 d of the 32 rows,
// fp16 dmin (q2_k), then q2_k's mins of sub-blocks 2j, 2j + 1 as 2 bytes of row r at 128 + 64j + 2r ----

// pack rows 0..nr-1 (nr <= 32) of a q2_k/q3_k W; rows past nr zero
static inline AI FF_VNNI void k2_pack_vnni(uint8_t *restrict vals, uint8_t *restrict aux, const uint8_t *w,
                                           int64_t stride, int nr, int64_t nsb, const int qtype, const int64_t bytes) {
    const int q3 = qtype == FF_QT_Q3_K;
    memset(aux, 0, (size_t)nsb * 1024);
    for (int r = 0; r < FF_QP_NR; r++) {
        // row r's 4-byte groups sit at 64 (r / 16) + 4 (r % 16) within each 128-byte group of 32 rows
        uint8_t *dst = vals + 64 * (r / 16) + 4 * (r % 16);
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t codes[256] = {0};
            uint8_t *x = aux + 1024 * sb;
            if (r < nr) {
                const uint8_t *blk = w + r * stride + bytes * sb;
                k2blk o;
                k2_decode(&o, blk, qtype);
                int8_t sc[16];
                if (q3) {
                    ff_q3_k_scales(sc, blk + 96);
                    memcpy(x + 2 * r, blk + 108, 2);
                } else {
                    for (int t = 0; t < 16; t++)
                        sc[t] = (int8_t)(blk[t] & 15), x[128 + 64 * (t / 2) + 2 * r + t % 2] = blk[t] >> 4;
                    memcpy(x + 2 * r, blk + 80, 2);
                    memcpy(x + 64 + 2 * r, blk + 82, 2);
                }
                for (int c = 0; c < 8; c++) {
                    // 32 codes as int16 times the scales of sub-blocks 2c, 2c + 1 (q3_k: codes 0..7 are q + 4)
                    __m512i s16 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(sc[2 * c])),
                                                     _mm256_set1_epi16(sc[2 * c + 1]), 1);
                    __m512i u = _mm512_mullo_epi16(_mm512_cvtepu8_epi16(o.g[c]), s16);
                    if (q3)
                        u = _mm512_add_epi16(u, _mm512_sub_epi16(_mm512_set1_epi16(124), _mm512_slli_epi16(s16, 2)));
                    _mm256_storeu_si256((__m256i *)(void *)(codes + 32 * c), _mm512_cvtepi16_epi8(u));
                }
            }
            for (int c = 0; c < 8; c++)
                for (int g = 0; g < 8; g++) memcpy(dst + 1024 * (8 * sb + c) + 128 * g, codes + 32 * c + 4 * g, 4);
        }
    }
}

// y (mr, nr) = A (mr <= 4 rows) . panel^T: per 32-block the int dot (q3_k: from -124 * sum(a)) times d_w * d_a,
// and for q2_k minus dmin_w * d_a * (m . 16-sums of a)
static inline AI FF_VNNI void k2_tile_vnni(float *y, int64_t ldy, const ff_qact *a, const int mr, const uint8_t *vals,
                                           const uint8_t *aux, int64_t nsb, int nr, const int qtype) {
    int64_t kp = a->kp;
    const int q3 = qtype == FF_QT_Q3_K;
    __m512 out[4][2];
    for (int i = 0; i < mr; i++) out[i][0] = out[i][1] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *x = aux + 1024 * sb;
        __m512 dw[2], mw[2];
        for (int h = 0; h < 2; h++) {
            dw[h] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + 32 * h)));
            mw[h] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + 64 + 32 * h)));
        }
        for (int j = 0; j < 8; j++) {
            int64_t b = 8 * sb + j;
            __m512i acc[4][2];
            for (int i = 0; i < mr; i++) {
                const int16_t *si = a->s + i * (kp / 16) + 2 * b;
                acc[i][0] = acc[i][1] = _mm512_set1_epi32(q3 ? -124 * (si[0] + si[1]) : 0);
            }
            const uint8_t *vb = vals + 1024 * b;
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                __m512i v0 = _mm512_load_si512(vb + 128 * g), v1 = _mm512_load_si512(vb + 128 * g + 64);
                for (int i = 0; i < mr; i++) {
                    int32_t ax;
                    memcpy(&ax, a->q + i * kp + 32 * b + 4 * g, 4);
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], v0, _mm512_set1_epi32(ax));
                    acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], v1, _mm512_set1_epi32(ax));
                }
            }
            for (int h = 0; h < 2; h++) {
                __m512i mn = q3 ? _mm512_setzero_si512()
                                : _mm512_cvtepu8_epi16(
                                      _mm256_loadu_si256((const __m256i *)(const void *)(x + 128 + 64 * j + 32 * h)));
                for (int i = 0; i < mr; i++) {
                    __m512 da = _mm512_set1_ps(a->d[i * (kp / 32) + b]);
                    out[i][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][h]), _mm512_mul_ps(dw[h], da), out[i][h]);
                    if (!q3) {
                        // the mins' term: per row m_2j * s_2j + m_2j+1 * s_2j+1 in one multiply-add of int16 pairs
                        const uint16_t *si = (const uint16_t *)(const void *)(a->s + i * (kp / 16) + 2 * b);
                        __m512i ms = _mm512_madd_epi16(mn, _mm512_set1_epi32((int)(si[0] | (uint32_t)si[1] << 16)));
                        out[i][h] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(mw[h], da), out[i][h]);
                    }
                }
            }
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, out[i][0]);
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, out[i][1]);
    }
}

static inline AI FF_VNNI void k2_panel_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr,
                                            const ff_qact *a, int64_t m, void *panel, const int qtype,
                                            const int64_t bytes) {
    int64_t nsb = a->k / 256;
    uint8_t *vals = panel, *aux = vals + 1024 * 8 * nsb;
    k2_pack_vnni(vals, aux, w, stride, nr, nsb, qtype, bytes);
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        ff_qact ai = ff_qact_from(a, i0);
        float *yi = y + i0 * ldy;
        switch (FF_MIN(4, m - i0)) {
        case 4: k2_tile_vnni(yi, ldy, &ai, 4, vals, aux, nsb, nr, qtype); break;
        case 3: k2_tile_vnni(yi, ldy, &ai, 3, vals, aux, nsb, nr, qtype); break;
        case 2: k2_tile_vnni(yi, ldy, &ai, 2, vals, aux, nsb, nr, qtype); break;
        default: k2_tile_vnni(yi, ldy, &ai, 1, vals, aux, nsb, nr, qtype); break;
        }
    }
}

FF_VNNI void ff_qgemm_panel_q2_k_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                      int64_t m, void *panel) {
    k2_panel_vnni(y, ldy, w, stride, nr, a, m, panel, FF_QT_Q2_K, FF_Q2_K_BYTES);
}

FF_VNNI void ff_qgemm_panel_q3_k_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                      int64_t m, void *panel) {
    k2_panel_vnni(y, ldy, w, stride, nr, a, m, panel, FF_QT_Q3_K, FF_Q3_K_BYTES);
}

// an r16 kernel body with the activation row count m (1..4) as a constant
#define R16_BY_M(body)                                                                                                 \
    switch (m) {                                                                                                       \
    case 4: body(y, ldy, w, n, a, 4); break;                                                                           \
    case 3: body(y, ldy, w, n, a, 3); break;                                                                           \
    case 2: body(y, ldy, w, n, a, 2); break;                                                                           \
    default: body(y, ldy, w, n, a, 1); break;                                                                          \
    }

// ---- q2_k on its r16 layout (ff_qk2.h): per 32-block of 16 rows, two 64-byte groups give 8 vpdpbusd operands by
// shifts, the two sub-blocks' int dots meet their scales in one int16-pair multiply-add, the mins likewise; the
// floats are the scalar twin's, in its order ----

static inline AI FF_VNNI void r16_q2_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    int64_t nsb = a->k / 256, kp = a->kp, tb = FF_R16 * FF_Q2_K_BYTES, ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nsb * tb;
    const __m512i m3 = _mm512_set1_epi8(3);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        __m512 out[2][4];
        for (int i = 0; i < mr; i++) out[0][i] = out[1][i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *t = w + (g * nsb + sb) * tb;
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + 32)));
            // the scale bytes too before the values: a tile read front to back streams faster (ff_qdot_r16k.c)
            __m512i sv[4];
            for (int u = 0; u < 4; u++) {
                sv[u] = _mm512_loadu_si512(t + 64 + 64 * u);
                FF_IN_REG(sv[u]);
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                int64_t b = 8 * sb + j;
                const uint8_t *x = t + 320 + 128 * j;
                ff_prefetch_part(t, tb, j, 8, end, ahead);
                __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 64);
                FF_IN_REG(x0);
                FF_IN_REG(x1);
                __m512i dot0[4], dot1[4];
                for (int i = 0; i < mr; i++) dot0[i] = dot1[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int s2 = 0; s2 < 4; s2++) {
                    __m512i c0 = _mm512_and_si512(_mm512_srli_epi16(x0, 2 * s2), m3);
                    __m512i c1 = _mm512_and_si512(_mm512_srli_epi16(x1, 2 * s2), m3);
                    for (int i = 0; i < mr; i++) {
                        const int8_t *aq = a->q + i * kp + 32 * b;
                        dot0[i] = ff_dpbusd_b4(dot0[i], c0, aq + 4 * s2);
                        dot1[i] = ff_dpbusd_b4(dot1[i], c1, aq + 16 + 4 * s2);
                    }
                }
                // per row the scale bytes of the two sub-blocks as int16 pairs: scales (low nibbles), mins (high)
                __m512i v = _mm512_cvtepu8_epi16(ff_half256(sv[j / 2], j % 2));
                __m512i sc = _mm512_and_si512(v, _mm512_set1_epi16(15)), mn = _mm512_srli_epi16(v, 4);
                for (int i = 0; i < mr; i++) {
                    // |dot| <= 16 * 3 * 127 fits int16: the pair (dot0, dot1) times (sc0, sc1), summed
                    __m512i pair = _mm512_mask_blend_epi16(0xaaaaaaaa, dot0[i], _mm512_slli_epi32(dot1[i], 16));
                    __m512i isum = _mm512_madd_epi16(pair, sc);
                    uint32_t sa;
                    memcpy(&sa, a->s + i * (kp / 16) + 2 * b, 4);
                    __m512i msum = _mm512_madd_epi16(mn, _mm512_set1_epi32((int)sa));
                    __m512 da = _mm512_set1_ps(a->d[i * (kp / 32) + b]);
                    __m512 *o = &out[j & 1][i];
                    *o = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, da), *o);
                    *o = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, da), *o);
                }
            }
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(out[0][i], out[1][i]));
    }
}

FF_VNNI void ff_qdot_r16_q2_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    R16_BY_M(r16_q2_k_vnni)
}

// ---- q3_k on its r16 layout (ff_qk2.h): as q2_k's, each operand's high bit or-ed in from the third group, the two
// sub-blocks' int dots less 4 times their activation sums meeting their signed scales in one multiply-add ----

static inline AI FF_VNNI void r16_q3_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    int64_t nsb = a->k / 256, kp = a->kp, tb = FF_R16 * FF_Q3_K_BYTES, ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nsb * tb;
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    const __m512i lo4 = _mm512_set1_epi32(0x000f000f), hi2 = _mm512_set1_epi32(0x00300030);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        __m512 out[2][4];
        for (int i = 0; i < mr; i++) out[0][i] = out[1][i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *t = w + (g * nsb + sb) * tb;
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
            __m512i hs = _mm512_loadu_si512(t + 160);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                int64_t b = 8 * sb + j;
                const uint8_t *x = t + 224 + 192 * j;
                ff_prefetch_part(t, tb, j, 8, end, ahead);
                __m512i xg[2] = {_mm512_loadu_si512(x), _mm512_loadu_si512(x + 64)}, xh = _mm512_loadu_si512(x + 128);
                FF_IN_REG(xg[0]);
                FF_IN_REG(xg[1]);
                FF_IN_REG(xh);
                __m512i dot[2][4];
                for (int i = 0; i < mr; i++) dot[0][i] = dot[1][i] = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int o = 0; o < 8; o++) {
                    // the low 2 bits, then the high bit moved to bit 2 and or-ed in (ternary logic A | (B & C))
                    __m512i c = _mm512_and_si512(_mm512_srli_epi16(xg[o / 4], 2 * (o % 4)), m3);
                    __m512i h = o < 2 ? _mm512_slli_epi16(xh, 2 - o) : _mm512_srli_epi16(xh, o - 2);
                    c = _mm512_ternarylogic_epi32(c, h, four, 0xf8);
                    for (int i = 0; i < mr; i++) {
                        dot[o / 4][i] =
                            ff_dpbusd_b4(dot[o / 4][i], c, a->q + i * kp + 32 * b + 16 * (o / 4) + 4 * (o % 4));
                    }
                }
                // per row the raw scales of sub-blocks 2j, 2j + 1 as an int16 pair: nibbles from the byte, high
                // bits from the word (bits 2j and 16 + 2j), less 32
                __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(t + 32 + 16 * j)));
                __m512i sc = _mm512_ternarylogic_epi32(l, _mm512_slli_epi32(l, 12), lo4, 0xa8);  // (A | B) & C
                __m512i h = j < 2 ? _mm512_slli_epi32(hs, 4 - 2 * j) : _mm512_srli_epi32(hs, 2 * j - 4);
                sc = _mm512_or_si512(sc, _mm512_and_si512(h, hi2));
                sc = _mm512_sub_epi16(sc, _mm512_set1_epi16(32));
                for (int i = 0; i < mr; i++) {
                    // |dot - 4 s| <= 16 * 4 * 127 fits int16: the pair times (sc0, sc1), summed
                    __m512i pair = _mm512_mask_blend_epi16(0xaaaaaaaa, dot[0][i], _mm512_slli_epi32(dot[1][i], 16));
                    uint32_t sa;
                    memcpy(&sa, a->s + i * (kp / 16) + 2 * b, 4);
                    pair = _mm512_sub_epi16(pair, _mm512_slli_epi16(_mm512_set1_epi32((int)sa), 2));
                    __m512i isum = _mm512_madd_epi16(pair, sc);
                    __m512 da = _mm512_set1_ps(a->d[i * (kp / 32) + b]);
                    __m512 *op = &out[j & 1][i];
                    *op = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, da), *op);
                }
            }
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(out[0][i], out[1][i]));
    }
}

FF_VNNI void ff_qdot_r16_q3_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    R16_BY_M(r16_q3_k_vnni)
}
#endif
