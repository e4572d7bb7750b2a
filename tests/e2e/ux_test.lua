-- What a new user meets on the command line: a project's mistakes are refused by every
-- command that reads them (not only by validate), with the file, field and exit status
-- the docs promise.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local project = F.initialized

local append = F.append

describe("a project's orket.lua", function()
  after_each(H.cleanup)

  it("with a misspelt top-level setting is refused by run and models, not run with defaults", function()
    local p = project()
    append(p .. "/orket.lua", "concurency = 1\n")
    for _, cmd in ipairs { "run START", "models --no-check" } do
      local r = H.orket(cmd, { cwd = p })
      assert.equal(1, r.status, cmd .. ": " .. r.stdout)
      assert.matches("orket.lua:18: concurency: unknown setting", r.stderr, 1, true)
    end
    assert.is_nil(H.read(p .. "/workspace/hello.txt"))
    assert.matches("START%-1%s+ready", H.orket("board", { cwd = p }).stdout)
  end)
end)

describe("orket validate on epics", function()
  after_each(H.cleanup)

  local function validate_with(from, to)
    local p = project()
    local path = p .. "/epics/start.json"
    local text = H.read(path)
    local changed = text:gsub(from, to, 1)
    assert.not_equal(text, changed)
    H.write(path, changed)
    return H.orket("validate", { cwd = p })
  end

  it("names the file, line and field of a dependency cycle", function()
    local r = validate_with('"priority": "High",', '"priority": "High", "depends_on": ["START-2"],')
    assert.equal(1, r.status)
    assert.matches("epics/start.json:10: issues[1].depends_on[0]: dependency cycle: START-1 -> START-2 -> START-1\n1 problem\n",
      r.stdout, 1, true)
  end)

  it("names the line of a card depending on itself", function()
    local r = validate_with('"depends_on": %["START%-1"%]', '"depends_on": ["START-2"]')
    assert.equal(1, r.status)
    assert.matches("epics/start.json:10: issues[1].depends_on[0]: dependency cycle: START-2 depends on itself\n",
      r.stdout, 1, true)
  end)

  -- an issue waits for its epic's dependencies (docs/board.md, Guards 3): what import and
  -- validate check is what the scheduler waits for
  it("names a cycle through an epic's depends_on, with its line, and import refuses it", function()
    local p = project()
    H.write(p .. "/epics/e.json", '{\n  "id": "E",\n  "depends_on": ["E-1"],\n  "issues": [{"id": "E-1", "summary": "a"}]\n}\n')
    local r = H.orket("validate", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("epics/e.json:3: depends_on[0]: dependency cycle: E-1 -> (epic E) -> E-1\n1 problem\n", r.stdout, 1, true)
    H.write(p .. "/epics/e.json", '{\n  "id": "E",\n  "depends_on": ["F-1"],\n  "issues": [{"id": "E-1", "summary": "a"}]\n}\n')
    H.write(p .. "/epics/f.json", '{\n  "id": "F",\n  "issues": [\n    {"id": "F-1", "summary": "a", "depends_on": ["E-1"]}\n  ]\n}\n')
    r = H.orket("validate", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("epics/e.json:3: depends_on[0]: dependency cycle: F-1 -> E-1 -> (epic E) -> F-1\n1 problem\n", r.stdout, 1, true)
    r = H.orket("import", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("orket: epics/e.json:3: depends_on[0]: dependency cycle: F-1 -> E-1 -> (epic E) -> F-1\n", r.stderr, 1, true)
    assert.is_nil(H.orket("board", { cwd = p }).stdout:match("E%-1"))
  end)

  -- validate reports everything in one pass (docs/engine.md): an error in one field neither
  -- hides the unknown fields found before it nor the errors after it
  it("reports every unknown field and every field's error of an epic file", function()
    local p = project()
    H.write(p .. "/epics/e.json", table.concat({ '{"id": "E", "name": "e", "issues": [',
      ' {"id": "C", "summary": "z", "seet": "coder"},',
      ' {"id": "D", "summary": "z", "depends_on ": ["C"]},',
      ' {"id": "F", "summary": "z", "priority": "Urgent"},',
      ' {"id": "G", "summary": 5, "priority": "Urgent", "depends_on": [1]},',
      ' 7,',
      ' {"id": "H", "summary": "z", "depends_on": ["G", "C"]}',
      ']}', '' }, "\n"))
    local r = H.orket("validate", { cwd = p })
    assert.equal(1, r.status)
    for _, want in ipairs {
      "epics/e.json:2: issues[0].seet: unknown field",
      'epics/e.json:3: issues[1]["depends_on "]: unknown field',
      'epics/e.json:4: issues[2].priority: unknown priority "Urgent"',
      "epics/e.json:5: issues[3].summary: must be a string, not number",
      'epics/e.json:5: issues[3].priority: unknown priority "Urgent"',
      "epics/e.json:5: issues[3].depends_on[0]: must be a card id string",
      "issues[4]: must be an object",
    } do
      assert.matches(want, r.stdout, 1, true)
    end
    -- each said once, and a card of the file with a broken field is still a card (H may
    -- depend on G): nothing else
    assert.matches("\n7 problems\n$", r.stdout)
    -- import refuses the first field's error
    r = H.orket("import", { cwd = p })
    assert.equal(1, r.status)
    assert.matches('^orket: epics/e.json:4: issues%[2%]%.priority: unknown priority "Urgent"', r.stderr)
  end)

  it("reports every problem of a rock file, and links it to an epic whose file has a wrong field", function()
    local p = project()
    H.write(p .. "/epics/r.json", '{"id": "R", "type": "rock", "colour": 1, "priority": "Urgent",\n'
      .. ' "epics": [{"epic": "e", "departmnt": "x"}, 5, {"epic": 7}]}\n')
    H.write(p .. "/epics/e.json", '{"id": "E", "summary": 3, "issues": [{"id": "E-1", "summary": "a"}]}\n')
    local r = H.orket("validate", { cwd = p })
    assert.equal(1, r.status)
    for _, want in ipairs {
      "epics/e.json:1: summary: must be a string, not number",
      "epics/r.json:1: colour: unknown field",
      'epics/r.json:1: priority: unknown priority "Urgent"',
      "epics/r.json:2: epics[0].departmnt: unknown field",
      "epics/r.json:2: epics[1]: must be {epic=, department=} or an epic id",
      "epics/r.json:2: epics[2].epic: must be a string, not number",
    } do
      assert.matches(want, r.stdout, 1, true)
    end
    assert.matches("\n6 problems\n$", r.stdout) -- and no unknown epic "e"
  end)

  it("reports a duplicate id once, not also as a cycle", function()
    local r = validate_with('"id": "START%-2"', '"id": "START-1"')
    assert.equal(1, r.status)
    assert.matches('card id "START-1" is already used', r.stdout, 1, true)
    assert.matches("\n1 problem\n$", r.stdout)
  end)

  it("finds the depends_on line of the card that names an unknown card", function()
    local r = validate_with('"priority": "High",', '"priority": "High", "depends_on": ["START-9"],')
    assert.matches('epics/start.json:6: issues[0].depends_on[0]: unknown card "START-9"', r.stdout, 1, true)
    r = validate_with('"depends_on": %["START%-1"%]', '"depends_on": ["START-9"]')
    assert.matches('epics/start.json:10: issues[1].depends_on[0]: unknown card "START-9"', r.stdout, 1, true)
  end)
end)

describe("orket log and orket card arguments", function()
  after_each(H.cleanup)

  it("log says there are no runs yet, shows the latest run by default, and prints whole step numbers", function()
    local p = project()
    local r = H.orket("log", { cwd = p })
    assert.equal(1, r.status)
    assert.equal("orket: no runs yet; start one with 'orket run EPIC'\n", r.stderr)
    assert.equal(0, H.orket("run START", { cwd = p }).status)
    r = H.orket("log", { cwd = p })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^run 1: epic START, done", r.stdout)
    assert.matches("\n%-%- step 1, model starter,", r.stdout)
    assert.is_nil(r.stdout:find("step 1.0", 1, true))
    assert.matches("orket log [RUN]", H.orket("help log").stdout, 1, true)
  end)

  it("log -C without a directory and card with two ids are usage errors that say so", function()
    local p = project()
    local r = H.orket("log -C", { cwd = p })
    assert.equal(2, r.status)
    assert.matches("^orket: %-C needs a directory\n", r.stderr)
    r = H.orket("card START-1 START-2", { cwd = p })
    assert.equal(2, r.status)
    assert.matches("^orket: card takes one card id\n", r.stderr)
  end)
end)

describe("an epic file holding an empty JSON array", function()
  after_each(H.cleanup)

  it("is refused by validate and import instead of importing an empty epic named after the file", function()
    local p = project()
    H.write(p .. "/epics/start.json", "[]\n")
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status)
    assert.matches("epics/start.json: must hold an object (a rock or an epic), not an array", v.stdout, 1, true)
    local r = H.orket("import", { cwd = p })
    assert.equal(1, r.status)
    assert.equal("orket: epics/start.json: must hold an object (a rock or an epic), not an array\n", r.stderr)
    assert.is_nil(H.orket("board", { cwd = p }).stdout:find("EPIC start", 1, true))
  end)
end)
