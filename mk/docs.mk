# mk/docs.mk — the documentation site (MkDocs: docs/ -> build/site, warnings as
# errors) and the test that runs every code example of docs/ and README.md.

DOCS_VENV := $(B)/venv-docs
DOCS_REQ := tests/docs/requirements.txt
DOCS_STAMP := $(DOCS_VENV)/.installed
# C examples are linked against the core built with ASan+UBSan, so an example
# that leaks a reference or misuses memory fails like any other
DOCS_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
DOCS_ASAN_OBJ := $(CORE_SRC:core/%.c=$(B)/docs/asan/%.o)

.PHONY: docs test-docs test-docs-site test-docs-examples
# after every suite: the examples use all three languages
TEST_TARGETS_LAST += test-docs

# the tools live in a venv made with $(PY), the interpreter the extension is
# built for (the examples run with $(PY) itself)
$(DOCS_STAMP): $(DOCS_REQ)
	rm -rf $(DOCS_VENV) && $(PY) -m venv $(DOCS_VENV)
	timeout 600 $(DOCS_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	  -r $(DOCS_REQ)
	touch $@

$(B)/docs/asan/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CORE_STD) $(WARN) -O1 -g $(DOCS_SAN) -pthread -Icore -c $< -o $@

$(B)/docs/asan/libctx.a: $(DOCS_ASAN_OBJ)
	ar rcs $@ $^

# not --quiet: it hides the warnings from --strict too, which then passes
docs: $(DOCS_STAMP)
	@timeout 300 $(DOCS_VENV)/bin/mkdocs build --strict --site-dir $(CURDIR)/$(B)/site \
	  > $(B)/docs-build.log 2>&1 || { grep -v '^INFO' $(B)/docs-build.log; exit 1; }
	@echo "docs: $(B)/site/index.html, no warnings"

test-docs: test-docs-site test-docs-examples
test-docs-site: docs

test-docs-examples: $(DOCS_STAMP) python-ext lua $(B)/docs/asan/libctx.a
	DOCS_PYTHON=$(PY) DOCS_LUA=$(LUA) DOCS_LIBCTX=$(CURDIR)/$(B)/docs/asan/libctx.a \
	  DOCS_CFLAGS="$(DOCS_SAN)" ASAN_OPTIONS=detect_leaks=1 \
	  timeout 1200 $(DOCS_VENV)/bin/python -m pytest tests/docs -q -p no:cacheprovider -rfEs
