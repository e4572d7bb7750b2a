-- repo:commit's `wrote`: a commit that walks the whole directory (no `paths`: a program ran)
-- still names each file the turn's tools wrote that a .gitignore rule keeps out, by a lookup
-- per path; what the turn did not name (a program's output) gets no note.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
local NOTE = " (matched by a .gitignore rule: not committed)"

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("repo:commit wrote", function()
  local base, repo
  before_each(function()
    base = H.tmpdir()
    sh("mkdir -p " .. H.quote(base .. "/ws"))
    H.write(base .. "/ws/README", "hello\n")
    H.write(base .. "/ws/.gitignore", "build/\n*.log\n")
    repo = assert(G.init(base .. "/ws", WHO))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function commit(card, o)
    o.name, o.email, o.message = WHO.name, WHO.email, card
    return repo:commit(card, o)
  end

  it("notes the written ignored files when the commit walks the whole directory", function()
    local a = assert(repo:attach("W1", base .. "/cards/W1", base .. "/state/W1"))
    sh("mkdir -p " .. H.quote(a .. "/build"))
    H.write(a .. "/build/w.o", "o\n")        -- written by a tool, ignored
    H.write(a .. "/q.log", "log\n")          -- written by a tool, ignored
    H.write(a .. "/build/prog.o", "p\n")     -- a program's: not named, no note
    H.write(a .. "/kept.txt", "k\n")         -- written, committed
    H.write(a .. "/made.txt", "m\n")         -- a program's, committed by the walk
    H.write(base .. "/cards/escape.log", "x\n") -- beside the card's directory: never looked at
    local _, kind, skipped = assert(commit("W1", { wrote = { "build/w.o", "q.log", "kept.txt", "gone.log",
      "../escape.log", "/etc/hosts", ".git/config", "README" } }))
    assert.equal("committed", kind)
    -- a deleted path, a tracked one and names beneath no tree are passed over
    assert.same({ "build/w.o" .. NOTE, "q.log" .. NOTE }, skipped)
    assert.same({}, repo:status("W1"))
    -- without wrote the whole walk names none of them, as before
    H.write(a .. "/more.log", "more\n")
    H.write(a .. "/kept.txt", "k2\n")
    _, kind, skipped = assert(commit("W1", {}))
    assert.equal("committed", kind)
    assert.same({}, skipped)
    -- paths, when given, are the ones noted (wrote is for the walk without them)
    H.write(a .. "/p.log", "p\n")
    H.write(a .. "/kept.txt", "k3\n")
    _, kind, skipped = assert(commit("W1", { paths = { "p.log", "kept.txt" }, wrote = { "more.log" } }))
    assert.equal("committed", kind)
    assert.same({ "p.log" .. NOTE }, skipped)
  end)

  it("refuses a wrote that is not a list of strings, naming the field", function()
    assert(repo:attach("W2", base .. "/cards/W2", base .. "/state/W2"))
    assert.has_error(function() commit("W2", { wrote = "q.log" }) end,
      "bad argument #2 to 'commit' (field 'wrote' must be a list of strings)")
    assert.has_error(function() commit("W2", { wrote = { 1 } }) end,
      "bad argument #2 to 'commit' (field 'wrote' item 1 must be a string without NUL bytes)")
  end)
end)
