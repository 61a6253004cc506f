"""GGUF vocabularies (tokenizer.ggml.*) to and from a Tokenizer's parts: a "gpt2" vocabulary is a byte-level BPE
with merges split as llama.cpp splits for its tokenizer.ggml.pre (_patterns.GGUF_PRE_SPLITS), a "llama" one a
SentencePiece-style vocabulary whose scores order the merges. Both become a tokenizer.json description that
`_tokenizer_hf.parse` turns into `Parts`. `eog_ids` lists the ids that end generation, as llama.cpp does."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fastformer._bpe_engine import Parts
from fastformer._patterns import GGUF_PRE, GGUF_PRE_SPLITS, SCANNERS
from fastformer._tokenizer_hf import (
    BYTE_TO_CHAR,
    byte_level_spec,
    flatten,
    is_byte_level,
    merges_from_ranks,
    parse,
    prepend_scheme,
)
from fastformer.errors import FormatError, UnsupportedError

# tokenizer.ggml.token_type values (llama.cpp's llama_token_type)
TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER, TYPE_UNUSED, TYPE_BYTE = 1, 2, 3, 4, 5, 6


# ---- writing ----


def gguf_metadata(parts: Parts) -> dict:
    """The tokenizer.ggml.* keys for a tokenizer's parts (see Tokenizer.gguf_metadata)."""
    spec, n = parts.spec, len(parts.tokens)
    added = {a["id"]: a for a in (spec or {}).get("added_tokens") or []}
    meta = {}
    if spec is None or is_byte_level(spec):
        # byte-level: tokens spelled with GPT-2's byte map, merges as "a b"
        if spec is not None:
            vocab, merges = spec["model"]["vocab"], spec["model"].get("merges") or []
            merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        else:
            vocab = {"".join(BYTE_TO_CHAR[x] for x in b): i for b, i in parts.ranks.items()}
            merges = [" ".join("".join(BYTE_TO_CHAR[x] for x in p) for p in m) for m in merges_from_ranks(parts.ranks)]
        tokens, types = [f"[UNUSED_{i}]" for i in range(n)], [TYPE_UNUSED] * n
        for s, i in vocab.items():
            tokens[i], types[i] = s, TYPE_NORMAL
        for s, i in parts.special.items():
            tokens[i], types[i] = s, TYPE_CONTROL
        for i, a in added.items():
            if not a.get("special"):
                tokens[i], types[i] = a["content"], TYPE_USER
        meta["tokenizer.ggml.model"] = "gpt2"
        # llama.cpp's name for the split, by the C scanner that runs it
        scanner = parts.pipeline.pre.scanner if parts.pipeline is not None else SCANNERS.get(parts.pattern)
        meta["tokenizer.ggml.pre"] = GGUF_PRE.get(scanner, "default")
        meta["tokenizer.ggml.merges"] = merges
    else:
        # sentencepiece-style: pieces, scores that order the merges, byte and control types
        vocab = spec["model"]["vocab"]
        first = {}
        for k, m in enumerate(spec["model"].get("merges") or []):
            a, b = m.split(" ") if isinstance(m, str) else m
            first.setdefault(a + b, k)
        tokens, scores, types = [f"[UNUSED_{i}]" for i in range(n)], [0.0] * n, [TYPE_UNUSED] * n
        for s, i in vocab.items():
            tokens[i], types[i] = s, TYPE_NORMAL
            scores[i] = -float(first.get(s, len(first) + i))
            if len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
                types[i] = TYPE_BYTE
        for i, a in added.items():
            tokens[i] = a["content"]
            types[i] = TYPE_CONTROL if a.get("special") else TYPE_USER
        unk = spec["model"].get("unk_token")
        if unk in vocab:
            types[vocab[unk]] = TYPE_UNKNOWN
        meta["tokenizer.ggml.model"] = "llama"
        meta["tokenizer.ggml.scores"] = scores
        meta["tokenizer.ggml.add_space_prefix"] = _adds_space_prefix(spec)
    meta["tokenizer.ggml.tokens"] = tokens
    meta["tokenizer.ggml.token_type"] = types
    if parts.bos_id is not None:
        meta["tokenizer.ggml.bos_token_id"] = parts.bos_id
    if parts.eos_id is not None:
        meta["tokenizer.ggml.eos_token_id"] = parts.eos_id
    # prompts: bos first, eos last when the tokenizer asks for them (Tokenizer.encode_prompt)
    meta["tokenizer.ggml.add_bos_token"] = bool(parts.add_bos)
    meta["tokenizer.ggml.add_eos_token"] = bool(parts.add_eos)
    return meta


