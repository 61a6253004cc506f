"""Model.embed against sentence-transformers: a random perturbed transformers BertModel with a WordPiece vocabulary
trained by `tokenizers`, wrapped by sentence-transformers' own classes. Cosine >= 0.9999 per text in float32
(every pooling mode, normalized or not, truncated or not) and >= 0.995 with Q8_0 weights; the hidden states
against transformers' BertModel; hostile inputs and configurations give defined results or clear errors.
"""

import json
import os
import shutil

import numpy as np
import pytest
from embed_fixtures import SENTENCES, load_sentence, make_bert, make_sentence_dir

import fastformer
from fastformer.errors import FormatError, UnsupportedError
from fastformer.model import KJV_MODEL

pytestmark = pytest.mark.peer("torch", "transformers", "tokenizers", "sentence_transformers")

TEXTS = SENTENCES[:40] + ["", "a", "x " * 200, "def f(x):\n    return x ** 2  # square", "东京 is 東京, ΟΔΟΣ café"]


def cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """(directory, transformers BertModel)."""
    return make_bert(tmp_path_factory.mktemp("bert"), seed=3)


@pytest.fixture(scope="module")
def mean_dir(bert, tmp_path_factory):
    return make_sentence_dir(tmp_path_factory.mktemp("st") / "mean", bert[0])


def test_hidden_states_match_transformers(bert):
    import torch

    path, hf = bert
    model = fastformer.Model.load(path)
    assert model.is_encoder and model.config.arch == "bert"
    tok = model.tokenizer
    ids = [tok.encode(t) for t in TEXTS[:6]]
    lens = np.array([len(i) for i in ids])
    got = fastformer._core.encoder_forward(model._core, np.concatenate(ids), lens)
    with torch.no_grad():
        want = [hf(torch.tensor([i])).last_hidden_state[0].numpy() for i in ids]
    np.testing.assert_allclose(got, np.concatenate(want), atol=2e-5, rtol=0)


@pytest.mark.parametrize(
    "pooling,normalize",
    [("mean", True), ("cls", False), ("max", True), ("lasttoken", False), ("weightedmean", True),
     ("mean_sqrt_len_tokens", False), (("cls", "mean", "max"), True)],
)  # fmt: skip
def test_parity_with_sentence_transformers(bert, tmp_path, pooling, normalize):
    path, st = make_sentence_dir(tmp_path / "st", bert[0], pooling=pooling, normalize=normalize)
    st = load_sentence(path)
    model = fastformer.Model.load(path)
    assert model.sentence.pooling == ((pooling,) if isinstance(pooling, str) else pooling)
    assert model.sentence.normalize is normalize
    got, want = model.embed(TEXTS, batch_size=7), st.encode(TEXTS)
    assert got.shape == want.shape and got.dtype == np.float32
    assert cosines(got, want).min() >= 0.9999
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max(), rtol=0)


def test_truncation_at_max_seq_length(bert, tmp_path):
    path, _ = make_sentence_dir(tmp_path / "st", bert[0], max_seq_length=12)
    st = load_sentence(path)
    model = fastformer.Model.load(path)
    assert model.sentence.max_seq_length == 12
    long = [" ".join(SENTENCES[:20]), "word " * 50_000]
    assert cosines(model.embed(long), st.encode(long)).min() >= 0.9999
    # the rule: [CLS] + the text's first 10 tokens + [SEP]
    assert model.tokenizer.encode(long[0], max_length=12) == st.tokenize([long[0]])["input_ids"][0].tolist()


def test_legacy_sentence_bert_config(bert, mean_dir, tmp_path):
    """Older sentence-transformers directories: max_seq_length in sentence_bert_config.json, pooling_mode_* keys."""
    path = str(tmp_path / "old")
    shutil.copytree(mean_dir[0], path)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 16, "do_lower_case": False}, f)
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 64, "pooling_mode_cls_token": True,
                   "pooling_mode_mean_tokens": False}, f)  # fmt: skip
    st = load_sentence(path)
    model = fastformer.Model.load(path)
    assert (model.sentence.pooling, model.sentence.max_seq_length) == (("cls",), 16)
    assert cosines(model.embed(TEXTS), st.encode(TEXTS)).min() >= 0.9999


def test_q8_0_parity(mean_dir):
    st = load_sentence(mean_dir[0])
    model = fastformer.Model.load(mean_dir[0], quantize="q8_0")
    assert type(model.checkpoint().layers[0].wq).__name__ == "QuantizedTensor"
    c = cosines(model.embed(TEXTS), st.encode(TEXTS))
    assert c.min() >= 0.995


