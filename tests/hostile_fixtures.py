"""The hostile cases' ground: a tiny valid model (Hugging Face directory, GGUF files, tokenizer files), writers
that can forge any field, and the registry the case modules (hostile_safetensors.py, hostile_gguf.py,
hostile_arguments.py) add their cases to."""

import base64
import json
import os
import shutil
import struct

import numpy as np

import fastformer
from fastformer.gguf import GGUFFile

# ---- the valid fixtures ----

VOCAB, D, HEADS, KV, FF, LAYERS, CTX = 300, 64, 4, 2, 96, 2, 64
TEXT = "the cat sat on the mat. once upon a time there was a little dog who liked to play in the park. " * 8


def llama_config(**over):
    cfg = dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=VOCAB,
        hidden_size=D,
        intermediate_size=FF,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        max_position_embeddings=CTX,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
    )
    cfg.update(over)
    return cfg


def llama_tensors(seed=0):
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)

    hd = D // HEADS
    t = {
        "model.embed_tokens.weight": w(VOCAB, D),
        "model.norm.weight": np.ones(D, np.float32),
        "lm_head.weight": w(VOCAB, D),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t.update(
            {
                p + "input_layernorm.weight": np.ones(D, np.float32),
                p + "post_attention_layernorm.weight": np.ones(D, np.float32),
                p + "self_attn.q_proj.weight": w(HEADS * hd, D),
                p + "self_attn.k_proj.weight": w(KV * hd, D),
                p + "self_attn.v_proj.weight": w(KV * hd, D),
                p + "self_attn.o_proj.weight": w(D, HEADS * hd),
                p + "mlp.gate_proj.weight": w(FF, D),
                p + "mlp.up_proj.weight": w(FF, D),
                p + "mlp.down_proj.weight": w(D, FF),
            }
        )
    return t


def build_fixtures(root):
    """A llama directory with a byte-level tokenizer, its f32 and q8_0 GGUF files and a tiktoken rank file."""
    hf = os.path.join(root, "hf")
    os.makedirs(hf, exist_ok=True)
    tok = fastformer.train_bpe([TEXT], vocab_size=280, special_tokens=["<|endoftext|>"])
    tok.save(os.path.join(hf, "tokenizer.json"))
    eos = tok.special_tokens["<|endoftext|>"]
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(llama_config(eos_token_id=eos, bos_token_id=None), f)
    header, data = safetensors_parts(llama_tensors())
    write_safetensors(os.path.join(hf, "model.safetensors"), header, data)
    fastformer.Model.load(hf).save_gguf(os.path.join(root, "model.gguf"))
    fastformer.Model.load(hf, quantize="q8_0").save_gguf(os.path.join(root, "model-q8_0.gguf"))
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
        self.ranks = os.path.join(fixtures, "ranks.tiktoken")

    def path(self, name):
        return os.path.join(self.tmp, name)

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


# ---- safetensors writer ----

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
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if header_len is None else header_len) + h + data)
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


def rebuild_gguf(src, dst, meta=None, tensors=None):
    """Rewrite GGUF file `src` as `dst` with metadata overrides (None deletes a key) and tensor replacements:
    {name: float32 array | (ggml type, numpy-order shape, bytes) | None to delete}."""
    f = GGUFFile(src)
    md = dict(f.metadata)
    md.update(meta or {})
    blobs = {name: (t.type_id, t.shape, bytes(f.raw(name))) for name, t in f.tensors.items()}
    for name, v in (tensors or {}).items():
        blobs[name] = v if v is None or isinstance(v, tuple) else (0, v.shape, np.ascontiguousarray(v, "<f4").tobytes())
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
