"""`fastformer info` on a GGUF file (the KJV model, and llama.cpp's files of the newer families and K-quant presets):
the config, tensor types by ggml name, sizes and the embedded tokenizer, not a traceback."""

import os
import re
import subprocess
import sys

import pytest
from helpers import child_env

import fastformer
from fastformer.model import KJV_MODEL

pytestmark = pytest.mark.subprocess


def test_info_on_a_gguf_file():
    r = subprocess.run([sys.executable, "-m", "fastformer", "info", KJV_MODEL], capture_output=True, text=True,
                       timeout=120, env=child_env(), cwd=os.path.dirname(KJV_MODEL))  # fmt: skip
    assert r.returncode == 0, r.stderr
    model = fastformer.Model.load(KJV_MODEL)
    c = model.config
    assert f"architecture:  {c.architecture}" in r.stdout
    assert f"layers:        {c.n_layers}" in r.stdout and f"vocabulary:    {c.vocab_size}" in r.stdout
    types = fastformer.gguf.GGUFFile(KJV_MODEL).tensors.values()
    for t in {t.type for t in types}:
        assert f"{t} x{sum(1 for u in types if u.type == t)}" in r.stdout
    assert f"tokenizer:     GGUF {model.checkpoint().config.raw['tokenizer.ggml.model']}" in r.stdout
    assert f"{model.tokenizer.n_vocab} ids" in r.stdout


# llama.cpp's converter's files of each new family, and K-quant presets of them from llama.cpp's quantizer
INFO_CASES = {
    "qwen3-f32": ("qwen3", None),
    "gemma2-q4_k_m": ("gemma2", "Q4_K_M"),
    "gemma3-q3_k_m": ("gemma3", "Q3_K_M"),
    "phi3-q5_k_m": ("phi3", "Q5_K_M"),
    "qwen3-q6_k": ("qwen3", "Q6_K"),
}


def _llama_cpp_file(root, arch, preset):
    """A random 2-layer checkpoint of `arch` (rows of 256: whole super-blocks) as llama.cpp's converter's F32
    file, quantized by llama.cpp to `preset` unless it is None."""
    import ctypes

    from gguf_tools import convert
    from helpers import make_checkpoint

    path = os.path.join(root, arch)
    if not os.path.exists(path):
        make_checkpoint(path, arch, vocab_size=320, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=128,
                        bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
    f32 = convert(path, "f32", path + "-f32.gguf")
    if preset is None:
        return f32
    import llama_cpp

    out = path + f"-{preset}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + preset)
    assert llama_cpp.llama_model_quantize(f32.encode(), out.encode(), ctypes.byref(params)) == 0
    return out


@pytest.fixture(scope="module")
def info_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("info"))


@pytest.mark.peer("torch", "transformers", "gguf", "sentencepiece", "llama_cpp")
@pytest.mark.network  # llama.cpp's converter, downloaded once
@pytest.mark.parametrize("case", list(INFO_CASES))
def test_info_on_llama_cpp_files(info_root, case):
    """Each part of the output against the gguf package's reader of the same file."""
    import gguf

    arch, preset = INFO_CASES[case]
    path = _llama_cpp_file(info_root, arch, preset)
    r = subprocess.run([sys.executable, "-m", "fastformer", "info", path], capture_output=True, text=True,
                       timeout=120, env=child_env(), cwd=info_root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout
    reader = gguf.GGUFReader(path)
    keys = ("general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.pre")
    field = {k: f.contents() for k, f in reader.fields.items() if k in keys}
    cls = {"qwen3": "Qwen3ForCausalLM", "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM",
           "phi3": "Phi3ForCausalLM"}[arch]  # fmt: skip
    assert f"architecture:  {cls} ({arch} family)" in out
    assert f"gguf:          general.architecture {field['general.architecture']}, GGUF v3" in out
    assert "layers:        2" in out and "hidden size:   256" in out and "vocabulary:    320" in out
    # the quant-type histogram
    counts = {}
    for t in reader.tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    assert f"tensor types:  {', '.join(f'{k} x{v}' for k, v in sorted(counts.items()))}" in out
    if preset is not None:
        assert preset.split("_")[0] + "_K" in counts, counts  # the preset's own type is in the file
    # sizes: parameters, the file and its tensor data
    assert f"parameters:    {sum(int(t.n_elements) for t in reader.tensors):,}" in out
    m = re.search(r"file size: +([\d.]+) (B|KiB|MiB|GiB) \(([\d.]+) (B|KiB|MiB|GiB) of tensors\)", out)
    assert m, out
    unit = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    data = sum(int(t.n_bytes) for t in reader.tensors)
    for got, u, want in ((m[1], m[2], os.path.getsize(path)), (m[3], m[4], data)):
        assert abs(float(got) * unit[u] - want) <= 0.05 * unit[u] and want < 1024 * unit[u], (got, u, want)
    # the tokenizer kind: the converter's SentencePiece vocabulary (tokenizer.model) is tokenizer.ggml.model llama
    assert field["tokenizer.ggml.model"] == "llama"
    assert f"tokenizer:     GGUF llama (SentencePiece BPE), pre-tokenizer {field.get('tokenizer.ggml.pre')}" in out
    assert "320 ids" in out
