"""The safetensors reader against files written by the `safetensors` package, and malformed headers."""

import json
import struct

import numpy as np
import pytest
from helpers import optional

from fastformer import FormatError
from fastformer.safetensors import SafetensorsFile, load_file

st = optional("safetensors.numpy")


@pytest.mark.peer("safetensors")
def test_reads_what_safetensors_writes(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((7,)).astype(np.float16),
        "f64": rng.standard_normal((2, 2)),
        "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
        "empty": np.zeros((0, 4), np.float32),
    }
    path = str(tmp_path / "a.safetensors")
    st.save_file(tensors, path)
    got = load_file(path)
    np.testing.assert_array_equal(got["f32"], tensors["f32"])
    np.testing.assert_array_equal(got["f16"], tensors["f16"].astype(np.float32))
    np.testing.assert_array_equal(got["f64"], tensors["f64"].astype(np.float32))
    np.testing.assert_array_equal(got["i64"], tensors["i64"])
    assert got["empty"].shape == (0, 4)
    assert not got["f32"].flags.writeable  # zero-copy view of the map


@pytest.mark.peer("safetensors", "torch")
def test_bf16_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    x = torch.randn(4, 9).to(torch.bfloat16)
    path = str(tmp_path / "b.safetensors")
    save_file({"x": x}, path)
    np.testing.assert_array_equal(load_file(path)["x"], x.float().numpy())


def write_raw(path, header, data=b"", header_len=None):
    h = json.dumps(header).encode()
    n = len(h) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + h + data)
    return str(path)


@pytest.mark.parametrize(
    "header, data, match",
    [
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "fall outside"),
        ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "begin <= end"),
        ({"x": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype"),
        ({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "negative dimension"),
        ({"x": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}}, b"\0" * 8, "list of integers"),
        ({"x": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "must have dtype, shape and data_offsets"),
        ({"x": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}}, b"\0" * 8, "needs"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlap",
        ),
        ([1, 2], b"", "JSON object"),
    ],
)
def test_malformed_headers_raise_format_errors(tmp_path, header, data, match):
    path = write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(FormatError, match=match) as e:
        SafetensorsFile(path)
    assert "bad.safetensors" in str(e.value)


def test_header_length_beyond_file(tmp_path):
    path = write_raw(tmp_path / "h.safetensors", {}, header_len=2**63)
    with pytest.raises(FormatError, match="header length"):
        SafetensorsFile(path)


def test_truncated_and_garbage(tmp_path):
    p = tmp_path / "t.safetensors"
    p.write_bytes(b"\x05\0\0")
    with pytest.raises(FormatError, match="shorter than"):
        SafetensorsFile(str(p))
    p.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{}")
    with pytest.raises(FormatError, match="not valid JSON"):
        SafetensorsFile(str(p))
