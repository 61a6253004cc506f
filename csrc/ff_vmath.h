// vector exp, sigmoid, tanh, erf and erfc for avx2 (8 lanes) and avx-512 (16 lanes).
// include from kernel files; use only inside functions compiled with FF_AVX2 / FF_AVX512.
// exp: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial, times 2^n; below -104 it is 0, above 89
// inf, nan stays nan. erf: x + x q(x^2) for |x| < 0.921875, else 1 - erfc(|x|); erfc(t) = exp(g(t)), g a fit
// of log(erfc). coefficients are minimax fits checked against mpmath. max errors on dense sweeps: exp 0.9 ulp,
// sigmoid 2.4, tanh 1.4, erf 1.3; erfc 3 ulp for t <= 1, then limited by the rounding of g ~ -t^2 (11 ulp at 2).
#ifndef FF_VMATH_H
#define FF_VMATH_H

#include "ff_hsum.h"
#include "ff_internal.h"

#ifdef FF_HAVE_X86
#include <immintrin.h>

#define FF_EXP_LO -104.0f
#define FF_EXP_HI 89.0f
#define FF_LOG2E 1.44269504088896341f
#define FF_LN2_HI 0.693359375f     // 9 significant bits: n * FF_LN2_HI is exact for |n| <= 150
#define FF_LN2_LO -2.12194440e-4f  // ln2 - FF_LN2_HI
// exp(r) = 1 + r (1 + r (E0 + E1 r + ... + E4 r^4))
#define FF_EXP_E0 0.5f
#define FF_EXP_E1 0.166665181517601f
#define FF_EXP_E2 0.04166620597243309f
#define FF_EXP_E3 0.008368889801204205f
#define FF_EXP_E4 0.0013950489228591323f
// tanh(x) = x + x s (T0 + T1 s + ... + T4 s^4), s = x^2, for |x| < FF_TANH_SMALL
#define FF_TANH_SMALL 0.625f
#define FF_TANH_T0 -0.3333328366279602f
#define FF_TANH_T1 0.13331490755081177f
#define FF_TANH_T2 -0.05374349281191826f
#define FF_TANH_T3 0.020650574937462807f
#define FF_TANH_T4 -0.005717032589018345f
// erf(x) = x + x (A0 + A1 s + ... + A5 s^5), s = x^2, for |x| < FF_ERF_SMALL
#define FF_ERF_SMALL 0.921875f
#define FF_ERF_A0 0.12837915122509003f
#define FF_ERF_A1 -0.3761250674724579f
#define FF_ERF_A2 0.11281926929950714f
#define FF_ERF_A3 -0.026770232245326042f
#define FF_ERF_A4 0.004998000804334879f
#define FF_ERF_A5 -0.0006013393285684288f
// erfc(t) = exp(B0 + B1 t + ... + B11 t^11) for 0 <= t <= FF_ERFC_BIG, 0 beyond (erfc(4.5) = 2e-10)
#define FF_ERFC_BIG 4.5f
#define FF_ERFC_B0 7.547407676611328e-08f
#define FF_ERFC_B1 -1.128383994102478f
#define FF_ERFC_B2 -0.6365688443183899f
#define FF_ERFC_B3 -0.10297933220863342f
#define FF_ERFC_B4 0.01954745501279831f
#define FF_ERFC_B5 -0.00025282896240241826f
#define FF_ERFC_B6 -0.0014429747825488448f
#define FF_ERFC_B7 0.0005911254556849599f
#define FF_ERFC_B8 -0.00013306652544997633f
#define FF_ERFC_B9 1.837318268371746e-05f
#define FF_ERFC_B10 -1.4570135817848495e-06f
#define FF_ERFC_B11 5.0956753483433204e-08f

// ---- avx2: 8 lanes ----

#define FF_S8(v) _mm256_set1_ps(v)
#define FF_FMA8(a, b, c) _mm256_fmadd_ps(a, b, FF_S8(c))

static inline FF_AVX2 __m256 ff_abs_ps256(__m256 x) { return _mm256_andnot_ps(FF_S8(-0.0f), x); }

