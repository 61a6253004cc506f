"""The hostile cases' ground: a tiny valid model (the numpy-written Llama of tests/helpers.py as a Hugging Face
directory and GGUF files, tokenizer files), a GGUF writer that can forge any field, and the registry the case
modules (hostile_safetensors.py, hostile_gguf.py, hostile_arguments.py) add their cases to."""

import base64
import json
import os
import shutil
import struct

import numpy as np
from helpers import SMALL_LLAMA, safetensors_parts, write_llama, write_safetensors

import fastformer
from fastformer.gguf import GGUFFile

# ---- the valid fixtures ----

# the numpy-written Llama of tests/helpers.py
VOCAB, D, HEADS, KV, FF, LAYERS, CTX = (SMALL_LLAMA[k] for k in ("vocab", "d", "heads", "kv", "ff", "layers", "ctx"))
TEXT = "the cat sat on the mat. once upon a time there was a little dog who liked to play in the park. " * 8


def build_fixtures(root):
    """A llama directory with a byte-level tokenizer, its f32 and q8_0 GGUF files, the f32 file in the forms of
    the other GGUF architectures (ARCH_FORMS), a wider one-layer llama whose rows hold whole 256-weight
    super-blocks, and a tiktoken rank file."""
    tok = fastformer.train_bpe([TEXT], vocab_size=280, special_tokens=["<|endoftext|>"])
    hf = write_llama(os.path.join(root, "hf"), eos_token_id=tok.special_tokens["<|endoftext|>"], bos_token_id=None)
    tok.save(os.path.join(hf, "tokenizer.json"))
    fastformer.Model.load(hf).save_gguf(os.path.join(root, "model.gguf"))
    fastformer.Model.load(hf, quantize="q8_0").save_gguf(os.path.join(root, "model-q8_0.gguf"))
    for arch in ARCH_FORMS:
        arch_gguf(os.path.join(root, "model.gguf"), os.path.join(root, f"model-{arch}.gguf"), arch)
    wide_gguf(os.path.join(root, "model.gguf"), os.path.join(root, "wide.gguf"))
    ranks = {bytes([b]): b for b in range(256)}
    with open(os.path.join(root, "ranks.tiktoken"), "w") as f:
        f.writelines(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items())
    return root


class Ctx:
    """Paths of the valid fixtures and a scratch directory for this case."""

    def __init__(self, fixtures, tmp):
        self.fixtures, self.tmp = fixtures, tmp
        self.hf = os.path.join(fixtures, "hf")
        self.gguf = os.path.join(fixtures, "model.gguf")
        self.gguf_q8 = os.path.join(fixtures, "model-q8_0.gguf")
        self.gguf_wide = os.path.join(fixtures, "wide.gguf")
        self.ranks = os.path.join(fixtures, "ranks.tiktoken")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def gguf_arch(self, arch):
        """The f32 GGUF file in the form of architecture `arch` (one of ARCH_FORMS)."""
        return os.path.join(self.fixtures, f"model-{arch}.gguf")

    def hf_copy(self, name="bad-model", config=None, tensors=None):
        """A copy of the model directory; `config` overrides config.json keys (None deletes one), `tensors`
        replaces the safetensors file's tensors."""
        dst = self.path(name)
        shutil.copytree(self.hf, dst)
        if config is not None:
            cfg = json.load(open(os.path.join(dst, "config.json")))
            cfg.update(config)
            cfg = {k: v for k, v in cfg.items() if v is not None}
            with open(os.path.join(dst, "config.json"), "w") as f:
                json.dump(cfg, f)
        if tensors is not None:
            write_safetensors(os.path.join(dst, "model.safetensors"), *safetensors_parts(tensors))
        return dst

    def model(self):
        return fastformer.Model.load(self.hf)

    def tokenizer_json(self, name="tokenizer.json", edit=None):
        """A copy of the tokenizer.json, edited in place by edit(spec)."""
        spec = json.load(open(os.path.join(self.hf, "tokenizer.json"), encoding="utf-8"))
        if edit is not None:
            edit(spec)
        path = self.path(name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        return path


# ---- GGUF writer ----

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_NP_TYPES = {
    np.dtype("<u1"): U8,
    np.dtype("<i1"): I8,
    np.dtype("<u2"): U16,
    np.dtype("<i2"): I16,
    np.dtype("<u4"): U32,
    np.dtype("<i4"): I32,
    np.dtype("<f4"): F32,
    np.dtype("<u8"): U64,
    np.dtype("<i8"): I64,
    np.dtype("<f8"): F64,
    np.dtype("bool"): BOOL,
}
_FMT = {
    U8: "<B",
    I8: "<b",
    U16: "<H",
    I16: "<h",
    U32: "<I",
    I32: "<i",
    F32: "<f",
    BOOL: "<?",
    U64: "<Q",
    I64: "<q",
    F64: "<d",
}


def gstr(s, length=None):
    """A GGUF string; `length` forges its length field."""
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b) if length is None else length) + b


