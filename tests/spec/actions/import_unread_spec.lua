-- import.changed when epics/ cannot be read (a low ulimit -n, a refused access): a folder
-- it could not list was taken for an empty one, so `orket run` warned that every imported
-- epic file was "(removed)"; a file it could not read was "changed". Each is said as what it
-- is, a read error, and import itself refuses a folder it could not list.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local scriptfile = require "orket.scriptfile"
local uv = require "luv"
local B = require "tests.backends"

local function project(files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics/core"))
  for name, text in pairs(files) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

local function open(dir)
  return B.name() == "pg" and B.open_store() or assert(store.open(dir .. "/.orket/orket.db"))
end

-- fn(...) run with uv.fs_scandir failing as EMFILE for the folder whose path ends in suffix
local function unlistable(suffix, fn, ...)
  local real = uv.fs_scandir
  uv.fs_scandir = function(path, ...)
    if path:sub(-#suffix) == suffix then return nil, "EMFILE: too many open files: " .. path, "EMFILE" end
    return real(path, ...)
  end
  local r = table.pack(pcall(fn, ...))
  uv.fs_scandir = real
  assert(r[1], r[2])
  return table.unpack(r, 2, r.n)
end

describe("import.changed of files it cannot read", function()
  local real_read, max_file
  before_each(function() real_read, max_file = scriptfile.read, import.MAX_FILE end)
  after_each(function()
    scriptfile.read, import.MAX_FILE = real_read, max_file
    H.cleanup()
  end)

  it("says a file it could not read as unread, neither changed nor removed", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[]}', ["core/b.json"] = '{"id":"B","issues":[]}' }
    local db = open(dir)
    assert(import.import(db, dir))
    H.write(dir .. "/epics/core/b.json", '{"id":"B","issues":[{"summary":"new"}]}')
    scriptfile.read = function(path, max)
      if path:sub(-7) == "/a.json" then return nil, path .. ": cannot read: Too many open files", "EMFILE" end
      return real_read(path, max)
    end
    local changed, unread = import.changed(db, dir)
    assert.same({ "epics/core/b.json" }, changed)
    assert.equal(dir .. "/epics/a.json: cannot read: Too many open files", unread)
    db:close()
  end)

  it("says a folder it could not list, and calls no file removed", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[]}', ["core/b.json"] = '{"id":"B","issues":[]}' }
    local db = open(dir)
    assert(import.import(db, dir))
    for _, folder in ipairs { "/epics", "/epics/core" } do
      local changed, unread = unlistable(folder, import.changed, db, dir)
      assert.same({}, changed)
      assert.equal(string.format("import: %s: cannot list the folder: EMFILE: too many open files: %s%s",
        folder:sub(2), dir, folder), unread)
      -- nor does import take the folder for an empty one
      local ok, err, code = unlistable(folder, import.import, db, dir)
      assert.is_nil(ok)
      assert.equal("EMFILE", code)
      assert.matches("cannot list the folder: EMFILE", err, 1, true)
    end
    assert.same({}, import.changed(db, dir))
    db:close()
  end)

  it("still calls a file that is no longer one it takes (too large) changed, and a missing one removed", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[]}', ["core/b.json"] = '{"id":"B","issues":[]}' }
    local db = open(dir)
    assert(import.import(db, dir))
    os.remove(dir .. "/epics/core/b.json")
    import.MAX_FILE = 4
    local changed, unread = import.changed(db, dir)
    assert.same({ "epics/a.json", "epics/core/b.json (removed)" }, changed)
    assert.is_nil(unread)
    db:close()
  end)
end)