// exp(x) for x in [FF_EXP_LO, FF_EXP_HI] or nan
static inline FF_AVX2 __m256 ff_exp_core_ps256(__m256 x) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, FF_S8(FF_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, FF_S8(FF_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, FF_S8(FF_LN2_LO), r);
    __m256 p = FF_FMA8(FF_S8(FF_EXP_E4), r, FF_EXP_E3);
    p = FF_FMA8(p, r, FF_EXP_E2);
    p = FF_FMA8(p, r, FF_EXP_E1);
    p = FF_FMA8(p, r, FF_EXP_E0);
    p = FF_FMA8(p, r, 1.0f);
    p = FF_FMA8(p, r, 1.0f);
    // scale by 2^n as 2^(n>>1) * 2^(n - (n>>1)) so n = 128 and n = -150 stay representable
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline FF_AVX2 __m256 ff_exp_ps256(__m256 x) {
    // max/min return their second operand when one is nan, so nan passes the clamp
    return ff_exp_core_ps256(_mm256_min_ps(FF_S8(FF_EXP_HI), _mm256_max_ps(FF_S8(FF_EXP_LO), x)));
}

// x * sigmoid(u) with one division: x / (1 + exp(-u)), or x e / (1 + e) with e = exp(u) for negative u
// so exp never overflows
static inline FF_AVX2 __m256 ff_mul_sigmoid_ps256(__m256 x, __m256 u) {
    __m256 e = ff_exp_core_ps256(_mm256_max_ps(FF_S8(FF_EXP_LO), _mm256_or_ps(u, FF_S8(-0.0f))));
    return _mm256_div_ps(_mm256_blendv_ps(x, _mm256_mul_ps(x, e), u), _mm256_add_ps(e, FF_S8(1.0f)));
}

static inline FF_AVX2 __m256 ff_sigmoid_ps256(__m256 u) { return ff_mul_sigmoid_ps256(FF_S8(1.0f), u); }

static inline FF_AVX2 __m256 ff_tanh_ps256(__m256 x) {
    __m256 t = ff_abs_ps256(x), s = _mm256_mul_ps(x, x);
    // small |x|: odd polynomial
    __m256 p = FF_FMA8(FF_S8(FF_TANH_T4), s, FF_TANH_T3);
    p = FF_FMA8(p, s, FF_TANH_T2);
    p = FF_FMA8(p, s, FF_TANH_T1);
    p = FF_FMA8(p, s, FF_TANH_T0);
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, s), x, x);
    // large |x|: 1 - 2 / (exp(2|x|) + 1) with the sign of x; tanh(9) rounds to 1
    __m256 e = ff_exp_ps256(_mm256_add_ps(t, t));
    __m256 big = _mm256_sub_ps(FF_S8(1.0f), _mm256_div_ps(FF_S8(2.0f), _mm256_add_ps(e, FF_S8(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, FF_S8(-0.0f)));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(t, FF_S8(FF_TANH_SMALL), _CMP_LT_OQ));
}

// q(s) with erf(x) = x + x q(x^2) for |x| < FF_ERF_SMALL
static inline FF_AVX2 __m256 ff_erf_small_ps256(__m256 s) {
    __m256 p = FF_FMA8(FF_S8(FF_ERF_A5), s, FF_ERF_A4);
    p = FF_FMA8(p, s, FF_ERF_A3);
    p = FF_FMA8(p, s, FF_ERF_A2);
    p = FF_FMA8(p, s, FF_ERF_A1);
    return FF_FMA8(p, s, FF_ERF_A0);
}

// erfc(t) for t >= 0 (0 past FF_ERFC_BIG, nan stays nan)
static inline FF_AVX2 __m256 ff_erfc_pos_ps256(__m256 t) {
    __m256 u = _mm256_min_ps(FF_S8(FF_ERFC_BIG), t);
    __m256 g = FF_FMA8(FF_S8(FF_ERFC_B11), u, FF_ERFC_B10);
    g = FF_FMA8(g, u, FF_ERFC_B9);
    g = FF_FMA8(g, u, FF_ERFC_B8);
    g = FF_FMA8(g, u, FF_ERFC_B7);
    g = FF_FMA8(g, u, FF_ERFC_B6);
    g = FF_FMA8(g, u, FF_ERFC_B5);
    g = FF_FMA8(g, u, FF_ERFC_B4);
    g = FF_FMA8(g, u, FF_ERFC_B3);
    g = FF_FMA8(g, u, FF_ERFC_B2);
    g = FF_FMA8(g, u, FF_ERFC_B1);
    g = FF_FMA8(g, u, FF_ERFC_B0);
    return _mm256_andnot_ps(_mm256_cmp_ps(t, FF_S8(FF_ERFC_BIG), _CMP_GT_OQ), ff_exp_core_ps256(g));
}

static inline FF_AVX2 __m256 ff_erf_ps256(__m256 x) {
    __m256 t = ff_abs_ps256(x);
    __m256 small = _mm256_fmadd_ps(ff_erf_small_ps256(_mm256_mul_ps(x, x)), x, x);
    __m256 big = _mm256_sub_ps(FF_S8(1.0f), ff_erfc_pos_ps256(t));
    big = _mm256_or_ps(big, _mm256_and_ps(x, FF_S8(-0.0f)));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(t, FF_S8(FF_ERF_SMALL), _CMP_LT_OQ));
}

// ---- avx-512: 16 lanes ----

#define FF_S16(v) _mm512_set1_ps(v)
#define FF_FMA16(a, b, c) _mm512_fmadd_ps(a, b, FF_S16(c))

