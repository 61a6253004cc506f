"""Chat templates render exactly as transformers renders them; Model.apply_chat_template / chat / chat_stream on
models whose templates come from tokenizer_config.json, chat_template.jinja and GGUF metadata."""

import json
import os

import numpy as np
import pytest

from fastformer import Model
from fastformer.chat import ChatTemplateError, render_chat_template
from fastformer.model import KJV_MODEL

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system = '' %}{%- endif %}"
    "<|start_header_id|>system<|end_header_id|>\n\n{{ system }}<|eot_id|>"
    "{%- for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}"
    "<|eot_id|>{%- endfor %}{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{%- endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)
TOOLS = """{%- if tools %}
  {%- for t in tools %}
Tool: {{ t | tojson }}
  {%- endfor %}
{%- endif %}
{% for m in messages %}
  {% if m.role == 'system' %}{% continue %}{% endif %}
  <{{ m.role }}>{% generation %}{{ m.content }}{% endgeneration %}</{{ m.role }}>
  {% if loop.index > 3 %}{% break %}{% endif %}
{% endfor %}
{% if add_generation_prompt %}<assistant>{% endif %}"""
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else "
    "message['role'] %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "mistral": MISTRAL, "tools": TOOLS, "gemma": GEMMA}
MESSAGES = [
    {"role": "system", "content": "  You are terse. "},
    {"role": "user", "content": "Héllo — 你好 😀"},
    {"role": "assistant", "content": "Hi."},
    {"role": "user", "content": "Weather in Zürich?"},
]
TOOL_LIST = [
    {
        "type": "function",
        "function": {"name": "wetter", "description": "Wetter für einen Ort", "parameters": {"type": "object"}},
    }
]
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>"}


def _hf_render(template, messages, **kw):
    pytest.importorskip("transformers")
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, **kw)
    return rendered[0]


@pytest.mark.peer("transformers")
@pytest.mark.parametrize("name", list(TEMPLATES))
@pytest.mark.parametrize("gen", [True, False])
def test_render_equals_transformers(name, gen):
    msgs = MESSAGES[1:] if name == "mistral" else MESSAGES
    tools = TOOL_LIST if name == "tools" else None
    want = _hf_render(TEMPLATES[name], msgs, add_generation_prompt=gen, tools=tools, **SPECIAL)
    got = render_chat_template(TEMPLATES[name], msgs, add_generation_prompt=gen, tools=tools, **SPECIAL)
    assert got == want
    assert got  # every template renders something


def test_tojson_keeps_non_ascii_text():
    out = render_chat_template("{{ messages[0] | tojson }}", [{"role": "user", "content": "Zürich 你好"}])
    assert json.loads(out) == {"role": "user", "content": "Zürich 你好"} and "Zürich 你好" in out


def test_raise_exception_becomes_a_clear_error():
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        render_chat_template(MISTRAL, [MESSAGES[2]], **SPECIAL)


def test_strftime_now_is_available():
    assert render_chat_template("{{ strftime_now('%Y') }}", []).isdigit()


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(Exception, match="(?i)unsafe|security|not safely"):
        render_chat_template("{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}", [])
    with pytest.raises(ChatTemplateError):
        render_chat_template("{% for m in messages %}", [])  # does not compile


def test_bad_messages_raise_type_errors():
    with pytest.raises(TypeError, match="messages"):
        render_chat_template(CHATML, "hello")
    with pytest.raises(TypeError, match=r"messages\[0\]"):
        render_chat_template(CHATML, ["hello"])
    with pytest.raises(TypeError, match="plain data"):
        render_chat_template(CHATML, [{"role": "user", "content": object()}])


# ---- on a model ----


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    """The KJV model (a GGUF file without a chat template) and a copy of it written by save_gguf."""
    root = tmp_path_factory.mktemp("chat")
    model = Model.load(KJV_MODEL)
    path = str(root / "chat.gguf")
    model.save_gguf(path)
    return model, path


def _with_template(src_path, dst_path, template):
    """A copy of a GGUF file with `template` as its tokenizer.chat_template."""
    from fastformer.gguf_write import write_gguf

    ck = Model.load(src_path).checkpoint()
    ck.chat_templates["default"] = template
    write_gguf(ck, dst_path)
    return dst_path


def test_model_without_template_raises(chat_model):
    model, _ = chat_model
    assert not model.chat_templates
    with pytest.raises(ChatTemplateError, match="no chat template"):
        model.apply_chat_template(MESSAGES)


def test_gguf_template_round_trip_and_chat(chat_model, tmp_path):
    _, src = chat_model
    path = _with_template(src, str(tmp_path / "t.gguf"), CHATML)
    model = Model.load(path)
    assert model.chat_templates["default"] == CHATML
    text = model.apply_chat_template(MESSAGES)
    assert text == render_chat_template(CHATML, MESSAGES, add_generation_prompt=True)
    # chat is generate on the template's text, encoded without an added BOS
    ids = model.tokenizer.encode(text, allowed_special="all")
    want = model.generate_ids(ids, max_new_tokens=12)
    want_text = model.tokenizer.decode([t for t in want if t not in model.checkpoint().eos_ids])
    assert model.chat(MESSAGES, max_new_tokens=12) == want_text
    assert "".join(model.chat_stream(MESSAGES, max_new_tokens=12)) == want_text


def test_hf_directory_templates(tmp_path):
    """chat_template.jinja wins over tokenizer_config.json's; named templates are selectable; tool_use with tools."""
    from fastformer.chat import read_hf_templates

    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps(
            {"chat_template": [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": TOOLS}]}
        )
    )
    assert read_hf_templates(str(tmp_path)) == {"default": CHATML, "tool_use": TOOLS}
    (tmp_path / "chat_template.jinja").write_text(GEMMA)
    assert read_hf_templates(str(tmp_path))["default"] == GEMMA
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": 3}))
    with pytest.raises(ValueError, match="chat_template must be"):
        read_hf_templates(str(tmp_path))


@pytest.mark.peer("tokenizers")
def test_no_double_bos(chat_model, tmp_path):
    """A template that writes bos_token itself gives a prompt with one BOS at the front."""
    pytest.importorskip("tokenizers")
    from dataclasses import replace

    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    from fastformer import Tokenizer

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    hf.train_from_iterator(["Hello there, how are you? " * 3, "Weather in Zürich, 你好 😀"] * 50, trainer)
    hf.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert tok.bos_id == 0 and tok.add_bos
    _, src = chat_model
    ck = Model.load(src).checkpoint()
    model = Model(replace(ck, tokenizer=tok, chat_templates={"default": LLAMA3}))
    ids = model._chat_ids(MESSAGES, {})
    assert ids[0] == tok.bos_id and ids.count(tok.bos_id) == 1
    assert tok.encode_prompt("hi")[0] == tok.bos_id  # a plain prompt gets its BOS from the tokenizer
    assert np.all(np.asarray(ids) < model.config.vocab_size)
    assert os.path.exists(src)
