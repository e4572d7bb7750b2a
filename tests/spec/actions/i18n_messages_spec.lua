-- Messages about names in other scripts, or with spaces and quotes: a file's name with a
-- space is said once, with its line (orket.fieldline, orket.engine.scriptcheck); a seat's
-- name with quotes is written as Lua writes it, and its line found; the name rules say that
-- their letters are ASCII ones.
local H = require "tests.helpers"
local fieldline = require "orket.fieldline"
local scriptcheck = require "orket.engine.scriptcheck"
local settings = require "orket.settings"

describe("a message naming a file with a space", function()
  local dir
  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics/開発 チーム"))
    H.write(dir .. "/epics/開発 チーム/バック エンド.json",
      '{ "id": "DEV", "name": "d",\n  "issues": [ { "id": "DEV-1", "summary": "s",\n    "seat": "nosuch" } ] }\n')
  end)
  after_each(function() H.cleanup() end)

  local FILE = "epics/開発 チーム/バック エンド.json"
  local ANCHOR = { '"id"%s*:%s*"DEV%-1"', 1 }
  local function read(path) return H.read(path) end

  it("is read as the file, with the field's line, as import places it", function()
    -- (import gives no default file: the name is taken as the file it finds)
    assert.same({ FILE, 3, 'issues[0].seat: no seat "nosuch"' },
      { fieldline.in_project(FILE .. ': issues[0].seat: no seat "nosuch"', dir, read, nil, ANCHOR) })
    assert.same({ FILE, 2, "issues[0].seet: unknown field" },
      { fieldline.in_project(FILE .. ":2: issues[0].seet: unknown field", dir, read) })
    -- a sentence with a colon that names no file is no file's name
    assert.same({ "epics", nil, "cannot read x y.json: gone" },
      { fieldline.in_project("cannot read x y.json: gone", dir, read, "epics") })
  end)

  it("is said once by validate, with its line", function()
    local out = {}
    scriptcheck.add(out, dir, FILE .. ': issues[0].seat: no seat "nosuch"', FILE, ANCHOR, read)
    scriptcheck.add(out, dir, FILE .. ":2: issues[0].seet: unknown field", FILE, nil, read)
    assert.same({ FILE .. ':3: issues[0].seat: no seat "nosuch"', FILE .. ":2: issues[0].seet: unknown field" },
      { scriptcheck.format(out[1]), scriptcheck.format(out[2]) })
  end)
end)

describe("a seat's name that is no word", function()
  after_each(function() H.cleanup() end)

  it("is written with its quotes escaped, and found at its line", function()
    local _, err = settings.resolve { team = { ['dev "q" é'] = { roles = { "coder" } } } }
    assert.equal([[orket.lua: team["dev \"q\" é"]: a seat's name is a word: ASCII letters, digits, _ and -]], err)
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'team = {\n  coder = { roles = { "coder" } },\n  ["dev \\"q\\" é"] = { roles = '
      .. '{ "coder" } },\n}\n')
    local file, line = fieldline.place(err, function(path) return H.read(dir .. "/" .. path) end)
    assert.same({ "orket.lua", 3 }, { file, line })
  end)
end)

describe("a name rule", function()
  it("says its letters are ASCII ones", function()
    local ok, err = require("orket.serve.accounts").check_name("josé")
    assert.is_nil(ok)
    assert.equal("a person's name is 1 to 64 ASCII characters: lowercase letters, digits, '.', '_' or '-', starting "
      .. "with a letter", err)
  end)
end)
