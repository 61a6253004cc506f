"""train_bpe and Tokenizer.save: a trained (or tiktoken-loaded) tokenizer written as tokenizer.json encodes
identically in Hugging Face `tokenizers`."""

import pytest
from corpus import DOCS
from helpers import optional

from fastformer import Tokenizer, train_bpe
from fastformer.tokenizer import CL100K_PATTERN_HF

tokenizers = optional("tokenizers")
TEXTS = list(DOCS.values())


@pytest.fixture(scope="module")
def trained():
    return train_bpe(TEXTS, vocab_size=1500, special_tokens=["<|endoftext|>", "<|pad|>"])


def test_train_shape(trained):
    assert trained.n_vocab == 1500
    assert trained.special_tokens == {"<|endoftext|>": 1498, "<|pad|>": 1499}
    assert [trained.token_bytes(i) for i in range(256)] == [bytes([b]) for b in range(256)]
    assert trained.eos_id == 1498
    for text in TEXTS:
        assert trained.decode(trained.encode(text)) == text
    # merges learned from this corpus compress it
    assert len(trained.encode(DOCS["english"])) < 0.7 * len(DOCS["english"].encode())


def test_train_is_deterministic(trained):
    again = train_bpe(TEXTS, vocab_size=1500, special_tokens=["<|endoftext|>", "<|pad|>"])
    assert [again.token_bytes(i) for i in range(again.n_vocab)] == [trained.token_bytes(i) for i in range(1500)]


def test_train_never_merges_across_special_strings():
    tok = train_bpe(["ab<s>ab<s>ab<s>" * 50], vocab_size=270, special_tokens=["<s>"])
    assert all(b"<s>" not in tok.token_bytes(i) for i in range(tok.n_vocab - 1))
    assert tok.encode("ab<s>", allowed_special="all")[-1] == tok.n_vocab - 1


def test_train_from_files_and_patterns(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(DOCS["german"] * 3, encoding="utf-8")
    a = train_bpe([path], vocab_size=400)
    b = train_bpe([DOCS["german"] * 3], vocab_size=400)
    assert [a.token_bytes(i) for i in range(400)] == [b.token_bytes(i) for i in range(400)]
    for pattern in ("gpt2", "o200k_base", r"\S+|\s+"):
        with pytest.warns(UserWarning) if pattern == r"\S+|\s+" else _nothing():
            tok = train_bpe([DOCS["english"]], vocab_size=300, pattern=pattern)
        assert tok.decode(tok.encode(DOCS["english"])) == DOCS["english"]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_train_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(["abc"], vocab_size=100)
    with pytest.raises(TypeError, match="str texts"):
        train_bpe([b"abc"], vocab_size=300)


@pytest.mark.peer("tokenizers")
def test_trained_saves_for_hf(trained, tmp_path):
    trained.save(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in TEXTS + [line for t in TEXTS for line in t.splitlines()]:
        assert trained.encode(text) == hf.encode(text, add_special_tokens=False).ids
    text = "a<|endoftext|>b<|pad|>"
    assert trained.encode(text, allowed_special="all") == hf.encode(text, add_special_tokens=False).ids


@pytest.mark.peer("tokenizers", "tiktoken")
def test_tiktoken_saves_for_hf(cl100k, tiktoken_cl100k, tmp_path):
    cl100k.save(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    again = Tokenizer.from_file(tmp_path / "tokenizer.json")
    assert again.pattern == CL100K_PATTERN_HF
    for text in TEXTS + [line for t in TEXTS for line in t.splitlines()] + ["a\n  ", "1234567 89"]:
        want = tiktoken_cl100k.encode(text)
        assert hf.encode(text, add_special_tokens=False).ids == want
        assert again.encode(text) == want
