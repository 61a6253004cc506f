"""fastformer.ray on a local Ray cluster the module starts (2 CPUs, addresses on 127.0.0.1): Generator over Ray
Data equals Model.generate row for row and keeps the other columns, in both batch formats; the actor's threads
follow its num_cpus; bad arguments fail clearly; Embedder refuses a decoder. serve_app on Ray Serve (HTTP on
127.0.0.1) answers the openai client as Model.generate, streamed or not, and checks the API key.

Marked `ray` (`make test-fast` leaves it out: the cluster takes ~10 s to start) and `peer("ray", "pandas")`.
"""

import os
import pathlib
import re
import socket
from unittest import mock

import numpy as np
import pytest

import fastformer
from fastformer import Model, UnsupportedError
from fastformer.model import KJV_MODEL
from fastformer.ray import Embedder, Generator, build_app, serve_app

pytestmark = [pytest.mark.ray, pytest.mark.peer("ray", "pandas", "fastapi", "openai")]

KJV = KJV_MODEL
KJV_NAME = os.path.basename(KJV_MODEL)
PROMPTS = [
    "In the beginning God created the heaven and the earth.",
    "And the LORD said unto Moses,",
    "Blessed are the meek: for they shall inherit the earth.",
    "For",
    "Jesus wept.",
    "The LORD is my shepherd;",
]
TOKENS = 8


@pytest.fixture(scope="module")
def kjv():
    return Model.load(KJV)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for the module: 2 CPUs, no dashboard, no usage reporting, addresses on 127.0.0.1.

    Started from an empty directory: Ray's processes keep the driver's working directory and its workers import
    from there first, and the source tree of a clean clone has no built extension (the installed fastformer
    must win, as in tests that start children)."""
    import ray

    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        with mock.patch.dict(os.environ, RAY_USAGE_STATS_ENABLED="0"):
            ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     configure_logging=False)  # fmt: skip
            ray.data.DataContext.get_current().enable_progress_bars = False
            yield ray
            ray.shutdown()
    finally:
        os.chdir(before)


def _actors(ray, n):
    return ray.data.ActorPoolStrategy(size=n)


def test_generator_rows_equal_generate(cluster, kjv):
    """Two actors, batches of 2: every row's text is Model.generate's (greedy), the other columns are kept."""
    ray = cluster
    ds = ray.data.from_items([{"id": i, "prompt": p, "tag": f"t{i}"} for i, p in enumerate(PROMPTS)])
    kwargs = {"model": KJV, "max_new_tokens": TOKENS}
    rows = ds.map_batches(Generator, fn_constructor_kwargs=kwargs, compute=_actors(ray, 2), num_cpus=1, batch_size=2)
    rows = sorted(rows.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(len(PROMPTS)))
    for i, r in enumerate(rows):
        assert set(r) == {"id", "prompt", "tag", "generated_text"}
        assert (r["prompt"], r["tag"]) == (PROMPTS[i], f"t{i}")
        assert r["generated_text"] == kjv.generate(PROMPTS[i], max_new_tokens=TOKENS)


def test_generator_pandas_columns_and_sampling(cluster, kjv):
    """batch_format="pandas", renamed columns, seeded sampling options reach the engine: rows equal
    Model.generate with the same options."""
    ray = cluster
    sampling = dict(max_new_tokens=TOKENS, temperature=0.9, top_k=20, seed=7, stop=",")
    ds = ray.data.from_items([{"n": i, "text": p} for i, p in enumerate(PROMPTS[:4])])
    kwargs = dict(model=KJV, prompt_column="text", output_column="out", **sampling)
    out = ds.map_batches(Generator, fn_constructor_kwargs=kwargs, compute=_actors(ray, 1), num_cpus=1, batch_size=3,
                         batch_format="pandas")  # fmt: skip
    rows = sorted(out.take_all(), key=lambda r: r["n"])
    assert [set(r) for r in rows] == [{"n", "text", "out"}] * 4
    assert [r["out"] for r in rows] == [kjv.generate(p, **sampling) for p in PROMPTS[:4]]


def _threads_in_actor(num_cpus, threads):
    """fastformer's thread count after a Generator is built in a Ray task given num_cpus."""

    def build():
        Generator(KJV, threads=threads, max_new_tokens=1)
        return fastformer.get_num_threads()

    import ray

    return ray.get(ray.remote(num_cpus=num_cpus)(build).remote())


def test_generator_threads_follow_num_cpus(cluster):
    assert _threads_in_actor(1, None) == 1
    assert _threads_in_actor(2, None) == 2
    assert _threads_in_actor(1, 2) == 2  # an explicit count wins


