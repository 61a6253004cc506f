"""cl100k_base on the multilingual corpus (tests/corpus.py) against tiktoken: whole documents and line by
line."""

import pytest
from corpus import DOCS

pytestmark = pytest.mark.peer("tiktoken")


@pytest.mark.parametrize("name", sorted(DOCS))
def test_cl100k_documents_match_tiktoken(name, cl100k, tiktoken_cl100k):
    text = DOCS[name]
    ids = cl100k.encode(text)
    assert ids == tiktoken_cl100k.encode(text)
    assert cl100k.decode(ids) == text


@pytest.mark.parametrize("name", sorted(DOCS))
def test_cl100k_lines_match_tiktoken(name, cl100k, tiktoken_cl100k):
    lines = DOCS[name].splitlines(keepends=True)
    assert cl100k.encode_batch(lines) == tiktoken_cl100k.encode_batch(lines)
    for line in lines:
        assert cl100k.encode(line) == tiktoken_cl100k.encode(line), repr(line)
        stripped = line.strip()
        assert cl100k.encode(stripped) == tiktoken_cl100k.encode(stripped), repr(stripped)
