-- nohup: a SIGHUP ignored when the command started stays ignored (orket.stopsignals.names),
-- so `nohup orket run EPIC &` outlives the terminal it was started from, as `orket worker`
-- and `orket serve` do; SIGTERM still stops it.
local H = require "tests.helpers"

-- a wrapper that starts orket with SIGHUP ignored, as nohup does
local function nohup_bin()
  local wrap = H.tmpdir() .. "/nohup-orket"
  H.write(wrap, "#!/bin/sh\ntrap '' HUP\nexec " .. H.quote(H.BIN) .. ' "$@"\n')
  os.execute("chmod +x " .. H.quote(wrap))
  return wrap
end

-- start(dir, args, out) -> pid, rc(): `orket ARGS` under the nohup wrapper, in the background
local function start(dir, args)
  os.execute(string.format("cd %s && { %s %s >out 2>err & echo $! >pid; wait $!; echo $? >rc; } >/dev/null 2>&1 &",
    H.quote(dir), H.quote(nohup_bin()), args))
  local pid = math.tointeger(tonumber(H.wait_for(function() return (H.read(dir .. "/pid") or ""):match("^%d+") end,
    "its pid")))
  finally(function() H.end_started(dir, "pid", "rc", true) end)
  return pid, function() return (H.read(dir .. "/rc") or ""):match("^%d+") end
end

describe("under nohup", function()
  after_each(H.cleanup)

  it("orket run goes on after a SIGHUP, and SIGTERM still stops it (130)", function()
    local dir = H.example("notes")
    -- every answer takes 1.5 s: the run is still working when the signals come
    local script = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", (script:gsub("return { rules", "for _, r in ipairs(rules) do r.reply.delay_ms = 1500 end\nreturn { rules", 1)))
    local pid, rc = start(dir, "run NOTES --json")
    H.wait_for(function() return (H.read(dir .. "/out") or ""):find('"turn_start"', 1, true) end, "the first turn")
    os.execute("kill -HUP " .. pid)
    orket.sleep(800)
    assert.is_nil(rc(), H.read(dir .. "/out"))
    assert.is_true(H.alive(pid))
    assert.not_matches('"run_end"', H.read(dir .. "/out"))
    os.execute("kill -TERM " .. pid)
    assert.equal("130", H.wait_for(rc, "the run's end"), H.read(dir .. "/err"))
    assert.matches('"status":"interrupted"', H.read(dir .. "/out"))
  end)

  it("a foreground orket sandbox up keeps its sandbox after a SIGHUP, and SIGTERM stops it (0)", function()
    local why = H.no_node_sandbox()
    if why then return pending(why) end
    local mark = "nohup" .. math.random(1, 1e9)
    local dir = H.node_project("require('http').createServer((q, s) => s.end('up')).listen(Number(process.env.PORT), '127.0.0.1');\n", mark)
    local pid, rc = start(dir, "sandbox up")
    H.wait_for(function() return (H.read(dir .. "/out") or ""):find("is healthy", 1, true) end,
      "the sandbox to be healthy", 3000)
    os.execute("kill -HUP " .. pid)
    orket.sleep(800)
    assert.is_nil(rc(), H.read(dir .. "/out"))
    assert.is_true(H.alive(pid))
    assert.equal("healthy", H.sandboxes(dir)[1].status)
    os.execute("kill -TERM " .. pid)
    assert.equal("0", H.wait_for(rc, "the sandbox's end", 3000), H.read(dir .. "/err"))
    assert.matches("sandbox 1 stopped", H.read(dir .. "/out"), 1, true)
  end)
end)