static inline FF_AVX512 __m512 ff_exp_core_ps512(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, FF_S16(FF_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, FF_S16(FF_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, FF_S16(FF_LN2_LO), r);
    __m512 p = FF_FMA16(FF_S16(FF_EXP_E4), r, FF_EXP_E3);
    p = FF_FMA16(p, r, FF_EXP_E2);
    p = FF_FMA16(p, r, FF_EXP_E1);
    p = FF_FMA16(p, r, FF_EXP_E0);
    p = FF_FMA16(p, r, 1.0f);
    p = FF_FMA16(p, r, 1.0f);
    // scalef rounds once, overflows to inf and underflows through the subnormals
    return _mm512_scalef_ps(p, n);
}

static inline FF_AVX512 __m512 ff_exp_ps512(__m512 x) {
    return ff_exp_core_ps512(_mm512_min_ps(FF_S16(FF_EXP_HI), _mm512_max_ps(FF_S16(FF_EXP_LO), x)));
}

static inline FF_AVX512 __m512 ff_mul_sigmoid_ps512(__m512 x, __m512 u) {
    __m512 e = ff_exp_core_ps512(_mm512_max_ps(FF_S16(FF_EXP_LO), _mm512_or_ps(u, FF_S16(-0.0f))));
    __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(u));
    return _mm512_div_ps(_mm512_mask_mul_ps(x, neg, x, e), _mm512_add_ps(e, FF_S16(1.0f)));
}

static inline FF_AVX512 __m512 ff_sigmoid_ps512(__m512 u) { return ff_mul_sigmoid_ps512(FF_S16(1.0f), u); }

static inline FF_AVX512 __m512 ff_tanh_ps512(__m512 x) {
    __m512 t = _mm512_abs_ps(x), s = _mm512_mul_ps(x, x);
    __m512 p = FF_FMA16(FF_S16(FF_TANH_T4), s, FF_TANH_T3);
    p = FF_FMA16(p, s, FF_TANH_T2);
    p = FF_FMA16(p, s, FF_TANH_T1);
    p = FF_FMA16(p, s, FF_TANH_T0);
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, s), x, x);
    __m512 e = ff_exp_ps512(_mm512_add_ps(t, t));
    __m512 big = _mm512_sub_ps(FF_S16(1.0f), _mm512_div_ps(FF_S16(2.0f), _mm512_add_ps(e, FF_S16(1.0f))));
    big = _mm512_or_ps(big, _mm512_and_ps(x, FF_S16(-0.0f)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, FF_S16(FF_TANH_SMALL), _CMP_LT_OQ), big, small);
}

static inline FF_AVX512 __m512 ff_erf_small_ps512(__m512 s) {
    __m512 p = FF_FMA16(FF_S16(FF_ERF_A5), s, FF_ERF_A4);
    p = FF_FMA16(p, s, FF_ERF_A3);
    p = FF_FMA16(p, s, FF_ERF_A2);
    p = FF_FMA16(p, s, FF_ERF_A1);
    return FF_FMA16(p, s, FF_ERF_A0);
}

static inline FF_AVX512 __m512 ff_erfc_pos_ps512(__m512 t) {
    __m512 u = _mm512_min_ps(FF_S16(FF_ERFC_BIG), t);
    __m512 g = FF_FMA16(FF_S16(FF_ERFC_B11), u, FF_ERFC_B10);
    g = FF_FMA16(g, u, FF_ERFC_B9);
    g = FF_FMA16(g, u, FF_ERFC_B8);
    g = FF_FMA16(g, u, FF_ERFC_B7);
    g = FF_FMA16(g, u, FF_ERFC_B6);
    g = FF_FMA16(g, u, FF_ERFC_B5);
    g = FF_FMA16(g, u, FF_ERFC_B4);
    g = FF_FMA16(g, u, FF_ERFC_B3);
    g = FF_FMA16(g, u, FF_ERFC_B2);
    g = FF_FMA16(g, u, FF_ERFC_B1);
    g = FF_FMA16(g, u, FF_ERFC_B0);
    __mmask16 past = _mm512_cmp_ps_mask(t, FF_S16(FF_ERFC_BIG), _CMP_GT_OQ);
    return _mm512_maskz_mov_ps((__mmask16)~past, ff_exp_core_ps512(g));
}

static inline FF_AVX512 __m512 ff_erf_ps512(__m512 x) {
    __m512 t = _mm512_abs_ps(x);
    __m512 small = _mm512_fmadd_ps(ff_erf_small_ps512(_mm512_mul_ps(x, x)), x, x);
    __m512 big = _mm512_sub_ps(FF_S16(1.0f), ff_erfc_pos_ps512(t));
    big = _mm512_or_ps(big, _mm512_and_ps(x, FF_S16(-0.0f)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, FF_S16(FF_ERF_SMALL), _CMP_LT_OQ), big, small);
}

#endif
#endif
