"""ops.matmul and ops.linear against the float64 reference, on every ISA path at 1 and 2 threads.

Shapes hit the micro-tile edges (M, N not multiples of MR/NR), the k tails of the packing and gemv
loops (K = 1, 7, 97, 300, 4099), several depth blocks (K = 4099), both thread splits (by columns for
wide N, by rows for narrow N) and the gemv path linear takes for a few rows (M = 1, 2), whose W
blocks are shared by the rows (several blocks at K = 4099, N = 1000).
"""

import numpy as np
import pytest
from helpers import assert_close
from tolerances import matmul_tol

from fastformer import _reference as ref
from fastformer import ops

MS = [1, 2, 7, 97, 128]
KS = [1, 7, 97, 256, 300, 4099]
NS = [1, 7, 97, 130, 1000]


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("m", MS)
def test_linear_matches_reference(isa, threads, rng, m, k):
    x = randn(rng, m, k)
    for n in NS:
        w, b = randn(rng, n, k), randn(rng, n)
        want = ref.linear(x, w)
        assert_close(ops.linear(x, w), want, "matmul", **matmul_tol(k))
        assert_close(ops.linear(x, w, b), want + b, "matmul", **matmul_tol(k))


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("m", MS)
def test_matmul_matches_reference(isa, threads, rng, m, k):
    a = randn(rng, m, k)
    for n in NS:
        b = randn(rng, k, n)
        assert_close(ops.matmul(a, b), ref.matmul(a, b), "matmul", **matmul_tol(k))


@pytest.mark.parametrize("m, k, n", [(700, 1100, 70), (300, 2100, 530), (33, 64, 2048)])
def test_large_shapes_span_several_blocks(isa, threads, rng, m, k, n):
    # several row blocks of packed A, several depth blocks, and both thread splits
    x, w, b = randn(rng, m, k), randn(rng, n, k), randn(rng, n)
    assert_close(ops.linear(x, w, b), ref.linear(x, w, b), "matmul", **matmul_tol(k))
    bt = np.ascontiguousarray(w.T)
    assert_close(ops.matmul(x, bt), ref.matmul(x, bt), "matmul", **matmul_tol(k))


def test_exact_on_integers(isa, threads):
    # small integers make every product and partial sum exact in float32, whatever the order
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (37, 301)).astype(np.float32)
    w = rng.integers(-3, 4, (45, 301)).astype(np.float32)
    np.testing.assert_array_equal(ops.linear(x, w), (x.astype(np.int64) @ w.T.astype(np.int64)).astype(np.float32))
    np.testing.assert_array_equal(ops.matmul(x, w.T.copy()), ops.linear(x, w))


def test_linear_1d_and_3d_x(isa, threads, rng):
    w, b = randn(rng, 97, 300), randn(rng, 97)
    x1 = randn(rng, 300)
    y1 = ops.linear(x1, w, b)
    assert y1.shape == (97,)
    assert_close(y1, ref.linear(x1, w, b), "matmul", **matmul_tol(300))
    x3 = randn(rng, 2, 5, 300)
    y3 = ops.linear(x3, w, b)
    assert y3.shape == (2, 5, 97)
    assert_close(y3, ref.linear(x3, w, b), "matmul", **matmul_tol(300))


@pytest.mark.parametrize("m, n", [(0, 5), (3, 0), (0, 0)])
def test_empty_rows_or_columns(isa, threads, m, n):
    x, w = np.ones((m, 4), np.float32), np.ones((n, 4), np.float32)
    assert ops.linear(x, w).shape == (m, n)
    assert ops.matmul(x, np.ones((4, n), np.float32)).shape == (m, n)


@pytest.mark.parametrize("m", [1, 3, 40])
def test_k_zero_gives_bias_or_zero(isa, threads, m):
    x, w = np.ones((m, 0), np.float32), np.ones((5, 0), np.float32)
    b = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(ops.linear(x, w), np.zeros((m, 5), np.float32))
    np.testing.assert_array_equal(ops.linear(x, w, b), np.broadcast_to(b, (m, 5)))
    # out starts as garbage: the empty sum must overwrite it
    out = np.full((m, 5), np.nan, np.float32)
    np.testing.assert_array_equal(ops.matmul(x, np.ones((0, 5), np.float32), out=out), np.zeros((m, 5)))


