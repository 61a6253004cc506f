"""Split patterns: the published regexes, the C scanner that implements each, tiktoken's encodings, llama.cpp's
names for them (GGUF tokenizer.ggml.pre), and the `regex` package fallback for any other pattern."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from fastformer.errors import FormatError, UnsupportedError

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

EOT = "<|endoftext|>"
_FIM = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>")
# tiktoken's encodings: split pattern and standard special tokens
ENCODINGS = {
    "gpt2": (GPT2_PATTERN, {EOT: 50256}),
    "r50k_base": (GPT2_PATTERN, {EOT: 50256}),
    "p50k_base": (GPT2_PATTERN, {EOT: 50256}),
    "p50k_edit": (GPT2_PATTERN, {EOT: 50256, _FIM[0]: 50281, _FIM[1]: 50282, _FIM[2]: 50283}),
    "cl100k_base": (
        CL100K_PATTERN,
        {EOT: 100257, _FIM[0]: 100258, _FIM[1]: 100259, _FIM[2]: 100260, "<|endofprompt|>": 100276},
    ),
    "o200k_base": (O200K_PATTERN, {EOT: 199999, "<|endofprompt|>": 200018}),
}

# ---- llama.cpp's split rules, by tokenizer.ggml.pre ----
# llama.cpp splits text with a list of regexes applied in turn: each one cuts every piece the one before made,
# and text between its matches stays a piece (tokenizers' Split, Isolated). Its engine gives \p{L} / \p{N} /
# \p{P} their Unicode meaning but reads every other class by ASCII (its gpt-4o and tekken regexes spell o200k's
# case classes with [^a-z] / [^A-Z] over letters), so these are llama.cpp's regexes, not the tokenizer.json ones.

# GPT-2's split (llama.cpp's own gpt2 scanner leaves lone whitespace as a piece: the trailing \s+ alternative)
_GPT2 = GPT2_PATTERN_HF
_CONTRACTIONS = r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"""
_UPPER, _LOWER = r"((?=[\p{L}])([^a-z]))", r"((?=[\p{L}])([^A-Z]))"
GPT4O_PATTERN_LLAMA_CPP = (
    rf"""[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*"""
    rf"""{_CONTRACTIONS}?|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
TEKKEN_PATTERN_LLAMA_CPP = (
    rf"""[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*|\p{{N}}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# deepseek's tokenizer.json lists its letters and punctuation by hand
_DEEPSEEK_LETTERS = (
    "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴ"
    "ᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ"
    "𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃"
)
# llama.cpp reads non-ASCII whitespace as "\v" before running a regex, so no listed range takes it (U+3000 and
# U+2028 lie inside the ranges below)
_CJK = r"(?:(?!\s)[一-龥ࠀ-一가-퟿])+"
_DEFAULT = (r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", "[0-9][0-9][0-9]")
_DEEPSEEK_LLM = (
    r"[\r\n]", rf"\s?[{_DEEPSEEK_LETTERS}]+", r"\s?(?:(?!\s)[!-/:-~！-／：-～‘-‟　-。])+", r"\s+$", _CJK, r"\p{N}+"
)  # fmt: skip
_DEEPSEEK_CODER = (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", _CJK, r"\p{N}")
_FALCON = (r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, "[0-9][0-9][0-9]")
_DIGITS_GPT2 = (r"\p{N}", _GPT2)


# the C scanner (a key of _core.PRETOK_KINDS) of each pattern
SCANNERS = {
    GPT2_PATTERN: "gpt2",
    GPT2_PATTERN_HF: "gpt2",
    CL100K_PATTERN: "cl100k",
    CL100K_PATTERN_HF: "cl100k",
    LLAMA3_PATTERN: "llama3",
    QWEN2_PATTERN: "qwen2",
    O200K_PATTERN: "o200k",
    GPT4O_PATTERN_LLAMA_CPP: "gpt4o",
    TEKKEN_PATTERN_LLAMA_CPP: "tekken",
}
# the scanners for patterns in tokenizer.json files, as Oniguruma reads them
SCANNERS_HF = {p: k for p, k in SCANNERS.items() if p != CL100K_PATTERN}

# the C scanner of each list of llama.cpp's regexes applied in turn (the others are one regex of SCANNERS)
SCANNER_LISTS = {
    _DEFAULT: "gguf-default",
    _FALCON: "falcon",
    _DEEPSEEK_LLM: "deepseek-llm",
    _DEEPSEEK_CODER: "deepseek-coder",
    _DIGITS_GPT2: "digits-gpt2",
}


@dataclass(frozen=True)
class GgufPre:
    """How llama.cpp tokenizes a byte-level ("gpt2") GGUF vocabulary with this tokenizer.ggml.pre."""

    splits: tuple  # the regexes applied in turn
    ignore_merges: bool = False  # a piece that is a token is taken whole
    add_bos: bool = False  # prompts start with bos when the file has no tokenizer.ggml.add_bos_token


_LLAMA3_PRE = GgufPre((LLAMA3_PATTERN,), ignore_merges=True, add_bos=True)
GGUF_PRE_SPLITS = {
    "default": GgufPre(_DEFAULT),
    "llama-bpe": _LLAMA3_PRE,
    "llama3": _LLAMA3_PRE,
    "llama-v3": _LLAMA3_PRE,
    "dbrx": GgufPre((LLAMA3_PATTERN,)),
    "smaug-bpe": GgufPre((LLAMA3_PATTERN,)),
    "qwen2": GgufPre((QWEN2_PATTERN,)),
    "deepseek-r1-qwen": GgufPre((QWEN2_PATTERN,)),
    "stablelm2": GgufPre((QWEN2_PATTERN,)),
    "gpt-2": GgufPre((_GPT2,)),
    "phi-2": GgufPre((_GPT2,)),
    "olmo": GgufPre((_GPT2,)),
    "mpt": GgufPre((_GPT2,)),
    "starcoder": GgufPre(_DIGITS_GPT2),
    "refact": GgufPre(_DIGITS_GPT2),
    "command-r": GgufPre(_DIGITS_GPT2),
    "smollm": GgufPre(_DIGITS_GPT2),
    "codeshell": GgufPre(_DIGITS_GPT2),
    "exaone": GgufPre(_DIGITS_GPT2),
    "falcon": GgufPre(_FALCON),
    "deepseek-llm": GgufPre(_DEEPSEEK_LLM),
    "deepseek-coder": GgufPre(_DEEPSEEK_CODER),
    "tekken": GgufPre((TEKKEN_PATTERN_LLAMA_CPP,), ignore_merges=True, add_bos=True),
    "gpt-4o": GgufPre((GPT4O_PATTERN_LLAMA_CPP,)),
    "llama4": GgufPre((GPT4O_PATTERN_LLAMA_CPP,)),
}
# the regexes of those lists: the `regex` package runs them without a warning when they come in another order
GGUF_PRE_REGEXES = frozenset(r for p in GGUF_PRE_SPLITS.values() for r in p.splits)
# the name written for each scanner's pattern (cl100k's newer form is closest to llama-bpe); o200k has no name
# llama.cpp splits alike, so an o200k vocabulary is written as "gpt-4o", which differs on non-ASCII letters; the
# digits-then-gpt2 list is starcoder's (smollm, refact, command-r ... split alike)
GGUF_PRE = {
    "llama3": "llama-bpe",
    "cl100k": "llama-bpe",
    "qwen2": "qwen2",
    "o200k": "gpt-4o",
    "gpt4o": "gpt-4o",
    "tekken": "tekken",
    "gpt2": "gpt-2",
    "gguf-default": "default",
    "falcon": "falcon",
    "deepseek-llm": "deepseek-llm",
    "deepseek-coder": "deepseek-coder",
    "digits-gpt2": "starcoder",
}


def hf_pattern(pattern: str) -> str:
    """The spelling of a split pattern in a tokenizer.json file (Oniguruma's reading of cl100k's digits)."""
    return CL100K_PATTERN_HF if pattern == CL100K_PATTERN else pattern


def compile_regex(pattern: str, *, where: str = "", slow_split: bool = False, stacklevel: int = 2):
    """`pattern` compiled with the `regex` package: the one fallback for split patterns no scanner implements
    (`slow_split`: say so with a warning) and for the other regexes a tokenizer.json holds. Errors and the
    warning start with `where` (the file) when given."""
    at = f"{where}: " if where else ""
    try:
        import regex
    except ImportError as e:
        raise UnsupportedError(f"{at}pattern {pattern!r} needs the `regex` package, which is not installed") from e
    try:
        compiled = regex.compile(pattern)
    except (regex.error, TypeError, ValueError) as e:
        raise FormatError(f"{at}invalid split pattern {pattern!r}: {e}") from e
    if slow_split:
        warnings.warn(
            f"{at}split pattern {pattern!r} has no built-in scanner; using the slower `regex` package",
            stacklevel=stacklevel + 1,
        )
    return compiled
