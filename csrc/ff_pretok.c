// split scanners: hand-written matchers for the pre-tokenization regexes of tiktoken and hf tokenizer.json
// files. each returns the end of the leftmost-first match at i, exactly as the backtracking regex would
// (ordered alternation, greedy and possessive quantifiers, \s+(?!\S), $ = end of the segment).
#include <pthread.h>
#include <string.h>

#include "ff_internal.h"
#include "ff_unicode.h"
#include "ff_unicode_table.h"

uint8_t ff_ucat[0x110000];
static pthread_once_t ucat_once = PTHREAD_ONCE_INIT;

// expand the range list into one byte per code point
static void ucat_build(void) {
    for (int r = 0; r < FF_UCAT_RANGES; r++) {
        uint32_t lo = ff_ucat_ranges[r] >> 4, hi = r + 1 < FF_UCAT_RANGES ? ff_ucat_ranges[r + 1] >> 4 : 0x110000;
        memset(ff_ucat + lo, (int)(ff_ucat_ranges[r] & 15), hi - lo);
    }
}

void ff_unicode_init(void) { pthread_once(&ucat_once, ucat_build); }

const char *ff_unicode_version(void) { return FF_UNICODE_VERSION; }

int ff_unicode_category(uint32_t cp) {
    ff_unicode_init();
    return cp < 0x110000 ? ff_ucat[cp] : FF_UC_OTHER;
}

// category of the character at i, or -1 at the end
static inline int cat(const uint8_t *s, int64_t i, int64_t n, int *len) {
    if (i >= n) {
        *len = 0;
        return -1;
    }
    return ff_uc_at(s, i, n, len);
}

static inline int in(int c, uint32_t set) { return c >= 0 && (FF_UB(c) & set); }

// end of the run of characters in `set` from i
static inline int64_t run(const uint8_t *s, int64_t i, int64_t n, uint32_t set) {
    int len;
    while (i < n && (FF_UB(ff_uc_at(s, i, n, &len)) & set)) i += len;
    return i;
}

