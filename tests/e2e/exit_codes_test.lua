-- What a script reads of a run that did not start, without parsing English: its exit status
-- tells busy (another run works the project: 75, EX_TEMPFAIL, the same command later may
-- pass) and a target that names nothing (2, bad input) from a failure (1), and with --json
-- (the default off a terminal) one line on stdout says it, {"type":"error","code":...,
-- "message":...,"next":...,"exit":N}. Before, all of these were 1 with nothing on stdout.
-- A closed stdout (>&-) is refused before a run starts, where a run stopped at its first
-- failed write ended done or interrupted by how fast it was.
local H = require "tests.helpers"
local cjson = require "cjson"

-- r's stdout: its lines decoded
local function lines(r)
  local out = {}
  for l in (r.stdout or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(l) end
  return out
end

-- r refused with status and code: one JSON line on stdout, the message on stderr too
local function refused(r, status, code)
  assert.equal(status, r.status, r.stderr)
  local out = lines(r)
  assert.equal(1, #out, r.stdout)
  local ev = out[1]
  assert.equal("error", ev.type)
  assert.equal(code, ev.code)
  assert.equal(status, ev.exit)
  assert.equal("orket: " .. ev.message .. "\n", r.stderr)
  return ev
end

describe("a run that does not start", function()
  after_each(H.cleanup)

  it("says busy with 75 while another run works the project", function()
    local dir = H.example("notes")
    local pid, stop = H.hold_lock(dir)
    finally(function() if H.alive(pid) then stop() end end)
    local ev = refused(H.orket("run NOTES --json", { cwd = dir }), 75, "ELOCKED")
    assert.matches("another orket run is working on this project (process " .. pid .. ")", ev.message, 1, true)
    assert.equal("string", type(ev.next)) -- (null when there is no command: cjson.null is truthy)
    -- every command that changes cards says busy alike (they said 1, as for a failure)
    local file = H.tmpdir() .. "/b.db"
    stop()
    assert.equal(0, H.orket("backup " .. H.quote(file), { cwd = dir }).status)
    pid, stop = H.hold_lock(dir)
    for _, words in ipairs { "retry NOTES-1", 'cancel NOTES-1 "not now"', "restore " .. H.quote(file) } do
      local r = H.orket(words, { cwd = dir })
      assert.equal(75, r.status, words .. ": " .. r.stderr)
      assert.matches("another orket run is working on this project (process " .. pid .. ")", r.stderr, 1, true)
    end
    stop()
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
  end)

  it("says a target that names nothing with 2, and a resume of nothing with 1", function()
    local dir = H.example("notes")
    local ev = refused(H.orket("run NOPE", { cwd = dir }), 2, "ENOENT")
    assert.equal([[no card "NOPE" (see 'orket board')]], ev.message)
    assert.equal("orket board", ev.next)
    ev = refused(H.orket("resume", { cwd = dir }), 1, "ENOENT")
    assert.equal("orket run EPIC", ev.next)
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
    ev = refused(H.orket("resume 9 --json", { cwd = dir }), 2, "ENOENT")
    assert.equal("no run 9 (see 'orket runs')", ev.message)
    refused(H.orket("resume", { cwd = dir }), 1, "EALREADY")
    ev = refused(H.orket("resume 1", { cwd = dir }), 1, "EALREADY")
    assert.equal("run 1 is done; nothing to resume", ev.message)
    -- from another folder, the next command names the project
    ev = refused(H.orket("run NOPE -C " .. H.quote(dir), {}), 2, "ENOENT")
    assert.equal("orket board -C " .. dir, ev.next)
  end)

  it("says a resume is needed with 1 and the resume that goes on", function()
    local dir = H.example("notes")
    -- killed inside a turn: a new run would redo its half-done work
    assert.equal(137, H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = "after_tool:1" } }).status)
    local ev = refused(H.orket("run NOTES", { cwd = dir }), 1, "EUNFINISHED")
    assert.matches("did not finish (it was killed): continue it with 'orket resume 1'", ev.message, 1, true)
    assert.equal("orket resume 1", ev.next)
    local r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  it("keeps 1 for a run whose card failed, said by its run_end", function()
    local dir = H.example("notes", { append = "\nbudgets = { tokens_per_card = 100 }\n" })
    local r = H.orket("run NOTES-1", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    local out = lines(r)
    assert.equal("run_end", out[#out].type)
    assert.equal("failed", out[#out].status)
    for _, ev in ipairs(out) do assert.not_equal("error", ev.type) end
  end)

  it("is refused with a closed stdout, whatever the run's speed, and starts nothing", function()
    local dir = H.example("notes")
    -- (in braces: H.sh's 2>&1 then sends the group's stderr, not a copy of the closed fd)
    local rc, out = H.sh("cd " .. H.quote(dir) .. " && { " .. H.quote(H.BIN) .. " run NOTES >&-; }")
    assert.equal(1, rc)
    assert.matches("^orket: cannot write the output: stdout is closed %(or open only for reading%)", out)
    rc, out = H.sh("cd " .. H.quote(dir) .. " && { " .. H.quote(H.BIN) .. " resume >&-; }")
    assert.equal(1, rc)
    assert.matches("no run was started", out, 1, true)
    local runs = H.orket("runs --json", { cwd = dir })
    assert.equal(0, runs.status)
    assert.same({}, cjson.decode(runs.stdout).runs)
  end)
end)
