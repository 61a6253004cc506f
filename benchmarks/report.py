"""One benchmark report: fastformer beside every installed peer, on the same work in the same run.

    python -m benchmarks.report                 # everything: kernels, tokenizer, end-to-end models
    python -m benchmarks.report --quick         # fewer rounds, 110M model only
    python -m benchmarks.report --no-models     # kernels and tokenizer only
    python -m benchmarks.report --server-model F.gguf   # also fastformer serve vs llama-cpp-python's server
    make bench-report

It runs the pytest-benchmark cases of benchmarks/ (every kernel family and the tokenizer), then the end-to-end
runs of benchmarks/bench_model.py (prefill and decode tokens/s of a random-weight 110M Llama, in F32, Q8_0 and
Q4_0, against llama-cpp-python on the same GGUF files and transformers on the same checkpoint), with
--server-model the serving runs of benchmarks/bench_server.py (tokens/s and time to first token at 1 to 16
clients, `fastformer serve` against llama-cpp-python's server on that GGUF file), and writes

    <out>/report.md    a markdown table per family with the machine's CPU, ISA and thread counts
    <out>/report.png   a chart of the speed-ups (needs matplotlib: pip install .[bench])
    <out>/raw.json     the raw measurements

A speed-up is peer time / fastformer time (above 1 = fastformer is faster), best of several rounds. Peers that
are not installed are listed as skipped, with the reason; nothing is dropped silently.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import fastformer
from benchmarks.compare import ratios

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = {  # module -> (distribution, what it is compared on)
    "numpy": ("numpy", "matmul, linear, norms, activations, softmax"),
    "torch": ("torch", "matmul, linear, attention, norms, activations"),
    "tiktoken": ("tiktoken", "BPE encoding (cl100k_base)"),
    "tokenizers": ("tokenizers", "BPE encoding (cl100k_base)"),
    "transformers": ("transformers", "end-to-end prefill and decode (python -m benchmarks.bench_model)"),
    "llama_cpp": ("llama_cpp_python", "end-to-end prefill and decode (F32, Q8_0, Q4_0 GGUF)"),
}
FAMILIES = [  # (title, benchmark file, group prefixes)
    ("Matrix multiply and linear", "bench_matmul.py"),
    ("Attention", "bench_attention.py"),
    ("Norms and softmax", "bench_norm.py"),
    ("Activations", "bench_act.py"),
    ("Quantized linear", "bench_quant.py"),
    ("Tokenizer", "bench_tokenizer.py"),
]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peers():
    """module -> version string, or None when it is not installed."""
    out = {}
    for mod, (dist, _) in PEERS.items():
        if importlib.util.find_spec(mod) is None:
            out[mod] = None
            continue
        try:
            out[mod] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[mod] = "installed"
    return out


def run_kernels(files, quick, log):
    """Run the pytest-benchmark files; returns {file: [(group, peer, ff_s, peer_s, speedup)]} and skips."""
    out, skips = {}, []
    for title, name in files:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            js = f.name
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            os.path.join(HERE, name),
            "--benchmark-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            f"--benchmark-json={js}",
        ]
        if quick:
            cmd += ["--benchmark-min-rounds=3", "--benchmark-max-time=0.1"]
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        log(f"running {name} ...")
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        log(f"  {name}: exit {proc.returncode} in {time.time() - t0:.0f} s")
        for line in proc.stdout.splitlines():
            if line.startswith("SKIPPED"):
                skips.append(f"{name}: {line.split(' ', 2)[-1]}")
        if proc.returncode not in (0, 5):  # 5 = nothing collected / everything skipped
            tail = "\n".join(proc.stdout.splitlines()[-15:])
            raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{tail}\n{proc.stderr[-2000:]}")
        rows = []
        if os.path.getsize(js):
            rows, _ = ratios(js)
        os.unlink(js)
        out[title] = rows
    return out, skips


def run_models(quick, threads, log, skips):
    """End-to-end rows parsed from benchmarks.bench_model's GGUF table (same file for both engines)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_model",
        "--shapes",
        "110m",
        "--quants",
        "f32",
        "q8_0",
        "q4_0",
        "--no-memory",
        "--runs",
        "2" if quick else "3",
        "--threads",
        *map(str, threads),
    ]
    log("running bench_model (110M F32, Q8_0, Q4_0) ...")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_model failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rows = []
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or cells[0] in ("model", "---") or not cells[2].isdigit():
            continue
        title, t = f"{cells[0].upper()} {cells[1].upper()}", int(cells[2])
        if "skipped" in cells[3]:
            skips.append(f"end-to-end {title} t={t}: {cells[3]}")
            continue
        fp, lp, fd, ld = float(cells[3]), float(cells[4]), float(cells[6]), float(cells[7])
        rows.append({"model": title, "engine": "fastformer", "threads": t, "prefill": fp, "decode": fd})
        rows.append({"model": title, "engine": "llama.cpp", "threads": t, "prefill": lp, "decode": ld})
    return rows


