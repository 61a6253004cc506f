"""What a loader hands to `Model`: one `Checkpoint` (config, typed weights, tokenizer, rope order) whatever the
file format, and the table-driven reading of weights both loaders share.

The data path: a file or directory -> `fastformer.hf.load` / `fastformer.gguf.load` -> Checkpoint ->
`Model(checkpoint)` -> C session -> logits. `Model.checkpoint()` gives back what the model runs on, which is
what `save_gguf` writes.

>>> from fastformer.checkpoint import tensor_shapes
>>> tensor_shapes(ModelConfig("LlamaForCausalLM", 2, 64, 4, 2, 16, 88, 160, 128, 1e-6), 128)["wk"]
(32, 64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Union

import numpy as np

from fastformer import ops
from fastformer.arch import ARCHS, Arch, Src
from fastformer.errors import FormatError, UnsupportedError
from fastformer.quant import QuantizedTensor

Matrix = Union[np.ndarray, QuantizedTensor]  # float32 (rows, cols) or ggml blocks
MAX_SIZE = 2**31 - 1  # bound on every size in a config (token ids and row counts are int32 in C)


@dataclass
class ModelConfig:
    architecture: str  # the Hugging Face class name (LlamaForCausalLM, ...)
    n_layers: int  # transformer blocks
    d_model: int  # hidden size
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (grouped-query attention when < n_heads)
    head_dim: int  # size of one head
    d_ff: int  # mlp inner size
    vocab_size: int  # rows of the embedding and the head
    max_context: int  # positions the model can see (max_position_embeddings or a smaller cap)
    norm_eps: float  # rms/layer norm epsilon
    rope_theta: float = 10000.0  # rotary base
    rope_scaling: dict | None = None  # {"rope_type": "llama3"|"linear"|"longrope", ...} or None
    rope_dim: int = 0  # rotated dims of each head (partial rotary), 0 = all of head_dim
    rope_attn_factor: float = 1.0  # longrope: cos and sin are scaled by this
    rope_long_after: int = 0  # longrope: a sequence longer than this uses the long factors (0: one set)
    rope_local_theta: float = 0.0  # rotary base of the sliding layers when they have their own (gemma3), 0 = none
    sliding_layers: tuple | None = None  # per layer: does it slide (gemma), None = every layer when windowed
    emb_scale: float = 0.0  # embeddings are multiplied by this (gemma: sqrt(d_model)), 0 = not scaled
    attn_scale: float = (
        0.0  # attention scores are multiplied by this (gemma: query_pre_attn_scalar**-0.5), 0 = 1/sqrt(head_dim)
    )
    attn_softcap: float = 0.0  # scores -> cap * tanh(scores / cap) before the softmax (gemma2), 0 = none
    final_softcap: float = 0.0  # logits -> cap * tanh(logits / cap) (gemma2), 0 = none
    sliding_window: int = 0  # mistral's attention span, 0 = unlimited
    n_types: int = 0  # rows of the token type table (bert's type_vocab_size), 0 = none
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_ids: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)  # config.json or GGUF metadata as read
    arch: str = "llama"  # the fastformer.arch row

    @property
    def rotary_dim(self) -> int:
        """Dims of each head that rope rotates (the first ones)."""
        return self.rope_dim or self.head_dim

    @property
    def family(self) -> Arch:
        """The architecture table row of this model."""
        return ARCHS[self.arch]


@dataclass
class LayerWeights:
    """One transformer block; q = n_heads * head_dim, kv = n_kv_heads * head_dim, f = d_ff."""

    attn_norm_w: np.ndarray  # (d,)
    wq: Matrix  # (q, d)
    wk: Matrix  # (kv, d)
    wv: Matrix  # (kv, d)
    wo: Matrix  # (d, q)
    ffn_norm_w: np.ndarray  # (d,)
    w_up: Matrix  # (f, d)
    w_down: Matrix  # (d, f)
    w_gate: Matrix | None = None  # (f, d): gated mlps (llama), None for plain ones (gpt2)
    attn_norm_b: np.ndarray | None = None  # (d,): layer norm
    ffn_norm_b: np.ndarray | None = None  # (d,)
    bq: np.ndarray | None = None  # (q,) projection biases (qwen2, gpt2)
    bk: np.ndarray | None = None  # (kv,)
    bv: np.ndarray | None = None  # (kv,)
    bo: np.ndarray | None = None  # (d,)
    b_up: np.ndarray | None = None  # (f,)
    b_down: np.ndarray | None = None  # (d,)
    q_norm_w: np.ndarray | None = None  # (head_dim,) per-head rms norm of q before rope (qwen3)
    k_norm_w: np.ndarray | None = None  # (head_dim,) of k
    attn_post_norm_w: np.ndarray | None = None  # (d,) norm of the attention output before the residual (gemma)
    ffn_post_norm_w: np.ndarray | None = None  # (d,) norm of the mlp output before the residual (gemma)


@dataclass
class Weights:
    """Everything outside the blocks."""

    tok_emb: Matrix  # (vocab, d): float32, or ggml blocks dequantized one row per token
    norm_w: np.ndarray  # (d,) final norm
    lm_head: Matrix  # (vocab, d); the same object as tok_emb when the head is tied
    norm_b: np.ndarray | None = None  # (d,) layer norm
    pos_emb: np.ndarray | None = None  # (max_context, d) learned positions (gpt2)
    type_emb: np.ndarray | None = None  # (n_types, d) token type rows (bert); row 0 is added to every token
    rope_inv_freq: np.ndarray | None = None  # (rope_dim/2,) rotary inverse frequencies, scaling applied
    rope_inv_freq_long: np.ndarray | None = None  # (rope_dim/2,) longrope's set for long sequences
    rope_inv_freq_local: np.ndarray | None = None  # (rope_dim/2,) the sliding layers' own set (gemma3)


@dataclass
class Checkpoint:
    """A model as read from a file: what `Model` takes. Loaders build it; nothing mutates it afterwards."""

    path: str  # the GGUF file or model directory
    format: str  # "hf" or "gguf"
    config: ModelConfig
    weights: Weights
    layers: list  # [LayerWeights] * n_layers
    tokenizer: Any = None  # fastformer.Tokenizer or None
    rope: str = "halves"  # q/k row order of wq/wk: "halves" (HF), "interleaved" (llama GGUF), "none"
    chat_templates: dict = field(default_factory=dict)  # {name: jinja template}; "default" is the usual one

    @property
    def eos_ids(self) -> list:
        """Every id that ends generation: the config's and the tokenizer's."""
        ids = list(self.config.eos_token_ids)
        tok_eos = getattr(self.tokenizer, "eos_id", None)
        return ids + ([tok_eos] if tok_eos is not None and tok_eos not in ids else [])


def as_dict(obj) -> dict:
    """A dataclass's fields as a dict of the same objects (no copies, unlike dataclasses.asdict)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# ---- config values ----


