// WordPiece, as BERT's tokenizer.json runs it: BertNormalizer's clean-up (controls dropped, white space to
// spaces, CJK ideographs spaced, nonspacing marks dropped), BertPreTokenizer's split (white space, and each
// punctuation character a piece of its own), then each word greedily, longest match first, with "##" pieces
// after the first, or the unknown token for a word with no split. Lower-casing and the canonical decomposition
// that precedes mark stripping are done by the caller (Python's str.lower and unicodedata).
#include "ff_internal.h"
#include "ff_unicode.h"

#include <stdlib.h>
#include <string.h>

#include "ff_wordpiece_table.h"

enum { WP_OTHER = 1, WP_PUNCT = 2, WP_MN = 4 };  // the classes of ff_wordpiece_table.h

// classes of code point cp: ascii by direct search too (the table is small), the rest by binary search
static int wp_class(uint32_t cp) {
    int64_t lo = 0, hi = FF_WP_RANGES - 1;
    while (lo < hi) {  // the last range starting at or before cp
        int64_t mid = (lo + hi + 1) / 2;
        if ((ff_wp_ranges[mid] >> 4) <= cp)
            lo = mid;
        else
            hi = mid - 1;
    }
    return (int)(ff_wp_ranges[lo] & 15);
}

// the ideograph blocks BertNormalizer surrounds with spaces
static int is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// one hash table of byte strings -> id, open addressing
typedef struct {
    int32_t *slot;  // (cap,) id or -1
    int64_t cap;
} wp_map;

struct ff_wordpiece {
    uint8_t *bytes;  // every token's bytes
    int64_t *off;    // (n + 1,)
    int32_t n, unk;
    int64_t plen, max_chars;  // continuing prefix length, longest word in characters
    int flags;                // FF_WP_*
    wp_map whole, cont;       // tokens by their bytes; "##x" tokens by the bytes after the prefix
};

