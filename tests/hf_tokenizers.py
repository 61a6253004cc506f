"""Hugging Face tokenizer.json files made for the tokenizer tests: byte-level BPEs trained with `tokenizers` in
the GPT-2, Llama 3, Qwen2 and GPT-4o layouts, and a SentencePiece BPE with byte fallback converted to the
Llama-2-style and Metaspace layouts. The peers are imported inside the functions that train with them."""

import json

import pytest
from corpus import DOCS

from fastformer.tokenizer import LLAMA3_PATTERN, O200K_PATTERN, QWEN2_PATTERN, Tokenizer

TEXTS = [t for t in DOCS.values()]
LINES = [line for t in TEXTS for line in t.splitlines(keepends=True)]


def train_byte_level(layout, vocab_size=3000):
    """A byte-level BPE in `layout` trained with `tokenizers` on TEXTS, with special and added tokens."""
    import tokenizers
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=layout == "llama3"))
    split = {"llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN, "o200k": O200K_PATTERN}.get(layout)
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if layout == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS, trainer)
    tok.add_tokens(
        [
            tokenizers.AddedToken("fastformer", normalized=False),
            tokenizers.AddedToken(" magic", lstrip=False, rstrip=True, normalized=True),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))],
    )
    return tok


def spm_merges(vocab, scores):
    # transformers' SentencePieceExtractor: every split of a piece into two pieces, by the piece's score
    merges = []
    for piece, _score in sorted(scores.items(), key=lambda kv: -kv[1]):
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda p: (vocab[p[0]], vocab[p[1]]))
    return [list(m) for m in merges]


def spm_model(tmp_path_factory, name, **options):
    """A SentencePiece BPE model with byte fallback trained on LINES (whitespace kept), loaded."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp(name)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(LINES),
        model_prefix=str(d / "m"),
        vocab_size=1500,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=0.9995,
        hard_vocab_limit=False,
        minloglevel=2,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        **options,
    )
    return spm.SentencePieceProcessor(model_file=str(d / "m.model"))


def train_spm(tmp_path_factory):
    """A SentencePiece BPE as the (vocab, merges, added tokens) of a Llama-2-style tokenizer.json."""
    sp = spm_model(tmp_path_factory, "spm", split_digits=True)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {
        sp.id_to_piece(i): sp.get_score(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))
    }
    added = [
        {
            "id": i,
            "content": sp.id_to_piece(i),
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i in range(3)
    ]
    return vocab, spm_merges(vocab, scores), added


def llama2_json(vocab, merges, added, layout):
    """The tokenizer.json spec of a SentencePiece BPE in `layout` (llama2, metaspace, metaspace_split)."""
    model = {
        "type": "BPE",
        "dropout": None,
        "unk_token": "<unk>",
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": True,
        "byte_fallback": True,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": merges,
    }
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "model": model,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
    }
    if layout == "llama2":
        spec["normalizer"] = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        }
        spec["pre_tokenizer"] = None
        spec["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        }
    else:
        spec["normalizer"] = None
        spec["pre_tokenizer"] = {
            "type": "Metaspace",
            "replacement": "▁",
            "prepend_scheme": "first",
            "split": layout == "metaspace_split",
        }
        spec["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        }
    return spec


LAYOUTS = ["gpt2", "llama3", "qwen2", "o200k", "llama2", "metaspace", "metaspace_split"]
SPM_LAYOUTS = ("llama2", "metaspace", "metaspace_split")
_SPM = {}  # the SentencePiece BPE, trained once per session for the three layouts


def make_pair(layout, tmp_path_factory):
    """(ours, theirs) for one tokenizer.json layout, both loaded from the same file."""
    import tokenizers

    path = tmp_path_factory.mktemp(layout) / "tokenizer.json"
    if layout in SPM_LAYOUTS:
        if "spm" not in _SPM:
            _SPM["spm"] = train_spm(tmp_path_factory)
        path.write_text(json.dumps(llama2_json(*_SPM["spm"], layout), ensure_ascii=False), encoding="utf-8")
    else:
        train_byte_level(layout).save(str(path))
    return Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))


def make_spm_pair(tmp_path_factory):
    """(ours, sentencepiece) for a SentencePiece BPE read from its pieces, scores and types."""
    sp = spm_model(tmp_path_factory, "spm_identity", normalization_rule_name="identity")
    n = sp.get_piece_size()
    types = [
        2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 5 if sp.is_unused(i) else 1
        for i in range(n)
    ]
    pieces = [sp.id_to_piece(i) for i in range(n)]
    return Tokenizer._from_scores(pieces, [sp.get_score(i) for i in range(n)], types), sp


def theirs(hf, text):
    """tokenizers' ids for text, without the post-processor's special tokens."""
    return hf.encode(text, add_special_tokens=False).ids
