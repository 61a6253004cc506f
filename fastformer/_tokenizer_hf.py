"""Hugging Face tokenizer.json BPE models for fastformer.Tokenizer.

`parse` reads the model (vocab, merges, unk_token, byte_fallback, ignore_merges), the added tokens and
tokenizer_config.json's bos / eos into `Parts`; `Pipeline` does what `tokenizers` does around the BPE model:
split off added tokens (leftmost-longest, with lstrip/rstrip/single_word), normalize, pre-tokenize, then hand
each segment to the C engine (whole, or already split into pieces when no scanner covers the pattern);
`decoder` turns the decoder into per-token bytes. `byte_level_spec` writes a tokenizer.json back.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata

import numpy as np

from fastformer import _core
from fastformer._bpe_engine import (
    WHITE_SPACE,
    AddedToken,
    Parts,
    allowed_names,
    alternation,
    check_disallowed,
    encode_piece_list,
    id_limit,
    new_bpe,
    set_decode,
    split_added,
)
from fastformer._patterns import GGUF_PRE_REGEXES, GPT2_PATTERN_HF, SCANNER_LISTS, SCANNERS_HF, compile_regex
from fastformer.errors import FormatError, UnsupportedError

# ---- GPT-2's reversible map from bytes to printable characters ----


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = _bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def byte_level_decode(s, where):
    """The bytes of a token spelled in GPT-2's byte alphabet."""
    try:
        return bytes(CHAR_TO_BYTE[c] for c in s)
    except KeyError as e:
        raise FormatError(f"{where}: token {s!r} is not in the byte-level alphabet") from e


def flatten(node, kind):
    """A normalizer / pre-tokenizer / decoder node as a flat list of dicts (Sequence unrolled)."""
    if node is None:
        return []
    if node.get("type") == "Sequence":
        key = {"normalizer": "normalizers", "pre_tokenizer": "pretokenizers", "decoder": "decoders"}[kind]
        return [s for sub in node.get(key, []) for s in flatten(sub, kind)]
    return [node]


def _pattern(p, where):
    """A tokenizers Pattern ({"String": s} or {"Regex": r}) as (kind, text)."""
    if "String" in p:
        return "string", p["String"]
    if "Regex" in p:
        return "regex", p["Regex"]
    raise FormatError(f"{where}: unknown pattern {p!r}")


# ---- normalizers ----


def _normalizer(node, where):
    """A function str -> str doing what the tokenizer.json normalizer does (None if there is none)."""
    fns = []
    for step in flatten(node, "normalizer"):
        t = step.get("type")
        if t in ("NFC", "NFD", "NFKC", "NFKD"):
            fns.append(lambda s, f=t: unicodedata.normalize(f, s))
        elif t == "Lowercase":
            fns.append(str.lower)
        elif t == "Prepend":
            fns.append(lambda s, p=step["prepend"]: p + s if s else s)
        elif t == "Replace":
            kind, pat = _pattern(step["pattern"], where)
            if kind == "string":
                fns.append(lambda s, a=pat, b=step["content"]: s.replace(a, b))
            else:
                rx = compile_regex(pat, where=where)
                fns.append(lambda s, r=rx, b=step["content"]: r.sub(lambda m: b, s))
        elif t == "Strip":
            left, right = step.get("strip_left", True), step.get("strip_right", True)
            fns.append(lambda s, lft=left, rgt=right: _strip_ws(s, lft, rgt))
        else:
            raise UnsupportedError(
                f"{where}: normalizer {t!r} is not supported (NFC/NFD/NFKC/NFKD, Lowercase, "
                "Prepend, Replace, Strip and Sequence are)"
            )
    if not fns:
        return None

    def normalize(s):
        for f in fns:
            s = f(s)
        return s

    return normalize


def _strip_ws(s, left, right):
    i, j = 0, len(s)
    while left and i < j and s[i] in WHITE_SPACE:
        i += 1
    while right and j > i and s[j - 1] in WHITE_SPACE:
        j -= 1
    return s[i:j]


# ---- pre-tokenizers ----


SPLIT_BEHAVIORS = ("Isolated", "Removed", "Contiguous", "MergedWithPrevious", "MergedWithNext")


