"""Every ```python block in README.md runs as written (those using fastformer.ray run in tests/test_ray.py)."""

import pathlib
import re

import pytest
from helpers import child_env

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
RAY_BLOCKS = [b for b in BLOCKS if "fastformer.ray" in b]  # need a Ray cluster: tests/test_ray.py runs them
BLOCKS = [b for b in BLOCKS if b not in RAY_BLOCKS]


def test_readme_has_examples():
    assert BLOCKS


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i):
    exec(compile(BLOCKS[i], f"README.md[python block {i}]", "exec"), {})


SH_BLOCKS = [
    b for b in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S) if "pip install" not in b
]
SH_LINES = [line.split("  #")[0].strip() for b in SH_BLOCKS for line in b.splitlines() if line.strip()]


def test_readme_has_command_examples():
    assert any(line.startswith("fastformer generate") for line in SH_LINES)


@pytest.mark.subprocess
@pytest.mark.parametrize("line", SH_LINES)
def test_readme_command_runs(line, tmp_path):
    import shlex
    import subprocess
    import sys

    argv = shlex.split(line)
    assert argv[0] == "fastformer"
    # the console script's module of the fastformer these tests import (in place or installed), from elsewhere
    proc = subprocess.run(
        [sys.executable, "-m", "fastformer", *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
