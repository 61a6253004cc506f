// matmul and linear: a packed, blocked gemm (Goto-style loops) over a per-ISA micro-tile,
// and a gemv for single-row linear (decode)
#include "ff_internal.h"

#include <string.h>

#ifndef KC
#define KC 256   // depth of a packed block
#endif
#ifndef MC
#define MC 480   // most rows of a packed A block: (MC, KC) floats stay in L2
#endif

// ---- scalar reference kernels ----

void ff_gemv_f32_ref(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k) {
    // W (n,k) @ x (k,) -> y (n,)
    for (int64_t i = 0; i < n; i++) {
        const float *row = w + i * k;
        float acc = 0.0f;
        for (int64_t j = 0; j < k; j++) acc += row[j] * x[j];
        y[i] = acc;
    }
}

void ff_gemm_f32_tile_ref(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc,
                          int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    // Ap (kc,MR) . Bp (kc,NR) -> C (mr,nr) with row stride ldc
    float acc[FF_GEMM_MR_REF][FF_GEMM_NR_REF] = {{0}};
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < FF_GEMM_MR_REF; i++)
            for (int j = 0; j < FF_GEMM_NR_REF; j++) acc[i][j] += ap[p * FF_GEMM_MR_REF + i] * bp[p * FF_GEMM_NR_REF + j];
    // store only the valid part of the tile
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#ifdef FF_HAVE_X86
#include <immintrin.h>

// ---- avx2: 6x16 tile (12 ymm accumulators), gemv over 4 rows at a time ----

// one tile of `rows` (a constant after inlining) x 16; packed A keeps its MR stride
static inline __attribute__((always_inline)) FF_AVX2 void tile_avx2(float *restrict c, const float *restrict ap,
                                                                     const float *restrict bp, int64_t kc,
                                                                     int64_t ldc, const int rows, int64_t nr,
                                                                     int accumulate) {
    enum { MR = FF_GEMM_MR_AVX2 };
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
        ap += MR;
        bp += 16;
    }
    if (nr == 16) {
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            float *cr = c + i * ldc;
            if (accumulate) {
                c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(cr));
                c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, c0[i]);
            _mm256_storeu_ps(cr + 8, c1[i]);
        }
        return;
    }
    // partial width: spill the tile and copy the valid columns
    float t[16];
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        float *cr = c + i * ldc;
        _mm256_storeu_ps(t, c0[i]);
        _mm256_storeu_ps(t + 8, c1[i]);
        for (int64_t j = 0; j < nr; j++) cr[j] = accumulate ? cr[j] + t[j] : t[j];
    }
}

FF_AVX2 void ff_gemm_f32_tile_avx2(float *restrict c, const float *restrict ap, const float *restrict bp, int64_t kc,
                                   int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    switch (mr) {
    case 6: tile_avx2(c, ap, bp, kc, ldc, 6, nr, accumulate); break;
    case 5: tile_avx2(c, ap, bp, kc, ldc, 5, nr, accumulate); break;
    case 4: tile_avx2(c, ap, bp, kc, ldc, 4, nr, accumulate); break;
    case 3: tile_avx2(c, ap, bp, kc, ldc, 3, nr, accumulate); break;
    case 2: tile_avx2(c, ap, bp, kc, ldc, 2, nr, accumulate); break;
    default: tile_avx2(c, ap, bp, kc, ldc, 1, nr, accumulate); break;
    }
}

static inline FF_AVX2 float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

FF_AVX2 void ff_gemv_f32_avx2(float *restrict y, const float *restrict w, const float *restrict x, int64_t n,
                              int64_t k) {
    int64_t i = 0;
    // four rows at a time, two accumulators each: x is loaded once per four rows
    for (; i + 4 <= n; i += 4) {
        const float *w0 = w + i * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t j = 0;
        for (; j + 16 <= k; j += 16) {
            __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), x0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), x0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), x0, a3);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j + 8), x1, b0);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j + 8), x1, b1);
            b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j + 8), x1, b2);
            b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j + 8), x1, b3);
        }
        for (; j + 8 <= k; j += 8) {
            __m256 x0 = _mm256_loadu_ps(x + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), x0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), x0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), x0, a3);
        }
        float s0 = hsum_avx2(_mm256_add_ps(a0, b0)), s1 = hsum_avx2(_mm256_add_ps(a1, b1));
        float s2 = hsum_avx2(_mm256_add_ps(a2, b2)), s3 = hsum_avx2(_mm256_add_ps(a3, b3));
        // scalar tail
        for (; j < k; j++) {
            s0 += w0[j] * x[j];
            s1 += w1[j] * x[j];
            s2 += w2[j] * x[j];
            s3 += w3[j] * x[j];
        }
        y[i] = s0;
        y[i + 1] = s1;
        y[i + 2] = s2;
        y[i + 3] = s3;
    }
    // leftover rows one at a time
    for (; i < n; i++) {
        const float *row = w + i * k;
        __m256 a0 = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 8 <= k; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(x + j), a0);
        float s = hsum_avx2(a0);
        for (; j < k; j++) s += row[j] * x[j];
        y[i] = s;
    }
}

