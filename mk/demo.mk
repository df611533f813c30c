# mk/demo.mk — `make demo`: the C core demo, then the scripted-workflow
# examples in each language whose binding is built by its own fragment.

DEMO_TARGETS += demo-c

$(B)/examples/demo: examples/c/demo.c $(B)/libctx.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -pthread -Icore $< $(B)/libctx.a $(LDLIBS) -o $@

.PHONY: demo-c
demo-c: $(B)/examples/demo
	@echo "== C core"
	@$(B)/examples/demo
