-- A project's routing.lua model function: its nil is no choice (the seat's model, then the
-- role's, then the default decide: docs/roles.md), and a model of a provider that is not
-- configured leaves the card as it is, naming routing.lua (docs/engine.md, Routing).
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local uv = require "luv"

local TEAM = {
  lead_architect = { roles = { "architect" } },
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" }, model = "b:guard" },
}

-- runs E with src as routing.lua -> status, report, board, events, the model of each
-- request by role ("coder" -> {model = true})
local function routed(src, roles, config)
  local dir = H.tmpdir()
  H.write(dir .. "/routing.lua", src)
  if roles then assert(uv.fs_mkdir(dir .. "/roles", 493)) end
  for name, text in pairs(roles or {}) do H.write(dir .. "/roles/" .. name .. ".lua", text) end
  local db, b = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "x" } })
  local llm = F.llm(b)
  -- what a real client has: its providers (the check of a routed model) and default
  llm.providers, llm.default = { a = {}, b = {} }, "a:default"
  local by_role = {}
  local inner = llm.chat
  function llm:chat(req)
    local r = req.meta.role
    by_role[r] = by_role[r] or {}
    by_role[r][req.model] = true
    return inner(self, req)
  end
  local e, events = F.engine(db, b, { dir = dir, routing = dir .. "/routing.lua", llm = llm,
    config = config or { team = TEAM, models = { default = "a:default" } } })
  local status, report = e:execute(assert(e:start("E")))
  return status, report, b, events, by_role
end

describe("routing.lua's model function", function()
  after_each(H.cleanup)

  it("returning nil leaves the choice to the seat's model, else the default", function()
    local status, _, b, _, by_role = routed("return { model = function(t) return nil end }\n")
    assert.equal("done", status)
    assert.equal("done", b:get("E-1").status)
    assert.same({ ["a:default"] = true }, by_role.coder)
    assert.same({ ["b:guard"] = true }, by_role.integrity_guard)
  end)

  it("returning nil leaves the choice to the role's model when the seat has none", function()
    local status, _, _, _, by_role = routed("return { model = function(t) return nil end }\n",
      { coder = 'return { intent = "work", tools = { "update_issue_status" }, model = "b:coder", system = "Work." }\n' })
    assert.equal("done", status)
    assert.same({ ["b:coder"] = true }, by_role.coder)
  end)

  it("choosing a provider that is not configured leaves the card as it is, naming routing.lua and its line", function()
    local status, report, b, events, by_role = routed("-- routing\nreturn { model = function(t) return \"nope:x\" end }\n")
    assert.equal("stalled", status)
    assert.equal("ready", b:get("E-1").status)
    assert.is_nil(by_role.coder)
    local skipped
    for _, ev in ipairs(events) do
      assert.is_false(ev.type == "card_blocked" or ev.type == "turn_begin" or ev.type == "model_failure")
      if ev.type == "card_skipped" then skipped = ev.reason end
    end
    assert.equal("routing.lua's model (routing.lua:2) chose \"nope:x\": it names provider 'nope', which is not "
      .. "configured (configured: a, b)", skipped)
    assert.equal("skipped in ready: " .. skipped, report.stuck[1].reason)
  end)

  -- the card_skipped reasons of a run's events
  local function skips(events)
    local out = {}
    for _, ev in ipairs(events) do
      if ev.type == "card_skipped" then out[#out + 1] = ev.reason end
    end
    return out
  end

  it("returning neither a string nor nil names the function's line and the value returned", function()
    local status, _, b, events, by_role = routed("-- routing\nreturn { model = function(t)\n  return 42\nend }\n")
    assert.equal("stalled", status)
    assert.equal("ready", b:get("E-1").status)
    assert.is_nil(by_role.coder)
    assert.same({ "routing error in routing.lua's model: routing.lua:2: model, the function that starts at this "
      .. "line, returned 42 (a number): it must return \"provider:model\" or nil" }, skips(events))
    -- a table by its type only: its __tostring is the script's code, not to be run outside its box
    local _, _, _, events2 = routed("return { model = function(t) return setmetatable({}, { __tostring = "
      .. "function() error('ran') end }) end }\n")
    assert.same({ "routing error in routing.lua's model: routing.lua:1: model, the function that starts at this "
      .. "line, returned a table: it must return \"provider:model\" or nil" }, skips(events2))
    -- a worker function's wrong value says what a worker function returns
    local _, _, _, events3 = routed("return { worker = function(c, team) return true end }\n")
    assert.same({ "routing error in routing.lua's worker: routing.lua:1: worker, the function that starts at this "
      .. "line, returned true (a boolean): it must return a seat's name or nil" }, skips(events3))
  end)

  it("without a model function, the built-in rule's choice is not blamed on routing.lua", function()
    -- a seat's model of a provider the client lacks is refused before a real run starts; the
    -- fake engine skips that check, so the turn shows which model the built-in rule chose
    local team = { senior_developer = { roles = { "coder" }, model = "nope:seat" },
      integrity_guard = { roles = { "integrity_guard" }, model = "b:guard" } }
    local status, _, _, events, by_role = routed(
      "return { worker = function(card, team) return 'senior_developer' end }\n", nil,
      { team = team, models = { default = "a:default" } })
    assert.equal("done", status)
    assert.same({}, skips(events))
    assert.same({ ["nope:seat"] = true }, by_role.coder)
  end)

  it("on an experiment's variant card, the work turn's model is the variant's, whatever routing would choose", function()
    -- routing.lua's choice for work turns is unusable, and would never be used on this card
    local status, _, b, events, by_role = routed(
      "return { model = function(t) if t.phase == 'work' then return 'nope:x' end end }\n", nil,
      { team = TEAM, models = { default = "a:default" },
        experiments = { small = { share = 1, model = "ollama:var" } } })
    assert.equal("done", status)
    assert.equal("done", b:get("E-1").status)
    assert.same({}, skips(events))
    assert.same({ ["ollama:var"] = true }, by_role.coder)
    assert.same({ ["b:guard"] = true }, by_role.integrity_guard)
  end)
end)
