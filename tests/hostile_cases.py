"""Hostile inputs for tests/test_hostile.py: a tiny valid model (Hugging Face directory, GGUF files, tokenizer
files), writers that can forge any field, and the catalogue of cases.

A case builds its malformed input from the valid fixtures and makes one call. `main` runs one case in a
child process (under the memory limit the parent sets) and prints what it raised as one JSON line.
"""

import base64
import json
import os
import shutil
import struct
import sys

import numpy as np

import fastformer
from fastformer.gguf import GGUFFile
from fastformer.safetensors import SafetensorsFile
from fastformer.sampling import Sampler

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


def _load(path):
    return fastformer.Model.load(path)


def _st_file(ctx, header=None, data=b"\0" * 8, **kw):
    return SafetensorsFile(write_safetensors(ctx.path("bad.safetensors"), header, data, **kw))


def _one(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"x": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


# safetensors files

simple(
    "st_header_length_2_63",
    "FormatError",
    r"header length 9223372036854775808",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, {}, header_len=2**63),
)


@case("FormatError", r"header length .*100 MB", "big.safetensors")
def st_header_length_over_limit(ctx):
    path = ctx.path("big.safetensors")
    with open(path, "wb") as f:  # sparse: 200 MB of holes
        f.write(struct.pack("<Q", 150 * 2**20) + b"{")
        f.truncate(200 * 2**20)
    SafetensorsFile(path)


@case("FormatError", r"shorter than its 8-byte header", "tiny.safetensors")
def st_shorter_than_length_field(ctx):
    with open(ctx.path("tiny.safetensors"), "wb") as f:
        f.write(b"\x05\0\0")
    SafetensorsFile(ctx.path("tiny.safetensors"))


@case("FormatError", r"model.safetensors.*truncated", "model.safetensors")
def st_truncated_checkpoint(ctx):
    path = ctx.hf_copy()
    st = os.path.join(path, "model.safetensors")
    with open(st, "r+b") as f:
        f.truncate(os.path.getsize(st) - 100)
    _load(path)


simple(
    "st_overlapping_offsets",
    "FormatError",
    r"overlap",
    "bad.safetensors",
    lambda ctx: _st_file(
        ctx,
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\0" * 12,
    ),
)
simple(
    "st_reversed_offsets",
    "FormatError",
    r"data_offsets \[8, 0\]",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(offsets=(8, 0))),
)
simple(
    "st_dtype_shape_length_mismatch",
    "FormatError",
    r"F32 x shape \[3\] needs 12 bytes",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(3,))),
)
simple(
    "st_negative_dimension",
    "FormatError",
    r"negative dimension",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(-2,))),
)
simple(
    "st_shape_product_overflows_int64",
    "FormatError",
    r"needs \d+ bytes",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(shape=(2**62, 2**62))),
)
simple(
    "st_unknown_dtype",
    "FormatError",
    r"unknown dtype 'Q9'.*F32",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(dtype="Q9")),
)


@case("FormatError", r"duplicate key 'x'", "bad.safetensors")
def st_duplicate_names(ctx):
    entry = b'{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    _st_file(ctx, raw_header=b'{"x": ' + entry + b', "x": ' + entry + b"}")


simple(
    "st_gap_between_tensors",
    "FormatError",
    r"bytes 8\.\.16 .*not covered",
    "bad.safetensors",
    lambda ctx: _st_file(
        ctx,
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
        },
        b"\0" * 24,
    ),
)
simple(
    "st_header_invalid_utf8",
    "FormatError",
    r"not valid JSON",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, raw_header=b'{"\xff\xfe": 1}'),
)
simple(
    "st_offsets_not_integers",
    "FormatError",
    r"data_offsets must be \[begin, end\]",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, _one(offsets=(False, 8.0))),
)
simple(
    "st_metadata_not_strings",
    "FormatError",
    r"__metadata__",
    "bad.safetensors",
    lambda ctx: _st_file(ctx, dict(_one(), __metadata__={"format": [1, 2]})),
)


@case("FormatError", r"'model.layers.0.mlp.up_proj.weight'.*non-finite", "model.safetensors")
def st_nan_weight(ctx):
    t = llama_tensors()
    t["model.layers.0.mlp.up_proj.weight"][3, 5] = np.nan
    _load(ctx.hf_copy(tensors=t))


@case("FormatError", r"'model.norm.weight'.*non-finite", "model.safetensors")
def st_inf_f16_weight(ctx):
    t = llama_tensors()
    t["model.norm.weight"] = np.full(D, np.inf, np.float16)
    _load(ctx.hf_copy(tensors=t))


