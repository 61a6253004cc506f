// SIMD int8 dot kernels for q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.c has the formats and the scalar twins):
// 256-bit kernels (ff_qlegacy_avx2.inc) built once per int8 dot (avx2 maddubs, avx-vnni, avx-512 vnni on ymm),
// and avx-512 vnni kernels with 512-bit vpdpbusd; ff_cpu.c puts each in its int8 dot's table.
// each block's int dot is exact and scaled by d_w * d_a in float, like the _ref twins
#include "ff_qlegacy.h"

#include "ff_internal.h"
#include "ff_qk2.h"  // FF_IQ4_XS_BYTES
#include "ff_quant.h"
#include "ff_vnni.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>
#include <string.h>

// the four types as kernel constants, and their block sizes
enum { QL_Q4_1, QL_Q5_0, QL_Q5_1, QL_IQ4_NL };
#define QL_BYTES(qt)                                                                                                   \
    ((qt) == QL_Q4_1   ? FF_Q4_1_BYTES                                                                                 \
     : (qt) == QL_Q5_0 ? FF_Q5_0_BYTES                                                                                 \
     : (qt) == QL_Q5_1 ? FF_Q5_1_BYTES                                                                                 \
                       : FF_IQ4_NL_BYTES)
#define QL_QS(qt) ((qt) == QL_Q4_1 ? 4 : (qt) == QL_Q5_0 ? 6 : (qt) == QL_Q5_1 ? 8 : 2)  // offset of the nibbles
#define QL_QH(qt) ((qt) == QL_Q5_0 ? 2 : (qt) == QL_Q5_1 ? 4 : 0)                        // of the high bits, or 0

// fp16 values at p, p + bsz, ... (the first cnt of 4; 0 after) packed into 64 bits by scalar loads
static inline AI uint64_t fp16x4(const uint8_t *p, int bsz, int cnt) {
    uint64_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (i < cnt) {
            uint16_t h;
            memcpy(&h, p + i * bsz, 2);
            uint64_t x = h;
            __asm__("" : "+r"(x));  // stay in a general register
            v |= x << (16 * i);
        }
    }
    return v;
}

// fp16 values of cnt <= 8 blocks bsz bytes apart, as floats (0 past cnt)
static inline AI FF_AVX2 __m256 scales8(const uint8_t *p, int bsz, int cnt) {
    return _mm256_cvtph_ps(
        _mm_set_epi64x((long long)fp16x4(p + 4 * bsz, bsz, cnt - 4), (long long)fp16x4(p, bsz, cnt)));
}

static inline FF_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 16 bytes of nibbles -> 32 bytes in weight order: low nibbles (weights 0..15), then high nibbles (16..31)
static inline AI FF_AVX2 __m256i nibbles32(const uint8_t *qs) {
    __m128i qb = _mm_loadu_si128((const __m128i *)(const void *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qb, 4), qb), _mm256_set1_epi8(15));
}

