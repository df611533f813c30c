# mk/lua.mk — the Lua 5.4 binding: build/lua/ctx/core.so (core and binding in
# one C module) under lua/ctx.lua; busted specs (also with the POSIX paths
# forced), C hosts (TSan, valgrind, blocked signals), the rock, the benchmark.

LUA ?= lua5.4
LUA_INC ?= /usr/include/lua5.4
LUA_SRC := $(wildcard bindings/lua/*.c)
LUA_HDR := $(wildcard bindings/lua/*.h) $(CORE_HDR)
LUA_LIBS := $(LDLIBS) -ldl
LUA_VERSION_STR := $(shell sed -n 's/^\#define CTX_VERSION_STRING "\(.*\)"/\1/p' core/ctx.h)
ROCKSPEC := goctx-$(LUA_VERSION_STR)-1.rockspec
# the binding is portable POSIX C like the core (the Linux fast path in
# lctx_exec.c asks for more itself); the module exports luaopen_ctx_core
# only, the core's ctx_ functions stay inside; Lua's headers are the
# system's, not ours to warn about
LUA_CORE_CFLAGS = $(filter-out -DCTX_BUILD_SHARED,$(CORE_CFLAGS))
LUA_CFLAGS = $(CORE_STD) $(WARN) $(CFLAGS) -fPIC -pthread -fvisibility=hidden \
  -Icore -Ibindings/lua -isystem $(LUA_INC)
LUA_ENV = LUA_CPATH="$(CURDIR)/$(B)/lua/$(1)?.so;;" \
  LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/tests/lua/?.lua;;" LCTX_HOSTS="$(CURDIR)/$(B)/lua"

TEST_TARGETS += test-lua
BENCH_TARGETS += bench-lua

# one build of core + binding per variant: its extra flags and its module
#   plain  as shipped
#   nosig  ctx.run without a signal: the count-hook fallback
#   posix  -DCTX_FORCE_POSIX: the portable paths (no SIGRTMIN, no pidfd...)
#   tsan   -fsanitize=thread, count-hook mode (TSan holds signals back from
#          uninstrumented Lua), linked into the host only
LUA_FLAGS_plain :=
LUA_FLAGS_nosig := -DLCTX_NO_SIGNAL
LUA_FLAGS_posix := -DCTX_FORCE_POSIX
LUA_FLAGS_tsan := -O1 -g -fsanitize=thread -DLCTX_NO_SIGNAL
lua_objs = $(CORE_SRC:core/%.c=$(B)/lua/obj/$(1)/core/%.o) \
  $(LUA_SRC:bindings/lua/%.c=$(B)/lua/obj/$(1)/lua/%.o)

define lua_variant
$(B)/lua/obj/$(1)/core/%.o: core/%.c $(CORE_HDR) $$(FLAGS_STAMP)
	@mkdir -p $$(@D)
	$$(CC) $$(LUA_CORE_CFLAGS) $$(LUA_FLAGS_$(1)) -c $$< -o $$@
$(B)/lua/obj/$(1)/lua/%.o: bindings/lua/%.c $$(LUA_HDR) $$(FLAGS_STAMP)
	@mkdir -p $$(@D)
	$$(CC) $$(LUA_CFLAGS) $$(LUA_FLAGS_$(1)) -c $$< -o $$@
endef
$(foreach v,plain nosig posix tsan,$(eval $(call lua_variant,$(v))))
.SECONDARY: $(foreach v,plain nosig posix tsan,$(call lua_objs,$(v)))

$(B)/lua/ctx/core.so: $(call lua_objs,plain)
	@mkdir -p $(@D)
	$(CC) -shared $^ -o $@ $(LUA_LIBS)
$(B)/lua/%/ctx/core.so: $(call lua_objs,nosig) $(call lua_objs,posix)
	@mkdir -p $(@D)
	$(CC) -shared $(call lua_objs,$*) -o $@ $(LUA_LIBS)

# C hosts: 4 lua_States on 4 threads (plain and under TSan), lua_close with
# deadlines pending, a wrapper that runs a command with every signal blocked
$(B)/lua/host: tests/lua/host/host.c $(call lua_objs,plain)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -isystem $(LUA_INC) $^ -o $@ -llua5.4 $(LUA_LIBS)
$(B)/lua/host-tsan: tests/lua/host/host.c $(call lua_objs,tsan)
	$(CC) $(TOOL_CFLAGS) $(LUA_FLAGS_tsan) -isystem $(LUA_INC) $^ -o $@ -llua5.4 $(LUA_LIBS)
$(B)/lua/closer: tests/lua/host/closer.c
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -isystem $(LUA_INC) $< -o $@ -llua5.4 $(LDLIBS)
# -rdynamic: the host exports its own ctx_now; the module must not bind to it
$(B)/lua/interpose: tests/lua/host/interpose.c
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -rdynamic -isystem $(LUA_INC) $< -o $@ -llua5.4 $(LDLIBS) -ldl
$(B)/lua/sigblock: tests/lua/host/sigblock.c
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) $< -o $@

.PHONY: lua test-lua test-lua-specs test-lua-hosts test-lua-rock test-lua-stress bench-lua rock rock-install
lua: $(B)/lua/ctx/core.so

LUA_BUILT := $(B)/lua/ctx/core.so $(B)/lua/nosig/ctx/core.so $(B)/lua/posix/ctx/core.so \
  $(B)/lua/host $(B)/lua/host-tsan $(B)/lua/closer $(B)/lua/sigblock $(B)/lua/interpose

test-lua: test-lua-specs test-lua-hosts test-lua-rock

# every spec as built, again with the POSIX paths forced, and the ctx.run
# specs in the count-hook mode
test-lua-specs: $(LUA_BUILT)
	$(call LUA_ENV,) timeout 300 busted --lua=$(LUA) tests/lua
	$(call LUA_ENV,posix/) timeout 300 busted --lua=$(LUA) tests/lua
	$(call LUA_ENV,nosig/) timeout 200 busted --lua=$(LUA) \
	  tests/lua/run_spec.lua tests/lua/stop_spec.lua tests/lua/after_func_spec.lua \
	  tests/lua/execute_spec.lua

test-lua-hosts: $(LUA_BUILT)
	@echo "exports of ctx/core.so: luaopen_ctx_core only"
	@nm -D --defined-only $(B)/lua/ctx/core.so | awk '$$2 ~ /^[TDBRVW]$$/ { print $$3 }' \
	  | grep -vx 'luaopen_ctx_core' | { ! grep . ; }
	$(call LUA_ENV,) timeout 120 $(B)/lua/host tests/lua/host/hammer.lua
	$(call LUA_ENV,) LCTX_HOST_BLOCK=1 timeout 120 $(B)/lua/host tests/lua/host/blocked.lua
	$(call LUA_ENV,) timeout 20 $(B)/lua/closer
	$(call LUA_ENV,) timeout 20 $(B)/lua/interpose tests/lua/host/interpose.lua
	@if command -v valgrind >/dev/null; then \
	  echo "valgrind: tests/lua/host/leaks.lua, tests/lua/host/stops.lua"; \
	  $(call LUA_ENV,) timeout 300 valgrind -q --error-exitcode=9 --leak-check=full \
	    --errors-for-leak-kinds=definite $(B)/lua/host tests/lua/host/leaks.lua && \
	  $(call LUA_ENV,) timeout 300 valgrind -q --error-exitcode=9 \
	    --log-file=$(B)/lua/valgrind-stops.log $(LUA) tests/lua/host/stops.lua \
	    || { cat $(B)/lua/valgrind-stops.log; exit 1; }; fi
	$(call LUA_ENV,) TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=50" timeout 300 \
	  $(CT_RUN_tsan) $(B)/lua/host-tsan tests/lua/host/hammer.lua
	$(call LUA_ENV,) LCTX_HOST_ROUNDS=100 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=50" \
	  timeout 300 $(CT_RUN_tsan) $(B)/lua/host-tsan tests/lua/host/storm.lua

# the lifetime stress the issue asks for, longer than CI's budget: the TSan
# hammer and the close storm, each clean LUA_STRESS times in a row
LUA_STRESS ?= 50
test-lua-stress: $(B)/lua/host-tsan
	@for i in $$(seq 1 $(LUA_STRESS)); do \
	  $(call LUA_ENV,) TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=50" timeout 300 \
	    $(CT_RUN_tsan) $(B)/lua/host-tsan tests/lua/host/hammer.lua > $(B)/lua/stress.log 2>&1 \
	    || { cat $(B)/lua/stress.log; echo "hammer failed at run $$i"; exit 1; }; \
	  $(call LUA_ENV,) LCTX_HOST_ROUNDS=100 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=50" \
	    timeout 300 $(CT_RUN_tsan) $(B)/lua/host-tsan tests/lua/host/storm.lua > $(B)/lua/stress.log 2>&1 \
	    || { cat $(B)/lua/stress.log; echo "storm failed at run $$i"; exit 1; }; \
	  echo "run $$i: hammer and storm clean"; done

# the rock as a user gets it: `luarocks pack` of a source archive made from
# this checkout, installed into a fresh tree, then used from there
ROCK_DIR := $(B)/rock
test-lua-rock:
	@rm -rf $(ROCK_DIR) && mkdir -p $(ROCK_DIR)/goctx-$(LUA_VERSION_STR)
	@tar -c --exclude=./build --exclude=./.git --exclude='*.o' --exclude='*.so' . \
	  | tar -x -C $(ROCK_DIR)/goctx-$(LUA_VERSION_STR)
	@tar -czf $(ROCK_DIR)/goctx-$(LUA_VERSION_STR).tar.gz -C $(ROCK_DIR) goctx-$(LUA_VERSION_STR)
	@rm -rf $(ROCK_DIR)/goctx-$(LUA_VERSION_STR)
	@sed -e 's|^  url = .*|  url = "file://$(CURDIR)/$(ROCK_DIR)/goctx-$(LUA_VERSION_STR).tar.gz",|' \
	  -e 's|^  tag = .*|  dir = "goctx-$(LUA_VERSION_STR)",|' $(ROCKSPEC) > $(ROCK_DIR)/$(ROCKSPEC)
	luarocks lint $(ROCKSPEC)
	cd $(ROCK_DIR) && luarocks --lua-version=5.4 pack $(ROCKSPEC) > pack.log 2>&1 \
	  || { cat pack.log; exit 1; }
	luarocks --lua-version=5.4 --tree $(ROCK_DIR)/tree install \
	  $(ROCK_DIR)/goctx-$(LUA_VERSION_STR)-1.src.rock > $(ROCK_DIR)/install.log 2>&1 \
	  || { cat $(ROCK_DIR)/install.log; exit 1; }
	cd /tmp && eval "$$(luarocks --lua-version=5.4 --tree $(CURDIR)/$(ROCK_DIR)/tree path)" && \
	  timeout 20 $(LUA) $(CURDIR)/tests/lua/rock_check.lua $(LUA_VERSION_STR)

# luarocks (build.type "make") builds and installs through these two, passing
# LUA_INCDIR, LUADIR and LIBDIR (warnings are not errors outside make test)
rock:
	$(MAKE) --no-print-directory $(B)/lua/ctx/core.so LUA_INC="$(LUA_INCDIR)"
rock-install:
	install -d "$(LIBDIR)/ctx" "$(LUADIR)/ctx"
	install -m 755 $(B)/lua/ctx/core.so "$(LIBDIR)/ctx/core.so"
	install -m 644 lua/ctx.lua "$(LUADIR)/ctx.lua"
	install -m 644 lua/ctx/meta.lua "$(LUADIR)/ctx/meta.lua"

bench-lua: $(B)/lua/ctx/core.so $(B)/lua/sigblock
	$(call LUA_ENV,) timeout 900 $(LUA) bench/lua/bench.lua
