// softmax over rows and elementwise activations (gelu, silu)
#include "ff_internal.h"

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
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

void ff_gelu_erf_f32_ref(float *y, const float *x, int64_t n) {
    // 0.5 x (1 + erf(x / sqrt(2)))
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void ff_silu_f32_ref(float *y, const float *x, int64_t n) {
    // x * sigmoid(x)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

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
