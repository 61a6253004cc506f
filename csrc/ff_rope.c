// rotary position embeddings: a cos/sin table, then an in-place rotation of every (head, position) row
#include "ff_internal.h"

#include <math.h>

#ifdef FF_HAVE_X86
#include <immintrin.h>
#endif

void ff_rope_table_f32(float *cos_, float *sin_, const int64_t *pos, const float *inv_freq, int64_t t, int64_t half) {
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

#ifdef FF_HAVE_X86
// interleaved: with v = (a0 b0 a1 b1 ..), cos/sin duplicated per pair and v' = (b0 a0 b1 a1 ..),
// fmaddsub(v, cos, v' sin) gives a cos - b sin in even lanes and b cos + a sin in odd lanes

FF_AVX2 void ff_rope_f32_avx2(float *restrict x, const float *restrict cos_, const float *restrict sin_, int64_t d,
                              int interleaved) {
    int64_t half = d / 2, i = 0;
    if (interleaved) {
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        for (; i + 4 <= half; i += 4) {
            __m256 v = _mm256_loadu_ps(x + 2 * i);
            __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos_ + i)), dup);
            __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin_ + i)), dup);
            __m256 sw = _mm256_permute_ps(v, 0xb1);
            _mm256_storeu_ps(x + 2 * i, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(sw, s)));
        }
        for (; i < half; i++) {
            float a = x[2 * i], b = x[2 * i + 1];
            x[2 * i] = a * cos_[i] - b * sin_[i];
            x[2 * i + 1] = b * cos_[i] + a * sin_[i];
        }
    } else {
        for (; i + 8 <= half; i += 8) {
            __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + half + i);
            __m256 c = _mm256_loadu_ps(cos_ + i), s = _mm256_loadu_ps(sin_ + i);
            _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
            _mm256_storeu_ps(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
        }
        for (; i < half; i++) {
            float a = x[i], b = x[half + i];
            x[i] = a * cos_[i] - b * sin_[i];
            x[half + i] = b * cos_[i] + a * sin_[i];
        }
    }
}

FF_AVX512 void ff_rope_f32_avx512(float *restrict x, const float *restrict cos_, const float *restrict sin_, int64_t d,
                                  int interleaved) {
    int64_t half = d / 2, i = 0;
    if (interleaved) {
        const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        for (; i + 8 <= half; i += 8) {
            __m512 v = _mm512_loadu_ps(x + 2 * i);
            __m512 c = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(cos_ + i)));
            __m512 s = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(sin_ + i)));
            __m512 sw = _mm512_permute_ps(v, 0xb1);
            _mm512_storeu_ps(x + 2 * i, _mm512_fmaddsub_ps(v, c, _mm512_mul_ps(sw, s)));
        }
        for (; i < half; i++) {
            float a = x[2 * i], b = x[2 * i + 1];
            x[2 * i] = a * cos_[i] - b * sin_[i];
            x[2 * i + 1] = b * cos_[i] + a * sin_[i];
        }
    } else {
        for (; i + 16 <= half; i += 16) {
            __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + half + i);
            __m512 c = _mm512_loadu_ps(cos_ + i), s = _mm512_loadu_ps(sin_ + i);
            _mm512_storeu_ps(x + i, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
            _mm512_storeu_ps(x + half + i, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
        }
        // head sizes like 80 or 96 leave an 8-wide step
        for (; i + 8 <= half; i += 8) {
            __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + half + i);
            __m256 c = _mm256_loadu_ps(cos_ + i), s = _mm256_loadu_ps(sin_ + i);
            _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
            _mm256_storeu_ps(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
        }
        for (; i < half; i++) {
            float a = x[i], b = x[half + i];
            x[i] = a * cos_[i] - b * sin_[i];
            x[half + i] = b * cos_[i] + a * sin_[i];
        }
    }
}
#endif

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
    // rotation is a few loads and fmas per pair: split only past 64k elements
    ff_parallel(rope_task, &c, h * t * d < (1 << 16) ? 1 : FF_MAX_THREADS);
}
