// matmul and linear: a packed, blocked gemm (Goto-style loops) over a per-ISA micro-tile,
// and a gemv for linear with one row (decode) or a few
#include "ff_hsum.h"
#include "ff_internal.h"
#include <stdatomic.h>

#define KC 512                         // most depth of a packed block
#define KC_MIN 256                     // least depth of a packed block when k allows
#define A_BYTES (768 * 1024)           // packed A block budget: three quarters of a 1 MB L2
#define PACK_CHUNK 256                 // depth chunk of the transposing pack
#define GEMV_ROWS 8                    // W rows per avx-512 gemv step
#define GEMV_MAX_M 4                   // linear with up to this many rows runs as gemv
#define GEMV_BLOCK_BYTES (256 * 1024)  // W rows the few gemv rows share while they sit in L2
// a gemv over more W than this (per thread) reads it from memory: rows one after another, one sequential
// stream the prefetchers follow, ran 1.5x faster than eight interleaved row streams; in cache the grouped
// rows, which share each x load, are faster
#define GEMV_STREAM_BYTES (1024 * 1024)
#define GEMV_CHUNK 64  // W rows a thread takes at a time in a one-row gemv (a multiple of 16)

// ---- scalar reference kernels ----

void ff_gemv_f32_ref(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k,
                     int stream) {
    // W (n,k) @ x (k,) -> y (n,)
    (void)stream;
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
            for (int j = 0; j < FF_GEMM_NR_REF; j++)
                acc[i][j] += ap[p * FF_GEMM_MR_REF + i] * bp[p * FF_GEMM_NR_REF + j];
    // store only the valid part of the tile
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#ifdef FF_HAVE_X86
#include <immintrin.h>

// ---- avx2: 6x16 tile (12 ymm accumulators), gemv over 8 rows at a time ----

// one tile of `rows` (a constant after inlining) x 16; packed A keeps its MR stride
static inline __attribute__((always_inline)) FF_AVX2 void tile_avx2(float *restrict c, const float *restrict ap,
                                                                    const float *restrict bp, int64_t kc, int64_t ldc,
                                                                    const int rows, int64_t nr, int accumulate) {
    enum { MR = FF_GEMM_MR_AVX2 };
    __m256 c0[MR], c1[MR];
    // fetch the C tile now: it is last touched a whole sweep ago and its loads would stall the end
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
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

// r rows with one accumulator each, scalar k tail; r = 1 gives the same bits for each row as r = 8
static inline __attribute__((always_inline)) FF_AVX2 void gemv_rows_avx2(float *restrict y, const float *restrict w,
                                                                         const float *restrict x, int64_t k,
                                                                         const int rows) {
    __m256 acc[8];
    for (int r = 0; r < rows; r++) acc[r] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
        __m256 xv = _mm256_loadu_ps(x + j);
        for (int r = 0; r < rows; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * k + j), xv, acc[r]);
    }
    for (int r = 0; r < rows; r++) {
        float s = ff_hsum_ps256(acc[r]);
        for (int64_t t = j; t < k; t++) s += w[r * k + t] * x[t];
        y[r] = s;
    }
}

FF_AVX2 void ff_gemv_f32_avx2(float *restrict y, const float *restrict w, const float *restrict x, int64_t n, int64_t k,
                              int stream) {
    int64_t i = 0;
    // eight rows at a time share each x load; from memory, one row after another (one sequential stream)
    for (; i + 8 <= n; i += 8) {
        if (stream)
            for (int r = 0; r < 8; r++) gemv_rows_avx2(y + i + r, w + (i + r) * k, x, k, 1);
        else
            gemv_rows_avx2(y + i, w + i * k, x, k, 8);
    }
    // leftover rows one at a time
    for (; i < n; i++) {
        const float *row = w + i * k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t j = 0;
        for (; j + 16 <= k; j += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        }
        for (; j + 8 <= k; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(x + j), a0);
        float s = ff_hsum_ps256(_mm256_add_ps(a0, a1));
        for (; j < k; j++) s += row[j] * x[j];
        y[i] = s;
    }
}

// ---- avx-512: 12x32 tile (24 zmm accumulators), gemv over 8 rows with masked k tails ----

