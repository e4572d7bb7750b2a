-- A person's commit pushed to the remote's orket/<CARD> (a plain git remote, no forge) after
-- the card's hand-in, while its review goes on (docs/git.md, *A hand-in*, *Merge on done*).
-- Seen by the review's read of the branch: the move to done is refused, the next hand-in
-- takes the commit into the card's branch and the card is reviewed again, so main holds it
-- and what merged was reviewed. Pushed after that read: the card merges as reviewed, and the
-- commit left out of main is said (journaled, on the card, in the run's output), never
-- dropped without a word. Before, main never held it and nothing said so.
local H = require "tests.helpers"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local RP = require "tests.remote_card_project"

-- the project: one card, its remote an empty bare repository on disk
local function project()
  local dir = H.tmpdir()
  assert(G.init_bare(dir .. "/remote.git"))
  return RP.make(dir, "branchpushed", dir .. "/remote.git")
end

-- a person's commit on top of the remote's orket/K-1, pushed from a clone of their own -> its id
local function person_pushes(dir)
  local git = "git -C " .. H.quote(dir .. "/person") .. " -c user.name=bob -c user.email=b@x "
  local function sh(cmd)
    local st, out = H.sh(cmd)
    assert(st == 0, cmd .. ": " .. out)
    return (out:gsub("%s+$", ""))
  end
  sh("git clone -q " .. H.quote(dir .. "/remote.git") .. " " .. H.quote(dir .. "/person"))
  sh(git .. "checkout -q orket/K-1")
  H.write(dir .. "/person/bob.txt", "bob's fix\n")
  sh(git .. "add bob.txt")
  sh(git .. "commit -q -m 'bob: a fix on top of K-1'")
  sh(git .. "push -q origin orket/K-1")
  return sh(git .. "rev-parse HEAD")
end

local function lines(text)
  local out = {}
  for l in (text or ""):gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, l)
    if ok and type(v) == "table" then out[#out + 1] = v end
  end
  return out
end

local function in_main(dir, id)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:contains("refs/heads/main", id)
end

local function remote_ref(dir, name) return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/" .. name] end

local function remote_branch_events(dir)
  local doc = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
  local out = {}
  for _, e in ipairs(doc.events) do
    if e.kind == "remote_branch" then out[#out + 1] = e.data end
  end
  return out
end

describe("a commit pushed to a card's branch on the remote during its review", function()
  after_each(function() H.cleanup() end)

  it("seen by the review: the move to done is refused, the commit taken in, reviewed again and merged", function()
    local dir = project()
    -- killed as the review's model is first asked: the hand-in pushed orket/K-1 and its review
    -- read it; the resumed review reads it again, with the person's commit on top
    local r = H.orket("run K --json", { cwd = dir, env = { ORKET_FAULT = "before_model:3" } })
    assert.equal(137, r.status, r.stderr)
    local pushed = remote_ref(dir, "orket/K-1")
    local theirs = person_pushes(dir)
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    local refused, taken
    for _, ev in ipairs(lines(r.stdout)) do
      if ev.type == "tool" and ev.tool == "update_issue_status" and ev.code == "ECONFLICT" then refused = ev end
      if ev.type == "git" and ev.action == "take_pushed" then taken = ev end
    end
    assert.is_table(refused, r.stdout)
    assert.same({ kind = "fastforward", from = theirs, id = theirs }, { kind = taken.kind, from = taken.from,
      id = taken.id })
    assert.equal("done", H.card_json(dir, "K-1").card.status)
    assert.is_true(in_main(dir, theirs))
    assert.equal(remote_ref(dir, "main"), remote_ref(dir, "orket/K-1"))
    assert.equal("bob's fix\n", H.read(dir .. "/workspace/bob.txt"))
    -- journaled, and said where a person reads
    assert.same({ { kind = "taken", from = theirs, pushed = pushed, id = theirs, how = "fastforward" } },
      remote_branch_events(dir))
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("[result] update_issue_status failed {\"code\":\"ECONFLICT\",\"error\":\"board: K-1: the remote's "
      .. "orket/K-1 has commits Orket did not push (its head " .. theirs, log, 1, true)
    assert.matches("** K-1: commits pushed to the remote's orket/K-1 (up to " .. theirs .. ") taken into its branch "
      .. "(fastforward, " .. theirs .. "); pushed for review again", log, 1, true)
    local card = H.orket("card K-1", { cwd = dir }).stdout
    assert.matches("Commits pushed to orket/K-1 on the remote after Orket's last push (up to " .. theirs
      .. ", on top of " .. pushed .. ") were taken into the card's branch", card, 1, true)
  end)

  it("pushed after the review read it: merged as reviewed, the commit left out said, kept on the remote", function()
    local dir = project()
    -- stopped as the review's model is first asked (the review has read the branch); the
    -- person pushes meanwhile
    local p = io.popen(string.format("cd %s && ORKET_FAULT=before_model:3:stop exec %s run K --json >%s/out 2>%s/err "
      .. "& echo $!", H.quote(dir), H.quote(H.BIN), H.quote(dir), H.quote(dir)))
    local pid = tonumber(p:read("l"))
    p:close()
    finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    local function stopped()
      local st = H.read("/proc/" .. pid .. "/stat")
      return st and st:match("^%d+ %b() (%a)") == "T"
    end
    H.wait_for(function() return stopped() or not H.alive(pid) end, "the run to stop before the review's model")
    assert.is_true(stopped(), H.read(dir .. "/err"))
    local theirs = person_pushes(dir)
    os.execute("kill -CONT " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the run to end", 3000)
    local out = H.read(dir .. "/out")
    local said, ended
    for _, ev in ipairs(lines(out)) do
      if ev.type == "git" and ev.action == "branch_left" then said = ev end
      if ev.type == "run_end" then ended = ev end
    end
    assert.equal("done", ended and ended.status, out .. H.read(dir .. "/err"))
    assert.same({ outcome = "left_out", from = theirs }, { outcome = said and said.outcome, from = said and said.from })
    assert.equal("done", H.card_json(dir, "K-1").card.status)
    -- not in main, not lost: the remote's branch still holds it
    assert.is_false(in_main(dir, theirs))
    assert.equal(theirs, remote_ref(dir, "orket/K-1"))
    local merged = remote_ref(dir, "main")
    local ev = remote_branch_events(dir)
    assert.same({ { kind = "left_out", from = theirs, merge = merged, kept = "refs/remotes/orket-branches/orket/K-1" } },
      ev)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("** K-1: commits pushed to the remote's orket/K-1 during its review (up to " .. theirs .. ") are NOT "
      .. "in main (the card merged as " .. merged .. "): git -C workspace merge " .. theirs, log, 1, true)
    local card = H.orket("card K-1", { cwd = dir }).stdout
    assert.matches("Commits pushed to orket/K-1 on the remote during its review (up to " .. theirs .. ") are not in main",
      card, 1, true)
  end)
end)
