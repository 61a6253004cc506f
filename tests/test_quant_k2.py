"""q2_k, q3_k, q5_k and iq4_xs: dequantization bitwise against the gguf package, quantization bytewise against
ggml's own reference quantizers (libggml-base of llama-cpp-python, called directly), the int8 dot kernels on every
ISA path against a float64 oracle, llama.cpp's Q2_K / Q3_K_M / Q5_K_M / IQ4_XS files against llama.cpp's logits,
and hostile files of these types."""

import ctypes
import dataclasses
import os

import numpy as np
import pytest
from gguf_tools import convert
from helpers import (
    each_dot256,
    make_checkpoint,
    on_scalar,
    optional,
    perturb_noise,
    random_blocks,
    same_at_thread_counts,
)
from hostile_fixtures import gguf_bytes, gkv

from fastformer import Model, _core, ops
from fastformer import _reference as ref
from fastformer.checkpoint import LayerWeights, Weights, as_dict
from fastformer.errors import FormatError
from fastformer.gguf import GGUFFile
from fastformer.quant import QTYPES, QuantizedTensor, quantize

gguf = optional("gguf")

K2 = ["q2_k", "q3_k", "q5_k", "iq4_xs"]
# the fp16 scale bytes of each super-block (d, and dmin where there is one)
SCALES = {"q2_k": (80, 84), "q3_k": (108, 110), "q5_k": (0, 4), "iq4_xs": (0, 2)}
# ggml's reference quantizer of each type (no importance matrix), as libggml-base exports it
GGML_REF = {
    "q2_k": "quantize_row_q2_K_ref",
    "q3_k": "quantize_row_q3_K_ref",
    "q5_k": "quantize_row_q5_K_ref",
    "iq4_xs": "quantize_row_iq4_xs_ref",
}


def _random_blocks(rng, qtype, rows, cols):
    """Random super-blocks with small finite fp16 scales (random bytes elsewhere)."""
    _, blk, size = QTYPES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // blk, size), dtype=np.uint8)
    lo, hi = SCALES[qtype]
    d = rng.uniform(-1e-2, 1e-2, size=(rows, cols // blk, (hi - lo) // 2)).astype(np.float16)
    raw[..., lo:hi] = d.view(np.uint8).reshape(rows, cols // blk, hi - lo)
    return raw.reshape(rows, -1)


def _weights(rng, shape, kind):
    w = rng.standard_normal(shape).astype(np.float32)
    if kind == "scaled":  # rows of very different magnitude, some exact zeros and repeated values
        w *= np.float32(10.0) ** rng.integers(-6, 4, size=(shape[0], 1))
        w[0, :40] = 0
        w[-1, ::3] = 1.5
    elif kind == "skewed":  # all positive in places (mins of 0), large outliers
        w = np.abs(w)
        w[:, ::17] *= 50
    elif kind == "zeros":
        w[:] = 0
    return w


@pytest.mark.parametrize("qtype", K2)
@pytest.mark.parametrize("shape", [(1, 256), (7, 512), (33, 2048)], ids=str)
def test_dequantize_equals_reference(rng, qtype, shape):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, *shape), qtype, shape)
    got = qt.dequantize()
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, ref.dequantize(qt.data, qtype, shape))


@pytest.mark.peer("gguf")
@pytest.mark.parametrize("qtype", K2)
def test_dequantize_equals_gguf(rng, qtype):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, 33, 2048), qtype, (33, 2048))
    np.testing.assert_array_equal(
        qt.dequantize(), gguf.quants.dequantize(qt.data, gguf.GGMLQuantizationType[qtype.upper()])
    )


def _ggml():
    import llama_cpp

    path = os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so")
    if not os.path.exists(path):
        pytest.skip("llama-cpp-python without libggml-base.so")
    return ctypes.CDLL(path)


