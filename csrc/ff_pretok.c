// split scanners: hand-written matchers for the pre-tokenization regexes of tiktoken and hf tokenizer.json
// files, and for llama.cpp's (by GGUF tokenizer.ggml.pre). each returns the end of the leftmost-first match at i,
// exactly as the backtracking regex would (ordered alternation, greedy and possessive quantifiers, \s+(?!\S),
// $ = end of the segment); a list of llama.cpp's regexes is run as it runs them, one cutting the pieces of the
// one before.
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

// how a contraction matches: as written, ascii case-insensitive ('[sS]), or (?i) which also folds U+017F to s
enum { CASE_EXACT, CASE_ASCII, CASE_FOLD };

// length of a contraction '(?:[sdmt]|ll|ve|re) at i, 0 if none
static int contraction(const uint8_t *s, int64_t i, int64_t n, int icase) {
    if (i + 1 >= n || s[i] != '\'') return 0;
    uint8_t a = s[i + 1];
    if (icase == CASE_FOLD && a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3;  // long s folds to s
    if (icase) a = lower_ascii(a);
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
    int k = contraction(s, i, n, CASE_FOLD);
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
    int k = contraction(s, i, n, CASE_EXACT);
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

// the o200k family: o200k_base and llama.cpp's gpt-4o and tekken regexes, which spell o200k's case classes as
// ((?=[\p{L}])([^a-z])) and ((?=[\p{L}])([^A-Z])): letters, read by ascii
typedef struct {
    int ascii;       // llama.cpp's case classes
    int contr;       // contractions after a word: CASE_FOLD, CASE_ASCII, or -1 for none
    int max_digits;  // \p{N}{1,max_digits}
} o200k_form;

static const o200k_form O200K = {0, CASE_FOLD, 3}, GPT4O = {1, CASE_ASCII, 3}, TEKKEN = {1, -1, 1};

// category at i (-1 at the end) as the word classes read it: with `ascii` a letter outside ascii is in both
// case classes (as Lo is in o200k's) and a mark is in neither
static inline int wcat(const uint8_t *s, int64_t i, int64_t n, int *len, int ascii) {
    int c = cat(s, i, n, len);
    if (!ascii || c < 0) return c;
    if (c == FF_UC_M) return FF_UC_OTHER;
    return s[i] >= 0x80 && in(c, FF_US_L) ? FF_UC_LO : c;
}

static inline int64_t wrun(const uint8_t *s, int64_t i, int64_t n, uint32_t set, int ascii) {
    int len;
    while (in(wcat(s, i, n, &len, ascii), set)) i += len;
    return i;
}

static inline int64_t word_end(const uint8_t *s, int64_t e, int64_t n, const o200k_form *f) {
    return f->contr < 0 ? e : e + contraction(s, e, n, f->contr);
}

// o200k word, lower-case form from p: [Lu Lt Lm Lo M]* [Ll Lm Lo M]+ contraction?; -1 if none
static int64_t o200k_lower(const uint8_t *s, int64_t p, int64_t n, const o200k_form *f) {
    int64_t j = p, last_lo = -1;
    int len, c;
    // the greedy upper run, remembering its last character that may also end the match
    while (in(c = wcat(s, j, n, &len, f->ascii), FF_US_UP)) {
        j += len;
        if (in(c, FF_US_LO)) last_lo = j;
    }
    int64_t e;
    if (in(c, FF_US_LO))
        e = wrun(s, j, n, FF_US_LO, f->ascii);
    else if (last_lo >= 0)
        e = last_lo;  // backtrack: the lower run is that one character
    else
        return -1;
    return word_end(s, e, n, f);
}

// o200k word, upper-case form from p: [Lu Lt Lm Lo M]+ [Ll Lm Lo M]* contraction?; -1 if none
static int64_t o200k_upper(const uint8_t *s, int64_t p, int64_t n, const o200k_form *f) {
    int64_t j = wrun(s, p, n, FF_US_UP, f->ascii);
    if (j == p) return -1;
    return word_end(s, wrun(s, j, n, FF_US_LO, f->ascii), n, f);
}

// o200k_base: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?
//   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// gpt-4o: the same with llama.cpp's case classes and '[sS]|'[tT]|...; tekken: no contractions, \p{N}
static int64_t next_o200k(const uint8_t *s, int64_t i, int64_t n, const o200k_form *f) {
    int l0, l1;
    int c0 = ff_uc_at(s, i, n, &l0);
    int64_t e;
    // the two word forms, each first with the optional leading character, then without
    int pre = in(c0, FF_US_X);
    if (pre && (e = o200k_lower(s, i + l0, n, f)) >= 0) return e;
    if ((e = o200k_lower(s, i, n, f)) >= 0) return e;
    if (pre && (e = o200k_upper(s, i + l0, n, f)) >= 0) return e;
    if ((e = o200k_upper(s, i, n, f)) >= 0) return e;
    // numbers, max_digits at a time
    if (c0 == FF_UC_N) {
        int64_t j = i + l0;
        for (int d = 1; d < f->max_digits && in(cat(s, j, n, &l1), FF_US_N); d++) j += l1;
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

// ---- llama.cpp's lists of regexes: each cuts every piece of the one before, text between matches stays a piece
// a step's piece at i is its match at i, or the text up to its next match; i is a piece boundary of every step

// code point at i (i < n) and its length; a malformed byte reads as 0xFFFFFFFF, in no class
static inline uint32_t cp_at(const uint8_t *s, int64_t i, int64_t n, int *len) {
    ff_uc_at(s, i, n, len);
    if (*len == 1) return s[i] < 0x80 ? s[i] : 0xFFFFFFFF;
    uint32_t cp = s[i] & (0x7F >> *len);
    for (int k = 1; k < *len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
    return cp;
}

static int in_ranges(uint32_t cp, const uint32_t (*r)[2], int count) {
    int lo = 0, hi = count;  // binary search for the last range starting at or before cp
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (r[mid][0] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return r[lo][0] <= cp && cp <= r[lo][1];
}

// deepseek-llm's letters, as its tokenizer.json lists them
static const uint32_t deepseek_letters[][2] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

// the classes the steps match, one character at i each: its length, 0 if it is not in the class
enum { C_LETTER, C_PUNCT, C_DS_LETTER, C_DS_PUNCT, C_CJK, C_NUMBER };

static int char_in(int cls, const uint8_t *s, int64_t i, int64_t n) {
    int len;
    uint32_t cp;
    int c = ff_uc_at(s, i, n, &len);
    switch (cls) {
    case C_LETTER: return in(c, FF_US_L) ? len : 0;
    case C_PUNCT: return c == FF_UC_P ? len : 0;
    case C_NUMBER: return c == FF_UC_N ? len : 0;
    case C_DS_LETTER:
        cp = cp_at(s, i, n, &len);
        return in_ranges(cp, deepseek_letters, sizeof(deepseek_letters) / sizeof(deepseek_letters[0])) ? len : 0;
    case C_DS_PUNCT:  // (?!\s)[!-/:-~！-／：-～‘-‟　-。]: U+3000 is whitespace
        cp = cp_at(s, i, n, &len);
        return ((cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x7E) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
                (cp >= 0xFF1A && cp <= 0xFF5E) || (cp >= 0x2018 && cp <= 0x201F) || (cp >= 0x3001 && cp <= 0x3002))
                   ? len
                   : 0;
    case C_CJK:  // (?!\s)[一-龥ࠀ-一가-퟿]
        cp = cp_at(s, i, n, &len);
        return ((cp >= 0x800 && cp <= 0x9FA5) || (cp >= 0xAC00 && cp <= 0xD7FF)) && c != FF_UC_WS ? len : 0;
    default: return 0;
    }
}

// end of one character of class cls at i, -1 if none
static int64_t class_one(int cls, const uint8_t *s, int64_t i, int64_t n) {
    int len = char_in(cls, s, i, n);
    return len ? i + len : -1;
}

// end of the run of class cls from i, -1 if empty
static int64_t class_run(int cls, const uint8_t *s, int64_t i, int64_t n) {
    int64_t j = i;
    for (int len; j < n && (len = char_in(cls, s, j, n)); j += len);
    return j > i ? j : -1;
}

// [\p{P}<extra>]+ with `extra` ascii symbols
static int64_t symbol_run(const uint8_t *s, int64_t i, int64_t n, const char *extra) {
    int64_t j = i;
    int len;
    while (j < n && (ff_uc_at(s, j, n, &len) == FF_UC_P || (s[j] && s[j] < 0x80 && strchr(extra, s[j])))) j += len;
    return j > i ? j : -1;
}

// \s?X+ for class X (which holds no whitespace)
static int64_t space_run(int cls, const uint8_t *s, int64_t i, int64_t n) {
    int len;
    if (in(ff_uc_at(s, i, n, &len), FF_US_S)) return i + len < n ? class_run(cls, s, i + len, n) : -1;
    return class_run(cls, s, i, n);
}

static inline int digit(uint8_t c) { return c >= '0' && c <= '9'; }

// the steps: each regex of the lists
enum {
    S_END,          // (the end of a list)
    S_GPT2,         // GPT-2's regex (it matches everywhere)
    S_SYMBOLS,      // [\p{P}\$\+<=>\^~\|]+
    S_SYMBOLS_BQ,   // [\p{P}\$\+<=>\^~\|`]+
    S_NUMBERS,      // \p{N}+
    S_NUMBER,       // \p{N}
    S_DIGITS3,      // [0-9][0-9][0-9]
    S_NEWLINE,      // [\r\n]
    S_LETTERS,      // \s?\p{L}+
    S_PUNCT,        // \s?\p{P}+
    S_DS_LETTERS,   // \s?[deepseek_letters]+
    S_DS_PUNCT,     // \s?(?:(?!\s)[!-/:-~！-／：-～‘-‟　-。])+
    S_DS_TRAILING,  // \s+$
    S_CJK,          // (?:(?!\s)[一-龥ࠀ-一가-퟿])+
};

// end of the match of step k at i, -1 if none
static int64_t step_match(int k, const uint8_t *s, int64_t i, int64_t n) {
    switch (k) {
    case S_SYMBOLS: return symbol_run(s, i, n, "$+<=>^~|");
    case S_SYMBOLS_BQ: return symbol_run(s, i, n, "$+<=>^~|`");
    case S_NUMBERS: return class_run(C_NUMBER, s, i, n);
    case S_NUMBER: return class_one(C_NUMBER, s, i, n);
    case S_DIGITS3: return i + 2 < n && digit(s[i]) && digit(s[i + 1]) && digit(s[i + 2]) ? i + 3 : -1;
    case S_NEWLINE: return s[i] == '\r' || s[i] == '\n' ? i + 1 : -1;
    case S_LETTERS: return space_run(C_LETTER, s, i, n);
    case S_PUNCT: return space_run(C_PUNCT, s, i, n);
    case S_DS_LETTERS: return space_run(C_DS_LETTER, s, i, n);
    case S_DS_PUNCT: return space_run(C_DS_PUNCT, s, i, n);
    case S_CJK: return class_run(C_CJK, s, i, n);
    default: return -1;
    }
}

// \s+$ as a step: the whitespace that ends the piece, or the text before it
static int64_t step_trailing(const uint8_t *s, int64_t i, int64_t n) {
    int64_t start = -1;  // of the whitespace run that reaches j
    int len;
    for (int64_t j = i; j < n; j += len) {
        if (in(ff_uc_at(s, j, n, &len), FF_US_S))
            start = start < 0 ? j : start;
        else
            start = -1;
    }
    return start > i ? start : n;
}

// end of step k's piece at i within a piece that ends at n
static int64_t step_next(int k, const uint8_t *s, int64_t i, int64_t n) {
    if (k == S_GPT2) return next_gpt2(s, i, n);
    if (k == S_DS_TRAILING) return step_trailing(s, i, n);
    int64_t e = step_match(k, s, i, n);
    if (e >= 0) return e;
    // no match at i: the piece runs to the next match
    int len;
    do {
        ff_uc_at(s, i, n, &len);
        i += len;
    } while (i < n && step_match(k, s, i, n) < 0);
    return i;
}

// the steps of each list kind, in the order they cut
static const uint8_t list_steps[FF_PRETOK_COUNT][FF_PRETOK_STEPS] = {
    [FF_PRETOK_GGUF_DEFAULT] = {S_SYMBOLS, S_GPT2, S_NUMBERS, S_DIGITS3},
    [FF_PRETOK_FALCON] = {S_SYMBOLS_BQ, S_GPT2, S_DIGITS3},
    [FF_PRETOK_DEEPSEEK_LLM] = {S_NEWLINE, S_DS_LETTERS, S_DS_PUNCT, S_DS_TRAILING, S_CJK, S_NUMBERS},
    [FF_PRETOK_DEEPSEEK_CODER] = {S_NEWLINE, S_LETTERS, S_PUNCT, S_CJK, S_NUMBER},
    [FF_PRETOK_DIGITS_GPT2] = {S_NUMBER, S_GPT2},
};

// a list kind: each step cuts the piece of the step before that holds i; st keeps the end of each step's piece,
// which the pieces after i share until i reaches it (so every step scans the text once)
static int64_t next_list(const uint8_t *steps, const uint8_t *s, int64_t i, int64_t n, ff_pretok_state *st) {
    int64_t end = n;
    for (int k = 0; k < FF_PRETOK_STEPS && steps[k] != S_END; k++) {
        if (i >= st->end[k]) st->end[k] = step_next(steps[k], s, i, end);
        end = st->end[k];
    }
    return end;
}

int64_t ff_pretok_next(int kind, const uint8_t *s, int64_t i, int64_t n, ff_pretok_state *st) {
    switch (kind) {
    case FF_PRETOK_GPT2: return next_gpt2(s, i, n);
    case FF_PRETOK_CL100K: return next_cl100k(s, i, n, 3, 1);
    case FF_PRETOK_O200K: return next_o200k(s, i, n, &O200K);
    case FF_PRETOK_GPT4O: return next_o200k(s, i, n, &GPT4O);
    case FF_PRETOK_TEKKEN: return next_o200k(s, i, n, &TEKKEN);
    case FF_PRETOK_LLAMA3: return next_cl100k(s, i, n, 3, 0);
    case FF_PRETOK_QWEN2: return next_cl100k(s, i, n, 1, 0);
    default:
        return kind > 0 && kind < FF_PRETOK_COUNT && list_steps[kind][0] ? next_list(list_steps[kind], s, i, n, st) : n;
    }
}

int64_t ff_pretok_split(int64_t *ends, const uint8_t *text, int64_t n, int kind) {
    ff_unicode_init();
    int64_t k = 0;
    ff_pretok_state st = {{0}};
    for (int64_t i = 0; i < n; k++) ends[k] = i = ff_pretok_next(kind, text, i, n, &st);
    return k;
}
