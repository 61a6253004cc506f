"""Quantized weights: bytes and dequantization against the numpy oracle (fastformer/_reference.py) and the
gguf package's reference quantizers, fp16 rounding, and the quantized linear kernels on every ISA path (VNNI on
and off) and thread count against the oracle, which quantizes the activations the same way (int8 per 32, scale
max|x|/127, round to nearest even)."""

import os

import numpy as np
import pytest
from helpers import each_dot256, on_scalar, optional, random_blocks, same_at_thread_counts
from tolerances import matmul_tol

import fastformer
from fastformer import _core, ops
from fastformer import _reference as ref
from fastformer.errors import UnsupportedError
from fastformer.quant import QTYPES, QuantizedTensor, quantize

gguf = optional("gguf")
GT = getattr(gguf, "GGMLQuantizationType", None)


_FEATURES = _core.cpu_features()


def test_dot256_choices():
    before = _core.quant_dot256()
    try:
        assert before == ("avxvnni" if "avx_vnni" in _FEATURES else "maddubs")  # the default
        for name in _core.DOT256_NAMES:
            can = {
                "maddubs": True,
                "avxvnni": "avx_vnni" in _FEATURES,
                "vnni256": {"avx512_vnni", "avx512vl"} <= set(_FEATURES) and "avx512" in _core.supported_isas(),
            }
            if can[name]:
                _core.quant_set_dot256(name)
                assert _core.quant_dot256() == name
            else:
                with pytest.raises(fastformer.IsaError, match=name):
                    _core.quant_set_dot256(name)
                assert _core.quant_dot256() != name
        with pytest.raises(ValueError, match="unknown"):
            _core.quant_set_dot256("sse")
    finally:
        _core.quant_set_dot256(before)


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
    return w


GGUF_SHAPES = [(1, 32), (7, 64), (97, 96), (33, 4096)]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "f16", "bf16"])
@pytest.mark.parametrize("kind", ["normal", "scaled", "huge", "tiny", "zeros", "ties"])
@pytest.mark.parametrize("shape", GGUF_SHAPES, ids=str)
def test_quantize_bytes_equal_reference(isa, rng, qtype, kind, shape):
    w = _weights(rng, shape, kind)
    want = ref.quantize(w, qtype)
    qt = quantize(w, qtype)
    np.testing.assert_array_equal(qt.data, want)
    assert qt.nbytes == want.nbytes and qt.shape == shape and qt.qtype == qtype


@pytest.mark.peer("gguf")
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # gguf's fp16 scales of "huge" blocks
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "f16", "bf16"])
@pytest.mark.parametrize("kind", ["normal", "scaled", "huge", "tiny", "zeros", "ties"])
@pytest.mark.parametrize("shape", GGUF_SHAPES, ids=str)
def test_quantize_bytes_equal_gguf(isa, rng, qtype, kind, shape):
    w = _weights(rng, shape, kind)
    want = gguf.quants.quantize(w, GT[qtype.upper()]).view(np.uint8).reshape(shape[0], -1)
    qt = quantize(w, qtype)
    assert qt.data.dtype == np.uint8 and qt.data.shape == want.shape
    np.testing.assert_array_equal(qt.data, want)
    assert qt.nbytes == want.nbytes and qt.shape == shape and qt.qtype == qtype


@pytest.mark.peer("gguf")
def test_quantize_converts_float64_and_float16_like_gguf(rng):
    w = rng.standard_normal((5, 64))
    for src in (w, w.astype(np.float16)):
        want = gguf.quants.quantize(src.astype(np.float32), GT.Q8_0).view(np.uint8)
        np.testing.assert_array_equal(quantize(src, "q8_0").data.reshape(-1), want.reshape(-1))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k", "q6_k", "f16", "bf16"])
@pytest.mark.parametrize("kind", ["scaled", "huge"])
@pytest.mark.parametrize("shape", [(1, 256), (7, 512), (33, 2048)], ids=str)
def test_dequantize_equals_reference(rng, qtype, kind, shape):
    if qtype in ("q4_k", "q6_k"):
        qt = QuantizedTensor.from_bytes(random_blocks(rng, qtype, *shape), qtype, shape)
    else:
        qt = quantize(_weights(rng, shape, kind), qtype)
    got = qt.dequantize()
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, ref.dequantize(qt.data, qtype, shape))


