"""Fuzz Tokenizer.from_file on tokenizer.json text (seeds: small byte-level and SentencePiece-style files);
a tokenizer that loads must encode and decode a few texts. Allowed: FormatError, UnsupportedError (and the
ValueError of a disallowed special token met while encoding)."""

import warnings

from fuzz_common import LOADER_ERRORS, main, write_scratch

from fastformer.tokenizer import Tokenizer

TEXTS = ["Hello world! 123 héllo", " \n\t  x  ", "日本語 😀 ́a", "<|endoftext|>ab<s></s>"]


def test_one_input(data):
    path = write_scratch("tokenizer.json", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a pattern without a built-in scanner warns
        try:
            tok = Tokenizer.from_file(path)
        except LOADER_ERRORS:
            return
        for text in TEXTS:
            ids = tok.encode(text, disallowed_special=())
            assert all(0 <= i < tok.n_vocab for i in ids), ids
            assert isinstance(tok.decode(ids), str)
            assert tok.encode_batch([text], disallowed_special=()) == [ids]
            try:
                tok.encode(text)
            except ValueError as e:
                assert "disallowed special token" in str(e), e


if __name__ == "__main__":
    main(test_one_input)
