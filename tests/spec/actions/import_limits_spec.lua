-- An epic file's card is held to the limits the API holds a new card to (POST /v1/cards:
-- orket.serve.writes' schema, the same constants of orket.board): a summary, name or note
-- of at most 4 KiB, a description, requirements or acceptance of at most 64 KiB, at most 100
-- depends_on, no NUL byte. orket validate and orket import refuse each alike, with file,
-- line, field and the limit; a file unchanged since an import that took it before these
-- limits is still imported (a warning), so an existing board keeps importing.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local validate = require "orket.validate"
local board_mod = require "orket.board"
local writes = require "orket.serve.writes"

local ORKET = [[
name = "limits"
vision = "limits testing"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]]
local SCRIPT = 'return { default = { content = "done" } }\n'

local function project(epics)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/.orket"))
  H.write(dir .. "/orket.lua", ORKET)
  H.write(dir .. "/script.lua", SCRIPT)
  for name, text in pairs(epics) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

-- validate's problems and warnings as "file:line: message"
local function said(list)
  local out = {}
  for _, p in ipairs(list) do
    out[#out + 1] = string.format("%s%s: %s", p.file or "?", p.line and (":" .. p.line) or "", p.message)
  end
  return out
end
local function check(dir)
  local problems, _, warnings = validate.check(dir)
  return said(problems), said(warnings)
end

-- an epic E of one plain issue E-1 and an issue E-2 whose fields are given (JSON text)
local function epic(fields)
  return '{"id": "E", "summary": "epic",\n "issues": [\n  {"id": "E-1", "summary": "one"},\n  {"id": "E-2", '
    .. fields .. '}\n ]\n}\n'
end

local function ids(n)
  local t = {}
  for i = 1, n do t[i] = '"E-1"' end
  return "[" .. table.concat(t, ", ") .. "]"
end

local function open(dir) return assert(store.open(dir .. "/.orket/orket.db")) end

-- import's refusal, and whether it wrote anything
local function import_refusal(dir)
  local db = open(dir)
  local r, msg, code = import.import(db, dir)
  local n = db:row("SELECT count(*) AS n FROM cards").n
  db:close()
  return r, msg, code, n
end

describe("epic files held to the API's limits", function()
  after_each(H.cleanup)

  it("uses the API's own constants", function()
    local create = writes.SCHEMAS.create.properties
    assert.equal(board_mod.DEPENDS_MAX, create.depends_on.maxItems)
    assert.equal(board_mod.NOTE_MAX, create.summary.maxLength)
    assert.equal(board_mod.TEXT_MAX, create.description.maxLength)
    assert.equal(board_mod.TEXT_MAX, create.acceptance.maxLength)
  end)

  local CASES = {
    { "a summary past the limit", '"summary": "' .. ("s"):rep(4097) .. '"',
      "issues[1].summary: 4097 characters, more than the 4096 a card's summary may have (as POST /v1/cards takes it): "
      .. "shorten it" },
    { "a name past the limit", '"summary": "s", "name": "' .. ("n"):rep(4097) .. '"',
      "issues[1].name: 4097 characters, more than the 4096" },
    { "a note past the limit", '"summary": "s", "note": "' .. ("n"):rep(4097) .. '"',
      "issues[1].note: 4097 characters, more than the 4096" },
    { "a description past the limit", '"summary": "s", "description": "' .. ("d"):rep(65537) .. '"',
      "issues[1].description: 65537 characters, more than the 65536 a card's description may have" },
    { "requirements past the limit", '"summary": "s", "requirements": "' .. ("r"):rep(65537) .. '"',
      "issues[1].requirements: 65537 characters, more than the 65536" },
    -- an array is stored one per line: its joined text is what is held
    { "acceptance past the limit",
      '"summary": "s", "acceptance": ["' .. ("a"):rep(32768) .. '", "' .. ("a"):rep(32768) .. '"]',
      "issues[1].acceptance: 65537 characters, more than the 65536 a card's acceptance may have" },
    { "depends_on past the limit", '"summary": "s", "depends_on": ' .. ids(101),
      "issues[1].depends_on: 101 card ids, more than the 100 a card may depend on (as POST /v1/cards takes it)" },
    { "a NUL", '"summary": "a\\u0000b"',
      "issues[1].summary: holds a NUL byte (byte 2), which a card's text may not (as POST /v1/cards refuses it): "
      .. "remove it" },
    { "a NUL in a description", '"summary": "s", "description": "x\\u0000"',
      "issues[1].description: holds a NUL byte" },
  }
  for _, c in ipairs(CASES) do
    it("refuses " .. c[1] .. " in validate and import alike, at its line", function()
      local dir = project { ["e.json"] = epic(c[2]) }
      local want = "epics/e.json:4: " .. c[3]
      local problems = check(dir)
      assert.equal(1, #problems, table.concat(problems, "\n"))
      assert.equal(want, problems[1]:sub(1, #want))
      local r, msg, code, n = import_refusal(dir)
      assert.is_nil(r)
      assert.equal("EINVAL", code)
      assert.equal(want, msg:sub(1, #want))
      assert.equal(0, n)
    end)
  end

  it("takes each field at its limit", function()
    local dir = project { ["e.json"] = epic('"summary": "' .. ("s"):rep(4096) .. '", "description": "'
      .. ("d"):rep(65536) .. '", "depends_on": ' .. ids(100)) }
    assert.same({}, (check(dir)))
    local r = assert(import_refusal(dir))
    assert.equal(3, r.created)
  end)

  -- counted in characters, as the API's schemas count them: 4096 of 3 bytes each are taken
  it("takes each field at its limit in characters of several bytes", function()
    local dir = project { ["e.json"] = epic('"summary": "' .. ("日"):rep(4096) .. '", "description": "'
      .. ("é"):rep(65536) .. '"') }
    assert.same({}, (check(dir)))
    assert(import_refusal(dir))
    dir = project { ["e.json"] = epic('"summary": "' .. ("日"):rep(4097) .. '"') }
    assert.matches("issues[1].summary: 4097 characters, more than the 4096", check(dir)[1], 1, true)
  end)

  it("holds an epic's own fields and a Lua file's to them too", function()
    local dir = project { ["e.lua"] = 'return { id = "E", summary = "a\\0b",\n  issues = {\n'
      .. '    { id = "E-1", summary = "one",\n      note = string.rep("n", 5000) },\n  },\n}\n' }
    local problems = check(dir)
    assert.same({ "epics/e.lua:1: summary: holds a NUL byte (byte 2), which a card's text may not (as POST /v1/cards "
      .. "refuses it): remove it",
      "epics/e.lua:4: issues[1].note: 5000 characters, more than the 4096 a card's note may have (as POST /v1/cards takes "
      .. "it): shorten it" }, problems)
    local r, msg = import_refusal(dir)
    assert.is_nil(r)
    assert.equal(problems[1], msg)
  end)

  -- a board imported before these limits: its files, unchanged, still import (and validate),
  -- with a warning; a new or changed file is refused
  it("keeps importing a file unchanged since an import that took it, and refuses it once changed", function()
    local text = epic('"summary": "' .. ("s"):rep(5000) .. '"')
    local dir = project { ["e.json"] = text }
    -- what an older Orket did: the file imported whole, its digest recorded
    local set = assert(import.load(dir))
    assert.equal(1, #set.held)
    set.held = nil
    local db = open(dir)
    assert(import.import(db, dir, set))
    db:close()
    local warn = "epics/e.json:4: issues[1].summary: 5000 characters, more than the 4096 a card's summary may have (as "
      .. "POST /v1/cards takes it): shorten it; " .. import.KEPT
    local problems, warnings = check(dir)
    assert.same({}, problems)
    assert.same({ warn }, warnings)
    db = open(dir)
    local r = assert(import.import(db, dir))
    assert.same({ 3, 0 }, { r.unchanged, r.updated })
    assert.same({ warn }, r.warnings)
    -- another file, new, is held to the limits; the unchanged one still is not
    H.write(dir .. "/epics/f.json", '{"id": "F", "issues": [{"id": "F-1", "summary": "' .. ("f"):rep(4097) .. '"}]}')
    local _, msg = import.import(db, dir)
    assert.equal("epics/f.json:1: issues[0].summary: 4097 characters", msg:sub(1, 50))
    os.remove(dir .. "/epics/f.json")
    -- the file changed (elsewhere than the long summary): refused, by both
    H.write(dir .. "/epics/e.json", text:gsub('"one"', '"one, edited"'))
    local _, msg2 = import.import(db, dir)
    assert.equal("epics/e.json:4: issues[1].summary: 5000 characters", msg2:sub(1, 50))
    assert.equal("one", db:row("SELECT summary FROM cards WHERE id = 'E-1'").summary)
    db:close()
    problems = check(dir)
    assert.same({ msg2 }, problems)
  end)
end)
