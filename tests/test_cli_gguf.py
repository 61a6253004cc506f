"""`fastformer info` on a GGUF file (the KJV model): the config, tensor types by ggml name and
the embedded tokenizer, not a traceback."""

import os
import subprocess
import sys

import pytest
from helpers import child_env

import fastformer
from fastformer.model import KJV_MODEL

pytestmark = pytest.mark.subprocess


def test_info_on_a_gguf_file():
    r = subprocess.run([sys.executable, "-m", "fastformer", "info", KJV_MODEL], capture_output=True, text=True,
                       timeout=120, env=child_env(), cwd=os.path.dirname(KJV_MODEL))  # fmt: skip
    assert r.returncode == 0, r.stderr
    model = fastformer.Model.load(KJV_MODEL)
    c = model.config
    assert f"architecture:  {c.architecture}" in r.stdout
    assert f"layers:        {c.n_layers}" in r.stdout and f"vocabulary:    {c.vocab_size}" in r.stdout
    types = fastformer.gguf.GGUFFile(KJV_MODEL).tensors.values()
    for t in {t.type for t in types}:
        assert f"{t} x{sum(1 for u in types if u.type == t)}" in r.stdout
    assert f"tokenizer:     GGUF {model.checkpoint().config.raw['tokenizer.ggml.model']}" in r.stdout
    assert f"{model.tokenizer.n_vocab} ids" in r.stdout
