// cpu feature detection (cpuid + xgetbv), the per-ISA dispatch tables and the choice of int8 dot
#define _GNU_SOURCE
#include "ff_internal.h"
#include "ff_qk2.h"
#include "ff_qlegacy.h"

#include <string.h>

#ifdef FF_HAVE_X86
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(FF_HAVE_X86)
#include <sys/syscall.h>
#endif
#ifdef __linux__
#include <unistd.h>
#endif

static int features[FF_F_COUNT];
static int isa_current = FF_ISA_SCALAR;
static int vendor_intel = 0;

// the one-row kernels' prefetch distance (the avx-512 vnni r16 ones and the 256-bit row ones; ff_vnni.h; relaxed
// atomics: set from any thread)
static int64_t ff_decode_ahead = 0, ahead_above = 0;

static const char *feature_names[FF_F_COUNT] = {
    "sse4_2",   "avx",         "avx2",        "fma",      "f16c",     "avx512f",  "avx512bw", "avx512dq",
    "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon",
};
static const char *isa_names[FF_ISA_COUNT] = {"scalar", "avx2", "avx512"};

// the row converters, the same in every table but q8_0's quantizer (the SIMD tables' gives the same bytes)
#define FF_CONVERT_SLOTS(quantize_q8_0)                                                                                \
    .quantize_row = {[FF_QT_F32] = ff_quantize_row_f32,                                                                \
                     [FF_QT_F16] = ff_quantize_row_f16,                                                                \
                     [FF_QT_BF16] = ff_quantize_row_bf16,                                                              \
                     [FF_QT_Q8_0] = quantize_q8_0,                                                                     \
                     [FF_QT_Q4_0] = ff_quantize_row_q4_0,                                                              \
                     FF_QLEGACY_QUANTIZE_SLOTS,                                                                        \
                     FF_QK2_QUANTIZE_SLOTS},                                                                           \
    .dequantize_row = {[FF_QT_F32] = ff_dequantize_row_f32,                                                            \
                       [FF_QT_F16] = ff_dequantize_row_f16,                                                            \
                       [FF_QT_BF16] = ff_dequantize_row_bf16,                                                          \
                       [FF_QT_Q8_0] = ff_dequantize_row_q8_0,                                                          \
                       [FF_QT_Q4_0] = ff_dequantize_row_q4_0,                                                          \
                       [FF_QT_Q4_K] = ff_dequantize_row_q4_k,                                                          \
                       [FF_QT_Q6_K] = ff_dequantize_row_q6_k,                                                          \
                       FF_QLEGACY_DEQUANTIZE_SLOTS,                                                                    \
                       FF_QK2_DEQUANTIZE_SLOTS}

