-- orket serve's guards end to end: closed event streams freed at once, every error as JSON,
-- the local token and unix socket that stand in for a key before one exists, webhooks
-- deduplicated by their content and refused when stale. The binary on 127.0.0.1.
local H = require "tests.helpers"
local cjson = require "cjson"

local wait_for = H.wait_for

local function gauge(s, key)
  local headers = key and { "Authorization: Bearer " .. key } or nil
  local st, text = H.fetch { url = s.url .. "/metrics", headers = headers, total_timeout_ms = 20000 }
  assert(st == 200, text)
  return tonumber(text:match("\norket_sse_clients (%d+)"))
end

describe("orket serve's guards", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("frees a closed event stream at once: 50 closed, 50 reopened from one address, the gauge right", function()
    local dir = H.example("webapp")
    -- heartbeats far away: only the socket's close can free a slot in time
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "heartbeat_ms=60000,addr_burst=1000,addr_rate=1000" } })
    local function open_all()
      local list = {}
      for i = 1, 50 do
        list[i] = H.stream { url = s.url .. "/v1/events", total_timeout_ms = 60000 }
      end
      return list
    end
    local first = open_all()
    for _, st in ipairs(first) do assert.equal(200, st.status) end
    wait_for(function() return gauge(s) == 50 end, "50 clients counted")
    for _, st in ipairs(first) do st.close() end
    local second = open_all() -- at once: 50 old ones still counted would pass the 64 per address
    local ok = 0
    for _, st in ipairs(second) do if st.status == 200 then ok = ok + 1 end end
    assert.equal(50, ok)
    wait_for(function() return gauge(s) == 50 end, "the gauge back at 50", 200)
    for _, st in ipairs(second) do st.close() end
    wait_for(function() return gauge(s) == 0 end, "the gauge at 0", 200)
    assert.equal(0, s.stop())
  end)
end)
