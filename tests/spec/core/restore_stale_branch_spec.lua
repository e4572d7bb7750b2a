-- repo:set_aside(card, ref): a restore's way to take a card's branch out of the cards' way
-- (orket.actions.restore_branches). The branch orket/<CARD> becomes a ref under refs/orket/,
-- reachable and named, and is gone, so that the card's next turn makes it again from main;
-- a packed branch too (a person's git gc packs every ref), never under a person's checkout,
-- never over a ref that is there.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local gc = require "tests.gitcards"

describe("repo:set_aside", function()
  local proj, ws, repo, c
  before_each(function()
    proj = H.tmpdir()
    ws = proj .. "/workspace"
    gc.sh("mkdir -p " .. H.quote(ws))
    H.write(ws .. "/README", "hello\n")
    repo = assert(G.init(ws, gc.WHO))
    c = gc.cards(repo, proj)
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  -- B1 with one commit of its own (b.txt) -> the commit's id
  local function worked(card)
    local dir = assert(c.att(card))
    H.write(dir .. "/b.txt", "the card's\n")
    return (assert(c.commit(card, 1)))
  end

  it("keeps the branch's commit under the ref, removes the branch, and the next attach starts from main", function()
    local id = worked("B1")
    assert.equal(id, assert(repo:set_aside("B1", "refs/orket/restored/T1/B1")))
    assert.equal(id .. "\n", gc.git(ws, "rev-parse refs/orket/restored/T1/B1"))
    assert.equal("", gc.git(ws, "branch --list orket/B1"))
    local _, _, code = repo:head("orket/B1")
    assert.equal("ENOENT", code)
    -- the card's directory handed on afresh (as the restore moves it aside): main's tree
    gc.sh("rm -rf " .. H.quote(proj .. "/cards/B1") .. " " .. H.quote(proj .. "/state/B1"))
    local dir = assert(c.att("B1"))
    assert.is_nil(H.read(dir .. "/b.txt"))
    assert.equal(assert(repo:head("main")), assert(repo:head("orket/B1")))
  end)

  it("sets aside a packed branch", function()
    local id = worked("B1")
    gc.git(ws, "pack-refs --all")
    assert.is_nil(io.open(ws .. "/.git/refs/heads/orket/B1"))
    assert.equal(id, assert(repo:set_aside("B1", "refs/orket/restored/T1/B1")))
    assert.equal("", gc.git(ws, "branch --list orket/B1"))
    assert.equal(id .. "\n", gc.git(ws, "rev-parse refs/orket/restored/T1/B1"))
  end)

  it("refuses, moving nothing: no branch, a ref there already, a ref outside refs/orket/, a checkout", function()
    local id = worked("B1")
    local function refused(code, pattern, ...)
      local got, msg, c2 = repo:set_aside(...)
      assert.is_nil(got)
      assert.equal(code, c2, msg)
      assert.matches(pattern, msg, 1, true)
      assert.equal(id, assert(repo:head("orket/B1")))
    end
    refused("ENOENT", "no branch orket/B2", "B2", "refs/orket/restored/T1/B2")
    gc.git(ws, "update-ref refs/orket/restored/T1/B1 HEAD")
    refused("EEXIST", "refs/orket/restored/T1/B1 is there already", "B1", "refs/orket/restored/T1/B1")
    refused("EINVAL", "not a ref name under refs/orket/", "B1", "refs/heads/kept")
    refused("EINVAL", "not a ref name under refs/orket/", "B1", "refs/orket/a..b")
    refused("EINVAL", "not a card id", "../B1", "refs/orket/restored/T2/B1")
    gc.git(ws, "checkout -q orket/B1")
    refused("EUNSAFE", "workspace/ has orket/B1 checked out", "B1", "refs/orket/restored/T2/B1")
    assert.equal("", gc.git(ws, "for-each-ref refs/orket/restored/T2"))
  end)
  it("moves the branch back to a commit of its history, keeping the tip under the ref", function()
    local first = worked("B1")
    local dir = assert(c.att("B1"))
    H.write(dir .. "/c.txt", "later\n")
    local tip = assert(c.commit("B1", 2))
    assert.equal(tip, assert(repo:set_aside("B1", "refs/orket/restored/T1/B1", first)))
    assert.equal(tip .. "\n", gc.git(ws, "rev-parse refs/orket/restored/T1/B1"))
    assert.equal(first, assert(repo:head("orket/B1")))
    -- the card's directory handed on afresh (as the restore moves it aside): the kept commit's tree
    gc.sh("rm -rf " .. H.quote(proj .. "/cards/B1") .. " " .. H.quote(proj .. "/state/B1"))
    dir = assert(c.att("B1"))
    assert.equal("the card's\n", H.read(dir .. "/b.txt"))
    assert.is_nil(H.read(dir .. "/c.txt"))
  end)

  it("refuses to move the branch to a commit outside its history, or to its tip", function()
    local first = worked("B1")
    local main = assert(repo:head("main"))
    gc.git(ws, "commit -q --allow-empty -m other")
    local other = assert(repo:head("main"))
    assert.not_equal(main, other)
    for _, keep in ipairs { other, first, "nothex", first:sub(1, 12) } do
      local got, msg, code = repo:set_aside("B1", "refs/orket/restored/T1/B1", keep)
      assert.is_nil(got)
      assert.equal("EINVAL", code, msg)
      assert.equal(first, assert(repo:head("orket/B1")))
    end
    assert.equal("", gc.git(ws, "for-each-ref refs/orket/restored"))
  end)
end)
