PY ?= python3

# build the extension in place (for working in the tree)
build:
	$(PY) setup.py build_ext --inplace

# install with test extras and run the whole test suite (what CI runs)
test:
	$(PY) -m pip install ".[test]" && pytest

# run the benchmarks against numpy/torch and print peer/fastformer ratios (OPENBLAS_* unset for the peer)
bench: build
	mkdir -p .benchmarks
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m pytest benchmarks --benchmark-only -q --benchmark-json=.benchmarks/latest.json
	$(PY) -m benchmarks.compare .benchmarks/latest.json

# the benchmark report: markdown table + PNG chart beside every installed peer (benchmarks/results/)
bench-report: build
	$(PY) -m benchmarks.report

# ruff lint and format check
lint:
	$(PY) -m ruff check fastformer tests benchmarks setup.py

# build with address+undefined sanitizers and run the suite under them
asan:
	FASTFORMER_SANITIZE=address,undefined $(PY) setup.py build_ext --inplace --force
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 $(PY) -m pytest tests -q -x

# remove build products
clean:
	rm -rf build dist *.egg-info fastformer/*.so fastformer/_core.c .pytest_cache .benchmarks

.PHONY: build test bench bench-report lint asan clean
