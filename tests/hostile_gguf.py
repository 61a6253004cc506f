"""Hostile cases: GGUF files, the container, the model and the tokenizer in them."""

import struct

import numpy as np
from hostile_fixtures import (
    ARR,
    FF,
    HEADS,
    STR,
    U8,
    U32,
    D,
    case,
    gguf_bytes,
    gguf_tensor,
    gkv,
    gstr,
    load_model,
    rebuild_gguf,
    simple,
)

import fastformer
from fastformer.gguf import GGUFFile

# GGUF files: the container


def _gguf(ctx, *args, name="bad.gguf", **kw):
    path = ctx.path(name)
    with open(path, "wb") as f:
        f.write(gguf_bytes(*args, **kw))
    return GGUFFile(path)


ARCH = gkv("general.architecture", "llama")
ONE_T = [("a", [8], 0, 0)]


simple(
    "gguf_bad_magic",
    "FormatError",
    r"bad magic",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], magic=b"GGUX", data=bytes(32)),
)
simple(
    "gguf_version_1",
    "UnsupportedError",
    r"GGUF version 1; supported: 2, 3",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], version=1, data=bytes(32)),
)


@case("FormatError", r"only 10 bytes", "bad.gguf")
def gguf_ten_bytes(ctx):
    with open(ctx.path("bad.gguf"), "wb") as f:
        f.write(b"GGUF" + bytes(6))
    GGUFFile(ctx.path("bad.gguf"))


simple(
    "gguf_tensor_count_2_63",
    "FormatError",
    r"tensor count 9223372036854775808 .*impossible",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], n_tensors=2**63, data=bytes(64)),
)
simple(
    "gguf_kv_count_2_63",
    "FormatError",
    r"metadata count 9223372036854775808 .*impossible",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], n_kv=2**63, data=bytes(64)),
)
simple(
    "gguf_key_length_2_63",
    "FormatError",
    r"metadata key 0 length 9223372036854775808 exceeds",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("general.name", length=2**63)], data=bytes(64)),
)
simple(
    "gguf_string_past_end",
    "FormatError",
    r"truncated: value of general.name needs 1000 bytes",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("general.name") + struct.pack("<I", STR) + gstr("x", length=1000)], align=1),
)
simple(
    "gguf_array_length_2_63",
    "FormatError",
    r"array k of 9223372036854775808 elements runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<IIQ", ARR, U32, 2**63)], data=bytes(64)),
)
simple(
    "gguf_string_array_length_2_60",
    "FormatError",
    r"array k of 1152921504606846976 strings runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<IIQ", ARR, STR, 2**60)], data=bytes(64)),
)
simple(
    "gguf_unknown_value_type",
    "FormatError",
    r"unknown value type 99",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<I", 99) + bytes(8)], data=bytes(32)),
)
simple(
    "gguf_key_invalid_utf8",
    "FormatError",
    r"not valid UTF-8",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr(b"\xff\xfe") + struct.pack("<II", U32, 1)], data=bytes(32)),
)
simple(
    "gguf_duplicate_key",
    "FormatError",
    r"duplicate metadata key 'general.architecture'",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH, ARCH], data=bytes(32)),
)
simple(
    "gguf_alignment_not_power_of_two",
    "FormatError",
    r"general.alignment 3 must be a power of two",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gkv("general.alignment", 3, U32)], ONE_T, bytes(64)),
)
simple(
    "gguf_nested_array",
    "UnsupportedError",
    r"array k holds arrays; supported: arrays of numbers or strings",
    "bad.gguf",
    lambda ctx: _gguf(
        ctx, [gstr("k") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 1) + b"x"], data=bytes(32)
    ),
)
simple(
    "gguf_five_dims",
    "FormatError",
    r"n_dims 5, expected 1..4",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [1, 1, 1, 1, 1], 0, 0)], bytes(32)),
)
simple(
    "gguf_zero_dimension",
    "FormatError",
    r"dimensions \[8, 0\]",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8, 0], 0, 0)], bytes(32)),
)
simple(
    "gguf_dimension_2_63",
    "FormatError",
    r"dimensions \[9223372036854775808\]",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [2**63], 0, 0)], bytes(32)),
)
simple(
    "gguf_dims_product_overflows",
    "FormatError",
    r"'a' \(\d+ bytes at offset 0\) runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [2**40, 2**40, 2**40, 2**40], 0, 0)], bytes(32)),
)
simple(
    "gguf_unknown_ggml_type",
    "UnsupportedError",
    r"ggml type 77; supported: F32, F16",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 77, 0)], bytes(32)),
)
simple(
    "gguf_unaligned_offset",
    "FormatError",
    r"offset 4 is not aligned to 32",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 0, 4)], bytes(64)),
)
simple(
    "gguf_overlapping_tensors",
    "FormatError",
    r"tensors 'a' and 'b' overlap",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [16], 0, 0), ("b", [16], 0, 32)], bytes(128)),
)
simple(
    "gguf_duplicate_tensor",
    "FormatError",
    r"duplicate tensor name 'a'",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 0, 0), ("a", [8], 0, 32)], bytes(64)),
)
simple(
    "gguf_row_not_block_multiple",
    "FormatError",
    r"row length 33 is not a multiple of the Q8_0 block 32",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [33], 8, 0)], bytes(64)),
)