@pytest.mark.peer("gguf")
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k", "q6_k", "f16", "bf16"])
@pytest.mark.parametrize("shape", [(1, 256), (7, 512), (33, 2048)], ids=str)
def test_dequantize_equals_gguf(rng, qtype, shape):
    if qtype in ("q4_k", "q6_k"):
        qt = QuantizedTensor.from_bytes(random_blocks(rng, qtype, *shape), qtype, shape)
    else:
        qt = quantize(_weights(rng, shape, "scaled"), qtype)
    want = gguf.quants.dequantize(qt.data, GT[qtype.upper()])
    got = qt.dequantize()
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ["normal", "scaled", "tiny"])
def test_round_trip_error_bounds(rng, kind):
    w = _weights(rng, (61, 1024), kind)
    amax = np.abs(w.reshape(61, -1, 32)).max(-1, keepdims=True)
    for qtype, step, bound in [("q8_0", amax / 127, 0.5), ("q4_0", amax / 8, 1.0)]:
        err = np.abs(quantize(w, qtype).dequantize().reshape(61, -1, 32) - w.reshape(61, -1, 32))
        # half a step (q4_0: a whole step for the one code that clips at 15), plus the fp16 rounding of the
        # scale and, for subnormal scales, fp16's absolute resolution
        assert np.all(err <= step * (bound + 128 * 2.0**-11) + 2.0**-24 * 128)
        if kind == "normal":
            rms = np.sqrt((err**2).mean()) / np.sqrt((step**2).mean())
            assert 0.2 < rms < 0.4  # uniform rounding error: step / sqrt(12) = 0.29 step


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_fp16_conversion_matches_numpy_on_every_isa(isa, rng):
    bits = np.concatenate(
        [
            rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32),
            # the fp16 range, its subnormals and the exact ties between fp16 neighbours
            (np.arange(0, 2**16, dtype=np.uint32) << 13) + np.uint32(0x33000000),
            (np.arange(0, 2**16, dtype=np.uint32) << 13) + np.uint32(0x33000000 + 0x1000),
            np.array(
                [
                    0,
                    0x80000000,
                    0x7F800000,
                    0xFF800000,
                    0x477FE000,
                    0x477FF000,
                    0x477FEFFF,
                    0x33000000,
                    0x33000001,
                    0x387FE000,
                    0x387FF000,
                    0x38800000,
                ],
                dtype=np.uint32,
            ),
        ]
    )
    x = bits.view(np.float32)
    got = _core.fp32_to_fp16(x)
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(got[finite], x[finite].astype(np.float16).view(np.uint16))
    # nan stays nan (f16c's quiet nan with the payload's top bits, on every path alike)
    assert np.all(np.isnan(got[~finite].view(np.float16)))
    nan = bits[~finite]
    np.testing.assert_array_equal(got[~finite], (nan >> 16 & 0x8000) | 0x7E00 | (nan >> 13 & 0x3FF))
    # and back: all 65536 patterns, exactly
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    back = _core.fp16_to_fp32(h)
    ok = ~np.isnan(h.view(np.float16))
    np.testing.assert_array_equal(back[ok], h[ok].view(np.float16).astype(np.float32))
    assert np.all(np.isnan(back[~ok]))


# ---- the quantized linear ----


def _make(rng, qtype, n, k):
    if qtype in ("q4_k", "q6_k"):
        return QuantizedTensor.from_bytes(random_blocks(rng, qtype, n, k), qtype, (n, k))
    return quantize(rng.standard_normal((n, k)).astype(np.float32), qtype)


