"""The tokenizer's single rules, each against a peer: utf8_split and StreamDecoder hold back exactly what Python's
incremental UTF-8 decoder holds back; encode_prompt puts BOS first exactly when transformers (tokenizer.json
TemplateProcessing, tokenizer_config.json add_bos_token) and llama.cpp (GGUF tokenizer.ggml.add_bos_token) do."""

import codecs
import dataclasses
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastformer import StreamDecoder, Tokenizer, train_bpe
from fastformer.tokenizer import utf8_split

TEXTS = ["hello world", "Привет, мир", "  leading spaces", "数字 12345 😀", "<s> already there", ""]


# ---- one UTF-8 completer ----


def _incremental(data, errors="replace"):
    dec = codecs.getincrementaldecoder("utf-8")(errors)
    text = dec.decode(data)
    return text, dec.getstate()[0]


def _surrogate_half(pending):
    # Python's incremental decoder also waits on ED A0..BF, the start of a UTF-16 surrogate, which no UTF-8
    # continuation can complete; utf8_split decodes it (to U+FFFD) at once, as the final decode would
    return len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=12))
@example(b"a\xed\xa0")
def test_utf8_split_holds_back_what_the_incremental_decoder_holds(data):
    theirs = _incremental(data)
    if _surrogate_half(theirs[1]):
        assert utf8_split(data) == (data.decode("utf-8", "replace"), b"")
    else:
        assert utf8_split(data) == theirs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16), st.lists(st.integers(0, 16), max_size=4))
def test_utf8_split_streamed_is_the_whole_decode(data, cuts):
    text, pending, start = "", b"", 0
    for cut in sorted(cuts) + [len(data)]:
        done, pending = utf8_split(pending + data[start:cut])
        text, start = text + done, max(start, cut)
    assert text + pending.decode("utf-8", "replace") == data.decode("utf-8", "replace")
    assert not pending or _incremental(pending)[1] == pending  # only an unfinished character is held


@pytest.mark.parametrize(
    "data",
    [b"caf\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0", b"\xf8\x88", b"ok\x80", b"\xe0\x80", b"\xf4\x90", b""],
)
@pytest.mark.parametrize("errors", ["replace", "strict"])
def test_utf8_split_edges(data, errors):
    try:
        theirs = _incremental(data, errors)
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            utf8_split(data, errors=errors)
    else:
        assert utf8_split(data, errors=errors) == theirs


@pytest.fixture(scope="module")
def small():
    return train_bpe(["hello world Привет мир 数字 😀 " * 20], vocab_size=300, special_tokens=["<s>", "</s>"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=24))
@example([0xED, 0xA0, 0x80, 0xF0, 0x9F, 0x98, 0x80])
def test_stream_decoder_emits_what_the_incremental_decoder_emits(small, ids):
    # single-byte tokens in any order: the decoder sees every kind of broken and unfinished character
    dec, ref = StreamDecoder(small), codecs.getincrementaldecoder("utf-8")("replace")
    ours = theirs = ""
    for i in ids:
        ours, theirs = ours + dec.push(i), theirs + ref.decode(small.token_bytes(i))
        pending = ref.getstate()[0]
        assert ours == theirs + (pending.decode("utf-8", "replace") if _surrogate_half(pending) else "")
    assert ours + dec.flush() == theirs + ref.decode(b"", final=True) == small.decode(ids)


# ---- one BOS rule: tokenizer.json and tokenizer_config.json, as transformers reads them ----


def _tokenizer_json(path, *, template):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS * 10, trainer)
    if template:
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
        )
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    return tok


def _config(path, add_bos):
    conf = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>"}
    if add_bos is not None:
        conf["add_bos_token"] = add_bos
    (path / "tokenizer_config.json").write_text(json.dumps(conf))


