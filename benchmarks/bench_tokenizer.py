"""BPE encoding throughput on cl100k_base: fastformer vs tiktoken and HF tokenizers (same vocabulary and ids).

Texts: each language of tests/corpus.py repeated to ~256 KB, the running Python's standard
library sources (code, ~1 MB), CPython's CJK test texts when installed. `encode` runs single-threaded;
`encode_batch` splits every text into ~2 KB documents and encodes them on 2 threads
(tiktoken.encode_ordinary_batch(num_threads=2)). Ids are checked against tiktoken before timing.
The MB/s of each run is in extra_info["MB/s"].

GGUF byte-level vocabularies (cl100k's, written as GGUF metadata) under the tokenizer.ggml.pre names whose
split needed the `regex` package before they had C scanners: fastformer against that earlier path ("regex"),
on 16 KB of every text, single-threaded, ids checked equal first.
"""

import glob
import importlib.util
import os
import sysconfig
from pathlib import Path
from unittest import mock

import pytest

from benchmarks.conftest import set_threads
from fastformer import _tokenizer_hf
from fastformer.tokenizer import Tokenizer, _read_tiktoken

tiktoken = pytest.importorskip("tiktoken")

ROOT = Path(__file__).resolve().parents[1]
RANKS = ROOT.parent / "shared" / "data" / "cl100k_base.tiktoken"
SIZE = 256 * 1024


