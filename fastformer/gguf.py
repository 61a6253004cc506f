"""A GGUF reader: memory-mapped, zero-copy tensors, every count, length, offset and dimension validated
before use (Python integers: no overflow), FormatError naming the file and the field on anything wrong.

Layout (v2/v3, little-endian): magic "GGUF", version u32, tensor count u64, metadata count u64;
metadata key/value pairs; tensor infos (name, n_dims, dims (innermost first), ggml type, offset);
padding to `general.alignment` (default 32); tensor data.

>>> f = GGUFFile("model.gguf")          # doctest: +SKIP
>>> f.metadata["general.architecture"]  # doctest: +SKIP
'llama'
"""

import mmap
import os
import struct

import numpy as np

from fastformer import _core, ops
from fastformer.arch import GGUF_EPS_KEY, GGUF_KEYS, GGUF_NAMES, arch_for_gguf
from fastformer.chat import read_gguf_templates
from fastformer.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    ModelConfig,
    build,
    check_float,
    check_int,
    check_layer_count,
    check_shapes,
    read_weights,
    rope_inv_freq,
)
from fastformer.errors import FormatError, UnsupportedError, require_finite
from fastformer.quant import QuantizedTensor

MAGIC = b"GGUF"
MAX_STRING = 1 << 24  # bytes in one metadata string
MAX_DIMS = 4
MAX_DIM = 1 << 40  # elements along one axis

# metadata value types
(T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64) = range(13)
_SCALARS = {
    T_U8: "<B",
    T_I8: "<b",
    T_U16: "<H",
    T_I16: "<h",
    T_U32: "<I",
    T_I32: "<i",
    T_F32: "<f",
    T_BOOL: "<?",
    T_U64: "<Q",
    T_I64: "<q",
    T_F64: "<d",
}
_NP_SCALARS = {
    T_U8: "<u1",
    T_I8: "<i1",
    T_U16: "<u2",
    T_I16: "<i2",
    T_U32: "<u4",
    T_I32: "<i4",
    T_F32: "<f4",
    T_BOOL: "<u1",
    T_U64: "<u8",
    T_I64: "<i8",
    T_F64: "<f8",
}

# ggml tensor types: id -> (name, elements per block, bytes per block), every id a file may hold
GGML_TYPES = {tid: (name.upper(), block, nbytes) for tid, name, block, nbytes, *_ in _core.QTYPE_TABLE}


class TensorInfo:
    """One tensor's name, numpy-order shape (outermost first), ggml type name and byte span in the file."""

    __slots__ = ("name", "shape", "type", "type_id", "offset", "nbytes")

    def __init__(self, name, shape, type_id, offset, nbytes):
        self.name, self.shape, self.type_id = name, shape, type_id
        self.type = GGML_TYPES[type_id][0]
        self.offset, self.nbytes = offset, nbytes

    def __repr__(self):
        return f"TensorInfo({self.name!r}, shape={self.shape}, type={self.type})"


class _Reader:
    def __init__(self, path, buf):
        self.path, self.buf, self.pos = path, buf, 0

    def fail(self, what):
        raise FormatError(f"{self.path}: {what} (at byte {self.pos})")

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            self.fail(f"truncated: {what} needs {n} bytes, {len(self.buf) - self.pos} remain")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def scalar(self, t, what):
        fmt = _SCALARS[t]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        n = self.scalar(T_U64, what + " length")
        if n > MAX_STRING:
            self.fail(f"{what} length {n} exceeds {MAX_STRING}")
        raw = self.take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} is not valid UTF-8")

    def value(self, t, key):
        if t in _SCALARS:
            return self.scalar(t, f"value of {key}")
        if t == T_STR:
            return self.string(f"value of {key}")
        if t == T_ARR:
            et = self.scalar(T_U32, f"array type of {key}")
            n = self.scalar(T_U64, f"array length of {key}")
            if et in _NP_SCALARS:
                width = np.dtype(_NP_SCALARS[et]).itemsize
                if n * width > len(self.buf) - self.pos:
                    self.fail(f"array {key} of {n} elements runs past the end of the file")
                arr = np.frombuffer(self.take(n * width, f"array {key}"), dtype=_NP_SCALARS[et])
                return arr.astype(bool) if et == T_BOOL else arr
            if et == T_STR:
                if n * 8 > len(self.buf) - self.pos:  # every string has at least its 8-byte length
                    self.fail(f"array {key} of {n} strings runs past the end of the file")
                return [self.string(f"{key}[{i}]") for i in range(n)]
            if et == T_ARR:
                raise UnsupportedError(
                    f"{self.path}: array {key} holds arrays; supported: arrays of numbers or strings"
                )
            self.fail(f"array {key} has unknown element type {et}")
        self.fail(f"metadata {key} has unknown value type {t}")


