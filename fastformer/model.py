"""fastformer.Model: run a Checkpoint with a kv cache, score and generate.

The whole per-token forward pass is one C call (fastformer._core.Session.forward) with the GIL released;
Python only picks the next token. Weights are shared by every generation; each call gets its own cache.

>>> model = Model.load("path/to/hf-model")                      # doctest: +SKIP
>>> model.generate("Once upon a time", max_new_tokens=20)       # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np

from fastformer import _core
from fastformer.arch import HF_CLASSES
from fastformer.chat import ChatTemplateError, render_chat_template
from fastformer.checkpoint import (
    Checkpoint,
    LayerWeights,
    ModelConfig,
    Weights,
    as_dict,
    quantize_checkpoint,
    rope_inv_freq,
)
from fastformer.engine import PREFILL_CHUNK, Engine, SamplingParams, _find_stop, _stop_list, _stop_overlap
from fastformer.errors import UnsupportedError
from fastformer.hf import parse_config
from fastformer.quant import QUANTIZABLE_AT_LOAD
from fastformer.sampling import Sampler
from fastformer.tokenizer import utf8_split

__all__ = ["DEFAULT_MODEL", "DEFAULT_SAMPLING", "KJV_MODEL", "Model", "ModelConfig", "parse_config", "rope_inv_freq"]

SUPPORTED_ARCHITECTURES = HF_CLASSES
KV_DTYPES = ("f32", "f16", "q8_0")  # how the kv cache stores keys and values (Model.load's kv_dtype)
DEFAULT_KV_DTYPE = "f16"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# the embedded default model: SmolLM2-135M-Instruct, Q4_1 GGUF (data/MODEL_CARD.md), fetched when the package is built
DEFAULT_MODEL = os.path.join(DATA, "smollm2-135m-instruct-q4_1.gguf")
# the small model the tests and examples use: a 5M Llama trained on the King James Bible (data/KJV_MODEL_CARD.md)
KJV_MODEL = os.path.join(DATA, "kjv-5m-q8_0.gguf")
# sampling that reads well with the default model (the CLI's defaults too)
DEFAULT_SAMPLING = dict(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, repetition_penalty=1.1)

Ids = Union[Sequence[int], np.ndarray]
Prompt = Union[str, Sequence[int], np.ndarray]  # text (tokenized with the model's tokenizer) or token ids


def _as_ids(ids, vocab, name="ids"):
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {ids.shape}")
        out = [int(i) for i in ids]
    else:
        try:
            out = [int(i) for i in ids]
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a sequence of ints, got {type(ids).__name__}") from None
        if any(isinstance(i, bool) or int(i) != i for i in ids):
            raise TypeError(f"{name} must be a sequence of ints")
    bad = [i for i in out if not 0 <= i < vocab]
    if bad:
        raise ValueError(f"{name} holds token id {bad[0]} outside the vocabulary [0, {vocab})")
    return out


def _want_hugepages(hugepages):
    """Model.load's hugepages argument: None -> FASTFORMER_HUGEPAGES (0/1) if set, else what the kernel offers."""
    if hugepages is None:
        env = os.environ.get("FASTFORMER_HUGEPAGES", "").strip()
        if env not in ("", "0", "1"):
            raise ValueError(f"FASTFORMER_HUGEPAGES must be 0 or 1, got {env!r}")
        return _core.hugepages_available() if env in ("", "1") else False
    if not isinstance(hugepages, bool):
        raise TypeError(f"hugepages must be True, False or None, got {hugepages!r}")
    return hugepages