def test_generator_local_batches(kjv):
    """Called directly (no cluster): a numpy batch with token-id prompts and a pandas batch; same type back."""
    import pandas as pd

    ids = [kjv.encode_prompt(p) for p in PROMPTS[:3]]
    want = [kjv.generate(i, max_new_tokens=TOKENS) for i in ids]
    gen = Generator(KJV, max_new_tokens=TOKENS)
    prompts = np.empty(3, dtype=object)
    prompts[:] = [np.array(i, dtype=np.int64) for i in ids]
    out = gen({"prompt": prompts, "k": np.arange(3)})
    assert set(out) == {"prompt", "k", "generated_text"} and list(out["k"]) == [0, 1, 2]
    assert list(out["generated_text"]) == want
    df = gen(pd.DataFrame({"prompt": PROMPTS[:3], "k": [5, 6, 7]}))
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["prompt", "k", "generated_text"]
    assert list(df["generated_text"]) == [kjv.generate(p, max_new_tokens=TOKENS) for p in PROMPTS[:3]]
    assert list(gen({"prompt": np.array([], dtype=object)})["generated_text"]) == []


def test_generator_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="unexpected options.*'max_tokens'"):
        Generator(KJV, max_tokens=4)
    with pytest.raises(ValueError, match="temperature"):
        Generator(KJV, temperature=-1.0)
    with pytest.raises(TypeError, match="model must be a path"):
        Generator(Model.load(KJV))
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        Generator(tmp_path / "nope.gguf")
    gen = Generator(KJV, max_new_tokens=1)
    with pytest.raises(KeyError, match=r"prompt_column='prompt' is not a column of the batch; its columns are \['x'\]"):
        gen({"x": np.array(["a"])})


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A small random-weight BERT directory (config, safetensors, tokenizer) saved by transformers."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("bert")
    words = sorted({w.lower().strip(".,:;") for p in PROMPTS for w in p.split()})
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64)  # fmt: skip
    transformers.BertModel(cfg).save_pretrained(root, safe_serialization=True)
    return root


@pytest.mark.peer("torch", "transformers")
def test_embedder_rows_equal_embed(cluster, bert_dir):
    """Two actors, batches of 2: each row's vector is Model.embed's for that text in one call of all six."""
    ray = cluster
    want = Model.load(bert_dir).embed(PROMPTS)
    ds = ray.data.from_items([{"id": i, "text": p} for i, p in enumerate(PROMPTS)])
    rows = ds.map_batches(Embedder, fn_constructor_kwargs={"model": str(bert_dir)}, compute=_actors(ray, 2),
                          num_cpus=1, batch_size=2).take_all()  # fmt: skip
    got = np.stack([r["embedding"] for r in sorted(rows, key=lambda r: r["id"])])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_embedder_refuses_a_decoder():
    with pytest.raises(UnsupportedError, match=f"{KJV_NAME}: not an encoder"):
        Embedder(KJV)({"text": np.array(["In the beginning"])})


@pytest.fixture(scope="module")
def served(cluster):
    """serve_app(KJV) on Ray Serve, HTTP on a free 127.0.0.1 port: the openai client's base URL."""
    from ray import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(serve_app(KJV, api_key="secret", parallel=2), name="fastformer", route_prefix="/")
    yield f"http://127.0.0.1:{port}/v1"
    serve.shutdown()


def test_serve_app_answers_openai_client(served, kjv):
    import openai

    client = openai.OpenAI(base_url=served, api_key="secret", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list().data] == [KJV_NAME]
    for prompt in PROMPTS[:2]:
        want = kjv.generate(prompt, max_new_tokens=TOKENS)
        got = client.completions.create(model=KJV_NAME, prompt=prompt, max_tokens=TOKENS, temperature=0)
        assert got.choices[0].text == want
        stream = client.completions.create(model=KJV_NAME, prompt=prompt, max_tokens=TOKENS, temperature=0,
                                           stream=True)  # fmt: skip
        assert "".join(c.choices[0].text for c in stream if c.choices) == want
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=served, api_key="wrong", max_retries=0).models.list()


def test_serve_app_bad_arguments():
    with pytest.raises(TypeError, match=r"unexpected engine options \['slots'\]"):
        serve_app(KJV, slots=4)
    with pytest.raises(TypeError, match="model must be a path"):
        serve_app(Model.load(KJV))
    app = build_app({"model": KJV, "parallel": "4"})  # what `serve run fastformer.ray:build_app k=v` passes
    assert type(app).__name__ == "Application"


def test_readme_serve_config():
    """The README's config file is a valid Serve config whose import_path and args build the app and whose
    deployment name is the app's (Serve rejects options for a deployment the app does not have)."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    [spec] = ServeDeploySchema.model_validate(yaml.safe_load(block)).applications
    module, _, name = spec.import_path.partition(":")
    assert (module, name) == ("fastformer.ray", "build_app")
    app = build_app(dict(spec.args, model=KJV))  # the README's path does not exist here
    assert [d.name for d in spec.deployments] == [app._bound_deployment.name]


def test_readme_ray_examples(served, capsys):
    """The README's fastformer.ray examples run as written on this cluster (the client on the test's port);
    last in the module, as the Serve example replaces the app the tests above use."""
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "fastformer.ray" in b]
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        code = block.replace("http://127.0.0.1:8000/v1", served)
        exec(compile(code, f"README.md[fastformer.ray block {i}]", "exec"), {})
    printed = capsys.readouterr().out
    assert "0 In the beginning -> " in printed and "3 Jesus wept. -> " in printed
