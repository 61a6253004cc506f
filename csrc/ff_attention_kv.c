// attention kernels that read keys and values from a kv cache stored as f16 or q8_0 (ggml blocks of 32 along
// the head), without a float32 copy of the cache: the pv kernels widen each vector of V as they load it, the dot
// (decode) kernels each group of 16 (avx-512) or 8 (avx2) keys, once for all the rows of a GQA group (on the
// stack) or as the one row reads it, and the block (prefill) qk kernel its tile of keys 32 columns at a time.
// `t` is the cache's ggml type id, FF_QT_F16 or FF_QT_Q8_0 (then d % 32 == 0); a row of K or V is
// ff_qtype_row_bytes(t, d) bytes. the float32 kernels and the driver are in ff_attention.c.
#include "ff_quant.h"

// bytes per row of d values of type t
static inline int64_t row_bytes(int t, int64_t d) { return t == FF_QT_F16 ? 2 * d : d / 32 * FF_Q8_0_BYTES; }

// ---- scalar kernels ----

// value i of a row of type t
static inline float kv_at(const uint8_t *row, int t, int64_t i) {
    if (t == FF_QT_F16) return ff_ld_fp16(row + 2 * i);
    const uint8_t *b = row + i / 32 * FF_Q8_0_BYTES;  // q8_0: fp16 scale d, 32 int8 q, value d * q
    return ff_ld_fp16(b) * (float)(int8_t)b[2 + i % 32];
}

void ff_attn_qk_kv_ref(float *restrict st, const float *restrict qt, const void *restrict k, int t, int64_t m,
                       int64_t n, int64_t d) {
    // K (n,d) of type t @ QT (d,m) -> st (n,m)
    int64_t rb = row_bytes(t, d);
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *kj = (const uint8_t *)k + j * rb;
        for (int64_t r = 0; r < m; r++) st[j * m + r] = 0.0f;
        for (int64_t i = 0; i < d; i++) {
            float kv = kv_at(kj, t, i);
            for (int64_t r = 0; r < m; r++) st[j * m + r] += kv * qt[i * m + r];
        }
    }
}

void ff_attn_qk_dot_kv_ref(float *restrict s, const float *restrict q, const void *restrict k, int t, int64_t m,
                           int64_t n, int64_t d) {
    // Q (m,d) @ K (n,d)^T of type t -> s (m,n)
    int64_t rb = row_bytes(t, d);
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
            const uint8_t *kj = (const uint8_t *)k + j * rb;
            float acc = 0.0f;
            for (int64_t i = 0; i < d; i++) acc += q[r * d + i] * kv_at(kj, t, i);
            s[r * n + j] = acc;
        }
}

void ff_attn_pv_kv_ref(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                       int64_t pjs, const void *restrict v, int t, int64_t m, int64_t n, int64_t d, int64_t ldo) {
    // O (m,d) row stride ldo = O * alpha (m,) + P (m,n) @ V (n,d) of type t, P[r][j] at p[r*prs + j*pjs]
    int64_t rb = row_bytes(t, d);
    for (int64_t r = 0; r < m; r++) {
        float *orow = o + r * ldo;
        for (int64_t i = 0; i < d; i++) orow[i] *= alpha[r];
        for (int64_t j = 0; j < n; j++) {
            const uint8_t *vj = (const uint8_t *)v + j * rb;
            for (int64_t i = 0; i < d; i++) orow[i] += p[r * prs + j * pjs] * kv_at(vj, t, i);
        }
    }
}

#ifdef FF_HAVE_X86
#include <immintrin.h>

#include "ff_hsum.h"

#define AI static inline __attribute__((always_inline))
#define KF_D 256  // the dot kernels widen a group of keys once for every row when d <= KF_D
// the fp16 at p as float (f16c)
FF_AVX2 AI float ld_scale(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// ---- avx-512 ----

// values i..i+15 of a row of type t (i % 16 == 0)
FF_AVX512 AI __m512 ld512(const uint8_t *row, int64_t i, const int t) {
    if (t == FF_QT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * i)));
    const uint8_t *b = row + i / 32 * FF_Q8_0_BYTES;
    __m512 q =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 2 + i % 32))));
    return _mm512_mul_ps(q, _mm512_set1_ps(ld_scale(b)));
}

