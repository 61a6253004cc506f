"""The thread pool: concurrent callers from many Python threads, thread counts, and fork()."""

import os
import threading

import numpy as np
import pytest

import fastformer
from fastformer import _core, _reference, ops


def _work(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((67, 300), dtype=np.float32)
    w = rng.standard_normal((129, 300), dtype=np.float32)
    x = rng.standard_normal((33, 513), dtype=np.float32)
    return a, w, x


def _run(a, w, x):
    return ops.linear(a, w), ops.softmax(x), ops.rms_norm(x, np.ones(513, np.float32))


def test_many_python_threads_get_sequential_results(threads):
    inputs = [_work(s) for s in range(8)]
    expected = [_run(*i) for i in inputs]
    results = [None] * len(inputs)
    errors = []

    def worker(i):
        try:
            for _ in range(20):
                got = _run(*inputs[i])
                for g, e in zip(got, expected[i]):
                    np.testing.assert_array_equal(g, e)
            results[i] = True
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(inputs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, errors[0]
    assert all(results)


@pytest.mark.parametrize("m", [1, 3, 67])
def test_results_are_bitwise_independent_of_thread_count(isa, m):
    # a model run from several Python threads at once may compute one call inline on 1 thread;
    # it must still get exactly what it would get alone
    a, w, x = _work(7)
    a = a[:m]
    q = np.ascontiguousarray(a[:, :256].reshape(m, 4, 64).transpose(1, 0, 2))
    kv = np.random.default_rng(m).standard_normal((1, 1500, 64), dtype=np.float32)  # one kv head: split decode
    outs = []
    before = fastformer.get_num_threads()
    try:
        for n in (1, 2, 3, 5):
            fastformer.set_num_threads(n)
            att = np.concatenate([ops.attention(q, q, q), ops.attention(q, kv, kv)], axis=1)
            outs.append((ops.linear(a, w), ops.matmul(a, w.T.copy()), att, _run(a, w, x)[1:]))
    finally:
        fastformer.set_num_threads(before)
    np.testing.assert_allclose(outs[0][0], _reference.linear(a, w), rtol=1e-5, atol=1e-3)
    for o in outs[1:]:
        np.testing.assert_array_equal(o[0], outs[0][0])
        np.testing.assert_array_equal(o[1], outs[0][1])
        np.testing.assert_array_equal(o[2], outs[0][2])
        for g, e in zip(o[3], outs[0][3]):
            np.testing.assert_array_equal(g, e)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_pool_works_after_fork():
    fastformer.set_num_threads(2)
    a, w, x = _work(3)
    want = ops.linear(a, w)  # the pool's workers exist now
    pid = os.fork()
    if pid == 0:  # child: workers were not inherited, the pool must rebuild itself
        code = 1
        try:
            got = ops.linear(a, w)
            code = 0 if np.array_equal(got, want) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(ops.linear(a, w), want)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 63, 64, 65, 1000, 4099])
def test_read_sum_is_numpys_sum_at_any_thread_count(isa, rng, n):
    a = rng.integers(0, 2**64, n, dtype=np.uint64)
    want = int(a.sum(dtype=np.uint64)) if n else 0  # both wrap mod 2**64
    before = fastformer.get_num_threads()
    try:
        for t in (1, 2, 3, 7):
            fastformer.set_num_threads(t)
            assert _core.read_sum(a) == want
    finally:
        fastformer.set_num_threads(before)


def test_read_sum_and_bandwidth_reject_bad_arguments():
    for bad in (np.zeros(4, np.int64), np.zeros((2, 2), np.uint64), np.zeros(8, np.uint64)[::2], [1, 2]):
        with pytest.raises(ValueError, match="read_sum: a must be"):
            _core.read_sum(bad)
    for nbytes in (0, 7, 1 << 40, 1.5):
        with pytest.raises(ValueError, match="read_bandwidth: nbytes"):
            fastformer.read_bandwidth(nbytes)
    with pytest.raises(ValueError, match="read_bandwidth: runs"):
        fastformer.read_bandwidth(1 << 20, runs=0)
    assert fastformer.read_bandwidth(1 << 20, runs=2) > 0
