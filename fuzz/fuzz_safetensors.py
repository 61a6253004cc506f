"""Fuzz the safetensors reader: the input is a whole file (seeds are valid files), or with a leading 0xff byte
a header given as JSON text followed by the data bytes (the 8-byte length is filled in, so mutations reach
the field checks). Allowed: FormatError. Every tensor of a file that opens must read back with its shape."""

import json

import numpy as np
from fuzz_common import LOADER_ERRORS, main, write_scratch

from fastformer.safetensors import SafetensorsFile


def as_file(data):
    """The file bytes for one fuzz input."""
    if data[:1] != b"\xff":
        return data
    header, _, blob = data[1:].partition(b"\x00")
    return len(header).to_bytes(8, "little") + header + blob


def test_one_input(data):
    path = write_scratch("fuzz.safetensors", as_file(data))
    try:
        f = SafetensorsFile(path)
    except LOADER_ERRORS:
        return
    for name in f.keys():
        a = f.get(name)
        assert isinstance(a, np.ndarray) and a.shape == f.shape(name), (name, a.shape, f.shape(name))
    json.dumps(list(f.keys()))  # names are plain str


if __name__ == "__main__":
    main(test_one_input)
