// matmul and linear: a packed, blocked gemm (Goto-style loops) over a per-ISA micro-tile,
// and a gemv for single-row linear (decode)
#include "ff_internal.h"

#include <string.h>

#define KC 256   // depth of a packed block
#define MC 96    // rows of a packed A block (a multiple of every MR)
#define NC 1024  // columns of a packed B block (a multiple of every NR)

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

// ---- packing ----

// A rows [i0, i0+mc), depth [p0, p0+kc) -> panels of MR rows, each (kc, MR), zero-padded
static void pack_a(float *restrict dst, const float *restrict a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                   int64_t kc, int mr) {
    for (int64_t i = 0; i < mc; i += mr) {
        int64_t rows = FF_MIN(mr, mc - i);
        for (int64_t p = 0; p < kc; p++) {
            for (int64_t r = 0; r < rows; r++) dst[p * mr + r] = a[(i0 + i + r) * lda + p0 + p];
            for (int64_t r = rows; r < mr; r++) dst[p * mr + r] = 0.0f;
        }
        dst += kc * mr;
    }
}

// B columns [j0, j0+nc), depth [p0, p0+kc) -> panels of NR columns, each (kc, NR), zero-padded.
// trans: B is stored (n,k) (a weight matrix W); else (k,n)
static void pack_b(float *restrict dst, const float *restrict b, int64_t ldb, int trans, int64_t j0, int64_t nc,
                   int64_t p0, int64_t kc, int nr) {
    for (int64_t j = 0; j < nc; j += nr) {
        int64_t cols = FF_MIN(nr, nc - j);
        if (trans) {
            for (int64_t c = 0; c < cols; c++) {
                const float *src = b + (j0 + j + c) * ldb + p0;
                for (int64_t p = 0; p < kc; p++) dst[p * nr + c] = src[p];
            }
            for (int64_t c = cols; c < nr; c++)
                for (int64_t p = 0; p < kc; p++) dst[p * nr + c] = 0.0f;
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + j;
                memcpy(dst + p * nr, src, (size_t)cols * sizeof(float));
                for (int64_t c = cols; c < nr; c++) dst[p * nr + c] = 0.0f;
            }
        }
        dst += kc * nr;
    }
}

// ---- the blocked gemm over one rectangle of C ----

typedef struct {
    float *c;
    const float *a, *b, *bias;
    int64_t m, n, k;
    int trans;
    int split_m;  // split rows across threads instead of columns
    int status;
} gemm_ctx;

static int gemm_block(const gemm_ctx *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const ff_kernels *kern = ff_kern;
    int mr = kern->gemm_mr, nr = kern->gemm_nr;
    int64_t ldb = g->trans ? g->k : g->n;
    float *bp = ff_scratch(((size_t)KC * NC + (size_t)MC * KC) * sizeof(float));
    if (!bp) return FF_ENOMEM;
    float *ap = bp + (size_t)KC * NC;
    for (int64_t jc = j0; jc < j1; jc += NC) {
        int64_t nc = FF_MIN(NC, j1 - jc);
        for (int64_t pc = 0; pc < g->k; pc += KC) {
            int64_t kc = FF_MIN(KC, g->k - pc);
            pack_b(bp, g->b, ldb, g->trans, jc, nc, pc, kc, nr);
            for (int64_t ic = i0; ic < i1; ic += MC) {
                int64_t mc = FF_MIN(MC, i1 - ic);
                pack_a(ap, g->a, g->k, ic, mc, pc, kc, mr);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        float *c = g->c + (ic + ir) * g->n + jc + jr;
                        kern->gemm_f32_tile(c, ap + ir * kc, bp + jr * kc, kc, g->n, FF_MIN(mr, mc - ir),
                                            FF_MIN(nr, nc - jr), pc > 0);
                    }
                }
            }
        }
    }
    if (g->k == 0)
        for (int64_t i = i0; i < i1; i++) memset(g->c + i * g->n + j0, 0, (size_t)(j1 - j0) * sizeof(float));
    if (g->bias)
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++) g->c[i * g->n + j] += g->bias[j];
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
