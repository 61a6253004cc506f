PY ?= python3

# build the extension in place (for working in the tree)
build:
	$(PY) setup.py build_ext --inplace

# install with test extras and run the whole test suite (what CI runs)
test:
	$(PY) -m pip install ".[test]" && pytest

# build in place and run the kernel, tokenizer and model core: no peer libraries, no network, nothing slow, no Ray
test-fast:
	$(PY) setup.py build_ext --inplace -q
	PYTHONPATH=$(CURDIR) $(PY) -m pytest -q -p no:cacheprovider -m "not peer and not network and not slow and not ray"

# run the benchmarks against numpy/torch and print peer/fastformer ratios (OPENBLAS_* unset for the peer)
bench: build
	mkdir -p .benchmarks
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m pytest benchmarks --benchmark-only -q --benchmark-json=.benchmarks/latest.json
	$(PY) -m benchmarks.compare .benchmarks/latest.json

# the benchmark report: markdown table + PNG chart beside every installed peer (benchmarks/results/)
bench-report: build
	$(PY) -m benchmarks.report

# ruff lint and format check of the Python, clang-format check of the C (the generated unicode tables aside)
PY_SOURCES = fastformer tests benchmarks setup.py fuzz tools
C_SOURCES = $(filter-out csrc/ff_unicode_table.h csrc/ff_wordpiece_table.h,$(wildcard csrc/*.c csrc/*.h csrc/*.inc))
lint:
	$(PY) -m ruff check $(PY_SOURCES)
	$(PY) -m ruff format --check $(PY_SOURCES)
	clang-format --dry-run -Werror $(C_SOURCES)

# build with address+undefined sanitizers in a copy (ASAN_DIR) and run tests (ASAN_TESTS) under them
# (libstdc++ is preloaded too, or C++ exceptions in other extensions trip asan's __cxa_throw check)
ASAN_DIR ?= build/asan
ASAN_TESTS ?= tests
asan:
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR) && cp -r setup.py pyproject.toml README.md csrc fastformer $(ASAN_DIR)/
	rm -f $(ASAN_DIR)/fastformer/*.so $(ASAN_DIR)/fastformer/_core.c
	cd $(ASAN_DIR) && FASTFORMER_SANITIZE=address,undefined $(PY) setup.py -q build_ext --inplace 2>&1 | grep -v -i warning || true
	test -f $(ASAN_DIR)/fastformer/_core*.so
	cd $(ASAN_DIR) && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PYTHONPATH=$(abspath $(ASAN_DIR)) $(PY) -m pytest -p no:cacheprovider -q -x \
		$(addprefix $(CURDIR)/,$(ASAN_TESTS))

# remove build products
clean:
	rm -rf build dist *.egg-info fastformer/*.so fastformer/_core.c .pytest_cache .benchmarks

.PHONY: build test test-fast bench bench-report lint asan clean
