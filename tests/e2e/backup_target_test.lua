-- orket backup FILE replaces FILE by a rename: a FILE that is another project's store (one
-- the same server hosts, whose connections would then write to the file unlinked), a file
-- in any .orket/ folder, or an existing file that is no orket backup (orket.lua, a git
-- index) once was replaced with exit 0. Each is refused, nothing written, while an earlier
-- backup at FILE is replaced as before. On the backend the suite runs on.
local H = require "tests.helpers"
local backends = require "tests.backends"
local uv = require "luv"

local ok = H.ok

-- path's content and inode, to see that a refusal changed nothing
local function seen(path)
  local st = uv.fs_stat(path)
  return st and { text = H.read(path), ino = st.ino } or nil
end

-- `orket backup FILE` in dir -> r, asserted refused (exit 1) with a message naming FILE and
-- holding why, FILE as it was and no copy left beside it
local function refused(dir, file, why, extra)
  local before = seen(file)
  local r = H.orket("backup " .. H.quote(file) .. (extra or ""), { cwd = dir })
  assert.equal(1, r.status, file .. ": " .. r.stdout .. r.stderr)
  assert.matches("backup: " .. file .. ": " .. why, r.stderr, 1, true)
  assert.same(before, seen(file))
  local d = file:match("^(.*)/[^/]*$") or "."
  local p = io.popen("ls -A " .. H.quote(d) .. " 2>/dev/null")
  assert.not_matches("%.part%-%d", p:read("a"))
  p:close()
  return r
end

