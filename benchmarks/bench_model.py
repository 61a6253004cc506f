"""End-to-end prefill and decode tokens/s: fastformer against transformers and llama-cpp-python on the same
random-weight Llama checkpoint of stories110M shape (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000).

Method (every engine, greedy): prefill = time of a 1-token generation from a 128-token prompt;
decode = (time of a 129-token generation - prefill) / 128. Best of --runs. Results are checked first:
the engines' next-token logits on the prompt must agree before anything is timed.

    python -m benchmarks.bench_model --threads 1 2
    python -m benchmarks.bench_model --gguf path/to/model-f32.gguf   # also time llama.cpp on that file
    python -m benchmarks.bench_model --model m-q8_0.gguf --gguf m-q8_0.gguf   # both engines on one GGUF file

The GGUF file for llama.cpp is made from the same checkpoint with llama.cpp's convert_hf_to_gguf.py
(see tests/gguf_tools.py); without --gguf or llama_cpp installed, llama.cpp is listed as skipped.
"""

import argparse
import os
import time

import numpy as np

import fastformer

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".benchmarks", "models")
SHAPE_110M = dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024)


def make_checkpoint(name="llama110m", shape=SHAPE_110M, seed=0):
    """A random-weight Llama checkpoint saved with transformers (cached under .benchmarks/models)."""
    path = os.path.join(CACHE, name)
    if os.path.exists(os.path.join(path, "model.safetensors")) or os.path.exists(
            os.path.join(path, "model.safetensors.index.json")):
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


def best(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(gen, n_prompt, n_gen, runs):
    """(prefill tok/s, decode tok/s) for gen(n_new) that generates n_new tokens from the prompt."""
    gen(2)  # warm up
    t1 = best(lambda: gen(1), runs)
    tn = best(lambda: gen(n_gen + 1), runs)
    return n_prompt / t1, n_gen / max(tn - t1, 1e-9)


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
    try:
        import llama_cpp

        if not gguf:
            raise ImportError
        llm = llama_cpp.Llama(model_path=gguf, n_ctx=512, n_batch=512, n_threads=threads,
                              n_threads_batch=threads, logits_all=False, verbose=False)

        def llama_gen(n):
            llm.reset()
            for i, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=True)):
                if i + 1 == n:
                    break

        llm.reset()
        llm.eval(ids)
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        out["llama.cpp"] = (llama_gen, np.ctypeslib.as_array(last, shape=(len(ref_logits),)).copy())
    except ImportError:
        out["llama.cpp"] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gguf", help="F32 GGUF of the same checkpoint for llama.cpp")
    ap.add_argument("--model", help="what fastformer loads (default: the 110M HF checkpoint)")
    args = ap.parse_args(argv)
    path = args.model or make_checkpoint()
    ids = np.random.default_rng(1).integers(3, 32000, args.prompt_tokens).tolist()
    print(f"model: {path}\nfastformer {fastformer.cpu_info()['isa']}; prompt {args.prompt_tokens}, "
          f"decode {args.new_tokens}, best of {args.runs}\n")
    print("| engine | threads | prefill tok/s | decode tok/s | fastformer prefill x | fastformer decode x |")
    print("|---|---:|---:|---:|---:|---:|")
    overhead = []
    for t in args.threads:
        eng = engines(path, args.gguf, t, ids)
        ref = eng["fastformer"][1]
        res = {}
        for name, e in eng.items():
            if e is None:
                print(f"| {name} | {t} | skipped (not installed or no --gguf) | | | |")
                continue
            cos = float(np.dot(ref, e[1]) / (np.linalg.norm(ref) * np.linalg.norm(e[1])))
            # fp32 engines agree to rounding; quantized ones differ in how they round activations
            need = 0.999 if "q" in os.path.basename(args.gguf or "") + os.path.basename(path) else 0.9999
            assert cos > need, f"{name} disagrees with fastformer on the prompt's logits (cosine {cos})"
            res[name] = measure(e[0], args.prompt_tokens, args.new_tokens, args.runs)
        ff = res["fastformer"]
        for name, (p, d) in res.items():
            print(f"| {name} | {t} | {p:.1f} | {d:.1f} | {ff[0] / p:.2f} | {ff[1] / d:.2f} |")
        overhead.append((t, python_overhead(path, ids, args.new_tokens, ff[1])))
    for t, o in overhead:
        print(f"\nfastformer per-token Python overhead at {t} thread(s): {o:.1%} of a decode step")


def python_overhead(path, ids, n, decode_rate):
    """Share of a generate() decode step spent outside the C forward call (sampling, bookkeeping)."""
    model = fastformer.Model.load(path)
    sess = fastformer._core.Session(model._core, len(ids) + n + 1, 128)
    sess.forward(ids)
    t0 = time.perf_counter()
    for _ in range(n):
        sess.forward([7])
    forward_only = (time.perf_counter() - t0) / n
    step = 1.0 / decode_rate
    return max(step - forward_only, 0.0) / step


if __name__ == "__main__":
    main()
