"""The shape of the source tree: no import cycle inside fastformer/ (imports inside functions count), no source
file over 800 lines, and one list of quant types and architectures (the tables) that the rest derives from."""

import ast
import os
import re

import pytest

import fastformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "fastformer")
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "csrc")), reason="needs the source tree")


def _imports(path):
    """fastformer modules a file imports, at any depth (function-level imports included)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("fastformer")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("fastformer"):
            if node.module == "fastformer":  # from fastformer import ops: the submodule, if it is one
                out |= {f"fastformer.{a.name}" for a in node.names if _is_module(f"fastformer.{a.name}")}
            else:
                out.add(node.module)
    return out


def _is_module(name):
    return os.path.exists(os.path.join(ROOT, *name.split(".")) + ".py")


def _graph():
    graph = {}
    for f in sorted(os.listdir(PKG)):
        if f.endswith(".py") and f != "__init__.py":
            name = "fastformer." + f[:-3]
            graph[name] = {m for m in _imports(os.path.join(PKG, f)) if m != name and _is_module(m)}
    return graph


def test_no_import_cycles():
    graph = _graph()
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n) :] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            visit(m)
        stack.pop()

    for n in graph:
        visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports_inside_functions():
    # a check that cannot fail is no check: the model module imports the gguf loader inside Model.load
    assert "fastformer.gguf" in _graph()["fastformer.model"]


@pytest.mark.parametrize("top", ["fastformer", "csrc", "tests", "benchmarks", "tools", "fuzz"])
def test_no_source_file_over_800_lines(top):
    long = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
        for f in files:
            if f.endswith((".py", ".pyx", ".pxi", ".c", ".h", ".inc")) and f not in ("_core.c", "ff_unicode_table.h"):
                n = sum(1 for _ in open(os.path.join(dirpath, f), encoding="utf-8"))
                if n > 800:
                    long.append(f"{os.path.relpath(os.path.join(dirpath, f), ROOT)}: {n}")
    assert not long, long


def test_one_version_source():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    # the [project] table names version as dynamic and takes it from the package; no literal version string
    assert 'dynamic = ["version"]' in text and 'version = { attr = "fastformer.__version__" }' in text
    assert not re.search(r'^version\s*=\s*"', text, re.M)
    assert fastformer.__version__.count(".") == 2


def _test_imports(source):
    """The tests/test_* modules some Python source imports, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n.split(".")[0].startswith("test_")}


def test_no_test_module_imports_another():
    # what test modules share lives in tests/helpers.py (and the fixtures in tests/conftest.py)
    tests = os.path.join(ROOT, "tests")
    found = {}
    for f in sorted(os.listdir(tests)):
        if f.endswith(".py"):
            imported = _test_imports(open(os.path.join(tests, f), encoding="utf-8").read()) - {f[:-3]}
            if imported:
                found[f] = sorted(imported)
    assert not found, found


def test_the_test_import_check_sees_imports():
    source = "import os\nfrom test_model import CASES\ndef f():\n    import test_quant\n"
    assert _test_imports(source) == {"test_model", "test_quant"}


PEERS = {"torch", "transformers", "gguf", "tiktoken", "tokenizers", "llama_cpp", "sentencepiece", "safetensors"}


def _module_level_peers(source):
    """Peers a module imports or importorskips at module level (which would skip or break the whole module)."""
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        for call in ast.walk(node) if isinstance(node, (ast.Assign, ast.Expr)) else ():
            if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "importorskip" and call.args:
                found.add(str(getattr(call.args[0], "value", "")).split(".")[0])
    return found & PEERS


def test_peers_are_skipped_per_test():
    # a test that needs a peer is marked peer(...) (conftest skips it where the peer is missing); a module-level
    # import or importorskip would hide every test of the module, the core ones with them
    tests = os.path.join(ROOT, "tests")
    found = {}
    for f in sorted(os.listdir(tests)):
        if f.endswith(".py"):
            peers = _module_level_peers(open(os.path.join(tests, f), encoding="utf-8").read())
            if peers:
                found[f] = sorted(peers)
    assert not found, found


def test_the_peer_check_sees_module_level_skips():
    source = "import pytest\ntorch = pytest.importorskip('torch')\nfrom gguf import X\ndef f():\n    import tiktoken\n"
    assert _module_level_peers(source) == {"torch", "gguf"}
