"""The decode kernels' software prefetch (fastformer._core.set_decode_prefetch, FASTFORMER_PREFETCH): its
settings and their checks, the size rule that turns it on, and the same bits with it on or off, on every r16
type's one-row kernel (tails, last groups and thread counts included) and through a model."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import child_env, each_dot256, random_blocks

import fastformer
from fastformer import _core
from fastformer.model import KJV_MODEL
from fastformer.quant import QuantizedTensor, quantize

R16_TYPES = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "iq4_xs", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"]


@pytest.fixture
def prefetch():
    """set_decode_prefetch, the settings before restored afterwards."""
    before = _core.decode_prefetch()
    yield _core.set_decode_prefetch
    _core.set_decode_prefetch(*before)


def run_python(code, **env):
    # from the tests folder: the fastformer these tests import (in place or installed), not the source tree's
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(**env), timeout=120, cwd=here
    )


def test_defaults_follow_the_vendor_and_the_l3_cache():
    ahead, above = _core.decode_prefetch_default()
    with open("/proc/cpuinfo") as f:
        intel = "GenuineIntel" in f.read()
    assert ahead == (8192 if intel else 0)
    # the L3 size as glibc's getconf reads it (the sysconf the C side asks)
    out = subprocess.run(["getconf", "LEVEL3_CACHE_SIZE"], capture_output=True, text=True).stdout.strip()
    l3 = int(out) if out.lstrip("-").isdigit() else 0
    assert above == (l3 // 2 if l3 > 0 else 0)
    info = fastformer.cpu_info()["prefetch"]
    assert (info["bytes_ahead"], info["above_bytes"]) == _core.decode_prefetch()


def test_settings_are_checked(prefetch):
    before = _core.decode_prefetch()
    for bad in (-64, 100, 65536 + 64, 1 << 40):
        with pytest.raises(ValueError, match="multiple of 64"):
            prefetch(bad)
    with pytest.raises(ValueError, match="above must be >= 0"):
        prefetch(64, -1)
    for bad in (True, 64.0, "64", None):
        with pytest.raises(TypeError, match="nbytes must be an int"):
            prefetch(bad)
    with pytest.raises(TypeError, match="above must be an int"):
        prefetch(64, 1.5)
    assert _core.decode_prefetch() == before  # nothing changed
    prefetch(65536, 123)
    assert _core.decode_prefetch() == (65536, 123)
    prefetch(4096)  # above kept
    assert _core.decode_prefetch() == (4096, 123)


def test_the_size_rule(prefetch):
    prefetch(8192, 1000)
    assert _core.decode_prefetch_for(1000) == 0
    assert _core.decode_prefetch_for(1001) == 8192
    prefetch(0, 0)
    assert _core.decode_prefetch_for(1 << 40) == 0


def _weights(rng, qtype, n, k):
    if qtype in ("q4_k", "q6_k"):
        return QuantizedTensor.from_bytes(random_blocks(rng, qtype, n, k), qtype, (n, k))
    return quantize(rng.standard_normal((n, k)).astype(np.float32), qtype)


@pytest.mark.parametrize("qtype", R16_TYPES)
@pytest.mark.parametrize("n,k", [(16, 256), (48, 512), (1040, 2048), (304, 4096 + 256)], ids=str)
def test_one_row_kernels_give_the_same_bits_with_any_prefetch(prefetch, rng, qtype, n, k):
    # prefetching moves no result: every distance (into the next group, across a thread's tail steps, past the
    # call's last row, where it stops) at 1 and 2 threads gives the bits of none
    qt = _weights(rng, qtype, n, k)
    r16 = _core.repack_r16(qt.data, qt.ggml_type, k)
    x = rng.standard_normal((1, k)).astype(np.float32)
    before = fastformer.get_num_threads()
    try:
        for threads in (1, 2):
            fastformer.set_num_threads(threads)
            prefetch(0, 0)
            want = _core.linear_q(x, r16, qt.ggml_type | _core.QTYPE_R16, k)
            assert np.isfinite(want).all() and np.abs(want).max() > 0
            for ahead in (64, 960, 8192, 65536):
                prefetch(ahead, 0)
                got = _core.linear_q(x, r16, qt.ggml_type | _core.QTYPE_R16, k)
                np.testing.assert_array_equal(got, want, err_msg=f"{qtype} ahead {ahead} threads {threads}")
    finally:
        fastformer.set_num_threads(before)


@pytest.fixture
def isa256():
    """The 256-bit path (skips where the CPU has none), the ISA and int8 dot before restored afterwards."""
    if "avx2" not in _core.supported_isas():
        pytest.skip("this CPU has no AVX2+FMA path")
    before, dot = _core.current_isa(), _core.quant_dot256()
    _core.set_isa("avx2")
    yield
    _core.set_isa(before)
    _core.quant_set_dot256(dot)


@pytest.mark.parametrize("qtype", R16_TYPES)
@pytest.mark.parametrize("n,k", [(7, 256), (301, 2048 + 256)], ids=str)
def test_256_bit_row_kernels_give_the_same_bits_with_any_prefetch(prefetch, isa256, rng, qtype, n, k):
    # the ggml-layout row kernels of every 256-bit int8 dot (the AVX2 path decodes with them) prefetch as the r16
    # ones do: the same bits at any distance, past the call's last row included, and a short tail of blocks
    if qtype in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"):
        k += 96  # three 32-blocks past the last whole chunk of 8
    qt = _weights(rng, qtype, n, k)
    x = rng.standard_normal((1, k)).astype(np.float32)
    before = fastformer.get_num_threads()
    tried = 0
    try:
        for dot in each_dot256():
            tried += 1
            for threads in (1, 2):
                fastformer.set_num_threads(threads)
                prefetch(0, 0)
                want = _core.linear_q(x, qt.data, qt.ggml_type, k)
                assert np.isfinite(want).all() and np.abs(want).max() > 0
                for ahead in (64, 960, 8192, 65536):
                    prefetch(ahead, 0)
                    got = _core.linear_q(x, qt.data, qt.ggml_type, k)
                    np.testing.assert_array_equal(got, want, err_msg=f"{qtype} {dot} ahead {ahead} threads {threads}")
    finally:
        fastformer.set_num_threads(before)
    assert tried >= 1  # maddubs runs on every AVX2 machine


def test_a_model_streams_its_matrices_and_decodes_the_same_with_prefetch(prefetch):
    from gguf import GGUFReader

    model = fastformer.Model.load(KJV_MODEL)
    # the matrices a step reads: every 2-d tensor but the token table (the file has an output matrix)
    tensors = GGUFReader(KJV_MODEL).tensors
    want = sum(int(t.n_bytes) for t in tensors if len(t.shape) == 2 and t.name != "token_embd.weight")
    assert model._core.stream_bytes == want > 0
    ids = list(range(5, 40))
    prefetch(0, 0)
    logits = model.logits(ids)
    tokens = model.generate_ids(ids, max_new_tokens=12, ignore_eos=True)
    prefetch(8192, want - 1)  # on for this model
    assert _core.decode_prefetch_for(model._core.stream_bytes) == 8192
    np.testing.assert_array_equal(model.logits(ids), logits)
    assert model.generate_ids(ids, max_new_tokens=12, ignore_eos=True) == tokens


@pytest.mark.subprocess
def test_env_sets_the_distance_and_a_bad_value_is_named():
    show = "import fastformer; print(fastformer.cpu_info()['prefetch']['bytes_ahead'])"
    for value in ("4096", "0"):
        r = run_python(show, FASTFORMER_PREFETCH=value)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == value
    for bad in ("100", "lots", "-64"):
        r = run_python("import fastformer", FASTFORMER_PREFETCH=bad)
        assert r.returncode != 0
        assert f"FASTFORMER_PREFETCH={bad!r}" in r.stderr and "multiple of 64" in r.stderr
