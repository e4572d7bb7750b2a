-- A run killed half way through a turn, whose card an import then moves to another epic:
-- the new epic's run once passed the guard against redoing that turn (it compared the
-- run's target with the board as it was after the move) and redid it, its tool calls run
-- twice; the resume of the killed run passed the moved card over and ended `done`, its
-- turn left open. Now the new epic's run is refused, and the resume finishes the turn from
-- the journal (nothing recorded asked or run again), then leaves the card to its new epic.
local H = require "tests.helpers"
local backends = require "tests.backends"
local cjson = require "cjson"

-- Any coder writes out.txt and says so (step 1), then hands the card in (step 2)
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return {
  rules = {
    { role = "coder", match = "^Issue ", reply = { tool_calls = {
      call("write_file", { path = "out.txt", content = "out\n" }),
      call("add_issue_comment", { body = "Wrote out.txt." }) } } },
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
      call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]]

local X1 = '{"id":"X-1","summary":"x one","seat":"senior_developer"}'

local function epics(dir, x, y)
  H.write(dir .. "/epics/x.json", string.format('{"id":"X","name":"X","issues":[%s]}', x))
  H.write(dir .. "/epics/y.json", string.format('{"id":"Y","name":"Y","issues":[%s]}', y))
end

-- the project, X-1's first turn killed after its first step (the file written, the comment
-- made) as it asked the model for the second, then X-1 moved from X to Y by an import.
-- worker: the run is left to the workers, and the worker working it is killed.
local function killed_and_moved(worker)
  local root = H.tmpdir()
  assert.equal(0, H.orket("init p --yes", { cwd = root }).status)
  local dir = backends.project(root .. "/p")
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/script.lua", SCRIPT)
  epics(dir, X1, "")
  local r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  r = H.orket(worker and "worker --start X --drain --lease-ms 300" or "run X",
    { cwd = dir, env = { ORKET_FAULT = "before_model:2" } })
  assert.equal(137, r.status, r.stdout .. r.stderr)
  epics(dir, "", X1)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir, r
end

local function comments(dir)
  local card = cjson.decode(H.orket("card X-1 --json", { cwd = dir }).stdout)
  local n = 0
  for _, c in ipairs(card.comments or {}) do
    if c.body == "Wrote out.txt." then n = n + 1 end
  end
  return n, card.card.status
end

local function run_end(stdout)
  local last
  for line in stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev and ev.type == "run_end" then last = ev end
  end
  return assert(last, stdout)
end

describe("a killed run's half-done turn on a card an import moved", function()
  after_each(H.cleanup)

  it("keeps a run of the card's new epic from redoing it", function()
    local dir, imported = killed_and_moved()
    -- the import says what it moved a half-done turn away from
    assert.matches("warning: X-1 moved from X to Y with a turn of run 1 (X) on it not finished: that run finishes "
      .. "the turn (a run going now, or 'orket resume 1' of one killed or stopped), then leaves X-1 to Y; until then "
      .. "a run of Y is refused", imported.stderr, 1, true)
    local r = H.orket("run Y", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("run 1 (X) did not finish (it was killed)", r.stderr, 1, true)
    assert.matches("X-1", r.stderr, 1, true)
    assert.matches("now under Y", r.stderr, 1, true)
    assert.matches("orket resume 1", r.stderr, 1, true)
    -- so does a run of the card itself
    r = H.orket("run X-1", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("orket resume 1", r.stderr, 1, true)
    assert.same({ 1, "in_progress" }, { comments(dir) })
  end)

  it("is finished by the resume from the journal, which then leaves the card to its new epic", function()
    local dir = killed_and_moved()
    local r = H.orket("resume 1", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local ev = run_end(r.stdout)
    assert.equal("done", ev.status)
    assert.equal("X has no issues left: an import moved X-1 out of X during the run (now under Y: 'orket run Y' "
      .. "works it); the half-done turn of X-1 was finished first", ev.reason)
    -- the turn's recorded step was replayed: its tool calls not run again, its model not asked
    assert.same({ 1, "code_review" }, { comments(dir) })
    local log = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    local begun, ended, steps = 0, 0, 0
    for _, e in ipairs(log.events) do
      if e.card == "X-1" then
        if e.kind == "turn_begin" then begun = begun + 1 end
        if e.kind == "turn_end" then ended = ended + 1 end
        if e.kind == "turn" then steps = steps + 1 end
      end
    end
    assert.same({ 1, 1, 2 }, { begun, ended, steps })
    -- the new epic's run takes it from there: reviewed, not worked again
    r = H.orket("run Y", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ 1, "done" }, { comments(dir) })
  end)

  -- the turn cannot be carried on (its seat is gone from the team): the run is left unfinished,
  -- so the guard still holds, and says why and what to do
  it("leaves the run interrupted when it cannot be carried on, the new epic's run still refused", function()
    local dir = killed_and_moved()
    local settings = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (settings:gsub("senior_developer = {", "developer = {", 1)))
    local r = H.orket("resume 1", { cwd = dir })
    assert.equal(130, r.status, r.stdout .. r.stderr)
    local ev = run_end(r.stdout)
    assert.equal("interrupted", ev.status)
    assert.matches("the run is left interrupted: the half-done turn of X-1, which an import moved out of X, could "
      .. "not be finished here (its line below says why); 'orket resume 1' finishes it once that is put right, and "
      .. "until then a run that holds X-1 is refused, as it would redo that turn", ev.reason, 1, true)
    assert.matches("X-1 (in_progress): its work turn 1, left half done when the run stopped, is not finished (an "
      .. "import moved it out of X; it is under Y now): skipped in in_progress: no seat in the team can work it "
      .. "(seat senior_developer); next: fix that, then orket resume 1", ev.stuck_note, 1, true)
    r = H.orket("run Y", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("run 1 (X) did not finish (interrupted) and left a turn on X-1 half done", r.stderr, 1, true)
    -- put right, the resume finishes it
    H.write(dir .. "/orket.lua", settings)
    r = H.orket("resume 1", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("done", run_end(r.stdout).status)
    assert.same({ 1, "code_review" }, { comments(dir) })
  end)

  it("is finished by a worker that takes the run over, which then leaves the card to its new epic", function()
    local dir = killed_and_moved(true)
    orket.sleep(400) -- (the killed worker's lease on X-1 lapses)
    local r = H.orket("worker --drain --lease-ms 300", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("X has no issues left: an import moved X-1 out of X during the run (now under Y: 'orket run Y' "
      .. "works it); the half-done turn of X-1 was finished first", run_end(r.stdout).reason)
    assert.same({ 1, "code_review" }, { comments(dir) })
    -- its lease went with the turn: a run of Y reviews it
    r = H.orket("run Y", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ 1, "done" }, { comments(dir) })
  end)
end)
