"""The legacy 32-weight types q4_1, q5_0, q5_1 and iq4_nl (csrc/ff_qlegacy.c) through the regular entry points
(fastformer.quantize, QuantizedTensor.dequantize / _core.dequantize_rows, ops.linear): bytes against the gguf package's
quantizers and llama.cpp's (iq4_nl: its search without an importance matrix, also through a GGUF file made by
llama_model_quantize), dequantization against gguf bit for bit, and the int8 dot kernels on every ISA path and
int8 dot against a float64 oracle of dequantized weights times dequantized 8-bit activations."""

import ctypes
import os

import numpy as np
import pytest
from helpers import each_dot256, on_scalar, same_at_thread_counts

import fastformer
from fastformer import QuantizedTensor, _core, ops

TYPES = ["q4_1", "q5_0", "q5_1", "iq4_nl"]
BYTES = {"q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18}
ID = {t: fastformer.quant.QTYPES[t][0] for t in TYPES}  # ggml type ids


def _quantize(w, qtype):
    return fastformer.quantize(w, qtype).data


def _dequantize(data, qtype, cols):
    return QuantizedTensor(data, qtype, (data.shape[0], cols)).dequantize()


def _linear(x, data, qtype, cols):
    return ops.linear(x, QuantizedTensor(data, qtype, (data.shape[0], cols)))


def _weights(rng, shape, kind):
    w = rng.standard_normal(shape).astype(np.float32)
    if kind == "scaled":  # rows spanning many magnitudes
        w *= np.float32(10.0) ** rng.integers(-6, 6, size=(shape[0], 1)).astype(np.float32)
    elif kind == "huge":  # block scales overflow fp16 to inf
        w *= np.float32(3e7)
    elif kind == "tiny":  # block scales underflow to fp16 subnormals and zero
        w *= np.float32(1e-30)
    elif kind == "zeros":  # all-zero rows, +0 and -0, and a single nonzero per block
        w[::2] = 0.0
        w[1::4] = -0.0
        w[3::4, ::32] = 1.0
    elif kind == "ties":  # multiples of half a step land exactly between two codes
        w = (rng.integers(-254, 255, size=shape) / 2).astype(np.float32)
        w[:, ::32] = 127.0
    elif kind == "offset":  # all of a block on one side of zero (the minimum of q4_1/q5_1 matters)
        w = w + np.float32(5.0)
    return w


KINDS = ["normal", "scaled", "huge", "tiny", "zeros", "ties", "offset"]
SHAPES = [(1, 32), (7, 64), (97, 96), (33, 4096)]


@pytest.mark.peer("gguf")
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # gguf's fp16 scales of "huge" blocks
@pytest.mark.parametrize("qtype", ["q4_1", "q5_0", "q5_1"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_quantize_bytes_equal_gguf(rng, qtype, kind, shape):
    import gguf

    w = _weights(rng, shape, kind)
    want = gguf.quants.quantize(w, gguf.GGMLQuantizationType(ID[qtype])).view(np.uint8).reshape(shape[0], -1)
    got = _quantize(w, qtype)
    assert got.dtype == np.uint8 and got.shape == (shape[0], shape[1] // 32 * BYTES[qtype])
    np.testing.assert_array_equal(got, want)


def _ggml_quantize_chunk():
    """llama.cpp's ggml_quantize_chunk (what llama_model_quantize runs per tensor) from llama-cpp-python."""
    import llama_cpp

    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    fn = lib.ggml_quantize_chunk
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * 3 + [ctypes.c_void_p]

    def quantize(w, qtype):
        w = np.ascontiguousarray(w, dtype=np.float32)
        out = np.zeros((w.shape[0], w.shape[1] // 32 * BYTES[qtype]), np.uint8)
        assert fn(ID[qtype], w.ctypes.data, out.ctypes.data, 0, *w.shape, None) == out.nbytes
        return out

    return quantize


@pytest.mark.peer("llama_cpp")
@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_quantize_bytes_equal_llama_cpp(rng, qtype, kind):
    quantize = _ggml_quantize_chunk()
    w = _weights(rng, (300, 256), kind)
    ours, theirs = _quantize(w, qtype), quantize(w, qtype)
    if qtype == "q5_0" and kind == "zeros":
        # a block of -0.0 only: gguf's quantizer (and ours) takes its first value, -0, as the max, so d = +0;
        # ggml starts from max = +0, so d = -0. The bytes differ in the sign of that zero scale alone
        blocks = w.reshape(300, -1, 32)
        neg = (blocks == 0).all(-1) & np.signbit(blocks).all(-1)
        ob, tb = ours.reshape(300, -1, 22), theirs.reshape(300, -1, 22).copy()
        assert neg.any()
        np.testing.assert_array_equal(tb[neg][:, 1], ob[neg][:, 1] | 0x80)
        tb[neg, 1] = ob[neg, 1]
        theirs = tb.reshape(ours.shape)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.peer("llama_cpp", "torch", "transformers", "sentencepiece", "gguf")
def test_iq4_nl_tensors_of_a_llama_cpp_file_equal_ours(tmp_path):
    """llama_model_quantize(IQ4_NL) on a converter-made F32 GGUF of a random Llama: every tensor it stores as
    IQ4_NL (it keeps others, like the token table, in other types) has our quantizer's bytes."""
    import gguf
    import llama_cpp
    import torch
    import transformers
    from gguf_tools import convert

    cfg = transformers.LlamaConfig(
        vocab_size=320,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(0.08 * torch.randn(p.shape) + (0.02 if p.ndim == 2 else 1.0))
    hf.save_pretrained(tmp_path / "llama")
    f32 = convert(str(tmp_path / "llama"), "f32", str(tmp_path / "f32.gguf"))
    out = str(tmp_path / "iq4_nl.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_IQ4_NL
    assert llama_cpp.llama_model_quantize(f32.encode(), out.encode(), params) == 0
    src = {t.name: t for t in gguf.GGUFReader(f32).tensors}
    checked = 0
    for t in gguf.GGUFReader(out).tensors:
        if t.tensor_type != gguf.GGMLQuantizationType.IQ4_NL:
            continue
        w = np.asarray(src[t.name].data, dtype=np.float32)
        w = w.reshape(-1, w.shape[-1])
        np.testing.assert_array_equal(_quantize(w, "iq4_nl"), np.asarray(t.data).reshape(w.shape[0], -1))
        checked += 1
    assert checked >= 14  # 7 matrices in each of 2 layers


def _random_blocks(rng, qtype, rows, cols):
    """Random blocks (every code and high bit) with sane fp16 scales and minimums."""
    raw = rng.integers(0, 256, size=(rows, cols // 32, BYTES[qtype]), dtype=np.uint8)
    nd = 2 if qtype in ("q4_1", "q5_1") else 1
    d = rng.uniform(-1e-2, 1e-2, size=(rows, cols // 32, nd)).astype(np.float16)
    raw[..., : 2 * nd] = d.view(np.uint8).reshape(rows, cols // 32, 2 * nd)
    return raw.reshape(rows, -1)


@pytest.mark.peer("gguf")
@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("source", ["quantized", "random"])
@pytest.mark.parametrize("shape", [(1, 32), (7, 512), (33, 2048 + 96)], ids=str)
def test_dequantize_equals_gguf(rng, qtype, source, shape):
    import gguf

    if source == "random":
        data = _random_blocks(rng, qtype, *shape)
    else:
        data = _quantize(_weights(rng, shape, "scaled"), qtype)
    want = gguf.quants.dequantize(data, gguf.GGMLQuantizationType(ID[qtype]))
    got = _dequantize(data, qtype, shape[1])
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("qtype", TYPES)
def test_round_trip_error_is_a_fraction_of_the_step(rng, qtype):
    flat = _weights(rng, (61, 1024), "normal")
    err = np.abs(_dequantize(_quantize(flat, qtype), qtype, 1024) - flat)
    w = flat.reshape(61, -1, 32)
    span = (w.max(-1) - w.min(-1)).mean()
    # rms error against the code spacing: ~ step / sqrt(12) for uniform codes, iq4_nl's grid is coarser at the ends
    rms = np.sqrt((err**2).mean())
    step = {"q4_1": span / 15, "q5_0": 2 * np.abs(w).max(-1).mean() / 32, "q5_1": span / 31, "iq4_nl": span / 15}
    assert 0.2 * step[qtype] < rms < 0.45 * step[qtype]


# ---- the int8 dot kernels ----


def _act_quant(x):
    """The kernels' activation quantizer in numpy: int8 per 32 with scale max|x|/127, ties to even."""
    xb = x.reshape(x.shape[0], -1, 32)
    d = (np.abs(xb).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    return (np.rint(xb * inv) * d).reshape(x.shape)


def _oracle(x, data, qtype, k):
    """float64 y = dequantized x @ dequantized w.T, and sum |terms| for the tolerance."""
    xa = _act_quant(x).astype(np.float64)
    wd = _dequantize(data, qtype, k).astype(np.float64)
    return xa @ wd.T, np.abs(xa) @ np.abs(wd).T


LINEAR_CASES = [  # (M, N, K): tails of the 8-block chunks, 1..4 activation rows per call, m > 4
    (1, 1, 32),
    (1, 7, 96),
    (3, 97, 544),
    (4, 33, 1024),
    (5, 16, 2048),
    (9, 97, 768),
    (1, 256, 4096 + 256 + 32),
]


@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("m,n,k", LINEAR_CASES, ids=str)
def test_linear_matches_oracle_on_every_path(qpath, threads, rng, qtype, m, n, k):
    data = _quantize(_weights(rng, (n, k), "offset" if qtype in ("q4_1", "q5_1") else "normal"), qtype)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _linear(x, data, qtype, k)
    want, mag = _oracle(x, data, qtype, k)
    assert y.dtype == np.float32 and y.shape == (m, n)
    # each block's int dot is exact; only the sums of scaled blocks (and the minimum's terms) round
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))


def test_simd_paths_agree_with_scalar(rng):
    """Every path within 1e-5 of max |y| of the scalar _ref twins; the 256-bit kernels bit for bit alike."""
    k, n, m = 2048 + 64 + 32, 129, 6
    x = rng.standard_normal((m, k)).astype(np.float32)
    before, vnni_before, dot_before = _core.current_isa(), _core.quant_vnni(), _core.quant_dot256()
    try:
        for qtype in TYPES:
            data = _quantize(_weights(rng, (n, k), "offset"), qtype)
            _core.set_isa("scalar")
            ref = _linear(x, data, qtype, k)
            mag = np.abs(ref).max()
            runs = 0
            for path in _core.supported_isas()[1:]:
                _core.set_isa(path)
                for on in (False, True):
                    _core.quant_set_vnni(on)
                    first = None
                    for _dot in each_dot256():
                        got = _linear(x, data, qtype, k)
                        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * mag)
                        assert not np.array_equal(got, ref) or qtype == "q5_0"  # float sums in another order
                        runs += 1
                        if not (on and path == "avx512"):
                            first = got if first is None else first
                            np.testing.assert_array_equal(got, first)
            assert runs >= 2 * len(_core.supported_isas()[1:])
    finally:
        _core.set_isa(before)
        _core.quant_set_vnni(vnni_before)
        _core.quant_set_dot256(dot_before)


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", TYPES)
def test_linear_bitwise_independent_of_thread_count(qpath, rng, qtype, m):
    data = _quantize(rng.standard_normal((301, 1024)).astype(np.float32), qtype)
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    before = fastformer.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3, 5):
            fastformer.set_num_threads(t)
            outs.append(_linear(x, data, qtype, 1024))
    finally:
        fastformer.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


# ---- bad and edge inputs: clear Python errors, never a crash ----


@pytest.mark.parametrize("qtype", TYPES)
def test_non_finite_inputs_raise(rng, qtype):
    w = rng.standard_normal((3, 64)).astype(np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        wb = w.copy()
        wb[2, 40] = bad
        with pytest.raises(ValueError, match=r"w has a non-finite value .* at \(2, 40\)"):
            _core.quantize_rows(wb, ID[qtype])
    data = _quantize(w, qtype)
    x = np.ones((2, 64), np.float32)
    x[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"x has a non-finite value nan at \(1, 3\)"):
        _linear(x, data, qtype, 64)


@pytest.mark.parametrize("qtype", TYPES)
def test_empty_inputs(qtype):
    assert _quantize(np.zeros((0, 64), np.float32), qtype).shape == (0, 2 * BYTES[qtype])
    assert _quantize(np.zeros((3, 0), np.float32), qtype).shape == (3, 0)
    assert _dequantize(np.zeros((0, BYTES[qtype]), np.uint8), qtype, 32).shape == (0, 32)
    data = _quantize(np.ones((5, 32), np.float32), qtype)
    assert _linear(np.zeros((0, 32), np.float32), data, qtype, 32).shape == (0, 5)
    empty = np.zeros((4, 0), np.uint8)
    np.testing.assert_array_equal(_linear(np.zeros((2, 0), np.float32), empty, qtype, 0), np.zeros((2, 4)))


def test_bad_arguments_raise_clear_errors(rng):
    w = rng.standard_normal((4, 48)).astype(np.float32)
    with pytest.raises(ValueError, match="48 weights is not a whole number of 32-weight blocks"):
        _core.quantize_rows(w, ID["q4_1"])
    with pytest.raises(ValueError, match="q4_1 rows must be a multiple of 32 weights, got 48 columns"):
        fastformer.quantize(w, "q4_1")
    with pytest.raises(TypeError, match="float64"):
        _core.quantize_rows(w.astype(np.float64), ID["q5_0"])
    with pytest.raises(ValueError, match="2-D"):
        _core.quantize_rows(w.reshape(-1), ID["q5_1"])
    with pytest.raises(ValueError, match="unknown qtype 'q4_2'"):
        fastformer.quantize(w, "q4_2")
    with pytest.raises(ValueError, match="unknown ggml type id 4"):  # retired by ggml
        _core.quantize_rows(w[:, :32], 4)
    data = _core.quantize_rows(w[:, :32], ID["iq4_nl"])
    with pytest.raises(ValueError, match=r"data has shape \(4, 18\), expected \(rows, 36\)"):
        _core.dequantize_rows(data, ID["iq4_nl"], 64)
    with pytest.raises(TypeError, match="uint8"):
        _core.dequantize_rows(data.astype(np.int8), ID["iq4_nl"], 32)
    with pytest.raises(ValueError, match=r"x has shape \(2, 64\) and w has shape \(4, 32\)"):
        _core.linear_q(np.ones((2, 64), np.float32), data, ID["iq4_nl"], 32)


# ---- the four types on r16 layouts (models repack into them when the AVX-512 VNNI kernels run) ----


def _r16_linear(x, data, qtype, k):
    r = _core.repack_r16(data, ID[qtype], k)
    return _core.linear_q(x, r, ID[qtype] | _core.QTYPE_R16, k)


R16_TYPES = TYPES
R16_CASES = [(1, 16, 32), (1, 48, 96), (3, 64, 768), (4, 32, 1024 + 32), (5, 16, 2048), (67, 96, 544)]


@pytest.mark.parametrize("qtype", R16_TYPES)
@pytest.mark.parametrize("m,n,k", R16_CASES, ids=str)
def test_r16_matches_oracle_and_its_scalar_twin(qpath, threads, rng, qtype, m, n, k):
    data = _quantize(_weights(rng, (n, k), "offset" if qtype in ("q4_1", "q5_1") else "scaled"), qtype)
    r = _core.repack_r16(data, ID[qtype], k)
    assert r.shape == data.shape and not np.array_equal(r, data)  # same bytes, other order
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _r16_linear(x, data, qtype, k)
    want, mag = _oracle(x, data, qtype, k)
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))
    # the vnni kernel does the scalar twin's float operations in its order
    np.testing.assert_array_equal(y, on_scalar(lambda: _r16_linear(x, data, qtype, k)))


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", R16_TYPES)
def test_r16_rows_independent_of_thread_count_and_batch(qpath, rng, qtype, m):
    data = _quantize(rng.standard_normal((304, 1024)).astype(np.float32), qtype)
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    first = same_at_thread_counts(lambda: _r16_linear(x, data, qtype, 1024), (1, 2, 3))
    np.testing.assert_array_equal(_r16_linear(x[-1:], data, qtype, 1024), first[-1:])