// 32 bits at qh -> 32 bytes, 0xff where bit j is set
static inline AI FF_AVX2 __m256i high_bits32(const uint8_t *qh) {
    int32_t h;
    memcpy(&h, qh, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);  // byte i of each 8: bit i
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(h), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

#define QINC "ff_qlegacy_avx2.inc"
#include "ff_qdot_modes.h"
#undef QINC

// ---- avx-512 vnni: two 32-blocks per 512-bit vpdpbusd, every type as unsigned codes plus a float offset ----

// fp16 values of cnt <= 16 blocks bsz bytes apart, as floats (0 past cnt)
static inline AI FF_VNNI __m512 scales16(const uint8_t *p, int bsz, int cnt) {
    __m128i lo = _mm_set_epi64x((long long)fp16x4(p + 4 * bsz, bsz, cnt - 4), (long long)fp16x4(p, bsz, cnt));
    __m128i hi =
        _mm_set_epi64x((long long)fp16x4(p + 12 * bsz, bsz, cnt - 12), (long long)fp16x4(p + 8 * bsz, bsz, cnt - 8));
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// the fp16 pairs (d, m) at the start of cnt <= 16 blocks bsz bytes apart, as floats (0 past cnt): one 32-bit
// scalar load per block
static inline AI FF_VNNI void scales_mins16(__m512 *d, __m512 *m, const uint8_t *p, int bsz, int cnt) {
    uint64_t v[8];
    for (int i = 0; i < 8; i++) {
        uint32_t lo = 0, hi = 0;
        if (2 * i < cnt) memcpy(&lo, p + 2 * i * bsz, 4);
        if (2 * i + 1 < cnt) memcpy(&hi, p + (2 * i + 1) * bsz, 4);
        v[i] = (uint64_t)hi << 32 | lo;
    }
    __m512i x = _mm512_set_epi64((long long)v[7], (long long)v[6], (long long)v[5], (long long)v[4], (long long)v[3],
                                 (long long)v[2], (long long)v[1], (long long)v[0]);
    *d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x));
    *m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)));
}

// lanes 0..7 take lane p of v, lanes 8..15 lane p+1
static inline AI FF_VNNI __m512 pick_pair(__m512 v, int p) {
    return _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(p), _mm256_set1_epi32(p + 1), 1), v);
}

// iq4_nl's values + 128, so vpdpbusd takes them unsigned
static const uint8_t iq4_nl_u8[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};

// the block at blk and, if two, the next as 64 unsigned codes in weight order: the nibbles, + 16 where the
// high bit is set (q5_0, q5_1), or iq4_nl's values + 128. without a second block the first is repeated (it
// meets zero activations past the row's end)
static inline AI FF_VNNI __m512i codes2(const uint8_t *blk, const int two, const int qt) {
    const int bsz = QL_BYTES(qt), qs = QL_QS(qt), qh = QL_QH(qt);
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(blk + qs)));
    if (two)
        v = _mm512_mask_broadcast_i32x4(v, 0xff00, _mm_loadu_si128((const __m128i *)(const void *)(blk + bsz + qs)));
    v = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xff00ff00, v, 4), _mm512_set1_epi8(15));
    if (qh) {
        uint32_t h0, h1 = 0;
        memcpy(&h0, blk + qh, 4);
        if (two) memcpy(&h1, blk + bsz + qh, 4);
        v = _mm512_mask_add_epi8(v, (__mmask64)((uint64_t)h1 << 32 | h0), v, _mm512_set1_epi8(16));
    }
    if (qt == QL_IQ4_NL)
        v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)iq4_nl_u8)), v);
    return v;
}

