"""A session's scratch: sized by C (ff_session_bytes) from the model's dimensions, owned by Python, carved by
ff_session_init."""

import numpy as np
import pytest

from fastformer import _core


def _core_model(d=64, nh=4, nkv=2, hd=16, f=96, vocab=50, ctx=32, layers=2, rope="halves"):
    rng = np.random.default_rng(0)

    def m(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    w = {"tok_emb": m(vocab, d), "lm_head": m(vocab, d), "norm_w": np.ones(d, np.float32)}
    if rope != "none":
        w["rope_inv_freq"] = (10000.0 ** (-np.arange(0, hd, 2) / hd)).astype(np.float32)
    ly = [
        {"attn_norm_w": np.ones(d, np.float32), "ffn_norm_w": np.ones(d, np.float32), "wq": m(nh * hd, d),
         "wk": m(nkv * hd, d), "wv": m(nkv * hd, d), "wo": m(d, nh * hd), "w_gate": m(f, d), "w_up": m(f, d),
         "w_down": m(d, f)}
        for _ in range(layers)
    ]  # fmt: skip
    cfg = dict(n_layers=layers, d=d, n_heads=nh, n_kv_heads=nkv, head_dim=hd, d_ff=f, vocab=vocab, max_ctx=ctx,
               eps=1e-5, window=0, norm="rms", act="silu", rope=rope)  # fmt: skip
    return _core.ModelCore(cfg, w, ly)


def _want_bytes(d, nh, nkv, hd, f, max_t):
    floats = [d, d, nh * hd, nh * hd, nh * hd, nh * hd, nkv * hd, nkv * hd, f, f, hd // 2, hd // 2]
    return 64 + sum(-(-4 * max_t * n // 64) * 64 for n in floats)


@pytest.mark.parametrize("max_t", [1, 7, 32])
@pytest.mark.parametrize("dims", [(64, 4, 2, 16, 96), (40, 5, 1, 8, 72), (32, 2, 2, 16, 33)])
def test_scratch_bytes(dims, max_t):
    d, nh, nkv, hd, f = dims
    s = _core.Session(_core_model(d, nh, nkv, hd, f), 32, max_t)
    assert s.scratch.dtype == np.uint8 and s.scratch.nbytes == _want_bytes(d, nh, nkv, hd, f, max_t)
    assert (s.n_past, s.capacity, s.max_t) == (0, 32, max_t)


def test_carved_buffers_hold_a_full_call():
    # a forward of max_t tokens fills every carved buffer; its logits equal one token at a time
    core = _core_model(40, 5, 1, 8, 72)
    ids = [3, 1, 4, 1, 5, 9, 2]
    full = _core.Session(core, 32, len(ids)).forward(ids, all_logits=True)
    step = _core.Session(core, 32, 1)
    rows = [step.forward([i])[0] for i in ids]
    np.testing.assert_allclose(full, np.stack(rows), rtol=1e-4, atol=1e-5)


def test_named_kinds():
    assert _core.NORM_KINDS.keys() == {"rms", "layer"}
    assert _core.ACT_KINDS.keys() == {"silu", "gelu_tanh", "gelu_erf"}
    assert _core.ROPE_KINDS.keys() == {"none", "halves", "interleaved"}
    assert len(set(_core.ROPE_KINDS.values())) == 3
    core = _core_model()
    for key in ("norm", "act", "rope"):
        with pytest.raises(ValueError, match="unsupported model kinds"):
            _core.ModelCore({**core.dims, key: "spiral"}, core.weights, core.layers)
    with pytest.raises(ValueError, match="needs rope_inv_freq"):
        _core.ModelCore(core.dims, {k: v for k, v in core.weights.items() if k != "rope_inv_freq"}, core.layers)
    out = _core.Session(_core_model(rope="none"), 8, 2).forward([1, 2])
    assert out.shape == (1, 50) and np.isfinite(out).all()


def test_each_activation_kind_runs_its_own_function():
    """A decoder's gated mlp applies the named activation: the three kinds give three different outputs, and"""
    core = _core_model()
    outs = {}
    for act in ("silu", "gelu_tanh", "gelu_erf"):
        c = _core.ModelCore({**core.dims, "act": act}, core.weights, core.layers)
        outs[act] = _core.Session(c, 8, 4).forward([1, 2, 3, 4], all_logits=True)
    assert not np.array_equal(outs["silu"], outs["gelu_erf"])
    assert not np.array_equal(outs["gelu_tanh"], outs["gelu_erf"])
    # gelu_erf and gelu_tanh differ by < 1e-3 per activation: the logits stay close, unlike silu's
    assert np.abs(outs["gelu_erf"] - outs["gelu_tanh"]).max() < np.abs(outs["gelu_erf"] - outs["silu"]).max()


def test_forward_into_a_given_array():
    core = _core_model()
    a, b = _core.Session(core, 32, 8), _core.Session(core, 32, 8)
    want = [a.forward([3, 4, 5], True), a.forward([6])]
    out3, out1 = np.full((3, 50), np.nan, np.float32), np.full((1, 50), np.nan, np.float32)
    got3 = b.forward([3, 4, 5], True, 0, out3)
    got1 = b.forward([6], False, 0, out1)
    assert got3 is out3 and got1 is out1
    np.testing.assert_array_equal(out3, want[0])
    np.testing.assert_array_equal(out1, want[1])
    # a wrong array is refused before the step runs: the session does not advance
    for bad in (
        np.zeros((2, 50), np.float32),
        np.zeros((1, 50), np.float64),
        np.zeros((1, 100), np.float32)[:, ::2],
        np.zeros(50, np.float32),
        [0.0] * 50,
    ):
        with pytest.raises(ValueError, match="out must be a writeable C-contiguous float32 array of shape"):
            b.forward([7], False, 0, bad)
    ro = np.zeros((1, 50), np.float32)
    ro.flags.writeable = False
    unaligned = np.frombuffer(bytearray(201), np.uint8)[1:].view(np.float32).reshape(1, 50)
    assert not unaligned.flags.aligned
    for bad in (ro, unaligned):
        with pytest.raises(ValueError, match="out must be"):
            b.forward([7], False, 0, bad)
    np.testing.assert_array_equal(b.forward([7]), a.forward([7]))
    # an ndarray subclass of the right layout takes the logits too
    sub = np.zeros((1, 50), np.float32).view(type("Sub", (np.ndarray,), {}))
    b.forward([8], False, 0, sub)
    np.testing.assert_array_equal(np.asarray(sub), a.forward([8]))
