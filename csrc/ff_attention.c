// attention with an online (flash-style) softmax: keys are visited in blocks, the running max and sum
// rescale the output, and no (tq, tk) score matrix is ever stored.
// a work item is (kv head, block of queries): its rows are the group's query heads times those queries,
// so each K/V block is read once for all of them. two layouts:
//   block path (>= 16 rows): queries packed transposed, scores as st (keys, rows); vectors run over rows,
//     so the softmax needs no horizontal reductions and both products are register-blocked micro-gemms
//   dot path (< 16 rows, i.e. decode): scores as s (rows, keys) from dot products over d
// keys and values come from a cache of float32, f16 or q8_0 rows; the kernels of the other two types read them in
// their type (ff_attention_kv.c)
#include "ff_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "ff_hsum.h"
#include "ff_vmath.h"

#define BK 64          // keys per block on the block path
#define BK_DOT 256     // keys per block on the dot path
#define ROWS 32        // target rows (query heads x queries) per work item
#define SPLIT_MIN 256  // fewest keys per split when a decode is split over keys

// ---- scalar kernels ----

void ff_attn_qk_f32_ref(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m, int64_t n,
                        int64_t d) {
    // K (n,d) @ QT (d,m) -> st (n,m)
    for (int64_t j = 0; j < n; j++) {
        for (int64_t r = 0; r < m; r++) st[j * m + r] = 0.0f;
        for (int64_t i = 0; i < d; i++)
            for (int64_t r = 0; r < m; r++) st[j * m + r] += k[j * d + i] * qt[i * m + r];
    }
}

void ff_attn_softmax_f32_ref(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,
                             const int32_t *restrict pos, int64_t j0, int64_t m, int64_t n) {
    // st (n,m) -> p (n,m) in place; row r drops key j0+j > pos[r] (pos NULL: none); mx, l, alpha (m,)
    for (int64_t r = 0; r < m; r++) {
        // mask, then the new running max
        float mb = mx[r];
        for (int64_t j = 0; j < n; j++) {
            if (pos && j0 + j > pos[r]) p[j * m + r] = -INFINITY;
            mb = fmaxf(mb, p[j * m + r]);
        }
        // probabilities against the new max; what came before shrinks by alpha
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            p[j * m + r] = expf(p[j * m + r] - mb);
            sum += p[j * m + r];
        }
        alpha[r] = expf(mx[r] - mb);
        l[r] = l[r] * alpha[r] + sum;
        mx[r] = mb;
    }
}

void ff_attn_pv_f32_ref(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                        int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d, int64_t ldo) {
    // O (m,d) row stride ldo = O * alpha (m,) + P (m,n) @ V (n,d), P[r][j] at p[r*prs + j*pjs]
    for (int64_t r = 0; r < m; r++) {
        float *orow = o + r * ldo;
        for (int64_t i = 0; i < d; i++) orow[i] *= alpha[r];
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < d; i++) orow[i] += p[r * prs + j * pjs] * v[j * d + i];
    }
}

void ff_attn_qk_dot_f32_ref(float *restrict s, const float *restrict q, const float *restrict k, int64_t m, int64_t n,
                            int64_t d) {
    // Q (m,d) @ K (n,d)^T -> s (m,n)
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < d; i++) acc += q[r * d + i] * k[j * d + i];
            s[r * n + j] = acc;
        }
}

void ff_attn_softmax_dot_f32_ref(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,
                                 int64_t nv, int64_t n) {
    // one row: s (n,) -> p (n,) in place over the first nv keys, the rest 0; mx, l, alpha scalars
    if (nv == 0) {
        for (int64_t j = 0; j < n; j++) p[j] = 0.0f;
        *alpha = 1.0f;
        return;
    }
    float mb = *mx, sum = 0.0f;
    for (int64_t j = 0; j < nv; j++) mb = fmaxf(mb, p[j]);
    for (int64_t j = 0; j < nv; j++) {
        p[j] = expf(p[j] - mb);
        sum += p[j];
    }
    for (int64_t j = nv; j < n; j++) p[j] = 0.0f;
    *alpha = expf(*mx - mb);
    *l = *l * *alpha + sum;
    *mx = mb;
}

#ifdef FF_HAVE_X86
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

// ---- avx-512 ----