def run_server(path, quick, threads, log, skips):
    """The serving rows of benchmarks.bench_server on the GGUF file `path` ({model, threads, rows})."""
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "server.json")
        cmd = [sys.executable, "-m", "benchmarks.bench_server", "--model", os.path.abspath(path), "--json", js,
               "--threads", str(max(threads)), "--runs", "1" if quick else "2"]  # fmt: skip
        log(f"running bench_server on {path} ...")
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench_server failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        with open(js) as f:
            out = json.load(f)
    if out["skipped"]:
        skips.append(f"serving: llama.cpp column skipped: {out['skipped']}")
    return out


def markdown(meta, kernels, models, skips, server=None):
    info = meta["cpu_info"]
    lines = [
        "# fastformer benchmark report",
        "",
        f"- CPU: {meta['cpu']} ({info['threads']} threads available)",
        f"- fastformer {meta['version']}, ISA path `{info['isa']}`; CPU features: {', '.join(info['features'])}",
        f"- Python {meta['python']}, {meta['date']}"
        + (f"; load average when the run began: {meta['load']}" if meta.get("load") else ""),
        "- peers: " + ", ".join(f"{k} {v}" for k, v in meta["peers"].items() if v),
        "",
        "Speed-up = peer time / fastformer time (above 1: fastformer is faster), best of several rounds, "
        "both measured in the same run. `t=N` is the thread count given to every engine.",
        "",
    ]
    for title, rows in kernels.items():
        if not rows:
            continue
        lines += [
            f"## {title}",
            "",
            "| case | peer | fastformer (ms) | peer (ms) | speed-up |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [f"| {g} | {p} | {f * 1e3:.3f} | {t * 1e3:.3f} | {r:.2f}x |" for g, p, f, t, r in rows]
        lines.append("")
    if models:
        lines += [
            "## End-to-end generation (tokens/s)",
            "",
            "Prefill = a 1-token generation from a 128-token prompt; decode = the extra time of 128 more "
            "tokens. Same GGUF file for fastformer and llama.cpp; transformers runs the HF checkpoint.",
            "",
            "| model | engine | threads | prefill tok/s | decode tok/s | fastformer prefill x | fastformer decode x |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        ff = {(r["model"], r["threads"]): r for r in models if r["engine"] == "fastformer"}
        for r in models:
            base = ff[(r["model"], r["threads"])]
            lines.append(
                f"| {r['model']} | {r['engine']} | {r['threads']} | {r['prefill']:.1f} | {r['decode']:.1f}"
                f" | {base['prefill'] / r['prefill']:.2f} | {base['decode'] / r['decode']:.2f} |"
            )
        lines.append("")
    if server:
        lines += [
            "## Serving (tokens/s, time to first token)",
            "",
            f"`python -m benchmarks.bench_server` on {server['model']}, {server['threads']} threads: N clients each "
            "send streaming greedy completions one after another; tokens/s over all of them, TTFT with queueing.",
            "",
            "| clients | engine | tokens/s | TTFT p50 (ms) | TTFT p95 (ms) | fastformer tokens/s x |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        ff = {r["clients"]: r for r in server["rows"] if r["engine"] == "fastformer"}
        for r in server["rows"]:
            lines.append(
                f"| {r['clients']} | {r['engine']} | {r['tokens_per_s']:.1f} | {r['ttft_p50'] * 1e3:.0f}"
                f" | {r['ttft_p95'] * 1e3:.0f} | {ff[r['clients']]['tokens_per_s'] / r['tokens_per_s']:.2f} |"
            )
        lines.append("")
    lines += ["## Skipped", ""]
    missing = [f"- {m}: not installed (compares {PEERS[m][1]})" for m, v in meta["peers"].items() if v is None]
    lines += (missing + [f"- {s}" for s in skips]) or ["- nothing"]
    lines += ["", 'Reproduce: `pip install ".[bench]" && python -m benchmarks.report` (or `make bench-report`).', ""]
    return "\n".join(lines)


def chart(path, meta, kernels, models):
    """Speed-ups as bars, one colour per peer: per kernel family the geometric mean over its cases (whiskers: the
    slowest and fastest case), per end-to-end model and thread count prefill and decode; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    bars = []  # (label, peer, value, low, high)
    for title, rows in kernels.items():
        by_peer = defaultdict(list)
        for _, p, _, _, r in rows:
            by_peer[p].append(r)
        for p, rs in sorted(by_peer.items()):
            gm = math.exp(sum(math.log(r) for r in rs) / len(rs))
            bars.append((f"{title} ({len(rs)} cases)", p, gm, min(rs), max(rs)))
    ff = {(r["model"], r["threads"]): r for r in models if r["engine"] == "fastformer"}
    for r in models:
        if r["engine"] != "fastformer":
            base = ff[(r["model"], r["threads"])]
            for what in ("prefill", "decode"):
                v = base[what] / r[what]
                bars.append((f"{r['model']} {what} t={r['threads']}", r["engine"], v, v, v))
    if not bars:
        return False
    names = sorted({b[1] for b in bars})
    colours = dict(zip(names, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(10, 0.26 * len(bars) + 1.6))
    y = list(range(len(bars)))
    vals = [b[2] for b in bars]
    err = [[b[2] - b[3] for b in bars], [b[4] - b[2] for b in bars]]
    ax.barh(y, vals, xerr=err, color=[colours[b[1]] for b in bars], error_kw={"elinewidth": 0.7, "capsize": 2})
    ax.set_yticks(y, [f"{b[0]} vs {b[1]}" for b in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(
        "speed-up of fastformer (peer time / fastformer time, log scale; kernels: geometric mean, whiskers min-max)",
        fontsize=8,
    )
    info = meta["cpu_info"]
    ax.set_title(
        f"fastformer {meta['version']} on {meta['cpu']}, ISA {info['isa']}, {info['threads']} threads", fontsize=9
    )
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in names], names, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="output directory")
    ap.add_argument("--quick", action="store_true", help="fewer rounds; for a smoke run")
    ap.add_argument("--no-models", action="store_true", help="skip the end-to-end model runs")
    ap.add_argument("--only", nargs="+", metavar="FILE", help="only these benchmark files (e.g. bench_norm.py)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts of the model runs")
    ap.add_argument("--server-model", metavar="GGUF", help="also run benchmarks.bench_server on this GGUF file")
    ap.add_argument("--replot", metavar="RAW", help="rewrite report.md and report.png from a raw.json; run nothing")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    os.makedirs(args.out, exist_ok=True)
    if args.replot:
        raw = json.load(open(args.replot))
        kernels = {k: [tuple(r) for r in v] for k, v in raw["kernels"].items()}
        return write(args.out, raw["meta"], kernels, raw["models"], raw["skipped"], log, raw.get("server"))
    meta = {
        "cpu": cpu_name(),
        "cpu_info": fastformer.cpu_info(),
        "version": fastformer.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "peers": peers(),
        "load": " / ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    files = [f for f in FAMILIES if not args.only or f[1] in args.only]
    kernels, skips = run_kernels(files, args.quick, log)
    models = []
    if not args.no_models and not args.only:
        models = run_models(args.quick, args.threads, log, skips)
        for eng, mod in (("llama.cpp", "llama_cpp"),):
            if meta["peers"][mod] and not any(r["engine"] == eng for r in models):
                skips.append(f"end-to-end: {eng} is installed but produced no rows")
    server = run_server(args.server_model, args.quick, args.threads, log, skips) if args.server_model else None
    write(args.out, meta, kernels, models, skips, log, server)


def write(out, meta, kernels, models, skips, log, server=None):
    # fastformer's own variants (e.g. bench_quant's r16 layout) are not peers: python -m benchmarks.compare shows them
    kernels = {t: [r for r in rows if not r[1].startswith("fastformer")] for t, rows in kernels.items()}
    md = markdown(meta, kernels, models, skips, server)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(md)
    raw = {"meta": meta, "kernels": kernels, "models": models, "skipped": skips, "server": server}
    with open(os.path.join(out, "raw.json"), "w") as f:
        json.dump(raw, f, indent=1)
    png = chart(os.path.join(out, "report.png"), meta, kernels, models)
    print(md)
    log(f"wrote {out}/report.md" + (" and report.png" if png else " (no chart: pip install matplotlib)"))


if __name__ == "__main__":
    main()
