-- A person's commit pushed to a card's branch on the remote after its hand-in (docs/git.md,
-- *A hand-in*, *Merge on done*): the move to done refuses it while the branch as last read
-- holds commits on top of the head Orket pushed (orket.actions.finish.branch_pushed), so
-- what merges was reviewed and nothing is dropped; one pushed after that read is said once
-- the card is merged (orket.actions.pull_request.branch_left: journaled, on the card).
local finish = require "orket.actions.finish"
local prbranch = require "orket.actions.prbranch"
local pull_request = require "orket.actions.pull_request"
local sf = require "orket.store.forge"
local sj = require "orket.store.journal_reads"
local task = require "orket.task"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local GUARD = { seat = "integrity_guard", roles = { "integrity_guard" } }
local WHO = { name = "senior_developer", email = "senior_developer@orket.invalid" }

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  assert(p:close(), cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

-- in a task, as the engine and the server call them
local function in_task(fn, ...)
  local res = table.pack(task.spawn(fn, ...):join())
  assert(res[1], tostring(res[2]))
  return table.unpack(res, 2, res.n)
end

describe("a commit pushed to a card's branch after its hand-in", function()
  local base, db, b, repo, g, person
  before_each(function()
    base = H.tmpdir()
    db, b = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" } })
    assert(b:transition("E-1", "in_progress", { actor = DEV }))
    assert(b:transition("E-1", "code_review", { actor = DEV }))
    sh("mkdir -p " .. H.quote(base .. "/ws"))
    H.write(base .. "/ws/a.txt", "main\n")
    repo = assert(G.init(base .. "/ws", WHO))
    assert(G.init_bare(base .. "/remote.git"))
    local wt = assert(repo:worktree("E-1", base .. "/wt/E-1"))
    H.write(wt .. "/b.txt", "card\n")
    assert(repo:commit("E-1", { name = WHO.name, email = WHO.email, message = "E-1: work" }))
    g = { remote = base .. "/remote.git" }
    -- the hand-in: both pushed, the head recorded as its pull_requests row (no forge)
    in_task(function() return assert(repo:push(g.remote, "main")) end)
    in_task(function() return assert(repo:push(g.remote, "orket/E-1")) end)
    assert(db:tx(function()
      sf.save_pull_request(db, "E-1", nil, nil, nil, nil, repo:head("orket/E-1"))
      return true
    end))
    person = "git -C " .. H.quote(base .. "/person") .. " -c user.name=bob -c user.email=b@x "
    sh("git clone -q " .. H.quote(g.remote) .. " " .. H.quote(base .. "/person"))
    sh(person .. "checkout -q orket/E-1")
  end)
  after_each(function()
    repo:close()
    db:close()
    H.cleanup()
  end)

  local function bob(path, text, force)
    H.write(base .. "/person/" .. path, text)
    sh(person .. "add " .. path)
    sh(person .. "commit -q -m bob")
    sh(person .. "push -q " .. (force and "-f " or "") .. "origin orket/E-1")
    return sh(person .. "rev-parse HEAD")
  end

  local function done(remote)
    return db:tx(function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo, remote = remote,
        conflict_actor = { seat = GUARD.seat, roles = GUARD.roles, by = "engine" } }
    end)
  end

  local function kinds()
    local out = {}
    for _, e in ipairs(db:events { card = "E-1" }) do out[#out + 1] = e.kind end
    return table.concat(out, " ")
  end

  it("refuses the move to done while the branch read holds them, and merges once they are taken in", function()
    local pushed = repo:head("orket/E-1")
    local main0 = repo:head("main")
    -- the review's read of the branch: Orket's own head, nothing to refuse
    assert.equal(pushed, in_task(prbranch.fetch, repo, g, "E-1"))
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    local theirs = bob("p.txt", "person\n")
    -- not read yet: nothing known of it here
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    assert.equal(theirs, in_task(prbranch.fetch, repo, g, "E-1"))
    assert.same({ from = theirs, pushed = pushed }, finish.branch_pushed(db, repo, "E-1"))
    local before = kinds()
    local ok, err, code = done(true)
    assert.is_nil(ok)
    assert.equal("ECONFLICT", code)
    assert.matches("board: E-1: the remote's orket/E-1 has commits Orket did not push (its head " .. theirs
      .. ", on top of " .. pushed .. " pushed for review)", err, 1, true)
    assert.matches("its next hand-in takes them into its branch", err, 1, true)
    -- nothing merged, moved or written
    assert.equal(main0, repo:head("main"))
    assert.equal("code_review", b:get("E-1").status)
    assert.equal(before, kinds())
    -- the same with the remote's main not fetched (false), and with it fetched into main first
    _, _, code = done(false)
    assert.equal("ECONFLICT", code)
    -- a caller that names no remote (the project has none now) is not refused for what an
    -- old read left: nothing could take those commits in
    local res = assert(done(nil))
    assert.equal("done", res.code)
    assert.is_false(repo:contains("refs/heads/main", theirs))
  end)

  -- a person merged the pull request on the forge: the remote's main, fetched, holds their
  -- commit, so it is no one's to take in and the forge's merge finishes the card
  it("does not refuse commits the remote's main holds already", function()
    local theirs = bob("p.txt", "person\n")
    assert.equal(theirs, in_task(prbranch.fetch, repo, g, "E-1"))
    assert.is_table(finish.branch_pushed(db, repo, "E-1"))
    sh(person .. "checkout -q main")
    sh(person .. "merge -q --no-ff -m merged orket/E-1")
    sh(person .. "push -q origin main")
    in_task(function() return assert(repo:fetch_main(g.remote)) end)
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    local res = assert(done(true))
    assert.equal("done", res.code)
    assert.is_true(repo:contains("refs/heads/main", theirs))
  end)

  it("lets the card finish once its branch holds them, and says those pushed after the read once", function()
    local pushed = repo:head("orket/E-1")
    local theirs = bob("p.txt", "person\n")
    assert.equal(theirs, in_task(prbranch.fetch, repo, g, "E-1"))
    -- the hand-in takes them in (a fast-forward) and records the head it pushes
    local got = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "E-1", pushed = pushed,
      attach = function() return repo:attach("E-1", base .. "/wt/E-1", base .. "/state/E-1") end })
    assert.equal("taken", got.code)
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    assert(db:tx(function()
      sf.save_pull_request(db, "E-1", nil, nil, nil, nil, repo:head("orket/E-1"))
      return true
    end))
    assert.is_truthy(in_task(prbranch.push, { repo = repo, g = g, card = "E-1", got = got }))
    local res = assert(done(true))
    assert.equal("done", res.code)
    assert.is_true(repo:contains("refs/heads/main", theirs))
    -- the remote's branch holds nothing main lacks: nothing to say
    assert.is_nil(in_task(pull_request.branch_left, { db = db, g = g, repo = repo, card = "E-1",
      merge_id = res.merge.id }))
    -- pushed during the review, after its read: merged without it, and said once
    sh(person .. "pull -q --ff-only origin orket/E-1")
    local late = bob("q.txt", "late\n")
    local out = in_task(pull_request.branch_left, { db = db, g = g, repo = repo, card = "E-1", merge_id = res.merge.id,
      run_id = nil })
    assert.same({ code = "left_out", from = late, merge = res.merge.id }, out)
    assert.is_false(repo:contains("refs/heads/main", late))
    local ev = sj.card_event_data(db, "E-1", "remote_branch")
    assert.equal(1, #ev)
    assert.same({ kind = "left_out", from = late, merge = res.merge.id, kept = "refs/remotes/orket-branches/orket/E-1" },
      ev[1])
    local comments = b:comments("E-1")
    local said = comments[#comments]
    assert.equal("orket", said.author)
    assert.matches("Commits pushed to orket/E-1 on the remote during its review (up to " .. late .. ") are not in main",
      said.body, 1, true)
    assert.matches("git -C workspace merge " .. late, said.body, 1, true)
    -- the same head again: said already
    assert.is_nil(in_task(pull_request.branch_left, { db = db, g = g, repo = repo, card = "E-1",
      merge_id = res.merge.id }))
    assert.equal(1, #sj.card_event_data(db, "E-1", "remote_branch"))
    -- a remote that cannot be read is a failure for the caller to say, nothing journaled
    local failed = in_task(pull_request.branch_left, { db = db, g = { remote = base .. "/missing.git" }, repo = repo,
      card = "E-1" })
    assert.equal("failed", failed.code)
    assert.matches("^git: fetching orket/E%-1: ", failed.error)
    assert.is_nil(pull_request.branch_left { db = db, g = {}, repo = repo, card = "E-1" })
  end)

  it("is not a branch someone rewrote (the hand-in replaces that), nor one the card's branch holds", function()
    local pushed = repo:head("orket/E-1")
    -- no head recorded: nothing Orket pushed to be on top of
    assert(db:tx(function()
      assert(db:run("DELETE FROM pull_requests WHERE card_id = ?", "E-1"))
      return true
    end))
    bob("p.txt", "person\n")
    in_task(prbranch.fetch, repo, g, "E-1")
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    assert(db:tx(function()
      sf.save_pull_request(db, "E-1", nil, nil, nil, nil, pushed)
      return true
    end))
    assert.is_truthy(finish.branch_pushed(db, repo, "E-1"))
    -- rewritten: not on top of what was pushed
    sh(person .. "reset -q --hard HEAD~2")
    bob("r.txt", "r\n", true)
    in_task(prbranch.fetch, repo, g, "E-1")
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
    -- gone from the remote: the tracking ref goes too
    sh(person .. "push -q origin :orket/E-1")
    assert.is_false(in_task(prbranch.fetch, repo, g, "E-1"))
    assert.is_nil(finish.branch_pushed(db, repo, "E-1"))
  end)
end)
