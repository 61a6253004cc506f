"""Decode (M=1) int8 dot kernels of the legacy types q4_1, q5_0, q5_1, iq4_nl against q4_0 and q8_0 in the same run.

Groups are "qdot M=1 (K, N) t=<threads>"; impl is the weight type, every one through ops.linear on ggml's layout
(the same activation quantizer, row split and thread pool).
Each case is checked against a float64 product of the dequantized weights first, and records the weight bytes it
streams and the achieved GB/s in extra_info["weight_GBps"]; print them with
    python -m benchmarks.bench_quant_legacy results.json
"""

import json
import sys

import numpy as np
import pytest

from benchmarks.conftest import set_threads
from fastformer import ops, quantize

SHAPES = [(768, 768), (768, 2048), (2048, 5632), (5632, 2048), (2048, 32000)]  # (K, N)
IMPLS = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_qdot_decode(benchmark, shape, impl, threads):
    set_threads(threads)
    k, n = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, k), dtype=np.float32), rng.standard_normal((n, k), dtype=np.float32)
    qt = quantize(w, impl)
    fn, nbytes, wd = (lambda: ops.linear(x, qt)), qt.nbytes, qt.dequantize()
    # the quantized result is the fp32 product on the dequantized weights, up to the 8-bit activations
    want = x.astype(np.float64) @ wd.astype(np.float64).T
    np.testing.assert_allclose(fn(), want, rtol=0, atol=0.02 * np.abs(want).max())
    benchmark.group = f"qdot M=1 {shape} t={threads}"
    benchmark.extra_info["weight_bytes"] = nbytes
    benchmark(fn)
    benchmark.extra_info["weight_GBps"] = nbytes / benchmark.stats.stats.min / 1e9


def main(argv=None):
    """Print weight GB/s per case and its ratio to q4_0 in the same group from a --benchmark-json file."""
    data = json.load(open((sys.argv[1:] if argv is None else argv)[0]))
    groups = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"], {})[b["params"]["impl"]] = b
    print("| case | type | ms | weight GB/s | x q4_0 time |\n|---|---|---:|---:|---:|")
    for group in sorted(groups):
        base = groups[group].get("q4_0")
        for impl in IMPLS:
            b = groups[group].get(impl)
            if b is None:
                continue
            t = b["stats"]["min"]
            ratio = f"{t / base['stats']['min']:.2f}" if base else "-"
            print(f"| {group} | {impl} | {t * 1e3:.3f} | {b['extra_info']['weight_GBps']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
