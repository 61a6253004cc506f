"""Replay the fuzzers' inputs once through their targets (fuzz/fuzz_<target>.py, test_one_input): every seed
in fuzz/corpus/<target>/ and every fixed crasher in fuzz/crashers/<target>/ must pass. (Crashers of bugs not
fixed yet wait in fuzz/crashers/open/ and are not replayed.)"""

import importlib
import os
import sys

import numpy as np
import pytest

from fastformer import _core

FUZZ = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz")
TARGETS = ["safetensors", "gguf", "tokenizer_json", "tiktoken", "config", "encode"]
NEEDS = {"encode": ["tiktoken", "tokenizers"]}


def inputs():
    out = []
    for target in TARGETS:
        for kind in ("corpus", "crashers"):
            d = os.path.join(FUZZ, kind, target)
            if os.path.isdir(d):
                names = sorted(f for f in os.listdir(d) if not f.endswith(".txt"))
                marks = [pytest.mark.peer(*NEEDS[target])] if target in NEEDS else []
                out += [pytest.param(target, os.path.join(d, f), id=f"{target}/{kind}/{f}", marks=marks) for f in names]
    return out


def target_module(name):
    for dep in NEEDS.get(name, []):
        pytest.importorskip(dep)
    if FUZZ not in sys.path:
        sys.path.insert(0, FUZZ)
    return importlib.import_module(f"fuzz_{name}")


def test_every_target_has_seeds():
    for target in TARGETS:
        d = os.path.join(FUZZ, "corpus", target)
        assert os.path.isdir(d) and os.listdir(d), f"no seed corpus for {target}"


@pytest.mark.skipif(not os.path.isdir(FUZZ), reason="the fuzz/ directory is not present (installed package)")
@pytest.mark.parametrize("target, path", inputs())
def test_replay(target, path):
    with open(path, "rb") as f:
        data = f.read()
    target_module(target).test_one_input(data)


@pytest.mark.parametrize("off", [[1, 2, 3], [0, 2, 1], [0, -1, 2], [0, 1, 9]])
def test_core_bpe_rejects_bad_offsets(off):
    # offsets index C buffers: a decreasing, negative or too large one must be refused, not read
    data, kind = np.frombuffer(b"abc", np.uint8), np.ones(2, np.uint8)
    with pytest.raises(ValueError, match="offsets"):
        _core.Bpe(data, np.array(off, np.int64), kind)
    bpe = _core.Bpe(data, np.array([0, 1, 3], np.int64), kind)
    with pytest.raises(ValueError, match="offsets"):
        bpe.set_decode(data, np.array(off, np.int64))