// a tile of st: KR keys x MC vectors of 16 rows
FF_AVX512 AI void qk_tile512(float *st, const float *qt, const float *k, int64_t m, int64_t d, const int KR,
                             const int MC) {
    __m512 acc[8][2];
    for (int a = 0; a < KR; a++)
        for (int b = 0; b < MC; b++) acc[a][b] = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i++) {
        __m512 qv[2];
        for (int b = 0; b < MC; b++) qv[b] = _mm512_loadu_ps(qt + i * m + 16 * b);
        for (int a = 0; a < KR; a++) {
            __m512 kb = _mm512_set1_ps(k[a * d + i]);
            for (int b = 0; b < MC; b++) acc[a][b] = _mm512_fmadd_ps(kb, qv[b], acc[a][b]);
        }
    }
    for (int a = 0; a < KR; a++)
        for (int b = 0; b < MC; b++) _mm512_storeu_ps(st + a * m + 16 * b, acc[a][b]);
}

// all keys for MC vectors of rows: tiles of 8 keys, then 4, 2, 1
FF_AVX512 AI void qk_cols512(float *st, const float *qt, const float *k, int64_t m, int64_t n, int64_t d,
                             const int MC) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) qk_tile512(st + j * m, qt, k + j * d, m, d, 8, MC);
    if (n - j >= 4) qk_tile512(st + j * m, qt, k + j * d, m, d, 4, MC), j += 4;
    if (n - j >= 2) qk_tile512(st + j * m, qt, k + j * d, m, d, 2, MC), j += 2;
    if (n - j >= 1) qk_tile512(st + j * m, qt, k + j * d, m, d, 1, MC);
}

FF_AVX512 void ff_attn_qk_f32_avx512(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m,
                                     int64_t n, int64_t d) {
    int64_t r = 0;
    for (; r + 32 <= m; r += 32) qk_cols512(st + r, qt + r, k, m, n, d, 2);
    if (r < m) qk_cols512(st + r, qt + r, k, m, n, d, 1);
}

FF_AVX512 void ff_attn_softmax_f32_avx512(float *restrict p, float *restrict mx, float *restrict l,
                                          float *restrict alpha, const int32_t *restrict pos, int64_t j0, int64_t m,
                                          int64_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t r = 0; r < m; r += 16) {
        __m512 mold = _mm512_loadu_ps(mx + r), mb = mold;
        // mask, then the new running max
        if (pos) {
            __m512i lim = _mm512_loadu_si512(pos + r);
            for (int64_t j = 0; j < n; j++) {
                __mmask16 drop = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32((int32_t)(j0 + j)), lim);
                __m512 s = _mm512_mask_mov_ps(_mm512_loadu_ps(p + j * m + r), drop, ninf);
                _mm512_storeu_ps(p + j * m + r, s);
                mb = _mm512_max_ps(mb, s);
            }
        } else {
            for (int64_t j = 0; j < n; j++) mb = _mm512_max_ps(mb, _mm512_loadu_ps(p + j * m + r));
        }
        // probabilities against the new max
        __m512 sum = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            __m512 e = ff_exp_ps512(_mm512_sub_ps(_mm512_loadu_ps(p + j * m + r), mb));
            _mm512_storeu_ps(p + j * m + r, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 a = ff_exp_ps512(_mm512_sub_ps(mold, mb));
        _mm512_storeu_ps(alpha + r, a);
        _mm512_storeu_ps(l + r, _mm512_fmadd_ps(_mm512_loadu_ps(l + r), a, sum));
        _mm512_storeu_ps(mx + r, mb);
    }
}

// R rows x C vectors of 16 columns of O; the last vector's columns are `last`
FF_AVX512 AI void pv_tile512(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const float *v,
                             int64_t n, int64_t d, int64_t ldo, __mmask16 last, const int R, const int C) {
    __m512 acc[4][5];
    for (int r = 0; r < R; r++) {
        __m512 a = _mm512_set1_ps(alpha[r]);
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * ldo + 16 * c), a);
    }
    for (int64_t j = 0; j < n; j++) {
        __m512 vv[5];
        for (int c = 0; c < C - 1; c++) vv[c] = _mm512_loadu_ps(v + j * d + 16 * c);
        vv[C - 1] = _mm512_maskz_loadu_ps(last, v + j * d + 16 * (C - 1));
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(p[r * prs + j * pjs]);
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) _mm512_storeu_ps(o + r * ldo + 16 * c, acc[r][c]);
}

#define PV_CASES512(R)                                                                                                 \
    switch (C) {                                                                                                       \
    case 1: pv_tile512(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 1); break;                                 \
    case 2: pv_tile512(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 2); break;                                 \
    case 3: pv_tile512(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 3); break;                                 \
    case 4: pv_tile512(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 4); break;                                 \
    default: pv_tile512(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 5); break;                                \
    }

