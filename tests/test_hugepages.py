"""Weights copied into transparent-huge-page memory (Model.load(hugepages=...)).

The copy must change nothing but speed: logits, generations and written GGUF files are bitwise those of the
zero-copy model, for float32 matrices, r16-repacked q8_0/q4_0, the other quantized layouts and tied heads.
"""

import mmap
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import PROMPT, case_checkpoint, child_env, make_checkpoint, random_blocks, with_weights

import fastformer
from fastformer import Model, QuantizedTensor, _core
from fastformer.checkpoint import as_dict


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hp"))
    return {case: case_checkpoint(root, case)[0] for case in ("llama-gqa", "llama-mha-tied", "gpt2")}


def _mapping_flags(addr):
    """VmFlags of the mapping in /proc/self/smaps that holds addr."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= addr < hi
            elif inside and line.startswith("VmFlags:"):
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {addr:#x}")


def _file_backed(a):
    b = a
    while isinstance(b, np.ndarray) and b.base is not None:
        b = b.base
    if isinstance(b, memoryview):
        b = b.obj
    return isinstance(b, mmap.mmap) and memoryview(b).readonly


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("case", ["llama-gqa", "llama-mha-tied", "gpt2"])
@pytest.mark.parametrize("quantize", [None, "q8_0", "q4_0"])
def test_copy_gives_identical_logits_and_generation(ckpts, case, quantize):
    plain = Model.load(ckpts[case], quantize=quantize, hugepages=False)
    huge = Model.load(ckpts[case], quantize=quantize, hugepages=True)
    assert not plain._core.hugepages and huge._core.hugepages
    np.testing.assert_array_equal(huge.logits(PROMPT), plain.logits(PROMPT))
    assert huge.generate_ids(PROMPT[:5], max_new_tokens=12) == plain.generate_ids(PROMPT[:5], max_new_tokens=12)


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("case", ["llama-gqa", "gpt2"])
def test_float_matrices_move_into_the_arena(ckpts, case):
    plain = Model.load(ckpts[case], hugepages=False)
    huge = Model.load(ckpts[case], hugepages=True)

    # gpt2's Conv1D matrices are stored transposed (copied at load anyway): its tied head is zero-copy
    def pick(m):
        ck = m.checkpoint()
        return ck.weights.lm_head if case == "gpt2" else ck.layers[0].wq

    # zero-copy: the file mapping itself; copied: an anonymous, writable arena
    assert _file_backed(pick(plain))
    moved = pick(huge)
    assert not _file_backed(moved)
    np.testing.assert_array_equal(moved, pick(plain))
    assert moved.ctypes.data % 64 == 0
    if _core.hugepages_available() and os.path.exists("/proc/self/smaps"):
        assert "hg" in _mapping_flags(moved.ctypes.data), "the arena is not advised for huge pages"


@pytest.mark.peer("torch", "transformers")
def test_tied_head_is_one_copy(ckpts):
    m = Model.load(ckpts["llama-mha-tied"], hugepages=True)
    w = as_dict(m.checkpoint().weights)
    assert w["tok_emb"] is w["lm_head"] and not _file_backed(w["lm_head"])


@pytest.mark.peer("torch", "transformers")
def test_other_quantized_layouts(ckpts):
    """q8_0 with rows not a multiple of 16 (no r16 repack) is copied as it is; r16 beside it."""
    base = Model.load(ckpts["llama-gqa"], hugepages=False)
    ck = base.checkpoint()
    w, layers = as_dict(ck.weights), [as_dict(lw) for lw in ck.layers]

    def build(hugepages):
        ww = dict(w, lm_head=fastformer.quantize(w["lm_head"], "q8_0"))
        ls = []
        for lw in layers:
            lw = dict(lw)
            lw["w_up"] = fastformer.quantize(lw["w_up"], "q8_0")  # 88 rows: no r16 repack
            lw["wq"] = fastformer.quantize(lw["wq"], "q4_0")
            ls.append(lw)
        m = Model(with_weights(ck, ww, ls), hugepages=hugepages)
        # what the model runs on: the copies, as QuantizedTensor objects over the arena
        return m, as_dict(m.checkpoint().weights), [as_dict(lw) for lw in m.checkpoint().layers]

    plain, _, _ = build(False)
    huge, ww, ls = build(True)
    assert layers[0]["w_up"].shape[0] % 16 != 0
    np.testing.assert_array_equal(huge.logits(PROMPT), plain.logits(PROMPT))
    # the dicts now hold the copies, as QuantizedTensor objects over the arena
    assert isinstance(ls[0]["w_up"], fastformer.QuantizedTensor) and ls[0]["w_up"].data.flags.writeable
    np.testing.assert_array_equal(ls[0]["w_up"].dequantize(), plain.checkpoint().layers[0].w_up.dequantize())


@pytest.mark.peer("torch", "transformers")
def test_k_quant_layouts(tmp_path):
    """q4_k and q6_k matrices (256-wide rows) behave the same copied or in place."""

    def perturb(model):
        import torch

        for p in model.parameters():
            p.copy_(p + 0.3 if p.ndim == 1 else torch.randn(p.shape) * 0.08)

    make_checkpoint(
        tmp_path / "k",
        "llama",
        seed=3,
        perturb=perturb,
        vocab_size=64,
        hidden_size=256,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    base = Model.load(tmp_path / "k", hugepages=False).checkpoint()

    def build(hugepages):
        rng = np.random.default_rng(5)  # the same random blocks for both builds
        ls = [
            dict(
                lw,
                wq=QuantizedTensor.from_bytes(random_blocks(rng, "q4_k", 256, 256), "q4_k", (256, 256)),
                w_down=QuantizedTensor.from_bytes(random_blocks(rng, "q6_k", 256, 256), "q6_k", (256, 256)),
            )
            for lw in map(as_dict, base.layers)
        ]
        return Model(with_weights(base, as_dict(base.weights), ls), hugepages=hugepages)

    ids = [3, 9, 27, 50, 1, 0, 63]
    np.testing.assert_array_equal(build(True).logits(ids), build(False).logits(ids))


@pytest.mark.peer("torch", "transformers")
def test_save_gguf_is_unchanged(ckpts, tmp_path):
    for quantize in (None, "q8_0"):
        a, b = tmp_path / f"plain-{quantize}.gguf", tmp_path / f"huge-{quantize}.gguf"
        Model.load(ckpts["llama-gqa"], quantize=quantize, hugepages=False).save_gguf(a)
        Model.load(ckpts["llama-gqa"], quantize=quantize, hugepages=True).save_gguf(b)
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.peer("torch", "transformers")
def test_gguf_file_copy(ckpts, tmp_path):
    """A GGUF model's r16-repacked matrices land in the arena; reloading the written file gives the same logits."""
    path = tmp_path / "m.gguf"
    Model.load(ckpts["llama-gqa"], quantize="q8_0", hugepages=False).save_gguf(path)
    plain = Model.load(path, hugepages=False)
    huge = Model.load(path, hugepages=True)
    np.testing.assert_array_equal(huge.logits(PROMPT), plain.logits(PROMPT))