def _split_parts(text, spans, behavior, invert):
    """tokenizers' Split: text cut by the match spans, kept per `behavior`; returns the pieces."""
    parts, pos = [], 0
    for a, b in spans:
        if a > pos:
            parts.append([pos, a, invert])
        if b > a:
            parts.append([a, b, not invert])
        pos = b
    if pos < len(text):
        parts.append([pos, len(text), invert])
    out = []
    if behavior == "Isolated":
        out = parts
    elif behavior == "Removed":
        out = [p for p in parts if not p[2]]
    elif behavior == "Contiguous":
        for p in parts:
            if out and p[2] and out[-1][2]:
                out[-1][1] = p[1]
            else:
                out.append(p)
    elif behavior == "MergedWithPrevious":
        prev = False
        for p in parts:
            if p[2] and not prev and out:
                out[-1][1] = p[1]
            else:
                out.append(p)
            prev = p[2]
    elif behavior == "MergedWithNext":
        prev = False
        for p in reversed(parts):
            if p[2] and not prev and out:
                out[-1][0] = p[0]
            else:
                out.append(p)
            prev = p[2]
        out.reverse()
    else:
        raise UnsupportedError(f"Split behavior {behavior!r} is not supported")
    return [text[a:b] for a, b, _ in out if b > a]


class _PreTokenizer:
    """The pre-tokenizer: either one C scanner over each segment (the fast path: `scanner` is set), or a list
    of Python steps that cut each segment into pieces."""

    def __init__(self, node, byte_level, where):
        self.scanner, self.pattern, self.prefix_space, self.steps = None, None, False, []
        self.metaspace = None
        steps = flatten(node, "pre_tokenizer")
        types = [s.get("type") for s in steps]
        # fast paths: ByteLevel(use_regex), or Split(known pattern or list of patterns, Isolated) ... +
        # ByteLevel(no regex, no prefix)
        if types == ["ByteLevel"]:
            self.prefix_space = steps[0].get("add_prefix_space", True)
            self.scanner = "gpt2" if steps[0].get("use_regex", True) else "none"
            self.pattern = GPT2_PATTERN_HF if self.scanner == "gpt2" else None
            return
        if (
            len(types) > 1
            and types == ["Split"] * (len(types) - 1) + ["ByteLevel"]
            and all(st.get("behavior") == "Isolated" and not st.get("invert", False) for st in steps[:-1])
            and not steps[-1].get("add_prefix_space", True)
            and not steps[-1].get("use_regex", True)
        ):
            pats = [_pattern(st["pattern"], where) for st in steps[:-1]]
            regexes = tuple(pat for kind, pat in pats if kind == "regex")
            if len(regexes) == 1 == len(pats) and regexes[0] in SCANNERS_HF:
                self.scanner, self.pattern = SCANNERS_HF[regexes[0]], regexes[0]
                return
            if len(regexes) == len(pats) and regexes in SCANNER_LISTS:
                self.scanner = SCANNER_LISTS[regexes]
                return
        if not steps:
            self.scanner = "none"
            return
        if types == ["Metaspace"] and not byte_level:
            st = steps[0]
            self.metaspace = (st.get("replacement", "▁"), prepend_scheme(st), st.get("split", True))
            return
        for st in steps:
            t = st.get("type")
            if t == "Split":
                kind, pat = _pattern(st["pattern"], where)
                plain = st.get("behavior", "Isolated") == "Isolated" and not st.get("invert", False)
                if kind == "regex" and plain and pat in SCANNERS_HF:  # a C scanner's pieces: its matches cover all
                    self.steps.append(("scan", SCANNERS_HF[pat]))
                    continue
                if kind == "regex" and plain and pat == NUMBER:  # each number character alone (smollm, starcoder)
                    self.steps.append(("digits", True))
                    continue
                if kind == "regex":
                    slow = pat not in SCANNERS_HF and pat not in GGUF_PRE_REGEXES
                    rx = compile_regex(pat, where=where, slow_split=slow, stacklevel=5)
                else:
                    rx = re.compile(re.escape(pat))
                behavior = st.get("behavior", "Isolated")
                if behavior not in SPLIT_BEHAVIORS:
                    raise UnsupportedError(
                        f"{where}: Split behavior {behavior!r} is not supported; "
                        f"supported: {', '.join(SPLIT_BEHAVIORS)}"
                    )
                self.steps.append(("split", rx, behavior, bool(st.get("invert", False))))
            elif t == "ByteLevel":
                self.steps.append(("bytelevel", st.get("add_prefix_space", True), st.get("use_regex", True)))
            elif t == "Digits":
                self.steps.append(("digits", st.get("individual_digits", False)))
            elif t == "Metaspace":
                self.steps.append(("metaspace", st.get("replacement", "▁"), prepend_scheme(st), st.get("split", True)))
            else:
                raise UnsupportedError(
                    f"{where}: pre-tokenizer {t!r} is not supported (ByteLevel, Split, Digits, "
                    "Metaspace and Sequence are)"
                )

    def pieces(self, seg, first):
        """The pieces of one normalized segment (the slow path); `first`: it starts the text."""
        if self.metaspace is not None:
            return _metaspace(seg, *self.metaspace, first)
        pieces = [seg]
        for step in self.steps:
            out = []
            for p in pieces:
                if step[0] == "split":
                    out += _split_parts(p, [m.span() for m in step[1].finditer(p)], step[2], step[3])
                elif step[0] == "bytelevel":
                    q = " " + p if step[1] and not p.startswith(" ") else p
                    out += _core.pretok_split(q, "gpt2") if step[2] else [q]
                elif step[0] == "scan":
                    out += _core.pretok_split(p, step[1])
                elif step[0] == "digits":
                    out += _split_parts(p, _number_spans(p, step[1]), "Isolated", False)
                else:
                    out += _metaspace(p, step[1], step[2], step[3], first and p is pieces[0])
            pieces = out
        return pieces


