"""Fuzz encode/decode on cl100k_base (when ../shared/data/cl100k_base.tiktoken exists; checked against
tiktoken) and on a byte-level tokenizer trained here (checked against Hugging Face tokenizers). encode of any
str must not fail, decode(encode(s)) == s for text without lone surrogates, ids of tokens decode to bytes and
str, an id out of range or naming no token raises ValueError."""

import os
import warnings

from fuzz_common import Input, main

from fastformer.tokenizer import StreamDecoder, Tokenizer, train_bpe

CL100K = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cl100k_base.tiktoken")
TRAIN_TEXT = [
    "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog.\n",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Maß und Fuß. 1234567 3.14159\n",
    "Привет, как дела? 你好，世界！ 日本語のテキスト。 😀🎉👍 café naïve\n",
    "def main():\n    return [x ** 2 for x in range(10)]  # comment\n\n\t\tindent  \r\n",
] * 3


def _tokenizers():
    """[(name, fastformer Tokenizer, oracle encode or None)]."""
    out = []
    if os.path.exists(CL100K):
        import tiktoken  # noqa: F401  (only with the rank file)

        tok = Tokenizer.from_tiktoken(CL100K, pattern="cl100k_base")
        out.append(("cl100k", tok, _tiktoken_oracle(tok)))
    trained = train_bpe(TRAIN_TEXT, vocab_size=700, special_tokens=["<|endoftext|>", "<|pad|>"])
    out.append(("trained", trained, _hf_oracle(trained)))
    return out


def _tiktoken_oracle(tok):
    import tiktoken

    enc = tiktoken.Encoding(
        "cl100k_base", pat_str=tok.pattern, mergeable_ranks=tok._ranks, special_tokens=tok.special_tokens
    )
    return lambda text, allowed: enc.encode(text, allowed_special=allowed, disallowed_special=())


def _hf_oracle(tok):
    from fuzz_common import scratch_dir
    from tokenizers import Tokenizer as HfTokenizer

    path = os.path.join(scratch_dir(), "trained.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok.save(path)
    hf = HfTokenizer.from_file(path)

    def encode(text, allowed):
        # tokenizers takes no lone surrogates and always matches added tokens: compare plain text only
        if _has_surrogates(text) or allowed or any(s in text for s in tok.special_tokens):
            return None
        return hf.encode(text, add_special_tokens=False).ids

    return encode


def _has_surrogates(text):
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _holes(tok):
    """Ids below n_vocab that name no token (cl100k_base has some between its special tokens)."""
    holes = []
    for i in range(tok.n_vocab):
        try:
            tok.token_bytes(i)
        except ValueError:
            holes.append(i)
    return holes


TOKENIZERS = [(name, tok, oracle, _holes(tok)) for name, tok, oracle in _tokenizers()]


def _text(inp, tok):
    """A str: random code points, with special token strings or raw UTF-8 of the input mixed in."""
    parts = []
    for _ in range(inp.int_in_range(1, 4)):
        kind = inp.int_in_range(0, 4)
        if kind == 0 and tok.special_tokens:
            parts.append(inp.pick(sorted(tok.special_tokens)))
        elif kind == 1:  # the rest of the input as text
            parts.append(inp.remaining().decode("utf-8", errors="replace"))
        else:
            parts.append(inp.text(200))
    return "".join(parts)


def test_one_input(data):
    inp = Input(data)
    _, tok, oracle, holes = TOKENIZERS[inp.int_in_range(0, len(TOKENIZERS) - 1)]
    n = tok.n_vocab
    op = inp.int_in_range(0, 4)
    if op == 0:  # ordinary text: round trip and the peer's ids
        text = _text(inp, tok)
        ids = tok.encode_ordinary(text)
        assert all(0 <= i < n for i in ids), ids
        if not _has_surrogates(text):
            assert tok.decode(ids) == text, (text, ids)
        want = oracle(text, set())
        assert want is None or ids == want, (text, ids, want)
    elif op == 1:  # allowed special tokens become their ids
        text = _text(inp, tok)
        ids = tok.encode(text, allowed_special="all")
        want = oracle(text, "all")
        assert want is None or ids == want, (text, ids, want)
        if not _has_surrogates(text):
            assert tok.decode(ids) == text
    elif op == 2:  # any ids of tokens decode; the stream decoder's pieces join to the same text
        ids = [inp.int_in_range(0, n - 1) for _ in range(inp.int_in_range(0, 64))]
        ids = [i for i in ids if i not in holes and (i not in tok.special_tokens.values() or inp.bool())]
        raw = tok.decode_bytes(ids)
        assert isinstance(raw, bytes)
        text = tok.decode(ids)
        stream = StreamDecoder(tok)
        pieces = [stream.push(i) for i in ids] + [stream.flush()]
        assert "".join(pieces) == raw.decode("utf-8", errors="replace") == text, (ids, pieces, text)
    elif op == 3:  # one id out of range (or naming no token) raises ValueError
        ids = [inp.int_in_range(0, n - 1) for _ in range(inp.int_in_range(0, 8))]
        ids = [i for i in ids if i not in holes]
        bad = inp.pick([n, n + 1, -1, 2**31, -(2**31) - 1, 2**63, 10**30] + holes[:1])
        ids.insert(inp.int_in_range(0, len(ids)), bad)
        for fn in (tok.decode, tok.decode_bytes):
            try:
                fn(ids)
            except ValueError:
                continue
            raise AssertionError(f"{fn.__name__}({ids}) accepted id {bad}")
    else:  # a batch equals one call per text
        texts = [_text(inp, tok) for _ in range(inp.int_in_range(0, 5))]
        threads = inp.int_in_range(1, 3)
        assert tok.encode_ordinary_batch(texts, num_threads=threads) == [tok.encode_ordinary(t) for t in texts]


if __name__ == "__main__":
    main(test_one_input)
