// fastformer: C kernels for CPU transformer inference.
// Every entry point takes float32, C-contiguous buffers; outputs come first, sizes last.
// Everything that can fail is checked by the caller (the Cython layer) before a kernel runs.
#ifndef FASTFORMER_H
#define FASTFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- status codes returned by entry points that can run out of memory ----
#define FF_OK 0
#define FF_ENOMEM 1
#define FF_EINVAL 2

// ---- cpu: feature detection, the dispatch tables and the int8 dot choice (ff_cpu.c) ----
enum ff_isa { FF_ISA_SCALAR = 0, FF_ISA_AVX2 = 1, FF_ISA_AVX512 = 2, FF_ISA_COUNT = 3 };

enum ff_feature {
    FF_F_SSE42,
    FF_F_AVX,
    FF_F_AVX2,
    FF_F_FMA,
    FF_F_F16C,
    FF_F_AVX512F,
    FF_F_AVX512BW,
    FF_F_AVX512DQ,
    FF_F_AVX512VL,
    FF_F_AVX512VNNI,
    FF_F_AVX512BF16,
    FF_F_AVXVNNI,
    FF_F_AMX_TILE,
    FF_F_AMX_INT8,
    FF_F_AMX_BF16,
    FF_F_NEON,
    FF_F_COUNT
};

int ff_cpu_init(void);                     // detect features, pick the best usable ISA; returns it
int ff_cpu_has(int feature);               // 1 if the cpu and the OS support feature
const char *ff_feature_name(int feature);  // "avx2", "avx512f", ...
const char *ff_isa_name(int isa);          // "scalar", "avx2", "avx512"
int ff_isa_usable(int isa);                // 1 if isa can run here
int ff_isa_current(void);                  // the ISA in use
int ff_isa_select(int isa);                // switch tables; 0 ok, -1 not usable
int ff_qtype_kernels(int isa, int qtype);  // FF_QF_* flags of qtype whose kernels every table of isa has
int ff_quant_set_vnni(int on);  // let the avx512 table use its vnni int8 kernels (default 1); returns ff_quant_vnni()
int ff_quant_vnni(void);        // 1 if the vnni kernels are in use when the avx512 table is
// the int8 dot of the 256-bit (avx2 table) kernels; every choice gives the same bits
enum {
    FF_DOT256_MADDUBS = 0,  // avx2 vpmaddubsw + vpmaddwd
    FF_DOT256_AVXVNNI = 1,  // avx-vnni: vex vpdpbusd (the default where the cpu has it)
    FF_DOT256_VNNI256 = 2   // avx-512 vnni on 256-bit registers: evex vpdpbusd (the same source as avx-vnni)
};
int ff_quant_set_dot256(int mode);  // FF_OK, or FF_EINVAL if this cpu cannot run `mode` (nothing changes)
int ff_quant_dot256(void);
// how far ahead (bytes, a multiple of 64 in 0..FF_AHEAD_MAX) the one-row (decode) kernels prefetch W (r16, 256-bit)
// into L2, 0 for none, and from how many bytes of weights read in turn on (`above`; below, W stays in the L3 cache
// from one pass to the next, and the prefetches only slow the hardware's). The defaults are set at ff_cpu_init
// (ff_cpu.c says why); any setting gives the same bits
#define FF_AHEAD_MAX 65536
int ff_quant_set_ahead(int64_t bytes, int64_t above);  // FF_OK, or FF_EINVAL (nothing changes)
int64_t ff_quant_ahead(void);
int64_t ff_quant_ahead_above(void);
int64_t ff_quant_ahead_default(void);        // this cpu's distance: by vendor
int64_t ff_quant_ahead_above_default(void);  // half the L3 cache's bytes (0 if unknown)
int64_t ff_quant_ahead_for(int64_t stream);  // the distance for `stream` bytes of weights read in turn

