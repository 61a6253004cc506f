// SIMD int8 dot kernels for q4_1, q5_0, q5_1 and iq4_nl (ff_qlegacy.c has the formats and the scalar twins):
// 256-bit kernels (ff_qlegacy_avx2.inc) built once per int8 dot (avx2 maddubs, avx-vnni, avx-512 vnni on ymm;
// chosen by ff_quant_dot256), and avx-512 vnni kernels with 512-bit vpdpbusd for the avx512 table.
// each block's int dot is exact and scaled by d_w * d_a in float, like the _ref twins
#include "ff_qlegacy.h"

#include "ff_internal.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define AI __attribute__((always_inline))
#define FF_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

// the four types as kernel constants, and their block sizes
enum { QL_Q4_1, QL_Q5_0, QL_Q5_1, QL_IQ4_NL };
#define QL_BYTES(qt) \
    ((qt) == QL_Q4_1 ? FF_Q4_1_BYTES : (qt) == QL_Q5_0 ? FF_Q5_0_BYTES : (qt) == QL_Q5_1 ? FF_Q5_1_BYTES : FF_IQ4_NL_BYTES)

// fp16 values at p, p + bsz, ... (the first cnt of 4; 0 after) packed into 64 bits by scalar loads
static inline AI uint64_t fp16x4(const uint8_t *p, int bsz, int cnt) {
    uint64_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (i < cnt) {
            uint16_t h;
            memcpy(&h, p + i * bsz, 2);
            uint64_t x = h;
            __asm__("" : "+r"(x));  // stay in a general register
            v |= x << (16 * i);
        }
    }
    return v;
}

// fp16 values of cnt <= 8 blocks bsz bytes apart, as floats (0 past cnt)
static inline AI FF_AVX2 __m256 scales8(const uint8_t *p, int bsz, int cnt) {
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)fp16x4(p + 4 * bsz, bsz, cnt - 4), (long long)fp16x4(p, bsz, cnt)));
}

static inline FF_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 16 bytes of nibbles -> 32 bytes in weight order: low nibbles (weights 0..15), then high nibbles (16..31)
static inline AI FF_AVX2 __m256i nibbles32(const uint8_t *qs) {
    __m128i qb = _mm_loadu_si128((const __m128i *)(const void *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qb, 4), qb), _mm256_set1_epi8(15));
}

// 32 bits at qh -> 32 bytes, 0xff where bit j is set
static inline AI FF_AVX2 __m256i high_bits32(const uint8_t *qh) {
    int32_t h;
    memcpy(&h, qh, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                            3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);  // byte i of each 8: bit i
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(h), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

#define QCAT_(a, b) a##_##b
#define QCAT(a, b) QCAT_(a, b)
#define QN(x) QCAT(x, QSFX)

#define QSFX maddubs
#define QTARGET FF_AVX2
#define QDOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#include "ff_qlegacy_avx2.inc"
#undef QSFX
#undef QTARGET
#undef QDOT

#define QSFX avxvnni
#define QTARGET __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QDOT(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#include "ff_qlegacy_avx2.inc"
#undef QSFX
#undef QTARGET
#undef QDOT

#define QSFX vnni256
#define QTARGET __attribute__((target("avx512f,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QDOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#include "ff_qlegacy_avx2.inc"
#undef QSFX
#undef QTARGET
#undef QDOT

// the avx2 table's entries: the int8 dot ff_quant_dot256() names; the avx512 table's: vnni where it runs
#define FF_QLEGACY_SIMD(qt)                                                                                        \
    FF_AVX2 void ff_qdot_##qt##_avx2(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride,   \
                                     int64_t n, const ff_qact *a, int m) {                                         \
        switch (ff_quant_dot256()) {                                                                               \
        case FF_DOT256_AVXVNNI: qdot_##qt##_avxvnni(y, ldy, w, stride, n, a, m); break;                            \
        case FF_DOT256_VNNI256: qdot_##qt##_vnni256(y, ldy, w, stride, n, a, m); break;                            \
        default: qdot_##qt##_maddubs(y, ldy, w, stride, n, a, m); break;                                           \
        }                                                                                                          \
    }                                                                                                              \
    FF_AVX512 void ff_qdot_##qt##_avx512(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t stride, \
                                         int64_t n, const ff_qact *a, int m) {                                     \
        if (ff_quant_vnni())                                                                                       \
            qdot_##qt##_vnni(y, ldy, w, stride, n, a, m);                                                          \
        else                                                                                                       \
            ff_qdot_##qt##_avx2(y, ldy, w, stride, n, a, m);                                                       \
    }

#define qdot_q4_1_vnni qdot_q4_1_vnni256
#define qdot_q5_0_vnni qdot_q5_0_vnni256
#define qdot_q5_1_vnni qdot_q5_1_vnni256
#define qdot_iq4_nl_vnni qdot_iq4_nl_vnni256
FF_QLEGACY_SIMD(q4_1)
FF_QLEGACY_SIMD(q5_0)
FF_QLEGACY_SIMD(q5_1)
FF_QLEGACY_SIMD(iq4_nl)
#endif
