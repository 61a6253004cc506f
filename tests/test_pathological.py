"""Pathological inputs finish, in a child process with a hard wall only quadratic time would hit, on a thread
with a small stack (so no deep recursion): 1 MB of one character, of random Unicode (astral, combining), of
text without spaces, 100k newlines and long repeated patterns, through cl100k_base (ids equal tiktoken's where
tiktoken itself is not quadratic) and a trained byte-level tokenizer (ids equal Hugging Face tokenizers'),
and Model.stream with a stop string that never matches over a long output, or a 1 MB prompt."""

import json
import os
import random
import subprocess
import sys
import threading

import pytest
from helpers import CL100K_PATH, child_env, make_model_dir

from fastformer.tokenizer import Tokenizer, train_bpe

HERE = os.path.dirname(os.path.abspath(__file__))
WALL = 180  # seconds; the inputs take a few seconds in linear time, hours in quadratic
STACK = 256 * 1024
MB = 1_000_000
pytestmark = pytest.mark.subprocess


def random_unicode(rng, n_bytes):
    """Random code points up to n_bytes of UTF-8: ASCII, Latin, combining marks, CJK, emoji, any astral."""
    ranges = [
        (0x20, 0x7E),
        (0xA0, 0x24F),
        (0x300, 0x36F),
        (0x4E00, 0x9FFF),
        (0x1F300, 0x1FAFF),
        (0x10000, 0x10FFFF),
        (0x0, 0xD7FF),
        (0xE000, 0xFFFF),
    ]
    out, size = [], 0
    while size < n_bytes:
        lo, hi = rng.choice(ranges)
        c = chr(rng.randint(lo, hi))
        out.append(c)
        size += len(c.encode("utf-8"))
    return "".join(out)


def cases():
    """name -> (text, whether a peer encodes it in linear time, so ids can be compared)."""
    rng = random.Random(0)
    no_space = "".join(rng.choice("abcXYZ0123456789.,;:!?-_()[]{}'\"/\\é中🎉") for _ in range(MB // 2))
    return {
        "one-char-a": ("a" * MB, False),
        "one-char-cjk": ("中" * (MB // 3), False),
        "one-char-emoji": ("🎉" * (MB // 4), False),
        "one-char-space": (" " * MB, False),
        "newlines-100k": ("\n" * 100_000, False),
        "random-unicode": (random_unicode(rng, MB), True),
        "combining-run": ("a" + "\u0301" * (MB // 2), False),
        "no-spaces": (no_space, False),
        "repeat-ab-space": ("ab " * (MB // 3), True),
        "repeat-digits": ("1234567890" * (MB // 10), True),
        "repeat-contraction": ("'s" * (MB // 2), False),
        "repeat-crlf-word": ("x\r\n" * (MB // 3), True),
        "repeat-words-punct": ("Hello, world! " * (MB // 14), True),
        "repeat-special-like": ("<|endoftext|" * (MB // 12), False),
    }


def run_on_small_stack(fn):
    """fn() on a new thread with a STACK-byte stack; its result, or its exception re-raised."""
    out = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as e:  # re-raised in the calling thread
            out["error"] = e

    old = threading.stack_size(STACK)
    try:
        t = threading.Thread(target=target)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


def child_tokenizer(kind, path):
    """In the child: encode every case; report ids checks as JSON on stdout."""
    if kind == "cl100k":
        tok = Tokenizer.from_tiktoken(path, pattern="cl100k_base")
        from helpers import read_ranks, tiktoken_encoding

        peer = tiktoken_encoding("cl100k_base", read_ranks(path)).encode_ordinary
    else:
        from tokenizers import Tokenizer as HfTokenizer

        tok = Tokenizer.from_file(path)
        hf = HfTokenizer.from_file(path)
        peer = lambda text: hf.encode(text, add_special_tokens=False).ids  # noqa: E731

    def encode_all():
        report = {}
        for name, (text, peer_linear) in cases().items():
            ids = tok.encode_ordinary(text)
            report[name] = {
                "round_trip": tok.decode(ids) == text,
                "in_range": all(0 <= i < tok.n_vocab for i in ids),
                "n_ids": len(ids),
                "peer_equal": ids == peer(text) if peer_linear else None,
            }
        return report

    print(json.dumps(run_on_small_stack(encode_all)))


def child_stream(path):
    """In the child: stream with stop strings that never match over a long output; a 1 MB prompt."""
    from fastformer import Model

    model = Model.load(path)
    opts = dict(max_new_tokens=1500, temperature=1.0, seed=5, ignore_eos=True)
    stops = ["\x00never", "\x01" * 5000, "never-seen-stop-string"]

    def go():
        report = {}
        plain = model.generate("Once upon", **opts)
        pieces = list(model.stream("Once upon", stop=stops, **opts))
        report["stream_equal"] = "".join(pieces) == plain
        report["n_chars"] = len(plain)
        try:
            model.generate("Once upon a time " * (MB // 17), max_new_tokens=4)
            report["long_prompt"] = "accepted"
        except ValueError as e:
            report["long_prompt"] = str(e)
        return report

    print(json.dumps(run_on_small_stack(go)))


def run_child(call, tmp_path):
    """Run `call` (python source) in a child process outside the repository; its JSON report."""
    code = f"import test_pathological as t; t.{call}"
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=child_env(HERE), capture_output=True, text=True, timeout=WALL
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_report(report):
    assert set(report) == set(cases())
    for name, r in report.items():
        assert r["round_trip"] and r["in_range"], name
        assert r["n_ids"] > 0, name
        assert r["peer_equal"] in (True, None), name


@pytest.mark.peer("tiktoken")
def test_cl100k(tmp_path):
    if not CL100K_PATH.exists():
        pytest.skip(f"{CL100K_PATH} is not present")
    pytest.importorskip("tiktoken")
    check_report(run_child(f"child_tokenizer('cl100k', {str(CL100K_PATH)!r})", tmp_path))


@pytest.mark.peer("tokenizers")
def test_trained_byte_level(tmp_path):
    pytest.importorskip("tokenizers")
    text = [random_unicode(random.Random(k), 3000) for k in range(3)] + ["Hello, world! 1234567890 'sx\r\n"] * 20
    path = str(tmp_path / "tokenizer.json")
    train_bpe(text, vocab_size=1500).save(path)
    check_report(run_child(f"child_tokenizer('trained', {path!r})", tmp_path))


@pytest.mark.peer("torch", "transformers")
def test_stream_stop_strings_and_long_prompt(tmp_path):
    pytest.importorskip("torch")
    path = make_model_dir(tmp_path, max_context=2048)
    report = run_child(f"child_stream({path!r})", tmp_path)
    assert report["stream_equal"] and report["n_chars"] > 1500, report
    assert "exceeds the context window" in report["long_prompt"], report
