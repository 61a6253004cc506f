"""Writing a loaded model as a GGUF v3 file that llama.cpp loads (architectures llama and gpt2).

Float tensors are written as F32, quantized ones in their own block format. For llama, q/k rows go in the
pairwise rotary order llama.cpp uses (a model loaded from Hugging Face rotates split halves, so its q/k rows
are permuted on the way out; one loaded from GGUF is already pairwise).

>>> fastformer.Model.load("hf-dir", quantize="q8_0").save_gguf("model-q8_0.gguf")   # doctest: +SKIP
"""

import struct

import numpy as np

from fastformer import ops
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


def _tensor_blob(t):
    """(ggml type id, numpy-order shape, bytes)."""
    if isinstance(t, QuantizedTensor):
        return t.ggml_type, t.shape, t.data.tobytes()
    a = np.ascontiguousarray(t, dtype="<f4")
    return 0, a.shape, a.tobytes()


def gguf_tensors_and_metadata(model):
    """The metadata dict and ordered {name: tensor} a model is written as."""
    c, w, layers = model.config, model._loaded["weights"], model._loaded["layers"]
    interleaved = model._loaded["rope_interleaved"]
    meta = {"general.name": "fastformer export", "general.alignment": ALIGN, "general.quantization_version": 2}
    tensors = {}
    if c.architecture == "GPT2LMHeadModel":
        arch = "gpt2"
        meta.update(
            {
                "gpt2.context_length": c.max_context,
                "gpt2.embedding_length": c.d_model,
                "gpt2.feed_forward_length": c.d_ff,
                "gpt2.block_count": c.n_layers,
                "gpt2.attention.head_count": c.n_heads,
                "gpt2.attention.layer_norm_epsilon": float(c.norm_eps),
                "gpt2.vocab_size": c.vocab_size,
            }
        )
        tensors["token_embd.weight"] = w["tok_emb"]
        tensors["position_embd.weight"] = w["pos_emb"]
        tensors["output_norm.weight"], tensors["output_norm.bias"] = w["norm_w"], w["norm_b"]
        for i, L in enumerate(layers):
            p = f"blk.{i}."
            wqkv = [L[k].dequantize() if isinstance(L[k], QuantizedTensor) else L[k] for k in ("wq", "wk", "wv")]
            tensors[p + "attn_norm.weight"], tensors[p + "attn_norm.bias"] = L["attn_norm_w"], L["attn_norm_b"]
            tensors[p + "attn_qkv.weight"] = np.concatenate(wqkv)
            tensors[p + "attn_qkv.bias"] = np.concatenate([L["bq"], L["bk"], L["bv"]])
            tensors[p + "attn_output.weight"], tensors[p + "attn_output.bias"] = L["wo"], L["bo"]
            tensors[p + "ffn_norm.weight"], tensors[p + "ffn_norm.bias"] = L["ffn_norm_w"], L["ffn_norm_b"]
            tensors[p + "ffn_up.weight"], tensors[p + "ffn_up.bias"] = L["w_up"], L["b_up"]
            tensors[p + "ffn_down.weight"], tensors[p + "ffn_down.bias"] = L["w_down"], L["b_down"]
    else:
        if any(L.get(b) is not None for L in layers for b in ("bq", "bk", "bv", "bo", "b_up", "b_down")):
            raise ValueError("save_gguf: llama GGUF files hold no projection biases (Qwen2 has them)")
        arch = "llama"
        meta.update(
            {
                "llama.context_length": c.max_context,
                "llama.embedding_length": c.d_model,
                "llama.feed_forward_length": c.d_ff,
                "llama.block_count": c.n_layers,
                "llama.attention.head_count": c.n_heads,
                "llama.attention.head_count_kv": c.n_kv_heads,
                "llama.attention.key_length": c.head_dim,
                "llama.attention.value_length": c.head_dim,
                "llama.rope.dimension_count": c.head_dim,
                "llama.rope.freq_base": float(c.rope_theta),
                "llama.attention.layer_norm_rms_epsilon": float(c.norm_eps),
                "llama.vocab_size": c.vocab_size,
            }
        )
        if c.sliding_window:
            raise ValueError("save_gguf: a sliding-window model cannot be written as a llama GGUF file")
        tensors["token_embd.weight"] = w["tok_emb"]
        base = ops.rope_inv_freq(c.head_dim, c.rope_theta)
        if not np.array_equal(w["rope_inv_freq"], base):  # scaled rope: per-frequency divisors, as llama.cpp reads
            tensors["rope_freqs.weight"] = (base / w["rope_inv_freq"]).astype(np.float32)
        tensors["output_norm.weight"] = w["norm_w"]
        if w["lm_head"] is not w["tok_emb"]:
            tensors["output.weight"] = w["lm_head"]
        for i, L in enumerate(layers):
            p = f"blk.{i}."
            q, k = L["wq"], L["wk"]
            if not interleaved:
                q, k = _pairwise(q, c.n_heads), _pairwise(k, c.n_kv_heads)
            tensors.update(
                {
                    p + "attn_norm.weight": L["attn_norm_w"],
                    p + "attn_q.weight": q,
                    p + "attn_k.weight": k,
                    p + "attn_v.weight": L["wv"],
                    p + "attn_output.weight": L["wo"],
                    p + "ffn_norm.weight": L["ffn_norm_w"],
                    p + "ffn_gate.weight": L["w_gate"],
                    p + "ffn_up.weight": L["w_up"],
                    p + "ffn_down.weight": L["w_down"],
                }
            )
    meta = {"general.architecture": arch, **meta}
    meta.update(_tokenizer_metadata(model))
    return meta, tensors


def _tokenizer_metadata(model):
    """tokenizer.ggml.* for the model's tokenizer, or a "none" vocabulary when it has none."""
    tok = model.tokenizer
    if tok is None or not hasattr(tok, "gguf_metadata"):
        return {"tokenizer.ggml.model": "none"}
    return tok.gguf_metadata()


def write_gguf(model, path, progress=None):
    """Write `model` to `path`; progress(i, n) is called after each tensor."""
    meta, tensors = gguf_tensors_and_metadata(model)
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
