"""Quantized linear (q8_0, q4_0) at M=1 (decode) and M=128 (prefill) against fp32 ops.linear and numpy; the
256-weight super-block types (q2_k, q3_k, q5_k, iq4_xs) against q4_k in the same run.

Groups are "linear_<qtype> M=<m> (K, N) t=<threads>"; impl "fastformer" is the quantized op on ggml's layout,
"fastformer_r16" on the r16 layout models repack q8_0/q4_0 into when the AVX-512 VNNI kernels run,
"fastformer_f32" the fp32 op on the same weights, "numpy" x @ w.T. Each case records the weight bytes it streams
and, at M=1, the achieved GB/s in extra_info["weight_GBps"]; groups "linear_k M=<m> ..." have one impl per
super-block type (the report adds each one's GB/s ratio to q4_k's); print them with
    python -m benchmarks.bench_quant results.json
"""

import json
import sys

import numpy as np
import pytest

from benchmarks.bench_stream import random_blocks
from benchmarks.conftest import set_threads
from fastformer import _core, ops, quantize

SHAPES = [(768, 768), (768, 2048), (2048, 768), (2048, 5632), (5632, 2048), (2048, 32000)]  # (K, N)


def _inputs(k, n, m):
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((n, k), dtype=np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastformer", "fastformer_r16", "fastformer_f32", "numpy"])
@pytest.mark.parametrize("m", [1, 128])
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_linear_quant(benchmark, shape, qtype, m, impl, threads):
    set_threads(threads)
    k, n = shape
    x, w = _inputs(k, n, m)
    qt = quantize(w, qtype)
    if impl.startswith("fastformer") and impl != "fastformer_f32":
        fn, nbytes = (lambda: ops.linear(x, qt)), qt.nbytes
        if impl == "fastformer_r16":
            r16 = _core.repack_r16(qt.data, qt.ggml_type, k)
            fn = lambda: _core.linear_q(x, r16, qt.ggml_type | _core.QTYPE_R16, k)  # noqa: E731
        # the quantized result is the fp32 product on the dequantized weights, up to the 8-bit activations
        wd = qt.dequantize()
        want = x.astype(np.float64) @ wd.astype(np.float64).T
        np.testing.assert_allclose(fn(), want, rtol=0, atol=0.02 * np.abs(want).max())
    else:
        fn = (lambda: ops.linear(x, w)) if impl == "fastformer_f32" else (lambda: x @ w.T)
        nbytes = w.nbytes
        want = x.astype(np.float64) @ w.astype(np.float64).T
        np.testing.assert_allclose(fn(), want, rtol=1e-4, atol=1e-3 * np.sqrt(k))
    benchmark.group = f"linear_{qtype} M={m} {shape} t={threads}"
    benchmark.extra_info["weight_bytes"] = nbytes
    benchmark(fn)
    if m == 1:
        benchmark.extra_info["weight_GBps"] = nbytes / benchmark.stats.stats.min / 1e9


KTYPES = ["q4_k", "q2_k", "q3_k", "q5_k", "iq4_xs"]


def _kblocks(w, qtype):
    """q4_k has no quantizer here: its random blocks with sane fp16 d/dmin; the others quantize w."""
    if qtype != "q4_k":
        return quantize(w, qtype)
    return random_blocks("q4_k", *w.shape, seed=1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m", [1, 128])
@pytest.mark.parametrize("impl", KTYPES)
@pytest.mark.parametrize("shape", [(2048, 5632), (5632, 2048), (2048, 32000)], ids=str)
def test_linear_k(benchmark, shape, impl, m, threads):
    set_threads(threads)
    k, n = shape
    x, w = _inputs(k, n, m)
    qt = _kblocks(w, impl)
    fn = lambda: ops.linear(x, qt)  # noqa: E731
    wd = qt.dequantize()
    want = x.astype(np.float64) @ wd.astype(np.float64).T
    np.testing.assert_allclose(fn(), want, rtol=0, atol=0.02 * np.abs(want).max())
    benchmark.group = f"linear_k M={m} {shape} t={threads}"
    benchmark.extra_info["weight_bytes"] = qt.nbytes
    benchmark(fn)
    if m == 1:
        benchmark.extra_info["weight_GBps"] = qt.nbytes / benchmark.stats.stats.min / 1e9


def main(argv=None):
    """Print GB/s of weight bytes per M=1 case from a --benchmark-json file."""
    data = json.load(open((sys.argv[1:] if argv is None else argv)[0]))
    print("| case | impl | ms | weight GB/s | x q4_k |\n|---|---|---:|---:|---:|")
    q4k = {b["group"]: b["extra_info"].get("weight_GBps") for b in data["benchmarks"] if b["params"]["impl"] == "q4_k"}
    for b in sorted(data["benchmarks"], key=lambda b: (b["group"], b["params"]["impl"])):
        if "weight_GBps" in b["extra_info"]:
            gbps, base = b["extra_info"]["weight_GBps"], q4k.get(b["group"])
            ratio = f"{gbps / base:.2f}" if base else ""
            print(f"| {b['group']} | {b['params']['impl']} | {b['stats']['min'] * 1e3:.3f} | {gbps:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
