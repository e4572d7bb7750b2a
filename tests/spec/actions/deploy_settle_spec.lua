-- A run's end waits for its deploys' checks (orket.sandboxes.deploy.await_checks). A start
-- that failed ends its sandbox's row (exited, never healthy) before its owner journals the
-- cards' failed or skipped check "the sandbox starts": read in between, the deploy was
-- taken as settled and the run's summary missed the check, at random (more often on
-- PostgreSQL). It is settled once the check is journaled, or its owner is gone.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"
local deploy = require "orket.sandboxes.deploy"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local ops = require "orket.store.sandboxes"

describe("a deploy whose start failed", function()
  after_each(H.cleanup)

  it("is waited for until its owner journals the cards' check, or is gone", function()
    local db = require("tests.backends").open_store()
    imports.insert_card(db, { id = "E", type = "epic", name = "E", priority = 2, seat = "developer" })
    imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "E1", priority = 2, seat = "developer" })
    local b = board_mod.open(db)
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = { { kind = "http", path = "/" } } })
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local settings = { sandbox = require("orket.settings.sandbox").sandbox({}) }
    settings.sandbox.deploy = "merge"
    settings.sandbox.health.start_timeout_ms = 0
    local real = deploy.CHECKS_WAIT_MS
    finally(function() deploy.CHECKS_WAIT_MS = real end)
    deploy.CHECKS_WAIT_MS = 0
    local me = math.tointeger(uv.os_getpid()) -- a live owner: this process
    local id = ops.insert(db, { target = "main", port = 8080, socket = "", command = "[]", owner_pid = me })
    ops.set_status(db, id, "exited", "sandbox: a limit of this host, not a fault of the app: ...")
    local function left(pid)
      return deploy.await_checks { db = db, board = b, settings = settings, run_id = run,
        deploys = { { card = "E-1", owner_pid = pid } } }
    end
    -- its owner alive and nothing journaled yet: not settled
    assert.same({ { card = "E-1", owner_pid = me } }, left(me))
    -- journaled: settled, and the skip is found
    db:event { kind = "sandbox_check", card = "E-1", run = run, actor = "orket", data = { sandbox = id, passed = true,
      results = { { kind = "start", name = "the sandbox starts", ok = false, skipped = "go is not installed here" } } } }
    assert.same({}, left(me))
    assert.same({ { card = "E-1", name = "the sandbox starts", why = "go is not installed here", sandbox = id } },
      deploy.skipped_of(db, { "E-1" }, run))
    db:close()
  end)
end)
