# ctx — Go's context for C, Python and Lua 5.4.
# `make demo` and `make test` install what is missing, then build and run.
# Each area adds its targets in mk/<area>.mk (test-<area>, bench-<area>).

PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
# the core is plain C11 + POSIX 2008; only its Linux files ask for more, and
# exports nothing but the ctx_ API
CORE_STD := -std=c11 -D_POSIX_C_SOURCE=200809L -pedantic
CORE_CFLAGS := $(CORE_STD) $(WARN) $(CFLAGS) -fPIC -pthread -fvisibility=hidden \
  -DCTX_BUILD_SHARED -Icore
# tests, benchmarks and examples may use GNU C
TOOL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN)
LDLIBS := -pthread -lm
B := build
VERSION := 0.1.0

CORE_SRC := $(wildcard core/*.c)
CORE_HDR := $(wildcard core/*.h)
CORE_OBJ := $(CORE_SRC:core/%.c=$(B)/core/%.o)

.PHONY: all deps test bench demo fuzz install clean
all: $(B)/libctx.a $(B)/libctx.so

$(B)/core/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(B)/libctx.a: $(CORE_OBJ)
	ar rcs $@ $^

$(B)/libctx.so: $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libctx.so.0 -o $@ $^ $(LDLIBS)

deps:
	@bash .ci/deps.sh

# mk/<area>.mk appends its targets to these lists (recipes expand them late)
TEST_TARGETS :=
BENCH_TARGETS :=
DEMO_TARGETS :=

# every area's tests, one after the other; the first failure stops the run
test: deps
	@set -e; for t in $(TEST_TARGETS); do \
	  echo "== $$t"; $(MAKE) --no-print-directory $$t; done; \
	echo "== all test suites passed: $(TEST_TARGETS)"

bench: deps
	@set -e; for t in $(BENCH_TARGETS); do \
	  echo "== $$t"; $(MAKE) --no-print-directory $$t; done

demo: deps
	@set -e; for t in $(DEMO_TARGETS); do $(MAKE) --no-print-directory $$t; done

fuzz: deps

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 core/ctx.h $(DESTDIR)$(PREFIX)/include/ctx.h
	install -m 644 $(B)/libctx.a $(DESTDIR)$(PREFIX)/lib/libctx.a
	install -m 755 $(B)/libctx.so $(DESTDIR)$(PREFIX)/lib/libctx.so.$(VERSION)
	ln -sf libctx.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libctx.so.0
	ln -sf libctx.so.0 $(DESTDIR)$(PREFIX)/lib/libctx.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ctx.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ctx.pc

clean:
	rm -rf $(B) bench/results.json

-include mk/*.mk
