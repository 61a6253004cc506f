"""The split scanners against the regex engines they replace.

- the Unicode category table against tiktoken (Rust `regex`) and Hugging Face tokenizers (Oniguruma), for
  every code point and every class the patterns use;
- each scanner's pieces against the `regex` module with the published pattern, on random strings over an
  alphabet with a member of every class (characters whose class Unicode 17, which `regex` knows, did not
  change) and on fixed edge cases; llama.cpp's lists of regexes (GGUF tokenizer.ggml.pre) likewise, each
  regex cutting the pieces of the one before;
- the Hugging Face patterns (Llama 3, Qwen2, GPT-2) against tokenizers' own Split pre-tokenizer;
- whole tokenizers with a small vocabulary in which most short pieces are one token, against tiktoken
  `Encoding`s with the same vocabulary and pattern (this pins down tiktoken's `$` and possessive rules).
"""

import itertools
import random

import numpy as np
import pytest

from fastformer import _core
from fastformer._patterns import GPT4O_PATTERN_LLAMA_CPP, SCANNER_LISTS, TEKKEN_PATTERN_LLAMA_CPP
from fastformer.tokenizer import (
    CL100K_PATTERN,
    GPT2_PATTERN,
    GPT2_PATTERN_HF,
    LLAMA3_PATTERN,
    O200K_PATTERN,
    QWEN2_PATTERN,
    Tokenizer,
)

regex = pytest.importorskip("regex")

PATTERNS = {
    "gpt2": GPT2_PATTERN,
    "gpt2_hf": GPT2_PATTERN_HF,
    "cl100k": CL100K_PATTERN,
    "o200k": O200K_PATTERN,
    "llama3": LLAMA3_PATTERN,
    "qwen2": QWEN2_PATTERN,
    "gpt4o": GPT4O_PATTERN_LLAMA_CPP,
    "tekken": TEKKEN_PATTERN_LLAMA_CPP,
}
SCANNER = {"gpt2_hf": "gpt2"}

CLASSES = {
    r"\p{L}": [1, 2, 3, 4, 5],
    r"\p{Lu}": [1],
    r"\p{Ll}": [2],
    r"\p{Lt}": [3],
    r"\p{Lm}": [4],
    r"\p{Lo}": [5],
    r"\p{M}": [6],
    r"\p{N}": [7],
    r"\s": [8, 9],
    r"\p{P}": [10],
}

# one or more members of every class the scanners tell apart, with the characters contractions care about
ALPHABET = (
    list("aAzZsStTlLvVeErRdDmM")
    + ["É", "Ω", "Д", "é", "ß", "ω", "д", "ſ", "K", "İ", "ı"]  # Lu, Ll, long s, kelvin, dotted/dotless i
    + ["ǅ", "ʰ", "ー", "中", "あ", "א", "ا", "क"]  # Lt, Lm, Lo
    + ["\u0301", "\u093f", "\u20dd"]  # Mn, Mc, Me
    + ["0", "7", "٣", "½", "Ⅻ", "²"]  # Nd, No, Nl
    + [" ", " ", " ", "\t", "\x0b", "\x0c", "\xa0", "\u3000", "\u2028", "\x85", "\r", "\n", "\n"]
    + ["'", "'", "/", "!", ".", ",", "-", "$", "€", "🎉", "\x00", "\x1c", "\u200b", "\ufeff", "\u0378"]
    # for llama.cpp's lists: ascii symbols, punctuation (Ps Pe Pi Pf Pc Po), the edges of deepseek's letter,
    # punctuation and CJK ranges, more spaces
    + list("+<=>^~|`_()]@#%&*\\{")
    + ["«", "¿", "‘", "“", "‟", "†", "！", "，", "：", "＿", "～", "｟", "、", "。", "〃"]
    + ["Ａ", "ｚ", "µ", "ƻ", "ʔ", "ǀ", "ℵ", "Ω", "𐐀", "ࠀ", "一", "龥", "龦", "가", "\ud7ff", "\U00020000", "١", "9"]
    + ["\u1680", "\u2000", "\u205f", "\r"]
)


def _random_texts(seed, count, max_len=24):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, max_len)))


