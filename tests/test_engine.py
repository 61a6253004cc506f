"""The batched engine (fastformer.engine): batch invariance, equality with Model.generate, the prefix cache,
cancelling, the bounded queue and bad requests.

Batch invariance is checked bit for bit: a sequence's logits in a batched step equal those of the same
sequence run alone, whatever the other sequences (prompt chunks or decode rows, on either kernel path) and
whatever the ISA and thread count; and the engine's text, tokens and logprobs equal Model.generate's.
"""

import threading
import time

import numpy as np
import pytest
from helpers import CASES as LLAMA_CASES
from helpers import make_checkpoint, perturb_by_name

from fastformer import Model, _core
from fastformer.engine import PREFILL_CHUNK, Engine, QueueFullError, SamplingParams
from fastformer.model import KJV_MODEL

KJV = KJV_MODEL
TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And the LORD said unto Moses,",
    "Blessed are the meek: for they shall inherit the earth. Blessed are they which do hunger",
    "For",
    "Jesus wept.",
]


@pytest.fixture(scope="module")
def kjv():
    return Model.load(KJV)


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """Checkpoints whose rows take every branch of the batched step: f32 and int8 weights, a d_ff that is not
    a multiple of 16 (activations per row), a sliding window, gemma's norms and soft-caps, qwen3's q/k norms,
    longrope (rope per sequence)."""
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("engine")
    base = dict(LLAMA_CASES["llama-gqa"][1])
    out = {}
    specs = {
        "llama-f32": ("llama", base),
        "mistral-window": ("mistral", dict(base, sliding_window=8)),
        "llama-q": ("llama", dict(base, hidden_size=64, intermediate_size=96)),
        "qwen3": ("qwen3", dict(base, head_dim=16)),
        "gemma2": (
            "gemma2",
            dict(base, head_dim=16, sliding_window=6, attn_logit_softcapping=20.0, final_logit_softcapping=15.0),
        ),
        "phi3-longrope": (
            "phi3",
            dict(
                base,
                pad_token_id=0,
                original_max_position_embeddings=16,
                rope_scaling=dict(type="longrope", short_factor=[1.0] * 8, long_factor=[2.0 + i for i in range(8)]),
            ),
        ),
    }
    for i, (name, (arch, cfg)) in enumerate(specs.items()):
        path, _ = make_checkpoint(root / name, arch, perturb=perturb_by_name(i), **cfg)
        out[name] = path
    return out


def _solo(model, prompt, gen):
    """Logits of prompt's last token (prompt path) then of each generated token (row path), alone."""
    s = _core.Session(model._core, len(prompt) + len(gen) + 1, 64)
    rows = [s.forward(prompt, False, _core.PATH_PANELS)[0]]
    rows += [s.forward([t], False, _core.PATH_ROWS)[0] for t in gen]
    return np.stack(rows)


def _batched(model, prompts, gens, stagger):
    """The same through forward_batch: sequence i joins at step stagger[i] with its whole prompt, then decodes
    gens[i] one token per step, beside whatever else is running."""
    scratch = _core.Session(model._core, 1, 256)
    sess = [_core.Session(model._core, len(p) + len(g) + 1, 1) for p, g in zip(prompts, gens)]
    out = [[] for _ in prompts]
    step = 0
    while any(len(o) < len(g) + 1 for o, g in zip(out, gens)):
        members, ids, counts, paths = [], [], [], []
        for i, (p, g) in enumerate(zip(prompts, gens)):
            if step < stagger[i] or len(out[i]) == len(g) + 1:
                continue
            if not out[i]:
                ids += p
                counts.append(len(p))
                paths.append(_core.PATH_PANELS)
            else:
                ids.append(g[len(out[i]) - 1])
                counts.append(1)
                paths.append(_core.PATH_ROWS)
            members.append(i)
        if members:
            logits = _core.forward_batch(scratch, [sess[i] for i in members], ids, counts, paths)
            for j, i in enumerate(members):
                out[i].append(logits[j])
        step += 1
    return [np.stack(o) for o in out]


def _check_invariance(model, rng):
    vocab = model.config.vocab_size
    prompts = [list(rng.integers(3, vocab, n)) for n in (7, 1, 12, 3)]
    gens = [list(rng.integers(3, vocab, n)) for n in (5, 6, 2, 4)]
    want = [_solo(model, p, g) for p, g in zip(prompts, gens)]
    for stagger in ([0, 0, 0, 0], [0, 2, 1, 3], [3, 0, 0, 1]):
        got = _batched(model, prompts, gens, stagger)
        for i in range(len(prompts)):
            np.testing.assert_array_equal(got[i], want[i], err_msg=f"sequence {i}, stagger {stagger}")


def test_batch_invariance_kjv(kjv, qpath, threads):
    """The int8 model (Q8_0 matrices and token table): every int8 kernel path, 1 and 2 threads."""
    _check_invariance(kjv, np.random.default_rng(0))


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("name", ["llama-f32", "mistral-window", "qwen3", "gemma2", "phi3-longrope"])
def test_batch_invariance_f32(small_models, name, isa, threads):
    _check_invariance(Model.load(small_models[name]), np.random.default_rng(1))


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q5_0", "iq4_nl"])
def test_batch_invariance_quantized(small_models, qtype, qpath):
    _check_invariance(Model.load(small_models["llama-q"], quantize=qtype), np.random.default_rng(2))