// ---- threads: a persistent pool, work split by index (ff_threads.c) ----
void ff_set_num_threads(int n);  // 1 <= n <= FF_MAX_THREADS
int ff_get_num_threads(void);
int ff_default_num_threads(void);  // usable cores (affinity mask)
// how many times the pool's workers have read ahead (the start of their share of a model's next matrix call, while
// they wait for it) and how many bytes; a statistic for tests and benchmarks
void ff_read_ahead_stats(int64_t *spans, int64_t *bytes);
// how many times a quantized linear's thread has given the back half of what was left of its share's tail to a thread
// done with its own, and how many rows; a statistic for tests and benchmarks
void ff_tail_stats(int64_t *grants, int64_t *rows);
// how many prefill calls of the 256-bit K kernels have taken FF_QDOT_MANY activation rows at once (a statistic)
int64_t ff_qdot_many_calls(void);
#define FF_MAX_THREADS 256
// the sum (mod 2^64) of n 64-bit words read by the pool: a probe of the memory read bandwidth
uint64_t ff_read_sum(const uint64_t *p, int64_t n);

// ---- matmul (ff_matmul.c) ----
// y (m,n) = x (m,k) @ W^T + bias; W (n,k), bias (n,) or NULL
int ff_linear_f32(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n);
// how a linear picks its kernels for m activation rows. A row's bits depend on the path and on nothing else:
// not on m, not on the other rows, not on the thread count. ROWS: the few-rows kernels (gemv / int8 dots), in
// groups; PANELS: the blocked ones (gemm / int8 panels where the ISA has them); AUTO: ROWS up to 4 rows, else PANELS
enum ff_lin_path { FF_LIN_AUTO = 0, FF_LIN_ROWS = 1, FF_LIN_PANELS = 2 };
int ff_linear_f32_path(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t k, int64_t n,
                       int path);
// c (m,n) = a (m,k) @ b (k,n)
int ff_matmul_f32(float *c, const float *a, const float *b, int64_t m, int64_t k, int64_t n);

// ---- norms (ff_norm.c): rows of length n ----
void ff_norm_rms_f32(float *y, const float *x, const float *w, float eps, int64_t rows, int64_t n);
void ff_norm_layer_f32(float *y, const float *x, const float *w, const float *b, float eps, int64_t rows, int64_t n);

// ---- activations and softmax (ff_act.c): y may alias x ----
void ff_softmax_f32(float *y, const float *x, int64_t rows, int64_t n);
// the first index of the largest of x[0..n), or -1 if n < 1, x holds a NaN or its largest is not finite (+inf, or
// every element -inf); split over the threads as a matrix call of as many threads splits its rows
int64_t ff_argmax_f32(const float *x, int64_t n);
void ff_gelu_tanh_f32(float *y, const float *x, int64_t n);
void ff_gelu_erf_f32(float *y, const float *x, int64_t n);
void ff_silu_f32(float *y, const float *x, int64_t n);

// ---- rotary embeddings (ff_rope.c) ----
// cos, sin (t, half) from positions (t,) and inv_freq (half,), angles computed in double
void ff_rope_table_f32(float *cos, float *sin, const int64_t *pos, const float *inv_freq, int64_t t, int64_t half);
// x (h,t,d) rotated in place with cos, sin (t, d/2)
void ff_rope_f32(float *x, const float *cos, const float *sin, int64_t h, int64_t t, int64_t d, int interleaved);

// ---- attention (ff_attention.c) ----
// o (h,tq,d) = softmax(q (h,tq,d) @ k^T (hkv,tk,d) * scale [+ causal mask]) @ v (hkv,tk,d); h % hkv == 0;
// causal: query i sits at position tk - tq + i and sees keys 0..that position (tq <= tk)
int ff_attention_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                     int64_t tk, int64_t d, float scale, int causal);
// the same with k, v heads kv_rows rows apart (>= tk): a kv cache of capacity kv_rows holding tk positions
int ff_attention_kv_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv, int64_t tq,
                        int64_t tk, int64_t kv_rows, int64_t d, float scale, int causal);
// as ff_attention_kv_f32 with soft-capped scores: s -> softcap * tanh(s / softcap) before the softmax (0 = none)
int ff_attention_kv_cap_f32(float *o, const float *q, const float *k, const float *v, int64_t h, int64_t hkv,
                            int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap, int causal);
