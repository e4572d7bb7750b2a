-- The chaos soak (make soak): ten rocks' runs recorded at once, 110 issues in all, worked by
-- three `orket worker`s beside two `orket serve`s, over PostgreSQL with a streaming standby,
-- while faults drawn from a fixed seed (ORKET_CHAOS_SEED; the seed is printed) land on it:
-- workers and servers killed with SIGKILL and started again, the model's answers dropped,
-- stalled or garbled by a fault proxy on loopback (tests/fault_proxy.lua), the primary
-- stopped and the standby promoted, and the repository's disk full until a run meets it (the
-- runs it stopped carried on with `orket resume` at the end). At the end every card is done
-- exactly once or blocked (a person's `orket retry`) or waits on such a card; the journal
-- and the git history agree; no process, lease or git lock is left; and two event-stream
-- clients, moved between the servers as they die, each saw every event of the journal
-- once, in order.
-- The seed fixes which faults come and at which point of the board's progress; which card
-- meets which fault depends on timing. Each worker works every run it can join side by
-- side (its turns at once shared among them), and the soak checks from the workers' events
-- that one of them had turns of several runs in flight at once. Where no small filesystem
-- can be mounted the full disk is left out, and its own test is skipped saying why.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local PG = require "tests.pg"
local WP = require "tests.worker_project"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local SEED = tonumber(os.getenv("ORKET_CHAOS_SEED")) or 5705
local ROCKS, PER_ROCK = 10, 11
local N = ROCKS * PER_ROCK
local LEASE_MS = 2500
local FAULT_RATE = 0.06 -- of the model's requests
local LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000"

-- The fault proxy in front of the fake model server -> {url, faults() -> {kind = n}, stop()}
local function start_proxy(upstream_port, dir)
  local out = dir .. "/proxy.out"
  local p = io.popen(string.format("cd %s && exec %s lua tests/fault_proxy.lua %d %d %s >%s 2>&1 & echo $!",
    H.quote(H.ROOT), H.quote(H.BIN), upstream_port, SEED, FAULT_RATE, H.quote(out)))
  local pid = tonumber(p:read("l"))
  p:close()
  local port = H.wait_for(function() return (H.read(out) or ""):match("listening http://127%.0%.0%.1:(%d+)") end,
    "the fault proxy")
  local proxy = { pid = pid, url = "http://127.0.0.1:" .. port }
  function proxy.faults()
    local n = {}
    for kind in (H.read(out) or ""):gmatch("fault (%a+)") do n[kind] = (n[kind] or 0) + 1 end
    return n
  end
  function proxy.stop()
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    -- (gone before its directory is removed: kill(2) returns before it has exited)
    H.wait_for(function() return not H.alive(pid) end, "the fault proxy to end")
  end
  return proxy
end

-- An event-stream client that follows the journal from its start: when its server goes it
-- connects to the other one (pick() -> the url) with Last-Event-ID. -> {ids, dups, moves, stop()}
local function follower(pick, key)
  local f = { ids = {}, seen = {}, dups = 0, moves = 0 }
  local last, req
  local function took(block)
    local id = tonumber(("\n" .. block):match("\nid: (%d+)"))
    if not id then return end
    if f.seen[id] then f.dups = f.dups + 1 else f.seen[id] = true; f.ids[#f.ids + 1] = id end
    last = id
  end
  f.task = orket.spawn(function()
    while not f.stopped do
      local headers = { "Authorization: Bearer " .. key }
      if last then headers[#headers + 1] = "Last-Event-ID: " .. last end
      local ok, r = pcall(require("orket.c.http").request,
        { url = pick() .. "/v1/events" .. (last and "" or "?after=0"), headers = headers, total_timeout_ms = 900000 })
      if ok and r then
        req = r
        local buf = ""
        if r:headers() == 200 then
          while true do
            local rok, ev = pcall(r.read, r)
            if not rok or not ev then break end
            buf = buf .. table.concat(ev)
            while true do
              local at = buf:find("\n\n", 1, true)
              if not at then break end
              took(buf:sub(1, at))
              buf = buf:sub(at + 2)
            end
          end
        end
        pcall(r.close, r)
        req = nil
      end
      f.moves = f.moves + 1
      orket.sleep(50)
    end
  end)
  -- ends the stream: the client goes on at the other server
  function f.move()
    if req then pcall(req.close, req) end
  end
  function f.stop()
    f.stopped = true
    f.task:cancel()
    if req then pcall(req.close, req) end
  end
  return f
end

-- The journal's ids, in order, and each card's events by kind
local function journal(dir)
  local db = assert(require("orket.project").open_store(dir, false))
  local ids, by_card, after = {}, {}, 0
  while true do
    local evs = db:events { after = after, limit = 5000 }
    if #evs == 0 then break end
    for _, e in ipairs(evs) do
      after = e.id
      ids[#ids + 1] = e.id
      if e.card then
        by_card[e.card] = by_card[e.card] or {}
        local k = by_card[e.card]
        k[e.kind] = k[e.kind] or {}
        table.insert(k[e.kind], e.data or {})
      end
    end
  end
  local live = require("orket.store.leases").live(db)
  db:close()
  return ids, by_card, live
end

-- Whether the journal and main's history agree: the repository is consistent; no turn is
-- on main twice; each turn commit on main is journaled, each done card's commits and merge
-- are on main, and no card not done has its branch merged.
local function git_agrees(dir, state, by_card)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  assert(repo:check())
  local on_main, summaries = {}, {}
  for _, c in ipairs(assert(repo:log("main", 10000))) do
    on_main[c.id] = true
    if not c.summary:match("^Merge ") then
      assert.is_nil(summaries[c.summary], c.summary .. " twice on main")
      summaries[c.summary] = c.id
    end
  end
  local journaled = {}
  for id, c in pairs(state) do
    local k = by_card[id] or {}
    for _, e in ipairs(k.commit or {}) do journaled[e.id] = true end
    if c.status == "done" then
      for _, e in ipairs(k.commit or {}) do assert.is_true(on_main[e.id] == true, id .. "'s commit " .. e.id .. " not on main") end
      assert.is_table(k.merge, id .. " done without a merge event")
      for _, e in ipairs(k.merge) do
        if e.id then assert.is_true(on_main[e.id] == true, id .. "'s merge " .. e.id .. " not on main") end
      end
    else
      assert.is_nil(k.merge, id .. " merged but " .. c.status)
    end
  end
  local turns = 0
  for summary, cid in pairs(summaries) do
    if summary:match("^%S+: turn %d+") then
      turns = turns + 1
      assert.is_true(journaled[cid] == true, "main's " .. summary .. " (" .. cid .. ") is not in the journal")
    end
  end
  return turns
end

-- A full disk for the repository: workspace/ (main's view and its .git, where every commit's
-- objects go) on a small tmpfs of its own, filled for a moment by a file inside .git (git
-- ignores it). -> {fill(), free(), unmount()} | nil, why: mounting needs root or a user
-- namespace that allows it.
local function small_disk(dir)
  local ws = H.quote(dir .. "/workspace")
  -- (before the first run there is no workspace yet: the first run makes it, on the tmpfs)
  local had = H.sh("test -e " .. ws) == 0
  if had then assert(H.sh(string.format("mv %s %s.before", ws, ws)) == 0) end
  local st, out = H.sh(string.format("mkdir %s && mount -t tmpfs -o size=32m orket-chaos %s", ws, ws))
  if st ~= 0 then
    H.sh("rmdir " .. ws)
    if had then H.sh(string.format("mv %s.before %s", ws, ws)) end
    return nil, (out:gsub("%s+$", ""))
  end
  if had then assert(H.sh(string.format("cp -a %s.before/. %s/ && rm -rf %s.before", ws, ws, ws)) == 0) end
  local disk = {}
  function disk.fill() H.sh("head -c 64m /dev/zero >" .. ws .. "/.git/chaos-filler") end
  function disk.free() os.remove(dir .. "/workspace/.git/chaos-filler") end
  function disk.unmount()
    if disk.gone then return end
    disk.gone = true
    H.sh("umount -l " .. ws)
  end
  return disk
end

-- How many runs the workers ended for a full disk (a git event "disk_full" each)
local function disk_fulls(dir)
  local n = 0
  for k = 1, 3 do n = n + select(2, (H.read(dir .. "/w" .. k .. ".out") or ""):gsub('"action":"disk_full"', "")) end
  return n
end

-- What the workers said last (a failure's message)
local function said(dir)
  local out = "\nruns: " .. H.orket("runs --json", { cwd = dir }).stdout
  for k = 1, 3 do
    local last = {}
    for line in (H.read(dir .. "/w" .. k .. ".out") or ""):gmatch("[^\n]+") do
      if not line:find('"type":"tool"', 1, true) and not line:find('"type":"model"', 1, true) then
        last[#last + 1] = line
        if #last > 8 then table.remove(last, 1) end
      end
    end
    out = out .. "\nw" .. k .. ": " .. table.concat(last, "\n  ") .. "\n  err: " .. (H.read(dir .. "/w" .. k .. ".err") or ""):sub(-2000)
  end
  return out
end

describe("the chaos soak", function()
  local fake, proxy, primary, standby, disk
  -- the processes the soak started, pid -> its start time (/proc's stat, field 22): one
  -- that ended long ago may have left its pid to another process, which must not be taken
  -- for it (killed, or called left behind)
  local pids = {}
  local function started_at(pid)
    local st = H.read("/proc/" .. pid .. "/stat")
    return st and st:match("^%d+ %b() " .. ("%S+ "):rep(19) .. "(%d+)")
  end
  local function ours(pid) return pids[pid] ~= nil and pids[pid] == started_at(pid) and H.alive(pid) end
  local disk_outcome = { stopped = 0 }
  after_each(function()
    if disk then disk.unmount() end
    for pid in pairs(pids) do if ours(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end end
    pids = {}
    H.kill_servers()
    if proxy then proxy.stop() end
    if fake then fake.stop() end
    if standby then standby.stop() end
    if primary then primary.stop() end
    H.cleanup()
  end)

  it("works ten rocks on two servers and three workers over PostgreSQL with a standby through random faults, "
    .. "each card once", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    print(string.format("  note: chaos seed %d (ORKET_CHAOS_SEED=%d repeats it)", SEED, SEED))
    math.randomseed(SEED)
    primary = PG.start { commits_survive_kill = true, sync_standby = true }
    standby = PG.standby(primary)
    local url = primary.url:gsub("host=([^&]*)", "host=%1," .. standby.dir) .. "&target_session_attrs=read-write"
    fake = require("tests.fake_server").start()
    local scratch = H.tmpdir()
    proxy = start_proxy(fake.port, scratch)
    local epics = {}
    for r = 1, ROCKS do epics[r] = { id = "C" .. r, n = PER_ROCK } end
    local dir = WP.project(proxy.url, { name = "chaos", epics = epics, rocks = true, store_url = url,
      retry = "{ max_attempts = 4, base_ms = 20, max_ms = 100 }", timeouts = "{ first_byte_ms = 1500, idle_ms = 1500 }" })
    local disk_why
    disk, disk_why = small_disk(dir)
    if not disk then
      disk_outcome.skipped = "no full disk for the repository: a small filesystem of its own could not be mounted ("
        .. disk_why .. "; it needs root or a user namespace that may mount)"
    end
    local admin = H.api_key(dir, "admin", "admin")
    -- two servers, each from a directory of its own; a killed one is started again there
    local homes = { dir, F.server_copy(dir) }
    local servers = {}
    local function serve(i)
      servers[i] = H.serve(homes[i], { args = "--workers 0", env = { ORKET_SERVE_LIMITS = LIMITS } })
      pids[servers[i].pid] = started_at(servers[i].pid) or false
    end
    serve(1)
    serve(2)
    -- two clients, each moved to the other server whenever its stream ends
    local turn = { 0, 1 }
    local clients = {}
    for c = 1, 2 do
      clients[c] = follower(function()
        turn[c] = turn[c] % 2 + 1
        return servers[turn[c]].url
      end, admin)
    end
    -- the ten runs, asked of either server
    for r = 1, ROCKS do
      local st, doc = H.api(servers[r % 2 + 1], "POST", "/v1/runs", admin, { target = "RC" .. r })
      assert.equal(201, st, cjson.encode(doc))
    end
    local workers = {}
    local function work(k)
      workers[k] = WP.start_worker(dir, k, { lease_ms = LEASE_MS })
      pids[workers[k]] = started_at(workers[k]) or false
    end
    for k = 1, 3 do work(k) end
    -- the faults, each at a point of the board's progress (cards merged into main)
    local plan = {}
    for _ = 1, 3 do plan[#plan + 1] = { kind = "kill worker", at = math.random(5, N - 25), which = math.random(1, 3) } end
    for _ = 1, 2 do plan[#plan + 1] = { kind = "kill server", at = math.random(5, N - 25), which = math.random(1, 2) } end
    plan[#plan + 1] = { kind = "failover", at = math.random(N // 3, N // 2) }
    table.sort(plan, function(a, b) return a.at < b.at end)
    -- the full disk last: every run a worker joins meanwhile ends failed at its first write
    -- to the repository (as it should: a person makes room and resumes it), and the workers,
    -- with no run left, end before any later fault
    if disk then plan[#plan + 1] = { kind = "full disk", at = math.min(N - 5, plan[#plan].at + math.random(3, 10)) } end
    local function merged()
      local p = io.popen("ls -1 " .. H.quote(dir .. "/workspace") .. " 2>/dev/null")
      local n = 0
      for name in p:lines() do if name:match("%.line$") then n = n + 1 end end
      p:close()
      return n
    end
    local done_faults, waited, deadline, filled = {}, 0, 600000, nil
    local function any_worker()
      for k = 1, 3 do if ours(workers[k]) then return true end end
    end
    while any_worker() and waited < deadline do
      orket.sleep(100)
      waited = waited + 100
      local f = plan[#done_faults + 1]
      if f and merged() >= f.at then
        clients[2].move() -- (the second moves with every fault too, before it)
        done_faults[#done_faults + 1] = f.kind .. " at " .. f.at
        -- and the first client moves to the other server, whichever server dies
        clients[1].move()
        if f.kind == "kill worker" then
          if ours(workers[f.which]) then os.execute("kill -KILL " .. workers[f.which]) end
          work(f.which)
        elseif f.kind == "kill server" then
          -- (its shell writes its status when it has died: not to be taken for the next one's)
          servers[f.which].kill()
          serve(f.which)
        elseif f.kind == "full disk" then
          disk.fill()
          filled, disk_outcome.filled = waited, true
        else
          primary.kill()
          orket.sleep(300)
          standby.promote()
        end
      end
      -- the disk stays full until a run met it (or ten seconds passed: then nothing wrote)
      if filled and (disk_fulls(dir) > 0 or waited - filled >= 10000) then
        disk.free()
        filled = nil
      end
    end
    assert(waited < deadline, "the workers did not finish (faults: " .. table.concat(done_faults, ", ") .. ")" .. said(dir))
    print("  note: chaos faults: " .. table.concat(done_faults, ", ") .. "; model: " .. cjson.encode(proxy.faults()))
    assert.equal(#plan, #done_faults, "the workers ended before every fault" .. said(dir))
    -- the rocks were worked side by side: a worker had turns of several runs in flight at once
    local most = 0
    for k = 1, 3 do most = math.max(most, WP.side_by_side(H.read(dir .. "/w" .. k .. ".out") or "")) end
    print("  note: chaos: most runs with turns in flight at once in one worker: " .. most)
    assert.is_true(most >= 2, "no worker worked two runs side by side")
    if filled then disk.free() end
    -- a run the full disk ended (failed, its reason saying so) carries on with `orket resume`
    local full = disk_fulls(dir)
    disk_outcome.stopped = full
    if disk then print("  note: chaos: runs the full disk stopped: " .. full) end
    for _, r in ipairs(cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs) do
      if r.status == "failed" then
        local rr = H.orket("resume " .. math.tointeger(r.id), { cwd = dir })
        assert.equal(0, rr.status, rr.stderr .. rr.stdout:sub(-3000))
      end
    end
    -- every run ended; every card done once, or blocked with its reason, or waiting on one
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(ROCKS, #runs)
    for _, r in ipairs(runs) do assert.is_true(r.status == "done" or r.status == "failed", cjson.encode(r)) end
    local state = WP.board_state(dir)
    local count = { done = 0, blocked = 0, waiting = 0 }
    for id, c in pairs(state) do
      if c.status == "done" then
        count.done = count.done + 1
        assert.equal(1, c.done, id .. " moved to done " .. c.done .. " times")
        assert.equal(id .. "\n", H.read(dir .. "/workspace/" .. id .. ".line"), id .. "'s effect")
      elseif c.status == "blocked" then
        count.blocked = count.blocked + 1
        assert.matches("[Tt]he model", cjson.encode(H.card_json(dir, id).comments), id .. " blocked without its reason")
      else
        -- an issue that waits on one blocked before it (every tenth depends on the one before)
        count.waiting = count.waiting + 1
        local e, i = id:match("^(.-)%-(%d+)$")
        local before = state[e .. "-" .. (tonumber(i) - 1)]
        assert.is_true(tonumber(i) % 10 == 0 and before and before.status ~= "done",
          id .. " is " .. c.status .. ", a state nobody acts on\n" .. table.concat((getmetatable(c) or { lines = {} }).lines, "\n"))
      end
    end
    print(string.format("  note: chaos end: %d cards done, %d blocked, %d waiting on a blocked one", count.done,
      count.blocked, count.waiting))
    assert.equal(N, count.done + count.blocked + count.waiting)
    assert.is_true(count.done >= N * 0.8, count.done .. " cards done")
    -- the journal and the git history agree; no lease is held
    local ids, by_card, live = journal(dir)
    local turns = git_agrees(dir, state, by_card)
    assert.is_true(turns >= count.done)
    assert.same({}, live)
    -- every client saw every event once, in order, across its moves
    for c = 1, 2 do
      local cl = clients[c]
      H.wait_for(function() orket.sleep(20) return #cl.ids >= #ids end, "client " .. c .. " to catch up", 3000)
      cl.stop()
      assert.equal(0, cl.dups, "client " .. c .. " saw events twice")
      assert.same(ids, cl.ids)
      assert.is_true(cl.moves >= 1, "client " .. c .. " never moved")
    end
    -- no process, lock or sandbox left
    for i = 1, 2 do assert.equal(0, servers[i].stop()) end
    for pid in pairs(pids) do assert.is_false(ours(pid), "process " .. pid .. " is left") end
    pids = {}
    assert.same({}, H.sandboxes(dir, false))
    -- on a sanitizer build, a worker's report goes to its own stderr, which nothing else
    -- reads (a worker killed or ending by itself is not waited on for its status)
    for k = 1, 3 do
      local err = H.read(dir .. "/w" .. k .. ".err") or ""
      for _, mark in ipairs { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:" } do
        local at = err:find(mark, 1, true)
        assert.is_nil(at, "worker " .. k .. "'s stderr: " .. err:sub(at or 1, (at or 1) + 3000))
      end
    end
    local _, locks = H.sh("find " .. H.quote(dir .. "/workspace/.git") .. " -name '*.lock'")
    assert.equal("", locks)
  end)

  -- what the soak did with the repository's disk: said here as a test of its own, a skip
  -- with its reason where no small filesystem could be mounted
  it("filled the repository's disk during the soak, and the runs it stopped carried on after `orket resume`", function()
    if disk_outcome.skipped then return pending("skipped: " .. disk_outcome.skipped) end
    assert.is_true(disk_outcome.filled, "the soak did not run, or ended before the disk was filled")
    assert.is_true(disk_outcome.stopped >= 1, "no git operation met the full disk")
  end)
end)
