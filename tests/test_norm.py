"""rms_norm and layer_norm against the float64 reference, on every ISA path and at 1 and 2 threads.

Row lengths cross the SIMD widths (8 lanes of avx2, 16 of avx-512, 32-element unrolled loops) and leave
scalar tails; (64, 1024) and (16, 4099) reach the 64k elements past which the driver splits rows over threads.
"""

import numpy as np
import pytest
from helpers import assert_close

from fastformer import _reference as ref
from fastformer import ops

SHAPES = [(1,), (7,), (97,), (4099,), (2, 1), (5, 33), (64, 1024), (16, 4099), (3, 5, 4099), (2, 3, 2048)]


def inputs(shape, seed=0, scale=1.0, offset=0.0):
    rng = np.random.default_rng([seed, *shape])
    x = (rng.standard_normal(shape) * scale + offset).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rms_norm(isa, threads, shape):
    x, w, _ = inputs(shape)
    got = ops.rms_norm(x, w)
    assert got.shape == shape
    assert_close(got, ref.rms_norm(x, w), "norm")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_norm(isa, threads, shape, with_bias):
    x, w, b = inputs(shape)
    b = b if with_bias else None
    got = ops.layer_norm(x, w, b)
    assert got.shape == shape
    assert_close(got, ref.layer_norm(x, w, b), "norm")


@pytest.mark.parametrize("eps", [0.0, 1e-6, 1e-2])
def test_eps(isa, eps):
    x, w, b = inputs((4, 97), scale=0.1)
    assert_close(ops.rms_norm(x, w, eps=eps), ref.rms_norm(x, w, eps=eps), "norm")
    assert_close(ops.layer_norm(x, w, b, eps=eps), ref.layer_norm(x, w, b, eps=eps), "norm")


@pytest.mark.parametrize("n", [7, 97, 4099])
@pytest.mark.parametrize("scale,offset", [(1e4, 0.0), (1e-4, 0.0), (1.0, 1e4), (3e15, 0.0), (1e-30, 0.0)])
def test_extreme_magnitudes(isa, threads, n, scale, offset):
    # large values must not overflow the sums; a mean far from zero must not cost the deviations their bits
    x, w, b = inputs((3, n), scale=scale, offset=offset)
    assert_close(ops.rms_norm(x, w, eps=0.0), ref.rms_norm(x, w, eps=0.0), "norm")
    assert_close(ops.layer_norm(x, w, b, eps=0.0), ref.layer_norm(x, w, b, eps=0.0), "norm")


@pytest.mark.parametrize("n", [1, 7, 97, 4099])
def test_constant_and_zero_rows(isa, n):
    w = np.linspace(-2, 2, n, dtype=np.float32)
    b = np.linspace(1, 3, n, dtype=np.float32)
    zeros = np.zeros((2, n), np.float32)
    const = np.full((2, n), 3.5, np.float32)
    # zero variance: rms_norm of zeros is 0, layer_norm of a constant row is the bias
    np.testing.assert_array_equal(ops.rms_norm(zeros, w), zeros)
    assert_close(ops.layer_norm(const, w, b), np.broadcast_to(b, const.shape).astype(np.float64), "norm")
    assert_close(ops.layer_norm(const, w, None), np.zeros(const.shape), "norm")
    assert_close(ops.rms_norm(const, w), ref.rms_norm(const, w), "norm")


def test_outlier_first_element(isa):
    # the one-pass variance is shifted by the first element of the row; an outlier there must not matter
    x, w, b = inputs((4, 4099))
    x[:, 0] = 3e4
    assert_close(ops.layer_norm(x, w, b), ref.layer_norm(x, w, b), "norm")


def test_non_contiguous(isa, threads):
    x, w, b = inputs((64, 2 * 1030))
    xs = x[:, ::2]
    xt = np.ascontiguousarray(x[:, :64]).T
    ws, bs = w[::2], b[::2]
    assert not xs.flags.c_contiguous and not xt.flags.c_contiguous and not ws.flags.c_contiguous
    assert_close(ops.rms_norm(xs, ws), ref.rms_norm(xs, ws), "norm")
    assert_close(ops.layer_norm(xs, ws, bs), ref.layer_norm(xs, ws, bs), "norm")
    assert_close(ops.rms_norm(xt, w[:64]), ref.rms_norm(xt, w[:64]), "norm")
    assert_close(ops.layer_norm(xt, w[:64], b[:64]), ref.layer_norm(xt, w[:64], b[:64]), "norm")


def test_rows_are_independent(isa, threads):
    # each row is normalized on its own, whatever thread takes it
    x, w, b = inputs((64, 1024))
    full = ops.layer_norm(x, w, b)
    for r in (0, 31, 32, 63):
        np.testing.assert_array_equal(ops.layer_norm(x[r : r + 1], w, b), full[r : r + 1])
        np.testing.assert_array_equal(ops.rms_norm(x[r], w), ops.rms_norm(x, w)[r])


def test_bad_dtype():
    x, w, b = inputs((2, 8))
    with pytest.raises(TypeError, match="float64"):
        ops.rms_norm(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="float16"):
        ops.layer_norm(x, w.astype(np.float16), b)
    with pytest.raises(TypeError, match="int32"):
        ops.layer_norm(x, w, b.astype(np.int32))
    with pytest.raises(TypeError, match="list"):
        ops.rms_norm(x.tolist(), w)


def test_bad_shapes():
    x, w, b = inputs((2, 8))
    with pytest.raises(ValueError, match=r"\(7,\).*\(8,\)"):
        ops.rms_norm(x, w[:7])
    with pytest.raises(ValueError, match=r"\(9,\).*\(8,\)"):
        ops.layer_norm(x, w, np.zeros(9, np.float32))
    with pytest.raises(ValueError, match=r"\(2, 8\)"):
        ops.layer_norm(x, np.zeros((2, 8), np.float32), b)
    with pytest.raises(ValueError, match=r"\(2, 0\)"):
        ops.rms_norm(np.zeros((2, 0), np.float32), np.zeros(0, np.float32))
