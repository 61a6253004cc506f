"""The `fastformer` command line.

    fastformer generate [--model PATH] [options] PROMPT   stream generated text to stdout
    fastformer chat [--model PATH] [--system TEXT]        talk to a chat model (/reset, /exit; Ctrl-C stops an answer)
    fastformer perplexity [--model PATH] FILE             perplexity of a text file
    fastformer tokenize [--model PATH | --tokenizer FILE] [--pieces] TEXT
    fastformer info PATH                                  architecture, sizes, dtypes, memory
    fastformer bench [--model PATH] [--threads N]         prefill and decode tokens/s
    fastformer quantize IN OUT --type q8_0|q5_1|...       quantize and write a GGUF file
    fastformer cpu [--bandwidth]                          ISA path, usable paths, CPU features, threads
    fastformer serve [--model PATH] [--port N] [--api-key KEY]   an OpenAI-compatible HTTP server
    fastformer embed --model DIR [FILE|-] [-o OUT.npy]    sentence embeddings of each line (npy or jsonl)

Without --model, generate, chat, perplexity, bench, tokenize and serve use the embedded default model
(SmolLM2-135M-Instruct).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import fastformer
from fastformer.model import DEFAULT_KV_DTYPE, DEFAULT_SAMPLING, KV_DTYPES
from fastformer.quant import QUANTIZABLE_AT_LOAD


def _fail(msg):
    print(f"fastformer: {msg}", file=sys.stderr)
    return 2


def _load_model(args):
    opts = dict(quantize=getattr(args, "quantize", None), threads=args.threads)
    if getattr(args, "kv_dtype", None):
        opts["kv_dtype"] = args.kv_dtype
    if args.model is None:
        return fastformer.Model.default(**opts)
    return fastformer.Model.load(args.model, **opts)


def _cmd_cpu(args):
    if args.threads is not None:
        fastformer.set_num_threads(args.threads)
    info = fastformer.cpu_info()
    if args.bandwidth:
        info["read_bandwidth_gbs"] = round(fastformer.read_bandwidth(), 2)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"isa:       {info['isa']}")
        print(f"supported: {' '.join(info['supported'])}")
        print(f"features:  {' '.join(info['features'])}")
        print(f"threads:   {info['threads']}")
        pf = info["prefetch"]
        if pf["bytes_ahead"]:
            mb = pf["above_bytes"] / 2**20
            print(f"prefetch:  {pf['bytes_ahead']} bytes ahead in the decode kernels, for weights over {mb:.0f} MiB")
        else:
            print("prefetch:  none in the decode kernels")
        if args.bandwidth:
            print(f"bandwidth: {info['read_bandwidth_gbs']:.1f} GB/s read at {info['threads']} thread(s)")
    return 0


def _cmd_generate(args):
    model = _load_model(args)
    opts = _sampling(args)
    for piece in model.stream(args.prompt, stop=args.stop, **opts):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _sampling(args):
    return dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def _fit_turns(model, system, turns, room):
    """The conversation cut from the front (whole turns, the system message kept) until its prompt leaves
    `room` positions for the answer; None if even the last message alone does not fit."""
    while turns:
        msgs = system + turns
        if len(model._chat_ids(msgs, {})) + room <= model.config.max_context:
            return msgs
        turns = turns[1:]
        while turns and turns[0]["role"] != "user":  # drop the answer with its question
            turns = turns[1:]
    return None


def _cmd_chat(args):
    model = _load_model(args)
    if not model.chat_templates:
        return _fail(f"{model.path}: this model has no chat template, so it cannot chat (try `generate`)")
    system = [{"role": "system", "content": args.system}] if args.system else []
    opts, turns = _sampling(args), []
    interactive = sys.stdin.isatty()
    if interactive:
        print("fastformer chat: /reset clears the conversation, /exit (or Ctrl-D) leaves; Ctrl-C stops an answer")
    while True:
        try:
            line = input("> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        cmd = line.strip()
        if cmd == "/exit":
            return 0
        if cmd == "/reset":
            turns = []
            print("[conversation cleared]", flush=True)
            continue
        if not cmd:
            continue
        turns.append({"role": "user", "content": line})
        msgs = _fit_turns(model, system, turns, opts["max_new_tokens"])
        if msgs is None:
            turns.pop()
            print(f"[that message does not fit the context of {model.config.max_context} tokens]", flush=True)
            continue
        turns = msgs[len(system) :]
        answer = []
        try:
            for piece in model.chat_stream(msgs, **opts):
                sys.stdout.write(piece)
                sys.stdout.flush()
                answer.append(piece)
        except KeyboardInterrupt:
            sys.stdout.write(" [stopped]")
        print(flush=True)
        turns.append({"role": "assistant", "content": "".join(answer)})


def _cmd_tokenize(args):
    if args.tokenizer:
        from fastformer.tokenizer import Tokenizer

        tok = Tokenizer.from_file(args.tokenizer)
    else:
        model = fastformer.Model.load(args.model) if args.model else fastformer.Model.default()
        tok = model.tokenizer
        if tok is None:
            return _fail(f"{args.model} has no tokenizer files")
    ids = tok.encode(args.text, allowed_special="all")
    if args.pieces:
        for i in ids:
            print(f"{i}\t{tok.token_bytes(i)!r}")
    else:
        print(" ".join(map(str, ids)))
    return 0


def _cmd_perplexity(args):
    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        return _fail(f"{args.file}: not UTF-8 text ({e})")
    model = _load_model(args)
    context = args.context or min(model.config.max_context, 1024)
    t0 = time.perf_counter()
    ppl = model.perplexity(text, context=context, stride=args.stride)
    n = len(model.encode_prompt(text))
    print(f"tokens:      {n} ({n - 1} scored)")
    print(f"context:     {context}, stride {args.stride or context // 2}")
    print(f"nll:         {math.log(ppl):.4f} nats/token")
    print(f"perplexity:  {ppl:.3f}")
    print(f"time:        {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _kv_bytes(model, kv_dtype):
    try:
        return f"{kv_dtype} {model.kv_bytes_per_token(kv_dtype)} bytes"
    except ValueError:  # q8_0 with a head size that is not a multiple of 32
        return f"{kv_dtype} n/a"


# what the tokenizer.ggml.model names are
GGUF_TOKENIZER_KINDS = {"llama": "SentencePiece BPE", "gpt2": "byte-level BPE", "bert": "WordPiece"}


def _size(n):
    """n bytes in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.2f} GiB"


