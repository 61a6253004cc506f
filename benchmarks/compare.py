"""Ratios of peers' time to fastformer's, per benchmark group, from a pytest-benchmark JSON file.

    python -m benchmarks.compare .benchmarks/latest.json

A ratio above 1 means fastformer is faster than that peer; times are the best (min) of all rounds.
"""

import json
import sys
from collections import defaultdict


def ratios(path):
    data = json.load(open(path))
    groups = defaultdict(dict)
    for b in data["benchmarks"]:
        impl = b["params"].get("impl", b["name"])
        groups[b["group"]][impl] = b["stats"]["min"]
    rows = []
    for group, times in sorted(groups.items()):
        ff = times.get("fastformer")
        for impl, t in sorted(times.items()):
            if impl != "fastformer" and ff:
                rows.append((group, impl, ff, t, t / ff))
    return rows, data.get("fastformer", {})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rows, meta = ratios(argv[0])
    info = meta.get("cpu_info", {})
    print(f"isa={info.get('isa')} features={','.join(info.get('features', []))}\n")
    print("| case | peer | fastformer (ms) | peer (ms) | speed-up |")
    print("|---|---|---:|---:|---:|")
    for group, impl, ff, t, r in rows:
        print(f"| {group} | {impl} | {ff * 1e3:.3f} | {t * 1e3:.3f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
