-- A card's branch checked out in workspace/ by a person (to look at the card's work) while
-- the card is worked: the card's commit would move the branch under their checkout, whose
-- index then undoes the card's change at their next commit. The commit is refused and the
-- card blocked, saying what to do; `orket status` says the same of the view, and once the
-- branch is no longer checked out a retry finishes the card.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("a card's branch checked out in workspace/ during a run", function()
  after_each(function() H.cleanup() end)

  it("blocks the card rather than commit under the person's checkout, and a retry finishes it", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p --yes", { cwd = root }).status)
    local dir = root .. "/p"
    local git = "git -C " .. H.quote(dir .. "/workspace") .. " "
    -- the card's branch made and checked out before its first turn (an existing branch keeps its work)
    assert(os.execute(git .. "checkout -q -b orket/START-1"))
    local r = H.orket("run START", { cwd = dir })
    assert.matches('"status":"blocked"', r.stdout, 1, true)
    local card = cjson.decode(H.orket("card START-1 --json", { cwd = dir }).stdout)
    assert.equal("blocked", card.card.status)
    local said = card.comments[#card.comments].body
    assert.matches("workspace/ has refs/heads/orket/START-1 checked out", said, 1, true)
    assert.matches("git -C workspace switch --detach orket/START-1", said, 1, true)
    -- nothing of the card's committed under the person's checkout: their tree and index as they were
    local p = io.popen(git .. "status --porcelain")
    assert.equal("", p:read("a"))
    p:close()
    local s = H.orket("status", { cwd = dir })
    assert.matches("a card's branch, which Orket's commits move", s.stdout, 1, true)
    -- as advised: main checked out again, the card retried
    assert(os.execute(git .. "checkout -q main"))
    assert.equal(0, H.orket("retry START-1", { cwd = dir }).status)
    local again = H.orket("run START", { cwd = dir })
    assert.equal(0, again.status, again.stderr)
    assert.equal("done", cjson.decode(H.orket("card START-1 --json", { cwd = dir }).stdout).card.status)
    assert.equal("Hello, and welcome to the project.\n", H.read(dir .. "/workspace/hello.txt"))
  end)
end)
