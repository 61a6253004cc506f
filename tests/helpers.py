"""What the test modules share (no test module imports another): the prompt, the random-checkpoint builder,
the transformers logits, the one assert-close, checkpoints with other weights, a Llama written with numpy
alone (for tests without peers), the cl100k_base rank file, tiktoken built from it, and the environment for
child processes.

Peers (torch, transformers, tiktoken, ...) are imported inside the functions that need them, so importing
this module needs none of them; a test that needs one is marked `peer` (see conftest.py).
"""

import base64
import dataclasses
import importlib
import json
import os
import struct
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from tolerances import SCALED, TOL

import fastformer
from fastformer._reference import BLOCKS
from fastformer.checkpoint import LayerWeights, Weights

PROMPT = [1, 17, 93, 5, 44, 120, 7, 7, 63, 150, 11, 2, 99, 31, 8, 77, 3, 140, 56, 21]

# the source tree or site-packages directory holding the imported fastformer: child processes import the same
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastformer.__file__)))


def child_env(*paths, **env):
    """os.environ for a child process that imports this fastformer (in place or installed), `paths` first."""
    old = [p for p in [os.environ.get("PYTHONPATH")] if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, PACKAGE_ROOT, *old]), **env)


def same_at_thread_counts(fn, counts=(1, 2, 3, 5)):
    """fn() at each thread count, asserted equal bit for bit; the first result (the thread count restored)."""
    before = fastformer.get_num_threads()
    try:
        outs = []
        for t in counts:
            fastformer.set_num_threads(t)
            outs.append(fn())
    finally:
        fastformer.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    return outs[0]


def on_scalar(fn):
    """fn() on the scalar ISA path (the r16 scalar twins), then the int8 path in use restored."""
    from fastformer import _core

    before = _core.current_isa(), _core.quant_vnni(), _core.quant_dot256()
    try:
        _core.set_isa("scalar")
        return fn()
    finally:
        _core.set_isa(before[0])
        _core.quant_set_vnni(before[1])
        _core.quant_set_dot256(before[2])


def each_dot256():
    """Each 256-bit int8 dot this CPU has, set in turn (the caller restores the one before); yields its name."""
    from fastformer import _core

    for dot in _core.DOT256_NAMES:
        try:
            _core.quant_set_dot256(dot)
        except fastformer.IsaError:
            continue
        yield dot


def assert_close(got, want, op, **override):
    """got (float32) against want with the tolerance of `op` in tests/tolerances.py."""
    tol = dict(TOL.get(op, {}))
    if op in SCALED:  # an absolute tolerance relative to the largest |want|
        tol = dict(rtol=0, atol=SCALED[op] * float(np.abs(want).max()))
    tol.update(override)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, **tol)


# ---- random-weight transformers checkpoints ----

ARCHS = {  # short name -> (transformers config class, model class)
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM"),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM"),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM"),
    "gemma3-multimodal": ("Gemma3Config", "Gemma3ForConditionalGeneration"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "bert": ("BertConfig", "BertModel"),
    "bert-mlm": ("BertConfig", "BertForMaskedLM"),
}


def hf_model(arch, *, seed=0, perturb=None, **config):
    """A transformers model of `arch` (ARCHS) with `config`, initialised under torch seed `seed`, in eval mode,
    its parameters then moved by perturb(model) (the perturb_* functions below) without autograd."""
    import torch
    import transformers

    cfg_cls, model_cls = ARCHS[arch]
    cfg = getattr(transformers, cfg_cls)(**config)
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(cfg).eval()
    if perturb is not None:
        with torch.no_grad():
            perturb(model)
    return model


def make_checkpoint(path, arch, *, seed=0, perturb=None, save_kwargs=None, **config):
    """hf_model(...) saved with save_pretrained at `path`: (path, the transformers model)."""
    model = hf_model(arch, seed=seed, perturb=perturb, **config)
    path = str(path)
    model.save_pretrained(path, **(save_kwargs or {}))
    return path, model


def perturb_by_name(seed):
    """Norm parameters (names with "norm" or "ln") shifted by 0.3 plus noise, every other tensor replaced by noise
    (0.05 standard deviation for vectors, 0.08 for matrices)."""

    def perturb(model):
        import torch

        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * (0.05 if p.ndim == 1 else 0.08)
            p.copy_((p + 0.3 + noise) if p.ndim == 1 and "norm" in name or "ln" in name else p * 0 + noise)

    return perturb