@pytest.mark.peer("torch", "transformers")
def test_large_kv_cache_in_huge_pages(ckpts):
    """Sessions over 2 MiB of kv cache take it from a huge-page buffer and compute the same logits."""
    outs = [Model.load(ckpts["llama-gqa"], hugepages=h) for h in (False, True)]
    # the checkpoint's context is 128: cores over the same weights with a longer one
    dims = dict(outs[0]._core.dims, max_ctx=8192)
    logits = []
    for m in outs:
        ck = m.checkpoint()
        core = _core.ModelCore(dims, as_dict(ck.weights), [as_dict(lw) for lw in ck.layers], m._core.hugepages)
        s = _core.Session(core, 8192, 32)
        logits.append(np.vstack([s.forward(PROMPT[:10], True), s.forward(PROMPT[10:], True)]))
    np.testing.assert_array_equal(logits[0], logits[1])


@pytest.mark.peer("torch", "transformers")
def test_environment_and_argument_checks(ckpts, monkeypatch):
    monkeypatch.setenv("FASTFORMER_HUGEPAGES", "0")
    assert not Model.load(ckpts["llama-gqa"])._core.hugepages
    monkeypatch.setenv("FASTFORMER_HUGEPAGES", "1")
    assert Model.load(ckpts["llama-gqa"])._core.hugepages == _core.hugepages_available()
    monkeypatch.setenv("FASTFORMER_HUGEPAGES", "yes")
    with pytest.raises(ValueError, match="FASTFORMER_HUGEPAGES"):
        Model.load(ckpts["llama-gqa"])
    monkeypatch.delenv("FASTFORMER_HUGEPAGES")
    with pytest.raises(TypeError, match="hugepages"):
        Model.load(ckpts["llama-gqa"], hugepages="yes")
    with pytest.raises(ValueError, match="nbytes"):
        _core.huge_buffer(-1)
    buf = _core.huge_buffer(5 << 20)
    assert buf.shape == (5 << 20,) and buf.ctypes.data % (2 << 20) == 0 and not buf[::4096].any()


@pytest.mark.subprocess
def test_out_of_address_space_is_a_memory_error(tmp_path):
    """An arena the process cannot map raises MemoryError naming the way out, not a bare OSError."""
    code = (
        "import resource, fastformer\n"
        "from fastformer import _core\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "try:\n"
        "    _core.huge_buffer(8 << 30)\n"
        "except MemoryError as e:\n"
        "    print('MemoryError:', e)\n"
    )
    # cwd away from the source tree, PYTHONPATH to the fastformer these tests import (in place or installed)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=child_env()
    )
    assert out.returncode == 0, out.stderr
    assert "MemoryError: could not map 8589934592 bytes" in out.stdout and "hugepages=False" in out.stdout
