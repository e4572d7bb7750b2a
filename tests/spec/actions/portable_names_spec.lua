-- Names a clone on macOS or Windows cannot hold as they are on Linux: project files and
-- folders that differ only in case or Unicode normalization (refused by orket validate and
-- orket import), card ids that are Windows device names (refused like case twins), names
-- that would look the same in two messages (escaped), and a byte order mark that is not the
-- file's first (two skipped; one inside said so).
local H = require "tests.helpers"
local store = require "orket.store"
local scriptfile = require "orket.scriptfile"
local validate = require "orket.validate"
local import = require "orket.import"
local board_mod = require "orket.board"
local B = require "tests.backends"

local BOM = "\239\187\191"
local NFD, NFC = "cafe\204\129", "caf\195\169" -- two forms of "café"

local ORKET = [[
name = "names"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
concurrency = 1
]]

local SCRIPT = 'return { rules = {}, default = { content = "done" } }\n'

local function project(files)
  local dir = H.tmpdir()
  for _, sub in ipairs { "epics", "roles", "tools", "policies" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. sub)) end
  local all = { ["orket.lua"] = ORKET, ["script.lua"] = SCRIPT }
  for name, text in pairs(files or {}) do all[name] = text end
  for name, text in pairs(all) do
    os.execute("mkdir -p " .. H.quote((dir .. "/" .. name):match("^(.*)/")))
    H.write(dir .. "/" .. name, text)
  end
  return dir
end

