-- orket.profile's alloc mode: each sample is charged the Lua heap's growth since the last,
-- the profiler's own allocations (its keys, getinfo's tables) left out, and the collector
-- is stopped while it runs and started again by stop().
local profile = require "orket.profile"

local function charged_at(p, line)
  local n = 0
  for k, v in pairs(p.self_ns) do
    if k:match(":(%d+)$") == tostring(line) then n = n + v end
  end
  return n
end

describe("orket.profile with alloc", function()
  it("charges a line what it allocates", function()
    local keep = {}
    local p = profile.start { alloc = true, every = 1 }
    local line = debug.getinfo(1, "l").currentline + 1
    for i = 1, 500 do keep[i] = { i, i, i, i } end
    p:stop()
    -- each table is at least its header and four array slots (over 80 bytes on 64-bit)
    assert.is_true(charged_at(p, line) >= 500 * 80, tostring(charged_at(p, line)))
    assert.equal(500, #keep)
    assert.matches("KB sampled", p:report(3, 1))
  end)

  it("does not charge its own allocations", function()
    local p = profile.start { alloc = true, every = 1 }
    local x = 0
    for i = 1, 20000 do x = x + i % 7 end
    p:stop()
    -- 20,000 instructions or more, each sampled: the hook made a key string and getinfo
    -- tables every time, none of them charged
    assert.is_true(p.samples > 20000, tostring(p.samples))
    assert.is_true(p.total_ns < 1024, tostring(p.total_ns))
    assert.is_true(x > 0)
  end)

  it("stops the collector while it runs and starts it again", function()
    local p = profile.start { alloc = true }
    assert.is_false(collectgarbage("isrunning"))
    p:stop()
    assert.is_true(collectgarbage("isrunning"))
  end)
end)

-- A sandboxed call (orket.scriptenv) puts its budget hook on the thread; the profiler's
-- count hook keeps running inside it, at its own cadence, and is back on after it.
describe("orket.profile across a sandboxed call", function()
  local scriptenv = require "orket.scriptenv"
  local SPIN = "local x = 0\nfor i = 1, 200000 do x = x + i % 7 end\nreturn x\n"

  local function in_chunk(p, name)
    local n = 0
    for k, v in pairs(p.self_ns) do
      if k:sub(1, #name + 1) == name .. ":" then n = n + v end
    end
    return n
  end

  it("samples the sandboxed function's lines", function()
    local box = scriptenv.new { instructions = 10000000, timeout_ms = 5000, memory = 8 << 20 }
    local fn = assert(box:load(SPIN, "spin.lua"))
    local p = profile.start { vm = true, every = 100 }
    local ok, x = box:pcall(fn)
    local hook = debug.gethook()
    p:stop()
    assert.is_true(ok, tostring(x))
    -- the loop runs 600k instructions (3 a round), all of it in spin.lua
    local inside = in_chunk(p, "spin.lua")
    assert.is_true(inside >= 550000, "charged inside: " .. inside .. "\n" .. p:report(5, 1))
    assert.is_true(inside >= 0.9 * p.total_ns, "charged inside: " .. inside .. " of " .. p.total_ns)
    assert.equal(p.hook, hook) -- the profiler's hook is back on after the call
  end)

  it("leaves the budget's charges where they were", function()
    -- the round the budget stops the loop at is the same with or without a profiler,
    -- whether its cadence divides the budget's or not
    local src = "n = 0\nwhile true do n = n + 1 end\n"
    local function rounds(every)
      local box = scriptenv.new { instructions = 50000, timeout_ms = 5000, memory = 8 << 20 }
      local fn = assert(box:load(src, "loop.lua"))
      local p = every and profile.start { vm = true, every = every }
      local ok, err, code = box:pcall(fn)
      if p then p:stop() end
      assert.is_false(ok)
      assert.equal("EBUDGET", code, err)
      if p then assert.is_true(in_chunk(p, "loop.lua") > 0, p:report(5, 1)) end
      return box.env.n
    end
    local alone = rounds(nil)
    assert.is_true(alone > 1000)
    assert.equal(alone, rounds(1000))
    assert.equal(alone, rounds(7))
    assert.equal(alone, rounds(2500))
  end)

  it("keeps the deadline", function()
    local box = scriptenv.new { instructions = 0, timeout_ms = 50, memory = 8 << 20 }
    local fn = assert(box:load("while true do end", "forever.lua"))
    local p = profile.start { vm = true, every = 7 }
    local ok, err, code = box:pcall(fn)
    p:stop()
    assert.is_false(ok)
    assert.equal("ETIMEOUT", code, err)
  end)

  it("keeps the budget on the script's own coroutines", function()
    local box = scriptenv.new { instructions = 100000, timeout_ms = 5000, memory = 8 << 20 }
    local fn = assert(box:load("local co = coroutine.create(function() while true do end end)\n" ..
      "return coroutine.resume(co)\n", "co.lua"))
    local p = profile.start { vm = true, every = 7 }
    local ok, err, code = box:pcall(fn)
    p:stop()
    assert.is_false(ok)
    assert.equal("EBUDGET", code, err)
  end)

  it("lets no script handler run outside the budget when the profiler's hook fails", function()
    -- nesting xpcall to the C-call limit makes the profiler's hook fail ("C stack overflow");
    -- Lua runs the current handler before unwinding, while hooks are still off
    local box = scriptenv.new { instructions = 2000000, timeout_ms = 200, memory = 8 << 20 }
    local fn = assert(box:load([[
escaped = 0
local function h(e) local i = 0 while i < 3e7 do i = i + 1 end escaped = escaped + 1 return e end
local function rec(d) for i = 1, 200 do end local ok = xpcall(rec, h, d + 1) return ok end
rec(1) return escaped
]], "escape.lua"))
    local p = profile.start { vm = true, every = 100 }
    local ok, err, code = box:pcall(fn)
    local hook = debug.gethook()
    p:stop()
    assert.is_false(ok)
    assert.equal(0, box.env.escaped)
    assert.equal("EBUDGET", code, err)
    assert.equal(p.hook, hook)
  end)

  it("charges every instruction of a script that switches coroutines", function()
    -- the script and its coroutine share the call's count: each thread's interval was set
    -- from it at that thread's last event, so intervals overrun it and the overrun counts
    local src = [[
n = 0
local co = coroutine.create(function()
  while true do for i = 1, 82 do n = n + 1 end coroutine.yield() end
end)
while true do for i = 1, 174 do n = n + 1 end coroutine.resume(co) end
]]
    local function rounds(every)
      -- (the count is what is checked: the time budget only bounds a broken count, and is
      -- wide for a sanitizer build's hook every 7 instructions on a loaded machine)
      local box = scriptenv.new { instructions = 200000, timeout_ms = 60000, memory = 8 << 20 }
      local fn = assert(box:load(src, "pingpong.lua"))
      local p = every and profile.start { vm = true, every = every }
      local ok, err, code = box:pcall(fn)
      if p then p:stop() end
      assert.is_false(ok)
      assert.equal("EBUDGET", code, err)
      return box.env.n
    end
    local alone = rounds(nil)
    for _, every in ipairs { 2500, 1000, 7 } do
      local n = rounds(every)
      assert.is_true(n <= alone * 1.05, "every " .. every .. ": " .. n .. " rounds against " .. alone)
    end
  end)

  it("samples a nested sandboxed call and its caller's script", function()
    local inner = scriptenv.new { instructions = 10000000, timeout_ms = 5000, memory = 8 << 20 }
    local ifn = assert(inner:load(SPIN, "inner.lua"))
    local outer = scriptenv.new { instructions = 10000000, timeout_ms = 5000, memory = 8 << 20 }
    outer.env.run_inner = function() return inner:pcall(ifn) end
    local both = assert(outer:load("run_inner()\nlocal x = 0\nfor i = 1, 200000 do x = x + i % 7 end\nreturn x\n", "outer.lua"))
    local p = profile.start { vm = true, every = 100 }
    local ok, err = outer:pcall(both)
    p:stop()
    assert.is_true(ok, tostring(err))
    assert.is_true(in_chunk(p, "inner.lua") >= 550000, p:report(5, 1))
    assert.is_true(in_chunk(p, "outer.lua") >= 550000, p:report(5, 1))
  end)
end)