// blocks b0..b0+cnt-1 (cnt <= 16): per block the int dot of its codes with a times d_w * d_a, and in corr the
// offset times d_a * sum(a): the minimum m_w (q4_1, q5_1), or -16 d_w (q5_0), -128 d_w (iq4_nl)
static inline AI FF_VNNI void ql_chunk_vnni(__m512 *acc, __m512 *corr, const uint8_t *row, const ff_qact *a, int64_t b0,
                                            const int cnt, const int m, const int full, const int qt) {
    int64_t kp = a->kp;
    const int bsz = QL_BYTES(qt);
    __m512 dw, ow, s[4];
    // q5_1 reads (d, m) with one 32-bit load per block; for q4_1's 20-byte blocks that ran at a third of the
    // speed once W streamed from memory (9 against 30 GB/s at (2048, 32000)), so q4_1 loads them as fp16 apart
    if (qt == QL_Q4_1)
        dw = scales16(row + bsz * b0, bsz, cnt), ow = scales16(row + bsz * b0 + 2, bsz, cnt);
    else if (qt == QL_Q5_1)
        scales_mins16(&dw, &ow, row + bsz * b0, bsz, cnt);
    else
        dw = scales16(row + bsz * b0, bsz, cnt),
        ow = _mm512_mul_ps(dw, _mm512_set1_ps(qt == QL_Q5_0 ? -16.0f : -128.0f));
    // a tail may start at b0 % 16 == 8 and end with the padded row: only its blocks are loaded
    __mmask16 km = (__mmask16)(full ? 0xffff : (1u << cnt) - 1);
    for (int i = 0; i < m; i++) {
        __m512 da = _mm512_maskz_loadu_ps(km, a->d + i * (kp / 32) + b0);
        __m512i sums = _mm512_maskz_loadu_epi16(full ? ~0u : (1u << 2 * cnt) - 1, a->s + i * (kp / 16) + 2 * b0);
        s[i] = _mm512_mul_ps(dw, da);
        corr[i] = _mm512_fmadd_ps(
            ow, _mm512_mul_ps(da, _mm512_cvtepi32_ps(_mm512_madd_epi16(sums, _mm512_set1_epi16(1)))), corr[i]);
    }
#pragma GCC unroll 8
    for (int p = 0; p < cnt; p += 2) {
        __m512i u = codes2(row + bsz * (b0 + p), p + 1 < cnt, qt);
        for (int i = 0; i < m; i++) {
            __m512i dot =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_load_si512(a->q + i * kp + 32 * (b0 + p)));
            __m512 *c = &acc[2 * i + (full ? (p >> 1) & 1 : 0)];
            *c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pick_pair(s[i], p), *c);
        }
    }
}

// rows of blocks: whole chunks of 16 blocks, a half chunk, then the tail
static inline AI FF_VNNI void ql_rows_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,
                                           int64_t n, const ff_qact *a, const int m, const int qt) {
    int64_t nb = a->k / 32;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        __m512 acc[8], corr[4];
        for (int i = 0; i < m; i++) acc[2 * i] = acc[2 * i + 1] = corr[i] = _mm512_setzero_ps();
        int64_t b0 = 0;
        for (; b0 + 16 <= nb; b0 += 16) ql_chunk_vnni(acc, corr, row, a, b0, 16, m, 1, qt);
        if (b0 + 8 <= nb) ql_chunk_vnni(acc, corr, row, a, b0, 8, m, 1, qt), b0 += 8;
        if (b0 < nb) ql_chunk_vnni(acc, corr, row, a, b0, (int)(nb - b0), m, 0, qt);
        for (int i = 0; i < m; i++)
            y[i * ldy + j] =
                _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * i], acc[2 * i + 1])) + _mm512_reduce_add_ps(corr[i]);
    }
}

#define QL_ENTRY_VNNI(name, qt)                                                                                        \
    FF_VNNI void ff_qdot_##name##_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,      \
                                       int64_t n, const ff_qact *a, int m) {                                           \
        switch (m) {                                                                                                   \
        case 4: ql_rows_vnni(y, ldy, w, stride, n, a, 4, qt); break;                                                   \
        case 3: ql_rows_vnni(y, ldy, w, stride, n, a, 3, qt); break;                                                   \
        case 2: ql_rows_vnni(y, ldy, w, stride, n, a, 2, qt); break;                                                   \
        default: ql_rows_vnni(y, ldy, w, stride, n, a, 1, qt); break;                                                  \
        }                                                                                                              \
    }
QL_ENTRY_VNNI(q4_1, QL_Q4_1)
QL_ENTRY_VNNI(q5_0, QL_Q5_0)
QL_ENTRY_VNNI(q5_1, QL_Q5_1)
QL_ENTRY_VNNI(iq4_nl, QL_IQ4_NL)

// ---- prefill panels (avx-512 vnni): 32 rows of W as unsigned codes, 4-byte groups interleaved across rows as in
// ff_qdot.c's q8_0/q4_0 panels, so one vpdpbusd multiplies 4 activations with 16 rows; per block the fp16 d of
// every row, then its fp16 minimum (q4_1, q5_1) ----

