"""Serving throughput: `fastformer serve` against llama-cpp-python's server on the same GGUF file.

    python -m benchmarks.bench_server --model fastformer/data/smollm2-135m-instruct-q4_1.gguf
    python -m benchmarks.bench_server --model m.gguf --clients 1 4 8 16 --requests 4 --max-tokens 48 --runs 2

Each server runs in its own child process with the same thread count. At each level, N clients (threads,
one HTTP connection each) send --requests streaming /v1/completions requests one after another: greedy,
--max-tokens new tokens with the end-of-generation tokens held off (fastformer: ignore_eos; llama.cpp:
logit_bias -100 on them), so both engines generate exactly the same number of tokens. Reported per level:

    tokens/s   generated tokens of all requests / wall time from the first request sent to the last finished
    TTFT       time from sending a request to its first generated text (queueing included), p50 and p95

Best of --runs (by tokens/s), the servers taking turns in each run. Before timing, the fastformer server's
greedy text must equal Model.generate on the same prompt. fastformer decodes up to --clients slots at once
(continuous batching); llama-cpp-python's server runs one request at a time (interrupt_requests off, so a new
request waits instead of cutting the running one). Without llama-cpp-python and its server extra
(pip install "llama-cpp-python[server]"), its column is skipped with a note.
"""

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import numpy as np

import fastformer

TOPICS = ["a lighthouse keeper", "the first snow", "a lost key", "a river town", "an old clock", "a quiet library",
          "a mountain road", "a small robot", "a summer storm", "a night market", "a green door"]  # fmt: skip


