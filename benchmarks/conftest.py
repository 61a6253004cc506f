"""Benchmark fixtures: every case runs fastformer and its peers on the same inputs in the same run.

Cases are grouped as "<op> <shape> t=<threads>"; the implementation is the `impl` parameter.
`python -m benchmarks.compare results.json` turns a --benchmark-json file into peer/fastformer ratios.
Run: make bench  (pytest benchmarks --benchmark-only --benchmark-json=.benchmarks/latest.json)
"""

import os

import pytest

import fastformer

try:
    import torch
except ImportError:  # torch is a benchmark-only extra
    torch = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None


def set_threads(n):
    """Give fastformer, torch and numpy's BLAS the same number of threads."""
    fastformer.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    if threadpool_limits is not None:
        threadpool_limits(n)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["fastformer"] = {
        "cpu_info": fastformer.cpu_info(),
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }


def need(module, name):
    if module is None:
        pytest.skip(f"{name} is not installed (pip install .[bench])")
