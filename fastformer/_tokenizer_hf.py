"""Hugging Face tokenizer.json BPE models (and GGUF tokenizer.ggml.* vocabularies) for fastformer.Tokenizer.

Tokenizer._from_hf reads the model (vocab, merges, unk_token, byte_fallback, ignore_merges) and the added
tokens with the helpers here; `Pipeline` does what `tokenizers` does around the BPE model: split off added
tokens (leftmost-longest, with lstrip/rstrip/single_word), normalize, pre-tokenize, then hand each segment to
the C engine (whole, or already split into pieces when no scanner covers the pattern); `decoder` turns the
decoder into per-token bytes. `gguf_metadata` / `from_gguf_metadata` convert to and from GGUF's keys.
"""

import contextlib
import json
import math
import re
import unicodedata

import numpy as np

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
# Unicode White_Space (Rust's char::is_whitespace), for lstrip / rstrip of added tokens
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def byte_level_decode(s, where):
    try:
        return bytes(CHAR_TO_BYTE[c] for c in s)
    except KeyError as e:
        raise FormatError(f"{where}: token {s!r} is not in the byte-level alphabet") from e


def _steps(node, kind):
    """A normalizer / pre-tokenizer / decoder node as a flat list of dicts (Sequence unrolled)."""
    if node is None:
        return []
    if node.get("type") == "Sequence":
        key = {"normalizer": "normalizers", "pre_tokenizer": "pretokenizers", "decoder": "decoders"}[kind]
        return [s for sub in node.get(key, []) for s in _steps(sub, kind)]
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
    for step in _steps(node, "normalizer"):
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
                rx = _regex(pat)
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


def _regex(pattern):
    try:
        import regex
    except ImportError as e:
        raise UnsupportedError(f"pattern {pattern!r} needs the `regex` package") from e
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError) as e:
        raise FormatError(f"invalid split pattern {pattern!r}: {e}") from e


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
        from fastformer.tokenizer import GPT2_PATTERN_HF
        from fastformer.tokenizer import SCANNERS_HF as SCANNERS

        self.scanner, self.pattern, self.prefix_space, self.steps = None, None, False, []
        self.metaspace = None
        steps = _steps(node, "pre_tokenizer")
        types = [s.get("type") for s in steps]
        # fast paths: ByteLevel(use_regex), or Split(known pattern, Isolated) + ByteLevel(no regex, no prefix)
        if types == ["ByteLevel"]:
            self.prefix_space = steps[0].get("add_prefix_space", True)
            self.scanner = "gpt2" if steps[0].get("use_regex", True) else "none"
            self.pattern = GPT2_PATTERN_HF if self.scanner == "gpt2" else None
            return
        if (
            types == ["Split", "ByteLevel"]
            and steps[0].get("behavior") == "Isolated"
            and not steps[0].get("invert", False)
            and not steps[1].get("add_prefix_space", True)
            and not steps[1].get("use_regex", True)
        ):
            kind, pat = _pattern(steps[0]["pattern"], where)
            if kind == "regex" and pat in SCANNERS:
                self.scanner, self.pattern = SCANNERS[pat], pat
                return
        if not steps:
            self.scanner = "none"
            return
        if types == ["Metaspace"] and not byte_level:
            st = steps[0]
            self.metaspace = (st.get("replacement", "▁"), _prepend_scheme(st), st.get("split", True))
            return
        for st in steps:
            t = st.get("type")
            if t == "Split":
                kind, pat = _pattern(st["pattern"], where)
                rx = _regex(pat) if kind == "regex" else re.compile(re.escape(pat))
                if kind == "regex" and pat not in SCANNERS:
                    import warnings

                    warnings.warn(
                        f"{where}: split pattern {pat!r} has no built-in scanner; using the slower `regex` package",
                        stacklevel=4,
                    )
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
                self.steps.append(("metaspace", st.get("replacement", "▁"), _prepend_scheme(st), st.get("split", True)))
            else:
                raise UnsupportedError(
                    f"{where}: pre-tokenizer {t!r} is not supported (ByteLevel, Split, Digits, "
                    "Metaspace and Sequence are)"
                )

    def pieces(self, seg, first):
        """The pieces of one normalized segment (the slow path); `first`: it starts the text."""
        from fastformer import _core

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
                elif step[0] == "digits":
                    rx = r"\p{N}" if step[1] else r"\p{N}+"
                    out += _split_parts(
                        p,
                        [m.span() for m in _regex(rx).finditer(p)],
                        "Isolated" if step[1] else "Contiguous",
                        False,
                    )
                else:
                    out += _metaspace(p, step[1], step[2], step[3], first and p is pieces[0])
            pieces = out
        return pieces


