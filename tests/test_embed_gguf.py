"""GGUF `bert` files written by llama.cpp's own converter from a sentence-transformers directory: the same
vectors as sentence-transformers (F32 cosine >= 0.9999, Q8_0 >= 0.995), the same token ids, pooling_type read,
and the same vectors as llama.cpp's embedding path (llama-cpp-python) on the same file."""

import numpy as np
import pytest
from embed_fixtures import SENTENCES, convert_gguf, load_sentence, make_bert, make_sentence_dir

import fastformer

pytestmark = [pytest.mark.network, pytest.mark.peer("torch", "transformers", "tokenizers", "sentence_transformers")]
TEXTS = SENTENCES[:30] + ["", "東京 中文 test", "x " * 100]


def cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    bert, _ = make_bert(root / "bert", seed=11)
    st_dir, _ = make_sentence_dir(root / "st", bert, pooling="cls", max_seq_length=96)
    return st_dir, convert_gguf(st_dir, root / "f32.gguf"), convert_gguf(st_dir, root / "q8_0.gguf", "q8_0")


def test_gguf_matches_sentence_transformers(files):
    st_dir, f32, q8 = files
    st = load_sentence(st_dir)
    want = st.encode(TEXTS)
    model = fastformer.Model.load(f32)
    assert model.is_encoder and model.sentence.pooling == ("cls",)  # bert.pooling_type 2
    n = model.sentence.max_seq_length
    assert [model.tokenizer.encode(t, max_length=n) for t in TEXTS] == [st.tokenize([t])["input_ids"][0].tolist()
                                                                          for t in TEXTS]  # fmt: skip
    assert cosines(model.embed(TEXTS, normalize=True), want).min() >= 0.9999
    quant = fastformer.Model.load(q8)
    assert type(quant.checkpoint().layers[0].wq).__name__ == "QuantizedTensor"
    assert cosines(quant.embed(TEXTS), want).min() >= 0.995


@pytest.mark.peer("llama_cpp")
def test_gguf_matches_llama_cpp(files):
    """llama.cpp's own embedding of the same file (English text: its WordPiece normalizer differs on accents)."""
    from llama_cpp import Llama

    _, f32, _ = files
    llama = Llama(f32, embedding=True, n_ctx=96, verbose=False)
    texts = [t for t in SENTENCES if t.isascii()][:8]
    want = np.array(llama.embed(texts))
    got = fastformer.Model.load(f32).embed(texts, normalize=True)
    assert cosines(got, want).min() >= 0.9999
