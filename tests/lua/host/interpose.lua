-- interpose.lua — run by interpose.c, whose own ctx_now is stuck at 0: the
-- module's waits must still end on time (its core binds to itself only).
local ctx = require "ctx"
local t0 = os.time()
local c = ctx.with_timeout(ctx.background(), 0.05)
assert(c:wait(1) == true, "c:wait(1) did not see the deadline")
assert(c:err() == ctx.deadline_exceeded)
assert(ctx.sleep(ctx.background(), 0.05) == true)
assert(c:remaining() == 0)
assert(os.time() - t0 < 5, "waits took too long")
print("interpose: the module's core is its own")
