-- orket.nearest: the known name nearest to an unknown one, and the hint added to the errors
-- that name an unknown field or setting.
local nearest = require "orket.nearest"

describe("orket.nearest", function()
  it("counts edits, a swap of neighbours as one", function()
    assert.equal(0, nearest.distance("seat", "seat"))
    assert.equal(1, nearest.distance("seet", "seat"))
    assert.equal(1, nearest.distance("cros", "cors"))
    assert.equal(1, nearest.distance("depends_on ", "depends_on"))
    assert.equal(3, nearest.distance("", "abc"))
    assert.equal(3, nearest.distance("kitten", "sitting"))
  end)

  it("finds the nearest name, or none when nothing is near", function()
    local names = { "id", "name", "summary", "seat", "priority", "depends_on", "status" }
    assert.equal("seat", nearest.nearest("seet", names))
    assert.equal("depends_on", nearest.nearest("depends_on ", names))
    assert.equal("depends_on", nearest.nearest("Depends-On", names))
    assert.equal("priority", nearest.nearest("prority", names))
    assert.is_nil(nearest.nearest("owner", names))
    assert.is_nil(nearest.nearest("host", "url"))
    assert.equal("cors", nearest.nearest("cros", "cors"))
    assert.equal("concurrency", nearest.nearest("concurency", "budgets, concurrency, context"))
  end)

  it("adds the hint to each shape of unknown-field message, and only to those", function()
    assert.equal("orket.lua: serve.cros: unknown setting (known: cors); did you mean 'cors'?",
      nearest.hint("orket.lua: serve.cros: unknown setting (known: cors)"))
    assert.equal("orket.lua: teams: unknown setting (settings: budgets, team); did you mean 'team'?",
      nearest.hint("orket.lua: teams: unknown setting (settings: budgets, team)"))
    assert.equal([[e.json:5: issues[1]["depends_on "]: unknown field (an issue's fields: id, depends_on); did you mean 'depends_on'?]],
      nearest.hint([[e.json:5: issues[1]["depends_on "]: unknown field (an issue's fields: id, depends_on)]]))
    assert.equal("r.lua:3: unknown field 'sytem' (fields: name, system); did you mean 'system'?\ntraceback",
      nearest.hint("r.lua:3: unknown field 'sytem' (fields: name, system)\ntraceback"))
    assert.equal("p.lua:2: unknown field 'toool' in deny rule (fields: tool, role); did you mean 'tool'?",
      nearest.hint("p.lua:2: unknown field 'toool' in deny rule (fields: tool, role)"))
    -- a name of a role, as orket.lua's team, `orket validate` and `orket gate` give it
    assert.equal([[orket.lua:18: team.dev.roles[1]: no role named "testr" (roles: coder, tester); did you mean 'tester'?]],
      nearest.hint([[orket.lua:18: team.dev.roles[1]: no role named "testr" (roles: coder, tester)]]))
    assert.equal([[--role codr: no role named "codr" after the reload (roles: coder); did you mean 'coder'?]],
      nearest.hint([[--role codr: no role named "codr" after the reload (roles: coder)]]))
    for _, same in ipairs {
      [[--role zzz: no role named "zzz" (roles: coder, tester)]], -- nothing near
      "orket.lua: store.host: unknown setting (known: url)",   -- nothing near
      "epics/x.json: issues[0].summary: must be a string",    -- no unknown field
      "unknown command 'frobnicate'",
      "orket.lua: serve.cros: unknown setting (known: cors); did you mean 'cors'?", -- said once
    } do
      assert.equal(same, nearest.hint(same))
    end
    assert.equal(42, nearest.hint(42))
  end)

  it("orders unknown names with a near one first, then the rest, each part by name", function()
    local names = "id, name, summary, seat, priority"
    assert.same({ "sumary", "aaa", "zzz" }, nearest.ordered({ "zzz", "sumary", "aaa" }, names))
    assert.same({ "prority", "sumary", "aaa" }, nearest.ordered({ "sumary", "aaa", "prority" }, names))
    assert.same({}, nearest.ordered({}, names))
    -- the hint follows the known names' list, before what the message adds after it
    assert.equal("e.json:1: issues[0].sumary: unknown field (an issue's fields: id, summary); did you mean "
      .. "'summary'? (and 1 more unknown field: issues[0].aaa)",
      nearest.hint("e.json:1: issues[0].sumary: unknown field (an issue's fields: id, summary) (and 1 more "
        .. "unknown field: issues[0].aaa)"))
  end)

  it("reads a long one-line message in a number of steps that grows with its length, not its square", function()
    -- matching steps are charged to a script call's instruction budget: a budget of 1M
    -- holds a few passes over 30 KB, where rescanning the line from each of its starts
    -- takes some 400M (a 20,000-id dependency cycle took minutes to print)
    local scriptenv = require "orket.scriptenv"
    local ids = {}
    for i = 1, 3000 do ids[i] = "C-" .. i end
    ids[#ids + 1] = "C-1"
    local cycle = "epics/c.json: dependency cycle: " .. table.concat(ids, " -> ")
    local function hint(msg)
      local box = scriptenv.new { instructions = 1000000, timeout_ms = 0 }
      local ok, res = box:pcall(nearest.hint, msg)
      assert.is_true(ok, res)
      return res
    end
    assert.equal(cycle, hint(cycle))
    local tail = "; orket.lua: serve.cros: unknown setting (known: cors)"
    assert.equal(cycle .. tail .. "; did you mean 'cors'?", hint(cycle .. tail))
    -- many ": unknown" with no list after them: each is given up on once
    local many = ("x: unknown setting "):rep(1500)
    assert.equal(many, hint(many))
    assert.equal(many .. "(known: cors)", hint(many .. "(known: cors)"))
  end)
end)