def _adds_space_prefix(spec):
    for st in flatten(spec.get("normalizer"), "normalizer"):
        if st.get("type") == "Prepend":
            return True
    for st in flatten(spec.get("pre_tokenizer"), "pre_tokenizer"):
        if st.get("type") == "Metaspace":
            return prepend_scheme(st) != "never"
    return False


# ---- reading ----


def sentencepiece_parts(pieces, scores, types, *, add_space_prefix=True, where="sentencepiece") -> Parts:
    """A SentencePiece-style vocabulary (GGUF's "llama" model): pieces with scores and types (TYPE_*). Spaces
    become U+2581, one is put in front if add_space_prefix, and any two symbols whose joined text is a piece
    merge, highest score first, leftmost on ties (as sentencepiece and llama.cpp); unknown characters fall
    back to bytes."""
    vocab = {p: i for i, p in enumerate(pieces)}
    # control and unknown tokens are special; user-defined ones are cut out of the raw text wherever they
    # occur, before anything else (as sentencepiece and llama.cpp)
    added = [
        {"id": i, "content": p, "special": types[i] != TYPE_USER, "normalized": False}
        for i, p in enumerate(pieces)
        if types[i] in (TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER)
    ]
    unk = next((p for i, p in enumerate(pieces) if types[i] == TYPE_UNKNOWN), None)
    # merge rank: the order of descending score, equal scores equal rank
    mergeable = [types[i] in (TYPE_NORMAL, TYPE_USER) for i in range(len(pieces))]
    order = sorted({scores[i] for i in range(len(pieces)) if mergeable[i]}, reverse=True)
    dense = {s: r for r, s in enumerate(order)}
    rank = np.array([dense[scores[i]] if mergeable[i] else -1 for i in range(len(pieces))], np.int32)
    norm = [{"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]
    if add_space_prefix:
        norm.insert(0, {"type": "Prepend", "prepend": "\u2581"})
    spec = {
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": norm},
        "pre_tokenizer": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": int(add_space_prefix), "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "vocab": vocab,
            "merges": [],
            "unk_token": unk,
            "fuse_unk": True,
            "byte_fallback": all(f"<0x{b:02X}>" in vocab for b in range(256)),
        },
    }
    return parse(spec, where, merge_rank=rank)


def _meta_list(meta, key, default):
    """A metadata array as a list (GGUF readers give numeric arrays as numpy arrays, strings as lists)."""
    v = meta.get(key)
    return list(default) if v is None else [x.item() if hasattr(x, "item") else x for x in v]


# token texts llama.cpp takes as end of generation (and retypes as control tokens) wherever they occur
EOG_TEXTS = frozenset(
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    }
)  # fmt: skip
# the ids that end generation too, besides eos (llama.cpp's eot, eom and fill-in-the-middle padding / separators)
EOG_KEYS = ("eos_token_id", "eot_token_id", "eom_token_id", "fim_pad_token_id", "fim_rep_token_id", "fim_sep_token_id")
ID_KEYS = ("bos_token_id", *EOG_KEYS, "unknown_token_id", "padding_token_id", "seperator_token_id")


def _read_vocab(meta, where):
    """tokens, token types (EOG_TEXTS retyped as control) and the ids of ID_KEYS present, checked."""
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is None or len(tokens) == 0:
        raise FormatError(f"{where}.tokens is missing or empty")
    if not isinstance(tokens, list) or not all(isinstance(x, str) for x in tokens):
        raise FormatError(f"{where}.tokens must be an array of strings")
    bad = next((i for i, x in enumerate(tokens) if not x.isascii() and _not_utf8(x)), None)
    if bad is not None:
        raise FormatError(f"{where}.tokens: token {bad} ({tokens[bad]!r}) is not valid UTF-8")
    types = _meta_list(meta, "tokenizer.ggml.token_type", [TYPE_NORMAL] * len(tokens))
    if len(types) != len(tokens):
        raise FormatError(f"{where}.token_type has {len(types)} entries for {len(tokens)} tokens")
    bad = next(
        (i for i, x in enumerate(types) if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 6), None
    )
    if bad is not None:
        raise FormatError(f"{where}.token_type of token {bad} is {types[bad]!r}, expected 0..6")
    first = {}
    for i, (s, ty) in enumerate(zip(tokens, types)):
        if ty in (TYPE_NORMAL, TYPE_BYTE):
            if s in first:
                raise FormatError(f"{where}.tokens: token {s!r} appears twice (ids {first[s]} and {i})")
            first[s] = i
    for i, s in enumerate(tokens):
        if s in EOG_TEXTS and types[i] not in (TYPE_CONTROL, TYPE_UNKNOWN):
            types[i] = TYPE_CONTROL
    ids = {}
    for key in ID_KEYS:
        v = meta.get(f"tokenizer.ggml.{key}")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(tokens)):
            raise FormatError(f"{where}.{key} {v!r} must be a token id in [0, {len(tokens)})")
        if v is not None:
            ids[key] = v
    return tokens, types, ids


