"""softmax on (512, 2048), gelu (tanh and erf) and silu on (512, 8192): fastformer vs numpy and torch."""

import numpy as np
import pytest

from benchmarks.conftest import need, set_threads, torch
from fastformer import _reference, ops

SOFTMAX_SHAPE = (512, 2048)
ACT_SHAPE = (512, 8192)


def _x(shape, scale):
    return (np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)


def _result(y):
    return y.numpy() if hasattr(y, "numpy") else y


def _softmax_impl(impl, x):
    if impl == "fastformer":
        return lambda: ops.softmax(x)

    if impl == "numpy":

        def run():
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        return run
    need(torch, "torch")
    tx = torch.from_numpy(x)
    return lambda: torch.softmax(tx, -1)


def _act_impl(op, impl, x):
    if impl == "fastformer":
        if op == "silu":
            return lambda: ops.silu(x)
        return lambda: ops.gelu(x, approximate="tanh" if op == "gelu_tanh" else "none")
    if impl == "numpy":
        if op == "silu":
            return lambda: x / (1.0 + np.exp(-x))
        if op == "gelu_tanh":
            c = np.float32(np.sqrt(2.0 / np.pi))
            return lambda: 0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))
        pytest.skip("numpy has no erf")
    need(torch, "torch")
    tx = torch.from_numpy(x)
    if op == "silu":
        return lambda: torch.nn.functional.silu(tx)
    return lambda: torch.nn.functional.gelu(tx, approximate="tanh" if op == "gelu_tanh" else "none")


def _reference_act(op, x):
    if op == "silu":
        return _reference.silu(x)
    return _reference.gelu(x, "tanh" if op == "gelu_tanh" else "none")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "numpy", "torch"])
def test_softmax(benchmark, impl, threads):
    set_threads(threads)
    x = _x(SOFTMAX_SHAPE, 4.0)
    fn = _softmax_impl(impl, x)
    np.testing.assert_allclose(_result(fn()), _reference.softmax(x), rtol=1e-4, atol=1e-6)
    benchmark.group = f"softmax {SOFTMAX_SHAPE} t={threads}"
    benchmark(fn)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "numpy", "torch"])
@pytest.mark.parametrize("op", ["gelu_tanh", "gelu_erf", "silu"])
def test_activation(benchmark, op, impl, threads):
    set_threads(threads)
    x = _x(ACT_SHAPE, 3.0)
    fn = _act_impl(op, impl, x)
    np.testing.assert_allclose(_result(fn()), _reference_act(op, x), rtol=1e-4, atol=1e-5)
    benchmark.group = f"{op} {ACT_SHAPE} t={threads}"
    benchmark(fn)