// ---- avx-512: 12x32 tile (24 zmm accumulators), gemv over 4 rows with masked k tails ----

static inline __attribute__((always_inline)) FF_AVX512 void tile_avx512(float *restrict c, const float *restrict ap,
                                                                         const float *restrict bp, int64_t kc,
                                                                         int64_t ldc, const int rows, int64_t nr,
                                                                         int accumulate) {
    enum { MR = FF_GEMM_MR_AVX512 };
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            __m512 a = _mm512_set1_ps(ap[i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
        ap += MR;
        bp += 32;
    }
    // masked columns for a partial-width tile (masked-off lanes are neither read nor written)
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        float *cr = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, cr));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0[i]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[i]);
    }
}

FF_AVX512 void ff_gemm_f32_tile_avx512(float *restrict c, const float *restrict ap, const float *restrict bp,
                                       int64_t kc, int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    switch (mr) {
#define FF_CASE(r) \
    case r: tile_avx512(c, ap, bp, kc, ldc, r, nr, accumulate); break;
    FF_CASE(12) FF_CASE(11) FF_CASE(10) FF_CASE(9) FF_CASE(8) FF_CASE(7)
    FF_CASE(6) FF_CASE(5) FF_CASE(4) FF_CASE(3) FF_CASE(2)
#undef FF_CASE
    default: tile_avx512(c, ap, bp, kc, ldc, 1, nr, accumulate); break;
    }
}

FF_AVX512 void ff_gemv_f32_avx512(float *restrict y, const float *restrict w, const float *restrict x, int64_t n,
                                  int64_t k) {
    __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    int64_t kv = k & ~(int64_t)15;
    int64_t i = 0;
    // four rows at a time, two accumulators each; the k tail is a masked load
    for (; i + 4 <= n; i += 4) {
        const float *w0 = w + i * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t j = 0;
        for (; j + 32 <= k; j += 32) {
            __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), x0, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), x0, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), x0, a3);
            b0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j + 16), x1, b0);
            b1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j + 16), x1, b1);
            b2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j + 16), x1, b2);
            b3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j + 16), x1, b3);
        }
        for (; j < kv; j += 16) {
            __m512 x0 = _mm512_loadu_ps(x + j);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), x0, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), x0, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), x0, a3);
        }
        if (tail) {
            __m512 x0 = _mm512_maskz_loadu_ps(tail, x + j);
            b0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w0 + j), x0, b0);
            b1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w1 + j), x0, b1);
            b2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w2 + j), x0, b2);
            b3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w3 + j), x0, b3);
        }
        y[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
        y[i + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
        y[i + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
        y[i + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
    }
    // leftover rows one at a time
    for (; i < n; i++) {
        const float *row = w + i * k;
        __m512 a0 = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j < kv; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(x + j), a0);
        if (tail) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, row + j), _mm512_maskz_loadu_ps(tail, x + j), a0);
        y[i] = _mm512_reduce_add_ps(a0);
    }
}
#endif

// ---- packing: a (rows, kc) slice of a row-major matrix -> (kc, ld) panel, rows < ld zero-padded ----

static void pack_t_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t rows,
                       int64_t kc) {
    // src (rows, kc) with row stride lds -> dst (kc, ld)
    for (int64_t p = 0; p < kc; p++) {
        for (int64_t r = 0; r < rows; r++) dst[p * ld + r] = src[r * lds + p];
        for (int64_t r = rows; r < ld; r++) dst[p * ld + r] = 0.0f;
    }
}

static void pack_n_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t cols,
                       int64_t kc) {
    // src (kc, cols) with row stride lds -> dst (kc, ld)
    for (int64_t p = 0; p < kc; p++) {
        for (int64_t c = 0; c < cols; c++) dst[p * ld + c] = src[p * lds + c];
        for (int64_t c = cols; c < ld; c++) dst[p * ld + c] = 0.0f;
    }
}

