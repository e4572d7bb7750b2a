-- orket restore of a backup older than a run ("take back a bad run"): workspace/ is not in a
-- backup, so the card branch the dropped run left unmerged (a card it left blocked) still
-- held its commit. The card's next run took that commit for its own turn's ("made before a
-- restart": the same run id and turn key) and merged the dropped run's file into main. Now
-- the restore sets such a branch aside under a ref it names, and the card's directory with
-- it; on the backend the suite runs on (SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local backends = require "tests.backends"
local gc = require "tests.gitcards"

local ok = H.ok

-- the bad run's model: START-1's coder writes stale.txt, then nothing more (the card ends
-- blocked by its turn budget, its branch holding the commit of turn 1 of run 1)
local BAD = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "START-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "stale.txt", content = "STALE\n" }) } } },
}, default = { content = "Nothing more to do." } }
]]

describe("orket restore of a backup older than a run that left a card's branch unmerged", function()
  after_each(function() H.cleanup() end)

  it("sets the branch and the card's directory aside, so that the card's next run starts from main", function()
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local file = H.tmpdir() .. "/before" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local good = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", BAD)
    local r = H.orket("run START --json", { cwd = dir })
    assert.matches('"status":"failed"', r.stdout, 1, true)
    local stale = gc.git(ws, "rev-parse orket/START-1"):match("^(%x+)\n$")
    assert.is_string(stale)
    assert.equal("START-1: turn 1 (work, run 1)\n", gc.git(ws, "log -1 --format=%s orket/START-1"))
    assert.is_string(H.read(dir .. "/.orket/worktrees/START-1/stale.txt"))

    H.write(dir .. "/script.lua", good)
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    local ref = r.stdout:match("orket/START%-1 held commits the restored store does not know %(the newest "
      .. stale:sub(1, 12) .. ", START%-1: turn 1 %(work, run 1%)%), and none it knows: set aside as "
      .. "(refs/orket/restored/[%w-]+/START%-1), so that the card's next run starts from main %(git %-C workspace branch NAME refs/orket/restored/[%w-]+/"
      .. "START%-1 takes it back%)\n")
    assert.is_string(ref, r.stdout)
    local stamp = ref:match("^refs/orket/restored/([%w-]+)/")
    assert.matches("START-1's directory .orket/worktrees/START-1, of work the restored store does not know, was moved "
      .. "to .orket/lost/restore-" .. stamp .. "/worktrees/START-1\n", r.stdout, 1, true)
    -- reachable under the ref named, the branch gone, the files kept aside
    assert.equal(stale .. "\n", gc.git(ws, "rev-parse " .. ref))
    assert.equal("", gc.git(ws, "branch --list orket/START-1"))
    assert.is_nil(H.read(dir .. "/.orket/worktrees/START-1/stale.txt"))
    assert.equal("STALE\n", H.read(dir .. "/.orket/lost/restore-" .. stamp .. "/worktrees/START-1/stale.txt"))

    -- the card's next run does its own work, and the dropped run's file never reaches main
    r = ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    assert.matches('"status":"done"', r.stdout, 1, true)
    assert.equal("README.md\nhello.txt\n", gc.git(ws, "ls-tree --name-only main"))
    assert.not_matches(stale, gc.git(ws, "log --format=%H main"), 1, true)
    local log = ok(H.orket("log 2", { cwd = dir }), "log").stdout
    assert.not_matches("made before a restart", log, 1, true)
    -- a person gets it back as git says
    gc.git(ws, "branch kept " .. ref)
    assert.equal("STALE\n", gc.git(ws, "show kept:stale.txt"))
  end)

  -- START-2's work turn writes stale2.txt, then waits on the model until the run is killed:
  -- the file stays uncommitted in its directory, the branch holding no commit of it
  local KILLED = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "START-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "hello.txt", content = "hello\n" }) } } },
  { role = "coder", card = "START-2", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "stale2.txt", content = "STALE\n" }) } } },
  { card = "START-2", match = '"path"', reply = { delay_ms = 60000, content = "..." } },
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

  it("moves aside the directory of a card the dropped run worked on, with its uncommitted files", function()
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local file = H.tmpdir() .. "/before" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local good = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", KILLED)
    local tmp = H.tmpdir()
    os.execute(string.format("cd %s && { %s run START --json >%s/run.out 2>&1 & echo $! >%s/run.pid; wait $!; "
      .. "echo $? >%s/run.rc; } &", H.quote(dir), H.quote(H.BIN), H.quote(tmp), H.quote(tmp), H.quote(tmp)))
    finally(function() H.end_started(tmp, "run.pid", "run.rc", true) end)
    H.wait_for(function() return H.read(dir .. "/.orket/worktrees/START-2/stale2.txt") end, "START-2's write", 3000)
    H.end_started(tmp, "run.pid", "run.rc", true)
    assert.equal("", gc.git(ws, "log --format=%s main..orket/START-2"))

    H.write(dir .. "/script.lua", good)
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    local stamp = r.stdout:match("START%-2's directory %.orket/worktrees/START%-2, of work the restored store does not "
      .. "know, was moved to %.orket/lost/restore%-([%w-]+)/worktrees/START%-2\n")
    assert.is_string(stamp, r.stdout)
    assert.not_matches("orket/START-2 held", r.stdout, 1, true)
    assert.equal("STALE\n", H.read(dir .. "/.orket/lost/restore-" .. stamp .. "/worktrees/START-2/stale2.txt"))
    ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    assert.equal("README.md\nhello.txt\n", gc.git(ws, "ls-tree --name-only main"))
  end)

  it("leaves a branch alone whose commits the restored store knows", function()
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local good = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", BAD)
    H.orket("run START --json", { cwd = dir })
    local tip = gc.git(ws, "rev-parse orket/START-1")
    -- a backup of the store as it is: its journal records the branch's commit
    local file = H.tmpdir() .. "/now" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    H.write(dir .. "/script.lua", good)
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.not_matches("set aside", r.stdout, 1, true)
    assert.not_matches("was moved to", r.stdout, 1, true)
    assert.equal(tip, gc.git(ws, "rev-parse orket/START-1"))
    assert.is_string(H.read(dir .. "/.orket/worktrees/START-1/stale.txt"))
  end)
  -- the branch held the backup's own commit (turn 1 of run 1, journaled) under the dropped
  -- run's: only the dropped one goes, the known one stays, and the card finishes with it
  it("keeps the commits the restored store knows on the branch, setting aside only those after them", function()
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local good = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", (BAD:gsub("stale%.txt", "known.txt"):gsub("STALE", "KNOWN")))
    H.orket("run START --json", { cwd = dir })
    local known = gc.git(ws, "rev-parse orket/START-1"):match("^(%x+)\n$")
    local file = H.tmpdir() .. "/known" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket("retry START-1", { cwd = dir }), "retry")
    H.write(dir .. "/script.lua", (BAD:gsub("stale%.txt", "dropped.txt")))
    H.orket("run START --json", { cwd = dir })
    local dropped = gc.git(ws, "rev-parse orket/START-1"):match("^(%x+)\n$")
    assert.equal("START-1: turn 1 (work, run 2)\n", gc.git(ws, "log -1 --format=%s orket/START-1"))
    assert.equal(known .. "\n", gc.git(ws, "rev-parse orket/START-1^"))

    H.write(dir .. "/script.lua", good)
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    local ref = r.stdout:match("orket/START%-1 held 1 turn commit the restored store does not know %(the newest "
      .. dropped:sub(1, 12) .. ", START%-1: turn 1 %(work, run 2%)%): its tip " .. dropped:sub(1, 12) .. " was set "
      .. "aside as (refs/orket/restored/[%w-]+/START%-1) %(git %-C workspace branch NAME [%w/-]+ takes it back%), "
      .. "and the branch moved back to " .. known:sub(1, 12) .. " %(START%-1: turn 1 %(work, run 1%)%), the newest "
      .. "of its commits the restored store knows, which stays on it with those before it\n")
    assert.is_string(ref, r.stdout)
    assert.equal(dropped .. "\n", gc.git(ws, "rev-parse " .. ref))
    assert.equal(known .. "\n", gc.git(ws, "rev-parse orket/START-1"))
    assert.matches("START-1's directory .orket/worktrees/START-1, of work the restored store does not know, was moved",
      r.stdout, 1, true)

    -- the card goes on from its known work: known.txt reaches main, dropped.txt never does
    ok(H.orket("retry START-1", { cwd = dir }), "retry after the restore")
    r = ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    assert.matches('"status":"done"', r.stdout, 1, true)
    assert.equal("KNOWN\n", gc.git(ws, "show main:known.txt"))
    assert.equal("README.md\nhello.txt\nknown.txt\n", gc.git(ws, "ls-tree --name-only main"))
  end)
  -- What a restore needs of the store it replaces (the cards its dropped runs worked on, its
  -- highest run id) is read before the copy: a rerun after a kill read the restored store
  -- instead, and a damaged store none at all. A card whose directory is gone (parked, as a
  -- canceled card's is) then kept the dropped run's commit on its branch.
  local function bad_run_without_dir(dir)
    local good = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", BAD)
    H.orket("run START --json", { cwd = dir })
    H.write(dir .. "/script.lua", good)
    gc.sh("rm -rf " .. H.quote(dir .. "/.orket/worktrees/START-1") .. " " .. H.quote(dir .. "/.orket/worktree-state/START-1"))
    return gc.git(dir .. "/workspace", "rev-parse orket/START-1"):match("^(%x+)\n$")
  end

  it("sets the branch aside when the restore is run again after a kill after its copy", function()
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local file = H.tmpdir() .. "/before" .. (backends.name() == "pg" and ".export" or ".db")
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local stale = assert(bad_run_without_dir(dir))
    local r = H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir,
      env = { ORKET_FAULT = "after_restore_copy:1" } })
    assert.equal(137, r.status, r.stderr)
    assert.equal(stale .. "\n", gc.git(ws, "rev-parse orket/START-1"))
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore again")
    assert.matches("orket/START-1 held commits the restored store does not know (the newest " .. stale:sub(1, 12),
      r.stdout, 1, true)
    assert.equal("", gc.git(ws, "branch --list orket/START-1"))
    assert.is_nil(io.open(dir .. "/.orket/restore.pending"))
    assert.is_nil(io.open(dir .. "/.orket/restore.pending-runs"))
    r = ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    assert.matches('"status":"done"', r.stdout, 1, true)
    assert.equal("README.md\nhello.txt\n", gc.git(ws, "ls-tree --name-only main"))
  end)

  it("sets the branch aside and keeps its run ids when the store replaced is damaged", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = backends.starter()
    local ws = dir .. "/workspace"
    local file = H.tmpdir() .. "/before.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local stale = assert(bad_run_without_dir(dir))
    local f = assert(io.open(dir .. "/.orket/orket.db", "r+b"))
    f:write("garbage, not a database")
    f:close()
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("kept as", r.stderr, 1, true)
    assert.matches("orket/START-1 held commits the restored store does not know (the newest " .. stale:sub(1, 12),
      r.stdout, 1, true)
    assert.matches("run id 1 was given out by the store it replaced", r.stdout, 1, true)
    assert.equal("", gc.git(ws, "branch --list orket/START-1"))
    r = ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    assert.matches('"run_id":2', r.stdout, 1, true)
    assert.not_matches("made before a restart", r.stdout, 1, true)
    assert.equal("README.md\nhello.txt\n", gc.git(ws, "ls-tree --name-only main"))
  end)
end)
