// byte-pair encoding: one engine for tiktoken rank files, hugging face bpe models and sentencepiece-style
// vocabularies. a vocabulary of byte strings, a pair map (left, right) -> (rank, merged id), a split
// scanner and special tokens. a piece becomes initial symbols (its bytes, or its characters with byte
// fallback), then the lowest-ranked adjacent pair is merged, leftmost first, until no pair is left.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ff_internal.h"
#include "ff_unicode.h"

#define NONE UINT64_MAX  // no merge for this pair / empty pair slot
#define SMALL 16         // pieces of up to this many symbols merge by scanning; longer ones use a heap

typedef struct {
    uint64_t key, val;  // key = left << 32 | right, val = rank << 32 | merged id
} pair_slot;

struct ff_bpe {
    int32_t n;      // ids 0..n-1
    uint8_t *kind;  // per id: an ff_token_kind
    int64_t *off;   // id i is bytes[off[i]..off[i+1]) in merge space
    uint8_t *bytes;
    int64_t *doff;  // and decodes to dbytes[doff[i]..doff[i+1])
    uint8_t *dbytes;
    uint64_t *tok;  // bytes -> id: hash tag << 32 | (id + 1), 0 = empty
    uint64_t tok_mask;
    pair_slot *pair;  // the pair map, open addressing
    uint64_t *small;  // (256, 256): the pair map for ids below 256 (bytes, in byte-level vocabularies)
    int pair_bits;
    int64_t pair_count;
    uint8_t *whole;     // 1 if a piece equal to token i encodes to i alone
    uint8_t *premerge;  // flags if token i is one utf-8 character that may start a piece merged
    uint64_t *chars;    // those characters: utf-8 bytes << 32 | flags << 24 | id, 0 = empty
    uint32_t chars_mask;
    int32_t byte_id[256];  // initial symbol of each byte (byte mode) or its <0xNN> token (char mode)
    int by_char, byte_fallback, fuse_unk, pretok;
    int32_t unk_id;
    int32_t n_special;  // special strings, longest first: sbytes[soff[k]..soff[k+1]) is id sid[k]
    int64_t *soff;
    uint8_t *sbytes;
    int32_t *sid;
    int32_t *sorder;      // sorder[k]: the caller's index of special k
    uint8_t sfirst[256];  // 1 if a special string starts with this byte
};

// ---- hashing ----

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 31;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(const uint8_t *s, int64_t n) {
    uint64_t h = 0xD6E8FEB86659FD93ull * (uint64_t)(n + 1);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix(h ^ w);
    }
    uint64_t w = 0;
    for (int64_t k = 0; k < n; k++) w |= (uint64_t)s[k] << (8 * k);
    return mix(h ^ w);
}

// id of the mergeable token with bytes s (n,), or -1
static int32_t tok_find(const ff_bpe *b, const uint8_t *s, int64_t n) {
    uint64_t h = hash_bytes(s, n), tag = h >> 32;
    for (uint64_t i = h & b->tok_mask;; i = (i + 1) & b->tok_mask) {
        uint64_t e = b->tok[i];
        if (!e) return -1;
        if ((e >> 32) != tag) continue;
        int32_t id = (int32_t)(uint32_t)e - 1;
        if (b->off[id + 1] - b->off[id] == n && !memcmp(b->bytes + b->off[id], s, (size_t)n)) return id;
    }
}

static inline uint64_t pair_index(uint64_t key, int bits) { return (key * 0x9E3779B97F4A7C15ull) >> (64 - bits); }

// rank << 32 | merged id for the pair (l, r), or NONE
static inline uint64_t pair_get(const ff_bpe *b, int32_t l, int32_t r) {
    if ((uint32_t)(l | r) < 256) return b->small[l << 8 | r];
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r, mask = ((uint64_t)1 << b->pair_bits) - 1;
    for (uint64_t i = pair_index(key, b->pair_bits);; i = (i + 1) & mask) {
        if (b->pair[i].key == key) return b->pair[i].val;
        if (b->pair[i].key == NONE) return NONE;
    }
}

