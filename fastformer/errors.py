"""fastformer's exception hierarchy (one root, a ValueError for bad files, one for unsupported content), and the
checks the loaders share: finite weights, readable JSON side files."""

import json


class FastformerError(Exception):
    """Root of every exception fastformer raises on purpose."""


class FormatError(FastformerError, ValueError):
    """A file is malformed; the message names the file, the field and what was expected."""


class UnsupportedError(FastformerError, ValueError):
    """Valid content that fastformer does not support (an architecture, a quant type); lists what is."""


class IsaError(FastformerError, ValueError):
    """FASTFORMER_ISA names an unknown ISA path or one this CPU cannot run."""


def require_finite(array, where):
    """Raise FormatError naming `where` if a float array holds NaN or inf.

    A float32 sum is one fast pass and is finite whenever every element is; only a non-finite sum (a NaN
    or inf element, or finite values whose sum overflows) takes the exact element-wise pass.
    """
    import numpy as np

    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if flat.size == 0 or np.isfinite(np.add.reduce(flat, dtype=np.float32)):
            return
    step = 1 << 22
    for start in range(0, flat.size, step):
        bad = np.flatnonzero(~np.isfinite(flat[start : start + step]))
        if bad.size:
            k = start + int(bad[0])
            raise FormatError(f"{where} holds non-finite values (element {k} is {flat[k]}); weights must be finite")


def read_json(path):
    """The JSON value of the file at path, or None if there is no such file; FormatError naming it if invalid."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON: {e}") from None
