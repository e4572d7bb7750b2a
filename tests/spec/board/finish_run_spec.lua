-- db:finish_run on the backend under test (tests.backends: SQLite, or PostgreSQL under
-- tests/with_pg.lua): with {running = true}, as each worker of a run concludes it, only the
-- first conclusion ends the run and journals its run_end; the later ones change nothing.
local H = require "tests.helpers"
local B = require "tests.backends"

local function run_ends(db, run)
  local out = {}
  for _, e in ipairs(db:events { run = run }) do
    if e.kind == "run_end" then out[#out + 1] = e.data.status end
  end
  return out
end

describe("finish_run on " .. B.name(), function()
  after_each(H.cleanup)

  it("ends a running run once when asked for a running one: the later conclusions write nothing", function()
    local db = B.open_store()
    local run = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    assert.same({ true }, { db:finish_run(run, "done", { running = true }) })
    local ended = db:row("SELECT status, ended_at FROM runs WHERE id = ?", run)
    orket.sleep(5)
    -- a second worker's conclusion, even a different one: the run ended already
    assert.same({ false, "done" }, { db:finish_run(run, "stalled", { running = true }) })
    assert.same({ false, "done" }, { db:finish_run(run, "done", { running = true }) })
    assert.same(ended, db:row("SELECT status, ended_at FROM runs WHERE id = ?", run))
    assert.same({ "done" }, run_ends(db, run))
    assert.same({ nil, "store: no run 999", "ENOENT" }, { db:finish_run(999, "done", { running = true }) })
    db:close()
  end)

  it("journals the reason it is given with the run_end, and refuses one that is not text", function()
    local db = B.open_store()
    local run = assert(db:record_run { target = "E", kind = "epic", data = {} })
    assert.has_error(function() db:finish_run(run, "done", { reason = 7 }) end,
      "bad argument #3 to 'finish_run' (reason: string expected, got number)")
    assert.same({ true }, { db:finish_run(run, "done", { reason = "E-1 was already done when the run began" }) })
    local other = assert(db:record_run { target = "F", kind = "epic", data = {} })
    assert.same({ true }, { db:finish_run(other, "stalled") })
    local got = {}
    for _, e in ipairs(db:events {}) do
      if e.kind == "run_end" then got[#got + 1] = { e.run, e.data.status, e.data.reason } end
    end
    assert.same({ { run, "done", "E-1 was already done when the run began" }, { other, "stalled" } }, got)
    db:close()
  end)

  it("lets a later done replace a stalled or failed end: one worker's own budget or fault is not the run's", function()
    local db = B.open_store()
    for _, first in ipairs { "stalled", "failed" } do
      local run = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
      assert.same({ true }, { db:finish_run(run, first, { running = true }) })
      -- another of its own kind changes nothing; the workers that worked the cards to the end do
      assert.same({ false, first }, { db:finish_run(run, first, { running = true }) })
      assert.same({ true }, { db:finish_run(run, "done", { running = true }) })
      assert.same({ false, "done" }, { db:finish_run(run, "done", { running = true }) })
      assert.same({ false, "done" }, { db:finish_run(run, "stalled", { running = true }) })
      assert.equal("done", db:row("SELECT status FROM runs WHERE id = ?", run).status)
      assert.same({ first, "done" }, run_ends(db, run))
    end
    db:close()
  end)

  it("takes the ends orket.store.runs lists and no other: what lists runs by state knows each one", function()
    local db = B.open_store()
    local runs = require "orket.store.runs"
    local run = assert(db:record_run { target = "E", kind = "epic" })
    -- a REPL turn's end (orket.terminal.console) among them
    for _, st in ipairs { "stopped", "done" } do assert.is_true(db:finish_run(run, st)) end
    for _, bad in ipairs { "running", "stoped", "killed" } do
      local ok, e = pcall(db.finish_run, db, run, bad)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'finish_run' (status \"" .. bad .. "\": one of " .. table.concat(runs.ENDS, ", ")
        .. ")", e, 1, true)
    end
    assert.equal("done", db:row("SELECT status FROM runs WHERE id = ?", run).status)
    db:close()
  end)

  it("still ends a run of any status without it (a resumed interrupted run ends so)", function()
    local db = B.open_store()
    local run = assert(db:record_run { target = "E", kind = "epic" })
    assert.is_true(db:finish_run(run, "interrupted"))
    assert.is_true(db:finish_run(run, "done"))
    assert.equal("done", db:row("SELECT status FROM runs WHERE id = ?", run).status)
    assert.same({ "interrupted", "done" }, run_ends(db, run))
    db:close()
  end)
end)