// the same for the lanes of mk only (f16: tails of d % 16 columns; q8_0 rows have none), the rest 0
FF_AVX512 AI __m512 ld512m(const uint8_t *row, int64_t i, __mmask16 mk, const int t) {
    if (t == FF_QT_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, row + 2 * i));
    return ld512(row, i, t);
}

// a tile of st: KR keys x MC vectors of 16 rows; the keys widened 32 columns at a time into kf
FF_AVX512 AI void qk_tile512(float *st, const float *qt, const uint8_t *k, int64_t rb, int64_t m, int64_t d,
                             const int KR, const int MC, const int t) {
    __m512 acc[8][2];
    float kf[8][32] __attribute__((aligned(64)));
    for (int a = 0; a < KR; a++)
        for (int b = 0; b < MC; b++) acc[a][b] = _mm512_setzero_ps();
    for (int64_t i0 = 0; i0 < d; i0 += 32) {
        int64_t w = FF_MIN(32, d - i0);
        __mmask16 m0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1);
        __mmask16 m1 = (__mmask16)(w >= 32 ? 0xffff : w > 16 ? (1u << (w - 16)) - 1 : 0);
        for (int a = 0; a < KR; a++) {
            _mm512_store_ps(kf[a], ld512m(k + a * rb, i0, m0, t));
            _mm512_store_ps(kf[a] + 16, ld512m(k + a * rb, i0 + 16, m1, t));
        }
        for (int64_t i = 0; i < w; i++) {
            __m512 qv[2];
            for (int b = 0; b < MC; b++) qv[b] = _mm512_loadu_ps(qt + (i0 + i) * m + 16 * b);
            for (int a = 0; a < KR; a++) {
                __m512 kb = _mm512_set1_ps(kf[a][i]);
                for (int b = 0; b < MC; b++) acc[a][b] = _mm512_fmadd_ps(kb, qv[b], acc[a][b]);
            }
        }
    }
    for (int a = 0; a < KR; a++)
        for (int b = 0; b < MC; b++) _mm512_storeu_ps(st + a * m + 16 * b, acc[a][b]);
}

// all keys for MC vectors of rows: tiles of 8 keys, then 4, 2, 1
FF_AVX512 AI void qk_cols512(float *st, const float *qt, const uint8_t *k, int64_t rb, int64_t m, int64_t n, int64_t d,
                             const int MC, const int t) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) qk_tile512(st + j * m, qt, k + j * rb, rb, m, d, 8, MC, t);
    if (n - j >= 4) qk_tile512(st + j * m, qt, k + j * rb, rb, m, d, 4, MC, t), j += 4;
    if (n - j >= 2) qk_tile512(st + j * m, qt, k + j * rb, rb, m, d, 2, MC, t), j += 2;
    if (n - j >= 1) qk_tile512(st + j * m, qt, k + j * rb, rb, m, d, 1, MC, t);
}

FF_AVX512 AI void qk512(float *st, const float *qt, const uint8_t *k, int64_t m, int64_t n, int64_t d, const int t) {
    int64_t r = 0, rb = row_bytes(t, d);
    for (; r + 32 <= m; r += 32) qk_cols512(st + r, qt + r, k, rb, m, n, d, 2, t);
    if (r < m) qk_cols512(st + r, qt + r, k, rb, m, n, d, 1, t);
}

FF_AVX512 void ff_attn_qk_kv_avx512(float *restrict st, const float *restrict qt, const void *restrict k, int t,
                                    int64_t m, int64_t n, int64_t d) {
    if (t == FF_QT_F16)
        qk512(st, qt, k, m, n, d, FF_QT_F16);
    else
        qk512(st, qt, k, m, n, d, FF_QT_Q8_0);
}

// s[r*n + a] for a < 16 keys: 16 dot products of each of m rows of Q with widened keys kf (16, d), summed across
// d at the end
FF_AVX512 AI void dot16_512(float *s, const float *q, const float *kf, int64_t m, int64_t n, int64_t d) {
    int64_t dv = d & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (d & 15)) - 1);
    for (int64_t r = 0; r < m; r++) {
        const float *qr = q + r * d;
        __m512 acc[16];
        for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
        for (int64_t i = 0; i < dv; i += 16) {
            __m512 qv = _mm512_loadu_ps(qr + i);
            for (int a = 0; a < 16; a++) acc[a] = _mm512_fmadd_ps(_mm512_loadu_ps(kf + a * d + i), qv, acc[a]);
        }
        if (tail) {
            __m512 qv = _mm512_maskz_loadu_ps(tail, qr + dv);
            for (int a = 0; a < 16; a++)
                acc[a] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, kf + a * d + dv), qv, acc[a]);
        }
        _mm512_storeu_ps(s + r * n, ff_hsum_ps512x16(acc));
    }
}

