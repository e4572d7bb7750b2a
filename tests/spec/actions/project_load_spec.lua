-- Loading a project's files: mistakes in orket.lua, epics and a scripted model's file come
-- back as "file:line: message" (no traceback, nothing silently dropped), and the settings
-- refuse numbers out of range by name.
local H = require "tests.helpers"
local import = require "orket.import"
local settings = require "orket.settings"
local scriptenv = require "orket.scriptenv"
local config = require "orket.config"
local llm = require "orket.llm"
local fieldline = require "orket.fieldline"

local function epics(files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  for name, text in pairs(files) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

describe("engine settings with large numbers", function()
  it("names the field and the range instead of failing inside", function()
    for _, v in ipairs { 1e300, math.huge, 2 ^ 63, 1e20, -math.huge } do
      local s, err = settings.resolve { budgets = { turns_per_card = v } }
      assert.is_nil(s)
      assert.matches("^orket.lua: budgets.turns_per_card: must be an integer from 0 to 1000000000000", err)
    end
    local s, err = settings.resolve { concurrency = 1e20 }
    assert.is_nil(s)
    assert.matches("^orket.lua: concurrency: must be an integer from 1 to 64", err)
    assert.is_nil((settings.resolve { concurrency = math.maxinteger }))
    assert.equal(7, settings.resolve({ budgets = { turns_per_card = 7.0 } }).budgets.turns_per_card)
  end)
end)

describe("script errors from loading a file", function()
  after_each(H.cleanup)

  it("are the first line only, for orket.lua and box:dofile", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "name = 'x'\nlocal a; team = a.b\n")
    local data, err = config.read(dir)
    assert.is_nil(data)
    assert.equal("orket.lua:2: attempt to index a nil value (local 'a')", err)
    local ok, derr, code = scriptenv.new { name = "f.lua" }:dofile(dir .. "/orket.lua")
    assert.is_false(ok)
    assert.equal(dir .. "/orket.lua:2: attempt to index a nil value (local 'a')", derr)
    assert.equal("ERUNTIME", code)
    assert.equal("a:1: b", scriptenv.first_line("a:1: b\nstack traceback:\n\tx"))
  end)
end)