// as ff_attention_kv_cap_f32 over a kv cache stored as kv_type: FF_QT_F32, FF_QT_F16 or FF_QT_Q8_0 (ggml blocks of
// 32 along d, d % 32 == 0); k, v (hkv, kv_rows) rows of ff_qtype_row_bytes(kv_type, d) bytes; FF_EINVAL otherwise
int ff_attention_cache(float *o, const float *q, const void *k, const void *v, int kv_type, int64_t h, int64_t hkv,
                       int64_t tq, int64_t tk, int64_t kv_rows, int64_t d, float scale, float softcap, int causal);

// ---- model forward pass (ff_model.c) ----
enum ff_dtype { FF_DT_F32 = 0 };  // or a ggml block type id of enum ff_qtype (q8_0, q4_0, q4_k, q6_k)
// a weight matrix (rows, cols), rows k-contiguous, as HF stores linear weights (out, in)
typedef struct ff_tensor {
    const void *data;
    int dtype;
    int64_t rows, cols;
} ff_tensor;

// the switches of the forward pass, by name
enum ff_norm_kind { FF_NORM_RMS = 0, FF_NORM_LAYER = 1 };  // rms norm (no bias), layer norm (bias optional)
// gated silu mlp (swiglu), plain gelu (tanh) mlp, plain gelu (erf) mlp (encoders)
enum ff_act_kind { FF_ACT_SILU = 0, FF_ACT_GELU_TANH = 1, FF_ACT_GELU_ERF = 2 };
enum ff_rope_kind {
    FF_ROPE_NONE = 0,
    FF_ROPE_HALVES = 1,
    FF_ROPE_INTERLEAVED = 2
};  // rotary pairs (i, i+d/2) or (2i, 2i+1)

typedef struct ff_layer {
    const float *attn_norm_w, *attn_norm_b;  // (d,); b NULL for rms norm
    ff_tensor wq, wk, wv, wo;                // (h*hd, d), (hkv*hd, d), (hkv*hd, d), (d, h*hd)
    const float *bq, *bk, *bv, *bo;          // biases or NULL
    const float *ffn_norm_w, *ffn_norm_b;    // (d,)
    ff_tensor w_gate, w_up, w_down;          // (f, d), (f, d), (d, f); no gate (data NULL): act(up) alone
    const float *b_up, *b_down;              // biases or NULL
    const float *q_norm_w, *k_norm_w;        // (hd,) per-head rms norm of q and k before rope (qwen3), or NULL
    const float *attn_post_norm_w;           // (d,) norm of the attention output before the residual, or NULL
    const float *ffn_post_norm_w;            // (d,) norm of the mlp output before the residual, or NULL
    int64_t window;                          // sliding-window span of this layer, 0 = none
    const float *rope_inv_freq;              // (rope_dim/2,) this layer's own rotary set, NULL = the model's
} ff_layer;

typedef struct ff_model {
    int norm;  // enum ff_norm_kind
    int act;   // enum ff_act_kind
    int rope;  // enum ff_rope_kind
    int64_t n_layers, d, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_ctx;
    float eps;              // norm epsilon
    int64_t window;         // sliding-window span of layers that do not set their own (ModelCore sets every layer's)
    const float *tok_emb;   // (vocab, d), or NULL when the table is in a block format:
    const void *tok_emb_q;  // (vocab, row bytes) blocks of tok_emb_qtype, one row dequantized per token
    int tok_emb_qtype;
    const float *pos_emb;             // (max_ctx, d) learned positions, or NULL
    const float *type_emb;            // (d,) added to every embedding (bert's token type 0), or NULL
    const float *norm_w, *norm_b;     // final norm (d,)
    ff_tensor lm_head;                // (vocab, d)
    const float *rope_inv_freq;       // (rope_dim/2,), NULL if rope is FF_ROPE_NONE
    const float *rope_inv_freq_long;  // (rope_dim/2,) longrope's set for sessions with rope_long, or NULL
    int64_t rope_dim;                 // rotated dims at the start of each head (partial rotary), <= head_dim
    float rope_attn_factor;           // cos and sin are scaled by this (longrope), 1 = none
    float emb_scale;                  // embeddings are multiplied by this (gemma), 0 = not scaled
    float attn_scale;                 // attention scores are multiplied by this, 0 = 1/sqrt(head_dim)
    float attn_softcap;               // scores -> cap * tanh(scores / cap) before the softmax, 0 = none
    float final_softcap;              // logits -> cap * tanh(logits / cap), 0 = none
    const ff_layer *layers;           // (n_layers,)
    int64_t stream_bytes;             // the matrices' bytes a decode step reads, 0 = unknown: the decode kernels'
                                      // prefetch follows it (ff_quant_ahead_for)
} ff_model;