static inline uint8_t lower_ascii(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// length of a contraction '(?:[sdmt]|ll|ve|re) at i, 0 if none; case-insensitive also matches U+017F for s
static int contraction(const uint8_t *s, int64_t i, int64_t n, int icase) {
    if (i + 1 >= n || s[i] != '\'') return 0;
    uint8_t a = s[i + 1];
    if (icase) {
        if (a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3;  // long s folds to s
        a = lower_ascii(a);
    }
    if (a == 's' || a == 'd' || a == 'm' || a == 't') return 2;
    if (i + 2 >= n) return 0;
    uint8_t b = icase ? lower_ascii(s[i + 2]) : s[i + 2];
    return ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) ? 3 : 0;
}

// a whitespace run from i: its end, the end of its last \r or \n (0 if none) and the start of its last char
typedef struct {
    int64_t end, nl_end, last;
} ws_run;

static ws_run whitespace(const uint8_t *s, int64_t i, int64_t n) {
    ws_run w = {i, 0, i};
    int len;
    while (w.end < n) {
        int c = ff_uc_at(s, w.end, n, &len);
        if (!(FF_UB(c) & FF_US_S)) break;
        w.last = w.end;
        w.end += len;
        if (c == FF_UC_NL) w.nl_end = w.end;
    }
    return w;
}

// cl100k_base: '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+
//              |\s++$|\s*[\r\n]|\s+(?!\S)|\s
// llama3 (the original cl100k): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//              | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// qwen2: llama3 with \p{N} instead of \p{N}{1,3}
static int64_t next_cl100k(const uint8_t *s, int64_t i, int64_t n, int max_digits, int end_first) {
    int l0, l1;
    int c0 = ff_uc_at(s, i, n, &l0);
    // contractions
    int k = contraction(s, i, n, 1);
    if (k) return i + k;
    // letters, with one leading character that is not \r \n, a letter or a number
    if (in(c0, FF_US_L)) return run(s, i + l0, n, FF_US_L);
    int c1 = cat(s, i + l0, n, &l1);
    if (in(c0, FF_US_X) && in(c1, FF_US_L)) return run(s, i + l0 + l1, n, FF_US_L);
    // numbers, up to max_digits at a time
    if (c0 == FF_UC_N) {
        int64_t j = i + l0;
        for (int d = 1; d < max_digits && in(cat(s, j, n, &l1), FF_US_N); d++) j += l1;
        return j;
    }
    // punctuation with an optional leading space, then any \r \n
    if (s[i] == ' ' && in(c1, FF_US_P)) return run(s, run(s, i + 1, n, FF_US_P), n, FF_US_NL);
    if (in(c0, FF_US_P)) return run(s, run(s, i, n, FF_US_P), n, FF_US_NL);
    // whitespace: to the end of the segment / up to the last newline / all but the last / one
    ws_run w = whitespace(s, i, n);
    if (end_first && w.end == n) return n;
    if (w.nl_end) return w.nl_end;
    if (w.end == n) return n;
    return w.last > i ? w.last : i + l0;
}

// r50k / p50k / gpt2: '(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s
static int64_t next_gpt2(const uint8_t *s, int64_t i, int64_t n) {
    int l0, l1;
    int k = contraction(s, i, n, 0);
    if (k) return i + k;
    int c0 = ff_uc_at(s, i, n, &l0);
    int64_t p = i;
    int c = c0;
    if (s[i] == ' ' && i + 1 < n) {
        p = i + 1;
        c = ff_uc_at(s, p, n, &l1);
    }
    // one class at a time, with an optional leading space
    if (in(c, FF_US_L)) return run(s, p, n, FF_US_L);
    if (in(c, FF_US_N)) return run(s, p, n, FF_US_N);
    if (in(c, FF_US_P)) return run(s, p, n, FF_US_P);
    // whitespace: to the end / all but the last / one
    ws_run w = whitespace(s, i, n);
    if (w.end == n) return n;
    return w.last > i ? w.last : i + l0;
}

// o200k word, lower-case form from p: [Lu Lt Lm Lo M]* [Ll Lm Lo M]+ contraction?; -1 if none
static int64_t o200k_lower(const uint8_t *s, int64_t p, int64_t n) {
    int64_t j = p, last_lo = -1;
    int len, c;
    // the greedy upper run, remembering its last character that may also end the match
    while ((c = cat(s, j, n, &len)) >= 0 && in(c, FF_US_UP)) {
        j += len;
        if (in(c, FF_US_LO)) last_lo = j;
    }
    int64_t e;
    if (in(c, FF_US_LO))
        e = run(s, j, n, FF_US_LO);
    else if (last_lo >= 0)
        e = last_lo;  // backtrack: the lower run is that one character
    else
        return -1;
    return e + contraction(s, e, n, 1);
}

// o200k word, upper-case form from p: [Lu Lt Lm Lo M]+ [Ll Lm Lo M]* contraction?; -1 if none
static int64_t o200k_upper(const uint8_t *s, int64_t p, int64_t n) {
    int64_t j = run(s, p, n, FF_US_UP);
    if (j == p) return -1;
    int64_t e = run(s, j, n, FF_US_LO);
    return e + contraction(s, e, n, 1);
}

// o200k_base: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?
//   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
static int64_t next_o200k(const uint8_t *s, int64_t i, int64_t n) {
    int l0, l1;
    int c0 = ff_uc_at(s, i, n, &l0);
    int64_t e;
    // the two word forms, each first with the optional leading character, then without
    int pre = in(c0, FF_US_X);
    if (pre && (e = o200k_lower(s, i + l0, n)) >= 0) return e;
    if ((e = o200k_lower(s, i, n)) >= 0) return e;
    if (pre && (e = o200k_upper(s, i + l0, n)) >= 0) return e;
    if ((e = o200k_upper(s, i, n)) >= 0) return e;
    // numbers, three at a time
    if (c0 == FF_UC_N) {
        int64_t j = i + l0;
        for (int d = 1; d < 3 && in(cat(s, j, n, &l1), FF_US_N); d++) j += l1;
        return j;
    }
    // punctuation with an optional leading space, then any \r \n /
    int c1 = cat(s, i + l0, n, &l1);
    int64_t j = -1;
    if (s[i] == ' ' && in(c1, FF_US_P))
        j = run(s, i + 1, n, FF_US_P);
    else if (in(c0, FF_US_P))
        j = run(s, i, n, FF_US_P);
    if (j >= 0) {
        while (j < n && (s[j] == '\r' || s[j] == '\n' || s[j] == '/')) j++;
        return j;
    }
    // whitespace: up to the last newline / to the end / all but the last / one
    ws_run w = whitespace(s, i, n);
    if (w.nl_end) return w.nl_end;
    if (w.end == n) return n;
    return w.last > i ? w.last : i + l0;
}

int64_t ff_pretok_next(int kind, const uint8_t *s, int64_t i, int64_t n) {
    switch (kind) {
    case FF_PRETOK_GPT2: return next_gpt2(s, i, n);
    case FF_PRETOK_CL100K: return next_cl100k(s, i, n, 3, 1);
    case FF_PRETOK_O200K: return next_o200k(s, i, n);
    case FF_PRETOK_LLAMA3: return next_cl100k(s, i, n, 3, 0);
    case FF_PRETOK_QWEN2: return next_cl100k(s, i, n, 1, 0);
    default: return n;
    }
}

int64_t ff_pretok_split(int64_t *ends, const uint8_t *text, int64_t n, int kind) {
    ff_unicode_init();
    int64_t k = 0;
    for (int64_t i = 0; i < n; k++) ends[k] = i = ff_pretok_next(kind, text, i, n);
    return k;
}
