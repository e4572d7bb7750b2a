-- A person's own branch named orket/<CARD> on the remote, not on top of anything Orket
-- pushed, is replaced by the card's first hand-in (a forced push, docs/git.md *A hand-in*).
-- Before, only the run's JSON said so (an emitted take_pushed, kind rewritten). It is now
-- journaled before the push (a remote_branch event, kind replaced, once per replaced head:
-- a run killed after the push keeps the record) and said in `orket log` and `orket card`,
-- naming the replaced commit, where workspace/'s repository keeps it and the command that
-- gets it back, which works.
local H = require "tests.helpers"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local RP = require "tests.remote_card_project"

local function sh(cmd)
  local st, out = H.sh(cmd)
  assert(st == 0, cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

describe("a person's branch named orket/<CARD> on the remote", function()
  after_each(function() H.cleanup() end)

  it("replaced by the first hand-in is journaled and said, with where it is kept and how to get it back", function()
    local dir = H.tmpdir()
    assert(G.init_bare(dir .. "/remote.git"))
    RP.make(dir, "replaced", dir .. "/remote.git")
    -- the person's own work, on a branch that happens to have the card's name
    local git = "git -C " .. H.quote(dir .. "/person") .. " -c user.name=bob -c user.email=b@x "
    sh("git init -q -b orket/K-1 " .. H.quote(dir .. "/person"))
    H.write(dir .. "/person/bob.txt", "bob's own start on K-1\n")
    sh(git .. "add bob.txt")
    sh(git .. "commit -q -m 'bob: my own K-1'")
    sh(git .. "push -q " .. H.quote(dir .. "/remote.git") .. " orket/K-1")
    local theirs = sh(git .. "rev-parse HEAD")
    -- killed right after the forced push: the record was written before it
    local r = H.orket("run K --json", { cwd = dir, env = { ORKET_FAULT = "after_git_push:1" } })
    assert.equal(137, r.status, r.stderr)
    local emitted
    for l in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(l)
      if ev.type == "git" and ev.action == "take_pushed" then emitted = ev end
    end
    assert.same({ kind = "rewritten", from = theirs, kept = "refs/remotes/orket-branches/orket/K-1" },
      { kind = emitted.kind, from = emitted.from, kept = emitted.kept })
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "K-1").card.status)
    local repo <close> = assert(G.open(dir .. "/workspace"))
    local head = assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/orket/K-1"]
    assert.is_true(repo:contains("refs/heads/main", head))
    assert.is_false(repo:contains("refs/heads/main", theirs))
    -- journaled once (the resumed hand-in found Orket's own head there)
    local doc = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    local evs = {}
    for _, e in ipairs(doc.events) do
      if e.kind == "remote_branch" then evs[#evs + 1] = e.data end
    end
    assert.same({ { kind = "replaced", from = theirs, head = head, kept = "refs/remotes/orket-branches/orket/K-1" } }, evs)
    local get_back = "git -C workspace branch replaced/K-1 " .. theirs
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("** K-1: the remote's orket/K-1 at " .. theirs .. " (not on top of anything Orket pushed) replaced "
      .. "by the push of " .. head .. "; kept as refs/remotes/orket-branches/orket/K-1: " .. get_back, log, 1, true)
    local card = H.orket("card K-1", { cwd = dir }).stdout
    assert.matches("The remote's orket/K-1 was at " .. theirs .. ", not on top of anything Orket pushed for this card",
      card, 1, true)
    assert.matches("kept in workspace/'s repository as refs/remotes/orket-branches/orket/K-1", card, 1, true)
    assert.matches("get it back with: " .. get_back, card, 1, true)
    -- the command said gets it back
    sh("cd " .. H.quote(dir) .. " && " .. get_back)
    assert.equal("bob's own start on K-1\n", sh("git -C " .. H.quote(dir .. "/workspace") .. " show replaced/K-1:bob.txt")
      .. "\n")
  end)
end)
