"""The Python side of the C byte-pair engine (`_core.Bpe`): the parts a Tokenizer is made of, building the engine
from per-id bytes, the one special-token splitter (with tiktoken's disallowed-token error), and encoding text
already cut into pieces. The loaders (_tokenizer_hf, _gguf_vocab, tokenizer) build `Parts` with these."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from fastformer import _core
from fastformer._core import BPE_ALLOWED, BPE_DISALLOWED


@dataclass(frozen=True)
class Parts:
    """Everything a Tokenizer is built from; the loaders return one, Tokenizer(parts, name=...) takes it."""

    bpe: _core.Bpe  # vocabulary, merges, split scanner and special tokens, in C
    tokens: list  # per id: the bytes it decodes to (None for an unused id)
    special: dict  # special token string -> id, in the order of the engine's mode argument
    pattern: str | None  # the split regex (None if the pre-tokenizer is not one regex)
    regex: Any = None  # the compiled `regex` fallback when no C scanner implements `pattern`
    pipeline: Any = None  # the tokenizer.json pipeline around the model (_tokenizer_hf.Pipeline), if any
    bos_id: int | None = None
    eos_id: int | None = None
    add_bos: bool = False  # prompts start with bos_id (Tokenizer.encode_prompt)
    add_eos: bool = False  # prompts end with eos_id (Tokenizer.encode_prompt)
    spec: dict | None = None  # the tokenizer.json it was read from, if any
    ranks: dict | None = None  # the tiktoken ranks it was built from, if any


def id_limit(count: int) -> int:
    """Ids of a vocabulary of `count` entries must lie below this: some holes are normal (tiktoken's
    encodings have a few), a sparse id space would only cost memory (every structure is indexed by id)."""
    return min(2 * count + 65536, 2**31 - 1)


def _concat(tokens):
    parts = [t if t is not None else b"" for t in tokens]
    off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=off[1:])
    return np.frombuffer(b"".join(parts) or b"\0", np.uint8), off


def new_bpe(tokens: list, kind: np.ndarray) -> _core.Bpe:
    """A core Bpe over ids with these merge-space bytes (None for unused ids) and kinds (_core.TOKEN_*)."""
    data, off = _concat(tokens)
    return _core.Bpe(data, off, np.ascontiguousarray(kind))


def set_decode(bpe: _core.Bpe, decoded: list) -> None:
    """Give every id the bytes it decodes to (when they differ from its merge-space bytes)."""
    data, off = _concat(decoded)
    bpe.set_decode(data, off)


def replace_surrogates(text: str) -> str:
    """Lone surrogates become U+FFFD (surrogate pairs join), as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encode_spans(bpe: _core.Bpe, text: str, spans: list) -> list[int]:
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


def encode_piece_list(bpe: _core.Bpe, pieces: list) -> list[int]:
    """Ids of a list of pieces (lone surrogates become U+FFFD)."""
    data = [p.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8") for p in pieces]
    ends = np.cumsum([len(d) for d in data], dtype=np.int64)
    starts = ends - np.array([len(d) for d in data], dtype=np.int64)
    return bpe.encode_pieces(np.frombuffer(b"".join(data) or b"\0", np.uint8), starts, ends) if data else []


# ---- special tokens ----


def raise_disallowed(token: str):
    """tiktoken's error for text that spells a disallowed special token."""
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def check_disallowed(text: str, names: list, mode: bytes) -> None:
    """Raise for the leftmost (then longest) special token in `text` whose mode is BPE_DISALLOWED."""
    bad = [s for k, s in enumerate(names) if mode[k] == BPE_DISALLOWED and s in text]
    if bad:
        raise_disallowed(min(bad, key=lambda s: (text.find(s), -len(s))))


def allowed_names(names: list, mode: bytes) -> set:
    """The special token strings whose mode is BPE_ALLOWED."""
    return {s for k, s in enumerate(names) if mode[k] == BPE_ALLOWED}


class AddedToken(NamedTuple):
    """A token cut out of the text before the split pattern runs, with tokenizers' options."""

    id: int
    special: bool = True  # cut out only when allowed (a plain added token is always cut out)
    single_word: bool = False  # only with no letter or digit on either side
    lstrip: bool = False  # takes the whitespace before it
    rstrip: bool = False  # takes the whitespace after it


def alternation(strings) -> re.Pattern | None:
    """A regex matching any of `strings`, longest first (so finditer is leftmost-longest); None for none."""
    strings = sorted({s for s in strings if s}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, strings))) if strings else None


# Unicode White_Space (Rust's char::is_whitespace), for lstrip / rstrip of added tokens
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def split_added(text: str, rx: re.Pattern, tokens: dict, allowed) -> list[tuple[str, int | None]]:
    """`text` as [(segment, None) | (token text, id)]: the one special-token splitter. Matches of `rx` (an
    `alternation` of keys of `tokens`, {str: AddedToken}) are cut out leftmost-longest as tokenizers does: a
    special one only if it is in `allowed`, single_word ones only between non-alphanumerics, lstrip / rstrip
    ones with the whitespace next to them."""
    out, start = [], 0
    for m in rx.finditer(text):
        a, b = m.span()
        t = tokens[m.group()]
        if t.special and m.group() not in allowed:
            continue
        if t.single_word and ((a > 0 and text[a - 1].isalnum()) or (b < len(text) and text[b].isalnum())):
            continue
        if t.lstrip:
            while a > start and text[a - 1] in WHITE_SPACE:
                a -= 1
        if t.rstrip:
            while b < len(text) and text[b] in WHITE_SPACE:
                b += 1
        if a > start:
            out.append((text[start:a], None))
        out.append((text[a:b], t.id))
        start = b
    if start < len(text):
        out.append((text[start:], None))
    return out
