-- Experiments as a person meets them (docs/cost.md, "Experiments"), on the scripted
-- provider, on SQLite and PostgreSQL (tests/backends.lua): the report's wall time counts a
-- card's first model call; a card blocked on its variant's model says that the experiment
-- decides it, and what to change; `orket card` shows the card's arm; ending the experiment
-- gives the card back to its seat; an arm whose calls were never charged costs 0.
local H = require "tests.helpers"
local B = require "tests.backends"
local cjson = require "cjson"

after_each(H.cleanup)

local HAND_IN = [[{ { name = "update_issue_status", arguments = { status = "code_review" } } }]]
local SCRIPT = [[
return { rules = {
  { model = "fast", reply = { tool_calls = ]] .. HAND_IN .. [[ } },
  { model = "slow", reply = { tool_calls = ]] .. HAND_IN .. [[, delay_ms = 700 } },
  { model = "rev",  reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "I would rather talk." } }
]]

-- A project of n issues whose team runs on the script; extra: more of orket.lua
-- (providers, experiments).
local function project(n, providers, experiments)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/orket.lua", string.format([[
name = "arms"
models = { default = "s:fast", providers = { s = { kind = "scripted", file = "script.lua" }%s } }
team = {
  senior_developer = { roles = { "coder" }, model = "s:fast" },
  integrity_guard = { roles = { "integrity_guard" }, model = "s:rev" },
}
experiments = %s
%s]], providers, experiments, B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""))
  local issues = {}
  for i = 1, n do issues[i] = { id = "X-" .. i, summary = "Issue " .. i, seat = "senior_developer" } end
  H.write(dir .. "/epics/x.json", cjson.encode { id = "X", name = "E", issues = issues })
  assert(H.orket("import", { cwd = dir }).status == 0)
  return dir
end

local function report(dir, name)
  local r = H.orket("experiments report " .. name .. " --json", { cwd = dir })
  assert(r.status == 0, r.stderr)
  return cjson.decode(r.stdout)
end

describe("an experiment's cards (" .. B.name() .. ")", function()
  it("count their first model call in the wall time: a slower variant shows as slower", function()
    -- every card is handed in by one call: the variant's takes 700 ms, the control's none
    local dir = project(4, "", [[{ slow = { share = 0.5, model = "s:slow" } }]])
    local r = H.orket("run X", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local doc = report(dir, "slow")
    local c, v = doc.arms.control, doc.arms.variant
    assert.is_true(c.wall.done_cards > 0 and v.wall.done_cards > 0, "these ids fall in both arms")
    -- the wall time began when the first turn's arms were written, after that call
    assert.is_true(v.wall.ms_per_card >= 650, "variant wall " .. tostring(v.wall.ms_per_card))
    assert.is_true(c.wall.ms_per_card < 650, "control wall " .. tostring(c.wall.ms_per_card))
  end)

  it("blocked on the variant's model say the experiment decides it; ending it gives the card back", function()
    local dir = project(1, [[, s2 = { kind = "scripted", file = "script.lua" }]],
      [[{ chatty = { share = 1, model = "s2:chatty" } }]])
    H.orket("run X", { cwd = dir })
    local text = H.orket("card X-1", { cwd = dir }).stdout
    -- the seat's model is not the one to change
    assert.matches("blocked %(resource%): Stopped after %d+ work turns", text)
    assert.matches("The model s2:chatty is experiment chatty's variant's %(orket.lua's experiments.chatty.model%), "
      .. "which this card's work turns run on instead of the seat's: change that model, or end the experiment", text)
    assert.is_nil(text:find("give the seat another model", 1, true))
    -- the card's arm, in the text and the JSON
    assert.matches("\nexperiment:%s+chatty: variant %(model s2:chatty at its first turn", text)
    local doc = cjson.decode(H.orket("card X-1 --json", { cwd = dir }).stdout)
    assert.same({ { experiment = "chatty", arm = "variant", model = "s2:chatty" } }, doc.experiments)
    -- a variant's provider removed from orket.lua is refused, naming the experiment's field
    local lua = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (lua:gsub(", s2 = { kind = \"scripted\", file = \"script.lua\" }", "")))
    local v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status)
    assert.matches("orket%.lua:%d+: experiments%.chatty%.model: names provider 's2', which is not configured",
      v.stdout .. v.stderr)
    -- the experiment ended: the card plays its seat's model, and stays counted in the variant
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua"):gsub("experiments = {[^\n]*", "experiments = {}")))
    assert.equal(0, H.orket("validate", { cwd = dir }).status)
    assert.equal(0, H.orket("retry X-1", { cwd = dir }).status)
    local r = H.orket("run X", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("\nstatus:%s+done\n", H.orket("card X-1", { cwd = dir }).stdout)
    assert.same({ 0, 1, 1 }, { report(dir, "chatty").arms.control.cards, report(dir, "chatty").arms.variant.cards,
      report(dir, "chatty").arms.variant.done })
  end)

  it("whose variant model fails are blocked naming the experiment; an arm charged nothing costs 0", function()
    local dir = project(1, [[, dead = { kind = "openai", base_url = "http://127.0.0.1:9/v1", retry = { base_ms = 1 } }]],
      [[{ gone = { share = 1, model = "dead:m" } }]])
    -- the engine's later rounds after 25 ms onwards, not 5 s, and the client's retries after 1 ms (90 s
    -- of waiting in all)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { backoff_ms = 1 }\n")
    H.orket("run X", { cwd = dir })
    local text = H.orket("card X-1", { cwd = dir }).stdout
    assert.matches("blocked %(system%): The model failed %(", text)
    assert.matches("The model dead:m is experiment gone's variant's %(orket.lua's experiments.gone.model%)", text)
    -- no call was answered: nothing charged, not a cost unknown
    local out = H.orket("experiments report gone", { cwd = dir }).stdout
    assert.matches("\ncost per card%s+%-%s+0 %(none charged%)\n", out)
    assert.is_nil(out:find("unknown", 1, true))
  end)
end)
