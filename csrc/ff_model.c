// the forward pass of a decoder-only transformer (llama / mistral / qwen2 / gpt2 blocks), one call per step:
// embed -> n_layers x (norm, attention with kv cache, residual, norm, mlp, residual) -> final norm -> logits
#include "ff_quant.h"

#include <math.h>
#include <string.h>

// the weights of the matrix call that comes after another (np of them sharing its input), or none (np 0): a
// worker done with its share of a call reads the start of its share of the next while it waits
typedef struct wnext {
    const ff_tensor *const *w;
    int np;
} wnext;

static const wnext no_next = {NULL, 0};

// parts for the run of quantized weights of one type that w[0..np) starts with (y, bias NULL: no outputs); returns
// its length, 0 if w[0] is f32. Every part but the run's last starts the next at a whole split unit
static int q_run(ff_qpart parts[3], float *const *y, const ff_tensor *const *w, const float *const *bias, int np) {
    int n = 0;
    if (np < 1 || w[0]->dtype == FF_DT_F32) return 0;
    int type = w[0]->dtype & ~FF_QT_R16;
    for (; n < np && n < 3 && w[n]->dtype != FF_DT_F32 && (w[n]->dtype & ~FF_QT_R16) == type &&
           (n == 0 || w[n - 1]->rows % FF_QP_NR == 0);
         n++)
        parts[n] = (ff_qpart){y ? y[n] : NULL, w[n]->data, bias ? bias[n] : NULL, w[n]->rows, w[n]->dtype};
    return n;
}

// y_p = x @ w_p^T + bias_p for np <= 3 weights of one input on kernel path `path`: each run of consecutive
// quantized ones of one type as one job (x is quantized once for it; a llama.cpp Q4_K_M file's q and k in Q4_K
// and v in Q6_K make two jobs, not three), an f32 one as a matmul
static int linear_n(float *const *y, const float *x, const ff_tensor *const *w, const float *const *bias, int np,
                    int64_t m, int path, wnext next, int64_t stream) {
    for (int p0 = 0, p1; p0 < np; p0 = p1) {
        int rc;
        ff_qpart parts[3], nparts[3];
        if (w[p0]->dtype == FF_DT_F32) {
            p1 = p0 + 1;
            rc = ff_linear_f32_path(y[p0], x, (const float *)w[p0]->data, bias[p0], m, w[p0]->cols, w[p0]->rows, path);
        } else {
            p1 = p0 + q_run(parts, y + p0, w + p0, bias + p0, np - p0);
            wnext after = p1 < np ? (wnext){w + p1, np - p1} : next;
            int nn = after.np ? q_run(nparts, NULL, after.w, NULL, after.np) : 0;
            rc = ff_linear_q_parts_next(parts, p1 - p0, x, m, w[p0]->cols, path, nn ? nparts : NULL, nn,
                                        nn ? after.w[0]->cols : 0, stream);
        }
        if (rc) return rc;
    }
    return FF_OK;
}

// rows of a batched step that share a kernel path, in row order
typedef struct run {
    int64_t r0, n;
    int path;
} run;

// y_p = x @ w_p^T + bias_p over every run (y_p, x with w_p->rows and w_p->cols floats per row); the last run
// names the next call
static int linear_n_runs(float *const *y, const float *x, const ff_tensor *const *w, const float *const *bias, int np,
                         const run *runs, int nr, wnext next, int64_t stream) {
    for (int r = 0; r < nr; r++) {
        float *yr[3];
        for (int p = 0; p < np; p++) yr[p] = y[p] + runs[r].r0 * w[p]->rows;
        int rc = linear_n(yr, x + runs[r].r0 * w[0]->cols, w, bias, np, runs[r].n, runs[r].path,
                          r + 1 == nr ? next : no_next, stream);
        if (rc) return rc;
    }
    return FF_OK;
}

