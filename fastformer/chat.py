"""Chat templates: the Jinja2 templates model files carry, rendered as transformers renders them.

A template comes from a GGUF file's `tokenizer.chat_template` (and `tokenizer.chat_template.<name>`) or a
Hugging Face directory's `chat_template.jinja` / `tokenizer_config.json` `chat_template` (a string or a list of
named templates). Templates are untrusted code: they run in Jinja2's immutable sandbox with what
transformers gives them (`trim_blocks`, `lstrip_blocks`, loop controls, `{% generation %}`, `raise_exception`,
`strftime_now`, a `tojson` that keeps non-ASCII text) and nothing else.

>>> render_chat_template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
...                      [{"role": "user", "content": "hi"}])
'<user>hi'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastformer.errors import FormatError

__all__ = ["ChatTemplateError", "render_chat_template", "read_hf_templates", "read_gguf_templates"]


class ChatTemplateError(ValueError):
    """A chat template is missing, fails to compile, or raised an error while rendering."""


@lru_cache(maxsize=16)
def _compile(template: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # {% generation %}...{% endgeneration %} marks assistant text for training masks; rendering keeps the body
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, "jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise ChatTemplateError(f"chat template does not compile (line {e.lineno}): {e.message}") from None


def _plain(value: Any, where: str) -> Any:
    """Messages and tools as plain JSON-like data (dicts, lists, str, numbers, bool, None): all a template sees."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [_plain(v, where) for v in value]
    raise TypeError(f"{where}: a chat template sees plain data only, got {type(value).__name__}")


def render_chat_template(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = False,
    tools: Sequence[Mapping[str, Any]] | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    **variables: Any,
) -> str:
    """The text `template` renders for `messages` (a list of {"role", "content", ...} dicts); `variables` such
    as bos_token / eos_token are visible to the template as transformers passes them."""
    import jinja2

    if not isinstance(template, str) or not template:
        raise ChatTemplateError("the chat template must be a non-empty string")
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content', got {type(m).__name__}")
    data = dict(
        messages=_plain(list(messages), "messages"),
        tools=_plain(tools, "tools"),
        documents=_plain(documents, "documents"),
        add_generation_prompt=bool(add_generation_prompt),
        **{k: _plain(v, k) for k, v in variables.items()},
    )
    try:
        return _compile(template).render(**data)
    except ChatTemplateError:
        raise
    except jinja2.exceptions.TemplateError as e:  # raise_exception() and template errors: the template's words
        raise ChatTemplateError(f"chat template: {e}") from None


def read_hf_templates(directory: str) -> dict[str, str]:
    """{name: template} of a model directory: chat_template.jinja (the default), else tokenizer_config.json's
    chat_template (one string, or a list of {"name", "template"})."""
    out: dict[str, str] = {}
    cfg_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(cfg_path):
        try:
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise FormatError(f"{cfg_path}: not valid JSON ({e})") from None
        t = cfg.get("chat_template") if isinstance(cfg, dict) else None
        if isinstance(t, str):
            out["default"] = t
        elif isinstance(t, list):
            for item in t:
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("name"), str)
                    and isinstance(item.get("template"), str)
                ):
                    raise FormatError(f"{cfg_path}: chat_template entries must be {{'name': str, 'template': str}}")
                out[item["name"]] = item["template"]
        elif t is not None:
            raise FormatError(f"{cfg_path}: chat_template must be a string or a list, got {type(t).__name__}")
    jinja = os.path.join(directory, "chat_template.jinja")
    if os.path.isfile(jinja):
        with open(jinja, encoding="utf-8") as f:
            out["default"] = f.read()
    return out


def read_gguf_templates(metadata: Mapping[str, Any], where: str) -> dict[str, str]:
    """{name: template} from tokenizer.chat_template ("default") and tokenizer.chat_template.<name> keys."""
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template."):
            if not isinstance(value, str):
                raise FormatError(f"{where}: {key} must be a string, got {type(value).__name__}")
            out["default" if key == "tokenizer.chat_template" else key[len("tokenizer.chat_template.") :]] = value
    return out
