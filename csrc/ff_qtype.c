// the quant-type table: every ggml type id a gguf file may hold, its block shape (ggml's sizes), the byte range
// of its fp16 scales and what fastformer implements for it; adding a type is a row here, its kernels and their
// dispatch slots (ff_cpu.c)
#include "ff_internal.h"

#define DQ FF_QF_DEQUANT
#define LIN FF_QF_LINEAR
#define QZ FF_QF_QUANTIZE
#define R16 FF_QF_R16

static const ff_qtype_info qtypes[FF_QT_COUNT] = {
    // ids without a row are unknown (ggml retired them); id, name, weights per block, bytes per block, flags, fp16 scale bytes [lo, hi)
    [FF_QT_F32] = {FF_QT_F32, "f32", 1, 4, DQ | QZ, 0, 0},
    [FF_QT_F16] = {FF_QT_F16, "f16", 1, 2, DQ | QZ, 0, 0},
    [FF_QT_Q4_0] = {FF_QT_Q4_0, "q4_0", 32, 18, DQ | LIN | QZ | R16, 0, 2},
    [FF_QT_Q4_1] = {FF_QT_Q4_1, "q4_1", 32, 20, DQ | LIN | QZ | R16, 0, 4},
    [FF_QT_Q5_0] = {FF_QT_Q5_0, "q5_0", 32, 22, DQ | LIN | QZ | R16, 0, 2},
    [FF_QT_Q5_1] = {FF_QT_Q5_1, "q5_1", 32, 24, DQ | LIN | QZ | R16, 0, 4},
    [FF_QT_Q8_0] = {FF_QT_Q8_0, "q8_0", 32, 34, DQ | LIN | QZ | R16, 0, 2},
    [FF_QT_Q8_1] = {FF_QT_Q8_1, "q8_1", 32, 36, 0, 0, 4},
    [FF_QT_Q2_K] = {FF_QT_Q2_K, "q2_k", 256, 84, DQ | LIN | QZ | R16, 80, 84},
    [FF_QT_Q3_K] = {FF_QT_Q3_K, "q3_k", 256, 110, DQ | LIN | QZ | R16, 108, 110},
    [FF_QT_Q4_K] = {FF_QT_Q4_K, "q4_k", 256, 144, DQ | LIN | R16, 0, 4},
    [FF_QT_Q5_K] = {FF_QT_Q5_K, "q5_k", 256, 176, DQ | LIN | QZ | R16, 0, 4},
    [FF_QT_Q6_K] = {FF_QT_Q6_K, "q6_k", 256, 210, DQ | LIN | R16, 208, 210},
    [FF_QT_Q8_K] = {FF_QT_Q8_K, "q8_k", 256, 292, 0, 0, 0},
    [FF_QT_IQ2_XXS] = {FF_QT_IQ2_XXS, "iq2_xxs", 256, 66, 0, 0, 2},
    [FF_QT_IQ2_XS] = {FF_QT_IQ2_XS, "iq2_xs", 256, 74, 0, 0, 2},
    [FF_QT_IQ3_XXS] = {FF_QT_IQ3_XXS, "iq3_xxs", 256, 98, 0, 0, 2},
    [FF_QT_IQ1_S] = {FF_QT_IQ1_S, "iq1_s", 256, 50, 0, 0, 2},
    [FF_QT_IQ4_NL] = {FF_QT_IQ4_NL, "iq4_nl", 32, 18, DQ | LIN | QZ | R16, 0, 2},
    [FF_QT_IQ3_S] = {FF_QT_IQ3_S, "iq3_s", 256, 110, 0, 0, 2},
    [FF_QT_IQ2_S] = {FF_QT_IQ2_S, "iq2_s", 256, 82, 0, 0, 2},
    [FF_QT_IQ4_XS] = {FF_QT_IQ4_XS, "iq4_xs", 256, 136, DQ | LIN | QZ | R16, 0, 2},
    [FF_QT_I8] = {FF_QT_I8, "i8", 1, 1, 0, 0, 0},
    [FF_QT_I16] = {FF_QT_I16, "i16", 1, 2, 0, 0, 0},
    [FF_QT_I32] = {FF_QT_I32, "i32", 1, 4, 0, 0, 0},
    [FF_QT_I64] = {FF_QT_I64, "i64", 1, 8, 0, 0, 0},
    [FF_QT_F64] = {FF_QT_F64, "f64", 1, 8, 0, 0, 0},
    [FF_QT_IQ1_M] = {FF_QT_IQ1_M, "iq1_m", 256, 56, 0, 0, 0},
    [FF_QT_BF16] = {FF_QT_BF16, "bf16", 1, 2, DQ | QZ, 0, 0},
    [FF_QT_TQ1_0] = {FF_QT_TQ1_0, "tq1_0", 256, 54, 0, 52, 54},
    [FF_QT_TQ2_0] = {FF_QT_TQ2_0, "tq2_0", 256, 66, 0, 64, 66},
    [FF_QT_MXFP4] = {FF_QT_MXFP4, "mxfp4", 32, 17, 0, 0, 0},
    [FF_QT_NVFP4] = {FF_QT_NVFP4, "nvfp4", 64, 36, 0, 0, 0},
    [FF_QT_Q1_0] = {FF_QT_Q1_0, "q1_0", 128, 18, 0, 0, 0},
};

const ff_qtype_info *ff_qtype_get(int qtype) {
    return qtype >= 0 && qtype < FF_QT_COUNT && qtypes[qtype].name ? &qtypes[qtype] : NULL;
}

int64_t ff_qtype_block(int qtype) {
    const ff_qtype_info *q = ff_qtype_get(qtype);
    return q ? q->block : 0;
}

int64_t ff_qtype_block_bytes(int qtype) {
    const ff_qtype_info *q = ff_qtype_get(qtype);
    return q ? q->block_bytes : 0;
}

int64_t ff_qtype_row_bytes(int qtype, int64_t cols) {
    const ff_qtype_info *q = ff_qtype_get(qtype);
    if (!q || cols < 0 || cols % q->block) return -1;
    return cols / q->block * q->block_bytes;
}

int ff_qtype_has(int qtype, int flags) {
    const ff_qtype_info *q = ff_qtype_get(qtype);
    return q && (q->flags & flags) == flags;
}