def _prepend_scheme(step):
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
    """Added tokens split out of the text as `tokenizers` does: non-normalized ones on the raw text,
    normalized ones on each normalized segment; leftmost-longest, then single_word / lstrip / rstrip."""

    def __init__(self, added, normalize):
        self.tokens = {}  # content -> (id, special, single_word, lstrip, rstrip)
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
            self.tokens[content] = (
                a["id"],
                a.get("special", False),
                a.get("single_word", False),
                a.get("lstrip", False),
                a.get("rstrip", False),
            )
        self.raw = self._alternation(raw)
        self.norm = self._alternation(norm)

    @staticmethod
    def _alternation(contents):
        if not contents:
            return None
        return re.compile("|".join(re.escape(c) for c in sorted(set(contents), key=len, reverse=True)))

    def split(self, text, rx, special_mode):
        """text as [(segment, None) | (content, id)]; special_mode(content) -> 0 plain, 1 split."""
        out, start = [], 0
        for m in rx.finditer(text):
            a, b = m.span()
            tid, special, single_word, lstrip, rstrip = self.tokens[m.group()]
            if special and not special_mode(m.group()):
                continue
            if single_word and ((a > 0 and text[a - 1].isalnum()) or (b < len(text) and text[b].isalnum())):
                continue
            if lstrip:
                while a > start and text[a - 1] in WHITE_SPACE:
                    a -= 1
            if rstrip:
                while b < len(text) and text[b] in WHITE_SPACE:
                    b += 1
            if a > start:
                out.append((text[start:a], None))
            out.append((text[a:b], tid))
            start = b
        if start < len(text):
            out.append((text[start:], None))
        return out


class Pipeline:
    """What `tokenizers` does around the BPE model, for one tokenizer.json."""

    def __init__(self, spec, byte_level, where):
        self.normalize = _normalizer(spec.get("normalizer"), where)
        self.pre = _PreTokenizer(spec.get("pre_tokenizer"), byte_level, where)
        self.added = _Added(spec.get("added_tokens") or [], self.normalize)
        self.byte_level = byte_level
        self.strip = 0  # leading spaces the decoder strips
        self.first = None  # per id: its bytes when it starts the decoded text, if that differs
        # the whole text can go straight to C when nothing in Python would change it
        self.direct = self.normalize is None and self.pre.scanner is not None and not self.pre.prefix_space

    def segments(self, text, mode, names):
        """text as [(str, None) to encode with the C scanner | (list of pieces, None) | (None, id)]."""
        allowed = {s for k, s in enumerate(names) if mode[k] == 1}
        for k, s in enumerate(names):
            if mode[k] == 2 and s in text:
                from fastformer.tokenizer import _raise_disallowed

                _raise_disallowed(
                    min(
                        (t for j, t in enumerate(names) if mode[j] == 2 and t in text),
                        key=lambda t: (text.find(t), -len(t)),
                    )
                )
        parts = [(text, None)]
        if self.added.raw is not None:
            parts = self.added.split(text, self.added.raw, allowed.__contains__)
        out, pos = [], 0
        for seg, tid in parts:
            first, pos = pos == 0, pos + len(seg)
            if tid is not None:
                out.append((None, tid))
                continue
            seg = self.normalize(seg) if self.normalize is not None else seg
            sub = [(seg, None)]
            if self.added.norm is not None:
                sub = self.added.split(seg, self.added.norm, allowed.__contains__)
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
        if self.direct and not self._has_added(text):
            return [(text, None)]
        return self.segments(text, mode, names)

    def encode(self, tok, text, mode):
        return self.run(tok, [self.plan(text, mode, tok._special_names)], 1)[0]

    def run(self, tok, plans, num_threads):
        """The ids of planned texts: every str segment is encoded in one parallel C batch."""
        flat = [seg for plan in plans for seg, _ in plan if isinstance(seg, str)]
        done = iter(tok._bpe.encode_batch(flat, None, num_threads) if flat else [])
        out = []
        for plan in plans:
            ids = []
            for seg, tid in plan:
                if tid is not None:
                    ids.append(tid)
                elif isinstance(seg, str):
                    ids += next(done)
                else:
                    ids += _encode_piece_list(tok._bpe, seg)
            out.append(ids)
        return out

    def _has_added(self, text):
        return (self.added.raw is not None and self.added.raw.search(text) is not None) or (
            self.added.norm is not None and self.added.norm.search(text) is not None
        )