FF_AVX512 AI void qk_dot512(float *s, const float *q, const uint8_t *k, int64_t m, int64_t n, int64_t d, const int t) {
    int64_t dv = d & ~(int64_t)15, rb = row_bytes(t, d);
    __mmask16 tail = (__mmask16)((1u << (d & 15)) - 1);
    float kf[16 * KF_D];
    int64_t j = 0;
    // 16 keys at a time, widened once into kf (several rows read them) or as each row reads them
    for (; j + 16 <= n; j += 16) {
        const uint8_t *kj = k + j * rb;
        if (m > 1 && d <= KF_D) {
            for (int a = 0; a < 16; a++) {
                for (int64_t i = 0; i < dv; i += 16) _mm512_storeu_ps(kf + a * d + i, ld512(kj + a * rb, i, t));
                if (tail) _mm512_mask_storeu_ps(kf + a * d + dv, tail, ld512m(kj + a * rb, dv, tail, t));
            }
            dot16_512(s + j, q, kf, m, n, d);
            continue;
        }
        for (int64_t r = 0; r < m; r++) {
            const float *qr = q + r * d;
            __m512 acc[16];
            for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
            for (int64_t i = 0; i < dv; i += 16) {
                __m512 qv = _mm512_loadu_ps(qr + i);
                for (int a = 0; a < 16; a++) acc[a] = _mm512_fmadd_ps(ld512(kj + a * rb, i, t), qv, acc[a]);
            }
            if (tail) {
                __m512 qv = _mm512_maskz_loadu_ps(tail, qr + dv);
                for (int a = 0; a < 16; a++) acc[a] = _mm512_fmadd_ps(ld512m(kj + a * rb, dv, tail, t), qv, acc[a]);
            }
            _mm512_storeu_ps(s + r * n + j, ff_hsum_ps512x16(acc));
        }
    }
    // leftover keys one at a time
    for (; j < n; j++)
        for (int64_t r = 0; r < m; r++) {
            __m512 acc = _mm512_setzero_ps();
            for (int64_t i = 0; i < dv; i += 16)
                acc = _mm512_fmadd_ps(ld512(k + j * rb, i, t), _mm512_loadu_ps(q + r * d + i), acc);
            if (tail)
                acc =
                    _mm512_fmadd_ps(ld512m(k + j * rb, dv, tail, t), _mm512_maskz_loadu_ps(tail, q + r * d + dv), acc);
            s[r * n + j] = ff_hsum_ps512(acc);
        }
}

FF_AVX512 void ff_attn_qk_dot_kv_avx512(float *restrict s, const float *restrict q, const void *restrict k, int t,
                                        int64_t m, int64_t n, int64_t d) {
    if (t == FF_QT_F16)
        qk_dot512(s, q, k, m, n, d, FF_QT_F16);
    else
        qk_dot512(s, q, k, m, n, d, FF_QT_Q8_0);
}

// R rows x C vectors of 16 columns of O; the last vector's columns are `last`
FF_AVX512 AI void pv_tile512(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                             int64_t rb, int64_t i0, int64_t n, int64_t ldo, __mmask16 last, const int R, const int C,
                             const int t) {
    __m512 acc[4][5];
    for (int r = 0; r < R; r++) {
        __m512 a = _mm512_set1_ps(alpha[r]);
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * ldo + 16 * c), a);
    }
    for (int64_t j = 0; j < n; j++) {
        __m512 vv[5];
        for (int c = 0; c < C - 1; c++) vv[c] = ld512(v + j * rb, i0 + 16 * c, t);
        vv[C - 1] = ld512m(v + j * rb, i0 + 16 * (C - 1), last, t);
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(p[r * prs + j * pjs]);
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) _mm512_storeu_ps(o + r * ldo + 16 * c, acc[r][c]);
}

