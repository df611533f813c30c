-- shapes.lua — the five code shapes of BENCH.md, each timed under plain pcall
-- and under ctx.run (context live), interleaved; medians and their ratio.
local S = {}

local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end

local Acc = {}
Acc.__index = Acc
function Acc:add(x) self.n = self.n + x return self end
function Acc:get() return self.n end

-- each shape does about the same work per call at its default size
S.shapes = {
  { "tight arithmetic loop", function(n)
      local s = 0
      for i = 1, n * 40 do s = s + i % 7 end
      return s
    end },
  { "recursive calls (fib)", function(n)
      local s = 0
      for _ = 1, n // 250 do s = s + fib(16) end
      return s
    end },
  { "method calls on a table", function(n)
      local a = setmetatable({ n = 0 }, Acc)
      for i = 1, n * 4 do a:add(i % 3) end
      return a:get()
    end },
  { "string-library calls", function(n)
      local s, fmt, byte, sub = 0, string.format, string.byte, string.sub
      for i = 1, n do
        local t = fmt("%d:%s", i, "x")
        s = s + byte(t, 1) + #sub(t, 2, 3) + #t:upper()
      end
      return s
    end },
  { "coroutine resume/yield", function(n)
      local co = coroutine.create(function(x)
        while true do x = coroutine.yield(x + 1) end
      end)
      local resume, s = coroutine.resume, 0
      for i = 1, n * 2 do
        local _, v = resume(co, i)
        s = s + v
      end
      return s
    end },
}

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c[(#c + 1) // 2]
end
S.median = median

-- times pcall(f, n) and ctx.run(c, f, n) `reps` times each, alternating which
-- goes first; returns the medians (seconds) and the median of per-pair ratios
function S.measure(ctx, c, f, n, reps)
  local clock = os.clock
  local plain, under, ratio = {}, {}, {}
  assert(pcall(f, n // 10))
  assert(ctx.run(c, f, n // 10))
  for r = 1, reps do
    local a, b
    if r % 2 == 1 then
      local t0 = clock(); assert(pcall(f, n)); a = clock() - t0
      t0 = clock(); assert(ctx.run(c, f, n)); b = clock() - t0
    else
      local t0 = clock(); assert(ctx.run(c, f, n)); b = clock() - t0
      t0 = clock(); assert(pcall(f, n)); a = clock() - t0
    end
    plain[r], under[r], ratio[r] = a, b, b / a
  end
  return median(plain), median(under), median(ratio)
end

-- allocation-heavy workloads for `shapes.lua alloc plain|ctx`: ms of each
S.alloc = {
  { "coroutine-create", function(n)
      local s = 0
      for i = 1, n do
        local co = coroutine.wrap(function(x) return x + 1 end)
        s = s + co(i)
      end
      return s
    end, 100000 },
  { "tables-and-closures", function(n)
      local s = 0
      for i = 1, n do
        local t = { i, i + 1, f = function() return i end }
        s = s + t[1] + t.f()
      end
      return s
    end, 300000 },
}

if arg and arg[0] and arg[0]:match("shapes%.lua$") and arg[1] == "alloc" then
  if arg[2] == "ctx" then require "ctx" end
  for _, w in ipairs(S.alloc) do
    assert(pcall(w[2], w[3] // 10))
    collectgarbage()
    local t0 = os.clock()
    assert(pcall(w[2], w[3]))
    print(w[1] .. " " .. (os.clock() - t0) * 1e3)
  end
  return S
end

-- run as a script: prints the table (lua5.4 bench/lua/shapes.lua [n] [reps])
if arg and arg[0] and arg[0]:match("shapes%.lua$") then
  local ctx = require "ctx"
  local n, reps = tonumber(arg[1]) or 200000, tonumber(arg[2]) or 9
  local c = ctx.with_cancel(ctx.background())
  print(string.format("%-26s %10s %10s %7s", "shape", "pcall ms", "run ms", "ratio"))
  for _, s in ipairs(S.shapes) do
    local p, u, r = S.measure(ctx, c, s[2], n, reps)
    print(string.format("%-26s %10.1f %10.1f %7.3f", s[1], p * 1e3, u * 1e3, r))
  end
end

return S