// insert or overwrite a pair; grows the table to stay at most half full
static int pair_put(ff_bpe *b, int32_t l, int32_t r, uint32_t rank, int32_t id) {
    if (2 * (b->pair_count + 1) > ((int64_t)1 << b->pair_bits)) {
        int bits = b->pair_bits + 1;
        pair_slot *t = malloc(sizeof(pair_slot) << bits), *old = b->pair;
        if (!t) return FF_ENOMEM;
        memset(t, 0xFF, sizeof(pair_slot) << bits);
        uint64_t mask = ((uint64_t)1 << bits) - 1;
        for (int64_t i = 0; i < ((int64_t)1 << b->pair_bits); i++) {
            if (old[i].key == NONE) continue;
            uint64_t j = pair_index(old[i].key, bits);
            while (t[j].key != NONE) j = (j + 1) & mask;
            t[j] = old[i];
        }
        free(old);
        b->pair = t;
        b->pair_bits = bits;
    }
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r, mask = ((uint64_t)1 << b->pair_bits) - 1;
    uint64_t i = pair_index(key, b->pair_bits);
    while (b->pair[i].key != NONE && b->pair[i].key != key) i = (i + 1) & mask;
    if (b->pair[i].key == NONE) b->pair_count++;
    b->pair[i].key = key;
    b->pair[i].val = (uint64_t)rank << 32 | (uint32_t)id;
    if ((uint32_t)(l | r) < 256) b->small[l << 8 | r] = b->pair[i].val;
    return FF_OK;
}

// ---- building a vocabulary ----

void ff_bpe_free(ff_bpe *b) {
    if (!b) return;
    if (b->dbytes != b->bytes) free(b->dbytes);
    if (b->doff != b->off) free(b->doff);
    free(b->kind);
    free(b->off);
    free(b->bytes);
    free(b->tok);
    free(b->pair);
    free(b->small);
    free(b->whole);
    free(b->premerge);
    free(b->chars);
    free(b->soff);
    free(b->sbytes);
    free(b->sid);
    free(b->sorder);
    free(b);
}

ff_bpe *ff_bpe_new(const uint8_t *bytes, const int64_t *off, const uint8_t *kind, int32_t n) {
    ff_unicode_init();
    ff_bpe *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    int64_t nb = off[n], cap = 16;
    while (cap < 2 * (int64_t)n + 2) cap *= 2;
    b->n = n;
    b->kind = malloc((size_t)n + 1);
    b->off = malloc(sizeof(int64_t) * ((size_t)n + 1));
    b->bytes = malloc((size_t)nb + 1);
    b->tok = calloc((size_t)cap, sizeof(uint64_t));
    b->whole = calloc((size_t)n + 1, 1);
    b->premerge = calloc((size_t)n + 1, 1);
    b->small = malloc(sizeof(uint64_t) * 256 * 256);
    b->pair_bits = 4;
    b->pair = malloc(sizeof(pair_slot) << b->pair_bits);
    if (!b->small || !b->pair || !b->premerge || !b->kind || !b->off || !b->bytes || !b->tok || !b->whole) goto fail;
    memcpy(b->kind, kind, (size_t)n);
    memcpy(b->off, off, sizeof(int64_t) * ((size_t)n + 1));
    memcpy(b->bytes, bytes, (size_t)nb);
    b->doff = b->off;
    b->dbytes = b->bytes;
    memset(b->small, 0xFF, sizeof(uint64_t) * 256 * 256);
    memset(b->pair, 0xFF, sizeof(pair_slot) << b->pair_bits);
    b->tok_mask = (uint64_t)cap - 1;
    b->unk_id = -1;
    for (int k = 0; k < 256; k++) b->byte_id[k] = -1;
    // the bytes -> id map holds mergeable tokens; the first id wins for duplicate strings
    for (int32_t id = 0; id < n; id++) {
        if (kind[id] != FF_TOKEN_MERGEABLE || tok_find(b, bytes + off[id], off[id + 1] - off[id]) >= 0) continue;
        uint64_t h = hash_bytes(bytes + off[id], off[id + 1] - off[id]), i = h & b->tok_mask;
        while (b->tok[i]) i = (i + 1) & b->tok_mask;
        b->tok[i] = (h >> 32) << 32 | (uint32_t)(id + 1);
    }
    return b;
fail:
    ff_bpe_free(b);
    return NULL;
}

