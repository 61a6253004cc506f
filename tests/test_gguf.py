"""GGUF: files made by llama.cpp's own converter and by the `gguf` package load and match transformers;
malformed files raise FormatError naming the file."""

import os
import struct

import numpy as np
import pytest
from gguf_tools import convert
from helpers import PROMPT, assert_close, hf_logits, hf_model, make_checkpoint, optional, perturb_shift

from fastformer import FormatError, Model, UnsupportedError
from fastformer.gguf import GGUFFile

torch = optional("torch")
gguf = optional("gguf")


@pytest.fixture(scope="module")
def llama_ckpt(tmp_path_factory):
    return make_checkpoint(
        tmp_path_factory.mktemp("gguf") / "llama",
        "llama",
        perturb=perturb_shift(0),
        vocab_size=320,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )


@pytest.mark.peer("torch", "transformers", "sentencepiece")  # llama.cpp's converter: downloaded once, run in a child
@pytest.mark.network
@pytest.mark.subprocess
def test_llama_f32_from_llama_cpp_converter_matches_transformers(llama_ckpt):
    path, hf = llama_ckpt
    out = convert(path, "f32", path + "-f32.gguf")
    model = Model.load(out, kv_dtype="f32")
    assert model.config.architecture == "LlamaForCausalLM"
    assert_close(model.logits(PROMPT), hf_logits(hf, PROMPT), "logits")
    with torch.no_grad():
        want = hf.generate(
            torch.tensor([PROMPT[:6]]), max_new_tokens=16, min_new_tokens=16, do_sample=False, pad_token_id=0
        )[0, 6:].tolist()
    got = model.generate_ids(PROMPT[:6], max_new_tokens=16, ignore_eos=True)
    assert got == want


@pytest.mark.peer("torch", "transformers", "sentencepiece")
@pytest.mark.network
@pytest.mark.subprocess
def test_embedded_tokenizer_matches_sentencepiece(llama_ckpt):
    spm = pytest.importorskip("sentencepiece")
    path, _ = llama_ckpt
    out = convert(path, "f32", path + "-f32.gguf")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(path, "tokenizer.model"))
    model = Model.load(out)
    assert model.tokenizer is not None
    lines = [
        "the cat sat on a mat.",
        "Once upon a time there was a little girl named Lily.",
        "  two  spaces, émoji 😀 and 中文 fall back to bytes",
        "park\nplay\tdog",
        "",
    ]
    for text in lines:
        assert model.tokenizer.encode(text) == sp.encode(text), text
        # text prompts get BOS, as llama.cpp adds it for SentencePiece vocabularies
        assert model.encode_prompt(text) == [sp.bos_id()] + sp.encode(text)
    assert model.tokenizer.decode(sp.encode(lines[1])) == lines[1]


