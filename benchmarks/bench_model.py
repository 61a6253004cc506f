"""End-to-end prefill and decode tokens/s, peak memory and load time: fastformer against transformers and
llama-cpp-python on random-weight Llama checkpoints of two shapes,

    110m  stories110M: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000
    1.1b  TinyLlama-1.1B: dim 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000

Speed (every engine, greedy): prefill = time of a 1-token generation from a 128-token prompt;
decode = (time of a 129-token generation - prefill) / 128. Best of --runs, the engines taking turns in each
run, so both are measured under the same load. Results are checked first: the engines' next-token logits
on the prompt must agree (cosine) before anything is timed.

Memory and load time (GGUF table): each engine loads the file in a fresh child process at 1 thread and
reports its load time (constructor call to a ready model), its RSS before loading (the interpreter and
imports), and its peak RSS (VmHWM) after the load and after the prompt plus 8 decoded tokens; mmap'd file
pages that were touched count as resident, for both engines.

The GGUF table is printed when every row is measured (a line per row goes to stderr as it finishes): its
"read bandwidth" share divides each decode's weight read rate by the best fastformer.read_bandwidth of the
whole run at that thread count, and its "paired" column by the probes taken just before and after each decode.

    python -m benchmarks.bench_model --shapes 110m 1.1b --quants q8_0 q4_0 --threads 1 2   # GGUF table
    python -m benchmarks.bench_model --threads 1 2   # fp32 110m checkpoint: fastformer vs transformers
    python -m benchmarks.bench_model --model m-q8_0.gguf --gguf m-q8_0.gguf   # both engines on one file

The checkpoints and GGUF files are made once and cached in .benchmarks/models: llama.cpp's own
convert_hf_to_gguf.py (tests/gguf_tools.py) writes F32 (110m) or F16 (1.1b), and llama.cpp's
llama_model_quantize makes Q8_0 and Q4_0 from it (its Q4_0 keeps output.weight in Q6_K).
Without llama_cpp installed, llama.cpp is listed as skipped.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import fastformer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CACHE = os.path.join(ROOT, ".benchmarks", "models")
SHAPE_110M = dict(
    vocab_size=32000,
    hidden_size=768,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_key_value_heads=12,
    max_position_embeddings=1024,
)
SHAPE_1B = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
)
# shape name -> (checkpoint name, transformers config, float type llama.cpp's converter writes)
SHAPES = {"110m": ("llama110m", SHAPE_110M, "f32"), "1.1b": ("llama1.1b", SHAPE_1B, "f16")}
DECODE_CHILD = 8  # tokens the memory child decodes after the prompt


def make_checkpoint(name="llama110m", shape=SHAPE_110M, seed=0):
    """A random-weight Llama checkpoint saved with transformers (cached under .benchmarks/models)."""
    path = os.path.join(CACHE, name)
    if os.path.exists(os.path.join(path, "model.safetensors")) or os.path.exists(
        os.path.join(path, "model.safetensors.index.json")
    ):
        return path
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn(p.shape) * 0.05)
    model.save_pretrained(path)
    return path


# llama.cpp file-type presets the table runs (llama_model_quantize; it keeps some tensors, like the head, in
# other types)
LLAMA_QUANTS = [
    "q8_0", "q6_k", "q5_k_m", "q5_1", "q5_0", "q4_k_m", "q4_1", "q4_0", "iq4_nl", "iq4_xs", "q3_k_m", "q2_k",
]  # fmt: skip


def make_gguf(shape, qtype):
    """The cached GGUF file of `shape` in `qtype` (f32/f16 from llama.cpp's converter, the LLAMA_QUANTS presets
    from its quantizer)."""
    name, cfg, base_type = SHAPES[shape]
    out = os.path.join(CACHE, f"{name}-{qtype}.gguf")
    if os.path.exists(out):
        return out
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from gguf_tools import convert

    ckpt = make_checkpoint(name, cfg)
    if qtype in ("f32", "f16"):  # straight from the converter
        return convert(ckpt, qtype, out)
    base = convert(ckpt, base_type, os.path.join(CACHE, f"{name}-{base_type}.gguf"))
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}")
    params.nthread = fastformer.get_num_threads()
    tmp = out + ".part"
    if llama_cpp.llama_model_quantize(base.encode(), tmp.encode(), params) != 0:
        raise RuntimeError(f"llama_model_quantize failed on {base}")
    os.replace(tmp, out)
    return out


def timed_runs(gens, n_gen, runs):
    """name -> (best 1-token time, best (n_gen+1)-token time), the engines taking turns in every run."""
    for gen in gens.values():
        gen(2)  # warm up
    best = {name: [float("inf"), float("inf")] for name in gens}
    for _ in range(runs):
        for name, gen in gens.items():
            for slot, n in enumerate((1, n_gen + 1)):
                t0 = time.perf_counter()
                gen(n)
                best[name][slot] = min(best[name][slot], time.perf_counter() - t0)
    return best


def llama_cpp_engine(gguf, threads, ids, n_vocab):
    """(generate(n) function, next-token logits of ids) of llama-cpp-python, or None if not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    llm = llama_cpp.Llama(
        model_path=gguf,
        n_ctx=512,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )

    def gen(n):
        llm.reset()
        for i, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=True)):
            if i + 1 == n:
                break

    llm.reset()
    llm.eval(ids)
    last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return gen, np.ctypeslib.as_array(last, shape=(n_vocab,)).copy()