int32_t ff_bpe_token_id(const ff_bpe *b, const uint8_t *bytes, int64_t n) { return tok_find(b, bytes, n); }

int64_t ff_bpe_merges_list(ff_bpe *b, const int32_t *left, const int32_t *right, int64_t n) {
    int64_t maxlen = 0;
    for (int32_t id = 0; id < b->n; id++) maxlen = FF_MAX(maxlen, b->off[id + 1] - b->off[id]);
    uint8_t *buf = malloc(2 * (size_t)maxlen + 1);
    if (!buf) return FF_ENOMEM;
    // merge i joins (left[i], right[i]) into the token spelled by their bytes, with rank i
    for (int64_t i = 0; i < n; i++) {
        int32_t l = left[i], r = right[i];
        int64_t ll = b->off[l + 1] - b->off[l], lr = b->off[r + 1] - b->off[r];
        memcpy(buf, b->bytes + b->off[l], (size_t)ll);
        memcpy(buf + ll, b->bytes + b->off[r], (size_t)lr);
        int32_t id = tok_find(b, buf, ll + lr);
        if (id < 0) {
            free(buf);
            return -1 - i;
        }
        if (pair_put(b, l, r, (uint32_t)i, id) != FF_OK) {
            free(buf);
            return FF_ENOMEM;
        }
    }
    free(buf);
    return FF_OK;
}

int ff_bpe_merges_ranked(ff_bpe *b, const int32_t *rank) {
    // every split of token t into two tokens merges to t with rank[t]
    for (int32_t t = 0; t < b->n; t++) {
        if (b->kind[t] != FF_TOKEN_MERGEABLE || rank[t] < 0) continue;
        const uint8_t *s = b->bytes + b->off[t];
        int64_t len = b->off[t + 1] - b->off[t];
        for (int64_t k = 1; k < len; k++) {
            int32_t l = tok_find(b, s, k), r = l >= 0 ? tok_find(b, s + k, len - k) : -1;
            if (r >= 0 && pair_put(b, l, r, (uint32_t)rank[t], t) != FF_OK) return FF_ENOMEM;
        }
    }
    return FF_OK;
}

// ---- merging ----

// merge sym (m,) in place by scanning for the lowest-ranked pair; returns the new count
static int64_t merge_small(const ff_bpe *b, int32_t *sym, int64_t m) {
    uint64_t rk[SMALL];
    for (int64_t k = 0; k + 1 < m; k++) rk[k] = pair_get(b, sym[k], sym[k + 1]);
    while (m > 1) {
        // leftmost lowest rank (equal ranks may merge to different ids: sentencepiece scores)
        int64_t best = 0;
        for (int64_t k = 1; k + 1 < m; k++)
            if (rk[k] >> 32 < rk[best] >> 32) best = k;
        if (rk[best] == NONE) break;
        // replace the pair by its merge, then refresh its neighbours' ranks
        sym[best] = (int32_t)(uint32_t)rk[best];
        memmove(sym + best + 1, sym + best + 2, sizeof(int32_t) * (size_t)(m - best - 2));
        if (m - best - 3 > 0) memmove(rk + best + 1, rk + best + 2, sizeof(uint64_t) * (size_t)(m - best - 3));
        m--;
        if (best > 0) rk[best - 1] = pair_get(b, sym[best - 1], sym[best]);
        if (best + 1 < m) rk[best] = pair_get(b, sym[best], sym[best + 1]);
    }
    return m;
}

// a 4-ary min-heap of uint64 keys: half the levels of a binary one, children in one cache line
static void heap_push(uint64_t *h, int64_t *n, uint64_t v) {
    int64_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 4] > v) {
        h[i] = h[(i - 1) / 4];
        i = (i - 1) / 4;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, int64_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t c = 4 * i + 1, best = c;
        if (c >= *n) break;
        for (int64_t j = c + 1; j < c + 4 && j < *n; j++)
            if (h[j] < h[best]) best = j;
        if (h[best] >= v) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = v;
    return top;
}

