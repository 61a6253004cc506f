// the forward pass of a bert-style encoder over a batch of sequences laid end to end without padding:
// embed (token + position + token type 0) -> layer norm -> n_layers x (attention within each sequence,
// x = norm(x + o), gelu mlp, x = norm(x + mlp)). The rows of every sequence share each matmul; only the
// attention runs sequence by sequence, so no row is ever spent on padding.
#include "ff_internal.h"

#include <math.h>
#include <string.h>

// y (m, w.rows) = x (m, w.cols) @ w^T + bias, dispatching on the weight's storage type
static int linear(float *y, const float *x, const ff_tensor *w, const float *bias, int64_t m) {
    if (w->dtype == FF_DT_F32) return ff_linear_f32(y, x, (const float *)w->data, bias, m, w->cols, w->rows);
    return ff_linear_q(y, x, w->data, w->dtype, bias, m, w->cols, w->rows);
}

// scratch buffers, in the order they are carved: h (rows, d), q (rows, qd), k, v (rows, kvd), att (rows, qd),
// f (rows, d_ff), and one sequence's heads-first copies qt, ot (max_len, qd), kt, vt (max_len, kvd)
#define ENC_BUFS 10
static void enc_floats(const ff_model *m, int64_t rows, int64_t max_len, int64_t n[ENC_BUFS]) {
    int64_t qd = m->n_heads * m->head_dim, kvd = m->n_kv_heads * m->head_dim;
    int64_t s[ENC_BUFS] = {rows * m->d,    rows * qd,    rows * kvd,   rows * kvd,    rows * qd,
                           rows * m->d_ff, max_len * qd, max_len * qd, max_len * kvd, max_len * kvd};
    memcpy(n, s, sizeof(s));
}

static int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

int64_t ff_encoder_bytes(const ff_model *m, int64_t rows, int64_t max_len) {
    int64_t n[ENC_BUFS], total = 64;  // room to align the start
    enc_floats(m, rows, max_len, n);
    for (int i = 0; i < ENC_BUFS; i++) total += round64(n[i] * (int64_t)sizeof(float));
    return total;
}

// x (rows, d) of a sequence's heads (rows, nh, hd) -> (nh, rows, hd), and back with `back`
static void heads_swap(float *dst, const float *src, int64_t rows, int64_t nh, int64_t hd, int back) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t h = 0; h < nh; h++) {
            float *a = dst + (back ? (i * nh + h) : (h * rows + i)) * hd;
            const float *b = src + (back ? (h * rows + i) : (i * nh + h)) * hd;
            memcpy(a, b, (size_t)hd * sizeof(float));
        }
}

int ff_encoder_forward(const ff_model *m, float *out, const int32_t *ids, const int64_t *lens, int64_t n_seq,
                       void *scratch) {
    int64_t d = m->d, nh = m->n_heads, nkv = m->n_kv_heads, hd = m->head_dim;
    int64_t qd = nh * hd, kvd = nkv * hd, rows = 0, max_len = 0;
    int rc = FF_OK;
    for (int64_t s = 0; s < n_seq; s++) {
        if (lens[s] < 1 || lens[s] > m->max_ctx) return FF_EINVAL;
        rows += lens[s];
        max_len = FF_MAX(max_len, lens[s]);
    }
    if (rows == 0) return FF_OK;
    if (m->norm != FF_NORM_LAYER || m->act != FF_ACT_GELU_ERF) return FF_EINVAL;

    // carve the scratch
    int64_t n[ENC_BUFS];
    float *buf[ENC_BUFS];
    enc_floats(m, rows, max_len, n);
    uint8_t *p = (uint8_t *)scratch + (-(uintptr_t)scratch & 63);
    for (int i = 0; i < ENC_BUFS; i++) {
        buf[i] = (float *)(void *)p;
        p += round64(n[i] * (int64_t)sizeof(float));
    }
    float *x = out, *h = buf[0], *q = buf[1], *k = buf[2], *v = buf[3], *att = buf[4], *f = buf[5];
    float *qt = buf[6], *ot = buf[7], *kt = buf[8], *vt = buf[9];

    // h = token embedding + position embedding + token type 0; x = norm(h)
    int64_t emb_rb = m->tok_emb ? 0 : ff_qtype_row_bytes(m->tok_emb_qtype, d);
    if (!m->tok_emb && (emb_rb < 0 || !m->tok_emb_q)) return FF_EINVAL;
    for (int64_t s = 0, r = 0; s < n_seq; s++)
        for (int64_t i = 0; i < lens[s]; i++, r++) {
            float *e = h + r * d;
            if (m->tok_emb)
                memcpy(e, m->tok_emb + (int64_t)ids[r] * d, (size_t)d * sizeof(float));
            else if ((rc = ff_dequantize(e, (const uint8_t *)m->tok_emb_q + ids[r] * emb_rb, m->tok_emb_qtype, 1, d)))
                return rc;
            if (m->pos_emb)
                for (int64_t j = 0; j < d; j++) e[j] += m->pos_emb[i * d + j];
            if (m->type_emb)
                for (int64_t j = 0; j < d; j++) e[j] += m->type_emb[j];
        }
    ff_norm_layer_f32(x, h, m->norm_w, m->norm_b, m->eps, rows, d);

    float scale = m->attn_scale > 0.0f ? m->attn_scale : 1.0f / sqrtf((float)hd);
    for (int64_t l = 0; l < m->n_layers; l++) {
        const ff_layer *L = &m->layers[l];
        // q, k, v of every row at once
        if ((rc = linear(q, x, &L->wq, L->bq, rows)) || (rc = linear(k, x, &L->wk, L->bk, rows)) ||
            (rc = linear(v, x, &L->wv, L->bv, rows)))
            return rc;
        // each sequence attends to its own rows only (no mask, no padding)
        for (int64_t s = 0, r = 0; s < n_seq; r += lens[s], s++) {
            int64_t t = lens[s];
            heads_swap(qt, q + r * qd, t, nh, hd, 0);
            heads_swap(kt, k + r * kvd, t, nkv, hd, 0);
            heads_swap(vt, v + r * kvd, t, nkv, hd, 0);
            if ((rc = ff_attention_f32(ot, qt, kt, vt, nh, nkv, t, t, hd, scale, 0))) return rc;
            heads_swap(att + r * qd, ot, t, nh, hd, 1);
        }
        // x = norm(x + att @ wo^T + bo)
        if ((rc = linear(h, att, &L->wo, L->bo, rows))) return rc;
        for (int64_t j = 0; j < rows * d; j++) h[j] += x[j];
        ff_norm_layer_f32(x, h, L->attn_norm_w, L->attn_norm_b, m->eps, rows, d);
        // x = norm(x + gelu(x @ w_up^T + b_up) @ w_down^T + b_down)
        if ((rc = linear(f, x, &L->w_up, L->b_up, rows))) return rc;
        ff_gelu_erf_f32(f, f, rows * m->d_ff);  // split over the thread pool by ff_act.c
        if ((rc = linear(h, f, &L->w_down, L->b_down, rows))) return rc;
        for (int64_t j = 0; j < rows * d; j++) h[j] += x[j];
        ff_norm_layer_f32(x, h, L->ffn_norm_w, L->ffn_norm_b, m->eps, rows, d);
    }
    return FF_OK;
}
