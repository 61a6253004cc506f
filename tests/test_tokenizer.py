"""Tokenizer.from_tiktoken against tiktoken on cl100k_base: published cases, special tokens, decoding,
batches, streaming, pathological inputs and property tests on arbitrary Unicode.

The rank file is ../shared/data/cl100k_base.tiktoken next to the repository; tiktoken's `Encoding` is built
from it with tiktoken's own cl100k_base constructor (only the download is replaced).
"""

import base64
import random
import warnings

import pytest
from corpus import CORPUS, DOCS
from helpers import cl100k_path, optional, tiktoken_encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastformer
from fastformer.tokenizer import CL100K_PATTERN, StreamDecoder, Tokenizer

tiktoken = optional("tiktoken")


@pytest.mark.peer("tiktoken")
def test_pattern_is_tiktokens(tiktoken_cl100k):
    assert tiktoken_cl100k._pat_str == CL100K_PATTERN


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize(
    "text, ids",
    [
        ("hello world", [15339, 1917]),
        ("rer", [38149]),
        ("'rer", [2351, 81]),
        ("today\n ", [31213, 198, 220]),
        ("today\n \n", [31213, 27907]),
        ("today\n  \n", [31213, 14211]),
        (" \x850", [220, 126, 227, 15]),
        ("", []),
        ("👍", [9468, 239, 235]),
        ("\ud83d\udc4d", [9468, 239, 235]),
    ],
)
def test_published_cases(cl100k, tiktoken_cl100k, text, ids):
    # tiktoken's own test cases
    assert cl100k.encode(text) == ids == tiktoken_cl100k.encode(text)