// merge sym (m,) with a heap of (rank, position) over a linked list: O(m log m); -1 on OOM
static int64_t merge_heap(const ff_bpe *b, int32_t *sym, int64_t m) {
    uint64_t *heap = m < INT32_MAX ? ff_scratch((sizeof(uint64_t) * 4 + sizeof(int32_t) * 2) * (size_t)m) : NULL;
    if (!heap) return -1;
    uint64_t *val = heap + 3 * m;  // val[k]: the pair (k, nxt[k]) as rank << 32 | merged id
    int32_t *nxt = (int32_t *)(val + m), *prv = nxt + m;
    int64_t hn = 0;
    for (int64_t k = 0; k < m; k++) {
        nxt[k] = (int32_t)(k + 1);
        prv[k] = (int32_t)(k - 1);
        val[k] = k + 1 < m ? pair_get(b, sym[k], sym[k + 1]) : NONE;
        if (val[k] != NONE) heap_push(heap, &hn, (val[k] >> 32) << 32 | (uint64_t)k);
    }
    while (hn > 0) {
        uint64_t e = heap_pop(heap, &hn);
        int32_t k = (int32_t)(uint32_t)e;
        // skip entries whose pair has since changed
        if (sym[k] < 0 || (val[k] >> 32) != (e >> 32)) continue;
        // merge nxt[k] into k and queue the two new pairs
        int32_t r = nxt[k];
        sym[k] = (int32_t)(uint32_t)val[k];
        sym[r] = -1;
        nxt[k] = nxt[r];
        if (nxt[k] < m) prv[nxt[k]] = k;
        int32_t p = prv[k];
        if (p >= 0 && (val[p] = pair_get(b, sym[p], sym[k])) != NONE)
            heap_push(heap, &hn, (val[p] >> 32) << 32 | (uint64_t)p);
        if ((val[k] = nxt[k] < m ? pair_get(b, sym[k], sym[nxt[k]]) : NONE) != NONE)
            heap_push(heap, &hn, (val[k] >> 32) << 32 | (uint64_t)k);
    }
    int64_t out = 0;
    for (int64_t k = 0; k < m; k = nxt[k]) sym[out++] = sym[k];
    return out;
}

static inline uint64_t char_get(const ff_bpe *b, const uint8_t *s, int n);

// initial symbols of piece s (n,) into sym (at most n); returns their count
static int64_t init_symbols(const ff_bpe *b, int32_t *sym, const uint8_t *s, int64_t n) {
    int64_t m = 0;
    if (!b->by_char) {
        // bytes, with multi-byte characters that are safe to pre-merge as their token
        for (int64_t i = 0; i < n;) {
            int len = ff_utf8_len(s[i]);
            uint64_t e = len > 1 && len <= n - i && b->chars ? char_get(b, s + i, len) : 0;
            if (e) {
                int need = 0x80 |
                           (i == 0            ? 0
                            : s[i - 1] < 0x80 ? 1
                            : s[i - 1] < 0xC0 ? 2
                                              : 0x40) |
                           (i + len == n         ? 0
                            : s[i + len] < 0x80  ? 4
                            : s[i + len] >= 0xC0 ? 8
                                                 : 0x40);
                if ((int)(e >> 24 & 0xFF & need) == need) {
                    sym[m++] = (int32_t)(e & 0xFFFFFF);
                    i += len;
                    continue;
                }
            }
            sym[m++] = b->byte_id[s[i++]];
        }
        return m;
    }
    // characters: the character's token, else its bytes' <0xNN> tokens, else unk (runs fused)
    int prev_unk = 0;
    for (int64_t i = 0; i < n;) {
        int len;
        ff_uc_at(s, i, n, &len);
        int32_t id = tok_find(b, s + i, len);
        if (id >= 0) {
            sym[m++] = id;
        } else if (b->byte_fallback) {
            for (int k = 0; k < len; k++) sym[m++] = b->byte_id[s[i + k]];
        } else if (b->unk_id >= 0 && !(prev_unk && b->fuse_unk)) {
            sym[m++] = b->unk_id;
        }
        prev_unk = id < 0 && !b->byte_fallback;
        i += len;
    }
    return m;
}

