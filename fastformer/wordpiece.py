"""WordPiece, BERT's tokenizer: token ids equal to Hugging Face `tokenizers` for tokenizer.json files with a
WordPiece model, BertNormalizer, BertPreTokenizer and a [CLS] ... [SEP] template, and for BERT's vocab.txt.

The split and the word-piece search run in C (csrc/ff_wordpiece.c); lower-casing and the canonical
decomposition before accents are stripped use Python's own Unicode tables (str.lower, unicodedata), as the
normalizer applies them before the split.

>>> tok = WordPieceTokenizer.from_file("tokenizer.json")  # doctest: +SKIP
>>> tok.encode("Hello, world!")  # doctest: +SKIP
[2, 2017, 16, 2088, 5, 3]
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from fastformer import _core
from fastformer.errors import FormatError, UnsupportedError, read_json

__all__ = ["WordPieceTokenizer"]


class WordPieceTokenizer:
    """A WordPiece tokenizer; build one with `from_file` (tokenizer.json), `from_vocab` (vocab.txt) or `find`.

    `encode` adds the template's special tokens ([CLS] ... [SEP]) unless add_special_tokens=False, and
    truncates the text's tokens so the whole fits in max_length. Text that spells an added token ([MASK], ...)
    encodes to that token, as in Hugging Face tokenizers.
    """

    eos_id = None  # an encoder ends nothing
    add_bos = add_eos = False

    def __init__(
        self,
        vocab: Sequence[str],
        *,
        unk_token: str = "[UNK]",
        prefix: str = "##",
        max_chars: int = 100,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        clean_text: bool = True,
        chinese_chars: bool = True,
        before: Sequence[int] = (),
        after: Sequence[int] = (),
        added: dict[str, int] | None = None,
        name: str = "wordpiece",
    ):
        """vocab: token of each id; before / after: the ids the template puts around the text; added: tokens
        matched in the raw text before anything else (their content -> id)."""
        if unk_token not in vocab:
            raise FormatError(f"{name}: the unknown token {unk_token!r} is not in the vocabulary")
        self.name = name
        self._tokens = list(vocab)
        self._ids = {t: i for i, t in reversed(list(enumerate(self._tokens)))}
        self._prefix = prefix
        self._lowercase = bool(lowercase)
        self._strip = self._lowercase if strip_accents is None else bool(strip_accents)
        flags = (_core.WP_CLEAN if clean_text else 0) | (_core.WP_CJK if chinese_chars else 0)
        flags |= _core.WP_STRIP_MN if self._strip else 0
        self._wp = _core.WordPiece([t.encode("utf-8") for t in self._tokens], self._ids[unk_token],
                                   prefix.encode("utf-8"), max_chars, flags)  # fmt: skip
        self.before, self.after = list(before), list(after)
        self.added = dict(added or {})
        for t, i in self.added.items():
            if not 0 <= i < len(self._tokens):
                raise FormatError(f"{name}: added token {t!r} has id {i} outside the vocabulary")
        # added tokens are found leftmost, longest first
        alts = sorted(self.added, key=len, reverse=True)
        self._added_re = re.compile("|".join(map(re.escape, alts))) if alts else None
        self.bos_id = self.before[0] if self.before else None

    def __repr__(self) -> str:
        return f"<WordPieceTokenizer {self.name!r} n_vocab={self.n_vocab}>"

    # ---- construction ----

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordPieceTokenizer:
        """A tokenizer.json with a WordPiece model (and tokenizer_config.json beside it, if any)."""
        path = os.fspath(path)
        spec = read_json(path)
        if not isinstance(spec, dict):
            raise FormatError(f"{path}: must hold a JSON object")
        model = spec.get("model")
        if not isinstance(model, dict) or model.get("type") != "WordPiece":
            kind = model.get("type") if isinstance(model, dict) else model
            raise UnsupportedError(f"{path}: model type {kind!r} is not WordPiece")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict) or not vocab:
            raise FormatError(f"{path}: model.vocab must be a non-empty object of token -> id")
        added = spec.get("added_tokens") or []
        if not isinstance(added, list) or not all(isinstance(a, dict) for a in added):
            raise FormatError(f"{path}: added_tokens must be a list of objects")
        tokens = _vocab_list(vocab, added, path)
        norm = _normalizer(spec.get("normalizer"), path)
        pre = spec.get("pre_tokenizer")
        if not isinstance(pre, dict) or pre.get("type") != "BertPreTokenizer":
            raise UnsupportedError(f"{path}: pre_tokenizer {pre!r} is not supported (BertPreTokenizer is)")
        before, after = _template(spec.get("post_processor"), tokens, path)
        max_chars = model.get("max_input_chars_per_word", 100)
        prefix = model.get("continuing_subword_prefix", "##")
        if (
            isinstance(max_chars, bool)
            or not isinstance(max_chars, int)
            or max_chars < 1
            or not isinstance(prefix, str)
        ):
            raise FormatError(f"{path}: bad max_input_chars_per_word {max_chars!r} or prefix {prefix!r}")
        return cls(
            tokens,
            unk_token=model.get("unk_token", "[UNK]"),
            prefix=prefix,
            max_chars=max_chars,
            before=before,
            after=after,
            added={a["content"]: a["id"] for a in added if isinstance(a.get("content"), str) and a["content"]},
            name=os.path.basename(os.path.dirname(os.path.abspath(path))) or path,
            **norm,
        )

    @classmethod
    def from_vocab(cls, path: str | os.PathLike[str], *, lowercase: bool | None = None) -> WordPieceTokenizer:
        """BERT's vocab.txt (one token per line, the id is the line number) with BERT's normalizer and its
        [CLS] / [SEP] template; lowercase from tokenizer_config.json's do_lower_case beside it, else True."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                tokens = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise FormatError(f"{path}: not UTF-8 ({e})") from None
        if tokens and tokens[-1] == "":
            tokens.pop()
        tokens = [t.rstrip("\r") for t in tokens]
        conf = read_json(os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer_config.json")) or {}
        if lowercase is None:
            lowercase = bool(conf.get("do_lower_case", True)) if isinstance(conf, dict) else True
        ids = {t: i for i, t in reversed(list(enumerate(tokens)))}
        for t in ("[CLS]", "[SEP]", "[UNK]"):
            if t not in ids:
                raise FormatError(f"{path}: {t} is not in the vocabulary")
        specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
        return cls(tokens, lowercase=lowercase, before=[ids["[CLS]"]], after=[ids["[SEP]"]],
                   added={t: ids[t] for t in specials if t in ids}, name=os.path.basename(path))  # fmt: skip

    @classmethod
    def from_gguf_metadata(cls, meta, *, source: str = "GGUF metadata") -> WordPieceTokenizer:
        """The vocabulary llama.cpp's converter writes for tokenizer.ggml.model "bert": word-initial pieces
        spelled with a leading U+2581, continuation pieces without "##", control tokens as they are. Lower-cased
        (and accents stripped) as tokenizer.ggml.normalizer.lowercase says, by default as uncased BERT."""
        tokens, types = meta.get("tokenizer.ggml.tokens"), meta.get("tokenizer.ggml.token_type")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or not tokens:
            raise FormatError(f"{source}: tokenizer.ggml.tokens must be a non-empty list of strings")
        types = list(types) if types is not None else [1] * len(tokens)
        if len(types) != len(tokens):
            raise FormatError(f"{source}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens")
        control = 3
        vocab = [t if k == control else t[1:] if t.startswith("\u2581") else "##" + t for t, k in zip(tokens, types)]

        def token_id(key, default):
            v = meta.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < len(vocab):
                raise FormatError(f"{source}: {key} must be a token id in [0, {len(vocab)}), got {v!r}")
            return int(v)

        unk = token_id("tokenizer.ggml.unknown_token_id", vocab.index("[UNK]") if "[UNK]" in vocab else -1)
        cls_id = token_id("tokenizer.ggml.cls_token_id", meta.get("tokenizer.ggml.bos_token_id"))
        sep_id = token_id("tokenizer.ggml.seperator_token_id", meta.get("tokenizer.ggml.eos_token_id"))
        added = {t: i for i, (t, k) in enumerate(zip(vocab, types)) if k == control}
        lower = bool(meta.get("tokenizer.ggml.normalizer.lowercase", True))
        return cls(vocab, unk_token=vocab[unk], before=[cls_id], after=[sep_id], added=added, lowercase=lower,
                   name=os.path.basename(source))  # fmt: skip

    @classmethod
    def find(cls, directory: str | os.PathLike[str]) -> WordPieceTokenizer | None:
        """The tokenizer of a model directory: tokenizer.json, else vocab.txt, else None."""
        directory = os.fspath(directory)
        if os.path.isfile(os.path.join(directory, "tokenizer.json")):
            return cls.from_file(os.path.join(directory, "tokenizer.json"))
        if os.path.isfile(os.path.join(directory, "vocab.txt")):
            return cls.from_vocab(os.path.join(directory, "vocab.txt"))
        return None

    # ---- encoding ----

    @property
    def n_vocab(self) -> int:
        return len(self._tokens)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self.added)

    def _normalize(self, text: str) -> bytes:
        if not text.isascii() and self._strip:
            text = unicodedata.normalize("NFD", text)
        if self._lowercase:
            text = text.replace("\u03a3", "\u03c3").lower()  # character by character: no final sigma
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate is a code point clean_text drops

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of text without the template's special tokens."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        at = 0
        for m in self._added_re.finditer(text) if self._added_re is not None else ():
            ids += self._wp.encode(self._normalize(text[at : m.start()])).tolist()
            ids.append(self.added[m.group()])
            at = m.end()
        return ids + self._wp.encode(self._normalize(text[at:])).tolist()

    def encode(self, text: str, *, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Token ids of text: [CLS] + the text's tokens + [SEP] (as the template says), truncated so the whole is
        at most max_length ids (the text's last tokens are dropped; the special tokens stay)."""
        ids = self.encode_ordinary(text)
        extra = len(self.before) + len(self.after) if add_special_tokens else 0
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < extra + 1:
                raise ValueError(f"max_length must be an int >= {extra + 1}, got {max_length!r}")
            ids = ids[: max_length - extra]
        return self.before + ids + self.after if add_special_tokens else ids

    def encode_batch(self, texts: Iterable[str], **options) -> list[list[int]]:
        """`encode` of each text."""
        return [self.encode(t, **options) for t in texts]

    def token_bytes(self, id: int) -> bytes:
        return self._tokens[id].encode("utf-8")

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ids: tokens joined by spaces, continuation pieces joined to the word before."""
        out = []
        for i in ids:
            t = self._tokens[int(i)]
            if out and t.startswith(self._prefix):
                out[-1] += t[len(self._prefix) :]
            else:
                out.append(t)
        return " ".join(out)


def _vocab_list(vocab, added, where):
    """The token of every id 0..n-1 from model.vocab and added_tokens; FormatError for gaps or bad ids."""
    pairs = list(vocab.items()) + [(a.get("content"), a.get("id")) for a in added]
    n = 0
    for t, i in pairs:
        if not isinstance(t, str) or isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**31 - 1:
            raise FormatError(f"{where}: vocabulary entry {t!r} -> {i!r} is not a string and an id")
        n = max(n, i + 1)
    tokens = [None] * n
    for t, i in pairs:
        if tokens[i] is None:
            tokens[i] = t
    if None in tokens:
        raise FormatError(f"{where}: the vocabulary has no token for id {tokens.index(None)}")
    return tokens


def _normalizer(node, where):
    """WordPieceTokenizer's normalizer options from a BertNormalizer / Lowercase / Sequence node (or none)."""
    opts = dict(lowercase=False, strip_accents=False, clean_text=False, chinese_chars=False)
    nodes = [] if node is None else node.get("normalizers", []) if node.get("type") == "Sequence" else [node]
    for n in nodes:
        kind = n.get("type") if isinstance(n, dict) else n
        if kind == "BertNormalizer":
            opts.update(
                lowercase=bool(n.get("lowercase", True)),
                clean_text=bool(n.get("clean_text", True)),
                chinese_chars=bool(n.get("handle_chinese_chars", True)),
            )
            strip = n.get("strip_accents")
            opts["strip_accents"] = opts["lowercase"] if strip is None else bool(strip)
        elif kind == "Lowercase":
            opts["lowercase"] = True
        else:
            raise UnsupportedError(f"{where}: normalizer {kind!r} is not supported (BertNormalizer, Lowercase are)")
    return opts


def _template(node, tokens, where):
    """The ids a single sequence's template puts before and after its tokens."""
    if node is None:
        return [], []
    kind = node.get("type")
    ids = {t: i for i, t in reversed(list(enumerate(tokens)))}
    if kind == "BertProcessing":
        return [node["cls"][1]], [node["sep"][1]]
    if kind != "TemplateProcessing":
        raise UnsupportedError(f"{where}: post_processor {kind!r} is not supported (TemplateProcessing is)")
    before, after, seen = [], [], False
    specials = node.get("special_tokens") or {}
    for piece in node.get("single") or []:
        if "Sequence" in piece:
            seen = True
            continue
        name = piece.get("SpecialToken", {}).get("id")
        got = (specials.get(name) or {}).get("ids") or ([ids[name]] if name in ids else None)
        if got is None:
            raise FormatError(f"{where}: template token {name!r} is not defined")
        (after if seen else before).extend(got)
    return before, after
