"""Rows/s of fastformer.ray.Generator over a Ray Data dataset with 1 and 2 actors, against a plain local loop
of Model.generate_batch over the same batches in this process.

    python -m benchmarks.bench_ray [--model PATH] [--rows 256] [--tokens 32] [--batch-size 32] [--runs 2]

Prompts are the first words of the lines of fastformer/data/heldout.txt; the model defaults to the embedded one.
Each actor gets num_cpus=1 and threads=1, as does the local loop, on a local cluster of 2 CPUs. Every run is
timed end to end (the model loads, then generates; for Ray also actors start and rows come back to the
driver), the cluster itself already up. Every Ray run's texts are checked against the local loop's (greedy)
before any rate is printed. Best of --runs, the three runs interleaved.
"""

import argparse
import os
import time

import fastformer
from fastformer.model import DEFAULT_MODEL
from fastformer.ray import Generator


def prompts(n):
    path = os.path.join(os.path.dirname(fastformer.__file__), "data", "heldout.txt")
    with open(path) as fh:
        lines = [line.split() for line in fh if line.strip()]
    return [" ".join(words[: 3 + i % 6]) for i, words in enumerate(lines[:n])]


def local_loop(path, texts, batch_size, sampling):
    """(seconds, outputs) of generate_batch over consecutive batches, one thread, model load included."""
    t0 = time.perf_counter()
    fastformer.set_num_threads(1)
    model = fastformer.Model.load(path)
    out = []
    for i in range(0, len(texts), batch_size):
        out += model.generate_batch(texts[i : i + batch_size], **sampling)
    return time.perf_counter() - t0, out


def ray_run(ray, path, texts, actors, batch_size, sampling):
    """(seconds, outputs in prompt order) of Generator over a dataset of texts with `actors` actors."""
    ds = ray.data.from_items([{"id": i, "prompt": p} for i, p in enumerate(texts)])
    kwargs = dict(model=path, threads=1, **sampling)
    t0 = time.perf_counter()
    rows = ds.map_batches(Generator, fn_constructor_kwargs=kwargs, compute=ray.data.ActorPoolStrategy(size=actors),
                          num_cpus=1, batch_size=batch_size).take_all()  # fmt: skip
    seconds = time.perf_counter() - t0
    return seconds, [r["generated_text"] for r in sorted(rows, key=lambda r: r["id"])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    texts = prompts(args.rows)
    sampling = dict(max_new_tokens=args.tokens)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    names = ["local loop (generate_batch)", "Ray Data, 1 actor", "Ray Data, 2 actors"]
    best = dict.fromkeys(names, float("inf"))
    try:
        for _ in range(args.runs):  # the three interleaved, so that each sees the machine's load alike
            seconds, want = local_loop(args.model, texts, args.batch_size, sampling)
            best[names[0]] = min(best[names[0]], seconds)
            for actors, name in ((1, names[1]), (2, names[2])):
                seconds, got = ray_run(ray, args.model, texts, actors, args.batch_size, sampling)
                if got != want:
                    raise SystemExit(f"{name}: the generated rows differ from the local loop's")
                best[name] = min(best[name], seconds)
    finally:
        ray.shutdown()
    base = best[names[0]]
    print(f"{os.path.basename(args.model)}, {len(texts)} rows, {args.tokens} new tokens max, batch size "
          f"{args.batch_size}, 1 thread per actor, best of {args.runs}; all rows equal the local loop's")  # fmt: skip
    print("| run | seconds | rows/s | vs local loop |")
    print("|---|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {len(texts) / seconds:.1f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