def engines(path, gguf, threads, ids):
    """name -> (generate(n) function, next-token logits of ids) for every installed engine."""
    out = {}
    fastformer.set_num_threads(threads)
    model = fastformer.Model.load(path)
    ref_logits = model.logits(ids)[-1]
    out["fastformer"] = (lambda n: model.generate_ids(ids, max_new_tokens=n, ignore_eos=True), ref_logits)
    try:
        import torch
        import transformers

        if path.endswith(".gguf"):
            raise ImportError  # transformers runs the HF checkpoint only
        torch.set_num_threads(threads)
        hf = transformers.LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        x = torch.tensor([ids])

        def hf_gen(n):
            with torch.no_grad():
                hf.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

        with torch.no_grad():
            out["transformers"] = (hf_gen, hf(x).logits[0, -1].numpy())
    except ImportError:
        out["transformers"] = None
    out["llama.cpp"] = llama_cpp_engine(gguf, threads, ids, len(ref_logits)) if gguf else None
    return out


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def speed(eng, args, quantized):
    """name -> (prefill tok/s, decode tok/s) after checking every engine's logits against fastformer's."""
    ref = eng["fastformer"][1]
    # fp32 engines agree to rounding; quantized ones differ in how they round activations
    need = 0.99 if quantized else 0.9999
    for name, e in eng.items():
        if e is not None:
            cos = cosine(ref, e[1])
            assert cos > need, f"{name} disagrees with fastformer on the prompt's logits (cosine {cos})"
    best = timed_runs({k: e[0] for k, e in eng.items() if e is not None}, args.new_tokens, args.runs)
    return {k: (args.prompt_tokens / t1, args.new_tokens / max(tn - t1, 1e-9)) for k, (t1, tn) in best.items()}


def child_main(engine, path, n_prompt):
    """In a fresh process: load `path` with `engine`, run the prompt and a few tokens; print a JSON line."""

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    ids = np.random.default_rng(1).integers(3, 32000, n_prompt).tolist()
    fastformer.set_num_threads(1)
    before = status("VmRSS")
    t0 = time.perf_counter()
    if engine == "fastformer":
        model = fastformer.Model.load(path)
        load = time.perf_counter() - t0
        after_load = status("VmHWM")
        model.generate_ids(ids, max_new_tokens=DECODE_CHILD, ignore_eos=True)
    else:
        import llama_cpp

        llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=1, n_threads_batch=1, verbose=False)
        load = time.perf_counter() - t0
        after_load = status("VmHWM")
        for i, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=True)):
            if i + 1 == DECODE_CHILD:
                break
    print(json.dumps({"load_s": load, "rss_before": before, "hwm_load": after_load, "hwm": status("VmHWM")}))