def perturb_shift(seed):
    """Vectors shifted by 0.2 plus noise, matrices replaced by noise (0.08 standard deviation)."""

    def perturb(model):
        import torch

        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.copy_(
                p + 0.2 + 0.05 * torch.randn(p.shape, generator=g)
                if p.ndim == 1
                else 0.08 * torch.randn(p.shape, generator=g)
            )

    return perturb


def perturb_noise(scale, seed=None, vectors=True, matrices=True):
    """scale * N(0, 1) added to the vectors and/or matrices (from torch's global generator if seed is None)."""

    def perturb(model):
        import torch

        g = None if seed is None else torch.Generator().manual_seed(seed)
        for p in model.parameters():
            moved = vectors if p.ndim == 1 else matrices
            if moved:
                p.add_(scale * torch.randn(p.shape, generator=g))

    return perturb


def perturb_matrices(scale, seed):
    """Matrices replaced by scale * N(0, 1), vectors (norms, biases) left at their init."""

    def perturb(model):
        import torch

        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(scale * torch.randn(p.shape, generator=g))

    return perturb


# the checkpoints of tests/test_model.py (and test_hugepages.py): every weight off its default init
VOCAB = 160
BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=88,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    bos_token_id=1,
    eos_token_id=2,
)
LLAMA3_ROPE = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0)
CASES = {
    "llama-gqa": ("llama", dict(BASE)),
    "llama-mha-tied": ("llama", dict(BASE, num_key_value_heads=4, tie_word_embeddings=True)),
    "llama-rope-llama3": (
        "llama",
        dict(BASE, rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE, original_max_position_embeddings=32)),
    ),
    "llama-rope-linear": ("llama", dict(BASE, rope_scaling=dict(rope_type="linear", factor=2.0))),
    "llama-head-dim-32": ("llama", dict(BASE, head_dim=32, num_attention_heads=4)),
    "mistral-window": ("mistral", dict(BASE, sliding_window=8)),
    "qwen2-biases-tied": ("qwen2", dict(BASE, tie_word_embeddings=True)),
    "gpt2": (
        "gpt2",
        dict(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=2),
    ),
}


def case_checkpoint(root, case, **save_kwargs):
    """The checkpoint CASES[case] at root/case: (path, the transformers model)."""
    arch, config = CASES[case]
    perturb = perturb_by_name(zlib.crc32(case.encode()) % 1000)
    return make_checkpoint(os.path.join(str(root), case), arch, perturb=perturb, save_kwargs=save_kwargs, **config)


def hf_logits(model, ids):
    """transformers' float32 logits of one sequence: (len(ids), vocab)."""
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


# ---- a Llama checkpoint written with numpy alone: models for tests without peers (and the hostile cases) ----

SMALL_LLAMA = dict(vocab=300, d=64, heads=4, kv=2, ff=96, layers=2, ctx=64)


def llama_config(**over):
    """config.json of the small Llama, keys overridden by `over`."""
    s = SMALL_LLAMA
    cfg = dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=s["vocab"],
        hidden_size=s["d"],
        intermediate_size=s["ff"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["kv"],
        max_position_embeddings=s["ctx"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
    )
    cfg.update(over)
    return cfg


def llama_tensors(seed=0):
    """The small Llama's tensors by Hugging Face name: matrices 0.05 * N(0, 1), norms 1."""
    rng = np.random.default_rng(seed)
    s = SMALL_LLAMA
    d, ff, hd = s["d"], s["ff"], s["d"] // s["heads"]
    q, kv = s["heads"] * hd, s["kv"] * hd

    def w(*shape):
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)

    t = {
        "model.embed_tokens.weight": w(s["vocab"], d),
        "model.norm.weight": np.ones(d, np.float32),
        "lm_head.weight": w(s["vocab"], d),
    }
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        t.update(
            {
                p + "input_layernorm.weight": np.ones(d, np.float32),
                p + "post_attention_layernorm.weight": np.ones(d, np.float32),
                p + "self_attn.q_proj.weight": w(q, d),
                p + "self_attn.k_proj.weight": w(kv, d),
                p + "self_attn.v_proj.weight": w(kv, d),
                p + "self_attn.o_proj.weight": w(d, q),
                p + "mlp.gate_proj.weight": w(ff, d),
                p + "mlp.up_proj.weight": w(ff, d),
                p + "mlp.down_proj.weight": w(d, ff),
            }
        )
    return t


