// avx-512 vnni kernels for q4_k, q5_k and q6_k W on their r16 layouts (ff_quant.h; ff_qdot.c has the other int8
// dot kernels): 16 rows per register; each 32-block (q4_k, q5_k) or 16-sub-block (q6_k) of the 16 rows sums in
// int32 over its vpdpbusd chain and is scaled once into the float lane of its position in the super-block, as the
// row kernels do. decode keeps every position's lane in registers and streams each tile once; prefill (2 to 8
// activation rows) takes one 32-block or 16-sub-block at a time
#include "ff_qk2.h"  // q5_k: its bytes and kernel names
#include "ff_quant.h"
#include "ff_vnni.h"

#ifdef FF_HAVE_X86
// decode streams W once, tile after tile, each tile front to back, and prefetches only where ff_qact.ahead says
// (ff_prefetch_ahead; the defaults in ff_cpu.c): 8 KiB into L2 on Intel for weights that outgrow the L3, none on
// a Zen 4, where in-process A/B runs of the same 256 MB W streamed 1.3-1.5x (1 core) and 1.1-1.25x (2 cores) the
// rate of any software prefetch tried (1-64 KB ahead into L1, L2, both). Front to back includes the tile's
// header: its scale lines are loaded before the nibbles they scale, though used after. Read last, they cost 3-13%
// of the read rate at the host's fast memory speed (2 cores, each pulling its own ~32 GB/s; none at the slow one)

// the 6-bit scales and mins of a q4_k/q5_k r16 tile's 16 rows (q4_k_unpack, a row per lane): sw[0] the scales of
// positions 0..3 as bytes, sw[1] of 4..7; mp[u] the mins of positions 2u, 2u + 1 as two int16
static inline AI FF_VNNI void r16_k4_scales(const uint8_t *h, __m512i sw[2], __m512i mp[4]) {
    const __m512i lo4 = _mm512_set1_epi8(15), lo6 = _mm512_set1_epi8(63), two = _mm512_set1_epi8(3);
    const __m512i pair01 =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9, -128, 12, -128, 13, -128));
    const __m512i pair23 = _mm512_broadcast_i32x4(
        _mm_setr_epi8(2, -128, 3, -128, 6, -128, 7, -128, 10, -128, 11, -128, 14, -128, 15, -128));
    __m512i u0 = _mm512_loadu_si512(h + 64), u1 = _mm512_loadu_si512(h + 128), u2 = _mm512_loadu_si512(h + 192);
    sw[0] = _mm512_and_si512(u0, lo6);
    sw[1] = _mm512_or_si512(_mm512_and_si512(u2, lo4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), two), 4));
    __m512i m0 = _mm512_and_si512(u1, lo6);
    __m512i m1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), lo4),
                                 _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), two), 4));
    mp[0] = _mm512_shuffle_epi8(m0, pair01);
    mp[1] = _mm512_shuffle_epi8(m0, pair23);
    mp[2] = _mm512_shuffle_epi8(m1, pair01);
    mp[3] = _mm512_shuffle_epi8(m1, pair23);
}

// the scales of 32-block s (a constant) of the 16 rows as int32: byte s % 4 of sw[s / 4]'s dwords, in one op
static inline AI FF_VNNI __m512i k4_scale(const __m512i sw[2], const int s) {
    const int q = s % 4;
    if (q == 0) return _mm512_and_si512(sw[s / 4], _mm512_set1_epi32(255));
    if (q == 3) return _mm512_srli_epi32(sw[s / 4], 24);
    return _mm512_shuffle_epi8(
        sw[s / 4], _mm512_broadcast_i32x4(_mm_setr_epi32((int)0x80808000 + q, (int)0x80808004 + q, (int)0x80808008 + q,
                                                         (int)0x8080800c + q)));
}

// a q4_k/q5_k tile's 16 fp16 d (dm[0]) and dmin (dm[1]), as loaded
static inline AI FF_VNNI void r16_k4_dmin(const uint8_t *h, __m256i dm[2]) {
    dm[0] = _mm256_loadu_si256((const __m256i *)(const void *)h);
    dm[1] = _mm256_loadu_si256((const __m256i *)(const void *)(h + 32));
}