-- validate's problems (or warnings) as "file[:line]: message", sorted
local function said(list)
  local out = {}
  for _, p in ipairs(list) do
    out[#out + 1] = string.format("%s%s: %s", p.file or "?", p.line and (":" .. p.line) or "", p.message)
  end
  table.sort(out)
  return out
end

local function open(dir)
  local db = B.name() == "pg" and B.open_store() or assert(store.open(dir .. "/.orket/orket.db"))
  return db, board_mod.open(db)
end

local function epic(id, issue) -- an epic file's text
  return string.format('{ %s"name": "e", "issues": [ %s ] }', id and ('"id": "' .. id .. '", ') or "",
    issue and ('{ "id": "' .. issue .. '", "summary": "x", "seat": "senior_developer" }') or "")
end

describe("files a clone on macOS or Windows holds as one", function()
  after_each(H.cleanup)

  it("are told apart by case and by normalization, Latin letters of U+00C0-U+017F", function()
    assert.equal(NFD, scriptfile.decomposed(NFC))
    assert.equal("E\204\129 Y\204\136 z\204\140", scriptfile.decomposed("\195\137 \197\184 \197\190"))
    assert.same({ { "coder.lua", "Coder.lua", "case" } }, scriptfile.twins { "coder.lua", "Coder.lua", "x.lua" })
    assert.same({ { NFC, NFD, "Unicode normalization" } }, scriptfile.twins { NFC, NFD })
    assert.same({ { NFD, "Caf\195\169", "case and Unicode normalization" } }, scriptfile.twins { NFD, "Caf\195\169" })
    -- the workspace's rule (core/workspace.c): a Latin letter's case beyond ASCII too
    assert.same({ { "\195\166.lua", "\195\134.lua", "case" } }, scriptfile.twins { "\195\166.lua", "\195\134.lua" })
    -- another accent, or none, is another name
    assert.same({}, scriptfile.twins { "cafe", NFC, "caf\195\168", "cafe\204\128x" })
  end)

  it("are refused by orket validate in roles/, policies/, tools/ and epics/, naming both", function()
    local dir = project {
      ["roles/coder.lua"] = 'return { intent = "x", tools = {}, system = "s" }\n',
      ["roles/Coder.lua"] = 'return { intent = "y", tools = {}, system = "s" }\n',
      ["policies/deny.lua"] = 'deny { tool = "write_file", path = "a.txt", reason = "lower" }\n',
      ["policies/Deny.lua"] = 'deny { tool = "write_file", path = "b.txt", reason = "upper" }\n',
      ["tools/ping.lua"] = "return {}\n", ["tools/PING.lua"] = "return {}\n",
      ["epics/Web.json"] = epic("A"), ["epics/web.json"] = epic("B"),
      ["epics/Api/x.json"] = epic("C"), ["epics/api/x.json"] = epic("D"),
      ["epics/" .. NFD .. ".json"] = epic("E"), ["epics/" .. NFC .. ".json"] = epic("F"),
    }
    local problems = said((validate.check(dir)))
    local function has(s)
      for _, p in ipairs(problems) do
        if p == s then return true end
      end
      return false, table.concat(problems, "\n")
    end
    local case = ": " .. scriptfile.twin_rule("case")
    assert(has("roles/coder.lua: differs only in case from roles/Coder.lua" .. case))
    assert(has("policies/deny.lua: differs only in case from policies/Deny.lua" .. case))
    assert(has("tools/ping.lua: differs only in case from tools/PING.lua" .. case))
    assert(has("epics/web.json: differs only in case from epics/Web.json" .. case))
    assert(has("epics/api/: differs only in case from epics/Api/" .. case))
    -- the two forms look the same: shown escaped, and macOS alone holds them as one
    assert(has("epics/caf\\xc3\\xa9.json: differs only in Unicode normalization from epics/cafe\\xcc\\x81.json: "
      .. scriptfile.twin_rule("Unicode normalization")))
    assert.matches("^on macOS the two are one file", scriptfile.twin_rule("Unicode normalization"))
  end)

  it("are refused by orket import, which reads epics/ alone", function()
    local dir = project { ["epics/Api/x.json"] = epic("C"), ["epics/api/y.json"] = epic("D") }
    local db = open(dir)
    local msg = "epics/api/: differs only in case from epics/Api/: " .. scriptfile.twin_rule("case")
    assert.same({ nil, msg, "EINVAL" }, { import.import(db, dir) })
    assert.equal(0, db:row("SELECT count(*) AS n FROM cards").n)
    os.execute("mv " .. H.quote(dir .. "/epics/api/y.json") .. " " .. H.quote(dir .. "/epics/Api/y.json"))
    os.remove(dir .. "/epics/api")
    assert(import.import(db, dir))
    db:close()
  end)

  it("are named apart in every message about them, where they would look the same", function()
    local dir = project { ["epics/" .. NFD .. ".json"] = '{ "name": "x", "issues": [] }',
      ["epics/" .. NFC .. ".json"] = '{ "name": "y", "issues": [] }',
      ["epics/na\195\175ve.json"] = '{ "name": "z", "issues": [] }' }
    local files = assert(import.list_files(dir))
    local shown = {}
    for _, f in ipairs(files) do
      assert(import.check_file(f))
      shown[#shown + 1] = f.shown
    end
    table.sort(shown)
    -- (naïve.json looks like no other name: shown as it is)
    assert.same({ "epics/caf\\xc3\\xa9.json", "epics/cafe\\xcc\\x81.json", "epics/na\195\175ve.json" }, shown)
    -- (and the two are refused as twins)
    local ids = {}
    for _, p in ipairs(said((validate.check(dir)))) do
      if p:find(": id: the id derived", 1, true) then ids[#ids + 1] = p:match("^[^:]*") end
    end
    assert.same({ "epics/caf\\xc3\\xa9.json", "epics/cafe\\xcc\\x81.json", "epics/na\195\175ve.json" }, ids)
  end)
end)

describe("a card id that is a Windows device name", function()
  after_each(H.cleanup)

  local RULE = board_mod.DEVICE_RULE

  it("is each of CON, PRN, AUX, NUL, COM1-9, LPT1-9 in any case, with or without an extension", function()
    for _, id in ipairs { "CON", "prn", "Aux", "nul.txt", "com1", "COM9.log", "lpt1", "LPT9" } do
      assert.is_not_nil(board_mod.device_name(id), id)
    end
    for _, id in ipairs { "console", "aux-1", "com0", "com10", "lpt", "nul_x", "a.aux", "CON-1" } do
      assert.is_nil(board_mod.device_name(id), id)
    end
    assert.equal("AUX", board_mod.device_name("aux.tar.gz"))
  end)

  it("is refused by import and validate, given or derived, and warned of once on the board", function()
    local dir = project { ["epics/aux.json"] = '{ "name": "a",\n"issues": [] }' }
    local db = open(dir)
    local derived = 'epics/aux.json: id: card id "aux" is the Windows device name AUX: ' .. RULE
      .. "; give the card an id (this one is derived from the file's name)"
    assert.same({ nil, derived, "EINVAL" }, { import.import(db, dir) })
    assert.same({ derived }, said((validate.check(dir))))
    H.write(dir .. "/epics/aux.json", '{ "id": "A", "name": "a", "issues": [\n{ "id": "prn.txt", "summary": "x" }] }')
    local given = 'epics/aux.json:2: issues[0]: card id "prn.txt" is the Windows device name PRN: ' .. RULE
      .. "; change the id"
    assert.same({ nil, given, "EINVAL" }, { import.import(db, dir) })
    assert.same({ given }, said((validate.check(dir))))
    assert.equal(0, db:row("SELECT count(*) AS n FROM cards").n)
    -- one an older Orket imported stays importable, as nothing is created, and is said
    H.write(dir .. "/epics/aux.json", '{ "id": "A", "name": "a", "issues": [] }')
    assert(import.import(db, dir))
    local imports = require "orket.store.imports"
    imports.insert_card(db, { id = "prn.txt", type = "issue", parent = "A", summary = "x", priority = 2,
      source = "epics/aux.json" })
    H.write(dir .. "/epics/aux.json", '{ "id": "A", "name": "a", "issues": [\n{ "id": "prn.txt", "summary": "x" }] }')
    local r = assert(import.import(db, dir))
    assert.same({ 'epics/aux.json:2: issues[0]: card id "prn.txt" is the Windows device name PRN, on the board '
      .. "already: " .. import.DEVICE_OLD }, r.warnings)
    db:close()
  end)

  it("is refused by a new card's create (POST /v1/cards)", function()
    local dir = project { ["epics/e.json"] = epic("E") }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert.same({ nil, 'board: card id "Com3" is the Windows device name COM3: ' .. RULE .. "; choose another id",
      "EINVAL" }, { b:create { parent = "E", summary = "s", id = "Com3" } })
    assert(b:create { parent = "E", summary = "s", id = "com-3" })
    db:close()
  end)
end)

describe("a byte order mark that does not open the file", function()
  after_each(H.cleanup)

  it("is skipped when the file opens with two, as every mark opening it", function()
    assert.equal('name = "x"\n', scriptfile.text(BOM .. BOM .. 'name = "x"\n'))
    local dir = project { ["orket.lua"] = BOM .. BOM .. ORKET:gsub("\n", "\r\n"), ["epics/e.json"] = BOM .. BOM .. epic("E") }
    assert.same({}, said((validate.check(dir))))
  end)

  it("is said with its file and line in a role, a Lua epic and a JSON epic", function()
    local dir = project {
      ["roles/r.lua"] = BOM .. "-- one\r\n" .. BOM .. 'return { intent = "x", tools = {}, system = "s" }\r\n',
      ["epics/l.lua"] = "-- one\n" .. BOM .. "return { id = 'L', issues = {} }\n",
      ["epics/j.json"] = '{ "id": "J",\n' .. BOM .. '"issues": [] }',
    }
    assert.same({ "epics/j.json:2: " .. scriptfile.STRAY_BOM, "epics/l.lua:2: " .. scriptfile.STRAY_BOM,
      "roles/r.lua:2: " .. scriptfile.STRAY_BOM }, said((validate.check(dir))))
  end)
end)
