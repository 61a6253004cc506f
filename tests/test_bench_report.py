"""The benchmark report's table and chart, on synthetic measurements (the real run is `make bench-report`)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # appended: the installed fastformer must still win over the source tree
report = pytest.importorskip("benchmarks.report")

META = {
    "cpu": "Test CPU",
    "cpu_info": {"isa": "avx2", "features": ["avx2", "fma"], "threads": 2},
    "version": "0.0",
    "python": "3.11",
    "date": "2026-01-01",
    "peers": {
        "numpy": "2.0",
        "torch": "2.13.0",
        "tiktoken": None,
        "tokenizers": "0.20",
        "transformers": "4.50",
        "llama_cpp": None,
    },
}
KERNELS = {"Norms and softmax": [("rms_norm (1, 4096) t=1", "numpy", 1e-5, 4e-5, 4.0)]}
MODELS = [
    {"model": "110M F32", "engine": "fastformer", "threads": 1, "prefill": 500.0, "decode": 40.0},
    {"model": "110M F32", "engine": "transformers", "threads": 1, "prefill": 250.0, "decode": 10.0},
]


def test_markdown_lists_rows_ratios_and_skipped_peers():
    md = report.markdown(META, KERNELS, MODELS, ["bench_x.py: some reason"])
    assert "Test CPU" in md and "`avx2`" in md
    assert "| rms_norm (1, 4096) t=1 | numpy | 0.010 | 0.040 | 4.00x |" in md
    assert "| 110M F32 | transformers | 1 | 250.0 | 10.0 | 2.00 | 4.00 |" in md
    skipped = md.split("## Skipped", 1)[1]
    assert "tiktoken: not installed" in skipped and "llama_cpp: not installed" in skipped
    assert "numpy: not installed" not in skipped
    assert "bench_x.py: some reason" in skipped


def test_markdown_without_skips_says_nothing_skipped():
    meta = dict(META, peers={k: "1" for k in META["peers"]})
    assert "## Skipped\n\n- nothing" in report.markdown(meta, KERNELS, [], [])


def test_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.png"
    assert report.chart(out, META, KERNELS, MODELS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_serving_section():
    server = {"model": "m.gguf", "threads": 2, "rows": [
        {"clients": 4, "engine": "fastformer", "tokens_per_s": 300.0, "ttft_p50": 0.05, "ttft_p95": 0.08},
        {"clients": 4, "engine": "llama.cpp", "tokens_per_s": 100.0, "ttft_p50": 0.2, "ttft_p95": 0.9},
    ]}  # fmt: skip
    md = report.markdown(META, KERNELS, MODELS, [], server)
    assert "## Serving" in md and "m.gguf, 2 threads" in md
    assert "| 4 | llama.cpp | 100.0 | 200 | 900 | 3.00 |" in md
    assert "## Serving" not in report.markdown(META, KERNELS, MODELS, [])
