-- orket import / board / card end to end: the example project, JSON output, colour rules
-- and the errors a person sees.
local H = require "tests.helpers"
local cjson = require "cjson"

-- the rest of an import's line for a run going
local GOING = ": it takes this import up from its next pass (an epic's or rock's run leaves a card moved out "
  .. "of it to a run of its new parent; an issue's run follows its issue)\n"

local function example()
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/webapp/epics") .. " " .. H.quote(dir))
  return dir
end

describe("orket import, board and card", function()
  after_each(H.cleanup)

  it("imports the example, shows the tree, and survives a re-import unchanged", function()
    local dir = example()
    local r = H.orket("import " .. H.quote(dir))
    assert.equal(0, r.status, r.stderr)
    assert.equal("imported 10 cards from 3 files: 10 new, 0 updated, 0 unchanged\n", r.stdout)
    local b1 = H.orket("board", { cwd = dir })
    assert.equal(0, b1.status, b1.stderr)
    assert.matches("^ROCK LAUNCH", b1.stdout)
    assert.matches("\n  EPIC API %s+ready %s+high %s+lead_architect %s+Notes API\n", b1.stdout)
    assert.matches("\n    API%-2 %s+ready %s+high %s+senior_developer %s+CRUD endpoints for notes\n", b1.stdout)
    assert.is_nil(b1.stdout:find("\27", 1, true))
    r = H.orket("import", { cwd = dir })
    assert.equal("imported 10 cards from 3 files: 0 new, 0 updated, 10 unchanged\n", r.stdout)
    assert.equal(b1.stdout, H.orket("board", { cwd = dir }).stdout)
    local web = H.orket("board WEB", { cwd = dir })
    assert.matches("^EPIC WEB", web.stdout)
    assert.is_nil(web.stdout:find("API-1", 1, true))
  end)

  -- An import during a run is documented and followed by the run (docs/engine.md, "Order"):
  -- the run lock does not refuse it; the import names the run going.
  it("imports while a run holds the project's run lock, naming the run", function()
    local dir = example()
    assert.equal(0, H.orket("import " .. H.quote(dir)).status)
    local lock = assert(require("orket.engine.setup").lock(dir, { runs_ok = true }))
    lock:tag(7) -- as orket run tags it once its run has started
    H.write(dir .. "/epics/extra.json", [[{"id":"X","issues":[{"id":"X-1","summary":"more"}]}]])
    local r = H.orket("import", { cwd = dir })
    -- a card gone from epics/ while the run goes: its cancel, refused while the run holds
    -- the lock, is said for once the run has ended
    H.write(dir .. "/epics/extra.json", [[{"id":"X","issues":[{"id":"X-2","summary":"other"}]}]])
    local gone = H.orket("import", { cwd = dir })
    lock:release()
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    assert.equal(string.format("imported 12 cards from 4 files: 2 new, 0 updated, 10 unchanged\n"
      .. "run 7 is going (process %d)" .. GOING, require("luv").os_getpid()), r.stdout)
    assert.equal(0, gone.status, gone.stderr)
    assert.matches("\n  once the run below has ended %(a cancel waits for it%), end it with: %S*orket cancel X%-1 "
      .. '"reason", or put it back in epics/\nrun 7 is going', gone.stdout)
    assert.matches("EPIC X", H.orket("board", { cwd = dir }).stdout)
  end)

  it("names each run going once, its processes together, and no lock a dead process left", function()
    local dir = example()
    assert.equal(0, H.orket("import " .. H.quote(dir)).status)
    local uv = require "luv"
    local claims = require "orket.engine.claims"
    -- locks nobody holds: a killed run's, a killed server's and a killed worker's
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket/runs"))
    H.write(dir .. "/.orket/run.lock", "99999 7\n")
    H.write(dir .. "/.orket/runs/5.lock", "99999 5\n")
    H.write(dir .. "/.orket/runs/6.99999.lock", "99999 6\n")
    -- two workers on run 6: this process and another
    local mine = assert(claims.hold_worker(dir, 6))
    local p = io.popen(string.format("cd %s && { %s lua -e %s & echo $!; }", H.quote(dir), H.quote(H.BIN),
      H.quote("local h = assert(require('orket.engine.claims').hold_worker('.', 6)); io.stdout:write('held\\n'); "
        .. "io.stdout:flush(); orket.sleep(60000)")))
    local first, second = p:read("l"), p:read("l")
    local other = math.tointeger(tonumber(first) or tonumber(second))
    -- a server's run lock just taken, its pid not written yet: held, no pid known
    local fresh = assert(require("orket.c.lockfile").acquire(dir .. "/.orket/runs/8.lock"))
    local f = assert(io.open(dir .. "/.orket/runs/8.lock", "w")) -- (another descriptor: the lock stays)
    f:close()
    local ok, err = pcall(function()
      assert(other, "the second worker did not start")
      local r = H.orket("import", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      local a, b = math.min(uv.os_getpid(), other), math.max(uv.os_getpid(), other)
      assert.equal(string.format("imported 10 cards from 3 files: 0 new, 0 updated, 10 unchanged\n"
        .. "run 6 is going (processes %d, %d)" .. GOING .. "run 8 is going" .. GOING, a, b), r.stdout)
    end)
    fresh:release()
    mine.lock:release()
    if other then os.execute("kill -9 " .. other) end
    p:close()
    assert(ok, err)
  end)

  it("names the unfinished cards deleted from epics/ that stay on the board, and how to end them", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/p/epics"))
    H.write(dir .. "/p/epics/a.json", [[{"id":"A","issues":[{"id":"A-1","summary":"x"},{"id":"A-2","summary":"y"}]}]])
    H.write(dir .. "/p/epics/b.json", [[{"id":"B","issues":[{"id":"B-1","summary":"z"}]}]])
    local r = H.orket("import p", { cwd = dir })
    assert.equal("imported 5 cards from 2 files: 5 new, 0 updated, 0 unchanged\n", r.stdout)
    H.write(dir .. "/p/epics/a.json", [[{"id":"A","issues":[{"id":"A-1","summary":"x"}]}]])
    os.remove(dir .. "/p/epics/b.json")
    local before = H.orket("board --json -C p", { cwd = dir }).stdout
    r = H.orket("import p", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(3, #lines, r.stdout)
    assert.equal("imported 2 cards from 1 file: 0 new, 0 updated, 2 unchanged", lines[1])
    assert.equal("not in epics/ any more, still on the board (import deletes no card): A-2, "
      .. "B (and the 1 unfinished card under it)", lines[2])
    assert.matches('^  end each with: %S*orket cancel CARD "reason" %-C p %(a rock\'s or epic\'s cards end with it%), '
      .. "or put them back in epics/$", lines[3])
    -- said, not done: the board is as it was
    assert.equal(before, H.orket("board --json -C p", { cwd = dir }).stdout)
    -- the command it names ends them; an ended card is not named again
    assert.equal(0, H.orket('cancel B "moved away" -C p', { cwd = dir }).status)
    r = H.orket("import", { cwd = dir .. "/p" })
    assert.matches("\nnot in epics/ any more, still on the board %(import deletes no card%): A%-2\n"
      .. '  end it with: %S*orket cancel A%-2 "reason", or put it back in epics/\n$', r.stdout)
    assert.equal(0, H.orket('cancel A-2 "moved away"', { cwd = dir .. "/p" }).status)
    r = H.orket("import", { cwd = dir .. "/p" })
    assert.equal("imported 2 cards from 1 file: 0 new, 0 updated, 2 unchanged\n", r.stdout)
  end)

  -- a finished epic takes no work back, so a move that finishes one is said, not only done
  it("says the status of an epic its moved issues changed", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"x"},{"id":"E-2","summary":"y"}]}]])
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[]}]])
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    assert.equal(0, H.orket('cancel E-1 "not needed"', { cwd = dir }).status)
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"x"}]}]])
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"E-2","summary":"y"}]}]])
    local r = H.orket("import", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("imported 4 cards from 2 files: 0 new, 1 updated, 3 unchanged\n"
      .. "moved cards changed epic E: ready -> canceled (its unfinished children moved away, and the rest was "
      .. "canceled); a finished epic takes no new work: put any in a new epic\n", r.stdout)
  end)

  -- an epic in progress that the moves leave with no issues stays so (a parent with no
  -- children stays as it is): said with the command that ends it, not ended by the import
  it("says an epic in progress its moved issues left empty, with the command that ends it", function()
    local dir = H.tmpdir()
    local p = dir .. "/p"
    os.execute("mkdir -p " .. H.quote(p .. "/epics"))
    require("tests.backends").project(p)
    H.write(p .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"x"}]}]])
    H.write(p .. "/epics/f.json", [[{"id":"F","issues":[]}]])
    assert.equal(0, H.orket("import p", { cwd = dir }).status)
    local db = assert(require("orket.project").open_store(p, false))
    assert(require("orket.board").open(db):transition("E-1", "in_progress", { actor = { seat = "dev", roles = { "coder" } } }))
    db:close()
    H.write(p .. "/epics/e.json", [[{"id":"E","issues":[]}]])
    H.write(p .. "/epics/f.json", [[{"id":"F","issues":[{"id":"E-1","summary":"x"}]}]])
    local r = H.orket("import p", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(3, #lines, r.stdout)
    assert.equal("imported 3 cards from 2 files: 0 new, 1 updated, 2 unchanged", lines[1])
    assert.equal("moved cards changed epic F: ready -> in_progress (one of its children under way moved in)", lines[2])
    assert.matches("^moved cards left epic E in_progress with no issues: it stays so; give it issues in epics/, or "
      .. 'end it with: %S*orket cancel E "reason" %-C p$', lines[3])
    assert.equal("in_progress", H.card_json(p, "E").card.status)
    -- the command it names ends it
    assert.equal(0, H.orket('cancel E "emptied" -C p', { cwd = dir }).status)
    assert.equal("canceled", H.card_json(p, "E").card.status)
  end)

  it("prints stable, documented JSON", function()
    local dir = example()
    H.orket("import", { cwd = dir })
    local r = H.orket("board --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.equal("orket.board/1", doc.format)
    assert.equal(10, #doc.cards)
    assert.equal("LAUNCH", doc.cards[1].id)
    assert.equal("API", doc.cards[2].id)
    local c = doc.cards[4]
    assert.equal("API-2", c.id)
    assert.same({ "API-1" }, c.depends_on)
    for _, k in ipairs { "id", "type", "parent", "status", "wait_reason", "priority", "seat", "worked_by", "retries",
      "created_at", "updated_at", "summary", "description", "depends_on" } do
      assert.is_not_nil(c[k] ~= nil or nil, "missing " .. k)
    end
    assert.equal(r.stdout, H.orket("board --json", { cwd = dir }).stdout)
    local card = cjson.decode(H.orket("card API-2 --json", { cwd = dir }).stdout)
    assert.equal("orket.card/1", card.format)
    assert.equal("CRUD endpoints for notes", card.card.summary)
    assert.equal("import", card.history[1].kind)
    assert.same({}, card.comments)
    local text = H.orket("card API-2", { cwd = dir })
    assert.matches("status:%s+ready", text.stdout)
    -- each dependency with its status, and what a ready card waits for (it said the ids alone,
    -- and nothing on the board said why a ready card did not start)
    assert.matches("\ndepends on:%s+API%-1 %(ready%)\n", text.stdout)
    assert.matches("\nwaits for:%s+API%-1 to be done before a run can start it\n", text.stdout)
    assert.is_nil(H.orket("card API-1", { cwd = dir }).stdout:find("waits for:", 1, true))
    assert.matches("imported from epics/api.json", text.stdout)
  end)

  it("shows a card's policy violations: what was attempted, why, how to fix", function()
    local dir = example()
    H.orket("import", { cwd = dir })
    local r = H.orket([[lua -e "local db = assert(require('orket.store').open('.orket/orket.db'))
      assert(db:record_violation{card='API-1', seat='senior_developer', rule='PATH_ESCAPE',
        attempt='write_file {\"path\":\"../x\"}', detail='path escapes root: ../x',
        remedy='Name files relative to the workspace root.'}) db:close()"]], { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("card API-1", { cwd = dir })
    assert.matches("policy violations:\n  %S+ senior_developer PATH_ESCAPE: write_file {\"path\":\"../x\"}\n" ..
      "      why: path escapes root: ../x\n      fix: Name files relative to the workspace root.", r.stdout)
    local card = require("cjson").decode(H.orket("card API-1 --json", { cwd = dir }).stdout)
    assert.equal("PATH_ESCAPE", card.violations[1].rule)
    assert.equal("Name files relative to the workspace root.", card.violations[1].remedy)
  end)

  it("keeps its columns in line when a status carries a wait reason", function()
    local dir = example()
    H.orket("import", { cwd = dir })
    -- a card waiting for input, as request_input leaves it
    local r = H.orket([[lua -e "local db = assert(require('orket.store').open('.orket/orket.db'))
      assert(db:run([=[UPDATE cards SET status = 'waiting_for_developer', wait_reason = 'input' WHERE id = 'API-1']=]))
      db:close()"]], { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local text = H.orket("board", { cwd = dir, env = { NO_COLOR = "1" } }).stdout
    local col
    for line in text:gmatch("[^\n]+") do
      local at = line:find(" high ", 1, true) or line:find(" medium ", 1, true) or line:find(" low ", 1, true)
      assert.is_not_nil(at, line)
      col = col or at
      assert.equal(col, at, "priority column moved in: " .. line)
    end
    assert.matches("waiting_for_developer%(input%)", text)
  end)

  it("uses colour only on a terminal and never with NO_COLOR", function()
    local dir = example()
    H.orket("import", { cwd = dir })
    -- script(1) gives the command a terminal, named (TERM unset counts as dumb, as in CI)
    local cmd = string.format("cd %s && env %%s TERM=xterm script -qec %s /dev/null </dev/null", H.quote(dir), H.quote(H.BIN .. " board"))
    local p = io.popen(cmd:format("-u NO_COLOR"))
    local tty = p:read("a")
    p:close()
    assert.truthy(tty:find("\27[", 1, true), "expected colour on a terminal")
    p = io.popen(cmd:format("NO_COLOR=1"))
    local nc = p:read("a")
    p:close()
    assert.is_nil(nc:find("\27[", 1, true))
  end)

  -- a read-only or damaged store is the SQLite file's; a PostgreSQL server has neither
  local sqlite_it = require("tests.backends").name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only: its file's own failures]") end
  sqlite_it("reads a board it may not write; a command that writes says why it cannot", function()
    local ex = H.example("notes")
    assert.equal(0, H.orket("run NOTES --json", { cwd = ex }).status)
    -- the store's folder becomes unwritable for the user running the commands: as root
    -- (who may write anything) they run as nobody; otherwise the modes are taken away
    local wrap, bin
    if io.popen("id -u"):read("l") == "0" then
      wrap = "setpriv --reuid=65534 --regid=65534 --clear-groups"
      os.execute("chmod 755 " .. H.quote(ex)) -- the temp dir itself, made 0700
      -- the store is its owner's alone (0600, in a 0700 .orket/): shared for reading here
      os.execute("chmod -R a+rX " .. H.quote(ex .. "/.orket"))
      -- nobody may not reach the build (a clone under /root is 0700): an installed copy
      -- of its own, laid out as `make install` does (bin/, share/orket/)
      local prefix = H.tmpdir()
      local copy = string.format("chmod 755 %s && mkdir -p %s/bin %s/share/orket && cp %s %s/bin/ && cp -R",
        H.quote(prefix), H.quote(prefix), H.quote(prefix), H.quote(H.BIN), H.quote(prefix))
      for _, d in ipairs { "lua", "roles", "tools", "policies", "templates" } do copy = copy .. " " .. H.quote(H.ROOT .. "/" .. d) end
      assert(os.execute(copy .. " " .. H.quote(prefix .. "/share/orket/") .. " && chmod -R a+rX " .. H.quote(prefix)))
      bin = prefix .. "/bin/orket"
    else
      os.execute("chmod a-w " .. H.quote(ex .. "/.orket") .. " " .. H.quote(ex .. "/.orket/orket.db"))
    end
    local function files()
      local p = io.popen("ls -A " .. H.quote(ex .. "/.orket"))
      local out = p:read("a")
      p:close()
      return out
    end
    local before = files()
    assert.matches("NOTES%-4%s+done", H.orket("board", { cwd = ex, wrap = wrap, bin = bin }).stdout)
    assert.matches('"status":"done"', H.orket("card NOTES-2 --json", { cwd = ex, wrap = wrap, bin = bin }).stdout, 1, true)
    -- orket's own moves (the epic rolled up) have no roles: an empty list, not {}
    local epic = H.orket("card NOTES --json", { cwd = ex, wrap = wrap, bin = bin }).stdout
    assert.matches('"roles":[]', epic, 1, true)
    assert.is_nil(epic:find('"roles":{}', 1, true))
    assert.matches("1%s+done%s+NOTES", H.orket("runs", { cwd = ex, wrap = wrap, bin = bin }).stdout)
    local log = H.orket("log 1", { cwd = ex, wrap = wrap, bin = bin })
    assert.equal(0, log.status, log.stderr)
    assert.matches("== NOTES%-1 turn 1", log.stdout)
    assert.equal(before, files()) -- nothing written beside the store (no -wal, no -shm)
    for _, c in ipairs { "retry NOTES-1", "import", "answer NOTES-1 yes" } do
      local r = H.orket(c, { cwd = ex, wrap = wrap, bin = bin })
      assert.equal(1, r.status, c)
      assert.matches("orket: store: .orket/orket.db cannot be written (a read-only file system, or no write "
        .. "permission on it or on .orket); this command changes the board", r.stderr, 1, true)
    end
    if not wrap then os.execute("chmod u+w " .. H.quote(ex .. "/.orket") .. " " .. H.quote(ex .. "/.orket/orket.db")) end
  end)

  sqlite_it("reports a damaged store as a plain error naming the file, in every command", function()
    local ex = H.example("notes")
    -- overwrite pages 5 to 12 of the database (the cards' pages among them)
    local f = assert(io.open(ex .. "/.orket/orket.db", "r+b"))
    f:seek("set", 4096 * 5)
    f:write(string.rep("\255\0\127garbage", 4096 * 8 // 10))
    f:close()
    for _, c in ipairs { "board", "card NOTES-1", "import", "run NOTES --json", "retry NOTES-1" } do
      local r = H.orket(c, { cwd = ex })
      assert.equal(1, r.status, c .. ": " .. r.stderr)
      assert.equal("orket: .orket/orket.db: database disk image is malformed\n", r.stderr, c)
    end
    local r = H.orket("board -C " .. H.quote(ex), { cwd = H.tmpdir() })
    assert.equal(1, r.status)
    assert.equal("orket: " .. ex .. "/.orket/orket.db: database disk image is malformed\n", r.stderr)
  end)

  -- log and resume read one run: a store that cannot be read is not "no run N"
  sqlite_it("reports a damaged store as damaged, not as a run that does not exist, in log and resume", function()
    local ex = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = ex }).status)
    -- the runs table's pages overwritten: the store opens, a read of a run fails
    local db = assert(require("orket.project").open_store(ex, false))
    local root = assert(db:row("SELECT rootpage FROM sqlite_master WHERE name = 'runs'")).rootpage
    local page = assert(db:row("PRAGMA page_size")).page_size
    db:close()
    local f = assert(io.open(ex .. "/.orket/orket.db", "r+b"))
    f:seek("set", (root - 1) * page)
    f:write(string.rep("\255\0\127garbage", page // 10))
    f:close()
    for _, c in ipairs { "log 1", "log", "log 1 --json", "resume 1", "resume", "runs" } do
      local r = H.orket(c, { cwd = ex })
      assert.equal(1, r.status, c .. ": " .. r.stderr)
      assert.equal("orket: .orket/orket.db: database disk image is malformed\n", r.stderr, c)
    end
  end)

  -- a read the store refuses without its file being at fault (a table gone; on PostgreSQL a
  -- server that went away) is said in one line too: not a traceback, not "no run N"
  sqlite_it("reports a store's refused read in one line in log and resume", function()
    local ex = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = ex }).status)
    local db = assert(require("orket.project").open_store(ex, false))
    assert(db:exec("ALTER TABLE runs RENAME TO runs_gone"))
    db:close()
    for _, c in ipairs { "log 1", "resume 1" } do
      local r = H.orket(c, { cwd = ex })
      assert.equal(1, r.status, c .. ": " .. r.stderr)
      assert.matches("^orket: [^\n]*no such table: runs\n$", r.stderr, nil, false)
    end
  end)

  it("says so when .orket is a file, not a directory", function()
    local ex = example()
    H.write(ex .. "/.orket", "")
    for _, c in ipairs { "board", "import", "runs" } do
      local r = H.orket(c, { cwd = ex })
      assert.equal(1, r.status, c)
      assert.equal("orket: .orket is not a directory (the board lives in .orket/orket.db); move the file away\n",
        r.stderr, c)
    end
  end)

  it("explains errors and leaves nothing behind", function()
    local dir = H.tmpdir()
    local r = H.orket("board", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: no board in . (.orket/orket.db not found); no orket.lua here either: "
      .. "'orket init' creates a project\n", r.stderr)
    H.write(dir .. "/orket.lua", 'name = "x"\n')
    r = H.orket("board", { cwd = dir })
    assert.equal("orket: no board in . (.orket/orket.db not found); run 'orket import' first\n", r.stderr)
    os.remove(dir .. "/orket.lua")
    r = H.orket("import", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no epics/ folder", r.stderr)
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/epics/a.json", [[{"id":"A","issues":[{"id":"A-1","summary":"x","depends_on":["API-9"]}]}]])
    r = H.orket("import", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal('orket: epics/a.json:1: issues[0].depends_on[0]: unknown card "API-9"\n', r.stderr)
    assert.is_nil(H.read(dir .. "/.orket/orket.db"))
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket")) -- nor the folder made for it
    -- two ids differing only in case, refused with the board: nothing left either
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[\n{"id":"API-1","summary":"one"},\n{"id":"api-1","summary":"two"}]}')
    r = H.orket("import", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('^orket: epics/a.json:3: issues%[1%]: card id "api%-1" differs only in case from "API%-1"', r.stderr)
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket"))
    local ex = example()
    H.orket("import", { cwd = ex })
    r = H.orket("card NOPE", { cwd = ex })
    assert.equal(1, r.status)
    assert.equal('orket: board: no card "NOPE"\n', r.stderr)
    assert.equal(2, H.orket("card", { cwd = ex }).status)
    assert.equal(2, H.orket("board --bogus", { cwd = ex }).status)
  end)
end)
