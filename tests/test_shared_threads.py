"""One Model and one Tokenizer shared by many Python threads, and used again in a fork()ed child: every
caller gets exactly the results it gets alone. (tests/test_threads.py covers the kernels and the pool.)"""

import json
import os
import threading

import pytest

from fastformer import Model
from fastformer.tokenizer import train_bpe

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TRAIN = [
    "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Maß und Fuß. 1234 + 5678 = 6912",
    "Привет, как дела? 你好，世界！ 日本語のテキスト。 😀🎉👍 café naïve",
    "def main():\n    return [x ** 2 for x in range(10)]\n\n",
] * 10
PROMPTS = ["Once upon a time", "Привет 你好 😀", "def main():", "Größe und Maß", "Lily liked", " ", "1234", "dog"]


def make_model_dir(root, max_context=512):
    """A 2-layer random Llama (perturbed weights, so outputs vary) with a trained byte-level tokenizer."""
    tok = train_bpe(TRAIN, vocab_size=420, special_tokens=["<|endoftext|>"])
    cfg = transformers.LlamaConfig(
        vocab_size=tok.n_vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_context,
        bos_token_id=None,
        eos_token_id=tok.eos_id,
    )
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) if p.ndim > 1 else p)
    path = os.path.join(str(root), "tiny")
    hf.save_pretrained(path)
    tok.save(os.path.join(path, "tokenizer.json"))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return Model.load(make_model_dir(tmp_path_factory.mktemp("shared")))


def work(model, i):
    """What caller i computes: a sampled and a greedy generation, and encodings of every prompt."""
    tok = model.tokenizer
    return (
        model.generate(PROMPTS[i], max_new_tokens=24, temperature=0.9, top_k=40, seed=i, ignore_eos=True),
        model.generate_ids(tok.encode(PROMPTS[i]), max_new_tokens=12, ignore_eos=True),
        [tok.encode(p) for p in PROMPTS] + [tok.encode(TRAIN[i % 4] * 20)],
        tok.encode_batch(PROMPTS, num_threads=2),
    )


def test_eight_threads_share_one_model_and_tokenizer(model):
    expected = [work(model, i) for i in range(8)]
    assert len({e[0] for e in expected}) > 1  # seeds and prompts do change the output
    results, errors = [[] for _ in range(8)], []
    start = threading.Barrier(8)

    def worker(i):
        try:
            start.wait()
            for _ in range(3):
                results[i].append(work(model, i))
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, errors[0]
    for i in range(8):
        assert results[i] == [expected[i]] * 3, i


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_model_and_tokenizer_work_after_fork(model):
    want = [work(model, i) for i in (0, 1)]  # the pool's workers exist now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it computes through the pipe
        code = 1
        try:
            os.close(r)
            got = [work(model, i) for i in (0, 1)]
            with os.fdopen(w, "wb") as f:
                f.write(json.dumps(got).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert json.loads(data) == json.loads(json.dumps(want))
    assert [work(model, i) for i in (0, 1)] == want  # and the parent still works
