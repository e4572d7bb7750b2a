-- MCP both ways (docs/mcp.md), as ratios measured in the same run, rounds alternating:
-- 1. a tools/call of server-everything's echo through Orket's client (the server confined)
--    against the same call made by the official SDK's client: target <= 1.5x its time;
-- 2. a card read as a tools/call on /mcp of orket serve against GET /v1/cards/{id}, one
--    client in sequence: target >= 0.5x its requests per second.
-- The npm packages come from the tests' cache (tests/npm.lua); without npm the first is skipped.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local task = require "orket.task"
local http = require "orket.c.http"
local H = require "tests.helpers"
local npm = require "tests.npm"

local ROUNDS = tonumber(arg[1]) or 3
local CALLS = tonumber(arg[2]) or 300
local median = function(t) return require("bench.stats").pct(t, 50) end

-- 1 -------------------------------------------------------------------------------------
local dir, why = npm.ensure()
if not dir then
  print("client: skipped (" .. why .. ")")
else
  local server = dir .. "/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
  local ours, theirs = {}, {}
  for _ = 1, ROUNDS do
    local ok, err = task.spawn(function()
      -- the server runs in agent code's view of the machine: its installation is listed to be read
      local c = require("orket.mcp.client").new({ name = "ev", transport = "stdio", command = { "node", server, "stdio" },
        read_only = { dir }, timeout_ms = 20000 }, { cwd = H.tmpdir() })
      assert(c:start())
      for _ = 1, 30 do c:call("echo", { message = "warm" }) end
      local t0 = uv.hrtime()
      for i = 1, CALLS do assert(c:call("echo", { message = "m" .. i }).ok) end
      ours[#ours + 1] = (uv.hrtime() - t0) / 1000 / CALLS
      c:close()
    end):join()
    assert(ok, err)
    local r = npm.node("bench_sdk.mjs", { server, tostring(CALLS) }, { timeout = 300 })
    assert(r.status == 0, r.stderr)
    theirs[#theirs + 1] = tonumber(r.stdout)
  end
  local o, s = median(ours), median(theirs)
  print(string.format("client: tools/call echo  orket %.0f us  sdk %.0f us  ratio %.2f (target <= 1.5)", o, s, o / s))
end

-- 2 -------------------------------------------------------------------------------------
local proj = H.example("notes")
-- the requests' rate is what is measured: the per-address and per-key limits are lifted
local srv = H.serve(proj, { env = { ORKET_SERVE_LIMITS =
  "addr_rate=1000000000,addr_burst=1000000000,key_rate=1000000000,key_burst=1000000000" } })
local function fetch(o)
  local r <close> = assert(http.request(o))
  local st = r:headers()
  while true do
    local ev = r:read()
    if not ev then break end
  end
  return st
end
local get_rps, mcp_rps = {}, {}
-- a write (every POST to /mcp) needs the server's local token; the reads carry it too
local auth = "Authorization: Bearer " .. assert(srv.token, "the server printed no local token")
local ok, err = task.spawn(function()
  local init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    .. '"capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
  local r <close> = assert(http.request { url = srv.url .. "/mcp", method = "POST", headers = { "Content-Type: application/json", auth }, body = init })
  local _, h = r:headers()
  local sid
  for k, v in pairs(h) do if k:lower() == "mcp-session-id" then sid = v end end
  assert(sid, "no session")
  local call = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOTES-1"}}}'
  local mh = { "Content-Type: application/json", auth, "Mcp-Session-Id: " .. sid }
  for _ = 1, ROUNDS do
    local t0 = uv.hrtime()
    for _ = 1, CALLS do assert(fetch { url = srv.url .. "/v1/cards/NOTES-1", headers = { auth } } == 200) end
    get_rps[#get_rps + 1] = CALLS / ((uv.hrtime() - t0) / 1e9)
    t0 = uv.hrtime()
    for _ = 1, CALLS do assert(fetch { url = srv.url .. "/mcp", method = "POST", headers = mh, body = call } == 200) end
    mcp_rps[#mcp_rps + 1] = CALLS / ((uv.hrtime() - t0) / 1e9)
  end
end):join()
srv.stop()
H.cleanup()
assert(ok, err)
local g, m = median(get_rps), median(mcp_rps)
print(string.format("server: card read  GET %.0f req/s  /mcp tools/call %.0f req/s  ratio %.2f (target >= 0.5)", g, m, m / g))