NUMBER = r"\p{N}"  # one number character: Unicode categories Nd, Nl, No


def _number_spans(text, individual):
    """The spans of \\p{N} (`individual`) or \\p{N}+ in `text`, read from unicodedata (no `regex` needed)."""
    spans = []
    for i, c in enumerate(text):
        if unicodedata.category(c)[0] != "N":
            continue
        if not individual and spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def prepend_scheme(step):
    if "prepend_scheme" in step:
        return step["prepend_scheme"]
    return "always" if step.get("add_prefix_space", True) else "never"


def _metaspace(seg, rep, scheme, split, first):
    s = seg.replace(" ", rep)
    if s and not s.startswith(rep) and (scheme == "always" or (scheme == "first" and first)):
        s = rep + s
    if not split:
        return [s] if s else []
    return _split_parts(s, [(m.start(), m.end()) for m in re.finditer(re.escape(rep), s)], "MergedWithNext", False)


# ---- added tokens ----


class _Added:
    """Added tokens split out of the text as `tokenizers` does: non-normalized ones on the raw text (`raw`),
    normalized ones on each normalized segment (`norm`), both with `split_added`."""

    def __init__(self, added, normalize):
        self.tokens = {}  # content -> AddedToken
        raw, norm = [], []
        for a in added:
            content = a["content"]
            if not content:
                continue
            if a.get("normalized", not a.get("special", False)) and normalize is not None:
                content = normalize(content)
                norm.append(content)
            else:
                raw.append(content)
            self.tokens[content] = AddedToken(
                a["id"],
                a.get("special", False),
                a.get("single_word", False),
                a.get("lstrip", False),
                a.get("rstrip", False),
            )
        self.raw = alternation(raw)
        self.norm = alternation(norm)

    def found_in(self, text):
        return (self.raw is not None and self.raw.search(text) is not None) or (
            self.norm is not None and self.norm.search(text) is not None
        )


