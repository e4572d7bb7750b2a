-- A SQLite backup with one byte changed inside a JSON value passes SQLite's integrity
-- check: orket restore --check must still refuse it, naming the table, column and row, and
-- a store so damaged in place must be named by the commands that read it, never a traceback.
local H = require "tests.helpers"
local backends = require "tests.backends"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr))
  return r
end

-- path's copy at out, the first '"' of its first `"phase":"work"` turned into byte 2
local function flipped(path, out)
  local text = H.read(path)
  local at = assert(text:find('"phase":"work"', 1, true), "no turn data in the backup")
  H.write(out, text:sub(1, at - 1) .. "\2" .. text:sub(at + 1))
end

describe("orket restore of a backup damaged inside a JSON value", function()
  after_each(function() H.cleanup() end)

  local sqlite_it = backends.name() == "sqlite" and it or pending

  sqlite_it("is refused by --check and by the restore, naming the row; the store damaged in place is named",
    function()
      local tmp = H.tmpdir()
      ok(H.orket("init p --yes", { cwd = tmp }), "init")
      local dir = tmp .. "/p"
      ok(H.orket("run START", { cwd = dir }), "run")
      ok(H.orket("backup ../good.db", { cwd = dir }), "backup")
      flipped(tmp .. "/good.db", tmp .. "/flip.db")

      local r = H.orket("restore --check ../flip.db", { cwd = dir })
      assert.equal(1, r.status, r.stdout)
      assert.not_matches("a good backup", r.stdout, 1, true)
      assert.matches("restore: ../flip.db: damaged: turns.data of row id = %d+ is not JSON", r.stderr)
      r = H.orket("restore ../flip.db", { cwd = dir })
      assert.equal(1, r.status, r.stdout)
      assert.matches("turns.data of row id = %d+ is not JSON", r.stderr)
      assert.matches("(the store was not changed)", r.stderr, 1, true)
      ok(H.orket("runs", { cwd = dir }), "runs after the refused restore")

      -- the same damage in the project's own store: each command that sums costs says so
      os.execute("cp " .. H.quote(tmp .. "/flip.db") .. " " .. H.quote(dir .. "/.orket/orket.db"))
      for _, words in ipairs { "runs", "log 1", "card START-1" } do
        r = H.orket(words, { cwd = dir })
        assert.equal(1, r.status, words .. ": " .. r.stderr)
        assert.not_matches("internal error", r.stderr, 1, true)
        assert.not_matches("traceback", r.stderr, 1, true)
        assert.matches(".orket/orket.db: malformed JSON: a JSON value in the store is damaged "
          .. "(orket restore --check .orket/orket.db names its row)", r.stderr, 1, true)
      end
      r = H.orket("restore --check .orket/orket.db", { cwd = dir })
      assert.equal(1, r.status)
      assert.matches("turns.data of row id = %d+ is not JSON", r.stderr)
      -- and a good backup puts it right
      ok(H.orket("restore ../good.db", { cwd = dir }), "restore of the good backup")
      ok(H.orket("runs", { cwd = dir }), "runs after the good restore")
    end)
end)
