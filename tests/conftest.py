"""Shared fixtures: every test that takes `isa` runs once per ISA path this machine supports,
and `threads` runs at 1 and 2 threads. The tolerance table lives in tests/tolerances.py."""

import numpy as np
import pytest

import fastformer
from fastformer import _core

SUPPORTED = _core.supported_isas()


@pytest.fixture(params=SUPPORTED)
def isa(request):
    before = _core.current_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    before = fastformer.get_num_threads()
    fastformer.set_num_threads(request.param)
    yield request.param
    fastformer.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
