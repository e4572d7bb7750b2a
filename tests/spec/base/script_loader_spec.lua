-- What the one loader of script files (orket.scriptfile) and orket.lua's reader
-- (orket.config) make of files as operators save them: a UTF-8 byte order mark and old Mac
-- line ends in any script or epic, UTF-16 named; an orket.lua that sets globals and also
-- returns a table (the globals were dropped without a word), a global helper function; a
-- Lua epic's value that is no plain data, said at its path as a field is; and an issue
-- seated at a seat holding only integrity_guard (validate said ok, the run burned turns).
local H = require "tests.helpers"
local scriptfile = require "orket.scriptfile"
local config = require "orket.config"
local validate = require "orket.validate"
local import = require "orket.import"

local BOM = "\239\187\191"

local ORKET = [[
name = "cfg"
vision = "config testing"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
concurrency = 1
]]

local SCRIPT = 'return { rules = { { role = "coder", reply = { content = "hi" } } }, default = { content = "done" } }\n'

local EPIC = [[
{ "id": "M", "name": "M", "issues": [
  { "id": "M-1", "summary": "Do it", "seat": "senior_developer", "priority": "High" },
  { "id": "M-2", "summary": "Do that", "seat": "senior_developer", "depends_on": ["M-1"] } ] }
]]

local function project(files)
  local dir = H.tmpdir()
  for _, sub in ipairs { "epics", "roles", "tools", "policies" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. sub)) end
  local all = { ["orket.lua"] = ORKET, ["script.lua"] = SCRIPT, ["epics/m.json"] = EPIC }
  for name, text in pairs(files or {}) do all[name] = text end
  for name, text in pairs(all) do
    if text then H.write(dir .. "/" .. name, text) end
  end
  return dir
end