class Pipeline:
    """What `tokenizers` does around the BPE model, for one tokenizer.json; `strip` leading spaces the decoder
    strips, `first` (per id, or None) the bytes of an id that starts the decoded text, if they differ."""

    def __init__(self, spec, byte_level, where, *, strip=0, first=None):
        self.normalize = _normalizer(spec.get("normalizer"), where)
        self.pre = _PreTokenizer(spec.get("pre_tokenizer"), byte_level, where)
        self.added = _Added(spec.get("added_tokens") or [], self.normalize)
        self.byte_level = byte_level
        self.strip = strip
        self.first = first
        # the whole text can go straight to C when nothing in Python would change it
        self.direct = self.normalize is None and self.pre.scanner is not None and not self.pre.prefix_space

    def segments(self, text, mode, names):
        """text as [(str, None) to encode with the C scanner | (list of pieces, None) | (None, id)]."""
        check_disallowed(text, names, mode)
        allowed = allowed_names(names, mode)
        parts = [(text, None)]
        if self.added.raw is not None:
            parts = split_added(text, self.added.raw, self.added.tokens, allowed)
        out, pos = [], 0
        for seg, tid in parts:
            first, pos = pos == 0, pos + len(seg)
            if tid is not None:
                out.append((None, tid))
                continue
            seg = self.normalize(seg) if self.normalize is not None else seg
            sub = [(seg, None)]
            if self.added.norm is not None:
                sub = split_added(seg, self.added.norm, self.added.tokens, allowed)
            for s, t in sub:
                if t is not None:
                    out.append((None, t))
                elif s:
                    out.append(self._pretokenize(s, first))
                first = False
        return out

    def _pretokenize(self, seg, first):
        if self.pre.scanner is not None:
            return (" " + seg if self.pre.prefix_space and not seg.startswith(" ") else seg), None
        return self.pre.pieces(seg, first), None

    def plan(self, text, mode, names):
        """segments(), or the whole text as one segment when nothing in Python would change it."""
        if self.direct and not self.added.found_in(text):
            return [(text, None)]
        return self.segments(text, mode, names)

    def encode(self, bpe, text, mode, names):
        """The ids of one text; `names` the special tokens `mode` is indexed by."""
        return self.run(bpe, [self.plan(text, mode, names)], 1)[0]

    def run(self, bpe, plans, num_threads):
        """The ids of planned texts: every str segment is encoded in one parallel C batch."""
        flat = [seg for plan in plans for seg, _ in plan if isinstance(seg, str)]
        done = iter(bpe.encode_batch(flat, None, num_threads) if flat else [])
        out = []
        for plan in plans:
            ids = []
            for seg, tid in plan:
                if tid is not None:
                    ids.append(tid)
                elif isinstance(seg, str):
                    ids += next(done)
                else:
                    ids += encode_piece_list(bpe, seg)
            out.append(ids)
        return out


# ---- decoders ----


def decoder(node, byte_level, where):
    """(token_bytes(string, added, first), leading spaces to strip from the decoded text, whether the first
    token decodes differently: tokenizers' Metaspace decoder drops every replacement character in it)."""
    steps = flatten(node, "decoder")
    replace, byte_fallback, strip, byte_dec, drop_first = [], False, 0, False, None
    for st in steps:
        t = st.get("type")
        if t == "ByteLevel":
            byte_dec = True
        elif t == "Replace":
            kind, pat = _pattern(st["pattern"], where)
            if kind != "string":
                raise UnsupportedError(f"{where}: Replace decoder with a regex is not supported")
            replace.append((pat, st["content"]))
        elif t == "ByteFallback":
            byte_fallback = True
        elif t == "Fuse":
            pass
        elif t == "Strip":
            if st.get("content") != " " or st.get("stop", 0):
                raise UnsupportedError(f"{where}: Strip decoder {st} is not supported (only leading spaces)")
            strip = st.get("start", 0)
        elif t == "Metaspace":
            replace.append((st.get("replacement", "▁"), " "))
            if prepend_scheme(st) != "never":
                drop_first = st.get("replacement", "▁")
        else:
            raise UnsupportedError(
                f"{where}: decoder {t!r} is not supported (ByteLevel, Metaspace, Replace, "
                "ByteFallback, Fuse, Strip and Sequence are)"
            )

    def token_bytes(s, added, first=False):
        if first and drop_first is not None:
            s = s.replace(drop_first, "")
        if byte_dec and not added:
            return byte_level_decode(s, where)
        if byte_fallback and len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
            try:
                return bytes([int(s[3:5], 16)])
            except ValueError:
                pass
        for a, b in replace:
            s = s.replace(a, b)
        return s.encode("utf-8", "surrogatepass")

    return token_bytes, strip, drop_first is not None


# ---- loading ----


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not a readable tokenizer.json ({e})") from e


