"""A real published model: SmolLM2-135M-Instruct as Q4_1 GGUF (llama.cpp-made, Q8_0 token table, a byte-level
vocabulary missing 21 byte tokens, pre-tokenizer "smollm", a chat template). tools/get_default_model.sh fetches
it (CI runs it before the suite); tokens and logits are compared with llama.cpp on the same file."""

import os

import numpy as np
import pytest

from fastformer import Model

PATH = os.path.join(os.path.dirname(__file__), "..", "fastformer", "data", "smollm2-135m-instruct-q4_1.gguf")
TEXTS = [
    "Hello, how are you today? I'm fine — thanks!",
    "def f(x):\n    return x**2  # 你好, мир 😀",
    "The year 2024 had 366 days.\n\n\tTabs and   spaces, émigrés' naïveté.",
]
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def model():
    if not os.path.exists(PATH):
        if os.environ.get("CI"):
            pytest.fail(f"{PATH} is missing: CI runs tools/get_default_model.sh before the suite")
        pytest.skip(f"{PATH} is missing (run tools/get_default_model.sh)")
    return Model.load(PATH)


def test_loads_as_published(model):
    ck = model.checkpoint()
    assert model.config.architecture == "LlamaForCausalLM" and model.config.n_layers == 30
    assert ck.layers[0].wq.qtype == "q4_1" and ck.weights.tok_emb.qtype == "q8_0"
    assert "<|im_start|>" in model.chat_templates["default"]
    assert model.tokenizer.encode("<|im_end|>", allowed_special="all")[0] in ck.eos_ids


@pytest.mark.peer("llama_cpp")
def test_tokens_equal_llama_cpp(model):
    import llama_cpp

    ll = llama_cpp.Llama(PATH, vocab_only=True, verbose=False)
    for text in TEXTS + [model.apply_chat_template(MESSAGES), "ctrl \x04 and \x13 bytes"]:
        assert model.tokenizer.encode(text, disallowed_special=()) == ll.tokenize(text.encode(), add_bos=False)
        assert model.tokenizer.encode(text, allowed_special="all") == ll.tokenize(
            text.encode(), add_bos=False, special=True
        )


@pytest.mark.peer("llama_cpp")
def test_logits_agree_with_llama_cpp(model):
    import llama_cpp

    ids = model.tokenizer.encode(model.apply_chat_template(MESSAGES) + TEXTS[0], allowed_special="all")
    assert len(ids) >= 48
    ll = llama_cpp.Llama(PATH, n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    ll.eval(ids)
    want = np.array(ll.scores[: len(ids)])
    got = model.logits(ids)
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    top1 = (got.argmax(-1) == want.argmax(-1)).mean()
    assert cos.mean() >= 0.995 and top1 >= 0.9, (cos.mean(), cos.min(), top1)


def test_chat_answers_and_stops(model):
    answer = model.chat(MESSAGES, max_new_tokens=48, temperature=0)
    assert answer and "<|im_end|>" not in answer and "<|im_start|>" not in answer