// the 32 codes of one block in weight order: nibbles, + 16 where the high bit is set, or iq4_nl's values + 128
static inline AI FF_VNNI __m256i codes32(const uint8_t *blk, const int qt) {
    __m256i v = nibbles32(blk + QL_QS(qt));
    if (QL_QH(qt)) v = _mm256_or_si256(v, _mm256_and_si256(high_bits32(blk + QL_QH(qt)), _mm256_set1_epi8(0x10)));
    if (qt == QL_IQ4_NL)
        v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)iq4_nl_u8)),
                                v);
    return v;
}

// pack rows 0..nr-1 (nr <= 32): vals (nb, 8, 32, 4) codes, sc (nb, 2, 32) fp16 d and minimum; rows past nr zero
static inline AI FF_VNNI void ql_pack_vnni(uint8_t *restrict vals, uint16_t *restrict sc, const uint8_t *w,
                                           int64_t stride, int nr, int64_t nb, const int qt) {
    const int bsz = QL_BYTES(qt), has_min = qt == QL_Q4_1 || qt == QL_Q5_1;
    for (int r = 0; r < FF_QP_NR; r++) {
        const uint8_t *row = w + r * stride;
        // row r's 4-byte groups sit at 64 (r / 16) + 4 (r % 16) within each 128-byte group of 32 rows
        uint8_t *dst = vals + 64 * (r / 16) + 4 * (r % 16);
        for (int64_t b = 0; b < nb; b++) {
            uint8_t codes[32] = {0};
            uint16_t d = 0, mn = 0;
            if (r < nr) {
                const uint8_t *blk = row + bsz * b;
                _mm256_storeu_si256((__m256i *)(void *)codes, codes32(blk, qt));
                memcpy(&d, blk, 2);
                if (has_min) memcpy(&mn, blk + 2, 2);
            }
            for (int g = 0; g < 8; g++) memcpy(dst + 1024 * b + 128 * g, codes + 4 * g, 4);
            sc[64 * b + r] = d;
            sc[64 * b + 32 + r] = mn;
        }
    }
}

// y (mr, nr) = A (mr <= 4 rows) . panel^T: per block the int dot times d_w * d_a, plus the offset (minimum, or
// -16 d_w for q5_0, -128 d_w for iq4_nl) times d_a * sum(a)
static inline AI FF_VNNI void ql_tile_vnni(float *y, int64_t ldy, const ff_qact *a, const int mr, const uint8_t *vals,
                                           const uint16_t *sc, int64_t nb, int nr, const int qt) {
    int64_t kp = a->kp;
    const int has_min = qt == QL_Q4_1 || qt == QL_Q5_1;
    __m512 out[4][2];
    for (int i = 0; i < mr; i++) out[i][0] = out[i][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i acc[4][2];
        for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
        const uint8_t *vb = vals + 1024 * b;
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m512i v0 = _mm512_load_si512(vb + 128 * g), v1 = _mm512_load_si512(vb + 128 * g + 64);
            for (int i = 0; i < mr; i++) {
                int32_t x;
                memcpy(&x, a->q + i * kp + 32 * b + 4 * g, 4);
                __m512i ax = _mm512_set1_epi32(x);
                acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], v0, ax);
                acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], v1, ax);
            }
        }
        __m512 dw[2], ow[2];
        for (int h = 0; h < 2; h++) {
            dw[h] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sc + 64 * b + 16 * h)));
            ow[h] =
                has_min
                    ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sc + 64 * b + 32 + 16 * h)))
                    : _mm512_mul_ps(dw[h], _mm512_set1_ps(qt == QL_Q5_0 ? -16.0f : -128.0f));
        }
        for (int i = 0; i < mr; i++) {
            float da = a->d[i * (kp / 32) + b];
            const int16_t *si = a->s + i * (kp / 16) + 2 * b;
            __m512 vda = _mm512_set1_ps(da), vsa = _mm512_set1_ps(da * (float)(si[0] + si[1]));
            for (int h = 0; h < 2; h++) {
                out[i][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][h]), _mm512_mul_ps(dw[h], vda), out[i][h]);
                out[i][h] = _mm512_fmadd_ps(ow[h], vsa, out[i][h]);
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

