"""Split patterns: the published regexes, the C scanner that implements each, tiktoken's encodings, llama.cpp's
names for them (GGUF tokenizer.ggml.pre), and the `regex` package fallback for any other pattern."""

from __future__ import annotations

import warnings

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

# the C scanner (a key of _core.PRETOK_KINDS) of each pattern
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

# llama.cpp's names of the split patterns (tokenizer.ggml.pre): the name written for each scanner (cl100k's
# newer form is closest to llama-bpe) and the pattern read for each name
GGUF_PRE = {"llama3": "llama-bpe", "cl100k": "llama-bpe", "qwen2": "qwen2", "o200k": "gpt-4o", "gpt2": "gpt-2"}
GGUF_PRE_PATTERN = {
    "llama-bpe": LLAMA3_PATTERN,
    "llama3": LLAMA3_PATTERN,
    "qwen2": QWEN2_PATTERN,
    "gpt-4o": O200K_PATTERN,
    "gpt-2": GPT2_PATTERN_HF,
    "default": GPT2_PATTERN_HF,
}
# llama.cpp's Llama 3 names: a piece that is a token is taken whole (as ignore_merges), and prompts start with
# bos when the file has no tokenizer.ggml.add_bos_token
GGUF_PRE_LLAMA3 = frozenset({"llama-bpe", "llama3"})


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
