# mk/bench_c.mk — `make bench` part for the C core: the BENCH.md workloads in
# C and in Go (Go's own context), median table and bench/results.json.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BENCH_C := $(B)/bench/bench_c
BENCH_GO := $(B)/bench/go_bench

.PHONY: bench-c
BENCH_TARGETS += bench-c

BENCH_POSIX := $(B)/bench/bench_posix

$(BENCH_C): bench/c/bench.c core/ctx.h $(B)/libctx.a
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) -O2 -g -pthread -Icore -o $@ $< $(B)/libctx.a $(LDLIBS)

# the same workloads on the core built with its portable fallbacks only
$(BENCH_POSIX): bench/c/bench.c core/ctx.h $(B)/posix/libctx.a
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) -O2 -g -pthread -Icore -o $@ $< $(B)/posix/libctx.a $(LDLIBS)

# a standalone module without dependencies: builds offline
$(BENCH_GO): bench/go/main.go bench/go/go.mod
	@mkdir -p $(@D)
	cd bench/go && HOME=$${HOME:-$(abspath $(B))} GOFLAGS=-mod=mod GOTOOLCHAIN=local \
	  $(GO) build -o $(abspath $@) .

bench-c: $(BENCH_C) $(BENCH_GO) $(BENCH_POSIX)
	REPS=$${REPS:-5} timeout 1500 bench/run_c.sh $(BENCH_C) $(BENCH_GO) bench/results.json $(BENCH_POSIX)