static inline __attribute__((always_inline)) FF_AVX512 void tile_avx512(float *restrict c, const float *restrict ap,
                                                                        const float *restrict bp, int64_t kc,
                                                                        int64_t ldc, const int rows, int64_t nr,
                                                                        int accumulate) {
    enum { MR = FF_GEMM_MR_AVX512 };
    __m512 c0[MR], c1[MR];
    // fetch the C tile now: it is last touched a whole sweep ago and its loads would stall the end
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
    }
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
    // one case per row count, so each tile_avx512 call has a constant r and unrolls fully
    switch (mr) {
    case 12: tile_avx512(c, ap, bp, kc, ldc, 12, nr, accumulate); break;
    case 11: tile_avx512(c, ap, bp, kc, ldc, 11, nr, accumulate); break;
    case 10: tile_avx512(c, ap, bp, kc, ldc, 10, nr, accumulate); break;
    case 9: tile_avx512(c, ap, bp, kc, ldc, 9, nr, accumulate); break;
    case 8: tile_avx512(c, ap, bp, kc, ldc, 8, nr, accumulate); break;
    case 7: tile_avx512(c, ap, bp, kc, ldc, 7, nr, accumulate); break;
    case 6: tile_avx512(c, ap, bp, kc, ldc, 6, nr, accumulate); break;
    case 5: tile_avx512(c, ap, bp, kc, ldc, 5, nr, accumulate); break;
    case 4: tile_avx512(c, ap, bp, kc, ldc, 4, nr, accumulate); break;
    case 3: tile_avx512(c, ap, bp, kc, ldc, 3, nr, accumulate); break;
    case 2: tile_avx512(c, ap, bp, kc, ldc, 2, nr, accumulate); break;
    default: tile_avx512(c, ap, bp, kc, ldc, 1, nr, accumulate); break;
    }
}

// R rows at once: R memory streams keep more of W in flight and x is loaded once per R rows;
// the k tail is a masked load (masked-off lanes are not read)
static inline __attribute__((always_inline)) FF_AVX512 void gemv_rows_avx512(float *restrict y, const float *restrict w,
                                                                             const float *restrict x, int64_t k,
                                                                             const int rows) {
    int64_t kv = k & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < kv; j += 16) {
        __m512 xv = _mm512_loadu_ps(x + j);
#pragma GCC unroll 16
        for (int r = 0; r < rows; r++) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * k + j), xv, acc[r]);
    }
    if (tail) {
        __m512 xv = _mm512_maskz_loadu_ps(tail, x + kv);
#pragma GCC unroll 16
        for (int r = 0; r < rows; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + r * k + kv), xv, acc[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) y[r] = ff_hsum_ps512(acc[r]);
}

FF_AVX512 void ff_gemv_f32_avx512(float *restrict y, const float *restrict w, const float *restrict x, int64_t n,
                                  int64_t k, int stream) {
    int64_t i = 0;
    if (stream) {  // same bits per row as the grouped rows below
        for (; i < n; i++) gemv_rows_avx512(y + i, w + i * k, x, k, 1);
        return;
    }
    for (; i + GEMV_ROWS <= n; i += GEMV_ROWS) gemv_rows_avx512(y + i, w + i * k, x, k, GEMV_ROWS);
    for (; i + 4 <= n; i += 4) gemv_rows_avx512(y + i, w + i * k, x, k, 4);
    for (; i < n; i++) gemv_rows_avx512(y + i, w + i * k, x, k, 1);
}
#endif

// ---- packing: a (rows, kc) slice of a row-major matrix -> (kc, ld) panel, rows < ld zero-padded ----

void ff_gemm_pack_t_f32_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t rows,
                            int64_t kc) {
    // src (rows, kc) with row stride lds -> dst (kc, ld)
    for (int64_t p = 0; p < kc; p++) {
        for (int64_t r = 0; r < rows; r++) dst[p * ld + r] = src[r * lds + p];
        for (int64_t r = rows; r < ld; r++) dst[p * ld + r] = 0.0f;
    }
}

