"""Tokenizer.from_file on Hugging Face tokenizer.json files against `tokenizers` itself.

The files are made in tests/hf_tokenizers.py: byte-level BPEs trained with `tokenizers` in the GPT-2 (ByteLevel
regex), Llama 3 (Split + ByteLevel, ignore_merges), Qwen2 (NFC + Split) and GPT-4o (o200k Split) layouts, with
special and non-special added tokens; and a SentencePiece BPE with byte fallback trained with `sentencepiece`,
converted to a Llama-2-style tokenizer.json (Prepend/Replace normalizers, merges ordered by piece score,
ByteFallback decoder) and to the newer Metaspace layout.
"""

import json
import unicodedata

import pytest
from helpers import optional
from hf_tokenizers import LINES, TEXTS, theirs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastformer.tokenizer import GPT2_PATTERN_HF, Tokenizer

tokenizers = optional("tokenizers")


@pytest.mark.peer("tokenizers")
def test_documents(pair):
    ours, hf = pair
    for text in TEXTS:
        ids = ours.encode(text, allowed_special="all")
        assert ids == theirs(hf, text)
        assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False)


@pytest.mark.peer("tokenizers")
def test_lines(pair):
    ours, hf = pair
    for line in LINES:
        assert ours.encode(line, allowed_special="all") == theirs(hf, line), repr(line)
    assert ours.encode_batch(LINES, allowed_special="all") == [theirs(hf, x) for x in LINES]


@pytest.mark.peer("tokenizers")
def test_added_tokens(pair):
    ours, hf = pair
    specials = list(ours.special_tokens)
    assert specials and set(specials) <= set(hf.get_vocab())
    texts = [
        f"{specials[0]}hello {specials[-1]} world{specials[0]}",
        f"  {specials[0]}  \n{specials[-1]}",
        "fastformer is a magic  word; fastformers magic",
        f"x{specials[0]}fastformer magic{specials[-1]}y",
        specials[0] * 3,
    ]
    for text in texts:
        assert ours.encode(text, allowed_special="all") == theirs(hf, text), repr(text)
        if any(s in text for s in specials):
            with pytest.raises(ValueError, match="disallowed special token"):
                ours.encode(text)
    # special strings as plain text: tokenizers' encode_special_tokens
    hf.encode_special_tokens = True
    try:
        for text in texts:
            assert ours.encode(text, disallowed_special=()) == theirs(hf, text), repr(text)
    finally:
        hf.encode_special_tokens = False


@pytest.mark.peer("tokenizers")
def test_metadata(pair):
    ours, hf = pair
    assert ours.n_vocab == hf.get_vocab_size(with_added_tokens=True)
    assert ours.bos_id == (
        hf.token_to_id("<|begin_of_text|>") if "<|begin_of_text|>" in ours.special_tokens else hf.token_to_id("<s>")
    )
    with pytest.raises(ValueError):
        ours.decode([ours.n_vocab])


@pytest.mark.peer("tokenizers")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_hypothesis(pair, text):
    ours, hf = pair
    assert ours.encode(text, allowed_special="all") == theirs(hf, text)


@pytest.mark.peer("tokenizers")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=" \n\t▁aAbB1.'中é<|>_", max_size=40))
def test_hypothesis_tricky(pair, text):
    ours, hf = pair
    ids = ours.encode(text, allowed_special="all")
    assert ids == theirs(hf, text)
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False)


@pytest.mark.peer("tokenizers")
def test_bytelevel_regex_is_the_gpt2_scanner():
    # tokenizers' ByteLevel(use_regex=True) splits with GPT-2's pattern: the gpt2 scanner must agree
    from tokenizers import Regex, pre_tokenizers

    from fastformer import _core
    from fastformer._tokenizer_hf import BYTE_TO_CHAR

    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    split = pre_tokenizers.Split(Regex(GPT2_PATTERN_HF), behavior="isolated")
    for text in LINES + TEXTS:
        want = [p for p, _ in bl.pre_tokenize_str(text)]
        assert ["".join(BYTE_TO_CHAR[b] for b in p.encode()) for p in _core.pretok_split(text, "gpt2")] == want
        assert [p for p, _ in split.pre_tokenize_str(text)] == _core.pretok_split(text, "gpt2")


