-- purectx.lua — the benchmark's peer: a context hand-rolled in pure Lua with
-- tables and clock polling, as a user would write it without ctx.
local P = {}
local Ctx = {}
Ctx.__index = Ctx
-- os.clock is the only sub-second clock of stock Lua; PURECTX_CLOCK=time
-- gives the peer os.time instead (much cheaper, whole seconds only)
local clock = os.getenv("PURECTX_CLOCK") == "time" and os.time or os.clock
local setmetatable, next = setmetatable, next

P.canceled = setmetatable({}, { __tostring = function() return "context canceled" end })
P.deadline_exceeded = setmetatable({}, { __tostring = function() return "context deadline exceeded" end })

local background = setmetatable({}, Ctx)
function P.background() return background end

function Ctx:cancel(err)
  if self.err_ then return end
  self.err_ = err
  local kids = self.children
  if kids then
    self.children = nil
    for k in next, kids do k:cancel(err) end
  end
  local p = self.parent
  if p and p.children then p.children[self] = nil end
end

local function child(parent, c)
  local pd = parent.deadline
  if pd and (not c.deadline or pd < c.deadline) then c.deadline = pd end
  if parent.err_ then c.err_ = parent.err_
  elseif parent.children then parent.children[c] = true end
  return setmetatable(c, Ctx)
end

function P.with_cancel(parent)
  local c = child(parent, { parent = parent, children = {} })
  return c, function() c:cancel(P.canceled) end
end

function P.with_timeout(parent, seconds)
  local c = child(parent, { parent = parent, deadline = clock() + seconds })
  return c, function() c:cancel(P.canceled) end
end

function P.with_value(parent, key, value)
  return setmetatable({ parent = parent, key = key, value = value,
                        deadline = parent.deadline, cancelable = false }, Ctx)
end

function Ctx:done()
  local c = self
  while c.cancelable == false do c = c.parent end  -- value nodes report their parent
  if c.err_ then return true end
  local d = c.deadline
  if d and clock() >= d then c:cancel(P.deadline_exceeded) return true end
  return false
end

function Ctx:err()
  return self:done() and self.err_ or nil
end

function Ctx:value(key)
  local c = self
  repeat
    if c.key == key then return c.value end
    c = c.parent
  until c == nil
  return nil
end

return P