FF_AVX512 void ff_attn_pv_f32_avx512(float *restrict o, const float *restrict alpha, const float *restrict p,
                                     int64_t prs, int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d,
                                     int64_t ldo) {
    // columns in chunks of up to 5 vectors, as even as possible; rows 4 at a time
    int64_t nv = (d + 15) / 16, nch = (nv + 4) / 5, c0 = 0;
    for (int64_t ch = 0; ch < nch; ch++) {
        int C = (int)(nv / nch + (ch < nv % nch));
        __mmask16 last = (c0 + C == nv && d % 16) ? (__mmask16)((1u << (d % 16)) - 1) : (__mmask16)0xffff;
        const float *vc = v + 16 * c0;
        int64_t r = 0;
        for (; r + 4 <= m; r += 4) {
            float *oc = o + r * ldo + 16 * c0;
            const float *pr = p + r * prs;
            PV_CASES512(4)
        }
        for (; r < m; r++) {
            float *oc = o + r * ldo + 16 * c0;
            const float *pr = p + r * prs;
            PV_CASES512(1)
        }
        c0 += C;
    }
}

FF_AVX512 void ff_attn_qk_dot_f32_avx512(float *restrict s, const float *restrict q, const float *restrict k, int64_t m,
                                         int64_t n, int64_t d) {
    int64_t dv = d & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (d & 15)) - 1);
    int64_t j = 0;
    // 16 keys at a time per row, summed across d at the end
    for (; j + 16 <= n; j += 16) {
        const float *kj = k + j * d;
        for (int64_t r = 0; r < m; r++) {
            const float *qr = q + r * d;
            __m512 acc[16];
            for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
            for (int64_t i = 0; i < dv; i += 16) {
                __m512 qv = _mm512_loadu_ps(qr + i);
                for (int a = 0; a < 16; a++) acc[a] = _mm512_fmadd_ps(_mm512_loadu_ps(kj + a * d + i), qv, acc[a]);
            }
            if (tail) {
                __m512 qv = _mm512_maskz_loadu_ps(tail, qr + dv);
                for (int a = 0; a < 16; a++)
                    acc[a] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, kj + a * d + dv), qv, acc[a]);
            }
            _mm512_storeu_ps(s + r * n + j, ff_hsum_ps512x16(acc));
        }
    }
    // leftover keys one at a time
    for (; j < n; j++)
        for (int64_t r = 0; r < m; r++) {
            __m512 acc = _mm512_setzero_ps();
            for (int64_t i = 0; i < dv; i += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(k + j * d + i), _mm512_loadu_ps(q + r * d + i), acc);
            __m512 kv = _mm512_maskz_loadu_ps(tail, k + j * d + dv), qv = _mm512_maskz_loadu_ps(tail, q + r * d + dv);
            acc = _mm512_fmadd_ps(kv, qv, acc);
            s[r * n + j] = ff_hsum_ps512(acc);
        }
}

FF_AVX512 void ff_attn_softmax_dot_f32_avx512(float *restrict p, float *restrict mx, float *restrict l,
                                              float *restrict alpha, int64_t nv, int64_t n) {
    if (nv == 0) {
        memset(p, 0, (size_t)n * sizeof(float));
        *alpha = 1.0f;
        return;
    }
    int64_t nf = nv & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (nv & 15)) - 1);
    // the new running max
    __m512 vm = _mm512_set1_ps(*mx);
    for (int64_t j = 0; j < nf; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(p + j));
    vm = _mm512_mask_max_ps(vm, tail, vm, _mm512_maskz_loadu_ps(tail, p + nf));
    float mb = ff_hmax_ps512(vm);
    // probabilities against it; keys past nv get 0
    __m512 vb = _mm512_set1_ps(mb), sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < nf; j += 16) {
        __m512 e = ff_exp_ps512(_mm512_sub_ps(_mm512_loadu_ps(p + j), vb));
        _mm512_storeu_ps(p + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (tail) {
        __m512 e = _mm512_maskz_mov_ps(tail, ff_exp_ps512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, p + nf), vb)));
        _mm512_mask_storeu_ps(p + nf, tail, e);
        sum = _mm512_add_ps(sum, e);
    }
    for (int64_t j = nv; j < n; j++) p[j] = 0.0f;
    *alpha = expf(*mx - mb);
    *l = *l * *alpha + ff_hsum_ps512(sum);
    *mx = mb;
}

// ---- avx2 ----

