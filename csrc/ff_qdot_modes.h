// instantiate the kernel file QINC (written with QN(name), QTARGET and QDOT(u, s)) once per 256-bit int8 dot:
// avx2 maddubs, avx-vnni (vex vpdpbusd) and avx-512 vnni on 256-bit registers (evex vpdpbusd, the same source,
// so machines with avx-512 vnni but no avx-vnni test it); each kernel gets the dot's name as its suffix
#define QCAT_(a, b) a##_##b
#define QCAT(a, b) QCAT_(a, b)
#define QN(x) QCAT(x, QSFX)

#define QSFX maddubs
#define QTARGET FF_AVX2
#define QDOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#include QINC
#undef QSFX
#undef QTARGET
#undef QDOT

#define QSFX avxvnni
#define QTARGET __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QDOT(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#include QINC
#undef QSFX
#undef QTARGET
#undef QDOT

#define QSFX vnni256
#define QTARGET __attribute__((target("avx512f,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QDOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#include QINC
#undef QSFX
#undef QTARGET
#undef QDOT

#undef QN
#undef QCAT
#undef QCAT_
