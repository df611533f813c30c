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
local function row(name, a, b, unit, target, ok)
  rows[#rows + 1] = { name, a, b, unit, target, ok }
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

-- ---- ctx.run ----
local function loop(n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

local function add(a, b) return a + b end
local function call_loop(n)
  local s = 0
  for i = 1, n do s = add(s, i % 7) end
  return s
end

if ctx.run then
  local N = 20000000
  local plain, under = {}, {}
  local c = ctx.with_cancel(ctx.background())
  for r = 1, REPS do
    local t0 = clock(); loop(N); plain[r] = clock() - t0
    t0 = clock(); assert(ctx.run(c, loop, N)); under[r] = clock() - t0
  end
  local p, u = median(plain), median(under)
  row("ctx.run tight loop (20M)", u * 1e3, p * 1e3, "ms", "slowdown <= 10%", u / p <= 1.10)
  -- not a target: what the call hook costs code that calls a lot
  for r = 1, REPS do
    local t0 = clock(); call_loop(N // 4); plain[r] = clock() - t0
    t0 = clock(); assert(ctx.run(c, call_loop, N // 4)); under[r] = clock() - t0
  end
  p, u = median(plain), median(under)
  row("ctx.run call loop (5M calls)", u * 1e3, p * 1e3, "ms", "(info)", true)

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

-- ---- the table ----
print(string.format("%-28s %12s %12s %8s  %-18s %s", "name", "ctx", "pure-Lua", "ratio", "target", "met"))
for _, r in ipairs(rows) do
  local ratio = r[3] and string.format("%.2f", r[2] / r[3]) or "-"
  print(string.format("%-28s %10.1f%-2s %12s %8s  %-18s %s", r[1], r[2], r[4] == "ms" and "ms" or "ns",
    r[3] and string.format(r[4] == "ms" and "%10.1fms" or "%10.1fns", r[3]) or "-", ratio, r[5],
    r[6] and "yes" or "NO"))
end
