-- How often a starting sandbox is probed (orket.sandboxes.service.start_pause): soon at
-- first, then less often, never beyond its bound however long the start takes.
local service = require "orket.sandboxes.service"

describe("a starting sandbox's probe pauses", function()
  it("start at 10 ms and double up to START_PROBE_MAX_MS", function()
    local seen, p = {}, nil
    for i = 1, 5 do
      p = service.start_pause(p)
      seen[i] = p
    end
    assert.same({ 10, 20, 40, 50, 50 }, seen)
    assert.equal(50, service.START_PROBE_MAX_MS)
  end)

  it("stay within their bound over a start as long as any timeout allows", function()
    -- a start_timeout_ms of an hour, probed at the shortest pause: more steps than that
    local p = nil
    for _ = 1, 3600000 // 10 do
      p = service.start_pause(p)
      assert(p >= 10 and p <= service.START_PROBE_MAX_MS and math.type(p) == "integer", tostring(p))
    end
  end)
end)
