"""Hugging Face model directories: config.json -> ModelConfig, (sharded) safetensors -> a Checkpoint.

Which keys and tensor names a family uses comes from its row in `fastformer.arch`; this module only knows the
directory layout and the safetensors index.

>>> ck = load("path/to/hf-model")          # doctest: +SKIP
>>> ck.config.architecture                 # doctest: +SKIP
'LlamaForCausalLM'
"""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np

from fastformer import ops
from fastformer.arch import HF_CLASSES, REQUIRED, arch_for_hf
from fastformer.chat import read_hf_templates
from fastformer.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    ModelConfig,
    build,
    check_float,
    check_int,
    check_layer_count,
    check_shapes,
    read_weights,
    rope_inv_freq,
    unsupported_flags,
)
from fastformer.errors import FormatError, UnsupportedError, read_json, require_finite
from fastformer.safetensors import SafetensorsFile

ROPE_SCALINGS = ("llama3", "linear")
# buffers some checkpoints carry beside the weights (rotary tables, gpt2's causal masks)
_IGNORED = (".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias")


def _token_id(v, key, path, vocab):
    """A bos/eos id: an int, or None. transformers writes GPT-2's defaults (50256) into configs of smaller
    vocabularies, so an id outside the vocabulary is dropped with a warning instead of failing the load."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise FormatError(f"{path}: {key} must be an integer token id, got {v!r}")
    if not 0 <= v < vocab:
        warnings.warn(f"{path}: {key} {v} is outside the vocabulary [0, {vocab}); ignoring it", stacklevel=4)
        return None
    return v


def _rope_scaling(scaling, path, cfg, longrope):
    """The rope_scaling dict checked: None, or a copy with rope_type and finite positive factors (for longrope
    also original_max_position_embeddings, factor and attention_factor filled in as transformers does)."""
    if not isinstance(scaling, dict):
        raise FormatError(f"{path}: rope_scaling must be an object, got {scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if longrope and kind in ("su", "yarn"):  # phi-3's older names for longrope
        kind = "longrope"
    kinds = ROPE_SCALINGS + (("longrope",) if longrope else ())
    if kind not in kinds + ("default",):
        raise UnsupportedError(f"{path}: rope scaling {kind!r}; supported: {', '.join(kinds)}")
    if kind == "default":
        return None
    if kind == "longrope":
        return _longrope(scaling, path, cfg)
    keys = ["factor"] + (
        ["low_freq_factor", "high_freq_factor", "original_max_position_embeddings"] if kind == "llama3" else []
    )
    for key in keys:
        check_float(scaling.get(key), key, f"{path}: rope_scaling", positive=True)
    if kind == "llama3" and scaling["high_freq_factor"] <= scaling["low_freq_factor"]:
        raise FormatError(f"{path}: rope_scaling high_freq_factor must exceed low_freq_factor")
    return dict(scaling, rope_type=kind)


def _longrope(scaling, path, cfg):
    """LongRoPE: short and long per-frequency factors, the pretraining length that separates them, and the
    cos/sin scale (attention_factor, by default sqrt(1 + ln(factor) / ln(original length)))."""
    where = f"{path}: rope_scaling"
    orig = scaling.get("original_max_position_embeddings", cfg.get("original_max_position_embeddings"))
    orig = check_int(orig, "original_max_position_embeddings", where)
    out = dict(scaling, rope_type="longrope", original_max_position_embeddings=orig)
    for key in ("short_factor", "long_factor"):
        v = scaling.get(key)
        if not isinstance(v, list) or not v:
            raise FormatError(f"{where}: {key} must be a list of numbers, got {v!r}")
        out[key] = [check_float(x, key, where, positive=True) for x in v]
    factor = scaling.get("factor")
    if factor is None:
        factor = check_int(cfg.get("max_position_embeddings"), "max_position_embeddings", path) / orig
    factor = check_float(factor, "factor", where, positive=True)
    attn = scaling.get("attention_factor")
    if attn is None:
        attn = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
    out["factor"], out["attention_factor"] = factor, check_float(attn, "attention_factor", where, positive=True)
    return out


def parse_config(cfg: dict, path: str = "config.json", max_context: int | None = None) -> ModelConfig:
    """ModelConfig from a config.json dict; FormatError for bad fields, UnsupportedError for other models."""
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise FormatError(f"{path}: architectures must be a list of strings, got {archs!r}")
    arch = arch_for_hf(cfg)
    if arch is None:
        raise UnsupportedError(
            f"{path}: architecture {archs or cfg.get('model_type')!r} is not supported; "
            f"supported: {', '.join(HF_CLASSES)}"
        )
    if arch.hf_sub_config:  # a multimodal checkpoint: its language model's config, ids and tying from the top
        sub = cfg.get(arch.hf_sub_config)
        if not isinstance(sub, dict):
            raise FormatError(f"{path}: {arch.hf_sub_config} must be an object, got {sub!r}")
        top = {k: cfg[k] for k in ("bos_token_id", "eos_token_id", "tie_word_embeddings") if k in cfg}
        cfg = {**top, **sub, "architectures": archs}
    keys = {f: k for f, (k, _) in arch.hf_config.items()}

    def field(name, default_of=None):
        key, default = arch.hf_config[name]
        v = cfg.get(key) if key else None
        if v is None and default is not REQUIRED:
            return default_of() if default is None else default
        return v

    d = check_int(field("d_model"), keys["d_model"], path)
    n_heads = check_int(field("n_heads"), keys["n_heads"], path)
    n_kv = check_int(field("n_kv_heads", lambda: n_heads), keys["n_kv_heads"], path)
    head_dim_given = keys["head_dim"] and cfg.get(keys["head_dim"]) is not None
    names = dict(keys, n_heads_full=keys["n_heads"], head_dim_given=head_dim_given)
    if not head_dim_given and d % n_heads:
        raise FormatError(f"{path}: {keys['d_model']} {d} is not a multiple of {keys['n_heads']} {n_heads}")
    head_dim = check_int(field("head_dim", lambda: d // n_heads), keys["head_dim"] or "head_dim", path)
    act_key, act_default, acts = arch.hf_act
    if cfg.get(act_key, act_default) not in acts:
        raise UnsupportedError(f"{path}: {act_key} {cfg[act_key]!r}; supported: {', '.join(acts)}")
    unsupported_flags(arch, cfg, path)
    conf = ModelConfig(
        architecture=next((a for a in archs if a in arch.hf_classes), arch.hf_classes[0]),
        arch=arch.name,
        n_layers=check_int(field("n_layers"), keys["n_layers"], path),
        d_model=d,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        d_ff=check_int(field("d_ff", lambda: 4 * d), keys["d_ff"], path),
        vocab_size=check_int(field("vocab_size"), keys["vocab_size"], path),
        max_context=check_int(field("max_context"), keys["max_context"], path),
        norm_eps=check_float(field("norm_eps"), keys["norm_eps"], path),
        tie_word_embeddings=arch.always_tied or bool(cfg.get("tie_word_embeddings", False)),
        raw=cfg,
    )
    check_shapes(conf, path, names)
    if "n_types" in arch.hf_config:  # encoders: token type rows
        conf.n_types = check_int(field("n_types"), keys["n_types"], path)
    if arch.rope != "none":
        rope = cfg.get("rope_parameters") or {}
        if not isinstance(rope, dict):
            raise FormatError(f"{path}: rope_parameters must be an object, got {rope!r}")
        local = {"rope_theta": cfg.get("rope_local_base_freq", 10000.0)}
        if "full_attention" in rope:  # one set per layer type (gemma3 as transformers 5 writes it)
            local, rope = rope.get("sliding_attention") or {}, rope["full_attention"]
            if not isinstance(local, dict) or not isinstance(rope, dict):
                raise FormatError(f"{path}: rope_parameters per layer type must be objects")
        if arch.local_rope:
            if local.get("rope_type", "default") != "default":
                raise UnsupportedError(f"{path}: rope scaling {local['rope_type']!r} on sliding layers")
            conf.rope_local_theta = check_float(local.get("rope_theta"), "rope_local_base_freq", path, positive=True)
        scaling = cfg.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
        src = rope if "rope_theta" in rope else cfg
        conf.rope_theta = check_float(src.get("rope_theta", 10000.0), "rope_theta", path, positive=True)
        conf.rope_scaling = None if scaling is None else _rope_scaling(scaling, path, cfg, arch.longrope)
        partial = rope.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
        partial = check_float(partial, "partial_rotary_factor", path, positive=True)
        if partial > 1:
            raise FormatError(f"{path}: partial_rotary_factor must be at most 1, got {partial!r}")
        conf.rope_dim = int(conf.head_dim * partial)
        if conf.rope_dim < 2 or conf.rope_dim % 2:
            raise FormatError(
                f"{path}: partial_rotary_factor {partial} leaves {conf.rope_dim} rotary dims (need an even number >= 2)"
            )
        s = conf.rope_scaling
        if s and s["rope_type"] == "longrope":
            for key in ("short_factor", "long_factor"):
                if len(s[key]) != conf.rope_dim // 2:
                    n = len(s[key])
                    raise FormatError(f"{path}: rope_scaling {key} has {n} values, expected {conf.rope_dim // 2}")
            conf.rope_attn_factor = s["attention_factor"]
            conf.rope_long_after = s["original_max_position_embeddings"]
    if arch.sliding_window:
        window = cfg.get("sliding_window", arch.hf_window or None)  # null: no window; no key: the class default
        # 0 would leave a query no key (transformers masks everything); one past the context never cuts
        bad = isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_SIZE
        if window is not None and bad:
            raise FormatError(f"{path}: sliding_window must be null or an integer from 1 to {MAX_SIZE}, got {window!r}")
        conf.sliding_window = int(window or 0)
    if arch.sliding_pattern:
        conf.sliding_layers = _sliding_layers(cfg, arch.sliding_pattern, conf.n_layers, path)

    def optional(name):  # a positive number under the row's key for `name`, or None
        key, default = arch.hf_config.get(name, ("", None))
        v = cfg.get(key, default) if key else None
        return None if v is None else check_float(v, key, path, positive=True)

    scalar = optional("attn_scalar")
    if scalar is not None:  # gemma scales scores by query_pre_attn_scalar**-0.5 instead of head_dim**-0.5
        conf.attn_scale = scalar**-0.5
    conf.attn_softcap = optional("attn_softcap") or 0.0
    conf.final_softcap = optional("final_softcap") or 0.0
    if arch.emb_scale:  # transformers multiplies by sqrt(hidden_size) rounded to float32
        conf.emb_scale = float(np.float32(math.sqrt(conf.d_model)))
    eos = cfg.get("eos_token_id")
    eos = [] if eos is None else (list(eos) if isinstance(eos, list) else [eos])
    conf.eos_token_ids = [
        e for e in (_token_id(e, "eos_token_id", path, conf.vocab_size) for e in eos) if e is not None
    ]
    conf.bos_token_id = _token_id(cfg.get("bos_token_id"), "bos_token_id", path, conf.vocab_size)
    if max_context is not None:
        if isinstance(max_context, bool) or not isinstance(max_context, int) or max_context < 1:
            raise ValueError(f"max_context must be a positive int, got {max_context!r}")
        conf.max_context = min(conf.max_context, max_context)
    return conf


def _sliding_layers(cfg, pattern, n_layers, path):
    """Which layers use the sliding window: config.json's layer_types, else every layer but each
    `sliding_window_pattern`-th (the family's default pattern when the config has none)."""
    types = cfg.get("layer_types")
    if types is not None:
        kinds = ("sliding_attention", "full_attention")
        if not isinstance(types, list) or len(types) != n_layers or any(t not in kinds for t in types):
            raise FormatError(f"{path}: layer_types must list {n_layers} of {kinds}, got {types!r}")
        return tuple(t == "sliding_attention" for t in types)
    pattern = check_int(cfg.get("sliding_window_pattern", pattern), "sliding_window_pattern", path)
    return tuple((i + 1) % pattern != 0 for i in range(n_layers))


class Tensors:
    """Tensors of a (possibly sharded) safetensors checkpoint by name."""

    def __init__(self, path: str):
        index = os.path.join(path, "model.safetensors.index.json")
        single = os.path.join(path, "model.safetensors")
        self.files, self.where = {}, {}
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

    def has(self, name: str) -> bool:
        return name in self.where

    def get(self, name: str, shape=None, matrix: bool = False) -> np.ndarray:
        """A float32 tensor of `shape`, checked finite (safetensors has no block formats: `matrix` is unused)."""
        if name not in self.where:
            raise FormatError(f"{self.describe()}: missing tensor {name!r}")
        f = self.where[name]
        a = f.get(name)
        if a.dtype != np.float32:
            raise FormatError(f"{f.path}: tensor {name!r} has integer dtype {f.dtype(name)}, expected a float type")
        if shape is not None and a.shape != tuple(shape):
            raise FormatError(f"{f.path}: tensor {name!r} has shape {a.shape}, expected {tuple(shape)}")
        require_finite(a, f"{f.path}: tensor {name!r}")
        return np.ascontiguousarray(a)

    def describe(self) -> str:
        return ", ".join(sorted(self.files)) or "checkpoint"


def load(path: str, max_context: int | None = None) -> Checkpoint:
    """A Hugging Face model directory (config.json, safetensors, tokenizer files if present) as a Checkpoint."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{cfg_path}: missing (a model directory needs config.json)")
    raw = read_json(cfg_path)
    if not isinstance(raw, dict):
        raise FormatError(f"{cfg_path}: must hold a JSON object")
    conf = parse_config(raw, cfg_path, max_context)
    arch = conf.family
    T = Tensors(path)
    # names may carry a prefix ("transformer." in some GPT-2 files): the first that finds the embeddings
    first = arch.hf_tensors[0].name
    prefix = next((p for p in arch.hf_prefixes if T.has(p + first)), arch.hf_prefixes[-1])
    check_layer_count(
        [n[len(prefix) :] for n in T.where if n.startswith(prefix)],
        arch.hf_tensors,
        conf.n_layers,
        lambda n: (
            f"{T.where[prefix + n].path}: tensor {prefix + n!r} belongs to a layer beyond "
            f"{arch.hf_config['n_layers'][0]} {conf.n_layers}"
        ),
    )
    for i in range(conf.n_layers):
        for name in arch.hf_forbidden:
            if T.has(prefix + name.format(i=i)):
                raise UnsupportedError(f"{T.describe()}: tensor {name.format(i=i)!r} is not supported")
    srcs = tuple(s for s in arch.hf_tensors if not (s.into == ("lm_head",) and conf.tie_word_embeddings))
    context = conf.raw.get(arch.hf_config["max_context"][0])
    used = set()

    def get(n, shape, m):
        used.add(prefix + n)
        return T.get(prefix + n, shape, m)

    glob, layers = read_weights(srcs, conf, context, lambda n: T.has(prefix + n), get)
    unused = [
        n
        for n in T.where
        if n.startswith(prefix)
        and n not in used
        and not n.endswith(_IGNORED)
        and not n[len(prefix) :].startswith(arch.hf_ignored)
        and n != prefix + "lm_head.weight"
    ]
    if unused:  # a tensor the forward pass would ignore: the model would run, wrongly
        more = f" (and {len(unused) - 3} more)" if len(unused) > 3 else ""
        raise UnsupportedError(f"{T.describe()}: tensor {', '.join(map(repr, unused[:3]))}{more} is not supported")
    if "pos_emb" in glob:
        glob["pos_emb"] = np.ascontiguousarray(glob["pos_emb"][: conf.max_context])
    if arch.rope != "none":  # after the q/k shapes have bounded head_dim
        glob["rope_inv_freq"] = rope_inv_freq(conf)
        glob["rope_inv_freq_long"] = rope_inv_freq(conf, long=True)
        if conf.rope_local_theta:
            glob["rope_inv_freq_local"] = ops.rope_inv_freq(conf.rotary_dim, conf.rope_local_theta)
    weights, layers = build(glob, layers, tied=conf.tie_word_embeddings)
    tok = None
    if arch.encoder:  # WordPiece (tokenizer.json or vocab.txt)
        from fastformer.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer.find(path)
    elif os.path.exists(os.path.join(path, "tokenizer.json")):
        from fastformer.tokenizer import Tokenizer

        tok = Tokenizer.from_pretrained(path)
    templates = read_hf_templates(path)
    return Checkpoint(path, "hf", conf, weights, layers, tok, rope=arch.rope, chat_templates=templates)
