"""Write the seed corpora fuzz/corpus/<target>/ (small valid inputs; run once, the output is committed).

    python fuzz/make_seeds.py

Needs the test extras (safetensors, gguf, tokenizers, sentencepiece, transformers, torch); files written by
hand (named hand-*) are left alone.
"""

import base64
import json
import os
import tempfile

import numpy as np

from fastformer import Model
from fastformer.tokenizer import train_bpe

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
TEXT = [
    "Once upon a time there was a little girl named Lily. She liked to play in the park.\n",
    "Über den Wolken, Größe und Maß. 1234567 3.14\n",
    "Привет, мир! 你好，世界！ 😀🎉 café\n",
    "def f(x):\n    return x ** 2  # square\n\n",
] * 3


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def safetensors_seeds():
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((4,)).astype(np.float16),
        "i64": np.arange(3, dtype=np.int64),
        "u8": np.arange(7, dtype=np.uint8),
        "flag": np.array([True, False]),
        "empty": np.zeros((0, 4), np.float32),
        "f64": np.ones((2, 1, 2)),
    }
    put("safetensors", "mixed.safetensors", save(tensors, metadata={"format": "np"}))
    put("safetensors", "one.safetensors", save({"w": np.ones((2, 2), np.float32)}))
    # header-as-text form (see fuzz_safetensors.as_file): 0xff, JSON header, 0x00, data bytes
    header = {
        "a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
        "b": {"dtype": "I32", "shape": [1, 1], "data_offsets": [4, 8]},
        "__metadata__": {"k": "v"},
    }
    put("safetensors", "header-form.bin", b"\xff" + json.dumps(header).encode() + b"\x00" + bytes(range(8)))


def tiny_model(root, tok):
    """A 1-layer random Llama with `tok` as its tokenizer, saved as a Hugging Face dir and loaded."""
    import torch
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=tok.n_vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    path = os.path.join(root, "llama")
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save(os.path.join(path, "tokenizer.json"))
    return Model.load(path)


def gguf_seeds(tok, root):
    import gguf

    model = tiny_model(root, tok)
    out = os.path.join(root, "m.gguf")
    model.save_gguf(out)
    put("gguf", "llama-f32.gguf", open(out, "rb").read())
    w = gguf.GGUFWriter(os.path.join(root, "kv.gguf"), "llama")
    for k, v in [
        ("u8", gguf.GGUFValueType.UINT8),
        ("i16", gguf.GGUFValueType.INT16),
        ("u64", gguf.GGUFValueType.UINT64),
        ("f64", gguf.GGUFValueType.FLOAT64),
        ("b", gguf.GGUFValueType.BOOL),
    ]:
        w.add_key_value(f"t.{k}", 1, v)
    w.add_array("t.strs", ["a", "bc", "日本"])
    w.add_array("t.ints", [1, 2, 3])
    w.add_tensor("f16", np.ones((2, 32), np.float16))
    w.add_tensor("i8", np.arange(64, dtype=np.int8).reshape(2, 32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    put("gguf", "types.gguf", open(os.path.join(root, "kv.gguf"), "rb").read())


# the families the models issue added, as tiny transformers configs (head_dim small: gemma's default is 256)
ARCH_SEEDS = {
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(head_dim=8)),
    "phi3-longrope": (
        "Phi3Config",
        "Phi3ForCausalLM",
        dict(
            pad_token_id=0,
            original_max_position_embeddings=16,
            partial_rotary_factor=0.5,
            sliding_window=32,
            rope_scaling=dict(type="longrope", short_factor=[1.0, 1.1], long_factor=[1.5, 2.0]),
        ),
    ),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        dict(
            head_dim=8,
            sliding_window=8,
            query_pre_attn_scalar=8,
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
            pad_token_id=0,
        ),
    ),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(head_dim=8, sliding_window=8, pad_token_id=0)),
}


def arch_model(root, name, tok):
    """A 1-layer random model of ARCH_SEEDS[name] with `tok` as its tokenizer, saved and loaded."""
    import torch
    import transformers

    config_cls, model_cls, extra = ARCH_SEEDS[name]
    cfg = getattr(transformers, config_cls)(
        vocab_size=tok.n_vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2 if name.startswith("gemma") else 1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        **extra,
    )
    torch.manual_seed(0)
    path = os.path.join(root, name)
    getattr(transformers, model_cls)(cfg).save_pretrained(path)
    tok.save(os.path.join(path, "tokenizer.json"))
    return Model.load(path)