class Model:
    """A causal language model loaded into fastformer's C runtime.

    >>> model = Model.load("path/to/hf-model")              # doctest: +SKIP
    >>> model.logits([1, 2, 3]).shape                        # doctest: +SKIP
    (3, 32000)
    """

    def __init__(self, checkpoint: Checkpoint, *, hugepages: bool = False, kv_dtype: str = DEFAULT_KV_DTYPE):
        """Run `checkpoint` (what `fastformer.hf.load` / `fastformer.gguf.load` return); `Model.load` is the
        usual way in. With hugepages the weight matrices are copied into huge pages (the checkpoint keeps its
        own arrays: drop it to free them). kv_dtype as in `load`."""
        ck = checkpoint
        c, arch = ck.config, ck.config.family
        if kv_dtype not in KV_DTYPES:
            raise ValueError(f"kv_dtype must be one of {', '.join(map(repr, KV_DTYPES))}, got {kv_dtype!r}")
        _core.kv_row_bytes(kv_dtype, c.head_dim)  # q8_0 needs whole blocks of 32 per head
        self.kv_dtype = kv_dtype
        self.config = c
        self.tokenizer = ck.tokenizer
        self.chat_templates = dict(ck.chat_templates)  # {name: jinja template} from the model's files
        self.path = ck.path
        self._format, self._rope = ck.format, ck.rope
        self._eos = ck.eos_ids
        dims = dict(n_layers=c.n_layers, d=c.d_model, n_heads=c.n_heads, n_kv_heads=c.n_kv_heads,
                    head_dim=c.head_dim, d_ff=c.d_ff, vocab=c.vocab_size, max_ctx=c.max_context, eps=c.norm_eps,
                    window=c.sliding_window, norm=arch.norm, act=arch.act, rope=ck.rope,
                    rope_dim=c.rotary_dim, rope_attn_factor=c.rope_attn_factor, emb_scale=c.emb_scale,
                    attn_scale=c.attn_scale, attn_softcap=c.attn_softcap, final_softcap=c.final_softcap,
                    windows=[c.sliding_window if c.sliding_layers is None or c.sliding_layers[i] else 0
                             for i in range(c.n_layers)],
                    sliding=list(c.sliding_layers or [False] * c.n_layers))  # fmt: skip
        self._core = _core.ModelCore(dims, as_dict(ck.weights), [as_dict(lw) for lw in ck.layers], bool(hugepages))
        self.sentence = None  # encoders: how embed() pools (fastformer.encoder.SentenceConfig)
        if arch.encoder:
            from fastformer.encoder import read_sentence_config

            self.sentence = read_sentence_config(ck)

    def checkpoint(self) -> Checkpoint:
        """What the model runs on, as a Checkpoint (the arrays are the model's own: do not write to them)."""
        w = Weights(**self._core.weights)
        layers = [LayerWeights(**lw) for lw in self._core.layers]
        return Checkpoint(self.path, self._format, self.config, w, layers, self.tokenizer, rope=self._rope,
                          chat_templates=dict(self.chat_templates))  # fmt: skip

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        quantize: str | None = None,
        threads: int | None = None,
        max_context: int | None = None,
        hugepages: bool | None = None,
        kv_dtype: str = DEFAULT_KV_DTYPE,
    ) -> Model:
        """Load a Hugging Face model directory (config.json + safetensors, tokenizer files if present) or a GGUF
        file.

        `quantize` ("q8_0" or "q4_0") quantizes the float weight matrices at load; `threads` sets the kernel
        thread count (process-wide); `max_context` caps the context window. `hugepages`: copy the weight
        matrices into memory backed by transparent huge pages, which decode streams faster than the file's
        mapping (resident size stays about the same: the file pages are dropped). None (the default) means yes
        where the kernel offers them, unless the environment sets FASTFORMER_HUGEPAGES=0; False keeps float32
        weights zero-copy in the file mapping. `kv_dtype` is how the kv cache stores keys and values: "f16" (the
        default, half the memory and bandwidth of "f32"), "q8_0" (ggml's 8-bit blocks of 32, about a quarter;
        head_dim must be a multiple of 32) or "f32" (exact).
        """
        path = os.fspath(path)
        hugepages = _want_hugepages(hugepages)
        if kv_dtype not in KV_DTYPES:
            raise ValueError(f"kv_dtype must be one of {', '.join(map(repr, KV_DTYPES))}, got {kv_dtype!r}")
        if quantize is not None and quantize not in QUANTIZABLE_AT_LOAD:
            *first, last = [repr(q) for q in QUANTIZABLE_AT_LOAD]
            raise ValueError(f"quantize must be None, {', '.join(first)} or {last}, got {quantize!r}")
        if threads is not None:
            _core.set_num_threads(threads)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such model file or directory")
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                if fh.read(4) != b"GGUF":
                    raise UnsupportedError(f"{path}: expected a GGUF file or a Hugging Face model directory")
            from fastformer import gguf

            ck = gguf.load(path, max_context)
        else:
            from fastformer import hf

            ck = hf.load(path, max_context)
        if quantize:
            ck = quantize_checkpoint(ck, quantize)
        return cls(ck, hugepages=hugepages, kv_dtype=kv_dtype)

    @classmethod
    def default(
        cls,
        *,
        quantize: str | None = None,
        threads: int | None = None,
        max_context: int | None = None,
        hugepages: bool | None = None,
        kv_dtype: str = DEFAULT_KV_DTYPE,
    ) -> Model:
        """The embedded default model: SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as Q4_1 GGUF, no network.

        Options as in `load`. It continues text (`generate`) and chats with its own template (`chat`); sample
        with DEFAULT_SAMPLING (fastformer/data/MODEL_CARD.md: source, licence, perplexity, speed).

        >>> Model.default().generate("The capital of France is", seed=0, **DEFAULT_SAMPLING)  # doctest: +SKIP
        """
        if not os.path.exists(DEFAULT_MODEL):
            raise FileNotFoundError(
                f"{DEFAULT_MODEL}: the embedded default model is missing from this install (a build made with "
                "FASTFORMER_NO_DEFAULT_MODEL=1, or a source tree): fetch it with tools/get_default_model.sh"
            )
        return cls.load(DEFAULT_MODEL, quantize=quantize, threads=threads, max_context=max_context,
                        hugepages=hugepages, kv_dtype=kv_dtype)  # fmt: skip

    def save_gguf(self, path: str | os.PathLike, *, progress=None) -> None:
        """Write the model (its float and quantized weights as they are) to a GGUF file llama.cpp loads.

        Families with a GGUF form (fastformer.arch: llama, mistral without a sliding window, gpt2);
        progress(i, n) after each tensor.
        """
        if self.is_encoder:  # its WordPiece vocabulary and pooling have no writer yet
            raise UnsupportedError(f"{self.path}: writing an encoder as GGUF is not supported (llama.cpp's is)")
        from fastformer.gguf_write import write_gguf

        write_gguf(self.checkpoint(), os.fspath(path), progress)

    def kv_bytes_per_token(self, kv_dtype: str | None = None) -> int:
        """Bytes the kv cache takes per position (keys and values of every layer), stored as kv_dtype (default:
        the model's)."""
        c = self.config
        return 2 * c.n_layers * c.n_kv_heads * _core.kv_row_bytes(kv_dtype or self.kv_dtype, c.head_dim)

    # ---- embeddings ----

    @property
    def is_encoder(self) -> bool:
        """True for an encoder (BERT): `embed` works and the generation and scoring methods do not."""
        return self.config.family.encoder

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        pooling: str | Sequence[str] | None = None,
        normalize: bool | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Sentence embeddings (len(texts), dim) float32, as sentence-transformers' `encode` gives them.

        pooling ("mean", "cls", "max", "lasttoken", "weightedmean", "mean_sqrt_len_tokens" or a list of them,
        concatenated) and normalize default to the model's sentence-transformers files (mean, no normalization
        for a bare BERT directory). Each text is cut to the model's max_seq_length tokens, [CLS] and [SEP]
        included (`model.sentence`); texts are run `batch_size` at a time, longest first, without padding.

        >>> model.embed(["a sentence", "another one"]).shape  # doctest: +SKIP
        (2, 384)
        """
        if not self.is_encoder:
            raise UnsupportedError(f"{self.path}: embed() needs an encoder (BERT), not a {self.config.arch} decoder")
        from fastformer.encoder import embed

        return embed(self, texts, pooling=pooling, normalize=normalize, batch_size=batch_size)

    def _need_decoder(self):
        if self.is_encoder:
            raise UnsupportedError(f"{self.path}: an encoder ({self.config.arch}) has no next-token head; use embed()")

    # ---- scoring ----

    def _session(self, n_tokens, length=0):
        """A session for up to n_tokens positions; `length` is the sequence length the next call reaches (a
        longrope model rotates a sequence longer than its pretraining length with the long factors)."""
        self._need_decoder()
        if n_tokens > self.config.max_context:
            raise ValueError(f"{n_tokens} tokens exceed the context window of {self.config.max_context} positions")
        sess = _core.Session(self._core, max(n_tokens, 1), min(PREFILL_CHUNK, max(n_tokens, 1)), self.kv_dtype)
        sess.rope_long = self._rope_long(length)
        return sess

    def _rope_long(self, length):
        after = self.config.rope_long_after
        return bool(after) and length > after

    def _prefill_step(self, n_past, remaining, max_t=PREFILL_CHUNK):
        """Tokens of a prompt the next forward call takes at position n_past: whole chunks of PREFILL_CHUNK
        from position 0 (the batched engine cuts prompts at the same places, so a prompt's bits are the same
        there and here); a call never crosses the sliding window, and past it takes one token at a time, which
        keeps every query's window exact."""
        n = min(PREFILL_CHUNK - n_past % PREFILL_CHUNK, remaining, max_t)
        window = self.config.sliding_window
        if window and n_past + n > window:
            n = max(1, window - n_past)
        return n

    def _prefill(self, sess, ids, all_logits=False):
        """Feed ids (prompt tokens) into the session in chunks; the last chunk's logits (all rows or the last).
        Prompt tokens run on the blocked kernels (PATH_PANELS) and generated ones on the few-rows kernels
        (PATH_ROWS) whatever their count, so a token's bits never depend on how many share its call."""
        outs = []
        i = 0
        while i < len(ids):
            n = self._prefill_step(sess.n_past, len(ids) - i, sess.max_t)
            out = sess.forward(ids[i : i + n], all_logits, _core.PATH_PANELS)
            if all_logits:
                outs.append(out)
            i += n
        return np.concatenate(outs) if all_logits else out[0]

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits (len(ids), vocab) float32 for every position of `ids`, in a fresh context."""
        ids = _as_ids(ids, self.config.vocab_size)
        if not ids:
            raise ValueError("ids must not be empty")
        return self._prefill(self._session(len(ids), len(ids)), ids, all_logits=True)

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids for `prompt`: a str is tokenized (with BOS when the tokenizer adds one), ids are checked."""
        self._need_decoder()
        if isinstance(prompt, str):
            return self._need_tokenizer().encode_prompt(prompt)
        return _as_ids(prompt, self.config.vocab_size, "prompt")

    def next_token_probs(self, prompt: Prompt) -> np.ndarray:
        """The probability distribution (vocab,) float32 of the token after `prompt` (str or ids)."""
        ids = self.encode_prompt(prompt)
        if not ids:
            raise ValueError("prompt must not be empty")
        x = self._prefill(self._session(len(ids), len(ids)), ids).astype(np.float64)
        e = np.exp(x - x.max())
        return (e / e.sum()).astype(np.float32)

    def perplexity(self, text_or_ids: Prompt, *, context: int | None = None, stride: int | None = None) -> float:
        """exp of the mean negative log-likelihood of each token given the tokens before it.

        A str is tokenized as a prompt (with BOS when the tokenizer adds one); the first token is not scored.
        Longer than `context` (default: the context window, at most 1024), the text is read in windows of
        `context` tokens starting every `stride` tokens (default context // 2); each window scores only the
        tokens no earlier window scored.

        >>> model.perplexity(open("heldout.txt").read())  # doctest: +SKIP
        """
        ids = self.encode_prompt(text_or_ids)
        if len(ids) < 2:
            raise ValueError(f"perplexity needs at least 2 tokens, got {len(ids)}")
        if context is None:
            context = min(self.config.max_context, 1024)
        if isinstance(context, bool) or not isinstance(context, int) or not 2 <= context <= self.config.max_context:
            raise ValueError(f"context must be an int in [2, {self.config.max_context}], got {context!r}")
        if stride is None:
            stride = context // 2
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride < context:
            raise ValueError(f"stride must be an int in [1, {context - 1}], got {stride!r}")
        total, done, begin = 0.0, 1, 0  # tokens [1, done) are scored
        while done < len(ids):
            end = min(begin + context, len(ids))
            logits = self.logits(ids[begin:end])
            # row r predicts token begin + r + 1; score tokens done .. end-1
            for r0 in range(done - begin - 1, end - begin - 1, 64):
                rows = logits[r0 : min(r0 + 64, end - begin - 1)].astype(np.float64)
                m = rows.max(axis=1, keepdims=True)
                lse = m[:, 0] + np.log(np.exp(rows - m).sum(axis=1))
                target = np.asarray(ids[begin + r0 + 1 : begin + r0 + 1 + len(rows)])
                total += float((lse - rows[np.arange(len(rows)), target]).sum())
            done = end
            begin += stride
        return math.exp(total / (len(ids) - 1))

    # ---- generation ----

    def _eos_ids(self, stop_ids, ignore_eos=False):
        eos = set() if ignore_eos else set(self._eos)
        if stop_ids is not None:
            eos |= set(_as_ids(stop_ids, self.config.vocab_size, "stop_ids"))
        return eos

    def iter_ids(
        self,
        ids: Sequence[int],
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop_ids: Sequence[int] | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[int]:
        """Yield new token ids one at a time (the engine under generate_ids, generate and stream).

        ignore_eos=True keeps generating through EOS (for benchmarks); stop_ids still stop.
        """
        self._need_decoder()
        ids = _as_ids(ids, self.config.vocab_size)
        if not ids:
            raise ValueError("ids must not be empty")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        sampler = Sampler(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
        )
        eos = self._eos_ids(stop_ids, ignore_eos)
        total = len(ids) + max_new_tokens
        if total > self.config.max_context:
            raise ValueError(
                f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) = {total} exceeds the context "
                f"window of {self.config.max_context} positions"
            )
        return self._iter(ids, max_new_tokens, sampler, eos)

    def _iter(self, ids, max_new_tokens, sampler, eos):
        if max_new_tokens == 0:
            return
        cap = len(ids) + max_new_tokens
        sess = self._session(cap, len(ids))
        history = list(ids)
        logits = self._prefill(sess, ids)
        row = None  # each step's logits, in one array: the sampler reads them before the next step writes
        for i in range(max_new_tokens):
            tok = sampler.next_token(logits, history)
            yield tok
            if tok in eos or i == max_new_tokens - 1:
                return
            history.append(tok)
            if self._rope_long(len(history)) and not sess.rope_long:
                # longrope: past the pretraining length the whole sequence is rotated by the long factors, so
                # it is read again from the start (as transformers does when generation crosses that length)
                sess = self._session(cap, len(history))
                logits = self._prefill(sess, history)
            else:
                row = sess.forward([tok], False, _core.PATH_ROWS, row)
                logits = row[0]

    def generate_ids(self, ids: Sequence[int], **options: Any) -> list[int]:
        """New token ids after `ids` (the prompt is not repeated); stops at EOS, a stop id or max_new_tokens.

        Options: max_new_tokens=128, temperature=0.0 (greedy), top_k=0, top_p=1.0, min_p=0.0,
        repetition_penalty=1.0, seed=None, stop_ids=None, ignore_eos=False. The EOS or stop id that ended
        generation is included.
        """
        return list(self.iter_ids(ids, **options))

    def stream(self, prompt: Prompt, *, stop: str | Sequence[str] | None = None, **options: Any) -> Iterator[str]:
        """Yield text pieces as they are generated: never a split UTF-8 character, never part of a stop string."""
        tok = self._need_tokenizer()
        stops = _stop_list(stop)
        ids = self.encode_prompt(prompt)
        eos = self._eos_ids(options.get("stop_ids"), options.get("ignore_eos", False))
        pending = b""  # bytes not yet complete as UTF-8
        held = ""  # text held back because it could begin a stop string
        for t in self.iter_ids(ids, **options):
            if t in eos:
                break
            pending += tok.decode_bytes([t])
            text, pending = utf8_split(pending)
            held += text
            cut = _find_stop(held, stops)
            if cut is not None:
                if held[:cut]:
                    yield held[:cut]
                return
            safe = len(held) - _stop_overlap(held, stops)
            if safe > 0:
                yield held[:safe]
                held = held[safe:]
        tail = held + pending.decode("utf-8", errors="replace")
        cut = _find_stop(tail, stops)
        tail = tail if cut is None else tail[:cut]
        if tail:
            yield tail

    def generate(self, prompt: Prompt, *, stop: str | Sequence[str] | None = None, **options: Any) -> str:
        """The text generated after `prompt` (str or ids), stopping at EOS, a stop string or max_new_tokens."""
        return "".join(self.stream(prompt, stop=stop, **options))

    def generate_batch(self, prompts: Sequence[Prompt], *, parallel: int | None = None, **options: Any) -> list[str]:
        """The text generated after each prompt, computed together by the batched engine (`fastformer.engine`):
        each result is bit for bit `generate(prompt, **options)`'s, only sooner in aggregate.

        Options as `generate` (max_new_tokens=128, temperature, top_k, top_p, min_p, repetition_penalty, seed,
        stop, stop_ids, ignore_eos); parallel: sequences decoding at once (default min(len(prompts), 16)).

        >>> model.generate_batch(["Once upon a time", "The capital of France"], max_new_tokens=16)  # doctest: +SKIP
        """
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError("prompts must be a list of prompts (str or token ids)")
        known = {"max_new_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed", "stop"}
        known |= {"stop_ids", "ignore_eos"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"generate_batch got unexpected options {unknown}; it takes {sorted(known)}")
        options.setdefault("max_new_tokens", 128)
        params = SamplingParams(max_tokens=options.pop("max_new_tokens"), **options)
        ids = [self.encode_prompt(p) for p in prompts]
        if not ids:
            return []
        parallel = min(len(ids), 16) if parallel is None else parallel
        with Engine(self, parallel=parallel, max_queue=len(ids)) as engine:
            reqs = [engine.submit(i, params) for i in ids]
            done = [r.result() for r in reqs]
        for c in done:
            if c.finish_reason == "error":
                raise RuntimeError(f"generate_batch: {c.error}")
        return [c.text for c in done]

    # ---- chat ----

    def apply_chat_template(
        self,
        messages: Sequence[dict],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict] | None = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The prompt text of a conversation, rendered by the model's chat template as transformers renders it.

        `chat_template` picks a named template of the model (or is a template itself); by default "tool_use"
        when tools are given and the model has one, else "default". bos_token / eos_token are the tokenizer's.

        >>> model.apply_chat_template([{"role": "user", "content": "Hi!"}])  # doctest: +SKIP
        '<|im_start|>user\\nHi!<|im_end|>\\n<|im_start|>assistant\\n'
        """
        names = self.chat_templates
        if chat_template is not None and chat_template in names:
            template = names[chat_template]
        elif chat_template is not None:
            template = chat_template
        elif tools is not None and "tool_use" in names:
            template = names["tool_use"]
        elif "default" in names:
            template = names["default"]
        else:
            raise ChatTemplateError(
                f"{self.path}: the model has no chat template (tokenizer.chat_template in a GGUF file, "
                "chat_template in tokenizer_config.json or chat_template.jinja); pass chat_template=..."
            )
        tok = self.tokenizer
        special = {}
        for name, i in (("bos_token", getattr(tok, "bos_id", None)), ("eos_token", getattr(tok, "eos_id", None))):
            if i is not None:
                special[name] = tok.token_bytes(i).decode("utf-8", errors="replace")
        return render_chat_template(
            template, messages, add_generation_prompt=add_generation_prompt, tools=tools, **{**special, **kwargs}
        )

    def _chat_ids(self, messages, template_kwargs):
        # the template writes every special token itself (BOS included): encode without adding one
        text = self.apply_chat_template(messages, add_generation_prompt=True, **template_kwargs)
        return self._need_tokenizer().encode(text, allowed_special="all")

    def chat_stream(
        self,
        messages: Sequence[dict],
        *,
        tools: Sequence[dict] | None = None,
        chat_template: str | None = None,
        **options: Any,
    ) -> Iterator[str]:
        """Yield the assistant's answer to `messages` as text pieces; stops at every end-of-generation id (whose
        text is never yielded), a stop string or max_new_tokens. Options as `generate`; tools and chat_template
        as `apply_chat_template`."""
        kwargs = {k: v for k, v in (("tools", tools), ("chat_template", chat_template)) if v is not None}
        return self.stream(self._chat_ids(messages, kwargs), **options)

    def chat(
        self,
        messages: Sequence[dict],
        *,
        tools: Sequence[dict] | None = None,
        chat_template: str | None = None,
        **options: Any,
    ) -> str:
        """The assistant's answer to `messages` (a list of {"role", "content"} dicts) as one string.

        >>> model.chat([{"role": "user", "content": "Name a colour."}], max_new_tokens=16)  # doctest: +SKIP
        """
        return "".join(self.chat_stream(messages, tools=tools, chat_template=chat_template, **options))

    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this model was loaded without tokenizer files: pass token ids instead of text")
        return self.tokenizer
