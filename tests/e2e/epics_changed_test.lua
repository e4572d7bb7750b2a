-- End-to-end: `orket run` and `orket resume` warn, without importing or failing, when files
-- in epics/ changed since the last `orket import`: a JSON Lines event with --json, one line
-- on stderr on a terminal. The notes example, scripted model.
local H = require "tests.helpers"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")

local function project() return H.example("notes") end

-- The run's epics_changed events.
local function warnings(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "epics_changed" then out[#out + 1] = ev end
  end
  return out
end

local function edit(dir)
  local path = dir .. "/epics/notes.json"
  H.write(path, (H.read(path):gsub("Store and list notes%.", "Store, list and search notes.")))
  H.write(dir .. "/epics/extra.json", '{ "id": "EXTRA", "name": "Extra", "issues": [ { "summary": "more" } ] }\n')
end

describe("orket run after epics/ changed", function()
  after_each(H.cleanup)

  it("runs the board as imported and names the changed files in one JSON event", function()
    local dir = project()
    -- touched but not changed: no warning
    os.execute("touch " .. H.quote(dir .. "/epics/notes.json"))
    edit(dir)
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    local w = warnings(r.stdout)
    assert.equal(1, #w)
    assert.same({ "epics/extra.json", "epics/notes.json" }, w[1].files)
    assert.equal(1, w[1].run_id)
    assert.matches("^epics/extra%.json, epics/notes%.json changed since the last import; .*run 'orket import' to apply them$",
      w[1].message)
    assert.equal("epics_changed", cjson.decode(r.stdout:match("^[^\n]+")).type) -- before the run starts
    -- nothing was imported
    local card = cjson.decode(H.orket("card NOTES --json", { cwd = dir }).stdout)
    assert.equal("Store and list notes.", card.card.description)
    assert.equal(1, H.orket("card EXTRA", { cwd = dir }).status)
    -- once imported, the warning is gone
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    r = H.orket("run EXTRA --json", { cwd = dir }) -- its issue has no seat: the run stalls
    assert.same({}, warnings(r.stdout))
    assert.is_nil(r.stderr:find("warning", 1, true), r.stderr)
  end)

  it("warns when the run cannot start because its epic was added and not imported, and of removed files", function()
    local dir = project()
    edit(dir)
    local r = H.orket("run EXTRA --json", { cwd = dir })
    assert.equal(2, r.status) -- a target that names no card: bad input
    assert.same({ "epics/extra.json", "epics/notes.json" }, warnings(r.stdout)[1].files)
    assert.matches('orket: no card "EXTRA" (see \'orket board\')', r.stderr, 1, true)
    -- a file the last import read and is gone is named too
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    os.remove(dir .. "/epics/extra.json")
    r = H.orket("run NOTES --json", { cwd = dir })
    assert.same({ "epics/extra.json (removed)" }, warnings(r.stdout)[1].files)
  end)

  it("says nothing when epics/ is as imported", function()
    local dir = project()
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.same({}, warnings(r.stdout))
  end)

  it("warns on resume as well", function()
    local dir = project()
    local r = H.orket("run NOTES --json", { cwd = dir, env = { ORKET_FAULT = "turn_end:1" } })
    assert.equal(137, r.status, r.stderr)
    edit(dir)
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local w = warnings(r.stdout)
    assert.equal(1, #w)
    assert.same({ "epics/extra.json", "epics/notes.json" }, w[1].files)
  end)

  it("prints one warning line on a terminal", function()
    local dir = project()
    edit(dir)
    H.write(dir .. "/steps", "expect run 1 NOTES done in \n")
    local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s run NOTES <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    local _, n = out:gsub("orket: warning: epics/extra%.json, epics/notes%.json changed since the last import; "
      .. "[^\n]*run 'orket import' to apply them", "")
    assert.equal(1, n, out)
  end)
end)
