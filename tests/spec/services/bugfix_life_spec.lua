-- A rock's bug-fix phase (orket.sandboxes.phase) on the store under test (tests.backends):
-- it opens when the rock is done, bugs are filed by people and by failing health checks
-- (deduplicated by fingerprint), and it ends on a clock the test moves: its open bugs go to
-- a phase-2 rock with their history, its sandboxes are stopped.
local H = require "tests.helpers"
local phase = require "orket.sandboxes.phase"
local bugs = require "orket.actions.bugs"
local clock_mod = require "orket.clock"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local cards = require "orket.store.cards"
local sbops = require "orket.store.sandboxes"
local uv = require "luv"

local DAY = clock_mod.DAY
local SETTINGS = { days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000 }

-- a store with rock R (epic E, issues E-1 and E-2 with seat developer) and rock Q not done
local function board(done)
  local db = require("tests.backends").open_store()
  imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2 })
  imports.insert_card(db, { id = "E", type = "epic", parent = "R", name = "E", priority = 2 })
  imports.insert_card(db, { id = "Q", type = "rock", name = "other", priority = 2 })
  for i = 1, 2 do
    imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "e" .. i, priority = 2,
      seat = "developer" })
  end
  if done ~= false then
    for _, id in ipairs { "E-1", "E-2", "E", "R" } do cards.set_status(db, id, "done", nil, "developer", 0) end
  end
  return db, board_mod.open(db)
end