def write_llama(path, **config):
    """The small Llama as a model directory (config.json with `config` overrides, model.safetensors)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(llama_config(**config), f)
    write_safetensors(os.path.join(path, "model.safetensors"), *safetensors_parts(llama_tensors()))
    return str(path)


_ST_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64", np.dtype("<i4"): "I32"}


def safetensors_parts(tensors):
    """(header dict, data bytes) for {name: array}, laid out back to back."""
    header, chunks, pos = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": _ST_DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    return header, b"".join(chunks)


def write_safetensors(path, header, data=b"", header_len=None, raw_header=None):
    """A safetensors file from its parts; header_len and raw_header forge the length field and the header."""
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if header_len is None else header_len) + h + data)
    return path


# ---- a tiny model with a trained tokenizer (shared threads, leaks, pathological streams) ----

TRAIN = [
    "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Maß und Fuß. 1234 + 5678 = 6912",
    "Привет, как дела? 你好，世界！ 日本語のテキスト。 😀🎉👍 café naïve",
    "def main():\n    return [x ** 2 for x in range(10)]\n\n",
] * 10
PROMPTS = ["Once upon a time", "Привет 你好 😀", "def main():", "Größe und Maß", "Lily liked", " ", "1234", "dog"]


def make_model_dir(root, max_context=512):
    """A 2-layer random Llama (perturbed weights, so outputs vary) with a trained byte-level tokenizer."""
    tok = fastformer.train_bpe(TRAIN, vocab_size=420, special_tokens=["<|endoftext|>"])
    path, _ = make_checkpoint(
        os.path.join(str(root), "tiny"),
        "llama",
        perturb=perturb_matrices(0.3, seed=3),
        vocab_size=tok.n_vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_context,
        bos_token_id=None,
        eos_token_id=tok.eos_id,
    )
    tok.save(os.path.join(path, "tokenizer.json"))
    return path


def with_weights(ck, weights, layers):
    """The Checkpoint `ck` with other weights (dicts of the Weights / LayerWeights fields)."""
    return dataclasses.replace(ck, weights=Weights(**weights), layers=[LayerWeights(**lw) for lw in layers])


def random_blocks(rng, qtype, rows, cols):
    """Random q4_k / q6_k blocks (rows, bytes per row) with sane fp16 scales (random bytes elsewhere)."""
    blk, size = BLOCKS[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // blk, size), dtype=np.uint8)
    if qtype == "q4_k":  # d, dmin
        d = rng.uniform(1e-3, 1e-2, size=(rows, cols // blk, 2)).astype(np.float16)
        raw[..., 0:4] = d.view(np.uint8).reshape(rows, cols // blk, 4)
    elif qtype == "q6_k":  # d last
        d = rng.uniform(1e-3, 1e-2, size=(rows, cols // blk, 1)).astype(np.float16)
        raw[..., 208:210] = d.view(np.uint8).reshape(rows, cols // blk, 2)
    return raw.reshape(rows, -1)


# ---- the cl100k_base rank file and tiktoken built from it ----

CL100K_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "cl100k_base.tiktoken"


def cl100k_path():
    """CL100K_PATH; skips the test where it is missing (fails on CI, which must provide it)."""
    if CL100K_PATH.exists():
        return CL100K_PATH
    if os.environ.get("CI"):
        pytest.fail(f"{CL100K_PATH} is missing: CI must provide the cl100k_base rank file there")
    pytest.skip(f"{CL100K_PATH} is not present (the cl100k_base rank file goes in ../shared/data)")


def read_ranks(path):
    """A .tiktoken rank file as {token bytes: rank}."""
    ranks = {}
    for line in open(path, "rb"):
        if line.strip():
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def tiktoken_encoding(name, ranks, special_tokens=None):
    """tiktoken's own constructor for encoding `name`, with `ranks` instead of the downloaded file."""
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken_ext import openai_public as op

    fake = mock.Mock(return_value=ranks)
    with (
        mock.patch.object(op, "load_tiktoken_bpe", fake),
        mock.patch.object(op, "data_gym_to_mergeable_bpe_ranks", fake),
    ):
        spec = op.ENCODING_CONSTRUCTORS[name]()
    spec.pop("explicit_n_vocab", None)
    if special_tokens is not None:
        spec["special_tokens"] = special_tokens
    return tiktoken.Encoding(**spec)


def optional(name):
    """The peer module `name`, or None where it is not installed (the tests using it are marked peer(name))."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
