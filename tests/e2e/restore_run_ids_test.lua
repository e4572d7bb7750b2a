-- orket restore of an older backup never has a run id given out again (docs/store.md): the
-- restored store knew only the runs up to the backup, and a new run got a dropped run's id,
-- whose commits a card's branch could still hold under the same turn keys. Each id the
-- replaced store gave out is kept by a row of its own, stopped, saying so; on the backend
-- the suite runs on (SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local backends = require "tests.backends"
local cjson = require "cjson"

local ok = H.ok

-- the run_id of a run's run_end line (orket run --json)
local function run_id(r)
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "run_end" then return ev.run_id end
  end
  error("no run_end in " .. r.stdout)
end

describe("orket restore of a backup older than runs of the store", function()
  after_each(function() H.cleanup() end)

  it("keeps every run id the replaced store gave out, so that the next run gets a new one", function()
    local dir = backends.starter()
    local file = H.tmpdir() .. "/before.db"
    if backends.name() == "pg" then file = file:gsub("%.db$", ".export") end
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    assert.equal(1, run_id(ok(H.orket("run START --json", { cwd = dir }), "run 1")))
    -- a second run of the dropped store's: ids 1 and 2 given out
    assert.equal(2, run_id(ok(H.orket("run START --json", { cwd = dir }), "run 2")))
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("run ids 1 to 2 were given out by the store it replaced, and the backup does not hold those runs: "
      .. "a row each (stopped) keeps them, so that no later run gets one again\n", r.stdout, 1, true)
    -- the rows say what they are, and keep the dropped runs' targets
    local db = assert(require("orket.project").open_store(dir, false))
    local rows = db:rows("SELECT id, target, status FROM runs ORDER BY id")
    local kept = require("orket.store.runs").get(db, 2)
    db:close()
    assert.equal(2, #rows)
    for i, row in ipairs(rows) do
      assert.same({ i, "START", "stopped" }, { math.tointeger(tonumber(row.id)), row.target, row.status })
    end
    local said = assert(require("orket.store.restore_runs").kept(kept))
    assert.matches("its id was given out by the store this restore replaced", said.reason, 1, true)
    assert.matches("before%.[a-z]+$", said.file)
    -- the next run is 3, never a dropped one's id
    assert.equal(3, run_id(ok(H.orket("run START --json", { cwd = dir }), "run after the restore")))
    -- a backup of the store as it is keeps nothing: no id was given out past it
    local now = H.tmpdir() .. "/now" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(now), { cwd = dir }), "backup now")
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(now), { cwd = dir }), "restore now")
    assert.not_matches("given out by the store it replaced", r.stdout, 1, true)
  end)

  it("resumes no run whose id a restore kept: it never ran in the store", function()
    local dir = backends.starter()
    local file = H.tmpdir() .. "/before" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket("run START --json", { cwd = dir }), "run 1")
    ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    -- run 1's row is stopped and not done, yet nothing is resumed: neither the latest run nor run 1
    local r = H.orket("resume --json", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches('"code":"EALREADY"', r.stdout, 1, true)
    r = H.orket("resume 1 --json", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("run 1 never ran in this store: its id was given out by the store this restore replaced",
      r.stdout, 1, true)
    assert.equal(2, run_id(ok(H.orket("run START --json", { cwd = dir }), "run after the restore")))
  end)
  -- the rows kept are the newest ids and never done: more than resume's 20 newest not done
  -- left no room for the killed run before them ("every run is done")
  it("resumes the killed run when more than 20 kept rows are newer than it", function()
    local dir = backends.starter()
    local file = H.tmpdir() .. "/killed" .. (backends.name() == "pg" and ".export" or ".db")
    local r = H.orket("run START --json", { cwd = dir, env = { ORKET_FAULT = "before_model:1" } })
    assert.equal(137, r.status, r.stderr)
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    -- the replaced store gave ids up to 25 out (runs done here, rows of their own)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:run("INSERT INTO runs (id, target, kind, status, started_at, ended_at) VALUES (25, 'START', 'run', "
      .. "'done', " .. db.dialect.now .. ", " .. db.dialect.now .. ")"))
    db:close()
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("run ids 2 to 25 were given out", r.stdout, 1, true)
    r = ok(H.orket("resume --json", { cwd = dir }), "resume of the killed run")
    assert.equal(1, run_id(r))
    assert.equal("done", H.card_json(dir, "START-1").card.status)
  end)
end)
