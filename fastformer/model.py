"""fastformer.Model: load a Hugging Face checkpoint, run it with a kv cache, score and generate.

The whole per-token forward pass is one C call (fastformer._core.Session.forward) with the GIL released;
Python only picks the next token. Weights are shared by every generation; each call gets its own cache.

>>> model = Model.load("path/to/hf-model")                      # doctest: +SKIP
>>> model.generate("Once upon a time", max_new_tokens=20)       # doctest: +SKIP
"""

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from fastformer import _core, ops
from fastformer.errors import FormatError, UnsupportedError, require_finite
from fastformer.safetensors import SafetensorsFile
from fastformer.sampling import Sampler

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "GPT2LMHeadModel")
_MODEL_TYPES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
}
PREFILL_CHUNK = 256  # tokens per forward call while reading a prompt
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "default.gguf")
# sampling that reads well with the default model (the CLI's defaults too)
DEFAULT_SAMPLING = dict(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, repetition_penalty=1.1)


@dataclass
class ModelConfig:
    architecture: str  # one of SUPPORTED_ARCHITECTURES
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
    rope_scaling: dict = None  # {"rope_type": "llama3"|"linear", ...} or None
    sliding_window: int = 0  # mistral's attention span, 0 = unlimited
    tie_word_embeddings: bool = False
    bos_token_id: int = None
    eos_token_ids: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)  # config.json as read


MAX_SIZE = 2**31 - 1  # bound on every size in a config (token ids and row counts are int32 in C)


def _int(cfg, key, path, default=None):
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIZE:
        raise FormatError(f"{path}: {key} must be an integer from 1 to {MAX_SIZE}, got {v!r}")
    return v


def _float(cfg, key, path, default, positive=False):
    """A finite number (> 0 if `positive`, else >= 0) from a config dict."""
    v = cfg.get(key, default)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or v < 0 or (positive and v == 0):
        raise FormatError(f"{path}: {key} must be a finite number {'>' if positive else '>='} 0, got {v!r}")
    return float(v)