def _not_utf8(s):
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:  # a GGUF reader's surrogateescape of bytes that are not UTF-8
        return True


def eog_ids(meta, source: str = "GGUF metadata") -> list[int]:
    """Every id that ends generation in a GGUF file's tokenizer.ggml.* metadata, as llama.cpp decides: eos, eot,
    eom and fill-in-the-middle pad / rep / sep ids, and every token whose text is one of EOG_TEXTS."""
    tokens, _, ids = _read_vocab(meta, f"{source}: tokenizer.ggml")
    out = [ids[k] for k in EOG_KEYS if k in ids]
    out += [i for i, s in enumerate(tokens) if s in EOG_TEXTS]
    return list(dict.fromkeys(out))


def _byte_level(tokens, types, pre, meta, where):
    """A "gpt2" vocabulary as the tokenizer.json of a byte-level BPE split as llama.cpp splits for `pre`."""
    vocab = {
        s: i
        for i, s in enumerate(tokens)
        if types[i] in (TYPE_NORMAL, TYPE_BYTE, TYPE_UNUSED) and not s.startswith("[UNUSED_")
    }
    added = [
        {"id": i, "content": s, "special": types[i] == TYPE_CONTROL, "normalized": False}
        for i, s in enumerate(tokens)
        if types[i] in (TYPE_CONTROL, TYPE_USER)
    ]
    spec = byte_level_spec({}, [], {}, pre.splits[0], ignore_merges=pre.ignore_merges)
    splits = [{"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False} for r in pre.splits]
    spec["pre_tokenizer"]["pretokenizers"][:1] = splits
    merges = meta.get("tokenizer.ggml.merges", [])
    if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
        raise FormatError(f"{where}.merges must be an array of strings")
    spec["model"]["vocab"], spec["model"]["merges"] = vocab, merges
    spec["added_tokens"] = added
    return spec


def from_gguf_metadata(meta, source: str) -> Parts:
    """The parts of the tokenizer a GGUF file's tokenizer.ggml.* keys describe; errors name `source`."""
    model = meta.get("tokenizer.ggml.model")
    where = f"{source}: tokenizer.ggml"
    tokens, types, ids = _read_vocab(meta, where)
    bos, eos = ids.get("bos_token_id"), ids.get("eos_token_id")
    if model == "llama":
        scores = _meta_list(meta, "tokenizer.ggml.scores", [])
        if len(scores) != len(tokens):
            raise FormatError(f"{where}.scores has {len(scores)} entries for {len(tokens)} tokens")
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in scores):
            raise FormatError(f"{where}.scores must be finite numbers")
        space = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
        parts = sentencepiece_parts(tokens, scores, types, add_space_prefix=space, where=where)
        add_bos = True  # llama.cpp starts SentencePiece prompts with bos unless the file says otherwise
    elif model == "gpt2":
        name = meta.get("tokenizer.ggml.pre", "default")
        pre = GGUF_PRE_SPLITS.get(name) if isinstance(name, str) else None
        if pre is None:
            raise UnsupportedError(
                f"{where}.pre {name!r} is not supported; supported: {', '.join(sorted(GGUF_PRE_SPLITS))}"
            )
        # llama.cpp keeps a byte without a token as a symbol that merges with nothing, then drops it
        parts = parse(_byte_level(tokens, types, pre, meta, where), where, missing_bytes=True)
        add_bos = pre.add_bos
    else:
        raise UnsupportedError(f"{where}.model {model!r} is not supported (gpt2 and llama are)")
    add_bos = meta.get("tokenizer.ggml.add_bos_token", add_bos)
    add_eos = meta.get("tokenizer.ggml.add_eos_token", False)
    for key, v in (("add_bos_token", add_bos), ("add_eos_token", add_eos)):
        if not isinstance(v, (bool, int, np.bool_)):
            raise FormatError(f"{where}.{key} must be a bool, got {v!r}")
    return dataclasses.replace(
        parts,
        bos_id=bos if bos is not None else parts.bos_id,
        eos_id=eos if eos is not None else parts.eos_id,
        add_bos=bool(add_bos),
        add_eos=bool(add_eos),
    )
