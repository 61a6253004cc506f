// the quantized linear y = x @ W^T + bias for W in a ggml block format (or its r16 layout): the activation rows
// are quantized to int8 (a few rows by every thread for itself, more once, split over the threads), then the
// threads take shares of W's rows and run the int8 dot kernels over them
#include "ff_quant.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    const float *x;
    const ff_qpart *parts;  // the Ws that share x, their rows concatenated for the split
    int np;
    int64_t m, k, ntot, stride, jt;
    int qtype;
    const ff_qkernels *kern;   // the int8 dot kernels, read once per call
    ff_qgemm_panel_fn panels;  // W packed into panels (several activation rows), or NULL
    void *panel0;              // the calling thread's panel, next to the activations in its scratch
    int status;
    int own_act;  // each thread quantizes x into its own scratch (few rows): no activation lines cross cores
    size_t act_bytes;
    struct qtail *tails;  // the ends of the threads' shares, which finished threads take from (or NULL)
    int tails_nth;        // the thread count they were cut for
    int64_t tail_step;    // the rows an owner runs of its tail between two looks for an asker
    ff_qact act;
    int8_t *q;
    float *d;
    int16_t *s;
    int32_t *lanes;
} qlin_ctx;

// the offset c of a type's activation lane sums (-c * sum(a) per 32-block, where its kernels start each block's
// int dot; q6_k's per 16-sub-block), 0 if its kernels take none: q8_0 values + 128 are unsigned (xor of the sign
// bit), q4_0 nibbles - 8, q6_k values - 32
static int32_t lane_offset(int qtype) {
    switch (qtype) {
    case FF_QT_Q8_0: return 128;
    case FF_QT_Q4_0: return 8;
    case FF_QT_Q6_K: return 32;
    default: return 0;
    }
}

// the K types whose kernels sum a super-block in int32: their activations take one scale per 256, not per 32, and
// their r16 kernels up to FF_R16_MR rows
static int sb_int32(int qtype) { return qtype == FF_QT_Q4_K || qtype == FF_QT_Q5_K || qtype == FF_QT_Q6_K; }

// activation rows lo..hi-1 of x quantized into c's buffers
static void quant_rows(const qlin_ctx *c, int64_t lo, int64_t hi) {
    int64_t kp = c->act.kp;
    int32_t off = lane_offset(c->qtype);
    for (int64_t i = lo; i < hi; i++) {
        int8_t *q = c->q + i * kp;
        float *d = c->d + i * (kp / 32);
        int16_t *s = c->s + i * (kp / 16);
        ff_kern->quant_act_q8(q, d, s, c->x + i * c->k, c->k, sb_int32(c->qtype) ? 256 : 32);
        // zero padding up to kp
        memset(q + c->k, 0, (size_t)(kp - c->k));
        memset(d + c->k / 32, 0, (size_t)(kp - c->k) / 32 * sizeof(float));
        memset(s + c->k / 16, 0, (size_t)(kp - c->k) / 16 * sizeof(int16_t));
        if (c->lanes) {
            int32_t *l = c->lanes + i * (kp / 4);
            memset(l, 0, (size_t)kp);
            if (c->qtype == FF_QT_Q6_K)
                for (int64_t t = 0; t < c->k / 16; t++) l[t] = -off * s[t];
            else if (sb_int32(c->qtype))  // q4_k, q5_k: the sums of q per 32 as int16 (|sum| <= 32 * 127)
                for (int64_t b = 0; b < c->k / 32; b++) ((int16_t *)(void *)l)[b] = (int16_t)(s[2 * b] + s[2 * b + 1]);
            else
                for (int64_t b = 0; b < c->k / 32; b++) l[8 * b] = -off * (s[2 * b] + s[2 * b + 1]);
        }
    }
}

static void qact_task(void *arg, int ith, int nth) {
    qlin_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->m, ith, nth, 1, &lo, &hi);
    quant_rows(c, lo, hi);
}

// c's activation buffers carved from buf: lane sums (if any), scales, sums per 16, int8 values
static void carve_act(qlin_ctx *c, uint8_t *buf, int lanes) {
    int64_t kp = c->act.kp, m = c->m;
    c->lanes = lanes ? (int32_t *)(void *)buf : NULL;
    c->d = (float *)(void *)(buf + (lanes ? (size_t)kp * m : 0));
    c->s = (int16_t *)(void *)(c->d + kp / 32 * m);
    c->q = (int8_t *)(void *)(c->s + kp / 16 * m);
    c->act = (ff_qact){c->q, c->d, c->s, c->lanes, c->k, kp, c->act.ahead};
}

