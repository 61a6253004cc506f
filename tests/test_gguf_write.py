"""save_gguf / `fastformer quantize`: files that read back to the same model, and (where llama-cpp-python is
installed: it takes ~15 minutes to compile, so it is not a test extra) that llama.cpp itself runs alike."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import LLAMA3_ROPE, PROMPT, assert_close, child_env, make_checkpoint, perturb_noise

from fastformer import Model
from fastformer.gguf import GGUFFile
from fastformer.quant import QuantizedTensor

pytestmark = pytest.mark.peer("torch", "transformers")  # the checkpoints are transformers models


@pytest.fixture(scope="module", params=["llama", "llama3", "gpt2"])
def ckpt(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / request.param
    if request.param == "gpt2":
        config = dict(vocab_size=320, n_embd=64, n_layer=2, n_head=4, n_positions=64)
    else:
        config = dict(
            vocab_size=320,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            rope_scaling=dict(LLAMA3_ROPE, original_max_position_embeddings=16) if request.param == "llama3" else None,
        )
    arch = "gpt2" if request.param == "gpt2" else "llama"
    return make_checkpoint(path, arch, perturb=perturb_noise(0.1, seed=4), **config)[0]


def test_fp32_round_trip(ckpt, tmp_path):
    model = Model.load(ckpt)
    out = str(tmp_path / "m.gguf")
    model.save_gguf(out)
    again = Model.load(out)
    assert again.config.architecture == model.config.architecture
    assert_close(again.logits(PROMPT), model.logits(PROMPT), "logits")


@pytest.mark.subprocess
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_quantize_command_writes_the_quantized_weights(ckpt, tmp_path, qtype):
    out = str(tmp_path / f"m-{qtype}.gguf")
    r = subprocess.run(
        [sys.executable, "-m", "fastformer", "quantize", ckpt, out, "--type", qtype],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env=child_env(),
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


@pytest.mark.peer("llama_cpp")
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