def gvalue(value, vtype=None):
    """(type, payload bytes) of a metadata value: str, bool, int (i32, else u64), float (f32), list or array."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ARR, struct.pack("<IQ", STR, len(value)) + b"".join(gstr(v) for v in value)
    if isinstance(value, (list, tuple, np.ndarray)):
        a = np.asarray(value)
        a = a.astype("<i4") if a.dtype == np.int64 else a.astype("<f4") if a.dtype == np.float64 else a
        return ARR, struct.pack("<IQ", _NP_TYPES[a.dtype.newbyteorder("<")], len(a)) + a.tobytes()
    if vtype is None:
        vtype = (
            STR
            if isinstance(value, str)
            else BOOL
            if isinstance(value, (bool, np.bool_))
            else F32
            if isinstance(value, (float, np.floating))
            else I32
            if -(2**31) <= value < 2**31
            else U64
        )
    if vtype == STR:
        return STR, gstr(value)
    return vtype, struct.pack(_FMT[vtype], value)


def gkv(key, value, vtype=None):
    t, payload = gvalue(value, vtype)
    return gstr(key) + struct.pack("<I", t) + payload


def gguf_bytes(kvs=(), tensors=(), data=b"", *, version=3, magic=b"GGUF", n_tensors=None, n_kv=None, align=32):
    """A GGUF file from raw parts: kvs are gkv() bytes, tensors (name, dims innermost first, type, offset)."""
    out = magic + struct.pack(
        "<IQQ", version, len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    out += b"".join(kvs)
    for name, dims, t, off in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, off)
    out += b"\0" * (-len(out) % align)
    return out + data


def rebuild_gguf(src, dst, meta=None, tensors=None, last=None):
    """Rewrite GGUF file `src` as `dst` with metadata overrides (None deletes a key) and tensor replacements:
    {name: float32 array | (ggml type, numpy-order shape, bytes) | None to delete}; tensor `last` is moved to
    the end of the data."""
    f = GGUFFile(src)
    md = dict(f.metadata)
    md.update(meta or {})
    blobs = {name: (t.type_id, t.shape, bytes(f.raw(name))) for name, t in f.tensors.items()}
    for name, v in (tensors or {}).items():
        blobs[name] = v if v is None or isinstance(v, tuple) else (0, v.shape, np.ascontiguousarray(v, "<f4").tobytes())
    if last is not None:
        blobs[last] = blobs.pop(last)
    kvs = [gkv(k, v) for k, v in md.items() if v is not None]
    infos, data = [], b""
    for name, blob in blobs.items():
        if blob is None:
            continue
        tid, shape, raw = blob
        infos.append((name, list(reversed(shape)), tid, len(data)))
        data += raw + b"\0" * (-len(raw) % 32)
    with open(dst, "wb") as out:
        out.write(gguf_bytes(kvs, infos, data))
    return dst


def gguf_tensor(src, name):
    return GGUFFile(src).get(name)


# ---- the f32 llama file in the forms of the other architectures ----

ARCH_FORMS = ("qwen3", "gemma2", "gemma3", "phi3")
WIDE = dict(d=256, ff=256, layers=1)  # the wide llama: heads and kv heads as the small one, head_dim 64


def renamed_keys(meta, arch):
    """The metadata with llama.* keys moved under arch.* and general.architecture set to arch."""
    out = {k.replace("llama.", f"{arch}.", 1): v for k, v in meta.items()}
    out["general.architecture"] = arch
    return out


def arch_gguf(src, dst, arch):
    """The llama f32 file `src` as a file of `arch`: its keys and tensors, the extra norms as ones (so the model
    is the same network up to those norms); gemma's windows 8, phi3's window 32."""
    f = GGUFFile(src)
    hd = D // HEADS
    meta = {k: None for k in f.metadata if k.startswith("llama.")}
    meta.update(renamed_keys({k: v for k, v in f.metadata.items() if k.startswith("llama.")}, arch))
    tensors, ones = {}, np.ones(D, np.float32)
    for i in range(LAYERS):
        p = f"blk.{i}."
        if arch in ("qwen3", "gemma3"):
            tensors[p + "attn_q_norm.weight"] = tensors[p + "attn_k_norm.weight"] = np.ones(hd, np.float32)
        if arch in ("gemma2", "gemma3"):
            tensors[p + "post_attention_norm.weight"] = tensors[p + "post_ffw_norm.weight"] = ones
        if arch == "phi3":  # fused q/k/v and gate/up, by rows
            tensors[p + "attn_qkv.weight"] = np.concatenate([f.get(p + f"attn_{x}.weight") for x in "qkv"])
            tensors[p + "ffn_up.weight"] = np.concatenate([f.get(p + "ffn_gate.weight"), f.get(p + "ffn_up.weight")])
            for x in ("attn_q", "attn_k", "attn_v", "ffn_gate"):
                tensors[p + x + ".weight"] = None
    if arch != "qwen3":
        meta[f"{arch}.attention.sliding_window"] = 32 if arch == "phi3" else 8
    return rebuild_gguf(src, dst, meta=meta, tensors=tensors)


def wide_gguf(src, dst):
    """A one-layer llama of width 256 (rows of whole 256-weight super-blocks) with `src`'s tokenizer."""
    rng = np.random.default_rng(1)
    d, ff, hd = WIDE["d"], WIDE["ff"], WIDE["d"] // HEADS
    meta = {"llama.embedding_length": d, "llama.feed_forward_length": ff, "llama.block_count": 1,
            "llama.attention.key_length": hd, "llama.attention.value_length": hd,
            "llama.rope.dimension_count": hd}  # fmt: skip
    shapes = {"token_embd.weight": (VOCAB, d), "output.weight": (VOCAB, d), "output_norm.weight": (d,),
              "blk.0.attn_norm.weight": (d,), "blk.0.ffn_norm.weight": (d,), "blk.0.attn_q.weight": (d, d),
              "blk.0.attn_k.weight": (KV * hd, d), "blk.0.attn_v.weight": (KV * hd, d),
              "blk.0.attn_output.weight": (d, d), "blk.0.ffn_gate.weight": (ff, d), "blk.0.ffn_up.weight": (ff, d),
              "blk.0.ffn_down.weight": (d, ff)}  # fmt: skip
    tensors = {n: None for n in GGUFFile(src).tensors}
    for n, s in shapes.items():
        tensors[n] = np.ones(s, np.float32) if len(s) == 1 else (0.05 * rng.standard_normal(s)).astype(np.float32)
    return rebuild_gguf(src, dst, meta=meta, tensors=tensors)


def random_blocks(qtype, rows, cols, seed=0):
    """(ggml type id, shape, bytes) of a (rows, cols) tensor of `qtype` blocks: random bytes, small finite
    float16 scales."""
    from fastformer import _core

    tid, name, blk, size, _, lo, hi = next(r for r in _core.QTYPE_TABLE if r[1] == qtype)
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows * cols // blk, size), dtype=np.uint8)
    d = rng.uniform(1e-3, 1e-2, size=(raw.shape[0], (hi - lo) // 2)).astype("<f2")
    raw[:, lo:hi] = d.view(np.uint8)
    return tid, (rows, cols), raw.tobytes()


# ---- the catalogue ----

CASES = {}


def simple(name, exc, match, file, fn):
    """Register a one-call case."""
    CASES[name] = (fn, exc, match, file)


def case(exc, match, file=None):
    """Register a case: it must raise `exc` (a fastformer or builtin exception name; None: must not raise),
    with a message matching the regex `match` and containing `file` when given."""

    def register(fn):
        CASES[fn.__name__] = (fn, exc, match, file)
        return fn

    return register


def load_model(path):
    return fastformer.Model.load(path)
