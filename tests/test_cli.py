"""The `fastformer` command: --help everywhere, info and bench on a small checkpoint, clear errors."""

import os
import subprocess
import sys

import pytest
from helpers import child_env, make_checkpoint

import fastformer
from fastformer.model import DEFAULT_SAMPLING, KJV_MODEL

pytestmark = pytest.mark.subprocess
TESTS = os.path.dirname(os.path.abspath(__file__))
COMMANDS = ["generate", "perplexity", "tokenize", "info", "bench", "cpu"]


def run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "fastformer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS,
        env=child_env(),
    )


def test_top_level_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: fastformer " + cmd in r.stdout


def test_cpu_json():
    import json

    r = run("cpu", "--json")
    assert r.returncode == 0
    info = json.loads(r.stdout)
    assert info["supported"][0] == "scalar"
    assert "read_bandwidth_gbs" not in info  # only measured when asked


def test_cpu_bandwidth():
    import json

    r = run("cpu", "--json", "--bandwidth", "--threads", "2")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["threads"] == 2 and info["read_bandwidth_gbs"] > 0.1
    r = run("cpu", "--bandwidth")
    assert r.returncode == 0 and "GB/s read at" in r.stdout


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    config = dict(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=300,
    )
    return make_checkpoint(tmp_path_factory.mktemp("cli") / "tiny", "llama", **config)[0]


@pytest.mark.peer("torch", "transformers")
def test_info(tiny):
    r = run("info", tiny)
    assert r.returncode == 0, r.stderr
    assert "LlamaForCausalLM" in r.stdout and "vocabulary:    100" in r.stdout and "F32" in r.stdout
    # 1 layer, 2 kv heads of 16: 2 * 2 * 16 values per token; q8_0 needs heads of a multiple of 32
    assert "kv cache:      f32 256 bytes, f16 128 bytes, q8_0 n/a per token (default f16)" in r.stdout


def test_generate_kv_dtype():
    # the KJV model (heads of 32) with a q8_0 cache: the text Model.generate gives with the same options
    args = ("--model", KJV_MODEL, "--max-new-tokens", "12", "--temperature", "0", "--kv-dtype", "q8_0")
    r = run("generate", *args, "In the beginning")
    assert r.returncode == 0, r.stderr
    opts = dict(DEFAULT_SAMPLING, temperature=0.0)
    want = fastformer.Model.load(KJV_MODEL, kv_dtype="q8_0").generate("In the beginning", max_new_tokens=12, **opts)
    assert r.stdout == want + "\n"
    bad = run("generate", "--model", KJV_MODEL, "--kv-dtype", "q4_0", "x")
    assert bad.returncode == 2 and "--kv-dtype" in bad.stderr


@pytest.mark.peer("torch", "transformers")
def test_bench(tiny):
    r = run("bench", "--model", tiny, "--prompt-tokens", "16", "--new-tokens", "8", "--runs", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "prefill:" in r.stdout and "decode:" in r.stdout and "tokens/s" in r.stdout


@pytest.mark.peer("torch", "transformers")
def test_errors_are_messages_not_tracebacks(tiny, tmp_path):
    r = run("info", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such model" in r.stderr and "Traceback" not in r.stderr
    r = run("generate", "--model", tiny, "hello")
    assert r.returncode == 2 and "tokenizer" in r.stderr and "Traceback" not in r.stderr
    # without --model the embedded default model is used (tests/test_default_model.py): errors still read well
    r = run("perplexity", str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "missing.txt" in r.stderr and "Traceback" not in r.stderr
    r = run("generate", "hi", "--max-new-tokens", "100000")
    assert r.returncode == 2 and "context window" in r.stderr and "Traceback" not in r.stderr