@given(st.text(st.characters().filter(lambda c: unicodedata.category(c) != "Cn"), max_size=40))
@example("In 2024, ½ of ²3 x١٢ Ⅻ")
def test_number_spans_are_the_regex_packages(text):
    # the \p{N} / \p{N}+ splits (Digits, smollm's and starcoder's GGUF splits) read unicodedata, not `regex`
    import regex

    from fastformer._tokenizer_hf import _number_spans

    assert _number_spans(text, True) == [m.span() for m in regex.finditer(r"\p{N}", text)]
    assert _number_spans(text, False) == [m.span() for m in regex.finditer(r"\p{N}+", text)]


@pytest.mark.peer("tokenizers")
def test_stream_decoder_matches_decode(pair):
    from fastformer import StreamDecoder

    ours, hf = pair
    for text in TEXTS[:6] + ["  two leading spaces", " x"]:
        ids = ours.encode(text, allowed_special="all")
        dec = StreamDecoder(ours)
        assert "".join(dec.push(i) for i in ids) + dec.flush() == hf.decode(ids, skip_special_tokens=False)


@pytest.mark.peer("tokenizers")
def test_save_writes_back_what_was_read(pair, tmp_path):
    ours, hf = pair
    ours.save(tmp_path / "tokenizer.json")
    again = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    mine = Tokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        want = theirs(hf, text)
        assert theirs(again, text) == want
        assert mine.encode(text, allowed_special="all") == want


# ---- other pre-tokenizer layouts (the Python path) ----


def _train_with(pre, normalizer=None):
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        TEXTS,
        trainers.BpeTrainer(vocab_size=1200, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    return tok


@pytest.mark.peer("tokenizers")
@pytest.mark.parametrize("layout", ["digits", "prefix_space", "deepseek_like", "lowercase_nfkc"])
def test_python_path_layouts(layout, tmp_path):
    from tokenizers import Regex, normalizers, pre_tokenizers

    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pre, norm = {
        "digits": (
            pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Digits(individual_digits=True),
                    pre_tokenizers.ByteLevel(add_prefix_space=False),
                ]
            ),
            None,
        ),
        "prefix_space": (pre_tokenizers.ByteLevel(add_prefix_space=True), None),
        "deepseek_like": (
            pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Split(Regex(r"\p{N}{1,3}"), behavior="isolated"),
                    pre_tokenizers.Split(Regex(r"[\r\n]|\s?\p{L}+|\s?\p{P}+|\s+"), behavior="isolated"),
                    bl,
                ]
            ),
            None,
        ),
        "lowercase_nfkc": (
            pre_tokenizers.ByteLevel(add_prefix_space=False),
            normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
        ),
    }[layout]
    hf = _train_with(pre, norm)
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.warns(UserWarning, match="regex") if layout == "deepseek_like" else _no_warning():
        ours = Tokenizer.from_file(tmp_path / "tokenizer.json")
    for text in TEXTS + LINES[:200]:
        assert ours.encode(text) == theirs(hf, text), repr(text[:80])
        assert ours.decode(theirs(hf, text)) == hf.decode(theirs(hf, text))


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


# ---- bad files ----


def _write(tmp_path, spec):
    path = tmp_path / "tokenizer.json"
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def _minimal(**model):
    vocab = {"a": 0, "b": 1, "ab": 2}
    spec = {
        "model": {"type": "BPE", "vocab": vocab, "merges": ["a b"], **model},
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": None,
        "decoder": None,
    }
    return spec


