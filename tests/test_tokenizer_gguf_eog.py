"""End of generation from a GGUF file: every id the file declares (eos, eot, eom, fill-in-the-middle pad) and
every end-of-turn token llama.cpp knows by its text stops generation; llama.cpp (an opt-in peer) agrees on
which ids those are. Bad tokenizer metadata ends in FormatError / UnsupportedError naming the key."""

import numpy as np
import pytest
from gguf_vocab import llama_cpp_vocab

import fastformer
from fastformer import Model, Tokenizer
from fastformer._gguf_vocab import eog_ids
from fastformer._tokenizer_hf import BYTE_TO_CHAR

TURN_ENDS = ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<|eom_id|>", "<|end|>"]
OTHERS = ["<|im_start|>", "<start_of_turn>", "<s>", "<pad>", "<eot>", "<eom>", "<fim_pad>"]
D, FF, LAYERS, HEADS, KV = 32, 64, 2, 4, 2


def _meta(**ids):
    tokens = [BYTE_TO_CHAR[b] for b in range(256)] + [BYTE_TO_CHAR[32] + "t"] + OTHERS + TURN_ENDS
    meta = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [1] * 257 + [3] * (len(tokens) - 257),
        "tokenizer.ggml.merges": [f"{BYTE_TO_CHAR[32]} t"],
        "tokenizer.ggml.bos_token_id": tokens.index("<s>"),
        "tokenizer.ggml.add_bos_token": False,
    }
    meta.update({f"tokenizer.ggml.{k}": v for k, v in ids.items()})
    return meta


def _write_model(path, meta, seed=0):
    """A tiny random Llama GGUF file (f32) carrying `meta` as its tokenizer."""
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(seed)
    vocab = len(meta["tokenizer.ggml.tokens"])
    w = gguf.GGUFWriter(str(path), "llama")
    sizes = {"context_length": 64, "embedding_length": D, "block_count": LAYERS, "feed_forward_length": FF,
             "attention.head_count": HEADS, "attention.head_count_kv": KV}  # fmt: skip
    for key, v in sizes.items():
        w.add_uint32(f"llama.{key}", v)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    for key, v in meta.items():
        if isinstance(v, bool):
            w.add_bool(key, v)
        elif isinstance(v, int):
            w.add_uint32(key, v)
        elif isinstance(v, str):
            w.add_string(key, v)
        else:
            w.add_array(key, v)

    def t(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)

    w.add_tensor("token_embd.weight", t(vocab, D))
    w.add_tensor("output_norm.weight", np.ones(D, np.float32))
    w.add_tensor("output.weight", t(vocab, D))
    kv = D // HEADS * KV
    for i in range(LAYERS):
        for name, shape in (("attn_norm", None), ("ffn_norm", None), ("attn_q", (D, D)), ("attn_k", (kv, D)),
                            ("attn_v", (kv, D)), ("attn_output", (D, D)), ("ffn_gate", (FF, D)), ("ffn_up", (FF, D)),
                            ("ffn_down", (D, FF))):  # fmt: skip
            w.add_tensor(f"blk.{i}.{name}.weight", np.ones(D, np.float32) if shape is None else t(*shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _retexted(meta, i, text):
    """meta with token i spelled `text` (and the token that was `text` spelled as token i was)."""
    tokens = list(meta["tokenizer.ggml.tokens"])
    j = tokens.index(text) if text in tokens else None
    if j is not None:
        tokens[j] = tokens[i]
    tokens[i] = text
    types = list(meta["tokenizer.ggml.token_type"])
    if j is not None:
        types[i], types[j] = types[j], types[i]
    return {**meta, "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types}


def test_eog_ids_of_the_metadata():
    meta = _meta(eos_token_id=260, eot_token_id=261, eom_token_id=262, fim_pad_token_id=263)
    tokens = meta["tokenizer.ggml.tokens"]
    assert eog_ids(meta) == [260, 261, 262, 263] + [tokens.index(s) for s in TURN_ENDS]


def test_model_stops_on_every_eog_id(tmp_path):
    base, prompt = _meta(), [72, 105, 32]
    for seed in range(10):  # weights whose greedy continuation runs past the turn-end tokens the file holds
        _write_model(tmp_path / "base.gguf", base, seed)
        free = Model.load(str(tmp_path / "base.gguf")).generate_ids(prompt, max_new_tokens=6)
        if len(free) == 6:
            break
    assert len(free) == 6
    first = free[0]
    variants = {f"{k}_token_id": {**base, f"tokenizer.ggml.{k}_token_id": first} for k in ("eos", "eot", "eom")}
    variants.update({text: _retexted(base, first, text) for text in TURN_ENDS})
    for name, meta in variants.items():
        path = tmp_path / f"{len(name)}_{abs(hash(name))}.gguf"
        _write_model(path, meta, seed)
        m = Model.load(str(path))
        assert first in m.checkpoint().eos_ids, name
        assert m.generate_ids(prompt, max_new_tokens=6) == [first], name


@pytest.mark.peer
def test_llama_cpp_agrees_on_eog_ids(tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    meta = _meta(eos_token_id=260, eot_token_id=261, eom_token_id=262, fim_pad_token_id=263)
    llm = llama_cpp_vocab(meta, tmp_path / "vocab.gguf")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    theirs = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    assert set(eog_ids(meta)) == theirs


def _bad(meta, **changes):
    return {**meta, **{f"tokenizer.ggml.{k}": v for k, v in changes.items()}}


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(pre="no-such-pre"), fastformer.UnsupportedError, r"tokenizer\.ggml\.pre 'no-such-pre'.*gpt-4o"),
        (dict(token_type=[1, 1]), fastformer.FormatError, r"tokenizer\.ggml\.token_type has 2 entries"),
        (dict(model="llama", scores=[0.0] * 3), fastformer.FormatError, r"tokenizer\.ggml\.scores has 3 entries"),
        (dict(eos_token_id=10**6), fastformer.FormatError, r"tokenizer\.ggml\.eos_token_id 1000000"),
        (dict(eot_token_id=-1), fastformer.FormatError, r"tokenizer\.ggml\.eot_token_id -1"),
        (dict(eom_token_id=True), fastformer.FormatError, r"tokenizer\.ggml\.eom_token_id True"),
        (dict(tokens=["a", "\udcff"]), fastformer.FormatError, r"tokenizer\.ggml\.tokens: token 1 .*UTF-8"),
        (dict(merges="a b"), fastformer.FormatError, r"tokenizer\.ggml\.merges"),
        (dict(add_eos_token="yes"), fastformer.FormatError, r"tokenizer\.ggml\.add_eos_token"),
    ],
)
def test_hostile_metadata(changes, error, match):
    meta = _bad(_meta(), **changes)
    if "tokens" in changes:
        meta["tokenizer.ggml.token_type"] = [1] * len(changes["tokens"])
    with pytest.raises(error, match=match):
        Tokenizer.from_gguf_metadata(meta, source="bad.gguf")


def test_hostile_eog_id_in_a_model_file(tmp_path):
    _write_model(tmp_path / "m.gguf", _meta(eot_token_id=10**5))
    with pytest.raises(fastformer.FormatError, match=r"m\.gguf.*tokenizer\.ggml\.eot_token_id 100000"):
        Model.load(str(tmp_path / "m.gguf"))
