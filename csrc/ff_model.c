// the forward pass of a decoder-only transformer (llama / mistral / qwen2 / gpt2 blocks), one call per step:
// embed -> n_layers x (norm, attention with kv cache, residual, norm, mlp, residual) -> final norm -> logits
#include "ff_quant.h"

#include <math.h>
#include <string.h>

// y (m, w.rows) = x (m, w.cols) @ w^T + bias, dispatching on the weight's storage type
static int linear(float *y, const float *x, const ff_tensor *w, const float *bias, int64_t m) {
    if (w->dtype == FF_DT_F32) return ff_linear_f32(y, x, (const float *)w->data, bias, m, w->cols, w->rows);
    // ggml block formats: the type id is the storage type
    return ff_linear_q(y, x, w->data, w->dtype, bias, m, w->cols, w->rows);
}

// y_p = x @ w_p^T + bias_p for np <= 3 weights of one input: quantized ones of one type as one job (x is
// quantized once), else one linear each
static int linear_n(float *const *y, const float *x, const ff_tensor *const *w, const float *const *bias, int np,
                    int64_t m) {
    ff_qpart parts[3];
    int fuse = 1;
    for (int p = 0; p < np; p++) {
        parts[p] = (ff_qpart){y[p], w[p]->data, bias[p], w[p]->rows, w[p]->dtype};
        fuse &= w[p]->dtype != FF_DT_F32 && (w[p]->dtype & ~FF_QT_R16) == (w[0]->dtype & ~FF_QT_R16) &&
                (p + 1 == np || w[p]->rows % FF_QP_NR == 0);
    }
    if (fuse) return ff_linear_q_parts(parts, np, x, m, w[0]->cols);
    for (int p = 0; p < np; p++) {
        int rc = linear(y[p], x, w[p], bias[p], m);
        if (rc) return rc;
    }
    return FF_OK;
}

static void norm(const ff_model *m, float *y, const float *x, const float *w, const float *b, int64_t rows) {
    if (m->norm == FF_NORM_LAYER)
        ff_norm_layer_f32(y, x, w, b, m->eps, rows, m->d);
    else
        ff_norm_rms_f32(y, x, w, m->eps, rows, m->d);
}

// a session's scratch buffers in the order they are carved, and their floats for max_t tokens
#define FF_SESSION_BUFS 12
static void session_bufs(ff_session *s, float **bufs[FF_SESSION_BUFS]) {
    float **b[FF_SESSION_BUFS] = {&s->x, &s->h, &s->q,  &s->att, &s->qt,  &s->ot,
                                  &s->k, &s->v, &s->f1, &s->f2,  &s->cos, &s->sin};
    memcpy(bufs, b, sizeof(b));
}

static void session_floats(const ff_model *m, int64_t max_t, int64_t n[FF_SESSION_BUFS]) {
    int64_t d = max_t * m->d, hd = max_t * m->n_heads * m->head_dim, kvd = max_t * m->n_kv_heads * m->head_dim;
    int64_t f = max_t * m->d_ff, half = max_t * (m->head_dim / 2), att = FF_MAX(hd, d);  // att: post-norm scratch
    int64_t s[FF_SESSION_BUFS] = {d, d, hd, att, hd, hd, kvd, kvd, f, f, half, half};
    memcpy(n, s, sizeof(s));
}

static int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

int64_t ff_session_bytes(const ff_model *m, int64_t max_t) {
    int64_t n[FF_SESSION_BUFS], total = 64;  // room to align the start
    session_floats(m, max_t, n);
    for (int i = 0; i < FF_SESSION_BUFS; i++) total += round64(n[i] * (int64_t)sizeof(float));
    return total;
}

void ff_session_init(ff_session *s, const ff_model *m, void *buf, void *k_cache, void *v_cache, int kv_type,
                     int64_t cap, int64_t max_t) {
    int64_t n[FF_SESSION_BUFS];
    float **bufs[FF_SESSION_BUFS];
    session_floats(m, max_t, n);
    session_bufs(s, bufs);
    uint8_t *p = (uint8_t *)buf + (-(uintptr_t)buf & 63);
    for (int i = 0; i < FF_SESSION_BUFS; i++) {
        *bufs[i] = (float *)(void *)p;
        p += round64(n[i] * (int64_t)sizeof(float));
    }
    s->k_cache = k_cache;
    s->v_cache = v_cache;
    s->kv_type = kv_type;
    s->cap = cap;
    s->max_t = max_t;
    s->n_past = 0;
    s->rope_long = 0;
}

// rms-normalize every head of x (rows, hd) by w (hd,) in place, through tmp (rows, hd)
static void norm_heads(const ff_model *m, float *x, float *tmp, const float *w, int64_t rows) {
    ff_norm_rms_f32(tmp, x, w, m->eps, rows, m->head_dim);
    memcpy(x, tmp, (size_t)(rows * m->head_dim) * sizeof(float));
}

