"""rms_norm and layer_norm on (512, 2048) and a decode-sized (1, 4096) row: fastformer vs numpy and torch."""

import numpy as np
import pytest

from benchmarks.conftest import need, set_threads, torch
from fastformer import _reference, ops

SHAPES = [(512, 2048), (1, 4096)]


def _inputs(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(shape[-1], dtype=np.float32)
    b = rng.standard_normal(shape[-1], dtype=np.float32)
    return x, w, b


def _rms_impl(impl, x, w, eps):
    if impl == "fastformer":
        return lambda: ops.rms_norm(x, w, eps=eps)
    if impl == "numpy":
        return lambda: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
    need(torch, "torch")
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    return lambda: torch.nn.functional.rms_norm(tx, (x.shape[-1],), tw, eps)


def _layer_impl(impl, x, w, b, eps):
    if impl == "fastformer":
        return lambda: ops.layer_norm(x, w, b, eps=eps)
    if impl == "numpy":

        def run():
            mu = x.mean(-1, keepdims=True)
            xc = x - mu
            return xc / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps) * w + b

        return run
    need(torch, "torch")
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    return lambda: torch.nn.functional.layer_norm(tx, (x.shape[-1],), tw, tb, eps)


def _result(y):
    return y.numpy() if hasattr(y, "numpy") else y


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "numpy", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rms_norm(benchmark, shape, impl, threads):
    set_threads(threads)
    x, w, _ = _inputs(shape)
    fn = _rms_impl(impl, x, w, 1e-6)
    np.testing.assert_allclose(_result(fn()), _reference.rms_norm(x, w, 1e-6), rtol=1e-4, atol=1e-4)
    benchmark.group = f"rms_norm {shape} t={threads}"
    benchmark(fn)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "numpy", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_layer_norm(benchmark, shape, impl, threads):
    set_threads(threads)
    x, w, b = _inputs(shape)
    fn = _layer_impl(impl, x, w, b, 1e-5)
    np.testing.assert_allclose(_result(fn()), _reference.layer_norm(x, w, b, 1e-5), rtol=1e-4, atol=1e-4)
    benchmark.group = f"layer_norm {shape} t={threads}"
    benchmark(fn)
