# mk/c.mk — the C core's tests: the suite plainly, under ASan+UBSan, TSan and
# valgrind, plus a bounded libFuzzer run; `make fuzz` fuzzes longer.

CT_SRC := $(wildcard tests/c/*.c)
CT_HDR := $(wildcard tests/c/*.h)
CT := $(B)/tests/c
# loop sizes per mode: sanitizers and valgrind are 3x-50x slower
CT_SCALE_plain := 1
CT_SCALE_asan := 0.5
CT_SCALE_tsan := 0.2
CT_SCALE_valgrind := 0.05
CT_FLAGS_plain := -O2
CT_FLAGS_asan := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CT_FLAGS_tsan := -O1 -fsanitize=thread
CT_FLAGS_valgrind := -O1
# TSan cannot map its shadow under high ASLR entropy (vm.mmap_rnd_bits=32 on
# newer kernels): run it with address randomization off
CT_RUN_tsan := $(shell command -v setarch >/dev/null && echo setarch $$(uname -m) -R)
FUZZ_SECONDS ?= 60

.PHONY: test-c test-c-plain test-c-asan test-c-tsan test-c-valgrind test-c-fuzz fuzz-run
TEST_TARGETS += test-c

# the last line sums the modes' "N passed, M failed" lines (the fuzz run counts one)
test-c: test-c-plain test-c-asan test-c-tsan test-c-valgrind test-c-fuzz
	@awk '/^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
	  END { print "C core, all modes:"; print p + 1 " passed, " f " failed" }' \
	  $(CT)/plain.log $(CT)/asan.log $(CT)/tsan.log $(CT)/valgrind.log

# the suite is compiled with the core sources in each mode's flags
# (libctx.so too: one test dlopen()s and unloads it, named by CTX_TEST_SO)
$(CT)/%/run_tests: $(CT_SRC) $(CT_HDR) $(CORE_SRC) $(CORE_HDR) $(B)/libctx.so
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) -DCTX_DEBUG -g $(CT_FLAGS_$*) -pthread -Icore -Itests/c -o $@ $(CT_SRC) $(CORE_SRC) $(LDLIBS)

# output goes to the terminal and to a log (dash has no pipefail: no tee)
test-c-plain test-c-asan test-c-tsan: test-c-%: $(CT)/%/run_tests
	@echo "C suite, $* mode"
	@CTX_TEST_SCALE=$(CT_SCALE_$*) CTX_TEST_SO=$(B)/libctx.so ASAN_OPTIONS=detect_leaks=1 \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 die_after_fork=0" \
	  timeout 300 $(CT_RUN_$*) $< > $(CT)/$*.log 2>&1; rc=$$?; cat $(CT)/$*.log; exit $$rc

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
