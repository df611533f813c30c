# ctx — Go's context for C, Python and Lua 5.4.
# `make demo` and `make test` install what is missing, then build and run.
# Each area adds its targets in mk/<area>.mk (test-<area>, bench-<area>).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CC ?= cc
CFLAGS ?= -O2 -g
# warnings are errors in the project's own builds (make test, bench, demo,
# which pass WERROR=-Werror), never in a user's `make` or `make install`
WERROR ?=
WARN := -Wall -Wextra $(WERROR)
# the core is plain C11 + POSIX 2008; only its Linux files ask for more, and
# exports nothing but the ctx_ API
CORE_STD := -std=c11 -D_POSIX_C_SOURCE=200809L -pedantic
CORE_CFLAGS := $(CORE_STD) $(WARN) $(CFLAGS) -fPIC -pthread -fvisibility=hidden \
  -DCTX_BUILD_SHARED -Icore
# tests, benchmarks and examples may use GNU C
TOOL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN)
LDLIBS := -pthread -lm
B := build
# the version is written once, in core/ctx.h
VERSION := $(shell sed -n 's/^\#define CTX_VERSION_STRING "\(.*\)"/\1/p' core/ctx.h)

CORE_SRC := $(wildcard core/*.c)
CORE_HDR := $(wildcard core/*.h)
CORE_OBJ := $(CORE_SRC:core/%.c=$(B)/core/%.o)

# objects are rebuilt when the flags change (a user's `make`, then `make test`)
FLAGS_STAMP := $(B)/.flags-$(shell echo '$(CORE_CFLAGS) $(CC)' | cksum | cut -d' ' -f1)
$(FLAGS_STAMP):
	@mkdir -p $(B) && rm -f $(B)/.flags-* && touch $@

.PHONY: all deps deps-demo test bench demo fuzz install uninstall clean
all: $(B)/libctx.a $(B)/libctx.so

$(B)/core/%.o: core/%.c $(CORE_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(B)/libctx.a: $(CORE_OBJ)
	ar rcs $@ $^

# the core with every Linux fast path off (-DCTX_FORCE_POSIX): what macOS and
# the BSDs get, built and tested here so that CI proves it
POSIX_OBJ := $(CORE_SRC:core/%.c=$(B)/posix/%.o)
$(B)/posix/%.o: core/%.c $(CORE_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -DCTX_FORCE_POSIX -c $< -o $@

$(B)/posix/libctx.a: $(POSIX_OBJ)
	ar rcs $@ $^

$(B)/libctx.so: $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libctx.so.0 -o $@ $^ $(LDLIBS)

deps:
	@PY=$(PY) bash .ci/deps.sh test
deps-demo:
	@PY=$(PY) bash .ci/deps.sh demo

# mk/<area>.mk appends its targets to these lists (recipes expand them late)
TEST_TARGETS :=
TEST_TARGETS_LAST :=
BENCH_TARGETS :=
DEMO_TARGETS :=

# every area's tests, one after the other; the first failure stops the run
test: deps
	@set -e; for t in $(TEST_TARGETS) $(TEST_TARGETS_LAST); do \
	  echo "== $$t"; $(MAKE) --no-print-directory WERROR=-Werror $$t; done; \
	echo "== all test suites passed: $(TEST_TARGETS) $(TEST_TARGETS_LAST)"

bench: deps
	@set -e; for t in $(BENCH_TARGETS); do \
	  echo "== $$t"; $(MAKE) --no-print-directory WERROR=-Werror $$t; done

demo: deps-demo
	@set -e; for t in $(DEMO_TARGETS); do $(MAKE) --no-print-directory WERROR=-Werror $$t; done

fuzz: deps

# DESTDIR for staged installs; PREFIX, LIBDIR and INCLUDEDIR as usual
install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 core/ctx.h $(DESTDIR)$(INCLUDEDIR)/ctx.h
	install -m 644 $(B)/libctx.a $(DESTDIR)$(LIBDIR)/libctx.a
	install -m 755 $(B)/libctx.so $(DESTDIR)$(LIBDIR)/libctx.so.$(VERSION)
	ln -sf libctx.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libctx.so.0
	ln -sf libctx.so.0 $(DESTDIR)$(LIBDIR)/libctx.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' ctx.pc.in \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/ctx.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/ctx.h $(DESTDIR)$(LIBDIR)/libctx.a \
	  $(DESTDIR)$(LIBDIR)/libctx.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libctx.so.0 \
	  $(DESTDIR)$(LIBDIR)/libctx.so $(DESTDIR)$(LIBDIR)/pkgconfig/ctx.pc

# everything a build put in the tree: build/, the in-place extension, what
# luarocks and the tools leave behind
clean:
	rm -rf $(B) bench/results.json site python/ctx/_ctx*.so python/*.egg-info \
	  ctx.so *.o .pytest_cache .hypothesis .mypy_cache dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

-include mk/*.mk