@pytest.mark.peer("tiktoken")
def test_metadata(cl100k, tiktoken_cl100k):
    assert cl100k.n_vocab == tiktoken_cl100k.n_vocab == 100277
    assert cl100k.special_tokens == tiktoken_cl100k._special_tokens
    assert cl100k.eos_id == 100257 and cl100k.bos_id is None
    assert cl100k.name == "cl100k_base"


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize("text", ["\ud83d", "a\udc00b", "\udfff\ud800", "x\ud83d\udc4dy\ud83d"])
def test_lone_surrogates_are_replaced_like_tiktoken(cl100k, tiktoken_cl100k, text):
    assert cl100k.encode(text) == tiktoken_cl100k.encode(text)
    assert cl100k.encode_batch([text]) == [tiktoken_cl100k.encode(text)]


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize("c", ["^", "0", "a", "'s", " ", "\n", "中", "é", "\u3000", "🎉", "\r\n", "a1"])
def test_catastrophically_repetitive(cl100k, tiktoken_cl100k, c):
    # tiktoken's test, compared id for id; pieces far longer than the scanning merge's limit use the heap
    for text in (c * 3000, " " + c * 3000, c * 3000 + "\n", "x" + c * 1500 + " y"):
        ids = cl100k.encode(text)
        assert ids == tiktoken_cl100k.encode(text)
        assert cl100k.decode(ids) == text


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize("c", ["a", " ", "\n", "0", "!", "中", "\t\n"])
def test_one_megabyte_of_one_character(cl100k, tiktoken_cl100k, c):
    text = c * (1_000_000 // len(c.encode()))
    ids = cl100k.encode(text)
    assert cl100k.decode(ids) == text
    # merging a uniform run proceeds from the left, so its start matches a shorter run's
    want = tiktoken_cl100k.encode(c * 6000)
    assert ids[: len(want) // 2] == want[: len(want) // 2]


@pytest.mark.peer("tiktoken")
def test_hundred_thousand_newlines(cl100k, tiktoken_cl100k):
    text = "\n" * 100_000
    ids = cl100k.encode(text)
    assert cl100k.decode(ids) == text
    assert ids[:10] == tiktoken_cl100k.encode("\n" * 20_000)[:10]
    assert cl100k.encode("a" + "\n" * 20_000 + "b") == tiktoken_cl100k.encode("a" + "\n" * 20_000 + "b")


@pytest.mark.peer("tiktoken")
def test_random_bytes_as_latin1(cl100k, tiktoken_cl100k):
    rng = random.Random(0)
    for n in (1, 7, 97, 4099, 100_000):
        text = bytes(rng.randrange(256) for _ in range(n)).decode("latin-1")
        assert cl100k.encode(text, disallowed_special=()) == tiktoken_cl100k.encode(text, disallowed_special=())


# ---- special tokens ----


@pytest.mark.peer("tiktoken")
def test_special_tokens_like_tiktoken(cl100k, tiktoken_cl100k):
    text = "<|endoftext|> hello <|fim_prefix|> there<|endofprompt|>"
    eot, fim = 100257, 100258
    cases = [
        dict(disallowed_special=()),
        dict(allowed_special="all"),
        dict(allowed_special={"<|endoftext|>"}, disallowed_special=()),
        dict(allowed_special={"<|endoftext|>", "<|fim_prefix|>"}, disallowed_special=()),
        dict(allowed_special="all", disallowed_special=()),
        dict(allowed_special={"<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>"}),
        dict(allowed_special={"not a special token"}, disallowed_special=()),
    ]
    for kw in cases:
        assert cl100k.encode(text, **kw) == tiktoken_cl100k.encode(text, **kw), kw
    assert eot not in cl100k.encode(text, disallowed_special=())
    assert cl100k.encode(text, allowed_special="all")[0] == eot
    assert fim in cl100k.encode(text, allowed_special={"<|fim_prefix|>"}, disallowed_special=())
    assert cl100k.encode_ordinary(text) == tiktoken_cl100k.encode_ordinary(text)


@pytest.mark.peer("tiktoken")
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(allowed_special=frozenset()),
        dict(allowed_special={"<|endoftext|>"}),
        dict(allowed_special={"<|fim_prefix|>"}),
        dict(allowed_special="all", disallowed_special={"<|endoftext|>"}),
        dict(disallowed_special={"hello"}),
        dict(allowed_special="all", disallowed_special={"ell"}),
    ],
)
def test_disallowed_special_raises_like_tiktoken(cl100k, tiktoken_cl100k, kw):
    text = "<|endoftext|> hello <|fim_prefix|>"
    with pytest.raises(ValueError) as want:
        tiktoken_cl100k.encode(text, **kw)
    with pytest.raises(ValueError) as got:
        cl100k.encode(text, **kw)
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError):
        cl100k.encode_batch(["fine", text], **kw)


@pytest.mark.peer("tiktoken")
def test_adjacent_and_partial_specials(cl100k, tiktoken_cl100k):
    for text in [
        "<|endoftext|><|endoftext|>",
        "<|endoftext|",
        "<|<|endoftext|>|>",
        "a<|endoftext|>b",
        "<|endoftext|>\n\n<|endofprompt|>  ",
        "<|fim_middle|><|fim_suffix|>x",
    ]:
        for kw in (dict(allowed_special="all"), dict(disallowed_special=())):
            assert cl100k.encode(text, **kw) == tiktoken_cl100k.encode(text, **kw), (text, kw)


def test_custom_special_tokens(tmp_path):
    path = tmp_path / "tiny.tiktoken"
    path.write_bytes(b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256)))
    tok = Tokenizer.from_tiktoken(path, pattern="cl100k_base", special_tokens={"<eos>": 300, "<pad>": 256})
    assert tok.n_vocab == 301 and tok.eos_id is None
    assert tok.encode("a<eos>", allowed_special="all") == [97, 300]
    assert tok.decode([256, 300]) == "<pad><eos>"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([299])


def test_from_file_knows_tiktoken_files(cl100k, tmp_path):
    tok = Tokenizer.from_file(cl100k_path())
    assert tok.name == "cl100k_base" and tok.special_tokens == cl100k.special_tokens
    assert tok.encode("hello world") == cl100k.encode("hello world")
    small = tmp_path / "small.tiktoken"
    small.write_bytes(b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256)))
    with pytest.raises(fastformer.FormatError, match="from_tiktoken"):
        Tokenizer.from_file(small)


