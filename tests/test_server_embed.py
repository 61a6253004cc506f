"""POST /v1/embeddings of `fastformer serve` on an encoder, driven by the openai client: vectors equal
sentence-transformers' encode of the same directory (and Model.embed bit for bit), float and base64 formats,
usage, OpenAI-shaped errors; a decoder refuses the route and an encoder refuses generation."""

import base64

import httpx
import numpy as np
import openai
import pytest
from embed_fixtures import SENTENCES, load_sentence, make_bert, make_sentence_dir
from server_helpers import Live, assert_error

import fastformer
from fastformer.model import KJV_MODEL
from fastformer.server import create_app

pytestmark = pytest.mark.peer("torch", "transformers", "tokenizers", "sentence_transformers")
KEY = "embed-key"


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    bert_dir, _ = make_bert(tmp_path_factory.mktemp("bert"), seed=5)
    return make_sentence_dir(tmp_path_factory.mktemp("st") / "mean", bert_dir)[0]


@pytest.fixture(scope="module")
def live(encoder_dir):
    server = Live(create_app(encoder_dir, api_key=KEY, model_name="minilm"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0)


def post(live, path, body):
    return httpx.post(live.url + path, json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)


def test_embeddings_equal_sentence_transformers(client, encoder_dir):
    texts = SENTENCES[:12] + ["", "東京 café"]
    r = client.embeddings.create(model="minilm", input=texts, encoding_format="float")
    got = np.array([d.embedding for d in sorted(r.data, key=lambda d: d.index)], dtype=np.float32)
    np.testing.assert_array_equal(got, fastformer.Model.load(encoder_dir).embed(texts))
    want = load_sentence(encoder_dir).encode(texts, convert_to_numpy=True)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    model = fastformer.Model.load(encoder_dir)
    n = sum(len(model.tokenizer.encode(t, max_length=model.sentence.max_seq_length)) for t in texts)
    assert r.usage.prompt_tokens == r.usage.total_tokens == n
    assert r.model == "minilm"


def test_base64_and_a_single_string(live, encoder_dir):
    r = post(live, "/v1/embeddings", {"input": SENTENCES[3], "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]
    vec = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(vec, fastformer.Model.load(encoder_dir).embed([SENTENCES[3]])[0])


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": []}, "input"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": None}, "input"),
        ({"input": ["a"] * 5000}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 7}, "dimensions"),
        ({"input": "a", "truncate": True}, "truncate"),
    ],
)
def test_bad_embedding_requests(live, body, param):
    assert_error(post(live, "/v1/embeddings", body), 400, param=param)


def test_an_encoder_does_not_generate_and_a_decoder_does_not_embed(live):
    assert_error(post(live, "/v1/completions", {"prompt": "a", "max_tokens": 2}), 400, param="model")
    r = httpx.get(live.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "minilm"
    decoder = Live(create_app(KJV_MODEL, api_key=KEY))
    try:
        assert_error(post(decoder, "/v1/embeddings", {"input": "a"}), 400, param="model", code="unsupported_model")
    finally:
        decoder.stop()
    assert_error(httpx.post(live.url + "/v1/embeddings", json={"input": "a"}), 401)
