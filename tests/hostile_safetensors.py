"""Hostile cases: safetensors files and config.json (tests/test_hostile.py runs them)."""

import json
import os
import struct

import numpy as np
from helpers import llama_tensors, write_safetensors
from hostile_fixtures import D, case, load_model, simple

from fastformer.safetensors import SafetensorsFile


def _st_file(ctx, header=None, data=b"\0" * 8, **kw):
    return SafetensorsFile(write_safetensors(ctx.path("bad.safetensors"), header, data, **kw))


def _one(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"x": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


# safetensors files

simple(
    "st_header_length_2_63",
    "FormatError",
    r"header length 9223372036854775808",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, {}, header_len=2**63),
)


@case("FormatError", r"header length .*100 MB", "big.safetensors")
def st_header_length_over_limit(ctx):
    path = ctx.path("big.safetensors")
    with open(path, "wb") as f:  # sparse: 200 MB of holes
        f.write(struct.pack("<Q", 150 * 2**20) + b"{")
        f.truncate(200 * 2**20)
    SafetensorsFile(path)


@case("FormatError", r"shorter than its 8-byte header", "tiny.safetensors")
def st_shorter_than_length_field(ctx):
    with open(ctx.path("tiny.safetensors"), "wb") as f:
        f.write(b"\x05\0\0")
    SafetensorsFile(ctx.path("tiny.safetensors"))


@case("FormatError", r"model.safetensors.*truncated", "model.safetensors")
def st_truncated_checkpoint(ctx):
    path = ctx.hf_copy()
    st = os.path.join(path, "model.safetensors")
    with open(st, "r+b") as f:
        f.truncate(os.path.getsize(st) - 100)
    load_model(path)


simple(
    "st_overlapping_offsets",
    "FormatError",
    r"overlap",
    "bad.safetensors",
    lambda ctx: _st_file(
        ctx,
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\0" * 12,
    ),
)
simple(
    "st_reversed_offsets",
    "FormatError",
    r"data_offsets \[8, 0\]",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(offsets=(8, 0))),
)
simple(
    "st_dtype_shape_length_mismatch",
    "FormatError",
    r"F32 x shape \[3\] needs 12 bytes",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(3,))),
)
simple(
    "st_negative_dimension",
    "FormatError",
    r"negative dimension",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(-2,))),
)
simple(
    "st_shape_product_overflows_int64",
    "FormatError",
    r"needs \d+ bytes",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(2**62, 2**62))),
)
simple(
    "st_unknown_dtype",
    "FormatError",
    r"unknown dtype 'Q9'.*F32",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(dtype="Q9")),
)


@case("FormatError", r"duplicate key 'x'", "bad.safetensors")
def st_duplicate_names(ctx):
    entry = b'{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    _st_file(ctx, raw_header=b'{"x": ' + entry + b', "x": ' + entry + b"}")


simple(
    "st_gap_between_tensors",
    "FormatError",
    r"bytes 8\.\.16 .*not covered",
    "bad.safetensors",
    lambda ctx: _st_file(
        ctx,
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
        },
        b"\0" * 24,
    ),
)
simple(
    "st_header_invalid_utf8",
    "FormatError",
    r"not valid JSON",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, raw_header=b'{"\xff\xfe": 1}'),
)
simple(
    "st_offsets_not_integers",
    "FormatError",
    r"data_offsets must be \[begin, end\]",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(offsets=(False, 8.0))),
)
simple(
    "st_metadata_not_strings",
    "FormatError",
    r"__metadata__",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, dict(_one(), __metadata__={"format": [1, 2]})),
)


@case("FormatError", r"'model.layers.0.mlp.up_proj.weight'.*non-finite", "model.safetensors")
def st_nan_weight(ctx):
    t = llama_tensors()
    t["model.layers.0.mlp.up_proj.weight"][3, 5] = np.nan
    load_model(ctx.hf_copy(tensors=t))


@case("FormatError", r"'model.norm.weight'.*non-finite", "model.safetensors")
def st_inf_f16_weight(ctx):
    t = llama_tensors()
    t["model.norm.weight"] = np.full(D, np.inf, np.float16)
    load_model(ctx.hf_copy(tensors=t))


@case("FormatError", r"'lm_head.weight' has shape \(300, 32\), expected \(300, 64\)", "model.safetensors")
def st_wrong_weight_shape(ctx):
    t = llama_tensors()
    t["lm_head.weight"] = t["lm_head.weight"][:, :32]
    load_model(ctx.hf_copy(tensors=t))


@case("FormatError", r"integer dtype I32", "model.safetensors")
def st_integer_weight(ctx):
    t = llama_tensors()
    t["model.norm.weight"] = np.ones(D, np.int32)
    load_model(ctx.hf_copy(tensors=t))


