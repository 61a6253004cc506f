// q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.h): quantizers, dequantizers, the scalar dot kernels and the
// row drivers the tests and benchmarks call until these types sit in the qtype table
#include "ff_qlegacy.h"

#include <math.h>
#include <string.h>

#include "ff_internal.h"
#include "ff_quant.h"

const int8_t ff_iq4_nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

int64_t ff_qlegacy_block_bytes(int qtype) {
    switch (qtype) {
    case FF_QL_Q4_1: return FF_Q4_1_BYTES;
    case FF_QL_Q5_0: return FF_Q5_0_BYTES;
    case FF_QL_Q5_1: return FF_Q5_1_BYTES;
    case FF_QL_IQ4_NL: return FF_IQ4_NL_BYTES;
    default: return 0;
    }
}

static inline float ld_fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return ff_fp16_to_f32(h);
}

static inline void st_fp16(uint8_t *p, float f) {
    uint16_t h = ff_fp16_from_f32(f);
    memcpy(p, &h, 2);
}

// trunc(v) clipped to 0..top, as the gguf package (nan -> 0)
static inline int trunc_clip(float v, int top) { return v >= (float)top ? top : v > 0.0f ? (int)v : 0; }

// 32 codes -> 16 nibble bytes (weights j and j + 16 share byte j) and, for 5-bit codes, the 32 high bits
static void pack_codes(uint8_t *restrict qs, uint8_t *restrict qh, const uint8_t *restrict q) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j;
    if (qh) memcpy(qh, &h, 4);
}

// code of weight j of a 32-block: nibble j % 16 of qs, low for j < 16, plus bit j of qh << 4 for 5 bits
static inline int code_of(const uint8_t *qs, const uint8_t *qh, int j) {
    int q = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    if (qh) {
        uint32_t h;
        memcpy(&h, qh, 4);
        q |= (int)((h >> j) & 1) << 4;
    }
    return q;
}

// ---- quantizers ----

// with a minimum (q4_1, q5_1): d = (max - min) / top, q = trunc((x - min) / d + 0.5)
static void quantize_min(uint8_t *restrict dst, const float *restrict x, int64_t k, int top, int bsz) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += bsz) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < 32; j++) {
            if (x[j] < mn) mn = x[j];
            if (x[j] > mx) mx = x[j];
        }
        float d = (mx - mn) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
        st_fp16(dst, d);
        st_fp16(dst + 2, mn);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)trunc_clip((x[j] - mn) * id + 0.5f, top);
        pack_codes(dst + (top == 31 ? 8 : 4), top == 31 ? dst + 4 : NULL, q);
    }
}

void ff_quantize_row_q4_1(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    quantize_min(dst, x, k, 15, FF_Q4_1_BYTES);
}

void ff_quantize_row_q5_1(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    quantize_min(dst, x, k, 31, FF_Q5_1_BYTES);
}

void ff_quantize_row_q5_0(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // d = -(the value of largest magnitude, first one wins) / 16, q = min(31, trunc(x/d + 16.5))
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_Q5_0_BYTES) {
        float amax = fabsf(x[0]), max = x[0];
        for (int j = 1; j < 32; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        st_fp16(dst, d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)trunc_clip(x[j] * id + 16.5f, 31);
        pack_codes(dst + 6, dst + 2, q);
    }
}

// index of the iq4_nl value nearest to v, ties as ggml's bisection: the upper one, and nan -> 15
static int iq4_nl_nearest(float v) {
    static const float t[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    if (v <= t[0]) return 0;
    if (!(v < t[15])) return 15;
    // lo: the last value <= v, counted without branches
    int lo = 0;
    for (int j = 1; j < 15; j++) lo += t[j] <= v;
    return v - t[lo] < t[lo + 1] - v ? lo : lo + 1;
}

// codes of xb for 1/scale id; sums w*q*x and w*q*q over the block with weights x*x
static void iq4_nl_fit(uint8_t *restrict q, float *sqx, float *sq2, const float *restrict xb, float id) {
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
        int l = iq4_nl_nearest(id * xb[j]);
        if (q) q[j] = (uint8_t)l;
        float v = ff_iq4_nl_values[l], wq = xb[j] * xb[j] * v;
        sumqx += wq * xb[j];
        sumq2 += wq * v;
    }
    *sqx = sumqx;
    *sq2 = sumq2;
}