@pytest.mark.peer("torch", "transformers", "gguf")
def test_gpt2_written_with_gguf_package_matches_transformers(tmp_path):
    hf = hf_model(
        "gpt2", seed=1, perturb=perturb_shift(3), vocab_size=200, n_embd=64, n_layer=2, n_head=4, n_positions=64
    )
    cfg = hf.config
    sd = {k: v.numpy() for k, v in hf.state_dict().items()}
    path = str(tmp_path / "gpt2.gguf")
    w = gguf.GGUFWriter(path, "gpt2")
    w.add_context_length(64)
    w.add_embedding_length(64)
    w.add_feed_forward_length(256)
    w.add_block_count(2)
    w.add_head_count(4)
    w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    names = {
        "ln_1": "attn_norm",
        "ln_2": "ffn_norm",
        "attn.c_attn": "attn_qkv",
        "attn.c_proj": "attn_output",
        "mlp.c_fc": "ffn_up",
        "mlp.c_proj": "ffn_down",
    }
    w.add_tensor("token_embd.weight", sd["transformer.wte.weight"])
    w.add_tensor("position_embd.weight", sd["transformer.wpe.weight"])
    w.add_tensor("output_norm.weight", sd["transformer.ln_f.weight"])
    w.add_tensor("output_norm.bias", sd["transformer.ln_f.bias"])
    for i in range(2):
        for hf_name, gg in names.items():
            for kind in ("weight", "bias"):
                t = sd[f"transformer.h.{i}.{hf_name}.{kind}"]
                if kind == "weight" and hf_name not in ("ln_1", "ln_2"):
                    t = np.ascontiguousarray(t.T)  # Conv1D (in, out) -> (out, in), as the converter stores it
                w.add_tensor(f"blk.{i}.{gg}.{kind}", t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    model = Model.load(path, kv_dtype="f32")
    ids = [5, 9, 100, 3, 44, 199, 0, 7]
    assert_close(model.logits(ids), hf_logits(hf, ids), "logits")


# ---- malformed files ----


def _s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def build(kvs=(), tensors=(), version=3, magic=b"GGUF", n_tensors=None, n_kv=None, data=b"", align=32):
    """A GGUF file from raw parts: kvs [(key, type, packed value)], tensors [(name, dims, type, offset)]."""
    out = magic + struct.pack(
        "<IQQ", version, len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    for key, t, val in kvs:
        out += _s(key) + struct.pack("<I", t) + val
    for name, dims, t, off in tensors:
        out += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, off)
    out += b"\0" * (-len(out) % align)
    return out + data


ARCH = ("general.architecture", 8, _s("llama"))
GOOD_T = [("a", [8], 0, 0)]

CASES = {
    "bad magic": (build(magic=b"GGUX"), FormatError, "bad magic"),
    "version 4": (build(version=4, data=b"\0" * 32), UnsupportedError, "version 4"),
    "truncated header": (build([ARCH])[:30], FormatError, "truncated"),
    "string length 2^63": (build([("k", 8, struct.pack("<Q", 2**63))], data=b"\0" * 32), FormatError, "length"),
    "key length 2^63": (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**63) + b"\0" * 40, FormatError, "length"),
    "kv count 2^62": (build(n_kv=2**62, data=b"\0" * 64), FormatError, "impossible"),
    "tensor count 2^62": (build(n_tensors=2**62, data=b"\0" * 64), FormatError, "impossible"),
    "array 2^60 elements": (
        build([("k", 9, struct.pack("<IQ", 6, 2**60))], data=b"\0" * 32),
        FormatError,
        "past the end",
    ),
    "string array 2^60": (
        build([("k", 9, struct.pack("<IQ", 8, 2**60))], data=b"\0" * 32),
        FormatError,
        "past the end",
    ),
    "unknown value type": (build([("k", 99, b"\0" * 8)], data=b"\0" * 32), FormatError, "unknown value type"),
    "duplicate key": (build([ARCH, ARCH], data=b"\0" * 32), FormatError, "duplicate metadata"),
    "n_dims 5": (build(tensors=[("a", [1, 1, 1, 1, 1], 0, 0)], data=b"\0" * 32), FormatError, "n_dims 5"),
    "n_dims 0": (build(tensors=[("a", [], 0, 0)], data=b"\0" * 32), FormatError, "n_dims 0"),
    "dimension 0": (build(tensors=[("a", [0], 0, 0)], data=b"\0" * 32), FormatError, "dimensions"),
    "dimension 2^63": (build(tensors=[("a", [2**63], 0, 0)], data=b"\0" * 32), FormatError, "dimensions"),
    "dims overflow product": (
        build(tensors=[("a", [2**40, 2**40, 2**40], 0, 0)], data=b"\0" * 32),
        FormatError,
        "past the end",
    ),
    "unknown ggml type": (build(tensors=[("a", [8], 77, 0)], data=b"\0" * 32), UnsupportedError, "type 77"),
    "q8_0 row not a block multiple": (
        build(tensors=[("a", [31], 8, 0)], data=b"\0" * 64),
        FormatError,
        "not a multiple",
    ),
    "tensor past end": (build(tensors=[("a", [64], 0, 0)], data=b"\0" * 32), FormatError, "past the end"),
    "offset 2^63": (build(tensors=[("a", [8], 0, 2**63)], data=b"\0" * 32), FormatError, "past the end"),
    "unaligned offset": (build(tensors=[("a", [8], 0, 4)], data=b"\0" * 64), FormatError, "not aligned"),
    "overlapping tensors": (
        build(tensors=[("a", [16], 0, 0), ("b", [16], 0, 32)], data=b"\0" * 128),
        FormatError,
        "overlap",
    ),
    "duplicate tensor": (
        build(tensors=[("a", [8], 0, 0), ("a", [8], 0, 32)], data=b"\0" * 64),
        FormatError,
        "duplicate tensor",
    ),
    "bad alignment": (
        build([("general.alignment", 4, struct.pack("<I", 3))], tensors=GOOD_T, data=b"\0" * 64),
        FormatError,
        "power of two",
    ),
    "invalid utf-8 key": (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2) + b"\xff\xfe" + struct.pack("<I", 4) + b"\0" * 40,
        FormatError,
        "UTF-8",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_gguf(tmp_path, case):
    blob, exc, match = CASES[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(exc, match=match) as e:
        GGUFFile(str(path))
    assert "bad.gguf" in str(e.value)


def test_model_level_validation(tmp_path):
    # a well-formed file of an unsupported architecture, and one missing tensors
    path = tmp_path / "x.gguf"
    path.write_bytes(build([("general.architecture", 8, _s("mamba"))], tensors=GOOD_T, data=b"\0" * 32))
    with pytest.raises(UnsupportedError, match="llama, gpt2"):
        Model.load(str(path))
    path.write_bytes(build([ARCH], tensors=GOOD_T, data=b"\0" * 32))
    with pytest.raises(FormatError, match="x.gguf"):
        Model.load(str(path))
    assert os.path.exists(path)
