"""cpu_info, the ISA override (FASTFORMER_ISA) and thread-count settings."""

import os
import subprocess
import sys

import pytest
from helpers import child_env

import fastformer
from fastformer import _core


def run_python(code, **env):
    # the fastformer these tests import, in place or installed (PYTHONPATH), from the tests folder
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(**env),
        timeout=120,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )


def test_cpu_info_shape():
    info = fastformer.cpu_info()
    assert set(info) >= {"isa", "supported", "features", "threads"}
    assert info["supported"][0] == "scalar"
    assert info["isa"] in info["supported"]
    assert info["threads"] == fastformer.get_num_threads() >= 1
    assert all(isinstance(f, str) for f in info["features"])


def test_supported_is_ordered_subset_of_known():
    known = _core.isa_names()
    sup = _core.supported_isas()
    assert [known.index(s) for s in sup] == sorted(known.index(s) for s in sup)


def test_features_imply_paths():
    info = fastformer.cpu_info()
    feats = set(info["features"])
    if {"avx2", "fma", "f16c"} <= feats:
        assert "avx2" in info["supported"]
    else:
        assert "avx2" not in info["supported"]
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= feats and "avx2" in info["supported"]:
        assert "avx512" in info["supported"]


def test_default_isa_is_the_best_supported():
    r = run_python("import fastformer; print(fastformer.cpu_info()['isa'])", FASTFORMER_ISA="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == _core.supported_isas()[-1]


@pytest.mark.subprocess
@pytest.mark.parametrize("name", _core.supported_isas())
def test_env_override_selects_each_supported_path(name):
    code = (
        "import numpy as np, fastformer\n"
        "from fastformer import ops\n"
        "print(fastformer.cpu_info()['isa'])\n"
        "x = np.arange(12, dtype=np.float32).reshape(3, 4)\n"
        "print(float(ops.softmax(x).sum()))\n"
    )
    r = run_python(code, FASTFORMER_ISA=name)
    assert r.returncode == 0, r.stderr
    isa, total = r.stdout.split()
    assert isa == name
    assert abs(float(total) - 3.0) < 1e-5


@pytest.mark.subprocess
def test_env_override_unknown_name_fails_at_import():
    r = run_python("import fastformer", FASTFORMER_ISA="avx9000")
    assert r.returncode != 0
    assert "FASTFORMER_ISA='avx9000' is not a known ISA path" in r.stderr
    assert "scalar" in r.stderr


@pytest.mark.subprocess
def test_env_override_unsupported_name_fails_at_import():
    unsupported = [n for n in _core.isa_names() if n not in _core.supported_isas()]
    if not unsupported:
        pytest.skip("every ISA path this build knows runs on this CPU")
    r = run_python("import fastformer", FASTFORMER_ISA=unsupported[0])
    assert r.returncode != 0
    assert "not supported on this CPU" in r.stderr


def test_set_isa_rejects_unknown():
    with pytest.raises(ValueError, match="unknown ISA"):
        _core.set_isa("nope")


def test_set_num_threads_roundtrip():
    before = fastformer.get_num_threads()
    try:
        fastformer.set_num_threads(1)
        assert fastformer.get_num_threads() == 1
        fastformer.set_num_threads(3)
        assert fastformer.get_num_threads() == 3
        assert fastformer.cpu_info()["threads"] == 3
    finally:
        fastformer.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 257])
def test_set_num_threads_range(bad):
    with pytest.raises(ValueError, match="between 1 and 256"):
        fastformer.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_type(bad):
    with pytest.raises(TypeError):
        fastformer.set_num_threads(bad)


def test_default_threads_is_usable_cores():
    r = run_python("import fastformer; print(fastformer.get_num_threads())")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(os.sched_getaffinity(0))