// the end of a q4_k/q5_k super-block sb for activation row i: its int32 sum isb of scaled 32-blocks and the mins mp
// against the row's int16 sums per 32 (pairs, read as bytes), scaled by d * d_a and dmin * d_a (dm) into acc
static inline AI FF_VNNI __m512 r16_k4_sb_end(__m512 acc, __m512i isb, const __m512i mp[4], const __m256i dm[2],
                                              const ff_qact *a, int i, int64_t sb) {
    const int8_t *bs = (const int8_t *)(a->lanes + i * (a->kp / 4) + 4 * sb);
    __m512i msb = _mm512_setzero_si512();
    for (int u = 0; u < 4; u++) msb = _mm512_dpwssd_epi32(msb, mp[u], _mm512_set1_epi32(ld32(bs + 4 * u)));
    __m512 da = _mm512_set1_ps(a->d[i * (a->kp / 32) + 8 * sb]);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb), _mm512_mul_ps(_mm512_cvtph_ps(dm[0]), da), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msb), _mm512_mul_ps(_mm512_cvtph_ps(dm[1]), da), acc);
}

// q4_k (q5 = 0) and q5_k (ff_qdot_q4_k_ref's arithmetic): each 32-block s = 2c + e of the 16 rows (low nibbles
// of the 64-byte groups (c, p) for e = 0, high for e = 1; q5_k's fifth bit is bit s of the tile's qh groups) sums in
// int32 over its vpdpbusd chain, times its scale, into the super-block's int32 sum; the mins meet the activations'
// sums per 32 in four vpdpwssd (pairs of 32-blocks); both scaled once per super-block into the row's float lane.
// 2 to 8 activation rows (prefill), one 32-block at a time
static inline AI FF_VNNI void r16_k4_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                          const ff_qact *a, const int mr, const int q5) {
    int64_t nsb = a->k / 256, kp = a->kp, tile = FF_R16 * (q5 ? FF_Q5_K_BYTES : FF_Q4_K_BYTES);
    const __m512i lo4 = _mm512_set1_epi8(15), ff = _mm512_set1_epi32(255), bit4 = _mm512_set1_epi8(16);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nsb * tile;
        __m512 acc[FF_R16_MR];
        for (int i = 0; i < mr; i++) acc[i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *h = t + sb * tile, *v = h + FF_R16_K_HEAD;
            __m512i sw[2], mp[4];
            r16_k4_scales(h, sw, mp);
            __m512i isb[FF_R16_MR];
            for (int i = 0; i < mr; i++) isb[i] = _mm512_setzero_si512();
#pragma GCC unroll 2
            for (int e = 0; e < 2; e++)
#pragma GCC unroll 1
                for (int c = 0; c < 4; c++) {
                    int s = 2 * c + e;
                    __m512i sc = _mm512_and_si512(_mm512_srl_epi32(sw[c / 2], _mm_cvtsi32_si128(8 * (s % 4))), ff);
                    const __m512i bit = _mm512_set1_epi8((char)(1 << s));  // q5_k: bit s of qh is bit 4
                    const int8_t *aq = a->q + 256 * sb + 64 * c + 32 * e;
                    __m512i ci[FF_R16_MR];
                    for (int i = 0; i < mr; i++) ci[i] = _mm512_setzero_si512();
#pragma GCC unroll 8
                    for (int p = 0; p < 8; p++) {
                        __m512i x = _mm512_loadu_si512(v + FF_R16_K_NIB(q5, c, p));
                        if (e) x = _mm512_srli_epi16(x, 4);
                        if (q5) {
                            __mmask64 hb = _mm512_test_epi8_mask(_mm512_loadu_si512(v + FF_R16_K_QH(p)), bit);
                            x = _mm512_and_si512(x, lo4);
                            x = _mm512_mask_add_epi8(x, hb, x, bit4);
                        } else {
                            x = _mm512_and_si512(x, lo4);
                        }
                        for (int i = 0; i < mr; i++) ci[i] = ff_dpbusd_b4(ci[i], x, aq + i * kp + 4 * p);
                    }
                    for (int i = 0; i < mr; i++) isb[i] = _mm512_add_epi32(isb[i], _mm512_mullo_epi32(ci[i], sc));
                }
            __m256i dm[2];
            r16_k4_dmin(h, dm);
            for (int i = 0; i < mr; i++) acc[i] = r16_k4_sb_end(acc[i], isb[i], mp, dm, a, i, sb);
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, acc[i]);
    }
}

// q6_k (ff_qdot_q6_k_ref's arithmetic): each 16-sub-block of the 16 rows sums in int32 from the lane sums
// -32 * sum(a), times its scale, into the super-block's int32 sum, scaled once by d * d_a into the row's float lane.
// sub-block st is half hf = st / 8, ql bytes j = st % 4 / 2, 4-byte groups p = 4 (st % 2).., low nibbles with qh
// bits 2j.. (st % 8 < 4) or high nibbles with qh bits 2j + 4..