static inline AI FF_VNNI void ql_panel_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr,
                                            const ff_qact *a, int64_t m, void *panel, const int qt) {
    int64_t nb = a->k / 32;
    uint8_t *vals = panel;
    uint16_t *sc = (uint16_t *)(void *)(vals + 1024 * nb);
    ql_pack_vnni(vals, sc, w, stride, nr, nb, qt);
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        ff_qact ai = ff_qact_from(a, i0);
        float *yi = y + i0 * ldy;
        switch (FF_MIN(4, m - i0)) {
        case 4: ql_tile_vnni(yi, ldy, &ai, 4, vals, sc, nb, nr, qt); break;
        case 3: ql_tile_vnni(yi, ldy, &ai, 3, vals, sc, nb, nr, qt); break;
        case 2: ql_tile_vnni(yi, ldy, &ai, 2, vals, sc, nb, nr, qt); break;
        default: ql_tile_vnni(yi, ldy, &ai, 1, vals, sc, nb, nr, qt); break;
        }
    }
}

#define QL_PANEL_VNNI(name, qt)                                                                                        \
    FF_VNNI void ff_qgemm_panel_##name##_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr,         \
                                              const ff_qact *a, int64_t m, void *panel) {                              \
        ql_panel_vnni(y, ldy, w, stride, nr, a, m, panel, qt);                                                         \
    }
QL_PANEL_VNNI(q4_1, QL_Q4_1)
QL_PANEL_VNNI(q5_0, QL_Q5_0)
QL_PANEL_VNNI(q5_1, QL_Q5_1)
QL_PANEL_VNNI(iq4_nl, QL_IQ4_NL)

// ---- q4_1, q5_0, q5_1, iq4_nl and iq4_xs on their r16 layouts (ff_qlegacy.h): each 64-byte group of 16 rows'
// nibbles meets 4 broadcast activations in one vpdpbusd per half (q5: + 16 where the high bit is set; iq4: values
// + 128 by one table shuffle each); the floats
// are the scalar twins' (fused multiply-adds per block and row, even and odd blocks apart) ----

// the int dots of block b (nibbles at v) of 16 rows with mr activation rows, each from -128 * sum(a)
static inline AI FF_VNNI void r16_iq4_block(__m512i *dot, const uint8_t *v, const ff_qact *a, int64_t b, const int mr) {
    int64_t kp = a->kp;
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)iq4_nl_u8));
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i hi[4];
    for (int i = 0; i < mr; i++) {
        const int16_t *as = a->s + i * (kp / 16) + 2 * b;
        dot[i] = _mm512_set1_epi32(-128 * (as[0] + as[1]));
        hi[i] = _mm512_setzero_si512();
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        // low nibbles are weights 4c.., high nibbles weights 16 + 4c..
        __m512i x = _mm512_loadu_si512(v + 64 * c);
        FF_IN_REG(x);
        __m512i xl = _mm512_shuffle_epi8(tbl, _mm512_and_si512(x, m4));
        __m512i xh = _mm512_shuffle_epi8(tbl, _mm512_and_si512(_mm512_srli_epi16(x, 4), m4));
        for (int i = 0; i < mr; i++) {
            const int8_t *aq = a->q + i * kp + 32 * b;
            dot[i] = ff_dpbusd_b4(dot[i], xl, aq + 4 * c);
            hi[i] = ff_dpbusd_b4(hi[i], xh, aq + 16 + 4 * c);
        }
    }
    for (int i = 0; i < mr; i++) dot[i] = _mm512_add_epi32(dot[i], hi[i]);
}