static _Atomic int64_t many_calls;  // the FF_QDOT_MANY-row kernel calls so far (ff_qdot_many_calls)

// rows lo..hi-1 of part P
static void qlin_rows(qlin_ctx *c, const ff_qpart *P, int64_t lo, int64_t hi, int ith) {
    const uint8_t *w = P->w;
    if (P->dtype & FF_QT_R16) {
        // r16 groups; with more activation rows than one call takes, 4 groups at a time stay in cache while
        // the rows sweep them
        ff_qdot_r16_fn r16 = c->kern->qdot_r16[c->qtype];
        int mr = c->qtype == FF_QT_Q8_0 || c->qtype == FF_QT_Q4_0 || sb_int32(c->qtype) ? FF_R16_MR : FF_R16_MR_K;
        int64_t jt = c->m <= mr ? hi - lo : 4 * FF_R16;
        for (int64_t j0 = lo; j0 < hi; j0 += jt) {
            int64_t jn = FF_MIN(jt, hi - j0);
            for (int64_t i0 = 0; i0 < c->m; i0 += mr) {
                ff_qact a = ff_qact_from(&c->act, i0);
                float *y = P->y + i0 * P->n + j0;
                r16(y, P->n, w + j0 * c->stride, jn, &a, (int)FF_MIN(mr, c->m - i0));
                if (P->bias)
                    for (int64_t i = 0; i < FF_MIN(mr, c->m - i0); i++)
                        for (int64_t j = 0; j < jn; j++) y[i * P->n + j] += P->bias[j0 + j];
            }
        }
        return;
    }
    if (c->panels) {
        // panels of 32 rows of W, each packed once and swept by every activation row
        void *panel = ith == 0 ? c->panel0 : ff_scratch(FF_QP_BYTES(c->k / 32));
        if (!panel) {
            c->status = FF_ENOMEM;
            return;
        }
        for (int64_t j0 = lo; j0 < hi; j0 += FF_QP_NR) {
            int nr = (int)FF_MIN(FF_QP_NR, hi - j0);
            c->panels(P->y + j0, P->n, w + j0 * c->stride, c->stride, nr, &c->act, c->m, panel);
            if (P->bias)
                for (int64_t i = 0; i < c->m; i++)
                    for (int64_t j = 0; j < nr; j++) P->y[i * P->n + j0 + j] += P->bias[j0 + j];
        }
        return;
    }
    // a tile of W's rows stays in cache while every group of activation rows sweeps it: FF_QDOT_MANY rows at a time
    // where the type has such a kernel (each W block decoded once for all of them), then up to 4
    ff_qdot_fn dot = c->kern->qdot[c->qtype];
    ff_qdot_many_fn many = c->kern->qdot_many[c->qtype];
    int64_t nmany = 0;
    for (int64_t j0 = lo; j0 < hi; j0 += c->jt) {
        int64_t jn = FF_MIN(c->jt, hi - j0);
        for (int64_t i0 = 0, mr; i0 < c->m; i0 += mr) {
            ff_qact a = ff_qact_from(&c->act, i0);
            float *y = P->y + i0 * P->n + j0;
            mr = many && c->m - i0 >= FF_QDOT_MANY ? FF_QDOT_MANY : FF_MIN(4, c->m - i0);
            if (mr == FF_QDOT_MANY) {
                many(y, P->n, w + j0 * c->stride, c->stride, jn, &a);
                nmany++;
            } else {
                dot(y, P->n, w + j0 * c->stride, c->stride, jn, &a, (int)mr);
            }
            if (P->bias)
                for (int64_t i = 0; i < mr; i++)
                    for (int64_t j = 0; j < jn; j++) y[i * P->n + j] += P->bias[j0 + j];
        }
    }
    if (nmany) atomic_fetch_add(&many_calls, nmany);
}