EDGE = [
    "",
    " ",
    "  ",
    "a\n  ",
    "a \n ",
    "\n\n\t ",
    "a\n\n\t ",
    "x'ſ 'S",
    "'LL'Ve're",
    "don't",
    "DON'T",
    "I'M",
    " 'll",
    "''s",
    "a  b",
    "a \tb",
    "hello  \n\n  world  ",
    "12345",
    " 123",
    "½½½½",
    "١٢٣٤",
    "!!!\n\n",
    " !!!\r\n",
    "ab/\ncd",
    "a//\n/b",
    "é\u0301\u0301",
    "\u0301abc",
    " \u0301a",
    "ǅemal",
    "HTTPServer",
    "camelCaseWord",
    "ABCdef",
    "aBC",
    "Ʊǅʰ",
    "中文ab",
    "\u3000\u3000a",
    "\xa0a",
    "\t\n\t\na",
    "x\r\n",
]


def test_unicode_version():
    assert _core.unicode_version() == "16.0.0"


def _all_chars():
    return "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)


@pytest.fixture(scope="module")
def categories():
    return _core.unicode_categories()


def _expected(categories, codes):
    cps = np.flatnonzero(np.isin(categories, codes))
    return {chr(c) for c in cps if not 0xD800 <= c < 0xE000}


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_categories_match_tiktoken(categories, cls):
    tiktoken = pytest.importorskip("tiktoken")
    # an encoding that keeps only the matches of \p{..}: decoding its ids gives the matching characters
    enc = tiktoken.Encoding(
        "probe", pat_str=cls, mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={}
    )
    got = set(enc.decode_bytes(enc.encode_ordinary(_all_chars())).decode("utf-8"))
    assert got == _expected(categories, CLASSES[cls])


@pytest.mark.peer("tokenizers")
@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_categories_match_hf_tokenizers(categories, cls):
    tokenizers = pytest.importorskip("tokenizers")
    split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(cls + "+"), behavior="removed")
    rest = "".join(p for p, _ in split.pre_tokenize_str(_all_chars()))
    assert set(_all_chars()) - set(rest) == _expected(categories, CLASSES[cls])


def test_alphabet_classes_agree_with_regex_module(categories):
    # the random-string tests below rely on `regex` (Unicode 17) classifying the alphabet as the table does
    for c in set(ALPHABET):
        for cls, codes in CLASSES.items():
            assert bool(regex.fullmatch(cls, c)) == (categories[ord(c)] in codes), (c, cls)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_scanner_matches_regex_module(name):
    pattern = regex.compile(PATTERNS[name])
    kind = SCANNER.get(name, name)
    for text in EDGE + list(_random_texts(hash(name) % 1000, 4000)):
        assert _core.pretok_split(text, kind) == [m.group() for m in pattern.finditer(text)], repr(text)


def _split_in_turn(text, regexes):
    """llama.cpp's split: each regex cuts every piece of the one before; text between matches stays a piece."""
    pieces = [text]
    for rx in regexes:
        out = []
        for p in pieces:
            pos = 0
            for m in rx.finditer(p):
                out += [p[pos : m.start()]] * (m.start() > pos) + [m.group()]
                pos = m.end()
            out += [p[pos:]] * (pos < len(p))
        pieces = out
    return pieces


LIST_EDGE = [
    "",
    "a  🎉",
    "  \n",
    " \n\n x ",
    "abc   ",
    "1234567",
    "١٢٣٤",
    "'s 'S",
    "x+=1;",
    "中文 한국어  日本",
    "\u3000。、",
]


@pytest.mark.parametrize("regexes", list(SCANNER_LISTS), ids=list(SCANNER_LISTS.values()))
def test_list_scanner_matches_regex_module(regexes):
    compiled = [regex.compile(r) for r in regexes]
    kind = SCANNER_LISTS[regexes]
    for text in EDGE + LIST_EDGE + list(_random_texts(len(kind), 4000, max_len=32)):
        assert _core.pretok_split(text, kind) == _split_in_turn(text, compiled), repr(text)


@pytest.mark.peer("tokenizers")
@pytest.mark.parametrize("name", ["llama3", "qwen2", "gpt2_hf", "o200k", "gpt4o", "tekken"])
def test_scanner_matches_hf_split(name):
    tokenizers = pytest.importorskip("tokenizers")
    split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(PATTERNS[name]), behavior="isolated")
    kind = SCANNER.get(name, name)
    for text in EDGE + list(_random_texts(7, 3000)):
        assert _core.pretok_split(text, kind) == [p for p, _ in split.pre_tokenize_str(text)], repr(text)


LONG_RUNS = ["a" * 5000, " " * 5000, "\n" * 5000, "1" * 5000, "!" * 5000, "中" * 3000 + " x", " " * 5000 + "🎉x"]


