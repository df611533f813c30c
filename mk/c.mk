# mk/c.mk — the C core's tests: the suite plainly, under ASan+UBSan, TSan and
# valgrind, again plainly and under TSan with the POSIX fallbacks forced, a
# bounded libFuzzer run, and the exported symbols; `make fuzz` fuzzes longer.

CT_SRC := $(wildcard tests/c/*.c)
CT_HDR := $(wildcard tests/c/*.h)
CT := $(B)/tests/c
# loop sizes per mode: sanitizers and valgrind are 3x-50x slower
CT_SCALE_plain := 1
CT_SCALE_asan := 0.5
CT_SCALE_tsan := 0.2
CT_SCALE_valgrind := 0.05
CT_SCALE_posix := 1
CT_SCALE_posix-tsan := 0.2
CT_FLAGS_plain := -O2
CT_FLAGS_posix := -O2 -DCTX_FORCE_POSIX
CT_FLAGS_posix-tsan := -O1 -fsanitize=thread -DCTX_FORCE_POSIX
CT_FLAGS_asan := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CT_FLAGS_tsan := -O1 -fsanitize=thread
CT_FLAGS_valgrind := -O1
# TSan cannot map its shadow under high ASLR entropy (vm.mmap_rnd_bits=32 on
# newer kernels): run it with address randomization off
CT_RUN_tsan := $(shell command -v setarch >/dev/null && echo setarch $$(uname -m) -R)
CT_RUN_posix-tsan := $(CT_RUN_tsan)
FUZZ_SECONDS ?= 60

.PHONY: test-c test-c-plain test-c-asan test-c-tsan test-c-valgrind test-c-fuzz fuzz-run \
  test-c-posix test-c-posix-tsan test-c-symbols test-c-install
TEST_TARGETS += test-c
CT_MODES := plain asan tsan valgrind posix posix-tsan

# the last line sums the modes' "N passed, M failed" lines (the fuzz run and
# the symbol check count one each)
test-c: $(CT_MODES:%=test-c-%) test-c-fuzz test-c-symbols test-c-install
	@awk '/^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
	  END { print "C core, all modes:"; print p + 3 " passed, " f " failed" }' \
	  $(CT_MODES:%=$(CT)/%.log)

# libctx.so exports the ctx_ API and nothing else
test-c-symbols: $(B)/libctx.so
	@bad=$$(nm -D --defined-only $< | awk '{print $$3}' | grep -v '^ctx_' || true); \
	  if [ -n "$$bad" ]; then echo "libctx.so exports more than ctx_*: $$bad"; exit 1; fi; \
	  echo "libctx.so exports $$(nm -D --defined-only $< | wc -l) symbols, all ctx_*" 

# a staged install (DESTDIR, PREFIX, LIBDIR, INCLUDEDIR) that a program finds
# through pkg-config, then an uninstall that leaves nothing; and a user's
# plain `make` never turns warnings into errors
test-c-install:
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	  $(MAKE) -s --no-print-directory install DESTDIR=$$d PREFIX=/opt/ctx LIBDIR=/opt/ctx/lib64 \
	    INCLUDEDIR=/opt/ctx/inc >/dev/null && \
	  test -f $$d/opt/ctx/inc/ctx.h && test -L $$d/opt/ctx/lib64/libctx.so && \
	  PKG_CONFIG_SYSROOT_DIR=$$d PKG_CONFIG_PATH=$$d/opt/ctx/lib64/pkgconfig \
	    $(CC) -o $$d/demo examples/c/demo.c $$(PKG_CONFIG_SYSROOT_DIR=$$d \
	    PKG_CONFIG_PATH=$$d/opt/ctx/lib64/pkgconfig pkg-config --cflags ctx) \
	    $$d/opt/ctx/lib64/libctx.a -pthread -lm && $$d/demo >/dev/null && \
	  $(MAKE) -s --no-print-directory uninstall DESTDIR=$$d PREFIX=/opt/ctx LIBDIR=/opt/ctx/lib64 \
	    INCLUDEDIR=/opt/ctx/inc && \
	  test -z "$$(find $$d/opt -type f -o -type l)" && \
	  ! $(MAKE) -n --no-print-directory -B WERROR= $(B)/core/ctx_tree.o | grep -q -- -Werror && \
	  echo "install: DESTDIR/PREFIX/LIBDIR/INCLUDEDIR honoured, uninstall clean, no -Werror for users"

# the suite is compiled with the core sources in each mode's flags
# (libctx.so too: one test dlopen()s and unloads it, named by CTX_TEST_SO)
$(CT)/%/run_tests: $(CT_SRC) $(CT_HDR) $(CORE_SRC) $(CORE_HDR) $(B)/libctx.so
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) -DCTX_DEBUG -g $(CT_FLAGS_$*) -pthread -Icore -Itests/c -o $@ $(CT_SRC) $(CORE_SRC) $(LDLIBS)

# output goes to the terminal and to a log (dash has no pipefail: no tee)
test-c-plain test-c-asan test-c-tsan test-c-posix test-c-posix-tsan: test-c-%: $(CT)/%/run_tests
	@echo "C suite, $* mode"
	@CTX_TEST_SCALE=$(CT_SCALE_$*) CTX_TEST_SO=$(B)/libctx.so ASAN_OPTIONS=detect_leaks=1 \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 die_after_fork=0 atexit_sleep_ms=50" \
	  timeout 900 $(CT_RUN_$*) $< > $(CT)/$*.log 2>&1; rc=$$?; \
	  grep -v "was not suspended. False leaks are possible" $(CT)/$*.log; exit $$rc

test-c-valgrind: $(CT)/valgrind/run_tests
	@echo "C suite under valgrind"
	@CTX_TEST_SCALE=$(CT_SCALE_valgrind) CTX_TEST_SO=$(B)/libctx.so timeout 600 valgrind -q --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --show-leak-kinds=definite,indirect --trace-children=no $< \
	  > $(CT)/valgrind.log 2>&1; rc=$$?; cat $(CT)/valgrind.log; exit $$rc

# libFuzzer (clang): a bounded run in `make test`, a long one in `make fuzz`
FUZZ_CC ?= clang
FUZZ_BIN := $(B)/fuzz/ctx_fuzz
FUZZ_LONG ?= 600
$(FUZZ_BIN): fuzz/ctx_fuzz.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(B)/fuzz/corpus
	$(FUZZ_CC) $(TOOL_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -Icore -o $@ \
	  fuzz/ctx_fuzz.c $(CORE_SRC) $(LDLIBS)

# the log is kept quiet unless the run fails; crash inputs land in build/fuzz
test-c-fuzz: $(FUZZ_BIN)
	@echo "fuzzing for $(FUZZ_SECONDS) s"
	@timeout $$(( $(FUZZ_SECONDS) + 120 )) $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) \
	  -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/corpus > $(B)/fuzz/log 2>&1 \
	  || { tail -40 $(B)/fuzz/log; exit 1; }
	@grep -E "^Done|DONE" $(B)/fuzz/log | tail -2

fuzz: fuzz-run
fuzz-run:
	$(MAKE) --no-print-directory test-c-fuzz FUZZ_SECONDS=$(FUZZ_LONG)