def test_bad_rank_files(tmp_path):
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"aGVsbG8= 0\nnot-base64! 1\n")
    with pytest.raises(fastformer.FormatError, match="bad.tiktoken:2"):
        Tokenizer.from_tiktoken(bad, pattern="cl100k_base")
    partial = tmp_path / "partial.tiktoken"
    partial.write_bytes(b"YQ== 0\nYg== 1\n")
    with pytest.raises(fastformer.FormatError, match="256 single bytes"):
        Tokenizer.from_tiktoken(partial, pattern="cl100k_base")


# ---- decoding ----


@pytest.mark.peer("tiktoken")
def test_token_bytes_of_every_id(cl100k, tiktoken_cl100k):
    for i in range(cl100k.n_vocab):
        try:
            want = tiktoken_cl100k.decode_single_token_bytes(i)
        except KeyError:
            with pytest.raises(ValueError):
                cl100k.token_bytes(i)
            with pytest.raises(ValueError):
                cl100k.decode_bytes([i])
            continue
        assert cl100k.token_bytes(i) == want
    every = list(range(100256))
    assert cl100k.decode_bytes(every) == tiktoken_cl100k.decode_bytes(every)


@pytest.mark.parametrize("bad", [-1, 100256, 100261, 100277, 2**31, 2**40])
def test_decode_rejects_invalid_ids(cl100k, bad):
    with pytest.raises(ValueError, match=str(bad)):
        cl100k.decode([1, bad])
    with pytest.raises(ValueError):
        cl100k.token_bytes(bad)


@pytest.mark.peer("tiktoken")
def test_decode_errors_argument(cl100k, tiktoken_cl100k):
    ids = cl100k.encode("日本")
    partial = ids[:1] if len(cl100k.token_bytes(ids[0])) < 3 else [ids[0], 9468]
    assert cl100k.decode(partial) == tiktoken_cl100k.decode(partial)
    assert "\ufffd" in cl100k.decode([9468])
    with pytest.raises(UnicodeDecodeError):
        cl100k.decode([9468], errors="strict")
    assert cl100k.decode([9468], errors="ignore") == ""


def test_stream_decoder(cl100k):
    for text in CORPUS.values():
        ids = cl100k.encode(text)
        dec = StreamDecoder(cl100k)
        chunks = [dec.push(i) for i in ids]
        assert "".join(chunks) + dec.flush() == text
        assert not any("\ufffd" in c for c in chunks)
    dec = StreamDecoder(cl100k)
    assert dec.push(9468) == "" and dec.flush() == "\ufffd"


# ---- batches ----


@pytest.mark.peer("tiktoken")
def test_encode_batch(cl100k, tiktoken_cl100k, threads):
    texts = ["", "a", "hello world", "日本語 " * 50, "\n" * 300, "x" * 5000] * 7
    assert cl100k.encode_batch(texts) == tiktoken_cl100k.encode_batch(texts)
    assert cl100k.encode_ordinary_batch(texts, num_threads=threads) == tiktoken_cl100k.encode_ordinary_batch(texts)
    assert cl100k.encode_batch([]) == []
    with pytest.raises(ValueError, match="num_threads"):
        cl100k.encode_batch(texts, num_threads=0)
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        cl100k.encode_batch(["a", b"b"])


# ---- property tests ----


TRICKY = "aAsSſ'tlLvVeErRdDmM 1234567890\t\n\r\x0b\x0c\x85\xa0\u3000\u2028!?./-_中日あア한éÉǅʰ\u0301\u093f½²٣🎉👍\u200d"


