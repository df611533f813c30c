-- bench.lua — the Lua benchmark of BENCH.md: ctx against a pure-Lua context on
-- the same operations, ctx.run's slowdown and interrupt latency, execute's kill.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local ctx = require "ctx"
local P = require "purectx"

local REPS = tonumber(os.getenv("BENCH_REPS")) or 7
local clock = os.clock

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- ns per op of f(n), median of REPS runs
local function measure(f, n)
  local runs = {}
  f(n // 10)  -- warm up
  for r = 1, REPS do
    collectgarbage()
    local t0 = clock()
    f(n)
    runs[r] = (clock() - t0) / n * 1e9
  end
  return median(runs)
end

local rows = {}
local function row(name, a, b, unit, target, ok, ratio)
  rows[#rows + 1] = { name, a, b, unit, target, ok, ratio }
end

-- ---- the three operations, side by side ----
local function with_timeout_cancel(M)
  local bg = M.background()
  return function(n)
    for _ = 1, n do
      local _, cancel = M.with_timeout(bg, 3600)
      cancel()
    end
  end
end

local function done_check(M)
  local c = M.with_timeout(M.background(), 3600)
  return function(n)
    local x
    for _ = 1, n do x = c:done() end
    return x
  end
end

local function value_depth10(M)
  local c = M.with_value(M.background(), "k", "v")
  for i = 2, 10 do c = M.with_value(c, "k" .. i, i) end
  c = M.with_cancel(c)
  return function(n)
    local x
    for _ = 1, n do x = c:value("k") end
    assert(x == "v")
  end
end

for _, op in ipairs {
  { "with_timeout+cancel", with_timeout_cancel, 200000 },
  { "c:done()", done_check, 2000000 },
  { "c:value() depth 10", value_depth10, 1000000 },
} do
  local a = measure(op[2](ctx), op[3])
  local b = measure(op[2](P), op[3])
  row(op[1], a, b, "ns/op", "ctx/lua <= 1.0", a / b <= 1.0)
end

-- ---- ctx.run: the five shapes, side by side with pcall ----
-- (the ratio is the median of the per-pair ratios of interleaved runs)
local S = require "shapes"
if ctx.run then
  local c = ctx.with_cancel(ctx.background())
  local N = tonumber(os.getenv("BENCH_SHAPE_N")) or 200000
  for _, s in ipairs(S.shapes) do
    local p, u, r = S.measure(ctx, c, s[2], N, REPS)
    row("ctx.run " .. s[1], u * 1e3, p * 1e3, "ms", "slowdown <= 10%", r <= 1.10, r)
  end
  local lat = {}
  for i = 1, 60 do
    local t = ctx.with_timeout(ctx.background(), 0.005 + (i % 5) * 0.001)
    local ok = ctx.run(t, function() while true do end end)
    assert(ok == false)
    lat[i] = (ctx.now() - t:deadline()) * 1e3
  end
  table.sort(lat)
  local p50, p99 = lat[#lat // 2], lat[math.ceil(#lat * 0.99)]
  row("ctx.run interrupt p50", p50, nil, "ms", "", true)
  row("ctx.run interrupt p99", p99, nil, "ms", "p99 <= 10 ms", p99 <= 10)
end

if ctx.execute then
  local lat = {}
  for i = 1, 5 do
    local t = ctx.with_timeout(ctx.background(), 0.05)
    local ok, err = ctx.execute(t, "sleep 30")
    assert(ok == nil and err == ctx.deadline_exceeded)
    lat[i] = (ctx.now() - t:deadline()) * 1e3
  end
  row("ctx.execute kill (SIGTERM)", median(lat), nil, "ms", "", true)
end

-- ---- for information ----
-- what tracking threads through the allocator costs code that allocates: the
-- wrapper is in place only while runs are active, so under ctx.run against
-- pcall (interleaved), and outside runs in a lua5.4 that loaded ctx against
-- one that did not (alternate processes)
local here = debug.getinfo(1, "S").source:match("^@(.*/)")
local alloc_rows = {}
if ctx.run then
  local c = ctx.with_cancel(ctx.background())
  for _, w in ipairs(S.alloc) do
    local p, u, r = S.measure(ctx, c, w[2], w[3], REPS)
    alloc_rows[#alloc_rows + 1] = { w[1] .. " (run/pcall)", u * 1e3, p * 1e3, r }
  end
end
do
  local times = { plain = {}, ctx = {} }
  for r = 1, REPS do
    for _, which in ipairs(r % 2 == 1 and { "plain", "ctx" } or { "ctx", "plain" }) do
      local p = io.popen(string.format("lua5.4 %sshapes.lua alloc %s", here, which))
      local out = p:read("a")
      p:close()
      for name, ms in out:gmatch("(%S+) (%S+)\n") do
        times[which][name] = times[which][name] or {}
        table.insert(times[which][name], tonumber(ms))
      end
    end
  end
  for _, w in ipairs(S.alloc) do
    local a, b = median(times.ctx[w[1]]), median(times.plain[w[1]])
    alloc_rows[#alloc_rows + 1] = { w[1] .. " (loaded/not)", a, b, a / b }
  end
end

-- ---- the table ----
-- what the count-hook fallback costs (ctx.run where no signal can reach the
-- thread, here forced by blocking every signal): for information
local hosts = os.getenv("LCTX_HOSTS")
local fallback
if hosts and io.open(hosts .. "/sigblock") then
  local p = io.popen(string.format("%s/sigblock lua5.4 %sshapes.lua %d %d 2>&1", hosts, here,
    tonumber(os.getenv("BENCH_SHAPE_N")) or 200000, REPS))
  fallback = p:read("a")
  p:close()
end

print(string.format("%-34s %12s %12s %8s  %-18s %s", "name", "ctx", "peer", "ratio", "target", "met"))
print("(peer: pure-Lua context for the operations, plain pcall for the ctx.run shapes)")
for _, r in ipairs(rows) do
  local ratio = r[3] and string.format("%.2f", r[7] or r[2] / r[3]) or "-"
  print(string.format("%-34s %10.1f%-2s %12s %8s  %-18s %s", r[1], r[2], r[4] == "ms" and "ms" or "ns",
    r[3] and string.format(r[4] == "ms" and "%10.1fms" or "%10.1fns", r[3]) or "-", ratio, r[5],
    r[6] and "yes" or "NO"))
end
print("\nallocation-heavy code (the allocator wrapper that tracks threads while runs are")
print("active), for information: under ctx.run vs pcall; outside runs, ctx loaded vs not")
for _, r in ipairs(alloc_rows) do
  print(string.format("  %-40s %8.1f ms %8.1f ms %7.3f", r[1], r[2], r[3], r[4]))
end
if fallback then
  print("\nctx.run in its count-hook fallback (every signal blocked), for information:")
  io.write(fallback)
end