def test_forward_batch_rejects_bad_steps(kjv):
    core = kjv._core
    scratch = _core.Session(core, 1, 8)
    a, b = _core.Session(core, 4, 1), _core.Session(core, 4, 1)
    with pytest.raises(ValueError, match="appears twice"):
        _core.forward_batch(scratch, [a, a], [1, 2], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="counts sum"):
        _core.forward_batch(scratch, [a, b], [1, 2, 3], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="scratch takes"):
        _core.forward_batch(scratch, [_core.Session(core, 16, 1)], list(range(1, 10)), [9], [2])
    with pytest.raises(ValueError, match="capacity"):
        _core.forward_batch(scratch, [a], [1, 2, 3, 4, 5], [5], [2])
    with pytest.raises(ValueError, match="paths"):
        _core.forward_batch(scratch, [a], [1], [1], [7])
    with pytest.raises(ValueError, match="token ids"):
        _core.forward_batch(scratch, [a], [99999], [1], [1])
    with pytest.raises(ValueError, match="1 to"):
        _core.forward_batch(scratch, [], [], [], [])
    assert a.n_past == 0 and b.n_past == 0  # nothing ran


# ---- the engine against Model.generate ----

GREEDY = dict(max_new_tokens=24)
SAMPLED = dict(max_new_tokens=24, temperature=0.9, top_k=40, top_p=0.95, seed=7, repetition_penalty=1.1)


@pytest.mark.parametrize(
    "options", [GREEDY, SAMPLED, dict(GREEDY, stop=["the", ","])], ids=["greedy", "sampled", "stop"]
)
def test_generate_batch_equals_generate(kjv, threads, options):
    want = [kjv.generate(t, **options) for t in TEXTS]
    for parallel in (1, 3, 8):
        assert kjv.generate_batch(TEXTS, parallel=parallel, **options) == want


def test_long_prompts_are_chunked_as_generate_chunks_them(kjv):
    """Prompts longer than a chunk are read in PREFILL_CHUNK pieces while other sequences decode."""
    rng = np.random.default_rng(3)
    prompts = [list(rng.integers(3, 4000, n)) for n in (PREFILL_CHUNK + 40, 2 * PREFILL_CHUNK - 20, 9)]
    want = [kjv.generate_ids(p, max_new_tokens=12) for p in prompts]
    with Engine(kjv, parallel=3) as engine:
        reqs = [engine.submit(p, SamplingParams(max_tokens=12)) for p in prompts]
        got = [r.result(60).token_ids for r in reqs]
    assert got == want


@pytest.mark.peer("torch", "transformers")
@pytest.mark.parametrize("name", ["mistral-window", "gemma2", "phi3-longrope"])
def test_engine_equals_generate_on_windows_and_longrope(small_models, name):
    """Sliding windows (prompts past the window go one token per step) and longrope (a sequence that crosses
    the pretraining length is read again with the long factors)."""
    model = Model.load(small_models[name])
    rng = np.random.default_rng(4)
    prompts = [list(rng.integers(3, model.config.vocab_size, n)) for n in (5, 14, 20, 2)]
    want = [model.generate_ids(p, max_new_tokens=10, ignore_eos=True) for p in prompts]
    with Engine(model, parallel=4) as engine:
        reqs = [engine.submit(p, SamplingParams(max_tokens=10, ignore_eos=True)) for p in prompts]
        assert [r.result(60).token_ids for r in reqs] == want


def test_events_stream_the_text_and_logprobs(kjv):
    ids = kjv.encode_prompt(TEXTS[0])
    with Engine(kjv, parallel=2) as engine:
        req = engine.submit(ids, SamplingParams(max_tokens=10, logprobs=3))
        events = list(req)
        done = req.result()
    assert events[-1].finish_reason == done.finish_reason == "length"
    assert "".join(e.text for e in events) == done.text == kjv.generate(TEXTS[0], max_new_tokens=10)
    toks = [e.token_id for e in events if e.token_id is not None]
    assert toks == done.token_ids and len(toks) == 10
    # each logprob is log_softmax of the model's logits after the sequence so far (computed here on the prompt
    # path: float rounding apart, which can flip an int8 rounding of an activation, so to 1e-2)
    full = kjv.logits(ids + toks).astype(np.float64)
    for i, e in enumerate(x for x in events if x.token_id is not None):
        row = full[len(ids) - 1 + i]
        lse = row.max() + np.log(np.exp(row - row.max()).sum())
        assert e.logprob == pytest.approx(row[e.token_id] - lse, abs=1e-2)
        assert [t for t, _ in e.top_logprobs] == list(np.argsort(-row, kind="stable")[:3])
        assert e.top_logprobs[0][1] >= e.top_logprobs[1][1] >= e.top_logprobs[2][1]
    assert done.prompt_tokens == len(ids) and done.completion_tokens == 10


