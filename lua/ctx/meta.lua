---@meta ctx
-- meta.lua — LuaLS type annotations for `require "ctx"` (definitions only, for
-- editors: point LuaLS's workspace.library at this folder; never loaded).

---A context: canceled, past its deadline, or ended with its parent.
---@class ctx.Context
local Context = {}

---True once the context is done (never blocks).
---@return boolean
function Context:done() end

---Blocks until the context is done or `timeout` seconds pass; true once done.
---After_func callbacks of this state that become pending run meanwhile.
---@param timeout? number seconds
---@return boolean
function Context:wait(timeout) end

---nil until done, then ctx.canceled or ctx.deadline_exceeded (compare with ==).
---@return ctx.Error|nil
function Context:err() end

---nil until done; the cause given to a *_cause constructor or cancel, else err.
---@return any
function Context:cause() end

---The deadline (its own or inherited) on the ctx.now() scale, or nil.
---@return number|nil
function Context:deadline() end

---Seconds left until the deadline (0 once passed), or nil without one.
---@return number|nil
function Context:remaining() end

---The innermost binding of key on the way to the root (keys compare rawequal).
---@param key any not nil, not NaN
---@return any
function Context:value(key) end

---One of the two error values; tostring gives Go's message.
---@class ctx.Error

---A cancel function: cancels its context (idempotent).
---@alias ctx.CancelFunc fun()
---A cancel-cause function: cancels with `cause` (nil: the plain error).
---@alias ctx.CancelCauseFunc fun(cause?: any)

---@class ctxlib
---@field canceled ctx.Error "context canceled"
---@field deadline_exceeded ctx.Error "context deadline exceeded"
---@field _VERSION string
local ctx = {}

---The root context: never done; the same value every call.
---@return ctx.Context
function ctx.background() end

---A root context for code that has not been given one yet.
---@return ctx.Context
function ctx.todo() end

---@param parent ctx.Context
---@return ctx.Context c a to-be-closed value: `local c <close>, cancel = ...`
---@return ctx.CancelFunc cancel
function ctx.with_cancel(parent) end

---@param parent ctx.Context
---@return ctx.Context c
---@return ctx.CancelCauseFunc cancel
function ctx.with_cancel_cause(parent) end

---@param parent ctx.Context
---@param when number epoch seconds, on the ctx.now() scale
---@return ctx.Context c
---@return ctx.CancelFunc cancel
function ctx.with_deadline(parent, when) end

---@param parent ctx.Context
---@param when number epoch seconds
---@param cause any reported by ctx.cause when the deadline fires
---@return ctx.Context c
---@return ctx.CancelFunc cancel
function ctx.with_deadline_cause(parent, when, cause) end

---@param parent ctx.Context
---@param seconds number
---@return ctx.Context c
---@return ctx.CancelFunc cancel
function ctx.with_timeout(parent, seconds) end

---@param parent ctx.Context
---@param seconds number
---@param cause any
---@return ctx.Context c
---@return ctx.CancelFunc cancel
function ctx.with_timeout_cause(parent, seconds, cause) end

---@param parent ctx.Context
---@param key any not nil, not NaN; compared with rawequal
---@param value any
---@return ctx.Context
function ctx.with_value(parent, key, value) end

---Keeps the parent's values; never done, no deadline, no cause.
---@param parent ctx.Context
---@return ctx.Context
function ctx.without_cancel(parent) end

---Runs fn once after c is done (at once if it is), on this Lua state; returns
---stop, which returns true if it prevented fn from running.
---@param c ctx.Context
---@param fn fun()
---@return fun(): boolean stop
function ctx.after_func(c, fn) end

---@param c ctx.Context
---@return any
function ctx.cause(c) end

---Epoch seconds (the wall clock), as a float.
---@return number
function ctx.now() end

---Sleeps `seconds`; returns true, or nil and c:err() if c ended first.
---@param c ctx.Context
---@param seconds number
---@return true|nil ok
---@return ctx.Error|nil err
function ctx.sleep(c, seconds) end

---Like pcall, but fn (and the coroutines it runs) is stopped when c ends:
---returns false, c:err() then; true and fn's results otherwise.
---@param c ctx.Context
---@param fn function
---@param ... any
---@return boolean ok
---@return any ...
function ctx.run(c, fn, ...) end

---os.execute whose command (in its own process group) gets SIGTERM, then
---SIGKILL after `grace` seconds (default 1), when c ends: then nil, c:err().
---@param c ctx.Context
---@param cmd? string
---@param grace? number seconds
---@return true|nil ok
---@return string|ctx.Error what "exit", "signal", or the error
---@return integer? code
function ctx.execute(c, cmd, grace) end

return ctx