@pytest.mark.peer("llama_cpp")
@pytest.mark.parametrize("qtype", K2)
@pytest.mark.parametrize("kind", ["normal", "scaled", "skewed", "zeros"])
def test_quantize_bytes_equal_ggml(isa, rng, qtype, kind):
    lib = _ggml()
    w = _weights(rng, (24, 1024), kind)
    want = np.zeros(w.size // 256 * QTYPES[qtype][2], np.uint8)
    getattr(lib, GGML_REF[qtype])(
        w.ctypes.data_as(ctypes.c_void_p), want.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(w.size)
    )
    got = quantize(w, qtype)
    assert got.qtype == qtype and got.shape == w.shape
    np.testing.assert_array_equal(got.data.reshape(-1), want)


@pytest.mark.parametrize("qtype", K2)
def test_round_trip_error_is_small(rng, qtype):
    w = _weights(rng, (16, 2048), "normal")
    err = np.abs(quantize(w, qtype).dequantize() - w)
    rms = np.sqrt((err**2).mean())
    # bits per weight: q2_k 2.6, q3_k 3.4, iq4_xs 4.25, q5_k 5.5
    assert rms < {"q2_k": 0.45, "q3_k": 0.25, "iq4_xs": 0.12, "q5_k": 0.05}[qtype], rms


# m >= 5: the prefill panels of q2_k/q3_k on avx-512 vnni
LINEAR_CASES = [(1, 1, 256), (1, 7, 512), (3, 97, 768), (4, 33, 1024), (5, 16, 2048), (9, 97, 768), (67, 40, 512)]


@pytest.mark.parametrize("qtype", K2)
@pytest.mark.parametrize("m,n,k", LINEAR_CASES, ids=str)
def test_linear_matches_oracle_on_every_path(qpath, threads, rng, qtype, m, n, k):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, n, k), qtype, (n, k))
    x = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    y = ops.linear(x, qt, bias)
    want, mag = ref.linear_q(x, qt.data, qtype, qt.shape, bias)
    assert y.dtype == np.float32 and y.shape == (m, n)
    # each 16-sub-block's int dot is exact; the sums of scaled sub-blocks and the float offsets round
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))


def test_simd_paths_agree_with_scalar(rng):
    k, n, m = 2048, 129, 6
    x = rng.standard_normal((m, k)).astype(np.float32)
    before, dot_before = _core.current_isa(), _core.quant_dot256()
    try:
        for qtype in K2:
            qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, n, k), qtype, (n, k))
            _core.set_isa("scalar")
            ref = ops.linear(x, qt)
            mag = np.abs(ref).max()
            first = None
            for path in _core.supported_isas()[1:]:
                _core.set_isa(path)
                for on in (False, True):
                    _core.quant_set_vnni(on)
                    for _dot in each_dot256():
                        got = ops.linear(x, qt)
                        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * mag)
                        if qtype == "q5_k":  # q4_k's kernels: one float scaling per 32-block, in the twin's order
                            np.testing.assert_array_equal(got, ref)
                        if not on:  # the 256-bit kernels: every int8 dot gives the same bits
                            first = got if first is None else first
                            np.testing.assert_array_equal(got, first)
    finally:
        _core.set_isa(before)
        _core.quant_set_vnni(True)
        _core.quant_set_dot256(dot_before)


@pytest.mark.parametrize("m", [1, 5])
@pytest.mark.parametrize("qtype", K2)
def test_linear_bitwise_independent_of_thread_count(qpath, rng, qtype, m):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, 301, 1024), qtype, (301, 1024))
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    same_at_thread_counts(lambda: ops.linear(x, qt), (1, 2, 3))


@pytest.mark.parametrize("qtype", K2)
def test_rows_do_not_depend_on_the_batch(qpath, rng, qtype):
    """A row's result is the same whatever other activation rows share the call: 5 or more rows take the panels
    on avx-512 vnni (q2_k, q3_k), fewer the row kernels, each path invariant on its own."""
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, 97, 1024), qtype, (97, 1024))
    x = rng.standard_normal((70, 1024)).astype(np.float32)
    full = ops.linear(x, qt)
    for lo, hi in [(0, 5), (3, 12), (61, 70)]:
        np.testing.assert_array_equal(ops.linear(x[lo:hi], qt), full[lo:hi])
    few = ops.linear(x[:4], qt)
    for i in range(4):
        np.testing.assert_array_equal(ops.linear(x[i : i + 1], qt), few[i : i + 1])


