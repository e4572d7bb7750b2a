-- A run on PostgreSQL whose server goes away in the middle of a turn: the journal cannot
-- be written, so the run ends failed at once with the reason (as a full SQLite disk ends
-- one), no card blocked for it; once the server is back, `orket resume` finishes the board
-- as an uninterrupted run does. The test's own server (tests.pg), killed and started again.
local H = require "tests.helpers"
local cjson = require "cjson"
local PG = require "tests.pg"

local state = H.board_state -- what "the same board" means

describe("a run on PostgreSQL", function()
  after_each(H.cleanup)

  it("ends failed when its server goes away mid-turn, and resume finishes the board once it is back", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local ref = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)

    local server = PG.start { commits_survive_kill = true }
    local dir = H.example("notes")
    -- (one finally: a run left going by a failed assertion is ended with the server)
    finally(function()
      H.end_started(dir, "run.pid", "status.txt")
      server.stop()
    end)
    -- every answer takes 1.5 s: the server is killed while a model call is out
    local script = PG.on(dir, server.url, 1500)
    os.execute(string.format("cd %s && { %s run NOTES --json >out.jsonl 2>err.txt & echo $! >run.pid; wait $!; "
      .. "echo $? >status.txt; } >/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    H.wait_for(function() return (H.read(dir .. "/out.jsonl") or ""):find('"turn_start"', 1, true) end,
      "the run's first turn", 600)
    server.kill()
    -- (the shell creates the file, then writes the status: an empty file is no status yet)
    local status = tonumber(H.wait_for(function() return (H.read(dir .. "/status.txt") or ""):match("^%d+") end,
      "the run to end once its server is gone", 600))
    local events = {}
    for line in H.read(dir .. "/out.jsonl"):gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
    assert.equal(1, status, H.read(dir .. "/err.txt"))
    local last = events[#events]
    assert.same({ "run_end", "failed" }, { last.type, last.status })
    assert.matches("^the journal could not be written %(PostgreSQL: .*%); once the store can be written", last.reason)
    local told = false
    for _, ev in ipairs(events) do
      -- no card is blocked for the server's failure: a resume takes its turn up again
      assert.is_false(ev.type == "card_blocked", tostring(ev.detail))
      told = told or ev.type == "journal_error"
    end
    assert.is_true(told)

    server.restart()
    H.write(dir .. "/script.lua", script)
    local r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal(want, state(dir))
  end)
end)
