"""The kv cache stored as f16 or q8_0 (Model.load's kv_dtype) on random-weight checkpoints, on every ISA path.

Each cache type runs against the float32-cache run of the same model (whose logits agree with transformers
at 1e-4, tests/test_model.py) and against transformers: f16 logits within 1e-3 of the largest logit, greedy
tokens equal; q8_0 logits at cosine >= 0.999. Results do not depend on the thread count. The long case decodes
past 512 positions, where a decode splits its keys into several work items.
"""

import os
import zlib

import numpy as np
import pytest
from helpers import BASE, PROMPT, VOCAB, assert_close, case_checkpoint, hf_logits, make_checkpoint, perturb_by_name

import fastformer
from fastformer import Model

pytestmark = pytest.mark.peer("torch", "transformers")

LONG = dict(BASE, hidden_size=128, num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=1024)
SHORT_CASES = ["llama-gqa", "llama-head-dim-32", "mistral-window", "qwen2-biases-tied", "gpt2"]
Q8_CASES = ["llama-head-dim-32", "llama-hd32-long"]  # q8_0 needs head_dim % 32 == 0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("kv"))
    out = {case: case_checkpoint(root, case) for case in SHORT_CASES}
    perturb = perturb_by_name(zlib.crc32(b"long") % 1000)
    out["llama-hd32-long"] = make_checkpoint(os.path.join(root, "long"), "llama", perturb=perturb, **LONG)
    return out


def ids_for(case):
    """The parity prompt, or 700 random ids for the long case (a prefill of 3 chunks, then split decodes)."""
    if case != "llama-hd32-long":
        return PROMPT
    return np.random.default_rng(5).integers(3, VOCAB, 700).tolist()


def cosine(a, b):
    return np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.parametrize("case", SHORT_CASES + ["llama-hd32-long"])
def test_f16_cache(checkpoints, case, isa):
    path, hf = checkpoints[case]
    ids = ids_for(case)
    exact = Model.load(path, kv_dtype="f32")
    model = Model.load(path, kv_dtype="f16")
    got = model.logits(ids)
    assert_close(got, exact.logits(ids), "logits_f16kv")
    assert_close(got, hf_logits(hf, ids), "logits_f16kv")
    prompt = ids[:9]
    assert model.generate_ids(prompt, max_new_tokens=24, ignore_eos=True) == exact.generate_ids(
        prompt, max_new_tokens=24, ignore_eos=True
    )


@pytest.mark.parametrize("case", Q8_CASES)
def test_q8_0_cache(checkpoints, case, isa):
    path, hf = checkpoints[case]
    ids = ids_for(case)
    got = Model.load(path, kv_dtype="q8_0").logits(ids)
    assert cosine(got, Model.load(path, kv_dtype="f32").logits(ids)).min() >= 0.999
    assert cosine(got, hf_logits(hf, ids)).min() >= 0.999


@pytest.mark.parametrize("kv_dtype", ["f32", "f16", "q8_0"])
def test_decode_steps_equal_prefill(checkpoints, kv_dtype, isa):
    # positions 600..699 one token per call (the dot path, keys split past 512) against the prefill chunk
    # 512..699 (the block path) of model.logits: both read the same cached rows
    path, _ = checkpoints["llama-hd32-long"]
    model = Model.load(path, kv_dtype=kv_dtype)
    ids = ids_for("llama-hd32-long")
    full = model.logits(ids)
    sess = fastformer._core.Session(model._core, len(ids), 256, kv_dtype)
    for i in range(0, 600, 256):
        sess.forward(ids[i : min(i + 256, 600)])
    steps = np.concatenate([sess.forward([t]) for t in ids[600:]])
    assert_close(steps, full[600:], "logits")


@pytest.mark.parametrize("kv_dtype", ["f16", "q8_0"])
def test_thread_count_independent(checkpoints, kv_dtype):
    path, _ = checkpoints["llama-hd32-long"]
    ids = ids_for("llama-hd32-long")
    before = fastformer.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            fastformer.set_num_threads(n)
            model = Model.load(path, kv_dtype=kv_dtype)
            runs.append((model.logits(ids[:300]), model.generate_ids(ids, max_new_tokens=8, ignore_eos=True)))
    finally:
        fastformer.set_num_threads(before)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_cache_arrays_and_bytes(checkpoints):
    path, _ = checkpoints["llama-head-dim-32"]
    model = Model.load(path, kv_dtype="q8_0")
    c = model.config
    sess = model._session(10)
    assert sess.kv_dtype == "q8_0" and sess.k_cache.dtype == np.uint8
    assert sess.k_cache.shape == (c.n_layers, c.n_kv_heads, 10, c.head_dim // 32 * 34)
    assert model.kv_bytes_per_token() == 2 * c.n_layers * c.n_kv_heads * c.head_dim // 32 * 34
    assert model.kv_bytes_per_token("f32") == 2 * c.n_layers * c.n_kv_heads * c.head_dim * 4
    assert model.kv_bytes_per_token("f16") == 2 * c.n_layers * c.n_kv_heads * c.head_dim * 2
    assert Model.load(path).kv_dtype == "f16"


def test_bad_kv_dtype(checkpoints):
    path, _ = checkpoints["llama-gqa"]
    with pytest.raises(ValueError, match="kv_dtype must be one of 'f32', 'f16', 'q8_0', got 'q4_0'"):
        Model.load(path, kv_dtype="q4_0")
    with pytest.raises(ValueError, match="head_dim 16 is not a multiple"):
        Model.load(path, kv_dtype="q8_0")
    with pytest.raises(ValueError, match="kv_dtype must be one of"):
        fastformer._core.Session(Model.load(path)._core, 8, 4, "bf16")


@pytest.mark.parametrize("kv_dtype", ["f16", "q8_0"])
def test_context_window_is_enforced(checkpoints, kv_dtype):
    model = Model.load(checkpoints["llama-head-dim-32"][0], kv_dtype=kv_dtype)
    n = model.config.max_context
    with pytest.raises(ValueError, match="exceed"):
        model.logits(list(range(3, 3 + n + 1)))
    with pytest.raises(ValueError, match="exceeds the context window"):
        model.generate_ids([1, 2, 3], max_new_tokens=n)
