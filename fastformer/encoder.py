"""Sentence embeddings from an encoder (BERT): `Model.embed` as sentence-transformers' `encode` computes them.

The data path: texts -> WordPiece ids ([CLS] ... [SEP], truncated at max_seq_length) -> batches of similar
lengths, each one C call (csrc/ff_encoder.c) over the sequences laid end to end without padding -> the last
hidden states -> pooling (mean, cls, max, last token, weighted mean, mean / sqrt(len)) -> L2 normalization.

A sentence-transformers directory says how: modules.json (Transformer, Pooling, Normalize), the Pooling
module's config.json, and the maximum length from sentence_bert_config.json (max_seq_length) or else
tokenizer_config.json (model_max_length), capped by the model's positions. A bare BERT directory pools by
mean without normalizing, as sentence-transformers does when it wraps one.

>>> model = Model.load("all-MiniLM-L6-v2")            # doctest: +SKIP
>>> model.embed(["a sentence", "another"]).shape     # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastformer import _core
from fastformer.errors import FormatError, UnsupportedError, read_json

__all__ = ["POOLING_MODES", "SentenceConfig", "embed", "read_sentence_config"]

# sentence-transformers' pooling modes, and its legacy config keys for them (in the order it concatenates them)
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# llama.cpp's {arch}.pooling_type values
_GGUF_POOLING = {0: None, 1: "mean", 2: "cls", 3: "lasttoken"}
_MODULES = ("Transformer", "Pooling", "Normalize")  # modules.json types (by class name) that embed runs


@dataclass
class SentenceConfig:
    pooling: tuple  # pooling modes, concatenated in this order
    normalize: bool  # L2-normalize the pooled vector
    max_seq_length: int  # tokens per text, [CLS] and [SEP] included; longer texts lose their last tokens


def check_pooling(pooling, where: str = "pooling") -> tuple:
    """A tuple of pooling modes from one mode name or a list of them; ValueError naming `where` otherwise."""
    modes = (pooling,) if isinstance(pooling, str) else pooling
    if not isinstance(modes, (list, tuple)) or not modes or not all(isinstance(m, str) for m in modes):
        raise ValueError(f"{where} must be one of {', '.join(POOLING_MODES)} or a list of them, got {pooling!r}")
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad:
        raise ValueError(f"{where}: unknown pooling mode {bad[0]!r}; known: {', '.join(POOLING_MODES)}")
    return tuple(modes)


def _pooling_file(path):
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise FormatError(f"{path}: must hold a JSON object")
    if "pooling_mode" in cfg:
        modes = cfg["pooling_mode"]
    else:
        modes = [mode for key, mode in _LEGACY_KEYS.items() if cfg.get(key)]
    try:
        return check_pooling(modes, f"{path}: pooling_mode")
    except ValueError as e:
        raise FormatError(str(e)) from None


def read_sentence_config(ck) -> SentenceConfig:
    """How a loaded encoder checkpoint embeds: its sentence-transformers files, GGUF pooling_type, or defaults."""
    c = ck.config
    pooling, normalize, limit = ("mean",), False, None
    if ck.format == "gguf":
        kind = c.raw.get(f"{c.family.gguf_name}.pooling_type", 1)
        if kind not in _GGUF_POOLING or _GGUF_POOLING[kind] is None:
            raise UnsupportedError(f"{ck.path}: pooling_type {kind!r} is not supported (1 mean, 2 cls, 3 last)")
        return SentenceConfig((_GGUF_POOLING[kind],), False, c.max_context)
    root = ck.path
    modules = read_json(os.path.join(root, "modules.json"))
    if modules is not None:
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise FormatError(f"{root}/modules.json: must be a list of objects")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        other = [m.get("type") for m, k in zip(modules, kinds) if k not in _MODULES]
        if other:
            raise UnsupportedError(f"{root}/modules.json: module {other[0]!r} is not supported ({', '.join(_MODULES)})")
        for m, k in zip(modules, kinds):
            if k == "Transformer" and m.get("path", "") not in ("", "."):
                where = f"{root}/modules.json: a Transformer module in {m.get('path')!r}"
                raise UnsupportedError(f"{where}; load that folder")
            if k == "Pooling":
                pooling = _pooling_file(os.path.join(root, str(m.get("path", "")), "config.json"))
        normalize = "Normalize" in kinds
        if "Pooling" not in kinds:
            raise UnsupportedError(f"{root}/modules.json: no Pooling module (token embeddings are not supported)")
    st = read_json(os.path.join(root, "sentence_bert_config.json"))
    if isinstance(st, dict) and st.get("max_seq_length") is not None:
        limit = st["max_seq_length"]
        where = f"{root}/sentence_bert_config.json: max_seq_length"
    else:
        tc = read_json(os.path.join(root, "tokenizer_config.json"))
        limit = tc.get("model_max_length") if isinstance(tc, dict) else None
        where = f"{root}/tokenizer_config.json: model_max_length"
        limit = c.max_context if limit is None else min(limit, c.max_context) if isinstance(limit, int) else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 3:
        raise FormatError(f"{where} must be an integer >= 3, got {limit!r}")
    if limit > c.max_context:
        raise FormatError(f"{where} {limit} exceeds the model's {c.max_context} positions")
    return SentenceConfig(pooling, normalize, limit)


def _pool(h: np.ndarray, lens: np.ndarray, modes: tuple) -> np.ndarray:
    """Pooled vectors (n, len(modes) * d) of the hidden states h (sum(lens), d) of sequences laid end to end."""
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = lens[:, None].astype(np.float32)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(h[starts])
        elif mode == "lasttoken":
            out.append(h[starts + lens - 1])
        elif mode == "max":
            out.append(np.maximum.reduceat(h, starts, axis=0))
        elif mode == "mean":
            out.append(np.add.reduceat(h, starts, axis=0) / n)
        elif mode == "mean_sqrt_len_tokens":
            out.append(np.add.reduceat(h, starts, axis=0) / np.sqrt(n))
        else:  # weightedmean: token i of a sequence weighs i + 1
            w = (np.arange(len(h)) - np.repeat(starts, lens) + 1).astype(np.float32)[:, None]
            out.append(np.add.reduceat(h * w, starts, axis=0) / (n * (n + 1) / 2))
    return np.concatenate(out, axis=1).astype(np.float32, copy=False)


def embed(model, texts, *, pooling=None, normalize=None, batch_size: int = 32) -> np.ndarray:
    """Embeddings (len(texts), dim) float32 of texts; see `fastformer.Model.embed`."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a str or a sequence of str")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    cfg = model.sentence
    modes = cfg.pooling if pooling is None else check_pooling(pooling)
    if normalize is not None and not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True, False or None, got {normalize!r}")
    normalize = cfg.normalize if normalize is None else normalize
    dim = len(modes) * model.config.d_model
    tok = model._need_tokenizer()
    ids = [tok.encode(t, max_length=cfg.max_seq_length) for t in texts]
    out = np.empty((len(texts), dim), dtype=np.float32)
    # longest first, so each batch holds sequences of about one length and the first finds any memory problem
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        lens = np.array([len(ids[i]) for i in idx], dtype=np.int64)
        flat = np.fromiter((t for i in idx for t in ids[i]), dtype=np.int32, count=int(lens.sum()))
        h = _core.encoder_forward(model._core, flat, lens)
        out[idx] = _pool(h, lens, modes)
    if normalize:
        # as torch.nn.functional.normalize: v / max(|v|, 1e-12)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))[:, None]
        out = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
