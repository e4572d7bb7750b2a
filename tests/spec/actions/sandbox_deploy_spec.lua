-- orket.sandboxes.deploy: when a merge makes a sandbox due (sandbox.deploy = merge, epic,
-- rock or manual), read from the board; and a tree with nothing to run is said at once,
-- with no owner started in the background.
local H = require "tests.helpers"
local deploy = require "orket.sandboxes.deploy"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

local function board()
  local db = require("tests.backends").open_store()
  imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2, seat = "developer" })
  for _, e in ipairs { "E", "F" } do
    imports.insert_card(db, { id = e, type = "epic", parent = "R", name = e, priority = 2, seat = "developer" })
    for i = 1, 2 do
      imports.insert_card(db, { id = e .. "-" .. i, type = "issue", parent = e, name = e .. i, priority = 2,
        seat = "developer" })
    end
  end
  return db, board_mod.open(db)
end

local function done(db, id)
  require("orket.store.cards").set_status(db, id, "done", nil, "developer", 0)
end

describe("sandbox deploys", function()
  after_each(H.cleanup)

  it("are due after each merge, once an epic's issues are done, once a rock's are, never by hand", function()
    local db, b = board()
    assert.equal("E-1 merged", deploy.due("merge", b, "E-1"))
    assert.is_nil(deploy.due("manual", b, "E-1"))
    done(db, "E-1")
    assert.is_nil(deploy.due("epic", b, "E-1"))
    done(db, "E-2")
    assert.equal("epic E done", deploy.due("epic", b, "E-2"))
    assert.is_nil(deploy.due("rock", b, "E-2"))
    done(db, "F-1")
    done(db, "F-2")
    assert.equal("rock R done", deploy.due("rock", b, "F-2"))
    db:close()
  end)

  it("say at once that a tree with nothing to run gets no sandbox", function()
    local db, b = board()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/workspace"))
    H.write(dir .. "/workspace/notes.txt", "nothing to run\n")
    -- main's commit holds nothing to run
    local repo = assert(require("orket.c.gitrepo").init(dir .. "/workspace", { name = "t", email = "t@orket.invalid" }))
    repo:close()
    local settings = { sandbox = require("orket.settings.sandbox").sandbox({}) }
    settings.sandbox.deploy = "merge"
    local d = deploy.after_merge_at(dir, settings, b, "E-1")
    assert.equal("E-1 merged", d.reason)
    assert.is_nil(d.owner_pid)
    assert.matches("^no sandbox started: sandbox: nothing to run in main's tree", d.error)
    settings.sandbox.deploy = "manual"
    assert.is_nil(deploy.after_merge_at(dir, settings, b, "E-1"))
    db:close()
  end)
end)

describe("a run's end", function()
  after_each(H.cleanup)

  it("waits for its deploys' checks, and finds those that could not run here", function()
    local cjson = require "cjson"
    local ops = require "orket.store.sandboxes"
    local uv = require "luv"
    local db, b = board()
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = { { kind = "http", path = "/" } } })
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local settings = { sandbox = require("orket.settings.sandbox").sandbox({}) }
    settings.sandbox.deploy = "merge"
    settings.sandbox.health.start_timeout_ms = 300
    local me = math.tointeger(uv.os_getpid()) -- a live owner: this process
    local function wait(deploys, ms)
      deploy.CHECKS_WAIT_MS = ms
      local t0 = uv.now()
      local left = deploy.await_checks { db = db, board = b, settings = settings, deploys = deploys, run_id = run }
      return left, uv.now() - t0
    end
    local real = deploy.CHECKS_WAIT_MS
    finally(function() deploy.CHECKS_WAIT_MS = real end)
    -- a card without checks, an owner gone: nothing to wait for
    local left, took = wait({ { card = "E-2", owner_pid = me }, { card = "E-1", owner_pid = 2 ^ 22 + 1 } }, 0)
    assert.same({}, left)
    assert.is_true(took < 300, took)
    -- its sandbox healthy but its checks not journaled yet: waited for, then said pending
    local id = ops.insert(db, { target = "main", port = 8080, socket = "", command = "[]", owner_pid = me })
    ops.set_status(db, id, "healthy")
    left = wait({ { card = "E-1", owner_pid = me } }, 0)
    assert.same({ { card = "E-1", owner_pid = me } }, left)
    -- journaled for its sandbox: settled; the skipped check found, once
    local data = { sandbox = id, passed = true, results = { { kind = "http", name = "GET /", ok = true },
      { kind = "browser", name = "the page", ok = false, skipped = "no browser here" } } }
    db:event { kind = "sandbox_check", card = "E-1", run = run, actor = "orket", data = data }
    db:event { kind = "sandbox_check", card = "E-1", run = run, actor = "orket", data = data }
    assert.same({}, (wait({ { card = "E-1", owner_pid = me } }, 0)))
    assert.same({ { card = "E-1", name = "the page", why = "no browser here", sandbox = id } },
      deploy.skipped_of(db, { "E-1", "E-2" }, run))
    -- a sandbox ended (replaced by a later deploy) has nothing left to check either
    local other = ops.insert(db, { target = "main", port = 8081, socket = "", command = "[]", owner_pid = me })
    ops.set_status(db, other, "stopped", "replaced")
    assert.same({}, (wait({ { card = "E-1", owner_pid = me } }, 0)))
    db:close()
  end)

  -- a store several machines share: another machine's row may name the pid of this
  -- machine's owner; only this machine's is the deploy's sandbox
  it("waits for the sandbox its owner started on this machine, not another machine's naming the same pid", function()
    local cjson = require "cjson"
    local ops = require "orket.store.sandboxes"
    local pidstart = require "orket.sandboxes.pidstart"
    local uv = require "luv"
    local db, b = board()
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = { { kind = "http", path = "/" } } })
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local settings = { sandbox = require("orket.settings.sandbox").sandbox({}) }
    settings.sandbox.health.start_timeout_ms = 0
    local real = deploy.CHECKS_WAIT_MS
    finally(function() deploy.CHECKS_WAIT_MS = real end)
    deploy.CHECKS_WAIT_MS = 0
    local me = math.tointeger(uv.os_getpid())
    -- this machine's, healthy, its checks not journaled yet; then another machine's, ended
    local mine = ops.insert(db, { target = "main", port = 8080, socket = "", command = "[]", owner_pid = me,
      owner_machine = pidstart.machine })
    ops.set_status(db, mine, "healthy")
    local far = ops.insert(db, { target = "main", port = 8081, socket = "", command = "[]", owner_pid = me,
      owner_machine = "other-host/0123abcd-0000-4000-8000-000000000001.4026531836" })
    ops.set_status(db, far, "stopped", "replaced")
    local left = deploy.await_checks { db = db, board = b, settings = settings, run_id = run,
      deploys = { { card = "E-1", owner_pid = me } } }
    assert.same({ { card = "E-1", owner_pid = me } }, left)
    db:close()
  end)
end)