def _token_id(v, key, path, vocab):
    """A bos/eos id: an int, or None. transformers writes GPT-2's defaults (50256) into configs of smaller
    vocabularies, so an id outside the vocabulary is dropped with a warning instead of failing the load."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise FormatError(f"{path}: {key} must be an integer token id, got {v!r}")
    if not 0 <= v < vocab:
        import warnings

        warnings.warn(f"{path}: {key} {v} is outside the vocabulary [0, {vocab}); ignoring it", stacklevel=4)
        return None
    return v


def _rope_scaling(scaling, path):
    """The rope_scaling dict checked: None, or a copy with rope_type and finite positive factors."""
    if not isinstance(scaling, dict):
        raise FormatError(f"{path}: rope_scaling must be an object, got {scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind not in ("llama3", "linear", "default"):
        raise UnsupportedError(f"{path}: rope scaling {kind!r}; supported: llama3, linear")
    if kind == "default":
        return None
    keys = ["factor"] + (
        ["low_freq_factor", "high_freq_factor", "original_max_position_embeddings"] if kind == "llama3" else []
    )
    for key in keys:
        _float(scaling, key, f"{path}: rope_scaling", None, positive=True)
    if kind == "llama3" and scaling["high_freq_factor"] <= scaling["low_freq_factor"]:
        raise FormatError(f"{path}: rope_scaling high_freq_factor must exceed low_freq_factor")
    return dict(scaling, rope_type=kind)


def parse_config(cfg, path="config.json", max_context=None):
    """ModelConfig from a config.json dict; FormatError for bad fields, UnsupportedError for other models."""
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise FormatError(f"{path}: architectures must be a list of strings, got {archs!r}")
    arch = next((a for a in archs if a in SUPPORTED_ARCHITECTURES), None)
    model_type = cfg.get("model_type")
    arch = arch or (_MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None)
    if arch is None:
        raise UnsupportedError(
            f"{path}: architecture {archs or cfg.get('model_type')!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    if arch == "GPT2LMHeadModel":
        d = _int(cfg, "n_embd", path)
        n_heads = _int(cfg, "n_head", path)
        c = dict(
            n_layers=_int(cfg, "n_layer", path),
            d_model=d,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            head_dim=d // n_heads,
            d_ff=_int(cfg, "n_inner", path, None) if cfg.get("n_inner") else 4 * d,
            max_context=_int(cfg, "n_positions", path),
            norm_eps=_float(cfg, "layer_norm_epsilon", path, 1e-5),
            tie_word_embeddings=True,
        )
        if d % n_heads:
            raise FormatError(f"{path}: n_embd {d} is not a multiple of n_head {n_heads}")
        if cfg.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise UnsupportedError(f"{path}: activation {cfg['activation_function']!r}; supported: gelu_new")
    else:
        d = _int(cfg, "hidden_size", path)
        n_heads = _int(cfg, "num_attention_heads", path)
        n_kv = _int(cfg, "num_key_value_heads", path, n_heads)
        if cfg.get("head_dim") is None and d % n_heads:
            raise FormatError(f"{path}: hidden_size {d} is not a multiple of num_attention_heads {n_heads}")
        head_dim = _int(cfg, "head_dim", path, d // n_heads) if cfg.get("head_dim") is not None else d // n_heads
        if n_heads % n_kv:
            raise FormatError(f"{path}: num_attention_heads {n_heads} is not a multiple of num_key_value_heads {n_kv}")
        if head_dim % 2:
            raise FormatError(f"{path}: head_dim {head_dim} must be even for rotary embeddings")
        rope = cfg.get("rope_parameters") or {}
        if not isinstance(rope, dict):
            raise FormatError(f"{path}: rope_parameters must be an object, got {rope!r}")
        scaling = cfg.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
        theta = _float(rope if "rope_theta" in rope else cfg, "rope_theta", path, 10000.0, positive=True)
        if scaling is not None:
            scaling = _rope_scaling(scaling, path)
        if cfg.get("hidden_act", "silu") != "silu":
            raise UnsupportedError(f"{path}: hidden_act {cfg['hidden_act']!r}; supported: silu")
        window = cfg.get("sliding_window") if arch == "MistralForCausalLM" else None
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
            raise FormatError(f"{path}: sliding_window must be null or an integer >= 0, got {window!r}")
        if arch == "Qwen2ForCausalLM" and cfg.get("use_sliding_window"):
            raise UnsupportedError(f"{path}: Qwen2 use_sliding_window is not supported")
        c = dict(
            n_layers=_int(cfg, "num_hidden_layers", path),
            d_model=d,
            n_heads=n_heads,
            n_kv_heads=n_kv,
            head_dim=head_dim,
            d_ff=_int(cfg, "intermediate_size", path),
            max_context=_int(cfg, "max_position_embeddings", path),
            norm_eps=_float(cfg, "rms_norm_eps", path, 1e-6),
            rope_theta=theta,
            rope_scaling=scaling,
            sliding_window=int(window or 0),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        )
    vocab = _int(cfg, "vocab_size", path)
    eos = cfg.get("eos_token_id")
    eos = [] if eos is None else (list(eos) if isinstance(eos, list) else [eos])
    eos = [e for e in (_token_id(e, "eos_token_id", path, vocab) for e in eos) if e is not None]
    conf = ModelConfig(
        architecture=arch,
        vocab_size=vocab,
        bos_token_id=_token_id(cfg.get("bos_token_id"), "bos_token_id", path, vocab),
        eos_token_ids=eos,
        raw=cfg,
        **c,
    )
    if max_context is not None:
        if isinstance(max_context, bool) or not isinstance(max_context, int) or max_context < 1:
            raise ValueError(f"max_context must be a positive int, got {max_context!r}")
        conf.max_context = min(conf.max_context, max_context)
    return conf


def rope_inv_freq(conf):
    """Rotary inverse frequencies (head_dim/2,) float32, with llama3 or linear scaling, as HF computes them."""
    inv = ops.rope_inv_freq(conf.head_dim, conf.rope_theta)
    s = conf.rope_scaling
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


class _Weights:
    """Tensors of a (possibly sharded) safetensors checkpoint by name."""

    def __init__(self, path):
        index = os.path.join(path, "model.safetensors.index.json")
        single = os.path.join(path, "model.safetensors")
        self.files = {}
        self.where = {}
        if os.path.exists(index):
            try:
                weight_map = json.load(open(index, encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError, TypeError) as e:
                raise FormatError(f"{index}: not a valid safetensors index ({e})") from None
            for name, fname in weight_map.items():
                full = os.path.join(path, fname)
                if os.path.dirname(os.path.abspath(full)) != os.path.abspath(path):
                    raise FormatError(f"{index}: shard {fname!r} is outside the model directory")
                if full not in self.files:
                    if not os.path.exists(full):
                        raise FileNotFoundError(f"{index}: shard {fname!r} does not exist")
                    self.files[full] = SafetensorsFile(full)
                if name not in self.files[full]:
                    raise FormatError(f"{full}: tensor {name!r} listed in the index is missing")
                self.where[name] = self.files[full]
        elif os.path.exists(single):
            f = SafetensorsFile(single)
            self.files[single] = f
            self.where = {name: f for name in f.keys()}
        else:
            raise FileNotFoundError(f"{path}: no model.safetensors or model.safetensors.index.json")

    def has(self, name):
        return name in self.where

    def get(self, name, shape=None):
        if name not in self.where:
            raise FormatError(f"{self._desc()}: missing tensor {name!r}")
        f = self.where[name]
        a = f.get(name)
        if a.dtype != np.float32:
            raise FormatError(f"{f.path}: tensor {name!r} has integer dtype {f.dtype(name)}, expected a float type")
        if shape is not None and a.shape != tuple(shape):
            raise FormatError(f"{f.path}: tensor {name!r} has shape {a.shape}, expected {tuple(shape)}")
        require_finite(a, f"{f.path}: tensor {name!r}")
        return np.ascontiguousarray(a)

    def check_layers(self, prefix, n, key):
        """FormatError if a tensor belongs to a layer `prefix`<i>. with i >= n (the config has fewer layers)."""
        for name in self.where:
            if name.startswith(prefix):
                i = name[len(prefix) :].split(".", 1)[0]
                if i.isdigit() and int(i) >= n:
                    raise FormatError(f"{self.where[name].path}: tensor {name!r} belongs to a layer beyond {key} {n}")

    def _desc(self):
        return ", ".join(sorted(self.files)) or "checkpoint"


def _hf_llama_weights(W, c):
    d, hd, f = c.d_model, c.head_dim, c.d_ff
    W.check_layers("model.layers.", c.n_layers, "num_hidden_layers")
    w = {"tok_emb": W.get("model.embed_tokens.weight", (c.vocab_size, d)), "norm_w": W.get("model.norm.weight", (d,))}
    tied = c.tie_word_embeddings or not W.has("lm_head.weight")
    w["lm_head"] = w["tok_emb"] if tied else W.get("lm_head.weight", (c.vocab_size, d))
    layers = []
    for i in range(c.n_layers):
        p = f"model.layers.{i}."

        def opt(name, shape, p=p):
            return W.get(p + name, shape) if W.has(p + name) else None

        layers.append(
            {
                "attn_norm_w": W.get(p + "input_layernorm.weight", (d,)),
                "wq": W.get(p + "self_attn.q_proj.weight", (c.n_heads * hd, d)),
                "wk": W.get(p + "self_attn.k_proj.weight", (c.n_kv_heads * hd, d)),
                "wv": W.get(p + "self_attn.v_proj.weight", (c.n_kv_heads * hd, d)),
                "wo": W.get(p + "self_attn.o_proj.weight", (d, c.n_heads * hd)),
                "bq": opt("self_attn.q_proj.bias", (c.n_heads * hd,)),
                "bk": opt("self_attn.k_proj.bias", (c.n_kv_heads * hd,)),
                "bv": opt("self_attn.v_proj.bias", (c.n_kv_heads * hd,)),
                "bo": opt("self_attn.o_proj.bias", (d,)),
                "ffn_norm_w": W.get(p + "post_attention_layernorm.weight", (d,)),
                "w_gate": W.get(p + "mlp.gate_proj.weight", (f, d)),
                "w_up": W.get(p + "mlp.up_proj.weight", (f, d)),
                "w_down": W.get(p + "mlp.down_proj.weight", (d, f)),
                "b_up": opt("mlp.up_proj.bias", (f,)),
                "b_down": opt("mlp.down_proj.bias", (d,)),
            }
        )
        if W.has(p + "mlp.gate_proj.bias"):
            raise UnsupportedError(f"{W._desc()}: mlp biases on the gate projection are not supported")
    w["rope_inv_freq"] = rope_inv_freq(c)  # after the q/k shapes have bounded head_dim
    return w, layers


def _hf_gpt2_weights(W, c):
    d, f = c.d_model, c.d_ff
    pre = "transformer." if W.has("transformer.wte.weight") else ""
    W.check_layers(pre + "h.", c.n_layers, "n_layer")

    def t(name, shape):  # Conv1D stores (in, out): transpose to (out, in)
        return np.ascontiguousarray(W.get(pre + name, shape).T)

    w = {
        "tok_emb": W.get(pre + "wte.weight", (c.vocab_size, d)),
        "pos_emb": W.get(pre + "wpe.weight", (c.raw["n_positions"], d))[: c.max_context],
        "norm_w": W.get(pre + "ln_f.weight", (d,)),
        "norm_b": W.get(pre + "ln_f.bias", (d,)),
    }
    w["pos_emb"] = np.ascontiguousarray(w["pos_emb"])
    w["lm_head"] = w["tok_emb"]
    layers = []
    for i in range(c.n_layers):
        p = f"h.{i}."
        qkv = t(p + "attn.c_attn.weight", (d, 3 * d))
        bqkv = W.get(pre + p + "attn.c_attn.bias", (3 * d,))
        layers.append(
            {
                "attn_norm_w": W.get(pre + p + "ln_1.weight", (d,)),
                "attn_norm_b": W.get(pre + p + "ln_1.bias", (d,)),
                "wq": np.ascontiguousarray(qkv[:d]),
                "wk": np.ascontiguousarray(qkv[d : 2 * d]),
                "wv": np.ascontiguousarray(qkv[2 * d :]),
                "bq": np.ascontiguousarray(bqkv[:d]),
                "bk": np.ascontiguousarray(bqkv[d : 2 * d]),
                "bv": np.ascontiguousarray(bqkv[2 * d :]),
                "wo": t(p + "attn.c_proj.weight", (d, d)),
                "bo": W.get(pre + p + "attn.c_proj.bias", (d,)),
                "ffn_norm_w": W.get(pre + p + "ln_2.weight", (d,)),
                "ffn_norm_b": W.get(pre + p + "ln_2.bias", (d,)),
                "w_up": t(p + "mlp.c_fc.weight", (d, f)),
                "b_up": W.get(pre + p + "mlp.c_fc.bias", (f,)),
                "w_down": t(p + "mlp.c_proj.weight", (f, d)),
                "b_down": W.get(pre + p + "mlp.c_proj.bias", (d,)),
            }
        )
    return w, layers


MATRICES = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")


def _quantize_weights(weights, layers, qtype):
    """Quantize every float weight matrix in place (norms, biases and embeddings stay float32).

    The head is quantized to q8_0 whatever `qtype` is: its error reaches every logit directly.
    Matrices whose rows are not a multiple of 32 stay float; ones already in another block format (from a
    GGUF file) are requantized from their dequantized values.
    """
    from fastformer.quant import QuantizedTensor, quantize

    def q(a, t):
        if isinstance(a, QuantizedTensor) and a.qtype != t:  # e.g. a q8_0 gguf asked for q4_0: requantize
            a = a.dequantize()
        return quantize(a, t) if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] % 32 == 0 else a

    for layer in layers:
        for key in MATRICES:
            if layer.get(key) is not None:
                layer[key] = q(layer[key], qtype)
    weights["lm_head"] = q(weights["lm_head"], "q8_0")


def _core_dims(c):
    return dict(
        arch=1 if c.architecture == "GPT2LMHeadModel" else 0,
        n_layers=c.n_layers,
        d=c.d_model,
        n_heads=c.n_heads,
        n_kv_heads=c.n_kv_heads,
        head_dim=c.head_dim,
        d_ff=c.d_ff,
        vocab=c.vocab_size,
        max_ctx=c.max_context,
        eps=c.norm_eps,
        rope_interleaved=0,
        window=c.sliding_window,
    )


def _as_ids(ids, vocab, name="ids"):
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {ids.shape}")
        out = [int(i) for i in ids]
    else:
        try:
            out = [int(i) for i in ids]
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a sequence of ints, got {type(ids).__name__}") from None
        if any(isinstance(i, bool) or int(i) != i for i in ids):
            raise TypeError(f"{name} must be a sequence of ints")
    bad = [i for i in out if not 0 <= i < vocab]
    if bad:
        raise ValueError(f"{name} holds token id {bad[0]} outside the vocabulary [0, {vocab})")
    return out


def _want_hugepages(hugepages):
    """Model.load's hugepages argument: None -> FASTFORMER_HUGEPAGES (0/1) if set, else what the kernel offers."""
    if hugepages is None:
        env = os.environ.get("FASTFORMER_HUGEPAGES", "").strip()
        if env not in ("", "0", "1"):
            raise ValueError(f"FASTFORMER_HUGEPAGES must be 0 or 1, got {env!r}")
        return _core.hugepages_available() if env in ("", "1") else False
    if not isinstance(hugepages, bool):
        raise TypeError(f"hugepages must be True, False or None, got {hugepages!r}")
    return hugepages


