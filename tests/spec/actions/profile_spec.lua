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
