"""Vocab-only GGUF files for the tokenizer parity tests, read by llama.cpp (vocab_only) as the reference."""

import pytest

# hand-written texts every GGUF tokenizer test runs: scripts, emoji sequences, whitespace runs, digits, code
HAND = [
    "Hello world! It's 2024; we've 1234567 items, they'll cost $3.50 — ok?",
    "日本語のテキストと中文文本，還有한국어 문장。カタカナ ひらがな",
    "emoji 👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ✨",
    "مرحبا بالعالم، كيف حالك؟ ١٢٣ والسلام",
    "हिन्दी में लिखा पाठ, संख्याएँ १२३४ और अंत।",
    "Привет, МИР! приветМИР ÑANDÚ ñandú Straße ǅemal ΣΊΣΥΦΟΣ",
    "   leading spaces\n\n\n\ttabs\t\t and   runs   \r\n\r\nend   ",
    "def f(x):\n    return x**2 + 0x1F  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n",
    "for (int i = 0; i < n; ++i) { a[i] = b[i] * 3.14159; } // <=> ^~| `x` $y +z",
    "digits 1 12 123 1234 12345 123456 ٣٤٥ ① ² ½",
    "Ελληνικά κείμενα και Ἀθῆναι, μ µ Ω Ω K K",
    "'s 'S 'll 'LL 'Re I'M don't WE'VE",
    "\u3000全角\u3000スペース\u00a0nbsp\u2009thin\u200bzero",
    "line\u2028separator \u2028\u2028\u00a0👍🏽 x\u3000。 end \u2028",  # non-ASCII whitespace inside listed ranges
    "tail spaces   ",
    "tail newline\n",
    " ",
    "a",
    "\n",
    "\n\n\n",
]


def write_vocab_gguf(meta, path):
    """A vocab-only GGUF file holding the tokenizer.ggml.* keys of `meta` (llama.cpp reads it with vocab_only)."""
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), "llama")
    for key, v in meta.items():
        if isinstance(v, bool):
            w.add_bool(key, v)
        elif isinstance(v, int):
            w.add_uint32(key, v)
        elif isinstance(v, str):
            w.add_string(key, v)
        elif key.endswith(".scores"):
            w.add_array(key, [float(x) for x in v])
        else:
            w.add_array(key, v)
    for key in ("block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count"):
        w.add_uint32(f"llama.{key}", 64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_vocab(meta, path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    write_vocab_gguf(meta, path)
    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
