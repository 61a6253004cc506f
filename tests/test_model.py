"""Model parity with Hugging Face transformers (PyTorch CPU, float32) on random-weight checkpoints.

Every weight, norms and biases included, is moved off its default init before saving, so a loader that
ignores one tensor is caught. Logits must agree within 1e-4 relative to the logits' scale, and greedy
continuations must equal transformers.generate(do_sample=False).
"""

import json
import os

import numpy as np
import pytest
from helpers import CASES, PROMPT, VOCAB, assert_close, case_checkpoint, hf_logits, optional, write_llama

import fastformer
from fastformer import FormatError, Model, UnsupportedError

torch = optional("torch")
transformers = optional("transformers")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {case: case_checkpoint(str(root), case) for case in CASES}


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory):
    """A Llama written with numpy alone, for the tests that need a model but no peer."""
    return write_llama(tmp_path_factory.mktemp("small") / "llama")


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kv_dtype,tol", [("f32", "logits"), ("f16", "logits_f16kv")])
def test_logits_match_transformers(checkpoints, case, threads, kv_dtype, tol):
    path, hf = checkpoints[case]
    model = Model.load(path, kv_dtype=kv_dtype)
    got = model.logits(PROMPT)
    assert got.shape == (len(PROMPT), VOCAB) and got.dtype == np.float32
    assert_close(got, hf_logits(hf, PROMPT), tol)


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("case", list(CASES))
def test_greedy_matches_transformers_generate(checkpoints, case):
    path, hf = checkpoints[case]
    model = Model.load(path)  # the default f16 kv cache
    assert model.kv_dtype == "f16"
    prompt = PROMPT[:9]
    with torch.no_grad():
        want = hf.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False, pad_token_id=0)[
            0, len(prompt) :
        ].tolist()
        hf.generation_config.eos_token_id = None  # now generate through EOS, without masking it
        long = hf.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False, pad_token_id=0)[
            0, len(prompt) :
        ].tolist()
        hf.generation_config.eos_token_id = 2
    assert model.generate_ids(prompt, max_new_tokens=24) == want  # both stop at EOS (id 2)
    assert model.generate_ids(prompt, max_new_tokens=24, ignore_eos=True) == long
    assert len(long) == 24


@pytest.mark.peer("torch", "transformers")
def test_sharded_checkpoint(tmp_path):
    path, hf = case_checkpoint(str(tmp_path), "llama-gqa", max_shard_size="20KB")
    assert os.path.exists(os.path.join(path, "model.safetensors.index.json"))
    assert_close(Model.load(path, kv_dtype="f32").logits(PROMPT), hf_logits(hf, PROMPT), "logits")


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoint(tmp_path, dtype):
    path, hf = case_checkpoint(str(tmp_path), "llama-gqa")
    hf.to(getattr(torch, dtype)).save_pretrained(path + "-half")
    # the same rounded weights, loaded fresh (rope buffers recomputed) and computed in float32
    ref = hf_logits(transformers.LlamaForCausalLM.from_pretrained(path + "-half", dtype=torch.float32), PROMPT)
    assert_close(Model.load(path + "-half", kv_dtype="f32").logits(PROMPT), ref, "logits")


@pytest.mark.peer("torch", "transformers")
def test_next_token_probs(checkpoints):
    path, hf = checkpoints["llama-gqa"]
    model = Model.load(path, kv_dtype="f32")
    p = model.next_token_probs(PROMPT)
    assert p.shape == (VOCAB,) and abs(float(p.sum()) - 1.0) < 1e-5
    want = torch.softmax(torch.tensor(hf_logits(hf, PROMPT)[-1], dtype=torch.float64), -1).numpy()
    np.testing.assert_allclose(p, want, atol=1e-5)


@pytest.mark.peer("torch", "transformers")
def test_kv_cache_steps_equal_full_logits(checkpoints):
    model = Model.load(checkpoints["qwen2-biases-tied"][0], kv_dtype="f32")
    full = model.logits(PROMPT)
    sess = fastformer._core.Session(model._core, len(PROMPT), 4, model.kv_dtype)
    rows = [sess.forward(PROMPT[i : i + 3], True) for i in range(0, len(PROMPT), 3)]
    np.testing.assert_allclose(np.concatenate(rows), full, rtol=1e-5, atol=1e-5)