describe("orket backup FILE", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a hosted project's store and any .orket folder, while the server serves it", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    local tmp = H.tmpdir()
    ok(H.orket("projects add " .. H.quote(other) .. " --name notes", { cwd = dir }), "projects add")
    local admin = H.api_key(dir, "boss", "admin")
    local s = H.serve(dir)
    local function comment(text)
      return (H.api(s, "POST", "/v1/projects/notes/cards/NOTES-1/comments", admin, { body = text }))
    end
    assert.equal(200, comment("before"))
    -- a pepper stands for what a .orket/ keeps beside its store
    H.write(other .. "/.orket/keys.pepper", ("p"):rep(32))
    assert.is_true(os.execute("ln -s " .. H.quote(other .. "/.orket") .. " " .. H.quote(tmp .. "/olink")))
    -- by its path, judged before anything is asked or opened: any .orket/, whoever's
    local IN = "is in " .. other .. "/.orket, a project's .orket folder, which holds its store and keys: keep backups "
      .. "elsewhere"
    refused(dir, other .. "/.orket/keys.pepper", IN)
    refused(dir, other .. "/.orket/new.backup", IN)
    refused(dir, tmp .. "/olink/new.backup", IN)
    refused(dir, other .. "/.orket/worktrees/CARD/b.db", "is in a project's .orket folder")
    refused(dir, other .. "/.orket/orket.db", IN)
    refused(dir, other .. "/.orket/../.orket/orket.db-wal", IN)
    refused(dir, tmp .. "/olink/orket.db-shm", IN)
    -- encrypted too, judged before the passphrase is asked for
    refused(dir, other .. "/.orket/orket.db", IN, " --encrypt --passphrase-env ORKET_TEST_NO_PASS")
    -- a project this one does not host: its .orket/ is refused all the same
    local third = H.example("notes")
    refused(dir, third .. "/.orket/orket.db", "is in " .. third .. "/.orket, a project's .orket folder")
    -- the server's store is whole and serves on
    assert.equal(200, comment("after"))
    local st, _, text = H.api(s, "GET", "/v1/projects/notes/cards/NOTES-1", admin)
    assert.equal(200, st)
    assert.equal(0, s.stop())
    ok(H.orket("audit verify", { cwd = other }), "audit verify")
    H.write(tmp .. "/check.lua", [[
local db = assert(require("orket.project").open_store(".", false, true))
local n = db:row("SELECT count(*) AS n FROM comments WHERE body IN ('before', 'after')").n
if db.backend ~= "pg" then io.stdout:write(db.conn:row("PRAGMA integrity_check").integrity_check, " ") end
io.stdout:write(n, "\n")
db:close()
]])
    local check = ok(H.orket("lua " .. H.quote(tmp .. "/check.lua"), { cwd = other }), "the store's check").stdout
    assert.equal(backends.name() == "pg" and "2\n" or "ok 2\n", check, text)
  end)

  it("refuses an existing file that is no orket backup, and replaces an earlier backup", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local other = H.example("notes")
    assert.is_true(os.execute("git init -q " .. H.quote(tmp .. "/repo") .. " && cd " .. H.quote(tmp .. "/repo")
      .. " && echo x > a && git add a"))
    local NOT = "exists and is no orket backup ("
    refused(dir, other .. "/orket.lua", NOT .. "neither an orket store, an encrypted orket backup nor an orket "
      .. "PostgreSQL export): a backup would replace it whole; give another FILE, or remove this one first")
    refused(dir, tmp .. "/repo/.git/index", NOT)
    refused(dir, tmp .. "/repo/.git/index", NOT, " --encrypt --passphrase-env ORKET_TEST_NO_PASS")
    -- another program's database, one open (its -wal beside it), one cut short
    local db = assert(require("orket.c.store").open(tmp .. "/app.db", true))
    assert(db:exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)"))
    refused(dir, tmp .. "/app.db", NOT .. "a SQLite database in use: " .. tmp .. "/app.db-wal is beside it")
    db:close()
    refused(dir, tmp .. "/app.db", NOT .. "a SQLite database without the board's cards table)")
    -- earlier backups are replaced: plain, encrypted, an export's shape, an empty file
    local file = tmp .. "/nightly.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "the first backup")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "the same name again")
    ok(H.orket("backup " .. H.quote(file) .. " --encrypt --passphrase-env PP", { cwd = dir, env = { PP = "long enough" } }),
      "encrypted over it")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "plain over the encrypted one")
    H.write(tmp .. "/pg.jsonl", '{"format":"orket-pg-backup","version":1}\n{"end":true}\n')
    ok(H.orket("backup " .. H.quote(tmp .. "/pg.jsonl"), { cwd = dir }), "over an export")
    H.write(tmp .. "/empty", "")
    ok(H.orket("backup " .. H.quote(tmp .. "/empty"), { cwd = dir }), "over an empty file")
    for _, f in ipairs { file, tmp .. "/pg.jsonl", tmp .. "/empty" } do
      ok(H.orket("restore --check --accept-older-audit " .. H.quote(f), { cwd = dir }), "the backup at " .. f)
    end
    if backends.name() == "sqlite" then
      H.write(tmp .. "/cut", H.read(file):sub(1, 3000))
      refused(dir, tmp .. "/cut", NOT .. "a SQLite file that cannot be read as an orket store")
    end
  end)

  -- a bind mount of a .orket/ is one no path resolves to it: told by the folder's st_dev and
  -- st_ino. Needs a mount namespace of its own (unshare -m, as root). The hosted projects are
  -- those `orket projects add` added and those orket.lua's serve.projects names.
  it("knows a hosted project's store and .orket/ through a bind mount", function()
    if not os.execute("unshare -m true 2>/dev/null") then return pending("no mount namespace (unshare -m) here") end
    local dir = H.example("webapp")
    local other = H.example("notes")
    local third = H.example("notes")
    local tmp = H.tmpdir()
    ok(H.orket("projects add " .. H.quote(other) .. " --name notes", { cwd = dir }), "projects add")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\nserve = { projects = { more = "
      .. string.format("%q", third) .. " } }\n")
    for _, d in ipairs { "own", "notes", "more" } do assert(uv.fs_mkdir(tmp .. "/" .. d, 448)) end
    local function backup_in(file)
      return H.sh("unshare -m sh -c " .. H.quote(string.format("mount --bind %s %s && mount --bind %s %s && "
        .. "mount --bind %s %s && cd %s && %s backup %s", H.quote(dir .. "/.orket"), H.quote(tmp .. "/own"),
        H.quote(other .. "/.orket"), H.quote(tmp .. "/notes"), H.quote(third .. "/.orket"), H.quote(tmp .. "/more"),
        H.quote(dir), H.quote(H.BIN), H.quote(file))))
    end
    local cases = {
      { tmp .. "/own/new.backup", "is in the project's .orket, which holds its store and keys" },
      { tmp .. "/notes/new.backup", "is in the .orket folder of project 'notes' (" .. other .. "/.orket)" },
      { tmp .. "/more/new.backup", "is in the .orket folder of project 'more' (" .. third .. "/.orket)" },
    }
    if backends.name() == "sqlite" then -- (on PostgreSQL no store is a file)
      cases[#cases + 1] = { tmp .. "/own/orket.db", "is the project's store (.orket/orket.db)" }
      cases[#cases + 1] = { tmp .. "/own/orket.db-wal", "is the project's store's wal file" }
      cases[#cases + 1] = { tmp .. "/notes/orket.db", "is the store of project 'notes' (" .. other .. "/.orket/orket.db)" }
      cases[#cases + 1] = { tmp .. "/more/orket.db", "is the store of project 'more' (" .. third .. "/.orket/orket.db)" }
    end
    for _, c in ipairs(cases) do
      local st, out = backup_in(c[1])
      assert.equal(1, st, c[1] .. ": " .. out)
      assert.matches("backup: " .. c[1] .. ": " .. c[2], out, 1, true)
    end
    assert.is_nil(uv.fs_stat(other .. "/.orket/new.backup"))
    ok(H.orket("audit verify", { cwd = other }), "audit verify")
    if backends.name() ~= "sqlite" then return end
    -- another name of a store (a hard link) is another entry: replaced alone, the store kept
    local ino = uv.fs_stat(other .. "/.orket/orket.db").ino
    assert.is_true(os.execute("ln " .. H.quote(other .. "/.orket/orket.db") .. " " .. H.quote(tmp .. "/hard")))
    ok(H.orket("backup " .. H.quote(tmp .. "/hard"), { cwd = dir }), "backup onto a hard link")
    assert.equal(ino, uv.fs_stat(other .. "/.orket/orket.db").ino)
    assert.equal(1, uv.fs_stat(other .. "/.orket/orket.db").nlink)
    assert.is_nil(uv.fs_stat(tmp .. "/hard-wal"))
    assert.is_nil(uv.fs_stat(tmp .. "/hard-shm"))
  end)
end)