def _cmd_info(args):
    model = fastformer.Model.load(args.path)
    c = model.config
    print(f"architecture:  {c.architecture} ({c.arch} family)")
    print(f"layers:        {c.n_layers}")
    print(f"hidden size:   {c.d_model}")
    print(f"heads:         {c.n_heads} (kv heads {c.n_kv_heads}, head size {c.head_dim})")
    print(f"mlp size:      {c.d_ff}")
    print(f"vocabulary:    {c.vocab_size}")
    print(f"context:       {c.max_context}")
    print(f"kv cache:      {', '.join(_kv_bytes(model, kv) for kv in KV_DTYPES)} per token (default {model.kv_dtype})")
    types, nbytes, params, files = {}, 0, 0, []
    if os.path.isfile(args.path):
        from fastformer.gguf import GGUFFile

        f = GGUFFile(args.path)
        for t in f.tensors.values():
            types[t.type] = types.get(t.type, 0) + 1
            nbytes += t.nbytes
            params += math.prod(t.shape)
        files = [args.path]
        meta = f.metadata
        print(f"gguf:          general.architecture {meta['general.architecture']}, GGUF v{f.version}")
        ggml = meta.get("tokenizer.ggml.model", "none")
        kind = f"GGUF {ggml}" + (f" ({GGUF_TOKENIZER_KINDS[ggml]})" if ggml in GGUF_TOKENIZER_KINDS else "")
        kind += f", pre-tokenizer {meta['tokenizer.ggml.pre']}" if "tokenizer.ggml.pre" in meta else ""
    else:
        from fastformer.safetensors import read_header

        for name in sorted(os.listdir(args.path)):
            if name.endswith(".safetensors"):
                files.append(os.path.join(args.path, name))
                for dt, shape, b, e in read_header(files[-1])[0].values():
                    types[dt] = types.get(dt, 0) + 1
                    nbytes += e - b
                    params += math.prod(shape)
        kind = "tokenizer.json"
    print(f"tensor types:  {', '.join(f'{k} x{v}' for k, v in sorted(types.items()))}")
    print(f"parameters:    {params:,}")
    size = sum(os.path.getsize(p) for p in files)
    print(f"file size:     {_size(size)} ({_size(nbytes)} of tensors)")
    tok = model.tokenizer
    print(f"tokenizer:     {f'{kind}, {tok.n_vocab} ids' if tok is not None else 'none'}")
    return 0


