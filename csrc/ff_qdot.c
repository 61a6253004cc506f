// SIMD int8 dot kernels for quantized weights (ff_quant.c has the formats and the scalar twins): 256-bit
// kernels (ff_qdot_avx2.inc) built once per int8 dot (avx2 maddubs, avx-vnni, avx-512 vnni on ymm), and avx-512
// vnni with 512-bit vpdpbusd (the q4_k/q5_k/q6_k r16 ones in ff_qdot_r16k.c); ff_cpu.c puts the ones of the int8
// dot in use into the dispatch table. also the activation quantizer and fp16 conversion with f16c.
// every kernel computes each block's int dot exactly and scales it by d_w * d_a in float, like the _ref twins
#include "ff_hsum.h"
#include "ff_qk2.h"  // q5_k: its bytes and kernel names
#include "ff_quant.h"
#include "ff_vnni.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>
#include <math.h>
#include <string.h>

// a kernel body with the activation row count m as a constant
#define FF_QDOT_BY_M(body)                                                                                             \
    switch (m) {                                                                                                       \
    case 4: body(y, ldy, w, stride, n, a, 4); break;                                                                   \
    case 3: body(y, ldy, w, stride, n, a, 3); break;                                                                   \
    case 2: body(y, ldy, w, stride, n, a, 2); break;                                                                   \
    default: body(y, ldy, w, stride, n, a, 1); break;                                                                  \
    }

static inline uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

// fp16 values at p, p + bsz, ... (the first cnt of 4; 0 after) packed into 64 bits: scalar loads keep the
// vector pipes free (a gather of the scales cost 30% of the q8_0 kernel's time)
static inline AI uint64_t fp16x4(const uint8_t *p, int bsz, int cnt) {
    uint64_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (i < cnt) {
            uint16_t h;
            memcpy(&h, p + i * bsz, 2);
            uint64_t x = h;
            __asm__("" : "+r"(x));  // stay in a general register (gcc would assemble it with vector shuffles)
            v |= x << (16 * i);
        }
    }
    return v;
}

// q4_k's 12 scale bytes -> eight 6-bit scales (low 8 bytes) and eight 6-bit mins (high 8 bytes)
static inline void q4_k_unpack(uint32_t u[4], const uint8_t *s) {
    memcpy(u, s, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    uint32_t m = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = m;
    u[0] &= 0x3f3f3f3f;
}

// ---- avx2 ----

// fp16 scales of cnt <= 8 blocks bsz bytes apart, as floats (0 past cnt)
static inline AI FF_AVX2 __m256 scales8_avx2(const uint8_t *p, int bsz, int cnt) {
    return _mm256_cvtph_ps(
        _mm_set_epi64x((long long)fp16x4(p + 4 * bsz, bsz, cnt - 4), (long long)fp16x4(p, bsz, cnt)));
}

FF_AVX2 void ff_quant_act_q8_avx2(int8_t *restrict q, float *restrict d, int16_t *restrict s, const float *restrict x,
                                  int64_t k, int bs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    float db = 0.0f, id = 0.0f;
    for (int64_t b = 0; b < k / 32; b++) {
        __m256 v[4];
        if (b % (bs / 32) == 0) {
            // the block's max |x| (exact in any order)
            __m256 mx = _mm256_setzero_ps();
            for (int64_t e = 0; e < bs; e += 8)
                mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 32 * b + e)));
            float amax = ff_hmax_ps256(mx);
            db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        }
        for (int t = 0; t < 4; t++) v[t] = _mm256_loadu_ps(x + 32 * b + 8 * t);
        d[b] = db;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i[4];
        for (int t = 0; t < 4; t++) i[t] = _mm256_cvtps_epi32(_mm256_mul_ps(v[t], vid));
        s[2 * b] = (int16_t)ff_hsum_epi32_256(_mm256_add_epi32(i[0], i[1]));
        s[2 * b + 1] = (int16_t)ff_hsum_epi32_256(_mm256_add_epi32(i[2], i[3]));
        // pack to int8 (lane-interleaved) and restore the element order
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(q + 32 * b), p);
    }
}

