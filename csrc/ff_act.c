// softmax over rows and elementwise activations (gelu, silu)
#include "ff_internal.h"
#include "ff_vmath.h"

#include <math.h>

void ff_softmax_f32_ref(float *y, const float *x, int64_t n) {
    // x (n,) -> y (n,), subtracting the max keeps exp in range
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        sum += y[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

void ff_gelu_tanh_f32_ref(float *y, const float *x, int64_t n) {
    // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written x / (1 + exp(-2u)) to avoid 1 + tanh(u) ~ 0
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        y[i] = v / (1.0f + expf(-2.0f * u));
    }
}

void ff_gelu_erf_f32_ref(float *y, const float *x, int64_t n) {
    // 0.5 x (1 + erf(x / sqrt(2))) = 0.5 x erfc(-x / sqrt(2))
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * erfcf(-x[i] * 0.7071067811865476f);
}

void ff_silu_f32_ref(float *y, const float *x, int64_t n) {
    // x * sigmoid(x)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

#ifdef FF_HAVE_X86
// gelu tanh: 0.5 x (1 + tanh(u)) = x sigmoid(2u), 2u = x (K0 + K1 x^2)
#define GELU_K0 1.5957691216057308f   // 2 sqrt(2/pi)
#define GELU_K1 0.07135481627159305f  // 2 sqrt(2/pi) 0.044715
#define FRAC_1_SQRT2 0.7071067811865476f
#define SOFTMAX_BLOCK 1024  // float partial sums stay within ~32 terms per lane

FF_AVX2 void ff_softmax_f32_avx2(float *y, const float *x, int64_t n) {
    // row max with four accumulators
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    float m = ff_hmax_ps256(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    // e = exp(x - max) into y (x - max <= 0: only exp's lower clamp); float sums per block, added in double
    __m256 vm = _mm256_set1_ps(m), lo = _mm256_set1_ps(FF_EXP_LO);
    double sum = 0.0;
    for (i = 0; i + 8 <= n;) {
        int64_t end = FF_MIN(n, i + SOFTMAX_BLOCK);
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (; i + 16 <= end; i += 16) {
            __m256 e0 = ff_exp_core_ps256(_mm256_max_ps(lo, _mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
            __m256 e1 = ff_exp_core_ps256(_mm256_max_ps(lo, _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
            _mm256_storeu_ps(y + i, e0);
            _mm256_storeu_ps(y + i + 8, e1);
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
        }
        for (; i + 8 <= end; i += 8) {
            __m256 e0 = ff_exp_core_ps256(_mm256_max_ps(lo, _mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
            _mm256_storeu_ps(y + i, e0);
            s0 = _mm256_add_ps(s0, e0);
        }
        sum += ff_hsum_ps256(_mm256_add_ps(s0, s1));
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - m);
        sum += y[i];
    }
    // normalize
    float inv = (float)(1.0 / sum);
    __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vinv));
    for (; i < n; i++) y[i] *= inv;
}

FF_AVX2 void ff_gelu_tanh_f32_avx2(float *y, const float *x, int64_t n) {
    const __m256 k0 = _mm256_set1_ps(GELU_K0), k1 = _mm256_set1_ps(GELU_K1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u2 = _mm256_mul_ps(v, _mm256_fmadd_ps(_mm256_mul_ps(v, v), k1, k0));
        _mm256_storeu_ps(y + i, ff_mul_sigmoid_ps256(v, u2));
    }
    ff_gelu_tanh_f32_ref(y + i, x + i, n - i);
}

FF_AVX2 void ff_gelu_erf_f32_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 h = _mm256_mul_ps(v, _mm256_set1_ps(0.5f)), z = _mm256_mul_ps(v, _mm256_set1_ps(FRAC_1_SQRT2));
        // 1 + erf(z) = erfc(-z): erfc(|z|) for negative z, 2 - erfc(|z|) for positive z
        __m256 c = ff_erfc_pos_ps256(ff_abs_ps256(z));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(h, _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), c), c, z)));
    }
    ff_gelu_erf_f32_ref(y + i, x + i, n - i);
}

FF_AVX2 void ff_silu_f32_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, ff_mul_sigmoid_ps256(v, v));
    }
    ff_silu_f32_ref(y + i, x + i, n - i);
}