-- validate's problems as "file:line: message" (or "file: message")
local function problems(dir)
  local out = {}
  for _, p in ipairs((validate.check(dir))) do
    out[#out + 1] = string.format("%s%s: %s", p.file or "?", p.line and (":" .. p.line) or "", p.message)
  end
  return out
end

describe("scriptfile.text", function()
  it("skips a UTF-8 byte order mark, makes a CR alone LF and leaves CRLF", function()
    assert.equal("return 1\n", scriptfile.text(BOM .. "return 1\n"))
    assert.equal("a\nb\nc\n", scriptfile.text("a\rb\rc\r"))
    assert.equal("a\r\nb\r\n", scriptfile.text("a\r\nb\r\n"))
    assert.equal("a\nb\r\nc\n", scriptfile.text("a\rb\r\nc\r"))
    assert.equal("", scriptfile.text(""))
  end)

  it("names UTF-16 and UTF-32, with or without their mark", function()
    for _, src in ipairs { "\255\254r\0", "\254\255\0r", "r\0e\0", "\0r\0e", "\0\0\254\255", "\255\254\0\0r\0\0\0" } do
      local t, err = scriptfile.text(src)
      assert.is_nil(t)
      assert.equal("is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8", err)
    end
  end)
end)

describe("a script file saved with a byte order mark", function()
  after_each(H.cleanup)

  it("loads as without it: orket.lua, script.lua, a role, a tool, a policy, routing.lua, epics", function()
    local dir = project {
      ["orket.lua"] = BOM .. ORKET,
      ["script.lua"] = BOM .. SCRIPT,
      ["roles/coder.lua"] = BOM .. 'return { intent = "x", tools = { "read_file" }, system = "s" }\n',
      ["tools/hello.lua"] = BOM .. 'return { name = "hello", effect = "read", description = "says hello",\n'
        .. '  parameters = { type = "object", properties = {} },\n'
        .. '  handler = function() return { ok = true } end }\n',
      ["policies/p.lua"] = BOM .. 'deny { tool = "write_file", path = "secret/**", reason = "no" }\n',
      ["routing.lua"] = BOM .. "return {}\n",
      ["epics/m.json"] = BOM .. EPIC,
      ["epics/l.lua"] = BOM .. 'return { id = "L", issues = { { id = "L-1", summary = "s" } } }\n',
    }
    assert.same({}, problems(dir))
    local cfg = assert(config.load(dir))
    assert.equal("cfg", cfg.name)
    local ok, def = scriptfile.run(require("orket.scriptenv").new { name = "x" }, dir .. "/roles/coder.lua")
    assert.is_true(ok)
    assert.equal("x", def.intent)
  end)

  it("saved as UTF-16 is named so, for orket.lua and a role as for an epic", function()
    local u16 = function(s) return "\255\254" .. s:gsub(".", "%0\0") end
    local dir = project { ["roles/coder.lua"] = u16 'return { intent = "x", tools = {}, system = "s" }\n' }
    assert.same({ "roles/coder.lua: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8" }, problems(dir))
    dir = project { ["orket.lua"] = u16(ORKET) }
    local cfg, err, code = config.load(dir)
    assert.is_nil(cfg)
    assert.equal("orket.lua: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8", err)
    assert.equal("EINVAL", code)
    dir = project { ["epics/u.json"] = u16 '{ "id": "U", "issues": [] }' }
    assert.same({ "epics/u.json: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8" }, problems(dir))
  end)

  it("with old Mac line ends, a JSON epic's field is said at its line", function()
    local dir = project { ["epics/c.json"] = '{ "id": "C", "name": "C", "issues": [\r  { "id": "C-1",\r "sumary": "x" } ] }\r' }
    local got = problems(dir)
    assert.equal(1, #got)
    assert.matches("^epics/c%.json:3: issues%[0%]%.sumary: unknown field", got[1])
  end)
end)

describe("orket.lua that sets globals and returns a table", function()
  after_each(H.cleanup)

  it("is refused, naming the globals in the file's order and the return's line, in validate and load", function()
    local dir = project { ["orket.lua"] = ORKET .. "return { concurrency = 3 }\n" }
    local want = "orket.lua:6: returns a table and also sets the globals name, vision, models, team, concurrency: "
      .. "a returned table replaces them; use one or the other"
    local cfg, err, code = config.load(dir)
    assert.is_nil(cfg)
    assert.equal(want, err)
    assert.equal("EINVAL", code)
    assert.same({ want }, problems(dir))
    dir = project { ["orket.lua"] = 'name = "a"\nreturn { name = "b" }\n' }
    assert.equal("orket.lua:2: returns a table and also sets the global name: a returned table replaces it; use one "
      .. "or the other", select(2, config.load(dir)))
  end)

  it("lets a returned table be with a helper function, global or local", function()
    local dir = project { ["orket.lua"] = 'local function c() return 2 end\nfunction helper() end\n'
      .. 'return { name = "r", vision = "v", concurrency = c(),\n'
      .. '  models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } } }\n' }
    local cfg = assert(config.load(dir))
    assert.equal("r", cfg.name)
    assert.equal(2, cfg.concurrency)
  end)

  it("with globals only, a global function is said at its line as no setting", function()
    local dir = project { ["orket.lua"] = ORKET .. "function provider(url) return { base_url = url } end\n" }
    local want = "orket.lua:6: provider: a global function is not a setting; make it local"
    assert.equal(want, select(2, config.load(dir)))
    assert.same({ want }, problems(dir))
    dir = project { ["orket.lua"] = ORKET .. "\nprovider = function(url) return url end\n" }
    assert.equal("orket.lua:7: provider: a global function is not a setting; make it local", select(2, config.load(dir)))
  end)
end)

describe("a Lua epic holding a value that is no plain data", function()
  after_each(H.cleanup)

  it("names it as a field, at the line of the element it is in", function()
    local dir = project { ["epics/l.lua"] = 'return {\n id = "L",\n issues = {\n'
      .. '  { id = "L-1", summary = "s", acceptance = "ok" },\n'
      .. '  { id = "L-2", summary = "t",\n    acceptance = function() end },\n } }\n' }
    assert.same({ "epics/l.lua:6: issues[2].acceptance: function is not plain data" }, problems(dir))
    local set, err = import.load(dir)
    assert.is_nil(set)
    assert.equal("epics/l.lua:6: issues[2].acceptance: function is not plain data", err)
  end)

  it("writes orket.c.plain's path as a field's", function()
    assert.equal("issues[2].acceptance: function is not plain data",
      scriptfile.plain_error("value.issues.2.acceptance: function is not plain data"))
    assert.equal('models.prices["openai:gpt"].x: cycle', scriptfile.plain_error("value.models.prices.openai:gpt.x: cycle"))
    assert.equal("cycle", scriptfile.plain_error("value: cycle"))
    assert.equal("other", scriptfile.plain_error("other"))
  end)
end)

describe("an issue seated at a seat holding only integrity_guard", function()
  after_each(H.cleanup)

  local QA = ORKET:gsub('integrity_guard = { roles = { "integrity_guard" } } }',
    'integrity_guard = { roles = { "integrity_guard" } }, qa = { roles = { "integrity_guard" } } }')
  local QA_EPIC = EPIC:gsub('"senior_developer"', '"qa"', 1)
  local WANT = 'epics/m.json:2: issues[0].seat: "qa" holds only integrity_guard, so no working role could do the '
    .. "card (the reviewer's role would be given the work, and could never hand it in); seat it at a seat with a "
    .. "working role (senior_developer)"

  it("is refused by validate, naming the card's field, while another seat reviews", function()
    assert.same({ WANT }, problems(project { ["orket.lua"] = QA, ["epics/m.json"] = QA_EPIC }))
    -- the only reviewer seat keeps its own message; a seat with a working role beside is fine
    local sole = problems(project { ["epics/m.json"] = EPIC:gsub('"senior_developer"', '"integrity_guard"', 1) })
    assert.equal(1, #sole)
    assert.matches('"integrity_guard" is the only seat holding integrity_guard', sole[1], 1, true)
    local mixed = QA:gsub('qa = { roles = { "integrity_guard" } }', 'qa = { roles = { "integrity_guard", "coder" } }')
    assert.same({}, problems(project { ["orket.lua"] = mixed, ["epics/m.json"] = QA_EPIC }))
  end)

  it("is import's warning too when given the team's roles, as validate says it", function()
    local dir = project { ["orket.lua"] = QA, ["epics/m.json"] = QA_EPIC }
    local set = assert(import.load(dir))
    local settings = require "orket.settings"
    local s = settings.resolve { team = assert(config.read(dir)).team }
    assert.same({ WANT }, import.unseated(dir, set, settings.seats(s), s.team))
    -- without the roles (an older caller), only a seat the team lacks is said
    assert.same({}, import.unseated(dir, set, settings.seats(s)))
  end)
end)
