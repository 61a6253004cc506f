"""Shared pieces of the fuzz targets: the atheris entry point, scratch files, the expected-exception check.

A target module defines `test_one_input(data: bytes)` and calls `main(test_one_input)` under __main__;
tests/test_fuzz_regressions.py imports the same function to replay the seed corpora and the crashers.
"""

import os
import struct
import sys
import tempfile
import traceback

import fastformer

# the exceptions a loader may raise on a bad file; anything else escaping a target is a finding
LOADER_ERRORS = (fastformer.FormatError, fastformer.UnsupportedError)

_scratch = None


def scratch_dir():
    """A per-process temporary directory the targets write their inputs into."""
    global _scratch
    if _scratch is None:
        _scratch = tempfile.mkdtemp(prefix="fastformer-fuzz-")
    return _scratch


def write_scratch(name, data):
    """Write `data` to `name` in the scratch directory; returns the path."""
    path = os.path.join(scratch_dir(), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


class Input:
    """Typed values read off the front of a fuzz input (plain Python, so replaying needs no atheris): every
    read is deterministic, and an exhausted input reads as zeros."""

    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def _take(self, n):
        b = self.data[self.pos : self.pos + n]
        self.pos += len(b)
        return b.ljust(n, b"\0")

    def int_in_range(self, lo, hi):
        """An int in [lo, hi]."""
        span = hi - lo + 1
        width = max(1, (span.bit_length() + 7) // 8)
        return lo + int.from_bytes(self._take(width), "little") % span

    def bool(self):
        return bool(self._take(1)[0] & 1)

    def pick(self, values):
        return values[self.int_in_range(0, len(values) - 1)]

    def int64(self):
        return int.from_bytes(self._take(8), "little", signed=True)

    def float(self):
        """Any double, inf and nan included."""
        return struct.unpack("<d", self._take(8))[0]

    def text(self, max_chars):
        """A str of up to max_chars code points: ASCII, BMP or any code point (lone surrogates included)."""
        kind, n = self.int_in_range(0, 2), self.int_in_range(0, max_chars)
        top = (0x7F, 0xFFFF, 0x10FFFF)[kind]
        out = []
        for _ in range(n):
            if self.pos >= len(self.data):
                break
            out.append(chr(self.int_in_range(0, top)))
        return "".join(out)

    def remaining(self):
        """The unread bytes."""
        rest, self.pos = self.data[self.pos :], len(self.data)
        return rest


def _signature(exc):
    """type and innermost fastformer (or fuzz target) frame of an exception: one finding per signature."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "fastformer" in frame.filename or "fuzz" in frame.filename:
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return f"{type(exc).__name__}-{where}"


def _keep_going(test_one_input, out_dir):
    """Save each new kind of finding (input + traceback) to out_dir and go on fuzzing."""
    seen = set(os.listdir(out_dir)) if os.path.isdir(out_dir) else set()

    def run(data):
        try:
            test_one_input(data)
        except Exception as e:
            sig = _signature(e).replace("/", "_")
            if sig + ".bin" in seen:
                return
            seen.add(sig + ".bin")
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, sig + ".bin"), "wb") as f:
                f.write(data)
            with open(os.path.join(out_dir, sig + ".txt"), "w") as f:
                f.write("".join(traceback.format_exception(e))[-6000:])
            print(f"FINDING {sig}", file=sys.stderr, flush=True)

    return run


def main(test_one_input):
    """Run `test_one_input` under atheris with Python coverage (argv passes to libFuzzer). With
    FUZZ_FINDINGS=dir, Python exceptions are saved there, one file per kind, and fuzzing goes on; without it
    the first exception stops the run as usual. Native crashes and timeouts always stop it."""
    import atheris

    out_dir = os.environ.get("FUZZ_FINDINGS")
    target = _keep_going(test_one_input, out_dir) if out_dir else test_one_input
    atheris.instrument_all()
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
