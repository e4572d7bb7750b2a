-- End to end: `project:turn` in `orket repl` on a card whose dependency is not done is
-- refused before a run starts (EDEPENDENCY, naming the dependency), so neither `orket runs`
-- nor `orket log` gains an empty run, however often it is asked.
local H = require "tests.helpers"

describe("orket repl's project:turn on a card waiting for a dependency", function()
  after_each(H.cleanup)

  it("is refused and records no run", function()
    local dir = H.example("notes")
    local r = H.orket("repl", { cwd = dir, stdin = 'print(project:turn("NOTES-2"))\nprint(project:turn("NOTES-2"))\n' })
    assert.equal(0, r.status, r.stderr)
    local _, n = r.stdout:gsub("nil\tboard: NOTES%-2: the issue cannot start while a card it depends on is not done; "
      .. "[^\n]-%(NOTES%-2: waits for NOTES%-1 %(ready, not finished%); next: orket run NOTES%)\tEDEPENDENCY", "")
    assert.equal(2, n, r.stdout)
    local runs = H.orket("runs --json", { cwd = dir })
    assert.equal(0, runs.status, runs.stderr)
    assert.same({}, require("cjson").decode(runs.stdout).runs)
  end)
end)