// one sequence's state: the kv cache and scratch for up to max_t tokens per call, all owned by the caller
typedef struct ff_session {
    void *k_cache, *v_cache;  // (n_layers, n_kv_heads, cap) rows of head_dim values stored as kv_type
    int kv_type;              // FF_QT_F32, FF_QT_F16 or FF_QT_Q8_0 (head_dim % 32 == 0); a q8_0 row is quantized once
    int64_t cap;              // positions the cache holds (<= max_ctx)
    int64_t n_past;           // positions already in the cache
    int64_t max_t;            // most tokens one forward call may take
    int rope_long;            // rotate with rope_inv_freq_long (longrope past its pretraining length)
    float *x, *h;             // (max_t, d)
    float *q, *qt, *ot;       // (max_t, n_heads*head_dim)
    float *att;               // (max_t, max(n_heads*head_dim, d))
    float *k, *v;             // (max_t, n_kv_heads*head_dim)
    float *f1, *f2;           // (max_t, d_ff)
    float *cos, *sin;         // (max_t, head_dim/2)
} ff_session;

// bytes of scratch a session of up to max_t tokens per call needs (the kv cache apart)
int64_t ff_session_bytes(const ff_model *m, int64_t max_t);
// s with its scratch buffers carved out of buf (ff_session_bytes(m, max_t) bytes, any alignment: each buffer
// starts 64-byte aligned), the cache k_cache, v_cache (n_layers, n_kv_heads, cap) rows of
// ff_qtype_row_bytes(kv_type, head_dim) bytes and n_past = 0
void ff_session_init(ff_session *s, const ff_model *m, void *buf, void *k_cache, void *v_cache, int kv_type,
                     int64_t cap, int64_t max_t);
// run ids (t,) at positions n_past.. and append them to the cache; logits (t, vocab) if all_logits else (1, vocab)
// for the last token; ids must be < vocab and n_past + t <= cap, t <= max_t (checked by the caller)
int ff_model_forward(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits, int all_logits);
// as ff_model_forward with the linears of every row on kernel path `path` (enum ff_lin_path)
int ff_model_forward_path(const ff_model *m, ff_session *s, const int32_t *ids, int64_t t, float *logits,
                          int all_logits, int path);

// one sequence's share of a batched step: t tokens at its cache's next positions
typedef struct ff_seq {
    ff_session *s;   // its kv cache and position (n_past advances by t); its scratch is not used
    int64_t t;       // rows of ids it adds, consecutive, in the order of the seqs
    int path;        // enum ff_lin_path of its rows: a row's bits do not depend on the rest of the batch
    int all_logits;  // logits of each of its rows, or of the last only
} ff_seq;
#define FF_BATCH_MAX 256  // sequences in one batched step
// one forward step over nseq sequences (1 <= nseq <= FF_BATCH_MAX) with the scratch of b (its cache unused):
// every row of every sequence shares each weight read; attention is per sequence over its own cache. logits
// gets the wanted rows in sequence order (vocab floats each). Rows total <= b->max_t, n_past + t <= cap each.
int ff_model_forward_batch(const ff_model *m, ff_session *b, const ff_seq *seqs, int nseq, const int32_t *ids,
                           float *logits);

