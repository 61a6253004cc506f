"""Fuzz parse_config (config.json -> ModelConfig) and the rotary frequencies computed from it. An input that
is a JSON object is used as is (seeds: real-shaped configs); any other input builds a dict of known keys with
values of random types. Allowed: FormatError, UnsupportedError."""

import json

import numpy as np
from fuzz_common import LOADER_ERRORS, Input, main

from fastformer.checkpoint import rope_inv_freq
from fastformer.hf import parse_config

KEYS = [
    "architectures",
    "model_type",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "num_hidden_layers",
    "max_position_embeddings",
    "vocab_size",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "hidden_act",
    "sliding_window",
    "use_sliding_window",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "n_embd",
    "n_head",
    "n_layer",
    "n_inner",
    "n_positions",
    "layer_norm_epsilon",
    "activation_function",
    "rope_type",
    "type",
    "factor",
    "low_freq_factor",
    "high_freq_factor",
    "original_max_position_embeddings",
    # the families the models issue added (qwen3, phi3, gemma2, gemma3)
    "partial_rotary_factor",
    "short_factor",
    "long_factor",
    "attention_factor",
    "query_pre_attn_scalar",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "sliding_window_pattern",
    "layer_types",
    "rope_local_base_freq",
    "hidden_activation",
    "text_config",
    "full_attention",
    "sliding_attention",
]
NAMES = [
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "GPT2LMHeadModel",
    "llama",
    "mistral",
    "qwen2",
    "gpt2",
    "llama3",
    "linear",
    "default",
    "silu",
    "gelu_new",
    "yarn",
    "Qwen3ForCausalLM",
    "Phi3ForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "Gemma3ForConditionalGeneration",
    "longrope",
    "su",
    "gelu_pytorch_tanh",
    "sliding_attention",
    "full_attention",
    "",
]


def value(inp, depth=0):
    """A JSON-like value of a random type."""
    kind = inp.int_in_range(0, 9 if depth < 2 else 6)
    if kind == 0:
        return inp.int_in_range(-4, 300)
    if kind == 1:
        return inp.int64()
    if kind == 2:
        return inp.float()
    if kind == 3:
        return inp.pick(NAMES)
    if kind == 4:
        return inp.text(8)
    if kind == 5:
        return inp.bool()
    if kind == 6:
        return None
    if kind == 7:
        return [value(inp, depth + 1) for _ in range(inp.int_in_range(0, 3))]
    return {inp.pick(KEYS): value(inp, depth + 1) for _ in range(inp.int_in_range(0, 6))}


def config_of(data):
    try:
        cfg = json.loads(data)
        if isinstance(cfg, dict):
            return cfg
    except (ValueError, RecursionError):
        pass
    inp = Input(data)
    return {inp.pick(KEYS): value(inp) for _ in range(inp.int_in_range(0, 40))}


def test_one_input(data):
    cfg = config_of(data)
    try:
        conf = parse_config(cfg, "fuzz/config.json", max_context=64 if data[:1] == b"{" else None)
    except LOADER_ERRORS:
        return
    for field in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "max_context"):
        v = getattr(conf, field)
        assert isinstance(v, int) and not isinstance(v, bool) and v > 0, (field, v)
    assert conf.n_heads % conf.n_kv_heads == 0
    if conf.family.rope != "none":  # partial rotary (phi3) rotates the first rotary_dim dims of each head
        assert conf.rotary_dim % 2 == 0 and 2 <= conf.rotary_dim <= conf.head_dim, (conf.rotary_dim, conf.head_dim)
        inv = rope_inv_freq(conf)
        assert inv.shape == (conf.rotary_dim // 2,) and inv.dtype == np.float32
        if conf.rope_long_after:  # longrope: the long set has the same shape
            assert rope_inv_freq(conf, long=True).shape == inv.shape


if __name__ == "__main__":
    main(test_one_input)