// out[i] += dot[i] * (sc * d_a of block b), fused
static inline AI FF_VNNI void r16_iq4_scale(__m512 *out, const __m512i *dot, __m512 sc, const ff_qact *a, int64_t b,
                                            const int mr) {
    for (int i = 0; i < mr; i++)
        out[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i]),
                                 _mm512_mul_ps(sc, _mm512_set1_ps(a->d[i * (a->kp / 32) + b])), out[i]);
}

static inline AI FF_VNNI void r16_iq4_nl_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                              const ff_qact *a, const int mr) {
    int64_t nb = a->k / 32, tb = FF_R16 * FF_IQ4_NL_BYTES, ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nb * tb;
    for (int64_t g = 0; g < n / FF_R16; g++) {
        // even and odd blocks in separate accumulators, two blocks a step (a constant index keeps them in registers)
        __m512 out[2][4];
        for (int i = 0; i < mr; i++) out[0][i] = out[1][i] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *t = w + (g * nb + b) * tb;
            ff_prefetch_ahead(t, tb, end, ahead);
            __m512i dot[4];
            r16_iq4_block(dot, t + 2 * FF_R16, a, b, mr);
            __m512 sc = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
            if (b & 1)
                r16_iq4_scale(out[1], dot, sc, a, b, mr);
            else
                r16_iq4_scale(out[0], dot, sc, a, b, mr);
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(out[0][i], out[1][i]));
    }
}

static inline AI FF_VNNI void r16_iq4_xs_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                              const ff_qact *a, const int mr) {
    int64_t nsb = a->k / 256, tb = FF_R16 * FF_IQ4_XS_BYTES, ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nsb * tb;
    for (int64_t g = 0; g < n / FF_R16; g++) {
        __m512 out[2][4];
        for (int i = 0; i < mr; i++) out[0][i] = out[1][i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *t = w + (g * nsb + sb) * tb;
            // 16 rows' d, their scales_h words and scales_l words
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
            __m512i sh = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(t + 32)));
            __m512i sl = _mm512_loadu_si512(t + 64);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m512i ls = _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi32(sl, 4 * j), _mm512_set1_epi32(15)),
                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sh, 2 * j), _mm512_set1_epi32(3)), 4));
                __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(ls, _mm512_set1_epi32(32))));
                ff_prefetch_part(t, tb, j, 8, end, ahead);
                __m512i dot[4];
                r16_iq4_block(dot, t + 128 + 256 * j, a, 8 * sb + j, mr);
                r16_iq4_scale(out[j & 1], dot, sc, a, 8 * sb + j, mr);
            }
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(out[0][i], out[1][i]));
    }
}

// out[i] += the int dot lo[i] + hi[i] (q4_1: hi[i] / 16) times d_w * d_a, then m_w times d_a * sum(a), fused
static inline AI FF_VNNI void r16_legacy_scale(__m512 *out, const __m512i *lo, const __m512i *hi, __m512 dw, __m512 mw,
                                               const ff_qact *a, int64_t b, const int mr, const int qt) {
    int64_t kp = a->kp;
    for (int i = 0; i < mr; i++) {
        const int16_t *as = a->s + i * (kp / 16) + 2 * b;
        float da = a->d[i * (kp / 32) + b];
        __m512i isum = _mm512_add_epi32(lo[i], qt != QL_Q4_1 ? hi[i] : _mm512_srai_epi32(hi[i], 4));
        out[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_set1_ps(da)), out[i]);
        if (qt != QL_Q5_0) out[i] = _mm512_fmadd_ps(mw, _mm512_set1_ps(da * (float)(as[0] + as[1])), out[i]);
    }
}

