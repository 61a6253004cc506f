"""Make GGUF files from a Hugging Face checkpoint with llama.cpp's own converter (convert_hf_to_gguf.py),
which ships in the llama-cpp-python source distribution from PyPI (downloaded once, ~75 MB, and cached).

    python tests/gguf_tools.py CHECKPOINT_DIR --outtype f32 --out model-f32.gguf

A checkpoint without tokenizer files gets a small SentencePiece BPE tokenizer (tokenizer.model) trained
here on generated text, so the converter can write its vocabulary (it pads to the model's vocab_size).
"""

import argparse
import glob
import os
import subprocess
import sys
import tarfile

SDIST_VERSION = "0.3.36"  # llama.cpp's converter as shipped with this llama-cpp-python release
CACHE = os.environ.get("FASTFORMER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "fastformer"))


def converter_dir():
    """The vendored llama.cpp directory of the llama-cpp-python sdist (convert script + gguf-py)."""
    root = os.path.join(CACHE, "llama-cpp-python")
    found = glob.glob(os.path.join(root, "llama_cpp_python-*", "vendor", "llama.cpp", "convert_hf_to_gguf.py"))
    if found:
        return os.path.dirname(sorted(found)[-1])
    os.makedirs(root, exist_ok=True)
    if not glob.glob(os.path.join(root, "llama_cpp_python-*.tar.gz")):
        _download_sdist(root)
    sdist = sorted(glob.glob(os.path.join(root, "llama_cpp_python-*.tar.gz")))[-1]
    with tarfile.open(sdist) as tar:
        members = [
            m
            for m in tar.getmembers()
            if "/vendor/llama.cpp/" in m.name
            and (m.name.endswith("convert_hf_to_gguf.py") or "/gguf-py/" in m.name or "/conversion/" in m.name)
        ]
        tar.extractall(root, members=members, filter="data")
    return converter_dir()


def _download_sdist(root):
    """The pinned llama-cpp-python source distribution, with pip (metadata only; nothing is built)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            "llama-cpp-python",
            "--no-build-isolation",
            f"llama-cpp-python=={SDIST_VERSION}",
            "-d",
            root,
        ],
        check=True,
    )


def ensure_tokenizer(path):
    """Train a SentencePiece BPE tokenizer.model (byte fallback, at most the model's vocab_size pieces) into
    `path` unless one exists; returns its path."""
    import json

    model = os.path.join(path, "tokenizer.model")
    if os.path.exists(model) or os.path.exists(os.path.join(path, "tokenizer.json")):
        return model
    with open(os.path.join(path, "config.json")) as f:
        vocab = min(json.load(f)["vocab_size"], 4000)
    import random

    import sentencepiece as spm

    rng = random.Random(0)
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "dog",
        "ran",
        "far",
        "away",
        "once",
        "upon",
        "time",
        "there",
        "was",
        "little",
        "girl",
        "named",
        "lily",
        "she",
        "liked",
        "to",
        "play",
        "in",
        "park",
    ]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) + "." for _ in range(3000)]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=os.path.join(path, "tokenizer"),
        vocab_size=vocab,
        model_type="bpe",
        byte_fallback=True,
        hard_vocab_limit=False,
        minloglevel=2,
        # as Llama's tokenizer.model: no normalization, whitespace kept
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
    )
    return model


def convert(path, outtype, out):
    """Run llama.cpp's converter on checkpoint `path`; returns the output file."""
    if os.path.exists(out):
        return out
    ensure_tokenizer(path)
    conv = converter_dir()
    env = dict(os.environ, PYTHONPATH=os.path.join(conv, "gguf-py") + os.pathsep + conv)
    subprocess.run(
        [sys.executable, os.path.join(conv, "convert_hf_to_gguf.py"), path, "--outtype", outtype, "--outfile", out],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    print(convert(args.checkpoint, args.outtype, args.out))


if __name__ == "__main__":
    main()