LINEAR_CASES = [  # (M, N, K): tails of the 8/16-block chunks, 1..4 activation rows per tile, m > 4
    (1, 1, 32),
    (1, 7, 96),
    (3, 97, 544),
    (4, 33, 1024),
    (5, 16, 2048),
    (9, 97, 768),
    (37, 33, 768),  # the 256-bit k-quant kernels' 16-row calls, then 4 and 1
    (1, 256, 4096 + 256),
]


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k", "q6_k"])
@pytest.mark.parametrize("m,n,k", LINEAR_CASES, ids=str)
def test_linear_matches_oracle_on_every_path(qpath, threads, rng, qtype, m, n, k):
    block = QTYPES[qtype][1]
    k = -(-k // block) * block  # k-quants: whole super-blocks
    qt = _make(rng, qtype, n, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    y = ops.linear(x, qt, bias)
    want, mag = ref.linear_q(x, qt.data, qtype, qt.shape, bias)
    assert y.dtype == np.float32 and y.shape == (m, n)
    # each block's int dot is exact; only the sums of scaled blocks round (and q4_k/q6_k's float offsets)
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))


def test_simd_paths_agree_with_scalar(rng):
    k, n, m = 2048 + 64, 129, 6
    x = rng.standard_normal((m, k)).astype(np.float32)
    before, dot_before = _core.current_isa(), _core.quant_dot256()
    try:
        for qtype in ["q8_0", "q4_0", "q4_k", "q6_k"]:
            kk = k // 256 * 256 if qtype in ("q4_k", "q6_k") else k
            qt = _make(rng, qtype, n, kk)
            _core.set_isa("scalar")
            ref = ops.linear(x[:, :kk], qt)
            mag = np.abs(ref).max()
            first = None
            for path in _core.supported_isas()[1:]:
                _core.set_isa(path)
                for on in (False, True):
                    _core.quant_set_vnni(on)
                    for _dot in each_dot256():
                        got = ops.linear(x[:, :kk], qt)
                        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * mag)
                        if qtype in ("q4_k", "q6_k"):  # one float scaling per block, in the scalar twin's order
                            np.testing.assert_array_equal(got, ref)
                        if not on:  # the 256-bit kernels: every int8 dot gives the same bits
                            first = got if first is None else first
                            np.testing.assert_array_equal(got, first)
    finally:
        _core.set_isa(before)
        _core.quant_set_vnni(True)
        _core.quant_set_dot256(dot_before)


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_linear_error_is_what_8bit_activations_explain(qpath, rng, qtype):
    m, n, k = 7, 300, 1024
    x = rng.standard_normal((m, k)).astype(np.float32)
    qt = quantize(rng.standard_normal((n, k)).astype(np.float32), qtype)
    wd = qt.dequantize()
    y = ops.linear(x, qt)
    yf = ops.linear(x, wd)
    # |x - x8| <= max|x| / 254 per block of 32, so |y - yf| <= sum_j |w_j| * that (+ fp32 rounding of both)
    step = np.repeat(np.abs(x.reshape(m, -1, 32)).max(-1) / 254, 32, axis=1)
    bound = step.astype(np.float64) @ np.abs(wd.astype(np.float64)).T
    assert np.all(np.abs(y - yf) <= bound * 1.001 + matmul_tol(k)["atol"])
    # and the error is real but small: the 8-bit activations do move the result
    assert 0 < np.abs(y - yf).max() < 0.05 * np.abs(yf).max()


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k", "q6_k"])
def test_linear_bitwise_independent_of_thread_count(qpath, rng, qtype, m):
    qt = _make(rng, qtype, 301, 1024)
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    same_at_thread_counts(lambda: ops.linear(x, qt))


# ---- the r16 layout: 16 rows' blocks interleaved (models repack q8_0/q4_0 into it when the VNNI kernels run) ----

R16_CASES = [(1, 16, 32), (1, 48, 96), (3, 64, 768), (4, 32, 1024 + 32), (5, 16, 2048), (67, 96, 544)]