def _progress(label, i, n):
    width = 30
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {i}/{n}")
    if i == n:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _cmd_bench(args):
    model = _load_model(args)
    n_prompt, n_gen, runs = args.prompt_tokens, args.new_tokens, args.runs
    if n_prompt + n_gen + 1 > model.config.max_context:
        return _fail(f"prompt + new tokens ({n_prompt + n_gen + 1}) exceed the context {model.config.max_context}")
    ids = np.random.default_rng(0).integers(3, model.config.vocab_size, n_prompt).tolist()
    prefill, decode = [], []
    for r in range(runs):
        _progress("bench", r, runs)
        t0 = time.perf_counter()
        model.generate_ids(ids, max_new_tokens=1)
        t1 = time.perf_counter()
        out = model.generate_ids(ids, max_new_tokens=n_gen + 1, ignore_eos=True)
        t2 = time.perf_counter()
        prefill.append(t1 - t0)
        decode.append(((t2 - t1) - (t1 - t0)) / max(len(out) - 1, 1))
    _progress("bench", runs, runs)
    print(f"threads {fastformer.get_num_threads()}, isa {fastformer.cpu_info()['isa']}")
    print(f"prefill: {n_prompt / min(prefill):8.1f} tokens/s ({n_prompt}-token prompt, best of {runs})")
    print(f"decode:  {1 / min(decode):8.1f} tokens/s ({n_gen} tokens, best of {runs})")
    return 0


def _cmd_quantize(args):
    t0 = time.perf_counter()
    model = fastformer.Model.load(args.input, quantize=args.type)
    print(f"loaded and quantized {args.input} to {args.type} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    model.save_gguf(args.output, progress=lambda i, n: _progress("writing", i, n))
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB)")
    return 0


def _cmd_serve(args):
    try:
        from fastformer.server import serve
    except ImportError as e:
        return _fail(str(e))
    if args.model is not None and not os.path.exists(args.model):
        return _fail(f"{args.model}: no such model file or directory")
    serve(args.model, host=args.host, port=args.port, api_key=args.api_key, parallel=args.parallel,
          max_queue=args.max_queue, threads=args.threads, model_name=args.model_name,
          kv_dtype=args.kv_dtype)  # fmt: skip
    return 0


KV_HELP = "how the kv cache stores keys and values (f32 exact, f16 half, q8_0 about a quarter of f32's bytes)"


