-- A fault proxy for the chaos soak, on 127.0.0.1 only: it passes HTTP between Orket's
-- model client and the fake model server (tests/fake_model_server.lua), and spoils some
-- requests' answers, each chosen by a random draw from a fixed seed:
--   build/orket lua tests/fault_proxy.lua UPSTREAM_PORT SEED RATE
--     -> prints "listening http://127.0.0.1:PORT", then "fault KIND" for each fault made
-- RATE (0..1) is the share of requests spoiled, evenly among:
--   drop     the connection is closed before any answer (the client retries it)
--   stall    the request is never passed on and nothing is answered; the connection stays
--            open (the client's first-byte timeout ends the call)
--   garble   the answer is passed on with its stream's JSON spoiled, its length kept (the
--            client classifies a malformed answer)
-- A request is one the client starts sending ("POST " at the start of what it wrote): the
-- seed fixes the sequence of draws; which card meets which fault depends on timing.
-- Test tooling, not product code.
local uv = require "luv"

local upstream_port = assert(tonumber(arg[1]), "give the upstream port")
local seed = assert(tonumber(arg[2]), "give the seed")
local rate = assert(tonumber(arg[3]), "give the rate")
math.randomseed(seed)
local KINDS = { "drop", "stall", "garble" }

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function close(h) if h and not h:is_closing() then h:close() end end

local function serve(client)
  local up = uv.new_tcp()
  local pending, connected, stalled, garble = {}, false, false, false
  local function both() close(client) close(up) end
  up:connect("127.0.0.1", upstream_port, function(err)
    if err then return both() end
    connected = true
    for _, d in ipairs(pending) do up:write(d) end
    pending = {}
    up:read_start(function(rerr, data)
      if rerr or not data then return both() end
      if garble then
        -- the same length, so the chunked framing holds and only the JSON is broken
        local spoiled, n = data:gsub("data: {", "data: [")
        if n > 0 then garble = false end
        data = spoiled
      end
      if not client:is_closing() then client:write(data) end
    end)
  end)
  client:read_start(function(err, data)
    if err or not data then return both() end
    if stalled then return end
    if data:sub(1, 5) == "POST " and math.random() < rate then
      local kind = KINDS[math.random(#KINDS)]
      say("fault " .. kind)
      if kind == "drop" then return both() end
      if kind == "stall" then
        stalled = true
        return
      end
      garble = true
    end
    if connected then up:write(data) else pending[#pending + 1] = data end
  end)
end

require("tests.loopback_listen")(0, serve)
