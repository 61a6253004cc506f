// unicode categories, utf-8 decoding and the split scanners shared by ff_pretok.c and ff_bpe.c
#ifndef FF_UNICODE_H
#define FF_UNICODE_H

#include <stdint.h>

// the categories the split patterns distinguish (tools/gen_unicode_table.py writes the table)
enum {
    FF_UC_OTHER,  // symbols, controls, unassigned
    FF_UC_LU,     // \p{Lu}
    FF_UC_LL,     // \p{Ll}
    FF_UC_LT,     // \p{Lt}
    FF_UC_LM,     // \p{Lm}
    FF_UC_LO,     // \p{Lo}
    FF_UC_M,      // \p{M}
    FF_UC_N,      // \p{N}
    FF_UC_WS,     // \s other than \r \n
    FF_UC_NL,     // \r \n
    FF_UC_P,      // \p{P}
};

// sets of categories as bit masks
#define FF_UB(c) (1u << (c))
#define FF_US_L (FF_UB(FF_UC_LU) | FF_UB(FF_UC_LL) | FF_UB(FF_UC_LT) | FF_UB(FF_UC_LM) | FF_UB(FF_UC_LO))
#define FF_US_N FF_UB(FF_UC_N)
#define FF_US_S (FF_UB(FF_UC_WS) | FF_UB(FF_UC_NL))
#define FF_US_NL FF_UB(FF_UC_NL)
#define FF_US_P (FF_UB(FF_UC_OTHER) | FF_UB(FF_UC_M) | FF_UB(FF_UC_P))  // [^\s\p{L}\p{N}]
#define FF_US_X (FF_US_P | FF_UB(FF_UC_WS))                             // [^\r\n\p{L}\p{N}]
#define FF_US_UP (FF_UB(FF_UC_LU) | FF_UB(FF_UC_LT) | FF_UB(FF_UC_LM) | FF_UB(FF_UC_LO) | FF_UB(FF_UC_M))
#define FF_US_LO (FF_UB(FF_UC_LL) | FF_UB(FF_UC_LM) | FF_UB(FF_UC_LO) | FF_UB(FF_UC_M))

extern uint8_t ff_ucat[0x110000];  // category of every code point, filled by ff_unicode_init
void ff_unicode_init(void);        // idempotent and thread-safe
const char *ff_unicode_version(void);

// category of the character at s[i] (i < n) and its length in bytes; a malformed byte is OTHER of length 1
static inline int ff_uc_at(const uint8_t *s, int64_t i, int64_t n, int *len) {
    uint32_t c = s[i];
    if (c < 0x80) {
        *len = 1;
        return ff_ucat[c];
    }
    uint32_t cp;
    int l;
    if (c >= 0xC2 && c < 0xE0 && i + 1 < n) {
        cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
        l = 2;
    } else if (c >= 0xE0 && c < 0xF0 && i + 2 < n) {
        cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3F);
        l = 3;
    } else if (c >= 0xF0 && c < 0xF5 && i + 3 < n) {
        cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3F);
        l = 4;
    } else {
        *len = 1;
        return FF_UC_OTHER;
    }
    *len = l;
    return cp < 0x110000 ? ff_ucat[cp] : FF_UC_OTHER;
}

// byte length of the utf-8 character starting with byte c (1 for a malformed byte)
static inline int ff_utf8_len(uint8_t c) { return c < 0xC2 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1; }

// what a list of split regexes (llama.cpp's) has cut so far: the end of the current piece of each regex
#define FF_PRETOK_STEPS 6
typedef struct {
    int64_t end[FF_PRETOK_STEPS];
} ff_pretok_state;

// end of the piece that starts at i < n of s under split pattern `kind` (enum ff_pretok in fastformer.h); st is
// zeroed before the first piece of each text, and i is the end of the piece before
int64_t ff_pretok_next(int kind, const uint8_t *s, int64_t i, int64_t n, ff_pretok_state *st);

#endif