@case("FormatError", r"model.layers.2.* num_hidden_layers 2", "model.safetensors")
def st_more_layers_than_config(ctx):
    t = llama_tensors()
    t["model.layers.2.input_layernorm.weight"] = np.ones(D, np.float32)
    load_model(ctx.hf_copy(tensors=t))


def _load_with_index(ctx, weight_map):
    """Load a checkpoint copy whose model.safetensors.index.json holds weight_map."""
    path = ctx.hf_copy()
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": weight_map}, f)
    load_model(path)


@case("FormatError", r"shard '../x.safetensors' is outside", "model.safetensors.index.json")
def st_index_shard_outside_directory(ctx):
    _load_with_index(ctx, {"model.norm.weight": "../x.safetensors"})


@case("FileNotFoundError", r"shard 'nope.safetensors' does not exist", "model.safetensors.index.json")
def st_index_missing_shard(ctx):
    _load_with_index(ctx, {"model.norm.weight": "nope.safetensors"})


# config.json

simple(
    "cfg_zero_heads",
    "FormatError",
    r"num_attention_heads must be an integer from 1 to 2147483647, got 0",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"num_attention_heads": 0})),
)
simple(
    "cfg_negative_layers",
    "FormatError",
    r"num_hidden_layers must be an integer from 1 to 2147483647, got -2",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"num_hidden_layers": -2})),
)
simple(
    "cfg_hidden_not_divisible_by_heads",
    "FormatError",
    r"hidden_size 64 is not a multiple of num_attention_heads 3",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"num_attention_heads": 3, "num_key_value_heads": 3})),
)
simple(
    "cfg_kv_heads_do_not_divide",
    "FormatError",
    r"num_attention_heads 4 is not a multiple of num_key_value_heads 3",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"num_key_value_heads": 3})),
)
simple(
    "cfg_vocab_2_40",
    "FormatError",
    r"vocab_size must be an integer from 1 to 2147483647, got 1099511627776",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"vocab_size": 2**40})),
)
simple(
    "cfg_odd_head_dim",
    "FormatError",
    r"head_dim 15 must be even",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"head_dim": 15})),
)
simple(
    "cfg_huge_head_dim",
    "FormatError",
    r"head_dim must be an integer from 1 to 2147483647, got 1099511627776",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"head_dim": 2**40})),
)
simple(
    "cfg_rope_theta_negative",
    "FormatError",
    r"rope_theta must be a finite number > 0",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"rope_theta": -1.0})),
)
simple(
    "cfg_eps_not_a_number",
    "FormatError",
    r"rms_norm_eps must be a finite number",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"rms_norm_eps": "tiny"})),
)
simple(
    "cfg_rope_scaling_without_factor",
    "FormatError",
    r"rope_scaling.*factor",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"rope_scaling": {"rope_type": "linear"}})),
)
simple(
    "cfg_eos_not_an_integer",
    "FormatError",
    r"eos_token_id must be an integer token id, got '2'",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"eos_token_id": [1, "2"]})),
)


@case(None, None, None)
def cfg_eos_out_of_range_is_dropped_with_a_warning(ctx):
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = load_model(ctx.hf_copy(config={"eos_token_id": [5000, 7], "bos_token_id": 300}))
    assert model.config.eos_token_ids == [7] and model.config.bos_token_id is None, model.config
    assert any("eos_token_id 5000 is outside the vocabulary [0, 300)" in str(x.message) for x in w), w


simple(
    "cfg_architectures_not_a_list",
    "FormatError",
    r"architectures must be a list of strings",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"architectures": "LlamaForCausalLM"})),
)
simple(
    "cfg_unsupported_architecture",
    "UnsupportedError",
    r"'T5Model'.*supported: LlamaForCausalLM",
    "config.json",
    lambda ctx: load_model(ctx.hf_copy(config={"architectures": ["T5Model"], "model_type": "t5"})),
)
simple(
    "cfg_negative_sliding_window",
    "FormatError",
    r"sliding_window must be null or an integer from 1 to 2147483647, got -4",
    "config.json",
    lambda ctx: load_model(
        ctx.hf_copy(config={"architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": -4})
    ),
)


@case("FormatError", r"not valid JSON", "config.json")
def cfg_not_json(ctx):
    path = ctx.hf_copy()
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write('{"hidden_size": 64,')
    load_model(path)


@case("FileNotFoundError", r"config.json", "config.json")
def cfg_missing(ctx):
    path = ctx.hf_copy()
    os.remove(os.path.join(path, "config.json"))
    load_model(path)