@pytest.mark.peer("tiktoken")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_hypothesis_any_unicode(cl100k, tiktoken_cl100k, text):
    ids = cl100k.encode(text, disallowed_special=())
    assert ids == tiktoken_cl100k.encode(text, disallowed_special=())
    if not any(0xD800 <= ord(c) < 0xE000 for c in text):
        assert cl100k.decode(ids) == text


@pytest.mark.peer("tiktoken")
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=TRICKY, max_size=60))
def test_hypothesis_tricky_alphabet(cl100k, tiktoken_cl100k, text):
    ids = cl100k.encode(text)
    assert ids == tiktoken_cl100k.encode(text)
    assert cl100k.decode(ids) == text


MULTIBYTE = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),  # kana
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),  # hangul
    st.characters(min_codepoint=0x0400, max_codepoint=0x04FF),  # cyrillic
    st.characters(min_codepoint=0x0E00, max_codepoint=0x0E7F),  # thai
    st.characters(min_codepoint=0x0900, max_codepoint=0x097F),  # devanagari
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
    st.sampled_from(" .,'!\n0aé"),
)


@pytest.mark.peer("tiktoken")
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=MULTIBYTE, max_size=120))
def test_hypothesis_multibyte_runs(cl100k, tiktoken_cl100k, text):
    # long runs of multi-byte characters, where characters start merged when that cannot change the result
    assert cl100k.encode(text) == tiktoken_cl100k.encode(text)


@pytest.mark.peer("tiktoken")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_hypothesis_bytes_as_latin1(cl100k, tiktoken_cl100k, data):
    text = data.decode("latin-1")
    assert cl100k.encode_ordinary(text) == tiktoken_cl100k.encode_ordinary(text)


# ---- a split pattern without a scanner ----


@pytest.mark.peer("tiktoken")
def test_unknown_pattern_falls_back_to_regex(cl100k_ranks):
    pattern = r"""\w+|[^\w\s]+|\s+"""
    path = cl100k_path()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tok = Tokenizer.from_tiktoken(path, pattern=pattern, special_tokens={"<|endoftext|>": 100257})
    assert any("regex" in str(x.message) for x in w)
    enc = tiktoken.Encoding(
        "custom", pat_str=pattern, mergeable_ranks=cl100k_ranks, special_tokens={"<|endoftext|>": 100257}
    )
    for text in list(CORPUS.values()) + ["a <|endoftext|> b"]:
        assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
        assert tok.encode(text, disallowed_special=()) == enc.encode(text, disallowed_special=())
    with pytest.raises(ValueError, match="disallowed special token"):
        tok.encode("a <|endoftext|>")


# ---- the other tiktoken split patterns, with the cl100k ranks ----

OTHER_ENCODINGS = ["gpt2", "r50k_base", "p50k_base", "p50k_edit", "o200k_base"]


@pytest.fixture(scope="module", params=OTHER_ENCODINGS)
def other_pair(request, cl100k_ranks):
    # the encoding's split pattern over the cl100k vocabulary; special ids moved past it where they collide
    from fastformer.tokenizer import ENCODINGS

    special = ENCODINGS[request.param][1]
    if min(special.values()) < len(cl100k_ranks):
        special = {s: 100257 + k for k, s in enumerate(special)}
    ours = Tokenizer.from_tiktoken(cl100k_path(), pattern=request.param, special_tokens=special)
    return ours, tiktoken_encoding(request.param, cl100k_ranks, special_tokens=special)


@pytest.mark.peer("tiktoken")
def test_other_encodings_on_corpus(other_pair):
    ours, enc = other_pair
    assert ours.pattern == enc._pat_str
    for text in DOCS.values():
        assert ours.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
        lines = text.splitlines(keepends=True)
        assert ours.encode_ordinary_batch(lines) == enc.encode_ordinary_batch(lines)


@pytest.mark.peer("tiktoken")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.one_of(st.sampled_from(TRICKY), st.characters()), max_size=80))
def test_other_encodings_hypothesis(other_pair, text):
    ours, enc = other_pair
    assert ours.encode_ordinary(text) == enc.encode_ordinary(text)
