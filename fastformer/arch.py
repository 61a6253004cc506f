"""The architecture table: what differs between the model families fastformer runs, as data.

One `Arch` row per family: the Hugging Face class names and config keys it reads, the tensor names of its
HF checkpoints and of its GGUF files (one template per internal weight, `{i}` for the layer), its GGUF
metadata prefix, and the switches the C forward pass takes by name (norm kind, activation kind, rope order).
The loaders (`fastformer.hf`, `fastformer.gguf`), the GGUF writer and `Model` read these rows; none of them
branches on a family's name. Adding a family that differs from Llama only in names is one row here.

>>> ARCHS["gpt2"].norm, ARCHS["llama"].act
('layer', 'silu')
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Src:
    """One tensor of a checkpoint file and the internal weights it fills.

    `into` holds one internal name, or several for a fused tensor whose rows are split in order (q, k, v;
    gate, up); `transpose` marks HF Conv1D tensors stored (in, out); an `optional` tensor may be absent;
    `add_one` marks Gemma's HF norm weights, applied as (1 + w) (its GGUF files store 1 + w).
    """

    into: tuple[str, ...]
    name: str  # file tensor name; "{i}" is the layer index
    optional: bool = False
    transpose: bool = False
    add_one: bool = False


def src(into: str, name: str, *, optional: bool = False, transpose: bool = False, add_one: bool = False) -> Src:
    """A Src from a space-separated list of internal names."""
    return Src(tuple(into.split()), name, optional, transpose, add_one)


@dataclass(frozen=True)
class Arch:
    """One model family (a row of the table)."""

    name: str  # internal name, used in messages and as the GGUF architecture it writes
    hf_classes: tuple[str, ...]  # config.json "architectures" entries
    hf_model_types: tuple[str, ...]  # config.json "model_type" values
    gguf_name: str | None  # the GGUF general.architecture of its files (None: no GGUF form); the first row reads
    norm: str  # "rms" | "layer": the C norm kind
    act: str  # "silu" | "gelu_tanh": the C activation kind (gated when the layers have w_gate)
    rope_gguf: str  # q/k row order of its GGUF files: "interleaved" (llama.cpp permutes), "halves", "none"
    hf_config: dict[str, tuple[str, object]]  # ModelConfig field -> (config.json key, default; REQUIRED = none)
    hf_act: tuple[str, str, tuple[str, ...]]  # (config key, default, accepted values)
    hf_tensors: tuple[Src, ...]  # HF tensor names; "lm_head" optional means tied when absent
    gguf_tensors: tuple[Src, ...]  # GGUF tensor names
    hf_forbidden: tuple[str, ...] = ()  # HF tensors whose presence means an unsupported variant
    hf_prefixes: tuple[str, ...] = ("",)  # prefixes HF names may carry (the first that matches is used)
    hf_sub_config: str = ""  # config.json key holding the language model's config (multimodal checkpoints)
    sliding_window: bool = False  # reads config.json sliding_window
    always_tied: bool = False  # the head is the embedding table whatever the config says
    longrope: bool = False  # reads LongRoPE rope scaling (short/long factors chosen by sequence length)
    emb_scale: bool = False  # embeddings are multiplied by sqrt(d_model) (gemma)
    sliding_pattern: int = 0  # > 0: only some layers slide; without layer_types, every n-th layer is global
    local_rope: bool = False  # sliding layers have their own rope base (gemma3's rope_local_base_freq)
    gguf_wide_scalar_layers: int = 0  # GGUF files of this many layers scale queries by 1/sqrt(d/heads), as llama.cpp
    gguf_window: int = 0  # sliding window of GGUF files without the key (llama.cpp's default for gemma2)
    hf_window: int = 0  # sliding window of a config.json without the key (transformers' config default)
    hf_ignored: tuple[str, ...] = ()  # HF tensor name prefixes the forward pass does not use (bert's pooler)
    encoder: bool = False  # bidirectional post-norm encoder run by fastformer.encoder (embeddings, no head)
    notes: dict[str, str] = field(default_factory=dict)  # config.json flags that are not supported -> message

    @property
    def rope(self) -> str:
        """q/k row order of HF checkpoints: split halves, or none for learned positions."""
        return "none" if self.rope_gguf == "none" else "halves"


REQUIRED = object()  # marks a config key without a default

# ---- config.json keys ----

_HF_LLAMA_CONFIG = {
    "n_layers": ("num_hidden_layers", REQUIRED),
    "d_model": ("hidden_size", REQUIRED),
    "n_heads": ("num_attention_heads", REQUIRED),
    "n_kv_heads": ("num_key_value_heads", None),  # None: as n_heads
    "head_dim": ("head_dim", None),  # None: d_model / n_heads
    "d_ff": ("intermediate_size", REQUIRED),
    "max_context": ("max_position_embeddings", REQUIRED),
    "norm_eps": ("rms_norm_eps", 1e-6),
    "vocab_size": ("vocab_size", REQUIRED),
}
_HF_GPT2_CONFIG = {
    "n_layers": ("n_layer", REQUIRED),
    "d_model": ("n_embd", REQUIRED),
    "n_heads": ("n_head", REQUIRED),
    "n_kv_heads": ("", None),
    "head_dim": ("", None),
    "d_ff": ("n_inner", None),  # None: 4 * d_model
    "max_context": ("n_positions", REQUIRED),
    "norm_eps": ("layer_norm_epsilon", 1e-5),
    "vocab_size": ("vocab_size", REQUIRED),
}

# ---- tensor names ----

_HF_LLAMA = (
    src("tok_emb", "model.embed_tokens.weight"),
    src("norm_w", "model.norm.weight"),
    src("lm_head", "lm_head.weight", optional=True),
    src("attn_norm_w", "model.layers.{i}.input_layernorm.weight"),
    src("wq", "model.layers.{i}.self_attn.q_proj.weight"),
    src("wk", "model.layers.{i}.self_attn.k_proj.weight"),
    src("wv", "model.layers.{i}.self_attn.v_proj.weight"),
    src("wo", "model.layers.{i}.self_attn.o_proj.weight"),
    src("bq", "model.layers.{i}.self_attn.q_proj.bias", optional=True),
    src("bk", "model.layers.{i}.self_attn.k_proj.bias", optional=True),
    src("bv", "model.layers.{i}.self_attn.v_proj.bias", optional=True),
    src("bo", "model.layers.{i}.self_attn.o_proj.bias", optional=True),
    src("ffn_norm_w", "model.layers.{i}.post_attention_layernorm.weight"),
    src("w_gate", "model.layers.{i}.mlp.gate_proj.weight"),
    src("w_up", "model.layers.{i}.mlp.up_proj.weight"),
    src("w_down", "model.layers.{i}.mlp.down_proj.weight"),
    src("b_up", "model.layers.{i}.mlp.up_proj.bias", optional=True),
    src("b_down", "model.layers.{i}.mlp.down_proj.bias", optional=True),
)
_HF_GPT2 = (
    src("tok_emb", "wte.weight"),
    src("pos_emb", "wpe.weight"),
    src("norm_w", "ln_f.weight"),
    src("norm_b", "ln_f.bias"),
    src("attn_norm_w", "h.{i}.ln_1.weight"),
    src("attn_norm_b", "h.{i}.ln_1.bias"),
    src("wq wk wv", "h.{i}.attn.c_attn.weight", transpose=True),
    src("bq bk bv", "h.{i}.attn.c_attn.bias"),
    src("wo", "h.{i}.attn.c_proj.weight", transpose=True),
    src("bo", "h.{i}.attn.c_proj.bias"),
    src("ffn_norm_w", "h.{i}.ln_2.weight"),
    src("ffn_norm_b", "h.{i}.ln_2.bias"),
    src("w_up", "h.{i}.mlp.c_fc.weight", transpose=True),
    src("b_up", "h.{i}.mlp.c_fc.bias"),
    src("w_down", "h.{i}.mlp.c_proj.weight", transpose=True),
    src("b_down", "h.{i}.mlp.c_proj.bias"),
)
# GGUF names are llama.cpp's, shared by every family; a family lists the ones its files hold
_GGUF_LLAMA = (
    src("tok_emb", "token_embd.weight"),
    src("norm_w", "output_norm.weight"),
    src("lm_head", "output.weight", optional=True),
    src("attn_norm_w", "blk.{i}.attn_norm.weight"),
    src("wq", "blk.{i}.attn_q.weight"),
    src("wk", "blk.{i}.attn_k.weight"),
    src("wv", "blk.{i}.attn_v.weight"),
    src("wo", "blk.{i}.attn_output.weight"),
    src("bq", "blk.{i}.attn_q.bias", optional=True),
    src("bk", "blk.{i}.attn_k.bias", optional=True),
    src("bv", "blk.{i}.attn_v.bias", optional=True),
    src("bo", "blk.{i}.attn_output.bias", optional=True),
    src("ffn_norm_w", "blk.{i}.ffn_norm.weight"),
    src("w_gate", "blk.{i}.ffn_gate.weight"),
    src("w_up", "blk.{i}.ffn_up.weight"),
    src("w_down", "blk.{i}.ffn_down.weight"),
)
_GGUF_GPT2 = (
    src("tok_emb", "token_embd.weight"),
    src("pos_emb", "position_embd.weight"),
    src("norm_w", "output_norm.weight"),
    src("norm_b", "output_norm.bias"),
    src("lm_head", "output.weight", optional=True),
    src("attn_norm_w", "blk.{i}.attn_norm.weight"),
    src("attn_norm_b", "blk.{i}.attn_norm.bias"),
    src("wq wk wv", "blk.{i}.attn_qkv.weight"),
    src("bq bk bv", "blk.{i}.attn_qkv.bias"),
    src("wo", "blk.{i}.attn_output.weight"),
    src("bo", "blk.{i}.attn_output.bias"),
    src("ffn_norm_w", "blk.{i}.ffn_norm.weight"),
    src("ffn_norm_b", "blk.{i}.ffn_norm.bias"),
    src("w_up", "blk.{i}.ffn_up.weight"),
    src("b_up", "blk.{i}.ffn_up.bias"),
    src("w_down", "blk.{i}.ffn_down.weight"),
    src("b_down", "blk.{i}.ffn_down.bias"),
)

# qwen3: llama plus a per-head rms norm of q and k before rope
_QK_NORM_HF = (
    src("q_norm_w", "model.layers.{i}.self_attn.q_norm.weight"),
    src("k_norm_w", "model.layers.{i}.self_attn.k_norm.weight"),
)
_QK_NORM_GGUF = (
    src("q_norm_w", "blk.{i}.attn_q_norm.weight"),
    src("k_norm_w", "blk.{i}.attn_k_norm.weight"),
)

# phi-3: llama with fused qkv and gate_up projections (split by rows at load, blocks stay blocks)
_HF_PHI3 = (
    src("tok_emb", "model.embed_tokens.weight"),
    src("norm_w", "model.norm.weight"),
    src("lm_head", "lm_head.weight", optional=True),
    src("attn_norm_w", "model.layers.{i}.input_layernorm.weight"),
    src("wq wk wv", "model.layers.{i}.self_attn.qkv_proj.weight"),
    src("wo", "model.layers.{i}.self_attn.o_proj.weight"),
    src("ffn_norm_w", "model.layers.{i}.post_attention_layernorm.weight"),
    src("w_gate w_up", "model.layers.{i}.mlp.gate_up_proj.weight"),
    src("w_down", "model.layers.{i}.mlp.down_proj.weight"),
)
_GGUF_PHI3 = (
    src("tok_emb", "token_embd.weight"),
    src("norm_w", "output_norm.weight"),
    src("lm_head", "output.weight", optional=True),
    src("attn_norm_w", "blk.{i}.attn_norm.weight"),
    src("wq wk wv", "blk.{i}.attn_qkv.weight"),
    src("wo", "blk.{i}.attn_output.weight"),
    src("ffn_norm_w", "blk.{i}.ffn_norm.weight"),
    src("w_gate w_up", "blk.{i}.ffn_up.weight"),
    src("w_down", "blk.{i}.ffn_down.weight"),
)


# gemma 2/3: (1 + w) rms norms before and after attention and the mlp, gated gelu-tanh, tied embeddings
def _gemma_hf(qk_norm: bool) -> tuple:
    p = "model.layers.{i}."
    return (
        src("tok_emb", "model.embed_tokens.weight"),
        src("norm_w", "model.norm.weight", add_one=True),
        src("lm_head", "lm_head.weight", optional=True),
        src("attn_norm_w", p + "input_layernorm.weight", add_one=True),
        src("wq", p + "self_attn.q_proj.weight"),
        src("wk", p + "self_attn.k_proj.weight"),
        src("wv", p + "self_attn.v_proj.weight"),
        src("wo", p + "self_attn.o_proj.weight"),
        src("attn_post_norm_w", p + "post_attention_layernorm.weight", add_one=True),
        src("ffn_norm_w", p + "pre_feedforward_layernorm.weight", add_one=True),
        src("ffn_post_norm_w", p + "post_feedforward_layernorm.weight", add_one=True),
        src("w_gate", p + "mlp.gate_proj.weight"),
        src("w_up", p + "mlp.up_proj.weight"),
        src("w_down", p + "mlp.down_proj.weight"),
    ) + (
        (src("q_norm_w", p + "self_attn.q_norm.weight", add_one=True),
         src("k_norm_w", p + "self_attn.k_norm.weight", add_one=True)) if qk_norm else ()
    )  # fmt: skip


def _gemma_gguf(qk_norm: bool) -> tuple:
    return (
        src("tok_emb", "token_embd.weight"),
        src("norm_w", "output_norm.weight"),
        src("lm_head", "output.weight", optional=True),
        src("attn_norm_w", "blk.{i}.attn_norm.weight"),
        src("wq", "blk.{i}.attn_q.weight"),
        src("wk", "blk.{i}.attn_k.weight"),
        src("wv", "blk.{i}.attn_v.weight"),
        src("wo", "blk.{i}.attn_output.weight"),
        src("attn_post_norm_w", "blk.{i}.post_attention_norm.weight"),
        src("ffn_norm_w", "blk.{i}.ffn_norm.weight"),
        src("ffn_post_norm_w", "blk.{i}.post_ffw_norm.weight"),
        src("w_gate", "blk.{i}.ffn_gate.weight"),
        src("w_up", "blk.{i}.ffn_up.weight"),
        src("w_down", "blk.{i}.ffn_down.weight"),
    ) + (_QK_NORM_GGUF if qk_norm else ())


_HF_GEMMA_CONFIG = dict(
    _HF_LLAMA_CONFIG,
    head_dim=("head_dim", 256),
    attn_scalar=("query_pre_attn_scalar", 256),
    attn_softcap=("attn_logit_softcapping", None),
    final_softcap=("final_logit_softcapping", None),
)
_GEMMA = dict(
    norm="rms",
    act="gelu_tanh",
    rope_gguf="halves",
    hf_act=("hidden_activation", "gelu_pytorch_tanh", ("gelu_pytorch_tanh", "gelu_tanh")),
    hf_config=_HF_GEMMA_CONFIG,
    sliding_window=True,
    hf_window=4096,
    emb_scale=True,
)

_GEMMA3 = dict(
    _GEMMA,
    hf_config=dict(_HF_GEMMA_CONFIG, attn_softcap=("", None), final_softcap=("", None)),
    notes={"use_bidirectional_attention": "Gemma 3 use_bidirectional_attention (an encoder) is not supported"},
)

_LLAMA = dict(
    norm="rms",
    act="silu",
    hf_config=_HF_LLAMA_CONFIG,
    hf_act=("hidden_act", "silu", ("silu",)),
    hf_tensors=_HF_LLAMA,
    gguf_tensors=_GGUF_LLAMA,
    hf_forbidden=("model.layers.{i}.mlp.gate_proj.bias",),
)

# bert: an encoder. tok_emb + pos_emb + type_emb[0] -> norm_w/norm_b (the embedding layer norm); each block
# x = norm(x + attention(x)) by attn_norm, x = norm(x + mlp(x)) by ffn_norm (post-norm), gelu (erf) mlp
_HF_BERT_CONFIG = {
    "n_layers": ("num_hidden_layers", REQUIRED),
    "d_model": ("hidden_size", REQUIRED),
    "n_heads": ("num_attention_heads", REQUIRED),
    "n_kv_heads": ("", None),
    "head_dim": ("", None),
    "d_ff": ("intermediate_size", REQUIRED),
    "max_context": ("max_position_embeddings", REQUIRED),
    "norm_eps": ("layer_norm_eps", 1e-12),
    "vocab_size": ("vocab_size", REQUIRED),
    "n_types": ("type_vocab_size", 2),
}
_HF_BERT = (
    src("tok_emb", "embeddings.word_embeddings.weight"),
    src("pos_emb", "embeddings.position_embeddings.weight"),
    src("type_emb", "embeddings.token_type_embeddings.weight"),
    src("norm_w", "embeddings.LayerNorm.weight"),
    src("norm_b", "embeddings.LayerNorm.bias"),
    src("wq", "encoder.layer.{i}.attention.self.query.weight"),
    src("bq", "encoder.layer.{i}.attention.self.query.bias"),
    src("wk", "encoder.layer.{i}.attention.self.key.weight"),
    src("bk", "encoder.layer.{i}.attention.self.key.bias"),
    src("wv", "encoder.layer.{i}.attention.self.value.weight"),
    src("bv", "encoder.layer.{i}.attention.self.value.bias"),
    src("wo", "encoder.layer.{i}.attention.output.dense.weight"),
    src("bo", "encoder.layer.{i}.attention.output.dense.bias"),
    src("attn_norm_w", "encoder.layer.{i}.attention.output.LayerNorm.weight"),
    src("attn_norm_b", "encoder.layer.{i}.attention.output.LayerNorm.bias"),
    src("w_up", "encoder.layer.{i}.intermediate.dense.weight"),
    src("b_up", "encoder.layer.{i}.intermediate.dense.bias"),
    src("w_down", "encoder.layer.{i}.output.dense.weight"),
    src("b_down", "encoder.layer.{i}.output.dense.bias"),
    src("ffn_norm_w", "encoder.layer.{i}.output.LayerNorm.weight"),
    src("ffn_norm_b", "encoder.layer.{i}.output.LayerNorm.bias"),
)
_GGUF_BERT = (
    src("tok_emb", "token_embd.weight"),
    src("pos_emb", "position_embd.weight"),
    src("type_emb", "token_types.weight"),
    src("norm_w", "token_embd_norm.weight"),
    src("norm_b", "token_embd_norm.bias"),
    src("wq", "blk.{i}.attn_q.weight"),
    src("bq", "blk.{i}.attn_q.bias"),
    src("wk", "blk.{i}.attn_k.weight"),
    src("bk", "blk.{i}.attn_k.bias"),
    src("wv", "blk.{i}.attn_v.weight"),
    src("bv", "blk.{i}.attn_v.bias"),
    src("wo", "blk.{i}.attn_output.weight"),
    src("bo", "blk.{i}.attn_output.bias"),
    src("attn_norm_w", "blk.{i}.attn_output_norm.weight"),
    src("attn_norm_b", "blk.{i}.attn_output_norm.bias"),
    src("w_up", "blk.{i}.ffn_up.weight"),
    src("b_up", "blk.{i}.ffn_up.bias"),
    src("w_down", "blk.{i}.ffn_down.weight"),
    src("b_down", "blk.{i}.ffn_down.bias"),
    src("ffn_norm_w", "blk.{i}.layer_output_norm.weight"),
    src("ffn_norm_b", "blk.{i}.layer_output_norm.bias"),
)

ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("llama", ("LlamaForCausalLM",), ("llama",), "llama", rope_gguf="interleaved", **_LLAMA),
        Arch(
            "mistral",
            ("MistralForCausalLM",),
            ("mistral",),
            "llama",
            rope_gguf="interleaved",
            sliding_window=True,
            hf_window=4096,
            **_LLAMA,
        ),
        Arch(
            "gpt2",
            ("GPT2LMHeadModel",),
            ("gpt2",),
            "gpt2",
            norm="layer",
            act="gelu_tanh",
            rope_gguf="none",
            hf_config=_HF_GPT2_CONFIG,
            hf_act=("activation_function", "gelu_new", ("gelu_new", "gelu_pytorch_tanh")),
            hf_tensors=_HF_GPT2,
            gguf_tensors=_GGUF_GPT2,
            hf_prefixes=("transformer.", ""),
            always_tied=True,
        ),
        Arch(
            "qwen2",
            ("Qwen2ForCausalLM",),
            ("qwen2",),
            "qwen2",
            rope_gguf="halves",
            notes={"use_sliding_window": "Qwen2 use_sliding_window is not supported"},
            **_LLAMA,
        ),
        Arch(
            "qwen3",
            ("Qwen3ForCausalLM",),
            ("qwen3",),
            "qwen3",
            rope_gguf="halves",
            notes={"use_sliding_window": "Qwen3 use_sliding_window is not supported"},
            **dict(
                _LLAMA,
                hf_config=dict(_HF_LLAMA_CONFIG, head_dim=("head_dim", 128)),
                hf_tensors=_HF_LLAMA + _QK_NORM_HF,
                gguf_tensors=_GGUF_LLAMA + _QK_NORM_GGUF,
            ),
        ),
        Arch(
            "phi3",
            ("Phi3ForCausalLM",),
            ("phi3",),
            "phi3",
            rope_gguf="halves",
            sliding_window=True,
            longrope=True,
            **dict(
                _LLAMA,
                hf_config=dict(_HF_LLAMA_CONFIG, norm_eps=("rms_norm_eps", 1e-5)),
                hf_tensors=_HF_PHI3,
                gguf_tensors=_GGUF_PHI3,
                hf_forbidden=("model.layers.{i}.self_attn.qkv_proj.bias",),
            ),
        ),
        Arch(
            "gemma2",
            ("Gemma2ForCausalLM",),
            ("gemma2",),
            "gemma2",
            hf_tensors=_gemma_hf(False),
            gguf_tensors=_gemma_gguf(False),
            sliding_pattern=2,
            gguf_wide_scalar_layers=46,
            gguf_window=4096,
            **_GEMMA,
        ),
        Arch(
            "gemma3",
            ("Gemma3ForCausalLM",),
            ("gemma3_text",),
            "gemma3",
            hf_tensors=_gemma_hf(True),
            gguf_tensors=_gemma_gguf(True),
            sliding_pattern=6,
            local_rope=True,
            gguf_wide_scalar_layers=62,
            **_GEMMA3,
        ),
        # the text part of the multimodal model: text_config, weights under language_model. (vision ones unread)
        Arch(
            "gemma3-text",
            ("Gemma3ForConditionalGeneration",),
            ("gemma3",),
            "gemma3",
            hf_tensors=_gemma_hf(True),
            gguf_tensors=_gemma_gguf(True),
            sliding_pattern=6,
            local_rope=True,
            gguf_wide_scalar_layers=62,
            hf_prefixes=("language_model.",),
            hf_sub_config="text_config",
            **_GEMMA3,
        ),
        Arch(
            "bert",
            ("BertModel", "BertForMaskedLM"),
            ("bert",),
            "bert",
            norm="layer",
            act="gelu_erf",
            rope_gguf="none",
            hf_config=_HF_BERT_CONFIG,
            hf_act=("hidden_act", "gelu", ("gelu",)),
            hf_tensors=_HF_BERT,
            gguf_tensors=_GGUF_BERT,
            hf_prefixes=("", "bert."),
            always_tied=True,
            hf_ignored=("pooler.",),
            encoder=True,
            notes={
                "is_decoder": "BERT as a decoder (is_decoder) is not supported",
                "add_cross_attention": "BERT with cross-attention is not supported",
            },
        ),
    )  # fmt: skip
}

# GGUF metadata keys under "{arch}.": ModelConfig field -> key (the norm epsilon's key depends on the norm kind)
GGUF_KEYS = {
    "n_layers": "block_count",
    "d_model": "embedding_length",
    "n_heads": "attention.head_count",
    "n_kv_heads": "attention.head_count_kv",
    "head_dim": "attention.key_length",
    "d_ff": "feed_forward_length",
    "max_context": "context_length",
    "rope_theta": "rope.freq_base",
    "rope_dim": "rope.dimension_count",
    "sliding_window": "attention.sliding_window",
    "rope_long_after": "rope.scaling.original_context_length",
    "rope_attn_factor": "rope.scaling.attn_factor",
    "rope_scaling_type": "rope.scaling.type",
    "rope_scaling_factor": "rope.scaling.factor",
    "attn_scale": "attention.scale",
    "attn_softcap": "attn_logit_softcapping",
    "final_softcap": "final_logit_softcapping",
    "sliding_pattern": "attention.sliding_window_pattern",
}
GGUF_EPS_KEY = {"rms": "attention.layer_norm_rms_epsilon", "layer": "attention.layer_norm_epsilon"}

HF_CLASSES = tuple(c for a in ARCHS.values() for c in a.hf_classes)
GGUF_NAMES = tuple(dict.fromkeys(a.gguf_name for a in ARCHS.values() if a.gguf_name))


def arch_for_hf(cfg: dict) -> Arch | None:
    """The row for a config.json: the first supported "architectures" entry, else its model_type."""
    for cls in cfg.get("architectures") or []:
        for a in ARCHS.values():
            if cls in a.hf_classes:
                return a
    model_type = cfg.get("model_type")
    return next((a for a in ARCHS.values() if model_type in a.hf_model_types), None)


def arch_for_gguf(name: str) -> Arch | None:
    """The row that reads GGUF files of general.architecture `name` (the first row naming it)."""
    return next((a for a in ARCHS.values() if a.gguf_name == name), None)