// bpe of one piece s (n > 0,) into out (at most n ids); returns the count, -1 on OOM
static int64_t encode_piece(const ff_bpe *b, int32_t *out, const uint8_t *s, int64_t n, int whole_first) {
    if (whole_first) {
        int32_t id = tok_find(b, s, n);
        if (id >= 0 && b->whole[id]) {
            out[0] = id;
            return 1;
        }
    }
    int64_t m = init_symbols(b, out, s, n);
    m = m <= SMALL ? merge_small(b, out, m) : merge_heap(b, out, m);
    // a byte without a token (a byte-level vocabulary missing some) stays a symbol that merges with nothing
    // and is dropped here, as llama.cpp does
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++)
        if (out[i] >= 0) out[k++] = out[i];
    return m < 0 ? m : k;
}

// the byte class of a neighbour: 0 ascii, 1 utf-8 continuation, 2 utf-8 lead
static inline int byte_class(uint8_t c) { return c < 0x80 ? 0 : c < 0xC0 ? 1 : 2; }

// may the multi-byte character s (n bytes, 2..4) start a piece as its own token, and next to what?
// its bytes merge alone into the token t = id, R being the largest rank used. a symbol that ends where the
// character starts ends with an ascii or a continuation byte; one that starts where it ends starts with an
// ascii or a lead byte. if no pair with such a neighbour ranks <= R with t, with a partial symbol holding the
// first byte (neighbour on its left) or with one holding the last byte (neighbour on its right), then no merge
// touches the partial symbols, pairs with t come after R, and starting from t gives the same merges minus
// the character's own. returns 0x80 | bits 1/2 (left neighbour ascii/continuation ok) | 4/8 (right neighbour
// ascii/lead ok), or 0 when the character does not merge into one token.
static int premerge_flags(const ff_bpe *b, int32_t id, const uint8_t *s, int n, const uint32_t *minl,
                          const uint32_t *minr) {
    int32_t sym[4], seen[8];
    int lo[4], hi[4], edge[8], m = n, ns = 0;
    uint32_t top = 0;
    for (int k = 0; k < n; k++) {
        sym[k] = b->byte_id[s[k]];
        lo[k] = k;
        hi[k] = k + 1;
        seen[ns] = sym[k];
        edge[ns++] = (k == 0) | (k == n - 1) << 1;
    }
    // the leftmost lowest-ranked merges of the character alone, noting every symbol on its edges
    while (m > 1) {
        int best = -1;
        uint64_t bv = NONE;
        for (int k = 0; k + 1 < m; k++) {
            uint64_t v = pair_get(b, sym[k], sym[k + 1]);
            if (v != NONE && (best < 0 || v >> 32 < bv >> 32)) bv = v, best = k;
        }
        if (best < 0) return 0;
        top = FF_MAX(top, (uint32_t)(bv >> 32));
        sym[best] = (int32_t)(uint32_t)bv;
        hi[best] = hi[best + 1];
        for (int k = best + 1; k + 1 < m; k++) sym[k] = sym[k + 1], lo[k] = lo[k + 1], hi[k] = hi[k + 1];
        m--;
        seen[ns] = sym[best];
        edge[ns++] = (lo[best] == 0) | (hi[best] == n) << 1;
    }
    if (sym[0] != id) return 0;
    int flags = 0x80 | 1 | 2 | 4 | 8;
    for (int k = 0; k < ns; k++) {
        const uint32_t *l = minl + 3 * seen[k], *r = minr + 3 * seen[k];
        if ((edge[k] & 1) && r[0] <= top) flags &= ~1;
        if ((edge[k] & 1) && r[1] <= top) flags &= ~2;
        if ((edge[k] & 2) && l[0] <= top) flags &= ~4;
        if ((edge[k] & 2) && l[2] <= top) flags &= ~8;
    }
    return flags;
}

