"""Fuzz the tiktoken rank-file loader (Tokenizer.from_tiktoken with cl100k_base's pattern, and from_file's
guess of the encoding); a tokenizer that loads must encode and decode. Allowed: FormatError,
UnsupportedError."""

from fuzz_common import LOADER_ERRORS, main, write_scratch

from fastformer.tokenizer import Tokenizer

TEXT = "Hello world! 123 héllo\n\n  日本語 😀"


def test_one_input(data):
    path = write_scratch("fuzz.tiktoken", data)
    for load in (
        lambda: Tokenizer.from_tiktoken(path, pattern="cl100k_base", special_tokens={}),
        lambda: Tokenizer.from_file(path),
    ):
        try:
            tok = load()
        except LOADER_ERRORS:
            continue
        ids = tok.encode_ordinary(TEXT)
        assert tok.decode(ids) == TEXT, ids


if __name__ == "__main__":
    main(test_one_input)