void ff_quantize_row_iq4_nl(uint8_t *restrict dst, const float *restrict x, int64_t k) {
    // llama.cpp's search without an importance matrix: start from d = max / -127, try 15 scales around it,
    // keep the least-squares scale (weights x^2) of the best fit, then requantize with the fp32 scale
    for (int64_t b = 0; b < k / 32; b++, x += 32, dst += FF_IQ4_NL_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        uint8_t q[32];
        float d = 0.0f;
        if (amax >= 1e-15f) {
            float sumqx, sumq2;
            iq4_nl_fit(NULL, &sumqx, &sumq2, x, 1.0f / (max / 127.0f));
            d = sumqx / sumq2;
            float best = d * sumqx;
            for (int t = -7; t <= 7; t++) {
                iq4_nl_fit(NULL, &sumqx, &sumq2, x, (float)(t - 127) / max);
                if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) d = sumqx / sumq2, best = d * sumqx;
            }
        }
        st_fp16(dst, d);
        float sumqx, sumq2;
        iq4_nl_fit(q, &sumqx, &sumq2, x, d != 0.0f ? 1.0f / d : 0.0f);
        pack_codes(dst + 2, NULL, q);
    }
}

// ---- dequantizers: the gguf package's arithmetic (d * q, then + m), so results are bitwise equal ----

static void dequantize_min(float *restrict y, const uint8_t *restrict src, int64_t k, int five, int bsz) {
    for (int64_t b = 0; b < k / 32; b++, src += bsz, y += 32) {
        float d = ld_fp16(src), m = ld_fp16(src + 2);
        for (int j = 0; j < 32; j++) y[j] = d * (float)code_of(src + (five ? 8 : 4), five ? src + 4 : NULL, j) + m;
    }
}

void ff_dequantize_row_q4_1(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_min(y, src, k, 0, FF_Q4_1_BYTES);
}

void ff_dequantize_row_q5_1(float *restrict y, const uint8_t *restrict src, int64_t k) {
    dequantize_min(y, src, k, 1, FF_Q5_1_BYTES);
}

void ff_dequantize_row_q5_0(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_Q5_0_BYTES, y += 32) {
        float d = ld_fp16(src);
        for (int j = 0; j < 32; j++) y[j] = d * (float)(code_of(src + 6, src + 2, j) - 16);
    }
}

void ff_dequantize_row_iq4_nl(float *restrict y, const uint8_t *restrict src, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, src += FF_IQ4_NL_BYTES, y += 32) {
        float d = ld_fp16(src);
        for (int j = 0; j < 32; j++) y[j] = d * (float)ff_iq4_nl_values[code_of(src + 2, NULL, j)];
    }
}

// ---- scalar dot kernels: y (m,n) row stride ldy = A (m,k) . W (n,k)^T ----

