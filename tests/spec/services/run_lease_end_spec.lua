-- A run whose process lost its run lease (paused past it while another process resumed the
-- run) writes nothing more of it, its end included: it wrote interrupted and a run_end over
-- the live run when it woke, and the process that holds the run then took it for stopped
-- by another and abandoned it (docs/store.md, "Several servers and their folders").
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local runlease = require "orket.engine.runlease"
local leases = require "orket.store.leases"
local runs = require "orket.store.runs"

describe("a run whose lease another process took", function()
  after_each(H.cleanup)

  it("writes no end of the run, and says it goes on in that process", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local client = F.llm(b, {})
    local inner, taken = client.chat, false
    local e, events = F.engine(db, b, { llm = client, concurrency = 1 })
    local id = assert(e:start("E"))
    assert.is_nil(runlease.take(db, id))
    -- as a server's run and `orket run`'s: each step fenced, the run stopped once found lost
    runlease.guard(db, id, e, function() e:stop() end)
    function client:chat(req)
      if not taken then
        taken = true
        -- meanwhile (this process paused past its lease) another process resumed the run
        assert(db:tx(function()
          assert.is_nil(leases.run_take(db, id, "elsewhere/-/4242/00ff", 60000, runlease.owner()))
          return true
        end))
      end
      return inner(self, req)
    end
    local status = e:execute(id)
    assert.is_true(taken, "the model was not asked")
    assert.equal("interrupted", status)
    -- the run is the other process's to end: its row and journal untouched here
    assert.equal("running", runs.get(db, id).status)
    local kinds = {}
    for _, ev in ipairs(db:events { run = id }) do kinds[#kinds + 1] = ev.kind end
    assert.is_truthy(kinds[1], "the run's events were read")
    assert.is_falsy(table.concat(kinds, " "):find("run_end", 1, true), "a run_end was journaled by the lease's loser")
    local said
    for _, ev in ipairs(events) do
      if ev.type == "run_end" then said = ev end
    end
    assert.matches(string.format("run %d goes on in another process, which resumed it and holds its lease now", id),
      said and said.reason or "", 1, true)
    db:close()
  end)
end)