// a tile of st: KR keys x 16 rows (two vectors)
FF_AVX2 AI void qk_tile256(float *st, const float *qt, const float *k, int64_t m, int64_t d, const int KR) {
    __m256 acc[6][2];
    for (int a = 0; a < KR; a++) acc[a][0] = acc[a][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < d; i++) {
        __m256 q0 = _mm256_loadu_ps(qt + i * m), q1 = _mm256_loadu_ps(qt + i * m + 8);
        for (int a = 0; a < KR; a++) {
            __m256 kb = _mm256_broadcast_ss(k + a * d + i);
            acc[a][0] = _mm256_fmadd_ps(kb, q0, acc[a][0]);
            acc[a][1] = _mm256_fmadd_ps(kb, q1, acc[a][1]);
        }
    }
    for (int a = 0; a < KR; a++) {
        _mm256_storeu_ps(st + a * m, acc[a][0]);
        _mm256_storeu_ps(st + a * m + 8, acc[a][1]);
    }
}

FF_AVX2 void ff_attn_qk_f32_avx2(float *restrict st, const float *restrict qt, const float *restrict k, int64_t m,
                                 int64_t n, int64_t d) {
    for (int64_t r = 0; r < m; r += 16) {
        int64_t j = 0;
        for (; j + 6 <= n; j += 6) qk_tile256(st + j * m + r, qt + r, k + j * d, m, d, 6);
        if (n - j >= 4) qk_tile256(st + j * m + r, qt + r, k + j * d, m, d, 4), j += 4;
        if (n - j >= 2) qk_tile256(st + j * m + r, qt + r, k + j * d, m, d, 2), j += 2;
        if (n - j >= 1) qk_tile256(st + j * m + r, qt + r, k + j * d, m, d, 1);
    }
}

FF_AVX2 void ff_attn_softmax_f32_avx2(float *restrict p, float *restrict mx, float *restrict l, float *restrict alpha,
                                      const int32_t *restrict pos, int64_t j0, int64_t m, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < m; r += 8) {
        __m256 mold = _mm256_loadu_ps(mx + r), mb = mold;
        // mask, then the new running max
        if (pos) {
            __m256i lim = _mm256_loadu_si256((const __m256i *)(pos + r));
            for (int64_t j = 0; j < n; j++) {
                __m256 drop = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(j0 + j)), lim));
                __m256 s = _mm256_blendv_ps(_mm256_loadu_ps(p + j * m + r), ninf, drop);
                _mm256_storeu_ps(p + j * m + r, s);
                mb = _mm256_max_ps(mb, s);
            }
        } else {
            for (int64_t j = 0; j < n; j++) mb = _mm256_max_ps(mb, _mm256_loadu_ps(p + j * m + r));
        }
        // probabilities against the new max
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            __m256 e = ff_exp_ps256(_mm256_sub_ps(_mm256_loadu_ps(p + j * m + r), mb));
            _mm256_storeu_ps(p + j * m + r, e);
            sum = _mm256_add_ps(sum, e);
        }
        __m256 a = ff_exp_ps256(_mm256_sub_ps(mold, mb));
        _mm256_storeu_ps(alpha + r, a);
        _mm256_storeu_ps(l + r, _mm256_fmadd_ps(_mm256_loadu_ps(l + r), a, sum));
        _mm256_storeu_ps(mx + r, mb);
    }
}