// the int8 dot kernels of one int8 dot: qdot slots of the suffix sfx, r16 slots of r16
#define FF_QDOT_SLOTS(sfx, r16)                                                                                        \
    .qdot = {[FF_QT_Q8_0] = ff_qdot_q8_0_##sfx, [FF_QT_Q4_0] = ff_qdot_q4_0_##sfx, [FF_QT_Q4_K] = ff_qdot_q4_k_##sfx,  \
             [FF_QT_Q6_K] = ff_qdot_q6_k_##sfx, FF_QLEGACY_QDOT_SLOTS(sfx),        FF_QK2_QDOT_SLOTS(sfx)},            \
    .qdot_r16 = {[FF_QT_Q8_0] = ff_qdot_r16_q8_0_##r16,                                                                \
                 [FF_QT_Q4_0] = ff_qdot_r16_q4_0_##r16,                                                                \
                 [FF_QT_Q4_K] = ff_qdot_r16_q4_k_##r16,                                                                \
                 [FF_QT_Q5_K] = ff_qdot_r16_q5_k_##r16,                                                                \
                 [FF_QT_Q6_K] = ff_qdot_r16_q6_k_##r16,                                                                \
                 FF_QLEGACY_R16_SLOTS(r16),                                                                            \
                 FF_QK2_R16_SLOTS(r16)}

// the 256-bit K kernels that take FF_QDOT_MANY activation rows a call (prefill)
#define FF_QDOT_MANY_SLOTS(sfx)                                                                                        \
    .qdot_many = {[FF_QT_Q4_K] = ff_qdot_many_q4_k_##sfx,                                                              \
                  [FF_QT_Q5_K] = ff_qdot_many_q5_k_##sfx,                                                              \
                  [FF_QT_Q6_K] = ff_qdot_many_q6_k_##sfx}

// the int8 dots: the scalar twins, the three 256-bit ones (FF_DOT256_*) and avx-512 vnni on 512-bit registers
#define FF_DOT_REF 0  // the scalar table's (it has only the twins, so it shares index 0 with maddubs)
#define FF_DOT512_VNNI 3
#define FF_DOT_COUNT 4
#ifdef FF_HAVE_X86
static const ff_qkernels qkernels_by_dot[FF_DOT_COUNT] = {
    [FF_DOT256_MADDUBS] = {FF_QDOT_SLOTS(maddubs, ref), FF_QDOT_MANY_SLOTS(maddubs)},
    [FF_DOT256_AVXVNNI] = {FF_QDOT_SLOTS(avxvnni, ref), FF_QDOT_MANY_SLOTS(avxvnni)},
    [FF_DOT256_VNNI256] = {FF_QDOT_SLOTS(vnni256, ref), FF_QDOT_MANY_SLOTS(vnni256)},
    [FF_DOT512_VNNI] = {FF_QDOT_SLOTS(vnni, vnni),
                        .qgemm_panel = {[FF_QT_Q8_0] = ff_qgemm_panel_q8_0_vnni,
                                        [FF_QT_Q4_0] = ff_qgemm_panel_q4_0_vnni,
                                        FF_QLEGACY_PANEL_SLOTS,
                                        FF_QK2_PANEL_SLOTS},
                        .r16_fast = 1},
};
#endif

static const ff_kernels kernels_ref = {
    .gemv_f32 = ff_gemv_f32_ref,
    .gemm_f32_tile = ff_gemm_f32_tile_ref,
    .gemm_mr = FF_GEMM_MR_REF,
    .gemm_nr = FF_GEMM_NR_REF,
    .gemm_pack_t_f32 = ff_gemm_pack_t_f32_ref,
    .gemm_pack_n_f32 = ff_gemm_pack_n_f32_ref,
    .norm_rms_f32 = ff_norm_rms_f32_ref,
    .norm_layer_f32 = ff_norm_layer_f32_ref,
    .softmax_f32 = ff_softmax_f32_ref,
    .gelu_tanh_f32 = ff_gelu_tanh_f32_ref,
    .gelu_erf_f32 = ff_gelu_erf_f32_ref,
    .silu_f32 = ff_silu_f32_ref,
    .rope_f32 = ff_rope_f32_ref,
    .attn_qk_f32 = ff_attn_qk_f32_ref,
    .attn_softmax_f32 = ff_attn_softmax_f32_ref,
    .attn_pv_f32 = ff_attn_pv_f32_ref,
    .attn_qk_dot_f32 = ff_attn_qk_dot_f32_ref,
    .attn_softmax_dot_f32 = ff_attn_softmax_dot_f32_ref,
    .attn_qk_kv = ff_attn_qk_kv_ref,
    .attn_pv_kv = ff_attn_pv_kv_ref,
    .attn_qk_dot_kv = ff_attn_qk_dot_kv_ref,
    .quant_act_q8 = ff_quant_act_q8_ref,
    .fp32_to_fp16_row = ff_fp32_to_fp16_row_ref,
    .fp16_to_fp32_row = ff_fp16_to_fp32_row_ref,
    FF_CONVERT_SLOTS(ff_quantize_row_q8_0),
    .q = {FF_QDOT_SLOTS(ref, ref)},
};

#ifdef FF_HAVE_X86
static const ff_kernels kernels_avx2 = {
    .gemv_f32 = ff_gemv_f32_avx2,
    .gemm_f32_tile = ff_gemm_f32_tile_avx2,
    .gemm_mr = FF_GEMM_MR_AVX2,
    .gemm_nr = FF_GEMM_NR_AVX2,
    .gemm_pack_t_f32 = ff_gemm_pack_t_f32_avx2,
    .gemm_pack_n_f32 = ff_gemm_pack_n_f32_avx2,
    .norm_rms_f32 = ff_norm_rms_f32_avx2,
    .norm_layer_f32 = ff_norm_layer_f32_avx2,
    .softmax_f32 = ff_softmax_f32_avx2,
    .gelu_tanh_f32 = ff_gelu_tanh_f32_avx2,
    .gelu_erf_f32 = ff_gelu_erf_f32_avx2,
    .silu_f32 = ff_silu_f32_avx2,
    .rope_f32 = ff_rope_f32_avx2,
    .attn_qk_f32 = ff_attn_qk_f32_avx2,
    .attn_softmax_f32 = ff_attn_softmax_f32_avx2,
    .attn_pv_f32 = ff_attn_pv_f32_avx2,
    .attn_qk_dot_f32 = ff_attn_qk_dot_f32_avx2,
    .attn_softmax_dot_f32 = ff_attn_softmax_dot_f32_avx2,
    .attn_qk_kv = ff_attn_qk_kv_avx2,
    .attn_pv_kv = ff_attn_pv_kv_avx2,
    .attn_qk_dot_kv = ff_attn_qk_dot_kv_avx2,
    .quant_act_q8 = ff_quant_act_q8_avx2,
    .fp32_to_fp16_row = ff_fp32_to_fp16_row_avx2,
    .fp16_to_fp32_row = ff_fp16_to_fp32_row_avx2,
    FF_CONVERT_SLOTS(ff_quantize_row_q8_0_avx2),
};

static const ff_kernels kernels_avx512 = {
    .gemv_f32 = ff_gemv_f32_avx512,
    .gemm_f32_tile = ff_gemm_f32_tile_avx512,
    .gemm_mr = FF_GEMM_MR_AVX512,
    .gemm_nr = FF_GEMM_NR_AVX512,
    .gemm_pack_t_f32 = ff_gemm_pack_t_f32_avx2,
    .gemm_pack_n_f32 = ff_gemm_pack_n_f32_avx2,
    .norm_rms_f32 = ff_norm_rms_f32_avx512,
    .norm_layer_f32 = ff_norm_layer_f32_avx512,
    .softmax_f32 = ff_softmax_f32_avx512,
    .gelu_tanh_f32 = ff_gelu_tanh_f32_avx512,
    .gelu_erf_f32 = ff_gelu_erf_f32_avx512,
    .silu_f32 = ff_silu_f32_avx512,
    .rope_f32 = ff_rope_f32_avx512,
    .attn_qk_f32 = ff_attn_qk_f32_avx512,
    .attn_softmax_f32 = ff_attn_softmax_f32_avx512,
    .attn_pv_f32 = ff_attn_pv_f32_avx512,
    .attn_qk_dot_f32 = ff_attn_qk_dot_f32_avx512,
    .attn_softmax_dot_f32 = ff_attn_softmax_dot_f32_avx512,
    .attn_qk_kv = ff_attn_qk_kv_avx512,
    .attn_pv_kv = ff_attn_pv_kv_avx512,
    .attn_qk_dot_kv = ff_attn_qk_dot_kv_avx512,
    .quant_act_q8 = ff_quant_act_q8_avx512,
    .fp32_to_fp16_row = ff_fp32_to_fp16_row_avx512,
    .fp16_to_fp32_row = ff_fp16_to_fp32_row_avx512,
    FF_CONVERT_SLOTS(ff_quantize_row_q8_0_avx2),
};
#endif

static const ff_kernels *tables[FF_ISA_COUNT] = {
    &kernels_ref,
#ifdef FF_HAVE_X86
    &kernels_avx2,
    &kernels_avx512,
#else
    NULL,
    NULL,
#endif
};

// the tables in use: each ISA's table with the int8 dot kernels of each int8 dot (filled by ff_cpu_init)
static ff_kernels live[FF_ISA_COUNT][FF_DOT_COUNT];
const ff_kernels *ff_kern = &kernels_ref;
static int quant_vnni = 1;              // the avx512 table may use its avx-512 vnni kernels
static int dot256 = FF_DOT256_MADDUBS;  // the int8 dot of the 256-bit kernels

// the int8 dot an ISA's table runs with: scalar the twins, avx2 the 256-bit choice, avx512 vnni where allowed
static int dot_of(int isa) {
    if (isa == FF_ISA_SCALAR) return FF_DOT_REF;
    if (isa == FF_ISA_AVX512 && ff_quant_vnni()) return FF_DOT512_VNNI;
    return dot256;
}

static void use_tables(void) { ff_kern = &live[isa_current][dot_of(isa_current)]; }
static int dot256_can(int mode);

#ifdef FF_HAVE_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    vendor_intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "GenuineIntel"
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int sse42 = (c >> 20) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    features[FF_F_SSE42] = sse42;
    // the OS must save ymm (bits 1,2) and, for avx-512, opmask + zmm (bits 5,6,7) on context switch
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int os_ymm = (xcr0 & 0x6) == 0x6;
    int os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
    int os_amx = (xcr0 & 0x60000) == 0x60000;
    if (!os_ymm) return;
    features[FF_F_AVX] = avx;
    features[FF_F_FMA] = fma;
    features[FF_F_F16C] = f16c;
    unsigned maxleaf = __get_cpuid_max(0, NULL);
    if (maxleaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    features[FF_F_AVX2] = (b >> 5) & 1;
    if (os_zmm) {
        features[FF_F_AVX512F] = (b >> 16) & 1;
        features[FF_F_AVX512DQ] = (b >> 17) & 1;
        features[FF_F_AVX512BW] = (b >> 30) & 1;
        features[FF_F_AVX512VL] = (b >> 31) & 1;
        features[FF_F_AVX512VNNI] = (c >> 11) & 1;
    }
    if (os_amx) {
        features[FF_F_AMX_BF16] = (d >> 22) & 1;
        features[FF_F_AMX_TILE] = (d >> 24) & 1;
        features[FF_F_AMX_INT8] = (d >> 25) & 1;
    }
    __cpuid_count(7, 1, a, b, c, d);
    features[FF_F_AVXVNNI] = (a >> 4) & 1;
    if (os_zmm) features[FF_F_AVX512BF16] = (a >> 5) & 1;
#ifdef __linux__
    // amx tiles also need the kernel's permission for this process (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    if (features[FF_F_AMX_TILE] && syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
        features[FF_F_AMX_TILE] = features[FF_F_AMX_INT8] = features[FF_F_AMX_BF16] = 0;
    }
#else
    features[FF_F_AMX_TILE] = features[FF_F_AMX_INT8] = features[FF_F_AMX_BF16] = 0;
#endif
}
#endif

int ff_isa_usable(int isa) {
    switch (isa) {
    case FF_ISA_SCALAR: return 1;
    case FF_ISA_AVX2: return features[FF_F_AVX2] && features[FF_F_FMA] && features[FF_F_F16C];
    case FF_ISA_AVX512:
        return ff_isa_usable(FF_ISA_AVX2) && features[FF_F_AVX512F] && features[FF_F_AVX512BW] &&
               features[FF_F_AVX512DQ] && features[FF_F_AVX512VL];
    default: return 0;
    }
}

int ff_cpu_init(void) {
    static int done = 0;
    if (!done) {
        memset(features, 0, sizeof(features));
#ifdef FF_HAVE_X86
        detect_x86();
#endif
#if defined(__aarch64__)
        features[FF_F_NEON] = 1;
#endif
        done = 1;
        // every table with every int8 dot's kernels; avx-vnni where the cpu has it, else maddubs
        for (int i = 0; i < FF_ISA_COUNT; i++)
            for (int dot = 0; dot < FF_DOT_COUNT; dot++) {
                if (!tables[i]) continue;
                live[i][dot] = *tables[i];
#ifdef FF_HAVE_X86
                if (i != FF_ISA_SCALAR) live[i][dot].q = qkernels_by_dot[dot];
#endif
            }
        dot256 = dot256_can(FF_DOT256_AVXVNNI) ? FF_DOT256_AVXVNNI : FF_DOT256_MADDUBS;
        ff_decode_ahead = ff_quant_ahead_default();
        ahead_above = ff_quant_ahead_above_default();
        // pick the highest usable ISA
        for (int i = FF_ISA_COUNT - 1; i >= 0; i--) {
            if (tables[i] && ff_isa_usable(i)) {
                ff_isa_select(i);
                break;
            }
        }
    }
    return isa_current;
}

int ff_cpu_has(int feature) { return feature >= 0 && feature < FF_F_COUNT ? features[feature] : 0; }

const char *ff_feature_name(int feature) { return feature >= 0 && feature < FF_F_COUNT ? feature_names[feature] : ""; }

const char *ff_isa_name(int isa) { return isa >= 0 && isa < FF_ISA_COUNT ? isa_names[isa] : ""; }

int ff_isa_current(void) { return isa_current; }

int ff_isa_select(int isa) {
    if (isa < 0 || isa >= FF_ISA_COUNT || !tables[isa] || !ff_isa_usable(isa)) return -1;
    isa_current = isa;
    use_tables();
    return 0;
}

int ff_quant_set_vnni(int on) {
    quant_vnni = on != 0;
    use_tables();
    return ff_quant_vnni();
}

int ff_quant_vnni(void) { return quant_vnni && ff_cpu_has(FF_F_AVX512VNNI) && ff_isa_usable(FF_ISA_AVX512); }

static int dot256_can(int mode) {
    switch (mode) {
    case FF_DOT256_MADDUBS: return 1;
    case FF_DOT256_AVXVNNI: return ff_cpu_has(FF_F_AVXVNNI) && ff_isa_usable(FF_ISA_AVX2);
    case FF_DOT256_VNNI256:
        return ff_cpu_has(FF_F_AVX512VNNI) && ff_cpu_has(FF_F_AVX512VL) && ff_isa_usable(FF_ISA_AVX512);
    default: return 0;
    }
}

int ff_quant_set_dot256(int mode) {
    if (!dot256_can(mode)) return FF_EINVAL;
    dot256 = mode;
    use_tables();
    return FF_OK;
}

int ff_quant_dot256(void) { return dot256; }

// Intel: 8 KiB ahead into L2. Its L2 streamer runs ahead of the loads only within a 4 KiB page, and a core keeps
// too few misses in flight to fill the bandwidth on its own: on an Emerald Rapids (2 cores, 1.1B Q4_K_M decode, per
// token in one process) this read 13.3 -> 15.0 GB/s at 1 core and 24 -> 28-30 GB/s at 2 against a plain read's
// 17 and 33 (4 KiB ahead timed the same, 12-24 KiB no better; into L1, or one line per super-block, less well).
// Others: none. On a Zen 4 every software prefetch tried (1-64 KiB ahead, L1 or L2) streamed 1.1-1.5x slower than
// its hardware prefetchers alone
int64_t ff_quant_ahead_default(void) { return vendor_intel ? 8192 : 0; }

// weights read in turn that fit in the L3 cache come from it on the next pass, where the same prefetches made the
// reads 5-7% slower (the Emerald Rapids, 32-96 MB of W in 2048-row calls); from 192 MB on (of its 300 MB) they
// came from memory and 11-14% faster. Half the L3 it is
int64_t ff_quant_ahead_above_default(void) {
#if defined(__linux__) && defined(_SC_LEVEL3_CACHE_SIZE)
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return l3 > 0 ? l3 / 2 : 0;
#else
    return 0;
#endif
}

int ff_quant_set_ahead(int64_t bytes, int64_t above) {
    if (bytes < 0 || bytes > FF_AHEAD_MAX || bytes % 64 || above < 0) return FF_EINVAL;
    __atomic_store_n(&ff_decode_ahead, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&ahead_above, above, __ATOMIC_RELAXED);
    return FF_OK;
}

int64_t ff_quant_ahead(void) { return __atomic_load_n(&ff_decode_ahead, __ATOMIC_RELAXED); }

int64_t ff_quant_ahead_above(void) { return __atomic_load_n(&ahead_above, __ATOMIC_RELAXED); }

int64_t ff_quant_ahead_for(int64_t stream) { return stream > ff_quant_ahead_above() ? ff_quant_ahead() : 0; }

int ff_qtype_kernels(int isa, int qtype) {
    if (isa < 0 || isa >= FF_ISA_COUNT || !tables[isa] || qtype < 0 || qtype >= FF_QT_COUNT) return 0;
    int flags = FF_QF_DEQUANT | FF_QF_QUANTIZE | FF_QF_LINEAR | FF_QF_R16;
    // the flags whose slot every int8 dot's table of isa fills
    for (int dot = 0; dot < FF_DOT_COUNT; dot++) {
        const ff_kernels *k = &live[isa][dot];
        if (!k->dequantize_row[qtype]) flags &= ~FF_QF_DEQUANT;
        if (!k->quantize_row[qtype]) flags &= ~FF_QF_QUANTIZE;
        if (!k->q.qdot[qtype]) flags &= ~FF_QF_LINEAR;
        if (!k->q.qdot_r16[qtype]) flags &= ~FF_QF_R16;
    }
    return flags;
}