@pytest.mark.parametrize("m", [1, 7, 97])
def test_out_is_filled_and_returned(isa, threads, rng, m):
    x, w, b = randn(rng, m, 300), randn(rng, 130, 300), randn(rng, 130)
    out = np.full((m, 130), np.nan, np.float32)
    y = ops.linear(x, w, b, out=out)
    assert y is out
    assert_close(out, ref.linear(x, w, b), "matmul", **matmul_tol(300))
    out2 = np.full((m, 130), np.nan, np.float32)
    assert ops.matmul(x, np.ascontiguousarray(w.T), out=out2) is out2
    assert_close(out2, ref.linear(x, w), "matmul", **matmul_tol(300))


def test_read_only_inputs(isa, rng):
    x, w, b = randn(rng, 7, 97), randn(rng, 130, 97), randn(rng, 130)
    for arr in (x, w, b):
        arr.flags.writeable = False
    assert_close(ops.linear(x, w, b), ref.linear(x, w, b), "matmul", **matmul_tol(97))
    assert_close(ops.linear(x[0], w, b), ref.linear(x[0], w, b), "matmul", **matmul_tol(97))
    wt = np.ascontiguousarray(w.T)
    wt.flags.writeable = False
    assert_close(ops.matmul(x, wt), ref.matmul(x, wt), "matmul", **matmul_tol(97))


def test_non_contiguous_inputs(isa, threads, rng):
    x = randn(rng, 20, 200)[::2, ::2]  # (10, 100) strided
    w = np.asfortranarray(randn(rng, 33, 100))
    b = randn(rng, 66)[::2]
    assert_close(ops.linear(x, w, b), ref.linear(x, w, b), "matmul", **matmul_tol(100))
    bt = randn(rng, 33, 100).T  # (100, 33), a transposed view
    assert_close(ops.matmul(x, bt), ref.matmul(x, bt), "matmul", **matmul_tol(100))
    x3 = randn(rng, 4, 3, 200)[:, :, ::2]
    assert_close(ops.linear(x3, w, b), ref.linear(x3, w, b), "matmul", **matmul_tol(100))


def test_bad_dtypes_raise():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="float64"):
        ops.linear(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="float16"):
        ops.linear(x, w.astype(np.float16))
    with pytest.raises(TypeError, match="int32"):
        ops.linear(x, w, np.ones(4, np.int32))
    with pytest.raises(TypeError):
        ops.linear(x.tolist(), w)
    with pytest.raises(TypeError, match="float64"):
        ops.matmul(x, np.ones((3, 4)))
    with pytest.raises(TypeError):
        ops.matmul([[1.0]], np.ones((1, 1), np.float32))


def test_bad_shapes_raise():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        ops.linear(x, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        ops.linear(x, w, np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        ops.linear(x, w, np.ones((4, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(12,\)"):
        ops.linear(x, np.ones(12, np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        ops.matmul(x, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        ops.matmul(np.ones(3, np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        ops.matmul(x, np.ones((1, 2, 3), np.float32))


def test_bad_out_raises():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        ops.linear(x, w, out=np.empty((4, 2), np.float32))
    with pytest.raises(TypeError):
        ops.linear(x, w, out=np.empty((2, 4), np.float64))
    with pytest.raises(ValueError, match="contiguous"):
        ops.linear(x, w, out=np.empty((4, 2), np.float32).T)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        ops.matmul(x, np.ones((3, 3), np.float32), out=np.empty((2, 4), np.float32))


def test_out_overlapping_an_input_raises():
    a = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        ops.linear(a, np.ones((4, 4), np.float32), out=a)
    w = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        ops.linear(np.ones((4, 4), np.float32), w, out=w)
    b = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        ops.linear(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), b[:4], out=b.reshape(2, 4))
    with pytest.raises(ValueError, match="overlap"):
        ops.matmul(a, np.ones((4, 4), np.float32), out=a)
    buf = np.ones(32, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        ops.matmul(buf[:16].reshape(4, 4), np.ones((4, 4), np.float32), out=buf[8:24].reshape(4, 4))


@pytest.mark.parametrize("m", [1, 2, 4])
@pytest.mark.parametrize("n,k", [(1000, 768), (200, 300), (16 * 64 + 17, 97)])
def test_gemv_bits_do_not_depend_on_threads(isa, rng, m, n, k):
    """Decode gemv: threads take 64-row chunks in whatever order they come (or a thread's static slice for a
    few rows), and W from memory runs a different loop than W in cache; every row's bits must be the same at
    1 and 2 threads."""
    import fastformer

    x, w, b = randn(rng, m, k), randn(rng, n, k), randn(rng, n)
    before = fastformer.get_num_threads()
    try:
        got = []
        for t in (1, 2, 1, 2):
            fastformer.set_num_threads(t)
            got.append(ops.linear(x, w, b))
    finally:
        fastformer.set_num_threads(before)
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    assert_close(got[0], ref.linear(x, w, b), "matmul", **matmul_tol(k))