#ifdef FF_HAVE_X86
// 8x8 transpose: r[i] holds row i on entry, column i on return
static inline __attribute__((always_inline)) FF_AVX2 void transpose8_avx2(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

static FF_AVX2 void pack_t_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds,
                                int64_t rows, int64_t kc) {
    int64_t k8 = kc & ~(int64_t)7, r = 0;
    // groups of 8 rows: 8x8 transposes
    for (; r + 8 <= rows; r += 8) {
        const float *s = src + r * lds;
        for (int64_t p = 0; p < k8; p += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(s + i * lds + p);
            transpose8_avx2(v);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (p + i) * ld + r, v[i]);
        }
    }
    // a group of 4 rows: 4x8 transposes, one 128-bit store per column
    if (r + 4 <= rows) {
        const float *s = src + r * lds;
        for (int64_t p = 0; p < k8; p += 8) {
            __m256 t0 = _mm256_unpacklo_ps(_mm256_loadu_ps(s + p), _mm256_loadu_ps(s + lds + p));
            __m256 t1 = _mm256_unpackhi_ps(_mm256_loadu_ps(s + p), _mm256_loadu_ps(s + lds + p));
            __m256 t2 = _mm256_unpacklo_ps(_mm256_loadu_ps(s + 2 * lds + p), _mm256_loadu_ps(s + 3 * lds + p));
            __m256 t3 = _mm256_unpackhi_ps(_mm256_loadu_ps(s + 2 * lds + p), _mm256_loadu_ps(s + 3 * lds + p));
            __m256 c[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xee),
                           _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xee)};
            for (int i = 0; i < 4; i++) {
                _mm_storeu_ps(dst + (p + i) * ld + r, _mm256_castps256_ps128(c[i]));
                _mm_storeu_ps(dst + (p + i + 4) * ld + r, _mm256_extractf128_ps(c[i], 1));
            }
        }
        r += 4;
    }
    // leftover rows over the vector part of kc, then the kc tail for every row, then zero padding
    for (int64_t p = 0; p < k8; p++)
        for (int64_t i = r; i < rows; i++) dst[p * ld + i] = src[i * lds + p];
    for (int64_t p = k8; p < kc; p++)
        for (int64_t i = 0; i < rows; i++) dst[p * ld + i] = src[i * lds + p];
    if (rows < ld)
        for (int64_t p = 0; p < kc; p++)
            for (int64_t i = rows; i < ld; i++) dst[p * ld + i] = 0.0f;
}

static FF_AVX2 void pack_n_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds,
                                int64_t cols, int64_t kc) {
    if (cols == ld && (ld & 7) == 0) {
        // full panel: straight vector copies
        for (int64_t p = 0; p < kc; p++)
            for (int64_t c = 0; c < ld; c += 8) _mm256_store_ps(dst + p * ld + c, _mm256_loadu_ps(src + p * lds + c));
        return;
    }
    pack_n_ref(dst, ld, src, lds, cols, kc);
}
#endif

// ---- the blocked gemm over one rectangle of C ----

typedef void (*pack_fn)(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t n,
                        int64_t kc);

typedef struct {
    float *c;
    const float *a, *b, *bias;
    int64_t m, n, k;
    int trans;    // b is W (n,k) instead of (k,n)
    int split_m;  // split rows across threads instead of columns
    int status;
} gemm_ctx;

// rows of the packed A block: all of [i0, i1) when it fits in half of L2, else near-equal MR-aligned blocks
static int64_t block_rows(int64_t rows, int mr) {
    int64_t nblk = (rows + MC - 1) / MC;
    int64_t mc = (rows + nblk - 1) / nblk;
    return (mc + mr - 1) / mr * mr;
}