def build_parser():
    p = argparse.ArgumentParser(prog="fastformer", description="Fast CPU inference for transformer language models.")
    p.add_argument("--version", action="version", version=f"fastformer {fastformer.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="stream generated text to stdout")
    g.add_argument("prompt", help="the text to continue")
    g.add_argument("--model", help="a Hugging Face model directory (default: the embedded model)")
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_SAMPLING["temperature"],
        help=f"0 = greedy (default {DEFAULT_SAMPLING['temperature']})",
    )
    g.add_argument("--top-k", type=int, default=DEFAULT_SAMPLING["top_k"])
    g.add_argument("--top-p", type=float, default=DEFAULT_SAMPLING["top_p"])
    g.add_argument("--min-p", type=float, default=DEFAULT_SAMPLING["min_p"])
    g.add_argument("--repetition-penalty", type=float, default=DEFAULT_SAMPLING["repetition_penalty"])
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", help="stop at this string (repeatable)")
    g.add_argument("--threads", type=int, default=None)
    g.add_argument("--quantize", choices=QUANTIZABLE_AT_LOAD, default=None)
    g.add_argument("--kv-dtype", choices=KV_DTYPES, default=DEFAULT_KV_DTYPE, help=KV_HELP)
    g.set_defaults(fn=_cmd_generate)

    ch = sub.add_parser("chat", help="talk to a chat model, streaming its answers")
    ch.add_argument("--model", help="a GGUF file or model directory with a chat template (default: the embedded model)")
    ch.add_argument("--system", help="a system message that starts the conversation")
    ch.add_argument("--max-new-tokens", type=int, default=256)
    for flag, key, typ in (("--temperature", "temperature", float), ("--top-k", "top_k", int),
                           ("--top-p", "top_p", float), ("--min-p", "min_p", float),
                           ("--repetition-penalty", "repetition_penalty", float)):  # fmt: skip
        ch.add_argument(flag, type=typ, default=DEFAULT_SAMPLING[key])
    ch.add_argument("--seed", type=int, default=None)
    ch.add_argument("--threads", type=int, default=None)
    ch.add_argument("--quantize", choices=QUANTIZABLE_AT_LOAD, default=None)
    ch.add_argument("--kv-dtype", choices=KV_DTYPES, default=DEFAULT_KV_DTYPE, help=KV_HELP)
    ch.set_defaults(fn=_cmd_chat)

    pp = sub.add_parser("perplexity", help="perplexity of a model on a UTF-8 text file")
    pp.add_argument("file", help="the text to score")
    pp.add_argument("--model", help="a Hugging Face model directory or GGUF file (default: the embedded model)")
    pp.add_argument("--quantize", choices=QUANTIZABLE_AT_LOAD, default=None)
    pp.add_argument("--kv-dtype", choices=KV_DTYPES, default=DEFAULT_KV_DTYPE, help=KV_HELP)
    pp.add_argument("--context", type=int, default=None, help="window in tokens (default: the model's, at most 1024)")
    pp.add_argument("--stride", type=int, default=None, help="tokens between windows (default: context / 2)")
    pp.add_argument("--threads", type=int, default=None)
    pp.set_defaults(fn=_cmd_perplexity)

    t = sub.add_parser("tokenize", help="print the token ids of TEXT")
    t.add_argument("text")
    t.add_argument("--model", help="a model directory with tokenizer files (default: the embedded model)")
    t.add_argument("--tokenizer", help="a tokenizer.json or tiktoken file")
    t.add_argument("--pieces", action="store_true", help="print each id with its bytes")
    t.set_defaults(fn=_cmd_tokenize)

    i = sub.add_parser("info", help="architecture, sizes, dtypes and memory of a model")
    i.add_argument("path")
    i.set_defaults(fn=_cmd_info)

    b = sub.add_parser("bench", help="prefill and decode tokens/s")
    b.add_argument("--model", help="a Hugging Face model directory (default: the embedded model)")
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--kv-dtype", choices=KV_DTYPES, default=DEFAULT_KV_DTYPE, help=KV_HELP)
    b.add_argument("--prompt-tokens", type=int, default=128)
    b.add_argument("--new-tokens", type=int, default=128)
    b.add_argument("--runs", type=int, default=3)
    b.set_defaults(fn=_cmd_bench)

    q = sub.add_parser("quantize", help="quantize a model and write it as a GGUF file")
    q.add_argument("input", help="a Hugging Face model directory or a GGUF file")
    q.add_argument("output", help="the GGUF file to write")
    q.add_argument("--type", choices=QUANTIZABLE_AT_LOAD, default="q8_0")
    q.set_defaults(fn=_cmd_quantize)

    c = sub.add_parser("cpu", help="show the ISA path in use, usable paths, CPU features and threads")
    c.add_argument("--threads", type=int, help="threads to use (default: usable cores)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--bandwidth", action="store_true", help="also measure memory read bandwidth (1 GiB)")
    c.set_defaults(fn=_cmd_cpu)

    s = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (pip install 'fastformer[server]')")
    s.add_argument("--model", help="a GGUF file or model directory (default: the embedded model)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", default=os.environ.get("FASTFORMER_API_KEY"),
                   help="require Authorization: Bearer KEY (default: $FASTFORMER_API_KEY, else no key)")  # fmt: skip
    s.add_argument("--parallel", type=int, default=8, help="sequences decoded at once (default 8)")
    s.add_argument("--max-queue", type=int, default=64, help="requests waiting for a slot before 429 (default 64)")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--model-name", help="the model id clients send (default: the file or directory name)")
    s.add_argument("--kv-dtype", choices=KV_DTYPES, default=DEFAULT_KV_DTYPE, help=KV_HELP)
    s.set_defaults(fn=_cmd_serve)

    from fastformer import _cli_embed

    _cli_embed.add_parser(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, TypeError) as e:
        return _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