def _r16_linear(x, qt, bias=None):
    tid = qt.ggml_type
    return _core.linear_q(x, _core.repack_r16(qt.data, tid, qt.shape[1]), tid | _core.QTYPE_R16, qt.shape[1], bias)


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
@pytest.mark.parametrize("m,n,k", R16_CASES, ids=str)
def test_r16_linear_matches_oracle_on_every_path(qpath, threads, rng, qtype, m, n, k):
    qt = quantize(_weights(rng, (n, k), "scaled"), qtype)
    x = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    r = _core.repack_r16(qt.data, qt.ggml_type, k)
    assert r.shape == qt.data.shape and not np.array_equal(r, qt.data)  # same bytes, other order
    y = _r16_linear(x, qt, bias)
    want, mag = ref.linear_q(x, qt.data, qtype, qt.shape, bias)
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))
    # and it is the linear of the ggml layout, up to the order of the scaled-block sums
    np.testing.assert_allclose(y, ops.linear(x, qt, bias), rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_r16_bitwise_independent_of_thread_count(qpath, rng, qtype, m):
    qt = quantize(rng.standard_normal((304, 1024)).astype(np.float32), qtype)
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    same_at_thread_counts(lambda: _r16_linear(x, qt))


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k", "q5_k", "q6_k"])
def test_r16_rows_are_the_scalar_twin_whatever_shares_the_call(qpath, rng, qtype):
    # every row count 1..17 (one call takes up to 8 activation rows): each row equals that row
    # alone and the scalar twin, bit for bit
    k = 1024 + (256 if qtype.endswith("_k") else 32)  # an odd block count: the even/odd chains end unevenly
    qt = _make(rng, qtype, 64, k)
    x = rng.standard_normal((17, k)).astype(np.float32)
    want = on_scalar(lambda: np.concatenate([_r16_linear(x[i : i + 1], qt) for i in range(17)]))
    for m in range(1, 18):
        np.testing.assert_array_equal(_r16_linear(x[:m], qt), want[:m], err_msg=f"{m} rows")


R16_K_CASES = [(1, 16, 256), (2, 48, 768), (4, 32, 2048), (5, 16, 2048 + 256), (67, 64, 9 * 256), (1, 16, 17 * 256)]


def _vnni_row_linear(x, qt):
    """ops.linear on the avx512 vnni row kernels, or None where the cpu has no avx-512 vnni."""
    if "avx512_vnni" not in _core.cpu_features():
        return None
    before = _core.current_isa(), _core.quant_vnni()
    try:
        _core.set_isa("avx512")
        _core.quant_set_vnni(True)
        return ops.linear(x, qt)
    finally:
        _core.set_isa(before[0])
        _core.quant_set_vnni(before[1])


@pytest.mark.parametrize("qtype", ["q4_k", "q5_k", "q6_k"])
@pytest.mark.parametrize("m,n,k", R16_K_CASES, ids=str)
def test_r16_k_linear_is_the_row_kernel_bit_for_bit(qpath, rng, qtype, m, n, k):
    # the K-quant r16 kernels (and their scalar twin) sum each super-block in int32 and scale it once, as the row
    # kernels do
    qt = _make(rng, qtype, n, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    r = _core.repack_r16(qt.data, qt.ggml_type, k)
    assert r.shape == qt.data.shape and not np.array_equal(r, qt.data)
    y = _r16_linear(x, qt)
    want, mag = ref.linear_q(x, qt.data, qtype, qt.shape)
    assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6), np.max(np.abs(y - want) / (mag + 1e-30))
    np.testing.assert_array_equal(y, on_scalar(lambda: ops.linear(x, qt)))
    row = _vnni_row_linear(x, qt)
    if row is not None:
        np.testing.assert_array_equal(y, row)


@pytest.mark.parametrize("m", [1, 5, 67])
@pytest.mark.parametrize("qtype", ["q4_k", "q5_k", "q6_k"])
def test_r16_k_bitwise_independent_of_thread_count(qpath, rng, qtype, m):
    qt = _make(rng, qtype, 304, 1024)
    x = rng.standard_normal((m, 1024)).astype(np.float32)
    same_at_thread_counts(lambda: _r16_linear(x, qt))


@pytest.mark.parametrize("r16", [False, True], ids=["rows", "r16"])
@pytest.mark.parametrize("qtype", ["q8_0", "q4_k", "q6_k"])
def test_activation_quantized_per_thread_or_once_gives_the_same_bits(qpath, rng, qtype, r16):
    # up to 4 rows of fewer than 2^16 values are quantized by every thread into its own scratch; 4 rows of
    # 16640 are quantized once and shared: a row must come out the same either way, at any thread count
    k = 16640
    qt = _make(rng, qtype, 64, k)
    x = rng.standard_normal((4, k)).astype(np.float32)
    lin = _r16_linear if r16 else ops.linear
    shared = same_at_thread_counts(lambda: lin(x, qt), (1, 2, 3))
    for i in range(4):
        row = x[i : i + 1]
        own = same_at_thread_counts(lambda row=row: lin(row, qt), (1, 2, 3))
        np.testing.assert_array_equal(own[0], shared[i])


@pytest.mark.parametrize("r16", [False, True], ids=["rows", "r16"])
@pytest.mark.parametrize("qtype", ["q4_0", "q4_k", "q6_k"])
def test_rows_taken_from_other_threads_shares_give_the_same_bits(qpath, rng, qtype, r16):
    # a thread done with its share takes rows from the last eighth of another's (enough rows here for every
    # thread to have such a tail): whoever computes a row, its bits are the same as at 1 thread
    qt = _make(rng, qtype, 2048 + 96, 512)
    lin = _r16_linear if r16 else ops.linear
    for m in (1, 4):
        x = rng.standard_normal((m, 512)).astype(np.float32)
        y = same_at_thread_counts(lambda x=x: lin(x, qt), (1, 2, 3, 2, 3))
        want, mag = ref.linear_q(x, qt.data, qtype, qt.shape)
        assert np.all(np.abs(y - want) <= 2e-6 * mag + 1e-6)


@pytest.mark.parametrize("r16", [False, True], ids=["rows", "r16"])
@pytest.mark.parametrize("qtype,k", [("q8_0", 512), ("q4_k", 512), ("q6_k", 2048)])  # 64- and 32-row steps
def test_rows_given_away_at_the_end_of_a_share_give_the_same_bits(qpath, rng, qtype, k, r16):
    # a thread done with its share asks another, once that one is in the last eighth of its own, for the back half of
    # what is left of it. With one thread more than the usable cores some thread is always late, so rows change hands
    # on most calls (their tails span several 32- or 64-row steps here, the rows are not a multiple of 32): every
    # call's bits are the ones of 1 thread. Two inputs in turns, so a result buffer that held the previous call's
    # right answer cannot hide rows nobody computed
    n = 3 * 2048 + 80
    qt = _make(rng, qtype, n, k)
    lin = _r16_linear if r16 else ops.linear
    xs = [rng.standard_normal((1, k)).astype(np.float32) for _ in range(2)]
    cores = len(os.sched_getaffinity(0))
    before = fastformer.get_num_threads()
    try:
        fastformer.set_num_threads(1)
        wants = [lin(x, qt) for x in xs]
        for threads in (2, min(cores + 1, 8)):
            fastformer.set_num_threads(threads)
            grants0, rows0 = _core.tail_stats()
            for i in range(3000):
                np.testing.assert_array_equal(lin(xs[i % 2], qt), wants[i % 2])
                if i >= 20 and _core.tail_stats()[0] - grants0 >= 3:
                    break
            grants, rows = _core.tail_stats()
            assert (rows - rows0) % 32 == 0  # whole 32-row units
    finally:
        fastformer.set_num_threads(before)
    if cores < 8:  # the last round had more threads than cores
        assert grants - grants0 >= 3 and rows - rows0 >= 32 * (grants - grants0)


def test_r16_pays_only_with_vnni():
    before = _core.current_isa(), _core.quant_vnni()
    try:
        for path in _core.supported_isas():
            _core.set_isa(path)
            _core.quant_set_vnni(True)
            assert _core.repack_r16_pays() == (path == "avx512" and "avx512_vnni" in _core.cpu_features())
            _core.quant_set_vnni(False)
            assert not _core.repack_r16_pays()
    finally:
        _core.set_isa(before[0])
        _core.quant_set_vnni(before[1])


def test_r16_bad_inputs(rng):
    qt = quantize(rng.standard_normal((24, 64)).astype(np.float32), "q8_0")
    with pytest.raises(ValueError, match="24 rows, expected a multiple of 16"):
        _core.repack_r16(qt.data, qt.ggml_type, 64)
    with pytest.raises(
        ValueError,
        match="is not q8_0 or q6_k or q5_1 or q5_0 or q5_k or q4_1 or q4_0 or q4_k or iq4_nl or iq4_xs or q3_k or q2_k",
    ):
        _core.repack_r16(qt.data, QTYPES["f16"][0], 256)
    with pytest.raises(ValueError, match="24 rows, expected a multiple of 16"):
        _core.linear_q(np.ones((1, 64), np.float32), qt.data, qt.ggml_type | _core.QTYPE_R16, 64)


def test_linear_leading_axes_out_and_bias(rng):
    qt = quantize(rng.standard_normal((40, 64)).astype(np.float32), "q8_0")
    x = rng.standard_normal((2, 3, 64)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    y = ops.linear(x, qt, b)
    assert y.shape == (2, 3, 40)
    np.testing.assert_array_equal(y.reshape(6, 40), ops.linear(x.reshape(6, 64), qt, b))
    out = np.empty((6, 40), np.float32)
    assert ops.linear(x.reshape(6, 64), qt, b, out=out) is out
    np.testing.assert_array_equal(out, y.reshape(6, 40))
    want = ref.linear_q(x[0, :1], qt.data, qt.qtype, qt.shape)[0]
    np.testing.assert_allclose(ops.linear(x[0, :1], qt), want, rtol=1e-5, atol=1e-4)


@pytest.mark.peer("gguf")
def test_types_and_sizes_match_ggml():
    for name, (tid, block, size) in QTYPES.items():
        assert tid == GT[name.upper()].value
        assert (block, size) == gguf.GGML_QUANT_SIZES[GT[name.upper()]]


def test_from_bytes_is_zero_copy_and_validated(rng):
    qt = quantize(rng.standard_normal((3, 64)).astype(np.float32), "q4_0")
    raw = qt.data.tobytes()
    view = QuantizedTensor.from_bytes(raw, "q4_0", (3, 64))
    assert np.shares_memory(view.data, np.frombuffer(raw, np.uint8))
    np.testing.assert_array_equal(view.dequantize(), qt.dequantize())
    assert QuantizedTensor.from_bytes(qt.data, 2, (3, 64)).qtype == "q4_0"  # a ggml type id works too
    with pytest.raises(ValueError, match="108 bytes"):
        QuantizedTensor.from_bytes(raw[:-1], "q4_0", (3, 64))
    with pytest.raises(ValueError, match="multiple of 256"):
        QuantizedTensor.from_bytes(bytes(210), "q6_k", (1, 128))


def test_bad_inputs_raise_clear_errors(rng):
    w = rng.standard_normal((4, 48)).astype(np.float32)
    with pytest.raises(ValueError, match="multiple of 32 weights, got 48"):
        quantize(w, "q8_0")
    with pytest.raises(TypeError, match="int32"):
        quantize(w.astype(np.int32), "q4_0")
    with pytest.raises(ValueError, match="unknown qtype 'q3_z'"):
        quantize(w, "q3_z")
    with pytest.raises(ValueError, match=r"2-D.*\(192,\)"):
        quantize(w.reshape(-1), "q8_0")
    with pytest.raises(UnsupportedError, match="no quantizer for q6_k"):
        quantize(rng.standard_normal((1, 256)).astype(np.float32), "q6_k")
    qt = quantize(rng.standard_normal((5, 64)).astype(np.float32), "q8_0")
    with pytest.raises(ValueError, match=r"x has shape \(2, 32\) and w has shape \(5, 64\)"):
        ops.linear(np.ones((2, 32), np.float32), qt)
    with pytest.raises(TypeError, match="float64"):
        ops.linear(np.ones((2, 64)), qt)
    with pytest.raises(ValueError, match=r"bias has shape \(4,\), expected \(5,\)"):
        ops.linear(np.ones((2, 64), np.float32), qt, np.ones(4, np.float32))
    with pytest.raises(UnsupportedError, match="no f16 kernel"):
        ops.linear(np.ones((2, 64), np.float32), quantize(w[:, :32], "f16"))
    with pytest.raises(TypeError, match="uint8"):
        QuantizedTensor(qt.data.astype(np.int8), "q8_0", (5, 64))