def _encode_piece_list(bpe, pieces):
    data = [p.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8") for p in pieces]
    ends = np.cumsum([len(d) for d in data], dtype=np.int64)
    starts = ends - np.array([len(d) for d in data], dtype=np.int64)
    return bpe.encode_pieces(np.frombuffer(b"".join(data) or b"\0", np.uint8), starts, ends) if data else []


# ---- decoders ----


def decoder(node, byte_level, where):
    """(token_bytes(string, added, first), leading spaces to strip from the decoded text, whether the first
    token decodes differently: tokenizers' Metaspace decoder drops every replacement character in it)."""
    steps = _steps(node, "decoder")
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
            if _prepend_scheme(st) != "never":
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
    from fastformer.tokenizer import _id_limit

    if not isinstance(vocab, dict):
        raise FormatError(f"{where}: model.vocab must map tokens to ids, got {type(vocab).__name__}")
    if not isinstance(added, list) or not all(
        isinstance(a, dict) and isinstance(a.get("content"), str) and "id" in a for a in added
    ):
        raise FormatError(f"{where}: added_tokens must be a list of objects with an id and a string content")
    limit = _id_limit(len(vocab) + len(added))
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
    steps = _steps(spec.get("pre_tokenizer"), "pre_tokenizer") + _steps(spec.get("normalizer"), "normalizer")
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


# ---- GGUF tokenizer.ggml.* metadata ----

# llama.cpp's names of the split patterns (tokenizer.ggml.pre); cl100k's newer form is closest to llama-bpe
GGUF_PRE = {"llama3": "llama-bpe", "cl100k": "llama-bpe", "qwen2": "qwen2", "o200k": "gpt-4o", "gpt2": "gpt-2"}
GGUF_PRE_PATTERN = {
    "llama-bpe": "LLAMA3_PATTERN",
    "llama3": "LLAMA3_PATTERN",
    "qwen2": "QWEN2_PATTERN",
    "gpt-4o": "O200K_PATTERN",
    "gpt-2": "GPT2_PATTERN_HF",
    "default": "GPT2_PATTERN_HF",
}
TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER, TYPE_UNUSED, TYPE_BYTE = 1, 2, 3, 4, 5, 6


def gguf_metadata(tok):
    from fastformer.tokenizer import SCANNERS

    spec = tok._spec
    n = tok.n_vocab
    added = {a["id"]: a for a in (spec or {}).get("added_tokens") or []}
    meta = {}
    if tok._pipeline is None or tok._pipeline.byte_level:
        # byte-level: tokens spelled with GPT-2's byte map, merges as "a b"
        if spec is not None:
            vocab, merges = spec["model"]["vocab"], spec["model"].get("merges") or []
            merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        else:
            vocab = {"".join(BYTE_TO_CHAR[x] for x in b): i for b, i in tok._ranks.items()}
            merges = [" ".join("".join(BYTE_TO_CHAR[x] for x in p) for p in m) for m in merges_from_ranks(tok._ranks)]
        tokens, types = [f"[UNUSED_{i}]" for i in range(n)], [TYPE_UNUSED] * n
        for s, i in vocab.items():
            tokens[i], types[i] = s, TYPE_NORMAL
        for s, i in tok.special_tokens.items():
            tokens[i], types[i] = s, TYPE_CONTROL
        for i, a in added.items():
            if not a.get("special"):
                tokens[i], types[i] = a["content"], TYPE_USER
        meta["tokenizer.ggml.model"] = "gpt2"
        meta["tokenizer.ggml.pre"] = GGUF_PRE.get(SCANNERS.get(tok.pattern), "default")
        meta["tokenizer.ggml.merges"] = merges
    else:
        # sentencepiece-style: pieces, scores that order the merges, byte and control types
        vocab = spec["model"]["vocab"]
        first = {}
        for k, m in enumerate(spec["model"].get("merges") or []):
            a, b = m.split(" ") if isinstance(m, str) else m
            first.setdefault(a + b, k)
        tokens, scores, types = [f"[UNUSED_{i}]" for i in range(n)], [0.0] * n, [TYPE_UNUSED] * n
        for s, i in vocab.items():
            tokens[i], types[i] = s, TYPE_NORMAL
            scores[i] = -float(first.get(s, len(first) + i))
            if len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
                types[i] = TYPE_BYTE
        for i, a in added.items():
            tokens[i] = a["content"]
            types[i] = TYPE_CONTROL if a.get("special") else TYPE_USER
        unk = spec["model"].get("unk_token")
        if unk in vocab:
            types[vocab[unk]] = TYPE_UNKNOWN
        meta["tokenizer.ggml.model"] = "llama"
        meta["tokenizer.ggml.scores"] = scores
        meta["tokenizer.ggml.add_space_prefix"] = _adds_space_prefix(spec)
    meta["tokenizer.ggml.tokens"] = tokens
    meta["tokenizer.ggml.token_type"] = types
    if tok.bos_id is not None:
        meta["tokenizer.ggml.bos_token_id"] = tok.bos_id
    if tok.eos_id is not None:
        meta["tokenizer.ggml.eos_token_id"] = tok.eos_id
    return meta


def _adds_space_prefix(spec):
    for st in _steps(spec.get("normalizer"), "normalizer"):
        if st.get("type") == "Prepend":
            return True
    for st in _steps(spec.get("pre_tokenizer"), "pre_tokenizer"):
        if st.get("type") == "Metaspace":
            return _prepend_scheme(st) != "never"
    return False


def _meta_list(meta, key, default):
    """A metadata array as a list (GGUF readers give numeric arrays as numpy arrays, strings as lists)."""
    v = meta.get(key)
    return list(default) if v is None else [x.item() if hasattr(x, "item") else x for x in v]


def _gguf_vocab(meta, where):
    """tokens, token types and bos / eos ids of tokenizer.ggml.*, checked."""
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is None or len(tokens) == 0:
        raise FormatError(f"{where}.tokens is missing or empty")
    if not isinstance(tokens, list) or not all(isinstance(x, str) for x in tokens):
        raise FormatError(f"{where}.tokens must be an array of strings")
    types = _meta_list(meta, "tokenizer.ggml.token_type", [TYPE_NORMAL] * len(tokens))
    if len(types) != len(tokens):
        raise FormatError(f"{where}.token_type has {len(types)} entries for {len(tokens)} tokens")
    bad = next(
        (i for i, x in enumerate(types) if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 6), None
    )
    if bad is not None:
        raise FormatError(f"{where}.token_type of token {bad} is {types[bad]!r}, expected 0..6")
    first = {}
    for i, (s, ty) in enumerate(zip(tokens, types)):
        if ty in (TYPE_NORMAL, TYPE_BYTE):
            if s in first:
                raise FormatError(f"{where}.tokens: token {s!r} appears twice (ids {first[s]} and {i})")
            first[s] = i
    ids = []
    for key in ("bos_token_id", "eos_token_id"):
        v = meta.get(f"tokenizer.ggml.{key}")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(tokens)):
            raise FormatError(f"{where}.{key} {v!r} must be a token id in [0, {len(tokens)})")
        ids.append(v)
    return tokens, types, ids[0], ids[1]


