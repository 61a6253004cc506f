"""fastformer: fast CPU inference for transformer language models.

C kernels with SIMD paths chosen at import (override with FASTFORMER_ISA=<name>; the decode kernels' software
prefetch distance with FASTFORMER_PREFETCH=<bytes>), a persistent thread pool, and numpy-facing ops in
`fastformer.ops`.

>>> import fastformer
>>> fastformer.cpu_info()["supported"][0]
'scalar'
"""

import os as _os

from fastformer import _core
from fastformer.errors import FastformerError, FormatError, IsaError, UnsupportedError

__version__ = "0.1.0"


def _select_isa_from_env():
    name = _os.environ.get("FASTFORMER_ISA", "").strip()
    if not name:
        return
    if name not in _core.isa_names():
        raise IsaError(f"FASTFORMER_ISA={name!r} is not a known ISA path; known: {', '.join(_core.isa_names())}")
    if name not in _core.supported_isas():
        raise IsaError(
            f"FASTFORMER_ISA={name!r} is not supported on this CPU; supported: {', '.join(_core.supported_isas())}"
        )
    _core.set_isa(name)


_select_isa_from_env()


def _decode_prefetch_from_env():
    text = _os.environ.get("FASTFORMER_PREFETCH", "").strip()
    if not text:
        return
    try:
        _core.set_decode_prefetch(int(text))
    except ValueError:
        raise ValueError(
            f"FASTFORMER_PREFETCH={text!r} must be a byte count, a multiple of 64 in 0..65536 (0: no software prefetch)"
        ) from None


_decode_prefetch_from_env()


def cpu_info():
    """What the kernels run on: the ISA path in use, the usable paths, CPU features, threads, and how far ahead
    the decode kernels prefetch the weights (bytes_ahead, FASTFORMER_PREFETCH; 0: none) when a model's weights
    exceed above_bytes (half the L3 cache).

    >>> sorted(fastformer.cpu_info())
    ['features', 'isa', 'prefetch', 'supported', 'threads']
    """
    return {
        "isa": _core.current_isa(),
        "supported": _core.supported_isas(),
        "features": _core.cpu_features(),
        "threads": _core.get_num_threads(),
        "prefetch": dict(zip(("bytes_ahead", "above_bytes"), _core.decode_prefetch())),
    }


def read_bandwidth(nbytes=1 << 30, *, runs=5):
    """Memory read bandwidth in GB/s (1e9 bytes/s) at the current thread count: the best of `runs` sweeps of the
    thread pool over a buffer of `nbytes` (keep it well above the caches). The roofline a memory-bound decode
    step is measured against (benchmarks/bench_model.py)."""
    import time

    import numpy as np

    if not isinstance(nbytes, int) or not 8 <= nbytes <= 1 << 36:
        raise ValueError(f"read_bandwidth: nbytes must be an int in 8..2**36, got {nbytes!r}")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"read_bandwidth: runs must be a positive int, got {runs!r}")
    a = np.ones(nbytes // 8, dtype=np.uint64)  # written, so its pages exist before the timed reads
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        if _core.read_sum(a) != a.size:
            raise RuntimeError("read_bandwidth: the read sum is wrong")
        best = min(best, time.perf_counter() - t0)
    return a.nbytes / best / 1e9


def set_num_threads(n):
    """Use `n` threads (1..256) in every later kernel call; the default is the number of usable cores."""
    _core.set_num_threads(n)


def get_num_threads():
    """The number of threads kernels use."""
    return _core.get_num_threads()


from fastformer import ops  # noqa: E402
from fastformer.model import Model  # noqa: E402
from fastformer.quant import QuantizedTensor, quantize  # noqa: E402
from fastformer.tokenizer import StreamDecoder, Tokenizer, train_bpe  # noqa: E402

__all__ = [
    "FastformerError",
    "FormatError",
    "IsaError",
    "Model",
    "QuantizedTensor",
    "StreamDecoder",
    "Tokenizer",
    "UnsupportedError",
    "cpu_info",
    "get_num_threads",
    "ops",
    "quantize",
    "read_bandwidth",
    "set_num_threads",
    "train_bpe",
]