@contextlib.contextmanager
def malformed(where):
    """Turn a structural surprise deep in a tokenizer description (a list where an object belongs, a missing
    key) into a FormatError naming the file; the specific checks give better messages where they apply."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise FormatError(f"{where}: malformed tokenizer description ({type(e).__name__}: {e})") from e


def check_vocab(vocab, added, where):
    """Check model.vocab ({token: id}) and added_tokens ([{id, content}]); returns the id space size."""
    if not isinstance(vocab, dict):
        raise FormatError(f"{where}: model.vocab must map tokens to ids, got {type(vocab).__name__}")
    if not isinstance(added, list) or not all(
        isinstance(a, dict) and isinstance(a.get("content"), str) and "id" in a for a in added
    ):
        raise FormatError(f"{where}: added_tokens must be a list of objects with an id and a string content")
    limit = id_limit(len(vocab) + len(added))
    owner = {}
    for s, i in vocab.items():
        if isinstance(i, bool) or not isinstance(i, int):
            raise FormatError(f"{where}: vocabulary id {i!r} of token {s!r} must be an integer")
        if not 0 <= i < limit:
            raise FormatError(f"{where}: vocabulary id {i} of token {s!r} is outside [0, {limit})")
        if i in owner:
            raise FormatError(f"{where}: vocabulary id {i} is used twice ({owner[i]!r} and {s!r})")
        owner[i] = s
    for a in added:
        i = a["id"]
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < limit:
            raise FormatError(f"{where}: added token {a['content']!r} has id {i!r}, outside [0, {limit})")
    n = max(max(owner, default=-1), max((a["id"] for a in added), default=-1)) + 1
    if n == 0:
        raise FormatError(f"{where}: the vocabulary is empty")
    return n


def parse_merges(merges, vocab, where):
    """Merges as (left id, right id) arrays from "a b" strings or [a, b] pairs."""
    if not isinstance(merges, list):
        raise FormatError(f"{where}: model.merges must be a list, got {type(merges).__name__}")
    left, right = np.empty(len(merges), np.int32), np.empty(len(merges), np.int32)
    for i, m in enumerate(merges):
        pair = m.split(" ") if isinstance(m, str) else m
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise FormatError(f"{where}: merge {i} {m!r} is not a pair")
        a, b = pair
        if a not in vocab or b not in vocab:
            raise FormatError(f"{where}: merge {i} {m!r} uses a token that is not in the vocabulary")
        left[i], right[i] = vocab[a], vocab[b]
    return left, right


def is_byte_level(spec):
    steps = flatten(spec.get("pre_tokenizer"), "pre_tokenizer") + flatten(spec.get("normalizer"), "normalizer")
    return any(s.get("type") == "ByteLevel" for s in steps)


def bos_eos(spec, config, special):
    """bos / eos ids from tokenizer_config.json, else the post-processor's template, else common names."""
    ids = {a["content"]: a["id"] for a in spec.get("added_tokens") or []}
    ids.update(spec["model"]["vocab"])

    def from_config(key):
        v = (config or {}).get(key)
        v = v.get("content") if isinstance(v, dict) else v
        return ids.get(v) if isinstance(v, str) else None

    bos, eos = from_config("bos_token"), from_config("eos_token")
    post = spec.get("post_processor") or {}
    steps = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for st in steps:
        if st.get("type") != "TemplateProcessing":
            continue
        single = st.get("single") or []
        where = [k for k, x in enumerate(single) if "Sequence" in x]
        if where and bos is None and where[0] > 0 and "SpecialToken" in single[0]:
            bos = ids.get(single[0]["SpecialToken"]["id"])
        if where and eos is None and where[-1] + 1 < len(single) and "SpecialToken" in single[-1]:
            eos = ids.get(single[-1]["SpecialToken"]["id"])
    for name in ("<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"):
        if bos is None and name in special:
            bos = special[name]
    for name in ("</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>"):
        if eos is None and name in special:
            eos = special[name]
    return bos, eos


def prompt_bos(spec, config):
    """(add_bos, bos id or None) for prompts: tokenizer_config.json's add_bos_token where it is a bool, else
    whether a TemplateProcessing post-processor puts a special token first (and its id)."""
    if isinstance((config or {}).get("add_bos_token"), bool):
        return config["add_bos_token"], None
    post = spec.get("post_processor") or {}
    procs = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for p in procs:
        if isinstance(p, dict) and p.get("type") == "TemplateProcessing":
            first = (p.get("single") or [{}])[0]
            if isinstance(first, dict) and "SpecialToken" in first:
                name = first["SpecialToken"]["id"]
                ids = (p.get("special_tokens", {}).get(name) or {}).get("ids") or []
                return bool(ids), (ids[0] if ids else None)
    return False, None