// the last eighth of a thread's share of W's rows: its owner runs it a step at a time (64 rows, or 32 where a row
// is over 1.5 KB) and, between two, gives the back half of what is left to the first thread that has finished its
// own share and asked for it (the two cores' rates differ from call to call by several percent). Within its tail
// the owner only loads and stores until it answers or closes it: when every thread took 32 rows at a time with a
// locked add, each add drained the owner's loads, and in a 1.1B decode step the tails read 3-16% slower than the
// rest of the shares
enum { TAIL_SHUT = -2, TAIL_DONE = -1, TAIL_OPEN = 0 };  // req: or the asking thread's index + 1
typedef struct qtail {
    _Alignas(64) _Atomic int req;  // TAIL_SHUT until the owner reaches its tail, TAIL_DONE once it is through
    _Atomic int grant;             // 1 once the owner has answered the asker: rows [glo, ghi) are the asker's
    int64_t glo, ghi;
    int64_t start;  // where the tail begins, fixed before the job starts
} qtail;
#define QTAIL_MAX 8

// where the tail of the share [lo, hi) begins: its last eighth, in whole split units
static int64_t tail_start(int64_t lo, int64_t hi) { return hi - (hi - lo) / 8 / FF_QP_NR * FF_QP_NR; }

// one more round of a wait for another thread: a pause, or once it has gone on a while (that thread may have lost
// its core, at more threads than cores) a yield to let it run
static void wait_round(int *rounds) {
    if (*rounds < 4096) {
        ++*rounds;
        ff_cpu_relax();
    } else {
        sched_yield();
    }
}

static _Atomic int64_t tail_grants, tail_rows;

void ff_tail_stats(int64_t *grants, int64_t *rows) {
    *grants = atomic_load(&tail_grants);
    *rows = atomic_load(&tail_rows);
}

int64_t ff_qdot_many_calls(void) { return atomic_load(&many_calls); }

// rows lo..hi-1 of the concatenated parts
static void qlin_span(qlin_ctx *c, int64_t lo, int64_t hi, int ith) {
    int64_t off = 0;
    for (int p = 0; p < c->np; off += c->parts[p].n, p++) {
        int64_t plo = FF_MAX(lo, off) - off, phi = FF_MIN(hi, off + c->parts[p].n) - off;
        if (plo < phi) qlin_rows(c, &c->parts[p], plo, phi, ith);
    }
}

// the owner of tail t is done with it (gave: it answered an asker already): no thread may ask any more, and one that
// asked after the owner's last look gets nothing
static void tail_close(qtail *t, int gave) {
    int open = TAIL_OPEN;
    if (gave || atomic_compare_exchange_strong(&t->req, &open, TAIL_DONE)) return;
    t->glo = t->ghi = 0;
    atomic_store_explicit(&t->grant, 1, memory_order_release);
}

// ask the other threads, each once it has reached its tail, for the back half of what is left of it (a thread that
// is late gets asked when it gets there; at more threads than cores one may have lost its core: let it run)
static void tail_ask(qlin_ctx *c, int ith, int nth) {
    for (int rounds = 0, waiting = 1; waiting;) {
        waiting = 0;
        for (int j = 1; j < nth; j++) {
            qtail *t = &c->tails[(ith + j) % nth];
            int open = atomic_load_explicit(&t->req, memory_order_relaxed);  // look before the locked op
            waiting |= open == TAIL_SHUT;  // not there yet (else done, or asked by another)
            if (open != TAIL_OPEN) continue;
            if (atomic_compare_exchange_strong(&t->req, &open, ith + 1)) {
                for (int w = 0; !atomic_load_explicit(&t->grant, memory_order_acquire);) wait_round(&w);
                if (t->glo < t->ghi) qlin_span(c, t->glo, t->ghi, ith);
            }
        }
        if (waiting) wait_round(&rounds);
    }
}