// per 32-block b of every row: the exact int dot of the (signed) weight codes with a, times d_w * d_a, and
// for q4_1/q5_1 the minimum's term m_w * d_a * sum(a), summed apart
static void qdot_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                     const ff_qact *a, int m, int qtype) {
    int64_t nb = a->k / 32, bsz = ff_qlegacy_block_bytes(qtype);
    int has_min = qtype == FF_QL_Q4_1 || qtype == FF_QL_Q5_1;
    int qs_at = qtype == FF_QL_Q5_1 ? 8 : qtype == FF_QL_Q5_0 ? 6 : has_min ? 4 : 2;
    int qh_at = qtype == FF_QL_Q5_1 ? 4 : qtype == FF_QL_Q5_0 ? 2 : 0;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = w + j * stride;
        for (int i = 0; i < m; i++) {
            const int8_t *aq = a->q + i * a->kp;
            const float *ad = a->d + i * (a->kp / 32);
            const int16_t *as = a->s + i * (a->kp / 16);
            float acc = 0.0f, corr = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + bsz * b;
                int32_t isum = 0;
                for (int t = 0; t < 32; t++) {
                    int q = code_of(blk + qs_at, qh_at ? blk + qh_at : NULL, t);
                    int v = qtype == FF_QL_IQ4_NL ? ff_iq4_nl_values[q] : qtype == FF_QL_Q5_0 ? q - 16 : q;
                    isum += v * aq[32 * b + t];
                }
                acc += (float)isum * (ld_fp16(blk) * ad[b]);
                if (has_min) corr += ld_fp16(blk + 2) * (ad[b] * (float)(as[2 * b] + as[2 * b + 1]));
            }
            y[i * ldy + j] = acc + corr;
        }
    }
}

#define FF_QLEGACY_REF(qt, id)                                                                                         \
    void ff_qdot_##qt##_ref(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,      \
                            const ff_qact *a, int m) {                                                                 \
        qdot_ref(y, ldy, w, stride, n, a, m, id);                                                                      \
    }
FF_QLEGACY_REF(q4_1, FF_QL_Q4_1)
FF_QLEGACY_REF(q5_0, FF_QL_Q5_0)
FF_QLEGACY_REF(q5_1, FF_QL_Q5_1)
FF_QLEGACY_REF(iq4_nl, FF_QL_IQ4_NL)

// ---- row drivers ----

typedef struct {
    void *q;
    float *f;
    int qtype, quantize;
    int64_t rows, cols, row_bytes;
} convert_ctx;

static void convert_task(void *arg, int ith, int nth) {
    convert_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->rows, ith, nth, 1, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        float *f = c->f + r * c->cols;
        uint8_t *q = (uint8_t *)c->q + r * c->row_bytes;
        switch (c->qtype + (c->quantize ? 0 : 256)) {
        case FF_QL_Q4_1: ff_quantize_row_q4_1(q, f, c->cols); break;
        case FF_QL_Q5_0: ff_quantize_row_q5_0(q, f, c->cols); break;
        case FF_QL_Q5_1: ff_quantize_row_q5_1(q, f, c->cols); break;
        case FF_QL_IQ4_NL: ff_quantize_row_iq4_nl(q, f, c->cols); break;
        case 256 + FF_QL_Q4_1: ff_dequantize_row_q4_1(f, q, c->cols); break;
        case 256 + FF_QL_Q5_0: ff_dequantize_row_q5_0(f, q, c->cols); break;
        case 256 + FF_QL_Q5_1: ff_dequantize_row_q5_1(f, q, c->cols); break;
        default: ff_dequantize_row_iq4_nl(f, q, c->cols); break;
        }
    }
}

static int convert(void *q, float *f, int qtype, int64_t rows, int64_t cols, int quantize) {
    int64_t bsz = ff_qlegacy_block_bytes(qtype);
    if (!bsz || rows < 0 || cols < 0 || cols % 32) return FF_EINVAL;
    convert_ctx c = {q, f, qtype, quantize, rows, cols, cols / 32 * bsz};
    // iq4_nl's search costs ~50x a dequantization per weight
    int64_t work = rows * cols * (quantize && qtype == FF_QL_IQ4_NL ? 64 : 1);
    ff_parallel(convert_task, &c, work < (1 << 16) ? 1 : ff_get_num_threads());
    return FF_OK;
}

int ff_qlegacy_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols) {
    return convert(dst, (float *)w, qtype, rows, cols, 1);
}

int ff_qlegacy_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols) {
    return convert((void *)src, y, qtype, rows, cols, 0);
}

typedef void (*qdot_fn)(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, int64_t n,
                        const ff_qact *a, int m);

typedef struct {
    float *y;
    const uint8_t *w;
    const float *x;
    int64_t m, k, n, stride;
    qdot_fn dot;
    ff_qact act;
    int8_t *q;
    float *d;
    int16_t *s;
} qlegacy_ctx;

