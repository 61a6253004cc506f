"""One Model and one Tokenizer shared by many Python threads, and used again in a fork()ed child: every
caller gets exactly the results it gets alone. (tests/test_threads.py covers the kernels and the pool.)"""

import json
import os
import threading

import pytest
from helpers import PROMPTS, TRAIN, make_model_dir

from fastformer import Model

pytestmark = pytest.mark.peer("torch", "transformers")  # the model is a transformers checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return Model.load(make_model_dir(tmp_path_factory.mktemp("shared")))


def work(model, i):
    """What caller i computes: a sampled and a greedy generation, and encodings of every prompt."""
    tok = model.tokenizer
    return (
        model.generate(PROMPTS[i], max_new_tokens=24, temperature=0.9, top_k=40, seed=i, ignore_eos=True),
        model.generate_ids(tok.encode(PROMPTS[i]), max_new_tokens=12, ignore_eos=True),
        [tok.encode(p) for p in PROMPTS] + [tok.encode(TRAIN[i % 4] * 20)],
        tok.encode_batch(PROMPTS, num_threads=2),
    )


def test_eight_threads_share_one_model_and_tokenizer(model):
    expected = [work(model, i) for i in range(8)]
    assert len({e[0] for e in expected}) > 1  # seeds and prompts do change the output
    results, errors = [[] for _ in range(8)], []
    start = threading.Barrier(8)

    def worker(i):
        try:
            start.wait()
            for _ in range(3):
                results[i].append(work(model, i))
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, errors[0]
    for i in range(8):
        assert results[i] == [expected[i]] * 3, i


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_model_and_tokenizer_work_after_fork(model):
    want = [work(model, i) for i in (0, 1)]  # the pool's workers exist now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it computes through the pipe
        code = 1
        try:
            os.close(r)
            got = [work(model, i) for i in (0, 1)]
            with os.fdopen(w, "wb") as f:
                f.write(json.dumps(got).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert json.loads(data) == json.loads(json.dumps(want))
    assert [work(model, i) for i in (0, 1)] == want  # and the parent still works