def parse(spec, where, config=None, *, merge_rank=None, missing_bytes=False) -> Parts:
    """The parts of a Tokenizer from a parsed tokenizer.json (and tokenizer_config.json); with merge_rank (per
    id), merges come from the vocabulary by rank instead of the merges list."""
    model = spec.get("model") or {}
    if not isinstance(model, dict):
        raise FormatError(f"{where}: model must be an object, got {type(model).__name__}")
    if model.get("type", "BPE") != "BPE":
        raise UnsupportedError(f"{where}: model type {model.get('type')!r} is not supported (only BPE is)")
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
        if model.get(key):
            raise UnsupportedError(f"{where}: BPE option {key}={model[key]!r} is not supported")
    vocab, added = model.get("vocab"), spec.get("added_tokens") or []
    n = check_vocab(vocab, added, where)
    byte_level = is_byte_level(spec)
    merge_tokens, decoded, kind = [None] * n, [None] * n, np.full(n, _core.TOKEN_UNUSED, np.uint8)
    token_bytes, strip, first_differs = decoder(spec.get("decoder"), byte_level, where)
    for s, i in vocab.items():
        merge_tokens[i] = byte_level_decode(s, where) if byte_level else s.encode("utf-8")
        decoded[i] = token_bytes(s, False)
        kind[i] = _core.TOKEN_MERGEABLE
    for a in added:
        i = a["id"]
        decoded[i] = token_bytes(a["content"], True)
        if kind[i] == _core.TOKEN_UNUSED:
            merge_tokens[i], kind[i] = a["content"].encode("utf-8"), _core.TOKEN_SPECIAL
    bpe = new_bpe(merge_tokens, kind)
    left, right = parse_merges(model.get("merges") or [], vocab, where)
    if merge_rank is not None:
        bpe.merges_ranked(merge_rank)
    elif (bad := bpe.merges_list(left, right)) >= 0:
        raise FormatError(f"{where}: merge {bad} ({model['merges'][bad]!r}) makes a token not in the vocabulary")
    first = None
    if first_differs:  # what each id decodes to at the start of the text
        first = [None] * n
        for s, i in vocab.items():
            first[i] = token_bytes(s, False, first=True)
        for a in added:
            first[a["id"]] = token_bytes(a["content"], True, first=True)
    pipeline = Pipeline(spec, byte_level, where, strip=strip, first=first)
    if byte_level:
        byte_id = [vocab.get(BYTE_TO_CHAR[b], -1) for b in range(256)]
        if min(byte_id) < 0 and not missing_bytes:
            raise UnsupportedError(f"{where}: a byte-level vocabulary without all 256 byte tokens")
    else:
        byte_id = [vocab.get(f"<0x{b:02X}>", -1) for b in range(256)]
        if not model.get("byte_fallback"):
            byte_id = None
        elif min(byte_id) < 0:
            raise UnsupportedError(f"{where}: byte_fallback without all 256 <0xNN> tokens")
    unk = vocab.get(model.get("unk_token"), -1) if model.get("unk_token") is not None else -1
    bpe.config(
        pipeline.pre.scanner or "none",
        by_char=not byte_level,
        byte_id=byte_id,
        unk_id=unk,
        fuse_unk=bool(model.get("fuse_unk")),
        whole_first=bool(model.get("ignore_merges")),
    )
    set_decode(bpe, decoded)
    special = {a["content"]: a["id"] for a in added if a.get("special")}
    bpe.specials(np.zeros(0, np.int32))
    bos, eos = bos_eos(spec, config, special)
    add_bos, template_bos = prompt_bos(spec, config)
    return Parts(
        bpe,
        decoded,
        special,
        pipeline.pre.pattern,
        pipeline=pipeline,
        bos_id=bos if bos is not None else template_bos,
        eos_id=eos,
        add_bos=add_bos,
        spec=spec,
    )


# ---- writing ----


def merges_from_ranks(ranks):
    """Merges that rebuild tiktoken ranks: each token's bytes merged with the lower ranks only must end as
    exactly two parts, which become its merge (the conversion Llama 3's tokenizer.json comes from)."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        if len(parts) == 2:
            merges.append(parts)
    return merges


def byte_level_spec(vocab_bytes, merges, special, pattern, *, ignore_merges):
    """A tokenizer.json dict for a byte-level BPE: vocab {bytes: id}, merges [(bytes, bytes)], specials
    {str: id}, split with `pattern` (Split + ByteLevel, as Llama 3)."""

    def enc(b):
        return "".join(BYTE_TO_CHAR[x] for x in b)

    added = [
        {
            "id": i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for s, i in sorted(special.items(), key=lambda kv: kv[1])
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": ignore_merges,
            "vocab": {enc(b): i for b, i in sorted(vocab_bytes.items(), key=lambda kv: kv[1])},
            "merges": [[enc(a), enc(b)] for a, b in merges],
        },
    }