// premerge[id] for the tokens that are one multi-byte utf-8 character (byte mode only)
static int find_premerge(ff_bpe *b) {
    uint32_t *minl = malloc(sizeof(uint32_t) * 3 * (size_t)b->n), *minr = malloc(sizeof(uint32_t) * 3 * (size_t)b->n);
    if (!minl || !minr) {
        free(minl);
        free(minr);
        return FF_ENOMEM;
    }
    // the lowest rank of a pair with each id on its left (by the class of the right one's first byte), and on
    // its right (by the class of the left one's last byte)
    memset(minl, 0xFF, sizeof(uint32_t) * 3 * (size_t)b->n);
    memset(minr, 0xFF, sizeof(uint32_t) * 3 * (size_t)b->n);
    memset(b->premerge, 0, (size_t)b->n);
    free(b->chars);
    b->chars = NULL;
    uint32_t count = 0;
    for (int64_t i = 0; i < ((int64_t)1 << b->pair_bits); i++) {
        if (b->pair[i].key == NONE) continue;
        uint32_t l = (uint32_t)(b->pair[i].key >> 32), r = (uint32_t)b->pair[i].key, rank = b->pair[i].val >> 32;
        if (b->off[r + 1] == b->off[r] || b->off[l + 1] == b->off[l]) continue;
        uint32_t *ml = minl + 3 * (size_t)l + byte_class(b->bytes[b->off[r]]);
        uint32_t *mr = minr + 3 * (size_t)r + byte_class(b->bytes[b->off[l + 1] - 1]);
        *ml = FF_MIN(*ml, rank);
        *mr = FF_MIN(*mr, rank);
    }
    for (int32_t id = 0; id < b->n; id++) {
        const uint8_t *s = b->bytes + b->off[id];
        int64_t len = b->off[id + 1] - b->off[id];
        int len_seen;
        if (b->kind[id] != FF_TOKEN_MERGEABLE || len < 2 || len > 4 || ff_utf8_len(s[0]) != len) continue;
        ff_uc_at(s, 0, len, &len_seen);
        if (len_seen == len) b->premerge[id] = (uint8_t)premerge_flags(b, id, s, (int)len, minl, minr);
        count += b->premerge[id] != 0;
    }
    free(minl);
    free(minr);
    // a small table from a character's bytes to its token and flags
    uint32_t cap = 16;
    while (cap < 4 * count) cap *= 2;
    if (b->n >= (1 << 24)) return FF_OK;  // ids must fit in 24 bits of an entry
    if (!(b->chars = calloc(cap, sizeof(uint64_t)))) return FF_ENOMEM;
    b->chars_mask = cap - 1;
    for (int32_t id = 0; id < b->n; id++) {
        if (!b->premerge[id]) continue;
        uint32_t key = 0;
        memcpy(&key, b->bytes + b->off[id], (size_t)(b->off[id + 1] - b->off[id]));
        uint32_t i = (key * 0x9E3779B1u) >> 8 & b->chars_mask;
        while (b->chars[i]) i = (i + 1) & b->chars_mask;
        b->chars[i] = (uint64_t)key << 32 | (uint32_t)b->premerge[id] << 24 | (uint32_t)id;
    }
    return FF_OK;
}

// the chars entry of the utf-8 character (n bytes) at s, or 0
static inline uint64_t char_get(const ff_bpe *b, const uint8_t *s, int n) {
    uint32_t key = s[0] | (uint32_t)s[1] << 8;
    if (n > 2) key |= (uint32_t)s[2] << 16 | (n > 3 ? (uint32_t)s[3] << 24 : 0);
    for (uint32_t i = (key * 0x9E3779B1u) >> 8 & b->chars_mask;; i = (i + 1) & b->chars_mask) {
        uint64_t e = b->chars[i];
        if (!e || (uint32_t)(e >> 32) == key) return e;
    }
}

int ff_bpe_config(ff_bpe *b, int pretok, int by_char, const int32_t *byte_id, int32_t unk_id, int fuse_unk,
                  int whole_first) {
    b->pretok = pretok;
    b->by_char = by_char;
    b->unk_id = unk_id;
    b->fuse_unk = fuse_unk;
    b->byte_fallback = by_char && byte_id != NULL;
    if (byte_id) memcpy(b->byte_id, byte_id, sizeof(b->byte_id));
    if (!by_char && find_premerge(b) != FF_OK) return FF_ENOMEM;
    // a token found whole is used as is (tiktoken, ignore_merges), or only when merging its bytes gives it
    int64_t maxlen = 1;
    for (int32_t id = 0; id < b->n; id++) maxlen = FF_MAX(maxlen, b->off[id + 1] - b->off[id]);
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)maxlen);
    if (!buf) return FF_ENOMEM;
    for (int32_t id = 0; id < b->n; id++) {
        int64_t len = b->off[id + 1] - b->off[id];
        if (b->kind[id] != FF_TOKEN_MERGEABLE || len == 0) continue;
        if (whole_first) {
            b->whole[id] = 1;
            continue;
        }
        int64_t m = encode_piece(b, buf, b->bytes + b->off[id], len, 0);
        if (m < 0) {
            free(buf);
            return FF_ENOMEM;
        }
        b->whole[id] = m == 1 && buf[0] == id;
    }
    free(buf);
    return FF_OK;
}

