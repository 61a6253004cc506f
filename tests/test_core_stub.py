"""fastformer/_core.pyi names exactly what the native module exports, and each class's public members."""

import ast
import inspect
import os
import types

from fastformer import _core

STUB = os.path.join(os.path.dirname(_core.__file__), "_core.pyi")


def _stub():
    """Top-level public names of the stub, and per class its public members."""
    tree = ast.parse(open(STUB).read())
    names, classes = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets)
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return {n for n in names if not n.startswith("_")}, classes


def _exported():
    return {n for n, v in vars(_core).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}


def test_stub_names_match_module():
    names, _ = _stub()
    exported = _exported()
    assert not exported - names, f"exported by _core but missing from _core.pyi: {sorted(exported - names)}"
    assert not names - exported, f"in _core.pyi but not exported by _core: {sorted(names - exported)}"


def test_stub_class_members_match():
    _, classes = _stub()
    for name, members in classes.items():
        cls = getattr(_core, name)
        public = {n for n in dir(cls) if not n.startswith("_") and n not in dir(object)}
        stubbed = {n for n in members if not n.startswith("_")}
        assert public == stubbed, f"_core.{name}: module has {sorted(public)}, stub has {sorted(stubbed)}"
        assert "__init__" in members


def test_stub_functions_are_callables():
    names, classes = _stub()
    for n in names:
        v = getattr(_core, n)
        if n in classes:
            assert inspect.isclass(v)
        elif n.isupper():
            assert not callable(v), f"_core.{n} is stubbed as a constant"
        else:
            assert callable(v), f"_core.{n} is stubbed as a function"
