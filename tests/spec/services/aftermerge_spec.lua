-- orket.engine.aftermerge: the one sequence after a merge, as the engine and the server call
-- it: main pushed to a real (bare, local) remote, one push at a time for each owner, the
-- remote's main fetched, and nothing done without a remote.
local aftermerge = require "orket.engine.aftermerge"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local WHO = { name = "orket", email = "orket@orket.invalid" }

describe("engine.aftermerge", function()
  local base, db, b, repo
  before_each(function()
    base = H.tmpdir()
    db, b = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" } })
    assert(os.execute("mkdir -p " .. base .. "/p/workspace"))
    H.write(base .. "/p/workspace/a.txt", "main\n")
    repo = assert(G.init(base .. "/p/workspace", WHO))
    assert(G.init_bare(base .. "/remote.git"))
  end)
  after_each(function()
    repo:close()
    db:close()
    H.cleanup()
  end)

  it("does nothing without a remote", function()
    assert.is_nil(aftermerge.push_main { db = db, g = {}, repo = repo })
    local none, why = aftermerge.fetch_main { g = {}, repo = repo }
    assert.is_nil(none)
    assert.equal("no git.remote", why)
    assert.is_nil(aftermerge.end_pull_request { db = db, g = { remote = "x" }, card = "E-1" })
    local out = aftermerge.after_merge { dir = base .. "/p", db = db, board = b, settings = {}, repo = repo, card = "E-1" }
    assert.same({}, out)
  end)

  it("pushes main to the remote, and fetches it back", function()
    local g = { remote = base .. "/remote.git" }
    local owner = {}
    local out = assert(aftermerge.push_main { owner = owner, db = db, g = g, dir = base .. "/p", card = "E-1" })
    assert.equal("pushed", out.code)
    assert.is_nil(owner.main_push)
    local p = io.popen("git -C " .. H.quote(base .. "/remote.git") .. " rev-parse main")
    assert.equal(repo:head("main"), p:read("l"))
    p:close()
    assert.equal(repo:head("main"), aftermerge.fetch_main { g = g, repo = repo })
    -- a second push finds nothing to do
    assert.equal("uptodate", aftermerge.push_main { owner = owner, db = db, g = g, repo = repo }.code)
  end)

  it("asks a push already going for its owner to go once more, rather than push twice at once", function()
    local owner = { main_push = { again = false } }
    assert.is_nil(aftermerge.push_main { owner = owner, db = db, g = { remote = base .. "/remote.git" }, repo = repo })
    assert.is_true(owner.main_push.again)
  end)
end)