def check_int(v, key: str, where: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_SIZE:
        raise FormatError(f"{where}: {key} must be an integer from 1 to {MAX_SIZE}, got {v!r}")
    return int(v)


def check_float(v, key: str, where: str, positive: bool = False) -> float:
    """A finite number (> 0 if `positive`, else >= 0)."""
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if not ok or not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise FormatError(f"{where}: {key} must be a finite number {'>' if positive else '>='} 0, got {v!r}")
    return float(v)


def check_shapes(c: ModelConfig, where: str, names: dict) -> None:
    """Heads that divide the width and the kv heads, even rotary heads; `names` spells the keys as the file does."""
    if not names.get("head_dim_given") and c.d_model % c.n_heads:
        raise FormatError(
            f"{where}: {names['d_model']} {c.d_model} is not a multiple of {names['n_heads']} {c.n_heads}"
        )
    if c.n_heads % c.n_kv_heads:
        raise FormatError(
            f"{where}: {names['n_heads_full']} {c.n_heads} is not a multiple of {names['n_kv_heads']} {c.n_kv_heads}"
        )
    if c.family.rope != "none" and c.head_dim % 2:
        raise FormatError(f"{where}: {names['head_dim']} {c.head_dim} must be even for rotary embeddings")
    if c.family.rope != "none" and (c.rotary_dim % 2 or c.rotary_dim > c.head_dim):
        raise FormatError(
            f"{where}: {names.get('rope_dim', 'rotary dims')} {c.rotary_dim} must be even and at most the head "
            f"size {c.head_dim}"
        )


def rope_inv_freq(conf: ModelConfig, *, long: bool = False) -> np.ndarray | None:
    """Rotary inverse frequencies (rotary_dim/2,) float32 with llama3, linear or longrope scaling, as HF computes
    them; `long` gives longrope's set for sequences past rope_long_after (None for other scalings)."""
    inv = ops.rope_inv_freq(conf.rotary_dim, conf.rope_theta)
    s = conf.rope_scaling
    if s and s["rope_type"] == "longrope":
        ext = np.asarray(s["long_factor" if long else "short_factor"], np.float32)
        d = conf.rotary_dim
        powers = conf.rope_theta ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / d)
        return np.ascontiguousarray(1.0 / (ext * powers), dtype=np.float32)
    if long:
        return None
    if s and s["rope_type"] == "linear":
        inv = inv / float(s["factor"])
    elif s and s["rope_type"] == "llama3":
        factor, lo, hi = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
        old = float(s["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        inv = np.where(medium, smoothed, scaled)
    return np.ascontiguousarray(inv, dtype=np.float32)


# ---- weights from a file, by the architecture table ----

# weights that may stay in a ggml block format; everything else is float32
LAYER_MATRICES = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
MATRICES = ("tok_emb", "lm_head") + LAYER_MATRICES


def tensor_shapes(c: ModelConfig, context: int) -> dict:
    """The shape of every internal weight; `context` is the row count of a learned position table in the file."""
    d, q, kv, f, v = c.d_model, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim, c.d_ff, c.vocab_size
    return {
        "tok_emb": (v, d), "pos_emb": (context, d), "type_emb": (c.n_types, d), "norm_w": (d,), "norm_b": (d,),
        "lm_head": (v, d),
        "attn_norm_w": (d,), "attn_norm_b": (d,), "wq": (q, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, q),
        "bq": (q,), "bk": (kv,), "bv": (kv,), "bo": (d,), "ffn_norm_w": (d,), "ffn_norm_b": (d,),
        "w_gate": (f, d), "w_up": (f, d), "w_down": (d, f), "b_up": (f,), "b_down": (d,),
        "q_norm_w": (c.head_dim,), "k_norm_w": (c.head_dim,), "rope_factors": (c.rotary_dim // 2,),
        "attn_post_norm_w": (d,), "ffn_post_norm_w": (d,),
    }  # fmt: skip


def row_slice(a: Matrix, lo: int, hi: int) -> Matrix:
    """Rows lo..hi-1 of a float array or a block tensor (whole rows of blocks: no dequantization)."""
    if isinstance(a, QuantizedTensor):
        return QuantizedTensor(np.ascontiguousarray(a.data[lo:hi]), a.qtype, (hi - lo, a.shape[1]))
    return np.ascontiguousarray(a[lo:hi])


def read_weights(
    srcs: tuple,
    c: ModelConfig,
    context: int,
    has: Callable[[str], bool],
    get: Callable[..., Matrix],
) -> tuple:
    """(globals {name: tensor}, [per-layer {name: tensor}]) read by the Src rows of one format.

    `get(name, shape, matrix)` is the format's reader: it checks the tensor exists with that shape, is finite,
    and returns float32 (or ggml blocks when `matrix`); fused tensors are split by rows, Conv1D ones transposed.
    """
    shapes = tensor_shapes(c, context)

    def read(s: Src, i=None) -> dict:
        name = s.name.format(i=i)
        if s.optional and not has(name):
            return {}
        rows = [shapes[k][0] for k in s.into]
        shape = (sum(rows),) + shapes[s.into[0]][1:]
        a = get(name, shape[::-1] if s.transpose else shape, all(k in MATRICES for k in s.into))
        if s.transpose:
            a = np.ascontiguousarray(a.T)
        if s.add_one:  # gemma's norms scale by (1 + w), computed in float32 as transformers does
            a = np.float32(1.0) + a
        if len(s.into) == 1:
            return {s.into[0]: a}
        ends = np.cumsum(rows)
        return {k: row_slice(a, int(e - r), int(e)) for k, r, e in zip(s.into, rows, ends)}

    glob = {k: v for s in srcs if "{i}" not in s.name for k, v in read(s).items()}
    layers = [{k: v for s in srcs if "{i}" in s.name for k, v in read(s, i).items()} for i in range(c.n_layers)]
    return glob, layers


def layer_prefixes(srcs: tuple) -> set:
    """The name prefixes before the layer index ("model.layers.", "blk.")."""
    return {s.name.split("{i}")[0] for s in srcs if "{i}" in s.name}


def check_layer_count(names, srcs: tuple, n: int, what: str) -> None:
    """FormatError if a tensor belongs to a layer >= n (it would be silently ignored); what(name) -> message head."""
    prefixes = layer_prefixes(srcs)
    for name in names:
        for p in prefixes:
            if name.startswith(p):
                i = name[len(p) :].split(".", 1)[0]
                if i.isdigit() and int(i) >= n:
                    raise FormatError(what(name))


def build(glob: dict, layers: list, *, tied: bool) -> tuple:
    """Weights and LayerWeights from the dicts read_weights gave; the head is the embedding table when tied."""
    glob = dict(glob)
    if tied or glob.get("lm_head") is None:
        glob["lm_head"] = glob["tok_emb"]
    return Weights(**glob), [LayerWeights(**lw) for lw in layers]


# ---- quantizing a checkpoint ----


def quantize_checkpoint(ck: Checkpoint, qtype: str) -> Checkpoint:
    """A copy of `ck` with every float weight matrix quantized (norms, biases and embeddings stay float32).

    The head is quantized to q8_0 whatever `qtype` is: its error reaches every logit directly. Matrices whose
    rows are not a multiple of the type's block (256 for the k-quants) fall back to q8_0, as llama.cpp falls back
    to a 32-block type; rows not a multiple of 32 stay float. Ones already in another block format (from a GGUF
    file) are requantized from their dequantized values.
    """
    from fastformer.quant import QTYPES, quantize

    def q(a, t):
        if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] % QTYPES[t][1]:
            t = "q8_0"
        if isinstance(a, QuantizedTensor) and a.qtype != t:  # e.g. a q8_0 gguf asked for q4_0: requantize
            a = a.dequantize()
        return quantize(a, t) if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] % 32 == 0 else a

    layers = [
        replace(lw, **{k: q(getattr(lw, k), qtype) for k in LAYER_MATRICES if getattr(lw, k) is not None})
        for lw in ck.layers
    ]
    head = ck.weights.lm_head if ck.config.family.encoder else q(ck.weights.lm_head, "q8_0")  # encoders: no head
    return replace(ck, weights=replace(ck.weights, lm_head=head), layers=layers)


def unsupported_flags(arch: Arch, cfg: dict, where: str) -> None:
    """UnsupportedError for config flags the family's row marks as unsupported."""
    for key, msg in arch.notes.items():
        if cfg.get(key):
            raise UnsupportedError(f"{where}: {msg}")
