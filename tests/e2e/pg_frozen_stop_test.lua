-- `orket serve` and `orket worker` stopped (SIGTERM: podman stop, a pod's deletion) while
-- their PostgreSQL stops answering with their connections open (frozen: a hung primary, a
-- dropped network): the stop's own statements (the audit's checkpoint, the lease's release)
-- waited for an answer that never came, so the stop never ended and the container was
-- killed when its grace period ran out (137). Their stop keeps to its 9 s
-- (otel.STOP_BUDGET_MS, docs/observability.md) and exits 0, saying what it skipped; with a
-- store that answers, the stop still signs the audit's tail. The test's own server
-- (tests.pg), frozen with SIGSTOP.
local H = require "tests.helpers"
local PG = require "tests.pg"
local uv = require "luv"

-- seconds from the signal to the exit of a process whose shell writes its status to rc
local function stop_took(pid, rc_file)
  uv.update_time()
  local t0 = uv.now()
  os.execute("kill -TERM " .. pid)
  local rc = H.wait_for(function() return (H.read(rc_file) or ""):match("^%d+") end, "the process to exit", 2500)
  uv.update_time()
  return rc, (uv.now() - t0) / 1000
end

describe("a stop while PostgreSQL stops answering", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("ends `orket serve` within its 9 s, exit 0, the checkpoint skipped and said", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local server = PG.start()
    finally(function() server.stop() end)
    local dir = H.example("notes", { import = false })
    PG.on(dir, server.url)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { args = "--workers 0" })
    -- a write that is audited: the stop's checkpoint has a tail to sign
    assert.equal(200, (H.api(s, "POST", "/v1/cards/NOTES-1/comments", op, { body = "before the freeze" })))
    server.freeze()
    orket.sleep(300)
    local rc, took = stop_took(s.pid, dir .. "/serve.rc")
    server.thaw()
    assert.equal("0", rc, s.log())
    assert.is_true(took < 10, string.format("the stop took %.1f s", took))
    assert.matches("audit checkpoint: skipped at the stop: pg pool: a statement had no answer within the stop's "
      .. "6000 ms: the server is taken for gone", s.log(), 1, true)
    -- the tail stays chained, unsigned: said so, not refused
    local r = H.orket("audit verify", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("0 signed checkpoints; entries 1 to 2 are not signed yet: verified", r.stdout, 1, true)
  end)

  it("still signs the audit's tail when the store answers", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local server = PG.start()
    finally(function() server.stop() end)
    local dir = H.example("notes", { import = false })
    PG.on(dir, server.url)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { args = "--workers 0" })
    assert.equal(200, (H.api(s, "POST", "/v1/cards/NOTES-1/comments", op, { body = "before the stop" })))
    local rc, took = stop_took(s.pid, dir .. "/serve.rc")
    assert.equal("0", rc, s.log())
    assert.is_true(took < 5, string.format("the stop took %.1f s", took))
    assert.is_nil(s.log():find("skipped at the stop", 1, true), s.log())
    local r = H.orket("audit verify", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("1 signed checkpoint: verified", r.stdout, 1, true)
  end)

  it("ends `orket worker` within its 9 s, exit 0", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local server = PG.start()
    finally(function() server.stop() end)
    local dir = H.example("notes", { import = false })
    PG.on(dir, server.url)
    os.execute(string.format("cd %s && { %s worker --name w >w.out 2>w.err & echo $! >w.pid; wait $!; echo $? >w.rc; } "
      .. ">/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    local pid = tonumber(H.wait_for(function() return (H.read(dir .. "/w.pid") or ""):match("^%d+") end, "its pid"))
    finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    H.wait_for(function() return (H.read(dir .. "/w.out") or ""):find('"worker_start"', 1, true) end,
      "the worker's start", 6000)
    orket.sleep(500)
    server.freeze()
    orket.sleep(300)
    local rc, took = stop_took(pid, dir .. "/w.rc")
    server.thaw()
    assert.equal("0", rc, H.read(dir .. "/w.err"))
    assert.is_true(took < 10, string.format("the stop took %.1f s", took))
    assert.matches('"worker_end"', H.read(dir .. "/w.out"), 1, true)
    assert.is_nil((H.read(dir .. "/w.err") or ""):find("traceback", 1, true), H.read(dir .. "/w.err"))
  end)
end)