// decode (one activation row): the tile front to back, each half's 8 sub-blocks' chains side by side, each 64-byte
// group read once (its low and high nibbles)
#define Q6_SUB(u) ((u) / 4 + 2 * ((u) / 2 % 2) + 4 * ((u) % 2))
static inline AI FF_VNNI void r16_q6_k_vnni_dec(float *restrict y, const uint8_t *restrict w, int64_t n,
                                                const ff_qact *a) {
    int64_t nsb = a->k / 256, tile = FF_R16 * FF_Q6_K_BYTES, ahead = a->ahead;
    const uint8_t *end = w + n / FF_R16 * nsb * tile;
    const __m512i lo4 = _mm512_set1_epi8(15), hi2 = _mm512_set1_epi8(0x30);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nsb * tile;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *h = t + sb * tile, *v = h + FF_R16_Q6_K_HEAD;
            // the header first (see the top of the file): d, and the 16 sub-blocks' scales 4 to a register
            __m256i dh = _mm256_loadu_si256((const __m256i *)(const void *)h);
            FF_IN_REG(dh);
            __m512i scv[4];
            for (int i = 0; i < 4; i++) {
                scv[i] = _mm512_loadu_si512(h + 32 + 64 * i);
                FF_IN_REG(scv[i]);
            }
            __m512i isb = _mm512_setzero_si512();
#pragma GCC unroll 2
            for (int hf = 0; hf < 2; hf++) {
                // the half's 8 sub-blocks: ci[4 s2 + 2 j + e] is 8 hf + s2 + 2 j + 4 e (e: high nibbles)
                __m512i ci[8];
                for (int u = 0; u < 8; u++) ci[u] = _mm512_set1_epi32(a->lanes[16 * sb + 8 * hf + Q6_SUB(u)]);
#pragma GCC unroll 8
                for (int p = 0; p < 8; p++) {
                    const uint8_t *o = v + (hf * 8 + p) * 3 * 64;
                    // a sixteenth of the tile's prefetches per group (see r16_k4_dec_vnni): all 53 at once streamed a
                    // 660 MB W 4-6% slower than by halves, and halves 1-4% slower than this
                    ff_prefetch_part(h, tile, hf * 8 + p, 16, end, ahead);
                    __m512i qh = _mm512_loadu_si512(o + 128);
                    FF_IN_REG(qh);
#pragma GCC unroll 2
                    for (int j = 0; j < 2; j++) {
                        __m512i ql = _mm512_loadu_si512(o + 64 * j);
                        FF_IN_REG(ql);
                        __m512i hl = j ? _mm512_slli_epi16(qh, 2) : _mm512_slli_epi16(qh, 4);
                        __m512i hh = j ? _mm512_srli_epi16(qh, 2) : qh;
                        __m512i xl = _mm512_ternarylogic_epi32(ql, _mm512_and_si512(hl, hi2), lo4, 0xe4);
                        __m512i xh =
                            _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), _mm512_and_si512(hh, hi2), lo4, 0xe4);
                        int64_t e = 256 * sb + 128 * hf + 32 * j + 4 * p, u = 4 * (p / 4) + 2 * j;
                        ci[u] = ff_dpbusd_b4(ci[u], xl, a->q + e);
                        ci[u + 1] = ff_dpbusd_b4(ci[u + 1], xh, a->q + e + 64);
                    }
                }
                for (int u = 0; u < 8; u++) {
                    const int st = 8 * hf + Q6_SUB(u);
                    __m512i sc = _mm512_cvtepi8_epi32(ff_lane128(scv[st / 4], st % 4));
                    isb = _mm512_add_epi32(isb, _mm512_mullo_epi32(ci[u], sc));
                }
            }
            __m512 d = _mm512_cvtph_ps(dh);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb), _mm512_mul_ps(d, _mm512_set1_ps(a->d[8 * sb])), acc);
        }
        _mm512_storeu_ps(y + g * FF_R16, acc);
    }
}

