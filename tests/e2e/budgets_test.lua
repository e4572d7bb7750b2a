-- Budgets and routing end to end with the scripted model: the scaffold's defaults reach the
-- requirements review; a run budget (tokens_per_run, wall_ms_per_run) ends the run with its
-- reason and no card blocked, and `orket resume` after raising it carries on to the
-- uninterrupted run's board; wall_ms_per_card cuts a model call short; a routing.lua error
-- is reported with its line.
local H = require "tests.helpers"
local cjson = require "cjson"

local function notes(extra)
  return H.example("notes", { append = extra })
end

local state = H.board_state -- what "the same board" means

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

local function of_type(evs, ty)
  local out = {}
  for _, ev in ipairs(evs) do if ev.type == ty then out[#out + 1] = ev end end
  return out
end

-- The board an uninterrupted run of the notes example ends with, which a resumed run must
-- reach: the same project every time, so run once for the file.
local reference
local function notes_reference()
  if not reference then
    local ref = notes()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    reference = state(ref)
  end
  return reference
end

-- NOTES-3's coder takes `ms` to answer its first call.
local function slow_notes_3(dir, ms)
  local script = H.read(dir .. "/script.lua")
  H.write(dir .. "/script.lua", (script:gsub("local rules = {", string.format([[local rules = {
  { role = "coder", card = "NOTES-3", match = "^Issue ", reply = { delay_ms = %d, content = "thinking" } },]], ms), 1)))
  return script
end

describe("budgets", function()
  after_each(H.cleanup)

  it("reach the requirements review with the scaffold's settings when review always rejects", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init x", { cwd = dir }).status)
    dir = dir .. "/x"
    local script = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", (script:gsub("  rules = {\n", [[
  rules = {
    { role = "integrity_guard", card = "START-1", match = "^Issue ", reply = { tool_calls = {
      call("add_issue_comment", { body = "Not what the acceptance asks." }),
      call("update_issue_status", { status = "in_progress" }) } } },
    { role = "architect", card = "START-3", match = "^Issue ", reply = { tool_calls = {
      call("add_issue_comment", { body = "The acceptance is right." }) } } },
]], 1)))
    local r = H.orket("run START --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local evs = events(r.stdout)
    assert.equal(0, #of_type(evs, "card_blocked"))
    local rr = of_type(evs, "requirements_review")
    assert.equal(1, #rr)
    assert.equal("START-3", rr[1].issue)
    local c = cjson.decode(H.orket("card START-1 --json", { cwd = dir }).stdout).card
    assert.equal("waiting_for_developer", c.status)
    assert.equal(3, c.retries)
    assert.matches("Requirements review: Write a greeting", H.orket("board", { cwd = dir }).stdout, 1, true)
  end)

  it("end the run when tokens_per_run runs out; resume after raising it finishes the run", function()
    local want = notes_reference()
    local dir = notes("budgets = { tokens_per_run = 1500 }\n")
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local evs = events(r.stdout)
    local why = "the run's token budget (budgets.tokens_per_run = 1500) ran out"
    local last = evs[#evs]
    assert.equal("run_end", last.type)
    assert.equal("stalled", last.status)
    assert.matches(why, last.reason, 1, true)
    local stall = of_type(evs, "stall")[1]
    assert.matches(why, stall.reason, 1, true)
    for _, s in ipairs(stall.cards) do
      assert.not_equal("blocked", s.status)
      assert.not_matches("cannot be scheduled", s.reason)
    end
    assert.equal(0, #of_type(evs, "card_blocked"))
    assert.not_matches("blocked", state(dir))
    -- the same budget: resume stops again at once, with the same reason
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    assert.matches(why, events(r.stdout)[#events(r.stdout)].reason, 1, true)
    assert.equal(0, #of_type(events(r.stdout), "model"))
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { tokens_per_run = 0 }\n")
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(want, state(dir))
  end)

  -- The gate refuses every call past limits.calls_run: the run went on, each card left
  -- spending its turns on refusals and blocked for its own turns' budget
  it("end the run when limits.calls_run is reached, blocking no card; resume after raising it finishes the run", function()
    local want = notes_reference()
    local dir = notes("limits = { calls_run = 3 }\n")
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local evs = events(r.stdout)
    local why = "the run's tool call limit (limits.calls_run = 3) was reached"
    assert.equal("run_end", evs[#evs].type)
    assert.matches(why, evs[#evs].reason, 1, true)
    assert.equal(0, #of_type(evs, "card_blocked"))
    assert.not_matches("blocked", state(dir))
    local models = #of_type(evs, "model")
    assert.is_true(models <= 5, tostring(models))
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "limits = { calls_run = 0 }\n")
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(want, state(dir))
  end)

  -- budgets several times what the other cards need on a loaded machine; the slow call
  -- (30 s) is still far beyond them
  it("end the run when wall_ms_per_run runs out, cutting the model call short", function()
    local want = notes_reference()
    local dir = notes("budgets = { wall_ms_per_run = 4000 }\n")
    local script = slow_notes_3(dir, 30000)
    local t0 = os.time()
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.is_true(os.time() - t0 < 20, "the run waited for the model call")
    assert.equal(3, r.status, r.stderr)
    local evs = events(r.stdout)
    local why = "the run's time budget (budgets.wall_ms_per_run = 4000) ran out"
    assert.matches(why, evs[#evs].reason, 1, true)
    assert.equal("stalled", evs[#evs].status)
    local stuck = {}
    for _, s in ipairs(of_type(evs, "stall")[1].cards) do stuck[s.card] = s.reason end
    assert.equal("stopped in ready: " .. why, stuck["NOTES-3"])
    assert.equal(0, #of_type(evs, "card_blocked"))
    H.write(dir .. "/script.lua", script)
    -- the budget lifted, so that the resume does not depend on the machine's load
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { wall_ms_per_run = 0 }\n")
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(want, state(dir))
  end)

  it("stop a model call when the card's wall_ms_per_card runs out, and block that card", function()
    local dir = notes("budgets = { wall_ms_per_card = 3000, backoff_ms = 1 }\n")
    slow_notes_3(dir, 30000)
    local t0 = os.time()
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.is_true(os.time() - t0 < 20, "the card's call ran on past its budget")
    assert.equal(1, r.status, r.stderr)
    local blocked = of_type(events(r.stdout), "card_blocked")
    assert.equal(1, #blocked)
    assert.equal("NOTES-3", blocked[1].card)
    assert.equal("Turn stopped: the card used its 3000 ms (budgets.wall_ms_per_card).", blocked[1].detail)
    assert.matches("NOTES%-2 done", state(dir))
  end)
end)

describe("routing.lua", function()
  after_each(H.cleanup)

  it("that fails is reported with its line in the skip and the stall, and blocks no card", function()
    local dir = notes()
    H.write(dir .. "/routing.lua", "-- who reviews\nreturn { reviewer = function() error(\"boom\") end }\n")
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local evs = events(r.stdout)
    local why = "routing error in routing.lua's reviewer: routing.lua:2: boom"
    assert.equal(why, of_type(evs, "card_skipped")[1].reason)
    assert.equal("skipped in code_review: " .. why, of_type(evs, "stall")[1].cards[1].reason)
    assert.equal(0, #of_type(evs, "card_blocked"))
    -- fixed, the same run goes on
    os.remove(dir .. "/routing.lua")
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)
end)