// ---- encoder forward pass (ff_encoder.c): bert-style, sequences packed without padding ----
// bytes of scratch for a batch of `rows` tokens in all whose longest sequence has max_len tokens
int64_t ff_encoder_bytes(const ff_model *m, int64_t rows, int64_t max_len);
// out (sum(lens), d) = last hidden states of n_seq sequences ids (sum(lens),) laid end to end, sequence s holding
// lens[s] tokens at positions 0..lens[s]-1 and attending to itself only; scratch: ff_encoder_bytes, any alignment.
// m: norm FF_NORM_LAYER, norm_w/norm_b the embedding norm, post-norm blocks; ids < vocab, lens[s] <= max_ctx
int ff_encoder_forward(const ff_model *m, float *out, const int32_t *ids, const int64_t *lens, int64_t n_seq,
                       void *scratch);

// ---- tokenizer: split scanners (ff_pretok.c) and byte-pair encoding (ff_bpe.c) ----
// split patterns with a hand-written scanner; NONE keeps a segment whole
enum ff_pretok {
    FF_PRETOK_NONE,
    FF_PRETOK_GPT2,
    FF_PRETOK_CL100K,
    FF_PRETOK_O200K,
    FF_PRETOK_LLAMA3,
    FF_PRETOK_QWEN2,
    FF_PRETOK_GPT4O,           // llama.cpp's gpt-4o regex (o200k, case classes read by ascii)
    FF_PRETOK_TEKKEN,          // llama.cpp's tekken regex
    FF_PRETOK_GGUF_DEFAULT,    // llama.cpp's lists of regexes applied in turn, by tokenizer.ggml.pre: "default"
    FF_PRETOK_FALCON,          // "falcon"
    FF_PRETOK_DEEPSEEK_LLM,    // "deepseek-llm"
    FF_PRETOK_DEEPSEEK_CODER,  // "deepseek-coder"
    FF_PRETOK_DIGITS_GPT2,     // "starcoder", "smollm", "command-r" ...: each number character alone, then gpt2
    FF_PRETOK_COUNT
};
// piece ends (at most n) of utf-8 text (n,) under split pattern kind; returns the number of pieces
int64_t ff_pretok_split(int64_t *ends, const uint8_t *text, int64_t n, int kind);
const char *ff_unicode_version(void);  // of the category table the scanners use
int ff_unicode_category(uint32_t cp);  // 0 other, 1 Lu, 2 Ll, 3 Lt, 4 Lm, 5 Lo, 6 M, 7 N, 8 \s, 9 \r\n, 10 P

typedef struct ff_bpe ff_bpe;  // a vocabulary, its merges, a split pattern and special tokens; read-only once built
enum ff_token_kind { FF_TOKEN_UNUSED, FF_TOKEN_MERGEABLE, FF_TOKEN_SPECIAL };  // what an id is (kind[] of ff_bpe_new)
enum ff_bpe_mode { FF_BPE_PLAIN, FF_BPE_ALLOWED, FF_BPE_DISALLOWED };  // a special token's text: plain, token, error
// ids 0..n-1: id i is bytes[off[i]..off[i+1]), kind[i] an ff_token_kind; NULL on OOM
ff_bpe *ff_bpe_new(const uint8_t *bytes, const int64_t *off, const uint8_t *kind, int32_t n);
void ff_bpe_free(ff_bpe *b);
int32_t ff_bpe_token_id(const ff_bpe *b, const uint8_t *bytes, int64_t n);  // mergeable token, or -1
// merge i joins ids (left[i], right[i]) (n,) into the token of their joined bytes, rank i (later duplicates win);
// 0 ok, FF_ENOMEM, or -1 - i when that token does not exist
int64_t ff_bpe_merges_list(ff_bpe *b, const int32_t *left, const int32_t *right, int64_t n);
// every split of mergeable token t into two tokens merges to t with rank[t] (n,); rank < 0: never a merge result
int ff_bpe_merges_ranked(ff_bpe *b, const int32_t *rank);
// after the merges: split pattern; initial symbols by byte (byte_id (256,)) or by utf-8 character (the character's
// token, else byte_id of its bytes if byte_id != NULL, else unk_id (-1: dropped), runs fused if fuse_unk);
// whole_first: a piece that is a token encodes to it (tiktoken, ignore_merges), else only if merging agrees
int ff_bpe_config(ff_bpe *b, int pretok, int by_char, const int32_t *byte_id, int32_t unk_id, int fuse_unk,
                  int whole_first);
