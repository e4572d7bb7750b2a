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
local function routed(src, roles)
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
    config = { team = TEAM, models = { default = "a:default" } } })
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
end)
