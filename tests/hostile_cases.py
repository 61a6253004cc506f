"""Hostile inputs for tests/test_hostile.py: the catalogue of cases, by theme in hostile_safetensors.py,
hostile_gguf.py, hostile_kinds.py and hostile_arguments.py, over the valid fixtures and writers of hostile_fixtures.py.

A case builds its malformed input from the valid fixtures and makes one call. `main` runs one case in a
child process (under the memory limit the parent sets) and prints what it raised as one JSON line.
"""

import json
import sys

import hostile_arguments  # noqa: F401  (each case module adds its cases to CASES)
import hostile_gguf  # noqa: F401
import hostile_kinds  # noqa: F401
import hostile_safetensors  # noqa: F401
from hostile_fixtures import CASES, Ctx, build_fixtures

__all__ = ["CASES", "build_fixtures", "main"]


# ---- the child process ----


def main(argv):
    """Run case argv[0] with fixtures argv[1] in scratch dir argv[2]; print one JSON line of the outcome."""
    name, fixtures, tmp = argv
    fn = CASES[name][0]
    try:
        fn(Ctx(fixtures, tmp))
    except BaseException as e:  # noqa: BLE001 - the parent judges the exception
        out = {"raised": True, "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
    else:
        out = {"raised": False}
    sys.stdout.write("\n" + json.dumps(out) + "\n")