int ff_bpe_specials(ff_bpe *b, const int32_t *ids, int32_t n);  // ids (n,) whose bytes are searched for in text
int ff_bpe_set_decode(ff_bpe *b, const uint8_t *bytes, const int64_t *off);  // decoded bytes per id (default: bytes)
// ids (at most n) of utf-8 text (n,); mode (n_special,) an ff_bpe_mode per special (NULL: all FF_BPE_PLAIN);
// returns the count, -1 on OOM, or -2 - k when disallowed special k occurs in the text
int64_t ff_bpe_encode(const ff_bpe *b, int32_t *ids, const uint8_t *text, int64_t n, const uint8_t *mode);
// ids of text already split into pieces [starts[k], ends[k]) (n_pieces,), at most their total bytes; -1 on OOM
int64_t ff_bpe_encode_pieces(const ff_bpe *b, int32_t *ids, const uint8_t *text, const int64_t *starts,
                             const int64_t *ends, int64_t n_pieces);
// ff_bpe_encode of texts[i] (lens[i],) into ids + starts[i] for i < n on up to nth threads; counts (n,) its results
void ff_bpe_encode_batch(const ff_bpe *b, int32_t *ids, const int64_t *starts, int64_t *counts,
                         const uint8_t *const *texts, const int64_t *lens, int64_t n, const uint8_t *mode, int nth);
int64_t ff_bpe_decode_len(const ff_bpe *b, const int32_t *ids, int64_t n);  // bytes, or -1 - k if ids[k] is invalid
void ff_bpe_decode(const ff_bpe *b, uint8_t *out, const int32_t *ids, int64_t n);  // out (ff_bpe_decode_len,)

// ---- tokenizer: WordPiece with BERT's normalizer and pre-tokenizer (ff_wordpiece.c) ----
typedef struct ff_wordpiece ff_wordpiece;  // a vocabulary and its options; read-only once built
// what the text goes through before the split: clean_text, spaces around CJK ideographs, drop nonspacing marks
enum { FF_WP_CLEAN = 1, FF_WP_CJK = 2, FF_WP_STRIP_MN = 4 };
// ids 0..n-1: id i is bytes[off[i]..off[i+1]); pieces after a word's first carry prefix (plen,); a word longer than
// max_chars characters, or with no split, is unk; flags FF_WP_*; NULL on OOM
ff_wordpiece *ff_wordpiece_new(const uint8_t *bytes, const int64_t *off, int32_t n, int32_t unk, const uint8_t *prefix,
                               int64_t plen, int64_t max_chars, int flags);
void ff_wordpiece_free(ff_wordpiece *w);
int32_t ff_wordpiece_token_id(const ff_wordpiece *w, const uint8_t *s, int64_t n);  // the token of bytes s, or -1
// ids (at most n) of utf-8 text (n,), already lower-cased / decomposed as the normalizer asks; -1 on OOM
int64_t ff_wordpiece_encode(const ff_wordpiece *w, int32_t *ids, const uint8_t *text, int64_t n);