// cos/sin tables (t, rope_dim/2) of the new positions for the inverse frequencies inv, scaled for longrope
static void rope_table(const ff_model *m, ff_session *s, const float *inv, int64_t t) {
    int64_t rh = m->rope_dim / 2;
    for (int64_t i = 0; i < t; i++) {
        int64_t p = s->n_past + i;
        ff_rope_table_f32(s->cos + i * rh, s->sin + i * rh, &p, inv, 1, rh);
    }
    if (m->rope_attn_factor != 1.0f)
        for (int64_t j = 0; j < t * rh; j++) {
            s->cos[j] *= m->rope_attn_factor;
            s->sin[j] *= m->rope_attn_factor;
        }
}

// x (t, d) += h, or += rms_norm(h) by w (gemma's post-norms; s->att is free scratch here)
static void add_residual(const ff_model *m, ff_session *s, const float *w, int64_t t) {
    const float *h = s->h;
    if (w) {
        ff_norm_rms_f32(s->att, s->h, w, m->eps, t, m->d);
        h = s->att;
    }
    for (int64_t j = 0; j < t * m->d; j++) s->x[j] += h[j];
}

// y (n,) = act(y) in place: silu or gelu-tanh
static void activate(const ff_model *m, float *y, int64_t n) {
    if (m->act == FF_ACT_GELU_TANH)
        ff_gelu_tanh_f32(y, y, n);
    else
        ff_silu_f32(y, y, n);
}

// rotate every head of q (t, nh, hd) and k (t, nkv, hd) by its position's angles
static void rope_qk(const ff_model *m, ff_session *s, int64_t t) {
    int64_t half = m->rope_dim / 2;
    int interleaved = m->rope == FF_ROPE_INTERLEAVED;
    const ff_kernels *kern = ff_kern;
    for (int64_t i = 0; i < t; i++) {
        const float *c = s->cos + i * half, *sn = s->sin + i * half;
        for (int64_t h = 0; h < m->n_heads; h++)
            kern->rope_f32(s->q + (i * m->n_heads + h) * m->head_dim, c, sn, m->rope_dim, interleaved);
        for (int64_t h = 0; h < m->n_kv_heads; h++)
            kern->rope_f32(s->k + (i * m->n_kv_heads + h) * m->head_dim, c, sn, m->rope_dim, interleaved);
    }
}

// row `row` of a layer's k or v cache (nkv * cap rows) = x (hd,) in the cache's type
static void cache_store(const ff_model *m, const ff_session *s, uint8_t *cache, int64_t row, const float *x) {
    int64_t hd = m->head_dim, rb = ff_qtype_row_bytes(s->kv_type, hd);
    if (s->kv_type == FF_QT_F16)
        ff_kern->fp32_to_fp16_row((uint16_t *)(void *)(cache + row * rb), x, hd);
    else if (s->kv_type == FF_QT_Q8_0)
        ff_kern->quantize_row[FF_QT_Q8_0](cache + row * rb, x, hd);
    else
        memcpy(cache + row * rb, x, (size_t)hd * sizeof(float));
}

