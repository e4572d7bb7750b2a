-- A database that fails over: the store's URL names a primary and its streaming standby
-- (target_session_attrs=read-write); `orket serve` runs on it; the primary is stopped at
-- once and the standby promoted. Writes made meanwhile are refused whole (the request says
-- so), never half-applied; the server's next connection lands on the new primary and its
-- event stream goes on. The test's own servers (tests.pg), as docs/workers.md sets them up.
local H = require "tests.helpers"
local PG = require "tests.pg"

-- notes_done() -> the notes example's board once `orket run NOTES` ended on SQLite (what a
-- run through a fault must end as) | nil, why PostgreSQL's programs are not here
local function notes_done()
  local ok, why = PG.available()
  if not ok then return nil, why end
  local ref = H.example("notes")
  assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
  return H.board_state(ref)
end

-- serving_run() -> primary, dir, script, s, op, id: `orket serve` on a server of its own
-- (stopped at the test's end), run id of the notes example out in its first model call;
-- every answer takes 0.7 s, so the database goes while a turn is out
local function serving_run()
  local primary = PG.start { commits_survive_kill = true }
  finally(function() primary.stop() end)
  local dir = H.example("notes", { import = false })
  local script = PG.on(dir, primary.url, 700)
  local op = H.api_key(dir, "ops", "operator")
  local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000" } })
  local st, run = H.api(s, "POST", "/v1/runs", op, { target = "NOTES" })
  assert.equal(201, st)
  local id = math.tointeger(run.run.id)
  H.wait_for(function()
    local _, d = H.api(s, "GET", "/v1/runs/" .. id, op)
    return d and d.run and d.run.usage.calls >= 1
  end, "the run's first model call", 600)
  return primary, dir, script, s, op, id
end

local function ended_done(s, op, id)
  H.wait_for(function()
    local _, d = H.api(s, "GET", "/v1/runs/" .. id, op)
    return d and d.run and d.run.state == "done"
  end, "the run to end done", 6000)
end

describe("a store whose primary fails over to its standby", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("keeps `orket serve` writing and streaming, nothing half-applied", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local primary = PG.start { commits_survive_kill = true }
    local standby
    finally(function()
      if standby then standby.stop() end
      primary.stop()
    end)
    standby = PG.standby(primary)
    local url = primary.url:gsub("host=([^&]*)", "host=%1," .. standby.dir) .. "&target_session_attrs=read-write"
    local dir = H.example("notes", { import = false })
    PG.on(dir, url)
    local admin = H.api_key(dir, "admin", "admin")
    -- (the test asks often while it waits: no rate limit in the way)
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000" } })
    local live = H.stream { url = s.url .. "/v1/events", headers = { "Authorization: Bearer " .. admin }, total_timeout_ms = 120000 }
    assert.equal(200, live.status)
    local function comment(body)
      return (H.api(s, "POST", "/v1/cards/NOTES-1/comments", admin, { body = body }))
    end
    assert.equal(200, comment("before the failover"))
    local function comments_seen() return select(2, live.text():gsub("event: comment\n", "")) end
    H.wait_for(function() return comments_seen() == 1 end, "the first comment's event")
    -- the standby has it before the primary goes
    local sc = assert(require("orket.c.pg").connect(standby.url))
    H.wait_for(function()
      local rows = sc:query("SELECT count(*) AS n FROM comments WHERE body = 'before the failover'")
      return rows and rows[1].n == 1
    end, "the standby to replay the first comment")
    sc:close()

    primary.kill()
    -- while there is no primary, a write is refused whole
    local st = comment("while no primary")
    assert.equal(503, st) -- not a 401: the key is good, the store is away
    standby.promote()
    -- the server connects again, to the new primary, and writes
    local n = 0
    H.wait_for(function()
      n = n + 1
      return comment("after the failover " .. n) == 200
    end, "a write after the promotion", 3000)
    H.wait_for(function() return comments_seen() == 2 end, "the event stream after the promotion")
    -- each comment once; the refused ones not at all
    local bodies = {}
    for _, c in ipairs(H.card_json(dir, "NOTES-1").comments) do bodies[#bodies + 1] = c.body end
    assert.same({ "before the failover", "after the failover " .. n }, bodies)
    orket.sleep(200)
    assert.equal(2, comments_seen()) -- each event once, across the listener's reconnect
    assert.equal(0, s.stop())
    live.close()
  end)

  it("keeps `orket worker` working: it waits for the store, then the board ends as without the failover", function()
    local want, why = notes_done()
    if not want then return pending("skipped: " .. why) end
    local primary = PG.start { commits_survive_kill = true }
    local standby
    local dir = H.example("notes", { import = false })
    finally(function()
      H.end_started(dir, "w.pid", "w.rc")
      if standby then standby.stop() end
      primary.stop()
    end)
    standby = PG.standby(primary)
    local url = primary.url:gsub("host=([^&]*)", "host=%1," .. standby.dir) .. "&target_session_attrs=read-write"
    -- every answer takes 0.7 s: the primary goes while a turn is out
    local script = PG.on(dir, url, 700)
    os.execute(string.format("cd %s && { %s worker --start NOTES --drain >w.out 2>w.err & echo $! >w.pid; wait $!; "
      .. "echo $? >w.rc; } >/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    H.wait_for(function() return (H.read(dir .. "/w.out") or ""):find('"turn_start"', 1, true) end, "the first turn", 600)
    orket.sleep(1000)
    primary.kill()
    orket.sleep(300)
    standby.promote()
    local rc = H.wait_for(function() return (H.read(dir .. "/w.rc") or ""):match("%d+") end, "the worker to end", 6000)
    local out = H.read(dir .. "/w.out")
    assert.equal("0", rc, out .. (H.read(dir .. "/w.err") or ""))
    assert.matches('"type":"store_lost"', out)
    -- what failed, not where in Orket
    local lost = out:match('[^\n]*"type":"store_lost"[^\n]*')
    assert.is_nil(lost:find("%.lua:%d+"), lost)
    assert.matches('"type":"store_back"', out)
    assert.matches('"status":"done","tokens":%d+,"type":"run_end"', out)
    H.write(dir .. "/script.lua", script)
    assert.equal(want, H.board_state(dir))
  end)

  it("leaves every run of a worker running when the store goes with several in flight, and ends them done", function()
    -- docs/workers.md: a turn that could not be written ends unrecorded and the run is left
    -- running; with runs side by side, one run's failed write must not end another failed
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local WP = require "tests.worker_project"
    local fake = require("tests.fake_server").start()
    local server = PG.start { commits_survive_kill = true }
    local dir
    finally(function()
      if dir then H.end_started(dir, "w.pid", "w.rc") end
      server.stop()
      fake.stop()
    end)
    local epics = { { id = "A", n = 6 }, { id = "B", n = 6 }, { id = "C", n = 6 } }
    dir = WP.project(fake.url, { epics = epics, slow = 200, store_url = server.url })
    H.write(dir .. "/record.lua", [[
local db = assert(require("orket.project").open_store(".", false))
for _, t in ipairs { "A", "B", "C" } do assert(db:record_run { target = t, kind = "epic", data = { workers = true } }) end
db:close()
]])
    local rec = H.orket("lua record.lua", { cwd = dir })
    assert.equal(0, rec.status, rec.stderr)
    os.execute(string.format("cd %s && { %s worker --drain --concurrency 3 --lease-ms 3000 >w.out 2>w.err & echo $! >w.pid; "
      .. "wait $!; echo $? >w.rc; } >/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    -- the store goes while turns of all three runs are out, and comes back a second later
    H.wait_for(function() orket.sleep(20) return WP.side_by_side(H.read(dir .. "/w.out") or "") == 3 end,
      "turns of the three runs at once", 1000)
    server.kill()
    orket.sleep(1000)
    server.restart()
    local rc = H.wait_for(function() orket.sleep(50) return (H.read(dir .. "/w.rc") or ""):match("%d+") end,
      "the worker to end", 1200)
    local out = H.read(dir .. "/w.out")
    -- (what the worker said of its runs and the store, for a failure's message)
    local said = {}
    for line in out:gmatch("[^\n]+") do
      if line:find('"type":"run_', 1, true) or line:find('"type":"store_', 1, true) or line:find('"failed"', 1, true)
        or line:find('journal_error', 1, true) or line:find('card_blocked', 1, true) then said[#said + 1] = line end
    end
    said = table.concat(said, "\n") .. "\n" .. (H.read(dir .. "/w.err") or "")
    assert.equal("0", rc, said)
    assert.matches('"type":"store_lost"', out)
    assert.matches('"type":"store_back"', out)
    assert.is_nil(out:find('"status":"failed"', 1, true), said)
    assert.is_nil((H.read(dir .. "/w.err") or ""):find("internal error", 1, true), said)
    local runs = require("cjson").decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(3, #runs)
    for _, r in ipairs(runs) do assert.equal("done", r.status) end
    for _, e in ipairs(epics) do
      for i = 1, e.n do
        local id = e.id .. "-" .. i
        assert.equal(id .. "\n", H.read(dir .. "/workspace/" .. id .. ".line"), id .. "'s effect")
      end
    end
  end)

  it("keeps a run inside `orket serve` through a restart of its database: it waits, says so, takes no git leftovers, then ends done", function()
    local want, why = notes_done()
    if not want then return pending("skipped: " .. why) end
    local primary, dir, script, s, op, id = serving_run()
    orket.sleep(300)
    primary.kill() -- a restart of about three seconds
    -- another run's ref lock in flight: the run carried on takes no crash's leftovers
    local inflight = dir .. "/workspace/.git/refs/heads/inflight.lock"
    H.write(inflight, "another run's\n")
    orket.sleep(3000)
    primary.restart()
    ended_done(s, op, id)
    assert.equal("another run's\n", H.read(inflight), "a lock the carried-on run's git recovery removed")
    local log = s.log()
    assert.matches('"message":"run ' .. id .. ' stopped: the store was lost', log, 1, true)
    assert.matches('"event":"run_resumed"', log, 1, true)
    assert.equal(0, s.stop())
    H.write(dir .. "/script.lua", script)
    assert.equal(want, H.board_state(dir))
  end)

  it("keeps a run inside `orket serve` waiting while its database comes back read-only, then carries it on", function()
    local want, why = notes_done()
    if not want then return pending("skipped: " .. why) end
    local primary, dir, script, s, op, id = serving_run()
    -- it comes back answering reads but refusing writes, as a standby not yet promoted
    local admin = assert(require("orket.c.pg").connect(primary.url))
    assert(admin:query("ALTER SYSTEM SET default_transaction_read_only = on"))
    admin:close()
    orket.sleep(300)
    primary.kill()
    orket.sleep(1000)
    primary.restart()
    H.wait_for(function() return s.log():find("run " .. id .. " stopped: the store was lost", 1, true) end,
      "the run to stop", 600)
    orket.sleep(2000) -- its wait reads the store and is refused its lease's write, again and again
    admin = assert(require("orket.c.pg").connect(primary.url))
    assert(admin:query("SET default_transaction_read_only = off"))
    assert(admin:query("ALTER SYSTEM RESET default_transaction_read_only"))
    assert(admin:query("SELECT pg_reload_conf()"))
    admin:close()
    ended_done(s, op, id)
    local log = s.log()
    assert.is_nil(log:find("is not carried on", 1, true))
    assert.matches('"event":"run_resumed"', log, 1, true)
    assert.equal(0, s.stop())
    H.write(dir .. "/script.lua", script)
    assert.equal(want, H.board_state(dir))
  end)

  it("does not carry a run on beside an overlapping run another server resumed while its store was away: it says so and lets go", function()
    -- the outage outlasts the run's lease (15 s): another server of the store, in another
    -- folder, then sees no live run on the cards and resumes an overlapping one; the first
    -- server's run, once its store answers, is resumed as any resume is (recorded.in_the_way)
    -- and refused, where it was taken again blindly and both worked the cards
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local primary = PG.start { commits_survive_kill = true }
    finally(function() primary.stop() end)
    local admin = assert(require("orket.c.pg").connect(primary.url))
    finally(function() admin:close() end)
    -- the first server connects as a role of its own, so that its store alone can go away
    assert(admin:query("CREATE ROLE serve_a LOGIN SUPERUSER PASSWORD '" .. primary.password .. "'"))
    local passfile = primary.dir .. "/serve_a.pgpass"
    H.write(passfile, "*:*:*:serve_a:" .. primary.password .. "\n")
    os.execute("chmod 600 " .. H.quote(passfile))
    local url_a = primary.url:gsub("^postgresql://[^@]*@", "postgresql://serve_a@"):gsub("passfile=[^&]*",
      "passfile=" .. passfile)
    local dir = H.example("notes", { import = false })
    PG.on(dir, url_a, 700)
    -- run X of NOTES-1, interrupted before any turn (so no obstacle to a run of NOTES)
    H.write(dir .. "/record.lua", [[
local db = assert(require("orket.project").open_store(".", false))
local id = assert(db:record_run { target = "NOTES-1", kind = "issue" })
assert(db:finish_run(id, "interrupted"))
print(id)
db:close()
]])
    local rec = H.orket("lua record.lua", { cwd = dir })
    assert.equal(0, rec.status, rec.stderr)
    local x = math.tointeger(tonumber(rec.stdout:match("%d+")))
    -- the other server's folder: the same project on the same store (not imported again)
    local other = H.example("notes", { import = false })
    H.write(other .. "/orket.lua", H.read(other .. "/orket.lua") .. string.format("\nstore = { url = %q }\n", primary.url))
    -- its answers slow too, and the first (the architect's turn on NOTES-1) held 10 s: its
    -- run is surely still going when the first server decides, which takes it about a
    -- second (it reconnects, makes an engine, asks), more on a loaded machine
    H.write(other .. "/script.lua", (H.read(dir .. "/script.lua"):gsub("return { rules",
      "for _, r in ipairs(rules) do if r.card == \"NOTES-1\" then r.reply.delay_ms = 10000 end end\nreturn { rules", 1)))
    local limits = { ORKET_SERVE_LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000" }
    local op = H.api_key(dir, "ops", "operator")
    local op_b = H.api_key(other, "ops-b", "operator")
    local s = H.serve(dir, { env = limits })
    -- the other server up before the first one's store goes: it asks at once, with the 10 to
    -- 15 s left on the first run's lease (started later, it may have had little of them)
    local s2 = H.serve(other, { env = limits })
    local st, run = H.api(s, "POST", "/v1/runs", op, { target = "NOTES" })
    assert.equal(201, st)
    local id = math.tointeger(run.run.id)
    H.wait_for(function()
      local _, d = H.api(s, "GET", "/v1/runs/" .. id, op)
      return d and d.run and d.run.usage.calls >= 1
    end, "the run's first model call", 600)
    -- its store goes away: its connections cut, no new one let in
    assert(admin:query("ALTER ROLE serve_a NOLOGIN"))
    assert(admin:query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'serve_a'"))
    H.wait_for(function() return s.log():find("run " .. id .. " stopped: the store was lost", 1, true) end,
      "the run to stop", 600)
    -- refused while the first run's lease is live; resumed once it lapsed
    local refused = 0
    H.wait_for(function()
      local rst = H.api(s2, "POST", "/v1/runs/" .. x .. "/resume", op_b)
      if rst == 409 then refused = refused + 1 end
      if rst ~= 202 then orket.sleep(250) end
      return rst == 202
    end, "the other server's resume of run " .. x, 1200)
    assert.is_true(refused > 0, "the other resume went beside a live lease")
    -- the first server's store answers again
    assert(admin:query("ALTER ROLE serve_a LOGIN"))
    H.wait_for(function()
      local log = s.log()
      return log:find("is not carried on", 1, true) or log:find('"event":"run_resumed"', 1, true)
    end, "the first server to decide", 1200)
    local log = s.log()
    assert.is_nil(log:find('"event":"run_resumed"', 1, true), log .. "\nthe other server's:\n" .. s2.log())
    assert.matches("run " .. id .. " is not carried on: run " .. x .. " (NOTES-1) is working on", log, 1, true)
    -- the other run goes on alone and ends done; the first is left resumable, let go of
    H.wait_for(function()
      local _, d = H.api(s2, "GET", "/v1/runs/" .. x, op_b)
      return d and d.run and d.run.state == "done"
    end, "run " .. x .. " to end done", 6000)
    H.wait_for(function() return H.read(dir .. "/.orket/runs/" .. id .. ".lock") == nil end,
      "the first run's lock to go", 600)
    local leased = assert(admin:query("SELECT count(*) AS n FROM run_leases WHERE run_id = " .. id))
    assert.equal(0, math.tointeger(tonumber(leased[1].n)))
    local _, d = H.api(s, "GET", "/v1/runs/" .. id, op)
    assert.equal("killed", d.run.state)
    assert.equal(0, s.stop())
    assert.equal(0, s2.stop())
  end)
end)