def test_embed_order_and_batching(mean_dir):
    """Batches sorted by length and packed: any batch size gives the same vectors, in the texts' order."""
    model = fastformer.Model.load(mean_dir[0])
    one = np.concatenate([model.embed([t]) for t in TEXTS[:9]])
    for bs in (1, 4, 32):
        np.testing.assert_allclose(model.embed(TEXTS[:9], batch_size=bs), one, atol=1e-6, rtol=0)


def test_bare_bert_directory_pools_like_sentence_transformers(bert):
    """A directory without sentence-transformers files: mean pooling, no normalization (as SentenceTransformer)."""
    st = load_sentence(bert[0])
    model = fastformer.Model.load(bert[0])
    assert model.sentence.pooling == ("mean",) and not model.sentence.normalize
    assert cosines(model.embed(TEXTS), st.encode(TEXTS)).min() >= 0.9999
    override = model.embed(TEXTS[:3], pooling="cls", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(override, axis=1), 1.0, atol=1e-6)


def test_masked_lm_checkpoint_loads(tmp_path):
    """BertForMaskedLM: weights under bert., the MLM head ignored."""
    import torch

    path, hf = make_bert(tmp_path / "mlm", arch="bert-mlm", seed=5)
    model = fastformer.Model.load(path)
    ids = model.tokenizer.encode(SENTENCES[0])
    got = fastformer._core.encoder_forward(model._core, np.array(ids), np.array([len(ids)]))
    with torch.no_grad():
        want = hf.bert(torch.tensor([ids])).last_hidden_state[0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


# ---- hostile inputs ----


def test_hostile_texts(mean_dir):
    st = load_sentence(mean_dir[0])
    model = fastformer.Model.load(mean_dir[0])
    texts = ["", "\x00\x00\x00", "a\x00b", "\ud800 lone surrogate", "x" * 100_000, "\u200b\u200b", " \t\n "]
    got = model.embed(texts)
    assert got.shape == (len(texts), 64) and np.isfinite(got).all()
    ok = [0, 1, 2, 4, 5, 6]  # sentence-transformers' tokenizer cannot take a lone surrogate
    assert cosines(got[ok], st.encode([texts[i] for i in ok])).min() >= 0.9999
    assert model.embed([]).shape == (0, 64)


def test_bad_arguments(mean_dir):
    model = fastformer.Model.load(mean_dir[0])
    with pytest.raises(TypeError, match="texts"):
        model.embed([1, 2])
    with pytest.raises(TypeError, match="texts"):
        model.embed(b"bytes")
    with pytest.raises(ValueError, match="pooling"):
        model.embed(["a"], pooling="median")
    with pytest.raises(ValueError, match="pooling"):
        model.embed(["a"], pooling=[])
    with pytest.raises(ValueError, match="batch_size"):
        model.embed(["a"], batch_size=0)
    with pytest.raises(TypeError, match="normalize"):
        model.embed(["a"], normalize="yes")


def test_encoder_and_decoder_methods_are_kept_apart(mean_dir, tmp_path):
    model = fastformer.Model.load(mean_dir[0])
    calls = (lambda: model.logits([1, 2]), lambda: model.generate_ids([1, 2], max_new_tokens=2),
             lambda: model.generate("hi"), lambda: model.perplexity("a b c"))  # fmt: skip
    for call in calls:
        with pytest.raises(UnsupportedError, match="encoder"):
            call()
    with pytest.raises(UnsupportedError, match="GGUF"):
        model.save_gguf(tmp_path / "x.gguf")
    decoder = fastformer.Model.load(KJV_MODEL)  # the small decoder shipped in the package
    assert not decoder.is_encoder
    with pytest.raises(UnsupportedError, match="encoder"):
        decoder.embed(["a"])


@pytest.mark.parametrize(
    "pooling_config,message",
    [({"pooling_mode": "median"}, "unknown pooling mode"), ({"pooling_mode": []}, "pooling_mode"),
     ({"pooling_mode_mean_tokens": False}, "pooling_mode"), ([1, 2], "JSON object")],
)  # fmt: skip
def test_invalid_pooling_config(mean_dir, tmp_path, pooling_config, message):
    path = str(tmp_path / "bad")
    shutil.copytree(mean_dir[0], path)
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump(pooling_config, f)
    with pytest.raises(FormatError, match=message):
        fastformer.Model.load(path)


def test_invalid_modules_and_lengths(mean_dir, tmp_path):
    path = str(tmp_path / "bad")
    shutil.copytree(mean_dir[0], path)
    modules = json.load(open(os.path.join(path, "modules.json")))
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules + [{"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.Dense"}], f)
    with pytest.raises(UnsupportedError, match="Dense"):
        fastformer.Model.load(path)
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f)
    for bad in (1000, 0, "long"):
        with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
            json.dump({"max_seq_length": bad}, f)
        with pytest.raises(FormatError, match="max_seq_length"):
            fastformer.Model.load(path)
