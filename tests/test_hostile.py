"""Hostile files and arguments end in a clear Python exception: never a crash, hang or runaway allocation.

Each case of tests/hostile_cases.py runs in its own child process with a time limit and an address-space
limit; the child reports the exception it raised, and the test checks its type and its message (which must
name the file or argument and the problem). A child killed by a signal fails with the signal's name.
"""

import builtins
import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import child_env
from hostile_cases import CASES, build_fixtures

import fastformer

if "libasan" in os.environ.get("LD_PRELOAD", ""):  # asan reserves terabytes of address space and owns SIGSEGV
    pytest.skip("the memory limits and signal checks cannot run under AddressSanitizer", allow_module_level=True)

pytestmark = pytest.mark.subprocess
TIMEOUT = 60  # seconds per case (a case takes well under one)
MEMORY = 3 * 2**30  # address-space limit of the child, bytes
TESTS = os.path.dirname(os.path.abspath(__file__))
CHILD = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))\n"
    "import hostile_cases\n"
    "hostile_cases.main(sys.argv[1:])\n"
)


def run_child(code, args, cwd, timeout=TIMEOUT):
    """Run python `code` in a child outside the source tree; the JSON object it printed last.

    Fails the test on a hang, on death by a signal (naming it) and on any other abnormal exit."""
    env = child_env(TESTS)  # the case modules, and the fastformer these tests import (in place or installed)
    try:
        r = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[:1]}: no answer within {timeout} s (hang?)")
    if r.returncode < 0:
        pytest.fail(f"{args[:1]}: killed by {signal.Signals(-r.returncode).name}\n{r.stderr[-2000:]}")
    if r.returncode != 0:
        pytest.fail(f"{args[:1]}: exit status {r.returncode}\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return build_fixtures(str(tmp_path_factory.mktemp("hostile")))


def _exception_class(name):
    return getattr(fastformer, name, None) or getattr(builtins, name)


def test_catalogue_is_large_enough():
    assert len(CASES) >= 45


@pytest.mark.parametrize("name", list(CASES))
def test_hostile(name, fixtures, tmp_path):
    _, exc, match, where = CASES[name]
    out = run_child(CHILD.format(mem=MEMORY), [name, fixtures, str(tmp_path)], cwd=str(tmp_path))
    if exc is None:
        assert not out["raised"], f"{name} raised {out['mro'][0]}: {out['message']}"
        return
    assert out["raised"], f"{name}: no exception"
    want = _exception_class(exc)
    assert want.__name__ in out["mro"], f"{name}: {out['mro'][0]} ({out['message']}), expected {exc}"
    if issubclass(want, fastformer.FastformerError):
        assert "ValueError" in out["mro"] and "FastformerError" in out["mro"]
    msg = out["message"]
    assert __import__("re").search(match, msg), f"{name}: message {msg!r} does not match {match!r}"
    if where is not None:
        assert where in msg, f"{name}: message {msg!r} does not name {where!r}"


# ---- the harness itself ----


def test_harness_names_the_signal(tmp_path):
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(pytest.fail.Exception, match="SIGSEGV"):
        run_child(code, ["crash"], cwd=str(tmp_path))


def test_harness_catches_a_hang(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="hang"):
        run_child("import time; time.sleep(30)", ["sleep"], cwd=str(tmp_path), timeout=1)


def test_memory_limit_applies(tmp_path):
    code = CHILD.format(mem=MEMORY).split("import hostile_cases")[0] + (
        "import json, numpy as np\n"
        "try:\n    np.ones(2 ** 32, np.uint8)\n    print(json.dumps({'raised': False}))\n"
        "except MemoryError:\n    print(json.dumps({'raised': True}))\n"
    )
    assert run_child(code, ["alloc"], cwd=str(tmp_path))["raised"]
