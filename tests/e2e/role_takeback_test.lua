-- A role is the operator's script, edited live: one bad save blocked every card of the role
-- at once, before any model call, and each then needed its own `orket retry` once the file
-- was fixed (a resume, a new run ended at once with the same blocked cards). A resume takes
-- back the cards a role's error blocked, as it does those a passing model failure blocked.
local H = require "tests.helpers"

local events = H.events

describe("a card blocked by its role's error", function()
  after_each(function() H.cleanup() end)

  it("is taken back by the run's resume once the role is fixed, its budgets as they were", function()
    local dir = H.example("notes")
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/roles")))
    H.write(dir .. "/roles/coder.lua", 'return { intent = "x", tools = { "update_issue_status" },\n'
      .. '  build = function(ctx)\n    local x = nil\n    return x.field\n  end }\n')
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    local blocked = {}
    for _, ev in ipairs(events(r.stdout)) do
      if ev.type == "card_blocked" then blocked[#blocked + 1] = ev.card end
      if ev.type == "run_end" then
        -- the stall report says the fix and that the resume takes it back
        assert.matches("NOTES-2 (blocked): blocked (system): The turn failed: roles/coder.lua:4: attempt to index a "
          .. "nil value (local 'x'); next: fix roles/coder.lua, then orket resume 1 takes it back (orket retry NOTES-2 "
          .. "also starts its budgets over)", ev.stuck_note, 1, true)
      end
    end
    table.sort(blocked)
    assert.same({ "NOTES-2", "NOTES-3" }, blocked)
    -- the fix: the built-in coder again
    os.remove(dir .. "/roles/coder.lua")
    r = H.orket("resume 1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local back = {}
    for _, ev in ipairs(events(r.stdout)) do
      if ev.type == "card_taken_back" then
        assert.same({ "role", "roles/coder.lua" }, { ev.class, ev.role })
        back[#back + 1] = ev.card
      end
    end
    table.sort(back)
    assert.same({ "NOTES-2", "NOTES-3" }, back)
    local board = H.orket("board", { cwd = dir }).stdout
    for i = 1, 4 do assert.truthy(board:find("NOTES%-" .. i .. "%s+done"), board) end
    local card = H.orket("card NOTES-2", { cwd = dir }).stdout
    assert.matches("taken back by the resume of run 1: it was blocked when its role's script failed "
      .. "(roles/coder.lua), which its file decides; its budgets go on as they were", card, 1, true)
  end)
end)
