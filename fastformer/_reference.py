"""Plain numpy oracles of every kernel, computed in float64: what the C kernels are tested against."""

import math

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def matmul(a, b):
    return _f64(a) @ _f64(b)


def linear(x, w, bias=None):
    y = _f64(x) @ _f64(w).T
    return y if bias is None else y + _f64(bias)


def softmax(x, axis=-1):
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
    x = _f64(x)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps) * _f64(weight)
    return y if bias is None else y + _f64(bias)


def rms_norm(x, weight, eps=1e-6):
    x = _f64(x)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * _f64(weight)


def gelu(x, approximate="tanh"):
    x = _f64(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def silu(x):
    x = _f64(x)
    return x / (1.0 + np.exp(-x))


def rope(x, positions, theta=10000.0, interleaved=False):
    x = _f64(x)
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]  # (T, D/2)
    cos, sin = np.cos(ang), np.sin(ang)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., : d // 2], x[..., d // 2 :]
    ra, rb = a * cos - b * sin, b * cos + a * sin
    out = np.empty_like(x)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = ra, rb
    else:
        out[..., : d // 2], out[..., d // 2 :] = ra, rb
    return out


def attention(q, k, v, causal=True, scale=None):
    q, k, v = _f64(q), _f64(k), _f64(v)
    h, tq, d = q.shape
    hkv, tk, _ = k.shape
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    # repeat each key/value head for its group of query heads
    k = np.repeat(k, h // hkv, axis=0)
    v = np.repeat(v, h // hkv, axis=0)
    s = np.einsum("htd,hsd->hts", q, k) * scale
    if causal:
        qpos = np.arange(tk - tq, tk)[:, None]
        s = np.where(np.arange(tk)[None, :] <= qpos, s, -np.inf)
    return np.einsum("hts,hsd->htd", softmax(s, axis=-1), v)


# ---- ggml block formats: quantize / dequantize as ff_quant.c does, bit for bit, and the quantized linear ----
# q8_0: per 32 weights an fp16 scale d and 32 int8 codes, w = d * q
# q4_0: per 32 weights an fp16 scale d and 16 bytes of 4-bit codes (weights 0-15 low nibbles, 16-31 high),
#       w = d * (q - 8)
# q4_k: per 256 weights fp16 d and dmin, 12 bytes of eight 6-bit (scale, min) pairs, 128 bytes of 4-bit codes
# q6_k: per 256 weights 128 bytes of low nibbles, 64 of high 2-bit pairs, sixteen int8 scales, fp16 d
# q2_k: per 256 weights 16 bytes of (4-bit scale, 4-bit min) per 16, 64 bytes of 2-bit codes, fp16 d and dmin
# q3_k: per 256 weights 32 bytes of high bits, 64 of 2-bit codes, 12 bytes of sixteen 6-bit scales, fp16 d
# q5_k: per 256 weights fp16 d and dmin, q4_k's 12 scale bytes, 32 bytes of fifth bits, 128 of 4-bit codes
# iq4_xs: per 256 weights fp16 d, 2+4 bytes of eight 6-bit scales, 128 bytes of 4-bit indices into IQ4_VALUES
# f16, bf16: one 16-bit float per weight

BLOCKS = {"q8_0": (32, 34), "q4_0": (32, 18), "q4_k": (256, 144), "q6_k": (256, 210), "f16": (1, 2), "bf16": (1, 2)}
BLOCKS.update({"q2_k": (256, 84), "q3_k": (256, 110), "q5_k": (256, 176), "iq4_xs": (256, 136)})
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def _fp16(b):
    """Little-endian fp16 bytes (..., 2) -> float32 (..., 1)."""
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def _round_half_away(x):
    """C's roundf: halves away from zero."""
    a = np.abs(x)
    return np.sign(x) * (np.floor(a) + np.floor(2 * (a - np.floor(a))))


@np.errstate(over="ignore", divide="ignore")  # scales beyond fp16's range become inf, as in C
def quantize(w, qtype):
    """float32 (rows, cols) -> the ggml bytes (rows, bytes per row) of q8_0, q4_0, f16 or bf16."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    rows = w.shape[0]
    if qtype == "f16":
        return w.astype(np.float16).view(np.uint8).reshape(rows, -1)
    if qtype == "bf16":
        n = w.view(np.uint32)
        # nan stays a quiet nan; everything else rounds to nearest even on the top 16 bits
        n = np.where((n & 0x7FFFFFFF) > 0x7F800000, (n & np.uint32(0xFFFF0000)) | np.uint32(64 << 16), n)
        n = (n.astype(np.uint64) + (0x7FFF + ((n >> 16) & 1))) >> 16
        return n.astype(np.uint16).view(np.uint8).reshape(rows, -1)
    x = w.reshape(-1, 32)
    if qtype == "q8_0":
        # d = max|x| / 127, q = roundf(x / d)
        d = (np.abs(x).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
        q = _round_half_away(x * inv).astype(np.int8).view(np.uint8)
    elif qtype == "q4_0":
        # d = (the weight of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5))
        big = np.take_along_axis(x, np.abs(x).argmax(-1)[:, None], -1)
        d = (big / np.float32(-8)).astype(np.float32)
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
        q = np.minimum(np.trunc(x * inv + np.float32(8.5)).astype(np.uint8), 15)
        q = q[:, :16] | (q[:, 16:] << 4)
    else:
        raise ValueError(f"no reference quantizer for {qtype}")
    return np.concatenate([d.astype(np.float16).view(np.uint8), q], -1).reshape(rows, -1)


@np.errstate(invalid="ignore")  # an inf scale times a zero code is nan, as in C
def dequantize(data, qtype, shape):
    """The ggml bytes of a (rows, cols) matrix -> float32 (rows, cols)."""
    block, size = BLOCKS[qtype]
    b = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, size)
    n = b.shape[0]
    if qtype == "f16":
        w = _fp16(b)
    elif qtype == "bf16":
        w = (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif qtype == "q8_0":
        w = b[:, 2:].view(np.int8).astype(np.float32) * _fp16(b[:, :2])
    elif qtype == "q4_0":
        q = np.concatenate([b[:, 2:] & 15, b[:, 2:] >> 4], -1).astype(np.float32)
        w = _fp16(b[:, :2]) * (q - np.float32(8))
    elif qtype == "q4_k":
        d, dmin, s, qs = _fp16(b[:, 0:2]), _fp16(b[:, 2:4]), b[:, 4:16], b[:, 16:].reshape(n, 4, 32)
        # eight 6-bit scales and mins: the low 6 bits of bytes 0-3 / 4-7, then nibbles of 8-11 with the top 2 bits
        sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)], -1)
        mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], -1)
        # each 32 code bytes give 64 weights: the low nibbles (scale 2g), then the high nibbles (scale 2g+1)
        q = np.stack([qs & 15, qs >> 4], 2).reshape(n, 8, 32).astype(np.float32)
        w = (d * sc)[..., None] * q - (dmin * mn)[..., None]
    elif qtype == "q6_k":
        ql, qh = b[:, :128].reshape(n, 2, 64), b[:, 128:192].reshape(n, 2, 32)
        sc, d = b[:, 192:208].view(np.int8).astype(np.float32), _fp16(b[:, 208:210])
        # per 128 weights: 4 runs of 32, low nibbles from ql[0:32], ql[32:64], then their high nibbles,
        # each with 2 bits of qh (bits 0-1, 2-3, 4-5, 6-7); codes are 6-bit minus 32, a scale per 16 weights
        lo = np.concatenate([ql[..., :32] & 15, ql[..., 32:] & 15, ql[..., :32] >> 4, ql[..., 32:] >> 4], -1)
        hi = np.concatenate([(qh >> s) & 3 for s in (0, 2, 4, 6)], -1)
        q = ((lo | (hi << 4)).astype(np.float32) - np.float32(32)).reshape(n, 16, 16)
        w = (d * sc)[..., None] * q
    elif qtype in ("q2_k", "q3_k"):
        # per 128 weights 32 code bytes, 2 bits each at shifts 0, 2, 4, 6: 4 runs of 32; a scale per 16 weights
        qs = b[:, 16:80] if qtype == "q2_k" else b[:, 32:96]
        q = np.concatenate([(qs[:, 32 * h : 32 * h + 32] >> s) & 3 for h in (0, 1) for s in (0, 2, 4, 6)], -1)
        if qtype == "q2_k":
            d, dmin, s = _fp16(b[:, 80:82]), _fp16(b[:, 82:84]), b[:, :16]
            w = (d * (s & 15))[..., None] * q.reshape(n, 16, 16).astype(np.float32) - (dmin * (s >> 4))[..., None]
        else:
            # minus 4 where bit l // 32 of hmask[l % 32] is clear; scales: nibbles of bytes 0-7 (low, then high),
            # 2 more bits from bytes 8-11 (bits 2(t // 4) of byte 8 + t % 4), minus 32
            hm = np.concatenate([(b[:, :32] >> i) & 1 for i in range(8)], -1)
            q = q.astype(np.float32) - np.float32(4) * (1 - hm)
            s, t = b[:, 96:108], np.arange(16)
            lo = np.where(t < 8, s[:, t % 8] & 15, s[:, t % 8] >> 4)
            sc = (lo | (((s[:, 8 + t % 4] >> (2 * (t // 4))) & 3) << 4)).astype(np.float32) - np.float32(32)
            w = (_fp16(b[:, 108:110]) * sc)[..., None] * q.reshape(n, 16, 16)
    elif qtype == "q5_k":
        d, dmin, s, qh, qs = _fp16(b[:, 0:2]), _fp16(b[:, 2:4]), b[:, 4:16], b[:, 16:48], b[:, 48:].reshape(n, 4, 32)
        sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)], -1)
        mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], -1)
        # q4_k's nibbles, plus bit c of qh[l] as 16 for weight 32c + l
        lo = np.stack([qs & 15, qs >> 4], 2).reshape(n, 8, 32)
        hi = np.stack([(qh >> c) & 1 for c in range(8)], 1)
        w = (d * sc)[..., None] * (lo | (hi << 4)).astype(np.float32) - (dmin * mn)[..., None]
    elif qtype == "iq4_xs":
        d, sh, sl, qs = _fp16(b[:, 0:2]), b[:, 2:4].view("<u2").astype(np.int32), b[:, 4:8], b[:, 8:].reshape(n, 8, 16)
        j = np.arange(8)
        ls = ((sl[:, j // 2] >> (4 * (j % 2))) & 15) | (((sh >> (2 * j)) & 3) << 4)
        # per 32 weights: the low nibbles of 16 bytes, then their high nibbles, through the iq4 values
        q = IQ4_VALUES[np.concatenate([qs & 15, qs >> 4], -1)]
        w = (d * (ls - 32).astype(np.float32))[..., None] * q
    else:
        raise ValueError(f"no reference dequantizer for {qtype}")
    return w.astype(np.float32).reshape(shape)


def quantize_activations(x, block=32):
    """The quantized kernels' activations: int8 per `block` (32; 256 for q4_k, q5_k, q6_k) with scale max|x|/127,
    ties to even; returned dequantized."""
    xb = np.asarray(x, dtype=np.float32).reshape(x.shape[0], -1, block)
    d = (np.abs(xb).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    return (np.rint(xb * inv) * d).reshape(x.shape)


def linear_q(x, data, qtype, shape, bias=None):
    """float64 y = quantized x @ dequantized w.T (+ bias), and sum |terms| (the scale of its rounding error)."""
    xa = _f64(quantize_activations(x, 256 if qtype in ("q4_k", "q5_k", "q6_k") else 32))
    wd = _f64(dequantize(data, qtype, shape))
    y = xa @ wd.T + (0 if bias is None else _f64(bias))
    return y, np.abs(xa) @ np.abs(wd).T