class GGUFFile:
    """An open GGUF file: `metadata` dict, `tensors` dict name -> TensorInfo, `get(name)` raw arrays."""

    def __init__(self, path):
        self.path = os.fspath(path)
        size = os.path.getsize(self.path)
        if size < 24:
            raise FormatError(f"{self.path}: not a GGUF file (only {size} bytes)")
        with open(self.path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        r = _Reader(self.path, memoryview(self._map))
        if bytes(r.take(4, "magic")) != MAGIC:
            raise FormatError(f"{self.path}: bad magic, not a GGUF file")
        self.version = r.scalar(T_U32, "version")
        if self.version not in (2, 3):
            raise UnsupportedError(f"{self.path}: GGUF version {self.version}; supported: 2, 3")
        n_tensors = r.scalar(T_U64, "tensor count")
        n_kv = r.scalar(T_U64, "metadata count")
        # every kv needs >= 12 bytes and every tensor info >= 24: bound the counts by the file size
        if n_kv * 12 > size or n_tensors * 24 > size:
            r.fail(f"metadata count {n_kv} or tensor count {n_tensors} is impossible for a {size}-byte file")
        self.metadata = {}
        for i in range(n_kv):
            key = r.string(f"metadata key {i}")
            t = r.scalar(T_U32, f"type of {key}")
            if key in self.metadata:
                r.fail(f"duplicate metadata key {key!r}")
            self.metadata[key] = r.value(t, key)
        align = self.metadata.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0 or align & (align - 1) or align > 1 << 16:
            r.fail(f"general.alignment {align!r} must be a power of two")
        infos = []
        for i in range(n_tensors):
            name = r.string(f"tensor {i} name")
            nd = r.scalar(T_U32, f"n_dims of {name}")
            if not 1 <= nd <= MAX_DIMS:
                r.fail(f"tensor {name!r} has n_dims {nd}, expected 1..{MAX_DIMS}")
            dims = [r.scalar(T_U64, f"dims of {name}") for _ in range(nd)]
            if any(d <= 0 or d > MAX_DIM for d in dims):
                r.fail(f"tensor {name!r} has dimensions {dims}, each must be in 1..{MAX_DIM}")
            tid = r.scalar(T_U32, f"type of {name}")
            if tid not in GGML_TYPES:
                raise UnsupportedError(
                    f"{self.path}: tensor {name!r} has ggml type {tid}; supported: "
                    + ", ".join(t[0] for t in GGML_TYPES.values())
                )
            off = r.scalar(T_U64, f"offset of {name}")
            _, blk, bb = GGML_TYPES[tid]
            if dims[0] % blk:
                r.fail(
                    f"tensor {name!r}: row length {dims[0]} is not a multiple of the {GGML_TYPES[tid][0]} block {blk}"
                )
            count = 1
            for d in dims:
                count *= d
            infos.append((name, tuple(reversed(dims)), tid, off, count // blk * bb))
        data_start = (r.pos + align - 1) // align * align
        self.data_start = data_start
        self.tensors = {}
        spans = []
        for name, shape, tid, off, nbytes in infos:
            if name in self.tensors:
                raise FormatError(f"{self.path}: duplicate tensor name {name!r}")
            if off % align:
                raise FormatError(f"{self.path}: tensor {name!r} offset {off} is not aligned to {align}")
            if data_start + off + nbytes > size:
                raise FormatError(
                    f"{self.path}: tensor {name!r} ({nbytes} bytes at offset {off}) runs past the end of the "
                    f"file ({size} bytes): truncated?"
                )
            self.tensors[name] = TensorInfo(name, shape, tid, data_start + off, nbytes)
            spans.append((off, off + nbytes, name))
        spans.sort()
        for (_, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise FormatError(f"{self.path}: tensors {n0!r} and {n1!r} overlap")

    def raw(self, name):
        """The tensor's bytes as a read-only uint8 array (zero-copy)."""
        t = self.tensors[name]
        return np.frombuffer(self._map, dtype=np.uint8, count=t.nbytes, offset=t.offset)

    def get(self, name):
        """F32 tensors zero-copy, F16/BF16/F64 converted to float32; quantized types as raw uint8 blocks."""
        t = self.tensors[name]
        raw = self.raw(name)
        if t.type == "F32":
            a = raw.view("<f4").reshape(t.shape)
            return a if a.flags.aligned else a.copy()  # an alignment below 4 can leave floats unaligned
        if t.type in ("F16", "F64"):
            return raw.view("<f2" if t.type == "F16" else "<f8").astype(np.float32).reshape(t.shape)
        if t.type == "BF16":
            return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(t.shape)
        return raw

    def field(self, key, kind=None, default=None, required=True):
        """A metadata value checked for type: kind is int, float or str."""
        if key not in self.metadata:
            if required and default is None:
                raise FormatError(f"{self.path}: missing metadata {key}")
            return default
        v = self.metadata[key]
        if kind is int and (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))):
            raise FormatError(f"{self.path}: {key} must be an integer, got {v!r}")
        if kind is float and not isinstance(v, (int, float, np.integer, np.floating)):
            raise FormatError(f"{self.path}: {key} must be a number, got {v!r}")
        if kind is str and not isinstance(v, str):
            raise FormatError(f"{self.path}: {key} must be a string, got {type(v).__name__}")
        return v


# ---- a model from a GGUF file: the metadata keys and tensor names come from fastformer.arch ----

# block formats the linear kernels run directly
QUANT_TYPES = tuple(_core.qtype_names(_core.QF_LINEAR).upper().split("/"))


def _weight(f, name, shape, matrix=False):
    """A float32 array; a weight matrix (matrix=True) in a block format stays quantized, zero-copy."""
    if name not in f.tensors:
        raise FormatError(f"{f.path}: missing tensor {name!r}")
    t = f.tensors[name]
    if t.shape != tuple(shape):
        raise FormatError(f"{f.path}: tensor {name!r} has shape {t.shape}, expected {tuple(shape)}")
    if t.type in ("F32", "F16", "BF16", "F64"):
        a = np.ascontiguousarray(f.get(name))
        require_finite(a, f"{f.path}: tensor {name!r}")
        return a
    if t.type not in QUANT_TYPES:
        raise UnsupportedError(
            f"{f.path}: tensor {name!r} has type {t.type}; supported: F32, F16, BF16, {', '.join(QUANT_TYPES)}"
        )
    qt = QuantizedTensor.from_bytes(f.raw(name), t.type.lower(), shape)
    _require_finite_scales(qt, f"{f.path}: tensor {name!r}")
    return qt if matrix and len(shape) == 2 else qt.dequantize().reshape(shape)


def _config(f, arch, name, max_context):
    """ModelConfig from the {name}.* metadata keys the table names, every value checked."""

    def n(field, default=None):
        key = f"{name}.{GGUF_KEYS[field]}"
        return check_int(f.field(key, int, default), key, f.path)

    def number(key, default, positive=False):
        return check_float(f.field(key, float, default), key, f.path, positive)

    d, layers_n, heads = n("d_model"), n("n_layers"), n("n_heads")
    kv = n("n_kv_heads", heads)
    ctx, ff = n("max_context"), n("d_ff")
    emb = next(s.name for s in arch.gguf_tensors if s.into == ("tok_emb",))
    vocab = f.tensors[emb].shape[0] if emb in f.tensors else 0
    if vocab <= 0:
        raise FormatError(f"{f.path}: missing tensor {emb!r}")
    if vocab > MAX_SIZE:
        raise FormatError(f"{f.path}: {emb} has {vocab} rows, at most {MAX_SIZE} are supported")
    tokens = f.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list) and len(tokens) > vocab:
        raise FormatError(
            f"{f.path}: tokenizer.ggml.tokens has {len(tokens)} tokens, more than the {vocab} rows of {emb}"
        )
    hd_key = f"{name}.{GGUF_KEYS['head_dim']}"
    names = dict(d_model=f"{name}.embedding_length", n_heads="head_count", n_heads_full=f"{name}.attention.head_count",
                 n_kv_heads="head_count_kv", head_dim=hd_key, head_dim_given=hd_key in f.metadata,
                 rope_dim=f"{name}.{GGUF_KEYS['rope_dim']}")  # fmt: skip
    if not names["head_dim_given"] and d % heads:
        raise FormatError(f"{f.path}: {name}.embedding_length {d} is not a multiple of head_count {heads}")

    def token_id(key):
        v = f.field(key, int, required=False)
        if v is not None and not 0 <= v < vocab:
            raise FormatError(f"{f.path}: {key} {v} must be a token id in [0, {vocab})")
        return None if v is None else int(v)

    eos = token_id("tokenizer.ggml.eos_token_id")
    # every id that ends generation: eos, eot, eom and the end-of-turn tokens llama.cpp knows by their text
    eog = [] if eos is None else [eos]
    if tokens is not None:
        from fastformer._gguf_vocab import eog_ids

        eog = eog_ids(f.metadata, f.path)
    conf = ModelConfig(
        architecture=arch.hf_classes[0],
        arch=arch.name,
        n_layers=layers_n,
        d_model=d,
        n_heads=heads,
        n_kv_heads=kv,
        head_dim=n("head_dim", d // heads),
        d_ff=ff,
        vocab_size=vocab,
        max_context=ctx if max_context is None else min(ctx, max_context),
        norm_eps=number(f"{name}.{GGUF_EPS_KEY[arch.norm]}", 1e-6 if arch.norm == "rms" else 1e-5),
        tie_word_embeddings=arch.always_tied,
        bos_token_id=token_id("tokenizer.ggml.bos_token_id"),
        eos_token_ids=eog,
        raw=dict(f.metadata),
    )
    if arch.rope != "none":
        conf.rope_theta = number(f"{name}.{GGUF_KEYS['rope_theta']}", 10000.0, positive=True)
        conf.rope_dim = n("rope_dim", conf.head_dim)
        kind = f.field(f"{name}.{GGUF_KEYS['rope_scaling_type']}", str, "none")
        if kind == "linear":
            factor = number(f"{name}.{GGUF_KEYS['rope_scaling_factor']}", None, positive=True)
            conf.rope_scaling = {"rope_type": "linear", "factor": factor}
        elif kind != "none":
            raise UnsupportedError(f"{f.path}: {name}.{GGUF_KEYS['rope_scaling_type']} {kind!r} is not supported")
        if arch.local_rope:  # llama.cpp's base for gemma3's sliding layers unless the file names one
            conf.rope_local_theta = number(f"{name}.rope.freq_base_swa", 10000.0, positive=True)
    if arch.sliding_window:
        key = f"{name}.{GGUF_KEYS['sliding_window']}"
        window = f.field(key, int, arch.gguf_window)
        if not 0 <= window <= MAX_SIZE:  # 0: no window (llama.cpp's reading); one past the context never cuts
            raise FormatError(f"{f.path}: {key} must be an integer from 0 to {MAX_SIZE}, got {window}")
        conf.sliding_window = int(window)
    if arch.sliding_pattern:
        key = f"{name}.{GGUF_KEYS['sliding_pattern']}"
        pattern = f.field(key, None, arch.sliding_pattern)
        if isinstance(pattern, (list, np.ndarray)):  # one flag per layer: true = sliding
            if len(pattern) != layers_n or not all(isinstance(p, (bool, np.bool_)) for p in pattern):
                raise FormatError(f"{f.path}: {key} must be {layers_n} booleans or an integer")
            conf.sliding_layers = tuple(bool(p) for p in pattern)
        else:
            pattern = check_int(pattern, key, f.path)
            conf.sliding_layers = tuple((i + 1) % pattern != 0 for i in range(layers_n))
    for field in ("attn_softcap", "final_softcap"):
        key = f"{name}.{GGUF_KEYS[field]}"
        if key in f.metadata:
            setattr(conf, field, number(key, None, positive=True))
    if arch.emb_scale:
        conf.emb_scale = float(np.float32(np.sqrt(d)))
    if f"{name}.{GGUF_KEYS['attn_scale']}" in f.metadata:
        conf.attn_scale = number(f"{name}.{GGUF_KEYS['attn_scale']}", None, positive=True)
    elif arch.gguf_wide_scalar_layers:  # llama.cpp's rule: the largest model scales queries by (d / heads)^-0.5
        wide = layers_n == arch.gguf_wide_scalar_layers
        conf.attn_scale = float(d // heads if wide else conf.head_dim) ** -0.5
    types = next((s.name for s in arch.gguf_tensors if s.into == ("type_emb",)), None)
    if types in f.tensors:  # encoders: the token type table's rows
        conf.n_types = check_int(f.tensors[types].shape[0], f"{types} rows", f.path)
    check_shapes(conf, f.path, names)
    return conf, ctx


def _longrope(f, name, conf):
    """LongRoPE as the rope_scaling dict the HF loader makes: factors from the rope_factors_* tensors, the
    pretraining length and the cos/sin scale from metadata."""
    half = (conf.rotary_dim // 2,)
    out = {"rope_type": "longrope"}
    for key in ("short", "long"):
        t = f"rope_factors_{key}.weight"
        if t not in f.tensors:
            raise FormatError(f"{f.path}: rope_factors_long.weight without rope_factors_short.weight")
        v = _weight(f, t, half)
        if not np.all(v > 0):
            raise FormatError(f"{f.path}: tensor {t!r} must hold finite values > 0")
        out[f"{key}_factor"] = [float(x) for x in v]
    key = f"{name}.{GGUF_KEYS['rope_long_after']}"
    out["original_max_position_embeddings"] = check_int(f.field(key, int), key, f.path)
    key = f"{name}.{GGUF_KEYS['rope_attn_factor']}"
    out["attention_factor"] = check_float(f.field(key, float, 1.0), key, f.path, positive=True)
    return out


def load(path, max_context=None):
    """A GGUF file as a Checkpoint: config from its metadata, weights (block formats stay quantized), tokenizer."""
    f = GGUFFile(path)
    name = f.field("general.architecture", str)
    arch = arch_for_gguf(name)
    if arch is None:
        raise UnsupportedError(f"{f.path}: architecture {name!r}; supported: {', '.join(GGUF_NAMES)}")
    conf, ctx = _config(f, arch, name, max_context)
    check_layer_count(
        f.tensors, arch.gguf_tensors, conf.n_layers,
        lambda t: f"{f.path}: tensor {t!r} belongs to a layer beyond {name}.block_count {conf.n_layers}",
    )  # fmt: skip
    used = {"rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"}

    def get(t, shape, m):
        used.add(t)
        return _weight(f, t, shape, m)

    glob, layers = read_weights(arch.gguf_tensors, conf, ctx, f.tensors.__contains__, get)
    unused = [t for t in f.tensors if t not in used]
    if unused:  # a tensor the forward pass would ignore: the model would run, wrongly
        more = f" (and {len(unused) - 3} more)" if len(unused) > 3 else ""
        raise UnsupportedError(
            f"{f.path}: tensor {', '.join(map(repr, unused[:3]))}{more} is not supported in {name} files"
        )
    if "pos_emb" in glob:
        glob["pos_emb"] = np.ascontiguousarray(glob["pos_emb"][: conf.max_context])
    if arch.rope != "none":
        # the q/k shapes checked above bound head_dim: the rotary table is small
        inv = rope_inv_freq(conf)
        if "rope_freqs.weight" in f.tensors:  # llama3-style scaling stored as per-frequency divisors
            div = _weight(f, "rope_freqs.weight", (conf.head_dim // 2,))
            if not np.all(div > 0):
                raise FormatError(f"{f.path}: tensor 'rope_freqs.weight' must hold finite values > 0")
            inv = np.ascontiguousarray(inv / div, dtype=np.float32)
        glob["rope_inv_freq"] = inv
        if conf.rope_local_theta:
            glob["rope_inv_freq_local"] = ops.rope_inv_freq(conf.rotary_dim, conf.rope_local_theta)
        if arch.longrope and "rope_factors_short.weight" in f.tensors and "rope_factors_long.weight" not in f.tensors:
            raise FormatError(f"{f.path}: rope_factors_short.weight without rope_factors_long.weight")
        if arch.longrope and "rope_factors_long.weight" in f.tensors:
            conf.rope_scaling = _longrope(f, name, conf)
            conf.rope_attn_factor = conf.rope_scaling["attention_factor"]
            conf.rope_long_after = conf.rope_scaling["original_max_position_embeddings"]
            glob["rope_inv_freq"] = rope_inv_freq(conf)
            glob["rope_inv_freq_long"] = rope_inv_freq(conf, long=True)
    weights, layers = build(glob, layers, tied=False)  # GGUF: no output.weight means a tied head
    tok = None
    if arch.encoder and f.metadata.get("tokenizer.ggml.model") == "bert":  # WordPiece
        from fastformer.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer.from_gguf_metadata(f.metadata, source=f.path)
    elif f.metadata.get("tokenizer.ggml.model", "none") not in ("none", "no_vocab"):
        from fastformer.tokenizer import Tokenizer

        tok = Tokenizer.from_gguf_metadata(f.metadata, source=f.path)
    templates = read_gguf_templates(f.metadata, f.path)
    return Checkpoint(f.path, "gguf", conf, weights, layers, tok, rope=arch.rope_gguf, chat_templates=templates)


# byte range of the float16 scales (d, and dmin where there is one) inside each block
_SCALE_BYTES = {name: (lo, hi) for _, name, _, _, flags, lo, hi in _core.QTYPE_TABLE if flags & _core.QF_LINEAR}


def _require_finite_scales(qt, where):
    """A block's weights are small integers times its float16 scales: finite scales, finite weights."""
    lo, hi = _SCALE_BYTES[qt.qtype]
    block = GGML_TYPES[qt.ggml_type][2]
    # a float16 is inf or NaN when its five exponent bits are all set; read in place, no copy of the scales
    bad = (qt.data.reshape(-1, block)[:, lo:hi].view("<u2") & 0x7C00) == 0x7C00
    if bad.any():
        k = int(np.flatnonzero(bad)[0]) // ((hi - lo) // 2)
        raise FormatError(f"{where} holds non-finite values (a float16 scale of block {k}); weights must be finite")