@case("FormatError", r"runs past the end of the file .*truncated", "cut.gguf")
def gguf_truncated_data(ctx):
    blob = open(ctx.gguf, "rb").read()
    with open(ctx.path("cut.gguf"), "wb") as f:
        f.write(blob[: len(blob) - 4096])
    load_model(ctx.path("cut.gguf"))


@case("FormatError", r"truncated", "cut.gguf")
def gguf_truncated_header(ctx):
    blob = open(ctx.gguf, "rb").read()
    with open(ctx.path("cut.gguf"), "wb") as f:
        f.write(blob[:200])
    load_model(ctx.path("cut.gguf"))


# GGUF files: the model in them


def _gguf_model(ctx, src=None, **kw):
    return load_model(rebuild_gguf(src or ctx.gguf, ctx.path("bad.gguf"), **kw))


simple(
    "gguf_unsupported_architecture",
    "UnsupportedError",
    r"architecture 'mamba'; supported: llama, gpt2",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"general.architecture": "mamba"}),
)
simple(
    "gguf_zero_heads",
    "FormatError",
    r"llama.attention.head_count must be an integer from 1 to 2147483647, got 0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.head_count": 0}),
)
simple(
    "gguf_heads_do_not_divide",
    "FormatError",
    r"embedding_length 64 is not a multiple of head_count 3",
    "bad.gguf",
    lambda ctx: _gguf_model(
        ctx,
        meta={"llama.attention.head_count": 3, "llama.attention.head_count_kv": 3, "llama.attention.key_length": None},
    ),
)
simple(
    "gguf_kv_heads_do_not_divide",
    "FormatError",
    r"head_count 4 is not a multiple of head_count_kv 3",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.head_count_kv": 3}),
)
simple(
    "gguf_huge_key_length",
    "FormatError",
    r"llama.attention.key_length must be an integer from 1 to 2147483647, got 1099511627776",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.key_length": 2**40}),
)
simple(
    "gguf_context_length_u64_max",
    "FormatError",
    r"llama.context_length must be an integer from 1 to 2147483647, got 18446744073709551615",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.context_length": 2**64 - 1}),
)
simple(
    "gguf_nan_epsilon",
    "FormatError",
    r"layer_norm_rms_epsilon must be a finite number",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.layer_norm_rms_epsilon": float("nan")}),
)
simple(
    "gguf_odd_key_length",
    "FormatError",
    r"llama.attention.key_length 15 must be even",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.key_length": 15}),
)
simple(
    "gguf_missing_tensor",
    "FormatError",
    r"missing tensor 'blk.1.ffn_down.weight'",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.1.ffn_down.weight": None}),
)
simple(
    "gguf_wrong_tensor_shape",
    "FormatError",
    r"'blk.0.attn_k.weight' has shape \(64, 64\), expected \(32, 64\)",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.0.attn_k.weight": np.zeros((64, 64), np.float32)}),
)
simple(
    "gguf_unsupported_quant_type",
    "UnsupportedError",
    r"'blk.0.attn_q.weight' has type Q8_1; supported: .*Q8_0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.0.attn_q.weight": (9, (64, 64), bytes(64 * 2 * 36))}),
)


@case("FormatError", r"'blk.1.attn_v.weight'.*non-finite", "bad.gguf")
def gguf_inf_f32_weight(ctx):
    w = gguf_tensor(ctx.gguf, "blk.1.attn_v.weight").copy()
    w[0, 0] = -np.inf
    _gguf_model(ctx, tensors={"blk.1.attn_v.weight": w})


@case("FormatError", r"'blk.0.ffn_up.weight'.*non-finite", "bad.gguf")
def gguf_nan_q8_0_scale(ctx):
    raw = bytearray(GGUFFile(ctx.gguf_q8).raw("blk.0.ffn_up.weight"))
    raw[34 * 5 : 34 * 5 + 2] = np.array([np.nan], "<f2").tobytes()  # the scale of block 5
    _gguf_model(ctx, ctx.gguf_q8, tensors={"blk.0.ffn_up.weight": (8, (FF, D), bytes(raw))})


