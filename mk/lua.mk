# mk/lua.mk — the Lua 5.4 binding: build/lua/ctx.so (core and binding in one
# module), its busted specs, the multi-state host under TSan, the benchmark.

LUA ?= lua5.4
LUA_INC ?= /usr/include/lua5.4
LUA_SRC := $(wildcard bindings/lua/*.c)
LUA_HDR := $(wildcard bindings/lua/*.h) $(CORE_HDR)
LUA_CFLAGS := $(TOOL_CFLAGS) $(CFLAGS) -fPIC -pthread -Icore -Ibindings/lua -I$(LUA_INC)
LUA_LIBS := $(LDLIBS) -ldl
LUA_ENV := LUA_CPATH="$(CURDIR)/$(B)/lua/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/tests/lua/?.lua;;"

TEST_TARGETS += test-lua
BENCH_TARGETS += bench-lua

$(B)/lua/ctx.so: $(LUA_SRC) $(CORE_SRC) $(LUA_HDR)
	@mkdir -p $(@D)
	$(CC) $(LUA_CFLAGS) -shared $(LUA_SRC) $(CORE_SRC) -o $@ $(LUA_LIBS)

# the module with ctx.run in its fallback mode (count hook, no signal)
$(B)/lua/nosig/ctx.so: $(LUA_SRC) $(CORE_SRC) $(LUA_HDR)
	@mkdir -p $(@D)
	$(CC) $(LUA_CFLAGS) -DLCTX_NO_SIGNAL -shared $(LUA_SRC) $(CORE_SRC) -o $@ $(LUA_LIBS)

# 4 lua_States on 4 threads, core and binding built with -fsanitize=thread
# (ctx.run in its count-hook mode: TSan holds signals back from busy Lua)
$(B)/lua/host-tsan: tests/lua/host/host.c $(LUA_SRC) $(CORE_SRC) $(LUA_HDR)
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) -O1 -g -fsanitize=thread -DLCTX_NO_SIGNAL -pthread -Icore -Ibindings/lua \
	  -I$(LUA_INC) tests/lua/host/host.c $(LUA_SRC) $(CORE_SRC) -o $@ -llua5.4 $(LUA_LIBS)

# the same host as built for use, ctx.run stopping busy loops by signal
$(B)/lua/host: tests/lua/host/host.c $(LUA_SRC) $(CORE_SRC) $(LUA_HDR)
	@mkdir -p $(@D)
	$(CC) $(LUA_CFLAGS) tests/lua/host/host.c $(LUA_SRC) $(CORE_SRC) -o $@ -llua5.4 $(LUA_LIBS)

$(B)/lua/closer: tests/lua/host/closer.c
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -I$(LUA_INC) $< -o $@ -llua5.4 $(LDLIBS)

.PHONY: lua test-lua bench-lua
lua: $(B)/lua/ctx.so

test-lua: $(B)/lua/ctx.so $(B)/lua/nosig/ctx.so $(B)/lua/host-tsan $(B)/lua/host $(B)/lua/closer
	$(LUA_ENV) timeout 300 busted --lua=$(LUA) tests/lua
	LUA_CPATH="$(CURDIR)/$(B)/lua/nosig/?.so;;" timeout 120 busted --lua=$(LUA) \
	  tests/lua/run_spec.lua tests/lua/after_func_spec.lua tests/lua/execute_spec.lua
	timeout 120 $(B)/lua/host tests/lua/host/hammer.lua
	$(LUA_ENV) timeout 20 $(B)/lua/closer
	@if command -v valgrind >/dev/null; then \
	  echo "valgrind: tests/lua/host/leaks.lua"; \
	  timeout 300 valgrind -q --error-exitcode=9 --leak-check=full \
	    --errors-for-leak-kinds=definite $(B)/lua/host tests/lua/host/leaks.lua; fi
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" timeout 300 \
	  $(B)/lua/host-tsan tests/lua/host/hammer.lua

bench-lua: $(B)/lua/ctx.so
	$(LUA_ENV) timeout 600 $(LUA) bench/lua/bench.lua