// four vectors of 8 int32 -> lane i: the sum of v[i]'s lanes (exact, any order)
static inline AI FF_AVX2 __m128i hsum_epi32x4(const __m256i v[4]) {
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

// two vectors of 8 int32 -> lane 0: the sum of a's lanes, lane 1: of b's (exact)
static inline AI FF_AVX2 __m128i hsum_epi32x2(__m256i a, __m256i b) {
    __m256i t = _mm256_hadd_epi32(a, b);
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    return _mm_hadd_epi32(r, r);
}

// the activation scales of super-block sb of rows i0..i0+m-1 (m <= 4), lane i row i0 + i, 0 past m
static inline AI __m128 act_d4(const ff_qact *a, int64_t sb, int i0, const int m) {
    int64_t r = a->kp / 32;
    const float *d = a->d + i0 * r + 8 * sb;
    return _mm_setr_ps(d[0], m > 1 ? d[r] : 0.0f, m > 2 ? d[2 * r] : 0.0f, m > 3 ? d[3 * r] : 0.0f);
}

// column j of y (m rows, ldy apart): acc1 for one row, else lane i of acc4[g] for row 4g + i
static inline AI void store_col(float *y, int64_t ldy, int64_t j, float acc1, const __m128 *acc4, const int m) {
    if (m == 1) y[j] = acc1;
    for (int i0 = 0; m > 1 && i0 < m; i0 += 4) {
        float acc[4];
        _mm_storeu_ps(acc, acc4[i0 / 4]);
        for (int i = 0; i < 4 && i0 + i < m; i++) y[(i0 + i) * ldy + j] = acc[i];
    }
}

// ---- the 256-bit kernels, once per int8 dot: avx2 maddubs, avx-vnni (vex vpdpbusd) and avx-512 vnni on
// 256-bit registers (evex vpdpbusd, the same source, so machines with avx-512 vnni but no avx-vnni test it) ----

#define QINC "ff_qdot_avx2.inc"
#include "ff_qdot_modes.h"
#undef QINC

FF_AVX2 void ff_fp32_to_fp16_row_avx2(uint16_t *restrict y, const float *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ff_fp32_to_fp16(x[i]);
}

// ff_quantize_row_q8_0's bytes 8 lanes at a time: the same max, scale and reciprocal, and roundf (half away from
// zero) as trunc plus the sign where the dropped fraction is at least one half; nan codes 0
FF_AVX2 void ff_quantize_row_q8_0_avx2(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), half = _mm256_set1_ps(0.5f);
    const __m256 one = _mm256_set1_ps(1.0f), signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_Q8_0_BYTES) {
        __m256 v[4], amax = _mm256_setzero_ps();
        // max |x| (max_ps returns its second operand for a nan, so a nan never enters)
        for (int c = 0; c < 4; c++) {
            v[c] = _mm256_loadu_ps(x + 8 * c);
            amax = _mm256_max_ps(_mm256_and_ps(v[c], absmask), amax);
        }
        float d = ff_hmax_ps256(amax) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        ff_st_fp16(dst, d);
        __m256i q[4];
        for (int c = 0; c < 4; c++) {
            __m256 u = _mm256_mul_ps(v[c], _mm256_set1_ps(id));
            __m256 t = _mm256_round_ps(u, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(u, t), absmask), half, _CMP_GE_OQ);
            t = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(one, _mm256_and_ps(u, signbit))));
            q[c] = _mm256_cvttps_epi32(_mm256_and_ps(t, _mm256_cmp_ps(u, u, _CMP_ORD_Q)));
        }
        // int32 -> int8 in order: the packs interleave 128-bit lanes, the permute puts the 4-byte groups back
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(dst + 2), p);
    }
}

FF_AVX2 void ff_fp16_to_fp32_row_avx2(float *restrict y, const uint16_t *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + i))));
    for (; i < n; i++) y[i] = ff_fp16_to_fp32(x[i]);
}

// ---- avx-512: vnni kernels, two 32-blocks per 512-bit vpdpbusd ----

// fp16 scales of cnt <= 16 blocks bsz bytes apart, as floats (0 past cnt)
static inline AI FF_VNNI __m512 scales16_vnni(const uint8_t *p, int bsz, int cnt) {
    __m128i lo = _mm_set_epi64x((long long)fp16x4(p + 4 * bsz, bsz, cnt - 4), (long long)fp16x4(p, bsz, cnt));
    __m128i hi =
        _mm_set_epi64x((long long)fp16x4(p + 12 * bsz, bsz, cnt - 12), (long long)fp16x4(p + 8 * bsz, bsz, cnt - 8));
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// lanes 0..7 take lane p of v, lanes 8..15 lane p+1
static inline AI FF_VNNI __m512 pick_pair(__m512 v, int p) {
    return _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(p), _mm256_set1_epi32(p + 1), 1), v);
}

