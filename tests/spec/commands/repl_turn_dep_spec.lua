-- The REPL's project:turn on a card that gets no turn: one waiting for a dependency that is
-- not done is refused before any run starts (EDEPENDENCY, the dependency named), so no
-- empty run is recorded however often it is asked; one the engine skips for another reason
-- (its epic archived) ends its run saying why, in the journal as in the answer.
local H = require "tests.helpers"
local console = require "orket.terminal.console"

local function runs(p) return p.db:row("SELECT count(*) AS n FROM runs").n end

describe("project:turn of a card that gets no turn", function()
  after_each(H.cleanup)

  it("is refused before a run starts while a dependency is not done", function()
    local p = assert(console.open(H.example("notes")))
    for _ = 1, 2 do
      local none, err, code = p:turn("NOTES-2")
      assert.is_nil(none)
      assert.equal("EDEPENDENCY", code)
      assert.equal("board: NOTES-2: the issue cannot start while a card it depends on is not done; finish the "
        .. "dependencies first, or move it to blocked with reason dependency (NOTES-2: waits for NOTES-1 (ready, "
        .. "not finished); next: orket run NOTES)", err)
    end
    assert.equal(0, runs(p))
    assert.equal("ready", p.board:get("NOTES-2").status)
    -- once the dependency is done, the card takes its turn
    assert.equal("code_review", assert(p:turn("NOTES-1")).status)
    assert.equal("done", assert(p:turn("NOTES-1")).status)
    assert.equal("handed_in", assert(p:turn("NOTES-2")).outcome)
    p:close()
  end)

  it("ends the run of a card the engine skipped with the reason", function()
    local p = assert(console.open(H.example("notes")))
    -- (a person archived the epic: its issues keep their status, and get no turn)
    assert(p.db:run("UPDATE cards SET status = 'archived' WHERE id = 'NOTES'"))
    local none, err, code = p:turn("NOTES-1")
    assert.is_nil(none)
    assert.equal("ENOTURN", code)
    local why = err:match("^NOTES%-1 got no turn %(status ready%): (.+)$")
    assert.matches("NOTES is archived", why)
    local ev = p.db:row("SELECT data FROM events WHERE kind = 'run_end' AND run_id = 1")
    local data = require("cjson").decode(ev.data)
    assert.equal("stopped", data.status)
    assert.equal("NOTES-1 got no turn: " .. why, data.reason)
    p:close()
  end)
end)