def new_kind_seeds(tok, root):
    """GGUF files of the families and block types the models issue added, and their config.json files: qwen3
    (byte-level vocabulary), phi3 with LongRoPE, gemma2 / gemma3 with a SentencePiece vocabulary, one tensor of
    every block type fastformer reads, and a gemma2 with q5_1 matrices."""
    import gguf

    from fastformer import Tokenizer
    from fastformer.quant import QTYPES, quantize

    spm_path = os.path.join(root, "spm.json")
    with open(spm_path, "w", encoding="utf-8") as f:
        f.write(sentencepiece_json(root))
    spm = Tokenizer.from_file(spm_path)
    for name in ARCH_SEEDS:
        model = arch_model(root, name, spm if name.startswith("gemma") else tok)
        out = os.path.join(root, name + ".gguf")
        model.save_gguf(out)
        put("gguf", name + ".gguf", open(out, "rb").read())
        cfg = json.load(open(os.path.join(root, name, "config.json")))
        put("config", name + ".json", json.dumps({k: v for k, v in cfg.items() if k not in ("dtype", "torch_dtype")}))
    # one (2, 256) tensor of each block type: quantized where fastformer quantizes it, else random bytes
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(os.path.join(root, "blocks.gguf"), "llama")
    for qtype, (tid, blk, size) in QTYPES.items():
        if blk == 1:
            continue
        try:
            raw = quantize(rng.standard_normal((2, 256)).astype(np.float32), qtype).data
        except ValueError:
            raw = rng.integers(0, 256, (2, 256 // blk * size), dtype=np.uint8)
        w.add_tensor(qtype, np.asarray(raw).reshape(2, -1), raw_dtype=gguf.GGMLQuantizationType(tid))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    put("gguf", "blocks.gguf", open(os.path.join(root, "blocks.gguf"), "rb").read())
    model = Model.load(os.path.join(root, "gemma2"), quantize="q5_1")  # rows of 16 and 32: the 32s quantize
    model.save_gguf(os.path.join(root, "gemma2-q5_1.gguf"))
    put("gguf", "gemma2-q5_1.gguf", open(os.path.join(root, "gemma2-q5_1.gguf"), "rb").read())


def sentencepiece_json(root):
    """A Llama-2-style tokenizer.json (normalizer Prepend/Replace, byte fallback) from a SentencePiece model;
    merges are every split of a piece into two pieces, by the piece's score."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT * 4),
        model_prefix=os.path.join(root, "sp"),
        vocab_size=450,
        model_type="bpe",
        byte_fallback=True,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    sp = spm.SentencePieceProcessor(model_file=os.path.join(root, "sp.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for i in sorted(range(sp.get_piece_size()), key=lambda i: -sp.get_score(i)):
        piece = sp.id_to_piece(i)
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i):
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(splits, key=lambda p: (vocab[p[0]], vocab[p[1]]))
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
    spec = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
            ],
        },
        "pre_tokenizer": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "unk_token": "<unk>",
            "fuse_unk": True,
            "byte_fallback": True,
            "vocab": vocab,
            "merges": [list(m) for m in merges],
        },
    }
    return json.dumps(spec, ensure_ascii=False)


def main():
    tok = train_bpe(TEXT, vocab_size=300, special_tokens=["<|endoftext|>"])
    with tempfile.TemporaryDirectory() as root:
        safetensors_seeds()
        gguf_seeds(tok, root)
        new_kind_seeds(tok, root)
        path = os.path.join(root, "tokenizer.json")
        tok.save(path)
        put("tokenizer_json", "byte-level.json", open(path, "rb").read())
        put("tokenizer_json", "sentencepiece.json", sentencepiece_json(root))
    # tiktoken: the trained vocabulary's merge-space bytes, rank = id
    lines = [
        base64.b64encode(tok.token_bytes(i)) + b" %d" % i
        for i in range(tok.n_vocab)
        if i not in tok.special_tokens.values()
    ]
    put("tiktoken", "trained.tiktoken", b"\n".join(lines) + b"\n")
    for name, cfg in {
        "llama": dict(
            architectures=["LlamaForCausalLM"],
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=88,
            num_hidden_layers=2,
            max_position_embeddings=128,
            vocab_size=160,
            rms_norm_eps=1e-5,
            eos_token_id=[1, 2],
            tie_word_embeddings=True,
        ),
        "llama3": dict(
            architectures=["LlamaForCausalLM"],
            hidden_size=64,
            num_attention_heads=4,
            intermediate_size=88,
            num_hidden_layers=2,
            max_position_embeddings=128,
            vocab_size=160,
            rope_theta=500000.0,
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=32,
            ),
        ),
        "mistral": dict(
            model_type="mistral",
            hidden_size=64,
            num_attention_heads=4,
            intermediate_size=88,
            head_dim=32,
            num_hidden_layers=1,
            max_position_embeddings=128,
            vocab_size=160,
            sliding_window=8,
        ),
        "qwen2-linear": dict(
            architectures=["Qwen2ForCausalLM"],
            hidden_size=64,
            num_attention_heads=4,
            intermediate_size=88,
            num_hidden_layers=1,
            max_position_embeddings=128,
            vocab_size=160,
            rope_scaling=dict(type="linear", factor=2.0),
        ),
        "gpt2": dict(
            architectures=["GPT2LMHeadModel"],
            n_embd=64,
            n_head=4,
            n_layer=2,
            n_positions=128,
            vocab_size=160,
            activation_function="gelu_new",
        ),
    }.items():
        put("config", name + ".json", json.dumps(cfg))
    # encode (see fuzz_encode.test_one_input): tokenizer, op, then for ops 0/1 one part of kind 1 (the rest as text)
    for name, text in {"ascii": "Hello world! 123", "mixed": TEXT[2], "code": TEXT[3] + "<|endoftext|>x"}.items():
        for k in range(2):
            for op in (0, 1):
                put("encode", f"{name}-tok{k}-op{op}.bin", bytes([k, op, 0, 1]) + text.encode("utf-8"))
    for k in range(2):
        for op in (2, 3, 4):
            put("encode", f"ids-tok{k}-op{op}.bin", bytes([k, op]) + bytes(range(7, 250, 9)))


if __name__ == "__main__":
    main()
