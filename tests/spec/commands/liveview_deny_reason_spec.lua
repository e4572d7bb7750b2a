-- orket.terminal.liveview: the gate's refusals in the live view. A denied call's line names
-- the rule, the frame's head counts the refusals, and the final summary says how many calls
-- were denied and where `orket card` shows why, on a dumb terminal (no frames) too; the
-- paths a program changed that were put back are counted and noted apart.
local liveview = require "orket.terminal.liveview"

local function view(plain)
  local t = { out = {}, ms = 0 }
  t.view = liveview.new {
    write = function(s) t.out[#t.out + 1] = s end,
    now = function() return t.ms end,
    plain = plain, width = 200,
    scope = function() return { { id = "G-1", status = "ready" }, { id = "G-2", status = "ready" } } end,
  }
  return t
end

local function text(t)
  return (table.concat(t.out):gsub("\27%[%d*A", ""):gsub("\27%[[%d;]*[mJK]", ""):gsub("\r", ""))
end

local function denied(v, card, n, rule)
  for _ = 1, n do
    v:event { type = "tool", card = card, seat = "dev", turn = 1, tool = "write_file", ok = false, denied = true,
      code = "POLICY_DENY", reason = "write_file: coders change src/ only (policy " .. rule .. ")", rule = rule }
  end
end

describe("live view: denied calls", function()
  it("names the rule on the seat's line, counts the refusals and says them in the summary", function()
    local t = view(false)
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "G" }
    v:event { type = "turn_start", card = "G-1", seat = "dev", role = "coder", phase = "work", turn = 1 }
    denied(v, "G-1", 3, "policies/scope.lua:1")
    -- a held call waits for a person: not counted as denied
    v:event { type = "tool", card = "G-1", seat = "dev", turn = 1, tool = "delete_file", ok = false, denied = true,
      held = true, code = "POLICY_ASK", reason = "held", rule = "orket:policies/default.lua:13" }
    t.ms = 1000
    v:event { type = "tool", card = "G-1", seat = "dev", turn = 1, tool = "write_file", ok = false, denied = true,
      code = "POLICY_DENY", rule = "policies/scope.lua:1" }
    v:tick()
    local frame = text(t)
    assert.matches("coder (work) turn 1 step 0, write_file denied (policies/scope.lua:1)", frame, 1, true)
    assert.matches("0 turns  4 denied\n", frame, 1, true)
    v:event { type = "run_end", status = "done", tokens = 10 }
    local out = text(t)
    assert.matches("\n4 calls denied: orket card G-1 shows why\n", out, 1, true)
  end)

  it("says them on a dumb terminal, each card's count when several cards had some", function()
    local t = view(true)
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "G" }
    denied(v, "G-1", 2, "policies/scope.lua:1")
    denied(v, "G-2", 1, "policies/scope.lua:1")
    v:event { type = "program_writes_denied", card = "G-2", seat = "dev", turn = 1, by = "run_command {}", count = 2,
      paths = { { path = ".github/workflows/x.yml", reason = "write_file: CI configuration (policy orket:policies/default.lua:34)" } } }
    v:event { type = "run_end", status = "done", tokens = 10 }
    local out = text(t)
    assert.is_nil(out:find("\27", 1, true))
    assert.matches("G-2: 2 paths a program changed put back, not committed (the policies refuse them): "
      .. ".github/workflows/x.yml: write_file: CI configuration", out, 1, true)
    assert.matches("\n3 calls denied (G-1 2, G-2 1): orket card CARD shows why\n", out, 1, true)
    assert.matches("\n2 paths a program changed put back, not committed: orket card G-2 shows why\n", out, 1, true)
  end)

  it("says nothing of refusals when there were none", function()
    local t = view(true)
    t.view:event { type = "run_start", run_id = 3, target = "G" }
    t.view:event { type = "run_end", status = "done", tokens = 10 }
    assert.is_nil(text(t):find("denied", 1, true))
  end)

  -- a card's commit left files out (a .gitignore rule): said on the screen at the turn's end,
  -- as orket log says it (the guide promised it in the run; only the log had it)
  it("notes the files a turn's commit left out", function()
    local t = view(true)
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "G" }
    v:event { type = "turn_start", card = "G-1", seat = "dev", role = "coder", phase = "work", turn = 1 }
    v:event { type = "turn_end", card = "G-1", seat = "dev", turn = 1, outcome = "handed_in", status = "code_review",
      git_skipped = { "a.log (matched by a .gitignore rule: not committed)", "b.log (x)", "c.log (x)", "d.log (x)" } }
    v:event { type = "run_end", status = "done", tokens = 10 }
    assert.matches("G-1 [git] left out: a.log (matched by a .gitignore rule: not committed), b.log (x), c.log (x) "
      .. "and 1 more (orket log)", text(t), 1, true)
  end)
end)
