"""Hostile cases: tokenizer.json and tiktoken files, and bad arguments to the API."""

import base64

import numpy as np
from hostile_fixtures import case, simple

import fastformer
from fastformer.sampling import Sampler

# tokenizer.json and tiktoken files


def _tok_file(path):
    return fastformer.Tokenizer.from_file(path)


@case("FormatError", r"not a readable tokenizer.json", "bad-tokenizer.json")
def tok_not_json(ctx):
    with open(ctx.path("bad-tokenizer.json"), "w") as f:
        f.write('{"model": ')
    _tok_file(ctx.path("bad-tokenizer.json"))


def _tok_edit(ctx, edit):
    return _tok_file(ctx.tokenizer_json(edit=edit))


def _renumber(spec, old, new):
    """Give the vocabulary token of id `old` the id `new`."""
    v = spec["model"]["vocab"]
    v[next(k for k, i in v.items() if i == old)] = new


simple(
    "tok_duplicate_vocab_id",
    "FormatError",
    r"vocabulary id 5 is used twice \('.*' and '.*'\)",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: _renumber(s, 6, 5)),
)
simple(
    "tok_negative_vocab_id",
    "FormatError",
    r"id -3 .*\[0, ",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: _renumber(s, 270, -3)),
)
simple(
    "tok_vocab_id_2_40",
    "FormatError",
    r"id 1099511627776 .*\[0, ",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: _renumber(s, 270, 2**40)),
)
simple(
    "tok_vocab_id_not_int",
    "FormatError",
    r"vocabulary id '7' of token .* must be an integer",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: _renumber(s, 7, "7")),
)
simple(
    "tok_added_token_id_out_of_range",
    "FormatError",
    r"added token .*has id 99999999999, outside \[0, ",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s["added_tokens"][0].update(id=99999999999)),
)
simple(
    "tok_merge_of_unknown_token",
    "FormatError",
    r"merge 3 .* not in the vocabulary",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s["model"]["merges"].__setitem__(3, ["\u0100zz", "q"])),
)
simple(
    "tok_missing_vocab",
    "FormatError",
    r"model.vocab must map tokens to ids",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s["model"].pop("vocab")),
)
simple(
    "tok_merges_not_a_list",
    "FormatError",
    r"model.merges must be a list",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s["model"].update(merges={"a": "b"})),
)
simple(
    "tok_pre_tokenizer_not_an_object",
    "FormatError",
    r"malformed tokenizer description",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s.update(pre_tokenizer=["Split"])),
)
simple(
    "tok_wordpiece",
    "UnsupportedError",
    r"model type 'WordPiece' .*only BPE",
    "tokenizer.json",
    lambda ctx: _tok_edit(ctx, lambda s: s["model"].update(type="WordPiece")),
)
simple("tok_missing_file", "FileNotFoundError", r"nope.json", "nope.json", lambda ctx: _tok_file(ctx.path("nope.json")))


@case("FormatError", r"bad.tiktoken:3: expected '<base64 token> <rank>'", "bad.tiktoken")
def tiktoken_bad_base64(ctx):
    lines = open(ctx.ranks).read().splitlines()
    lines[2] = "!!!notbase64 2"
    with open(ctx.path("bad.tiktoken"), "w") as f:
        f.write("\n".join(lines))
    fastformer.Tokenizer.from_tiktoken(ctx.path("bad.tiktoken"), pattern="gpt2")


@case("FormatError", r"bad.tiktoken:257: rank 1099511627776 .*at most", "bad.tiktoken")
def tiktoken_rank_2_40(ctx):
    with open(ctx.path("bad.tiktoken"), "w") as f:
        f.write(open(ctx.ranks).read() + base64.b64encode(b"ab").decode() + f" {2**40}\n")
    fastformer.Tokenizer.from_tiktoken(ctx.path("bad.tiktoken"), pattern="gpt2")


@case("FormatError", r"bad.tiktoken:257: token .* appears twice", "bad.tiktoken")
def tiktoken_duplicate_token(ctx):
    with open(ctx.path("bad.tiktoken"), "w") as f:
        f.write(open(ctx.ranks).read() + base64.b64encode(b"a").decode() + " 256\n")
    fastformer.Tokenizer.from_tiktoken(ctx.path("bad.tiktoken"), pattern="gpt2")