int ff_bpe_specials(ff_bpe *b, const int32_t *ids, int32_t n) {
    free(b->sid);
    free(b->sorder);
    free(b->soff);
    free(b->sbytes);
    memset(b->sfirst, 0, sizeof(b->sfirst));
    b->n_special = 0;
    b->sid = malloc(sizeof(int32_t) * ((size_t)n + 1));
    b->sorder = malloc(sizeof(int32_t) * ((size_t)n + 1));
    b->soff = malloc(sizeof(int64_t) * ((size_t)n + 1));
    int64_t total = 0;
    for (int32_t k = 0; k < n; k++) total += b->off[ids[k] + 1] - b->off[ids[k]];
    b->sbytes = malloc((size_t)total + 1);
    if (!b->sid || !b->sorder || !b->soff || !b->sbytes) return FF_ENOMEM;
    b->n_special = n;
    // longest first, so the first string that matches at a position is the longest
    for (int32_t k = 0; k < n; k++) b->sorder[k] = k;
    for (int32_t k = 1; k < n; k++) {
        int32_t v = b->sorder[k], j = k;
        int64_t lv = b->off[ids[v] + 1] - b->off[ids[v]];
        while (j > 0 && b->off[ids[b->sorder[j - 1]] + 1] - b->off[ids[b->sorder[j - 1]]] < lv) {
            b->sorder[j] = b->sorder[j - 1];
            j--;
        }
        b->sorder[j] = v;
    }
    b->soff[0] = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t id = ids[b->sorder[k]];
        int64_t len = b->off[id + 1] - b->off[id];
        memcpy(b->sbytes + b->soff[k], b->bytes + b->off[id], (size_t)len);
        b->soff[k + 1] = b->soff[k] + len;
        b->sid[k] = id;
        if (len) b->sfirst[b->bytes[b->off[id]]] = 1;
    }
    return FF_OK;
}

int ff_bpe_set_decode(ff_bpe *b, const uint8_t *bytes, const int64_t *off) {
    int64_t *doff = malloc(sizeof(int64_t) * ((size_t)b->n + 1));
    uint8_t *dbytes = malloc((size_t)off[b->n] + 1);
    if (!doff || !dbytes) {
        free(doff);
        free(dbytes);
        return FF_ENOMEM;
    }
    memcpy(doff, off, sizeof(int64_t) * ((size_t)b->n + 1));
    memcpy(dbytes, bytes, (size_t)off[b->n]);
    if (b->dbytes != b->bytes) free(b->dbytes);
    if (b->doff != b->off) free(b->doff);
    b->doff = doff;
    b->dbytes = dbytes;
    return FF_OK;
}

// ---- encoding ----

// ids of text without special tokens: split into pieces, bpe each; -1 on OOM
static int64_t encode_ordinary(const ff_bpe *b, int32_t *ids, const uint8_t *s, int64_t n) {
    if (n == 0) return 0;
    if (b->pretok == FF_PRETOK_NONE) return encode_piece(b, ids, s, n, 1);
    int64_t m = 0;
    ff_pretok_state st = {{0}};
    for (int64_t i = 0; i < n;) {
        int64_t j = ff_pretok_next(b->pretok, s, i, n, &st);
        int64_t r = encode_piece(b, ids + m, s + i, j - i, 1);
        if (r < 0) return -1;
        m += r;
        i = j;
    }
    return m;
}

