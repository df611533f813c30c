# mk/python.mk — the Python binding: builds ctx._ctx in place, runs pytest,
# mypy --strict and stubtest, and the benchmark against its peers.
PY ?= python3

.PHONY: python-ext test-python test-python-typing bench-python
python-ext:
	@mkdir -p build
	CTX_WERROR=1 timeout 600 $(PY) setup.py -q build_ext --inplace --force -j2 \
	  > build/python-ext.log 2>&1 || { cat build/python-ext.log; exit 1; }
	@$(PY) -c "import sys; sys.path.insert(0, 'python'); import ctx._ctx"

test-python: python-ext
	PYTHONPATH=python timeout 900 $(PY) -m pytest tests/python -q -p no:cacheprovider
test-python: test-python-typing

# mypy runs from a venv of its own under build/ (never a system Python), made
# with $(PY) so that stubtest imports the extension built for it
TYPING_VENV := build/venv-typing
MYPY_VERSION := 2.4.1
$(TYPING_VENV)/.mypy-$(MYPY_VERSION):
	rm -rf $(TYPING_VENV) && $(PY) -m venv $(TYPING_VENV)
	timeout 600 $(TYPING_VENV)/bin/python -m pip install -q mypy==$(MYPY_VERSION)
	touch $@

# the typed example under --strict, and the stubs against the runtime (PEP 800
# disjoint bases are left out: type checkers users have may not know them)
test-python-typing: python-ext $(TYPING_VENV)/.mypy-$(MYPY_VERSION)
	cd tests/python && MYPYPATH=../../python timeout 300 ../../$(TYPING_VENV)/bin/python \
	  -m mypy --strict --no-incremental typed_example.py
	PYTHONPATH=python timeout 300 $(TYPING_VENV)/bin/python -m mypy.stubtest ctx \
	  --ignore-disjoint-bases --allowlist tests/python/stubtest-allowlist.txt

# the peers are benchmark-only dependencies: installed here, not by deps.sh
bench-python: python-ext
	-timeout 300 $(PY) -m pip install -q trio anyio stopit 2>&1 | grep -v -i warning || true
	PYTHONPATH=python timeout 1200 $(PY) bench/python/bench.py

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