local function kinds(db, kind)
  local out = {}
  for _, ev in ipairs(db:events {}) do
    if ev.kind == kind then out[#out + 1] = ev end
  end
  return out
end

-- a live sandbox row of the folder dir (its socket names it), another machine's when machine
-- is given (its owner's pid then no process here)
local function sandbox_in(db, dir, port, machine)
  local id = sbops.insert(db, { target = "main", port = port, socket = "", command = "[]",
    owner_pid = machine and (1 << 22) + 7 or nil, owner_start = machine and "1" or nil, owner_machine = machine })
  sbops.set_socket(db, id, dir .. "/.orket/sandboxes/" .. id .. "/app.sock")
  sbops.set_status(db, id, "healthy")
  return id
end

local OTHER_MACHINE = "bfl-other-host/0123abcd-0000-4000-8000-000000000001.4026531836"

-- two folders sharing the store, real paths: a's sandbox (mine), b's (theirs), and another
-- machine's at a's path whose folder is not shared here (far)
local function two_folders(db)
  local a, b = uv.fs_realpath(H.tmpdir()), uv.fs_realpath(H.tmpdir())
  local mine = sandbox_in(db, a, 8080)
  local theirs = sandbox_in(db, b, 8081)
  local far = sandbox_in(db, a, 8082, OTHER_MACHINE)
  return a, b, mine, theirs, far
end

local function tick(db, c, stopped)
  return phase.tick(db, { settings = SETTINGS, clock = c, stop = function(_, id)
    stopped[#stopped + 1] = id
    return true
  end })
end

describe("the bug-fix phase", function()
  after_each(H.cleanup)

  it("opens once when its rock is done, not before", function()
    local db, b = board(false)
    local c = clock_mod.new()
    local r = tick(db, c, {})
    assert.same({}, r.started)
    assert.same({}, r.phases)
    for _, id in ipairs { "E-1", "E-2", "E", "R" } do cards.set_status(db, id, "done", nil, "developer", 0) end
    local before = c:now()
    r = tick(db, c, {})
    local after = c:now()
    assert.same({ "R" }, r.started)
    assert.equal(1, #r.phases)
    assert.equal("open", r.phases[1].status)
    assert.equal(1, r.phases[1].day)
    -- the clock is the system's: the tick's second is one of those it ran in
    local ends = r.phases[1].ends_at
    assert.is_true(ends == phase.iso(before + 7 * DAY) or ends == phase.iso(after + 7 * DAY), ends)
    r = tick(db, c, {})
    assert.same({}, r.started)
    local ev = kinds(db, "bugfix_start")
    assert.equal(1, #ev)
    assert.equal("R", ev[1].card)
    assert.equal("R", ev[1].data.rock)
    -- after a merge: the card's rock, done now, already has its phase
    assert.is_nil(phase.after_done(b, "E-1", { clock = c }))
    db:close()
  end)

  it("files bugs from people as ready issues in a bugs epic under the rock, counted per day", function()
    local db, b = board()
    local c = clock_mod.new()
    tick(db, c, {})
    local id, dup = bugs.file_bug(db, { rock = "R", title = "  The list is empty  ", body = "Steps: open /",
      author = "ann", clock = c })
    assert.equal("R-bugs-1", id)
    assert.is_false(dup)
    local card = b:get(id)
    assert.equal("ready", card.status)
    assert.equal("The list is empty", card.summary)
    assert.equal("Steps: open /", card.description)
    assert.equal("developer", card.seat) -- the seat that worked the rock
    assert.equal("R", b:get("R-bugs").parent)
    assert.equal("epic", b:get("R-bugs").type)
    assert.equal(1, #assert(b:ready("R")))
    c:advance(3600)
    bugs.file_bug(db, { rock = "R", title = "second", clock = c })
    local st = phase.status(db, { settings = SETTINGS, clock = c })[1]
    assert.equal(2, st.bugs)
    assert.equal(2, st.open_bugs)
    assert.equal(2, st.rate)
    assert.equal("R-bugs", st.epic)
    -- once the bugs epic is done, the next bug goes to a new one
    for _, x in ipairs { "R-bugs-1", "R-bugs-2", "R-bugs" } do cards.set_status(db, x, "done", nil, "developer", 0) end
    id = bugs.file_bug(db, { rock = "R", title = "third", clock = c })
    assert.equal("R-bugs.2-1", id)
    assert.equal("R", b:get("R-bugs.2").parent)
    db:close()
  end)

  it("refuses bad reports with clear errors and misuse with argument errors", function()
    local db = board()
    local ok, msg, code = bugs.file_bug(db, { rock = "NOPE", title = "x" })
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.equal('bug: no rock "NOPE"', msg)
    ok, msg, code = bugs.file_bug(db, { rock = "E", title = "x" })
    assert.equal("EINVAL", code)
    assert.equal("bug: E is an epic; bugs are filed under a rock", msg)
    ok, msg, code = bugs.file_bug(db, { rock = "R", title = " \n " })
    assert.equal("EINVAL", code)
    assert.matches("needs a title", msg)
    ok, msg, code = bugs.file_bug(db, { rock = "R", title = "x", body = ("b"):rep(bugs.BODY_MAX + 1) })
    assert.equal("EINVAL", code)
    assert.equal("bug: the body is 65537 characters, more than 65536", msg)
    ok, msg, code = bugs.file_bug(db, { rock = "R", title = ("t"):rep(bugs.TITLE_MAX + 1) })
    assert.equal("EINVAL", code)
    assert.matches("the title is 501 characters", msg)
    assert.has_error(function() bugs.file_bug(db, { rock = 1, title = "x" }) end,
      "bad argument #2 to 'file_bug' (field 'rock' must be a string)")
    assert.has_error(function() bugs.file_bug(nil, {}) end, "bad argument #1 to 'file_bug' (store expected)")
    assert.is_nil(cards.head(db, "R-bugs")) -- nothing half-written
    db:close()
  end)

  it("comments on an open bug with the same fingerprint instead of filing it again", function()
    local db, b = board()
    local c = clock_mod.new()
    tick(db, c, {})
    local a = bugs.file_bug(db, { rock = "R", title = "crash on save", fingerprint = "fp1", clock = c })
    local a2, dup = bugs.file_bug(db, { rock = "R", title = "crash on save", body = "again", fingerprint = "fp1",
      clock = c })
    assert.equal(a, a2)
    assert.is_true(dup)
    local com = b:comments(a)
    assert.equal(1, #com)
    assert.matches("^Seen again %(.-%): crash on save\n\nagain$", com[1].body)
    assert.equal(1, phase.status(db, { settings = SETTINGS, clock = c })[1].bugs)
    -- fixed: the same failure later is a new bug
    cards.set_status(db, a, "done", nil, "developer", 0)
    local a3, dup3 = bugs.file_bug(db, { rock = "R", title = "crash on save", fingerprint = "fp1", clock = c })
    assert.are_not.equal(a, a3)
    assert.is_false(dup3)
    db:close()
  end)

  it("files a failing health check with the log's last lines, once per failure and deduplicated", function()
    local db, b = board()
    local c = clock_mod.new()
    local dir = H.tmpdir()
    tick(db, c, {})
    local sid = sbops.insert(db, { target = "main", port = 8080, socket = dir .. "/app.sock", command = "[]" })
    local log = {}
    for i = 1, 50 do log[#log + 1] = "line " .. i end
    H.write(dir .. "/app.log", table.concat(log, "\n") .. "\n")
    local function unhealthy(detail)
      db:tx(function()
        db:event { kind = "sandbox_unhealthy", data = { id = sid, target = "main", detail = detail } }
        return true
      end)
    end
    unhealthy("HTTP 500")
    -- (as the store gives times on both backends: ISO 8601 UTC with milliseconds)
    local at = db:row("SELECT " .. db.dialect.time("at") .. " FROM events WHERE kind = 'sandbox_unhealthy' "
      .. "ORDER BY id DESC LIMIT 1").at
    -- the tick an hour after the failure: the bug says when the app failed, with its id
    -- as written (a float from JSON was "Sandbox 3.0")
    c:advance(3600)
    local r = tick(db, c, {})
    assert.equal(1, #r.filed)
    assert.is_false(r.filed[1].duplicate)
    local card = b:get(r.filed[1].card)
    assert.equal("sandbox main: HTTP 500", card.summary)
    assert.matches(string.format("^Sandbox %d %%(main%%) failed its health check at %s: HTTP 500\n", sid,
      (at:gsub("%.%d+Z$", "Z"):gsub("%p", "%%%0"))), card.description)
    assert.matches("line 50\n```", card.description, nil, true)
    assert.matches("line 21\n", card.description, nil, true)
    assert.is_nil(card.description:find("line 20\n", 1, true)) -- the last 30 lines
    -- nothing new: nothing filed
    assert.equal(0, #tick(db, c, {}).filed)
    -- the same failure again: a comment; an owner gone (no exit status) is no bug
    unhealthy("HTTP 500")
    db:tx(function()
      db:event { kind = "sandbox_exit", data = { id = sid, target = "main", detail = "its owner is gone" } }
      return true
    end)
    r = tick(db, c, {})
    assert.equal(1, #r.filed)
    assert.is_true(r.filed[1].duplicate)
    assert.equal(card.id, r.filed[1].card)
    assert.equal(1, #b:comments(card.id))
    -- an app that ended by itself is another bug
    db:tx(function()
      db:event { kind = "sandbox_exit", data = { id = sid, target = "main", detail = "the app exited (status 3)", code = 3 } }
      return true
    end)
    r = tick(db, c, {})
    assert.equal(1, #r.filed)
    assert.is_false(r.filed[1].duplicate)
    assert.equal("sandbox main: the app exited (status 3)", b:get(r.filed[1].card).summary)
    db:close()
  end)

  it("ends after bug_fix.days: sandboxes stopped, open bugs moved to a phase-2 rock with their history", function()
    local db, b = board()
    local c = clock_mod.new()
    tick(db, c, {})
    local sid = sbops.insert(db, { target = "main", port = 8080, socket = "/nowhere/app.sock", command = "[]" })
    local fixed = bugs.file_bug(db, { rock = "R", title = "fixed one", clock = c })
    local open = bugs.file_bug(db, { rock = "R", title = "open one", fingerprint = "fp", clock = c })
    b:comment(open, { author = "ann", body = "still there" })
    cards.set_status(db, fixed, "done", nil, "developer", 0)
    local stopped = {}
    c:advance(7 * DAY - 60)
    local r = tick(db, c, stopped)
    assert.same({}, r.ended)
    assert.equal(7, r.phases[1].day)
    c:advance(61)
    r = tick(db, c, stopped)
    assert.equal(1, #r.ended)
    local e = r.ended[1]
    assert.equal("R-2", e.next_rock)
    assert.equal("bug_fix.days (7) passed", e.reason)
    assert.same({ open }, e.moved)
    assert.same({ sid }, stopped)
    assert.equal("rock", b:get("R-2").type)
    assert.equal("R-2", b:get("R-2-bugs").parent)
    local moved = b:get(open)
    assert.equal("R-2-bugs", moved.parent)
    assert.equal("ready", moved.status)
    assert.equal("still there", b:comments(open)[1].body) -- its history kept
    assert.equal("R-bugs", b:get(fixed).parent)
    assert.equal("done", b:get("R-bugs").status) -- what is left of it is done
    local st = phase.status(db, { settings = SETTINGS, clock = c })[1]
    assert.equal("ended", st.status)
    assert.equal("R-2", st.next_rock)
    assert.equal(1, #kinds(db, "bugfix_end"))
    assert.same({ sid }, kinds(db, "bugfix_end")[1].data.sandboxes)
    -- ended once; bugs for R now go to R-2, and the same fingerprint is still the open bug
    assert.same({}, tick(db, c, stopped).ended)
    local again, dup = bugs.file_bug(db, { rock = "R", title = "open one", fingerprint = "fp", clock = c })
    assert.equal(open, again)
    assert.is_true(dup)
    local new = bugs.file_bug(db, { rock = "R", title = "after the end", clock = c })
    assert.equal("R-2-bugs", b:get(new).parent)
    db:close()
  end)

  it("removes the databases kept for its redeploys when the last phase ends", function()
    local db = board()
    local c = clock_mod.new()
    local dir = H.tmpdir()
    local kept = dir .. "/.orket/sandboxes/db.main"
    local function ticked() return phase.tick(db, { settings = SETTINGS, clock = c, dir = dir, stop = function() return true end }) end
    ticked()
    os.execute("mkdir -p " .. H.quote(kept))
    H.write(kept .. "/store.sqlite", "the phase's data")
    c:advance(7 * DAY - 60)
    assert.same({}, ticked().ended)
    assert.equal("the phase's data", H.read(kept .. "/store.sqlite")) -- open: kept for the next redeploy
    c:advance(61)
    assert.equal(1, #ticked().ended)
    assert.is_nil(require("luv").fs_lstat(kept))
    db:close()
  end)

  it("hands on an ending sandbox's databases unless it is marked a side one, a sandbox with no mark too", function()
    local service = require "orket.sandboxes.service"
    local db = board()
    local c = clock_mod.new()
    local home = H.tmpdir()
    -- no phase open: nothing would take them
    assert.is_false(service._hands_on(db, home))
    phase.tick(db, { settings = SETTINGS, clock = c, stop = function() return true end })
    -- a phase open, and no mark: the line's (a sandbox started before marks were written,
    -- or whose owner was killed before it wrote one), kept
    assert.is_true(service._hands_on(db, home))
    assert.is_true(service._mark_side(home))
    assert.is_false(service._hands_on(db, home))
    -- a mark that cannot be written leaves them kept, and says why
    local other = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(other .. "/" .. service.SIDE))
    local ok, err = service._mark_side(other)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_true(service._hands_on(db, other))
    db:close()
  end)

  it("counts as beside a start any other live, unmarked sandbox of its target: a higher id that took makes a lower one side",
    function()
    local service = require "orket.sandboxes.service"
    local db = board()
    local dir = H.tmpdir()
    local function row(target) return sbops.insert(db, { target = target, port = 1, socket = "", command = "[]" }) end
    local a, b, c = row("main"), row("main"), row("other")
    -- b (the higher id) took the phase's data first, so it is the line; a took nothing and
    -- sees b: it is side, never a second line
    assert.is_true(service._beside(db, a, "main", dir))
    assert.is_true(service._beside(db, b, "main", dir))
    assert.is_false(service._beside(db, c, "other", dir))
    -- a sandbox marked side is not the line: beside it, another is not
    local home = dir .. "/.orket/sandboxes/" .. a
    os.execute("mkdir -p " .. H.quote(home))
    assert.is_true(service._mark_side(home))
    assert.is_false(service._beside(db, b, "main", dir))
    db:close()
  end)

  -- On a store several folders share, another folder's sandbox of the target has no SIDE
  -- mark here: it was taken for this folder's line, and a deploy beside it marked side.
  it("does not count another folder's sandbox of a shared store as beside a start", function()
    local service = require "orket.sandboxes.service"
    local db = board()
    local dir = H.tmpdir()
    local function row(folder)
      return sbops.insert(db, { target = "main", port = 1, command = "[]",
        socket = folder .. "/.orket/sandboxes/" .. 90 .. "/app.sock" })
    end
    local theirs, mine = row("/elsewhere/project"), row(dir)
    assert.is_false(service._beside(db, mine, "main", dir))
    assert.is_false(service._beside(db, theirs, "main", "/elsewhere/project"))
    -- one of this folder's is still beside it
    row(dir)
    assert.is_true(service._beside(db, mine, "main", dir))
    db:close()
  end)

  -- On a store several folders share, each folder's sandbox runs its own checkout: the
  -- phase's recheck took the newest healthy sandbox of any folder and target.
  it("runs the acceptance checks again only against its own folder's sandbox of main", function()
    local cjson = require "cjson"
    local deploy = require "orket.sandboxes.deploy"
    local recheck = require "orket.sandboxes.recheck"
    local db = board()
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = { { kind = "http", path = "/" } } })
    local dir = H.tmpdir()
    local real = require("luv").fs_realpath(dir)
    local settings = { days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000,
      recheck_interval_ms = 1000 }
    local c = clock_mod.new()
    local function healthy(folder, target)
      local id = sbops.insert(db, { target = target or "main", port = 1, command = "[]",
        socket = folder .. "/.orket/sandboxes/90/app.sock" })
      sbops.set_status(db, id, "healthy")
      return id
    end
    local seen = {}
    local accept_after = deploy.accept_after
    deploy.accept_after = function(o)
      seen[#seen + 1] = o.sandbox.id
      return {}
    end
    local ok, err = pcall(function()
      local function tick_here()
        return phase.tick(db, { settings = settings, clock = c, dir = dir, recheck = recheck.due,
          stop = function() return true end })
      end
      tick_here() -- opens R's phase
      local mine = healthy(real)
      healthy("/elsewhere/project") -- newer, another folder's
      healthy(real, "other")        -- newer, this folder's of another target
      c:advance(2)
      local r = tick_here()
      assert.same({ mine }, seen)
      assert.equal(1, #r.rechecked)
      assert.equal(mine, r.rechecked[1].sandbox)
      -- none of this folder's healthy: the pass waits
      sbops.set_status(db, mine, "stopped")
      c:advance(2)
      r = tick_here()
      assert.same({}, r.rechecked)
      assert.same({ mine }, seen)
    end)
    deploy.accept_after = accept_after
    assert(ok, err)
    db:close()
  end)

  it("takes a live owner whose /proc entry cannot be read for alive: reconcile leaves its sandbox", function()
    local service = require "orket.sandboxes.service"
    local pidstart = require "orket.sandboxes.pidstart"
    local db = board()
    local id = sbops.insert(db, { target = "main", port = 1, socket = "", command = "[]", owner_pid = 1, owner_start = "5" })
    local real = pidstart.stat
    pidstart.stat = function() return nil, "unreadable" end
    local ok, out = pcall(service.reconcile, db)
    pidstart.stat = real
    assert(ok, out)
    assert.same({}, out)
    assert.equal(1, #sbops.list(db, false))
    assert.equal(id, sbops.list(db, false)[1].id)
    db:close()
  end)

  it("hands on a reconciled sandbox's databases before its end is recorded", function()
    local service = require "orket.sandboxes.service"
    local database = require "orket.sandboxes.database"
    local db = board()
    local c = clock_mod.new()
    phase.tick(db, { settings = SETTINGS, clock = c, stop = function() return true end })
    local dir = H.tmpdir()
    local f = assert(io.open("/proc/sys/kernel/pid_max"))
    local dead = math.tointeger(tonumber(f:read("l")) + 1)
    f:close()
    local id = sbops.insert(db, { target = "main", port = 1, socket = "", command = '["store:5432=sqlite"]',
      owner_pid = dead, owner_start = "1" })
    local home = dir .. "/.orket/sandboxes/" .. id
    sbops.set_socket(db, id, home .. "/app.sock")
    os.execute("mkdir -p " .. H.quote(database.folder(home)))
    H.write(database.folder(home) .. "/store.sqlite", "the phase's data")
    -- what a start in another process would see at the hand-over: the sandbox still live
    local put, seen = database.put_kept, nil
    database.put_kept = function(...)
      seen = sbops.get(db, id).status
      return put(...)
    end
    local ok, err = pcall(service.reconcile, db)
    database.put_kept = put
    assert(ok, err)
    assert.equal("starting", seen)
    assert.equal("exited", sbops.get(db, id).status)
    assert.equal("the phase's data", H.read(database.kept_path(dir, "main") .. "/store.sqlite"))
    db:close()
  end)

  it("is extended while more bugs than extend_above come a day, up to max_days", function()
    local db = board()
    local c = clock_mod.new()
    tick(db, c, {})
    c:advance(7 * DAY - 3600)
    bugs.file_bug(db, { rock = "R", title = "one", clock = c })
    bugs.file_bug(db, { rock = "R", title = "two", clock = c })
    c:advance(3601)
    local r = tick(db, c, {})
    assert.same({}, r.ended)
    assert.equal(1, r.phases[1].extended)
    c:advance(DAY)
    r = tick(db, c, {})
    assert.equal(1, #r.ended)
    assert.matches("not above bug_fix.extend_above", r.ended[1].reason)
    assert.equal("R-2", r.ended[1].next_rock)
    db:close()
  end)

  it("ends with nothing to move when every bug is finished", function()
    local db, b = board()
    local c = clock_mod.new()
    tick(db, c, {})
    c:advance(8 * DAY)
    local r = tick(db, c, {})
    assert.equal(1, #r.ended)
    assert.is_nil(r.ended[1].next_rock)
    assert.same({}, r.ended[1].moved)
    assert.is_nil(b:get("R-2"))
    db:close()
  end)

  -- Several folders share the store and each runs its own sandboxes: bugfix_start listed
  -- every live sandbox of the store as the phase's, wherever it ran.
  it("journals its start with the sandboxes of the folder that opened it, the other folders' apart", function()
    local db = board()
    local a, b, mine, theirs, far = two_folders(db)
    local r = phase.tick(db, { settings = SETTINGS, clock = clock_mod.new(), dir = a, stop = function() return true end })
    assert.same({ "R" }, r.started)
    local ev = kinds(db, "bugfix_start")
    assert.equal(1, #ev)
    assert.same({ mine }, ev[1].data.sandboxes)
    assert.same({ { id = theirs, folder = b }, { id = far, folder = a, machine = "bfl-other-host",
      runs_on = "on another machine" } }, ev[1].data.others)
    db:close()
  end)

  -- The merge that finishes a rock opens its phase (orket.sandboxes.deploy): the folder is
  -- the merging run's, not the process's current directory.
  it("opened by the merge that finishes its rock, takes the merging folder's sandboxes for its own", function()
    local deploy = require "orket.sandboxes.deploy"
    local db, b = board(false)
    local a, other, mine, theirs = two_folders(db)
    for _, id in ipairs { "E-1", "E-2", "E", "R" } do cards.set_status(db, id, "done", nil, "developer", 0) end
    assert.is_nil(deploy.after_merge_at(a, { bug_fix = SETTINGS, sandbox = { deploy = "manual" } }, b, "E-1"))
    local ev = kinds(db, "bugfix_start")
    assert.equal(1, #ev)
    assert.same({ mine }, ev[1].data.sandboxes)
    assert.same({ theirs, other }, { ev[1].data.others[1].id, ev[1].data.others[1].folder })
    assert.equal(2, #ev[1].data.others)
    db:close()
  end)

  -- A run's own tick said how many sandboxes its phase's end stopped, not those it left
  -- running for other folders to stop.
  it("ends at a run's start with an event counting the sandboxes stopped and those left to other folders", function()
    local db = board()
    local a = two_folders(db)
    sbops.set_status(db, sandbox_in(db, a, 8083), "exited") -- (not live: neither stopped nor left)
    local ops = require "orket.store.bugfix"
    assert(ops.start(db, "R", clock_mod.system():now() - 8 * DAY, ops.last_event(db)))
    local evs = {}
    -- (a's own sandbox has no owner: its stop, the service's, only records its end)
    phase.at_start(db, SETTINGS, a, function(e) evs[#evs + 1] = e end)
    local ended
    for _, e in ipairs(evs) do if e.type == "bugfix" and e.action == "end" then ended = e end end
    assert.same({ type = "bugfix", action = "end", rock = "R", reason = "bug_fix.days (7) passed", moved = 0,
      stopped = 1, left = 2 }, ended)
    db:close()
  end)
end)