@pytest.mark.peer("transformers", "tokenizers")
@pytest.mark.parametrize("template", [True, False])
@pytest.mark.parametrize("add_bos", [None, True, False])
def test_encode_prompt_adds_bos_as_transformers_does(tmp_path, template, add_bos):
    transformers = pytest.importorskip("transformers")
    path = tmp_path / "tok"
    _tokenizer_json(path, template=template)
    _config(path, add_bos)
    ours = Tokenizer.from_pretrained(path)
    # transformers reads add_bos_token from the config but (5.x) rebuilds the post-processor only when it is
    # passed explicitly; 4.x and every model's own class apply it, so pass it as the model author meant
    kwargs = {} if add_bos is None else {"add_bos_token": add_bos}
    theirs = transformers.AutoTokenizer.from_pretrained(str(path), **kwargs)
    assert ours.add_bos == (template if add_bos is None else add_bos)
    assert ours.bos_id == theirs.bos_token_id
    for text in TEXTS:
        if text.startswith("<s>"):
            continue
        assert ours.encode_prompt(text) == theirs.encode(text), repr(text)


@pytest.mark.peer("tokenizers")
def test_encode_prompt_never_doubles_bos(tmp_path):
    path = tmp_path / "tok"
    _tokenizer_json(path, template=True)
    ours = Tokenizer.from_pretrained(path)
    bos = ours.bos_id
    assert ours.encode_prompt("<s> already there")[:2] != [bos, bos]
    assert ours.encode_prompt("<s> already there") == ours.encode("<s> already there", allowed_special="all")
    assert ours.encode("hello") == ours.encode_prompt("hello")[1:]  # encode never adds it


# ---- one BOS rule: GGUF tokenizer.ggml.add_bos_token, as llama.cpp reads it ----


def _vocab_only_gguf(meta, path):
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(meta["tokenizer.ggml.model"])
    w.add_tokenizer_pre(meta["tokenizer.ggml.pre"])
    w.add_token_list(meta["tokenizer.ggml.tokens"])
    w.add_token_types(meta["tokenizer.ggml.token_type"])
    w.add_token_merges(meta["tokenizer.ggml.merges"])
    w.add_bos_token_id(meta["tokenizer.ggml.bos_token_id"])
    if "tokenizer.ggml.add_bos_token" in meta:
        w.add_add_bos_token(meta["tokenizer.ggml.add_bos_token"])
    for add in (w.add_block_count, w.add_context_length, w.add_embedding_length, w.add_feed_forward_length):
        add(64)
    w.add_head_count(64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("add_bos", [True, False])
def test_gguf_metadata_writes_add_bos(small, add_bos):
    tok = Tokenizer(dataclasses.replace(small._parts, bos_id=256, add_bos=add_bos), name="small")
    meta = tok.gguf_metadata()
    assert meta["tokenizer.ggml.add_bos_token"] is add_bos and meta["tokenizer.ggml.add_eos_token"] is False
    back = Tokenizer.from_gguf_metadata(meta)
    assert (back.add_bos, back.bos_id) == (add_bos, 256)
    assert back.encode_prompt("hello") == tok.encode_prompt("hello")


@pytest.mark.peer("gguf", "llama_cpp")
@pytest.mark.parametrize("pre", ["gpt-2", "llama-bpe", "llama3", "qwen2", "gpt-4o"])
@pytest.mark.parametrize("add_bos", [None, True, False])
def test_gguf_add_bos_as_llama_cpp_reads_it(small, tmp_path, pre, add_bos):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    meta = dict(small.gguf_metadata(), **{"tokenizer.ggml.bos_token_id": 256, "tokenizer.ggml.pre": pre})
    del meta["tokenizer.ggml.add_bos_token"]
    if add_bos is not None:
        meta["tokenizer.ggml.add_bos_token"] = add_bos
    _vocab_only_gguf(meta, tmp_path / "vocab.gguf")
    llm = llama_cpp.Llama(model_path=str(tmp_path / "vocab.gguf"), vocab_only=True, verbose=False)
    ours = Tokenizer.from_gguf_metadata(meta)
    for text in TEXTS:
        if text.startswith("<s>") or not text:
            continue
        # llama.cpp's add_special adds BOS when the vocabulary asks for it; special=True parses "<s>" as ours does
        assert ours.encode_prompt(text) == llm.tokenize(text.encode(), add_bos=True, special=True), (pre, text)