simple(
    "gguf_zero_rope_freqs",
    "FormatError",
    r"rope_freqs.weight.*finite.*> 0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"rope_freqs.weight": np.zeros(D // HEADS // 2, np.float32)}),
)
simple(
    "gguf_more_layers_than_block_count",
    "FormatError",
    r"'blk.2.attn_norm.weight'.*block_count 2",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.2.attn_norm.weight": np.ones(D, np.float32)}),
)


# GGUF files: the tokenizer in them

simple(
    "gguf_token_types_length_mismatch",
    "FormatError",
    r"tokenizer.ggml.token_type has 3 entries for \d+ tokens",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.token_type": np.ones(3, np.int32)}),
)


@case("FormatError", r"tokenizer.ggml.tokens has 400 tokens, more than the 300 rows of token_embd.weight", "bad.gguf")
def gguf_tokenizer_larger_than_model(ctx):
    md = GGUFFile(ctx.gguf).metadata
    tokens = list(md["tokenizer.ggml.tokens"]) + [f"extra{i}" for i in range(400 - len(md["tokenizer.ggml.tokens"]))]
    types = np.concatenate([md["tokenizer.ggml.token_type"], np.full(400 - len(md["tokenizer.ggml.token_type"]), 1)])
    _gguf_model(ctx, meta={"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types.astype(np.int32)})


simple(
    "gguf_bos_out_of_range",
    "FormatError",
    r"tokenizer.ggml.bos_token_id 70000 .*\[0, \d+\)",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.bos_token_id": 70000}),
)
simple(
    "gguf_tokens_not_strings",
    "FormatError",
    r"tokenizer.ggml.tokens must be an array of strings",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.tokens": np.arange(280, dtype=np.int32)}),
)


@case("FormatError", r"tokenizer.ggml.tokens: token '.*' appears twice \(ids 260 and 261\)", "bad.gguf")
def gguf_duplicate_token(ctx):
    tokens = list(GGUFFile(ctx.gguf).metadata["tokenizer.ggml.tokens"])
    tokens[261] = tokens[260]
    _gguf_model(ctx, meta={"tokenizer.ggml.tokens": tokens})


simple(
    "gguf_merge_of_unknown_token",
    "FormatError",
    r"merge 0 .* not in the vocabulary",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.merges": ["qq zz"]}),
)


@case("FormatError", r"tokenizer.ggml.token_type of token 7 is 99, expected 0..6", "bad.gguf")
def gguf_unknown_token_type(ctx):
    types = np.array(GGUFFile(ctx.gguf).metadata["tokenizer.ggml.token_type"], np.int32)
    types[7] = 99
    _gguf_model(ctx, meta={"tokenizer.ggml.token_type": types})


simple(
    "gguf_unsupported_tokenizer_model",
    "UnsupportedError",
    r"tokenizer.ggml.model 'bert' .*gpt2 and llama",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.model": "bert"}),
)


@case("FormatError", r"tokenizer.ggml.scores has 2 entries for 3 tokens", "SPM metadata")
def gguf_scores_length_mismatch(ctx):
    fastformer.Tokenizer.from_gguf_metadata(
        {
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": ["a", "b", "c"],
            "tokenizer.ggml.scores": [0.0, 1.0],
        },
        source="SPM metadata",
    )


# the kinds the models issue added: pre-tokenizers, chat templates, architectures with their own tensors
simple(
    "gguf_unknown_pre_tokenizer",
    "UnsupportedError",
    r"tokenizer.ggml.pre 'no-such-split'.*llama-bpe",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "no-such-split"}),
)
simple(
    "gguf_chat_template_not_a_string",
    "FormatError",
    r"tokenizer.chat_template must be a string",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.chat_template": 7}),
)
simple(
    "gguf_qwen3_without_qk_norms",
    "FormatError",
    r"missing tensor 'blk.0.attn_q_norm.weight'",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"general.architecture": "qwen3", **_renamed_keys(ctx, "qwen3")}),
)
simple(
    "gguf_gemma2_bad_sliding_pattern",
    "FormatError",
    r"gemma2.attention.sliding_window_pattern must be",
    "bad.gguf",
    lambda ctx: _gguf_model(
        ctx,
        meta={
            "general.architecture": "gemma2",
            "gemma2.attention.sliding_window_pattern": [True],
            **_renamed_keys(ctx, "gemma2"),
        },
    ),
)


def _renamed_keys(ctx, arch):
    """The llama.* keys of the fixture under arch.* (the tensors stay llama's)."""
    meta = GGUFFile(ctx.gguf).metadata
    return {k.replace("llama.", f"{arch}.", 1): v for k, v in meta.items() if k.startswith("llama.")}