static void qlin_task(void *arg, int ith, int nth) {
    qlin_ctx *c = arg, own;
    if (c->own_act) {
        // this thread's copy of the quantized rows, in its own scratch (the caller's is c's buffer)
        if (ith > 0) {
            uint8_t *buf = ff_scratch(c->act_bytes);
            if (!buf) {
                c->status = FF_ENOMEM;
                // no thread may wait for this one's tail: done at once (it was shut, so none has asked)
                if (c->tails && nth == c->tails_nth) atomic_store(&c->tails[ith].req, TAIL_DONE);
                return;
            }
            own = *c;
            carve_act(&own, buf, c->lanes != NULL);
            c = &own;
        }
        quant_rows(c, 0, c->m);
    }
    int64_t lo, hi;
    ff_split(c->ntot, ith, nth, FF_QP_NR, &lo, &hi);
    if (!c->tails || nth != c->tails_nth) {
        qlin_span(c, lo, hi, ith);
        return;
    }
    qtail *me = &c->tails[ith];
    qlin_span(c, lo, me->start, ith);
    int64_t pos = me->start, end = hi;
    int gave = 0;
    atomic_store_explicit(&me->req, TAIL_OPEN, memory_order_relaxed);
    while (pos < end) {
        if (!gave && atomic_load_explicit(&me->req, memory_order_relaxed) > 0) {
            // the back half of what is left (a multiple of 32 rows, as every step from the tail's start) goes to the
            // asker; with 32 left, nothing
            int64_t half = (end - pos + 2 * FF_QP_NR - 1) / (2 * FF_QP_NR) * FF_QP_NR;
            me->glo = pos + half, me->ghi = end;
            end = pos + half;
            gave = 1;
            atomic_store_explicit(&me->grant, 1, memory_order_release);
            if (me->glo < me->ghi) {
                atomic_fetch_add_explicit(&tail_grants, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&tail_rows, me->ghi - me->glo, memory_order_relaxed);
            }
        }
        int64_t to = FF_MIN(pos + c->tail_step, end);
        qlin_span(c, pos, to, ith);
        pos = to;
    }
    tail_close(me, gave);
    tail_ask(c, ith, nth);
}

// how many threads a call of ntot rows of k columns for m activation rows takes
static int lin_threads(int64_t ntot, int64_t k, int64_t m) {
    return ntot * k * m < (1 << 15) ? 1 : ff_get_num_threads();
}

// the first rows of thread ith's own share (before its tail) of a call of parts `next` with nth threads, in the
// first part they fall in, at most READ_AHEAD bytes (a Zen 4 core's L2; the gaps between calls are shorter than
// reading it takes, and 0.5 or 2 MB timed the same): what that thread may read while it waits for the call
#define READ_AHEAD (1 << 20)
static ff_span share_start(const ff_qpart *next, int nnext, int64_t k, int ith, int nth) {
    int64_t ntot = 0, stride = ff_qtype_row_bytes(next[0].dtype & ~FF_QT_R16, k), lo, hi;
    for (int p = 0; p < nnext; p++) ntot += next[p].n;
    ff_split(ntot, ith, nth, FF_QP_NR, &lo, &hi);
    hi = tail_start(lo, hi);
    for (int64_t off = 0, p = 0; p < nnext && stride > 0; off += next[p].n, p++)
        if (lo < off + next[p].n) {
            int64_t rows = FF_MIN(hi, off + next[p].n) - lo;
            return (ff_span){(const uint8_t *)next[p].w + (lo - off) * stride, FF_MIN(rows * stride, READ_AHEAD)};
        }
    return (ff_span){NULL, 0};
}

int ff_linear_q_parts_path(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k, int path) {
    return ff_linear_q_parts_next(parts, np, x, m, k, path, NULL, 0, 0, 0);
}

