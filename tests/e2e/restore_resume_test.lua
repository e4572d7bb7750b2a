-- A turn's changes to files stay uncommitted in .orket/worktrees/CARD until the turn ends.
-- A resume replays the open turn's recorded calls without running them; when the card's
-- directory has to be made again (a backup restored into another folder: the backup holds
-- the store, workspace/ only the commits; or the directory removed), those changes are gone.
-- The card was then finished as done and "merged" without them; now the open turn ends as
-- work_lost, said on the card, in the journal and in the run's output, and the card is worked
-- again. On the backend the suite runs on (SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local backends = require "tests.backends"
local cjson = require "cjson"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- START-2's work turn writes README.md and comments, then its next step waits DELAY ms on
-- the model (the killed run's: long enough for the test to act while the turn is open)
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
local function work(card, path)
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = path, content = path .. "\n" }),
    call("add_issue_comment", { body = "Wrote " .. path .. "." }) } } }
end
return { rules = {
  work("START-1", "hello.txt"), work("START-2", "README.md"),
  { card = "START-2", match = '"author"', reply = { delay_ms = DELAY, tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

-- The starter project with SCRIPT, its run started in the background and killed -9 once
-- START-2's open turn has recorded its write_file and comment; act(dir, tmp) runs while the
-- turn is open, before the kill. -> dir
local function killed_mid_turn(act)
  local dir = backends.starter()
  H.write(dir .. "/script.lua", (SCRIPT:gsub("DELAY", "60000")))
  local tmp = H.tmpdir()
  os.execute(string.format("cd %s && { %s run START --json >%s/run.out 2>&1 & echo $! >%s/run.pid; wait $!; "
    .. "echo $? >%s/run.rc; } &", H.quote(dir), H.quote(H.BIN), H.quote(tmp), H.quote(tmp), H.quote(tmp)))
  finally(function() H.end_started(tmp, "run.pid", "run.rc", true) end)
  H.wait_for(function()
    return (H.read(tmp .. "/run.out") or ""):find('"card":"START%-2"[^\n]*"tool":"add_issue_comment"')
  end, "START-2's comment", 3000)
  act(dir, tmp)
  H.end_started(tmp, "run.pid", "run.rc", true)
  H.write(dir .. "/script.lua", (SCRIPT:gsub("DELAY", "0")))
  return dir
end

-- The resumed run in dir: START-2 done with README.md in main, its lost turn said
local function resumed_keeps_work(dir)
  local r = ok(H.orket("resume --json", { cwd = dir }), "resume")
  local doc = H.card_json(dir, "START-2")
  assert.equal("done", doc.card.status)
  assert.equal("README.md\n", H.read(dir .. "/workspace/README.md"), "README.md is in main")
  -- the run's output names the card and the directory
  local said
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "git" and ev.action == "work_lost" then said = ev end
  end
  assert.is_table(said, r.stdout)
  assert.equal("START-2", said.card)
  assert.equal(".orket/worktrees/START-2", said.dir)
  assert.same({ "write_file" }, said.tools)
  assert.matches("START-2: .orket/worktrees/START-2 was made again without turn 1's uncommitted changes (write_file)",
    said.message, 1, true)
  -- and so does the card, for people and for the next turn's model
  local told
  for _, c in ipairs(doc.comments) do
    if c.author == "orket" and c.body:find("directory .orket/worktrees/START-2 was not on disk", 1, true) then told = true end
  end
  assert.is_true(told)
  -- turn 1 ended work_lost; turn 2 did the work again
  local log = ok(H.orket("log 1 --json", { cwd = dir }), "log").stdout
  assert.matches('"outcome":"work_lost"', log, 1, true)
end

describe("a resume whose card directory was made again", function()
  after_each(H.cleanup)

  it("keeps the open turn's work after a backup taken mid-turn is restored into another folder", function()
    local backup, ws
    local dir = killed_mid_turn(function(d, tmp)
      backup, ws = tmp .. "/live.backup", tmp .. "/ws-at-backup"
      ok(H.orket("backup " .. H.quote(backup), { cwd = d }), "backup")
      -- workspace/ backed up as files at the same moment, as deploying.md says
      assert(os.execute("cp -a " .. H.quote(d .. "/workspace") .. " " .. H.quote(ws)))
    end)
    -- the original project, as the run left it, is not used again
    local r = H.tmpdir() .. "/r"
    assert(os.execute(string.format("mkdir -p %s && cp -a %s %s %s %s/ && cp -a %s %s/workspace", H.quote(r),
      H.quote(dir .. "/orket.lua"), H.quote(dir .. "/script.lua"), H.quote(dir .. "/epics"), H.quote(r), H.quote(ws),
      H.quote(r))))
    backends.project(r) -- (PostgreSQL: a fresh database of its own)
    ok(H.orket("restore " .. H.quote(backup), { cwd = r }), "restore")
    assert.is_nil(H.read(r .. "/workspace/README.md"))
    resumed_keeps_work(r)
  end)

  it("keeps the open turn's work when the card's directory was removed before the resume", function()
    local dir = killed_mid_turn(function() end)
    assert.equal("README.md\n", H.read(dir .. "/.orket/worktrees/START-2/README.md"))
    assert(os.execute("rm -rf " .. H.quote(dir .. "/.orket/worktrees/START-2")))
    resumed_keeps_work(dir)
  end)

  -- killed as write_file's effect was to start: its intent has no result, so the resume
  -- recovers it in the directory as it is (the tool writes it again), and the turn goes on
  it("recovers a call whose effect was under way, with no turn lost", function()
    local dir = backends.starter()
    H.write(dir .. "/script.lua", (SCRIPT:gsub("DELAY", "0")))
    -- START-2 starts once START-1 is done: its write_file is the second effect
    local r = H.orket("run START --json", { cwd = dir, env = { ORKET_FAULT = "before_effect:2" } })
    assert.equal(137, r.status, r.stderr)
    assert(os.execute("rm -rf " .. H.quote(dir .. "/.orket/worktrees/START-2")))
    r = ok(H.orket("resume --json", { cwd = dir }), "resume")
    assert.is_nil(r.stdout:find('"work_lost"', 1, true), r.stdout)
    assert.equal("done", H.card_json(dir, "START-2").card.status)
    assert.equal("README.md\n", H.read(dir .. "/workspace/README.md"))
  end)
end)
