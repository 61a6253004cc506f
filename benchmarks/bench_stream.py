"""The decode kernels' read rate against the machine's read bandwidth, measured in turns.

One activation row against a weight of about 512 MB, far above the caches, so every call streams W from memory, as a
decode step does. W is in the layout Model.load gives it on this path: 16-row groups (r16) where the r16 kernels are
the fast ones (avx512 with VNNI), else plain rows (on other paths the r16 kernels are scalar twins, for tests
only). Each call is paired with the read probe (`fastformer.read_bandwidth`, as bench_model's paired share takes
it) run just before and just after it, and its rate is divided by the larger of the two: the host's bandwidth
drifts by a fifth within minutes, so only a probe of the same moment is a fair roofline. (A decode step's own
share, with its matrices and the work between them, is bench_model's paired column.)

    python -m benchmarks.bench_stream --threads 2 --k 2048 5632 --pairs 15
"""

import argparse
import time

import numpy as np

import fastformer
from fastformer import _core
from fastformer.quant import QTYPES, QuantizedTensor

TYPES = ["q4_k", "q5_k", "q6_k", "q3_k", "q2_k", "q4_0", "q8_0"]
# where each type keeps its fp16 scales: (offset of d, of dmin or None)
SCALES = {"q6_k": (208, None), "q3_k": (108, None), "q2_k": (80, 82), "q4_k": (0, 2), "q5_k": (0, 2)}
W_BYTES = 512 << 20


def random_blocks(qtype, n, k, seed=0):
    """An (n, k) QuantizedTensor of random blocks with sane fp16 scales (1e-3): kernel speed does not depend on the
    values, and this needs no quantizer (TYPES' types)."""
    _, block, size = QTYPES[qtype][:3]
    raw = np.random.default_rng(seed).integers(0, 256, (n, k // block, size), dtype=np.uint8)
    half = np.full((n, k // block, 1), 1e-3, np.float16).view(np.uint8)
    for off in SCALES.get(qtype, (0, None)):
        if off is not None:
            raw[..., off : off + 2] = half
    return QuantizedTensor.from_bytes(raw.reshape(n, -1), qtype, (n, k))


def weight(qtype, k, nbytes):
    """A W of about nbytes in the layout the loader picks (r16 or rows) and its type id for linear_q."""
    _, block, size = QTYPES[qtype][:3]
    qt = random_blocks(qtype, max(16, nbytes // (k // block * size) // 16 * 16), k)
    if not (_core.repack_r16_pays() and qtype in _core.qtype_names(_core.QF_R16).split("/")):
        return qt.data, qt.ggml_type
    return _core.repack_r16(qt.data, qt.ggml_type, k), qt.ggml_type | _core.QTYPE_R16


def shares(qtype, k, pairs):
    """(kernel GB/s, share of the probe) of each call."""
    w, dtype = weight(qtype, k, W_BYTES)
    x = np.random.default_rng(1).standard_normal((1, k), dtype=np.float32)
    out = []
    for _ in range(pairs):
        p0 = fastformer.read_bandwidth(runs=3)
        t0 = time.perf_counter()
        _core.linear_q(x, w, dtype, k)
        rate = w.nbytes / (time.perf_counter() - t0) / 1e9
        out.append((rate, rate / max(p0, fastformer.read_bandwidth(runs=3))))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, nargs="+", default=[2048, 5632], help="columns of W (multiples of 256)")
    ap.add_argument("--types", nargs="+", default=TYPES, choices=TYPES)
    ap.add_argument("--pairs", type=int, default=15, help="calls, each between two probes")
    args = ap.parse_args(argv)
    if any(k % 256 for k in args.k) or args.pairs < 1:
        ap.error("--k must be multiples of 256 and --pairs positive")
    fastformer.set_num_threads(args.threads)
    print(
        f"decode kernels ({_core.current_isa()}, {'r16' if _core.repack_r16_pays() else 'row'} layout), "
        f"{args.threads} thread(s), W about {W_BYTES >> 20} MB, "
        f"{args.pairs} calls between probes\n"
    )
    print("| type | K | kernel GB/s (median) | share of the probe: median | quartiles |\n|---|---:|---:|---:|---|")
    for k in args.k:
        for qtype in args.types:
            r = np.array(shares(qtype, k, args.pairs))
            q1, med, q3 = np.percentile(r[:, 1], [25, 50, 75])
            print(f"| {qtype} | {k} | {np.median(r[:, 0]):.1f} | {med:.0%} | {q1:.0%}-{q3:.0%} |", flush=True)


if __name__ == "__main__":
    main()