class Model:
    """A causal language model loaded into fastformer's C runtime.

    >>> model = Model.load("path/to/hf-model")              # doctest: +SKIP
    >>> model.logits([1, 2, 3]).shape                        # doctest: +SKIP
    (3, 32000)
    """

    def __init__(self, config, weights, layers, tokenizer=None, rope_interleaved=False, hugepages=False):
        self.config = config
        self.tokenizer = tokenizer
        self._bos = None  # prepended to text prompts when the tokenizer's config says so
        dims = _core_dims(config)
        dims["rope_interleaved"] = int(rope_interleaved)
        # with hugepages the core replaces the matrices in weights/layers by its copies
        self._core = _core.ModelCore(dims, weights, layers, bool(hugepages))
        # what the C core was built from (for save_gguf and tests)
        self._loaded = {"weights": weights, "layers": layers, "rope_interleaved": rope_interleaved}

    @classmethod
    def load(cls, path, *, quantize=None, threads=None, max_context=None, hugepages=None):
        """Load a Hugging Face model directory (config.json + safetensors, tokenizer files if present).

        `threads` sets the kernel thread count (process-wide); `max_context` caps the context window.
        `hugepages`: copy the weight matrices into memory backed by transparent huge pages, which decode
        streams faster than the file's mapping (resident size stays about the same: the file pages are
        dropped). None (the default) means yes where the kernel offers them, unless the environment sets
        FASTFORMER_HUGEPAGES=0; False keeps float32 weights zero-copy in the file mapping.
        """
        path = os.fspath(path)
        hugepages = _want_hugepages(hugepages)
        if quantize not in (None, "q8_0", "q4_0"):
            raise ValueError(f"quantize must be None, 'q8_0' or 'q4_0', got {quantize!r}")
        if threads is not None:
            _core.set_num_threads(threads)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such model file or directory")
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                if fh.read(4) != b"GGUF":
                    raise UnsupportedError(f"{path}: expected a GGUF file or a Hugging Face model directory")
            from fastformer.gguf import model_from_gguf

            conf, weights, layers, gf, interleaved = model_from_gguf(path, max_context)
            if quantize:
                _quantize_weights(weights, layers, quantize)
            model = cls(conf, weights, layers, _gguf_tokenizer(gf), rope_interleaved=interleaved, hugepages=hugepages)
            model.gguf = gf
            # llama.cpp's default: SentencePiece ("llama") vocabularies add BOS, byte-level ones do not
            spm = gf.metadata.get("tokenizer.ggml.model") == "llama"
            if model.tokenizer is not None and gf.metadata.get("tokenizer.ggml.add_bos_token", spm):
                model._bos = gf.metadata.get("tokenizer.ggml.bos_token_id")
            return model
        cfg_path = os.path.join(path, "config.json")
        if not os.path.exists(cfg_path):
            raise FileNotFoundError(f"{cfg_path}: missing (a model directory needs config.json)")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                raw = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{cfg_path}: not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise FormatError(f"{cfg_path}: must hold a JSON object")
        conf = parse_config(raw, cfg_path, max_context)
        W = _Weights(path)
        if conf.architecture == "GPT2LMHeadModel":
            weights, layers = _hf_gpt2_weights(W, conf)
        else:
            weights, layers = _hf_llama_weights(W, conf)
        if quantize:
            _quantize_weights(weights, layers, quantize)
        model = cls(conf, weights, layers, _load_tokenizer(path), hugepages=hugepages)
        model._bos = _bos_id(path, conf) if model.tokenizer is not None else None
        return model

    @classmethod
    def default(cls, *, quantize=None, threads=None, max_context=None, hugepages=None):
        """The embedded default model: a 5M-parameter Llama trained on the King James Bible, Q8_0, no network.

        Options as in `load`; quantize="q4_0" requantizes its Q8_0 matrices. Sample with DEFAULT_SAMPLING
        (fastformer/data/MODEL_CARD.md describes data, training and perplexity).

        >>> Model.default().generate("In the beginning", seed=0, **DEFAULT_SAMPLING)  # doctest: +SKIP
        """
        if not os.path.exists(DEFAULT_MODEL):
            raise FileNotFoundError(f"{DEFAULT_MODEL}: the embedded default model is missing from this install")
        return cls.load(DEFAULT_MODEL, quantize=quantize, threads=threads, max_context=max_context, hugepages=hugepages)

    def save_gguf(self, path, *, progress=None):
        """Write the model (its float and quantized weights as they are) to a GGUF file llama.cpp loads.

        Architectures llama (Llama/Mistral without a sliding window) and gpt2; progress(i, n) after each tensor.
        """
        from fastformer.gguf_write import write_gguf

        write_gguf(self, os.fspath(path), progress)

    # ---- scoring ----

    def _session(self, n_tokens):
        if n_tokens > self.config.max_context:
            raise ValueError(f"{n_tokens} tokens exceed the context window of {self.config.max_context} positions")
        return _core.Session(self._core, max(n_tokens, 1), min(PREFILL_CHUNK, max(n_tokens, 1)))

    def _prefill(self, sess, ids, all_logits=False):
        """Feed ids into the session in chunks; the last chunk's logits (all rows or the last)."""
        outs = []
        step = sess.max_t
        window = self.config.sliding_window
        i = 0
        while i < len(ids):
            # past the sliding window, one token per call keeps every query's window exact
            n = 1 if window and sess.n_past + step > window else step
            out = sess.forward(ids[i : i + n], all_logits)
            if all_logits:
                outs.append(out)
            i += n
        return np.concatenate(outs) if all_logits else out[0]

    def logits(self, ids):
        """Logits (len(ids), vocab) float32 for every position of `ids`, in a fresh context."""
        ids = _as_ids(ids, self.config.vocab_size)
        if not ids:
            raise ValueError("ids must not be empty")
        return self._prefill(self._session(len(ids)), ids, all_logits=True)

    def encode_prompt(self, prompt):
        """Token ids for `prompt`: a str is tokenized (with BOS when the tokenizer adds one), ids are checked."""
        if isinstance(prompt, str):
            tok = self._need_tokenizer()
            ids = tok.encode(prompt, allowed_special="all")
            if self._bos is not None and (not ids or ids[0] != self._bos):
                ids = [self._bos] + ids
            return ids
        return _as_ids(prompt, self.config.vocab_size, "prompt")

    def next_token_probs(self, prompt):
        """The probability distribution (vocab,) float32 of the token after `prompt` (str or ids)."""
        ids = self.encode_prompt(prompt)
        if not ids:
            raise ValueError("prompt must not be empty")
        x = self._prefill(self._session(len(ids)), ids).astype(np.float64)
        e = np.exp(x - x.max())
        return (e / e.sum()).astype(np.float32)

    def perplexity(self, text_or_ids, *, context=None, stride=None):
        """exp of the mean negative log-likelihood of each token given the tokens before it.

        A str is tokenized as a prompt (with BOS when the tokenizer adds one); the first token is not scored.
        Longer than `context` (default: the context window, at most 1024), the text is read in windows of
        `context` tokens starting every `stride` tokens (default context // 2); each window scores only the
        tokens no earlier window scored.

        >>> model.perplexity(open("heldout.txt").read())  # doctest: +SKIP
        """
        ids = self.encode_prompt(text_or_ids)
        if len(ids) < 2:
            raise ValueError(f"perplexity needs at least 2 tokens, got {len(ids)}")
        if context is None:
            context = min(self.config.max_context, 1024)
        if isinstance(context, bool) or not isinstance(context, int) or not 2 <= context <= self.config.max_context:
            raise ValueError(f"context must be an int in [2, {self.config.max_context}], got {context!r}")
        if stride is None:
            stride = context // 2
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride < context:
            raise ValueError(f"stride must be an int in [1, {context - 1}], got {stride!r}")
        total, done, begin = 0.0, 1, 0  # tokens [1, done) are scored
        while done < len(ids):
            end = min(begin + context, len(ids))
            logits = self.logits(ids[begin:end])
            # row r predicts token begin + r + 1; score tokens done .. end-1
            for r0 in range(done - begin - 1, end - begin - 1, 64):
                rows = logits[r0 : min(r0 + 64, end - begin - 1)].astype(np.float64)
                m = rows.max(axis=1, keepdims=True)
                lse = m[:, 0] + np.log(np.exp(rows - m).sum(axis=1))
                target = np.asarray(ids[begin + r0 + 1 : begin + r0 + 1 + len(rows)])
                total += float((lse - rows[np.arange(len(rows)), target]).sum())
            done = end
            begin += stride
        return math.exp(total / (len(ids) - 1))

    # ---- generation ----

    def _eos_ids(self, stop_ids, ignore_eos=False):
        eos = set() if ignore_eos else set(self.config.eos_token_ids)
        tok_eos = getattr(self.tokenizer, "eos_id", None)
        if tok_eos is not None and not ignore_eos:
            eos.add(tok_eos)
        if stop_ids is not None:
            eos |= set(_as_ids(stop_ids, self.config.vocab_size, "stop_ids"))
        return eos

    def iter_ids(
        self,
        ids,
        *,
        max_new_tokens=128,
        temperature=0.0,
        top_k=0,
        top_p=1.0,
        min_p=0.0,
        repetition_penalty=1.0,
        seed=None,
        stop_ids=None,
        ignore_eos=False,
    ):
        """Yield new token ids one at a time (the engine under generate_ids, generate and stream).

        ignore_eos=True keeps generating through EOS (for benchmarks); stop_ids still stop.
        """
        ids = _as_ids(ids, self.config.vocab_size)
        if not ids:
            raise ValueError("ids must not be empty")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        sampler = Sampler(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
        )
        eos = self._eos_ids(stop_ids, ignore_eos)
        total = len(ids) + max_new_tokens
        if total > self.config.max_context:
            raise ValueError(
                f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) = {total} exceeds the context "
                f"window of {self.config.max_context} positions"
            )
        return self._iter(ids, max_new_tokens, sampler, eos)

    def _iter(self, ids, max_new_tokens, sampler, eos):
        if max_new_tokens == 0:
            return
        sess = self._session(len(ids) + max_new_tokens)
        history = list(ids)
        logits = self._prefill(sess, ids)
        for i in range(max_new_tokens):
            tok = sampler.next_token(logits, history)
            yield tok
            if tok in eos or i == max_new_tokens - 1:
                return
            history.append(tok)
            logits = sess.forward([tok])[0]

    def generate_ids(self, ids, **options):
        """New token ids after `ids` (the prompt is not repeated); stops at EOS, a stop id or max_new_tokens.

        Options: max_new_tokens=128, temperature=0.0 (greedy), top_k=0, top_p=1.0, min_p=0.0,
        repetition_penalty=1.0, seed=None, stop_ids=None, ignore_eos=False. The EOS or stop id that ended
        generation is included.
        """
        return list(self.iter_ids(ids, **options))

    def stream(self, prompt, *, stop=None, **options):
        """Yield text pieces as they are generated: never a split UTF-8 character, never part of a stop string."""
        tok = self._need_tokenizer()
        stops = _stop_list(stop)
        ids = self.encode_prompt(prompt)
        eos = self._eos_ids(options.get("stop_ids"), options.get("ignore_eos", False))
        pending = b""  # bytes not yet complete as UTF-8
        held = ""  # text held back because it could begin a stop string
        for t in self.iter_ids(ids, **options):
            if t in eos:
                break
            pending += tok.decode_bytes([t])
            text, pending = _utf8_prefix(pending)
            held += text
            cut = _find_stop(held, stops)
            if cut is not None:
                if held[:cut]:
                    yield held[:cut]
                return
            safe = len(held) - _stop_overlap(held, stops)
            if safe > 0:
                yield held[:safe]
                held = held[safe:]
        tail = held + pending.decode("utf-8", errors="replace")
        cut = _find_stop(tail, stops)
        tail = tail if cut is None else tail[:cut]
        if tail:
            yield tail

    def generate(self, prompt, *, stop=None, **options):
        """The text generated after `prompt` (str or ids), stopping at EOS, a stop string or max_new_tokens."""
        return "".join(self.stream(prompt, stop=stop, **options))

    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this model was loaded without tokenizer files: pass token ids instead of text")
        return self.tokenizer


