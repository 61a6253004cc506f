"""Prefill and decode tokens/s after long prompts, per kv cache type (f32, f16, q8_0), against llama-cpp-python
on the same GGUF (its default f16 cache), and decode at 4k / 8k context with the bytes it reads.

Table 1 (llama.cpp as the peer): bench_model's random-weight 110M and 1.1B Llama GGUF files (Q4_0 by
default), prompts of 128 and 900 tokens (110M, 1024 positions) or 128 and 1900 (1.1B, 2048 positions).
prefill = prompt tokens / time to the first generated token; decode = n / time of the n tokens after it, both
phases timed within one generation. Best of --runs, the engines taking turns in every run so they see the same
load. Before timing, each fastformer cache type's next-token logits must agree with llama.cpp's (cosine > 0.99).

Table 2 (fastformer alone): a random-weight Llama of the 110M shape with max_position_embeddings 8192,
quantized to Q4_0 at load; one session per cache type is filled to 4096 and then 8192 - n positions, and n
decode steps are timed at each. KV bytes read per token = positions x kv bytes per position (every layer's
keys and values); weights = bytes of the matrices a step reads; the bandwidth share is (kv + weights) x
tokens/s over --bandwidth (GB/s; default: measured by fastformer.read_bandwidth at --threads).

    python -m benchmarks.bench_long_context --threads 2
    python -m benchmarks.bench_long_context --shapes 110m --prompts 900 --no-long
    python -m benchmarks.bench_long_context --threads 1 --cpu-time   # on a machine other work shares
"""

import argparse
import time

import numpy as np

import fastformer
from benchmarks.bench_model import SHAPE_110M, make_checkpoint, make_gguf