void ff_gemm_pack_n_f32_ref(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds, int64_t cols,
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

FF_AVX2 void ff_gemm_pack_t_f32_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds,
                                     int64_t rows, int64_t kc) {
    int64_t k8 = kc & ~(int64_t)7, r8 = rows & ~(int64_t)7, r = r8;
    // groups of 8 rows: 8x8 transposes over a short depth chunk, every group before the next
    // chunk: the destination chunk stays in L1 and the source rows touched at once stay few
    // (rows of a power-of-two stride share L1 sets)
    for (int64_t p0 = 0; p0 < k8; p0 += PACK_CHUNK) {
        int64_t p1 = FF_MIN(p0 + PACK_CHUNK, k8);
        for (int64_t g = 0; g < r8; g += 8) {
            for (int64_t p = p0; p < p1; p += 8) {
                __m256 v[8];
                for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(src + (g + i) * lds + p);
                transpose8_avx2(v);
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (p + i) * ld + g, v[i]);
            }
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

FF_AVX2 void ff_gemm_pack_n_f32_avx2(float *restrict dst, int64_t ld, const float *restrict src, int64_t lds,
                                     int64_t cols, int64_t kc) {
    if (cols == ld && (ld & 7) == 0) {
        // full panel: straight vector copies
        for (int64_t p = 0; p < kc; p++)
            for (int64_t c = 0; c < ld; c += 8) _mm256_store_ps(dst + p * ld + c, _mm256_loadu_ps(src + p * lds + c));
        return;
    }
    ff_gemm_pack_n_f32_ref(dst, ld, src, lds, cols, kc);
}
#endif

// ---- the blocked gemm over one rectangle of C ----

typedef struct {
    const ff_kernels *kern;  // read once per call
    float *c;
    const float *a, *b, *bias;
    int64_t m, n, k;
    int trans;    // b is W (n,k) instead of (k,n)
    int split_m;  // split rows across threads instead of columns
    int status;
} gemm_ctx;

// block shape: the depth kc (a multiple of 16, between KC_MIN and KC unless k is smaller) is the
// largest that lets every row fit the packed A budget, then k is cut into near-equal blocks; rows
// that still do not fit come in near-equal MR-aligned blocks of mc
static void block_shape(int64_t rows, int64_t k, int mr, int64_t *kc, int64_t *mc) {
    int64_t padded = (rows + mr - 1) / mr * mr;
    int64_t want = FF_MIN(KC, FF_MAX(KC_MIN, A_BYTES / ((int64_t)sizeof(float) * padded)));
    int64_t kb = (k + want - 1) / want;
    *kc = ((k + kb - 1) / kb + 15) & ~(int64_t)15;
    int64_t cap = FF_MAX(A_BYTES / ((int64_t)sizeof(float) * want) / mr, 1) * mr;
    int64_t nblk = (rows + cap - 1) / cap;
    *mc = ((rows + nblk - 1) / nblk + mr - 1) / mr * mr;
}

// prefetch into L2 part q of nq of the B panel at columns [j, j+cols), depth [p, p+kc): its cache
// lines arrive while the kernel runs instead of stalling the next pack (short strided rows defeat
// the hardware prefetcher)
static void prefetch_panel(const gemm_ctx *g, int64_t j, int64_t cols, int64_t p, int64_t kc, int64_t q, int64_t nq) {
    // trans: cols rows of W, kc floats each; else kc rows of B, cols floats each
    int64_t lines = g->trans ? kc / 16 + 1 : cols / 16 + 1, nrows = g->trans ? cols : kc;
    int64_t total = nrows * lines, lo = total * q / nq, hi = total * (q + 1) / nq;
    for (int64_t t = lo; t < hi; t++) {
        int64_t r = t / lines, l = t % lines;
        const float *src = g->trans ? g->b + (j + r) * g->k + p + 16 * l : g->b + (p + r) * g->n + j + 16 * l;
        __builtin_prefetch(src, 0, 2);
    }
}

// loops: A block (mc,kc) packed once and kept in L2; each B panel (kc,NR) packed just before
// the kernel sweeps it down the A block, so W is read from memory once per A block
static int gemm_block(const gemm_ctx *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const ff_kernels *kern = g->kern;
    int mr = kern->gemm_mr, nr = kern->gemm_nr;
    ff_gemm_pack_fn pack_t = kern->gemm_pack_t_f32, pack_n = kern->gemm_pack_n_f32;
    int64_t k = g->k, n = g->n;
    if (k == 0) {
        // empty sum: C is the bias or zero
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++) g->c[i * n + j] = g->bias ? g->bias[j] : 0.0f;
        return FF_OK;
    }
    int64_t kcmax, mcmax;
    block_shape(i1 - i0, k, mr, &kcmax, &mcmax);
    float *ap = ff_scratch(((size_t)mcmax * kcmax + (size_t)kcmax * nr) * sizeof(float));
    if (!ap) return FF_ENOMEM;
    float *bp = ap + (size_t)mcmax * kcmax;
    for (int64_t ic = i0; ic < i1; ic += mcmax) {
        int64_t mc = FF_MIN(mcmax, i1 - ic);
        for (int64_t pc = 0; pc < k; pc += kcmax) {
            int64_t kc = FF_MIN(kcmax, k - pc);
            int last = pc + kc == k;
            for (int64_t ir = 0; ir < mc; ir += mr)
                pack_t(ap + ir * kc, mr, g->a + (ic + ir) * k + pc, k, FF_MIN(mr, mc - ir), kc);
            for (int64_t jr = j0; jr < j1; jr += nr) {
                int64_t cols = FF_MIN(nr, j1 - jr);
                if (g->trans)
                    pack_t(bp, nr, g->b + jr * k + pc, k, cols, kc);
                else
                    pack_n(bp, nr, g->b + pc * n + jr, n, cols, kc);
                // the panel packed next: the next columns, else the first ones at the next depth
                int64_t jn = jr + nr, pn = pc;
                if (jn >= j1) jn = j0, pn = pc + kcmax < k ? pc + kcmax : ic + mc < i1 ? 0 : k;
                int64_t nq = (mc + mr - 1) / mr;
                for (int64_t ir = 0; ir < mc; ir += mr) {
                    int64_t rows = FF_MIN(mr, mc - ir);
                    float *c = g->c + (ic + ir) * n + jr;
                    if (pn < k) prefetch_panel(g, jn, FF_MIN(nr, j1 - jn), pn, FF_MIN(kcmax, k - pn), ir / mr, nq);
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
        ff_split(g->m, ith, nth, g->kern->gemm_mr, &lo, &hi);
        rc = lo < hi ? gemm_block(g, lo, hi, 0, g->n) : FF_OK;
    } else {
        ff_split(g->n, ith, nth, g->kern->gemm_nr, &lo, &hi);
        rc = lo < hi ? gemm_block(g, 0, g->m, lo, hi) : FF_OK;
    }
    if (rc != FF_OK) g->status = rc;  // any failing thread marks the whole call failed
}

static int gemm(float *c, const float *a, const float *b, const float *bias, int64_t m, int64_t k, int64_t n,
                int trans) {
    gemm_ctx g = {ff_kern, c, a, b, bias, m, n, k, trans, 0, FF_OK};
    if (m == 0 || n == 0) return FF_OK;
    // enough columns for every thread to get several panels: split n, else split m
    int nth = ff_get_num_threads();
    g.split_m = n < (int64_t)nth * g.kern->gemm_nr * 4 && m > n;
    int64_t work = m * n * FF_MAX(k, 1);
    ff_parallel(gemm_task, &g, work < (1 << 16) ? 1 : nth);
    return g.status;
}

// ---- gemv for one row, and for a few rows ----

typedef struct {
    float *y;
    const float *w, *x, *bias;
    int64_t m, n, k;
    _Atomic int64_t next;  // one row: the next chunk of W rows a thread takes
} gemv_ctx;

static void gemv_rows(gemv_ctx *g, int64_t j, int64_t rows, int stream) {
    for (int64_t i = 0; i < g->m; i++) {
        float *y = g->y + i * g->n + j;
        ff_kern->gemv_f32(y, g->w + j * g->k, g->x + i * g->k, rows, g->k, stream);
        if (g->bias)
            for (int64_t t = 0; t < rows; t++) y[t] += g->bias[j + t];
    }
}

// One row (decode): threads take chunks of GEMV_CHUNK W rows from a shared counter, so a thread the memory
// system serves faster does more of the work (static halves left one thread waiting 8% of a 2-thread step).
// A few rows: W rows split across threads; the rows pass over each block of W rows while the block sits in
// L2, so W is read from memory once (packing W would cost more than the few rows' math). Either way a row's
// bits do not depend on the thread count: chunk and block edges fall on multiples of 16 rows.
static void gemv_task(void *arg, int ith, int nth) {
    gemv_ctx *g = arg;
    int stream = g->n * g->k * (int64_t)sizeof(float) / nth > GEMV_STREAM_BYTES;
    if (g->m == 1) {
        for (;;) {
            int64_t j = atomic_fetch_add_explicit(&g->next, GEMV_CHUNK, memory_order_relaxed);
            if (j >= g->n) return;
            gemv_rows(g, j, FF_MIN(GEMV_CHUNK, g->n - j), stream);
        }
    }
    int64_t lo, hi;
    ff_split(g->n, ith, nth, 16, &lo, &hi);
    int64_t nb = FF_MAX(GEMV_BLOCK_BYTES / ((int64_t)sizeof(float) * FF_MAX(g->k, 1)) & ~15, 16);
    for (int64_t j = lo; j < hi; j += nb) gemv_rows(g, j, FF_MIN(nb, hi - j), 0);
}

static void gemv(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n) {
    gemv_ctx g = {y, w, x, bias, m, n, k, 0};
    ff_parallel(gemv_task, &g, m * n * k < (1 << 15) ? 1 : ff_get_num_threads());
}

int ff_linear_f32_path(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n,
                       int path) {
    if (path == FF_LIN_ROWS) {
        // groups of up to GEMV_MAX_M rows: a row's bits are those of the row alone
        for (int64_t i = 0; i < m; i += GEMV_MAX_M)
            gemv(y + i * n, x + i * k, w, bias, FF_MIN(GEMV_MAX_M, m - i), k, n);
        return FF_OK;
    }
    if (path == FF_LIN_AUTO && m >= 1 && m <= GEMV_MAX_M) {
        gemv(y, x, w, bias, m, k, n);
        return FF_OK;
    }
    return gemm(y, x, w, bias, m, k, n, 1);
}

int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n) {
    return ff_linear_f32_path(y, x, w, bias, m, k, n, FF_LIN_AUTO);
}

int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n) {
    return gemm(c, a, b, NULL, m, k, n, 0);
}
