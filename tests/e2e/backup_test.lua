-- orket backup and orket restore end to end, on the backend the suite runs on (SQLite, or
-- PostgreSQL under tests/with_pg.lua): a round trip of a live project while its server
-- serves, and restores refused, store untouched, for damaged, foreign and newer files.
local H = require "tests.helpers"
local backends = require "tests.backends"

local function status_of(dir, id) return H.card_json(dir, id).card.status end

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr))
  return r
end

describe("orket backup and restore", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("round-trips a live project while its server keeps serving", function()
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local tmp = H.tmpdir()
    local file = tmp .. "/board.backup"
    if backends.name() == "sqlite" then
      -- a journal big enough that the copy takes a while: the server answers meanwhile
      H.write(tmp .. "/fill.lua", [[
local db = assert(require("orket.store").open(".orket/orket.db"))
assert(db:tx(function()
  for i = 1, 20000 do db:event { kind = "note", actor = "test", data = { i = i, pad = string.rep("x", 200) } } end
  return true
end))
db:close()
]])
      ok(H.orket("lua " .. H.quote(tmp .. "/fill.lua"), { cwd = dir }), "fill")
    end
    os.execute(string.format("cd %s && { %s backup %s >%s/bk.out 2>&1 & echo $! >%s/bk.pid; wait $!; echo $? >%s/bk.rc; } &",
      H.quote(dir), H.quote(H.BIN), H.quote(file), H.quote(tmp), H.quote(tmp), H.quote(tmp)))
    -- (a failed assertion below leaves the backup going: it and its shell write into tmp)
    finally(function() H.end_started(tmp, "bk.pid", "bk.rc", true) end)
    local answered = 0
    repeat
      local st = H.api(s, "GET", "/v1/board")
      assert.equal(200, st)
      answered = answered + 1
      orket.sleep(25) -- under the per-address rate limit (50/s)
    until H.read(tmp .. "/bk.rc")
    H.wait_for(function() return (H.read(tmp .. "/bk.rc") or ""):match("%d") end, "the backup")
    assert.equal("0", H.read(tmp .. "/bk.rc"):match("%d+"), H.read(tmp .. "/bk.out"))
    assert.matches("backed up %d+ cards %(schema version %d+", H.read(tmp .. "/bk.out"))
    assert.is_true(answered >= 1)
    assert.equal(200, (H.api(s, "GET", "/health")))
    local st, board = H.api(s, "GET", "/v1/board")
    assert.equal(200, st)
    assert.is_table(board)
    assert.equal(0, s.stop())
    -- changed after the backup: restoring takes the change back, and only the change
    ok(H.orket('cancel API-2 "not needed"', { cwd = dir }), "cancel")
    assert.equal("canceled", status_of(dir, "API-2"))
    -- the cancel's audit entry is the store's alone: the restore drops it, and says so
    local told = H.orket("restore --check " .. H.quote(file), { cwd = dir })
    assert.equal(1, told.status)
    assert.matches("(cancel) are not in it: restoring it removes it from the audit", told.stderr, 1, true)
    ok(H.orket("restore --check --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore --check")
    assert.equal("canceled", status_of(dir, "API-2"))
    -- the store's id as the board gives it (a stream's ?store=), and as its identity
    H.write(tmp .. "/id.lua", [[
local db = assert(require("orket.project").open_store(".", false, true))
local sp = require("orket.store.projects")
io.stdout:write(sp.journal_store_id(db), " ", sp.store_id(db))
db:close()
]])
    local function store_id()
      local out = ok(H.orket("lua " .. H.quote(tmp .. "/id.lua"), { cwd = dir }), "store id").stdout
      return out:match("^(%S+) (%S+)$")
    end
    local own_before, lasting = store_id()
    assert.equal(board.store, own_before)
    assert.equal(board.store, lasting)
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("restored %d+ cards", r.stdout)
    assert.equal("ready", status_of(dir, "API-2"))
    -- another journal now, so another id: a stream asked with the old one starts over
    local restored_id, still = store_id()
    assert.are_not.equal(board.store, restored_id)
    assert.equal(board.store, restored_id:match("^(%x+)%-%x+$"))
    assert.equal(lasting, still) -- the same store to its members and traces
    -- the journal came back too, and new events go on after it
    local log = ok(H.orket("board --json", { cwd = dir }), "board")
    assert.matches("API%-3", log.stdout)
    ok(H.orket('cancel API-3 "again"', { cwd = dir }), "cancel after restore")
    assert.equal("canceled", status_of(dir, "API-3"))
    -- and a backup of the restored store restores again
    ok(H.orket("backup " .. H.quote(file .. "2"), { cwd = dir }), "second backup")
    ok(H.orket("restore --accept-older-audit " .. H.quote(file .. "2"), { cwd = dir }), "restore the second backup")
    assert.equal("canceled", status_of(dir, "API-3"))
    -- the first backup is older than the checkpoint the first restore signed: restoring it
    -- drops the audit's entries since, which only --accept-older-audit allows
    local r2 = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(1, r2.status)
    assert.matches("restore it all the same with --accept-older-audit (the store was not changed)", r2.stderr, 1, true)
    assert.equal("canceled", status_of(dir, "API-3"))
    ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore again")
    assert.equal("ready", status_of(dir, "API-3"))
  end)

  -- A stream open through `orket restore` (run by another process) learns of it as it
  -- waits: the restore gives the store a new id, which the server reads as it reads the
  -- journal, and the stream gets what a client reconnecting with the old store's id gets,
  -- `event: reset` with the restored journal's newest id, then that journal's new events.
  -- It once kept following from its id of the old journal: the restored one being shorter,
  -- nothing written after the restore came until its ids passed that one.
  it("resets an event stream open through a restore, which then follows the restored journal", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "boss", "admin")
    local tmp = H.tmpdir()
    local file = tmp .. "/board.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local s = H.serve(dir)
    -- the journal goes on past the backup's
    for i = 1, 5 do
      assert.equal(200, (H.api(s, "POST", "/v1/cards/API-1/comments", admin, { body = "before " .. i })))
    end
    local long = tmp .. "/long.backup"
    ok(H.orket("backup " .. H.quote(long), { cwd = dir }), "the longer backup")
    local st, board = H.api(s, "GET", "/v1/board", admin)
    assert.equal(200, st)
    local ev = H.stream { url = s.url .. "/v1/events?after=" .. math.tointeger(board.journal_id) .. "&store=" .. board.store,
      headers = { "Authorization: Bearer " .. admin } }
    assert.equal(200, ev.status)
    H.wait_for(function() return ev.text():find("retry: 2000", 1, true) end, "the stream", 5000)
    ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    local RESET = '\nid: (%d+)\nevent: reset\ndata: {"id":(%d+)}\n\n'
    H.wait_for(function() return ev.text():match(RESET) end, "the reset on the open stream", 5000)
    local id, data = ev.text():match(RESET)
    id = math.tointeger(tonumber(id))
    assert.equal(id, math.tointeger(tonumber(data)))
    -- of the restored journal (of the new store, as the board read now says), whose newest
    -- it was or, past it, the row the restore records of itself
    local st2, now = H.api(s, "GET", "/v1/board", admin)
    assert.equal(200, st2)
    assert.are_not.equal(board.store, now.store)
    assert.is_true(id <= now.journal_id and id < board.journal_id)
    -- nothing came before the reset (the old journal's cursor sent no row of the new one)
    assert.is_nil(ev.text():match("^(.-)\nid: %d+\nevent: reset\n"):find("\nid: ", 1, true))
    -- and the restored journal's events after it follow on the same stream, each once
    assert.equal(200, (H.api(s, "POST", "/v1/cards/API-1/comments", admin, { body = "after the restore" })))
    H.wait_for(function() return ev.text():find("\nevent: comment\n", 1, true) end, "the comment after the restore", 5000)
    -- the ids after the last reset: the journal's from the reset's on, each once
    local function after_reset()
      local ids, text = {}, ev.text()
      local from = 1
      while true do
        local _, e = text:find("\nevent: reset\n", from, true)
        if not e then break end
        from = e
      end
      for e in text:sub(from):match("^.-\n\n(.*)$"):gmatch("id: (%d+)\n") do ids[#ids + 1] = math.tointeger(tonumber(e)) end
      return ids
    end
    local function journal_from(first)
      local _, all = H.api(s, "GET", "/v1/board", admin)
      local want = {}
      for i = first, math.tointeger(all.journal_id) do want[#want + 1] = i end
      return want
    end
    assert.same(journal_from(id + 1), after_reset())
    -- restored again, from a backup whose journal is longer than the one the stream
    -- follows: reset again, rather than handing on the backup's rows past its cursor as new
    local resets = select(2, ev.text():gsub("\nevent: reset\n", ""))
    ok(H.orket("restore --accept-older-audit --accept-unverified-audit " .. H.quote(long), { cwd = dir }), "restore the longer backup")
    H.wait_for(function() return select(2, ev.text():gsub("\nevent: reset\n", "")) > resets end,
      "the second reset", 5000)
    assert.equal(200, (H.api(s, "POST", "/v1/cards/API-1/comments", admin, { body = "after the second" })))
    H.wait_for(function() return ev.text():match(".*\nevent: reset\n(.*)$"):find("\nevent: comment\n", 1, true) end,
      "the comment after the second restore", 5000)
    -- one reset, or two (docs/serve.md: on SQLite a poll can fall between the restore's
    -- pages, which carry the backup's id, and its new id); the journal follows the last
    local text = ev.text()
    local n = select(2, text:gsub("\nevent: reset\n", "")) - resets
    assert.is_true(n == 1 or n == 2, "resets: " .. n)
    local id2 = math.tointeger(tonumber(text:match(".*\nid: (%d+)\nevent: reset\n")))
    assert.is_true(id2 > id)
    assert.same(journal_from(id2 + 1), after_reset())
    ev.close()
    assert.equal(0, s.stop())
  end)

  it("refuses a truncated, foreign or missing file and leaves the store as it was", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local file = tmp .. "/board.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket('cancel API-2 "kept"', { cwd = dir }), "cancel")
    local text = H.read(file)
    H.write(tmp .. "/half", text:sub(1, #text // 2))
    H.write(tmp .. "/foreign", "hello\n")
    local cases = {
      { tmp .. "/half", "" },
      { tmp .. "/foreign", "not an orket backup" },
      { tmp .. "/none", "no such file" },
    }
    if backends.name() == "sqlite" then
      -- a SQLite database that is no orket store
      os.execute("cd " .. H.quote(tmp) .. " && " .. H.quote(H.BIN) .. " lua -e " .. H.quote(
        "local s = require('orket.c.store').open('other.db'); s:exec('CREATE TABLE t (x)'); s:close()") .. " >/dev/null 2>&1")
      cases[#cases + 1] = { tmp .. "/other.db", "not an orket store" }
    end
    for _, c in ipairs(cases) do
      local r = H.orket("restore " .. H.quote(c[1]), { cwd = dir })
      assert.equal(1, r.status, c[1])
      assert.matches("the store was not changed", r.stderr, 1, true)
      assert.matches(c[2], r.stderr, 1, true)
      assert.equal(1, H.orket("restore --check " .. H.quote(c[1]), { cwd = dir }).status, c[1])
      assert.equal("canceled", status_of(dir, "API-2"))
    end
  end)

  -- An emptied store file was taken for a new database: the first command, `orket runs`
  -- too, made an empty board over it, and a run then redid every card
  it("refuses an empty store file in every command, and restores a backup in its place", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/board.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local path = dir .. "/.orket/orket.db"
    H.write(path, "")
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
    for _, cmd in ipairs { "runs", "board", "import" } do
      local r = H.orket(cmd, { cwd = dir })
      assert.equal(1, r.status, cmd)
      assert.matches("the file is empty (0 bytes), which no store is: `orket restore` a backup", r.stderr, 1, true)
    end
    assert.equal("", H.read(path)) -- nothing was written into it
    ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    assert.equal("ready", status_of(dir, "API-2"))
  end)

  -- a restore is what a lost or damaged store needs, and it refused both: "file is not a
  -- database", "no board here; run orket import first"
  it("restores into a store that is missing or no database, keeping the damaged file beside", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/board.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local path = dir .. "/.orket/orket.db"
    -- damaged: kept as it is, the backup restored in its place
    local f = assert(io.open(path, "r+b"))
    f:write("garbage, not a database")
    f:close()
    local r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local kept = r.stderr:match("kept as (%S+), and a new store made for the backup")
    assert(kept, r.stderr)
    assert.matches("could not be opened (file is not a database)", r.stderr, 1, true)
    assert.equal("garbage, not a database", H.read(dir .. "/" .. kept:gsub("^%./", "")):sub(1, 23))
    assert.equal("ready", status_of(dir, "API-2"))
    ok(H.orket("audit verify", { cwd = dir }), "audit verify")
    -- missing: made anew from the backup (an older one than the project's audit is refused
    -- as ever, and then nothing is left in the store's place)
    os.remove(path)
    r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("its audit is older than this project's", r.stderr, 1, true)
    assert.is_nil(io.open(path))
    r = H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("ready", status_of(dir, "API-2"))
    -- damaged and refused: the damaged file is put back as it was
    f = assert(io.open(path, "r+b"))
    f:write("garbage again")
    f:close()
    r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("the store was not changed", r.stderr, 1, true)
    assert.equal("garbage again", H.read(path):sub(1, 13))
  end)

  -- FILE was checked only after the damaged store was moved aside, and the move said at
  -- once: a wrong FILE printed "kept as .orket/orket.db.damaged-TIME", a file put back a
  -- moment later, and a kill in a long check left it moved with an empty store in its place
  it("checks FILE before it moves a damaged store aside, and says the move only once restored", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local path = dir .. "/.orket/orket.db"
    H.write(path, "garbage, not a database")
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
    H.write(tmp .. "/wrong.db", "hello\n")
    local r = H.orket("restore " .. H.quote(tmp .. "/wrong.db"), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("not an orket backup", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("kept as", 1, true), r.stderr)
    local _, listing = H.sh("ls " .. H.quote(dir .. "/.orket"))
    assert.is_nil(listing:find("damaged", 1, true), listing)
    assert.equal("garbage, not a database", H.read(path))
  end)

  -- a clone on a new machine has orket.lua and its epics but no .orket/: the restore took
  -- the run lock in .orket/ before anything made it ("cannot open lock file")
  it("restores into a project's files that have no .orket/ yet (a fresh clone)", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/board.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local clone = H.tmpdir()
    assert.equal(0, (H.sh(string.format("cp -R %s/. %s/ && rm -rf %s/.orket", H.quote(dir), H.quote(clone),
      H.quote(clone)))))
    ok(H.orket("restore --check " .. H.quote(file), { cwd = clone }), "restore --check")
    local r = H.orket("restore " .. H.quote(file), { cwd = clone })
    assert.equal(0, r.status, r.stderr)
    assert.matches("restored %d+ cards", r.stdout)
    assert.equal("ready", status_of(clone, "API-2"))
    assert.equal(tonumber("700", 8), require("luv").fs_stat(clone .. "/.orket").mode & tonumber("777", 8))
    ok(H.orket("audit verify", { cwd = clone }), "audit verify")
  end)

  it("refuses a FILE that is a link, no regular file, the store, a key or in .orket/, replacing nothing", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local function ln(target, name) assert.is_true(os.execute("ln -s " .. H.quote(target) .. " " .. H.quote(name))) end
    -- a fifo stands for any node a rename would replace (/dev/full)
    assert.is_true(os.execute("mkfifo " .. H.quote(tmp .. "/fifo")))
    H.write(tmp .. "/k", ("k"):rep(32))
    assert.is_true(os.execute("chmod 600 " .. H.quote(tmp .. "/k")))
    H.write(tmp .. "/victim", "keep")
    -- a rename replaces a link itself, not what it leads to (/dev/stdout is one): a link is
    -- refused whatever it leads to, a regular file, a fifo or nothing
    ln(tmp .. "/victim", tmp .. "/flink")
    ln(tmp .. "/fifo", tmp .. "/plink")
    ln(tmp .. "/none", tmp .. "/dangling")
    local cases = {
      { tmp .. "/fifo", "not a regular file (a fifo)" },
      { tmp, "is a directory" },
      { tmp .. "/flink", "is a symbolic link (to " .. tmp .. "/victim): a backup would replace the link, not the "
        .. "file it leads to; name the file itself" },
      { tmp .. "/plink", "is a symbolic link (to " .. tmp .. "/fifo)" },
      { tmp .. "/dangling", "is a symbolic link (to " .. tmp .. "/none)" },
    }
    ok(H.orket('cancel API-2 "after"', { cwd = dir }), "cancel")
    -- a pepper stands for what .orket/ keeps beside the store (the keys, the audit's head)
    H.write(dir .. "/.orket/keys.pepper", ("p"):rep(32))
    if backends.name() == "sqlite" then
      -- renamed onto the live store, the copy would be swapped in under its connections: the
      -- store is found by its place, through a linked folder and dots
      ln(dir .. "/.orket", tmp .. "/home")
      ln(dir .. "/.orket/orket.db", tmp .. "/link")
      cases[#cases + 1] = { ".orket/orket.db", "is the project's store" }
      cases[#cases + 1] = { dir .. "/.orket/../.orket/orket.db-wal", "is the project's store's wal file" }
      cases[#cases + 1] = { tmp .. "/home/orket.db-journal", "is the project's store's journal file" }
      cases[#cases + 1] = { tmp .. "/link", "is a symbolic link (to " .. dir .. "/.orket/orket.db)" }
    end
    -- plain, encrypted, and with a passphrase not given: FILE is judged before it is asked for
    local extras = { "", " --encrypt --key-file " .. H.quote(tmp .. "/k"), " --encrypt --passphrase-env ORKET_TEST_NO_PASS" }
    for _, c in ipairs(cases) do
      for _, extra in ipairs(extras) do
        local r = H.orket("backup " .. H.quote(c[1]) .. extra, { cwd = dir })
        assert.equal(1, r.status, c[1] .. extra)
        assert.matches("backup: " .. c[1] .. ": " .. c[2], r.stderr, 1, true)
      end
    end
    -- /dev/stdout's shape: a link to /proc/self/fd/1, stdout a regular file. The check must
    -- judge the link, which the rename replaces, not the file stdout is
    ln("/proc/self/fd/1", tmp .. "/stdout")
    assert.falsy(os.execute(string.format("cd %s && %s backup %s >%s 2>%s", H.quote(dir), H.quote(H.BIN),
      H.quote(tmp .. "/stdout"), H.quote(tmp .. "/out"), H.quote(tmp .. "/err"))))
    assert.matches("backup: " .. tmp .. "/stdout: is a symbolic link (to /proc/self/fd/1)", H.read(tmp .. "/err"), 1, true)
    assert.equal("", H.read(tmp .. "/out"))
    -- nor the files a backup needs or that protect the board: the encrypted backup's key
    -- file (also through a link to it), the secret store's and serve's key files wherever
    -- they are named, and anything in .orket/
    H.write(tmp .. "/k2", ("q"):rep(32))
    assert.is_true(os.execute("chmod 600 " .. H.quote(tmp .. "/k2")))
    ln(tmp .. "/k2", tmp .. "/k2link")
    for _, key in ipairs { tmp .. "/k2", tmp .. "/k2link" } do
      local r = H.orket("backup " .. H.quote(tmp .. "/k2") .. " --encrypt --key-file " .. H.quote(key), { cwd = dir })
      assert.equal(1, r.status, key)
      assert.matches("backup: " .. tmp .. "/k2: is the key file it is encrypted with (--key-file " .. key .. ")",
        r.stderr, 1, true)
    end
    local r = H.orket("backup " .. H.quote(tmp .. "/k2"), { cwd = dir, env = { ORKET_SECRETS_KEY_FILE = tmp .. "/k2" } })
    assert.equal(1, r.status)
    assert.matches("backup: " .. tmp .. "/k2: is the secret store's key file (ORKET_SECRETS_KEY_FILE)", r.stderr, 1, true)
    r = H.orket("backup " .. H.quote(tmp .. "/k2"), { cwd = dir, env = { ORKET_KEY_FILE = tmp .. "/k2link" } })
    assert.equal(1, r.status)
    assert.matches("backup: " .. tmp .. "/k2: is the file ORKET_KEY_FILE names", r.stderr, 1, true)
    assert.equal(("q"):rep(32), H.read(tmp .. "/k2"))
    for _, f in ipairs { ".orket/keys.pepper", ".orket/new.backup" } do
      r = H.orket("backup " .. f, { cwd = dir })
      assert.equal(1, r.status, f)
      assert.matches("backup: " .. f .. ": is in the project's .orket, which holds its store and keys", r.stderr, 1, true)
    end
    local uv = require "luv"
    assert.equal(("p"):rep(32), H.read(dir .. "/.orket/keys.pepper"))
    assert.is_nil(uv.fs_stat(dir .. "/.orket/new.backup"))
    assert.equal("fifo", uv.fs_stat(tmp .. "/fifo").type)
    assert.equal("keep", H.read(tmp .. "/victim"))
    for _, l in ipairs { "flink", "plink", "dangling", "stdout" } do assert.equal("link", uv.fs_lstat(tmp .. "/" .. l).type, l) end
    assert.equal("canceled", status_of(dir, "API-2"))
    if backends.name() == "sqlite" then
      assert.is_nil(uv.fs_stat(dir .. "/.orket/orket.db-journal"))
      assert.equal("link", uv.fs_lstat(tmp .. "/link").type)
      -- another name of the store (a hard link) is no store: the rename replaces that name
      -- alone, and the store keeps its file and content
      local ino = uv.fs_stat(dir .. "/.orket/orket.db").ino
      assert.is_true(os.execute("ln " .. H.quote(dir .. "/.orket/orket.db") .. " " .. H.quote(tmp .. "/hard")))
      ok(H.orket("backup " .. H.quote(tmp .. "/hard"), { cwd = dir }), "backup onto a hard link")
      assert.equal(ino, uv.fs_stat(dir .. "/.orket/orket.db").ino)
      assert.are_not.equal(ino, uv.fs_stat(tmp .. "/hard").ino)
      ok(H.orket('cancel API-3 "after the backup"', { cwd = dir }), "cancel")
      assert.equal("canceled", status_of(dir, "API-3"))
      assert.equal(1, uv.fs_stat(dir .. "/.orket/orket.db").nlink)
      ok(H.orket("restore --check --accept-older-audit " .. H.quote(tmp .. "/hard"), { cwd = dir }), "the backup")
    end
  end)

  it("refuses the other backend's backup in --check as the restore does, naming FILE", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local other, want
    if backends.name() == "sqlite" then
      -- an export of an empty board, as orket backup writes one on PostgreSQL
      other, want = tmp .. "/board.export", "a PostgreSQL backup cannot be restored into a SQLite store"
      local lines = { '{"format":"orket-pg-backup","version":19}' }
      for _, t in ipairs { "cards", "dependencies", "comments", "events" } do
        lines[#lines + 1] = string.format('{"table":"%s","rows":0}', t)
      end
      lines[#lines + 1] = '{"end":true}'
      H.write(other, table.concat(lines, "\n") .. "\n")
    else
      other, want = tmp .. "/board.db", "a SQLite backup cannot be restored into a PostgreSQL store"
      ok(H.orket("lua -e " .. H.quote("assert(require('orket.store').open(" .. string.format("%q", other)
        .. ")):close()")), "a SQLite store")
    end
    H.write(tmp .. "/k", ("k"):rep(32))
    assert.is_true(os.execute("chmod 600 " .. H.quote(tmp .. "/k")))
    ok(H.orket("lua -e " .. H.quote(string.format("assert(require('orket.c.seal').seal(%q, %q, %q))",
      other, other .. ".enc", ("k"):rep(32)))), "seal")
    ok(H.orket('cancel API-2 "kept"', { cwd = dir }), "cancel")
    for _, c in ipairs { { other, "" }, { other .. ".enc", " --key-file " .. H.quote(tmp .. "/k") } } do
      for _, check in ipairs { "--check ", "" } do
        local r = H.orket("restore " .. check .. H.quote(c[1]) .. c[2], { cwd = dir })
        assert.equal(1, r.status, check .. c[1])
        assert.matches("restore: " .. c[1] .. ": " .. want, r.stderr, 1, true)
        assert.equal("", r.stdout)
      end
    end
    assert.equal("canceled", status_of(dir, "API-2"))
  end)

  it("names an encrypted FILE as given, never its opened copy, when it holds no backup", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    H.write(tmp .. "/junk", ("junk "):rep(100))
    H.write(tmp .. "/k", ("k"):rep(32))
    assert.is_true(os.execute("chmod 600 " .. H.quote(tmp .. "/k")))
    ok(H.orket("lua -e " .. H.quote(string.format("assert(require('orket.c.seal').seal(%q, %q, %q))",
      tmp .. "/junk", tmp .. "/junk.enc", ("k"):rep(32)))), "seal")
    for _, check in ipairs { "--check ", "" } do
      local r = H.orket("restore " .. check .. H.quote(tmp .. "/junk.enc") .. " --key-file " .. H.quote(tmp .. "/k"),
        { cwd = dir })
      assert.equal(1, r.status, check)
      assert.matches("restore: " .. tmp .. "/junk.enc: not an orket backup", r.stderr, 1, true)
      assert.not_matches("sealed-", r.stderr, 1, true)
    end
  end)

  -- a FILE's name was printed as given: a newline in it split the message into two lines
  -- that each read as orket's, and an escape sequence reached the terminal
  it("prints FILE's name inert in its messages, escaped, on one line", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local odd = tmp .. "/a\nb\27[31m"
    local said = tmp .. "/a\\nb\\x1b[31m"
    assert.is_true(os.execute("mkdir -p " .. H.quote(odd .. "/sub")))
    H.write(odd .. "/foreign", "hello\n")
    H.write(odd .. "/f", "x\n")
    H.write(odd .. "/junk", ("junk "):rep(100))
    H.write(tmp .. "/k", ("k"):rep(32))
    assert.is_true(os.execute("chmod 600 " .. H.quote(tmp .. "/k")))
    H.write(odd .. "/k-open", ("k"):rep(32)) -- a key file others may read
    assert.is_true(os.execute("chmod 644 " .. H.quote(odd .. "/k-open")))
    ok(H.orket("lua -e " .. H.quote(string.format("assert(require('orket.c.seal').seal(%q, %q, %q))",
      odd .. "/junk", odd .. "/junk.enc", ("k"):rep(32)))), "seal")
    for _, c in ipairs {
      { "restore " .. H.quote(odd .. "/none"), "restore: " .. said .. "/none: no such file (the store was not changed)" },
      { "restore --check " .. H.quote(odd .. "/foreign"), "restore: " .. said .. "/foreign: not an orket backup" },
      { "restore " .. H.quote(odd .. "/foreign"), "restore: " .. said .. "/foreign: not an orket backup" },
      { "backup " .. H.quote(odd .. "/sub"), "backup: " .. said .. "/sub: is a directory" },
      { "backup " .. H.quote(odd .. "/f/b.db"), "backup: cannot create the copy for " .. said .. "/f/b.db: " },
      { "restore --check " .. H.quote(odd .. "/junk.enc") .. " --key-file " .. H.quote(tmp .. "/k"),
        "restore: " .. said .. "/junk.enc: not an orket backup" },
      { "restore " .. H.quote(odd .. "/junk.enc") .. " --key-file " .. H.quote(tmp .. "/k"),
        "restore: " .. said .. "/junk.enc: not an orket backup" },
      -- the key file's name too (orket.store.sealed's own messages)
      { "backup " .. H.quote(tmp .. "/x.enc") .. " --encrypt --key-file " .. H.quote(odd .. "/k-open"),
        "backup: --key-file " .. said .. "/k-open: its mode lets other users read it; chmod 600 it" },
      { "backup " .. H.quote(tmp .. "/x.enc") .. " --encrypt --key-file " .. H.quote(odd .. "/k-none"),
        "backup: --key-file " .. said .. "/k-none: no such file" },
    } do
      local r = H.orket(c[1], { cwd = dir })
      assert.equal(1, r.status, c[1])
      assert.matches("orket: " .. c[2], r.stderr, 1, true)
      assert.is_nil(r.stderr:find("a\nb", 1, true), r.stderr)
      assert.is_nil(r.stderr:find("\27", 1, true), r.stderr)
    end
    -- a good one: made and checked, named so too
    local r = ok(H.orket("backup " .. H.quote(odd .. "/good"), { cwd = dir }), "backup")
    assert.equal(" to " .. said .. "/good\n", r.stdout:sub(-#said - 10))
    r = ok(H.orket("restore --check " .. H.quote(odd .. "/good"), { cwd = dir }), "check")
    assert.matches("^" .. said:gsub("%p", "%%%0") .. "/good: a good backup", r.stdout)
  end)

  it("restores a backup made at an older schema version and upgrades it (SQLite)", function()
    if backends.name() ~= "sqlite" then return pending("SQLite only: an export restores only at its own version") end
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    -- a store as an orket of schema version 9 left it: a card, its journal, no api_keys yet
    local script = tmp .. "/old.lua"
    H.write(script, [[
local store = require "orket.store"
local db = assert(store.open(arg[1], { upto = 9 }))
assert(db:tx(function()
  assert(db:run("INSERT INTO cards (id, type, summary, status, created_at, updated_at) VALUES "
    .. "('OLD-1', 'epic', 'made long ago', 'ready', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')"))
  db:event { kind = "card_create", card = "OLD-1", actor = "cli", data = {} }
  return true
end))
db:close()
]])
    local r = H.orket("lua " .. H.quote(script) .. " " .. H.quote(tmp .. "/old.db"), {})
    assert.equal(0, r.status, r.stderr)
    r = ok(H.orket("restore --check " .. H.quote(tmp .. "/old.db"), { cwd = dir }), "check")
    assert.matches("schema version 9", r.stdout, 1, true)
    ok(H.orket("restore " .. H.quote(tmp .. "/old.db"), { cwd = dir }), "restore")
    assert.equal("made long ago", H.card_json(dir, "OLD-1").card.summary)
    local v = H.orket("lua -e " .. H.quote("local s = require('orket.c.store').open('.orket/orket.db'); "
      .. "io.write(s:version(), ' ', s:row('SELECT count(*) AS n FROM api_keys').n); s:close()"), { cwd = dir })
    assert.equal(tostring(require("orket.store").latest_version) .. " 0", v.stdout)
    -- and a file newer than this orket is refused
    local newer = H.orket("lua -e " .. H.quote("local s = require('orket.c.store').open(" .. string.format("%q", tmp .. "/old.db")
      .. "); s:set_version(999); s:close()"), {})
    assert.equal(0, newer.status, newer.stderr)
    r = H.orket("restore " .. H.quote(tmp .. "/old.db"), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("schema version 999", r.stderr, 1, true)
  end)

  -- orket backup --encrypt: the key file's case flips bytes all over the file and cuts it,
  -- each refused before the store is touched; the passphrase's case checks Argon2id's
  -- header round-trips and a wrong passphrase is refused the same way.
  it("encrypts a backup that restores with its key and refuses every change to it", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local key, file = tmp .. "/backup.key", tmp .. "/board.enc"
    H.write(key, string.rep("k", 16) .. string.rep("7", 16))
    os.execute("chmod 600 " .. H.quote(key))
    local r = ok(H.orket("backup " .. H.quote(file) .. " --encrypt --key-file " .. H.quote(key), { cwd = dir }), "backup")
    assert.matches("encrypted", r.stdout, 1, true)
    local sealed_text = H.read(file)
    assert.equal("ORKTSEAL", sealed_text:sub(1, 8))
    assert.is_nil(sealed_text:find("API-2", 1, true)) -- nothing of the board in the clear
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    local function refused(path, what, args)
      r = H.orket("restore " .. H.quote(path) .. " " .. (args or ("--key-file " .. H.quote(key))), { cwd = dir })
      assert.equal(1, r.status, what .. ": " .. r.stdout)
      assert.matches("the store was not changed", r.stderr, 1, true)
      assert.equal("canceled", status_of(dir, "API-2"), what)
      return r.stderr
    end
    -- one flipped byte: in the clear header, the stream's header, the first chunk's length,
    -- the middle, the final tag
    local n = #sealed_text
    for _, at in ipairs({ 1, 10, 20, 36, n // 2, n - 1, n }) do
      local b = sealed_text:byte(at) ~ 0x20
      H.write(tmp .. "/flip", sealed_text:sub(1, at - 1) .. string.char(b) .. sealed_text:sub(at + 1))
      local e = refused(tmp .. "/flip", "byte " .. at)
      assert.is_truthy(e:find("changed", 1, true) or e:find("not an encrypted", 1, true)
        or e:find("unknown format", 1, true) or e:find("wrong key", 1, true), e)
    end
    -- cut: inside a chunk, at the end of the first chunk (a whole chunk, no final tag), one
    -- byte short; and extended after the final tag
    local cuts = { n // 2, n - 1 }
    if n > 34 + 4 + 65536 + 17 then cuts[#cuts + 1] = 34 + 4 + 65536 + 17 end
    for _, len in ipairs(cuts) do
      H.write(tmp .. "/cut", sealed_text:sub(1, len))
      assert.matches("truncated", refused(tmp .. "/cut", "cut at " .. len), 1, true)
    end
    H.write(tmp .. "/long", sealed_text .. "x")
    assert.matches("follow the final tag", refused(tmp .. "/long", "extended"), 1, true)
    -- a wrong key; no key at all (no terminal to ask on)
    local other = tmp .. "/other.key"
    H.write(other, string.rep("ab", 32) .. "\n")
    os.execute("chmod 600 " .. H.quote(other))
    assert.matches("wrong key", refused(file, "wrong key", "--key-file " .. H.quote(other)), 1, true)
    assert.matches("--key-file", refused(file, "no key", ""), 1, true)
    -- and nothing opened is left behind
    assert.is_nil(io.popen("ls " .. H.quote(dir .. "/.orket") .. " | grep sealed-"):read("l"))
    -- the good file restores
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(file) .. " --key-file " .. H.quote(key), { cwd = dir }),
      "restore")
    assert.not_equal("canceled", status_of(dir, "API-2"))
  end)

  it("encrypts with a passphrase from a named variable and refuses a wrong one", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local file = tmp .. "/board.enc"
    local env = { BACKUP_PASS = "correct horse battery staple" }
    ok(H.orket("backup " .. H.quote(file) .. " --encrypt --passphrase-env BACKUP_PASS", { cwd = dir, env = env }), "backup")
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    local r = H.orket("restore " .. H.quote(file) .. " --passphrase-env BACKUP_PASS", { cwd = dir, env = { BACKUP_PASS = "wrong" } })
    assert.equal(1, r.status)
    assert.matches("wrong key or passphrase", r.stderr, 1, true)
    assert.equal("canceled", status_of(dir, "API-2"))
    r = H.orket("restore " .. H.quote(file) .. " --passphrase-env UNSET_VAR_X", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("UNSET_VAR_X: that environment variable is unset", r.stderr, 1, true)
    ok(H.orket("restore --check --accept-older-audit " .. H.quote(file) .. " --passphrase-env BACKUP_PASS",
      { cwd = dir, env = env }), "check")
    ok(H.orket("restore --accept-older-audit " .. H.quote(file) .. " --passphrase-env BACKUP_PASS",
      { cwd = dir, env = env }), "restore")
    assert.not_equal("canceled", status_of(dir, "API-2"))
  end)

  it("asks the passphrase on the terminal, twice when sealing, without echoing it", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local pty = H.BIN:gsub("orket$", "ptydrive")
    local function drive(steps, args)
      H.write(tmp .. "/steps", steps)
      local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 60 -- %s %s <%s 2>&1", H.quote(dir),
        H.quote(pty), H.quote(H.BIN), args, H.quote(tmp .. "/steps")))
      local out = p:read("a")
      p:close()
      return out
    end
    local pass = "tty passphrase 42"
    local out = drive("expect passphrase: \nsend " .. pass .. "\nexpect passphrase again: \nsend " .. pass
      .. "\nexpect backed up\n", "backup " .. H.quote(tmp .. "/b.enc") .. " --encrypt")
    assert.matches("backed up %d+ cards %(schema version %d+, SQLite store, encrypted%)", (out:gsub("PostgreSQL export", "SQLite store")))
    assert.is_nil(out:find(pass, 1, true)) -- echo off
    -- two different answers seal nothing
    out = drive("expect passphrase: \nsend one passphrase\nexpect passphrase again: \nsend another one\n"
      .. "expect the two passphrases differ\n", "backup " .. H.quote(tmp .. "/c.enc") .. " --encrypt")
    assert.matches("the two passphrases differ", out, 1, true)
    assert.is_nil(io.open(tmp .. "/c.enc"))
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    out = drive("expect passphrase: \nsend " .. pass .. "\nexpect restored\n", "restore --accept-older-audit " .. H.quote(tmp .. "/b.enc"))
    assert.matches("restored", out, 1, true)
    assert.is_nil(out:find(pass, 1, true))
    assert.not_equal("canceled", status_of(dir, "API-2"))
  end)

  it("refuses a key file others can read and key options without --encrypt", function()
    local dir = H.example("webapp", { import = false })
    local tmp = H.tmpdir()
    H.write(tmp .. "/k", string.rep("k", 32))
    os.execute("chmod 644 " .. H.quote(tmp .. "/k"))
    local r = H.orket("backup " .. H.quote(tmp .. "/b") .. " --encrypt --key-file " .. H.quote(tmp .. "/k"), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("chmod 600", r.stderr, 1, true)
    assert.is_nil(io.open(tmp .. "/b"))
    r = H.orket("backup " .. H.quote(tmp .. "/b") .. " --key-file " .. H.quote(tmp .. "/k"), { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("go with --encrypt", r.stderr, 1, true)
  end)

  -- a refusal says what was refused, which file, and that the store is as it was: a bare
  -- "another orket run is working" or ".orket/orket.db: database is locked" says neither
  it("names the restore and FILE when a run holds the project, and changes nothing", function()
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    local pid, stop = H.hold_lock(dir)
    local r = H.orket("restore " .. H.quote(file), { cwd = dir })
    stop()
    assert.equal(75, r.status, r.stderr) -- busy: the same command later may pass
    assert.matches("restore: " .. file .. ": another orket run is working on this project (process " .. pid .. ")",
      r.stderr, 1, true)
    assert.matches("(the store was not changed)\n", r.stderr, 1, true)
    assert.equal("canceled", status_of(dir, "API-2"))
  end)

  -- another folder of the same PostgreSQL database works a run: its leases are in the store,
  -- and this folder's run lock knows nothing of them (the restore wiped the runs under a
  -- worker, which then failed on the lost run's foreign key). Here the rows are written as
  -- that folder's worker and server write them.
  it("refuses while the store holds a live lease on a run, whatever folder holds it", function()
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local leases = require "orket.store.leases"
    local db = assert(require("orket.project").open_store(dir, false))
    local run = assert(db:record_run { target = "API", kind = "epic", data = { workers = true } })
    assert(db:tx(function() return leases.claim(db, { worker = "far#0123456789abcdef", run = run, ids = { "API-1" },
      limit = 1, ttl_ms = 60000 }) end))
    db:close()
    local r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(75, r.status, r.stderr) -- busy, as for the run lock
    assert.matches("run " .. run .. " is worked by worker far (its lease on API-1 is in the store, so from any folder "
      .. "of it)", r.stderr, 1, true)
    assert.matches("(the store was not changed)\n", r.stderr, 1, true)
    db = assert(require("orket.project").open_store(dir, false))
    db:tx(function() leases.release(db, "far#0123456789abcdef") end)
    -- a lease on the whole run, from a process of another machine (never known dead here):
    -- refused as every command changing cards is, by the run lock's look at the store's leases
    db:tx(function() assert(leases.run_take(db, run, "elsewhere/-/4242/00ff", 60000) == nil) end)
    db:close()
    r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(75, r.status, r.stderr)
    assert.matches("run " .. run .. " is going in process elsewhere/-/4242/00ff, in another folder of this project's "
      .. "store (known from its lease there)", r.stderr, 1, true)
    assert.matches("(the store was not changed)\n", r.stderr, 1, true)
    -- the run is there still
    db = assert(require("orket.project").open_store(dir, false))
    assert.is_table(require("orket.store.runs").get(db, run))
    db:close()
  end)

  -- a backup taken mid-run holds the run left to the workers as running: an idle worker
  -- (which holds nothing in the store) joined it as soon as it was restored and worked
  -- again every card done since, its effects applied twice. It is restored interrupted.
  it("restores a run left to the workers interrupted and names it, so that no worker carries it on by itself", function()
    local dir = H.example("webapp")
    local db = assert(require("orket.project").open_store(dir, false))
    local run = assert(db:record_run { target = "API", kind = "epic", data = { workers = true } })
    db:close()
    local file = H.tmpdir() .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local r = ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches(string.format("run %d (API) was left to the workers when the backup was taken: it is interrupted now, "
      .. "so that no worker carries it on by itself; orket resume %d carries it on\n", run, run), r.stdout, 1, true)
    db = assert(require("orket.project").open_store(dir, false))
    local row = require("orket.store.runs").get(db, run)
    local queued = require("orket.store.leases").queued(db)
    local ends = db:rows("SELECT data FROM events WHERE kind = 'run_end' AND run_id = ?", run)
    db:close()
    assert.equal("interrupted", row.status)
    assert.same({}, queued)
    assert.equal(1, #ends)
    assert.matches("restored from a backup taken while it ran", ends[1].data, 1, true)
  end)

  -- a key revoked because it leaked, a person disabled: the command line signs no
  -- checkpoint for them, so an older backup restored without a word and the leaked key
  -- worked again
  it("refuses a backup that would undo a key's revocation or a person's disabling, unless told", function()
    local dir = H.example("webapp")
    local made = ok(H.orket("keys create leak --role admin", { cwd = dir }), "key")
    local id = assert((made.stdout .. made.stderr):match("created key (%x+)"))
    local function revoked()
      local doc = require("cjson").decode(ok(H.orket("keys list --json", { cwd = dir }), "list").stdout)
      return doc.keys[1].revoked_at ~= require("cjson").null
    end
    local file = H.tmpdir() .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket("keys revoke " .. id, { cwd = dir }), "revoke")
    local r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("refused: the store's entry %d+, a key revoked %(key_revoke key=leak keyid=" .. id, r.stderr)
    assert.matches("restore a newer backup, or this one with --accept-undone-revocations", r.stderr, 1, true)
    assert.is_true(revoked())
    -- --check says it as the restore would
    assert.equal(1, H.orket("restore " .. H.quote(file) .. " --check", { cwd = dir }).status)
    -- told: restored, the flag in the restore's entry
    r = ok(H.orket("restore " .. H.quote(file) .. " --accept-undone-revocations --accept-older-audit", { cwd = dir }),
      "restore")
    assert.matches("accepted (--accept-undone-revocations)", r.stderr, 1, true)
    assert.is_false(revoked())
    local e = H.orket("audit export --format jsonl", { cwd = dir }).stdout
    assert.matches("accept=older%-audit:undone%-revocations", e)
  end)

  -- SQLite only: a write lock another connection holds is the file's; PostgreSQL's are rows'
  local sqlite_it = backends.name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only: its file's own locks]") end
  sqlite_it("keeps the restore's words around a failure of the store's file (a locked store)", function()
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    -- another connection holds the store's write lock longer than a writer waits for it
    local p = io.popen(string.format("cd %s && { %s lua -e %s & echo $!; }", H.quote(dir), H.quote(H.BIN),
      H.quote("local db = assert(require('orket.project').open_store('.', false)); assert(db:exec('BEGIN EXCLUSIVE')); "
        .. "io.stdout:write('held\\n'); io.stdout:flush(); orket.sleep(60000)")))
    local first, second = p:read("l"), p:read("l")
    local pid = math.tointeger(tonumber(first) or tonumber(second))
    finally(function()
      os.execute("kill -9 " .. pid)
      p:close()
    end)
    assert.equal("held", tonumber(first) and second or first)
    local r = H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: restore: .orket/orket.db: database is locked (the store was not changed)\n",
      (r.stderr:gsub("^orket: restore: [^\n]*: accepted %(%-%-accept%-older%-audit%)[^\n]*\n", "")))
    assert.equal("canceled", status_of(dir, "API-2"))
  end)

  -- The new id is written after the pages on SQLite, so it can fail alone: the content is
  -- restored and the command says so and fails. On PostgreSQL it is in the import's
  -- transaction: nothing changes.
  it("says so and fails when a restore's new id cannot be written", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local file = tmp .. "/b.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket('cancel API-2 "after the backup"', { cwd = dir }), "cancel")
    H.write(tmp .. "/id.lua", [[
local db = assert(require("orket.project").open_store(".", false, true))
io.stdout:write(require("orket.store.projects").journal_store_id(db))
db:close()
]])
    local function store_id() return ok(H.orket("lua " .. H.quote(tmp .. "/id.lua"), { cwd = dir }), "store id").stdout end
    local before = store_id()
    H.write(tmp .. "/restore.lua", string.format([[
require("orket.store.projects").renew = function() error("no new id here", 0) end
os.exit(require("orket.cli").main { "restore", "--accept-older-audit", %q })
]], file))
    local r = H.orket("lua " .. H.quote(tmp .. "/restore.lua"), { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal(before, store_id())
    if backends.name() == "sqlite" then
      assert.matches("restored %d+ cards", r.stdout)
      assert.matches("restore: the store was restored, but its id was not made anew (no new id here)", r.stderr, 1, true)
      assert.equal("ready", status_of(dir, "API-2"))
    else
      assert.matches("no new id here", r.stderr, 1, true)
      assert.equal("canceled", status_of(dir, "API-2"))
    end
  end)

  -- the copy's private name (FILE.part-PID, removed) was said as the file at fault
  it("names a failed copy as the copy for FILE, never by its private name", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    H.write(tmp .. "/f", "x\n")
    local r = H.orket("backup " .. H.quote(tmp .. "/f/b.db"), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("^orket: backup: cannot create the copy for " .. (tmp .. "/f/b.db"):gsub("%p", "%%%0"), r.stderr)
    assert.is_nil(r.stderr:find(".part-", 1, true), r.stderr)
  end)

  sqlite_it("says a damaged store's copy is the store's damage, FILE not written", function()
    local dir = H.example("webapp")
    local f = assert(io.open(dir .. "/.orket/orket.db", "r+b"))
    f:seek("set", 4096 * 5)
    f:write(string.rep("\255\0\127garbage", 4096 * 8 // 10))
    f:close()
    local file = H.tmpdir() .. "/b.db"
    local r = H.orket("backup " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: backup: the copy for " .. file .. ": database disk image is malformed (nothing was written to "
      .. file .. ": the store .orket/orket.db may be damaged)\n", r.stderr)
    assert.is_nil(io.open(file))
  end)

  it("says how to use both commands", function()
    local r = H.orket("backup", {})
    assert.equal(2, r.status)
    assert.matches("backup needs one FILE", r.stderr, 1, true)
    r = H.orket("restore a b", {})
    assert.equal(2, r.status)
  end)

  -- an export stalled (a lock, a partition) took SIGINT, SIGTERM and SIGHUP only once it
  -- ended: the first signal now cancels its query, and FILE is left as it was
  it("stops a stalled PostgreSQL export at the first SIGINT, FILE as it was", function()
    if backends.name() ~= "pg" then return pending("PostgreSQL only: the export a lock stalls") end
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local file = tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "the backup there before")
    local before = H.read(file)
    H.write(tmp .. "/lock.lua", string.format([[
local db = assert(require("orket.project").open_store(".", false))
assert(db:tx(function()
  assert(db:exec("LOCK TABLE cards IN ACCESS EXCLUSIVE MODE"))
  io.open(%q, "w"):close()
  require("orket.c.runtime").sleep(30000)
  return true
end))
]], tmp .. "/locked"))
    os.execute(string.format("cd %s && { %s lua %s >%s/lock.out 2>&1 & echo $! >%s/lock.pid; } ",
      H.quote(dir), H.quote(H.BIN), H.quote(tmp .. "/lock.lua"), H.quote(tmp), H.quote(tmp)))
    finally(function() os.execute("kill " .. (H.read(tmp .. "/lock.pid") or ""):match("%d+") .. " 2>/dev/null") end)
    for _ = 1, 1000 do
      if H.read(tmp .. "/locked") then break end
      orket.sleep(10)
    end
    assert(H.read(tmp .. "/locked"), H.read(tmp .. "/lock.out"))
    local t0 = os.time()
    local rc, out = H.sh(string.format("cd %s || exit 1; env --default-signal=INT %s backup %s 2>%s/err & P=$!; "
      .. "sleep 1.5; kill -0 $P || echo 'ended before the signal'; kill -INT $P; wait $P",
      H.quote(dir), H.quote(H.BIN), H.quote(file), H.quote(tmp)))
    out = out .. (H.read(tmp .. "/err") or "")
    assert.equal(130, rc, out)
    assert.is_true(os.time() - t0 < 15, out)
    assert.not_matches("ended before the signal", out, 1, true)
    assert.matches("stopped by SIGINT; " .. file .. " was not changed", out, 1, true)
    assert.equal(before, H.read(file))
    local p = io.popen("ls -A " .. H.quote(tmp))
    assert.not_matches("part", p:read("a"), 1, true)
    p:close()
  end)
end)
