"""GGUF vocabularies (tokenizer.ggml.*): Tokenizer.gguf_metadata and Tokenizer.from_gguf_metadata read each other
back, and where llama-cpp-python is installed (an opt-in peer) llama.cpp tokenizes a vocab-only GGUF file written
from the metadata exactly as the Tokenizer read back from it does."""

import unicodedata

import pytest
from corpus import DOCS
from helpers import tiktoken_encoding
from hf_tokenizers import LINES, TEXTS, theirs

import fastformer
from fastformer import Tokenizer
from fastformer.tokenizer import LLAMA3_PATTERN


def _texts():
    return [t for t in TEXTS + LINES if unicodedata.is_normalized("NFC", t)]


def _split_apart(meta, text):
    """llama.cpp's gpt-4o split (read back from "gpt-4o") and o200k's differ on marks and non-ASCII case."""
    marks = any(unicodedata.category(c)[0] == "M" or (not c.isascii() and c.isupper()) for c in text)
    return meta.get("tokenizer.ggml.pre") == "gpt-4o" and marks


@pytest.mark.peer("tokenizers")
def test_byte_level_and_sentencepiece_layouts_read_back(pair):
    ours, hf = pair
    meta = ours.gguf_metadata()
    back = Tokenizer.from_gguf_metadata(meta)
    assert back.n_vocab == ours.n_vocab and (back.bos_id, back.eos_id) == (ours.bos_id, ours.eos_id)
    assert meta["tokenizer.ggml.model"] == ("gpt2" if ours._pipeline.byte_level else "llama")
    for text in _texts():
        ids = back.encode(text, allowed_special="all")
        if meta["tokenizer.ggml.model"] == "gpt2" and not _split_apart(meta, text):
            assert ids == theirs(hf, text), repr(text[:60])
        assert back.decode(ids) == text


@pytest.mark.peer("sentencepiece")
def test_sentencepiece_scores_read_back(spm_pair):
    ours, sp = spm_pair
    back = Tokenizer.from_gguf_metadata(ours.gguf_metadata())
    for text in TEXTS + LINES:
        assert back.encode(text) == sp.encode(text), repr(text[:60])


@pytest.mark.peer("tiktoken")
def test_tiktoken_vocabulary_as_llama_bpe(cl100k, cl100k_ranks):
    # cl100k_base becomes llama.cpp's "llama-bpe" split: Llama 3's pattern over the cl100k ranks
    meta = cl100k.gguf_metadata()
    assert (meta["tokenizer.ggml.model"], meta["tokenizer.ggml.pre"]) == ("gpt2", "llama-bpe")
    back = Tokenizer.from_gguf_metadata(meta)
    assert back.pattern == LLAMA3_PATTERN and back.special_tokens == cl100k.special_tokens
    enc = tiktoken_encoding("cl100k_base", cl100k_ranks)
    enc = type(enc)(
        "llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=cl100k_ranks, special_tokens=cl100k.special_tokens
    )
    for text in DOCS.values():
        assert back.encode(text) == enc.encode(text)


def test_bad_metadata():
    with pytest.raises(fastformer.UnsupportedError, match="'bert'"):
        Tokenizer.from_gguf_metadata({"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]})
    with pytest.raises(fastformer.FormatError, match="tokens"):
        Tokenizer.from_gguf_metadata({"tokenizer.ggml.model": "gpt2"})
    with pytest.raises(fastformer.FormatError, match="scores"):
        Tokenizer.from_gguf_metadata(
            {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["a", "b"], "tokenizer.ggml.scores": [0.0]}
        )
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "no-such-pre", "tokenizer.ggml.tokens": ["a"]}
    with pytest.raises(fastformer.UnsupportedError, match="no-such-pre"):
        Tokenizer.from_gguf_metadata(meta)


# ---- llama.cpp itself (opt-in: llama-cpp-python is not a test extra) ----


def _vocab_only_gguf(meta, path):
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(meta["tokenizer.ggml.model"])
    if "tokenizer.ggml.pre" in meta:
        w.add_tokenizer_pre(meta["tokenizer.ggml.pre"])
    w.add_token_list(meta["tokenizer.ggml.tokens"])
    w.add_token_types(meta["tokenizer.ggml.token_type"])
    if "tokenizer.ggml.merges" in meta:
        w.add_token_merges(meta["tokenizer.ggml.merges"])
    if "tokenizer.ggml.scores" in meta:
        w.add_token_scores(meta["tokenizer.ggml.scores"])
        w.add_add_space_prefix(meta["tokenizer.ggml.add_space_prefix"])
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id)):
        if f"tokenizer.ggml.{key}_token_id" in meta:
            add(meta[f"tokenizer.ggml.{key}_token_id"])
    for add in (
        w.add_block_count,
        w.add_context_length,
        w.add_embedding_length,
        w.add_feed_forward_length,
        w.add_head_count,
    ):
        add(64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.peer("tokenizers", "gguf", "llama_cpp")
def test_llama_cpp_tokenizes_alike(pair, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    ours, _ = pair
    meta = ours.gguf_metadata()
    _vocab_only_gguf(meta, tmp_path / "vocab.gguf")
    llm = llama_cpp.Llama(model_path=str(tmp_path / "vocab.gguf"), vocab_only=True, verbose=False)
    back = Tokenizer.from_gguf_metadata(meta)
    for text in _texts():
        assert back.encode(text) == llm.tokenize(text.encode(), add_bos=False, special=False), repr(text[:60])
