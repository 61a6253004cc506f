"""`fastformer embed`: the vectors it writes (npy, jsonl, from a file or stdin) are sentence-transformers' own;
bad input gives an error message and exit status 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from embed_fixtures import SENTENCES, load_sentence, make_bert, make_sentence_dir
from helpers import child_env

pytestmark = [pytest.mark.subprocess, pytest.mark.peer("torch", "transformers", "tokenizers", "sentence_transformers")]
TESTS = os.path.dirname(os.path.abspath(__file__))


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "fastformer", "embed", *args], input=stdin, capture_output=True,
                          timeout=300, cwd=TESTS, env=child_env())  # fmt: skip


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    bert, _ = make_bert(root / "bert", seed=7)
    return make_sentence_dir(root / "st", bert)[0]


def test_npy_and_jsonl_match_sentence_transformers(st_dir, tmp_path):
    texts = SENTENCES[:12]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    want = load_sentence(st_dir).encode(texts)
    r = run("--model", st_dir, str(src), "-o", str(tmp_path / "v.npy"))
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "v.npy")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    r = run("--model", st_dir, "--format", "jsonl", "-", stdin="\n".join(texts).encode("utf-8"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [row["index"] for row in rows] == list(range(len(texts)))
    np.testing.assert_allclose(np.array([row["embedding"] for row in rows]), want, atol=1e-5, rtol=0)


def test_errors(st_dir, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    for args, msg in [((str(bad),), "UTF-8"), (("--pooling", "median", "-"), "pooling"),
                      ((str(tmp_path / "missing.txt"),), "missing.txt")]:  # fmt: skip
        r = run("--model", st_dir, *args, stdin=b"x\n")
        assert r.returncode == 2 and msg in r.stderr.decode(), r.stderr
