# mk/python.mk — the Python binding: builds ctx._ctx in place, runs pytest and
# mypy --strict on the typed example, and the benchmark against its peers.
PY ?= python3

.PHONY: python-ext test-python bench-python
python-ext:
	@mkdir -p build
	CTX_WERROR=1 timeout 600 $(PY) setup.py -q build_ext --inplace --force -j2 \
	  > build/python-ext.log 2>&1 || { cat build/python-ext.log; exit 1; }
	@$(PY) -c "import sys; sys.path.insert(0, 'python'); import ctx._ctx"

test-python: python-ext
	PYTHONPATH=python timeout 900 $(PY) -m pytest tests/python -q -p no:cacheprovider
	cd tests/python && MYPYPATH=../../python timeout 300 $(PY) -m mypy --strict --no-incremental typed_example.py

# the peers are benchmark-only dependencies: installed here, not by deps.sh
bench-python: python-ext
	-timeout 300 $(PY) -m pip install -q trio anyio stopit 2>&1 | grep -v -i warning || true
	PYTHONPATH=python timeout 1200 $(PY) bench/python/bench.py

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
