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

void ff_norm_layer_f32_ref(float *restrict y, const float *restrict x, const float *restrict w, const float *restrict b,
                           float eps, int64_t n) {
    // x (n,), w (n,), b (n,) or NULL -> y (n,)
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    // x - mean in double: a mean far from zero keeps its low bits
    float r = (float)(1.0 / sqrt(var + eps));
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)x[i] - mean) * r * w[i] + (b ? b[i] : 0.0f);
}

#ifdef FF_HAVE_X86
// sums are taken in double like the reference: no overflow or lost precision for long rows

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
    // one pass: sums of d = x - x[0] and d^2 in double; the shift keeps var = E[d^2] - E[d]^2 exact enough
    __m256d c = _mm256_set1_pd(x[0]), s0 = _mm256_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), c);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), c);
        s0 = _mm256_add_pd(s0, d0);
        s1 = _mm256_add_pd(s1, d1);
        q0 = _mm256_fmadd_pd(d0, d0, q0);
        q1 = _mm256_fmadd_pd(d1, d1, q1);
    }
    double s = ff_hsum_pd256(_mm256_add_pd(s0, s1)), q = ff_hsum_pd256(_mm256_add_pd(q0, q1));
    for (; i < n; i++) {
        double d = (double)x[i] - x[0];
        s += d;
        q += d * d;
    }
    double dm = s / (double)n, mean = x[0] + dm, var = FF_MAX(q / (double)n - dm * dm, 0.0);
    // y = (x - mean) r w + b, the mean split into two floats so x - mean keeps its low bits
    float r = (float)(1.0 / sqrt(var + eps)), mh = (float)mean, ml = (float)(mean - mh);
    __m256 vr = _mm256_set1_ps(r), vh = _mm256_set1_ps(mh), vl = _mm256_set1_ps(ml);
    i = 0;
    if (b) {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vh), vl), vr);
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vh), vl), vr);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(t, _mm256_loadu_ps(w + i)));
        }
    }
    for (; i < n; i++) y[i] = (x[i] - mh - ml) * r * w[i] + (b ? b[i] : 0.0f);
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
    double ss = ff_hsum_pd512(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
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
    // one pass: sums of d = x - x[0] and d^2 in double; the shift keeps var = E[d^2] - E[d]^2 exact enough
    __m512d c = _mm512_set1_pd(x[0]), s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), c);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), c);
        s0 = _mm512_add_pd(s0, d0);
        s1 = _mm512_add_pd(s1, d1);
        q0 = _mm512_fmadd_pd(d0, d0, q0);
        q1 = _mm512_fmadd_pd(d1, d1, q1);
    }
    double s = ff_hsum_pd512(_mm512_add_pd(s0, s1)), q = ff_hsum_pd512(_mm512_add_pd(q0, q1));
    for (; i < n; i++) {
        double d = (double)x[i] - x[0];
        s += d;
        q += d * d;
    }
    double dm = s / (double)n, mean = x[0] + dm, var = FF_MAX(q / (double)n - dm * dm, 0.0);
    // y = (x - mean) r w + b, the mean split into two floats so x - mean keeps its low bits
    float r = (float)(1.0 / sqrt(var + eps)), mh = (float)mean, ml = (float)(mean - mh);
    __m512 vr = _mm512_set1_ps(r), vh = _mm512_set1_ps(mh), vl = _mm512_set1_ps(ml);
    i = 0;
    if (b) {
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vh), vl), vr);
            _mm512_storeu_ps(y + i, _mm512_fmadd_ps(t, _mm512_loadu_ps(w + i), _mm512_loadu_ps(b + i)));
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vh), vl), vr);
            _mm512_storeu_ps(y + i, _mm512_mul_ps(t, _mm512_loadu_ps(w + i)));
        }
    }
    for (; i < n; i++) y[i] = (x[i] - mh - ml) * r * w[i] + (b ? b[i] : 0.0f);
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
    // below 64k elements a row pass takes a few microseconds: waking a second thread gains too little
    ff_parallel(norm_task, c, c->rows * c->n < (1 << 16) ? 1 : (int)FF_MIN(c->rows, FF_MAX_THREADS));
}

void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n) {
    norm_ctx c = {y, x, w, NULL, eps, rows, n, 0};
    norm_rows(&c);
}

void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows, int64_t n) {
    norm_ctx c = {y, x, w, b, eps, rows, n, 1};
    norm_rows(&c);
}
