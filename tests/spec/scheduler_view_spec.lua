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

  -- Random changes of every kind the journal carries: moves between any statuses the state
  -- machine allows (finishing, reopening, blocking, canceling), new cards with
  -- dependencies in the epic and in another epic that depends on it; after each refresh the
  -- view's order must still be board:ready's.
  for seed = 1, 6 do
    it("follows creates, reopens, blocks and cancels exactly (seed " .. seed .. ")", function()
      math.randomseed(100 + seed)
      local issues = {}
      for i = 1, 40 do
        local deps = {}
        for j = 1, i - 1 do
          if math.random() < 0.06 then deps[#deps + 1] = "E-" .. j end
        end
        issues[i] = { id = "E-" .. i, summary = "Issue " .. i, depends_on = deps, priority = math.random(0, 3) }
      end
      local db, b = F.fixture(H.tmpdir() .. "/o.db", issues)
      db:tx(function()
        db:run("INSERT INTO cards (id, type, name, priority, created_at, updated_at) VALUES ('O', 'epic', 'Other', 2, 'x', 'x')")
      end)
      local v = scheduler.view(b, { id = "E", type = "epic" })
      local next_of = {
        ready = { "in_progress", "in_progress", "blocked", "canceled" },
        in_progress = { "code_review", "code_review", "blocked", "waiting_for_developer", "canceled" },
        code_review = { "done", "done", "done", "in_progress", "blocked" },
        blocked = { "ready", "in_progress", "canceled" },
        waiting_for_developer = { "ready", "in_progress" },
        done = { "archived" }, canceled = { "archived" },
      }
      local reasons = { "resource", "dependency", "review", "input", "system" }
      local ids, moves, creates = {}, 0, 0
      for i = 1, 40 do ids[i] = "E-" .. i end
      for step = 1, 200 do
        local r = math.random()
        if r < 0.15 then
          local deps = {}
          for _ = 1, math.random(0, 3) do deps[#deps + 1] = ids[math.random(#ids)] end
          local parent = math.random() < 0.3 and "O" or "E"
          local c = b:create { parent = parent, summary = "new " .. step, depends_on = deps, priority = math.random(0, 3),
            seat = "senior_developer" }
          if c then
            creates = creates + 1
            ids[#ids + 1] = c.id
          end
        else
          local id = ids[math.random(#ids)]
          local nexts = next_of[b:get(id).status] or { "archived" }
          local to = nexts[math.random(#nexts)]
          local actor = to == "done" and REVIEWER or CODER
          local reason = (to == "blocked" or to == "waiting_for_developer") and reasons[math.random(#reasons)] or nil
          if b:transition(id, to, { actor = actor, reason = reason }) then moves = moves + 1 end
        end
        if math.random() < 0.5 then
          v:refresh()
          local got, want = view_ready(v, b)
          assert.same(want, got)
        end
      end
      v:refresh()
      local got, want = view_ready(v, b)
      assert.same(want, got)
      assert.is_true(moves > 60 and creates > 10, moves .. " moves, " .. creates .. " creates")
    end)
  end
end)