// q8_0 over blocks b0..b0+cnt-1 (cnt <= 16): w xor 0x80 is w + 128 unsigned; the lane sums hold -128 * sum(a)
static inline AI FF_VNNI void q8_0_chunk_vnni(__m512 *acc, const uint8_t *row, const ff_qact *a, int64_t b0,
                                              const int cnt, const int m, const int full) {
    int64_t kp = a->kp;
    __m512 dw = scales16_vnni(row + FF_Q8_0_BYTES * b0, FF_Q8_0_BYTES, cnt), s[4];
    for (int i = 0; i < m; i++) s[i] = _mm512_mul_ps(dw, _mm512_load_ps(a->d + i * (kp / 32) + b0));
#pragma GCC unroll 8
    for (int p = 0; p < cnt; p += 2) {
        const uint8_t *blk = row + FF_Q8_0_BYTES * (b0 + p);
        __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
        __m512i wv = p + 1 < cnt ? _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                                      _mm256_loadu_si256((const __m256i *)(const void *)(blk + 36)), 1)
                                 : _mm512_zextsi256_si512(lo);
        wv = _mm512_xor_si512(wv, _mm512_set1_epi8((char)0x80));
        for (int i = 0; i < m; i++) {
            int64_t e = i * kp + 32 * (b0 + p);
            __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(a->lanes + e / 4), wv, _mm512_load_si512(a->q + e));
            __m512 *c = &acc[2 * i + (full ? (p >> 1) & 1 : 0)];
            *c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pick_pair(s[i], p), *c);
        }
    }
}

// q4_0 over blocks b0..b0+cnt-1: each pair of blocks as [lo b, hi b, lo b+1, hi b+1] nibbles
static inline AI FF_VNNI void q4_0_chunk_vnni(__m512 *acc, const uint8_t *row, const ff_qact *a, int64_t b0,
                                              const int cnt, const int m, const int full) {
    int64_t kp = a->kp;
    __m512 dw = scales16_vnni(row + FF_Q4_0_BYTES * b0, FF_Q4_0_BYTES, cnt), s[4];
    for (int i = 0; i < m; i++) s[i] = _mm512_mul_ps(dw, _mm512_load_ps(a->d + i * (kp / 32) + b0));
#pragma GCC unroll 8
    for (int p = 0; p < cnt; p += 2) {
        const uint8_t *blk = row + FF_Q4_0_BYTES * (b0 + p);
        __m512i wv = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
        // past the last block the copy of block b meets zero activations
        if (p + 1 < cnt)
            wv = _mm512_mask_broadcast_i32x4(wv, 0xff00, _mm_loadu_si128((const __m128i *)(const void *)(blk + 20)));
        wv = _mm512_and_si512(_mm512_mask_srli_epi16(wv, 0xff00ff00, wv, 4), _mm512_set1_epi8(15));
        for (int i = 0; i < m; i++) {
            int64_t e = i * kp + 32 * (b0 + p);
            __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(a->lanes + e / 4), wv, _mm512_load_si512(a->q + e));
            __m512 *c = &acc[2 * i + (full ? (p >> 1) & 1 : 0)];
            *c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pick_pair(s[i], p), *c);
        }
    }
}

