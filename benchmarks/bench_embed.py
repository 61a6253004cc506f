"""Sentence embeddings per second: fastformer's Model.embed against sentence-transformers' encode (PyTorch CPU)
on the same random-weight BERT of all-MiniLM-L6-v2's shape (dim 384, 6 layers, 12 heads, FFN 1536, mean
pooling, normalized, max_seq_length 256), and llama-cpp-python's embedding path on the same model converted to
GGUF by llama.cpp's own converter (tests/gguf_tools.py), where it is installed.

Work: 512 sentences of 10 to 60 words drawn from tests/corpus.py (seeded), batch size 32. Results are checked
first (cosine of every vector against sentence-transformers >= 0.9999 in float32, >= 0.995 in Q8_0), then
each engine encodes the whole set --runs times, taking turns, and the best time counts.

    python -m benchmarks.bench_embed --threads 2
    python -m benchmarks.bench_embed --threads 1 2 --runs 5 --out benchmarks/results/embed.md
"""

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np

import fastformer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))
SHAPE = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
             max_position_embeddings=512, type_vocab_size=2)  # fmt: skip


def sentences(n=512, seed=0):
    """n sentences of 10 to 60 words of the test corpus, seeded."""
    from corpus import CORPUS

    words = " ".join(CORPUS.values()).split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(10, 61)))) for _ in range(n)]


def build(root):
    """A MiniLM-shaped BERT with a WordPiece vocabulary trained on the corpus, as a sentence-transformers dir."""
    from embed_fixtures import make_checkpoint, make_sentence_dir, perturb_shift, train_wordpiece

    bert = os.path.join(root, "bert")
    tok = train_wordpiece(bert, vocab_size=8000)
    make_checkpoint(bert, "bert", seed=0, perturb=perturb_shift(1), vocab_size=tok.get_vocab_size(), **SHAPE)
    return make_sentence_dir(os.path.join(root, "st"), bert, max_seq_length=256)[0], bert


def gguf_file(st_dir, root):
    """The sentence-transformers directory (pooling included) in GGUF F32 by llama.cpp's converter, or None and why."""
    try:
        from embed_fixtures import convert_gguf

        return convert_gguf(st_dir, os.path.join(root, "bert-f32.gguf")), None
    except Exception as e:  # the converter is downloaded once; offline it may be missing
        return None, f"llama.cpp converter unavailable ({type(e).__name__}: {e})"


def best(fn, runs):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="write the markdown table here too")
    args = ap.parse_args(argv)
    import torch

    warnings.filterwarnings("ignore")
    texts = sentences()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        st_dir, bert_dir = build(root)
        from embed_fixtures import load_sentence

        st = load_sentence(st_dir)
        f32 = fastformer.Model.load(st_dir)
        q8 = fastformer.Model.load(st_dir, quantize="q8_0")
        want = st.encode(texts, batch_size=32)
        c32, c8 = cosines(f32.embed(texts), want).min(), cosines(q8.embed(texts), want).min()
        assert c32 >= 0.9999 and c8 >= 0.995, (c32, c8)
        path, why = gguf_file(st_dir, root)
        llama_cls = cl = None
        if path is not None:
            try:
                from llama_cpp import Llama as llama_cls
            except ImportError as e:
                why = f"llama_cpp not installed ({e})"
        tokens = sum(len(f32.tokenizer.encode(t, max_length=256)) for t in texts)
        for nt in args.threads:
            torch.set_num_threads(nt)
            fastformer.set_num_threads(nt)
            engines = {
                "sentence-transformers (torch)": lambda: st.encode(texts, batch_size=32),
                "fastformer f32": lambda: f32.embed(texts, batch_size=32),
                "fastformer q8_0": lambda: q8.embed(texts, batch_size=32),
            }
            if llama_cls is not None:  # llama-cpp-python's defaults: sequences packed 512 tokens per batch
                llama = llama_cls(path, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=nt,
                                  n_threads_batch=nt, verbose=False)  # fmt: skip
                cl = cosines(np.array(llama.embed(texts)), want).min()
                engines["llama.cpp f32 (llama-cpp-python, same GGUF)"] = lambda llama=llama: llama.embed(texts)
            times = {k: [] for k in engines}
            for _ in range(args.runs):  # the engines take turns
                for k, fn in engines.items():
                    times[k].append(best(fn, 1))
            base = min(times["sentence-transformers (torch)"])
            for k in engines:
                t = min(times[k])
                rows.append((nt, k, t, len(texts) / t, base / t))
    lines = [
        f"512 sentences of 10-60 words ({tokens} tokens), MiniLM-L6 shape, batch 32; "
        f"{platform.processor() or platform.machine()}, fastformer ISA {fastformer._core.current_isa()}; "
        f"cosine vs sentence-transformers: f32 {c32:.6f}, q8_0 {c8:.6f} (min over texts)",
        "",
        "| threads | engine | seconds | sentences/s | speed-up vs sentence-transformers |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {nt} | {k} | {t:.3f} | {r:.0f} | {s:.2f}x |" for nt, k, t, r, s in rows]
    if llama_cls is None:
        lines += ["", f"llama.cpp skipped: {why}"]
    else:  # llama.cpp's WordPiece keeps accents, so texts in some languages tokenize differently
        lines += ["", f"llama.cpp cosine vs sentence-transformers: {cl:.6f} (min over texts)"]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
