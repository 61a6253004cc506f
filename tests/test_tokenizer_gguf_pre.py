"""tokenizer.ggml.pre: for every split rule llama.cpp names, a byte-level BPE trained with Hugging Face
`tokenizers` and written as a vocab-only GGUF file tokenizes in fastformer exactly as in llama.cpp (an opt-in
peer), on multilingual text and code, with control tokens as text and as tokens."""

import json
import subprocess
import sys

import pytest
from gguf_vocab import HAND, llama_cpp_vocab
from helpers import child_env
from hf_tokenizers import LINES, TEXTS

import fastformer
from fastformer import Tokenizer, _tokenizer_hf
from fastformer._patterns import GGUF_PRE_SPLITS

# the names issue 13 lists, all from llama.cpp's llama-vocab.cpp
PRE_NAMES = [
    "default", "llama-bpe", "llama3", "qwen2", "smollm", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon",
    "starcoder", "refact", "command-r", "olmo", "dbrx", "smaug-bpe", "tekken", "gpt-4o", "phi-2",
]  # fmt: skip

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER = "<tool>"  # a user-defined token: cut out of the text even with special=False


def _texts():
    return HAND + TEXTS + LINES


@pytest.fixture(scope="module")
def bpe_meta():
    """tokenizer.ggml.* of a 3000-entry byte-level BPE trained with `tokenizers` (pre set per test)."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(HAND + TEXTS, trainer)
    spec = __import__("json").loads(tok.to_str())
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    tokens = [""] * len(vocab)
    types = [1] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    for s in SPECIALS:
        types[vocab[s]] = 3
    tokens.append(USER)
    types.append(4)
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.merges": [m if isinstance(m, str) else " ".join(m) for m in merges],
        "tokenizer.ggml.bos_token_id": vocab["<|endoftext|>"],
        "tokenizer.ggml.eos_token_id": vocab["<|im_end|>"],
        "tokenizer.ggml.add_bos_token": False,
    }


def test_every_listed_name_is_known():
    assert set(PRE_NAMES) <= set(GGUF_PRE_SPLITS)


@pytest.mark.parametrize("pre", sorted(GGUF_PRE_SPLITS))
def test_fast_path_where_a_scanner_exists(bpe_meta, pre):
    # a C scanner implements every split rule (one regex, or a list applied in turn): the whole text goes to C
    tok = Tokenizer.from_gguf_metadata({**bpe_meta, "tokenizer.ggml.pre": pre})
    assert tok._pipeline.pre.scanner is not None


# a plain install has no `regex`: every listed name must tokenize without it, as the `regex` package would
CHILD = """
import json, sys
sys.modules["regex"] = None  # import regex fails
from fastformer import Tokenizer
meta, texts, names = json.load(open(sys.argv[1]))
out = {}
for pre in names:
    tok = Tokenizer.from_gguf_metadata({**meta, "tokenizer.ggml.pre": pre})
    out[pre] = tok.encode_batch(texts, disallowed_special=())
