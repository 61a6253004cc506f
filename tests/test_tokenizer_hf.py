"""Tokenizer.from_file on Hugging Face tokenizer.json files against `tokenizers` itself.

The files are made here: byte-level BPEs trained with `tokenizers` in the GPT-2 (ByteLevel regex), Llama 3
(Split + ByteLevel, ignore_merges), Qwen2 (NFC + Split) and GPT-4o (o200k Split) layouts, with special and
non-special added tokens; and a SentencePiece BPE with byte fallback trained with `sentencepiece`, converted
to a Llama-2-style tokenizer.json (Prepend/Replace normalizers, merges ordered by piece score, ByteFallback
decoder) and to the newer Metaspace layout.
"""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_tokenizer_corpus import DOCS

from fastformer.tokenizer import GPT2_PATTERN_HF, LLAMA3_PATTERN, O200K_PATTERN, QWEN2_PATTERN, Tokenizer

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

TEXTS = [t for t in DOCS.values()]
LINES = [line for t in TEXTS for line in t.splitlines(keepends=True)]


def _train_byte_level(layout, vocab_size=3000):
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=layout == "llama3"))
    split = {"llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN, "o200k": O200K_PATTERN}.get(layout)
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if layout == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS, trainer)
    tok.add_tokens(
        [
            tokenizers.AddedToken("fastformer", normalized=False),
            tokenizers.AddedToken(" magic", lstrip=False, rstrip=True, normalized=True),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))],
    )
    return tok


def _spm_merges(vocab, scores):
    # transformers' SentencePieceExtractor: every split of a piece into two pieces, by the piece's score
    merges = []
    for piece, _score in sorted(scores.items(), key=lambda kv: -kv[1]):
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda p: (vocab[p[0]], vocab[p[1]]))
    return [list(m) for m in merges]


