"""A safetensors reader: memory-mapped, zero-copy for float32, every header field validated.

Layout: an 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
then the data; offsets are relative to the end of the header, and the tensors tile the data exactly.

>>> tensors = load_file("model.safetensors")   # doctest: +SKIP
"""

import json
import mmap
import os

import numpy as np

from fastformer.errors import FormatError

MAX_HEADER_BYTES = 100 * 1024 * 1024

# dtype name -> (numpy dtype of the stored elements, bytes per element)
DTYPES = {
    "F64": (np.dtype("<f8"), 8),
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),
    "I64": (np.dtype("<i8"), 8),
    "I32": (np.dtype("<i4"), 4),
    "I16": (np.dtype("<i2"), 2),
    "I8": (np.dtype("i1"), 1),
    "U8": (np.dtype("u1"), 1),
    "BOOL": (np.dtype("?"), 1),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def bf16_to_f32(raw):
    """bfloat16 bits (uint16 array) -> float32: the bf16 bits are the high half of the float32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_header(path):
    """Parse and validate the header of a safetensors file; returns ({name: (dtype, shape, begin, end)}, data_start)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FormatError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise FormatError(f"{path}: header length {n} is larger than the file ({size} bytes) or the 100 MB limit")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: header is not valid JSON: {e}") from None
    except _DuplicateKey as e:
        raise FormatError(f"{path}: duplicate key {e.args[0]!r} in the header") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    data_start, data_len = 8 + n, size - 8 - n
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise FormatError(f"{where}: entry must have dtype, shape and data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise FormatError(f"{where}: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
        if not isinstance(shape, list) or not all(_is_int(s) for s in shape):
            raise FormatError(f"{where}: shape must be a list of integers, got {shape!r}")
        if any(s < 0 for s in shape):
            raise FormatError(f"{where}: negative dimension in shape {shape}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)):
            raise FormatError(f"{where}: data_offsets must be [begin, end], got {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end:
            raise FormatError(f"{where}: data_offsets [{begin}, {end}] must satisfy 0 <= begin <= end")
        if end > data_len:
            raise FormatError(
                f"{where}: data_offsets [{begin}, {end}] fall outside the {data_len} data bytes (truncated file?)"
            )
        count = 1
        for s in shape:  # python ints: no overflow
            count *= s
        if count * DTYPES[dtype][1] != end - begin:
            raise FormatError(
                f"{where}: {dtype} x shape {shape} needs {count * DTYPES[dtype][1]} bytes, "
                f"data_offsets give {end - begin}"
            )
        entries[name] = (dtype, tuple(shape), begin, end)
    # the tensors tile the data exactly: no two share bytes, no byte is left over
    spans = sorted((b, e, name) for name, (_, _, b, e) in entries.items() if e > b)
    pos, prev = 0, None
    for b, e, name in spans:
        if b < pos:
            raise FormatError(f"{path}: tensors {prev!r} and {name!r} overlap (bytes {b} < {pos})")
        if b > pos:
            raise FormatError(f"{path}: data bytes {pos}..{b} are not covered by any tensor")
        pos, prev = e, name
    if pos != data_len:
        raise FormatError(f"{path}: data bytes {pos}..{data_len} are not covered by any tensor")
    return entries, data_start


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs):
    """json object hook: a dict, refusing a key given twice (json.loads would keep the last silently)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class SafetensorsFile:
    """An open safetensors file: names, shapes and dtypes from the header; tensors on demand.

    get(name) returns a zero-copy read-only view for F32 (when aligned) and a float32 copy for F16/BF16/F64.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.entries, self._start = read_header(self.path)
        with open(self.path, "rb") as f:
            size = os.path.getsize(self.path)
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    def keys(self):
        return self.entries.keys()

    def __contains__(self, name):
        return name in self.entries

    def shape(self, name):
        return self.entries[name][1]

    def dtype(self, name):
        return self.entries[name][0]

    def get(self, name):
        """The tensor `name` as float32 (floating dtypes) or its stored integer dtype."""
        dtype, shape, begin, end = self.entries[name]
        np_dtype, width = DTYPES[dtype]
        count = (end - begin) // width
        offset = self._start + begin
        if count == 0:
            raw = np.empty(shape, dtype=np_dtype)
        elif offset % width:  # unaligned: copy out of the map
            raw = np.frombuffer(self._map[offset : offset + end - begin], dtype=np_dtype).reshape(shape)
        else:
            raw = np.frombuffer(self._map, dtype=np_dtype, count=count, offset=offset).reshape(shape)
        if dtype == "F32":
            return raw
        if dtype == "BF16":
            return bf16_to_f32(raw)
        if dtype in FLOAT_DTYPES:
            return raw.astype(np.float32)
        return raw


def load_file(path):
    """Every tensor of a safetensors file as a dict name -> numpy array (float32 for floating dtypes)."""
    f = SafetensorsFile(path)
    return {name: f.get(name) for name in f.keys()}