// q4_1, q5_0 and q5_1: the nibbles, + 16 where the high bit is set (q5_0, q5_1); q5_0's dot from -16 * sum(a)
static inline AI FF_VNNI void r16_legacy_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                              const ff_qact *a, const int mr, const int qt) {
    const int has_min = qt != QL_Q5_0, five = qt != QL_Q4_1, at = 32 + 32 * has_min;
    int64_t nb = a->k / 32, kp = a->kp, tb = FF_R16 * QL_BYTES(qt), ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nb * tb;
    const __m512i m4 = _mm512_set1_epi8(15), sixteen = _mm512_set1_epi8(16);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        __m512 out[2][4];
        for (int i = 0; i < mr; i++) out[0][i] = out[1][i] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *t = w + (g * nb + b) * tb, *v = t + at + 64 * five;
            ff_prefetch_ahead(t, tb, end, ahead);
            __m512i lo[4], hi[4], hm = five ? _mm512_loadu_si512(t + at) : _mm512_setzero_si512();
            for (int i = 0; i < mr; i++) {
                const int16_t *as = a->s + i * (kp / 16) + 2 * b;
                lo[i] = has_min ? _mm512_setzero_si512() : _mm512_set1_epi32(-16 * (as[0] + as[1]));
                hi[i] = _mm512_setzero_si512();
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                // low nibbles are weights 4c.., high nibbles weights 16 + 4c.. (q4_1: times 16, shifted out below)
                __m512i x = _mm512_loadu_si512(v + 64 * c);
                FF_IN_REG(x);
                __m512i xl = _mm512_and_si512(x, m4), xh;
                if (five) {
                    xh = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
                    xl = _mm512_mask_add_epi8(xl, _mm512_test_epi8_mask(hm, _mm512_set1_epi8((char)(1 << c))), xl,
                                              sixteen);
                    xh = _mm512_mask_add_epi8(xh, _mm512_test_epi8_mask(hm, _mm512_set1_epi8((char)(16 << c))), xh,
                                              sixteen);
                } else {
                    xh = _mm512_and_si512(x, _mm512_set1_epi8((char)0xf0));
                }
                for (int i = 0; i < mr; i++) {
                    const int8_t *aq = a->q + i * kp + 32 * b;
                    lo[i] = ff_dpbusd_b4(lo[i], xl, aq + 4 * c);
                    hi[i] = ff_dpbusd_b4(hi[i], xh, aq + 16 + 4 * c);
                }
            }
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
            __m512 mw = has_min ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + 32)))
                                : _mm512_setzero_ps();
            // the block's parity chain, by a constant index (keeps the accumulators in registers)
            if (b & 1)
                r16_legacy_scale(out[1], lo, hi, dw, mw, a, b, mr, qt);
            else
                r16_legacy_scale(out[0], lo, hi, dw, mw, a, b, mr, qt);
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(out[0][i], out[1][i]));
    }
}

static inline AI FF_VNNI void r16_q4_1_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    r16_legacy_vnni(y, ldy, w, n, a, mr, QL_Q4_1);
}

static inline AI FF_VNNI void r16_q5_0_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    r16_legacy_vnni(y, ldy, w, n, a, mr, QL_Q5_0);
}

static inline AI FF_VNNI void r16_q5_1_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    r16_legacy_vnni(y, ldy, w, n, a, mr, QL_Q5_1);
}

#define QL_R16_VNNI(qt)                                                                                                \
    FF_VNNI void ff_qdot_r16_##qt##_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,         \
                                         const ff_qact *a, int m) {                                                    \
        switch (m) {                                                                                                   \
        case 4: r16_##qt##_vnni(y, ldy, w, n, a, 4); break;                                                            \
        case 3: r16_##qt##_vnni(y, ldy, w, n, a, 3); break;                                                            \
        case 2: r16_##qt##_vnni(y, ldy, w, n, a, 2); break;                                                            \
        default: r16_##qt##_vnni(y, ldy, w, n, a, 1); break;                                                           \
        }                                                                                                              \
    }
QL_R16_VNNI(q4_1)
QL_R16_VNNI(q5_0)
QL_R16_VNNI(q5_1)
QL_R16_VNNI(iq4_nl)
QL_R16_VNNI(iq4_xs)
#endif
