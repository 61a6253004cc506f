"""WordPiece token ids against Hugging Face `tokenizers` on the multilingual corpus, source code and random text:
tokenizer.json files trained by `tokenizers` (lower-cased with accents stripped, cased, cased with accents
stripped) and BERT's vocab.txt as transformers' BertTokenizerFast reads it.
"""

import pytest
from corpus import CORPUS, DOCS
from embed_fixtures import SENTENCES, train_wordpiece
from hypothesis import given, settings
from hypothesis import strategies as st

from fastformer.errors import FormatError, UnsupportedError
from fastformer.wordpiece import WordPieceTokenizer

pytestmark = pytest.mark.peer("tokenizers", "transformers")

VARIANTS = {"uncased": dict(lowercase=True), "cased": dict(lowercase=False, strip_accents=False),
            "cased-stripped": dict(lowercase=False, strip_accents=True)}  # fmt: skip
EXTRA = [
    "", " ", "[CLS] [MASK]x[SEP]", "a\x00b\x07c\u200bd\ufffde\u0085f", "İstanbul ΟΔΟΣ Σ ß ﬁ Ⅻ",
    "e\u0301 n\u0303 a\u030a\u0323", "東京タワー 中文 한국어 ไทย", "x" * 150, "👩‍💻 emoji 🎉!!", "tab\tnew\nline\r\n",
]  # fmt: skip


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, tmp_path_factory):
    """(ours, theirs) from one trained tokenizer.json."""
    from tokenizers import Tokenizer

    path = tmp_path_factory.mktemp(request.param)
    train_wordpiece(path, **VARIANTS[request.param])
    return WordPieceTokenizer.from_file(path / "tokenizer.json"), Tokenizer.from_file(str(path / "tokenizer.json"))


def test_corpus_lines_and_documents(pair):
    ours, theirs = pair
    texts = SENTENCES + list(CORPUS.values()) + EXTRA
    for t in texts:
        assert ours.encode(t) == theirs.encode(t).ids, t


def test_source_code_documents(pair):
    ours, theirs = pair
    docs = list(DOCS.values())
    for d in docs:
        assert ours.encode(d) == theirs.encode(d).ids


PIECES = list("aZé ,.!#$^`|~\t\n\x00\x1f\u00a0\u0301\u0323ΣσςİıßﬁЖж東中한ไ\u200b\u3000")
PIECES += ["\ud7ff", "\U00020000", "\u2028", "\ufffd", "\ue000"]
PIECES += ["##", "[SEP]", "the", "ing"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_random_text(pair, text):
    ours, theirs = pair
    assert ours.encode(text) == theirs.encode(text).ids


def test_truncation_as_tokenizers(pair):
    ours, theirs = pair
    theirs = theirs.__class__.from_str(theirs.to_str())
    theirs.enable_truncation(max_length=9)
    for t in SENTENCES[:20]:
        assert ours.encode(t, max_length=9) == theirs.encode(t).ids
    with pytest.raises(ValueError, match="max_length"):
        ours.encode("x", max_length=2)


def test_vocab_txt_as_bert_tokenizer(tmp_path):
    """vocab.txt alone (tokenizer_config.json's do_lower_case) reads as transformers' BertTokenizerFast does."""
    from transformers import BertTokenizerFast

    vocab = train_wordpiece(tmp_path).get_vocab()
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in sorted(vocab, key=vocab.get)), encoding="utf-8")
    (tmp_path / "tokenizer.json").unlink()
    ours = WordPieceTokenizer.find(tmp_path)
    theirs = BertTokenizerFast(str(tmp_path / "vocab.txt"), do_lower_case=True)
    for t in SENTENCES + EXTRA:
        assert ours.encode(t) == theirs(t)["input_ids"], t
    assert ours.decode(ours.encode("hello world", add_special_tokens=False)) == "hello world"


def test_unsupported_and_malformed(tmp_path):
    import json

    train_wordpiece(tmp_path)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    cases = [
        (dict(spec, model=dict(spec["model"], type="BPE")), UnsupportedError, "WordPiece"),
        (dict(spec, normalizer={"type": "NFKC"}), UnsupportedError, "normalizer"),
        (dict(spec, pre_tokenizer={"type": "Whitespace"}), UnsupportedError, "pre_tokenizer"),
        (dict(spec, model=dict(spec["model"], unk_token="<nope>")), FormatError, "unknown token"),
        (dict(spec, model=dict(spec["model"], vocab={"a": 0, "b": 10})), FormatError, "no token for id"),
        (dict(spec, model=dict(spec["model"], max_input_chars_per_word=0)), FormatError, "max_input_chars"),
    ]
    for bad, err, msg in cases:
        (tmp_path / "tokenizer.json").write_text(json.dumps(bad))
        with pytest.raises(err, match=msg):
            WordPieceTokenizer.from_file(tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(FormatError, match="JSON"):
        WordPieceTokenizer.from_file(tmp_path / "tokenizer.json")