def test_context_window_is_enforced(small_llama):
    model = Model.load(small_llama, max_context=16)
    assert model.config.max_context == 16
    with pytest.raises(ValueError, match="exceed"):
        model.logits(list(range(17)))
    with pytest.raises(ValueError, match="exceeds the context window"):
        model.generate_ids([1, 2, 3], max_new_tokens=14)
    assert len(model.generate_ids([1, 2, 3], max_new_tokens=13, stop_ids=[])) <= 13


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize(
    "bad, err",
    [
        ([VOCAB], ValueError),
        ([-1], ValueError),
        ([], ValueError),
        (["a"], TypeError),
        ([1.5], TypeError),
    ],
)
def test_bad_ids(checkpoints, bad, err):
    model = Model.load(checkpoints["llama-gqa"][0])
    with pytest.raises(err):
        model.logits(bad)


@pytest.mark.parametrize(
    "opt",
    [
        dict(temperature=-1.0),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(top_k=-1),
        dict(min_p=2.0),
        dict(repetition_penalty=0.0),
        dict(max_new_tokens=-1),
        dict(seed=-3),
        dict(temperature=float("nan")),
    ],
)
def test_bad_sampling_options(small_llama, opt):
    model = Model.load(small_llama)
    with pytest.raises(ValueError):
        model.generate_ids([1, 2], **opt)


def test_text_api_without_tokenizer(small_llama):
    model = Model.load(small_llama)
    assert model.tokenizer is None
    with pytest.raises(ValueError, match="without tokenizer"):
        model.generate("hello")


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["T5Model"], "model_type": "t5"}))
    with pytest.raises(UnsupportedError, match="LlamaForCausalLM"):
        Model.load(str(tmp_path))


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        Model.load(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        Model.load(str(tmp_path))


@pytest.mark.peer("torch", "transformers", "safetensors")
def test_missing_tensor_is_named(checkpoints, tmp_path):
    from safetensors.numpy import load_file, save_file

    src = checkpoints["llama-gqa"][0]
    dst = tmp_path / "m"
    dst.mkdir()
    (dst / "config.json").write_text(open(os.path.join(src, "config.json")).read())
    t = load_file(os.path.join(src, "model.safetensors"))
    del t["model.layers.1.post_attention_layernorm.weight"]
    save_file(t, str(dst / "model.safetensors"))
    with pytest.raises(FormatError, match="model.layers.1.post_attention_layernorm.weight"):
        Model.load(str(dst))


def test_threads_sharing_one_model_get_sequential_results(small_llama):
    import threading

    model = Model.load(small_llama)
    jobs = [dict(ids=PROMPT[: 3 + i], temperature=0.9 if i % 2 else 0.0, top_k=20, seed=i) for i in range(8)]
    want = [
        model.generate_ids(
            j["ids"], max_new_tokens=30, stop_ids=[], temperature=j["temperature"], top_k=j["top_k"], seed=j["seed"]
        )
        for j in jobs
    ]
    got = [None] * len(jobs)

    def run(i):
        j = jobs[i]
        for _ in range(3):
            got[i] = model.generate_ids(
                j["ids"], max_new_tokens=30, stop_ids=[], temperature=j["temperature"], top_k=j["top_k"], seed=j["seed"]
            )

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == want


@pytest.mark.peer("torch", "transformers")
def test_seeded_sampling_reproduces(checkpoints):
    model = Model.load(checkpoints["gpt2"][0])
    a = model.generate_ids(PROMPT[:5], max_new_tokens=40, temperature=1.0, seed=11, stop_ids=[])
    b = model.generate_ids(PROMPT[:5], max_new_tokens=40, temperature=1.0, seed=11, stop_ids=[])
    c = model.generate_ids(PROMPT[:5], max_new_tokens=40, temperature=1.0, seed=12, stop_ids=[])
    assert a == b and a != c