def test_prefix_cache_reuses_whole_chunks(kjv):
    rng = np.random.default_rng(5)
    system = list(rng.integers(3, 4000, PREFILL_CHUNK + 30))
    prompts = [system + list(rng.integers(3, 4000, n)) for n in (5, 17, 1)]
    want = [kjv.generate_ids(p, max_new_tokens=8) for p in prompts]
    with Engine(kjv, parallel=1) as engine:
        first = engine.submit(prompts[0], SamplingParams(max_tokens=8)).result(60)
        rest = [engine.submit(p, SamplingParams(max_tokens=8)).result(60) for p in prompts[1:]]
        stats = engine.stats()
    assert first.cached_tokens == 0
    assert [r.cached_tokens for r in rest] == [PREFILL_CHUNK, PREFILL_CHUNK]
    assert [first.token_ids] + [r.token_ids for r in rest] == want
    assert stats["cached_tokens_total"] == 2 * PREFILL_CHUNK
    with Engine(kjv, parallel=1, prefix_cache=0) as engine:
        engine.submit(prompts[0], SamplingParams(max_tokens=2)).result(60)
        assert engine.submit(prompts[1], SamplingParams(max_tokens=2)).result(60).cached_tokens == 0


def test_cancel_leaves_before_the_next_step(kjv):
    with Engine(kjv, parallel=2) as engine:
        seen = threading.Event()
        req = engine.submit(
            kjv.encode_prompt("And"), SamplingParams(max_tokens=None, ignore_eos=True), on_event=lambda e: seen.set()
        )
        other = engine.submit(kjv.encode_prompt("For"), SamplingParams(max_tokens=6))
        assert seen.wait(30)
        req.cancel()
        done = req.result(30)
        assert done.finish_reason == "cancelled"
        assert done.completion_tokens < kjv.config.max_context - 1
        assert other.result(30).text == kjv.generate("For", max_new_tokens=6)
        deadline = time.monotonic() + 10
        while engine.stats()["busy_slots"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.stats()["busy_slots"] == 0


def test_bounded_queue_and_close(kjv):
    engine = Engine(kjv, parallel=1, max_queue=1)
    params = SamplingParams(max_tokens=None, ignore_eos=True)
    a = engine.submit([5], params)
    b = engine.submit([6], params)
    with pytest.raises(QueueFullError, match="max_queue 1"):
        engine.submit([7], params)
    engine.close()
    assert a.result(30).finish_reason == "cancelled" and b.result(30).finish_reason == "cancelled"
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit([7], params)


def test_bad_requests_are_refused_before_work(kjv):
    window = kjv.config.max_context
    with Engine(kjv, parallel=1) as engine:
        with pytest.raises(ValueError, match="context window"):
            engine.submit([5] * window, SamplingParams())
        with pytest.raises(ValueError, match="exceeds the context window"):
            engine.submit([5] * 10, SamplingParams(max_tokens=window))
        with pytest.raises(ValueError, match="empty"):
            engine.submit([], SamplingParams())
        with pytest.raises(ValueError, match="token ids|prompt"):
            engine.submit([-1], SamplingParams())
        with pytest.raises(ValueError, match="stop_ids"):
            engine.submit([5], SamplingParams(stop_ids=[10**9]))
        with pytest.raises(TypeError, match="SamplingParams"):
            engine.submit([5], {"max_tokens": 3})
        assert engine.submit([5], SamplingParams(max_tokens=0)).result(10).finish_reason == "length"
    for bad in (
        dict(max_tokens=-1),
        dict(temperature=-1.0),
        dict(top_p=0.0),
        dict(top_k=1.5),
        dict(seed=-2),
        dict(logprobs=99),
        dict(stop=[""]),
        dict(ignore_eos="yes"),
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SamplingParams(**bad)
    for bad in (dict(parallel=0), dict(max_queue=-1), dict(parallel=True), dict(prefix_cache=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Engine(kjv, **bad)
    with pytest.raises(TypeError, match="unexpected options"):
        kjv.generate_batch(["a"], max_tokens=3)
    with pytest.raises(TypeError, match="list of prompts"):
        kjv.generate_batch("a")
    assert kjv.generate_batch([]) == []


def test_a_failing_listener_does_not_stop_the_engine(kjv):
    def boom(ev):
        raise RuntimeError("listener failed")

    with Engine(kjv, parallel=2) as engine:
        done = engine.submit([5, 6], SamplingParams(max_tokens=4), on_event=boom).result(30)
        assert done.completion_tokens == 4
        assert engine.submit([5, 6], SamplingParams(max_tokens=4)).result(30).token_ids == done.token_ids


def test_cancel_while_queued_ends_at_once(kjv):
    with Engine(kjv, parallel=1, max_queue=4) as engine:
        running = engine.submit([5], SamplingParams(max_tokens=None, ignore_eos=True))
        queued = engine.submit([6], SamplingParams(max_tokens=4))
        queued.cancel()
        assert queued.result(10).finish_reason == "cancelled"
        assert not running.done() and engine.stats()["queue_depth"] == 0
        running.cancel()
        assert running.result(10).finish_reason == "cancelled"
