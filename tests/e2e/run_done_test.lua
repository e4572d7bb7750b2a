-- orket run of a target with nothing left to work: an epic whose issues are all done, a done
-- card, a done rock. Each recorded a run that did nothing and ended done; now the command
-- says so in one line (an event with --json), exits 0 and records no run, and a server's
-- POST /v1/runs refuses it. The notes example, scripted model.
local H = require "tests.helpers"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")

local function runs(dir)
  local r = H.orket("runs --json", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return #cjson.decode(r.stdout).runs
end

-- the one line a run of a finished target prints (JSON Lines: stdout is no terminal)
local function nothing(dir, args)
  local r = H.orket(args, { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
  assert.equal(1, #lines, r.stdout)
  local ev = cjson.decode(lines[1])
  assert.equal("nothing_to_run", ev.type, r.stdout)
  return ev, r
end

describe("orket run of a finished target", function()
  after_each(H.cleanup)

  it("says the epic or card is done, exits 0 and records no run", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
    assert.equal(1, runs(dir))
    local ev = nothing(dir, "run NOTES")
    assert.equal("NOTES", ev.target)
    assert.equal("epic", ev.kind)
    assert.equal("NOTES is done (its 4 issues are done); nothing to run; to give it more work, add an issue under "
      .. "it in epics/, then run 'orket import'", ev.message)
    ev = nothing(dir, "run NOTES-1")
    assert.equal("NOTES-1 is done; nothing to run; a final card stays so: file new work as a new issue in epics/, "
      .. "then run 'orket import'", ev.message)
    assert.equal(1, runs(dir))
    -- from elsewhere, the command suggested names the project
    local parent, name = dir:match("^(.*)/([^/]+)$")
    ev = nothing(parent, "run NOTES -C " .. H.quote(name))
    assert.matches("then run 'orket import " .. name:gsub("%p", "%%%0") .. "'$", ev.message)
    assert.equal(1, runs(dir))
  end)

  it("says a done rock is done, with orket bug to give it more work", function()
    local dir = H.example("notes")
    H.write(dir .. "/epics/r.json", '{ "id": "R", "type": "rock", "name": "Notes", "epics": [ "NOTES" ] }\n')
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    assert.equal(0, H.orket("run R", { cwd = dir }).status)
    local before = runs(dir)
    local ev = nothing(dir, "run R")
    assert.equal("rock", ev.kind)
    assert.matches("^R is done %(its 4 issues are done%); nothing to run; to give it more work, file a bug with "
      .. "'orket bug R \"what goes wrong\"'", ev.message)
    assert.equal(before, runs(dir))
    -- a bug filed: the rock has work again, and a run starts on it (how it ends is the
    -- scripted model's, which has no rule for the bug)
    local bug = H.orket("bug R 'the list is empty'", { cwd = dir })
    assert.equal(0, bug.status, bug.stderr)
    local r = H.orket("run R", { cwd = dir })
    assert.matches('"target":"R","trace_id":"%x+","type":"run_start"', r.stdout)
    assert.is_nil(r.stdout:find("nothing_to_run", 1, true), r.stdout)
    assert.equal(before + 1, runs(dir))
  end)

  it("is refused by orket serve's POST /v1/runs too, which records no run", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
    local k = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local status, doc, text = H.api(s, "POST", "/v1/runs", k, { target = "NOTES" })
    assert.equal(0, s.stop())
    assert.equal(409, status, text)
    assert.equal("EALREADY", doc.error.code, text)
    assert.matches("^NOTES is done %(its 4 issues are done%); nothing to run", doc.error.message)
    assert.equal(1, runs(dir))
  end)

  it("prints the one line on a terminal", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
    H.write(dir .. "/steps", "expect nothing to run\n")
    local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s run NOTES <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("NOTES is done (its 4 issues are done); nothing to run; to give it more work", out, 1, true)
    assert.is_nil(out:find('"type"', 1, true), out)
    assert.equal(1, runs(dir))
  end)
end)