// rows of q8_0 (q4 = 0) or q4_0 (q4 = 1) 32-blocks: whole chunks of 16 blocks, a half chunk, then the tail
static inline AI FF_VNNI void rows_of_blocks_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w,
                                                  int64_t stride, int64_t n, const ff_qact *a, const int m,
                                                  const int q4) {
    int64_t nb = a->k / 32;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        __m512 acc[8];
        for (int i = 0; i < 2 * m; i++) acc[i] = _mm512_setzero_ps();
        int64_t b0 = 0;
        if (q4) {
            for (; b0 + 16 <= nb; b0 += 16) q4_0_chunk_vnni(acc, row, a, b0, 16, m, 1);
            if (b0 + 8 <= nb) q4_0_chunk_vnni(acc, row, a, b0, 8, m, 1), b0 += 8;
            if (b0 < nb) q4_0_chunk_vnni(acc, row, a, b0, (int)(nb - b0), m, 0);
        } else {
            for (; b0 + 16 <= nb; b0 += 16) q8_0_chunk_vnni(acc, row, a, b0, 16, m, 1);
            if (b0 + 8 <= nb) q8_0_chunk_vnni(acc, row, a, b0, 8, m, 1), b0 += 8;
            if (b0 < nb) q8_0_chunk_vnni(acc, row, a, b0, (int)(nb - b0), m, 0);
        }
        for (int i = 0; i < m; i++) y[i * ldy + j] = ff_hsum_ps512(_mm512_add_ps(acc[2 * i], acc[2 * i + 1]));
    }
}

static inline AI FF_VNNI void q8_0_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,
                                        int64_t n, const ff_qact *a, const int m) {
    rows_of_blocks_vnni(y, ldy, w, stride, n, a, m, 0);
}

static inline AI FF_VNNI void q4_0_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,
                                        int64_t n, const ff_qact *a, const int m) {
    rows_of_blocks_vnni(y, ldy, w, stride, n, a, m, 1);
}

#define FF_QDOT_VNNI(qt)                                                                                               \
    FF_VNNI void ff_qdot_##qt##_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,        \
                                     int64_t n, const ff_qact *a, int m) {                                             \
        FF_QDOT_BY_M(qt##_vnni)                                                                                        \
    }
FF_QDOT_VNNI(q8_0)
FF_QDOT_VNNI(q4_0)

// q4_k, q5_k and q6_k rows: the 256-bit kernels (each block's int dot sums across lanes, so 512 bits gain little); the
// r16 kernels below are the fast ones
FF_VNNI void ff_qdot_q4_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                               const ff_qact *a, int m) {
    ff_qdot_q4_k_vnni256(y, ldy, w, stride, n, a, m);
}

FF_VNNI void ff_qdot_q5_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                               const ff_qact *a, int m) {
    ff_qdot_q5_k_vnni256(y, ldy, w, stride, n, a, m);
}

FF_VNNI void ff_qdot_q6_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                               const ff_qact *a, int m) {
    ff_qdot_q6_k_vnni256(y, ldy, w, stride, n, a, m);
}

// ---- prefill: W panels of 32 rows, 4-byte groups interleaved across rows: one vpdpbusd multiplies a
// broadcast group of 4 activations with 16 rows at once, so the per-block float work is per tile, not per row ----

// pack rows 0..nr-1 (nr <= 32) of a q8_0 (w + 128) or q4_0 (nibbles) W: vals (nb, 8, 32, 4), scales (nb, 32)
static FF_VNNI void qpack_vnni(uint8_t *restrict vals, float *restrict ws, const uint8_t *w, int64_t stride, int nr,
                               int64_t nb, int q4) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int64_t bsz = q4 ? FF_Q4_0_BYTES : FF_Q8_0_BYTES;
    for (int h = 0; h < 2; h++) {
        // rows 16h..16h+15 by byte offset; rows past nr read nothing and pack zeros
        __m512i idx =
            _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(16 * h)), _mm512_set1_epi32((int)stride));
        __mmask16 mk = (__mmask16)(nr - 16 * h >= 16 ? 0xffff : nr > 16 * h ? (1u << (nr - 16 * h)) - 1 : 0);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *base = w + bsz * b;
            uint8_t *vb = vals + 1024 * b + 64 * h;
            __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mk, idx, base, 1);
            _mm512_storeu_ps(ws + 32 * b + 16 * h, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
            if (q4) {
                // group g < 4: low nibbles of bytes 4g..4g+3, group g + 4: their high nibbles
                for (int g = 0; g < 4; g++) {
                    __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mk, idx, base + 2 + 4 * g, 1);
                    _mm512_store_si512(vb + 128 * g, _mm512_and_si512(v, _mm512_set1_epi8(15)));
                    _mm512_store_si512(vb + 128 * (g + 4),
                                       _mm512_and_si512(_mm512_srli_epi32(v, 4), _mm512_set1_epi8(15)));
                }
            } else {
                for (int g = 0; g < 8; g++) {
                    __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mk, idx, base + 2 + 4 * g, 1);
                    _mm512_store_si512(vb + 128 * g, _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)));
                }
            }
        }
    }
}