@case("FormatError", r"'lm_head.weight' has shape \(300, 32\), expected \(300, 64\)", "model.safetensors")
def st_wrong_weight_shape(ctx):
    t = llama_tensors()
    t["lm_head.weight"] = t["lm_head.weight"][:, :32]
    _load(ctx.hf_copy(tensors=t))


@case("FormatError", r"integer dtype I32", "model.safetensors")
def st_integer_weight(ctx):
    t = llama_tensors()
    t["model.norm.weight"] = np.ones(D, np.int32)
    _load(ctx.hf_copy(tensors=t))


@case("FormatError", r"model.layers.2.* num_hidden_layers 2", "model.safetensors")
def st_more_layers_than_config(ctx):
    t = llama_tensors()
    t["model.layers.2.input_layernorm.weight"] = np.ones(D, np.float32)
    _load(ctx.hf_copy(tensors=t))


def _load_with_index(ctx, weight_map):
    """Load a checkpoint copy whose model.safetensors.index.json holds weight_map."""
    path = ctx.hf_copy()
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": weight_map}, f)
    _load(path)


@case("FormatError", r"shard '../x.safetensors' is outside", "model.safetensors.index.json")
def st_index_shard_outside_directory(ctx):
    _load_with_index(ctx, {"model.norm.weight": "../x.safetensors"})


@case("FileNotFoundError", r"shard 'nope.safetensors' does not exist", "model.safetensors.index.json")
def st_index_missing_shard(ctx):
    _load_with_index(ctx, {"model.norm.weight": "nope.safetensors"})


# config.json

simple(
    "cfg_zero_heads",
    "FormatError",
    r"num_attention_heads must be an integer from 1 to 2147483647, got 0",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"num_attention_heads": 0})),
)
simple(
    "cfg_negative_layers",
    "FormatError",
    r"num_hidden_layers must be an integer from 1 to 2147483647, got -2",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"num_hidden_layers": -2})),
)
simple(
    "cfg_hidden_not_divisible_by_heads",
    "FormatError",
    r"hidden_size 64 is not a multiple of num_attention_heads 3",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"num_attention_heads": 3, "num_key_value_heads": 3})),
)
simple(
    "cfg_kv_heads_do_not_divide",
    "FormatError",
    r"num_attention_heads 4 is not a multiple of num_key_value_heads 3",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"num_key_value_heads": 3})),
)
simple(
    "cfg_vocab_2_40",
    "FormatError",
    r"vocab_size must be an integer from 1 to 2147483647, got 1099511627776",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"vocab_size": 2**40})),
)
simple(
    "cfg_odd_head_dim",
    "FormatError",
    r"head_dim 15 must be even",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"head_dim": 15})),
)
simple(
    "cfg_huge_head_dim",
    "FormatError",
    r"head_dim must be an integer from 1 to 2147483647, got 1099511627776",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"head_dim": 2**40})),
)
simple(
    "cfg_rope_theta_negative",
    "FormatError",
    r"rope_theta must be a finite number > 0",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"rope_theta": -1.0})),
)
simple(
    "cfg_eps_not_a_number",
    "FormatError",
    r"rms_norm_eps must be a finite number",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"rms_norm_eps": "tiny"})),
)
simple(
    "cfg_rope_scaling_without_factor",
    "FormatError",
    r"rope_scaling.*factor",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"rope_scaling": {"rope_type": "linear"}})),
)
simple(
    "cfg_eos_not_an_integer",
    "FormatError",
    r"eos_token_id must be an integer token id, got '2'",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"eos_token_id": [1, "2"]})),
)


@case(None, None, None)
def cfg_eos_out_of_range_is_dropped_with_a_warning(ctx):
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = _load(ctx.hf_copy(config={"eos_token_id": [5000, 7], "bos_token_id": 300}))
    assert model.config.eos_token_ids == [7] and model.config.bos_token_id is None, model.config
    assert any("eos_token_id 5000 is outside the vocabulary [0, 300)" in str(x.message) for x in w), w


simple(
    "cfg_architectures_not_a_list",
    "FormatError",
    r"architectures must be a list of strings",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"architectures": "LlamaForCausalLM"})),
)
simple(
    "cfg_unsupported_architecture",
    "UnsupportedError",
    r"'BertModel'.*supported: LlamaForCausalLM",
    "config.json",
    lambda ctx: _load(ctx.hf_copy(config={"architectures": ["BertModel"], "model_type": "bert"})),
)
simple(
    "cfg_negative_sliding_window",
    "FormatError",
    r"sliding_window must be null or an integer >= 0, got -4",
    "config.json",
    lambda ctx: _load(
        ctx.hf_copy(config={"architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": -4})
    ),
)