def memory(engine, path, n_prompt):
    """The child's report (load time, RSS in bytes) for `engine` on `path`."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(fastformer.__file__)), os.environ.get("PYTHONPATH", "")]
        ),
    )
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", engine, path, "--prompt-tokens", str(n_prompt)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def gguf_table(args, ids):
    """Speed, memory and load time of fastformer and llama.cpp on the same GGUF files."""
    rows = []  # printed at the end, when every share can meet the best probe of the whole run
    mem_rows = []
    for shape in args.shapes:
        for qt in args.quants:
            path = make_gguf(shape, qt)
            for t in args.threads:
                eng = engines(path, path, t, ids)
                if eng["llama.cpp"] is None:
                    rows.append(f"| {shape} | {qt} | {t} | llama.cpp skipped (not installed) | | | | | |")
                    continue
                res = speed(eng, args, qt.startswith(("q", "iq")))
                (fp, fd), (lp, ld) = res["fastformer"], res["llama.cpp"]
                nbytes = step_bytes(path)
                bandwidth(args, t)
                paired = paired_shares(eng["fastformer"][0], args.new_tokens, nbytes, t, args.runs)
                rows.append((shape, qt, t, fp, lp, fd, ld, fd * nbytes / 1e9, paired))
                print(f"{shape} {qt} {t} thread(s): decode {fd:.1f} / {ld:.1f} tok/s", file=sys.stderr, flush=True)
                del eng
            if not args.no_memory:
                for name in ("fastformer", "llama.cpp"):
                    if name == "llama.cpp" and llama_cpp_missing():
                        continue
                    mem_rows.append((shape, qt, os.path.getsize(path), name, memory(name, path, args.prompt_tokens)))
    print(
        "| model | quant | threads | ff prefill tok/s | llama.cpp prefill tok/s | prefill x "
        "| ff decode tok/s | llama.cpp decode tok/s | decode x | ff decode / read bandwidth "
        "| paired: median (range) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if isinstance(r, str):
            print(r)
            continue
        shape, qt, t, fp, lp, fd, ld, gbs, paired = r
        print(
            f"| {shape} | {qt} | {t} | {fp:.1f} | {lp:.1f} | {fp / lp:.2f} | {fd:.1f} | {ld:.1f} "
            f"| {fd / ld:.2f} | {gbs / bandwidth(args, t, measure=False):.0%} "
            f"| {np.median(paired):.0%} ({min(paired):.0%}-{max(paired):.0%}) |"
        )
    if mem_rows:
        mb = 1 << 20
        print(
            f"\n| model | quant | file MB | engine | load s | RSS before load MB | peak RSS after load MB "
            f"| peak RSS after prompt + {DECODE_CHILD} tokens MB | peak / file |"
        )
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        for shape, qt, size, name, m in mem_rows:
            print(
                f"| {shape} | {qt} | {size / mb:.0f} | {name} | {m['load_s']:.2f} | {m['rss_before'] / mb:.0f} "
                f"| {m['hwm_load'] / mb:.0f} | {m['hwm'] / mb:.0f} | {m['hwm'] / size:.2f} |"
            )


_BANDWIDTH = {}


def bandwidth(args, threads, measure=True):
    """Read bandwidth (GB/s) at `threads`: --bandwidth's entry, else the best fastformer.read_bandwidth so far in
    this run at that thread count, measured again at each call unless not `measure` (the host's bandwidth drifts:
    the highest seen is the roofline)."""
    if args.bandwidth:
        return args.bandwidth[min(threads, len(args.bandwidth)) - 1]
    if not measure:
        return _BANDWIDTH[threads]
    before = fastformer.get_num_threads()
    fastformer.set_num_threads(threads)
    _BANDWIDTH[threads] = max(_BANDWIDTH.get(threads, 0.0), fastformer.read_bandwidth())
    fastformer.set_num_threads(before)
    return _BANDWIDTH[threads]


def paired_shares(gen, n_gen, nbytes, threads, runs):
    """Decode's weight read rate over the read bandwidth measured right before and right after it, once per run:
    the host's bandwidth drifts by a fifth within minutes, so each decode meets the probe of its own moment
    (the larger of the two) rather than the best of the whole run."""
    before = fastformer.get_num_threads()
    fastformer.set_num_threads(threads)
    shares = []
    try:
        for _ in range(runs):
            p0 = fastformer.read_bandwidth(runs=3)
            t0 = time.perf_counter()
            gen(1)
            t1 = time.perf_counter()
            gen(n_gen + 1)
            t2 = time.perf_counter()
            p1 = fastformer.read_bandwidth(runs=3)
            step = max((t2 - t1) - (t1 - t0), 1e-9) / n_gen
            shares.append(nbytes / step / 1e9 / max(p0, p1))
    finally:
        fastformer.set_num_threads(before)
    return shares


def step_bytes(path):
    """Bytes of weights one decode step reads from `path`: every tensor but the token table, which a step reads
    one row of (unless it is also the output matrix)."""
    from gguf import GGUFReader

    sizes = {t.name: int(t.n_bytes) for t in GGUFReader(path).tensors}
    if "output.weight" in sizes:
        sizes.pop("token_embd.weight", None)
    return sum(sizes.values())


def llama_cpp_missing():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return True
    return False


def single_table(args, ids):
    """fastformer against transformers (HF checkpoint) and llama.cpp (--gguf) on one model."""
    path = args.model or make_checkpoint()
    print(f"model: {path}")
    print("| engine | threads | prefill tok/s | decode tok/s | fastformer prefill x | fastformer decode x |")
    print("|---|---:|---:|---:|---:|---:|")
    overhead = []
    quantized = "q" in os.path.basename(args.gguf or "") + os.path.basename(path)
    for t in args.threads:
        eng = engines(path, args.gguf, t, ids)
        for name, e in eng.items():
            if e is None:
                print(f"| {name} | {t} | skipped (not installed or no --gguf) | | | |")
        res = speed(eng, args, quantized)
        ff = res["fastformer"]
        for name, (p, d) in res.items():
            print(f"| {name} | {t} | {p:.1f} | {d:.1f} | {ff[0] / p:.2f} | {ff[1] / d:.2f} |")
        overhead.append((t, python_overhead(path, ids, args.new_tokens)))
    for t, o in overhead:
        print(f"\nfastformer per-token Python overhead at {t} thread(s): {o:.1%} of a decode step")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), help="GGUF table over these model shapes")
    ap.add_argument("--quants", nargs="+", default=["q8_0", "q4_0"], choices=["f32", "f16"] + LLAMA_QUANTS)
    ap.add_argument("--no-memory", action="store_true", help="skip the memory and load-time table")
    ap.add_argument(
        "--bandwidth", type=float, nargs="+",
        help="read bandwidth, GB/s, at 1, 2, ... threads (the decode column's roofline; default: measured)",
    )  # fmt: skip
    ap.add_argument("--gguf", help="GGUF of the same checkpoint for llama.cpp")
    ap.add_argument("--model", help="what fastformer loads (default: the 110M HF checkpoint)")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args.child[0], args.child[1], args.prompt_tokens)
    ids = np.random.default_rng(1).integers(3, 32000, args.prompt_tokens).tolist()
    print(
        f"fastformer {fastformer.cpu_info()['isa']}; prompt {args.prompt_tokens}, decode {args.new_tokens}, "
        f"best of {args.runs}\n"
    )
    if args.shapes:
        gguf_table(args, ids)
        for t in sorted(_BANDWIDTH):
            print(f"read bandwidth at {t} thread(s), best measured in this run: {_BANDWIDTH[t]:.1f} GB/s")
    else:
        single_table(args, ids)


def python_overhead(path, ids, n, decode_rate=None):
    """Share of a generate() decode step spent outside the C forward call (sampling, bookkeeping): the decode
    steps of one generate_ids run, each split into its forward call and the rest, in the same run (so memory
    bandwidth that drifts between runs does not enter). Best of 3."""
    model = fastformer.Model.load(path)

    class Timed:  # the session generate_ids makes, with its forward calls timed
        def __init__(self, sess):
            self.sess, self.calls = sess, []

        def __getattr__(self, name):
            return getattr(self.sess, name)

        def forward(self, *a, **k):
            t0 = time.perf_counter()
            out = self.sess.forward(*a, **k)
            self.calls.append((t0, time.perf_counter()))
            return out

    plain = model._session
    made = []

    def timed_session(*args):
        made.append(Timed(plain(*args)))
        return made[-1]

    model._session = timed_session
    best = 1.0
    for _ in range(3):
        made.clear()
        model.generate_ids(ids, max_new_tokens=n, stop_ids=[], ignore_eos=True)
        calls = made[0].calls[-(n - 1) :]  # the decode steps (the prompt's calls come first)
        total = calls[-1][1] - calls[0][0]
        inside = sum(b - a for a, b in calls)
        best = min(best, (total - inside) / total)
    return best


if __name__ == "__main__":
    main()
