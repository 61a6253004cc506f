"""Quantized models: quantize-at-load and llama.cpp's own Q8_0 GGUF files give the logits of an fp32 run
over the dequantized weights, within the error that 8-bit activations explain."""

import dataclasses
import time

import numpy as np
import pytest
from gguf_tools import convert
from helpers import PROMPT, make_checkpoint, perturb_noise, perturb_shift, with_weights

import fastformer
from fastformer import Model, _core
from fastformer.checkpoint import LayerWeights, Weights, as_dict
from fastformer.quant import QuantizedTensor

pytestmark = pytest.mark.peer("torch", "transformers")  # the checkpoints are transformers models


def _save_llama(tmp_path_factory, name, hidden_size, intermediate_size, perturb):
    """A 2-layer GQA Llama with a 320-token vocabulary, its weights moved by perturb(model), saved."""
    path, _ = make_checkpoint(
        tmp_path_factory.mktemp(name) / "llama",
        "llama",
        perturb=perturb,
        vocab_size=320,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _save_llama(tmp_path_factory, "q", 128, 256, perturb_shift(1))


def dequantized_twin(model):
    """An fp32 Model whose weight matrices are `model`'s quantized ones, dequantized."""
    ck = model.checkpoint()

    def deq(a):
        return a.dequantize() if isinstance(a, QuantizedTensor) else a

    weights = Weights(**{k: deq(v) for k, v in as_dict(ck.weights).items()})
    layers = [LayerWeights(**{k: deq(v) for k, v in as_dict(layer).items()}) for layer in ck.layers]
    return Model(dataclasses.replace(ck, weights=weights, layers=layers))


def assert_activation_error(got, want):
    # 8-bit activations (a scale per 32 values, ~0.4% rounding) compound over the layers of this random-weight
    # model to a few percent of the logits' range at worst; a wrong kernel or layout is far off
    scale = np.abs(want).max()
    assert np.abs(got - want).mean() < 0.01 * scale
    assert np.abs(got - want).max() < 0.06 * scale
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.999


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
def test_quantize_at_load(ckpt, qtype):
    model = Model.load(ckpt, quantize=qtype)
    layer = as_dict(model.checkpoint().layers[0])
    assert isinstance(layer["wq"], QuantizedTensor) and layer["wq"].qtype == qtype
    assert isinstance(model.checkpoint().weights.lm_head, QuantizedTensor)
    assert isinstance(layer["attn_norm_w"], np.ndarray)  # norms stay float
    got = model.logits(PROMPT)
    assert_activation_error(got, dequantized_twin(model).logits(PROMPT))
    # and it is a quantization of the real model, not of something else
    full = Model.load(ckpt).logits(PROMPT)
    cos = (got * full).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(full, axis=1)
    assert cos.min() > (0.995 if qtype == "q8_0" else 0.8)  # random weights: 4 bits cost a lot


@pytest.mark.peer("sentencepiece")  # llama.cpp's converter (tests/gguf_tools.py): downloaded once, run in a child
@pytest.mark.network
@pytest.mark.subprocess
def test_llama_cpp_q8_0_gguf(ckpt):
    out = convert(ckpt, "q8_0", ckpt + "-q8_0.gguf")
    model = Model.load(out)
    wq = model.checkpoint().layers[0].wq
    assert isinstance(wq, QuantizedTensor) and wq.qtype == "q8_0"
    assert_activation_error(model.logits(PROMPT), dequantized_twin(model).logits(PROMPT))
    full = Model.load(ckpt).logits(PROMPT)
    got = model.logits(PROMPT)
    cos = (got * full).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(full, axis=1)
    assert cos.min() > 0.995


@pytest.fixture(scope="module")
def ckpt256(tmp_path_factory):
    """A checkpoint with rows of 256 weights, so llama.cpp's Q4_0 keeps output.weight in Q6_K."""
    return _save_llama(tmp_path_factory, "q256", 256, 512, perturb_noise(0.05, matrices=False))


@pytest.mark.peer("sentencepiece", "llama_cpp")  # the converter, then llama.cpp's quantizer and runtime
@pytest.mark.network
@pytest.mark.subprocess
@pytest.mark.parametrize("qtype,need", [("q8_0", 0.999), ("q4_0", 0.99)])
def test_llama_cpp_quantized_files_match_llama_cpp(ckpt256, qtype, need):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    f16 = convert(ckpt256, "f16", ckpt256 + "-f16.gguf")
    out = ckpt256 + f"-{qtype}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0}[qtype]
    assert llama_cpp.llama_model_quantize(f16.encode(), out.encode(), params) == 0
    model = Model.load(out)
    weights = as_dict(model.checkpoint().weights)
    assert model.checkpoint().layers[0].wq.qtype == qtype
    assert weights["lm_head"].qtype == ("q6_k" if qtype == "q4_0" else "q8_0")  # llama.cpp's choice for output
    llm = llama_cpp.Llama(model_path=out, n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    llm.eval(PROMPT)
    theirs = np.array(llm.scores[: len(PROMPT)], dtype=np.float32)
    ours = model.logits(PROMPT)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() > need, cos.min()


def test_quantize_argument_checked(ckpt):
    with pytest.raises(ValueError, match="quantize must be"):
        Model.load(ckpt, quantize="iq2_xxs")


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
@pytest.mark.parametrize("tied", [False, True])
def test_block_format_embedding_table_stays_quantized(ckpt, tmp_path, qtype, tied):
    """A block-format token table (llama.cpp's quantizer writes one) is kept in its blocks and one row is dequantized
    per token: the logits are bitwise those of the same table dequantized at load; GGUF files keep it so."""
    import fastformer

    base = Model.load(ckpt, quantize="q8_0", hugepages=False)
    ck = base.checkpoint()
    w, layers = as_dict(ck.weights), [as_dict(lw) for lw in ck.layers]
    table = fastformer.quantize(w["tok_emb"], qtype)

    def build(emb):
        ww = dict(w, tok_emb=emb)
        if tied:
            ww["lm_head"] = emb
        return Model(with_weights(ck, ww, layers))

    quantized, floats = build(table), build(table.dequantize())
    if tied:  # the float twin's head must be the same blocks, not the float table
        floats = Model(with_weights(ck, dict(w, tok_emb=table.dequantize(), lm_head=table), layers))
    np.testing.assert_array_equal(quantized.logits(PROMPT), floats.logits(PROMPT))

    path = tmp_path / "emb.gguf"
    quantized.save_gguf(path)
    again = Model.load(path)
    emb = again.checkpoint().weights.tok_emb
    assert isinstance(emb, QuantizedTensor) and emb.qtype == qtype
    assert (again.checkpoint().weights.lm_head is emb) == tied
    # a GGUF llama holds q/k in the pairwise rope order, so compare with the float table's file
    floats.save_gguf(tmp_path / "floats.gguf")
    float_file = Model.load(tmp_path / "floats.gguf")
    assert isinstance(float_file.checkpoint().weights.tok_emb, np.ndarray)
    np.testing.assert_array_equal(again.logits(PROMPT), float_file.logits(PROMPT))


def test_workers_read_ahead_only_inside_a_step(ckpt):
    # at 2 threads a worker done with its share of a decode call reads the start of its share of the next call
    # (the up/gate call names the down projection, the last down the head); it never goes on reading after the
    # step returns, when the model's weights may be freed
    model = Model.load(ckpt, quantize="q4_0")
    before = fastformer.get_num_threads()
    try:
        fastformer.set_num_threads(1)
        spans0, bytes0 = _core.read_ahead_stats()
        one = model.generate_ids(PROMPT, max_new_tokens=8, ignore_eos=True)
        assert _core.read_ahead_stats() == (spans0, bytes0)  # one thread: nothing to read ahead
        fastformer.set_num_threads(2)
        two = model.generate_ids(PROMPT, max_new_tokens=8, ignore_eos=True)
        spans1, bytes1 = _core.read_ahead_stats()
        assert spans1 - spans0 >= 7  # at least once in each of the 7 decode steps
        time.sleep(0.02)
        assert _core.read_ahead_stats() == (spans1, bytes1)
        assert one == two  # same bits at any thread count
    finally:
        fastformer.set_num_threads(before)


def test_few_rows_steps_read_ahead(ckpt):
    # 8 rows on the few-rows kernels (a batch's decode step) at 2 threads: each thread quantizes its own rows there,
    # and each of the 4 matrix calls of a layer names the next (the last down: the head), so a worker reads ahead
    # once a call; the same bits as at 1 thread
    model = Model.load(ckpt, quantize="q8_0")
    before = fastformer.get_num_threads()
    try:
        fastformer.set_num_threads(1)
        want = model._session(8).forward(PROMPT[:8], True, _core.PATH_ROWS)
        fastformer.set_num_threads(2)
        sess = model._session(8)
        spans0, _ = _core.read_ahead_stats()
        got = sess.forward(PROMPT[:8], True, _core.PATH_ROWS)
        assert _core.read_ahead_stats()[0] - spans0 == 2 * 4
        np.testing.assert_array_equal(got, want)
    finally:
        fastformer.set_num_threads(before)