@case("FormatError", r"not valid JSON", "config.json")
def cfg_not_json(ctx):
    path = ctx.hf_copy()
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write('{"hidden_size": 64,')
    _load(path)


@case("FileNotFoundError", r"config.json", "config.json")
def cfg_missing(ctx):
    path = ctx.hf_copy()
    os.remove(os.path.join(path, "config.json"))
    _load(path)


# GGUF files: the container


def _gguf(ctx, *args, name="bad.gguf", **kw):
    path = ctx.path(name)
    with open(path, "wb") as f:
        f.write(gguf_bytes(*args, **kw))
    return GGUFFile(path)


ARCH = gkv("general.architecture", "llama")
ONE_T = [("a", [8], 0, 0)]


simple(
    "gguf_bad_magic",
    "FormatError",
    r"bad magic",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], magic=b"GGUX", data=bytes(32)),
)
simple(
    "gguf_version_1",
    "UnsupportedError",
    r"GGUF version 1; supported: 2, 3",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], version=1, data=bytes(32)),
)


@case("FormatError", r"only 10 bytes", "bad.gguf")
def gguf_ten_bytes(ctx):
    with open(ctx.path("bad.gguf"), "wb") as f:
        f.write(b"GGUF" + bytes(6))
    GGUFFile(ctx.path("bad.gguf"))


simple(
    "gguf_tensor_count_2_63",
    "FormatError",
    r"tensor count 9223372036854775808 .*impossible",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], n_tensors=2**63, data=bytes(64)),
)
simple(
    "gguf_kv_count_2_63",
    "FormatError",
    r"metadata count 9223372036854775808 .*impossible",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], n_kv=2**63, data=bytes(64)),
)
simple(
    "gguf_key_length_2_63",
    "FormatError",
    r"metadata key 0 length 9223372036854775808 exceeds",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("general.name", length=2**63)], data=bytes(64)),
)
simple(
    "gguf_string_past_end",
    "FormatError",
    r"truncated: value of general.name needs 1000 bytes",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("general.name") + struct.pack("<I", STR) + gstr("x", length=1000)], align=1),
)
simple(
    "gguf_array_length_2_63",
    "FormatError",
    r"array k of 9223372036854775808 elements runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<IIQ", ARR, U32, 2**63)], data=bytes(64)),
)
simple(
    "gguf_string_array_length_2_60",
    "FormatError",
    r"array k of 1152921504606846976 strings runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<IIQ", ARR, STR, 2**60)], data=bytes(64)),
)
simple(
    "gguf_unknown_value_type",
    "FormatError",
    r"unknown value type 99",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr("k") + struct.pack("<I", 99) + bytes(8)], data=bytes(32)),
)
simple(
    "gguf_key_invalid_utf8",
    "FormatError",
    r"not valid UTF-8",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gstr(b"\xff\xfe") + struct.pack("<II", U32, 1)], data=bytes(32)),
)
simple(
    "gguf_duplicate_key",
    "FormatError",
    r"duplicate metadata key 'general.architecture'",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH, ARCH], data=bytes(32)),
)
simple(
    "gguf_alignment_not_power_of_two",
    "FormatError",
    r"general.alignment 3 must be a power of two",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [gkv("general.alignment", 3, U32)], ONE_T, bytes(64)),
)
simple(
    "gguf_nested_array",
    "UnsupportedError",
    r"array k holds arrays; supported: arrays of numbers or strings",
    "bad.gguf",
    lambda ctx: _gguf(
        ctx, [gstr("k") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 1) + b"x"], data=bytes(32)
    ),
)
simple(
    "gguf_five_dims",
    "FormatError",
    r"n_dims 5, expected 1..4",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [1, 1, 1, 1, 1], 0, 0)], bytes(32)),
)
simple(
    "gguf_zero_dimension",
    "FormatError",
    r"dimensions \[8, 0\]",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8, 0], 0, 0)], bytes(32)),
)
simple(
    "gguf_dimension_2_63",
    "FormatError",
    r"dimensions \[9223372036854775808\]",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [2**63], 0, 0)], bytes(32)),
)
simple(
    "gguf_dims_product_overflows",
    "FormatError",
    r"'a' \(\d+ bytes at offset 0\) runs past the end",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [2**40, 2**40, 2**40, 2**40], 0, 0)], bytes(32)),
)
simple(
    "gguf_unknown_ggml_type",
    "UnsupportedError",
    r"ggml type 77; supported: F32, F16",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 77, 0)], bytes(32)),
)
simple(
    "gguf_unaligned_offset",
    "FormatError",
    r"offset 4 is not aligned to 32",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 0, 4)], bytes(64)),
)
simple(
    "gguf_overlapping_tensors",
    "FormatError",
    r"tensors 'a' and 'b' overlap",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [16], 0, 0), ("b", [16], 0, 32)], bytes(128)),
)
simple(
    "gguf_duplicate_tensor",
    "FormatError",
    r"duplicate tensor name 'a'",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [8], 0, 0), ("a", [8], 0, 32)], bytes(64)),
)
simple(
    "gguf_row_not_block_multiple",
    "FormatError",
    r"row length 33 is not a multiple of the Q8_0 block 32",
    "bad.gguf",
    lambda ctx: _gguf(ctx, [ARCH], [("a", [33], 8, 0)], bytes(64)),
)


