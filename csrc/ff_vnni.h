// shared by the avx-512 vnni kernel files (ff_qdot.c, ff_qdot_r16k.c, ff_qlegacy_simd.c, ff_qk2_simd.c): their
// target attribute and the loads their int8 dot loops share
#ifndef FF_VNNI_H
#define FF_VNNI_H
#include "ff_internal.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define AI __attribute__((always_inline))
#define FF_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

// 4 int8 activations from any address
static inline int32_t ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// acc += the unsigned bytes of x times the 4 signed bytes at p, broadcast to every lane: one vpdpbusd with an
// embedded broadcast, where gcc loads and broadcasts in an instruction of its own (a fifth of the q4_k decode's
// in-cache time on zen 4, whose 512-bit ops take two cycles of a 256-bit pipe)
static inline AI FF_VNNI __m512i ff_dpbusd_b4(__m512i acc, __m512i x, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*(const int32_t *)(const void *)p));
    return acc;
}

// the one-row (decode) kernels' software prefetch, `ahead` bytes on (ff_qact.ahead; the defaults and why in
// ff_cpu.c), 0 for none: into L2 the lines of [p, p + bytes) moved `ahead` on, those below `end` (the end of the
// call's W). Called once per chunk of a tile (a super-block, two blocks) with the chunk's bytes, so the prefetches
// keep pace with the loads a few dozen at a time; addresses as integers, as they may lie past W
static inline AI void ff_prefetch_ahead(const uint8_t *p, int64_t bytes, const uint8_t *end, int64_t ahead) {
    if (!ahead) return;
    uintptr_t q = (uintptr_t)p + (uintptr_t)ahead, e = q + (uintptr_t)bytes;
    if (e > (uintptr_t)end) e = (uintptr_t)end;
    for (; q < e; q += 64) _mm_prefetch((const char *)q, _MM_HINT_T1);
}

// ff_prefetch_ahead of part i of n of the bytes of a tile at t (the last part takes the remainder): a kernel issues
// one part per group it reads, so the prefetches keep pace with the loads (ff_qdot_r16k.c says why)
static inline AI void ff_prefetch_part(const uint8_t *t, int64_t bytes, int i, int n, const uint8_t *end,
                                       int64_t ahead) {
    int64_t part = bytes / n;
    ff_prefetch_ahead(t + i * part, i == n - 1 ? bytes - i * part : part, end, ahead);
}

// x as loaded: gcc would fold its load into each instruction that reads it, loading the 64 bytes again
#define FF_IN_REG(x) __asm__("" : "+v"(x))

// 128-bit lane i (0..3) and 256-bit half i (0..1) of v: the extract takes an immediate, which an index computed in
// a loop is only once the loop is unrolled (not at -O1, as the sanitizer build compiles)
static inline AI FF_VNNI __m128i ff_lane128(__m512i v, int i) {
    switch (i) {
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    case 3: return _mm512_extracti32x4_epi32(v, 3);
    default: return _mm512_castsi512_si128(v);
    }
}

static inline AI FF_VNNI __m256i ff_half256(__m512i v, int i) {
    return i ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v);
}
#endif
#endif
