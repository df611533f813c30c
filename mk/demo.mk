# mk/demo.mk — `make demo`: the C core demo, then the same scripted workflow in
# Python and in Lua (each binding is built by its own fragment).

DEMO_TARGETS += demo-c demo-python demo-lua

$(B)/examples/demo: examples/c/demo.c $(B)/libctx.a
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -pthread -Icore $< $(B)/libctx.a $(LDLIBS) -o $@

.PHONY: demo-c demo-python demo-lua
demo-c: $(B)/examples/demo
	@$(B)/examples/demo

demo-python: python-ext
	@PYTHONPATH=$(CURDIR)/python timeout 60 $(PY) examples/python/workflow.py

demo-lua: $(B)/lua/ctx/core.so
	@$(LUA_ENV) timeout 60 $(LUA) examples/lua/workflow.lua
