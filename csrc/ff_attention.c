// attention with an online (flash-style) softmax: keys are visited in blocks, the running max and sum
// rescale the output, and no (tq, tk) score matrix is ever stored
#include "ff_internal.h"

#include <math.h>
#include <string.h>

#define BK 256  // keys per block

void ff_attn_scores_f32_ref(float *restrict s, const float *restrict q, const float *restrict k, float scale,
                            int64_t n, int64_t d) {
    // K (n,d) @ q (d,) * scale -> s (n,)
    for (int64_t j = 0; j < n; j++) {
        float acc = 0.0f;
        for (int64_t i = 0; i < d; i++) acc += q[i] * k[j * d + i];
        s[j] = acc * scale;
    }
}

void ff_attn_accum_f32_ref(float *restrict o, float a, const float *restrict p, const float *restrict v, int64_t n,
                           int64_t d) {
    // o (d,) = o * a + p (n,) @ V (n,d)
    for (int64_t i = 0; i < d; i++) o[i] *= a;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < d; i++) o[i] += p[j] * v[j * d + i];
}

typedef struct {
    float *o;
    const float *q, *k, *v;
    int64_t h, hkv, tq, tk, d;
    float scale;
    int causal;
} attn_ctx;

// one query row: o (d,) = softmax(K q * scale) V over keys [0, nk)
static void attn_row(const ff_kernels *kern, float *o, const float *q, const float *k, const float *v, int64_t nk,
                     int64_t d, float scale) {
    float s[BK];
    float m = -INFINITY, l = 0.0f;
    memset(o, 0, (size_t)d * sizeof(float));
    for (int64_t j0 = 0; j0 < nk; j0 += BK) {
        int64_t nb = FF_MIN(BK, nk - j0);
        kern->attn_scores_f32(s, q, k + j0 * d, scale, nb, d);
        // new running max; rescale what was accumulated so far
        float mb = m;
        for (int64_t j = 0; j < nb; j++) mb = s[j] > mb ? s[j] : mb;
        float a = expf(m - mb);
        float sum = 0.0f;
        for (int64_t j = 0; j < nb; j++) {
            s[j] = expf(s[j] - mb);
            sum += s[j];
        }
        l = l * a + sum;
        m = mb;
        kern->attn_accum_f32(o, a, s, v + j0 * d, nb, d);
    }
    float inv = 1.0f / l;
    for (int64_t i = 0; i < d; i++) o[i] *= inv;
}

static void attn_task(void *arg, int ith, int nth) {
    attn_ctx *c = arg;
    const ff_kernels *kern = ff_kern;
    int64_t lo, hi, group = c->h / c->hkv;
    ff_split(c->h * c->tq, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        int64_t hh = r / c->tq, i = r % c->tq, g = hh / group;
        // causal: query i sits at position tk - tq + i and sees keys up to it
        int64_t nk = c->causal ? c->tk - c->tq + i + 1 : c->tk;
        attn_row(kern, c->o + r * c->d, c->q + r * c->d, c->k + g * c->tk * c->d, c->v + g * c->tk * c->d, nk,
                 c->d, c->scale);
    }
}

int ff_attention_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                     int64_t tk, int64_t d, float scale, int causal) {
    attn_ctx c = {o, q, k, v, h, hkv, tq, tk, d, scale, causal};
    ff_parallel(attn_task, &c, h * tq * tk * d < (1 << 15) ? 1 : FF_MAX_THREADS);
    return FF_OK;
}