def _corpus():
    spec = importlib.util.spec_from_file_location("tokenizer_corpus_texts", ROOT / "tests" / "corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    texts = {}
    for name, text in mod.CORPUS.items():
        if name == "code":  # real source code below instead
            continue
        rep = text * (SIZE // len(text.encode()) + 1)
        texts[name] = rep[: len(rep) * SIZE // len(rep.encode())]
    stdlib = sysconfig.get_paths()["stdlib"]
    code = "".join(open(p, encoding="utf-8", errors="replace").read() for p in sorted(glob.glob(stdlib + "/*.py"))[:60])
    texts["code"] = code[: 1024 * 1024]
    cjk = sorted(glob.glob(os.path.join(stdlib, "test", "cjkencodings", "*-utf8.txt")))
    if cjk:
        texts["cjk_testfiles"] = "".join(open(p, encoding="utf-8", errors="replace").read() for p in cjk)
    return texts


TEXTS = _corpus() if RANKS.exists() else {}


@pytest.fixture(scope="module")
def tokenizers_(tmp_path_factory):
    if not RANKS.exists():
        pytest.skip(f"{RANKS} is not present")
    ff = Tokenizer.from_tiktoken(RANKS, pattern="cl100k_base")
    # tiktoken's own cl100k_base constructor, with the local rank file instead of the download
    from tiktoken_ext import openai_public as op

    ranks = _read_tiktoken(RANKS)
    with mock.patch.object(op, "load_tiktoken_bpe", mock.Mock(return_value=ranks)):
        enc = tiktoken.Encoding(**op.cl100k_base())
    impls = {"fastformer": ff, "tiktoken": enc}
    # HF tokenizers on the same vocabulary: fastformer's tokenizer.json of cl100k_base (as Llama 3's is made)
    try:
        import tokenizers
    except ImportError:
        return impls
    path = tmp_path_factory.mktemp("cl100k") / "tokenizer.json"
    ff.save(path)
    impls["hf_tokenizers"] = _HF(tokenizers.Tokenizer.from_file(str(path)))
    return impls


class _HF:
    """tokenizers with tiktoken's method names."""

    def __init__(self, tok):
        self.tok = tok

    def encode_ordinary(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_ordinary_batch(self, texts, num_threads):
        # tokenizers parallelises batches over all cores with rayon (2 here)
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]


def _mbps(benchmark, nbytes):
    benchmark.extra_info["MB/s"] = nbytes / benchmark.stats.stats.min / 1e6


IMPLS = ["fastformer", "tiktoken", "hf_tokenizers"]


def _impl(tokenizers_, impl):
    if impl not in tokenizers_:
        pytest.skip(f"{impl} is not installed")
    return tokenizers_[impl]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_encode(benchmark, tokenizers_, name, impl):
    set_threads(1)
    text = TEXTS[name]
    tok = _impl(tokenizers_, impl)
    want = tokenizers_["tiktoken"].encode_ordinary(text)
    assert tok.encode_ordinary(text) == want
    benchmark.group = f"encode {name} ({len(text.encode()) // 1024} KB) t=1"
    benchmark.pedantic(tok.encode_ordinary, (text,), rounds=5, iterations=1)
    _mbps(benchmark, len(text.encode()))


def _documents():
    docs = []
    for text in TEXTS.values():
        docs += [text[i : i + 2048] for i in range(0, len(text), 2048)]
    return docs


@pytest.mark.parametrize("impl", IMPLS)
def test_encode_batch(benchmark, tokenizers_, impl):
    set_threads(2)
    docs = _documents()
    tok = _impl(tokenizers_, impl)
    want = tokenizers_["tiktoken"].encode_ordinary_batch(docs, num_threads=2)
    assert tok.encode_ordinary_batch(docs, num_threads=2) == want
    benchmark.group = f"encode_batch {len(docs)} docs t=2"
    benchmark.pedantic(tok.encode_ordinary_batch, (docs,), {"num_threads": 2}, rounds=5, iterations=1)
    _mbps(benchmark, sum(len(d.encode()) for d in docs))


@pytest.mark.parametrize("c", ["a", " ", "\n", "中"])
def test_encode_one_megabyte_of_one_character(benchmark, tokenizers_, c):
    set_threads(1)
    text = c * (1_000_000 // len(c.encode()))
    tok = tokenizers_["fastformer"]
    assert tok.decode(tok.encode_ordinary(text)) == text
    benchmark.group = f"encode 1 MB of {c!r} t=1"
    benchmark.pedantic(tok.encode_ordinary, (text,), rounds=3, iterations=1)
    _mbps(benchmark, len(text.encode()))


# ---- GGUF vocabularies by tokenizer.ggml.pre: the C scanners against the path before them ----

GGUF_PRES = ["default", "falcon", "deepseek-llm", "deepseek-coder", "tekken", "gpt-4o"]


@pytest.fixture(scope="module")
def cl100k_gguf(tokenizers_):
    return tokenizers_["fastformer"].gguf_metadata()


def _gguf_tokenizer(meta, pre, impl):
    meta = {**meta, "tokenizer.ggml.pre": pre}
    if impl == "fastformer":
        return Tokenizer.from_gguf_metadata(meta)
    # the path before: no scanner for llama.cpp's gpt-4o / tekken regexes nor for its lists of regexes
    old = {p: k for p, k in _tokenizer_hf.SCANNERS_HF.items() if k not in ("gpt4o", "tekken")}
    with mock.patch.multiple(_tokenizer_hf, SCANNERS_HF=old, SCANNER_LISTS={}):
        return Tokenizer.from_gguf_metadata(meta)


@pytest.mark.parametrize("impl", ["fastformer", "regex"])
@pytest.mark.parametrize("pre", GGUF_PRES)
def test_encode_gguf_pre(benchmark, cl100k_gguf, pre, impl):
    pytest.importorskip("regex")
    set_threads(1)
    text = "".join(t[:16384] for t in TEXTS.values())
    tok = _gguf_tokenizer(cl100k_gguf, pre, impl)
    assert (tok._pipeline.pre.scanner is not None) == (impl == "fastformer")
    assert tok.encode_ordinary(text) == _gguf_tokenizer(cl100k_gguf, pre, "regex").encode_ordinary(text)
    benchmark.group = f"encode gguf pre {pre} ({len(text.encode()) // 1024} KB) t=1"
    benchmark.pedantic(tok.encode_ordinary, (text,), rounds=3, iterations=1)
    _mbps(benchmark, len(text.encode()))
