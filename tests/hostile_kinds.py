"""Hostile cases of the kinds the models issue added: the qwen3 / gemma2 / gemma3 / phi3 forms of the GGUF
fixture and their config.json keys, the legacy and K-quant block types (non-finite scales, truncated
super-blocks, rows that are not whole blocks) and the tokenizer.ggml.* keys."""

import numpy as np
from helpers import llama_tensors
from hostile_fixtures import (
    ARCH_FORMS,
    FF,
    HEADS,
    LAYERS,
    WIDE,
    D,
    case,
    gguf_bytes,
    gkv,
    load_model,
    random_blocks,
    rebuild_gguf,
    simple,
)

from fastformer import _core
from fastformer.gguf import GGUFFile
from fastformer.hf import parse_config


def _arch_model(ctx, arch, **kw):
    return load_model(rebuild_gguf(ctx.gguf_arch(arch), ctx.path("bad.gguf"), **kw))


# ---- the valid forms load (the cases below break one field of them) ----

for _arch in ARCH_FORMS:
    simple(f"gguf_{_arch}_form_loads", None, None, None, lambda ctx, a=_arch: load_model(ctx.gguf_arch(a)))
simple("gguf_wide_loads", None, None, None, lambda ctx: load_model(ctx.gguf_wide))


# ---- architectures: shapes, block counts, windows, rope ----

simple(
    "gguf_qwen3_odd_key_length",
    "FormatError",
    r"qwen3.attention.key_length 15 must be even",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", meta={"qwen3.attention.key_length": 15}),
)
simple(
    "gguf_qwen3_q_norm_wrong_length",
    "FormatError",
    r"'blk.1.attn_q_norm.weight' has shape \(8,\), expected \(16,\)",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", tensors={"blk.1.attn_q_norm.weight": np.ones(8, np.float32)}),
)
simple(
    "gguf_qwen3_block_count_past_the_tensors",
    "FormatError",
    r"missing tensor 'blk.2.attn_norm.weight'",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", meta={"qwen3.block_count": 3}),
)
simple(
    "gguf_gemma3_block_count_short_of_the_tensors",
    "FormatError",
    r"'blk.1.\w+.weight' belongs to a layer beyond gemma3.block_count 1",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma3", meta={"gemma3.block_count": 1}),
)
simple(
    "gguf_gemma2_block_count_zero",
    "FormatError",
    r"gemma2.block_count must be an integer from 1",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma2", meta={"gemma2.block_count": 0}),
)
simple(
    "gguf_gemma2_missing_post_ffw_norm",
    "FormatError",
    r"missing tensor 'blk.0.post_ffw_norm.weight'",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma2", tensors={"blk.0.post_ffw_norm.weight": None}),
)
simple(
    "gguf_gemma2_nan_softcap",
    "FormatError",
    r"gemma2.attn_logit_softcapping must be a finite number > 0, got nan",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma2", meta={"gemma2.attn_logit_softcapping": float("nan")}),
)
simple(
    "gguf_gemma3_pattern_zero",
    "FormatError",
    r"gemma3.attention.sliding_window_pattern must be an integer from 1",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma3", meta={"gemma3.attention.sliding_window_pattern": 0}),
)
simple(
    "gguf_gemma3_zero_local_rope_base",
    "FormatError",
    r"gemma3.rope.freq_base_swa must be a finite number > 0, got 0",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma3", meta={"gemma3.rope.freq_base_swa": 0.0}),
)
simple(
    "gguf_phi3_qkv_rows_wrong",
    "FormatError",
    r"'blk.0.attn_qkv.weight' has shape \(64, 64\), expected \(128, 64\)",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", tensors={"blk.0.attn_qkv.weight": np.zeros((64, D), np.float32)}),
)
simple(
    "gguf_phi3_negative_window",
    "FormatError",
    r"phi3.attention.sliding_window must be an integer from 0 to 2147483647, got -4",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta={"phi3.attention.sliding_window": -4}),
)
simple(
    "gguf_phi3_window_2_40",
    "FormatError",
    r"phi3.attention.sliding_window must be an integer from 0 to 2147483647, got 1099511627776",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta={"phi3.attention.sliding_window": 2**40}),
)


