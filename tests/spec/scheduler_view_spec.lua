-- orket.engine.scheduler's view: its ready order (kept in memory and followed through the
-- journal) must equal board:ready's (computed from SQL) on graphs with mixed priorities,
-- shared dependents, chains and finished cards.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local scheduler = require "orket.engine.scheduler"

local CODER = { seat = "senior_developer", roles = { "coder" } }
local REVIEWER = { seat = "integrity_guard", roles = { "integrity_guard" } }

local function view_ready(v, board)
  local ids = {}
  for c in v:candidates({}) do
    if c.status == "ready" then ids[#ids + 1] = c.id end
  end
  local want = {}
  for _, c in ipairs(assert(board:ready("E"))) do want[#want + 1] = c.id end
  return ids, want
end

describe("scheduler view", function()
  after_each(H.cleanup)

  for seed = 1, 4 do
    it("orders ready cards as board:ready does (seed " .. seed .. ")", function()
      math.randomseed(seed)
      local issues = {}
      for i = 1, 60 do
        local deps = {}
        for j = 1, i - 1 do
          if math.random() < 0.04 then deps[#deps + 1] = "E-" .. j end
        end
        issues[i] = { id = "E-" .. i, summary = "Issue " .. i, depends_on = deps }
      end
      local db, b = F.fixture(H.tmpdir() .. "/o.db", issues)
      local prios = { 0, 1, 2, 2, 2, 3, 2.5, 10 }
      for i = 1, 60 do
        db:run("UPDATE cards SET priority = ? WHERE id = ?", prios[math.random(#prios)], "E-" .. i)
      end
      local v = scheduler.view(b, { id = "E", type = "epic" })
      local got, want = view_ready(v, b)
      assert.is_true(#want > 5)
      assert.same(want, got)
      -- Finish some ready cards (through the journal, as turns do) and compare again.
      for _ = 1, 6 do
        local _, ready = view_ready(v, b)
        local id = ready[math.random(#ready)]
        assert(b:transition(id, "in_progress", { actor = CODER }))
        assert(b:transition(id, "code_review", { actor = CODER }))
        assert(b:transition(id, "done", { actor = REVIEWER }))
        v:refresh()
        got, want = view_ready(v, b)
        assert.same(want, got)
      end
    end)
  end
end)
