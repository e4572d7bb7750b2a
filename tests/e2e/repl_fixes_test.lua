-- orket repl as an operator debugging runs meets it: tasks orket.spawn started stopped at the
-- prompt's end, a REPL turn that got none not taken for the run to resume, the project named
-- from inside its workspace/.
local H = require "tests.helpers"

describe("orket repl (found by use)", function()
  after_each(H.cleanup)

  it("stops at its end the tasks orket.spawn started, their turn's run interrupted, and says so", function()
    local dir = H.example("notes")
    -- the architect's answer takes 1.5 s: the turn still waits on it when input ends
    local script = H.read(dir .. "/script.lua")
    script = script:gsub('(card = "NOTES%-1", match = "%^Issue ", reply = {)', "%1 delay_ms = 1500,", 1)
    H.write(dir .. "/script.lua", script)
    local r = H.orket("repl", { cwd = dir, stdin = 't = orket.spawn(function() return project:turn("NOTES-1") end)\n'
      .. "t.state\n" })
    assert.equal(0, r.status, r.stderr)
    assert.matches('> "running"\n', r.stdout)
    assert.matches("stopped 1 task orket.spawn started that was still running %(tasks run only while a line runs%)",
      r.stdout)
    -- ended as Ctrl-C ends it, not dropped with the process and found "killed"
    local runs = H.orket("runs", { cwd = dir })
    assert.matches("\n%s+1  interrupted ", runs.stdout)
    -- orket.spawn is still the runtime's otherwise: help and completion see the rest of orket
    local h = H.orket("repl", { cwd = dir, stdin = "orket.version()\ntype(orket.sleep)\norket.spawn(1)\n" })
    assert.matches('\n> "function"\n', h.stdout)
    assert.matches("bad argument #1 to 'spawn' %(function expected, got number%)", h.stdout)
  end)

  it("leaves to resume the interrupted run, not the empty one a REPL turn that got none left", function()
    local dir = H.example("notes")
    local mk = H.orket("lua -e " .. H.quote('local db = assert(require("orket.project").open_store(".", false)) '
      .. 'local id = assert(db:record_run { target = "NOTES", kind = "epic" }) '
      .. 'assert(db:finish_run(id, "interrupted")) db:close()'), { cwd = dir })
    assert.equal(0, mk.status, mk.stderr)
    -- routing.lua gives NOTES-1 to a seat not in the team: the turn gets none, its run is
    -- recorded stopped with nothing in it but the reason
    H.write(dir .. "/routing.lua", 'return { worker = function(card) if card.id == "NOTES-1" then return "ghost" end end }\n')
    local r = H.orket("repl", { cwd = dir, stdin = 'print(project:turn("NOTES-1"))\n' })
    assert.matches("got no turn %(status ready%): routing.lua's worker chose \"ghost\".-ENOTURN", r.stdout)
    assert.matches("\n%s+2  stopped ", H.orket("runs", { cwd = dir }).stdout)
    os.remove(dir .. "/routing.lua")
    local res = H.orket("resume --json", { cwd = dir })
    assert.matches('"run_id":1,"target":"NOTES","type":"run_start"', res.stdout, 1, true)
    assert.equal(0, res.status, res.stderr)
  end)

  it("names the project and its -C from inside its workspace/, and says so when `project` is used", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES --json", { cwd = dir }).status) -- its workspace/ is main's tree now
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/src"))
    local r = H.orket("repl", { cwd = dir .. "/workspace/src", stdin = "project.board\n" })
    assert.equal(0, r.status, r.stderr)
    local real = require("luv").fs_realpath(dir)
    assert.matches("no project opened %(the prompt works without it%): this folder is in the workspace/ of the project "
      .. real:gsub("%p", "%%%0") .. ": give it with %-C", r.stderr)
    assert.matches("%(no project here: this folder is in the workspace/ of the project", r.stdout)
    -- a folder of no project: the hint says what opens one
    local none = H.orket("repl", { cwd = H.tmpdir(), stdin = "project:turn('X-1')\n" })
    assert.matches("%(no project here: this folder has no orket.lua %(`orket repl %-C DIR` opens the project in DIR%)%)",
      none.stdout)
  end)

  it("orket log points a word that is no run number to orket runs, and a card's id to orket card", function()
    local dir = H.example("notes")
    local word = H.orket("log abc", { cwd = dir })
    assert.equal(2, word.status)
    assert.matches("RUN must be a run number %(see 'orket runs'%)", word.stderr)
    local card = H.orket("log NOTES-1", { cwd = dir })
    assert.equal(2, card.status)
    assert.matches("RUN must be a run number %(see 'orket runs'%), not the card NOTES%-1: 'orket card NOTES%-1' "
      .. "shows its history", card.stderr)
  end)
end)