@case(None, None, None)
def gguf_phi3_window_past_the_context_loads(ctx):
    # Phi-3-mini-128k: sliding_window 262144 over 131072 positions; the window never cuts (same logits as none)
    model = _arch_model(ctx, "phi3", meta={"phi3.attention.sliding_window": 262144})
    assert model.config.sliding_window == 262144 and model.config.max_context == 64
    ids = list(range(3, 63))
    want = load_model(rebuild_gguf(ctx.gguf_arch("phi3"), ctx.path("none.gguf"),
                                   meta={"phi3.attention.sliding_window": 0})).logits(ids)  # fmt: skip
    np.testing.assert_array_equal(model.logits(ids), want)


@case(None, None, None)
def gguf_gemma2_without_window_slides_4096(ctx):
    # gemma2 files written before the converter wrote the key: llama.cpp's default, every Gemma 2's window
    model = _arch_model(ctx, "gemma2", meta={"gemma2.attention.sliding_window": None})
    assert model.config.sliding_window == 4096 and model.config.sliding_layers == (True, False), model.config


simple(
    "gguf_phi3_odd_rope_dimension_count",
    "FormatError",
    r"phi3.rope.dimension_count 7 must be even and at most the head size 16",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta={"phi3.rope.dimension_count": 7}),
)
simple(
    "gguf_phi3_rope_dimension_count_past_head",
    "FormatError",
    r"phi3.rope.dimension_count 32 must be even and at most the head size 16",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta={"phi3.rope.dimension_count": 32}),
)
_LONG = {"phi3.rope.scaling.original_context_length": 16}
_HALF = D // HEADS // 2
simple(
    "gguf_phi3_longrope_factors_wrong_length",
    "FormatError",
    r"'rope_factors_long.weight' has shape \(3,\), expected \(8,\)",
    "bad.gguf",
    lambda ctx: _arch_model(
        ctx,
        "phi3",
        meta=_LONG,
        tensors={
            "rope_factors_short.weight": np.ones(_HALF, np.float32),
            "rope_factors_long.weight": np.ones(3, np.float32),
        },
    ),
)
simple(
    "gguf_phi3_longrope_zero_factor",
    "FormatError",
    r"'rope_factors_short.weight' must hold finite values > 0",
    "bad.gguf",
    lambda ctx: _arch_model(
        ctx,
        "phi3",
        meta=_LONG,
        tensors={
            "rope_factors_short.weight": np.zeros(_HALF, np.float32),
            "rope_factors_long.weight": np.ones(_HALF, np.float32),
        },
    ),
)
simple(
    "gguf_phi3_longrope_short_factors_alone",
    "FormatError",
    r"rope_factors_short.weight without rope_factors_long.weight",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta=_LONG, tensors={"rope_factors_short.weight": np.ones(_HALF, np.float32)}),
)
simple(
    "gguf_phi3_longrope_without_original_length",
    "FormatError",
    r"missing metadata phi3.rope.scaling.original_context_length",
    "bad.gguf",
    lambda ctx: _arch_model(
        ctx,
        "phi3",
        tensors={
            "rope_factors_short.weight": np.ones(_HALF, np.float32),
            "rope_factors_long.weight": np.ones(_HALF, np.float32),
        },
    ),
)
simple(
    "gguf_qwen3_yarn_scaling",
    "UnsupportedError",
    r"qwen3.rope.scaling.type 'yarn' is not supported",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", meta={"qwen3.rope.scaling.type": "yarn"}),
)


# ---- config.json of the new families (parse_config: the keys alone) ----


def _cfg(arch, **over):
    base = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                num_hidden_layers=2, max_position_embeddings=64, vocab_size=300)  # fmt: skip
    cls = {"qwen3": "Qwen3ForCausalLM", "phi3": "Phi3ForCausalLM", "gemma2": "Gemma2ForCausalLM",
           "gemma3": "Gemma3ForCausalLM", "mistral": "MistralForCausalLM"}[arch]  # fmt: skip
    cfg = dict(base, architectures=[cls], **over)
    return parse_config({k: v for k, v in cfg.items() if v is not None}, "bad/config.json")