// lanes below t set, as a maskload mask
FF_AVX2 AI __m256i lanes256(int64_t t) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)t), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// R rows x C vectors of 8 columns of O; with PART the last vector loads only the `last` lanes of V
FF_AVX2 AI void pv_tile256(float *o, const float *alpha, const float *p, int64_t prs, int64_t pjs, const float *v,
                           int64_t n, int64_t d, int64_t ldo, __m256i last, const int R, const int C, const int PART) {
    __m256 acc[4][3];
    for (int r = 0; r < R; r++) {
        __m256 a = _mm256_broadcast_ss(alpha + r);
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_mul_ps(_mm256_loadu_ps(o + r * ldo + 8 * c), a);
    }
    for (int64_t j = 0; j < n; j++) {
        __m256 vv[3];
        for (int c = 0; c < C; c++)
            vv[c] =
                PART && c == C - 1 ? _mm256_maskload_ps(v + j * d + 8 * c, last) : _mm256_loadu_ps(v + j * d + 8 * c);
        for (int r = 0; r < R; r++) {
            __m256 pb = _mm256_broadcast_ss(p + r * prs + j * pjs);
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(o + r * ldo + 8 * c, acc[r][c]);
}

#define PV_CASES256(R, PART)                                                                                           \
    switch (C) {                                                                                                       \
    case 1: pv_tile256(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 1, PART); break;                           \
    case 2: pv_tile256(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 2, PART); break;                           \
    default: pv_tile256(oc, alpha + r, pr, prs, pjs, vc, n, d, ldo, last, R, 3, PART); break;                          \
    }

FF_AVX2 void ff_attn_pv_f32_avx2(float *restrict o, const float *restrict alpha, const float *restrict p, int64_t prs,
                                 int64_t pjs, const float *restrict v, int64_t m, int64_t n, int64_t d, int64_t ldo) {
    // columns in chunks of up to 3 vectors, as even as possible; rows 4 at a time
    int64_t nv = (d + 7) / 8, nch = (nv + 2) / 3, c0 = 0;
    for (int64_t ch = 0; ch < nch; ch++) {
        int C = (int)(nv / nch + (ch < nv % nch));
        int part = c0 + C == nv && d % 8;
        __m256i last = lanes256(d % 8);
        const float *vc = v + 8 * c0;
        int64_t r = 0;
        for (; r + 4 <= m; r += 4) {
            float *oc = o + r * ldo + 8 * c0;
            const float *pr = p + r * prs;
            if (part) {
                PV_CASES256(4, 1)
            } else {
                PV_CASES256(4, 0)
            }
        }
        for (; r < m; r++) {
            float *oc = o + r * ldo + 8 * c0;
            const float *pr = p + r * prs;
            if (part) {
                PV_CASES256(1, 1)
            } else {
                PV_CASES256(1, 0)
            }
        }
        c0 += C;
    }
}

FF_AVX2 void ff_attn_qk_dot_f32_avx2(float *restrict s, const float *restrict q, const float *restrict k, int64_t m,
                                     int64_t n, int64_t d) {
    int64_t dv = d & ~(int64_t)7;
    __m256i tail = lanes256(d & 7);
    int64_t j = 0;
    // 8 keys at a time per row, summed across d at the end
    for (; j + 8 <= n; j += 8) {
        const float *kj = k + j * d;
        for (int64_t r = 0; r < m; r++) {
            const float *qr = q + r * d;
            __m256 acc[8];
            for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
            for (int64_t i = 0; i < dv; i += 8) {
                __m256 qv = _mm256_loadu_ps(qr + i);
                for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(_mm256_loadu_ps(kj + a * d + i), qv, acc[a]);
            }
            if (d & 7) {
                __m256 qv = _mm256_maskload_ps(qr + dv, tail);
                for (int a = 0; a < 8; a++)
                    acc[a] = _mm256_fmadd_ps(_mm256_maskload_ps(kj + a * d + dv, tail), qv, acc[a]);
            }
            _mm256_storeu_ps(s + r * n + j, ff_hsum_ps256x8(acc));
        }
    }
    // leftover keys one at a time
    for (; j < n; j++)
        for (int64_t r = 0; r < m; r++) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < dv; i += 8)
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(k + j * d + i), _mm256_loadu_ps(q + r * d + i), acc);
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(k + j * d + dv, tail), _mm256_maskload_ps(q + r * d + dv, tail),
                                  acc);
            s[r * n + j] = ff_hsum_ps256(acc);
        }
}

FF_AVX2 void ff_attn_softmax_dot_f32_avx2(float *restrict p, float *restrict mx, float *restrict l,
                                          float *restrict alpha, int64_t nv, int64_t n) {
    if (nv == 0) {
        memset(p, 0, (size_t)n * sizeof(float));
        *alpha = 1.0f;
        return;
    }
    int64_t nf = nv & ~(int64_t)7;
    // the new running max
    __m256 vm = _mm256_set1_ps(*mx);
    for (int64_t j = 0; j < nf; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(p + j));
    float mb = ff_hmax_ps256(vm);
    for (int64_t j = nf; j < nv; j++) mb = fmaxf(mb, p[j]);
    // probabilities against it; keys past nv get 0
    __m256 vb = _mm256_set1_ps(mb), sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < nf; j += 8) {
        __m256 e = ff_exp_ps256(_mm256_sub_ps(_mm256_loadu_ps(p + j), vb));
        _mm256_storeu_ps(p + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (nv > nf) {
        __m256i t = lanes256(nv - nf);
        __m256 e = ff_exp_ps256(_mm256_sub_ps(_mm256_maskload_ps(p + nf, t), vb));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(t));
        _mm256_maskstore_ps(p + nf, t, e);
        sum = _mm256_add_ps(sum, e);
    }
    for (int64_t j = nv; j < n; j++) p[j] = 0.0f;
    *alpha = expf(*mx - mb);
    *l = *l * *alpha + ff_hsum_ps256(sum);
    *mx = mb;
}
#endif