@case("FormatError", r"runs past the end of the file .*truncated", "cut.gguf")
def gguf_truncated_data(ctx):
    blob = open(ctx.gguf, "rb").read()
    with open(ctx.path("cut.gguf"), "wb") as f:
        f.write(blob[: len(blob) - 4096])
    _load(ctx.path("cut.gguf"))


@case("FormatError", r"truncated", "cut.gguf")
def gguf_truncated_header(ctx):
    blob = open(ctx.gguf, "rb").read()
    with open(ctx.path("cut.gguf"), "wb") as f:
        f.write(blob[:200])
    _load(ctx.path("cut.gguf"))


# GGUF files: the model in them


def _gguf_model(ctx, src=None, **kw):
    return _load(rebuild_gguf(src or ctx.gguf, ctx.path("bad.gguf"), **kw))


simple(
    "gguf_unsupported_architecture",
    "UnsupportedError",
    r"architecture 'mamba'; supported: llama, gpt2",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"general.architecture": "mamba"}),
)
simple(
    "gguf_zero_heads",
    "FormatError",
    r"llama.attention.head_count must be an integer from 1 to 2147483647, got 0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.head_count": 0}),
)
simple(
    "gguf_heads_do_not_divide",
    "FormatError",
    r"embedding_length 64 is not a multiple of head_count 3",
    "bad.gguf",
    lambda ctx: _gguf_model(
        ctx,
        meta={"llama.attention.head_count": 3, "llama.attention.head_count_kv": 3, "llama.attention.key_length": None},
    ),
)
simple(
    "gguf_kv_heads_do_not_divide",
    "FormatError",
    r"head_count 4 is not a multiple of head_count_kv 3",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.head_count_kv": 3}),
)
simple(
    "gguf_huge_key_length",
    "FormatError",
    r"llama.attention.key_length must be an integer from 1 to 2147483647, got 1099511627776",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.key_length": 2**40}),
)
simple(
    "gguf_context_length_u64_max",
    "FormatError",
    r"llama.context_length must be an integer from 1 to 2147483647, got 18446744073709551615",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.context_length": 2**64 - 1}),
)
simple(
    "gguf_nan_epsilon",
    "FormatError",
    r"layer_norm_rms_epsilon must be a finite number",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.layer_norm_rms_epsilon": float("nan")}),
)
simple(
    "gguf_odd_key_length",
    "FormatError",
    r"llama.attention.key_length 15 must be even",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"llama.attention.key_length": 15}),
)
simple(
    "gguf_missing_tensor",
    "FormatError",
    r"missing tensor 'blk.1.ffn_down.weight'",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.1.ffn_down.weight": None}),
)
simple(
    "gguf_wrong_tensor_shape",
    "FormatError",
    r"'blk.0.attn_k.weight' has shape \(64, 64\), expected \(32, 64\)",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.0.attn_k.weight": np.zeros((64, 64), np.float32)}),
)
simple(
    "gguf_unsupported_quant_type",
    "UnsupportedError",
    r"'blk.0.attn_q.weight' has type Q8_1; supported: .*Q8_0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.0.attn_q.weight": (9, (64, 64), bytes(64 * 2 * 36))}),
)


@case("FormatError", r"'blk.1.attn_v.weight'.*non-finite", "bad.gguf")
def gguf_inf_f32_weight(ctx):
    w = gguf_tensor(ctx.gguf, "blk.1.attn_v.weight").copy()
    w[0, 0] = -np.inf
    _gguf_model(ctx, tensors={"blk.1.attn_v.weight": w})


