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

describe("a starting sandbox of several services", function()
  it("is probed every 10 ms while a service starts", function()
    assert.equal(10, service.start_pause(50, true))
    assert.equal(10, service.start_pause(nil, true))
    assert.equal(50, service.start_pause(50, false))
  end)

  it("is started by a script whose waits and connects start no process", function()
    -- a pause was a `sleep` (and a $(printf) for its length) and a check a ( subshell )
    -- each time: a process or two every few ms while a service started
    local supervise = require "orket.sandboxes.supervise"
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", command = { "node", "db.js" } },
      { name = "web", dir = "", command = { "node", "web.js" }, entry = true, depends_on = { { name = "db" } } } } }
    local text = supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 20000)
    assert.is_nil(text:find("sleep", 1, true))
    assert.is_nil(text:find("%$%([^(]")) -- a command substitution (arithmetic $(( )) starts none)
    assert.is_nil(text:find("exec env", 1, true))
    assert.matches("until { : 3<>/dev/tcp/127.0.0.1/8081; } 2>/dev/null; do", text, 1, true)
    assert.matches("  nap 0.010\n", text, 1, true)
  end)

  it("is refused with what to do when its script would pass the kernel's cap on one argument", function()
    local supervise = require "orket.sandboxes.supervise"
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", command = { "node", "db.js" } },
      { name = "web", dir = "", command = { "node", "web.js" }, entry = true, depends_on = { { name = "db" } } } } }
    -- 40 values of 4096 bytes, as orket.lua's sandbox.env allows each: given to both services
    local base = {}
    for i = 1, 40 do base["V" .. i] = string.rep("v", 4096) end
    local argv, err = supervise.argv(p, 8080, base, 20000)
    assert.is_nil(argv)
    assert.matches("^the script that starts the services is %d+ bytes, over the 131072 one command line argument may "
      .. "have: make the services' environments", err)
    base = { V1 = string.rep("v", 4096) }
    argv = assert(supervise.argv(p, 8080, base, 20000))
    assert.equal("bash", argv[1])
  end)
end)
