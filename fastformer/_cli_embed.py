"""`fastformer embed`: sentence embeddings of the lines of a file (or stdin) as .npy or JSON lines.

fastformer embed --model DIR texts.txt --output vectors.npy
cat texts.txt | fastformer embed --model DIR --format jsonl -
"""

import io
import json
import sys

import numpy as np

from fastformer.quant import QUANTIZABLE_AT_LOAD


def add_parser(sub):
    e = sub.add_parser("embed", help="sentence embeddings of each line of a file (or stdin), as npy or jsonl")
    e.add_argument("file", nargs="?", default="-", help="UTF-8 text, one input per line; - for stdin (default)")
    e.add_argument("--model", required=True, help="an encoder: a BERT or sentence-transformers directory")
    e.add_argument("--output", "-o", help="write here instead of stdout")
    e.add_argument(
        "--format", choices=("npy", "jsonl"), default=None, help="default: npy for a .npy output, else jsonl"
    )
    e.add_argument("--pooling", help="override the model's pooling: mean, cls, max, lasttoken, ... (comma-separated)")
    norm = e.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None, help="L2-normalize")
    norm.add_argument("--no-normalize", dest="normalize", action="store_false", help="do not normalize")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--quantize", choices=QUANTIZABLE_AT_LOAD, default=None)
    e.set_defaults(fn=run)


def _read_lines(path):
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    return text.splitlines()


def run(args):
    import fastformer

    model = fastformer.Model.load(args.model, quantize=args.quantize, threads=args.threads)
    pooling = args.pooling.split(",") if args.pooling else None
    vectors = model.embed(_read_lines(args.file), pooling=pooling, normalize=args.normalize, batch_size=args.batch_size)
    fmt = args.format or ("npy" if (args.output or "").endswith(".npy") else "jsonl")
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, vectors)
        data = buf.getvalue()
    else:
        data = "".join(json.dumps({"index": i, "embedding": v.tolist()}) + "\n" for i, v in enumerate(vectors))
        data = data.encode("utf-8")
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