static uint64_t wp_hash(const uint8_t *s, int64_t n) {
    uint64_t h = 1469598103934665603ull;  // fnv-1a
    for (int64_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

// id of bytes s (n,) in map m, where a key of id i is skip bytes into token i; -1 if absent
static int32_t wp_find(const ff_wordpiece *w, const wp_map *m, int64_t skip, const uint8_t *s, int64_t n) {
    for (uint64_t j = wp_hash(s, n) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        int32_t id = m->slot[j];
        if (id < 0) return -1;
        int64_t len = w->off[id + 1] - w->off[id] - skip;
        if (len == n && memcmp(w->bytes + w->off[id] + skip, s, (size_t)n) == 0) return id;
    }
}

static int wp_insert(const ff_wordpiece *w, wp_map *m, int64_t skip, int32_t id) {
    const uint8_t *s = w->bytes + w->off[id] + skip;
    int64_t n = w->off[id + 1] - w->off[id] - skip;
    if (wp_find(w, m, skip, s, n) >= 0) return 0;  // the first id of duplicate bytes wins
    uint64_t j = wp_hash(s, n) & (m->cap - 1);
    while (m->slot[j] >= 0) j = (j + 1) & (m->cap - 1);
    m->slot[j] = id;
    return 0;
}

static int wp_map_init(wp_map *m, int64_t n) {
    m->cap = 16;
    while (m->cap < 2 * n + 2) m->cap *= 2;
    m->slot = malloc((size_t)m->cap * sizeof(int32_t));
    if (!m->slot) return FF_ENOMEM;
    memset(m->slot, 0xff, (size_t)m->cap * sizeof(int32_t));
    return FF_OK;
}

void ff_wordpiece_free(ff_wordpiece *w) {
    if (!w) return;
    free(w->bytes);
    free(w->off);
    free(w->whole.slot);
    free(w->cont.slot);
    free(w);
}

ff_wordpiece *ff_wordpiece_new(const uint8_t *bytes, const int64_t *off, int32_t n, int32_t unk, const uint8_t *prefix,
                               int64_t plen, int64_t max_chars, int flags) {
    ff_unicode_init();
    ff_wordpiece *w = calloc(1, sizeof(ff_wordpiece));
    if (!w) return NULL;
    w->n = n, w->unk = unk, w->plen = plen, w->max_chars = max_chars, w->flags = flags;
    w->bytes = malloc((size_t)(off[n] + 1));
    w->off = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!w->bytes || !w->off || wp_map_init(&w->whole, n) || wp_map_init(&w->cont, n)) {
        ff_wordpiece_free(w);
        return NULL;
    }
    memcpy(w->bytes, bytes, (size_t)off[n]);
    memcpy(w->off, off, (size_t)(n + 1) * sizeof(int64_t));
    for (int32_t i = 0; i < n; i++) {
        wp_insert(w, &w->whole, 0, i);
        int64_t len = off[i + 1] - off[i];
        if (len >= plen && memcmp(bytes + off[i], prefix, (size_t)plen) == 0) wp_insert(w, &w->cont, plen, i);
    }
    return w;
}

int32_t ff_wordpiece_token_id(const ff_wordpiece *w, const uint8_t *s, int64_t n) {
    return wp_find(w, &w->whole, 0, s, n);
}

// ids of one word s (n,) of `chars` characters appended at ids; returns how many
static int64_t wp_word(const ff_wordpiece *w, int32_t *ids, const uint8_t *s, int64_t n, int64_t chars) {
    if (chars > w->max_chars) {
        ids[0] = w->unk;
        return 1;
    }
    int64_t count = 0;
    for (int64_t start = 0; start < n;) {
        // the longest piece from start: drop one character at a time from the end
        int64_t end = n;
        int32_t id = -1;
        while (end > start) {
            id = start ? wp_find(w, &w->cont, w->plen, s + start, end - start) : wp_find(w, &w->whole, 0, s, end);
            if (id >= 0) break;
            do end--;
            while (end > start && (s[end] & 0xC0) == 0x80);
        }
        if (id < 0) {  // no split: the whole word is unknown
            ids[0] = w->unk;
            return 1;
        }
        ids[count++] = id;
        start = end;
    }
    return count;
}

// the code point at s[i] (i < n) and its length; a malformed byte reads as U+FFFD of length 1
static uint32_t wp_decode(const uint8_t *s, int64_t i, int64_t n, int *len) {
    uint32_t c = s[i];
    int l = ff_utf8_len((uint8_t)c);
    *len = 1;
    if (l == 1) return c < 0x80 ? c : 0xFFFD;
    if (i + l > n) return 0xFFFD;
    uint32_t cp = c & (0x7F >> l);
    for (int k = 1; k < l; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0xFFFD;
        cp = cp << 6 | (s[i + k] & 0x3F);
    }
    *len = l;
    return cp;
}

int64_t ff_wordpiece_encode(const ff_wordpiece *w, int32_t *ids, const uint8_t *text, int64_t n) {
    uint8_t *word = malloc((size_t)n + 1);  // the current word's kept bytes
    if (!word) return -1;
    int64_t count = 0, wn = 0, wchars = 0;
    int len;
    for (int64_t i = 0; i <= n; i += len) {
        // the next character and what it is: part of a word, a separator, or a word of its own
        uint32_t cp = i < n ? wp_decode(text, i, n, &len) : ' ';
        if (i == n) len = 1;
        int cls = cp < 0x110000 ? wp_class(cp) : WP_OTHER;
        int space = cp < 0x110000 && (ff_ucat[cp] == FF_UC_WS || ff_ucat[cp] == FF_UC_NL);
        if ((w->flags & FF_WP_CLEAN) && cp != '\t' && cp != '\n' && cp != '\r' && (cp == 0xFFFD || (cls & WP_OTHER)))
            continue;  // clean_text drops controls, formats, private use and U+FFFD (and NUL, a control)
        if ((w->flags & FF_WP_STRIP_MN) && (cls & WP_MN)) continue;
        int alone = (cls & WP_PUNCT) || ((w->flags & FF_WP_CJK) && is_cjk(cp));
        if (space || alone) {
            if (wn) count += wp_word(w, ids + count, word, wn, wchars);
            wn = wchars = 0;
            if (alone) count += wp_word(w, ids + count, text + i, len, 1);
            continue;
        }
        memcpy(word + wn, text + i, (size_t)len);
        wn += len;
        wchars++;
    }
    free(word);
    return count;
}
