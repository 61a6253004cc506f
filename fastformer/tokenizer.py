"""Byte-pair encoding with exactly the tokens of tiktoken and Hugging Face `tokenizers`, computed in C.

One engine serves tiktoken rank files (`Tokenizer.from_tiktoken`) and Hugging Face tokenizer.json BPE
models, byte-level or SentencePiece-style (`Tokenizer.from_file`, `Tokenizer.from_pretrained`): a vocabulary
of byte strings, a pair map (left, right) -> (rank, merged id), and text split into pieces by hand-written
scanners for the gpt2/r50k/p50k, cl100k, o200k, Llama 3 and Qwen2 patterns (Unicode 16.0 categories, as
tiktoken and tokenizers use). Other split patterns fall back to the `regex` package, with a warning.
The methods and special-token rules are tiktoken's; `encode` never adds BOS/EOS.

>>> tok = Tokenizer.from_tiktoken("cl100k_base.tiktoken", pattern="cl100k_base")  # doctest: +SKIP
>>> tok.decode(tok.encode("hello world"))  # doctest: +SKIP
'hello world'
"""

import base64
import json
import os
import re
import warnings

import numpy as np

from fastformer import _core
from fastformer.errors import FormatError, UnsupportedError

__all__ = ["StreamDecoder", "Tokenizer", "train_bpe"]