static qdot_fn qdot_for(int qtype) {
    static const qdot_fn table[4][FF_ISA_COUNT] = {
#ifdef FF_HAVE_X86
        {ff_qdot_q4_1_ref, ff_qdot_q4_1_avx2, ff_qdot_q4_1_avx512},
        {ff_qdot_q5_0_ref, ff_qdot_q5_0_avx2, ff_qdot_q5_0_avx512},
        {ff_qdot_q5_1_ref, ff_qdot_q5_1_avx2, ff_qdot_q5_1_avx512},
        {ff_qdot_iq4_nl_ref, ff_qdot_iq4_nl_avx2, ff_qdot_iq4_nl_avx512},
#else
        {ff_qdot_q4_1_ref},
        {ff_qdot_q5_0_ref},
        {ff_qdot_q5_1_ref},
        {ff_qdot_iq4_nl_ref},
#endif
    };
    int t = qtype == FF_QL_Q4_1 ? 0 : qtype == FF_QL_Q5_0 ? 1 : qtype == FF_QL_Q5_1 ? 2 : 3;
    qdot_fn f = table[t][ff_isa_current()];
    return f ? f : table[t][0];
}

static void act_task(void *arg, int ith, int nth) {
    qlegacy_ctx *c = arg;
    int64_t lo, hi, kp = c->act.kp;
    ff_split(c->m, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        int8_t *q = c->q + i * kp;
        float *d = c->d + i * (kp / 32);
        int16_t *s = c->s + i * (kp / 16);
        ff_kern->quant_act_q8(q, d, s, c->x + i * c->k, c->k);
        // zero padding up to kp
        memset(q + c->k, 0, (size_t)(kp - c->k));
        memset(d + c->k / 32, 0, (size_t)(kp - c->k) / 32 * sizeof(float));
        memset(s + c->k / 16, 0, (size_t)(kp - c->k) / 16 * sizeof(int16_t));
    }
}

static void dot_task(void *arg, int ith, int nth) {
    qlegacy_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->n, ith, nth, 16, &lo, &hi);
    for (int64_t i0 = 0; i0 < c->m && lo < hi; i0 += 4) {
        ff_qact a = c->act;
        a.q += i0 * a.kp;
        a.d += i0 * (a.kp / 32);
        a.s += i0 * (a.kp / 16);
        c->dot(c->y + i0 * c->n + lo, c->n, c->w + lo * c->stride, c->stride, hi - lo, &a, (int)FF_MIN(4, c->m - i0));
    }
}

int ff_qlegacy_linear(float *y, const float *x, const void *w, int qtype, int64_t m, int64_t k, int64_t n) {
    int64_t bsz = ff_qlegacy_block_bytes(qtype);
    if (!bsz || m < 0 || n < 0 || k < 0 || k % 32) return FF_EINVAL;
    if (m == 0 || n == 0) return FF_OK;
    // activation rows padded to whole 16-block chunks, as ff_linear_q
    int64_t kp = (k + 511) / 512 * 512;
    size_t row = (size_t)kp + kp / 32 * sizeof(float) + kp / 16 * sizeof(int16_t);
    uint8_t *buf = ff_scratch(row * (size_t)m);
    if (!buf) return FF_ENOMEM;
    qlegacy_ctx c = {.y = y, .w = w, .x = x, .m = m, .k = k, .n = n, .stride = k / 32 * bsz, .dot = qdot_for(qtype)};
    c.d = (float *)(void *)buf;
    c.s = (int16_t *)(void *)(c.d + kp / 32 * m);
    c.q = (int8_t *)(void *)(c.s + kp / 16 * m);
    c.act = (ff_qact){c.q, c.d, c.s, NULL, k, kp};
    int nth = ff_get_num_threads();
    ff_parallel(act_task, &c, m * k < (1 << 16) ? 1 : nth);
    ff_parallel(dot_task, &c, n * k * m < (1 << 15) ? 1 : nth);
    return FF_OK;
}