static int linear_runs(float *y, const float *x, const ff_tensor *w, const float *bias, const run *runs, int nr,
                       wnext next, int64_t stream) {
    return linear_n_runs(&y, x, &w, &bias, 1, runs, nr, next, stream);
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

// cos/sin rows [r0, r0 + t) of b's tables: positions n_past.. of a sequence, for the inverse frequencies inv,
// scaled for longrope
static void rope_table(const ff_model *m, ff_session *b, int64_t r0, int64_t n_past, const float *inv, int64_t t) {
    int64_t rh = m->rope_dim / 2;
    for (int64_t i = 0; i < t; i++) {
        int64_t p = n_past + i;
        ff_rope_table_f32(b->cos + (r0 + i) * rh, b->sin + (r0 + i) * rh, &p, inv, 1, rh);
    }
    if (m->rope_attn_factor != 1.0f)
        for (int64_t j = r0 * rh; j < (r0 + t) * rh; j++) {
            b->cos[j] *= m->rope_attn_factor;
            b->sin[j] *= m->rope_attn_factor;
        }
}

// x (t, d) += h, or += rms_norm(h) by w (gemma's post-norms; b->att is free scratch here)
static void add_residual(const ff_model *m, ff_session *b, const float *w, int64_t t) {
    const float *h = b->h;
    if (w) {
        ff_norm_rms_f32(b->att, b->h, w, m->eps, t, m->d);
        h = b->att;
    }
    for (int64_t j = 0; j < t * m->d; j++) b->x[j] += h[j];
}

// y (t, d_ff) = act(y) in place: silu, gelu-tanh or gelu-erf. Rows of a d_ff that is not a multiple of 16 go one at a
// time, so no row ever meets a kernel's scalar tail where another batch would run its vector loop
static void activate(const ff_model *m, float *y, int64_t t) {
    int64_t f = m->d_ff, n = f % 16 ? f : t * f;
    for (int64_t j = 0; j < t * f; j += n) {
        if (m->act == FF_ACT_GELU_TANH)
            ff_gelu_tanh_f32(y + j, y + j, n);
        else if (m->act == FF_ACT_GELU_ERF)
            ff_gelu_erf_f32(y + j, y + j, n);
        else
            ff_silu_f32(y + j, y + j, n);
    }
}

// rotate every head of q (t, nh, hd) and k (t, nkv, hd) by its row's angles
static void rope_qk(const ff_model *m, ff_session *b, int64_t t) {
    int64_t half = m->rope_dim / 2;
    int interleaved = m->rope == FF_ROPE_INTERLEAVED;
    const ff_kernels *kern = ff_kern;
    for (int64_t i = 0; i < t; i++) {
        const float *c = b->cos + i * half, *sn = b->sin + i * half;
        for (int64_t h = 0; h < m->n_heads; h++)
            kern->rope_f32(b->q + (i * m->n_heads + h) * m->head_dim, c, sn, m->rope_dim, interleaved);
        for (int64_t h = 0; h < m->n_kv_heads; h++)
            kern->rope_f32(b->k + (i * m->n_kv_heads + h) * m->head_dim, c, sn, m->rope_dim, interleaved);
    }
}

// row `row` of a layer's k or v cache of s (nkv * cap rows) = x (hd,) in the cache's type
static void cache_store(const ff_model *m, const ff_session *s, uint8_t *cache, int64_t row, const float *x) {
    int64_t hd = m->head_dim, rb = ff_qtype_row_bytes(s->kv_type, hd);
    if (s->kv_type == FF_QT_F16)
        ff_kern->fp32_to_fp16_row((uint16_t *)(void *)(cache + row * rb), x, hd);
    else if (s->kv_type == FF_QT_Q8_0)
        ff_kern->quantize_row[FF_QT_Q8_0](cache + row * rb, x, hd);
    else
        memcpy(cache + row * rb, x, (size_t)hd * sizeof(float));
}

// attention of rows [r0, r0 + t) of q (rows, nh, hd), one sequence's, over its cache positions [0, n_past + t)
// -> the same rows of att; b->qt and b->ot are scratch
static int attend(const ff_model *m, ff_session *b, const ff_session *s, const ff_layer *L, const uint8_t *kc,
                  const uint8_t *vc, int64_t r0, int64_t t) {
    int64_t nh = m->n_heads, nkv = m->n_kv_heads, hd = m->head_dim;
    int64_t tk = s->n_past + t, lo = 0;
    // a sliding window keeps the last `window` keys of the newest query; the caller feeds one token per call
    // once the window is full, so this bound is exact for every query
    if (L->window > 0 && tk > L->window) lo = tk - L->window;
    const float *q = b->q + r0 * nh * hd;
    // (t, nh, hd) -> (nh, t, hd)
    for (int64_t i = 0; i < t; i++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(b->qt + (h * t + i) * hd, q + (i * nh + h) * hd, (size_t)hd * sizeof(float));
    float scale = m->attn_scale > 0.0f ? m->attn_scale : 1.0f / sqrtf((float)hd);
    int64_t rb = ff_qtype_row_bytes(s->kv_type, hd);
    int rc = ff_attention_cache(b->ot, b->qt, kc + lo * rb, vc + lo * rb, s->kv_type, nh, nkv, t, tk - lo, s->cap, hd,
                                scale, m->attn_softcap, 1);
    if (rc != FF_OK) return rc;
    // (nh, t, hd) -> (t, nh, hd)
    float *att = b->att + r0 * nh * hd;
    for (int64_t i = 0; i < t; i++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(att + (i * nh + h) * hd, b->ot + (h * t + i) * hd, (size_t)hd * sizeof(float));
    return FF_OK;
}

// the runs of rows that share a kernel path: every row of the step (head = 0), or the rows whose logits are
// wanted (head = 1); runs holds at most 2 * nseq
static int path_runs(const ff_seq *seqs, int nseq, int head, run *runs) {
    int nr = 0;
    int64_t r = 0;
    for (int i = 0; i < nseq; i++) {
        int64_t n = head && !seqs[i].all_logits ? 1 : seqs[i].t;
        if (nr && runs[nr - 1].path == seqs[i].path)
            runs[nr - 1].n += n;
        else
            runs[nr++] = (run){r, n, seqs[i].path};
        r += n;
    }
    return nr;
}

// the weights of layer l's first matrix call (q, k, v), or the head's after the last layer
static wnext layer_first(const ff_model *m, int64_t l, const ff_tensor *w[3]) {
    if (l == m->n_layers) {
        w[0] = &m->lm_head;
        return (wnext){w, 1};
    }
    const ff_layer *L = &m->layers[l];
    w[0] = &L->wq, w[1] = &L->wk, w[2] = &L->wv;
    return (wnext){w, 3};
}

static int forward_batch(const ff_model *m, ff_session *b, const ff_seq *seqs, int nseq, const int32_t *ids,
                         float *logits) {
    int64_t d = m->d, nkv = m->n_kv_heads, hd = m->head_dim, f = m->d_ff, kvd = nkv * hd, t = 0;
    if (nseq < 1 || nseq > FF_BATCH_MAX) return FF_EINVAL;
    for (int i = 0; i < nseq; i++) {
        if (seqs[i].t < 1 || seqs[i].s->n_past + seqs[i].t > seqs[i].s->cap) return FF_EINVAL;
        t += seqs[i].t;
    }
    if (t > b->max_t) return FF_EINVAL;
    run runs[2 * FF_BATCH_MAX];
    int nruns = path_runs(seqs, nseq, 0, runs);
    int rc = FF_OK;

    // token embeddings (+ learned positions); a block-format table gives one dequantized row per token
    int64_t emb_rb = m->tok_emb ? 0 : ff_qtype_row_bytes(m->tok_emb_qtype, d);
    if (!m->tok_emb && (emb_rb < 0 || !m->tok_emb_q)) return FF_EINVAL;
    for (int64_t i = 0; i < t; i++) {
        float *x = b->x + i * d;
        if (m->tok_emb)
            memcpy(x, m->tok_emb + (int64_t)ids[i] * d, (size_t)d * sizeof(float));
        else if ((rc = ff_dequantize(x, (const uint8_t *)m->tok_emb_q + ids[i] * emb_rb, m->tok_emb_qtype, 1, d)))
            return rc;
    }
    if (m->pos_emb)
        for (int i = 0, r = 0; i < nseq; r += (int)seqs[i].t, i++)
            for (int64_t j = 0; j < seqs[i].t; j++)
                for (int64_t c = 0; c < d; c++) b->x[(r + j) * d + c] += m->pos_emb[(seqs[i].s->n_past + j) * d + c];
    if (m->emb_scale != 0.0f)
        for (int64_t j = 0; j < t * d; j++) b->x[j] *= m->emb_scale;
    const float *table_inv[FF_BATCH_MAX] = {0};  // the set each sequence's cos/sin rows hold

    for (int64_t l = 0; l < m->n_layers; l++) {
        const ff_layer *L = &m->layers[l];
        // rotary angles of the new positions for this layer's set (most models have one, computed once)
        for (int i = 0, r = 0; m->rope != FF_ROPE_NONE && i < nseq; r += (int)seqs[i].t, i++) {
            const ff_session *s = seqs[i].s;
            const float *inv = L->rope_inv_freq                        ? L->rope_inv_freq
                               : s->rope_long && m->rope_inv_freq_long ? m->rope_inv_freq_long
                                                                       : m->rope_inv_freq;
            if (inv != table_inv[i]) rope_table(m, b, r, s->n_past, inv, seqs[i].t);
            table_inv[i] = inv;
        }

        // attention block: h = norm(x); q, k, v projections; rope; append k, v to each sequence's cache
        norm(m, b->h, b->x, L->attn_norm_w, L->attn_norm_b, t);
        float *qkv[3] = {b->q, b->k, b->v};
        const ff_tensor *wqkv[3];
        layer_first(m, l, wqkv);
        const float *bqkv[3] = {L->bq, L->bk, L->bv};
        const ff_tensor *wo[1] = {&L->wo}, *wdown[1] = {&L->w_down}, *wup_gate[2] = {&L->w_up, &L->w_gate}, *wnx[3];
        wnext ffn_in = {wup_gate, L->w_gate.data ? 2 : 1}, after = layer_first(m, l + 1, wnx);
        if ((rc = linear_n_runs(qkv, b->h, wqkv, bqkv, 3, runs, nruns, (wnext){wo, 1}, m->stream_bytes))) return rc;
        if (L->q_norm_w) norm_heads(m, b->q, b->qt, L->q_norm_w, t * m->n_heads);
        if (L->k_norm_w) norm_heads(m, b->k, b->qt, L->k_norm_w, t * nkv);
        if (m->rope != FF_ROPE_NONE) rope_qk(m, b, t);
        for (int i = 0, r = 0; i < nseq; r += (int)seqs[i].t, i++) {
            const ff_session *s = seqs[i].s;
            int64_t layer_bytes = nkv * s->cap * ff_qtype_row_bytes(s->kv_type, hd);
            uint8_t *kc = (uint8_t *)s->k_cache + l * layer_bytes, *vc = (uint8_t *)s->v_cache + l * layer_bytes;
            for (int64_t j = 0; j < seqs[i].t; j++)
                for (int64_t g = 0; g < nkv; g++) {
                    cache_store(m, s, kc, g * s->cap + s->n_past + j, b->k + (r + j) * kvd + g * hd);
                    cache_store(m, s, vc, g * s->cap + s->n_past + j, b->v + (r + j) * kvd + g * hd);
                }
            if ((rc = attend(m, b, s, L, kc, vc, r, seqs[i].t))) return rc;
        }
        // x += post_norm(att @ wo^T)
        if ((rc = linear_runs(b->h, b->att, &L->wo, L->bo, runs, nruns, ffn_in, m->stream_bytes))) return rc;
        add_residual(m, b, L->attn_post_norm_w, t);

        // mlp block: h = norm(x); act(up) or act(gate) * up; x += post_norm(down projection)
        norm(m, b->h, b->x, L->ffn_norm_w, L->ffn_norm_b, t);
        if (!L->w_gate.data) {
            if ((rc = linear_runs(b->f1, b->h, &L->w_up, L->b_up, runs, nruns, (wnext){wdown, 1}, m->stream_bytes)))
                return rc;
            activate(m, b->f1, t);
        } else {
            float *ug[2] = {b->f1, b->f2};
            const float *bug[2] = {L->b_up, NULL};
            if ((rc = linear_n_runs(ug, b->h, wup_gate, bug, 2, runs, nruns, (wnext){wdown, 1}, m->stream_bytes)))
                return rc;
            activate(m, b->f2, t);
            for (int64_t j = 0; j < t * f; j++) b->f1[j] *= b->f2[j];
        }
        if ((rc = linear_runs(b->h, b->f1, &L->w_down, L->b_down, runs, nruns, after, m->stream_bytes))) return rc;
        add_residual(m, b, L->ffn_post_norm_w, t);
    }

    // final norm and the head, for the rows whose logits are wanted; soft-capped logits (gemma 2)
    int64_t nh_rows = 0;
    for (int i = 0, r = 0; i < nseq; r += (int)seqs[i].t, i++) {
        int64_t first = seqs[i].all_logits ? 0 : seqs[i].t - 1;
        norm(m, b->h + nh_rows * d, b->x + (r + first) * d, m->norm_w, m->norm_b, seqs[i].t - first);
        nh_rows += seqs[i].t - first;
    }
    nruns = path_runs(seqs, nseq, 1, runs);
    rc = linear_runs(logits, b->h, &m->lm_head, NULL, runs, nruns, no_next, m->stream_bytes);
    if (rc == FF_OK && m->final_softcap > 0.0f)
        for (int64_t j = 0; j < nh_rows * m->vocab; j++)
            logits[j] = m->final_softcap * tanhf(logits[j] / m->final_softcap);
    if (rc == FF_OK)
        for (int i = 0; i < nseq; i++) seqs[i].s->n_past += seqs[i].t;
    return rc;
}

int ff_model_forward_batch(const ff_model *m, ff_session *b, const ff_seq *seqs, int nseq, const int32_t *ids,
                           float *logits) {
    int rc = forward_batch(m, b, seqs, nseq, ids, logits);
    // no worker may go on reading this model's weights once the step returns: each read-ahead normally ends with
    // the job it read for, but a step that stopped early, a named call that ran on this thread alone (the pool
    // busy with another caller, fewer threads set meanwhile) or with fewer rows may leave one going
    ff_pool_settle();
    return rc;
}

int ff_model_forward_path(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                          int all_logits, int path) {
    ff_seq seq = {s, t, path, all_logits};
    return ff_model_forward_batch(m, s, &seq, 1, ids, logits);
}

int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits, int all_logits) {
    return ff_model_forward_path(m, s, ids, t, logits, all_logits, FF_LIN_AUTO);
}