@case("ValueError", r"special token '<x>' has id -1", None)
def tiktoken_negative_special_id(ctx):
    fastformer.Tokenizer.from_tiktoken(ctx.ranks, pattern="gpt2", special_tokens={"<x>": -1})


# arguments

simple(
    "arg_prompt_beyond_context",
    "ValueError",
    r"70 tokens exceed the context window of 64",
    None,
    lambda ctx: ctx.model().logits(list(range(70))),
)
simple(
    "arg_id_out_of_range",
    "ValueError",
    r"token id 300 outside the vocabulary \[0, 300\)",
    None,
    lambda ctx: ctx.model().logits([1, 300]),
)
simple("arg_float_ids", "TypeError", r"ids must be a sequence of ints", None, lambda ctx: ctx.model().logits([1, 2.5]))
simple(
    "arg_nan_temperature",
    "ValueError",
    r"temperature must be a finite number",
    None,
    lambda ctx: ctx.model().generate_ids([1, 2], temperature=float("nan")),
)
simple(
    "arg_zero_top_p",
    "ValueError",
    r"top_p must be in \(0, 1\]",
    None,
    lambda ctx: ctx.model().generate_ids([1, 2], top_p=0.0, temperature=1.0),
)
simple(
    "arg_zero_repetition_penalty",
    "ValueError",
    r"repetition_penalty must be a finite number > 0",
    None,
    lambda ctx: ctx.model().generate_ids([1, 2], repetition_penalty=0.0),
)
simple(
    "arg_negative_max_new_tokens",
    "ValueError",
    r"max_new_tokens must be an int >= 0",
    None,
    lambda ctx: ctx.model().generate_ids([1, 2], max_new_tokens=-1),
)
simple(
    "arg_generation_beyond_context",
    "ValueError",
    r"prompt \(3 tokens\) \+ max_new_tokens \(100\) = 103 exceeds the context window of 64",
    None,
    lambda ctx: ctx.model().generate_ids([1, 2, 3], max_new_tokens=100),
)


@case("ValueError", r"logits must be finite", None)
def arg_nan_logits(ctx):
    Sampler(temperature=0.7, seed=0).next_token(np.array([0.5, np.nan, 1.0], np.float32), [])


@case("ValueError", r"history holds token ids outside \[0, 3\)", None)
def arg_history_out_of_range(ctx):
    Sampler(repetition_penalty=1.2).next_token(np.array([0.5, 2.0, 1.0], np.float32), [1, -1])


simple(
    "arg_encode_bytes",
    "TypeError",
    r"encode: text must be a str, got bytes",
    None,
    lambda ctx: ctx.model().tokenizer.encode(b"caf\xc3"),
)


@case(None, None, None)
def arg_encode_lone_surrogates(ctx):
    tok = ctx.model().tokenizer
    got = tok.encode("a\ud800b\udfffc")
    assert got == tok.encode("a\ufffdb\ufffdc"), got
    assert tok.encode("\ud83d\ude00") == tok.encode("\U0001f600")  # a surrogate pair is one character


simple(
    "arg_decode_float_id",
    "TypeError",
    r"decode: token ids must be ints, got float 1.5 at position 1",
    None,
    lambda ctx: ctx.model().tokenizer.decode([3, 1.5]),
)
simple(
    "arg_decode_id_2_100",
    "ValueError",
    r"token id 1267650600228229401496703205376 at position 0 is out of range",
    None,
    lambda ctx: ctx.model().tokenizer.decode([2**100]),
)


@case("ValueError", r"quantize must be None, 'q8_0', .*'q4_0'.* or '\w+', got 'q3'", None)
def arg_bad_quantize(ctx):
    fastformer.Model.load(ctx.hf, quantize="q3")


@case("ValueError", r"max_context must be a positive int, got 0", None)
def arg_zero_max_context(ctx):
    fastformer.Model.load(ctx.hf, max_context=0)


@case("ValueError", r"n must be between 1 and", None)
def arg_zero_threads(ctx):
    fastformer.Model.load(ctx.hf, threads=0)


simple(
    "arg_empty_stop_string",
    "ValueError",
    r"stop must be a non-empty string",
    None,
    lambda ctx: ctx.model().generate("the cat", stop="", max_new_tokens=2),
)