// ---- driver ----

typedef struct {
    float *o;
    const float *q;
    const uint8_t *k, *v;  // rows of type kt, rb bytes each
    int kt;
    int64_t h, hkv, tq, tk, d, kvs, rb, group, bq, nqb, nsplit, nitems, ldo;  // kvs: rows between kv heads
    float scale, softcap;  // softcap > 0: scores -> softcap * tanh(scores / softcap) before the softmax
    int causal, dot;
    size_t scratch;  // bytes of per-thread scratch
    float *part;     // split decodes: (nitems, rows, ldo + 2) partial outputs, maxima and sums
    _Atomic int64_t next;
    _Atomic int err;
} attn_ctx;

static size_t al64(size_t floats) { return (floats * sizeof(float) + 63) & ~(size_t)63; }

// s (n,) -> cap * tanh(s / cap), gemma 2's soft-capping of attention scores
static void softcap_scores(float *s, int64_t n, float cap) {
    for (int64_t i = 0; i < n; i++) s[i] = cap * tanhf(s[i] / cap);
}

// the kernels of the cache's type: keys (n,d) from kb, values (n,d) from vb
static void qk(const ff_kernels *kern, const attn_ctx *c, float *st, const float *qt, const uint8_t *kb, int64_t m,
               int64_t n) {
    if (c->kt == FF_QT_F32)
        kern->attn_qk_f32(st, qt, (const float *)(const void *)kb, m, n, c->d);
    else
        kern->attn_qk_kv(st, qt, kb, c->kt, m, n, c->d);
}

static void qk_dot(const ff_kernels *kern, const attn_ctx *c, float *s, const float *q, const uint8_t *kb, int64_t m,
                   int64_t n) {
    if (c->kt == FF_QT_F32)
        kern->attn_qk_dot_f32(s, q, (const float *)(const void *)kb, m, n, c->d);
    else
        kern->attn_qk_dot_kv(s, q, kb, c->kt, m, n, c->d);
}

static void pv(const ff_kernels *kern, const attn_ctx *c, float *o, const float *alpha, const float *p, int64_t prs,
               int64_t pjs, const uint8_t *vb, int64_t m, int64_t n) {
    if (c->kt == FF_QT_F32)
        kern->attn_pv_f32(o, alpha, p, prs, pjs, (const float *)(const void *)vb, m, n, c->d, c->ldo);
    else
        kern->attn_pv_kv(o, alpha, p, prs, pjs, vb, c->kt, m, n, c->d, c->ldo);
}

// rows of an item: r = (query head gi of the group) * nq + query ii
static const float *qrow(const attn_ctx *c, int64_t g, int64_t i0, int64_t nq, int64_t r) {
    return c->q + ((g * c->group + r / nq) * c->tq + i0 + r % nq) * c->d;
}

