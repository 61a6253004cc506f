"""`fastformer chat`: multi-turn over stdin, /reset and /exit, Ctrl-C stops an answer and the session goes on,
old turns drop when the context fills, a model without a template is refused with a message."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import child_env

from fastformer import Model
from fastformer.gguf_write import write_gguf
from fastformer.model import KJV_MODEL

pytestmark = pytest.mark.subprocess

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


HERE = os.path.dirname(os.path.abspath(__file__))  # children start here: `python -m` puts the cwd first on sys.path


def _env():
    return child_env(PYTHONUNBUFFERED="1")


@pytest.fixture(scope="module")
def chat_gguf(tmp_path_factory):
    ck = Model.load(KJV_MODEL).checkpoint()
    ck.chat_templates["default"] = CHATML
    path = str(tmp_path_factory.mktemp("cli_chat") / "chat.gguf")
    write_gguf(ck, path)
    return path


def _chat(path, stdin, *extra, timeout=120):
    cmd = [sys.executable, "-m", "fastformer", "chat", "--model", path, "--temperature", "0", *extra]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=HERE)


def test_turns_reset_and_exit(chat_gguf):
    model = Model.load(chat_gguf)
    first = model.chat([{"role": "user", "content": "In the beginning"}], max_new_tokens=8, temperature=0)
    assert "\n" not in first
    stdin = "In the beginning\n/reset\nIn the beginning\n/exit\nnever read\n"
    r = _chat(chat_gguf, stdin, "--max-new-tokens", "8", "--repetition-penalty", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # the same first turn before and after /reset: the same greedy answer as Model.chat
    assert lines == [first, "[conversation cleared]", first]


def test_context_full_drops_the_oldest_turns(chat_gguf):
    """With a context of 256 positions, the oldest turns go first (a question with its answer), the system
    message stays; a message that cannot fit alone is refused."""
    from fastformer.cli import _fit_turns

    model = Model.load(chat_gguf, max_context=256)
    system = [{"role": "system", "content": "Answer briefly."}]
    turns = []
    for i in range(6):
        turns += [
            {"role": "user", "content": f"let there be light {i}"},
            {"role": "assistant", "content": "and there was"},
        ]
    turns.append({"role": "user", "content": "and the evening"})
    msgs = _fit_turns(model, system, turns, 16)
    assert msgs[0] == system[0] and msgs[-1] == turns[-1] and msgs[1]["role"] == "user"
    assert 2 < len(msgs) < len(system + turns)
    assert msgs[1:] == turns[len(turns) - len(msgs) + 1 :]  # a suffix of whole turns
    assert len(model._chat_ids(msgs, {})) + 16 <= 256
    assert _fit_turns(model, system, [{"role": "user", "content": "light " * 200}], 16) is None
    r = _chat(chat_gguf, "".join(f"let there be light {i}\n" for i in range(4)) + "/exit\n", "--max-new-tokens", "8")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr


def test_ctrl_c_stops_the_answer_not_the_session(chat_gguf):
    cmd = [sys.executable, "-m", "fastformer", "chat", "--model", chat_gguf, "--max-new-tokens", "400", "--seed", "1"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_env(), cwd=HERE)  # fmt: skip
    try:
        p.stdin.write("And it came to pass\n")
        p.stdin.flush()
        assert p.stdout.read(1)  # the answer has started streaming
        time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        p.stdin.write("/exit\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert "[stopped]" in out


def test_a_model_without_template_is_refused():
    cmd = [sys.executable, "-m", "fastformer", "chat", "--model", KJV_MODEL]
    r = subprocess.run(cmd, input="hi\n", capture_output=True, text=True, timeout=120, env=_env(), cwd=HERE)
    assert r.returncode == 2 and "no chat template" in r.stderr and "Traceback" not in r.stderr
