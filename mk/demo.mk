# mk/demo.mk — `make demo`: the C core demo, then the same scripted workflow in
# Python and in Lua (each binding is built by its own fragment).

DEMO_TARGETS += demo-c demo-python demo-lua

$(B)/examples/demo: examples/c/demo.c $(B)/libctx.a
	@mkdir -p $(@D)
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -pthread -Icore $< $(B)/libctx.a $(LDLIBS) -o $@

.PHONY: demo-c demo-python demo-lua
demo-c: $(B)/examples/demo
	@$(B)/examples/demo

# the demo installs the package itself into a venv of its own, as a user would
# (`pip install .`): no test tools, nothing in the system Python
DEMO_VENV := $(B)/venv-demo
$(DEMO_VENV)/.installed: setup.py pyproject.toml $(wildcard core/*.[ch] bindings/python/*.[ch] python/ctx/*)
	@rm -rf $(DEMO_VENV) && $(PY) -m venv $(DEMO_VENV)
	@CTX_WERROR=1 timeout 600 $(DEMO_VENV)/bin/python -m pip install -q . > $(B)/venv-demo.log 2>&1 \
	  || { cat $(B)/venv-demo.log; exit 1; }
	@touch $@

demo-python: $(DEMO_VENV)/.installed
	@timeout 60 $(DEMO_VENV)/bin/python examples/python/workflow.py

demo-lua: $(B)/lua/ctx/core.so
	@$(LUA_ENV) timeout 60 $(LUA) examples/lua/workflow.lua
