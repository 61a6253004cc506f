"""`fastformer serve` under load: 200 requests from 16 clients (the openai client and raw httpx), with clients
that disconnect mid-stream and malformed bodies mixed in. The server stays up, its resident memory settles
from one round to the next, and every completed request equals the same request sent alone afterwards."""

import os
import random
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from helpers import child_env

from fastformer.model import KJV_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

KEY = "load-test-key"
KJV_NAME = os.path.basename(KJV_MODEL)
CLIENTS, REQUESTS = 16, 200
PROMPTS = ["In the beginning", "And the LORD said unto Moses", "Blessed are", "Thou shalt", "And it came to pass",
           "For God so loved", "The LORD is my shepherd", "Then"]  # fmt: skip
MALFORMED = [
    b"{not json",
    b"",
    b"[]",
    b'{"prompt": "In", "max_tokens": -5}',
    b'{"prompt": "In", "temperature": "warm"}',
    b'{"prompt": "In", "n": 4}',
    b'{"prompt": "In", "tools": []}',
    b'{"prompt": [1, 99999999]}',
    b'{"prompt": "In", "unknown_field": 1}',
    b'{"prompt": "' + b" and" * 600 + b'"}',  # beyond the 512-token context
    b'{"messages": [{"role": "user"}]}',
    b'{"prompt": "In", "max_tokens": NaN}',
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `fastformer serve` child process on the KJV fixture model: (process, base url)."""
    cwd = tmp_path_factory.mktemp("serve")
    port = free_port()
    argv = ["serve", "--model", KJV_MODEL, "--port", str(port), "--api-key", KEY, "--parallel", "8"]
    argv += ["--max-queue", "64", "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "fastformer", *argv], cwd=cwd, env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < end, "the server did not become ready"
        time.sleep(0.05)
    yield proc, url
    proc.terminate()
    proc.wait(30)


def request_spec(rng):
    """One random request: (kind, options)."""
    # (the default model has no chat template: chat is tested in test_server.py, with one)
    kind = rng.choices(["completion", "disconnect", "malformed"], weights=[70, 15, 15])[0]
    if kind == "malformed":
        return kind, {"body": rng.choice(MALFORMED), "path": rng.choice(["/v1/completions", "/v1/chat/completions"])}
    opts = {"max_tokens": rng.randint(1, 24), "temperature": 0, "stream": rng.random() < 0.5}
    if rng.random() < 0.3:
        opts["stop"] = rng.choice([",", " the", ["LORD", "."]])
    opts["prompt"] = rng.choice(PROMPTS)
    if rng.random() < 0.2:  # several prompts in one request
        opts["prompt"] = rng.sample(PROMPTS, 3)
    return kind, opts


def run_one(client, url, kind, opts, rng):
    """The text and finish reason of a completed request, None for the others (checked on the way)."""
    if kind == "malformed":
        r = httpx.post(url + opts["path"], content=opts["body"], headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 400, r.text
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        return None
    if kind == "disconnect":
        stream = client.completions.create(model=KJV_NAME, prompt=opts["prompt"], max_tokens=200, stream=True)
        for i, _ in enumerate(stream):
            if i >= rng.randint(0, 3):
                break
        stream.close()
        return None
    opts = dict(opts)
    stream = opts.pop("stream")
    r = client.completions.create(model=KJV_NAME, stream=stream, **opts)
    if not stream:
        return [(c.text, c.finish_reason) for c in r.choices]
    n = len(opts["prompt"]) if isinstance(opts["prompt"], list) else 1
    texts, reasons = [""] * n, [None] * n
    for chunk in r:
        for c in chunk.choices:
            texts[c.index] += c.text
            reasons[c.index] = c.finish_reason or reasons[c.index]
    return list(zip(texts, reasons))


def load_round(client, url, seed):
    """REQUESTS random requests from CLIENTS threads: [(kind, opts, result)] of the completed ones."""
    rng = random.Random(seed)
    specs = [request_spec(rng) for _ in range(REQUESTS)]
    done, errors, lock = [], [], threading.Lock()

    def worker(k):
        r = random.Random(seed * 100 + k)
        for kind, opts in specs[k::CLIENTS]:
            try:
                out = run_one(client, url, kind, opts, r)
            except Exception as e:  # collected, so one failure does not hang the round
                with lock:
                    errors.append(f"{kind} {opts}: {type(e).__name__}: {e}")
                continue
            if out is not None:
                with lock:
                    done.append((kind, opts, out))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors[:5]
    return done


def test_load(server):
    proc, url = server
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    first = load_round(client, url, seed=1)
    rss1 = rss_kib(proc.pid)
    second = load_round(client, url, seed=2)
    rss2 = rss_kib(proc.pid)
    assert proc.poll() is None and httpx.get(url + "/health").status_code == 200
    # memory settles: the second round, as big as the first, leaves the resident size within a few MiB
    assert rss2 - rss1 < 16 * 1024, (rss1, rss2)
    # every completed request equals the same request sent alone
    assert len(first) + len(second) > REQUESTS
    alone = {}
    for kind, opts, got in first + second:
        key = repr((kind, sorted(opts.items())))
        if key not in alone:
            alone[key] = run_one(client, url, kind, dict(opts, stream=False), None)
        assert got == alone[key], (kind, opts)
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert 'reason="cancelled"' in text and 'code="500"' not in text
    assert "fastformer_busy_slots 0" in text and "fastformer_queue_depth 0" in text