// ---- quantized weights, ggml-compatible (ff_quant.c, ff_qdot.c; the linear in ff_qlinear.c) ----
// a quantized (rows, cols) matrix is rows of cols/block consecutive blocks in ggml's byte layout
enum ff_qtype {  // ggml's type ids (ids 4, 5 and 31..33 were retired by ggml)
    FF_QT_F32 = 0,
    FF_QT_F16 = 1,
    FF_QT_Q4_0 = 2,
    FF_QT_Q4_1 = 3,
    FF_QT_Q5_0 = 6,
    FF_QT_Q5_1 = 7,
    FF_QT_Q8_0 = 8,
    FF_QT_Q8_1 = 9,
    FF_QT_Q2_K = 10,
    FF_QT_Q3_K = 11,
    FF_QT_Q4_K = 12,
    FF_QT_Q5_K = 13,
    FF_QT_Q6_K = 14,
    FF_QT_Q8_K = 15,
    FF_QT_IQ2_XXS = 16,
    FF_QT_IQ2_XS = 17,
    FF_QT_IQ3_XXS = 18,
    FF_QT_IQ1_S = 19,
    FF_QT_IQ4_NL = 20,
    FF_QT_IQ3_S = 21,
    FF_QT_IQ2_S = 22,
    FF_QT_IQ4_XS = 23,
    FF_QT_I8 = 24,
    FF_QT_I16 = 25,
    FF_QT_I32 = 26,
    FF_QT_I64 = 27,
    FF_QT_F64 = 28,
    FF_QT_IQ1_M = 29,
    FF_QT_BF16 = 30,
    FF_QT_TQ1_0 = 34,
    FF_QT_TQ2_0 = 35,
    FF_QT_MXFP4 = 39,
    FF_QT_NVFP4 = 40,
    FF_QT_Q1_0 = 41,
    FF_QT_COUNT = 42,  // ids are below this
    FF_QT_R16 = 0x100  // flag on a FF_QF_R16 type: W repacked by ff_qrepack_r16 (ff_linear_q only, rows % 16 == 0)
};
// what fastformer implements for a type
enum {
    FF_QF_DEQUANT = 1,   // ff_dequantize
    FF_QF_LINEAR = 2,    // ff_linear_q (dot kernels) and block-format embedding rows
    FF_QF_QUANTIZE = 4,  // ff_quantize
    FF_QF_R16 = 8        // ff_qrepack_r16 and the r16 dot kernels
};
// one row of the quant-type table (ff_qtype.c)
typedef struct ff_qtype_info {
    int id;                  // ggml type id
    const char *name;        // ggml's name in lower case: "q8_0", "f16", ...
    int64_t block;           // weights per block (1 for f32/f16/bf16)
    int64_t block_bytes;     // bytes per block
    int flags;               // FF_QF_*
    int scale_lo, scale_hi;  // byte range [lo, hi) of the fp16 scales (d, and dmin where there is one) in a block
} ff_qtype_info;
const ff_qtype_info *ff_qtype_get(int qtype);         // the row of ggml type id qtype, NULL if unknown
int ff_qtype_has(int qtype, int flags);               // 1 if qtype is known and has every flag in flags
int64_t ff_qtype_block(int qtype);                    // weights per block, 0 if unknown
int64_t ff_qtype_block_bytes(int qtype);              // bytes per block, 0 if unknown
int64_t ff_qtype_row_bytes(int qtype, int64_t cols);  // bytes per row; -1 if unknown or cols % block != 0
// dst (rows, row_bytes) = w (rows, cols) in a FF_QF_QUANTIZE type, bytes equal to the gguf package's quantizers;
// FF_EINVAL for other types or cols % block != 0
int ff_quantize(void *dst, const float *w, int qtype, int64_t rows, int64_t cols);
// y (rows, cols) = src (rows, row_bytes) as float32 for a FF_QF_DEQUANT type; FF_EINVAL as ff_quantize
int ff_dequantize(float *y, const void *src, int qtype, int64_t rows, int64_t cols);
// y (m,n) = x (m,k) @ W^T + bias for W (n,k) in a FF_QF_LINEAR type (| FF_QT_R16 for FF_QF_R16 ones), bias (n,) or
// NULL: x is quantized per 32 to int8 (the calling thread's ff_scratch holds it); FF_EINVAL for other types or
// k % block != 0
int ff_linear_q(float *y, const float *x, const void *w, int qtype, const float *bias, int64_t m, int64_t k, int64_t n);
void ff_fp32_to_fp16_row(uint16_t *y, const float *x, int64_t n);  // round to nearest even (f16c or scalar)
void ff_fp16_to_fp32_row(float *y, const uint16_t *x, int64_t n);
// dst = W (rows, cols) of a FF_QF_R16 type (q8_0/q4_0/q4_k) in the r16 layout (same size; ff_quant.h): 16 rows'
// blocks interleaved, which the vnni kernels run several times faster; FF_EINVAL for other types or rows % 16 != 0
int ff_qrepack_r16(void *dst, const void *src, int qtype, int64_t rows, int64_t cols);
int ff_qrepack_r16_pays(void);  // 1 if the r16 kernels in use are the fast ones (the avx512 table with vnni)

#ifdef __cplusplus
}
#endif
#endif
