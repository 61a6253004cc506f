"""Every `>>>` example in the public modules' docstrings runs and prints what it shows."""

import doctest
import importlib

import numpy as np
import pytest

import fastformer

MODULES = [
    "fastformer",
    "fastformer.ops",
    "fastformer.quant",
    "fastformer.sampling",
    "fastformer.tokenizer",
    "fastformer.model",
    "fastformer.safetensors",
    "fastformer.gguf",
    "fastformer.gguf_write",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    globs = {"np": np, "fastformer": fastformer, "ops": fastformer.ops}
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
