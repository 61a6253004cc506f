"""Shared fixtures: every test that takes `isa` runs once per ISA path this machine supports, and `threads` runs
at 1 and 2 threads; the cl100k_base tokenizers and the Hugging Face tokenizer pairs are built once. The tolerance
table lives in tests/tolerances.py, the shared helpers in tests/helpers.py.

A test that compares against another library is marked `peer("torch", ...)` with the modules it needs: it is
skipped where one is missing, and `pytest -m "not peer"` leaves it out.
"""

import numpy as np
import pytest
from helpers import cl100k_path, read_ranks, tiktoken_encoding
from hf_tokenizers import LAYOUTS, make_pair, make_spm_pair

import fastformer
from fastformer import _core
from fastformer.tokenizer import Tokenizer

SUPPORTED = _core.supported_isas()


def pytest_runtest_setup(item):
    for mark in item.iter_markers("peer"):
        for name in mark.args:
            pytest.importorskip(name)


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


@pytest.fixture(scope="session")
def cl100k_ranks():
    return read_ranks(cl100k_path())


@pytest.fixture(scope="session")
def cl100k():
    return Tokenizer.from_tiktoken(cl100k_path(), pattern="cl100k_base")


@pytest.fixture(scope="session")
def tiktoken_cl100k(cl100k_ranks):
    return tiktoken_encoding("cl100k_base", cl100k_ranks)


@pytest.fixture(scope="module", params=LAYOUTS)
def pair(request, tmp_path_factory):
    """(ours, theirs) for one tokenizer.json layout (tests/hf_tokenizers.py), both loaded from the same file."""
    pytest.importorskip("tokenizers")
    return make_pair(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def spm_pair(tmp_path_factory):
    """(ours, sentencepiece) for a SentencePiece BPE read from its pieces, scores and types."""
    pytest.importorskip("sentencepiece")
    return make_spm_pair(tmp_path_factory)


# every int8 kernel path this machine can run: the ISA paths ("avx2" with maddubs), avx512 once more with its
# VNNI kernels ("avx512" alone runs the 256-bit kernels, as on a CPU without AVX-512 VNNI), and the 256-bit
# kernels with each other int8 dot the CPU has: AVX-VNNI (vex) and AVX-512 VNNI on 256-bit registers (evex, the
# same source as AVX-VNNI, so a machine without AVX-VNNI still runs that code)
_FEATURES = _core.cpu_features()
QPATHS = SUPPORTED + (["avx512_vnni"] if "avx512_vnni" in _FEATURES else [])
QPATHS += ["avx2+avxvnni"] if "avx_vnni" in _FEATURES and "avx2" in QPATHS else []
QPATHS += ["avx2+vnni256"] if {"avx512_vnni", "avx512vl"} <= set(_FEATURES) and "avx512" in QPATHS else []


@pytest.fixture(params=QPATHS)
def qpath(request):
    """Each int8 kernel path in turn (ISA, VNNI on/off, 256-bit dot), restored afterwards."""
    isa_before, vnni_before, dot_before = _core.current_isa(), _core.quant_vnni(), _core.quant_dot256()
    path, _, dot = request.param.partition("+")
    vnni = path == "avx512_vnni"
    _core.set_isa("avx512" if vnni else path)
    assert _core.quant_set_vnni(vnni) == vnni
    _core.quant_set_dot256(dot or "maddubs")
    yield request.param
    _core.set_isa(isa_before)
    _core.quant_set_vnni(vnni_before)
    _core.quant_set_dot256(dot_before)
