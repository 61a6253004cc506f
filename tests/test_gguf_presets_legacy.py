"""llama.cpp's Q4_1, Q5_0, Q5_1 and IQ4_NL presets: llama_model_quantize turns a converter-made F32 GGUF of a
random Llama into each; fastformer loads the file (token table included, kept in its blocks) and agrees with
llama.cpp's logits on the same file, and fastformer's own quantizer gives the file's blocks from the F32 weights."""

import numpy as np
import pytest

import fastformer
from fastformer import Model
from fastformer.checkpoint import as_dict
from fastformer.quant import QuantizedTensor

# the checkpoint is a transformers model, llama.cpp's converter needs sentencepiece
pytestmark = pytest.mark.peer("torch", "transformers", "sentencepiece", "gguf", "llama_cpp")

PRESETS = ["q4_1", "q5_0", "q5_1", "iq4_nl"]
PROMPT = [1] + [int(t) for t in np.random.default_rng(7).integers(3, 320, size=47)]  # 48 tokens


@pytest.fixture(scope="module")
def f32_gguf(tmp_path_factory):
    """A 2-layer GQA Llama, rows of 192 and 320 weights (multiples of 32, not of 256: llama.cpp keeps every
    matrix in the preset's type, the head in Q8_0), as the converter's F32 GGUF."""
    import torch
    import transformers
    from gguf_tools import convert

    cfg = transformers.LlamaConfig(
        vocab_size=320,
        hidden_size=192,
        intermediate_size=320,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in hf.parameters():
            # peaked logits: a wider head, norms near 1
            scale = 0.3 if p.shape[0] == cfg.vocab_size else 0.08
            p.copy_(
                1.0 + 0.05 * torch.randn(p.shape, generator=g)
                if p.ndim == 1
                else scale * torch.randn(p.shape, generator=g)
            )
    path = tmp_path_factory.mktemp("presets") / "llama"
    hf.save_pretrained(path)
    return convert(str(path), "f32", str(path) + "-f32.gguf")


def _preset(llama_cpp, f32, qtype):
    out = f32.replace("-f32.gguf", f"-{qtype}.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}")
    assert llama_cpp.llama_model_quantize(f32.encode(), out.encode(), params) == 0
    return out


@pytest.mark.parametrize("qtype", PRESETS)
def test_preset_file_matches_llama_cpp(f32_gguf, qtype):
    import llama_cpp

    path = _preset(llama_cpp, f32_gguf, qtype)
    model = Model.load(path)
    ck = model.checkpoint()
    assert ck.layers[0].wq.qtype == qtype and ck.layers[1].w_down.qtype == qtype
    emb = ck.weights.tok_emb
    assert isinstance(emb, QuantizedTensor) and emb.qtype == qtype  # one dequantized row per token
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    llm.eval(PROMPT)
    theirs = np.array(llm.scores[: len(PROMPT)], dtype=np.float32)
    ours = model.logits(PROMPT)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    top1 = (ours.argmax(1) == theirs.argmax(1)).mean()
    assert cos.mean() >= 0.995 and top1 >= 0.9, (cos.mean(), cos.min(), top1)
    # token-by-token decode gives prefill's logits up to float sums in another order, which can move an 8-bit
    # activation by one step (the prefill/decode attention kernels differ)
    sess = model._session(8)
    steps = np.concatenate([sess.forward(PROMPT[i : i + 1], True) for i in range(8)])
    cos = (steps * ours[:8]).sum(1) / np.linalg.norm(steps, axis=1) / np.linalg.norm(ours[:8], axis=1)
    assert cos.min() > 0.9999 and (steps.argmax(1) == ours[:8].argmax(1)).all(), cos.min()


@pytest.mark.parametrize("qtype", PRESETS)
def test_fastformer_quantize_gives_the_file_blocks(f32_gguf, qtype):
    import gguf
    import llama_cpp

    path = _preset(llama_cpp, f32_gguf, qtype)
    src = {t.name: t for t in gguf.GGUFReader(f32_gguf).tensors}
    checked = 0
    for t in gguf.GGUFReader(path).tensors:
        if t.tensor_type.name.lower() != qtype:
            continue
        w = np.asarray(src[t.name].data, dtype=np.float32)
        w = w.reshape(-1, w.shape[-1])
        ours = fastformer.quantize(w, qtype).data
        np.testing.assert_array_equal(ours, np.asarray(t.data).reshape(ours.shape), err_msg=t.name)
        checked += 1
    assert checked >= 15  # 7 matrices in each of 2 layers and the token table


@pytest.mark.parametrize("qtype", PRESETS)
def test_quantize_at_load_round_trips_through_gguf(f32_gguf, tmp_path, qtype):
    """Model.load(quantize=...) holds every matrix in qtype, save_gguf writes it, llama.cpp's reader takes it."""
    import gguf

    model = Model.load(f32_gguf, quantize=qtype)
    layer = as_dict(model.checkpoint().layers[0])
    assert isinstance(layer["wq"], QuantizedTensor) and layer["wq"].qtype == qtype
    out = tmp_path / f"ff-{qtype}.gguf"
    model.save_gguf(out)
    types = {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(str(out)).tensors}
    assert types["blk.0.attn_q.weight"] == qtype
    again = Model.load(out)
    np.testing.assert_array_equal(again.logits(PROMPT[:16]), model.logits(PROMPT[:16]))