def _stop_list(stop):
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be a non-empty string or a list of them, got {stop!r}")
    return stops


def _find_stop(text, stops):
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _stop_overlap(text, stops):
    """Length of the longest suffix of text that is a proper prefix of some stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def _utf8_prefix(data):
    """Split bytes into (decoded complete characters, trailing bytes of an unfinished character).

    Invalid bytes are replaced with U+FFFD; only a well-formed but incomplete last character is held back.
    """
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:  # a lead byte (or ascii): does its sequence run past the end?
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            if need > back:
                try:
                    data[-back:].decode("utf-8")
                except UnicodeDecodeError as e:
                    if e.reason == "unexpected end of data":
                        return data[:-back].decode("utf-8", errors="replace"), data[-back:]
            break
    return data.decode("utf-8", errors="replace"), b""


def _gguf_tokenizer(gf):
    """The tokenizer embedded in a GGUF file (tokenizer.ggml.*), or None for a file without one."""
    if gf.metadata.get("tokenizer.ggml.model", "none") in ("none", "no_vocab"):
        return None
    from fastformer.tokenizer import Tokenizer

    return Tokenizer.from_gguf_metadata(gf.metadata, source=gf.path)


def _load_tokenizer(path):
    """The model directory's tokenizer, or None when it has none."""
    if not os.path.exists(os.path.join(path, "tokenizer.json")):
        return None
    from fastformer.tokenizer import Tokenizer

    return Tokenizer.from_pretrained(path)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON: {e}") from None


def _bos_id(path, conf):
    """The BOS id to prepend to text prompts, or None: tokenizer_config.json's add_bos_token, else the
    BOS a tokenizer.json TemplateProcessing post-processor puts first."""
    tc = _read_json(os.path.join(path, "tokenizer_config.json")) or {}
    tj = _read_json(os.path.join(path, "tokenizer.json")) or {}
    if isinstance(tc.get("add_bos_token"), bool):
        return conf.bos_token_id if tc["add_bos_token"] else None
    post = tj.get("post_processor") or {}
    procs = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for p in procs:
        if isinstance(p, dict) and p.get("type") == "TemplateProcessing":
            first = (p.get("single") or [{}])[0]
            if "SpecialToken" in first:
                name = first["SpecialToken"]["id"]
                ids = (p.get("special_tokens", {}).get(name) or {}).get("ids") or []
                return ids[0] if ids else None
    return None