def test_scanner_on_long_runs():
    for kind in ("gpt2", "cl100k", "o200k", "llama3", "qwen2", "gpt4o", "tekken"):
        for text in LONG_RUNS:
            pieces = _core.pretok_split(text, kind)
            assert "".join(pieces) == text
            assert pieces == [m.group() for m in regex.finditer(PATTERNS[kind], text)]
    for regexes, kind in SCANNER_LISTS.items():
        for text in LONG_RUNS:
            assert _core.pretok_split(text, kind) == _split_in_turn(text, [regex.compile(r) for r in regexes])


# ---- whole tokenizers against tiktoken with a vocabulary that makes pieces visible ----

SMALL_ALPHABET = [
    "a",
    "B",
    "é",
    "ǅ",
    "ʰ",
    "中",
    "\u0301",
    "1",
    "½",
    " ",
    "\t",
    "\n",
    "\r",
    "\u3000",
    "'",
    "s",
    "S",
    "ſ",
    "l",
    "/",
    "!",
    "🎉",
]


@pytest.fixture(scope="module")
def small_ranks():
    # every byte, then every string of 1-3 alphabet characters and their byte prefixes, shortest first
    vocab = {bytes([b]) for b in range(256)}
    for n in (1, 2, 3):
        for chars in itertools.product(SMALL_ALPHABET, repeat=n):
            b = "".join(chars).encode()
            vocab.update(b[:k] for k in range(2, len(b) + 1))
    ordered = [bytes([b]) for b in range(256)] + sorted(
        vocab - {bytes([b]) for b in range(256)}, key=lambda t: (len(t), t)
    )
    return {t: i for i, t in enumerate(ordered)}


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize("name", ["gpt2", "cl100k", "o200k", "llama3", "qwen2"])
def test_tokens_match_tiktoken_with_small_vocab(small_ranks, name):
    tiktoken = pytest.importorskip("tiktoken")
    n = len(small_ranks)
    special = {"<|endoftext|>": n}
    enc = tiktoken.Encoding(name, pat_str=PATTERNS[name], mergeable_ranks=small_ranks, special_tokens=special)
    tok = Tokenizer._from_ranks(small_ranks, special, name=name, pattern=PATTERNS[name])
    rng = random.Random(11)
    texts = EDGE + ["".join(rng.choice(SMALL_ALPHABET) for _ in range(rng.randrange(1, 30))) for _ in range(3000)]
    for text in texts:
        assert tok.encode(text) == enc.encode(text), repr(text)
    assert tok.encode_batch(texts) == enc.encode_batch(texts)


# ---- the core wrapper's argument checks ----


def test_bpe_wrapper_checks_arguments():
    data = np.frombuffer(bytes(range(256)), np.uint8)
    off = np.arange(257, dtype=np.int64)
    kind = np.ones(256, np.uint8)
    with pytest.raises(ValueError, match="257 offsets"):
        _core.Bpe(data, off[:-1], kind)
    with pytest.raises(ValueError, match="within 10 bytes"):
        _core.Bpe(data[:10], off, kind)
    bpe = _core.Bpe(data, off, kind)
    with pytest.raises(ValueError, match="left has 2 ids, right 1"):
        bpe.merges_list(np.zeros(2, np.int32), np.zeros(1, np.int32))
    with pytest.raises(ValueError, match="ids must lie in"):
        bpe.merges_list(np.array([300], np.int32), np.array([0], np.int32))
    assert bpe.merges_list(np.array([0], np.int32), np.array([1], np.int32)) == 0  # b"\x00\x01" is no token
    with pytest.raises(ValueError, match="shape \\(3,\\), expected \\(256,\\)"):
        bpe.merges_ranked(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="256 valid ids"):
        bpe.config("cl100k", byte_id=np.arange(255, dtype=np.int32))
    with pytest.raises(ValueError, match="need byte_id"):
        bpe.config("cl100k")
    with pytest.raises(KeyError):
        bpe.config("no-such-scanner", byte_id=np.arange(256, dtype=np.int32))
    bpe.config("cl100k", byte_id=np.arange(256, dtype=np.int32))
    bpe.specials(np.zeros(0, np.int32))
    assert bpe.encode("ab", b"") == [97, 98]
    with pytest.raises(ValueError, match="mode must have 0 entries"):
        bpe.encode("ab", b"\x01")
    with pytest.raises(ValueError, match="position 1 is out of range"):
        bpe.decode([1, 256])
    with pytest.raises(ValueError, match="piece 0"):
        bpe.encode_pieces(data, np.array([5], np.int64), np.array([300], np.int64))
