"""linear (x @ W.T, W stored (N, K)) and matmul: fastformer vs numpy (OpenBLAS) and torch.

Shapes are a transformer's projections: (K, N) = (768, 768) ... (2048, 32000), for prefill (M = 128 and
512 rows), decode (M = 1) and small batches (M = 4, 16). Each result is checked against the float64
reference on a spread of rows before it is timed.
"""

import numpy as np
import pytest

from benchmarks.conftest import need, set_threads, torch
from fastformer import _reference, ops
from tests.tolerances import matmul_tol

IMPLS = ["fastformer", "numpy", "torch"]
THREADS = [1, 2]
KN_ALL = [
    (768, 768),
    (768, 2048),
    (2048, 768),
    (2048, 2048),
    (2048, 5632),
    (5632, 2048),
    (768, 32000),
    (2048, 32000),
]
KN_FEW = [(768, 768), (2048, 2048), (2048, 5632), (5632, 2048), (2048, 32000)]
LINEAR_CASES = (
    [(1, k, n) for k, n in KN_ALL]
    + [(4, 2048, 5632), (16, 2048, 2048), (16, 2048, 5632)]
    + [(128, k, n) for k, n in KN_ALL]
    + [(512, k, n) for k, n in KN_FEW]
)
MATMUL_CASES = [(128, 2048, 2048), (512, 768, 3072), (64, 5632, 2048)]


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _numpy_result(y):
    return y.numpy() if hasattr(y, "numpy") else y


def _check(run, want_rows, rows, k):
    # rows spread over the whole output: every row tile position and every column is compared
    got = _numpy_result(run())[rows]
    np.testing.assert_allclose(got, want_rows, **matmul_tol(k))


def _rows(m):
    return np.unique(np.linspace(0, m - 1, min(m, 24)).astype(np.int64))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m, k, n", LINEAR_CASES)
def test_linear(benchmark, impl, threads, m, k, n):
    x, w = _randn(m, k, seed=1), _randn(n, k, seed=2)
    if impl == "fastformer":
        run = lambda: ops.linear(x, w)  # noqa: E731
    elif impl == "numpy":
        run = lambda: x @ w.T  # noqa: E731
    else:
        need(torch, "torch")
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        run = lambda: torch.nn.functional.linear(tx, tw)  # noqa: E731
    set_threads(threads)
    rows = _rows(m)
    _check(run, _reference.linear(x[rows], w), rows, k)
    benchmark.group = f"linear M={m} K={k} N={n} t={threads}"
    benchmark(run)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m, k, n", MATMUL_CASES)
def test_matmul(benchmark, impl, threads, m, k, n):
    a, b = _randn(m, k, seed=3), _randn(k, n, seed=4)
    if impl == "fastformer":
        run = lambda: ops.matmul(a, b)  # noqa: E731
    elif impl == "numpy":
        run = lambda: a @ b  # noqa: E731
    else:
        need(torch, "torch")
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        run = lambda: torch.matmul(ta, tb)  # noqa: E731
    set_threads(threads)
    rows = _rows(m)
    _check(run, _reference.matmul(a[rows], b), rows, k)
    benchmark.group = f"matmul M={m} K={k} N={n} t={threads}"
    benchmark(run)
