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

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from fastformer import _bpe_train, _core, _gguf_vocab
from fastformer import _tokenizer_hf as hf
from fastformer._bpe_engine import (
    AddedToken,
    Parts,
    alternation,
    check_disallowed,
    encode_spans,
    id_limit,
    new_bpe,
    raise_disallowed,
    replace_surrogates,
    split_added,
)
from fastformer._core import BPE_ALLOWED, BPE_DISALLOWED, TOKEN_MERGEABLE, TOKEN_SPECIAL, TOKEN_UNUSED
from fastformer._patterns import (  # noqa: F401  (the patterns stay importable from here, as `pattern=` values)
    CL100K_PATTERN,
    CL100K_PATTERN_HF,
    ENCODINGS,
    EOT,
    GPT2_PATTERN,
    GPT2_PATTERN_HF,
    LLAMA3_PATTERN,
    O200K_PATTERN,
    QWEN2_PATTERN,
    SCANNERS,
    compile_regex,
    hf_pattern,
)
from fastformer.errors import FormatError

__all__ = ["StreamDecoder", "Tokenizer", "train_bpe", "utf8_split"]


class Tokenizer:
    """A byte-pair encoding tokenizer; build one with `from_tiktoken`, `from_file` or `from_pretrained`.

    Encoding is thread-safe and releases the GIL. Special tokens follow tiktoken: by default text that spells
    a special token raises ValueError; `allowed_special` turns it into the token, `disallowed_special=()`
    encodes it as plain text.

    >>> tok.encode("<|endoftext|>", allowed_special="all")  # doctest: +SKIP
    [100257]
    """

    name: str
    pattern: str | None  # the split regex (None if the pre-tokenizer is not one regex)
    bos_id: int | None
    eos_id: int | None
    add_bos: bool  # encode_prompt puts bos_id first
    add_eos: bool  # encode_prompt puts eos_id last

    def __init__(self, parts: Parts, *, name: str) -> None:
        # private: use the from_* constructors
        self._parts = parts  # what it was built from (gguf_metadata writes it out)
        self._bpe = parts.bpe
        self._tokens = parts.tokens
        self._special = dict(parts.special)
        self._special_names = list(parts.special)
        self._special_index = {s: k for k, s in enumerate(self._special_names)}
        self._special_added = {s: AddedToken(i) for s, i in self._special.items()}  # for split_added
        self._mode_default = bytes([BPE_DISALLOWED]) * len(self._special_names)
        self._regex = parts.regex
        self._pipeline = parts.pipeline
        self._spec = parts.spec  # the tokenizer.json it was read from, if any
        self._ranks = parts.ranks  # the tiktoken ranks it was built from, if any
        self.name = name
        self.pattern = parts.pattern
        self.bos_id = parts.bos_id
        self.eos_id = parts.eos_id
        self.add_bos = bool(parts.add_bos) and parts.bos_id is not None
        self.add_eos = bool(parts.add_eos) and parts.eos_id is not None

    def __repr__(self) -> str:
        return f"<Tokenizer {self.name!r} n_vocab={self.n_vocab}>"

    # ---- construction ----

    @classmethod
    def from_tiktoken(
        cls, path: str | os.PathLike[str], *, pattern: str, special_tokens: Mapping[str, int] | None = None
    ) -> Tokenizer:
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
    def from_file(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a Hugging Face tokenizer.json with a BPE model (byte-level, as GPT-2 / Llama 3 / Qwen2, or
        SentencePiece-style with byte fallback, as Llama 2 / Mistral). A tokenizer_config.json next to it
        supplies bos_id / eos_id. A tiktoken rank file of one of tiktoken's encodings (known by its size) loads
        as `from_tiktoken` with that encoding.

        >>> tok = Tokenizer.from_file("tokenizer.json")  # doctest: +SKIP
        """
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
            parts = hf.parse(spec, path, conf)
        return cls(parts, name=os.path.basename(os.path.dirname(os.path.abspath(path))) or path)

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
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> Tokenizer:
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
    def _from_scores(cls, pieces, scores, types, *, add_space_prefix=True, name="sentencepiece"):
        """A SentencePiece-style vocabulary: pieces with scores and GGUF token types (_gguf_vocab.TYPE_*)."""
        return cls(_gguf_vocab.sentencepiece_parts(pieces, scores, types, add_space_prefix=add_space_prefix), name=name)

    @classmethod
    def _from_ranks(cls, ranks, special, *, name, pattern):
        """A byte-level tokenizer whose merge priority is the rank, as in tiktoken (rank = id)."""
        byte_id = [ranks.get(bytes([b]), -1) for b in range(256)]
        if min(byte_id) < 0:
            missing = [b for b in range(256) if byte_id[b] < 0]
            raise FormatError(f"{name}: a byte-level vocabulary needs all 256 single bytes; missing {missing[:8]}")
        limit = id_limit(len(ranks) + len(special))
        for s, i in special.items():
            if not isinstance(s, str) or isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < limit:
                raise ValueError(f"special token {s!r} has id {i!r}; ids must be ints in [0, {limit})")
        if ranks and max(ranks.values()) >= limit:
            raise FormatError(
                f"{name}: ranks go up to {max(ranks.values())} for {len(ranks)} tokens; at most {limit - 1} is accepted"
            )
        n = max(max(ranks.values(), default=-1), max(special.values(), default=-1)) + 1
        tokens = [None] * n
        kind = np.full(n, TOKEN_UNUSED, np.uint8)
        for tok, rank in ranks.items():
            tokens[rank] = tok
            kind[rank] = TOKEN_MERGEABLE
        for s, i in special.items():
            if kind[i] != TOKEN_UNUSED:
                raise ValueError(f"special token {s!r} has id {i}, which is already a mergeable token")
            tokens[i] = s.encode("utf-8")
            kind[i] = TOKEN_SPECIAL
        bpe = new_bpe(tokens, kind)
        rank = np.where(kind == TOKEN_MERGEABLE, np.arange(n, dtype=np.int32), -1).astype(np.int32)
        bpe.merges_ranked(rank)
        scanner = SCANNERS.get(pattern)
        regex = compile_regex(pattern, slow_split=True, stacklevel=3) if scanner is None else None
        bpe.config(scanner or "none", byte_id=byte_id, whole_first=True)
        bpe.specials(np.array(list(special.values()), dtype=np.int32))
        parts = Parts(
            bpe,
            tokens,
            special,
            pattern,
            regex=regex,
            bos_id=special.get("<|startoftext|>"),
            eos_id=special.get(EOT),
            ranks=ranks,
        )
        return cls(parts, name=name)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a tokenizer.json that Hugging Face `tokenizers` loads and that encodes identically.

        A tiktoken-built tokenizer becomes a byte-level BPE with merges recovered from the ranks and
        `ignore_merges` (as Llama 3's file); one loaded from tokenizer.json is written back as it was read.

        >>> tok.save("tokenizer.json")  # doctest: +SKIP
        """
        spec = self._spec
        if spec is None:
            if self._regex is not None and self.pattern not in SCANNERS:
                warnings.warn("the split pattern is written as is; tokenizers runs it with Oniguruma", stacklevel=2)
            pattern = hf_pattern(self.pattern)
            if re.search(r"\{\d+(,\d*)?\}\+", pattern):
                warnings.warn(
                    "tokenizers reads the bounded repeat x{m,n}+ in the split pattern as (x{m,n})+",
                    stacklevel=2,
                )
            ranks = self._ranks
            spec = hf.byte_level_spec(ranks, hf.merges_from_ranks(ranks), self._special, pattern, ignore_merges=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False)

    # ---- GGUF vocabularies ----

    def gguf_metadata(self) -> dict[str, Any]:
        """The tokenizer.ggml.* keys of a GGUF file for this tokenizer: a "gpt2" (byte-level BPE with merges)
        or a "llama" (SentencePiece-style, scores from merge order) vocabulary, bos / eos ids and whether
        prompts start with bos; `from_gguf_metadata` reads them back, splitting as llama.cpp does for the name
        written: cl100k_base's pattern becomes "llama-bpe" (differs only on whitespace at the very end of a
        text), o200k_base's "gpt-4o" (llama.cpp's reading differs on combining marks and non-ASCII case).

        >>> tok.gguf_metadata()["tokenizer.ggml.model"]  # doctest: +SKIP
        'gpt2'
        """
        now = dataclasses.replace(
            self._parts, bos_id=self.bos_id, eos_id=self.eos_id, add_bos=self.add_bos, add_eos=self.add_eos
        )
        return _gguf_vocab.gguf_metadata(now)

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any], *, source: str = "GGUF metadata") -> Tokenizer:
        """A Tokenizer from a GGUF file's tokenizer.ggml.* metadata ("gpt2" or "llama" model) that encodes as
        llama.cpp does: its split rules for each tokenizer.ggml.pre name, user-defined tokens always whole,
        control tokens as tokens only when allowed, add_bos_token / add_eos_token in `encode_prompt`. Errors
        name `source` (the file).

        >>> Tokenizer.from_gguf_metadata(gguf_file.metadata, source=gguf_file.path)  # doctest: +SKIP
        """
        with hf.malformed(source):
            return cls(_gguf_vocab.from_gguf_metadata(metadata, source), name="gguf")

    # ---- encoding ----

    @property
    def n_vocab(self) -> int:
        """Number of ids, including special tokens (one more than the largest id)."""
        return len(self._tokens)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token strings and their ids."""
        return dict(self._special)

    @property
    def special_tokens_set(self) -> set[str]:
        return set(self._special)

    def _modes(self, allowed_special, disallowed_special):
        """Per special token its _core.BPE_* mode (the C engine's mode argument); plus disallowed strings that
        are not special tokens."""
        if not allowed_special and disallowed_special == "all":
            return self._mode_default, ()
        allowed = set(self._special) if allowed_special == "all" else set(allowed_special)
        disallowed = set(self._special) - allowed if disallowed_special == "all" else set(disallowed_special)
        mode = bytearray(len(self._special_names))  # BPE_PLAIN
        for s in allowed:
            if s in self._special_index:
                mode[self._special_index[s]] = BPE_ALLOWED
        extra = []
        for s in disallowed:
            if s in self._special_index:
                mode[self._special_index[s]] = BPE_DISALLOWED
            else:
                extra.append(s)
        return bytes(mode), extra

    def _check_extra(self, text, extra):
        """tiktoken also refuses disallowed strings that are not special tokens."""
        found = [(text.find(s), s) for s in extra if s and s in text]
        if found:
            raise_disallowed(min(found)[1])

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] = frozenset(),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
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
            return self._pipeline.encode(self._bpe, text, mode, self._special_names)
        if self._regex is not None:
            return self._encode_regex(text, mode)
        r = self._bpe.encode(text, mode)
        if type(r) is int:
            raise_disallowed(self._special_names[r])
        return r

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text`, with special token strings encoded as plain text.

        >>> tok.encode_ordinary("<|endoftext|>")  # doctest: +SKIP
        [27, 91, 8862, 728, 428, 91, 29]
        """
        return self.encode(text, disallowed_special=())

    def encode_prompt(self, text: str) -> list[int]:
        """Ids of a prompt: special tokens in `text` are tokens, bos_id goes first when the tokenizer's
        configuration asks for it (add_bos) and the text does not already start with it, and eos_id last
        likewise (add_eos, as some GGUF files ask): the one place a BOS or EOS is added.

        >>> tok.encode_prompt("hello")  # doctest: +SKIP
        [128000, 15339]
        """
        ids = self.encode(text, allowed_special="all")
        if self.add_bos and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        if self.add_eos and (not ids or ids[-1] != self.eos_id):
            ids.append(self.eos_id)
        return ids

    def encode_batch(
        self,
        texts: Iterable[str],
        *,
        num_threads: int | None = None,
        allowed_special: Literal["all"] | Collection[str] = frozenset(),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[list[int]]:
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
            return self._pipeline.run(self._bpe, plans, num_threads)
        if self._regex is not None:
            return [self._encode_regex(t, mode) for t in texts]
        out = self._bpe.encode_batch(texts, mode, num_threads)
        for r in out:
            if type(r) is int:
                raise_disallowed(self._special_names[r])
        return out

    def encode_ordinary_batch(self, texts: Iterable[str], *, num_threads: int | None = None) -> list[list[int]]:
        """`encode_ordinary` of every text, in parallel."""
        return self.encode_batch(texts, num_threads=num_threads, disallowed_special=())

    def _encode_regex(self, text, mode):
        """Split with the fallback regex (only its matches are encoded, as in tiktoken), between specials."""
        text = replace_surrogates(text)
        check_disallowed(text, self._special_names, mode)
        rx = alternation(s for k, s in enumerate(self._special_names) if mode[k] == BPE_ALLOWED)
        parts = split_added(text, rx, self._special_added, self._special) if rx else [(text, None)]
        ids = []
        for seg, special_id in parts:
            if special_id is not None:
                ids.append(special_id)
            elif seg:
                ids += encode_spans(self._bpe, seg, [m.span() for m in self._regex.finditer(seg)])
        return ids

    # ---- decoding ----

    def decode_bytes(self, ids: Sequence[int] | np.ndarray) -> bytes:
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

    def decode(self, ids: Sequence[int] | np.ndarray, *, errors: str = "replace") -> str:
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

    def token_bytes(self, id: int) -> bytes:
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


def train_bpe(
    texts_or_files: Iterable[str | os.PathLike[str]],
    *,
    vocab_size: int,
    pattern: str = "cl100k_base",
    special_tokens: Iterable[str] = (),
) -> Tokenizer:
    """Train a byte-level BPE tokenizer of `vocab_size` ids (256 bytes, merges, then `special_tokens`).

    Items of `texts_or_files` are texts (str) or paths (os.PathLike) of UTF-8 files. Text is split with
    `pattern` (an encoding name or a regex), never across a special token's string; the most frequent
    adjacent pair is merged until the vocabulary is full or no pair occurs twice; ties go to the pair with
    the smaller bytes, so training is deterministic. `Tokenizer.save` writes it for Hugging Face tokenizers.

    >>> tok = train_bpe(["hello hello world"], vocab_size=260)
    >>> tok.decode(tok.encode("hello")), tok.n_vocab
    ('hello', 260)
    """
    spec = _bpe_train.train_spec(texts_or_files, vocab_size=vocab_size, pattern=pattern, special_tokens=special_tokens)
    return Tokenizer(hf.parse(spec, "train_bpe"), name="train_bpe")


class StreamDecoder:
    """Turns ids arriving one at a time into text, yielding only complete UTF-8 characters.

    >>> dec = StreamDecoder(tok)  # doctest: +SKIP
    >>> "".join(dec.push(i) for i in ids) + dec.flush() == tok.decode(ids)  # doctest: +SKIP
    True
    """

    def __init__(self, tokenizer: Tokenizer, *, errors: str = "replace") -> None:
        self._tok = tokenizer
        self._errors = errors
        self._buf = b""  # bytes of a character not yet complete
        self._started = False
        self._strip = tokenizer._lead_strip()  # leading spaces still to drop

    def push(self, id: int) -> str:
        """Add one id; returns the text that is now complete (possibly "")."""
        self._buf += self._tok._text_bytes([id], not self._started)
        self._started = True
        text, self._buf = utf8_split(self._buf, errors=self._errors)
        return self._emit(text)

    def flush(self) -> str:
        """The text of whatever is left (incomplete characters become U+FFFD with errors="replace")."""
        text, self._buf = self._buf.decode("utf-8", errors=self._errors), b""
        return self._emit(text)

    def _emit(self, text):
        if self._strip and text:
            stripped = Tokenizer._strip_start(text, self._strip)
            self._strip = 0 if stripped else self._strip - len(text)
            text = stripped
        return text


def utf8_split(data: bytes, *, errors: str = "replace") -> tuple[str, bytes]:
    """Split bytes into (decoded complete characters, trailing bytes of an unfinished character): the one
    place streams of token bytes become text. Invalid bytes decode per `errors`; only a well-formed but
    incomplete last character is held back.

    >>> utf8_split(b"caf\\xc3")
    ('caf', b'\\xc3')
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
                        return data[:-back].decode("utf-8", errors=errors), data[-back:]
            break
    return data.decode("utf-8", errors=errors), b""


# ---- tiktoken files ----


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
