"""Sampling: each option's distribution against transformers' logits processors, chi-square tests of the
draws, seeded reproducibility, and sessions that never share random state."""

import math
import threading

import numpy as np
import pytest
from helpers import optional

from fastformer.sampling import Sampler

torch = optional("torch")
gen_utils = optional("transformers.generation.logits_process")

V = 40
RNG = np.random.default_rng(5)
LOGITS = (RNG.standard_normal(V) * 2.0).astype(np.float32)
HISTORY = [3, 3, 7, 11, 20, 31]

OPTIONS = [
    dict(temperature=1.0),
    dict(temperature=0.7),
    dict(temperature=1.3, top_k=5),
    dict(temperature=1.0, top_p=0.8),
    dict(temperature=0.9, min_p=0.1),
    dict(temperature=1.0, repetition_penalty=1.3),
    dict(temperature=0.8, top_k=12, top_p=0.9, min_p=0.05, repetition_penalty=1.2),
]


def hf_probs(logits, history, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0):
    """The same pipeline built from transformers' own processors, in float64."""
    ids = torch.tensor([history])
    x = torch.tensor(logits, dtype=torch.float64)[None]
    if repetition_penalty != 1.0:
        x = gen_utils.RepetitionPenaltyLogitsProcessor(repetition_penalty)(ids, x)
    x = gen_utils.TemperatureLogitsWarper(temperature)(ids, x)
    if top_k:
        x = gen_utils.TopKLogitsWarper(top_k)(ids, x)
    if top_p < 1.0:
        x = gen_utils.TopPLogitsWarper(top_p)(ids, x)
    if min_p:
        x = gen_utils.MinPLogitsWarper(min_p)(ids, x)
    return torch.softmax(x, -1)[0].numpy()


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_distribution_matches_transformers_processors(opt):
    got = Sampler(**opt).probs(LOGITS, HISTORY)
    want = hf_probs(LOGITS, HISTORY, **opt)
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert abs(got.sum() - 1.0) < 1e-9


def chi2_critical(df, z=3.29):
    """Wilson-Hilferty approximation of the chi-square quantile at z standard deviations (~99.95%)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_draws_follow_the_distribution(opt):
    s = Sampler(seed=123, **opt)
    p = hf_probs(LOGITS, HISTORY, **opt)
    n = 20000
    counts = np.bincount([s.next_token(LOGITS, HISTORY) for _ in range(n)], minlength=V)
    assert counts[p == 0].sum() == 0, "drew a token the filters removed"
    # pool rare categories so every expected count is at least 5
    order = np.argsort(p)
    exp, obs, acc_e, acc_o = [], [], 0.0, 0
    for i in order:
        if p[i] == 0:
            continue
        acc_e += p[i] * n
        acc_o += counts[i]
        if acc_e >= 5:
            exp.append(acc_e)
            obs.append(acc_o)
            acc_e, acc_o = 0.0, 0
    if acc_e and exp:
        exp[-1] += acc_e
        obs[-1] += acc_o
    exp, obs = np.array(exp), np.array(obs)
    if len(exp) < 2:
        assert obs.sum() == n
        return
    stat = float(((obs - exp) ** 2 / exp).sum())
    assert stat < chi2_critical(len(exp) - 1), (stat, len(exp))


def test_greedy_is_argmax_after_repetition_penalty():
    s = Sampler(temperature=0.0, repetition_penalty=100.0)
    top = int(np.argmax(LOGITS))
    assert s.next_token(LOGITS, []) == top
    assert s.next_token(LOGITS, [top]) != top or LOGITS[top] <= 0


def test_seed_reproduces_and_sessions_are_independent():
    a = Sampler(temperature=1.0, seed=7)
    b = Sampler(temperature=1.0, seed=7)
    seq_a = [a.next_token(LOGITS, []) for _ in range(200)]
    # interleave another session's draws: b must not be affected
    c = Sampler(temperature=1.0, seed=7)
    seq_b = []
    for _ in range(200):
        c.next_token(LOGITS, [])
        seq_b.append(b.next_token(LOGITS, []))
    assert seq_a == seq_b
    assert seq_a != [Sampler(temperature=1.0, seed=8).next_token(LOGITS, []) for _ in range(200)]


def test_threads_draw_like_alone():
    want = [Sampler(temperature=1.0, top_p=0.9, seed=i).next_token(LOGITS, []) for i in range(8) for _ in range(1)]
    alone = {}
    for i in range(8):
        s = Sampler(temperature=1.0, top_p=0.9, seed=i)
        alone[i] = [s.next_token(LOGITS, []) for _ in range(300)]
    got = {}

    def run(i):
        s = Sampler(temperature=1.0, top_p=0.9, seed=i)
        got[i] = [s.next_token(LOGITS, []) for _ in range(300)]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == alone
    assert [alone[i][0] for i in range(8)] == want


@pytest.mark.parametrize("vocab", [40, 32000])
def test_greedy_picks_the_first_largest_for_any_logits_layout(threads, vocab):
    rng = np.random.default_rng(vocab)
    x = rng.standard_normal(vocab).astype(np.float32)
    x[vocab // 2] = x[vocab - 1] = x.max() + 1.0  # a tie: the first wins
    s = Sampler()
    want = vocab // 2
    # float32 (the kernel's path), float64, a list, a strided view and a 2-D row take the same pick
    assert s.next_token(x, []) == want
    assert s.next_token(x.astype(np.float64), []) == want
    assert s.next_token(x.tolist(), []) == want
    assert s.next_token(np.repeat(x, 2)[::2], []) == want
    assert s.next_token(x[None][0], []) == want


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_greedy_refuses_nan_and_inf(threads, bad):
    for dtype in (np.float32, np.float64):
        x = np.zeros(32000, dtype)
        x[20000] = bad
        with pytest.raises(ValueError, match="logits must be finite"):
            Sampler().next_token(x, [])
    with pytest.raises(ValueError, match="logits must be finite"):
        Sampler().next_token(np.full(100, -np.inf, np.float32), [])
    # -inf masks are allowed
    x = np.full(100, -np.inf, np.float32)
    x[7] = 0.5
    assert Sampler().next_token(x, []) == 7