@case("FormatError", r"'blk.0.ffn_up.weight'.*non-finite", "bad.gguf")
def gguf_nan_q8_0_scale(ctx):
    raw = bytearray(GGUFFile(ctx.gguf_q8).raw("blk.0.ffn_up.weight"))
    raw[34 * 5 : 34 * 5 + 2] = np.array([np.nan], "<f2").tobytes()  # the scale of block 5
    _gguf_model(ctx, ctx.gguf_q8, tensors={"blk.0.ffn_up.weight": (8, (FF, D), bytes(raw))})


simple(
    "gguf_zero_rope_freqs",
    "FormatError",
    r"rope_freqs.weight.*finite.*> 0",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"rope_freqs.weight": np.zeros(D // HEADS // 2, np.float32)}),
)
simple(
    "gguf_more_layers_than_block_count",
    "FormatError",
    r"'blk.2.attn_norm.weight'.*block_count 2",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, tensors={"blk.2.attn_norm.weight": np.ones(D, np.float32)}),
)


# GGUF files: the tokenizer in them

simple(
    "gguf_token_types_length_mismatch",
    "FormatError",
    r"tokenizer.ggml.token_type has 3 entries for \d+ tokens",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.token_type": np.ones(3, np.int32)}),
)


@case("FormatError", r"tokenizer.ggml.tokens has 400 tokens, more than the 300 rows of token_embd.weight", "bad.gguf")
def gguf_tokenizer_larger_than_model(ctx):
    md = GGUFFile(ctx.gguf).metadata
    tokens = list(md["tokenizer.ggml.tokens"]) + [f"extra{i}" for i in range(400 - len(md["tokenizer.ggml.tokens"]))]
    types = np.concatenate([md["tokenizer.ggml.token_type"], np.full(400 - len(md["tokenizer.ggml.token_type"]), 1)])
    _gguf_model(ctx, meta={"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types.astype(np.int32)})


simple(
    "gguf_bos_out_of_range",
    "FormatError",
    r"tokenizer.ggml.bos_token_id 70000 .*\[0, \d+\)",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.bos_token_id": 70000}),
)
simple(
    "gguf_tokens_not_strings",
    "FormatError",
    r"tokenizer.ggml.tokens must be an array of strings",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.tokens": np.arange(280, dtype=np.int32)}),
)


@case("FormatError", r"tokenizer.ggml.tokens: token '.*' appears twice \(ids 260 and 261\)", "bad.gguf")
def gguf_duplicate_token(ctx):
    tokens = list(GGUFFile(ctx.gguf).metadata["tokenizer.ggml.tokens"])
    tokens[261] = tokens[260]
    _gguf_model(ctx, meta={"tokenizer.ggml.tokens": tokens})


simple(
    "gguf_merge_of_unknown_token",
    "FormatError",
    r"merge 0 .* not in the vocabulary",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.merges": ["qq zz"]}),
)


@case("FormatError", r"tokenizer.ggml.token_type of token 7 is 99, expected 0..6", "bad.gguf")
def gguf_unknown_token_type(ctx):
    types = np.array(GGUFFile(ctx.gguf).metadata["tokenizer.ggml.token_type"], np.int32)
    types[7] = 99
    _gguf_model(ctx, meta={"tokenizer.ggml.token_type": types})


simple(
    "gguf_unsupported_tokenizer_model",
    "UnsupportedError",
    r"tokenizer.ggml.model 'bert' .*gpt2 and llama",
    "bad.gguf",
    lambda ctx: _gguf_model(ctx, meta={"tokenizer.ggml.model": "bert"}),
)


@case("FormatError", r"tokenizer.ggml.scores has 2 entries for 3 tokens", "SPM metadata")
def gguf_scores_length_mismatch(ctx):
    fastformer.Tokenizer.from_gguf_metadata(
        {
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": ["a", "b", "c"],
            "tokenizer.ggml.scores": [0.0, 1.0],
        },
        source="SPM metadata",
    )


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


@case("ValueError", r"quantize must be None, 'q8_0', .*'q4_0'.*, got 'q3'", None)
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


# ---- the child process ----


def main(argv):
    """Run case argv[0] with fixtures argv[1] in scratch dir argv[2]; print one JSON line of the outcome."""
    name, fixtures, tmp = argv
    fn = CASES[name][0]
    try:
        fn(Ctx(fixtures, tmp))
    except BaseException as e:  # noqa: BLE001 - the parent judges the exception
        out = {"raised": True, "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
    else:
        out = {"raised": False}
    sys.stdout.write("\n" + json.dumps(out) + "\n")
