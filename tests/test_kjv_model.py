"""The small KJV model the tests and examples use (fastformer/data/kjv-5m-q8_0.gguf, `fastformer.model.KJV_MODEL`):
loading, seeded sampling, the CLI, and Model.perplexity against an independent numpy computation."""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import child_env

import fastformer
from fastformer.model import DEFAULT_SAMPLING, KJV_MODEL

HELDOUT = os.path.join(os.path.dirname(fastformer.__file__), "data", "heldout.txt")
PPL_BOUND = 80.0  # a random 4096-token model scores ~4096; the trained one ~48 (KJV_MODEL_CARD.md)


@pytest.fixture(scope="module")
def model():
    return fastformer.Model.load(KJV_MODEL)


@pytest.fixture(scope="module")
def heldout():
    with open(HELDOUT, encoding="utf-8") as f:
        return f.read()


def words(text):
    return re.findall(r"[a-z]+", text.lower())


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fastformer", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=child_env(),
    )


def test_loads_with_tokenizer(model):
    c = model.config
    assert model.tokenizer is not None and model.tokenizer.n_vocab == c.vocab_size
    assert c.architecture == "LlamaForCausalLM" and c.n_kv_heads < c.n_heads
    assert model.tokenizer.decode(model.tokenizer.encode("And God said")) == "And God said"
    qtypes = {layer.wq.qtype for layer in model.checkpoint().layers}
    assert qtypes == {"q8_0"}


def test_seeded_generate_is_reproducible_and_in_corpus_vocabulary(model, heldout):
    opts = dict(DEFAULT_SAMPLING, max_new_tokens=60)
    a = model.generate("In the beginning", seed=11, **opts)
    b = model.generate("In the beginning", seed=11, **opts)
    assert a == b and len(words(a)) >= 10
    others = {model.generate("In the beginning", seed=s, **opts) for s in (12, 13, 14)}
    assert len(others | {a}) > 1
    vocab = set(words(heldout))
    gen = words(" ".join([a, *others]))
    known = sum(w in vocab for w in gen) / len(gen)
    assert known > 0.8, (known, a)


@pytest.mark.subprocess
def test_cli_generate(tmp_path):
    args = ("generate", "--model", KJV_MODEL, "In the beginning", "--max-new-tokens", "30", "--seed", "3")
    args += ("--threads", "1")
    r = run_cli(*args, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert len(words(r.stdout)) >= 5
    assert run_cli(*args, cwd=str(tmp_path)).stdout == r.stdout


def nll_numpy(model, ids):
    """Summed -log p(ids[j] | ids[:j]) for j >= 1 from one logits call, log-softmax in float64."""
    x = model.logits(ids).astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    return -sum(logp[j - 1, ids[j]] for j in range(1, len(ids)))


def test_perplexity_matches_numpy(model, heldout):
    text = heldout[:400]
    ids = model.encode_prompt(text)
    want = math.exp(nll_numpy(model, ids) / (len(ids) - 1))
    assert model.perplexity(text) == pytest.approx(want, rel=1e-9)
    assert model.perplexity(ids) == pytest.approx(want, rel=1e-9)
    # one window covering the text: the stride does not matter
    assert model.perplexity(text, context=len(ids), stride=1) == pytest.approx(want, rel=1e-9)
    assert model.perplexity(text, context=len(ids) + 5, stride=3) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("context,stride", [(16, 8), (16, 15), (9, 1), (24, 7)])
def test_perplexity_sliding_windows(model, heldout, context, stride):
    ids = model.encode_prompt(heldout[:300])
    # token j is scored in the first window [k*stride, k*stride + context) that holds it past its first place
    windows, total = {}, 0.0
    for j in range(1, len(ids)):
        k = max(0, -(-(j + 1 - context) // stride))
        begin = k * stride
        assert begin < j < begin + context
        if begin not in windows:
            windows[begin] = model.logits(ids[begin : begin + context]).astype(np.float64)
        x = windows[begin][j - begin - 1]
        total += np.log(np.exp(x - x.max()).sum()) + x.max() - x[ids[j]]
    want = math.exp(total / (len(ids) - 1))
    assert model.perplexity(ids, context=context, stride=stride) == pytest.approx(want, rel=1e-9)


def test_heldout_perplexity_is_sane(model, heldout):
    ppl = model.perplexity(heldout[:20000], context=512, stride=256)
    assert 1.0 < ppl < PPL_BOUND


def test_q4_0_close_to_q8_0(model, heldout):
    q4 = fastformer.Model.load(KJV_MODEL, quantize="q4_0")
    assert {layer.w_up.qtype for layer in q4.checkpoint().layers} == {"q4_0"}
    text = heldout[:8000]
    p8, p4 = model.perplexity(text), q4.perplexity(text)
    assert p4 != p8
    assert abs(p4 / p8 - 1) < 0.05, (p8, p4)


@pytest.mark.subprocess
def test_cli_perplexity(tmp_path, model, heldout):
    f = tmp_path / "text.txt"
    f.write_text(heldout[:3000], encoding="utf-8")
    r = run_cli("perplexity", "--model", KJV_MODEL, str(f), "--context", "128", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    got = float(re.search(r"perplexity:\s+([0-9.]+)", r.stdout).group(1))
    assert got == pytest.approx(model.perplexity(heldout[:3000], context=128), rel=1e-3)
    r = run_cli("perplexity", str(tmp_path / "missing.txt"), cwd=str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_perplexity_bad_arguments(model):
    with pytest.raises(ValueError, match="at least 2 tokens"):
        model.perplexity("")
    with pytest.raises(ValueError, match="at least 2 tokens"):
        model.perplexity([5])
    for bad in (1, 0, True, 2.5, model.config.max_context + 1):
        with pytest.raises(ValueError, match="context"):
            model.perplexity("And God said", context=bad)
    for bad in (0, 16, -1):
        with pytest.raises(ValueError, match="stride"):
            model.perplexity("And God said", context=16, stride=bad)
    with pytest.raises(ValueError):
        model.perplexity([0, model.config.vocab_size])


@pytest.mark.parametrize("start", [0, 5000, 20000])
def test_few_row_steps_agree_with_one_prefill(model, heldout, isa, start):
    """The last n tokens fed as their own step (n <= 4: the few-row gemv and attention paths) against the same
    positions of one 40-token prefill (the packed GEMM): float rounding that differs between the paths can flip
    an 8-bit activation code, which moves a logit by ~0.01 (0.0121 seen at start 20000, n 3, avx512); a wrong
    kernel or cache position moves them by whole units."""
    ids = np.array(model.tokenizer.encode(heldout[start : start + 800])[:40], np.int32)
    s = model._session(40)
    full = s.forward(ids, True)
    for n in (1, 2, 3, 4, 5, 8):
        s = model._session(40)
        s.forward(ids[: 40 - n])
        part = s.forward(ids[40 - n :], True)
        diff = np.abs(part - full[40 - n :])
        assert diff.max() <= 0.05 and diff.mean() <= 2e-3, (n, diff.max(), diff.mean())
        margin = np.sort(full[40 - n :], axis=1)
        sure = margin[:, -1] - margin[:, -2] > 0.1
        assert (part.argmax(1) == full[40 - n :].argmax(1))[sure].all()
