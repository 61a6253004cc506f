"""softmax, gelu (tanh and erf) and silu against the float64 reference, on every ISA path, at 1 and 2 threads.

Sizes leave scalar tails after the 8- and 16-lane loops; the larger ones are split over threads (rows for
softmax, 64-element chunks for the activations); a 70000-long row crosses softmax's blocked partial sums.
"""

import numpy as np
import pytest
from helpers import assert_close

from fastformer import _core, ops
from fastformer import _reference as ref

SHAPES = [(1,), (7,), (97,), (4099,), (3, 1), (5, 33), (64, 1024), (3, 5, 4099), (2, 3, 2048), (2, 70000)]
ACTS = ["gelu_tanh", "gelu_erf", "silu"]


def data(shape, scale=4.0, seed=0):
    return (np.random.default_rng([seed, *shape]).standard_normal(shape) * scale).astype(np.float32)


def act(name, x):
    if name == "silu":
        return ops.silu(x)
    return ops.gelu(x, approximate="tanh" if name == "gelu_tanh" else "none")


def act_ref(name, x):
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "silu":
            return ref.silu(x)
        return ref.gelu(x, "tanh" if name == "gelu_tanh" else "none")


# ---- softmax ----


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax(isa, threads, shape):
    x = data(shape)
    got = ops.softmax(x)
    assert got.shape == shape
    assert_close(got, ref.softmax(x), "softmax")


@pytest.mark.parametrize("shape,axis", [((97, 5), 0), ((6, 97, 5), 1), ((6, 97, 5), -2), ((33, 4, 7), 0)])
def test_softmax_other_axis(isa, threads, shape, axis):
    x = data(shape)
    got = ops.softmax(x, axis=axis)
    assert got.flags.c_contiguous
    assert_close(got, ref.softmax(x, axis=axis), "softmax")


@pytest.mark.parametrize("n", [7, 97, 4099])
def test_softmax_masked_rows(isa, threads, n):
    # -inf entries (attention masks) get exactly 0; a row with one finite entry is one-hot
    x = data((4, n))
    mask = np.random.default_rng(n).random((4, n)) < 0.5
    x[mask] = -np.inf
    x[2, 0], x[2, 1:] = 1.5, -np.inf
    x[3, n - 1], x[3, : n - 1] = -2.5, -np.inf
    got = ops.softmax(x)
    assert_close(got, ref.softmax(x), "softmax")
    assert (got[np.isneginf(x)] == 0).all()
    assert got[2, 0] == 1.0 and got[3, n - 1] == 1.0


@pytest.mark.parametrize("n", [7, 97, 4099])
def test_softmax_extreme_values(isa, threads, n):
    # big magnitudes must not overflow exp; the result only depends on differences within a row
    rows = np.stack(
        [
            data((n,), scale=1e4, seed=1),
            data((n,), scale=1.0, seed=2) + np.float32(1e4),
            data((n,), scale=1.0, seed=2) - np.float32(3e4),
            np.zeros(n),
            np.full(n, 3e38),
            np.where(np.arange(n) % 2 == 0, 1e30, -1e30),
            data((n,), scale=30.0, seed=3),
        ]
    ).astype(np.float32)
    got = ops.softmax(rows)
    assert np.isfinite(got).all()
    assert_close(got, ref.softmax(rows.astype(np.float64)), "softmax")
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-5)


def test_softmax_nan_and_all_masked_rows(isa):
    # as numpy and torch: a nan anywhere, or a row with nothing but -inf, gives a row of nan
    x = data((3, 97))
    x[0, 40] = np.nan
    x[1] = -np.inf
    with np.errstate(invalid="ignore"):
        want = ref.softmax(x)
    got = ops.softmax(x)
    assert np.isnan(got[:2]).all()
    assert_close(got, want, "softmax")


# ---- gelu and silu ----


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", [(0,), *SHAPES], ids=str)
def test_activation(isa, threads, name, shape):
    x = data(shape, scale=3.0)
    got = act(name, x)
    assert got.shape == shape
    assert_close(got, act_ref(name, x), "act")


@pytest.mark.parametrize("name", ACTS)
def test_activation_dense_sweep(isa, name):
    # every polynomial range and the branch points of erf, tanh and exp
    x = np.linspace(-30, 30, 600_001, dtype=np.float32)
    assert_close(act(name, x), act_ref(name, x), "act")
    small = np.linspace(-1e-3, 1e-3, 20_001, dtype=np.float32)
    assert_close(act(name, small), act_ref(name, small), "act", atol=1e-12)


