"""Fuzz the GGUF reader on whole files (seeds: small valid files): open, read every tensor, and build the
model weights and the tokenizer from the metadata when the file names them. Allowed: FormatError,
UnsupportedError."""

import numpy as np
from fuzz_common import LOADER_ERRORS, main, write_scratch

from fastformer.gguf import GGUFFile, load
from fastformer.tokenizer import Tokenizer


def test_one_input(data):
    path = write_scratch("fuzz.gguf", data)
    try:
        f = GGUFFile(path)
    except LOADER_ERRORS:
        return
    for name, info in f.tensors.items():
        a = f.get(name)
        assert isinstance(a, np.ndarray), name
        assert a.nbytes == info.nbytes or a.dtype == np.float32, (name, a.nbytes, info.nbytes)
    if "tokenizer.ggml.model" in f.metadata:
        try:
            tok = Tokenizer.from_gguf_metadata(f.metadata)
        except LOADER_ERRORS:
            pass
        else:
            ids = tok.encode("Hello world, 123 héllo 😀", disallowed_special=())
            assert isinstance(tok.decode(ids), str)
    if "general.architecture" in f.metadata:
        try:
            load(path)
        except LOADER_ERRORS:
            pass


if __name__ == "__main__":
    main(test_one_input)