def _spm_model(tmp_path_factory, name, **options):
    """A SentencePiece BPE model with byte fallback trained on LINES (whitespace kept), loaded."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp(name)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(LINES),
        model_prefix=str(d / "m"),
        vocab_size=1500,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=0.9995,
        hard_vocab_limit=False,
        minloglevel=2,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        **options,
    )
    return spm.SentencePieceProcessor(model_file=str(d / "m.model"))


def _train_spm(tmp_path_factory):
    sp = _spm_model(tmp_path_factory, "spm", split_digits=True)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {
        sp.id_to_piece(i): sp.get_score(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))
    }
    added = [
        {
            "id": i,
            "content": sp.id_to_piece(i),
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i in range(3)
    ]
    return vocab, _spm_merges(vocab, scores), added


def _llama2_json(vocab, merges, added, layout):
    model = {
        "type": "BPE",
        "dropout": None,
        "unk_token": "<unk>",
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": True,
        "byte_fallback": True,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": merges,
    }
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "model": model,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
    }
    if layout == "llama2":
        spec["normalizer"] = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        }
        spec["pre_tokenizer"] = None
        spec["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        }
    else:
        spec["normalizer"] = None
        spec["pre_tokenizer"] = {
            "type": "Metaspace",
            "replacement": "▁",
            "prepend_scheme": "first",
            "split": layout == "metaspace_split",
        }
        spec["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        }
    return spec


LAYOUTS = ["gpt2", "llama3", "qwen2", "o200k", "llama2", "metaspace", "metaspace_split"]


@pytest.fixture(scope="module", params=LAYOUTS)
def pair(request, tmp_path_factory):
    """(ours, theirs) for one tokenizer.json layout, both loaded from the same file."""
    path = tmp_path_factory.mktemp(request.param) / "tokenizer.json"
    if request.param in ("llama2", "metaspace", "metaspace_split"):
        spm = getattr(pair, "_spm", None) or _train_spm(tmp_path_factory)
        pair._spm = spm
        path.write_text(json.dumps(_llama2_json(*spm, request.param), ensure_ascii=False), encoding="utf-8")
    else:
        _train_byte_level(request.param).save(str(path))
    return Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))


def _theirs(hf, text):
    return hf.encode(text, add_special_tokens=False).ids


def test_documents(pair):
    ours, hf = pair
    for text in TEXTS:
        ids = ours.encode(text, allowed_special="all")
        assert ids == _theirs(hf, text)
        assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False)


def test_lines(pair):
    ours, hf = pair
    for line in LINES:
        assert ours.encode(line, allowed_special="all") == _theirs(hf, line), repr(line)
    assert ours.encode_batch(LINES, allowed_special="all") == [_theirs(hf, x) for x in LINES]


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
        assert ours.encode(text, allowed_special="all") == _theirs(hf, text), repr(text)
        if any(s in text for s in specials):
            with pytest.raises(ValueError, match="disallowed special token"):
                ours.encode(text)
    # special strings as plain text: tokenizers' encode_special_tokens
    hf.encode_special_tokens = True
    try:
        for text in texts:
            assert ours.encode(text, disallowed_special=()) == _theirs(hf, text), repr(text)
    finally:
        hf.encode_special_tokens = False


def test_metadata(pair):
    ours, hf = pair
    assert ours.n_vocab == hf.get_vocab_size(with_added_tokens=True)
    assert ours.bos_id == (
        hf.token_to_id("<|begin_of_text|>") if "<|begin_of_text|>" in ours.special_tokens else hf.token_to_id("<s>")
    )
    with pytest.raises(ValueError):
        ours.decode([ours.n_vocab])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_hypothesis(pair, text):
    ours, hf = pair
    assert ours.encode(text, allowed_special="all") == _theirs(hf, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=" \n\t▁aAbB1.'中é<|>_", max_size=40))
def test_hypothesis_tricky(pair, text):
    ours, hf = pair
    ids = ours.encode(text, allowed_special="all")
    assert ids == _theirs(hf, text)
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False)


def test_bytelevel_regex_is_the_gpt2_scanner():
    # tokenizers' ByteLevel(use_regex=True) splits with GPT-2's pattern: the gpt2 scanner must agree
    from fastformer import _core
    from fastformer._tokenizer_hf import BYTE_TO_CHAR

    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    split = pre_tokenizers.Split(Regex(GPT2_PATTERN_HF), behavior="isolated")
    for text in LINES + TEXTS:
        want = [p for p, _ in bl.pre_tokenize_str(text)]
        assert ["".join(BYTE_TO_CHAR[b] for b in p.encode()) for p in _core.pretok_split(text, "gpt2")] == want
        assert [p for p, _ in split.pre_tokenize_str(text)] == _core.pretok_split(text, "gpt2")


def test_stream_decoder_matches_decode(pair):
    from fastformer import StreamDecoder

    ours, hf = pair
    for text in TEXTS[:6] + ["  two leading spaces", " x"]:
        ids = ours.encode(text, allowed_special="all")
        dec = StreamDecoder(ours)
        assert "".join(dec.push(i) for i in ids) + dec.flush() == hf.decode(ids, skip_special_tokens=False)


def test_save_writes_back_what_was_read(pair, tmp_path):
    ours, hf = pair
    ours.save(tmp_path / "tokenizer.json")
    again = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    mine = Tokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        want = _theirs(hf, text)
        assert _theirs(again, text) == want
        assert mine.encode(text, allowed_special="all") == want


# ---- other pre-tokenizer layouts (the Python path) ----


def _train_with(pre, normalizer=None):
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


@pytest.mark.parametrize("layout", ["digits", "prefix_space", "deepseek_like", "lowercase_nfkc"])
def test_python_path_layouts(layout, tmp_path):
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
        assert ours.encode(text) == _theirs(hf, text), repr(text[:80])
        assert ours.decode(_theirs(hf, text)) == hf.decode(_theirs(hf, text))


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


@pytest.mark.parametrize(
    "model", [{}, {"merges": [["a", "b"]], "unk_token": "b"}, {"unk_token": "b", "fuse_unk": True}]
)
def test_minimal_files(tmp_path, model):
    path = _write(tmp_path, _minimal(**model))
    tok, hf = Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))
    assert tok.decode([2, 0]) == "aba"
    # without unk_token unknown characters are dropped; with it they become unk, runs fused if fuse_unk
    for text in ["abab", "abc", "abcc", "cabccab", "ccc"]:
        assert tok.encode(text) == _theirs(hf, text), text


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


@pytest.fixture(scope="module")
def spm_pair(tmp_path_factory):
    sp = _spm_model(tmp_path_factory, "spm_identity", normalization_rule_name="identity")
    n = sp.get_piece_size()
    types = [
        2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 5 if sp.is_unused(i) else 1
        for i in range(n)
    ]
    pieces = [sp.id_to_piece(i) for i in range(n)]
    return Tokenizer._from_scores(pieces, [sp.get_score(i) for i in range(n)], types), sp


def test_scores_match_sentencepiece(spm_pair):
    ours, sp = spm_pair
    for text in TEXTS + LINES:
        ids = ours.encode(text)
        assert ids == sp.encode(text), repr(text[:80])
        assert ours.decode(ids) == sp.decode(ids)
    assert ours.bos_id == sp.bos_id() and ours.eos_id == sp.eos_id()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
@example(text="<s> and </s>")
def test_scores_hypothesis(spm_pair, text):
    ours, sp = spm_pair
    # sentencepiece reads control pieces such as <s> in text as plain text
    assert ours.encode(text, disallowed_special=()) == sp.encode(text)