// prefill (2..8 activation rows): one sub-block at a time, each row keeping its int chain and super-block sum
static inline AI FF_VNNI void r16_q6_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    int64_t nsb = a->k / 256, kp = a->kp, tile = FF_R16 * FF_Q6_K_BYTES;
    const __m512i lo4 = _mm512_set1_epi8(15), hi2 = _mm512_set1_epi8(0x30);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nsb * tile;
        __m512 acc[FF_R16_MR];
        for (int i = 0; i < mr; i++) acc[i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *h = t + sb * tile;
            __m512i isb[FF_R16_MR];
            for (int i = 0; i < mr; i++) isb[i] = _mm512_setzero_si512();
            // the decoding (hi, j) as constants, the 4 sub-blocks (hf, s2) that share it in a loop
#pragma GCC unroll 4
            for (int hj = 0; hj < 4; hj++)
#pragma GCC unroll 1
                for (int fs = 0; fs < 4; fs++) {
                    const int hi = hj / 2, j = hj % 2, hf = fs / 2, s2 = fs % 2, st = 8 * hf + 4 * hi + 2 * j + s2;
                    const uint8_t *v = h + FF_R16_Q6_K_HEAD + (hf * 8 + 4 * s2) * 3 * 64;
                    const int8_t *aq = a->q + 256 * sb + 128 * hf + 64 * hi + 32 * j + 16 * s2;
                    __m512i ci[FF_R16_MR];
                    for (int i = 0; i < mr; i++) ci[i] = _mm512_set1_epi32(a->lanes[i * (kp / 4) + 16 * sb + st]);
#pragma GCC unroll 4
                    for (int p = 0; p < 4; p++) {
                        __m512i ql = _mm512_loadu_si512(v + p * 3 * 64 + 64 * j),
                                qh = _mm512_loadu_si512(v + p * 3 * 64 + 128);
                        __m512i b = hi ? (j ? _mm512_srli_epi16(qh, 2) : qh) : _mm512_slli_epi16(qh, j ? 2 : 4);
                        __m512i x = _mm512_ternarylogic_epi32(hi ? _mm512_srli_epi16(ql, 4) : ql,
                                                              _mm512_and_si512(b, hi2), lo4, 0xe4);
                        for (int i = 0; i < mr; i++) ci[i] = ff_dpbusd_b4(ci[i], x, aq + i * kp + 4 * p);
                    }
                    __m512i sc =
                        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(h + 32 + 16 * st)));
                    for (int i = 0; i < mr; i++) isb[i] = _mm512_add_epi32(isb[i], _mm512_mullo_epi32(ci[i], sc));
                }
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h));
            for (int i = 0; i < mr; i++)
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb[i]),
                                         _mm512_mul_ps(d, _mm512_set1_ps(a->d[i * (kp / 32) + 8 * sb])), acc[i]);
        }
        for (int i = 0; i < mr; i++) _mm512_storeu_ps(y + i * ldy + g * FF_R16, acc[i]);
    }
}

static inline AI FF_VNNI void r16_q4_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    r16_k4_vnni(y, ldy, w, n, a, mr, 0);
}

static inline AI FF_VNNI void r16_q5_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                            const ff_qact *a, const int mr) {
    r16_k4_vnni(y, ldy, w, n, a, mr, 1);
}

