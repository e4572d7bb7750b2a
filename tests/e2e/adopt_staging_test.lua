-- `orket init` on a person's existing repository (adopting it): the first run's merges follow
-- only the cards' paths. What the person staged (a modification, a new file, a rename) stays
-- staged, and none of it is reported as a path where main has another.
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

describe("adopting a repository with a person's staging", function()
  after_each(function() H.cleanup() end)

  it("keeps every staged change through init and a run", function()
    local dir = H.tmpdir() .. "/p"
    local ws = dir .. "/workspace"
    sh("mkdir -p " .. H.quote(ws) .. " && cd " .. H.quote(ws) .. " && git init -q -b main && git config user.email a@b"
      .. " && git config user.name A && echo v1 > notes.txt && echo Readme > README.md && git add -A"
      .. " && git commit -qm initial && echo 'v2 staged by me' > notes.txt && git add notes.txt"
      .. " && echo 'new work' > feature.c && git add feature.c && git mv README.md README.rst")
    local staged = git(ws, "status --short")
    assert.equal("R  README.md -> README.rst\nA  feature.c\nM  notes.txt\n", staged)
    -- init makes no example epic on a team's repository (docs/guide/adopting.md): the card is this epic's
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " && cp " .. H.quote(H.ROOT .. "/templates/project/epics/start.json")
      .. " " .. H.quote(dir .. "/epics/")))
    local init = H.orket("init --yes .", { cwd = dir })
    assert.equal(0, init.status, init.stderr)
    assert.matches("^orket%-view 1 ", H.read(ws .. "/.git/orket-view")) -- the state, from main's commit
    local r = H.orket("run START-1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"status":"done"', r.stdout)
    assert.is_nil(r.stdout:find("view_diverged", 1, true), r.stdout)
    -- the card's merged files are committed and clean; the person's staging is as they left it
    assert.equal(staged, git(ws, "status --short"))
    assert.matches("START%-1", git(ws, "log --oneline -1 main"))
    local s = H.orket("status --json", { cwd = dir })
    assert.equal(0, s.status, s.stderr)
    assert.is_nil(s.stdout:find("notes.txt", 1, true), s.stdout)
    assert.is_nil(s.stdout:find("feature.c", 1, true), s.stdout)
  end)
end)
