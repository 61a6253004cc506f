"""Aggregate decode tokens/s of the batched engine with 1..16 concurrent sequences, against one sequence alone
and against the same number of threads each calling Model.generate on the shared model (no batching).

    python -m benchmarks.bench_engine [--shape 1.1b] [--qtype q4_0] [--threads 2] [--clients 1 4 8 16]

The model is a random-weight Llama of the given shape (benchmarks/bench_model.py builds and caches the GGUF
with llama.cpp's converter and quantizer). Each client sends a distinct 16-token prompt and decodes --tokens
tokens (EOS ignored); decode tokens/s counts the tokens after every sequence has its first one, over the time
from then to the last. Best of --runs.
"""

import argparse
import threading
import time

import numpy as np

import fastformer
from benchmarks.bench_model import make_gguf
from fastformer.engine import Engine, SamplingParams


def engine_rate(model, prompts, n_tokens):
    """(aggregate decode tokens/s, time to first token of the last sequence) with every prompt at once."""
    times = [[] for _ in prompts]  # when each token of each sequence arrived (list.append is atomic)

    def listener(i):
        def on(ev):
            if ev.token_id is not None:
                times[i].append(time.perf_counter())

        return on

    with Engine(model, parallel=len(prompts), max_queue=0, prefix_cache=0) as engine:
        t0 = time.perf_counter()
        reqs = [
            engine.submit(p, SamplingParams(max_tokens=n_tokens, ignore_eos=True), on_event=listener(i))
            for i, p in enumerate(prompts)
        ]
        for r in reqs:
            r.result()
    start = max(t[0] for t in times)
    # the tokens made after every sequence had its first
    after = sum(1 for t in times for x in t if x > start)
    span = max(t[-1] for t in times) - start
    return after / span if span > 0 else float("nan"), start - t0


def threads_rate(model, prompts, n_tokens):
    """Aggregate tokens/s of one Python thread per prompt, each calling generate_ids on the shared model."""
    out = [None] * len(prompts)

    def run(i):
        out[i] = model.generate_ids(prompts[i], max_new_tokens=n_tokens, ignore_eos=True)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(len(o) for o in out) / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="1.1b", choices=["110m", "1.1b"])
    ap.add_argument("--qtype", default="q4_0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    fastformer.set_num_threads(args.threads)
    path = make_gguf(args.shape, args.qtype)
    model = fastformer.Model.load(path)
    rng = np.random.default_rng(0)
    vocab = model.config.vocab_size
    rows = []
    base = None
    for n in args.clients:
        prompts = [list(map(int, rng.integers(3, vocab, 16))) for _ in range(n)]
        best, ttft = 0.0, float("inf")
        for _ in range(args.runs):
            r, t = engine_rate(model, prompts, args.tokens)
            best, ttft = max(best, r), min(ttft, t)
        thr = max(threads_rate(model, prompts, args.tokens // 2) for _ in range(args.runs)) if n > 1 else None
        base = best if n == 1 else base
        rows.append((n, best, ttft, thr))
        print(f"clients {n:2d}: engine {best:7.1f} tok/s (last first token after {ttft * 1000:.0f} ms)", flush=True)
    print()
    print(f"{args.shape} {args.qtype}, {args.threads} threads, {args.tokens} tokens per sequence, best of {args.runs}")
    print("| sequences | engine tok/s | vs 1 sequence | threads x generate tok/s | engine vs threads |")
    print("|---|---|---|---|---|")
    for n, r, _, thr in rows:
        ratio = f"{r / base:.2f}x" if base else "-"
        t = f"{thr:.1f}" if thr else "-"
        vs = f"{r / thr:.2f}x" if thr else "-"
        print(f"| {n} | {r:.1f} | {ratio} | {t} | {vs} |")


if __name__ == "__main__":
    main()
