"""fastformer: fast CPU inference for transformer language models.

C kernels with SIMD paths chosen at import (override with FASTFORMER_ISA=<name>), a persistent thread
pool, and numpy-facing ops in `fastformer.ops`.

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


def cpu_info():
    """What the kernels run on: the ISA path in use, the usable paths, CPU features and threads.

    >>> sorted(fastformer.cpu_info())
    ['features', 'isa', 'supported', 'threads']
    """
    return {
        "isa": _core.current_isa(),
        "supported": _core.supported_isas(),
        "features": _core.cpu_features(),
        "threads": _core.get_num_threads(),
    }


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
    "set_num_threads",
    "train_bpe",
]