@pytest.mark.peer("tokenizers")
@pytest.mark.parametrize(
    "model", [{}, {"merges": [["a", "b"]], "unk_token": "b"}, {"unk_token": "b", "fuse_unk": True}]
)
def test_minimal_files(tmp_path, model):
    path = _write(tmp_path, _minimal(**model))
    tok, hf = Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))
    assert tok.decode([2, 0]) == "aba"
    # without unk_token unknown characters are dropped; with it they become unk, runs fused if fuse_unk
    for text in ["abab", "abc", "abcc", "cabccab", "ccc"]:
        assert tok.encode(text) == theirs(hf, text), text


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("{not json", "FormatError", "not a readable tokenizer.json"),
        ({"model": {"type": "WordPiece", "vocab": {}}}, "UnsupportedError", "WordPiece"),
        (dict(_minimal(), model=dict(_minimal()["model"], merges=["a c"])), "FormatError", "merge 0"),
        (dict(_minimal(), model=dict(_minimal()["model"], merges=["b a"])), "FormatError", "merge 0"),
        (dict(_minimal(), model=dict(_minimal()["model"], merges=["a b c"])), "FormatError", "not a pair"),
        (
            dict(_minimal(), normalizer={"type": "Precompiled", "precompiled_charsmap": ""}),
            "UnsupportedError",
            "Precompiled",
        ),
        (dict(_minimal(), pre_tokenizer={"type": "Whitespace"}), "UnsupportedError", "Whitespace"),
        (dict(_minimal(), decoder={"type": "WordPiece"}), "UnsupportedError", "WordPiece"),
        (
            dict(_minimal(), model=dict(_minimal()["model"], continuing_subword_prefix="##")),
            "UnsupportedError",
            "continuing_subword_prefix",
        ),
        (dict(_minimal(), pre_tokenizer={"type": "ByteLevel"}), "UnsupportedError", "256 byte tokens"),
    ],
)
def test_bad_files(tmp_path, spec, error, match):
    import fastformer

    with pytest.raises(getattr(fastformer, error), match=match) as e:
        Tokenizer.from_file(_write(tmp_path, spec))
    assert isinstance(e.value, ValueError)


def test_from_pretrained_needs_tokenizer_json(tmp_path):
    import fastformer

    (tmp_path / "tokenizer.model").write_bytes(b"")
    with pytest.raises(fastformer.FormatError, match="no tokenizer.json.*tokenizer.model"):
        Tokenizer.from_pretrained(tmp_path)


def test_tokenizer_config_sets_bos_eos(tmp_path):
    spec = _minimal()
    spec["added_tokens"] = [
        {"id": 3, "content": "<go>", "special": True},
        {"id": 4, "content": "<stop>", "special": True},
    ]
    _write(tmp_path, spec)
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": {"content": "<go>"}, "eos_token": "<stop>"})
    )
    tok = Tokenizer.from_pretrained(tmp_path)
    assert (tok.bos_id, tok.eos_id) == (3, 4)
    assert tok.encode("<go>ab", allowed_special="all") == [3, 2]


# ---- score-ordered merges (the GGUF "llama" vocabulary) against sentencepiece itself ----


@pytest.mark.peer("sentencepiece")
def test_scores_match_sentencepiece(spm_pair):
    ours, sp = spm_pair
    for text in TEXTS + LINES:
        ids = ours.encode(text)
        assert ids == sp.encode(text), repr(text[:80])
        assert ours.decode(ids) == sp.decode(ids)
    assert ours.bos_id == sp.bos_id() and ours.eos_id == sp.eos_id()


@pytest.mark.peer("sentencepiece")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
@example(text="<s> and </s>")
def test_scores_hypothesis(spm_pair, text):
    ours, sp = spm_pair
    # sentencepiece reads control pieces such as <s> in text as plain text
    assert ours.encode(text, disallowed_special=()) == sp.encode(text)
