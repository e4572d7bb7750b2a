-- The run's final summary on a terminal (orket.terminal.liveview) says what the engine's
-- run_end and stall carry: the cards a person canceled (a done run with canceled cards is
-- not an unqualified success) and, for each stuck card, the command that gets it moving.
local liveview = require "orket.terminal.liveview"

local function view(cards)
  local t = { out = {} }
  t.view = liveview.new {
    write = function(s) t.out[#t.out + 1] = s end,
    now = function() return 0 end,
    width = 100,
    scope = function() return cards end,
  }
  return t
end

local function last(t)
  return (t.out[#t.out]:gsub("\27%[%d*A", ""):gsub("\27%[[%d;]*[mJK]", ""):gsub("\r", ""))
end

describe("run summary", function()
  it("lists the canceled cards of a done run", function()
    local t = view { { id = "C-1", status = "done" }, { id = "C-2", status = "canceled" } }
    t.view:event { type = "run_start", run_id = 2, target = "C", concurrency = 1 }
    t.view:event { type = "run_end", run_id = 2, status = "done", tokens = 10,
      canceled = { "C-2 (canceled by developer: no longer needed)" } }
    assert.equal(table.concat({
      "run 2 C done in 00:00, 10 tokens, 0 turns",
      "cards (2): done 1  canceled 1",
      "not done: 1 card canceled:",
      "  C-2 (canceled by developer: no longer needed)",
    }, "\n") .. "\n", last(t))
  end)

  it("gives each stuck card its next step", function()
    local t = view { { id = "C-1", status = "blocked" } }
    t.view:event { type = "run_start", run_id = 3, target = "C", concurrency = 1 }
    t.view:event { type = "stall", cards = { { card = "C-1", status = "blocked", reason = "blocked (system): down",
      next = "once the model answers again, orket retry C-1" } } }
    t.view:event { type = "run_end", run_id = 3, status = "failed", tokens = 0 }
    assert.matches("\n  C%-1        blocked %(system%): down\n             next: once the model answers again, orket retry C%-1\n$",
      last(t))
  end)

  it("gives an interrupted run the exact line that continues it", function()
    local t = view { { id = "C-1", status = "in_progress" } }
    t.view:event { type = "run_start", run_id = 7, target = "C", concurrency = 1 }
    t.view:event { type = "run_end", run_id = 7, status = "interrupted", tokens = 0 }
    assert.equal(table.concat({
      "run 7 C interrupted in 00:00, 0 tokens, 0 turns",
      "continue with: orket resume 7",
      "cards (1): in_progress 1",
    }, "\n") .. "\n", last(t))
    -- the command as the caller says it (the binary's path, the project's directory)
    t = view { { id = "C-1", status = "done" } }
    t.view.resume = function(id) return "/opt/o/orket resume " .. id .. " -C 'my p'" end
    t.view:event { type = "run_start", run_id = 8, target = "C", concurrency = 1 }
    t.view:event { type = "run_end", run_id = 8, status = "interrupted", tokens = 0 }
    assert.matches("\ncontinue with: /opt/o/orket resume 8 %-C 'my p'\n", last(t))
    -- a run that ended otherwise has no such line
    t = view { { id = "C-1", status = "done" } }
    t.view:event { type = "run_start", run_id = 9, target = "C", concurrency = 1 }
    t.view:event { type = "run_end", run_id = 9, status = "done", tokens = 0 }
    assert.is_nil(last(t):find("resume", 1, true))
  end)
end)