# ---- split patterns: the published regexes and the scanner that implements each ----

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT2_PATTERN_HF = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s"""
)
# the original cl100k pattern, as Llama 3 uses it: a whitespace run ends at its last newline even at the end
LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
# Oniguruma (tokenizers) reads a{1,3}+ as (a{1,3})+, not as a possessive a{1,3}: tokenizer.json files spell
# cl100k's digits without the +
CL100K_PATTERN_HF = CL100K_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}{1,3}")
SCANNERS = {
    GPT2_PATTERN: "gpt2",
    GPT2_PATTERN_HF: "gpt2",
    CL100K_PATTERN: "cl100k",
    CL100K_PATTERN_HF: "cl100k",
    LLAMA3_PATTERN: "llama3",
    QWEN2_PATTERN: "qwen2",
    O200K_PATTERN: "o200k",
}
# the scanners for patterns in tokenizer.json files, as Oniguruma reads them
SCANNERS_HF = {p: k for p, k in SCANNERS.items() if p != CL100K_PATTERN}

_EOT, _FIM = "<|endoftext|>", ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>")
# tiktoken's encodings: split pattern and standard special tokens
ENCODINGS = {
    "gpt2": (GPT2_PATTERN, {_EOT: 50256}),
    "r50k_base": (GPT2_PATTERN, {_EOT: 50256}),
    "p50k_base": (GPT2_PATTERN, {_EOT: 50256}),
    "p50k_edit": (GPT2_PATTERN, {_EOT: 50256, _FIM[0]: 50281, _FIM[1]: 50282, _FIM[2]: 50283}),
    "cl100k_base": (
        CL100K_PATTERN,
        {_EOT: 100257, _FIM[0]: 100258, _FIM[1]: 100259, _FIM[2]: 100260, "<|endofprompt|>": 100276},
    ),
    "o200k_base": (O200K_PATTERN, {_EOT: 199999, "<|endofprompt|>": 200018}),
}


def _raise_disallowed(token):
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def _fallback_regex(pattern):
    try:
        import regex
    except ImportError as e:
        raise UnsupportedError(
            f"split pattern {pattern!r} has no built-in scanner and the `regex` package is not installed"
        ) from e
    warnings.warn(
        f"split pattern {pattern!r} has no built-in scanner; using the slower `regex` package",
        stacklevel=3,
    )
    return regex.compile(pattern)


class Tokenizer:
    """A byte-pair encoding tokenizer; build one with `from_tiktoken`, `from_file` or `from_pretrained`.

    Encoding is thread-safe and releases the GIL. Special tokens follow tiktoken: by default text that spells
    a special token raises ValueError; `allowed_special` turns it into the token, `disallowed_special=()`
    encodes it as plain text.

    >>> tok.encode("<|endoftext|>", allowed_special="all")  # doctest: +SKIP
    [100257]
    """

    def __init__(
        self,
        bpe,
        tokens,
        special_tokens,
        *,
        name,
        pattern,
        regex=None,
        pipeline=None,
        bos_id=None,
        eos_id=None,
        add_bos=False,
    ):
        # private: use the from_* constructors
        self._bpe = bpe
        self._tokens = tokens
        self._special = dict(special_tokens)
        self._special_names = list(special_tokens)
        self._special_index = {s: k for k, s in enumerate(self._special_names)}
        self._mode_default = bytes([2]) * len(self._special_names)
        self._regex = regex
        self._pipeline = pipeline
        self.name = name
        self.pattern = pattern  # the split regex (None if the pre-tokenizer is not one regex)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.add_bos = bool(add_bos) and bos_id is not None  # encode_prompt puts bos_id first
        self._spec = None  # the tokenizer.json it was loaded from, if any
        self._ranks = None  # the tiktoken ranks it was built from, if any

    def __repr__(self):
        return f"<Tokenizer {self.name!r} n_vocab={self.n_vocab}>"

    # ---- construction ----

    @classmethod
    def from_tiktoken(cls, path, *, pattern, special_tokens=None):
        """Load a tiktoken rank file (lines "<base64 token> <rank>").

        `pattern` is "gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base" or a split
        regex. With a known name and `special_tokens=None` that encoding's special tokens are used.

        >>> Tokenizer.from_tiktoken(path, pattern="cl100k_base").n_vocab  # doctest: +SKIP
        100277
        """
        if pattern in ENCODINGS:
            name, (regex_str, default_special) = pattern, ENCODINGS[pattern]
        else:
            name, regex_str, default_special = os.path.basename(str(path)), pattern, {}
        special = dict(default_special if special_tokens is None else special_tokens)
        ranks = _read_tiktoken(path)
        return cls._from_ranks(ranks, special, name=name, pattern=regex_str)

    @classmethod
    def from_file(cls, path):
        """Load a Hugging Face tokenizer.json with a BPE model (byte-level, as GPT-2 / Llama 3 / Qwen2, or
        SentencePiece-style with byte fallback, as Llama 2 / Mistral). A tokenizer_config.json next to it
        supplies bos_id / eos_id. A tiktoken rank file of one of tiktoken's encodings (known by its size) loads
        as `from_tiktoken` with that encoding.

        >>> tok = Tokenizer.from_file("tokenizer.json")  # doctest: +SKIP
        """
        from fastformer import _tokenizer_hf as hf

        path = os.fspath(path)
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
        if head and not head.startswith(b"{"):
            return cls._from_tiktoken_guess(path)
        config = os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer_config.json")
        spec, conf = hf.read(path), hf.read(config) if os.path.exists(config) else None
        if not isinstance(spec, dict) or not isinstance(conf, (dict, type(None))):
            raise FormatError(f"{path}: tokenizer.json and tokenizer_config.json must hold JSON objects")
        with hf.malformed(path):
            return cls._from_hf(spec, path, conf)

    @classmethod
    def _from_tiktoken_guess(cls, path):
        ranks = _read_tiktoken(path)
        sizes = {50256: "r50k_base", 50280: "p50k_base", 100256: "cl100k_base", 199998: "o200k_base"}
        if len(ranks) not in sizes:
            raise FormatError(
                f"{path}: a tiktoken file of {len(ranks)} tokens is none of tiktoken's encodings; load it with "
                "Tokenizer.from_tiktoken(path, pattern=...)"
            )
        pattern, special = ENCODINGS[sizes[len(ranks)]]
        return cls._from_ranks(ranks, dict(special), name=sizes[len(ranks)], pattern=pattern)

    @classmethod
    def from_pretrained(cls, directory):
        """Load the tokenizer of a model directory (its tokenizer.json).

        >>> tok = Tokenizer.from_pretrained("models/llama-3-8b")  # doctest: +SKIP
        """
        directory = os.fspath(directory)
        path = os.path.join(directory, "tokenizer.json")
        if not os.path.isfile(path):
            found = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
            raise FormatError(
                f"{directory}: no tokenizer.json (found {found[:10]}); convert the tokenizer with "
                "Hugging Face `tokenizers` or load a tiktoken file with Tokenizer.from_tiktoken"
            )
        return cls.from_file(path)

    @classmethod
    def _from_hf(cls, spec, where, config=None, name=None, merge_rank=None):
        """A Tokenizer from a parsed tokenizer.json (and tokenizer_config.json); with merge_rank (per id),
        merges come from the vocabulary by rank instead of the merges list."""
        from fastformer import _tokenizer_hf as hf

        model = spec.get("model") or {}
        if not isinstance(model, dict):
            raise FormatError(f"{where}: model must be an object, got {type(model).__name__}")
        if model.get("type", "BPE") != "BPE":
            raise UnsupportedError(f"{where}: model type {model.get('type')!r} is not supported (only BPE is)")
        for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
            if model.get(key):
                raise UnsupportedError(f"{where}: BPE option {key}={model[key]!r} is not supported")
        vocab, added = model.get("vocab"), spec.get("added_tokens") or []
        n = hf.check_vocab(vocab, added, where)
        byte_level = hf.is_byte_level(spec)
        merge_tokens, decoded, kind = [None] * n, [None] * n, np.zeros(n, np.uint8)
        token_bytes, strip, first_differs = hf.decoder(spec.get("decoder"), byte_level, where)
        for s, i in vocab.items():
            merge_tokens[i] = hf.byte_level_decode(s, where) if byte_level else s.encode("utf-8")
            decoded[i] = token_bytes(s, False)
            kind[i] = 1
        for a in added:
            i = a["id"]
            decoded[i] = token_bytes(a["content"], True)
            if not kind[i]:
                merge_tokens[i], kind[i] = a["content"].encode("utf-8"), 2
        bpe = _new_bpe(merge_tokens, kind)
        left, right = hf.parse_merges(model.get("merges") or [], vocab, where)
        if merge_rank is not None:
            bpe.merges_ranked(merge_rank)
        elif (bad := bpe.merges_list(left, right)) >= 0:
            raise FormatError(f"{where}: merge {bad} ({model['merges'][bad]!r}) makes a token not in the vocabulary")
        pipeline = hf.Pipeline(spec, byte_level, where)
        pipeline.strip = strip
        if first_differs:  # what each id decodes to at the start of the text
            pipeline.first = [None] * n
            for s, i in vocab.items():
                pipeline.first[i] = token_bytes(s, False, first=True)
            for a in added:
                pipeline.first[a["id"]] = token_bytes(a["content"], True, first=True)
        if byte_level:
            byte_id = [vocab.get(hf.BYTE_TO_CHAR[b], -1) for b in range(256)]
            if min(byte_id) < 0:
                raise UnsupportedError(f"{where}: a byte-level vocabulary without all 256 byte tokens")
        else:
            byte_id = [vocab.get(f"<0x{b:02X}>", -1) for b in range(256)]
            if not model.get("byte_fallback"):
                byte_id = None
            elif min(byte_id) < 0:
                raise UnsupportedError(f"{where}: byte_fallback without all 256 <0xNN> tokens")
        unk = vocab.get(model.get("unk_token"), -1) if model.get("unk_token") is not None else -1
        bpe.config(
            pipeline.pre.scanner or "none",
            by_char=not byte_level,
            byte_id=byte_id,
            unk_id=unk,
            fuse_unk=bool(model.get("fuse_unk")),
            whole_first=bool(model.get("ignore_merges")),
        )
        _set_decode(bpe, decoded)
        special = {a["content"]: a["id"] for a in added if a.get("special")}
        bpe.specials(np.zeros(0, np.int32))
        bos, eos = hf.bos_eos(spec, config, special)
        add_bos, template_bos = hf.prompt_bos(spec, config)
        tok = cls(
            bpe,
            decoded,
            special,
            name=name or os.path.basename(os.path.dirname(os.path.abspath(where))) or where,
            pattern=pipeline.pre.pattern,
            pipeline=pipeline,
            bos_id=bos if bos is not None else template_bos,
            eos_id=eos,
            add_bos=add_bos,
        )
        tok._spec = spec
        return tok

    @classmethod
    def _from_scores(cls, pieces, scores, types, *, add_space_prefix=True, name="sentencepiece"):
        """A SentencePiece-style vocabulary (as GGUF's tokenizer.ggml.* "llama" model): pieces with scores and
        types (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte). Spaces become U+2581, one is
        put in front if add_space_prefix, and any two symbols whose joined text is a piece merge, highest
        score first, leftmost on ties (as sentencepiece and llama.cpp); unknown characters fall back to bytes.
        """
        vocab = {p: i for i, p in enumerate(pieces)}
        added = [{"id": i, "content": p, "special": True} for i, p in enumerate(pieces) if types[i] in (2, 3)]
        unk = next((p for i, p in enumerate(pieces) if types[i] == 2), None)
        # merge rank: the order of descending score, equal scores equal rank
        order = sorted({scores[i] for i in range(len(pieces)) if types[i] in (1, 4)}, reverse=True)
        dense = {s: r for r, s in enumerate(order)}
        rank = np.array([dense[scores[i]] if types[i] in (1, 4) else -1 for i in range(len(pieces))], np.int32)
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
        return cls._from_hf(spec, name, name=name, merge_rank=rank)

    @classmethod
    def _from_ranks(cls, ranks, special, *, name, pattern):
        """A byte-level tokenizer whose merge priority is the rank, as in tiktoken (rank = id)."""
        byte_id = [ranks.get(bytes([b]), -1) for b in range(256)]
        if min(byte_id) < 0:
            missing = [b for b in range(256) if byte_id[b] < 0]
            raise FormatError(f"{name}: a byte-level vocabulary needs all 256 single bytes; missing {missing[:8]}")
        limit = _id_limit(len(ranks) + len(special))
        for s, i in special.items():
            if not isinstance(s, str) or isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < limit:
                raise ValueError(f"special token {s!r} has id {i!r}; ids must be ints in [0, {limit})")
        if ranks and max(ranks.values()) >= limit:
            raise FormatError(
                f"{name}: ranks go up to {max(ranks.values())} for {len(ranks)} tokens; at most {limit - 1} is accepted"
            )
        n = max(max(ranks.values(), default=-1), max(special.values(), default=-1)) + 1
        tokens = [None] * n
        kind = np.zeros(n, np.uint8)
        for tok, rank in ranks.items():
            tokens[rank] = tok
            kind[rank] = 1
        for s, i in special.items():
            if kind[i]:
                raise ValueError(f"special token {s!r} has id {i}, which is already a mergeable token")
            tokens[i] = s.encode("utf-8")
            kind[i] = 2
        bpe = _new_bpe(tokens, kind)
        rank = np.where(kind == 1, np.arange(n, dtype=np.int32), -1).astype(np.int32)
        bpe.merges_ranked(rank)
        regex = None
        scanner = SCANNERS.get(pattern)
        if scanner is None:
            regex = _fallback_regex(pattern)
            scanner = "none"
        bpe.config(scanner, byte_id=byte_id, whole_first=True)
        bpe.specials(np.array(list(special.values()), dtype=np.int32))
        eos = special.get(_EOT)
        tok = cls(
            bpe,
            tokens,
            special,
            name=name,
            pattern=pattern,
            regex=regex,
            eos_id=eos,
            bos_id=special.get("<|startoftext|>"),
        )
        tok._ranks = ranks
        return tok

    def save(self, path):
        """Write a tokenizer.json that Hugging Face `tokenizers` loads and that encodes identically.

        A tiktoken-built tokenizer becomes a byte-level BPE with merges recovered from the ranks and
        `ignore_merges` (as Llama 3's file); one loaded from tokenizer.json is written back as it was read.

        >>> tok.save("tokenizer.json")  # doctest: +SKIP
        """
        from fastformer import _tokenizer_hf as hf

        spec = self._spec
        if spec is None:
            if self._regex is not None and self.pattern not in SCANNERS:
                warnings.warn("the split pattern is written as is; tokenizers runs it with Oniguruma", stacklevel=2)
            pattern = CL100K_PATTERN_HF if self.pattern == CL100K_PATTERN else self.pattern
            if re.search(r"\{\d+(,\d*)?\}\+", pattern):
                warnings.warn(
                    "tokenizers reads the bounded repeat x{m,n}+ in the split pattern as (x{m,n})+",
                    stacklevel=2,
                )
            spec = hf.byte_level_spec(
                self._ranks, hf.merges_from_ranks(self._ranks), self._special, pattern, ignore_merges=True
            )
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False)

    # ---- GGUF vocabularies ----

    def gguf_metadata(self):
        """The tokenizer.ggml.* keys of a GGUF file for this tokenizer: a "gpt2" (byte-level BPE with merges)
        or a "llama" (SentencePiece-style, scores from merge order) vocabulary; `from_gguf_metadata` reads
        them back. llama.cpp names split patterns: cl100k_base's is written as "llama-bpe", which differs only
        on whitespace at the very end of a text.

        >>> tok.gguf_metadata()["tokenizer.ggml.model"]  # doctest: +SKIP
        'gpt2'
        """
        from fastformer import _tokenizer_hf as hf

        return hf.gguf_metadata(self)

    @classmethod
    def from_gguf_metadata(cls, metadata, *, source="GGUF metadata"):
        """A Tokenizer from a GGUF file's tokenizer.ggml.* metadata ("gpt2" or "llama" model); errors name
        `source` (the file).

        >>> Tokenizer.from_gguf_metadata(gguf_file.metadata, source=gguf_file.path)  # doctest: +SKIP
        """
        from fastformer import _tokenizer_hf as hf

        with hf.malformed(source):
            return hf.from_gguf_metadata(cls, metadata, source)

    # ---- encoding ----

    @property
    def n_vocab(self):
        """Number of ids, including special tokens (one more than the largest id)."""
        return len(self._tokens)

    @property
    def special_tokens(self):
        """Special token strings and their ids."""
        return dict(self._special)

    @property
    def special_tokens_set(self):
        return set(self._special)

    def _modes(self, allowed_special, disallowed_special):
        """Per special token 0 plain text, 1 allowed, 2 disallowed; plus disallowed strings that are not
        special tokens."""
        if not allowed_special and disallowed_special == "all":
            return self._mode_default, ()
        allowed = set(self._special) if allowed_special == "all" else set(allowed_special)
        disallowed = set(self._special) - allowed if disallowed_special == "all" else set(disallowed_special)
        mode = bytearray(len(self._special_names))
        for s in allowed:
            if s in self._special_index:
                mode[self._special_index[s]] = 1
        extra = []
        for s in disallowed:
            if s in self._special_index:
                mode[self._special_index[s]] = 2
            else:
                extra.append(s)
        return bytes(mode), extra

    def _check_extra(self, text, extra):
        """tiktoken also refuses disallowed strings that are not special tokens."""
        found = [(text.find(s), s) for s in extra if s and s in text]
        if found:
            _raise_disallowed(min(found)[1])

    def encode(self, text, *, allowed_special=frozenset(), disallowed_special="all"):
        """Token ids of `text`; raises ValueError if it contains a disallowed special token's string.

        >>> tok.encode("hello world")  # doctest: +SKIP
        [15339, 1917]
        """
        if not isinstance(text, str):
            raise TypeError(f"encode: text must be a str, got {type(text).__name__}")
        mode, extra = self._modes(allowed_special, disallowed_special)
        if extra:
            self._check_extra(text, extra)
        if self._pipeline is not None:
            return self._pipeline.encode(self, text, mode)
        if self._regex is not None:
            return self._encode_regex(text, mode)
        r = self._bpe.encode(text, mode)
        if type(r) is int:
            _raise_disallowed(self._special_names[r])
        return r

    def encode_ordinary(self, text):
        """Token ids of `text`, with special token strings encoded as plain text.

        >>> tok.encode_ordinary("<|endoftext|>")  # doctest: +SKIP
        [27, 91, 8862, 728, 428, 91, 29]
        """
        return self.encode(text, disallowed_special=())

    def encode_prompt(self, text):
        """Ids of a prompt: special tokens in `text` are tokens, and bos_id goes first when the tokenizer's
        configuration asks for it (add_bos) and the text does not already start with it."""
        ids = self.encode(text, allowed_special="all")
        if self.add_bos and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        return ids

    def encode_batch(self, texts, *, num_threads=None, allowed_special=frozenset(), disallowed_special="all"):
        """`encode` of every text, in parallel in C on up to `num_threads` threads (default: the pool size).

        >>> tok.encode_batch(["hello", "world"])  # doctest: +SKIP
        [[15339], [14957]]
        """
        texts = list(texts)
        if num_threads is None:
            num_threads = _core.get_num_threads()
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
        mode, extra = self._modes(allowed_special, disallowed_special)
        if extra:
            for t in texts:
                self._check_extra(t, extra)
        if self._pipeline is not None:
            for k, t in enumerate(texts):
                if not isinstance(t, str):
                    raise TypeError(f"encode_batch: texts[{k}] is {type(t).__name__}, expected str")
            plans = [self._pipeline.plan(t, mode, self._special_names) for t in texts]
            return self._pipeline.run(self, plans, num_threads)
        if self._regex is not None:
            return [self._encode_regex(t, mode) for t in texts]
        out = self._bpe.encode_batch(texts, mode, num_threads)
        for r in out:
            if type(r) is int:
                _raise_disallowed(self._special_names[r])
        return out

    def encode_ordinary_batch(self, texts, *, num_threads=None):
        """`encode_ordinary` of every text, in parallel."""
        return self.encode_batch(texts, num_threads=num_threads, disallowed_special=())

    def _encode_regex(self, text, mode):
        """Split with the fallback regex (only its matches are encoded, as in tiktoken), between specials."""
        text = _replace_surrogates(text)
        ids = []
        for seg, special_id in self._split_specials(text, mode):
            if special_id is not None:
                ids.append(special_id)
            elif seg:
                ids += _encode_spans(self._bpe, seg, [m.span() for m in self._regex.finditer(seg)])
        return ids

    def _split_specials(self, text, mode):
        """text as (segment, None) and (special string, id) parts: allowed specials (mode 1) are cut out,
        leftmost and longest first; a disallowed one (mode 2) anywhere raises."""
        names = self._special_names
        bad = [s for k, s in enumerate(names) if mode[k] == 2 and s in text]
        if bad:
            _raise_disallowed(min(bad, key=lambda s: (text.find(s), -len(s))))
        allowed = sorted((s for k, s in enumerate(names) if mode[k] == 1), key=len, reverse=True)
        if not allowed:
            return [(text, None)]
        parts, start = [], 0
        for m in re.finditer("|".join(map(re.escape, allowed)), text):
            parts += [(text[start : m.start()], None), (m.group(), self._special[m.group()])]
            start = m.end()
        parts.append((text[start:], None))
        return parts

    # ---- decoding ----

    def decode_bytes(self, ids):
        """The bytes of a sequence of ids; ValueError for an id that is not in the vocabulary.

        >>> tok.decode_bytes([15339, 1917])  # doctest: +SKIP
        b'hello world'
        """
        if isinstance(ids, np.ndarray):
            if ids.dtype.kind not in "iu" or ids.ndim != 1:
                raise TypeError(f"decode: token ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        else:
            for k, x in enumerate(ids):
                if type(x) is not int and (isinstance(x, bool) or not isinstance(x, (int, np.integer))):
                    raise TypeError(f"decode: token ids must be ints, got {type(x).__name__} {x!r} at position {k}")
        return self._bpe.decode(ids)

    def decode(self, ids, *, errors="replace"):
        """The text of a sequence of ids; invalid UTF-8 is handled by `errors` as in bytes.decode.

        >>> tok.decode([15339, 1917])  # doctest: +SKIP
        'hello world'
        """
        return self._strip_start(self._text_bytes(ids, True).decode("utf-8", errors=errors), self._lead_strip())

    def _text_bytes(self, ids, at_start):
        """The bytes ids decode to; at the start of a text the first id may decode differently (Metaspace)."""
        data = self.decode_bytes(ids)
        first = self._pipeline.first if self._pipeline is not None else None
        if at_start and first is not None and len(ids):
            data = first[ids[0]] + data[len(self._tokens[ids[0]]) :]
        return data

    def _lead_strip(self):
        return self._pipeline.strip if self._pipeline is not None else 0

    @staticmethod
    def _strip_start(text, count):
        """Drop up to `count` leading spaces (tokenizers' Strip decoder)."""
        k = 0
        while k < count and k < len(text) and text[k] == " ":
            k += 1
        return text[k:]

    def token_bytes(self, id):
        """The bytes of one token id.

        >>> tok.token_bytes(15339)  # doctest: +SKIP
        b'hello'
        """
        if (
            isinstance(id, bool)
            or not isinstance(id, (int, np.integer))
            or not 0 <= id < len(self._tokens)
            or self._tokens[id] is None
        ):
            raise ValueError(f"token id {id!r} is not in the vocabulary of {len(self._tokens)} ids")
        return self._tokens[id]


def train_bpe(texts_or_files, *, vocab_size, pattern="cl100k_base", special_tokens=()):
    """Train a byte-level BPE tokenizer of `vocab_size` ids (256 bytes, merges, then `special_tokens`).

    Items of `texts_or_files` are texts (str) or paths (os.PathLike) of UTF-8 files. Text is split with
    `pattern` (an encoding name or a regex), never across a special token's string; the most frequent
    adjacent pair is merged until the vocabulary is full or no pair occurs twice; ties go to the pair with
    the smaller bytes, so training is deterministic. `Tokenizer.save` writes it for Hugging Face tokenizers.

    >>> tok = train_bpe(["hello hello world"], vocab_size=260)
    >>> tok.decode(tok.encode("hello")), tok.n_vocab
    ('hello', 260)
    """
    import heapq
    from collections import Counter, defaultdict

    from fastformer import _tokenizer_hf as hf

    regex_str = ENCODINGS[pattern][0] if pattern in ENCODINGS else pattern
    special_tokens = list(special_tokens)
    n_tokens = vocab_size - len(special_tokens)
    if n_tokens < 256:
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room for the 256 byte tokens and {len(special_tokens)} special tokens"
        )
    scanner = SCANNERS.get(regex_str)
    rx = _fallback_regex(regex_str) if scanner is None else None
    cut = (
        re.compile("|".join(map(re.escape, sorted(special_tokens, key=len, reverse=True)))) if special_tokens else None
    )
    # how often each piece occurs
    counts = Counter()
    for item in texts_or_files:
        if isinstance(item, os.PathLike):
            with open(item, encoding="utf-8") as f:
                item = f.read()
        if not isinstance(item, str):
            raise TypeError(f"train_bpe: expected str texts or os.PathLike files, got {type(item).__name__}")
        for seg in cut.split(item) if cut else [item]:
            seg = _replace_surrogates(seg)
            pieces = _core.pretok_split(seg, scanner) if rx is None else rx.findall(seg)
            counts.update(p.encode("utf-8") for p in pieces)
    # words as symbol lists, the pairs in them, and a max-heap of pair counts (ties: smaller bytes first)
    tokens = [bytes([b]) for b in range(256)]
    ids = {t: i for i, t in enumerate(tokens)}
    words, freq = [list(w) for w in counts], list(counts.values())
    pairs, where = defaultdict(int), defaultdict(set)
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pairs[p] += freq[wi]
            where[p].add(wi)
    heap = [(-c, tokens[a], tokens[b], a, b) for (a, b), c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(tokens) < n_tokens and heap:
        negc, _, _, a, b = heapq.heappop(heap)
        c = pairs.get((a, b), 0)
        if c != -negc:
            if c > 0:
                heapq.heappush(heap, (-c, tokens[a], tokens[b], a, b))
            continue
        if c < 2:
            break
        merged = tokens[a] + tokens[b]
        new = ids.get(merged)
        if new is None:
            new = ids[merged] = len(tokens)
            tokens.append(merged)
        merges.append((tokens[a], tokens[b]))
        changed = set()
        for wi in where.pop((a, b), ()):
            w, f = words[wi], freq[wi]
            for p in zip(w, w[1:]):
                pairs[p] -= f
                changed.add(p)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pairs[p] += f
                where[p].add(wi)
                changed.add(p)
        pairs.pop((a, b), None)
        for p in changed:
            if pairs.get(p, 0) > 0 and p != (a, b):
                heapq.heappush(heap, (-pairs[p], tokens[p[0]], tokens[p[1]], p[0], p[1]))
    special = {s: len(tokens) + k for k, s in enumerate(special_tokens)}
    hf_pattern = CL100K_PATTERN_HF if regex_str == CL100K_PATTERN else regex_str
    spec = hf.byte_level_spec(ids, merges, special, hf_pattern, ignore_merges=False)
    return Tokenizer._from_hf(spec, "train_bpe", name="train_bpe")


class StreamDecoder:
    """Turns ids arriving one at a time into text, yielding only complete UTF-8 characters.

    >>> dec = StreamDecoder(tok)  # doctest: +SKIP
    >>> "".join(dec.push(i) for i in ids) + dec.flush() == tok.decode(ids)  # doctest: +SKIP
    True
    """

    def __init__(self, tokenizer, *, errors="replace"):
        self._tok = tokenizer
        self._errors = errors
        self._buf = b""
        self._started = False
        self._strip = tokenizer._lead_strip()  # leading spaces still to drop

    def push(self, id):
        """Add one id; returns the text that is now complete (possibly "")."""
        self._buf += self._tok._text_bytes([id], not self._started)
        self._started = True
        cut = _complete_utf8(self._buf)
        text, self._buf = self._buf[:cut], self._buf[cut:]
        return self._emit(text)

    def flush(self):
        """The text of whatever is left (incomplete characters become U+FFFD with errors="replace")."""
        text, self._buf = self._buf, b""
        return self._emit(text)

    def _emit(self, data):
        text = data.decode("utf-8", errors=self._errors)
        if self._strip and text:
            stripped = Tokenizer._strip_start(text, self._strip)
            self._strip = 0 if stripped else self._strip - len(text)
            text = stripped
        return text


def utf8_split(data, *, errors="replace"):
    """Split bytes into (decoded complete characters, trailing bytes of an unfinished character): the one
    place streams of token bytes become text. Invalid bytes decode per `errors`; only a well-formed but
    incomplete last character is held back."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:  # a lead byte (or ascii): does its sequence run past the end?
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            if need > back:
                try:
                    data[-back:].decode("utf-8")
                except UnicodeDecodeError as e:
                    if e.reason == "unexpected end of data":
                        return data[:-back].decode("utf-8", errors=errors), data[-back:]
            break
    return data.decode("utf-8", errors=errors), b""


def _complete_utf8(buf):
    """Length of the longest prefix of buf that does not end inside a UTF-8 character that may still
    complete."""
    n = len(buf)
    for back in range(1, min(4, n) + 1):
        c = buf[n - back]
        if c < 0x80:
            return n
        if c >= 0xC0:
            need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            return n if back >= need else n - back
    return n


# ---- helpers ----


def _id_limit(count):
    """Ids of a vocabulary of `count` entries must lie below this: some holes are normal (tiktoken's
    encodings have a few), a sparse id space would only cost memory (every structure is indexed by id)."""
    return min(2 * count + 65536, 2**31 - 1)


def _read_tiktoken(path):
    ranks = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                tok, rank = line.split()
                tok, rank = base64.b64decode(tok, validate=True), int(rank)
            except ValueError as e:
                raise FormatError(f"{path}:{lineno}: expected '<base64 token> <rank>', got {line[:60]!r}") from e
            if not 0 <= rank < 2**31 - 1:
                raise FormatError(f"{path}:{lineno}: rank {rank} is out of range: at most {2**31 - 2}")
            if tok in ranks:
                raise FormatError(f"{path}:{lineno}: token {tok!r} appears twice (ranks {ranks[tok]} and {rank})")
            ranks[tok] = rank
    if len(set(ranks.values())) != len(ranks):
        raise FormatError(f"{path}: two tokens share a rank")
    if ranks and min(ranks.values()) < 0:
        raise FormatError(f"{path}: negative rank")
    return ranks


def _concat(tokens):
    parts = [t if t is not None else b"" for t in tokens]
    off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=off[1:])
    return np.frombuffer(b"".join(parts) or b"\0", np.uint8), off


def _new_bpe(tokens, kind):
    """A core Bpe over ids with these merge-space bytes (None for unused ids)."""
    data, off = _concat(tokens)
    return _core.Bpe(data, off, np.ascontiguousarray(kind))


def _set_decode(bpe, decoded):
    data, off = _concat(decoded)
    bpe.set_decode(data, off)


def _replace_surrogates(text):
    """Lone surrogates become U+FFFD (surrogate pairs join), as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _encode_spans(bpe, text, spans):
    """Ids of `text` split into the pieces text[a:b] for (a, b) in spans."""
    if not spans:
        return []
    data = text.encode("utf-8")
    if len(data) == len(text):
        pos = np.arange(len(text) + 1, dtype=np.int64)
    else:  # character offsets -> byte offsets
        pos = np.zeros(len(text) + 1, np.int64)
        np.cumsum([len(c.encode("utf-8")) for c in text], out=pos[1:])
    span = np.asarray(spans, np.int64).reshape(-1, 2)
    return bpe.encode_pieces(np.frombuffer(data, np.uint8), pos[span[:, 0]], pos[span[:, 1]])
