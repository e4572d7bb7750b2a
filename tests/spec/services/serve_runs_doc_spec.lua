-- orket.serve.runs' doc of a run this server executes: from its run_end on (its engine has
-- ended, orket.engine.executor marks it) it shows as it ended, while the server still lets
-- its engine, lease and lock go; before, a client that read run_end on the run's stream
-- could read the run "running" and live just after.
local runs = require "orket.serve.runs"

describe("a run's doc, live in this server", function()
  it("is running while its engine runs, and shows its stored end once the engine ended", function()
    local db = {} -- (the registry is the store's: keyed by the handle)
    local entry = { id = 7, ended = false }
    runs.registry(db).live[7] = entry
    local row = { id = 7, target = "A", kind = "epic", status = "running", data = "{}", started_at = "t0" }
    local d = runs.doc(db, "/nonexistent", row)
    assert.equal("running", d.state)
    assert.is_true(d.live)
    -- a resumed run's row keeps its interruption's end until it ends again
    row.status, row.ended_at = "interrupted", "t1"
    assert.equal("running", runs.doc(db, "/nonexistent", row).state)
    entry.ended = true
    row.status, row.ended_at = "done", "t2"
    d = runs.doc(db, "/nonexistent", row)
    assert.equal("done", d.state)
    assert.is_false(d.live)
    assert.equal("t2", d.ended_at)
  end)
end)