// loops: A block (mc,kc) packed once and kept in L2; each B panel (kc,NR) packed just before
// the kernel sweeps it down the A block, so W is read from memory once per A block
static int gemm_block(const gemm_ctx *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const ff_kernels *kern = ff_kern;
    int mr = kern->gemm_mr, nr = kern->gemm_nr;
    pack_fn pack_t = pack_t_ref, pack_n = pack_n_ref;
#ifdef FF_HAVE_X86
    if (ff_isa_current() != FF_ISA_SCALAR) pack_t = pack_t_avx2, pack_n = pack_n_avx2;
#endif
    int64_t mcmax = block_rows(i1 - i0, mr), k = g->k, n = g->n;
    float *ap = ff_scratch(((size_t)mcmax * KC + (size_t)KC * FF_GEMM_NR_MAX) * sizeof(float));
    if (!ap) return FF_ENOMEM;
    float *bp = ap + (size_t)mcmax * KC;
    if (k == 0) {
        // empty sum: C is the bias or zero
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++) g->c[i * n + j] = g->bias ? g->bias[j] : 0.0f;
        return FF_OK;
    }
    for (int64_t ic = i0; ic < i1; ic += mcmax) {
        int64_t mc = FF_MIN(mcmax, i1 - ic);
        for (int64_t pc = 0; pc < k; pc += KC) {
            int64_t kc = FF_MIN(KC, k - pc);
            int last = pc + kc == k;
            for (int64_t ir = 0; ir < mc; ir += mr)
                pack_t(ap + ir * kc, mr, g->a + (ic + ir) * k + pc, k, FF_MIN(mr, mc - ir), kc);
            for (int64_t jr = j0; jr < j1; jr += nr) {
                int64_t cols = FF_MIN(nr, j1 - jr);
                if (g->trans)
                    pack_t(bp, nr, g->b + jr * k + pc, k, cols, kc);
                else
                    pack_n(bp, nr, g->b + pc * n + jr, n, cols, kc);
                for (int64_t ir = 0; ir < mc; ir += mr) {
                    int64_t rows = FF_MIN(mr, mc - ir);
                    float *c = g->c + (ic + ir) * n + jr;
                    kern->gemm_f32_tile(c, ap + ir * kc, bp, kc, n, rows, cols, pc > 0);
                    // bias once the tile is complete, while it is still in L1
                    if (last && g->bias)
                        for (int64_t i = 0; i < rows; i++)
                            for (int64_t j = 0; j < cols; j++) c[i * n + j] += g->bias[jr + j];
                }
            }
        }
    }
    return FF_OK;
}

static void gemm_task(void *arg, int ith, int nth) {
    gemm_ctx *g = arg;
    int64_t lo, hi;
    int rc;
    if (g->split_m) {
        ff_split(g->m, ith, nth, FF_GEMM_MR_MAX, &lo, &hi);
        rc = lo < hi ? gemm_block(g, lo, hi, 0, g->n) : FF_OK;
    } else {
        ff_split(g->n, ith, nth, FF_GEMM_NR_MAX, &lo, &hi);
        rc = lo < hi ? gemm_block(g, 0, g->m, lo, hi) : FF_OK;
    }
    if (rc != FF_OK) g->status = rc;  // any failing thread marks the whole call failed
}

static int gemm(float *c, const float *a, const float *b, const float *bias, int64_t m, int64_t k, int64_t n,
                int trans) {
    gemm_ctx g = {c, a, b, bias, m, n, k, trans, 0, FF_OK};
    if (m == 0 || n == 0) return FF_OK;
    // enough columns for every thread to get several panels: split n, else split m
    int nth = ff_get_num_threads();
    g.split_m = n < (int64_t)nth * FF_GEMM_NR_MAX * 2 && m > n;
    int64_t work = m * n * FF_MAX(k, 1);
    ff_parallel(gemm_task, &g, work < (1 << 16) ? 1 : nth);
    return g.status;
}

// ---- gemv for one row ----

typedef struct {
    float *y;
    const float *w, *x, *bias;
    int64_t n, k;
} gemv_ctx;

static void gemv_task(void *arg, int ith, int nth) {
    gemv_ctx *g = arg;
    int64_t lo, hi;
    ff_split(g->n, ith, nth, 16, &lo, &hi);
    if (lo >= hi) return;
    ff_kern->gemv_f32(g->y + lo, g->w + lo * g->k, g->x, hi - lo, g->k);
    if (g->bias)
        for (int64_t i = lo; i < hi; i++) g->y[i] += g->bias[i];
}

int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n) {
    if (m == 1) {
        gemv_ctx g = {y, w, x, bias, n, k};
        ff_parallel(gemv_task, &g, n * k < (1 << 15) ? 1 : ff_get_num_threads());
        return FF_OK;
    }
    return gemm(y, x, w, bias, m, k, n, 1);
}

int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n) {
    return gemm(c, a, b, NULL, m, k, n, 0);
}