@pytest.mark.parametrize("qtype", ["q4_k", "q5_k", "q6_k"])
def test_256_bit_k_kernels_take_16_rows_with_the_same_bits(rng, qtype):
    """Prefill on the 256-bit path (AVX2, and AVX-512 without VNNI) runs Q4_K/Q5_K/Q6_K 16 activation rows a call,
    each W super-block decoded once for all of them, the rest 4 at a time: every row equals the scalar twin's bits
    and its own run alone, with every 256-bit int8 dot and at 1 and 2 threads, and the 16-row kernels did run."""
    if "avx2" not in _core.supported_isas():
        pytest.skip("this CPU has no AVX2+FMA path")
    raw = random_blocks(rng, qtype, 67, 768) if qtype != "q5_k" else _random_blocks(rng, qtype, 67, 768)
    qt = QuantizedTensor.from_bytes(raw, qtype, (67, 768))
    x = rng.standard_normal((37, 768)).astype(np.float32)  # 2 x 16 rows, then 4, then 1
    want = on_scalar(lambda: ops.linear(x, qt))
    before = _core.current_isa(), _core.quant_vnni(), _core.quant_dot256()
    try:
        for isa in [isa for isa in ("avx2", "avx512") if isa in _core.supported_isas()]:
            _core.set_isa(isa)
            _core.quant_set_vnni(False)
            for dot in each_dot256():
                calls = _core.qdot_many_calls()
                got = same_at_thread_counts(lambda: ops.linear(x, qt), (1, 2))
                assert _core.qdot_many_calls() > calls, (isa, dot)  # the 16-row kernels ran
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {dot}")
                calls = _core.qdot_many_calls()
                for i in (0, 15, 17, 36):
                    np.testing.assert_array_equal(ops.linear(x[i : i + 1], qt), want[i : i + 1], err_msg=dot)
                assert _core.qdot_many_calls() == calls  # one row: the row kernels alone
    finally:
        _core.set_isa(before[0])
        _core.quant_set_vnni(before[1])
        _core.quant_set_dot256(before[2])


# ---- q2_k, q3_k and iq4_xs on their r16 layouts (models repack into them when the AVX-512 VNNI kernels run) ----


def _r16_linear(x, qt):
    tid = qt.ggml_type
    return _core.linear_q(x, _core.repack_r16(qt.data, tid, qt.shape[1]), tid | _core.QTYPE_R16, qt.shape[1])


R16_TYPES = ["q2_k", "q3_k", "iq4_xs"]


@pytest.mark.parametrize("qtype", R16_TYPES)
@pytest.mark.parametrize("m,n,k", [(1, 16, 256), (2, 48, 768), (5, 16, 2048 + 256), (67, 64, 9 * 256)], ids=str)
def test_r16_matches_oracle_and_its_scalar_twin(qpath, threads, rng, qtype, m, n, k):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, n, k), qtype, (n, k))
    r = _core.repack_r16(qt.data, qt.ggml_type, k)
    assert r.shape == qt.data.shape and not np.array_equal(r, qt.data)  # same bytes, other order
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _r16_linear(x, qt)
    want, mag = ref.linear_q(x, qt.data, qtype, qt.shape)
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))
    # the vnni kernel does the scalar twin's float operations in its order
    np.testing.assert_array_equal(y, on_scalar(lambda: _r16_linear(x, qt)))


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", R16_TYPES)
def test_r16_rows_independent_of_thread_count_and_batch(qpath, rng, qtype, m):
    qt = QuantizedTensor.from_bytes(_random_blocks(rng, qtype, 304, 1024), qtype, (304, 1024))
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    first = same_at_thread_counts(lambda: _r16_linear(x, qt), (1, 2, 3))
    np.testing.assert_array_equal(_r16_linear(x[-1:], qt), first[-1:])


