"""Run the fuzz targets one after another for N seconds each and print a summary.

    python fuzz/run.py --seconds 600 [--sanitized] [safetensors gguf tokenizer_json tiktoken config encode]

Each target starts from its committed seeds (fuzz/corpus/<target>/) and grows a working corpus in
fuzz/work/<target>/ (not committed). Python exceptions outside the allowed set are saved, one per kind, to
fuzz/work/findings/<target>/ and fuzzing goes on; a native crash, a timeout (-timeout) or running out of
memory (-rss_limit_mb) stops the target and leaves libFuzzer's crash-* / timeout-* / oom-* file in
fuzz/work/findings/<target>/. --sanitized preloads gcc's libasan for an extension built with
FASTFORMER_SANITIZE=address,undefined (put that build first on PYTHONPATH); gcc's runtime then shadows
libFuzzer's coverage hooks, so use it with --seconds 0 to replay the corpora a coverage-guided run grew.
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["safetensors", "gguf", "tokenizer_json", "tiktoken", "config", "encode"]


def sanitizer_env():
    libs = [
        subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        for lib in ("libasan.so", "libstdc++.so")
    ]
    return {
        "LD_PRELOAD": " ".join(libs),
        "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:allocator_may_return_null=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }


def run_target(name, seconds, extra_env, timeout, rss_mb):
    work = os.path.join(HERE, "work", name)
    findings = os.path.join(HERE, "work", "findings", name)
    os.makedirs(work, exist_ok=True)
    os.makedirs(findings, exist_ok=True)
    before = set(os.listdir(findings))
    limit = f"-max_total_time={seconds}" if seconds > 0 else "-runs=0"  # 0: run each corpus input once
    cmd = [
        sys.executable,
        os.path.join(HERE, f"fuzz_{name}.py"),
        work,
        os.path.join(HERE, "corpus", name),
        limit,
        f"-timeout={timeout}",
        f"-rss_limit_mb={rss_mb}",
        "-print_final_stats=1",
        f"-artifact_prefix={findings}/",
    ]
    env = dict(os.environ, FUZZ_FINDINGS=findings, **extra_env)
    log_path = os.path.join(HERE, "work", f"{name}.log")
    t0 = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE).returncode
    elapsed = time.time() - t0
    text = open(log_path, errors="replace").read()
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    cov = re.findall(r"cov: (\d+)", text)
    new = sorted(set(os.listdir(findings)) - before)
    return dict(
        target=name,
        seconds=round(elapsed),
        rc=rc,
        execs=int(execs[-1]) if execs else None,
        cov=int(cov[-1]) if cov else None,
        corpus=len(os.listdir(work)),
        findings=[f for f in new if not f.endswith(".txt")],
        log=log_path,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="*", default=TARGETS, help=f"any of {', '.join(TARGETS)}")
    p.add_argument("--seconds", type=int, default=60, help="fuzzing time per target; 0 replays the corpora once")
    p.add_argument("--timeout", type=int, default=20, help="seconds one input may take before it is a hang")
    p.add_argument("--rss-limit-mb", type=int, default=4096, help="memory one run may use")
    p.add_argument("--sanitized", action="store_true", help="preload libasan (for a sanitizer build)")
    args = p.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    env = sanitizer_env() if args.sanitized else {}
    rows = []
    for name in args.targets:
        r = run_target(name, args.seconds, env, args.timeout, args.rss_limit_mb)
        rows.append(r)
        print(
            f"{r['target']:15} {r['seconds']:5d}s  rc={r['rc']:<4} execs={r['execs']}  cov={r['cov']}  "
            f"corpus={r['corpus']}  findings={r['findings'] or 'none'}",
            flush=True,
        )
    return 1 if any(r["findings"] or r["rc"] not in (0,) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