// y (mr, nr) = A (mr <= 4 rows) . panel^T; each block's int dot starts at its lane sum -c * sum(a)
static inline AI FF_VNNI void qgemm_tile_vnni(float *y, int64_t ldy, const ff_qact *a, const int mr,
                                              const uint8_t *vals, const float *ws, int64_t nb, int nr) {
    int64_t kp = a->kp;
    __m512 out[4][2];
    for (int i = 0; i < mr; i++) out[i][0] = out[i][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i acc[4][2];
        for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_set1_epi32(a->lanes[i * (kp / 4) + 8 * b]);
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
        __m512 w0 = _mm512_load_ps(ws + 32 * b), w1 = _mm512_load_ps(ws + 32 * b + 16);
        for (int i = 0; i < mr; i++) {
            __m512 da = _mm512_set1_ps(a->d[i * (kp / 32) + b]);
            out[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(w0, da), out[i][0]);
            out[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(w1, da), out[i][1]);
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, out[i][0]);
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, out[i][1]);
    }
}

static FF_VNNI void qgemm_panel_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                     int64_t m, void *panel, int q4) {
    int64_t nb = a->k / 32;
    uint8_t *vals = panel;
    float *ws = (float *)(void *)(vals + 1024 * nb);
    qpack_vnni(vals, ws, w, stride, nr, nb, q4);
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        ff_qact ai = ff_qact_from(a, i0);
        float *yi = y + i0 * ldy;
        switch (FF_MIN(4, m - i0)) {
        case 4: qgemm_tile_vnni(yi, ldy, &ai, 4, vals, ws, nb, nr); break;
        case 3: qgemm_tile_vnni(yi, ldy, &ai, 3, vals, ws, nb, nr); break;
        case 2: qgemm_tile_vnni(yi, ldy, &ai, 2, vals, ws, nb, nr); break;
        default: qgemm_tile_vnni(yi, ldy, &ai, 1, vals, ws, nb, nr); break;
        }
    }
}

FF_VNNI void ff_qgemm_panel_q8_0_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                      int64_t m, void *panel) {
    qgemm_panel_vnni(y, ldy, w, stride, nr, a, m, panel, 0);
}

FF_VNNI void ff_qgemm_panel_q4_0_vnni(float *y, int64_t ldy, const uint8_t *w, int64_t stride, int nr, const ff_qact *a,
                                      int64_t m, void *panel) {
    qgemm_panel_vnni(y, ldy, w, stride, nr, a, m, panel, 1);
}

// ---- decode and prefill on the r16 layout (ff_quant.h): per block, each 64-byte group of the 16 rows meets
// 4 broadcast activations in one vpdpbusd, so a block of 16 rows is 8 of them and one float scaling ----

// block b of the group at t into out (mr activation rows); the int dot starts at the lane sum -c * sum(a) and
// runs as one int32 chain per row (integer sums: any order gives the same bits)
static inline AI FF_VNNI void r16_block_vnni(__m512 *out, const uint8_t *t, const ff_qact *a, int64_t b, const int mr,
                                             const int q4) {
    int64_t kp = a->kp;
    const uint8_t *v = t + 2 * FF_R16;
    __m512i acc[FF_R16_MR];
    for (int i = 0; i < mr; i++) acc[i] = _mm512_set1_epi32(a->lanes[i * (kp / 4) + 8 * b]);
    if (q4) {
        // low nibbles are weights 4c.., high nibbles weights 16 + 4c..
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i x = _mm512_loadu_si512(v + 64 * c);
            FF_IN_REG(x);
            __m512i xl = _mm512_and_si512(x, _mm512_set1_epi8(15));
            __m512i xh = _mm512_and_si512(_mm512_srli_epi16(x, 4), _mm512_set1_epi8(15));
            for (int i = 0; i < mr; i++) {
                const int8_t *aq = a->q + i * kp + 32 * b;
                acc[i] = ff_dpbusd_b4(acc[i], xl, aq + 4 * c);
                acc[i] = ff_dpbusd_b4(acc[i], xh, aq + 16 + 4 * c);
            }
        }
    } else {
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            __m512i x = _mm512_loadu_si512(v + 64 * c);
            for (int i = 0; i < mr; i++) acc[i] = ff_dpbusd_b4(acc[i], x, a->q + i * kp + 32 * b + 4 * c);
        }
    }
    __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
    for (int i = 0; i < mr; i++)
        out[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]), _mm512_mul_ps(ws, _mm512_set1_ps(a->d[i * (kp / 32) + b])),
                                 out[i]);
}