// attention of q (t, nh, hd) over the layer's cache positions [0, n_past + t) -> att (t, nh, hd)
static int attend(const ff_model *m, ff_session *s, const ff_layer *L, const uint8_t *kc, const uint8_t *vc,
                  int64_t t) {
    int64_t nh = m->n_heads, nkv = m->n_kv_heads, hd = m->head_dim;
    int64_t tk = s->n_past + t, lo = 0;
    // a sliding window keeps the last `window` keys of the newest query; the caller feeds one token per call
    // once the window is full, so this bound is exact for every query
    if (L->window > 0 && tk > L->window) lo = tk - L->window;
    // (t, nh, hd) -> (nh, t, hd)
    for (int64_t i = 0; i < t; i++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(s->qt + (h * t + i) * hd, s->q + (i * nh + h) * hd, (size_t)hd * sizeof(float));
    float scale = m->attn_scale > 0.0f ? m->attn_scale : 1.0f / sqrtf((float)hd);
    int64_t rb = ff_qtype_row_bytes(s->kv_type, hd);
    int rc = ff_attention_cache(s->ot, s->qt, kc + lo * rb, vc + lo * rb, s->kv_type, nh, nkv, t, tk - lo, s->cap, hd,
                                scale, m->attn_softcap, 1);
    if (rc != FF_OK) return rc;
    // (nh, t, hd) -> (t, nh, hd)
    for (int64_t i = 0; i < t; i++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(s->att + (i * nh + h) * hd, s->ot + (h * t + i) * hd, (size_t)hd * sizeof(float));
    return FF_OK;
}

int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits, int all_logits) {
    int64_t d = m->d, nkv = m->n_kv_heads, hd = m->head_dim, f = m->d_ff;
    int64_t kvd = nkv * hd, layer_bytes = nkv * s->cap * ff_qtype_row_bytes(s->kv_type, hd);
    int rc = FF_OK;

    // token embeddings (+ learned positions); a block-format table gives one dequantized row per token
    int64_t emb_rb = m->tok_emb ? 0 : ff_qtype_row_bytes(m->tok_emb_qtype, d);
    if (!m->tok_emb && (emb_rb < 0 || !m->tok_emb_q)) return FF_EINVAL;
    for (int64_t i = 0; i < t; i++) {
        float *x = s->x + i * d;
        if (m->tok_emb)
            memcpy(x, m->tok_emb + (int64_t)ids[i] * d, (size_t)d * sizeof(float));
        else if ((rc = ff_dequantize(x, (const uint8_t *)m->tok_emb_q + ids[i] * emb_rb, m->tok_emb_qtype, 1, d)))
            return rc;
        if (m->pos_emb)
            for (int64_t j = 0; j < d; j++) x[j] += m->pos_emb[(s->n_past + i) * d + j];
    }
    if (m->emb_scale != 0.0f)
        for (int64_t j = 0; j < t * d; j++) s->x[j] *= m->emb_scale;
    const float *model_inv = s->rope_long && m->rope_inv_freq_long ? m->rope_inv_freq_long : m->rope_inv_freq;
    const float *table_inv = NULL;  // the set the cos/sin tables hold

    for (int64_t l = 0; l < m->n_layers; l++) {
        const ff_layer *L = &m->layers[l];
        uint8_t *kc = (uint8_t *)s->k_cache + l * layer_bytes, *vc = (uint8_t *)s->v_cache + l * layer_bytes;
        // rotary angles of the new positions for this layer's set (most models have one, computed once)
        const float *inv = L->rope_inv_freq ? L->rope_inv_freq : model_inv;
        if (m->rope != FF_ROPE_NONE && inv != table_inv) {
            rope_table(m, s, inv, t);
            table_inv = inv;
        }

        // attention block: h = norm(x); q, k, v projections; rope; append k, v to the cache
        norm(m, s->h, s->x, L->attn_norm_w, L->attn_norm_b, t);
        float *qkv[3] = {s->q, s->k, s->v};
        const ff_tensor *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        const float *bqkv[3] = {L->bq, L->bk, L->bv};
        if ((rc = linear_n(qkv, s->h, wqkv, bqkv, 3, t))) return rc;
        if (L->q_norm_w) norm_heads(m, s->q, s->qt, L->q_norm_w, t * m->n_heads);
        if (L->k_norm_w) norm_heads(m, s->k, s->qt, L->k_norm_w, t * nkv);
        if (m->rope != FF_ROPE_NONE) rope_qk(m, s, t);
        for (int64_t i = 0; i < t; i++)
            for (int64_t g = 0; g < nkv; g++) {
                cache_store(m, s, kc, g * s->cap + s->n_past + i, s->k + i * kvd + g * hd);
                cache_store(m, s, vc, g * s->cap + s->n_past + i, s->v + i * kvd + g * hd);
            }
        if ((rc = attend(m, s, L, kc, vc, t))) return rc;
        // x += post_norm(att @ wo^T)
        if ((rc = linear(s->h, s->att, &L->wo, L->bo, t))) return rc;
        add_residual(m, s, L->attn_post_norm_w, t);

        // mlp block: h = norm(x); act(up) or act(gate) * up; x += post_norm(down projection)
        norm(m, s->h, s->x, L->ffn_norm_w, L->ffn_norm_b, t);
        if (!L->w_gate.data) {
            if ((rc = linear(s->f1, s->h, &L->w_up, L->b_up, t))) return rc;
            activate(m, s->f1, t * f);
        } else {
            float *ug[2] = {s->f1, s->f2};
            const ff_tensor *wug[2] = {&L->w_up, &L->w_gate};
            const float *bug[2] = {L->b_up, NULL};
            if ((rc = linear_n(ug, s->h, wug, bug, 2, t))) return rc;
            activate(m, s->f2, t * f);
            for (int64_t j = 0; j < t * f; j++) s->f1[j] *= s->f2[j];
        }
        if ((rc = linear(s->h, s->f1, &L->w_down, L->b_down, t))) return rc;
        add_residual(m, s, L->ffn_post_norm_w, t);
    }

    // final norm and the head, for every row or only the last; soft-capped logits (gemma 2)
    int64_t first = all_logits ? 0 : t - 1;
    norm(m, s->h, s->x + first * d, m->norm_w, m->norm_b, t - first);
    rc = linear(logits, s->h, &m->lm_head, NULL, t - first);
    if (rc == FF_OK && m->final_softcap > 0.0f)
        for (int64_t j = 0; j < (t - first) * m->vocab; j++)
            logits[j] = m->final_softcap * tanhf(logits[j] / m->final_softcap);
    s->n_past += t;
    return rc;
}
