# mk/python.mk — the Python binding: builds ctx._ctx and runs the whole pytest
# suite on every CPython found under pyenv (3.11+), each in its own venv under
# build/, then once more with the portable (CTX_FORCE_POSIX=1) build; mypy --strict
# on the typed example and stubtest; the benchmark against its peers.
PY ?= python3
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null)
# the newest patch release of each supported minor version that is installed
PY_VERSIONS := $(foreach m,3.11 3.12 3.13 3.14,$(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/$(m).*))))
PY_MINORS := $(foreach d,$(PY_VERSIONS),$(word 1,$(subst ., ,$(notdir $(d)))).$(word 2,$(subst ., ,$(notdir $(d)))))
# none under pyenv: the default python3 alone
ifeq ($(strip $(PY_MINORS)),)
PY_MINORS := $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
endif
# the interpreter the portable build is tested on, and mypy runs with
PY_MAIN := $(firstword $(PY_MINORS))
MYPY_VERSION := 2.4.1
PY_TOOLS := pytest pytest-timeout hypothesis mypy==$(MYPY_VERSION) setuptools
# a test that hangs fails alone, named, instead of stopping the whole run
PYTEST_ARGS ?= -q -p no:cacheprovider --timeout=300

# $(call venv_py,3.12): the venv's python
venv_py = $(B)/venv-$(1)/bin/python
# $(call base_py,3.12): the interpreter a venv is made from
base_py = $(or $(firstword $(foreach d,$(PY_VERSIONS),$(if $(findstring /$(1).,$(d)/),$(d)/bin/python3))),$(PY))

.PHONY: python-ext test-python test-python-typing bench-python python-venvs
# one venv per interpreter, with the test tools (never installed into a system Python)
$(B)/venv-%/.ready-3:
	@mkdir -p $(B)
	$(call base_py,$*) -m venv --clear $(B)/venv-$*
	timeout 600 $(B)/venv-$*/bin/python -m pip install -q $(PY_TOOLS) > $(B)/venv-$*.log 2>&1 \
	  || { cat $(B)/venv-$*.log; exit 1; }
	@touch $@

python-venvs: $(foreach m,$(PY_MINORS),$(B)/venv-$(m)/.ready-3)

# the extension, in place (python/ctx/_ctx.cpython-3XX-*.so), for every interpreter
python-ext: python-venvs
	@set -e; for m in $(PY_MINORS); do \
	  CTX_WERROR=1 timeout 600 $(B)/venv-$$m/bin/python setup.py -q build_ext --inplace -j2 \
	    --build-temp $(B)/py-temp-$$m > $(B)/python-ext-$$m.log 2>&1 \
	    || { cat $(B)/python-ext-$$m.log; exit 1; }; \
	  $(B)/venv-$$m/bin/python -c "import sys; sys.path.insert(0, 'python'); import ctx._ctx"; \
	done

# the portable build as a package of its own under build/py-posix (its tests'
# subprocesses import ctx from where the test run did)
$(B)/py-posix/ctx/.built: $(wildcard core/*.[ch] bindings/python/*.[ch] python/ctx/*)
	@$(MAKE) --no-print-directory python-venvs
	@rm -rf $(B)/py-posix && mkdir -p $(B)/py-posix/ctx
	CTX_FORCE_POSIX=1 CTX_WERROR=1 timeout 600 $(call venv_py,$(PY_MAIN)) setup.py -q build_ext \
	  -j2 --build-lib $(B)/py-posix --build-temp $(B)/py-temp-posix > $(B)/python-ext-posix.log 2>&1 \
	  || { cat $(B)/python-ext-posix.log; exit 1; }
	cp python/ctx/*.py python/ctx/*.pyi python/ctx/py.typed $(B)/py-posix/ctx/
	@touch $@

test-python: python-ext $(B)/py-posix/ctx/.built
	@set -e; for m in $(PY_MINORS); do \
	  echo "== pytest on CPython $$m"; \
	  PYTHONPATH=python timeout 900 $(B)/venv-$$m/bin/python -m pytest tests/python $(PYTEST_ARGS); \
	done
	@echo "== pytest on CPython $(PY_MAIN), portable build (CTX_FORCE_POSIX=1)"
	PYTHONPATH=$(B)/py-posix CTX_EXPECT_WAKE=posix-signal timeout 900 $(call venv_py,$(PY_MAIN)) \
	  -m pytest tests/python $(PYTEST_ARGS) --deselect tests/python/test_install.py
test-python: test-python-typing

# the typed example under --strict, and the stubs against the runtime (PEP 800
# disjoint bases are left out: type checkers users have may not know them)
test-python-typing: python-ext
	cd tests/python && MYPYPATH=../../python timeout 300 ../../$(call venv_py,$(PY_MAIN)) \
	  -m mypy --strict --no-incremental typed_example.py
	PYTHONPATH=python timeout 300 $(call venv_py,$(PY_MAIN)) -m mypy.stubtest ctx \
	  --ignore-disjoint-bases --allowlist tests/python/stubtest-allowlist.txt

# the peers are benchmark-only dependencies: installed here, not by deps.sh
bench-python: python-ext
	@set -e; for m in $(PY_MINORS); do \
	  echo "== bench on CPython $$m"; \
	  timeout 300 $(B)/venv-$$m/bin/python -m pip install -q trio anyio stopit 2>&1 | grep -v -i warning || true; \
	  PYTHONPATH=python timeout 1200 $(B)/venv-$$m/bin/python bench/python/bench.py; \
	done

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
