"""Byte-level BPE training (fastformer.train_bpe): counts of the pieces a split pattern makes, then greedy
merges of the most frequent adjacent pair; the result is a tokenizer.json description."""

from __future__ import annotations

import heapq
import os
from collections import Counter, defaultdict

from fastformer import _core
from fastformer._bpe_engine import alternation, replace_surrogates
from fastformer._patterns import ENCODINGS, SCANNERS, compile_regex, hf_pattern
from fastformer._tokenizer_hf import byte_level_spec


def train_spec(texts_or_files, *, vocab_size: int, pattern: str, special_tokens) -> dict:
    """The tokenizer.json (as a dict) of a byte-level BPE trained as `fastformer.train_bpe` describes."""
    regex_str = ENCODINGS[pattern][0] if pattern in ENCODINGS else pattern
    special_tokens = list(special_tokens)
    n_tokens = vocab_size - len(special_tokens)
    if n_tokens < 256:
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room for the 256 byte tokens and {len(special_tokens)} special tokens"
        )
    scanner = SCANNERS.get(regex_str)
    rx = compile_regex(regex_str, slow_split=True, stacklevel=3) if scanner is None else None
    cut = alternation(special_tokens)
    # how often each piece occurs
    counts = Counter()
    for item in texts_or_files:
        if isinstance(item, os.PathLike):
            with open(item, encoding="utf-8") as f:
                item = f.read()
        if not isinstance(item, str):
            raise TypeError(f"train_bpe: expected str texts or os.PathLike files, got {type(item).__name__}")
        for seg in cut.split(item) if cut else [item]:
            seg = replace_surrogates(seg)
            pieces = _core.pretok_split(seg, scanner) if rx is None else rx.findall(seg)
            counts.update(p.encode("utf-8") for p in pieces)
    tokens, merges = _merge(counts, n_tokens)
    special = {s: len(tokens) + k for k, s in enumerate(special_tokens)}
    ids = {t: i for i, t in enumerate(tokens)}
    return byte_level_spec(ids, merges, special, hf_pattern(regex_str), ignore_merges=False)


def _merge(counts, n_tokens):
    """(tokens, merges): the 256 bytes, then the most frequent adjacent pair merged until there are n_tokens
    tokens or no pair occurs twice; ties go to the pair with the smaller bytes."""
    # words as symbol lists, the pairs in them, and a max-heap of pair counts (ties: smaller bytes first)
    tokens = [bytes([b]) for b in range(256)]
    ids = {t: i for i, t in enumerate(tokens)}
    words, freq = [list(w) for w in counts], list(counts.values())
    pairs, where = defaultdict(int), defaultdict(set)
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pairs[p] += freq[wi]
            where[p].add(wi)
    heap = [(-c, tokens[a], tokens[b], a, b) for (a, b), c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(tokens) < n_tokens and heap:
        negc, _, _, a, b = heapq.heappop(heap)
        c = pairs.get((a, b), 0)
        if c != -negc:
            if c > 0:
                heapq.heappush(heap, (-c, tokens[a], tokens[b], a, b))
            continue
        if c < 2:
            break
        merged = tokens[a] + tokens[b]
        new = ids.get(merged)
        if new is None:
            new = ids[merged] = len(tokens)
            tokens.append(merged)
        merges.append((tokens[a], tokens[b]))
        changed = set()
        for wi in where.pop((a, b), ()):
            w, f = words[wi], freq[wi]
            for p in zip(w, w[1:]):
                pairs[p] -= f
                changed.add(p)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pairs[p] += f
                where[p].add(wi)
                changed.add(p)
        pairs.pop((a, b), None)
        for p in changed:
            if pairs.get(p, 0) > 0 and p != (a, b):
                heapq.heappush(heap, (-pairs[p], tokens[p[0]], tokens[p[1]], p[0], p[1]))
    return tokens, merges