// q4_k and q5_k decode (one activation row, the arithmetic of r16_k4_vnni): the 8 32-blocks' chains side by side,
// each 64-byte group read once for its low and high nibbles
static inline AI FF_VNNI void r16_k4_dec_vnni(float *restrict y, const uint8_t *restrict w, int64_t n, const ff_qact *a,
                                              const int q5) {
    int64_t nsb = a->k / 256, tile = FF_R16 * (q5 ? FF_Q5_K_BYTES : FF_Q4_K_BYTES), ahead = a->ahead;
    const uint8_t *end = w + n / FF_R16 * nsb * tile;
    const __m512i lo4 = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(16);
    for (int64_t g = 0; g < n / FF_R16; g++) {
        const uint8_t *t = w + g * nsb * tile;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *h = t + sb * tile, *v = h + FF_R16_K_HEAD;
            const int8_t *aq = a->q + 256 * sb;
            // the header first (see the top of the file), held in registers until the super-block's end
            __m256i dm[2];
            r16_k4_dmin(h, dm);
            FF_IN_REG(dm[0]);
            FF_IN_REG(dm[1]);
            __m512i sw[2], mp[4];
            r16_k4_scales(h, sw, mp);
            __m512i ci[8];
            for (int s = 0; s < 8; s++) ci[s] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++) {
                // an eighth of the tile's prefetches per group: all of a tile's (36-44 lines) at once stall on the
                // core's fill buffers in bursts; a half or a quarter per group (1.1B decode per token, 2 threads):
                // Q4_K_M 2.8% and 3.5% faster, Q5_K_M 3.8% and 6.7%, an eighth level with a quarter or 0.5% better
                ff_prefetch_part(h, tile, p, 8, end, ahead);
                __m512i qh = q5 ? _mm512_loadu_si512(v + FF_R16_K_QH(p)) : _mm512_setzero_si512();
                if (q5) FF_IN_REG(qh);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    __m512i x = _mm512_loadu_si512(v + FF_R16_K_NIB(q5, c, p));
                    FF_IN_REG(x);
                    // q4_k: the high nibbles in place (16 times their value), one and instead of a shift and an and
                    __m512i xl = _mm512_and_si512(x, lo4),
                            xh = q5 ? _mm512_and_si512(_mm512_srli_epi16(x, 4), lo4) : _mm512_andnot_si512(lo4, x);
                    if (q5) {
                        // bits 2c and 2c + 1 of qh to bit 4
                        __m512i bl = c < 2 ? _mm512_slli_epi16(qh, 4 - 2 * c) : _mm512_srli_epi16(qh, 2 * c - 4);
                        __m512i bh = c < 2 ? _mm512_slli_epi16(qh, 3 - 2 * c) : _mm512_srli_epi16(qh, 2 * c - 3);
                        xl = _mm512_ternarylogic_epi32(xl, bl, bit4, 0xf8);  // xl | (bl & bit4)
                        xh = _mm512_ternarylogic_epi32(xh, bh, bit4, 0xf8);
                    }
                    ci[2 * c] = ff_dpbusd_b4(ci[2 * c], xl, aq + 64 * c + 4 * p);
                    ci[2 * c + 1] = ff_dpbusd_b4(ci[2 * c + 1], xh, aq + 64 * c + 32 + 4 * p);
                }
            }
            __m512i isb = _mm512_setzero_si512(), isb16 = _mm512_setzero_si512();
            for (int s = 0; s < 8; s++) {
                __m512i t = _mm512_mullo_epi32(ci[s], k4_scale(sw, s));
                __m512i *o = !q5 && (s & 1) ? &isb16 : &isb;  // q4_k's high nibbles: 16 times
                *o = _mm512_add_epi32(*o, t);
            }
            // exact: a multiple of 16, |isb16| <= 16 * 4 * 63 * 32 * 15 * 127 < 2^31
            if (!q5) isb = _mm512_add_epi32(isb, _mm512_srai_epi32(isb16, 4));
            acc = r16_k4_sb_end(acc, isb, mp, dm, a, 0, sb);
        }
        _mm512_storeu_ps(y + g * FF_R16, acc);
    }
}

static inline AI FF_VNNI void r16_q4_k_vnni_dec(float *restrict y, const uint8_t *restrict w, int64_t n,
                                                const ff_qact *a) {
    r16_k4_dec_vnni(y, w, n, a, 0);
}

static inline AI FF_VNNI void r16_q5_k_vnni_dec(float *restrict y, const uint8_t *restrict w, int64_t n,
                                                const ff_qact *a) {
    r16_k4_dec_vnni(y, w, n, a, 1);
}

#define FF_R16_K_BY_M(kern)                                                                                            \
    switch (m) {                                                                                                       \
    case 8: kern(y, ldy, w, n, a, 8); break;                                                                           \
    case 7: kern(y, ldy, w, n, a, 7); break;                                                                           \
    case 6: kern(y, ldy, w, n, a, 6); break;                                                                           \
    case 5: kern(y, ldy, w, n, a, 5); break;                                                                           \
    case 4: kern(y, ldy, w, n, a, 4); break;                                                                           \
    case 3: kern(y, ldy, w, n, a, 3); break;                                                                           \
    case 2: kern(y, ldy, w, n, a, 2); break;                                                                           \
    default: kern##_dec(y, w, n, a); break;                                                                            \
    }

FF_VNNI void ff_qdot_r16_q4_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    FF_R16_K_BY_M(r16_q4_k_vnni);
}

FF_VNNI void ff_qdot_r16_q5_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    FF_R16_K_BY_M(r16_q5_k_vnni);
}

FF_VNNI void ff_qdot_r16_q6_k_vnni(float *restrict y, int64_t ldy, const uint8_t *restrict w, int64_t n,
                                   const ff_qact *a, int m) {
    FF_R16_K_BY_M(r16_q6_k_vnni);
}
#endif
