// rms norm and layer norm over rows
#include "ff_internal.h"

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
