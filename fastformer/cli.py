"""The `fastformer` command line.

    fastformer cpu                 show the ISA path, usable paths, CPU features and threads
    fastformer generate PROMPT     generate text (needs the model runtime, not shipped yet)
"""

import argparse
import json
import sys

import fastformer


def _cmd_cpu(args):
    if args.threads is not None:
        fastformer.set_num_threads(args.threads)
    info = fastformer.cpu_info()
    if args.json:
        print(json.dumps(info))
    else:
        print(f"isa:       {info['isa']}")
        print(f"supported: {' '.join(info['supported'])}")
        print(f"features:  {' '.join(info['features'])}")
        print(f"threads:   {info['threads']}")
    return 0


def _cmd_generate(args):
    info = fastformer.cpu_info()
    print(
        "fastformer: text generation needs the model runtime and the embedded default model, which this "
        f"version does not ship yet.\nThe kernels are installed and working ({info['isa']} path, "
        f"{info['threads']} threads): see `fastformer cpu` and `python -c 'import fastformer.ops'`.",
        file=sys.stderr,
    )
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="fastformer", description="Fast CPU inference for transformer language models.")
    p.add_argument("--version", action="version", version=f"fastformer {fastformer.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("cpu", help="show the ISA path in use, usable paths, CPU features and threads")
    c.add_argument("--threads", type=int, help="threads to use (default: usable cores)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(fn=_cmd_cpu)

    g = sub.add_parser("generate", help="generate text from a prompt")
    g.add_argument("prompt", help="the text to continue")
    g.set_defaults(fn=_cmd_generate)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
