"""SentencePiece-style GGUF vocabularies ("llama" model) the way Gemma ships them: a sentencepiece BPE with byte
fallback, user-defined and control tokens and no space prefix, padded to 262,144 entries with pieces the text
can form; fastformer tokenizes it exactly as llama.cpp does (an opt-in peer), prompts included."""

import time

import pytest
from gguf_vocab import HAND, llama_cpp_vocab
from hf_tokenizers import LINES, TEXTS

from fastformer import Tokenizer

GEMMA_VOCAB = 262144
USER = ["<tool>", "[[x]]", "\t\t"]  # user-defined: always whole, cut out of the raw text
CONTROL = ["<start_of_turn>", "<end_of_turn>"]  # control: tokens only when special tokens are parsed


def _texts():
    return HAND + TEXTS + LINES


def _padding(pieces, scores, n):
    """Pieces the texts can form (character n-grams, spaces as U+2581, of characters that are pieces, as in a
    trained vocabulary) up to n entries, scores below all others."""
    have, out = set(pieces), []
    chars = {p for p in pieces if len(p) == 1}
    low = min(scores) - 1.0
    for width in range(2, 9):
        for text in HAND + TEXTS:
            t = text.replace(" ", "\u2581")
            for k in range(len(t) - width + 1):
                g = t[k : k + width]
                if g not in have and chars.issuperset(g):
                    have.add(g)
                    out.append(g)
                    if len(pieces) + len(out) == n:
                        return out, [low - 0.001 * j for j in range(len(out))]
    k = 0
    while len(pieces) + len(out) < n:  # numbers after space runs if the texts run out
        g = "\u2581" * (k % 7 + 1) + str(k)
        k += 1
        if g not in have:
            have.add(g)
            out.append(g)
    return out, [low - 0.001 * j for j in range(len(out))]


@pytest.fixture(scope="module")
def spm_meta(tmp_path_factory):
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("gemma_like")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(HAND + LINES),
        model_prefix=str(d / "m"),
        vocab_size=4000,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        user_defined_symbols=USER,
        control_symbols=CONTROL,
    )
    sp = spm.SentencePieceProcessor(model_file=str(d / "m.model"))
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    types = [
        2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 4 if pieces[i] in USER else 1
        for i in range(n)
    ]
    more, more_scores = _padding(pieces, scores, GEMMA_VOCAB)
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": pieces + more,
        "tokenizer.ggml.scores": scores + more_scores,
        "tokenizer.ggml.token_type": types + [1] * len(more),
        "tokenizer.ggml.bos_token_id": sp.bos_id(),
        "tokenizer.ggml.eos_token_id": sp.eos_id(),
        "tokenizer.ggml.unknown_token_id": sp.unk_id(),
        "tokenizer.ggml.add_space_prefix": False,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_eos_token": False,
    }


def test_gemma_scale_loads(spm_meta):
    t0 = time.perf_counter()
    tok = Tokenizer.from_gguf_metadata(spm_meta)
    seconds = time.perf_counter() - t0
    assert tok.n_vocab == GEMMA_VOCAB
    print(f"262k SentencePiece vocabulary loaded in {seconds:.2f} s")
    for text in _texts():
        assert tok.decode(tok.encode(text, disallowed_special=())) == text


@pytest.mark.peer
def test_llama_cpp_tokenizes_alike(spm_meta, tmp_path):
    llm = llama_cpp_vocab(spm_meta, tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf_metadata(spm_meta)
    assert llm.n_vocab() == ours.n_vocab
    for text in _texts():
        want = llm.tokenize(text.encode(), add_bos=False, special=False)
        assert ours.encode(text, disallowed_special=()) == want, text[:80]
    for text in [
        f"{CONTROL[0]}user\n{USER[0]} hi\t\t123 [[x]]{CONTROL[1]}\n{CONTROL[0]}model\n",
        f"a{CONTROL[1]}b {USER[1]}{USER[1]}  {CONTROL[0]} 日本語 👍",
    ]:
        assert ours.encode(text, disallowed_special=()) == llm.tokenize(text.encode(), add_bos=False, special=False)
        assert ours.encode(text, allowed_special="all") == llm.tokenize(text.encode(), add_bos=False, special=True)
        assert ours.encode_prompt(text) == llm.tokenize(text.encode(), add_bos=True, special=True)


@pytest.mark.peer
@pytest.mark.parametrize("add_bos, add_eos", [(False, True), (True, True), (False, False)])
def test_llama_cpp_add_bos_and_eos(spm_meta, tmp_path, add_bos, add_eos):
    meta = {**spm_meta, "tokenizer.ggml.add_bos_token": add_bos, "tokenizer.ggml.add_eos_token": add_eos}
    llm = llama_cpp_vocab(meta, tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf_metadata(meta)
    for text in ["hello world", "", f"{CONTROL[0]}x"]:
        assert ours.encode_prompt(text) == llm.tokenize(text.encode(), add_bos=True, special=True), text