def prompt(i):
    """Distinct prompts (no two requests share more than a short prefix)."""
    return f"Story {i}: write a few sentences about {TOPICS[i % len(TOPICS)]}, seen on day {i * 7 % 31 + 1}.\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server child process on 127.0.0.1; `body(prompt, max_tokens)` is its request."""

    def __init__(self, name, argv, ready_path, extra_body, log):
        self.name, self.extra_body = name, extra_body
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir())
        end = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"{name} server exited:\n{self.log.read().decode(errors='replace')[-3000:]}")
            try:
                if httpx.get(self.url + ready_path).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > end:
                raise SystemExit(f"{name} server did not become ready in 300 s")
            time.sleep(0.1)
        log(f"{name} server ready on port {self.port}")

    def body(self, text, max_tokens, stream=True):
        return {"prompt": text, "max_tokens": max_tokens, "temperature": 0, "stream": stream, **self.extra_body}

    def complete(self, text, max_tokens):
        r = httpx.post(self.url + "/v1/completions", json=self.body(text, max_tokens, stream=False), timeout=600)
        r.raise_for_status()
        return r.json()["choices"][0]["text"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def one_request(http, server, text, max_tokens):
    """(TTFT s, generated tokens) of one streaming request."""
    t0 = time.perf_counter()
    ttft, reason, pieces = None, None, 0
    with http.stream("POST", server.url + "/v1/completions", json=server.body(text, max_tokens)) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for c in json.loads(line[6:]).get("choices", []):
                if c.get("text"):
                    pieces += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                reason = c.get("finish_reason") or reason
    if reason != "length" or ttft is None:
        raise SystemExit(f"{server.name}: a request ended with {reason!r} after {pieces} pieces, not 'length'")
    return ttft, max_tokens


def level(server, clients, requests, max_tokens, start):
    """tokens/s and TTFTs of `clients` clients each sending `requests` requests."""
    ttfts, tokens, errors, lock = [], [0], [], threading.Lock()

    def client(k):
        with httpx.Client(timeout=600) as http:
            for j in range(requests):
                try:
                    t, n = one_request(http, server, prompt(start + k * requests + j), max_tokens)
                except BaseException as e:
                    errors.append(e)
                    return
                with lock:
                    ttfts.append(t)
                    tokens[0] += n

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{server.name} at {clients} clients: {errors[0]}")
    return {"tokens_per_s": tokens[0] / wall, "ttft_p50": float(np.percentile(ttfts, 50)),
            "ttft_p95": float(np.percentile(ttfts, 95)), "requests": len(ttfts)}  # fmt: skip


def llama_cpp_missing():
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    for mod in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(mod) is None:
            return f'llama-cpp-python\'s server needs {mod}: pip install "llama-cpp-python[server]"'
    return None


def eog_ids(model):
    """The end-of-generation ids llama.cpp's requests hold off (fastformer's ignore_eos holds off the same)."""
    eos_id = getattr(model.tokenizer, "eos_id", None)
    return sorted(set(model._eos) | ({eos_id} if eos_id is not None else set()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a GGUF file both servers load")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--requests", type=int, default=4, help="requests each client sends one after another")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # so the servers are stopped on the way out

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    model = fastformer.Model.load(args.model)
    eog = eog_ids(model)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastformer.__file__)))
    env_path = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path  # the children import this fastformer
    model_path = os.path.abspath(args.model)
    servers = [
        Server(
            "fastformer",
            [sys.executable, "-m", "fastformer", "serve", "--model", model_path, "--port", "{port}",
             "--parallel", str(max(args.clients)), "--max-queue", "256", "--threads", str(args.threads)],
            "/health",
            {"ignore_eos": True},
            log,
        )
    ]  # fmt: skip
    skipped = llama_cpp_missing()
    if skipped is None:
        servers.append(
            Server(
                "llama.cpp",
                [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
                 "--port", "{port}", "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
                 "--n_ctx", str(min(model.config.max_context, 2048)), "--interrupt_requests", "False"],
                "/v1/models",
                {"logit_bias": {str(i): -100 for i in eog}},
                log,
            )
        )  # fmt: skip
    try:
        # check first: the served greedy text is Model.generate's
        text = prompt(0)
        want = model.generate(text, max_new_tokens=args.max_tokens, ignore_eos=True)
        got = servers[0].complete(text, args.max_tokens)
        if got != want:
            raise SystemExit(f"fastformer serve's greedy text differs from Model.generate:\n{got!r}\n{want!r}")
        for s in servers[1:]:
            other = s.complete(text, args.max_tokens)
            same = len(os.path.commonprefix([other, want]))
            log(f"{s.name} greedy text agrees with fastformer's on its first {same} of {len(want)} characters")
        for s in servers:  # warm up: one streamed request each, not timed
            level(s, 1, 1, args.max_tokens, 0)
        best = {}
        start = 1
        for run in range(args.runs):
            for n in args.clients:
                for s in servers:
                    row = level(s, n, args.requests, args.max_tokens, start)
                    start += n * args.requests  # fresh prompts for every level and engine
                    log(f"run {run + 1} {s.name:10s} clients {n:2d}: {row['tokens_per_s']:7.1f} tok/s, "
                        f"TTFT p50 {row['ttft_p50'] * 1e3:7.0f} ms p95 {row['ttft_p95'] * 1e3:7.0f} ms")  # fmt: skip
                    key = (s.name, n)
                    if key not in best or row["tokens_per_s"] > best[key]["tokens_per_s"]:
                        best[key] = row
    finally:
        for s in servers:
            s.stop()

    print(f"fastformer {fastformer.__version__}, {os.path.basename(args.model)}, threads {args.threads}, "
          f"{args.requests} requests per client, {args.max_tokens} new tokens each, best of {args.runs}")  # fmt: skip
    print()
    print("| clients | engine | tokens/s | TTFT p50 (ms) | TTFT p95 (ms) | fastformer tokens/s x |")
    print("|---:|---|---:|---:|---:|---:|")
    rows = []
    for n in args.clients:
        ff = best[("fastformer", n)]["tokens_per_s"]
        for s in servers:
            r = best[(s.name, n)]
            rows.append({"clients": n, "engine": s.name, **r})
            print(f"| {n} | {s.name} | {r['tokens_per_s']:.1f} | {r['ttft_p50'] * 1e3:.0f} | "
                  f"{r['ttft_p95'] * 1e3:.0f} | {ff / r['tokens_per_s']:.2f} |")  # fmt: skip
    if skipped:
        print(f"\nllama.cpp skipped: {skipped}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": os.path.basename(args.model), "threads": args.threads, "rows": rows,
                       "skipped": skipped}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