// R rows of a chunk of C vectors at column i0 (C < 5 only on the last, short chunk of a small d)
FF_AVX512 AI void pv_rows512(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                             int64_t rb, int64_t i0, int64_t n, int64_t ldo, __mmask16 last, const int R, int C,
                             const int t) {
    switch (C) {
    case 1: pv_tile512(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, last, R, 1, t); break;
    case 2: pv_tile512(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, last, R, 2, t); break;
    case 3: pv_tile512(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, last, R, 3, t); break;
    case 4: pv_tile512(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, last, R, 4, t); break;
    default: pv_tile512(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, last, R, 5, t); break;
    }
}

FF_AVX512 AI void pv512(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                        int64_t m, int64_t n, int64_t d, int64_t ldo, const int t) {
    // columns in chunks of up to 5 vectors, as even as possible; rows 4 at a time
    int64_t nv = (d + 15) / 16, nch = (nv + 4) / 5, c0 = 0, rb = row_bytes(t, d);
    for (int64_t ch = 0; ch < nch; ch++) {
        int C = (int)(nv / nch + (ch < nv % nch));
        __mmask16 last = (c0 + C == nv && d % 16) ? (__mmask16)((1u << (d % 16)) - 1) : (__mmask16)0xffff;
        int64_t r = 0;
        for (; r + 4 <= m; r += 4)
            pv_rows512(o + r * ldo + 16 * c0, alpha + r, p + r * prs, prs, pjs, v, rb, 16 * c0, n, ldo, last, 4, C, t);
        for (; r < m; r++)
            pv_rows512(o + r * ldo + 16 * c0, alpha + r, p + r * prs, prs, pjs, v, rb, 16 * c0, n, ldo, last, 1, C, t);
        c0 += C;
    }
}

FF_AVX512 void ff_attn_pv_kv_avx512(float *restrict o, const float *restrict alpha, const float *restrict p,
                                    int64_t prs, int64_t pjs, const void *restrict v, int t, int64_t m, int64_t n,
                                    int64_t d, int64_t ldo) {
    if (t == FF_QT_F16)
        pv512(o, alpha, p, prs, pjs, v, m, n, d, ldo, FF_QT_F16);
    else
        pv512(o, alpha, p, prs, pjs, v, m, n, d, ldo, FF_QT_Q8_0);
}

// ---- avx2 ----

// values i..i+7 of a row of type t (i % 8 == 0)
FF_AVX2 AI __m256 ld256(const uint8_t *row, int64_t i, const int t) {
    if (t == FF_QT_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * i)));
    const uint8_t *b = row + i / 32 * FF_Q8_0_BYTES;
    __m256 q =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + 2 + i % 32))));
    return _mm256_mul_ps(q, _mm256_set1_ps(ld_scale(b)));
}

// the first w < 8 values from column i (f16 tails; q8_0 rows have none), the rest 0
FF_AVX2 AI __m256 ld256_part(const uint8_t *row, int64_t i, int64_t w) {
    uint16_t h[8] = {0};
    memcpy(h, row + 2 * i, (size_t)w * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h));
}

// values i.. of a row, w of them (w < 8 only at a tail)
FF_AVX2 AI __m256 ld256w(const uint8_t *row, int64_t i, int64_t w, const int t) {
    return w < 8 ? ld256_part(row, i, w) : ld256(row, i, t);
}

// a tile of st: KR keys x 16 rows (two vectors); the keys widened 32 columns at a time into kf
FF_AVX2 AI void qk_tile256(float *st, const float *qt, const uint8_t *k, int64_t rb, int64_t m, int64_t d, const int KR,
                           const int t) {
    __m256 acc[6][2];
    float kf[6][32] __attribute__((aligned(32)));
    for (int a = 0; a < KR; a++) acc[a][0] = acc[a][1] = _mm256_setzero_ps();
    for (int64_t i0 = 0; i0 < d; i0 += 32) {
        int64_t w = FF_MIN(32, d - i0);
        for (int a = 0; a < KR; a++)
            for (int c = 0; c < 32; c += 8)
                _mm256_store_ps(kf[a] + c,
                                c < w ? ld256w(k + a * rb, i0 + c, FF_MIN(8, w - c), t) : _mm256_setzero_ps());
        for (int64_t i = 0; i < w; i++) {
            __m256 q0 = _mm256_loadu_ps(qt + (i0 + i) * m), q1 = _mm256_loadu_ps(qt + (i0 + i) * m + 8);
            for (int a = 0; a < KR; a++) {
                __m256 kb = _mm256_broadcast_ss(kf[a] + i);
                acc[a][0] = _mm256_fmadd_ps(kb, q0, acc[a][0]);
                acc[a][1] = _mm256_fmadd_ps(kb, q1, acc[a][1]);
            }
        }
    }
    for (int a = 0; a < KR; a++) {
        _mm256_storeu_ps(st + a * m, acc[a][0]);
        _mm256_storeu_ps(st + a * m + 8, acc[a][1]);
    }
}

