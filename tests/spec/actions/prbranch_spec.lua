-- orket.actions.prbranch and the git layer under it: a card's branch fetched from a remote
-- (repo:fetch_branch, on the thread pool, bounded in time), merged into the card's branch
-- (repo:merge_remote_to_card), and the two rules built on
-- them: a hand-in's take-in of a person's commits, and its push never over them (forced only
-- over a branch it replaces).
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local task = require "orket.task"
local prbranch = require "orket.actions.prbranch"

local WHO = { name = "o", email = "o@x" }

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  assert(p:close(), cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

-- in a task, as the server and the engine call it
local function in_task(fn, ...)
  local res = table.pack(task.spawn(fn, ...):join())
  assert(res[1], tostring(res[2]))
  return table.unpack(res, 2, res.n)
end

describe("a card's branch on the remote", function()
  local dir, repo, g, clone
  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/ws"))
    assert(G.init_bare(dir .. "/remote.git"))
    H.write(dir .. "/ws/a.txt", "a\n")
    repo = assert(G.init(dir .. "/ws", WHO))
    assert(repo:attach("C1", dir .. "/cards/C1", dir .. "/state/C1"))
    H.write(dir .. "/cards/C1/b.txt", "b\n")
    assert(repo:commit("C1", { name = "o", email = "o@x", message = "one" }))
    in_task(function() return assert(repo:push(dir .. "/remote.git", "main")) end)
    in_task(function() return assert(repo:push(dir .. "/remote.git", "orket/C1")) end)
    g = { remote = "file://" .. dir .. "/remote.git" }
    clone = "git -C " .. H.quote(dir .. "/person") .. " -c user.name=bob -c user.email=b@x "
    sh("git clone -q " .. H.quote(dir .. "/remote.git") .. " " .. H.quote(dir .. "/person"))
    sh(clone .. "checkout -q orket/C1")
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function bob(path, text, force)
    H.write(dir .. "/person/" .. path, text)
    sh(clone .. "add " .. path)
    sh(clone .. "commit -q -m bob")
    sh(clone .. "push -q " .. (force and "-f " or "") .. "origin orket/C1")
    return sh(clone .. "rev-parse HEAD")
  end
  local function attach() return repo:attach("C1", dir .. "/cards/C1", dir .. "/state/C1") end

  it("is fetched, and merged into the card's branch: a fast-forward only when asked", function()
    local mine = repo:head("orket/C1")
    assert.equal(mine, in_task(prbranch.fetch, repo, g, "C1"))
    assert.is_false(in_task(prbranch.fetch, repo, g, "NONE"))
    local id = bob("p.txt", "p\n")
    assert.equal(id, in_task(prbranch.fetch, repo, g, "C1"))
    assert.is_true(repo:contains("refs/remotes/orket-branches/orket/C1", mine))
    -- the card moved on too: merged, the card's directory following
    H.write(dir .. "/cards/C1/c.txt", "c\n")
    assert(repo:commit("C1", { name = "o", email = "o@x", message = "two" }))
    local m = assert(repo:merge_remote_to_card("C1", WHO))
    assert.equal("merged", m.kind)
    assert.equal(m.id, repo:head("orket/C1"))
    assert.equal("p\n", H.read(dir .. "/cards/C1/p.txt"))
    assert.equal("c\n", H.read(dir .. "/cards/C1/c.txt"))
    assert.same({}, repo:status("C1"))
    local _, _, code = repo:merge_remote_to_card("NONE", WHO)
    assert.equal("ENOENT", code)
    -- an unreachable remote is an error, and one that never answers is given up on
    local none, ferr = in_task(prbranch.fetch, repo, { remote = dir .. "/missing.git" }, "C1")
    assert.is_nil(none)
    assert.matches("^git: fetching orket/C1: ", ferr)
    local uv = require "luv"
    local server, conns = uv.new_tcp(), {}
    server:bind("127.0.0.1", 0)
    server:listen(8, function()
      local c = uv.new_tcp()
      server:accept(c)
      conns[#conns + 1] = c
    end)
    local port = server:getsockname().port
    local was = prbranch.FETCH_TIMEOUT_MS
    prbranch.FETCH_TIMEOUT_MS = 300
    local t0 = uv.now()
    local base = orket.stats().left_running
    local _, terr, tcode = in_task(prbranch.fetch, repo, { remote = "http://127.0.0.1:" .. port .. "/r.git" }, "C1")
    prbranch.FETCH_TIMEOUT_MS = was
    assert.equal("ETIMEDOUT", tcode, terr)
    assert.is_true(uv.now() - t0 < 5000)
    -- the timed-out fetch runs on in the pool, counted as left running, and ends once its
    -- connection does: the cleanup after this test waits for it, not to remove the
    -- repository under it
    assert.equal(base + 1, orket.stats().left_running)
    H.wait_for(function() return #conns > 0 end, "the fetch's connection")
    for _, c in ipairs(conns) do c:close() end
    server:close()
    H.wait_for(function() return orket.stats().left_running == base end, "the timed-out fetch to end")
  end)

  it("take_pushed: a person's commits on top of what was pushed are taken in; a rewrite is not", function()
    local pushed = repo:head("orket/C1")
    assert.same({ code = "none", remote = pushed }, in_task(prbranch.take_pushed,
      { repo = repo, g = g, card = "C1", pushed = pushed, attach = attach }))
    local id = bob("p.txt", "p\n")
    local out = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = pushed, attach = attach })
    assert.equal("taken", out.code)
    assert.equal("fastforward", out.kind)
    assert.equal(id, repo:head("orket/C1"))
    -- both moved, and conflict: merged with markers, named
    H.write(dir .. "/cards/C1/p.txt", "mine\n")
    assert(repo:commit("C1", { name = "o", email = "o@x", message = "mine" }))
    local theirs = bob("p.txt", "theirs\n")
    out = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = id, attach = attach })
    assert.equal("conflict", out.code)
    assert.same({ "p.txt" }, out.conflicts or out.paths)
    assert.is_true(repo:contains("refs/heads/orket/C1", theirs))
    assert.matches("<<<<<<<", H.read(dir .. "/cards/C1/p.txt"))
    -- a branch someone rewrote (not on top of what was pushed) is left to the push
    sh(clone .. "reset -q --hard HEAD~3")
    local rewritten = bob("r.txt", "r\n", true)
    out = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = theirs, attach = attach })
    assert.same({ code = "rewritten", id = rewritten }, out)
  end)

  it("push: plain after a take-in, so a commit pushed after the fetch refuses it; forced over a rewrite", function()
    local pushed = repo:head("orket/C1")
    local remote = dir .. "/remote.git"
    local function rhead() return assert(G.ls_remote(remote))["refs/heads/orket/C1"] end
    bob("p.txt", "p\n")
    local got = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = pushed, attach = attach })
    assert.equal("taken", got.code)
    H.write(dir .. "/cards/C1/m.txt", "mine\n")
    assert(repo:commit("C1", { name = "o", email = "o@x", message = "mine" }))
    local mine = repo:head("orket/C1")
    -- bob pushes again between the fetch and the push: refused, his commit kept
    local late = bob("q.txt", "q\n")
    local id, err, code = in_task(prbranch.push, { repo = repo, g = g, card = "C1", got = got })
    assert.is_nil(id)
    assert.equal("EREJECTED", code)
    assert.matches("moved after it was read", err, 1, true)
    assert.equal(late, rhead())
    -- read again: taken in, and the plain push goes through
    got = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = pushed, attach = attach })
    assert.equal("taken", got.code)
    assert.is_truthy(in_task(prbranch.push, { repo = repo, g = g, card = "C1", got = got }))
    assert.equal(repo:head("orket/C1"), rhead())
    assert.is_true(repo:contains("refs/heads/orket/C1", late))
    assert.is_true(repo:contains("refs/heads/orket/C1", mine))
    -- a rewritten branch is replaced: forced
    sh(clone .. "fetch -q origin && " .. clone .. "reset -q --hard " .. pushed)
    local rewritten = bob("r.txt", "r\n", true)
    got = in_task(prbranch.take_pushed, { repo = repo, g = g, card = "C1", pushed = repo:head("orket/C1"),
      attach = attach })
    assert.same({ code = "rewritten", id = rewritten }, got)
    assert.is_truthy(in_task(prbranch.push, { repo = repo, g = g, card = "C1", got = got }))
    assert.equal(repo:head("orket/C1"), rhead())
  end)
end)
