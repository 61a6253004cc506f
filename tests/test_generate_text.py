"""Text generation through a model's own tokenizer: encode like HF tokenizers, generate == decode of
generate_ids, stream pieces join to generate, stop strings cut exactly and never leak, UTF-8 never split."""

import os

import numpy as np
import pytest
from helpers import make_checkpoint, perturb_matrices

from fastformer import Model

pytestmark = pytest.mark.peer("torch", "transformers", "tokenizers")  # a transformers model, a tokenizers file

CORPUS = [
    "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Maß und Fuß.",
    "Привет, как дела? Всё хорошо, спасибо. 你好，世界！ 日本語のテキスト。 😀🎉👍 café naïve",
    "def main():\n    return [x ** 2 for x in range(10)]\n\n",
] * 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    vocab = tok.get_vocab_size()
    path, _ = make_checkpoint(
        tmp_path_factory.mktemp("textmodel") / "m",
        "llama",
        perturb=perturb_matrices(0.3, seed=2),
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=None,
        eos_token_id=0,
    )
    tok.save(os.path.join(path, "tokenizer.json"))
    return path, tok


def test_tokenizer_loaded_and_exact(model_dir):
    path, hf_tok = model_dir
    model = Model.load(path)
    assert model.tokenizer is not None
    for text in CORPUS[:4]:
        assert model.encode_prompt(text) == hf_tok.encode(text).ids


def test_generate_is_decode_of_generate_ids(model_dir):
    model = Model.load(model_dir[0])
    prompt = "Once upon a time"
    ids = model.generate_ids(model.encode_prompt(prompt), max_new_tokens=40, ignore_eos=True)
    text = model.generate(prompt, max_new_tokens=40, ignore_eos=True)
    assert text == model.tokenizer.decode(ids)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_stream_joins_to_generate(model_dir, seed):
    model = Model.load(model_dir[0])
    opts = dict(max_new_tokens=60, temperature=1.0, seed=seed, ignore_eos=True)
    pieces = list(model.stream("Привет 你好 😀", **opts))
    assert all(isinstance(p, str) and p for p in pieces)
    full = model.generate("Привет 你好 😀", **opts)
    assert "".join(pieces) == full
    ids = model.generate_ids(model.encode_prompt("Привет 你好 😀"), **opts)
    raw = model.tokenizer.decode_bytes(ids)
    # pieces never split a character: each piece decodes on its own exactly as the whole does
    if "\ufffd" not in raw.decode("utf-8", errors="replace"):
        assert "\ufffd" not in full
        assert "".join(pieces).encode("utf-8") == raw


def test_stop_strings_cut_exactly_and_never_leak(model_dir):
    model = Model.load(model_dir[0])
    opts = dict(max_new_tokens=80, temperature=0.9, seed=5, ignore_eos=True)
    full = model.generate("Once", **opts)
    assert len(full) > 20
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    want = full[: full.index(stop)]
    assert model.generate("Once", stop=stop, **opts) == want
    pieces = list(model.stream("Once", stop=[stop, "\x00never"], **opts))
    assert "".join(pieces) == want
    for i in range(len(pieces)):
        assert stop not in "".join(pieces[: i + 1])


def test_stop_ids_and_eos(model_dir):
    model = Model.load(model_dir[0])
    ids = model.generate_ids([5, 6, 7], max_new_tokens=30, ignore_eos=True)
    stop = ids[10]
    first = ids.index(stop)
    assert model.generate_ids([5, 6, 7], max_new_tokens=30, stop_ids=[stop]) == ids[: first + 1]


def test_next_token_probs_of_text(model_dir):
    model = Model.load(model_dir[0])
    p = model.next_token_probs("Once upon a")
    assert p.shape == (model.config.vocab_size,) and abs(float(p.sum()) - 1) < 1e-5
    logits = model.logits(model.encode_prompt("Once upon a"))[-1].astype(np.float64)
    np.testing.assert_allclose(p, np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum(), atol=1e-6)