# ---- models: quantize-at-load, llama.cpp's files of each preset ----


@pytest.fixture(scope="module")
def ckpt256(tmp_path_factory):
    """A 2-layer GQA Llama with rows of 256 and 512 weights (whole super-blocks everywhere)."""
    path, _ = make_checkpoint(
        tmp_path_factory.mktemp("k2") / "llama",
        "llama",
        perturb=perturb_noise(0.05, seed=0, matrices=False),
        vocab_size=320,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    return path


def dequantized_twin(model):
    """An fp32 Model whose weight matrices are `model`'s quantized ones, dequantized."""
    ck = model.checkpoint()

    def deq(a):
        return a.dequantize() if isinstance(a, QuantizedTensor) else a

    weights = Weights(**{k: deq(v) for k, v in as_dict(ck.weights).items()})
    layers = [LayerWeights(**{k: deq(v) for k, v in as_dict(layer).items()}) for layer in ck.layers]
    return Model(dataclasses.replace(ck, weights=weights, layers=layers))


PROMPT = [int(t) for t in np.random.default_rng(7).integers(3, 320, 48)]


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("qtype", K2)
def test_quantize_at_load(ckpt256, qtype):
    model = Model.load(ckpt256, quantize=qtype)
    wq = model.checkpoint().layers[0].wq
    assert isinstance(wq, QuantizedTensor) and wq.qtype == qtype
    got = model.logits(PROMPT[:20])
    # the kernels: the fp32 run over the same weights dequantized, up to what 8-bit activations explain
    want = dequantized_twin(model).logits(PROMPT[:20])
    assert np.abs(got - want).mean() < 0.01 * np.abs(want).max() and _cos(got, want).min() > 0.999
    # and a quantization of the real model (random weights: 2-3 bits cost a lot)
    full = Model.load(ckpt256).logits(PROMPT[:20])
    assert _cos(got, full).mean() > {"q2_k": 0.6, "q3_k": 0.8}.get(qtype, 0.95)


@pytest.mark.peer("torch", "transformers")
def test_quantize_at_load_falls_back_where_rows_are_not_whole_super_blocks(tmp_path):
    path, _ = make_checkpoint(
        tmp_path / "llama", "llama", vocab_size=320, hidden_size=128, intermediate_size=256, num_hidden_layers=1
    )
    layer = Model.load(path, quantize="q3_k").checkpoint().layers[0]
    assert layer.w_down.qtype == "q3_k"  # rows of 256
    assert layer.wq.qtype == layer.w_up.qtype == "q8_0"  # rows of 128


# every K preset (and the two legacy ones whose files keep K tensors: llama.cpp's Q8_0 and Q4_0 presets put the
# head in Q6_K); Q4_1/Q5_0/Q5_1/IQ4_NL are in test_gguf_presets_legacy.py
PRESETS = {
    "q2_k": "Q2_K", "q3_k_m": "Q3_K_M", "q4_k_m": "Q4_K_M", "q5_k_m": "Q5_K_M", "q6_k": "Q6_K", "iq4_xs": "IQ4_XS",
    "q8_0": "Q8_0", "q4_0": "Q4_0",
}  # fmt: skip


@pytest.mark.peer("torch", "transformers", "sentencepiece", "llama_cpp")  # converter, quantizer and runtime
@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESETS))
def test_llama_cpp_preset_files_match_llama_cpp(ckpt256, preset):
    import llama_cpp

    f32 = convert(ckpt256, "f32", ckpt256 + "-f32.gguf")
    out = ckpt256 + f"-{preset}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + PRESETS[preset])
    assert llama_cpp.llama_model_quantize(f32.encode(), out.encode(), params) == 0
    types = {t.type for t in GGUFFile(out).tensors.values()}
    base = preset[:-2] if preset.endswith("_m") else preset
    assert base.upper() in types, types  # the preset's own type is in the file
    model = Model.load(out)
    llm = llama_cpp.Llama(model_path=out, n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    llm.eval(PROMPT)
    theirs = np.array(llm.scores[: len(PROMPT)], dtype=np.float32)
    ours = model.logits(PROMPT)
    cos = _cos(ours, theirs)
    top1 = (ours.argmax(1) == theirs.argmax(1)).mean()
    assert cos.mean() >= 0.995 and top1 >= 0.9, (cos.mean(), top1)


# ---- hostile files ----


def _rewrite(src, dst, name, raw=None, last=False):
    """GGUF `src` as `dst` with tensor `name`'s bytes replaced by raw (and placed last if `last`)."""
    f = GGUFFile(src)
    blobs = {n: (t.type_id, t.shape, bytes(f.raw(n))) for n, t in f.tensors.items()}
    tid, shape, old = blobs.pop(name)
    order = list(blobs.items()) + [(name, (tid, shape, old if raw is None else raw))]
    if not last:
        order.sort(key=lambda kv: list(f.tensors).index(kv[0]))
    infos, data = [], b""
    for n, (t, s, r) in order:
        infos.append((n, list(reversed(s)), t, len(data)))
        data += r + b"\0" * (-len(r) % 32)
    with open(dst, "wb") as out:
        out.write(gguf_bytes([gkv(k, v) for k, v in f.metadata.items()], infos, data))
    return dst


@pytest.fixture(scope="module")
def k2_files(ckpt256, tmp_path_factory):
    root = tmp_path_factory.mktemp("k2h")
    out = {}
    for qtype in K2:
        out[qtype] = str(root / f"{qtype}.gguf")
        Model.load(ckpt256, quantize=qtype).save_gguf(out[qtype])
    return out


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("qtype", K2)
def test_saved_gguf_round_trips(ckpt256, k2_files, qtype):
    again = Model.load(k2_files[qtype])
    assert again.checkpoint().layers[1].w_down.qtype == qtype
    # the same blocks (q/k rows permuted for gguf's rope layout, so sums round differently and an 8-bit activation
    # may round the other way: close, not equal)
    ours = Model.load(ckpt256, quantize=qtype)
    np.testing.assert_array_equal(again.checkpoint().layers[1].w_down.data, ours.checkpoint().layers[1].w_down.data)
    got, want = again.logits(PROMPT[:8]), ours.logits(PROMPT[:8])
    assert np.abs(got - want).mean() < 0.01 * np.abs(want).max() and _cos(got, want).min() > 0.999


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("qtype", K2)
def test_non_finite_scale_names_the_tensor(k2_files, tmp_path, qtype):
    name = "blk.1.ffn_up.weight"
    raw = bytearray(GGUFFile(k2_files[qtype]).raw(name))
    lo = SCALES[qtype][0] + QTYPES[qtype][2] * 3  # super-block 3's d
    raw[lo : lo + 2] = np.array([np.inf], "<f2").tobytes()
    bad = _rewrite(k2_files[qtype], str(tmp_path / "bad.gguf"), name, bytes(raw))
    with pytest.raises(FormatError, match=rf"'{name}'.*non-finite.*block 3"):
        Model.load(bad)


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("qtype", K2)
def test_truncated_super_block_names_the_tensor(k2_files, tmp_path, qtype):
    name = "blk.0.attn_q.weight"
    raw = bytes(GGUFFile(k2_files[qtype]).raw(name))
    bad = _rewrite(k2_files[qtype], str(tmp_path / "cut.gguf"), name, raw, last=True)
    blob = open(bad, "rb").read()
    with open(bad, "wb") as f:
        f.write(blob[: len(blob) - QTYPES[qtype][2] // 2])  # half of the last super-block
    with pytest.raises(FormatError, match=rf"{name}.*past the end"):
        Model.load(bad)