FF_AVX2 AI void qk256(float *st, const float *qt, const uint8_t *k, int64_t m, int64_t n, int64_t d, const int t) {
    int64_t rb = row_bytes(t, d);
    for (int64_t r = 0; r < m; r += 16) {
        int64_t j = 0;
        for (; j + 6 <= n; j += 6) qk_tile256(st + j * m + r, qt + r, k + j * rb, rb, m, d, 6, t);
        if (n - j >= 4) qk_tile256(st + j * m + r, qt + r, k + j * rb, rb, m, d, 4, t), j += 4;
        if (n - j >= 2) qk_tile256(st + j * m + r, qt + r, k + j * rb, rb, m, d, 2, t), j += 2;
        if (n - j >= 1) qk_tile256(st + j * m + r, qt + r, k + j * rb, rb, m, d, 1, t);
    }
}

FF_AVX2 void ff_attn_qk_kv_avx2(float *restrict st, const float *restrict qt, const void *restrict k, int t, int64_t m,
                                int64_t n, int64_t d) {
    if (t == FF_QT_F16)
        qk256(st, qt, k, m, n, d, FF_QT_F16);
    else
        qk256(st, qt, k, m, n, d, FF_QT_Q8_0);
}

// lanes below w set, as a maskload mask
FF_AVX2 AI __m256i lanes256(int64_t w) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// s[r*n + a] for a < 8 keys: 8 dot products of each of m rows of Q with widened keys kf (8, dp), dp = d rounded
// up to 8 (zero-padded)
FF_AVX2 AI void dot8_256(float *s, const float *q, const float *kf, int64_t m, int64_t n, int64_t d, int64_t dp) {
    int64_t dv = d & ~(int64_t)7;
    __m256i tail = lanes256(d & 7);
    for (int64_t r = 0; r < m; r++) {
        const float *qr = q + r * d;
        __m256 acc[8];
        for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
        for (int64_t i = 0; i < dv; i += 8) {
            __m256 qv = _mm256_loadu_ps(qr + i);
            for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(_mm256_loadu_ps(kf + a * dp + i), qv, acc[a]);
        }
        if (d & 7) {
            __m256 qv = _mm256_maskload_ps(qr + dv, tail);
            for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(_mm256_loadu_ps(kf + a * dp + dv), qv, acc[a]);
        }
        _mm256_storeu_ps(s + r * n, ff_hsum_ps256x8(acc));
    }
}

FF_AVX2 AI void qk_dot256(float *s, const float *q, const uint8_t *k, int64_t m, int64_t n, int64_t d, const int t) {
    int64_t dv = d & ~(int64_t)7, rb = row_bytes(t, d), dp = (d + 7) & ~(int64_t)7;
    __m256i tail = lanes256(d & 7);
    float kf[8 * KF_D];
    int64_t j = 0;
    // 8 keys at a time, widened once into kf (several rows read them) or as each row reads them
    for (; j + 8 <= n; j += 8) {
        const uint8_t *kj = k + j * rb;
        if (m > 1 && dp <= KF_D) {
            for (int a = 0; a < 8; a++)
                for (int64_t i = 0; i < dp; i += 8)
                    _mm256_storeu_ps(kf + a * dp + i, ld256w(kj + a * rb, i, FF_MIN(8, d - i), t));
            dot8_256(s + j, q, kf, m, n, d, dp);
            continue;
        }
        for (int64_t r = 0; r < m; r++) {
            const float *qr = q + r * d;
            __m256 acc[8];
            for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
            for (int64_t i = 0; i < dv; i += 8) {
                __m256 qv = _mm256_loadu_ps(qr + i);
                for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(ld256(kj + a * rb, i, t), qv, acc[a]);
            }
            if (d & 7) {
                __m256 qv = _mm256_maskload_ps(qr + dv, tail);
                for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(ld256_part(kj + a * rb, dv, d & 7), qv, acc[a]);
            }
            _mm256_storeu_ps(s + r * n + j, ff_hsum_ps256x8(acc));
        }
    }
    // leftover keys one at a time
    for (; j < n; j++)
        for (int64_t r = 0; r < m; r++) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < dv; i += 8)
                acc = _mm256_fmadd_ps(ld256(k + j * rb, i, t), _mm256_loadu_ps(q + r * d + i), acc);
            if (d & 7)
                acc = _mm256_fmadd_ps(ld256_part(k + j * rb, dv, d & 7), _mm256_maskload_ps(q + r * d + dv, tail), acc);
            s[r * n + j] = ff_hsum_ps256(acc);
        }
}