int ff_linear_q_parts_next(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k, int path,
                           const ff_qpart *next, int nnext, int64_t next_k, int64_t stream) {
    if (np < 1) return FF_EINVAL;
    int qtype = parts[0].dtype & ~FF_QT_R16, nr16 = 0;
    if (!ff_qtype_has(qtype, FF_QF_LINEAR)) return FF_EINVAL;
    int64_t ntot = 0;
    for (int p = 0; p < np; p++) {
        int r16 = (parts[p].dtype & FF_QT_R16) != 0;
        if ((parts[p].dtype & ~FF_QT_R16) != qtype || parts[p].n < 0) return FF_EINVAL;
        if (r16 && (!ff_qtype_has(qtype, FF_QF_R16) || parts[p].n % FF_R16)) return FF_EINVAL;
        // every part but the last starts the next at a whole split unit
        if (p + 1 < np && parts[p].n % FF_QP_NR) return FF_EINVAL;
        nr16 += r16;
        ntot += parts[p].n;
    }
    int64_t stride = ff_qtype_row_bytes(qtype, k);
    if (stride <= 0 || m < 0) return FF_EINVAL;
    if (m == 0 || ntot == 0) return FF_OK;
    // activation rows padded to whole 16-block chunks; lane sums only for the q8_0/q4_0/q4_k/q5_k/q6_k kernels
    int64_t kp = (k + 511) / 512 * 512;
    int lanes = lane_offset(qtype) != 0 || sb_int32(qtype);
    // panels pay for their packing from 5 activation rows on (FF_LIN_AUTO); their gathers take int32 row offsets
    const ff_qkernels *kern = &ff_kern->q;
    int want = path == FF_LIN_PANELS || (path == FF_LIN_AUTO && m >= 5);
    ff_qgemm_panel_fn panels = want && stride < (1 << 26) ? kern->qgemm_panel[qtype] : NULL;
    size_t row = (size_t)kp + kp / 32 * sizeof(float) + kp / 16 * sizeof(int16_t) + (lanes ? (size_t)kp : 0);
    size_t panel = panels && nr16 < np ? FF_QP_BYTES(k / 32) : 0;
    uint8_t *buf = ff_scratch(row * (size_t)m + panel);
    if (!buf) return FF_ENOMEM;
    qlin_ctx c = {.x = x,
                  .parts = parts,
                  .np = np,
                  .m = m,
                  .k = k,
                  .ntot = ntot,
                  .stride = stride,
                  .qtype = qtype,
                  .kern = kern,
                  .panels = panels,
                  .panel0 = buf + row * (size_t)m,
                  .status = FF_OK};
    c.act.kp = kp;
    c.act.ahead = ff_quant_ahead_for(FF_MAX(stream, ntot * stride));
    carve_act(&c, buf, lanes);
    // tiles of about 192 KB of W for several activation rows, all of W's share for one
    c.jt = m == 1 ? ntot : FF_MAX(16, (192 << 10) / stride);
    int nlin = lin_threads(ntot, k, m);
    // a few rows are quantized by every thread that takes a share of W, each into its own scratch: written on
    // one core and read on another they would cost more than the quantizing (about 5 us a call for 2048
    // columns where the two cores sit far apart); more rows are quantized once, split over the threads
    c.own_act = m * k < (1 << 16) && !panels;
    c.act_bytes = row * (size_t)m;
    if (!c.own_act) ff_parallel(qact_task, &c, m * k < (1 << 16) ? 1 : nlin);
    qtail tails[QTAIL_MAX];
    if (c.own_act && nlin > 1 && nlin <= QTAIL_MAX) {
        c.tails = tails, c.tails_nth = nlin;
        c.tail_step = stride <= (96 << 10) / (2 * FF_QP_NR) ? 2 * FF_QP_NR : FF_QP_NR;
        for (int i = 0; i < nlin; i++) {
            int64_t lo, hi;
            ff_split(ntot, i, nlin, FF_QP_NR, &lo, &hi);
            tails[i].start = tail_start(lo, hi);
            atomic_init(&tails[i].req, TAIL_SHUT);
            atomic_init(&tails[i].grant, 0);
        }
    }
    // a worker done with its share reads the start of its share of the next call (the same worker runs the same
    // task index) while this thread finishes and the caller works between the calls
    ff_span ahead[QTAIL_MAX] = {{0}};
    int nahead = next && c.own_act && nlin > 1 && nlin <= QTAIL_MAX;
    int64_t nn = 0;  // the next call's rows, of one type: it must take as many threads
    for (int p = 0; nahead && p < nnext; nn += next[p].n, p++)
        nahead = (next[p].dtype & ~FF_QT_R16) == (next[0].dtype & ~FF_QT_R16);
    nahead = nahead && lin_threads(nn, next_k, m) == nlin;
    for (int i = 1; nahead && i < nlin; i++) ahead[i] = share_start(next, nnext, next_k, i, nlin);
    ff_parallel_pf(qlin_task, &c, nlin, nahead ? ahead : NULL);
    return c.status;
}

int ff_linear_q_parts(const ff_qpart *parts, int np, const float *x, int64_t m, int64_t k) {
    return ff_linear_q_parts_path(parts, np, x, m, k, FF_LIN_AUTO);
}

int ff_linear_q(float *y, const float *x, const void *w, int qtype, const float *bias, int64_t m, int64_t k,
                int64_t n) {
    ff_qpart part = {y, w, bias, n, qtype};
    return ff_linear_q_parts(&part, 1, x, m, k);
}