def from_gguf_metadata(cls, meta, source):
    import fastformer.tokenizer as t

    model = meta.get("tokenizer.ggml.model")
    where = f"{source}: tokenizer.ggml"
    tokens, types, bos, eos = _gguf_vocab(meta, where)
    if model == "llama":
        scores = _meta_list(meta, "tokenizer.ggml.scores", [])
        if len(scores) != len(tokens):
            raise FormatError(f"{where}.scores has {len(scores)} entries for {len(tokens)} tokens")
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in scores):
            raise FormatError(f"{where}.scores must be finite numbers")
        tok = cls._from_scores(
            tokens, scores, types, name="gguf", add_space_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True))
        )
    elif model == "gpt2":
        pre = meta.get("tokenizer.ggml.pre", "default")
        if pre not in GGUF_PRE_PATTERN:
            raise UnsupportedError(f"{where}.pre {pre!r} is not supported ({', '.join(sorted(GGUF_PRE_PATTERN))} are)")
        pattern = getattr(t, GGUF_PRE_PATTERN[pre])
        vocab = {
            s: i
            for i, s in enumerate(tokens)
            if types[i] in (TYPE_NORMAL, TYPE_BYTE, TYPE_UNUSED) and not s.startswith("[UNUSED_")
        }
        added = [
            {"id": i, "content": s, "special": types[i] == TYPE_CONTROL, "normalized": False}
            for i, s in enumerate(tokens)
            if types[i] in (TYPE_CONTROL, TYPE_USER)
        ]
        # llama.cpp takes a piece that is a token whole for llama-bpe (as Llama 3's ignore_merges)
        spec = byte_level_spec({}, [], {}, pattern, ignore_merges=pre in ("llama-bpe", "llama3"))
        merges = meta.get("tokenizer.ggml.merges", [])
        if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
            raise FormatError(f"{where}.merges must be an array of strings")
        spec["model"]["vocab"], spec["model"]["merges"] = vocab, merges
        spec["added_tokens"] = added
        tok = cls._from_hf(spec, where, name="gguf")
    else:
        raise UnsupportedError(f"{where}.model {model!r} is not supported (gpt2 and llama are)")
    tok.bos_id = bos if bos is not None else tok.bos_id
    tok.eos_id = eos if eos is not None else tok.eos_id
    tok.add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", model == "llama")) and tok.bos_id is not None
    return tok


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