static inline AI FF_VNNI void r16_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                       const ff_qact *a, const int mr, const int q4) {
    int64_t nb = a->k / 32, tb = FF_R16 * (q4 ? FF_Q4_0_BYTES : FF_Q8_0_BYTES), ahead = mr == 1 ? a->ahead : 0;
    const uint8_t *end = w + n / FF_R16 * nb * tb;
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nb * tb;
        // several activation rows make a block slow enough to stall on memory between blocks: the next group's
        // same blocks are prefetched as these are read
        int64_t next = mr > 1 && g + 1 < n / FF_R16 ? nb * tb : 0;
        // even and odd blocks in separate accumulators
        __m512 even[FF_R16_MR], odd[FF_R16_MR];
        for (int i = 0; i < mr; i++) even[i] = odd[i] = _mm512_setzero_ps();
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            if (next)
                for (int64_t o = 0; o < 2 * tb; o += 64)
                    _mm_prefetch((const char *)(t + next + b * tb + o), _MM_HINT_T0);
            ff_prefetch_ahead(t + b * tb, 2 * tb, end, ahead);  // one activation row: as ff_qact.ahead says
            r16_block_vnni(even, t + b * tb, a, b, mr, q4);
            r16_block_vnni(odd, t + (b + 1) * tb, a, b + 1, mr, q4);
        }
        if (b < nb) r16_block_vnni(even, t + b * tb, a, b, mr, q4);
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, _mm512_add_ps(even[i], odd[i]));
    }
}

// the r16 kernel with the activation row count m (1..FF_R16_MR) as a constant
#define FF_R16_BY_M(q)                                                                                                 \
    switch (m) {                                                                                                       \
    case 8: r16_vnni(y, ldy, w, n, a, 8, q); break;                                                                    \
    case 7: r16_vnni(y, ldy, w, n, a, 7, q); break;                                                                    \
    case 6: r16_vnni(y, ldy, w, n, a, 6, q); break;                                                                    \
    case 5: r16_vnni(y, ldy, w, n, a, 5, q); break;                                                                    \
    case 4: r16_vnni(y, ldy, w, n, a, 4, q); break;                                                                    \
    case 3: r16_vnni(y, ldy, w, n, a, 3, q); break;                                                                    \
    case 2: r16_vnni(y, ldy, w, n, a, 2, q); break;                                                                    \
    default: r16_vnni(y, ldy, w, n, a, 1, q); break;                                                                   \
    }

FF_VNNI void ff_qdot_r16_q8_0_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    FF_R16_BY_M(0);
}

FF_VNNI void ff_qdot_r16_q4_0_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    FF_R16_BY_M(1);
}

FF_AVX512 void ff_quant_act_q8_avx512(int8_t *restrict q, float *restrict d, int16_t *restrict s,
                                      const float *restrict x, int64_t k, int bs) {
    float db = 0.0f, id = 0.0f;
    for (int64_t b = 0; b < k / 32; b++) {
        if (b % (bs / 32) == 0) {
            // the block's max |x| (exact in any order)
            __m512 mx = _mm512_setzero_ps();
            for (int64_t e = 0; e < bs; e += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + 32 * b + e)));
            float amax = ff_hmax_ps512(mx);
            db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        }
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        d[b] = db;
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        s[2 * b] = (int16_t)ff_hsum_epi32_512(i0);
        s[2 * b + 1] = (int16_t)ff_hsum_epi32_512(i1);
        _mm_storeu_si128((__m128i *)(void *)(q + 32 * b), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(void *)(q + 32 * b + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

FF_AVX512 void ff_fp32_to_fp16_row_avx512(uint16_t *restrict y, const float *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ff_fp32_to_fp16(x[i]);
}

FF_AVX512 void ff_fp16_to_fp32_row_avx512(float *restrict y, const uint16_t *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i))));
    for (; i < n; i++) y[i] = ff_fp16_to_fp32(x[i]);
}
#endif
