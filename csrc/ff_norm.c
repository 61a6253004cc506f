// rms norm and layer norm over rows
#include "ff_internal.h"
#include "ff_vmath.h"

#include <math.h>

void ff_norm_rms_f32_ref(float *restrict y, const float *restrict x, const float *restrict w, float eps, int64_t n) {
    // x (n,), w (n,) -> y (n,)
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    // scale by the reciprocal root mean square
    float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

void ff_norm_layer_f32_ref(float *restrict y, const float *restrict x, const float *restrict w,
                           const float *restrict b, float eps, int64_t n) {
    // x (n,), w (n,), b (n,) or NULL -> y (n,)
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    float r = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
}

#ifdef FF_HAVE_X86
// sums are taken in double like the reference: no overflow for large rows, no cancellation in the variance

FF_AVX2 void ff_norm_rms_f32_avx2(float *restrict y, const float *restrict x, const float *restrict w, float eps,
                                  int64_t n) {
    // sum of squares, four double accumulators
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256d d0 = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), d1 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        __m256d d2 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), d3 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double ss = ff_hsum_pd256(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    // y = x r w
    float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    __m256 vr = _mm256_set1_ps(r);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vr), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * r * w[i];
}

FF_AVX2 void ff_norm_layer_f32_avx2(float *restrict y, const float *restrict x, const float *restrict w,
                                    const float *restrict b, float eps, int64_t n) {
    // mean
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
    }
    double mean = ff_hsum_pd256(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) mean += x[i];
    mean /= (double)n;
    // variance around the mean
    __m256d vmean = _mm256_set1_pd(mean);
    a0 = a1 = a2 = a3 = _mm256_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vmean);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), vmean);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), vmean);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), vmean);
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double var = ff_hsum_pd256(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    // y = (x - mean) r w + b
    float r = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
    __m256 vr = _mm256_set1_ps(r), vmu = _mm256_set1_ps(mu);
    i = 0;
    if (b) {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vr);
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vr);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(t, _mm256_loadu_ps(w + i)));
        }
    }
    for (; i < n; i++) y[i] = (x[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
}

FF_AVX512 void ff_norm_rms_f32_avx512(float *restrict y, const float *restrict x, const float *restrict w, float eps,
                                    int64_t n) {
    // sum of squares, four double accumulators
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512d d0 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), d1 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        __m512d d2 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), d3 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24));
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
        a2 = _mm512_fmadd_pd(d2, d2, a2);
        a3 = _mm512_fmadd_pd(d3, d3, a3);
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    // y = x r w
    float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    __m512 vr = _mm512_set1_ps(r);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vr), _mm512_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * r * w[i];
}

FF_AVX512 void ff_norm_layer_f32_avx512(float *restrict y, const float *restrict x, const float *restrict w,
                                      const float *restrict b, float eps, int64_t n) {
    // mean
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
        a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)));
        a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)));
    }
    double mean = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    for (; i < n; i++) mean += x[i];
    mean /= (double)n;
    // variance around the mean
    __m512d vmean = _mm512_set1_pd(mean);
    a0 = a1 = a2 = a3 = _mm512_setzero_pd();
    for (i = 0; i + 32 <= n; i += 32) {
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vmean);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), vmean);
        __m512d d2 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), vmean);
        __m512d d3 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)), vmean);
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
        a2 = _mm512_fmadd_pd(d2, d2, a2);
        a3 = _mm512_fmadd_pd(d3, d3, a3);
    }
    double var = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    for (; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    // y = (x - mean) r w + b
    float r = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
    __m512 vr = _mm512_set1_ps(r), vmu = _mm512_set1_ps(mu);
    i = 0;
    if (b) {
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmu), vr);
            _mm512_storeu_ps(y + i, _mm512_fmadd_ps(t, _mm512_loadu_ps(w + i), _mm512_loadu_ps(b + i)));
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmu), vr);
            _mm512_storeu_ps(y + i, _mm512_mul_ps(t, _mm512_loadu_ps(w + i)));
        }
    }
    for (; i < n; i++) y[i] = (x[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
}
#endif

typedef struct {
    float *y;
    const float *x, *w, *b;
    float eps;
    int64_t rows, n;
    int layer;
} norm_ctx;

static void norm_task(void *arg, int ith, int nth) {
    norm_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->rows, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        if (c->layer)
            ff_kern->norm_layer_f32(c->y + r * c->n, c->x + r * c->n, c->w, c->b, c->eps, c->n);
        else
            ff_kern->norm_rms_f32(c->y + r * c->n, c->x + r * c->n, c->w, c->eps, c->n);
    }
}

static void norm_rows(norm_ctx *c) {
    ff_parallel(norm_task, c, c->rows * c->n < (1 << 15) ? 1 : (int)FF_MIN(c->rows, FF_MAX_THREADS));
}

void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n) {
    norm_ctx c = {y, x, w, NULL, eps, rows, n, 0};
    norm_rows(&c);
}

void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows,
                       int64_t n) {
    norm_ctx c = {y, x, w, b, eps, rows, n, 1};
    norm_rows(&c);
}