KV = ["f32", "f16", "q8_0"]
PROMPTS = {"110m": [128, 900], "1.1b": [128, 1900]}


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def llama_cpp_engine(gguf, threads, n_ctx, ids):
    """(generate(n), next-token logits of ids) of llama-cpp-python, or None if it is not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads,
                          verbose=False)  # fmt: skip

    def gen(n, clock):
        llm.reset()
        return phases(llm.generate(ids, top_k=1, temp=0.0, reset=True), n, clock)

    llm.reset()
    llm.eval(ids)
    last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return gen, np.ctypeslib.as_array(last, shape=(llm.n_vocab(),)).copy()


def phases(tokens, n_new, clock):
    """(time to the first token, time of the n_new tokens after it) of a token iterator: prefill and decode
    timed as separate phases of one run."""
    t0 = clock()
    it = iter(tokens)
    next(it)
    t1 = clock()
    for i, _ in enumerate(it):
        if i + 1 == n_new:
            break
    return t1 - t0, clock() - t1


def timed(gens, n_new, runs, clock):
    """name -> (best prefill time, best time of n_new decoded tokens), the engines taking turns in every run."""
    best = {name: [float("inf"), float("inf")] for name in gens}
    for _ in range(runs):
        for name, gen in gens.items():
            for slot, t in enumerate(gen(n_new, clock)):
                best[name][slot] = min(best[name][slot], t)
    return best


def peer_table(args):
    print("| model | prompt | engine | kv cache | prefill tok/s | decode tok/s | prefill x llama.cpp "
          "| decode x llama.cpp |")  # fmt: skip
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for shape in args.shapes:
        path = make_gguf(shape, args.quant)
        for n_prompt in args.prompts or PROMPTS[shape]:
            ids = np.random.default_rng(1).integers(3, 32000, n_prompt).tolist()
            gens = {}
            peer = llama_cpp_engine(path, args.threads, n_prompt + args.new_tokens + 8, ids)
            for kv in KV:
                model = fastformer.Model.load(path, kv_dtype=kv)
                logits = model.logits(ids)[-1]
                if peer is not None:
                    cos = cosine(logits, peer[1])
                    assert cos > 0.99, f"{shape} {kv}: fastformer disagrees with llama.cpp (cosine {cos:.4f})"
                gens[kv] = lambda n, clock, m=model, ids=ids: phases(
                    m.iter_ids(ids, max_new_tokens=n + 1, ignore_eos=True), n, clock
                )
            if peer is not None:
                gens["llama.cpp"] = peer[0]
            for gen in gens.values():
                gen(2, args.clock)  # warm up
            best = timed(gens, args.new_tokens, args.runs, args.clock)
            rate = {k: (n_prompt / tp, args.new_tokens / td) for k, (tp, td) in best.items()}
            lp, ld = rate.get("llama.cpp", (None, None))
            for name, (p, d) in rate.items():
                engine, kv = ("llama.cpp", "f16") if name == "llama.cpp" else ("fastformer", name)
                px = f"{p / lp:.2f}" if lp else "-"
                dx = f"{d / ld:.2f}" if ld else "-"
                print(f"| {shape} {args.quant} | {n_prompt} | {engine} | {kv} | {p:.1f} | {d:.1f} | {px} | {dx} |",
                      flush=True)  # fmt: skip
            if peer is None:
                print(f"| {shape} {args.quant} | {n_prompt} | llama.cpp | skipped (not installed) | | | | |")


def weight_bytes(model):
    """Bytes of the matrices one decode step reads (every layer's, and the head)."""
    w = model.checkpoint()
    total = 0
    for a in [w.weights.lm_head] + [getattr(lw, f) for lw in w.layers for f in lw.__dataclass_fields__]:
        a = getattr(a, "data", a)
        if isinstance(a, np.ndarray) and a.ndim == 2:
            total += a.nbytes
    return total


def long_table(args):
    shape = dict(SHAPE_110M, max_position_embeddings=8192)
    path = make_checkpoint("llama110m-8k", shape)
    n = args.new_tokens
    print(f"\n110M-shape Llama, 8192 positions, Q4_0 at load, {args.threads} thread(s), {n} decode steps timed "
          f"at each context; bandwidth limit {args.bandwidth} GB/s\n")  # fmt: skip
    print("| kv cache | context | decode tok/s | kv MB read / token | weights MB / token | GB/s | share of limit |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ids = np.random.default_rng(2).integers(3, 32000, 8192).tolist()
    for kv in KV:
        model = fastformer.Model.load(path, quantize="q4_0", kv_dtype=kv)
        wb, per = weight_bytes(model), model.kv_bytes_per_token()
        sess = model._session(8192)
        done = 0
        for ctx in (4096, 8192 - n):
            model._prefill(sess, ids[done:ctx]) if ctx > done else None
            t0 = args.clock()
            for t in ids[ctx : ctx + n]:
                sess.forward([t])
            rate = n / (args.clock() - t0)
            done = ctx + n
            kvb = (ctx + n / 2) * per  # positions read, on average over the timed steps
            gbs = (kvb + wb) * rate / 1e9
            print(f"| {kv} | {ctx} | {rate:.1f} | {kvb / 1e6:.1f} | {wb / 1e6:.1f} | {gbs:.1f} "
                  f"| {gbs / args.bandwidth:.0%} |", flush=True)  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--shapes", nargs="+", default=["110m", "1.1b"], choices=sorted(PROMPTS))
    ap.add_argument("--prompts", type=int, nargs="+", help="prompt lengths (default: 128 and the long one per shape)")
    ap.add_argument("--quant", default="q4_0")
    ap.add_argument("--bandwidth", type=float, help="memory bandwidth limit, GB/s (default: measured)")
    ap.add_argument("--no-long", action="store_true", help="skip the 4k / 8k decode table")
    ap.add_argument("--cpu-time", action="store_true", help="time by the process's cpu time (with --threads 1: "
                    "what a run on an idle core takes, on a machine other work shares)")  # fmt: skip
    args = ap.parse_args(argv)
    args.clock = time.process_time if args.cpu_time else time.perf_counter
    fastformer.set_num_threads(args.threads)
    if args.bandwidth is None:
        args.bandwidth = round(fastformer.read_bandwidth(), 1)
    print(f"fastformer {fastformer.cpu_info()['isa']}, {args.threads} thread(s), decode {args.new_tokens} tokens, "
          f"best of {args.runs}, {'cpu' if args.cpu_time else 'wall-clock'} time\n")  # fmt: skip
    peer_table(args)
    if not args.no_long:
        long_table(args)


if __name__ == "__main__":
    main()