FF_AVX512 void ff_softmax_f32_avx512(float *y, const float *x, int64_t n) {
    // row max with four accumulators
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
        m2 = _mm512_max_ps(m2, _mm512_loadu_ps(x + i + 32));
        m3 = _mm512_max_ps(m3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    float m = ff_hmax_ps512(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    // e = exp(x - max) into y (x - max <= 0: only exp's lower clamp); float sums per block, added in double
    __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(FF_EXP_LO);
    double sum = 0.0;
    for (i = 0; i + 16 <= n;) {
        int64_t end = FF_MIN(n, i + SOFTMAX_BLOCK);
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (; i + 32 <= end; i += 32) {
            __m512 e0 = ff_exp_core_ps512(_mm512_max_ps(lo, _mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
            __m512 e1 = ff_exp_core_ps512(_mm512_max_ps(lo, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm)));
            _mm512_storeu_ps(y + i, e0);
            _mm512_storeu_ps(y + i + 16, e1);
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
        }
        for (; i + 16 <= end; i += 16) {
            __m512 e0 = ff_exp_core_ps512(_mm512_max_ps(lo, _mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
            _mm512_storeu_ps(y + i, e0);
            s0 = _mm512_add_ps(s0, e0);
        }
        sum += ff_hsum_ps512(_mm512_add_ps(s0, s1));
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - m);
        sum += y[i];
    }
    // normalize
    float inv = (float)(1.0 / sum);
    __m512 vinv = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vinv));
    for (; i < n; i++) y[i] *= inv;
}

FF_AVX512 void ff_gelu_tanh_f32_avx512(float *y, const float *x, int64_t n) {
    const __m512 k0 = _mm512_set1_ps(GELU_K0), k1 = _mm512_set1_ps(GELU_K1);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 u2 = _mm512_mul_ps(v, _mm512_fmadd_ps(_mm512_mul_ps(v, v), k1, k0));
        _mm512_storeu_ps(y + i, ff_mul_sigmoid_ps512(v, u2));
    }
    ff_gelu_tanh_f32_ref(y + i, x + i, n - i);
}

FF_AVX512 void ff_gelu_erf_f32_avx512(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 h = _mm512_mul_ps(v, _mm512_set1_ps(0.5f)), z = _mm512_mul_ps(v, _mm512_set1_ps(FRAC_1_SQRT2));
        // 1 + erf(z) = erfc(-z): erfc(|z|) for negative z, 2 - erfc(|z|) for positive z
        __m512 c = ff_erfc_pos_ps512(_mm512_abs_ps(z));
        __mmask16 pos = (__mmask16)~_mm512_movepi32_mask(_mm512_castps_si512(z));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(h, _mm512_mask_sub_ps(c, pos, _mm512_set1_ps(2.0f), c)));
    }
    ff_gelu_erf_f32_ref(y + i, x + i, n - i);
}

FF_AVX512 void ff_silu_f32_avx512(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, ff_mul_sigmoid_ps512(v, v));
    }
    ff_silu_f32_ref(y + i, x + i, n - i);
}
#endif

typedef struct {
    float *y;
    const float *x;
    int64_t rows, n;
    void (*fn)(float *, const float *, int64_t);
} rows_ctx;

static void rows_task(void *arg, int ith, int nth) {
    rows_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->rows, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) c->fn(c->y + r * c->n, c->x + r * c->n, c->n);
}

void ff_softmax_f32(float *y, const float *x, int64_t rows, int64_t n) {
    rows_ctx c = {y, x, rows, n, ff_kern->softmax_f32};
    ff_parallel(rows_task, &c, rows * n < (1 << 15) ? 1 : (int)FF_MIN(rows, FF_MAX_THREADS));
}

// elementwise ops: split the flat array into 64-element-aligned chunks
typedef struct {
    float *y;
    const float *x;
    int64_t n;
    void (*fn)(float *, const float *, int64_t);
} flat_ctx;

static void flat_task(void *arg, int ith, int nth) {
    flat_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->n, ith, nth, 64, &lo, &hi);
    if (lo < hi) c->fn(c->y + lo, c->x + lo, hi - lo);
}

static void elementwise(float *y, const float *x, int64_t n, void (*fn)(float *, const float *, int64_t)) {
    flat_ctx c = {y, x, n, fn};
    ff_parallel(flat_task, &c, n < (1 << 15) ? 1 : FF_MAX_THREADS);
}

void ff_gelu_tanh_f32(float *y, const float *x, int64_t n) { elementwise(y, x, n, ff_kern->gelu_tanh_f32); }
void ff_gelu_erf_f32(float *y, const float *x, int64_t n) { elementwise(y, x, n, ff_kern->gelu_erf_f32); }
void ff_silu_f32(float *y, const float *x, int64_t n) { elementwise(y, x, n, ff_kern->silu_f32); }

// ---- argmax: each thread scans the part of x a matrix call of as many threads wrote, so no line crosses cores ----
typedef struct {
    const float *x;
    int64_t n;
    float max[FF_MAX_THREADS];
    int64_t at[FF_MAX_THREADS];  // the first index of max in the part, or -1 if the part holds a NaN
} argmax_ctx;

static void argmax_task(void *arg, int ith, int nth) {
    argmax_ctx *c = arg;
    int64_t lo, hi, i = 0;
    ff_split(c->n, ith, nth, 32, &lo, &hi);
    const float *x = c->x + lo;
    int64_t n = hi - lo;
    // eight running maxima (vectorized) and a NaN flag; then the first element equal to the largest
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, mx;
    int nan = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
            nan |= x[i + j] != x[i + j];
        }
    for (; i < n; i++) {
        m[0] = x[i] > m[0] ? x[i] : m[0];
        nan |= x[i] != x[i];
    }
    mx = m[0];
    for (int j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
    c->max[ith] = mx;
    if (n == 0) return;  // at stays -2
    c->at[ith] = -1;
    if (nan) return;
    for (i = 0; x[i] != mx; i++) {}
    c->at[ith] = lo + i;
}

int64_t ff_argmax_f32(const float *x, int64_t n) {
    if (n < 1) return -1;
    argmax_ctx c = {.x = x, .n = n};
    for (int t = 0; t < FF_MAX_THREADS; t++) c.at[t] = -2;  // -2: a part no thread ran (a busy pool runs one)
    ff_parallel(argmax_task, &c, n < 4096 ? 1 : FF_MAX_THREADS);
    int64_t at = -2;
    float mx = -INFINITY;
    for (int t = 0; t < FF_MAX_THREADS; t++) {
        if (c.at[t] == -1) return -1;
        if (c.at[t] >= 0 && (at < 0 || c.max[t] > mx)) mx = c.max[t], at = c.at[t];
    }
    return at >= 0 && isfinite(mx) ? at : -1;
}