@case(None, None, None)
def cfg_phi3_window_past_the_context_loads(ctx):
    conf = _cfg("phi3", sliding_window=262144, max_position_embeddings=131072)
    assert conf.sliding_window == 262144 and conf.max_context == 131072, conf


simple(
    "cfg_mistral_zero_sliding_window",
    "FormatError",
    r"sliding_window must be null or an integer from 1 to 2147483647, got 0",
    "config.json",
    lambda ctx: _cfg("mistral", sliding_window=0),
)
simple(
    "cfg_phi3_sliding_window_2_40",
    "FormatError",
    r"sliding_window must be null or an integer from 1 to 2147483647, got 1099511627776",
    "config.json",
    lambda ctx: _cfg("phi3", sliding_window=2**40),
)
simple(
    "cfg_qwen3_odd_head_dim",
    "FormatError",
    r"head_dim 15 must be even",
    "config.json",
    lambda ctx: _cfg("qwen3", head_dim=15),
)
simple(
    "cfg_phi3_partial_rotary_odd",
    "FormatError",
    r"partial_rotary_factor 0.3125 leaves 5 rotary dims",
    "config.json",
    lambda ctx: _cfg("phi3", partial_rotary_factor=0.3125),
)
simple(
    "cfg_phi3_longrope_factors_wrong_length",
    "FormatError",
    r"rope_scaling long_factor has 3 values, expected 8",
    "config.json",
    lambda ctx: _cfg("phi3", original_max_position_embeddings=16,
                     rope_scaling={"type": "longrope", "short_factor": [1.0] * 8, "long_factor": [1.0] * 3}),
)  # fmt: skip
simple(
    "cfg_gemma2_layer_types_wrong_length",
    "FormatError",
    r"layer_types must list 2 of",
    "config.json",
    lambda ctx: _cfg("gemma2", layer_types=["sliding_attention"], sliding_window=8),
)
simple(
    "cfg_gemma2_negative_softcap",
    "FormatError",
    r"attn_logit_softcapping must be a finite number > 0, got -50.0",
    "config.json",
    lambda ctx: _cfg("gemma2", attn_logit_softcapping=-50.0),
)
simple(
    "cfg_gemma3_zero_local_rope_base",
    "FormatError",
    r"rope_local_base_freq must be a finite number > 0, got 0",
    "config.json",
    lambda ctx: _cfg("gemma3", rope_local_base_freq=0),
)


# ---- Hugging Face directories of the new families (the fixture's tensors renamed and fused) ----