FF_AVX2 void ff_attn_qk_dot_kv_avx2(float *restrict s, const float *restrict q, const void *restrict k, int t,
                                    int64_t m, int64_t n, int64_t d) {
    if (t == FF_QT_F16)
        qk_dot256(s, q, k, m, n, d, FF_QT_F16);
    else
        qk_dot256(s, q, k, m, n, d, FF_QT_Q8_0);
}

// R rows x C vectors of 8 columns of O from column i0; the last vector holds w <= 8 columns
FF_AVX2 AI void pv_tile256(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                           int64_t rb, int64_t i0, int64_t n, int64_t ldo, int64_t w, const int R, const int C,
                           const int t) {
    __m256 acc[4][3];
    for (int r = 0; r < R; r++) {
        __m256 a = _mm256_broadcast_ss(alpha + r);
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_mul_ps(_mm256_loadu_ps(o + r * ldo + 8 * c), a);
    }
    for (int64_t j = 0; j < n; j++) {
        __m256 vv[3];
        for (int c = 0; c < C - 1; c++) vv[c] = ld256(v + j * rb, i0 + 8 * c, t);
        vv[C - 1] = ld256w(v + j * rb, i0 + 8 * (C - 1), w, t);
        for (int r = 0; r < R; r++) {
            __m256 pb = _mm256_broadcast_ss(p + r * prs + j * pjs);
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(o + r * ldo + 8 * c, acc[r][c]);
}

FF_AVX2 AI void pv_rows256(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                           int64_t rb, int64_t i0, int64_t n, int64_t ldo, int64_t w, const int R, int C, const int t) {
    switch (C) {
    case 1: pv_tile256(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, w, R, 1, t); break;
    case 2: pv_tile256(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, w, R, 2, t); break;
    default: pv_tile256(o, alpha, p, prs, pjs, v, rb, i0, n, ldo, w, R, 3, t); break;
    }
}

FF_AVX2 AI void pv256(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const uint8_t *v,
                      int64_t m, int64_t n, int64_t d, int64_t ldo, const int t) {
    // columns in chunks of up to 3 vectors, as even as possible; rows 4 at a time
    int64_t nv = (d + 7) / 8, nch = (nv + 2) / 3, c0 = 0, rb = row_bytes(t, d);
    for (int64_t ch = 0; ch < nch; ch++) {
        int C = (int)(nv / nch + (ch < nv % nch));
        int64_t w = c0 + C == nv && d % 8 ? d % 8 : 8;
        int64_t r = 0;
        for (; r + 4 <= m; r += 4)
            pv_rows256(o + r * ldo + 8 * c0, alpha + r, p + r * prs, prs, pjs, v, rb, 8 * c0, n, ldo, w, 4, C, t);
        for (; r < m; r++)
            pv_rows256(o + r * ldo + 8 * c0, alpha + r, p + r * prs, prs, pjs, v, rb, 8 * c0, n, ldo, w, 1, C, t);
        c0 += C;
    }
}

FF_AVX2 void ff_attn_pv_kv_avx2(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                                int64_t pjs, const void *restrict v, int t, int64_t m, int64_t n, int64_t d,
                                int64_t ldo) {
    if (t == FF_QT_F16)
        pv256(o, alpha, p, prs, pjs, v, m, n, d, ldo, FF_QT_F16);
    else
        pv256(o, alpha, p, prs, pjs, v, m, n, d, ldo, FF_QT_Q8_0);
}
#endif
