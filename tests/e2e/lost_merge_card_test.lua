-- `orket card ID` and its document (GET /v1/cards/ID, the MCP server's) say a done card's
-- merge main no longer holds (a person's `git reset --hard` dropped it) with what to do, the
-- advice a run's history_lost event gives, rather than "merged into main" for a commit main
-- does not hold.
local H = require "tests.helpers"
local cjson = require "cjson"

local function starter()
  local root = H.tmpdir()
  assert.equal(0, H.orket("init p --yes", { cwd = root }).status)
  local dir = root .. "/p"
  local r = H.orket("run START", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

local function git(dir, args)
  assert(os.execute(string.format("git -C %s/workspace -c user.name=p -c user.email=p@p %s >/dev/null 2>&1", H.quote(dir),
    args)), args)
end

local function card(dir, id)
  local t = H.orket("card " .. id, { cwd = dir })
  assert.equal(0, t.status, t.stderr)
  local j = H.orket("card " .. id .. " --json", { cwd = dir })
  assert.equal(0, j.status, j.stderr)
  return t.stdout, cjson.decode(j.stdout).git
end

describe("orket card on a merge main lost", function()
  after_each(function() H.cleanup() end)

  it("says main no longer holds a merge a reset dropped, and how to bring it back", function()
    local dir = starter()
    local text, doc = card(dir, "START-2")
    assert.matches("merged into main: " .. doc.merged:sub(1, 12), text, 1, true)
    assert.is_nil(doc.lost)
    git(dir, "reset -q --hard HEAD~1") -- drops START-2's merge
    text, doc = card(dir, "START-2")
    assert.is_nil(text:find("merged into main", 1, true), text)
    assert.matches("(merged as " .. doc.merged:sub(1, 12) .. ", no longer in main)", text, 1, true)
    assert.matches("main no longer holds the merged work of 1 card (START-2): main was moved back past their merges",
      text, 1, true)
    assert.matches("git -C workspace reflog main", text, 1, true)
    assert.matches("main was moved back past their merges", doc.lost, 1, true)
    -- orket status says it too, as a run's start would
    local st = H.orket("status", { cwd = dir })
    assert.matches("main no longer holds the merged work of 1 card (START-2)", st.stdout, 1, true)
    local sd = cjson.decode(H.orket("status --json", { cwd = dir }).stdout)
    assert.same({ "START-2" }, sd.lost.cards)
    assert.equal(1, sd.lost.count)
    -- the card before it is still in main
    text, doc = card(dir, "START-1")
    assert.matches("merged into main: " .. doc.merged:sub(1, 12), text, 1, true)
    assert.is_nil(doc.lost)
    -- put back, nothing is said
    git(dir, "reset -q --hard ORIG_HEAD")
    assert.is_nil(cjson.decode(H.orket("status --json", { cwd = dir }).stdout).lost)
  end)

  it("says a rewritten merge is not in main's history, advising no restore", function()
    local dir = starter()
    git(dir, "commit -q --amend -m rewritten") -- START-2's merge amended
    local text, doc = card(dir, "START-2")
    assert.matches("no longer in main", text, 1, true)
    assert.matches("main was rewritten since", doc.lost, 1, true)
    assert.matches("nothing needs restoring", doc.lost, 1, true)
  end)
end)