def _hf_form(ctx, arch, edit=None):
    """The fixture's llama directory as `arch` (phi3: fused qkv and gate_up; gemma2: its four norms per layer);
    edit(tensors) changes the tensors before they are written."""
    t = llama_tensors()
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        if arch == "phi3":
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate(
                [t.pop(p + f"self_attn.{x}_proj.weight") for x in "qkv"]
            )
            t[p + "mlp.gate_up_proj.weight"] = np.concatenate(
                [t.pop(p + "mlp.gate_proj.weight"), t.pop(p + "mlp.up_proj.weight")]
            )
        if arch == "gemma2":  # (1 + w) norms: zeros are the identity
            for n in ("input", "post_attention", "pre_feedforward", "post_feedforward"):
                t[p + n + "_layernorm.weight"] = np.zeros(D, np.float32)
    if edit is not None:
        edit(t)
    cls = {"phi3": "Phi3ForCausalLM", "gemma2": "Gemma2ForCausalLM"}[arch]
    extra = {"head_dim": D // HEADS, "sliding_window": 8} if arch == "gemma2" else {}
    return load_model(ctx.hf_copy(config={"architectures": [cls], "model_type": arch, **extra}, tensors=t))


def _set(name, value):
    def edit(t):
        t[name] = value

    return edit


simple("st_phi3_form_loads", None, None, None, lambda ctx: _hf_form(ctx, "phi3"))
simple("st_gemma2_form_loads", None, None, None, lambda ctx: _hf_form(ctx, "gemma2"))
simple(
    "st_phi3_qkv_rows_wrong",
    "FormatError",
    r"tensor 'model.layers.1.self_attn.qkv_proj.weight' has shape \(96, 64\), expected \(128, 64\)",
    "model.safetensors",
    lambda ctx: _hf_form(ctx, "phi3", _set("model.layers.1.self_attn.qkv_proj.weight", np.zeros((96, D), np.float32))),
)
simple(
    "st_gemma2_nan_post_feedforward_norm",
    "FormatError",
    r"tensor 'model.layers.0.post_feedforward_layernorm.weight' holds non-finite values \(element 0 is nan\)",
    "model.safetensors",
    lambda ctx: _hf_form(
        ctx, "gemma2", _set("model.layers.0.post_feedforward_layernorm.weight", np.full(D, np.nan, np.float32))
    ),
)
simple(
    "st_gemma2_missing_pre_feedforward_norm",
    "FormatError",
    r"missing tensor 'model.layers.1.pre_feedforward_layernorm.weight'",
    "model.safetensors",
    lambda ctx: _hf_form(ctx, "gemma2", lambda t: t.pop("model.layers.1.pre_feedforward_layernorm.weight")),
)


# ---- block types: non-finite scales, truncated blocks, rows that are not whole blocks ----

# per type: (fixture, tensor, shape); the legacy types fit the small model's rows of 64, the K-quants need the
# wide one's rows of 256
_SMALL = ("ffn_up", (FF, D))
_WIDE = ("ffn_up", (WIDE["ff"], WIDE["d"]))
QTYPES = {r[1]: r for r in _core.QTYPE_TABLE if r[4] & _core.QF_LINEAR}


def _block_case(ctx, qtype, poison=None, cut=False):
    """Load the fixture with blk.0.ffn_up.weight in `qtype` blocks; poison(raw bytes, block size, scale bytes)
    edits them; `cut` puts the tensor last and cuts the file in the middle of its last block."""
    wide = QTYPES[qtype][2] == 256
    src = ctx.gguf_wide if wide else ctx.gguf
    tensor, shape = _WIDE if wide else _SMALL
    name = f"blk.0.{tensor}.weight"
    tid, shape, raw = random_blocks(qtype, *shape)
    raw = bytearray(raw)
    if poison is not None:
        poison(raw, QTYPES[qtype][3], QTYPES[qtype][5:7])
    path = rebuild_gguf(src, ctx.path("bad.gguf"), tensors={name: (tid, shape, bytes(raw))}, last=name if cut else None)
    if cut:
        blob = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(blob[: len(blob) - QTYPES[qtype][3] // 2])
    return load_model(path)


def _poison_last_scale(value, block):
    """Set the last float16 scale field (dmin / m where a type has one) of block `block` to `value`."""

    def poison(raw, size, span):
        lo, hi = span
        at = size * block + hi - 2
        raw[at : at + 2] = np.array([value], "<f2").tobytes()

    return poison


for _q in QTYPES:
    _bad = (np.nan, np.inf, -np.inf)[len(_q) % 3]
    simple(
        f"gguf_non_finite_{_q}_scale",
        "FormatError",
        r"tensor 'blk.0.ffn_up.weight' holds non-finite values \(a float16 scale of block 5\)",
        "bad.gguf",
        lambda ctx, q=_q, b=_bad: _block_case(ctx, q, _poison_last_scale(b, 5)),
    )
    simple(
        f"gguf_truncated_{_q}_block",
        "FormatError",
        r"tensor 'blk.0.ffn_up.weight' \(\d+ bytes at offset \d+\) runs past the end of the file",
        "bad.gguf",
        lambda ctx, q=_q: _block_case(ctx, q, cut=True),
    )


@case("FormatError", r"tensor 'blk.1.attn_output.weight' holds non-finite values \(element 70 is inf\)", "bad.gguf")
def gguf_inf_f16_weight(ctx):
    w = np.array(GGUFFile(ctx.gguf).get("blk.1.attn_output.weight"), "<f2")
    w.reshape(-1)[70] = np.inf
    load_model(
        rebuild_gguf(ctx.gguf, ctx.path("bad.gguf"), tensors={"blk.1.attn_output.weight": (1, w.shape, w.tobytes())})
    )


@case("FormatError", r"tensor 'output_norm.weight' holds non-finite values \(element 3 is nan\)", "bad.gguf")
def gguf_nan_bf16_norm(ctx):
    w = (np.ones(D, np.float32).view("<u4") >> 16).astype("<u2")
    w[3] = 0x7FC0  # a bfloat16 NaN
    load_model(rebuild_gguf(ctx.gguf, ctx.path("bad.gguf"), tensors={"output_norm.weight": (30, (D,), w.tobytes())}))


@case("FormatError", r"tensor 'w': row length 320 is not a multiple of the Q4_K block 256", "bad.gguf")
def gguf_q4_k_row_not_whole_super_blocks(ctx):
    tid = QTYPES["q4_k"][0]
    with open(ctx.path("bad.gguf"), "wb") as f:
        f.write(gguf_bytes([gkv("general.architecture", "llama")], [("w", [320, 2], tid, 0)], bytes(2 * 180)))
    GGUFFile(ctx.path("bad.gguf"))


@case("FormatError", r"tensor 'w' \(840 bytes at offset 0\) runs past the end of the file \(416 bytes\)", "bad.gguf")
def gguf_q6_k_fewer_super_blocks_than_dims(ctx):
    # dims say 2 x 512 weights = 4 super-blocks of 210 bytes (840); the data holds 288
    tid = QTYPES["q6_k"][0]
    with open(ctx.path("bad.gguf"), "wb") as f:
        f.write(gguf_bytes([gkv("general.architecture", "llama")], [("w", [512, 2], tid, 0)], bytes(288)))
    f = GGUFFile(ctx.path("bad.gguf"))
    f.get("w")


# ---- tokenizer.ggml.* of the new kinds ----

simple(
    "gguf_pre_tokenizer_not_a_string",
    "UnsupportedError",
    r"tokenizer.ggml.pre 7 is not supported; supported: .*qwen2",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", meta={"tokenizer.ggml.pre": 7}),
)
simple(
    "gguf_merges_not_strings",
    "FormatError",
    r"tokenizer.ggml.merges must be an array of strings",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma2", meta={"tokenizer.ggml.merges": np.arange(4, dtype=np.int32)}),
)


def _spm_meta(ctx, **over):
    """The fixture's vocabulary as a SentencePiece ("llama") one: scores by id, byte tokens typed as bytes."""
    tokens = list(GGUFFile(ctx.gguf).metadata["tokenizer.ggml.tokens"])
    meta = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.merges": None,
        "tokenizer.ggml.scores": -np.arange(len(tokens), dtype=np.float32),
    }
    meta.update(over)
    return meta


simple(
    "gguf_spm_form_loads",
    None,
    None,
    None,
    lambda ctx: _arch_model(ctx, "gemma3", meta=_spm_meta(ctx)),
)


@case("FormatError", r"tokenizer.ggml.scores must be finite numbers", "bad.gguf")
def gguf_spm_nan_score(ctx):
    meta = _spm_meta(ctx)
    meta["tokenizer.ggml.scores"][7] = np.nan
    _arch_model(ctx, "gemma3", meta=meta)


simple(
    "gguf_spm_scores_missing",
    "FormatError",
    r"tokenizer.ggml.scores has 0 entries for \d+ tokens",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "phi3", meta=_spm_meta(ctx, **{"tokenizer.ggml.scores": None})),
)
simple(
    "gguf_spm_add_bos_not_a_bool",
    "FormatError",
    r"tokenizer.ggml.add_bos_token must be a bool, got 'yes'",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "gemma2", meta=_spm_meta(ctx, **{"tokenizer.ggml.add_bos_token": "yes"})),
)
simple(
    "gguf_eot_out_of_range",
    "FormatError",
    r"tokenizer.ggml.eot_token_id 5000 must be a token id in \[0, \d+\)",
    "bad.gguf",
    lambda ctx: _arch_model(ctx, "qwen3", meta={"tokenizer.ggml.eot_token_id": 5000}),
)
