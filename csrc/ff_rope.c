// rotary position embeddings: a cos/sin table, then an in-place rotation of every (head, position) row
#include "ff_internal.h"

#include <math.h>

void ff_rope_table_f32(float *cos_, float *sin_, const int64_t *pos, const float *inv_freq, int64_t t,
                       int64_t half) {
    // positions (t,), inv_freq (half,) -> cos, sin (t, half); the angle in double keeps long positions exact
    for (int64_t i = 0; i < t; i++)
        for (int64_t j = 0; j < half; j++) {
            double a = (double)pos[i] * (double)inv_freq[j];
            cos_[i * half + j] = (float)cos(a);
            sin_[i * half + j] = (float)sin(a);
        }
}

void ff_rope_f32_ref(float *restrict x, const float *restrict cos_, const float *restrict sin_, int64_t d,
                     int interleaved) {
    // x (d,) rotated by angle pairs cos, sin (d/2,)
    int64_t half = d / 2;
    for (int64_t i = 0; i < half; i++) {
        // interleaved pairs are (2i, 2i+1); split halves pair i with i + d/2
        int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
        float a = x[i0], b = x[i1];
        x[i0] = a * cos_[i] - b * sin_[i];
        x[i1] = b * cos_[i] + a * sin_[i];
    }
}

typedef struct {
    float *x;
    const float *cos, *sin;
    int64_t h, t, d;
    int interleaved;
} rope_ctx;

static void rope_task(void *arg, int ith, int nth) {
    rope_ctx *c = arg;
    int64_t lo, hi, half = c->d / 2;
    ff_split(c->h * c->t, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        int64_t p = r % c->t;
        ff_kern->rope_f32(c->x + r * c->d, c->cos + p * half, c->sin + p * half, c->d, c->interleaved);
    }
}

void ff_rope_f32(float *x, const float *cos_, const float *sin_, int64_t h, int64_t t, int64_t d, int interleaved) {
    rope_ctx c = {x, cos_, sin_, h, t, d, interleaved};
    ff_parallel(rope_task, &c, h * t * d < (1 << 15) ? 1 : FF_MAX_THREADS);
}