// the special string (in longest-first order) that starts at s[i] and whose caller's index has mode `want`,
// or -1
static int32_t special_at(const ff_bpe *b, const uint8_t *s, int64_t i, int64_t n, const uint8_t *mode, int want) {
    for (int32_t k = 0; k < b->n_special; k++) {
        int64_t len = b->soff[k + 1] - b->soff[k];
        if (mode[b->sorder[k]] == want && len > 0 && len <= n - i &&
            !memcmp(s + i, b->sbytes + b->soff[k], (size_t)len))
            return k;
    }
    return -1;
}

int64_t ff_bpe_encode(const ff_bpe *b, int32_t *ids, const uint8_t *text, int64_t n, const uint8_t *mode) {
    int any_allowed = 0, any_disallowed = 0;
    for (int32_t k = 0; mode && k < b->n_special; k++) {
        any_allowed |= mode[k] == FF_BPE_ALLOWED;
        any_disallowed |= mode[k] == FF_BPE_DISALLOWED;
    }
    // a disallowed special string anywhere in the text is an error
    for (int64_t i = 0; any_disallowed && i < n; i++) {
        if (!b->sfirst[text[i]]) continue;
        int32_t k = special_at(b, text, i, n, mode, FF_BPE_DISALLOWED);
        if (k >= 0) return -2 - b->sorder[k];
    }
    if (!any_allowed) return encode_ordinary(b, ids, text, n);
    // ordinary text between allowed special tokens
    int64_t m = 0, start = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t k;
        if (!b->sfirst[text[i]] || (k = special_at(b, text, i, n, mode, FF_BPE_ALLOWED)) < 0) continue;
        int64_t r = encode_ordinary(b, ids + m, text + start, i - start);
        if (r < 0) return -1;
        m += r;
        ids[m++] = b->sid[k];
        start = i + (b->soff[k + 1] - b->soff[k]);
        i = start - 1;
    }
    int64_t r = encode_ordinary(b, ids + m, text + start, n - start);
    return r < 0 ? -1 : m + r;
}

int64_t ff_bpe_encode_pieces(const ff_bpe *b, int32_t *ids, const uint8_t *text, const int64_t *starts,
                             const int64_t *ends, int64_t n_pieces) {
    int64_t m = 0;
    for (int64_t k = 0; k < n_pieces; k++) {
        if (ends[k] <= starts[k]) continue;
        int64_t r = encode_piece(b, ids + m, text + starts[k], ends[k] - starts[k], 1);
        if (r < 0) return -1;
        m += r;
    }
    return m;
}

typedef struct {
    const ff_bpe *b;
    int32_t *ids;
    const int64_t *starts;
    int64_t *counts;
    const uint8_t *const *texts;
    const int64_t *lens;
    int64_t n;
    const uint8_t *mode;
    _Atomic int64_t next;  // the next text to take
} batch_ctx;

static void batch_task(void *arg, int ith, int nth) {
    batch_ctx *c = arg;
    (void)ith;
    (void)nth;
    for (;;) {
        int64_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->n) break;
        c->counts[i] = ff_bpe_encode(c->b, c->ids + c->starts[i], c->texts[i], c->lens[i], c->mode);
    }
}

void ff_bpe_encode_batch(const ff_bpe *b, int32_t *ids, const int64_t *starts, int64_t *counts,
                         const uint8_t *const *texts, const int64_t *lens, int64_t n, const uint8_t *mode, int nth) {
    batch_ctx c = {b, ids, starts, counts, texts, lens, n, mode, 0};
    ff_parallel(batch_task, &c, (int)FF_MIN((int64_t)nth, FF_MAX(n, 1)));
}

// ---- decoding ----

int64_t ff_bpe_decode_len(const ff_bpe *b, const int32_t *ids, int64_t n) {
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        int32_t id = ids[k];
        if (id < 0 || id >= b->n || b->kind[id] == FF_TOKEN_UNUSED) return -1 - k;
        total += b->doff[id + 1] - b->doff[id];
    }
    return total;
}

void ff_bpe_decode(const ff_bpe *b, uint8_t *out, const int32_t *ids, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        int64_t len = b->doff[ids[k] + 1] - b->doff[ids[k]];
        memcpy(out, b->dbytes + b->doff[ids[k]], (size_t)len);
        out += len;
    }
}