// block path: up to ROWS rows, scores transposed
static void attn_block(const ff_kernels *kern, const attn_ctx *c, char *buf, int64_t g, int64_t i0) {
    int64_t d = c->d, tq = c->tq, tk = c->tk, ldo = c->ldo;
    int64_t nq = FF_MIN(c->bq, tq - i0), m = c->group * nq, mp = (m + 15) & ~(int64_t)15;
    float *qt = (float *)buf, *st = (float *)(buf + al64(d * mp)), *ob = (float *)((char *)st + al64(BK * mp));
    float *mx = (float *)((char *)ob + al64(mp * ldo)), *l = mx + mp, *alpha = l + mp;
    int32_t *pos = (int32_t *)(alpha + mp);
    // scaled queries, transposed (d, mp); padding rows are zero and never masked
    for (int64_t r = 0; r < mp; r++) {
        const float *qr = r < m ? qrow(c, g, i0, nq, r) : NULL;
        for (int64_t i = 0; i < d; i++) qt[i * mp + r] = qr ? qr[i] * c->scale : 0.0f;
        pos[r] = c->causal && qr ? (int32_t)(tk - tq + i0 + r % nq) : INT32_MAX;
        mx[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(ob, 0, (size_t)(mp * ldo) * sizeof(float));
    // causal: keys up to the last query's position; only blocks past the first query's need the mask
    int64_t first = tk - tq + i0, nk = c->causal ? first + nq : tk;
    for (int64_t j0 = 0; j0 < nk; j0 += BK) {
        int64_t nb = FF_MIN(BK, nk - j0);
        const uint8_t *kb = c->k + (g * c->kvs + j0) * c->rb, *vb = c->v + (g * c->kvs + j0) * c->rb;
        qk(kern, c, st, qt, kb, mp, nb);
        if (c->softcap > 0.0f) softcap_scores(st, mp * nb, c->softcap);
        kern->attn_softmax_f32(st, mx, l, alpha, c->causal && j0 + nb - 1 > first ? pos : NULL, j0, mp, nb);
        pv(kern, c, ob, alpha, st, 1, mp, vb, m, nb);
    }
    for (int64_t r = 0; r < m; r++) {
        float *orow = c->o + (qrow(c, g, i0, nq, r) - c->q), inv = 1.0f / l[r];
        for (int64_t i = 0; i < d; i++) orow[i] = ob[r * ldo + i] * inv;
    }
}

// dot path: fewer than 16 rows, keys [ja, jb) of the item's range (all of it unless split)
static void attn_dot(const ff_kernels *kern, const attn_ctx *c, char *buf, int64_t g, int64_t i0, int64_t split,
                     float *part) {
    int64_t d = c->d, tq = c->tq, tk = c->tk, ldo = c->ldo;
    int64_t nq = FF_MIN(c->bq, tq - i0), m = c->group * nq;
    float *qs = (float *)buf, *s = (float *)(buf + al64(m * d)), *ob = (float *)((char *)s + al64(m * BK_DOT));
    float *mx = (float *)((char *)ob + al64(m * ldo)), *l = mx + m, *alpha = l + m;
    for (int64_t r = 0; r < m; r++) {
        const float *qr = qrow(c, g, i0, nq, r);
        for (int64_t i = 0; i < d; i++) qs[r * d + i] = qr[i] * c->scale;
        mx[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(ob, 0, (size_t)(m * ldo) * sizeof(float));
    int64_t first = tk - tq + i0, nk = c->causal ? first + nq : tk;
    int64_t ja, jb;
    ff_split(nk, (int)split, (int)c->nsplit, 16, &ja, &jb);
    for (int64_t j0 = ja; j0 < jb; j0 += BK_DOT) {
        int64_t nb = FF_MIN(BK_DOT, jb - j0);
        const uint8_t *kb = c->k + (g * c->kvs + j0) * c->rb, *vb = c->v + (g * c->kvs + j0) * c->rb;
        qk_dot(kern, c, s, qs, kb, m, nb);
        if (c->softcap > 0.0f) softcap_scores(s, m * nb, c->softcap);
        for (int64_t r = 0; r < m; r++) {
            // causal: row r sees keys up to its position
            int64_t nv = c->causal ? FF_MAX(0, FF_MIN(nb, first + r % nq + 1 - j0)) : nb;
            kern->attn_softmax_dot_f32(s + r * nb, mx + r, l + r, alpha + r, nv, nb);
        }
        pv(kern, c, ob, alpha, s, nb, 1, vb, m, nb);
    }
    if (part) {
        // a split: keep the unnormalised rows with their max and sum for the merge
        for (int64_t r = 0; r < m; r++) {
            memcpy(part + r * (ldo + 2), ob + r * ldo, (size_t)d * sizeof(float));
            part[r * (ldo + 2) + ldo] = mx[r];
            part[r * (ldo + 2) + ldo + 1] = l[r];
        }
        return;
    }
    for (int64_t r = 0; r < m; r++) {
        float *orow = c->o + (qrow(c, g, i0, nq, r) - c->q), inv = 1.0f / l[r];
        for (int64_t i = 0; i < d; i++) orow[i] = ob[r * ldo + i] * inv;
    }
}

static void attn_task(void *arg, int ith, int nth) {
    attn_ctx *c = arg;
    (void)ith, (void)nth;
    const ff_kernels *kern = ff_kern;
    char *buf = ff_scratch(c->scratch);
    if (!buf) {
        atomic_store(&c->err, 1);
        return;
    }
    // items in order of falling cost (later query blocks see more keys), taken one at a time
    for (;;) {
        int64_t it = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (it >= c->nitems) break;
        int64_t split = it % c->nsplit, g = it / c->nsplit % c->hkv, qb = c->nqb - 1 - it / c->nsplit / c->hkv;
        if (c->dot) {
            int64_t rows = c->group * FF_MIN(c->bq, c->tq - qb * c->bq);
            float *part = c->nsplit > 1 ? c->part + it * rows * (c->ldo + 2) : NULL;
            attn_dot(kern, c, buf, g, qb * c->bq, split, part);
        } else {
            attn_block(kern, c, buf, g, qb * c->bq);
        }
    }
}

// split decodes: o = sum_s exp(m_s - M) O_s / sum_s exp(m_s - M) l_s per row
static void attn_merge(const attn_ctx *c) {
    int64_t m = c->group * c->tq, w = c->ldo + 2, d = c->d;
    for (int64_t g = 0; g < c->hkv; g++)
        for (int64_t r = 0; r < m; r++) {
            const float *p0 = c->part + g * c->nsplit * m * w + r * w;
            float mb = -INFINITY, l = 0.0f;
            for (int64_t s = 0; s < c->nsplit; s++) mb = fmaxf(mb, p0[s * m * w + c->ldo]);
            float *orow = c->o + (qrow(c, g, 0, c->tq, r) - c->q);
            for (int64_t i = 0; i < d; i++) orow[i] = 0.0f;
            for (int64_t s = 0; s < c->nsplit; s++) {
                const float *ps = p0 + s * m * w;
                if (ps[c->ldo + 1] == 0.0f) continue;  // a split with no visible keys
                float a = expf(ps[c->ldo] - mb);
                l += a * ps[c->ldo + 1];
                for (int64_t i = 0; i < d; i++) orow[i] += a * ps[i];
            }
            for (int64_t i = 0; i < d; i++) orow[i] /= l;
        }
}

int ff_attention_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                     int64_t tk, int64_t d, float scale, int causal) {
    return ff_attention_kv_f32(o, q, k, v, h, hkv, tq, tk, tk, d, scale, causal);
}

int ff_attention_kv_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                        int64_t tk, int64_t kv_rows, int64_t d, float scale, int causal) {
    return ff_attention_kv_cap_f32(o, q, k, v, h, hkv, tq, tk, kv_rows, d, scale, 0.0f, causal);
}

int ff_attention_kv_cap_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv,
                            int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap,
                            int causal) {
    return ff_attention_cache(o, q, k, v, FF_QT_F32, h, hkv, tq, tk, kv_rows, d, scale, softcap, causal);
}

int ff_attention_cache(float *o, const float *q, const void *k, const void *v, int kv_type, int64_t h, int64_t hkv,
                       int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap, int causal) {
    if (kv_type != FF_QT_F32 && kv_type != FF_QT_F16 && (kv_type != FF_QT_Q8_0 || d % 32)) return FF_EINVAL;
    attn_ctx c = {.o = o,
                  .q = q,
                  .k = k,
                  .v = v,
                  .kt = kv_type,
                  .rb = ff_qtype_row_bytes(kv_type, d),
                  .h = h,
                  .hkv = hkv,
                  .tq = tq,
                  .tk = tk,
                  .kvs = kv_rows,
                  .d = d,
                  .scale = scale,
                  .softcap = softcap,
                  .causal = causal};
    if (h == 0 || tq == 0 || d == 0) return FF_OK;
    c.group = h / hkv;
    c.bq = FF_MIN(tq, FF_MAX(1, ROWS / c.group));
    c.nqb = (tq + c.bq - 1) / c.bq;
    c.ldo = (d + 15) & ~(int64_t)15;
    int64_t m = c.group * c.bq, mp = (m + 15) & ~(int64_t)15;
    c.dot = m < 16;
    int nth = ff_get_num_threads();
    if (h * tq * tk * d < (1 << 15)) nth = 1;
    // a decode (the dot path always has a single query block) with few kv heads splits its keys, each split
    // at least SPLIT_MIN long, into about 8 items; the split depends on the shape alone, never on the thread
    // count, so results are bitwise the same however many threads run
    c.nsplit = c.dot ? FF_MAX(1, FF_MIN((8 + hkv - 1) / hkv, tk / SPLIT_MIN)) : 1;
    c.nitems = hkv * c.nqb * c.nsplit;
    if (c.dot)
        c.scratch = al64(m * d) + al64(m * BK_DOT) + al64(m * c.ldo) + al64(3 * m);
    else
        c.scratch = al64(d * mp) + al64(BK * mp) + al64(mp * c.ldo) + al64(4 * mp);
    // the partials live after the calling thread's own scratch, which its task reuses
    size_t part = c.nsplit > 1 ? al64(c.nitems * m * (c.ldo + 2)) : 0;
    if (part) {
        char *base = ff_scratch(c.scratch + part);
        if (!base) return FF_ENOMEM;
        c.part = (float *)(base + c.scratch);
    }
    ff_parallel(attn_task, &c, (int)FF_MIN(c.nitems, nth));
    if (atomic_load(&c.err)) return FF_ENOMEM;
    if (part) attn_merge(&c);
    return FF_OK;
}