describe("import of epics that would lose or stall cards", function()
  after_each(H.cleanup)

  local function refused(files, want)
    local set, err = import.load(epics(files))
    assert.is_nil(set)
    assert.equal(want, err)
  end

  it("refuses issues given as an object or with a hole, naming file and field", function()
    refused({ ["x.json"] = '{"id":"X","issues":{"a":{"summary":"s"}}}' },
      'epics/x.json:1: issues: must be an array of issues, not an object (it has the key "a")')
    refused({ ["x.lua"] = 'return { id = "L", issues = { {summary="a"}, nil, {summary="b"} } }' },
      "epics/x.lua:1: issues[2]: is nil: a hole in the array of issues (everything after it would be dropped)")
    refused({ ["x.json"] = '{"id":"X","issues":[{"summary":"a","depends_on":{"k":"X"}}]}' },
      'epics/x.json:1: issues[0].depends_on: must be an array of card ids, not an object (it has the key "k")')
  end)

  it("refuses a dependency on the card's own epic or rock", function()
    refused({ ["x.json"] = '{"id":"X","issues":[{"id":"X-1","summary":"a","depends_on":["X"]}]}' },
      'epics/x.json:1: issues[0].depends_on[0]: X-1 depends on "X", the epic it belongs to; it could never start')
    refused({
      ["r.json"] = '{"id":"R","type":"rock","epics":["E"]}',
      ["e.json"] = '{"id":"E","issues":[{"id":"E-1","summary":"a","depends_on":["R"]}]}',
    }, 'epics/e.json:1: issues[0].depends_on[0]: E-1 depends on "R", the rock it belongs to; it could never start')
  end)

  it("names the file of an empty Lua epic, a cyclic table and a runtime error, once", function()
    refused({ ["x.lua"] = "" }, "epics/x.lua: returns nothing; return a table (a rock or an epic)")
    refused({ ["x.lua"] = "return nil" }, "epics/x.lua: returns nothing; return a table (a rock or an epic)")
    refused({ ["x.lua"] = "local t = {} t.self = t return t" }, "epics/x.lua:1: self: cycle")
    refused({ ["x.lua"] = "local a\nreturn a.b\n" }, "epics/x.lua:2: attempt to index a nil value (local 'a')")
    refused({ ["x.lua"] = "return {\n id = \n" }, "epics/x.lua:3: unexpected symbol near <eof>")
  end)

  it("places a settings file's error at the line that set the value in force, a card's at its own", function()
    local cfg = table.concat({
      "models = {", '  default = "a:b",', "}", "team = {",
      '  dev = { roles = { "coder" } },', "}", "concurrency = 3",
      'team.dev = { roles = { "codr" } }', 'models.default = "x:y"', "concurrency = 0", "",
    }, "\n")
    local function read() return cfg end
    local function line_of(msg, anchor) return select(2, fieldline.place(msg, read, nil, anchor)) end
    assert.equal(8, line_of('orket.lua: team.dev.roles[1]: no role named "codr"', fieldline.table_set("dev")))
    assert.equal(9, line_of("orket.lua: models.default names provider 'x'"))
    assert.equal(10, line_of("orket.lua: concurrency: must be an integer"))
    -- a line commented out sets nothing: `orket init --forge` writes such trailing ones
    cfg = table.concat({
      'review = { escalate_after = 2, human = "yes" }', "-- review = { human = true }",
      "models.default = 5", "if models.default == 5 then end", '-- models.default = "ollama:y"',
      'local note = "models.default = 1 -- in a string"', "--[[ models.default = 2", "]]", "",
    }, "\n")
    assert.equal(1, line_of("orket.lua: review.human: must be a boolean", fieldline.table_set("review")))
    assert.equal(3, line_of("orket.lua: models.default: must be a string"))
    -- a card's anchor names the card: a later line of the same name elsewhere is not its
    local epic = '{ id = "X-1",\n  priority = "Soon" },\n{ id = "X-2",\npriority = 2 }\n'
    assert.equal(2, select(2, fieldline.place("epics/x.lua: issues[0].priority: unknown priority",
      function() return epic end, nil, { fieldline.id_set("X-1"), 1 })))
    -- a field that is missing is placed at the nearest field around it that is written
    epic = '{"issues": [\n {"id": "X-1",\n  "sandbox_checks": [\n   {"browser": {}}]},\n {"id": "X-2",\n  "sandbox_checks": [{"http": []}]}]}\n'
    assert.equal(4, select(2, fieldline.place("epics/x.json: issues[0].sandbox_checks[0].browser.selector: is required",
      function() return epic end, nil, { fieldline.id_set("X-1"), 1 })))
    assert.equal(6, select(2, fieldline.place("epics/x.json: issues[1].sandbox_checks[0].http.path: must be a string",
      function() return epic end, nil, { fieldline.id_set("X-2"), 1 })))
  end)

  it("places a sign_in group map's mistake inside sign_in's own tables, never at a key of the same name "
    .. "elsewhere in the file", function()
    local cfg = table.concat({
      "models = {", '  default = "a:b",', "}", "team = {", '  lead = { roles = { "architect" } },', "}",
      'serve = { projects = { web = "../web" } }', "sign_in = {", '  roles = { everyone = "viewr", webdevs = "operator" },',
      "  project_roles = {", '    default = { everyone = "operator" },', '    web = { webdevs = "develop" },',
      '    ["infra"] = { ["ops"] = "admn" },', "  },", "}", "",
    }, "\n")
    local function line_of(msg) return select(2, fieldline.place(msg, function() return cfg end)) end
    assert.equal(9, line_of('orket.lua: sign_in.roles["everyone"]: must be viewer, operator or admin (got viewr)'))
    assert.equal(11, line_of('orket.lua: sign_in.project_roles.default["everyone"]: must be viewer, developer or '
      .. "admin (got operator)"))
    assert.equal(12, line_of('orket.lua: sign_in.project_roles.web["webdevs"]: must be viewer, developer or admin '
      .. "(got develop)"))
    assert.equal(13, line_of('orket.lua: sign_in.project_roles.infra["ops"]: must be viewer, developer or admin '
      .. "(got admn)"))
    -- a later statement sets the value in force
    cfg = cfg .. 'sign_in.project_roles.web = {\n  webdevs = "develop",\n}\n'
    assert.equal(17, line_of('orket.lua: sign_in.project_roles.web["webdevs"]: must be viewer, developer or admin '
      .. "(got develop)"))
    -- a field of a field: in its parents' braces too, not at the file's first `web =`
    assert.equal(16, line_of("orket.lua: sign_in.project_roles.web: this server hosts no project named 'web'"))
  end)

  it("places a bad price at its model's line in orket.lua, as a bad budget", function()
    local cost = require "orket.cost"
    local cfg = table.concat({
      "models = {", "  prices = {", '    ["a:b"] = { input = 1, output = 1, currency = "USD" },',
      "    ['a:c'] = {", '      input = "x", output = 1, currency = "USD" },', '    ["a:d"] = 7,',
      '    ["a:e"] = { output = 1, currency = "USD" },', "  },", "}", "",
    }, "\n")
    local function line_of(prices)
      local _, err = cost.prices(prices)
      return select(2, fieldline.place("orket.lua: " .. err, function() return cfg end))
    end
    assert.equal(5, line_of({ ["a:c"] = { input = "x", output = 1, currency = "USD" } }))
    assert.equal(6, line_of({ ["a:d"] = 7 }))
    assert.equal(7, line_of({ ["a:e"] = { output = 1, currency = "USD" } }))
    assert.equal(3, line_of({ ["a:b"] = { input = 1, output = 1, currency = "XYZ" } }))
    assert.equal(7, line_of({ ["a:e"] = { input = 1, output = 1, currency = "USD", extra = 1 } }))
  end)

  it("names a price entry's own line, never another entry's: a field missing, a flat file, a commented-out entry", function()
    local cost = require "orket.cost"
    local function line_of(cfg, prices)
      local _, err = cost.prices(prices)
      return select(2, fieldline.place("orket.lua: " .. err, function() return cfg end))
    end
    -- input missing from a:e, set by the next entry: a:e's line, not a:f's
    local cfg = table.concat({
      "models = {", "  prices = {", '    ["a:e"] = { output = 1, currency = "USD" },',
      '    ["a:f"] = { input = 1, output = 1, currency = "USD" },', "  },", "}", "",
    }, "\n")
    assert.equal(3, line_of(cfg, { ["a:e"] = { output = 1, currency = "USD" } }))
    -- a file written flat: the next entry's `input =` at a line's start is not a:e's
    local flat = table.concat({
      "models = {", "prices = {", '["a:e"] = {', 'output = 1, currency = "USD",', "input = \"x\",", "},",
      '["a:f"] = {', "input = 1, output = 1,", 'currency = "USD",', "},", "},", "}", "",
    }, "\n")
    assert.equal(5, line_of(flat, { ["a:e"] = { input = "x", output = 1, currency = "USD" } }))
    assert.equal(3, line_of(flat, { ["a:e"] = { output = 1, currency = "USD" } }))
    -- a commented-out later entry of the same model is not where it is set
    local commented = table.concat({
      "models = {", "  prices = {", '    ["a:d"] = { output = 1, currency = "USD" },',
      '    -- ["a:d"] = { input = 1, output = 1, currency = "USD" },', "  },", "}", "",
    }, "\n")
    assert.equal(3, line_of(commented, { ["a:d"] = { output = 1, currency = "USD" } }))
    assert.equal(3, line_of(commented, { ["a:d"] = { input = "y", output = 1, currency = "USD" } }))
    -- an entry keyed by a variable ([M] = ...) is nowhere as text: the line of its table (it
    -- was none), and of the statement that set it last
    local keyed = table.concat({
      'local M = "a:e"', "models = {", "  default = M,", "  prices = {", '    [M] = { output = 1, currency = "USD" },',
      "  },", "}", "", 'models.prices = { [M] = { output = 2, currency = "USD" } }', "",
    }, "\n")
    assert.equal(4, line_of(keyed:match("^(.-)\n\nmodels"), { ["a:e"] = { output = 1, currency = "USD" } }))
    assert.equal(9, line_of(keyed, { ["a:e"] = { output = 2, currency = "USD" } }))
  end)

  it("locates a message for a command as validate does: the file from the project, its line, the rest kept", function()
    local files = { ["/p/roles/pilot.lua"] = 'return {\n  intent = "fly",\n  sytem = "s",\n}\n' }
    local function read(path) return files[path] end
    assert.equal("roles/pilot.lua:3: unknown field 'sytem' (fields: a)\nmore",
      fieldline.locate("./roles/pilot.lua: unknown field 'sytem' (fields: a)\nmore", "/p", function(path)
        return read(path:gsub("^/p/%./", "/p/"))
      end))
    assert.equal("roles/pilot.lua:2: intent must be a string",
      fieldline.locate("/p/roles/pilot.lua: intent must be a string", "/p", read))
    -- a line given is kept; a message naming no file gains none
    assert.equal("roles/pilot.lua:9: x", fieldline.locate("roles/pilot.lua:9: x", "/p", read))
    assert.equal("no file here", fieldline.locate("no file here", "/p", read))
  end)

  it("gives validate the anchor of the card a field error is about", function()
    local text = '{\n "id": "X",\n "priority": "High",\n "issues": [\n  { "id": "X-1", "summary": "a",\n'
      .. '    "priority": "High" },\n  { "id": "X-2", "summary": "b",\n    "priority": "Soon" } ] }\n'
    local dir = epics { ["x.json"] = text }
    local cards, problems = import.check_file { path = dir .. "/epics/x.json", rel = "epics/x.json", stem = "x" }
    -- the problem is one of a list (validate reports them all); the card stays a card
    assert.equal(1, #problems)
    assert.equal(3, #cards)
    assert.matches("^epics/x.json: issues%[1%].priority: unknown priority", problems[1].message)
    assert.equal(8, fieldline.of(text, "priority", problems[1].anchor))
  end)
end)

describe("the model client", function()
  after_each(H.cleanup)

  it("opens with a scripted file's mistake as file:line, no traceback", function()
    local dir = H.tmpdir()
    local function open(src)
      H.write(dir .. "/script.lua", src)
      return llm.open { providers = { s = { kind = "scripted", file = dir .. "/script.lua" } } }
    end
    local c, err = open('return { rules = { {role="coder" match="x"} } }')
    assert.is_nil(c)
    assert.equal(dir .. "/script.lua:1: '}' expected near 'match'", err)
    c, err = open("local a\nreturn a.b")
    assert.equal(dir .. "/script.lua:2: attempt to index a nil value (local 'a')", err)
    c, err = open("return {\n  rulez = {} }")
    assert.equal(dir .. "/script.lua:2: rulez is not a script field (rules, default)", err)
    c, err = open("return { rules = {\n  { role = 'x',\n    reply = { text = 'hi' } } } }")
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/script.lua:3: rules%[1%]%.reply%.text is not a reply field", err)
    os.remove(dir .. "/script.lua")
    c, err = llm.open { providers = { s = { kind = "scripted", file = dir .. "/script.lua" } } }
    assert.matches("^orket.lua: models.providers.s.file: cannot read the scripted model's file", err)
  end)

  it("checks model names against the configured providers", function()
    local models = { providers = { s = { kind = "scripted", rules = {} } } }
    assert.is_true(llm.check_model(models, "s:m"))
    assert.matches('a model is named "provider:model"', select(2, llm.check_model(models, "typo")))
    assert.equal("names provider 'nope', which is not configured (configured: s)", select(2, llm.check_model(models, "nope:x")))
    assert.same({ "orket.lua: team.b.model: names provider 'x', which is not configured (configured: s)" },
      llm.check_models(models, { a = { roles = {}, model = "s:m" }, b = { roles = {}, model = "x:y" } }, {}))
  end)
end)

describe("a run's state as orket runs shows it", function()
  after_each(H.cleanup)

  it("is killed when nobody holds the run lock, or its holder works another run", function()
    local project = require "orket.project"
    local lockfile = require "orket.c.lockfile"
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    assert.equal("done", project.run_state(dir, "done", 1))
    assert.equal("killed", project.run_state(dir, "running", 1)) -- no lock file at all
    local lk = assert(lockfile.acquire(dir .. "/.orket/run.lock"))
    -- held, not yet tagged: it may be any run's
    assert.equal("running", project.run_state(dir, "running", 1))
    lk:tag(2)
    assert.equal("running", project.run_state(dir, "running", 2))
    assert.equal("killed", project.run_state(dir, "running", 1))
    local held, pid, tag = lockfile.probe(dir .. "/.orket/run.lock")
    assert.same({ true, require("luv").os_getpid(), 2 }, { held, pid, tag })
    -- its owner's alone: whoever may read it may hold a shared lock and keep runs waiting
    assert.equal(tonumber("600", 8), require("luv").fs_stat(dir .. "/.orket/run.lock").mode & tonumber("777", 8))
    lk:release()
    assert.equal("killed", project.run_state(dir, "running", 2))
    assert.has_error(function() lk:tag(0) end)
  end)
end)

describe("import of text that is not UTF-8", function()
  after_each(H.cleanup)

  it("is refused with the file and the field, in JSON and Lua epics", function()
    local function refused(files, want)
      local set, err = import.load(epics(files))
      assert.is_nil(set)
      assert.equal(want, err)
    end
    refused({ ["x.json"] = '{"id":"X","issues":[{"summary":"caf\233"}]}' },
      "epics/x.json:1: issues[0].summary: is not valid UTF-8 (byte 4); save the file as UTF-8")
    refused({ ["x.lua"] = 'return { id = "X", requirements = { "ok", "\\255" } }' },
      "epics/x.lua:1: requirements[2]: is not valid UTF-8 (byte 1); save the file as UTF-8")
    refused({ ["x.json"] = '{"id":"X","note":"\192\175"}' },
      "epics/x.json:1: note: is not valid UTF-8 (byte 1); save the file as UTF-8")
    refused({ ["x.json"] = '{"id":"X","se\255t":"a"}' },
      "epics/x.json: (a field name): is not valid UTF-8 (byte 3); save the file as UTF-8")
    local set = assert(import.load(epics { ["x.json"] = '{"id":"X","summary":"caf\195\169 \226\156\147"}' }))
    assert.equal("caf\195\169 \226\156\147", set.by_id.X.summary)
  end)
end)
