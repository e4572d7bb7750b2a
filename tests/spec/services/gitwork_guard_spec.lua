-- orket.engine.gitwork.guard: the lock workers share around each repository operation. A
-- card directory's index lock left by a killed worker is stale once the guard holds the
-- lock exclusive, so the card's next commit clears it and goes through instead of failing
-- every time (a card taken over would spend its turn on "the index is locked").
local G = require "orket.c.gitrepo"
local gitwork = require "orket.engine.gitwork"
local H = require "tests.helpers"

local WHO = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

describe("orket.engine.gitwork.guard", function()
  local base, repo
  before_each(function()
    base = H.tmpdir()
    assert(os.execute("mkdir -p " .. base .. "/ws " .. base .. "/state"))
    H.write(base .. "/ws/README", "hello\n")
    repo = assert(G.init(base .. "/ws", WHO))
    assert(repo:attach("C1", base .. "/cards/C1", base .. "/state/C1"))
    H.write(base .. "/cards/C1/work.txt", "the card's change\n")
    -- what a worker killed while it wrote the card's index leaves behind
    H.write(base .. "/state/C1/index.lock", "")
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function commit(r)
    return r:commit("C1", { name = WHO.name, email = WHO.email, message = "C1: turn 2", turn = "1/C1/2" })
  end

  it("clears a stale index lock in a card's directory state and commits", function()
    local guarded = gitwork.guard(repo, base .. "/git.lock", base .. "/state")
    local id, kind = commit(guarded)
    assert.is_string(id, kind)
    -- the turn's commit is on the card's branch (made before the index write met the lock,
    -- so the call run again finds it by its turn key), and the lock is gone
    assert.truthy(kind == "committed" or kind == "exists", kind)
    assert.equal(id, repo:head("orket/C1"))
    assert.are_not.equal(repo:head("main"), id)
    assert.is_nil(io.open(base .. "/state/C1/index.lock"))
    assert.same({}, guarded:status("C1"))
  end)

  it("without the states' folder, leaves the lock and says the index is locked", function()
    local guarded = gitwork.guard(repo, base .. "/git.lock")
    local id, msg, code = commit(guarded)
    assert.is_nil(id)
    assert.equal("ELOCKED", code)
    assert.matches("index", msg)
  end)
end)
