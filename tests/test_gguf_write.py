"""save_gguf / `fastformer quantize`: files that read back to the same model, and (where llama-cpp-python is
installed: it takes ~15 minutes to compile, so it is not a test extra) that llama.cpp itself runs alike."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastformer import Model
from fastformer.gguf import GGUFFile
from fastformer.quant import QuantizedTensor

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PROMPT = [1, 17, 93, 5, 44, 120, 7, 7, 63, 150, 11, 2, 99, 31, 8, 77, 3, 140, 56, 21]


def _ckpt(root, arch):
    torch.manual_seed(0)
    if arch == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=320, n_embd=64, n_layer=2, n_head=4, n_positions=64)
        hf = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.LlamaConfig(
            vocab_size=320,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=16,
            )
            if arch == "llama3"
            else None,
        )
        hf = transformers.LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(p + 0.1 * torch.randn(p.shape, generator=g))
    path = os.path.join(root, arch)
    hf.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=["llama", "llama3", "gpt2"])
def ckpt(request, tmp_path_factory):
    return _ckpt(str(tmp_path_factory.mktemp("w")), request.param)


def test_fp32_round_trip(ckpt, tmp_path):
    model = Model.load(ckpt)
    out = str(tmp_path / "m.gguf")
    model.save_gguf(out)
    again = Model.load(out)
    assert again.config.architecture == model.config.architecture
    want = model.logits(PROMPT)
    np.testing.assert_allclose(again.logits(PROMPT), want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_quantize_command_writes_the_quantized_weights(ckpt, tmp_path, qtype):
    out = str(tmp_path / f"m-{qtype}.gguf")
    r = subprocess.run(
        [sys.executable, "-m", "fastformer", "quantize", ckpt, out, "--type", qtype],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    f = GGUFFile(out)
    assert f.tensors["blk.0.ffn_up.weight"].type == qtype.upper()
    assert f.tensors["blk.0.attn_output.weight"].type == qtype.upper()
    assert f.tensors["output_norm.weight"].type == "F32"
    mem = Model.load(ckpt, quantize=qtype)
    up = mem.checkpoint().layers[0].w_up
    assert isinstance(up, QuantizedTensor)
    np.testing.assert_array_equal(f.raw("blk.0.ffn_up.weight"), up.data.reshape(-1))
    got, want = Model.load(out).logits(PROMPT), mem.logits(PROMPT)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.999


def test_llama_cpp_runs_our_files(ckpt, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (opt-in peer)")
    model = Model.load(ckpt, quantize="q8_0")
    out = str(tmp_path / "m.gguf")
    model.save_gguf(out)
    llm = llama_cpp.Llama(model_path=out, n_ctx=64, n_threads=1, verbose=False)
    llm.eval(PROMPT)
    theirs = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(320,)).copy()
    ours = model.logits(PROMPT)[-1]
    assert float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)) > 0.999