json.dump(out, sys.stdout)
"""


@pytest.mark.subprocess
def test_every_listed_name_without_the_regex_package(bpe_meta, tmp_path, monkeypatch):
    texts = _texts()
    (tmp_path / "in.json").write_text(json.dumps([bpe_meta, texts, PRE_NAMES]))
    r = subprocess.run(
        [sys.executable, "-c", CHILD, "in.json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=child_env(),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    # the reference: every split regex run by the `regex` package, in this process
    monkeypatch.setattr(_tokenizer_hf, "SCANNERS_HF", {})
    monkeypatch.setattr(_tokenizer_hf, "SCANNER_LISTS", {})
    for pre in PRE_NAMES:
        want = Tokenizer.from_gguf_metadata({**bpe_meta, "tokenizer.ggml.pre": pre})
        assert want._pipeline.pre.scanner is None
        ids = want.encode_batch(texts, disallowed_special=())
        bad = [t for t, a, b in zip(texts, got[pre], ids) if a != b]
        assert not bad, (pre, len(bad), bad[0][:80])


@pytest.mark.peer
@pytest.mark.parametrize("pre", PRE_NAMES)
def test_llama_cpp_splits_alike(bpe_meta, pre, tmp_path):
    meta = {**bpe_meta, "tokenizer.ggml.pre": pre}
    llm = llama_cpp_vocab(meta, tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf_metadata(meta)
    for text in _texts():
        want = llm.tokenize(text.encode(), add_bos=False, special=False)
        assert ours.encode(text, disallowed_special=()) == want, (pre, text[:80])
    # control tokens: text with special=False, tokens with special=True; the user-defined token always a token
    for text in [f"{SPECIALS[1]}user\n{USER} hi 123{SPECIALS[2]}\n", f"a{SPECIALS[0]}b {USER}{USER}  {SPECIALS[2]}"]:
        assert ours.encode(text, disallowed_special=()) == llm.tokenize(text.encode(), add_bos=False, special=False)
        assert ours.encode(text, allowed_special="all") == llm.tokenize(text.encode(), add_bos=False, special=True)
        assert ours.encode_prompt(text) == llm.tokenize(text.encode(), add_bos=True, special=True)


@pytest.mark.peer
@pytest.mark.parametrize("pre", ["default", "falcon", "deepseek-llm", "deepseek-coder", "smollm", "tekken", "gpt-4o"])
def test_written_back_llama_cpp_splits_alike(bpe_meta, pre, tmp_path):
    # Tokenizer.gguf_metadata names the split it runs, so llama.cpp reading the written file splits alike
    ours = Tokenizer.from_gguf_metadata({**bpe_meta, "tokenizer.ggml.pre": pre})
    llm = llama_cpp_vocab(ours.gguf_metadata(), tmp_path / "vocab.gguf")
    for text in _texts()[:200]:
        assert ours.encode(text, disallowed_special=()) == llm.tokenize(text.encode(), add_bos=False, special=False)


@pytest.mark.peer
@pytest.mark.parametrize("pre", ["llama-bpe", "tekken", "gpt-2"])
def test_llama_cpp_default_bos(bpe_meta, pre, tmp_path):
    # without tokenizer.ggml.add_bos_token llama.cpp starts Llama 3 and tekken prompts with bos, others not
    meta = {k: v for k, v in bpe_meta.items() if k != "tokenizer.ggml.add_bos_token"}
    meta["tokenizer.ggml.pre"] = pre
    llm = llama_cpp_vocab(meta, tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf_metadata(meta)
    assert ours.encode_prompt("hello there") == llm.tokenize(b"hello there", add_bos=True, special=True)


def test_unknown_pre_names_the_value_and_the_known_ones(bpe_meta):
    with pytest.raises(fastformer.UnsupportedError, match=r"'no-such-pre'.*deepseek-coder.*tekken"):
        Tokenizer.from_gguf_metadata({**bpe_meta, "tokenizer.ggml.pre": "no-such-pre"})
    with pytest.raises(fastformer.UnsupportedError, match=r"tokenizer\.ggml\.pre 7"):
        Tokenizer.from_gguf_metadata({**bpe_meta, "tokenizer.ggml.pre": 7})


@pytest.mark.peer
@pytest.mark.parametrize("pre", ["smollm", "llama-bpe", "qwen2"])
def test_byte_level_vocabulary_missing_some_bytes(bpe_meta, pre, tmp_path):
    """Some published files (SmolLM2's) lack the tokens of bytes that cannot start UTF-8 text or are control
    characters; llama.cpp keeps such a byte as a symbol that merges with nothing and drops it."""
    from fastformer._tokenizer_hf import BYTE_TO_CHAR

    missing = [0x04, 0x13, 0x1F] + list(range(0xF5, 0x100))
    chars = {BYTE_TO_CHAR[b] for b in missing}
    tokens = list(bpe_meta["tokenizer.ggml.tokens"])
    for i, t in enumerate(tokens):
        if t in chars:
            tokens[i] = f"<gone-{i}>"
    merges = [m for m in bpe_meta["tokenizer.ggml.merges"] if not chars & set(m)]
    meta = {**bpe_meta, "tokenizer.ggml.pre": pre, "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.merges": merges}
    llm = llama_cpp_vocab(meta, tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf_metadata(meta)
    texts = [
        "ab\x04cd",
        "hello\x13world \x1f\x1fthere",
        "\x04",
        "it's \x04 2024 \x13\x13 日本",
        HAND[0] + "\x13" + HAND[1],
    ]
    for text in texts + _texts()[:20]:
        want = llm.tokenize(text.encode(), add_bos=False, special=False)
        assert ours.encode(text, disallowed_special=()) == want, (pre, text[:80])
    # the dropped byte still keeps its neighbours from merging
    assert ours.encode("hel\x04lo", disallowed_special=()) != ours.encode("hello", disallowed_special=())
