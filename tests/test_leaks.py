"""Memory stays flat over many calls: 10,000 generations on a tiny model and 10,000 encodes/decodes leave the
resident set where it was after a warm-up (a leak of even 4 KB per call would add 40 MB)."""

import os

import pytest
from helpers import PROMPTS, TRAIN, make_model_dir

from fastformer import Model

pytestmark = [pytest.mark.peer("torch", "transformers"), pytest.mark.slow]  # a transformers checkpoint; 20,000 calls

GROWTH_LIMIT = 30 * 1024 * 1024


def rss():
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return Model.load(make_model_dir(tmp_path_factory.mktemp("leaks")))


def repeat(fn, n):
    for i in range(n):
        fn(i)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""), reason="asan's quarantine holds freed memory")
@pytest.mark.parametrize("what", ["generate", "encode"])
def test_rss_stays_flat(model, what):
    tok = model.tokenizer
    texts = PROMPTS + TRAIN[:4]
    if what == "generate":

        def call(i):
            if i % 2:
                model.generate(PROMPTS[i % 8], max_new_tokens=2, stop="zz")
            else:
                ids = model.generate_ids(tok.encode(PROMPTS[i % 8]), max_new_tokens=2, temperature=0.8, seed=i)
                assert 1 <= len(ids) <= 2
    else:

        def call(i):
            t = texts[i % len(texts)]
            ids = tok.encode(t)
            assert tok.decode(ids) == t
            tok.encode_batch([t, t], num_threads=2)

    repeat(call, 500)  # warm-up: caches, allocator arenas
    before = rss()
    repeat(call, 10_000)
    grown = rss() - before
    assert grown < GROWTH_LIMIT, f"resident set grew by {grown / 2**20:.1f} MB over 10,000 {what} calls"