@pytest.mark.parametrize("name", ACTS)
def test_activation_extreme_values(isa, name):
    big = [1e4, 88.0, 100.0, 1e30, 3.4e38, np.inf, 9.0, 4.4, 6.37]
    tiny = [0.0, 1e-30, 1e-40]
    vals = np.array(big + [-v for v in big] + tiny + [-v for v in tiny], np.float32)
    x = np.tile(vals, 5)  # whole vectors and the scalar tail see them
    assert_close(act(name, x), act_ref(name, x), "act")
    # large positive inputs pass through, large negative ones give 0 (not nan)
    assert (act(name, np.float32([1e4, 1e30])) == np.float32([1e4, 1e30])).all()
    neg = act(name, np.float32([-1e4, -1e30, -100.0] * 6))
    assert (np.abs(neg) < 1e-30).all()


@pytest.mark.parametrize("name", ACTS)
def test_activation_nan(isa, name):
    x = np.full(37, np.nan, np.float32)
    x[::3] = 1.0
    got = act(name, x)
    assert np.isnan(got[np.isnan(x)]).all() and np.isfinite(got[~np.isnan(x)]).all()


def test_non_contiguous(isa, threads):
    x = data((64, 2 * 1030))
    for v in (x[:, ::2], x[:64, :64].T, x[::-1]):
        assert not v.flags.c_contiguous
        assert_close(ops.softmax(v), ref.softmax(v), "softmax")
        for name in ACTS:
            assert_close(act(name, v), act_ref(name, v), "act")


# ---- argument checks ----


def test_bad_dtype():
    x = data((2, 8))
    for fn in (ops.softmax, ops.silu, ops.gelu):
        with pytest.raises(TypeError, match="float64"):
            fn(x.astype(np.float64))
        with pytest.raises(TypeError, match="int64"):
            fn(np.zeros((2, 3), np.int64))
        with pytest.raises(TypeError, match="list"):
            fn([1.0, 2.0])


def test_bad_arguments():
    x = data((2, 8))
    with pytest.raises(ValueError, match=r"axis 2 .*\(2, 8\)"):
        ops.softmax(x, axis=2)
    with pytest.raises(ValueError, match=r"axis -3 .*\(2, 8\)"):
        ops.softmax(x, axis=-3)
    with pytest.raises(ValueError, match="0-d"):
        ops.softmax(np.ones((), np.float32))
    with pytest.raises(ValueError, match="'exact'"):
        ops.gelu(x, approximate="exact")


def test_empty_rows():
    assert ops.softmax(np.zeros((3, 0), np.float32)).shape == (3, 0)
    assert ops.softmax(np.zeros((0, 5), np.float32)).shape == (0, 5)


# ---- argmax: the greedy pick, split over the threads ----


@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 4095, 4096, 4097, 32000, 100003])
def test_argmax_equals_numpy(threads, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    assert _core.argmax_f32(x) == int(np.argmax(x))
    # ties: the first of equal maxima wins, wherever the threads' parts split them
    for at in sorted({0, n // 2, n - 1, (n * 3) // 4}):
        y = x.copy()
        y[at:] = np.minimum(y[at:], 1.0)
        y[at] = y[-1] = 9.0
        assert _core.argmax_f32(y) == int(np.argmax(y)) == at
    # masked logits: -inf everywhere but a few
    z = np.full(n, -np.inf, np.float32)
    z[n - 1] = -3.0
    assert _core.argmax_f32(z) == n - 1
    # -0.0 and 0.0 are equal: the first one wins, as in numpy
    w = np.full(n, -1.0, np.float32)
    w[n // 3] = -0.0
    w[n - 1] = 0.0
    assert _core.argmax_f32(w) == int(np.argmax(w))


@pytest.mark.parametrize("n", [1, 33, 4097, 32000])
def test_argmax_refuses_what_has_no_finite_maximum(threads, n):
    for at in sorted({0, n // 2, n - 1}):
        x = np.zeros(n, np.float32)
        x[at] = np.nan
        assert _core.argmax_f32(x) == -1, ("nan", at)
        x[at] = np.inf
        assert _core.argmax_f32(x) == -1, ("inf", at)
    assert _core.argmax_f32(np.full(n, -np.inf, np.float32)) == -1
    assert _core.argmax_f32(np.zeros(0, np.float32)) == -1
