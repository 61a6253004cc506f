"""Writing a Checkpoint as a GGUF v3 file that llama.cpp loads (tensor names and keys from fastformer.arch).

Float tensors are written as F32, quantized ones in their own block format. For llama, q/k rows go in the
pairwise rotary order llama.cpp uses (a model loaded from Hugging Face rotates split halves, so its q/k rows
are permuted on the way out; one loaded from GGUF is already pairwise).

>>> fastformer.Model.load("hf-dir", quantize="q8_0").save_gguf("model-q8_0.gguf")   # doctest: +SKIP
"""

import struct

import numpy as np

from fastformer import ops
from fastformer.arch import ARCHS, GGUF_EPS_KEY, GGUF_KEYS, arch_for_gguf
from fastformer.checkpoint import as_dict
from fastformer.quant import QuantizedTensor

ALIGN = 32
_U32, _I32, _F32, _BOOL, _STR, _ARR, _U64 = 4, 5, 6, 7, 8, 9, 10


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key, value):
    """One metadata pair; ints are u32, floats f32, lists of str/int/float arrays."""
    out = _str(key)
    if isinstance(value, bool):
        return out + struct.pack("<I?", _BOOL, value)
    if isinstance(value, int):
        return out + struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return out + struct.pack("<If", _F32, value)
    if isinstance(value, str):
        return out + struct.pack("<I", _STR) + _str(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if items and all(isinstance(v, (bool, np.bool_)) for v in items):
            return out + struct.pack("<IIQ", _ARR, _BOOL, len(items)) + bytes(bool(v) for v in items)
        if all(isinstance(v, str) for v in items):
            return out + struct.pack("<IIQ", _ARR, _STR, len(items)) + b"".join(_str(v) for v in items)
        if all(isinstance(v, (int, np.integer)) for v in items):
            return out + struct.pack("<IIQ", _ARR, _I32, len(items)) + np.asarray(items, "<i4").tobytes()
        return out + struct.pack("<IIQ", _ARR, _F32, len(items)) + np.asarray(items, "<f4").tobytes()
    raise TypeError(f"cannot write metadata {key!r} of type {type(value).__name__}")


def _pairwise(w, n_heads):
    """Rows of each head from split-halves order (x0..x_{h-1}, y0..y_{h-1}) to pairs (x0, y0, x1, y1, ...)."""
    if isinstance(w, QuantizedTensor):
        rows = _pairwise_index(w.shape[0], n_heads)
        return QuantizedTensor(np.ascontiguousarray(w.data[rows]), w.qtype, w.shape)
    return np.ascontiguousarray(w[_pairwise_index(w.shape[0], n_heads)])


def _pairwise_index(rows, n_heads):
    hd = rows // n_heads
    half = hd // 2
    idx = np.arange(rows).reshape(n_heads, 2, half)  # [head, half, i] -> old row
    return idx.transpose(0, 2, 1).reshape(-1)  # new row (head, i, half)


def _fuse(parts):
    """Tensors whose rows are concatenated into one file tensor: blocks when all share one block format."""
    if all(isinstance(p, QuantizedTensor) for p in parts) and len({p.qtype for p in parts}) == 1:
        data = np.concatenate([p.data for p in parts])
        return QuantizedTensor(data, parts[0].qtype, (data.shape[0], parts[0].shape[1]))
    return np.concatenate([p.dequantize() if isinstance(p, QuantizedTensor) else p for p in parts])


def _tensor_blob(t):
    """(ggml type id, numpy-order shape, bytes)."""
    if isinstance(t, QuantizedTensor):
        return t.ggml_type, t.shape, t.data.tobytes()
    a = np.ascontiguousarray(t, dtype="<f4")
    return 0, a.shape, a.tobytes()


def _linear(c):
    return bool(c.rope_scaling) and c.rope_scaling["rope_type"] == "linear"


def _metadata(c, gguf):
    """{gguf}.* keys of the config, named by the architecture table."""
    rope = c.family.rope != "none"
    fields = ["max_context", "d_model", "d_ff", "n_layers", "n_heads"] + (["n_kv_heads", "head_dim"] if rope else [])
    meta = {f"{gguf}.{GGUF_KEYS[f]}": getattr(c, f) for f in fields}
    if rope:
        meta[f"{gguf}.attention.value_length"] = c.head_dim
        meta[f"{gguf}.{GGUF_KEYS['rope_dim']}"] = c.rotary_dim
        meta[f"{gguf}.{GGUF_KEYS['rope_theta']}"] = float(c.rope_theta)
        if c.rope_scaling and c.rope_scaling["rope_type"] == "linear":  # as llama.cpp's converter writes it
            meta[f"{gguf}.{GGUF_KEYS['rope_scaling_type']}"] = "linear"
            meta[f"{gguf}.{GGUF_KEYS['rope_scaling_factor']}"] = float(c.rope_scaling["factor"])
        if c.rope_long_after:  # longrope: the factors go in rope_factors_* tensors
            meta[f"{gguf}.{GGUF_KEYS['rope_long_after']}"] = c.rope_long_after
            meta[f"{gguf}.{GGUF_KEYS['rope_attn_factor']}"] = float(c.rope_attn_factor)
    if c.family.sliding_window:
        meta[f"{gguf}.{GGUF_KEYS['sliding_window']}"] = c.sliding_window
    if c.sliding_layers is not None:
        meta[f"{gguf}.{GGUF_KEYS['sliding_pattern']}"] = [bool(x) for x in c.sliding_layers]
    for field in ("attn_scale", "attn_softcap", "final_softcap"):
        if getattr(c, field):
            meta[f"{gguf}.{GGUF_KEYS[field]}"] = float(getattr(c, field))
    if c.rope_local_theta:
        meta[f"{gguf}.rope.freq_base_swa"] = float(c.rope_local_theta)
    meta[f"{gguf}.{GGUF_EPS_KEY[c.family.norm]}"] = float(c.norm_eps)
    meta[f"{gguf}.vocab_size"] = c.vocab_size
    return meta


def gguf_tensors_and_metadata(ck):
    """The metadata dict and ordered {name: tensor} a Checkpoint is written as."""
    c, arch = ck.config, ck.config.family
    gguf = arch.gguf_name
    if gguf is None:
        writable = ", ".join(a.name for a in ARCHS.values() if a.gguf_name)
        raise ValueError(f"save_gguf: {arch.name} models have no GGUF form here; supported: {writable}")
    if c.sliding_window and not arch_for_gguf(gguf).sliding_window:
        raise ValueError(f"save_gguf: a sliding-window model cannot be written as a {gguf} GGUF file")
    target = arch_for_gguf(gguf)  # the row whose files these are (a mistral model writes llama's)
    w = as_dict(ck.weights)
    layers = [as_dict(lw) for lw in ck.layers]
    if w["lm_head"] is w["tok_emb"]:
        w["lm_head"] = None  # tied: no output.weight
    if target.rope_gguf == "interleaved" and ck.rope == "halves":
        for lw in layers:  # llama.cpp's converter permutes q/k rows so pairwise rotation reproduces HF's
            lw["wq"], lw["wk"] = _pairwise(lw["wq"], c.n_heads), _pairwise(lw["wk"], c.n_kv_heads)
    written = {"rope_inv_freq", "rope_inv_freq_long", "rope_inv_freq_local"}
    tensors = {}

    def put(s, src, i=None):
        parts = [src[k] for k in s.into]
        written.update(s.into)
        if all(p is None for p in parts):
            if not s.optional:
                raise ValueError(f"save_gguf: {', '.join(s.into)} missing for {s.name.format(i=i)}")
            return
        tensors[s.name.format(i=i)] = parts[0] if len(parts) == 1 else _fuse(parts)

    for s in target.gguf_tensors:
        if "{i}" not in s.name:
            put(s, w)
            if s.into == ("tok_emb",) and c.rope_long_after:
                for key in ("short", "long"):
                    tensors[f"rope_factors_{key}.weight"] = np.asarray(c.rope_scaling[f"{key}_factor"], np.float32)
            elif s.into == ("tok_emb",) and w.get("rope_inv_freq") is not None and not _linear(c):
                base = ops.rope_inv_freq(c.head_dim, c.rope_theta)
                if not np.array_equal(w["rope_inv_freq"], base):  # scaled rope: per-frequency divisors
                    tensors["rope_freqs.weight"] = (base / w["rope_inv_freq"]).astype(np.float32)
    for i, lw in enumerate(layers):
        for s in target.gguf_tensors:
            if "{i}" in s.name:
                put(s, lw, i)
    for src in [w] + layers:
        extra = [k for k, v in src.items() if v is not None and k not in written]
        if extra:
            raise ValueError(f"save_gguf: {', '.join(extra)} have no place in a {gguf} GGUF file")
    meta = {"general.architecture": gguf, "general.name": "fastformer export", "general.alignment": ALIGN,
            "general.quantization_version": 2}  # fmt: skip
    meta.update(_metadata(c, gguf))
    meta.update(_tokenizer_metadata(ck.tokenizer))
    for name, template in ck.chat_templates.items():  # as llama.cpp's converter writes them
        meta["tokenizer.chat_template" + ("" if name == "default" else f".{name}")] = template
    return meta, tensors


def _tokenizer_metadata(tok):
    """tokenizer.ggml.* for the model's tokenizer, or a "none" vocabulary when it has none."""
    if tok is None or not hasattr(tok, "gguf_metadata"):
        return {"tokenizer.ggml.model": "none"}
    return tok.gguf_metadata()


def write_gguf(ck, path, progress=None):
    """Write a Checkpoint to `path`; progress(i, n) is called after each tensor."""
    meta, tensors = gguf_tensors_and_metadata(ck)
    blobs = [(name,) + _tensor_blob(t) for name, t in tensors.items()]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(blobs), len(meta))
    head += b"".join(_kv(k, v) for k, v in meta.items())
    offset = 0
    infos = []
    for name, tid, shape, data in blobs:
        dims = list(reversed(shape))
        infos.append(
            _str(name)
            + struct.pack("<I", len(dims))
            + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", tid, offset)
        )
        offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    head += b"".join(infos)
    with open(path, "wb") as f:
        f.write(head)
        f.write(b"\0" * (-len(head) % ALIGN))
        for i, (_, _, _, data) in enumerate(blobs):
            f.write(data)
            f.write(b"\0" * (-len(data) % ALIGN))
            if progress:
                progress(i + 1, len(blobs))
