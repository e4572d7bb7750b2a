-- A person's commits on a card's pull-request branch: an approval naming them merges nothing
-- (a webhook may name the head when sent, not the commit reviewed) and says so on the card,
-- the pull request and the journal; a hand-in after a person's push takes the person's
-- commits in (never pushed over, verification's push included) for a review of its own.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"
local backends = require "tests.backends"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN
local FIX = H.ROOT .. "/tests/fixtures/forge/"

local function fixture(name) return assert(H.read(FIX .. name), name) end

local function get(url)
  local status, text = H.fetch { url = url, total_timeout_ms = 10000 }
  assert.equal(200, status)
  return cjson.decode(text)
end

local function gitea(s, event, delivery, body)
  local status, text = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST", total_timeout_ms = 60000,
    headers = { "Content-Type: application/json", "X-Gitea-Event: pull_request", "X-Gitea-Event-Type: " .. event,
      "X-Gitea-Delivery: " .. delivery, "X-Gitea-Signature: " .. crypto.hmac_sha256(SECRET, body) }, body = body }
  return status, cjson.decode(text ~= "" and text or "null")
end

local function state(dir, id)
  local c = H.card_json(dir, id)
  return c.card.status, c
end

local SCRIPT = F.writer_script {
  { card = "F-1", path = "b.txt", content = "rework\n", run = 2 },
  { card = "F-1", path = "b.txt", content = "resolved\n", run = 3 },
  { card = "F-1", path = "a.txt", content = "first\n" },
}

-- bob's file breaks the project's check once it says "broken"; the coder's rework after a
-- failed verification fixes it
local CHECK = 'verify = { command = { "sh", "-c", '
  .. '"[ ! -e bob.txt ] || { read l < bob.txt; [ \\"$l\\" != broken ]; }" } }\n'
local FIXING = SCRIPT:gsub("local rules = {", function()
  return 'local rules = {\n  { role = "coder", card = "F-1", match = "Verification failed", reply = '
    .. '{ tool_calls = { call("write_file", { path = "bob.txt", content = "fixed\\n" }) } } },'
end, 1)

local function project(forge, extra, script)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "forge"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
git = { remote = %q, forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], "file://" .. dir .. "/remote.git", forge.url) .. (extra or ""))
  H.write(dir .. "/script.lua", script or SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Forge", description = "Reviewed by people.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  -- the forge hosts the remote: a pull request's head is its branch's tip there
  H.fetch { url = forge.url .. "/__remote?path=" .. dir .. "/remote.git", method = "POST" }
  return dir
end

-- a run, whatever its exit status -> its result
local function run_once(dir)
  return H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
end

local function run(dir)
  local r = run_once(dir)
  if r.status == 3 and r.stdout:find('"waits_for":"review"', 1, true) then r.status = 0 end
  assert.equal(0, r.status, r.stderr .. r.stdout)
  return r
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  assert(ok, cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

local function remote_head(dir, branch)
  return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/" .. branch]
end

-- the project's own repository (its workspace), to be closed by the caller
local function workspace(dir)
  return assert(G.open(dir .. "/workspace"))
end

local function local_head(dir, branch)
  local repo <close> = workspace(dir)
  return repo:head(branch)
end

-- path's text at commit id on the remote, its trailing newline kept
local function remote_text(dir, id, path)
  return sh("git -C " .. H.quote(dir .. "/remote.git") .. " show " .. id .. ":" .. path) .. "\n"
end

-- a person's clone of the remote on the card's branch: commit(path, text) -> its id, pushed
local function person(dir)
  local clone = dir .. "/person"
  sh("git clone -q " .. H.quote(dir .. "/remote.git") .. " " .. H.quote(clone))
  sh("git -C " .. H.quote(clone) .. " checkout -q orket/F-1")
  local git = "git -C " .. H.quote(clone) .. " -c user.name=bob -c user.email=bob@example.invalid "
  return {
    git = git,
    commit = function(path, text, force)
      H.write(clone .. "/" .. path, text)
      sh(git .. "add " .. H.quote(path))
      sh(git .. "commit -q -m " .. H.quote("bob: " .. path))
      sh(git .. "push -q " .. (force and "-f " or "") .. "origin orket/F-1")
      return sh(git .. "rev-parse HEAD")
    end,
  }
end

local function approval(number, sha)
  return (fixture("gitea_review_approved.json"):gsub('"number": 1', '"number": ' .. number)
    :gsub('("ref": "orket/F%-1", "sha": )"0+"', '%1"' .. sha .. '"'))
end

-- path's text at each head a run's hand-ins pushed for review (its `pull_request` events)
local function pushed_versions(dir, stdout, path)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do
    if line:find('"action":"pull_request"', 1, true) then
      local id = assert(line:match('"id":"(%x+)"'), line)
      out[#out + 1] = (remote_text(dir, id, path):gsub("\n$", ""))
    end
  end
  return out
end

-- a project whose first run put F-1 up for review on the forge -> its directory
local function reviewed(forge, extra, script)
  local dir = project(forge, extra, script)
  run(dir)
  return dir
end

-- the forge's first pull request, as its test endpoint lists it
local function first_pr(forge) return get(forge.url .. "/__prs")[1] end

-- the number of the forge's first pull request
local function pr_number(forge) return math.tointeger(first_pr(forge).number) end

-- the comments posted on the forge's pull requests so far
local function comments(forge) return get(forge.url .. "/__comments") end

-- the project's server, with the forge's webhook secret and token
local function serve(dir) return H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } }) end

-- alice's approval of commit sha on pull request number, delivered to server s -> status, answer
local function approve(s, delivery, number, sha)
  return gitea(s, "pull_request_review_approved", delivery, approval(number, sha))
end

-- alice's request for changes on pull request number, as Gitea's webhook body
local function rejection(number)
  return (fixture("gitea_review_rejected.json"):gsub('"number": 1', '"number": ' .. number))
end

-- alice's request for changes delivered through a served webhook, the card back in progress -> its body
local function changes_requested(dir, number)
  local s = serve(dir)
  local rejected = rejection(number)
  assert.equal("in_progress", select(2, gitea(s, "pull_request_review_rejected", "d-1", rejected)).outcome)
  assert.equal(0, s.stop())
  return rejected
end

-- bob pushes path's text on the card's branch, then alice requests changes -> bob's commit, the PR's number
local function bob_then_changes(forge, dir, path, text)
  local number = pr_number(forge)
  local bob = person(dir).commit(path, text)
  changes_requested(dir, number)
  return bob, number
end

-- a run killed at the fault point fault (ORKET_FAULT) -> its result
local function killed_at(dir, fault)
  local killed = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN, ORKET_FAULT = fault } })
  assert.equal(137, killed.status, killed.stderr)
  return killed
end

-- no request the forge received asked it to merge
local function no_merge_asked(forge)
  for _, req in ipairs(get(forge.url .. "/__log")) do
    assert.is_nil(req.path:match("/merge$"), "no merge asked of the forge")
  end
end

-- the last of card's comments holding text, or nil
local function card_comment(card, text)
  local said
  for _, c in ipairs(card.comments) do
    if c.body:find(text, 1, true) then said = c end
  end
  return said
end

-- the journal's webhook events for F-1, one JSON a line, read by a script run in the project
local function webhook_journal(dir)
  H.write(dir .. "/journal.lua", [[
local db = assert(require("orket.store").open(".orket/orket.db"))
for _, r in ipairs(assert(db:rows("SELECT data FROM events WHERE kind = 'webhook' AND card_id = 'F-1'"))) do
  io.write(r.data, "\\n")
end
db:close()
]])
  return H.orket("lua journal.lua", { cwd = dir })
end

-- the states of F-1's "forge_comment" events (its pull request comment's claims and ends), in order
local function webhook_claims(dir)
  local db = assert(require("orket.project").open_store(dir, false))
  local rows = assert(db:rows("SELECT " .. db.dialect.json("data") .. " FROM events WHERE kind = 'forge_comment' "
    .. "AND card_id = 'F-1' ORDER BY id"))
  db:close()
  local out = {}
  for i, r in ipairs(rows) do out[i] = cjson.decode(r.data).state end
  return out
end

-- whether the journal says F-1's pull request comment was posted (a "forge_comment" event, "posted")
local function webhook_told(dir)
  for _, st in ipairs(webhook_claims(dir)) do if st == "posted" then return true end end
  return false
end

local function is_ancestor(dir, id, ref)
  return os.execute("git -C " .. H.quote(dir .. "/remote.git") .. " merge-base --is-ancestor " .. id .. " " .. ref)
    == true
end

describe("a person's commits on a card's pull request branch", function()
  local forge
  before_each(function() forge = H.fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("are not merged by an approval naming them: refused, said on the card, the pull request and the journal", function()
    -- Gitea's webhook names the pull request's head when it is sent, not the commit the
    -- reviewer reviewed: bob's commit, pushed while alice reviewed Orket's, was reviewed by nobody
    local dir = reviewed(forge)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    local orket_head = local_head(dir, "orket/F-1")
    local main_before = local_head(dir, "main")
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    local code, doc = approve(s, "d-1", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("has commits Orket did not push", doc.reason, 1, true)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    assert.equal("review", card.card.wait_reason)
    -- nothing moved: the card's branch, main (here and on the remote), the card's directory
    assert.equal(orket_head, local_head(dir, "orket/F-1"))
    assert.equal(main_before, local_head(dir, "main"))
    assert.is_false(is_ancestor(dir, bob, "main"))
    assert.is_nil(H.read(dir .. "/workspace/bob.txt"))
    assert.is_nil(H.read(dir .. "/.orket/worktrees/F-1/bob.txt"))
    local said = card.comments[#card.comments].body
    assert.matches("approval by alice of commit " .. bob .. " was not applied", said, 1, true)
    assert.matches("taken into the card's branch at its next hand-in", said, 1, true)
    assert.matches("needs its own review", said, 1, true)
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    local c = comments(forge)[1]
    assert.equal(number, math.tointeger(c.number))
    assert.matches("Orket did not merge this pull request", c.body, 1, true)
    assert.matches("has commits Orket did not push", c.body, 1, true)
    local pr = first_pr(forge)
    assert.equal("open", pr.state)
    assert.is_false(pr.merged)
    no_merge_asked(forge)
    assert.equal(0, s.stop())
    if backends.name() == "sqlite" then
      local journal = webhook_journal(dir)
      assert.equal(0, journal.status, journal.stderr)
      assert.matches('"outcome":"ignored"', journal.stdout, 1, true)
      assert.matches("has commits Orket did not push", journal.stdout, 1, true)
    end
  end)

  it("a refusal's pull request comment the forge refused is posted by the review's next delivery, once", function()
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    -- the forge's API fails when the refusal is first said
    local st = H.fetch { url = forge.url .. "/__fail?status=503&times=1", method = "POST", body = "",
      total_timeout_ms = 10000 }
    assert.equal(200, st)
    local code, doc = approve(s, "d-1", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    H.wait_for(function()
      for _, req in ipairs(get(forge.url .. "/__log")) do
        if req.path:match("/comments$") then return true end
      end
    end, "the refused comment's request")
    orket.sleep(200)
    assert.equal(0, #comments(forge))
    local _, card = state(dir, "F-1")
    local said_before = #card.comments
    -- the same review delivered again under a new id: the card's comment is not said again,
    -- the pull request's is posted now
    local code2, doc2 = approve(s, "d-1-again", number, bob)
    assert.equal(200, code2)
    assert.equal("ignored", doc2.outcome, cjson.encode(doc2))
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    assert.matches("Orket did not merge this pull request", comments(forge)[1].body, 1, true)
    _, card = state(dir, "F-1")
    assert.equal(said_before, #card.comments, cjson.encode(card.comments))
    -- posted once: a third delivery posts nothing
    local told = false
    for _ = 1, 50 do
      orket.sleep(20)
      if webhook_told(dir) then told = true break end
    end
    assert.is_true(told)
    assert.equal("ignored", select(2, approve(s, "d-1-third", number, bob)).outcome)
    for _ = 1, 5 do
      orket.sleep(100)
      assert.equal(1, #comments(forge))
    end
    assert.equal(0, s.stop())
  end)

  it("a refusal's owed pull request comment is posted by a redelivery under the same delivery id, once", function()
    -- GitHub's "Redeliver" keeps the delivery's id: the delivery is a duplicate, and says
    -- nothing again, but the pull request comment its refusal owes is posted
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    local st = H.fetch { url = forge.url .. "/__fail?status=503&times=1", method = "POST", body = "",
      total_timeout_ms = 10000 }
    assert.equal(200, st)
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function()
      for _, req in ipairs(get(forge.url .. "/__log")) do
        if req.path:match("/comments$") then return true end
      end
    end, "the refused comment's request")
    -- its failure journaled ("failed"), so owed
    H.wait_for(function() return webhook_claims(dir)[2] == "failed" end, "the failed post journaled")
    assert.equal(0, #comments(forge))
    local _, card = state(dir, "F-1")
    local said_before = #card.comments
    local code2, doc2 = approve(s, "d-1", number, bob)
    assert.equal(200, code2)
    assert.equal("duplicate", doc2.outcome, cjson.encode(doc2))
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    assert.matches("Orket did not merge this pull request", comments(forge)[1].body, 1, true)
    _, card = state(dir, "F-1")
    assert.equal(said_before, #card.comments, cjson.encode(card.comments))
    H.wait_for(function() return webhook_claims(dir)[4] == "posted" end, "the post journaled")
    -- posted: the same id again posts nothing
    assert.equal("duplicate", select(2, approve(s, "d-1", number, bob)).outcome)
    for _ = 1, 5 do
      orket.sleep(100)
      assert.equal(1, #comments(forge))
    end
    assert.same({ "posting", "failed", "posting", "posted" }, webhook_claims(dir))
    assert.equal(0, s.stop())
  end)

  it("a refusal's pull request comment in flight is not posted again by deliveries meanwhile", function()
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    -- the forge holds the comment's post until the test releases it, then fails it: owed afterwards
    for _, u in ipairs { "/__hold?until=unhold&times=1", "/__fail?status=503&times=1" } do
      assert.equal(200, (H.fetch { url = forge.url .. u, method = "POST", body = "", total_timeout_ms = 10000 }))
    end
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function()
      for _, req in ipairs(get(forge.url .. "/__log")) do
        if req.path:match("/comments$") then return true end
      end
    end, "the comment's request")
    -- while it is in flight: the same id again and a new id claim nothing and post nothing
    assert.equal("duplicate", select(2, approve(s, "d-1", number, bob)).outcome)
    assert.equal("ignored", select(2, approve(s, "d-1-again", number, bob)).outcome)
    assert.same({ "posting" }, webhook_claims(dir))
    assert.equal(200, (H.fetch { url = forge.url .. "/__unhold", method = "POST", body = "", total_timeout_ms = 10000 }))
    H.wait_for(function() return webhook_claims(dir)[2] == "failed" end, "the failed post journaled")
    assert.same({ "posting", "failed" }, webhook_claims(dir))
    local posts = 0
    for _, req in ipairs(get(forge.url .. "/__log")) do
      if req.path:match("/comments$") then posts = posts + 1 end
    end
    assert.equal(1, posts)
    -- owed now: the next delivery posts it, once
    assert.equal("ignored", select(2, approve(s, "d-1-third", number, bob)).outcome)
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    H.wait_for(function() return webhook_claims(dir)[4] == "posted" end, "the post journaled")
    assert.equal(0, s.stop())
  end)

  it("a refusal's pull request comment the forge refused for good is not posted again", function()
    -- a 404 (the pull request gone; as 401/403, 410, 422: the token may not comment, it is
    -- locked) would be refused again: journaled "refused", not owed
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    assert.equal(200, (H.fetch { url = forge.url .. "/__fail?status=404&times=1", method = "POST", body = "",
      total_timeout_ms = 10000 }))
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function() return webhook_claims(dir)[2] ~= nil end, "the post's end journaled")
    assert.same({ "posting", "refused" }, webhook_claims(dir))
    assert.equal("duplicate", select(2, approve(s, "d-1", number, bob)).outcome)
    assert.equal("ignored", select(2, approve(s, "d-1-again", number, bob)).outcome)
    orket.sleep(300)
    assert.same({ "posting", "refused" }, webhook_claims(dir))
    local posts = 0
    for _, req in ipairs(get(forge.url .. "/__log")) do
      if req.path:match("/comments$") then posts = posts + 1 end
    end
    assert.equal(1, posts)
    assert.equal(0, #comments(forge))
    assert.equal(0, s.stop())
  end)

  it("an owed pull request comment is not posted once git.repo names another repository", function()
    -- the claim names its repository: pull request #N of the new one is someone else's
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    assert.equal(200, (H.fetch { url = forge.url .. "/__fail?status=503&times=1", method = "POST", body = "",
      total_timeout_ms = 10000 }))
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function() return webhook_claims(dir)[2] == "failed" end, "the failed post journaled")
    local text = H.read(dir .. "/orket.lua")
    local moved = text:gsub('repo = "acme/notes"', 'repo = "acme/other"')
    assert.are_not.equal(text, moved)
    H.write(dir .. "/orket.lua", moved)
    assert.equal("duplicate", select(2, approve(s, "d-1", number, bob)).outcome)
    orket.sleep(300)
    assert.same({ "posting", "failed" }, webhook_claims(dir))
    local posts = 0
    for _, req in ipairs(get(forge.url .. "/__log")) do
      if req.path:match("/comments$") then posts = posts + 1 end
    end
    assert.equal(1, posts)
    assert.equal(0, s.stop())
  end)

  it("a duplicate delivery owing no comment is answered without taking the store's write lock", function()
    -- every duplicate asks whether its refusal's comment is owed: read first, outside any
    -- transaction, so a duplicate does not wait for (nor stall) the store's writers
    if backends.name() ~= "sqlite" then return pending("SQLite only: its write lock") end
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function() return webhook_told(dir) end, "the comment posted")
    local db = assert(require("orket.project").open_store(dir, false))
    local code, doc
    assert(db:run("BEGIN IMMEDIATE")) -- another writer holds the write lock meanwhile
    local ok, aerr = pcall(function() code, doc = approve(s, "d-1", number, bob) end)
    assert(db:run("ROLLBACK"))
    db:close()
    assert(ok, aerr)
    assert.equal(200, code, cjson.encode(doc))
    assert.equal("duplicate", doc.outcome)
    assert.same({ "posting", "posted" }, webhook_claims(dir))
    assert.equal(0, s.stop())
  end)

  it("a refused approval delivered again under a new delivery id: answered refused, said once", function()
    -- a forge's redelivery may carry a new delivery id (the id is not signed); the review's
    -- own identity is the same, and its refusal is not said again on the card, the pull
    -- request or the journal
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    local code, doc = approve(s, "d-1", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    local _, card = state(dir, "F-1")
    local said_before = #card.comments
    local code2, doc2 = approve(s, "d-1-again", number, bob)
    assert.equal(200, code2)
    assert.equal("ignored", doc2.outcome, cjson.encode(doc2))
    assert.equal(doc.reason, doc2.reason)
    assert.matches("has commits Orket did not push", doc2.reason, 1, true)
    -- the same delivery id again: a duplicate, as before
    assert.equal("duplicate", select(2, approve(s, "d-1-again", number, bob)).outcome)
    _, card = state(dir, "F-1")
    assert.equal(said_before, #card.comments, cjson.encode(card.comments))
    -- the pull request's comment is posted in a task of its own: a second one would come soon
    for _ = 1, 10 do
      orket.sleep(100)
      assert.equal(1, #comments(forge))
    end
    assert.equal(0, s.stop())
    if backends.name() == "sqlite" then
      local journal = webhook_journal(dir)
      assert.equal(0, journal.status, journal.stderr)
      local n = select(2, journal.stdout:gsub('"outcome":"ignored"', ""))
      assert.equal(1, n, journal.stdout)
    end
  end)

  it("the same refused approval by another person (a Gitea review has no id): said to that person too", function()
    -- carol approves the head alice approved, with the same text: Gitea's review identity is
    -- the same for both, yet each reviewer is told, once
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    assert.equal("ignored", select(2, approve(s, "d-1", number, bob)).outcome)
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    local _, card = state(dir, "F-1")
    local n = #card.comments
    local carol = approval(number, bob):gsub('"login": "alice"', '"login": "carol"')
    assert.matches('"carol"', carol, 1, true)
    local code, doc = gitea(s, "pull_request_review_approved", "d-2", carol)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    _, card = state(dir, "F-1")
    assert.equal(n + 1, #card.comments, cjson.encode(card.comments))
    assert.truthy(card_comment(card, "approval by carol of commit " .. bob .. " was not applied"))
    H.wait_for(function() return #comments(forge) == 2 end, "carol's comment on the pull request")
    -- carol's delivered again under a new id: said no more
    assert.equal("ignored", select(2, gitea(s, "pull_request_review_approved", "d-3", carol)).outcome)
    _, card = state(dir, "F-1")
    assert.equal(n + 1, #card.comments)
    for _ = 1, 10 do
      orket.sleep(100)
      assert.equal(2, #comments(forge))
    end
    assert.equal(0, s.stop())
  end)

  it("are not merged when the branch was rewritten: said on the card and the pull request", function()
    local dir = reviewed(forge)
    local orket_head = local_head(dir, "orket/F-1")
    local main_before = local_head(dir, "main")
    local number = pr_number(forge)
    -- bob rewrites the branch: his commit replaces Orket's instead of adding to it
    local p = person(dir)
    sh(p.git .. "reset -q --hard HEAD~1")
    local rewritten = p.commit("bob.txt", "bob instead\n", true)
    local s = serve(dir)
    local code, doc = approve(s, "d-1", number, rewritten)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("not of the card's head " .. orket_head, doc.reason, 1, true)
    assert.matches("a rewritten history is replaced", doc.reason, 1, true)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    assert.equal("review", card.card.wait_reason)
    assert.equal(orket_head, local_head(dir, "orket/F-1"))
    assert.equal(main_before, local_head(dir, "main"))
    assert.matches("of commit " .. rewritten .. " was not applied", card.comments[#card.comments].body, 1, true)
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    local c = comments(forge)[1]
    assert.equal(number, math.tointeger(c.number))
    assert.matches("Orket did not merge this pull request", c.body, 1, true)
    assert.matches("commits Orket did not push", c.body, 1, true)
    local pr = first_pr(forge)
    assert.equal("open", pr.state)
    assert.is_false(pr.merged)
    assert.matches('"note":"ignored: the approval is of commit', s.log(), 1, true)
    assert.equal(0, s.stop())
  end)

  it("pushed after the approved head was merged: the pull request is closed saying so, never marked merged", function()
    local dir = reviewed(forge)
    local orket_head = local_head(dir, "orket/F-1")
    local number = pr_number(forge)
    local s = serve(dir)
    -- alice approves Orket's head; bob pushes on top before Orket ends the pull request
    local bob = person(dir).commit("bob.txt", "bob's late fix\n")
    local code, doc = approve(s, "d-1", number, orket_head)
    assert.equal(200, code)
    assert.equal("done", doc.outcome, cjson.encode(doc))
    local pr = H.wait_for(function() local p = first_pr(forge); return p.state == "closed" and p end,
      "the pull request ended")
    assert.is_false(pr.merged)
    local c = comments(forge)[1]
    assert.matches("head " .. bob .. " has commits main does not hold", c.body, 1, true)
    assert.is_nil(H.read(dir .. "/workspace/bob.txt"))
    assert.equal(0, s.stop())
    local ends = H.orket("log 1 --json", { cwd = dir }).stdout
    assert.is_nil(ends:find("marked_merged", 1, true))
  end)

  it("survive the card's next hand-in: taken into the rework before its push", function()
    local dir = reviewed(forge)
    local number = pr_number(forge)
    local bob = person(dir).commit("bob.txt", "bob's fix\n")
    local s = serve(dir)
    local code, doc = gitea(s, "pull_request_review_rejected", "d-1", rejection(number))
    assert.equal(200, code)
    assert.equal("in_progress", doc.outcome, cjson.encode(doc))
    assert.equal(0, s.stop())
    -- the rework turn writes b.txt; its hand-in takes bob's commit in before the push
    local r = run(dir)
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    local head = remote_head(dir, "orket/F-1")
    assert.equal(local_head(dir, "orket/F-1"), head)
    assert.is_true(is_ancestor(dir, bob, head), r.stdout)
    assert.equal("bob's fix\n", remote_text(dir, head, "bob.txt"))
    assert.equal("rework\n", remote_text(dir, head, "b.txt"))
    assert.matches('"action":"take_pushed"', r.stdout, 1, true)
    local repo <close> = workspace(dir)
    assert.is_true(repo:check())
  end)

  -- the pull request's state is read before a hand-in pushes to it (merged or closed on the
  -- forge meanwhile, it holds the card): with the forge's API down while its git answers,
  -- the rework is still pushed for review, as before that read, and the failed read is said
  it("a rework's hand-in is pushed for review while the forge's API fails, its git answering", function()
    local dir = reviewed(forge)
    local number = pr_number(forge)
    changes_requested(dir, number)
    H.fetch { url = forge.url .. "/__fail?status=503&times=50", method = "POST" }
    local r = run(dir)
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    assert.matches("its state could not be read", r.stdout, 1, true)
    local head = remote_head(dir, "orket/F-1")
    assert.equal(local_head(dir, "orket/F-1"), head)
    assert.equal("rework\n", remote_text(dir, head, "b.txt"))
  end)

  it("survive verification's push before the hand-in: not pushed over, taken in by the hand-in", function()
    local dir = reviewed(forge, 'verify = { command = { "true" } }\n')
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    local bob = bob_then_changes(forge, dir, "bob.txt", "bob's fix\n")
    -- the rework is verified before its hand-in: that push must not drop bob's commit
    local r = run(dir)
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    assert.matches('"action":"status"', r.stdout, 1, true)
    assert.matches("not pushed over here", r.stdout, 1, true)
    assert.matches('"action":"take_pushed"', r.stdout, 1, true)
    local head = remote_head(dir, "orket/F-1")
    assert.equal(local_head(dir, "orket/F-1"), head)
    assert.is_true(is_ancestor(dir, bob, head), r.stdout)
    assert.equal("rework\n", remote_text(dir, head, "b.txt"))
  end)

  it("an approval of an older head is refused and said: the head pushed after it needs its own review", function()
    local dir = reviewed(forge)
    local first = local_head(dir, "orket/F-1")
    local number = pr_number(forge)
    changes_requested(dir, number)
    run(dir)
    local second = local_head(dir, "orket/F-1")
    assert.are_not.equal(first, second)
    assert.equal(second, remote_head(dir, "orket/F-1"))
    local main_before = local_head(dir, "main")
    local comments_before = #comments(forge)
    -- alice's approval of the first head arrives after the rework's push
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, first)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("is an older head of the pull request", doc.reason, 1, true)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    assert.equal("review", card.card.wait_reason)
    assert.equal(second, local_head(dir, "orket/F-1"))
    assert.equal(main_before, local_head(dir, "main"))
    local said = card.comments[#card.comments].body
    assert.matches("approval by alice of commit " .. first .. " was not applied", said, 1, true)
    assert.matches("the current head " .. second .. " needs its own review", said, 1, true)
    local c = H.wait_for(function()
      local all = comments(forge)
      return #all > comments_before and all[#all]
    end, "the comment on the pull request")
    assert.equal(number, math.tointeger(c.number))
    assert.matches("Orket did not merge this pull request", c.body, 1, true)
    assert.matches("is an older head of the pull request", c.body, 1, true)
    local pr = first_pr(forge)
    assert.equal("open", pr.state)
    no_merge_asked(forge)
    assert.equal(0, s.stop())
    if backends.name() == "sqlite" then
      local journal = webhook_journal(dir)
      assert.equal(0, journal.status, journal.stderr)
      assert.matches('"outcome":"ignored"', journal.stdout, 1, true)
      assert.matches("is an older head of the pull request", journal.stdout, 1, true)
    end
  end)

  -- bob pushes a commit that breaks the project's check; alice requests changes; the rework's
  -- hand-in takes bob's commit in. -> the run's stdout
  local function broken_by_bob()
    local dir = reviewed(forge, CHECK, FIXING)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    local bob = bob_then_changes(forge, dir, "bob.txt", "broken\n")
    return dir, bob
  end

  -- bob.txt's text at each head a run's stdout says was pushed for review
  local function reviewed_bob(dir, stdout)
    local out = {}
    for line in stdout:gmatch("[^\n]+") do
      if line:find('"action":"pull_request"', 1, true) and not line:find('"error"', 1, true) then
        local id = assert(line:match('"id":"(%x+)"'), line)
        local p = io.popen("git -C " .. H.quote(dir .. "/remote.git") .. " show " .. id .. ":bob.txt 2>/dev/null")
        out[#out + 1] = (p:read("a"):gsub("%s+$", ""))
        p:close()
      end
    end
    return out
  end

  local function sent_back_by_check(dir, stdout)
    local _, card = state(dir, "F-1")
    local taken, failed
    for _, c in ipairs(card.comments) do
      if c.body:find("are being taken into the card's branch", 1, true) then taken = true end
      if taken and c.body:find("Verification failed", 1, true) then failed = true end
    end
    assert.truthy(taken, cjson.encode(card.comments))
    assert.truthy(failed, cjson.encode(card.comments))
    assert.matches('"action":"take_pushed","card":"F%-1","id":"%x+","run_id":%d+,"type":"git","verify":true', stdout)
  end

  it("that break the project's check are verified before the push for review: the card goes back", function()
    local dir, bob = broken_by_bob()
    local r = run(dir)
    sent_back_by_check(dir, r.stdout)
    -- no head with bob's broken file was pushed for review: the one pushed is the fixed one
    assert.same({ "fixed" }, reviewed_bob(dir, r.stdout))
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    local head = remote_head(dir, "orket/F-1")
    assert.is_true(is_ancestor(dir, bob, head))
    assert.equal(head, workspace(dir):head("orket/F-1"))
  end)

  it("that break the check, the run killed after the take-in: the next hand-in verifies, never pushes it", function()
    local dir, bob = broken_by_bob()
    local killed = killed_at(dir, "after_take_in:1")
    -- moved to verification with the take-in, before the merge: never in review unverified
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    local repo <close> = workspace(dir)
    assert.is_true(repo:contains("refs/heads/orket/F-1", bob))
    assert.same({}, reviewed_bob(dir, killed.stdout))
    local r = run(dir)
    sent_back_by_check(dir, killed.stdout .. r.stdout)
    assert.same({ "fixed" }, reviewed_bob(dir, r.stdout))
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
  end)

  it("that break the check, the run killed before the take-in's merge: verified, then taken in again", function()
    local dir, bob = broken_by_bob()
    killed_at(dir, "before_take_in_merge:1")
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    local repo <close> = workspace(dir)
    assert.is_false(repo:contains("refs/heads/orket/F-1", bob))
    -- the head it has is verified (it passes), and the next hand-in takes bob's commit in
    local r = run(dir)
    sent_back_by_check(dir, r.stdout)
    assert.same({ "fixed" }, reviewed_bob(dir, r.stdout))
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    local head = remote_head(dir, "orket/F-1")
    assert.is_true(is_ancestor(dir, bob, head))
  end)

  it("taken in by a fast-forward, the run killed: an approval of that head merges nothing, said", function()
    -- the rework adds no commit, so the take-in makes bob's commit the card's head, which is
    -- the pull request's head on the forge too: an approval naming it must not merge it
    local script = F.writer_script {
      { card = "F-1", path = "a.txt", content = "first\n", run = 2 },
      { card = "F-1", path = "a.txt", content = "first\n" },
    }
    local dir = reviewed(forge, CHECK, script)
    local number = pr_number(forge)
    local pushed = local_head(dir, "orket/F-1")
    local bob = person(dir).commit("bob.txt", "broken\n")
    local rejected = changes_requested(dir, number)
    killed_at(dir, "after_take_in:1")
    assert.equal(bob, local_head(dir, "orket/F-1"), "a fast-forward: " .. pushed)
    local main_before = local_head(dir, "main")
    local comments_before = #comments(forge)
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    assert.equal(main_before, local_head(dir, "main"))
    assert.is_false(is_ancestor(dir, bob, "main"))
    assert.matches("are being taken in and verified", doc.reason, 1, true)
    -- said on the card and the pull request, as a request for changes then is
    local again = rejected:gsub('("ref": "orket/F%-1", "sha": )"0+"', '%1"' .. bob .. '"')
    local code2, doc2 = gitea(s, "pull_request_review_rejected", "d-3", again)
    assert.equal(200, code2)
    assert.equal("ignored", doc2.outcome, cjson.encode(doc2))
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    local _, card = state(dir, "F-1")
    local approval_said, changes_said
    for _, c in ipairs(card.comments) do
      if c.body:find("approval by alice of commit " .. bob .. " was not applied", 1, true)
        and c.body:find("must be given again on the head Orket pushes for review", 1, true) then approval_said = true end
      if c.body:find("request for changes by alice was not applied", 1, true)
        and c.body:find("are being taken in and verified", 1, true) then changes_said = true end
    end
    assert.truthy(approval_said, cjson.encode(card.comments))
    assert.truthy(changes_said, cjson.encode(card.comments))
    local said = H.wait_for(function()
      local all = comments(forge)
      return #all >= comments_before + 2 and all
    end, "the comments on the pull request")
    assert.matches("Orket did not merge this pull request", said[comments_before + 1].body .. said[comments_before + 2].body, 1, true)
    for i = comments_before + 1, comments_before + 2 do
      assert.equal(number, math.tointeger(said[i].number))
      assert.matches("are being taken in and verified", said[i].body, 1, true)
    end
    local pr = first_pr(forge)
    assert.equal("open", pr.state)
    assert.is_false(pr.merged)
    no_merge_asked(forge)
    assert.equal(0, s.stop())
  end)

  it("a review while a rework's new head is verified: refused, said, never applied", function()
    local script = F.writer_script {
      { card = "F-1", path = "a.txt", content = "second\n", run = 2 },
      { card = "F-1", path = "a.txt", content = "first\n" },
    }
    local dir = reviewed(forge, CHECK, script)
    local number = pr_number(forge)
    local pushed = local_head(dir, "orket/F-1")
    changes_requested(dir, number)
    -- the rework handed in, its head being verified: the run killed there
    killed_at(dir, "mid_verify:1")
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    assert.are_not.equal(pushed, local_head(dir, "orket/F-1"))
    local main_before = local_head(dir, "main")
    local comments_before = #comments(forge)
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, pushed)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("the card's new work is being verified", doc.reason, 1, true)
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    assert.equal(main_before, local_head(dir, "main"))
    local _, card = state(dir, "F-1")
    local said
    for _, c in ipairs(card.comments) do
      if c.body:find("approval by alice of commit " .. pushed .. " was not applied", 1, true)
        and c.body:find("the card's new work is being verified", 1, true) then said = true end
    end
    assert.truthy(said, cjson.encode(card.comments))
    local all = H.wait_for(function()
      local got = comments(forge)
      return #got > comments_before and got
    end, "the comment on the pull request")
    assert.matches("the card's new work is being verified", all[comments_before + 1].body, 1, true)
    no_merge_asked(forge)
    assert.equal(0, s.stop())
  end)

  it("taken in by a merge not pushed yet: an approval of the pull request's head is not called an older head", function()
    local dir = reviewed(forge)
    local bob, number = bob_then_changes(forge, dir, "bob.txt", "bob's fix\n")
    -- the rework's hand-in merges bob's commit into the card's branch; killed before its push
    killed_at(dir, "after_take_in:1")
    assert.equal("code_review", (state(dir, "F-1")))
    local repo <close> = workspace(dir)
    assert.is_true(repo:contains("refs/heads/orket/F-1", bob))
    assert.are_not.equal(bob, local_head(dir, "orket/F-1"))
    assert.equal(bob, remote_head(dir, "orket/F-1"))
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.is_nil(doc.reason:find("older head", 1, true), doc.reason)
    assert.matches("has commits Orket did not push", doc.reason, 1, true)
    local _, card = state(dir, "F-1")
    assert.matches("has commits Orket did not push", card.comments[#card.comments].body, 1, true)
    assert.equal(0, s.stop())
  end)

  it("that conflict with the rework send the card back with the files named, nothing pushed over them", function()
    local dir = reviewed(forge)
    local bob = bob_then_changes(forge, dir, "b.txt", "bob's b\n")
    local r = run_once(dir)
    assert.matches('"action":"take_pushed","card":"F-1"', r.stdout, 1, true)
    assert.matches('"paths":["b.txt"]', r.stdout, 1, true)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "conflict with the card's work in: b.txt")
    assert.truthy(said, cjson.encode(card.comments))
    -- bob's commit is in the card's branch, and no head with the markers was pushed for
    -- review: the one hand-in pushed is the resolved rework's, on top of bob's commit
    local repo <close> = workspace(dir)
    assert.is_true(repo:contains("refs/heads/orket/F-1", bob))
    local head = remote_head(dir, "orket/F-1")
    assert.is_true(is_ancestor(dir, bob, head))
    assert.same({ "rework" }, pushed_versions(dir, r.stdout, "b.txt"))
    assert.equal("rework\n", remote_text(dir, head, "b.txt"))
    assert.is_true(repo:check())
  end)

  it("that conflict, on a card with checks: sent back from verification with the files named, never pushed", function()
    local dir = reviewed(forge, 'verify = { command = { "sh", "-c", "! grep -q \'^<<<<<<<\' b.txt" } }\n')
    local bob = bob_then_changes(forge, dir, "b.txt", "bob's b\n")
    local r = run(dir)
    assert.matches('"paths":["b.txt"]', r.stdout, 1, true)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "conflict with the card's work in: b.txt")
    assert.truthy(said, cjson.encode(card.comments))
    assert.equal("waiting_for_developer", (state(dir, "F-1")), r.stdout)
    -- the one head pushed for review is the resolved rework's, on top of bob's commit
    assert.same({ "rework" }, pushed_versions(dir, r.stdout, "b.txt"))
    assert.is_true(is_ancestor(dir, bob, remote_head(dir, "orket/F-1")))
  end)

  it("that conflict, the run killed before the card went back: the next hand-in sends it back, never pushes markers", function()
    local dir = reviewed(forge)
    local bob = bob_then_changes(forge, dir, "b.txt", "bob's b\n")
    local killed = killed_at(dir, "after_take_in_conflict:1")
    assert.matches('"paths":["b.txt"]', killed.stdout, 1, true)
    assert.equal("code_review", (state(dir, "F-1")))
    local r = run_once(dir)
    assert.matches('"unresolved":true', r.stdout, 1, true)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "conflict markers that were never resolved")
    assert.truthy(said, cjson.encode(card.comments))
    assert.same({ "resolved" }, pushed_versions(dir, r.stdout, "b.txt"))
    local head = remote_head(dir, "orket/F-1")
    assert.is_true(is_ancestor(dir, bob, head))
    assert.equal("resolved\n", remote_text(dir, head, "b.txt"))
  end)

  -- the conflict merge, the run killed before the card went back: card in ready_for_testing
  -- (with checks) or code_review (without), its head the merge with markers -> dir, markers' id
  local function killed_in_conflict(extra)
    local dir = reviewed(forge, extra)
    local _, number = bob_then_changes(forge, dir, "b.txt", "bob's b\n")
    killed_at(dir, "after_take_in_conflict:1")
    local markers = local_head(dir, "orket/F-1")
    assert.matches("^<<<<<<<", sh("git -C " .. H.quote(dir .. "/workspace") .. " show " .. markers .. ":b.txt"))
    return dir, markers, number
  end

  it("that conflict on a card with checks, the run killed: sent back naming the file, never verified or pushed", function()
    local dir, markers = killed_in_conflict('verify = { command = { "true" } }\n')
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    local r = run_once(dir)
    assert.matches('"unresolved":true', r.stdout, 1, true)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "conflict markers that were never resolved, in: b.txt")
    assert.truthy(said, cjson.encode(card.comments))
    -- the markers were never checked, pushed with a status, nor merged: the resumed run's
    -- first verification is the resolved rework's, after the send-back
    local back = assert(r.stdout:find('"unresolved":true', 1, true))
    local first = r.stdout:find('"type":"verify_start"', 1, true)
    assert.truthy(first and first > back, r.stdout)
    for _, st in ipairs(get(forge.url .. "/__statuses")) do
      assert.are_not.equal(markers, st.sha)
    end
    assert.is_false(is_ancestor(dir, markers, "main"))
    assert.same({ "resolved" }, pushed_versions(dir, r.stdout, "b.txt"))
    local head = remote_head(dir, "orket/F-1")
    assert.equal("resolved\n", remote_text(dir, head, "b.txt"))
  end)

  it("that conflict, the run killed: an approval naming the merge with markers merges nothing", function()
    local dir, markers, number = killed_in_conflict()
    assert.equal("code_review", (state(dir, "F-1")))
    local main_before = local_head(dir, "main")
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, markers)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("conflict markers never resolved", doc.reason, 1, true)
    assert.equal(0, s.stop())
    assert.equal(main_before, local_head(dir, "main"))
    assert.equal("code_review", (state(dir, "F-1")))
    -- nor does a check result's post push it to the pull request's branch
    local before = remote_head(dir, "orket/F-1")
    local repo <close> = workspace(dir)
    local out, err, code = require("orket.actions.checks").report { repo = repo, token = TOKEN, auth = {},
      g = { remote = "file://" .. dir .. "/remote.git", forge = "gitea", repo = "acme/notes", api_url = forge.url },
      card = "F-1", passed = true, what = "command (true)", outcome = "exit 0" }
    assert.is_nil(out)
    assert.equal("EUNRESOLVED", code, err)
    assert.equal(before, remote_head(dir, "orket/F-1"))
    for _, st in ipairs(get(forge.url .. "/__statuses")) do
      assert.are_not.equal(markers, st.sha)
    end
  end)

  it("that conflict, the run killed: an approval of the merge with markers is refused and said, once", function()
    local dir, markers, number = killed_in_conflict()
    assert.equal("code_review", (state(dir, "F-1")))
    local comments_before = #comments(forge)
    local s = serve(dir)
    local code, doc = approve(s, "d-2", number, markers)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("conflict markers never resolved", doc.reason, 1, true)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "approval by alice of commit " .. markers .. " was not applied")
    assert.truthy(said, cjson.encode(card.comments))
    assert.matches("conflict markers never resolved", said.body, 1, true)
    local c = H.wait_for(function()
      local all = comments(forge)
      return #all > comments_before and all[#all]
    end, "the comment on the pull request")
    assert.equal(number, math.tointeger(c.number))
    assert.matches("Orket did not merge this pull request", c.body, 1, true)
    assert.matches("conflict markers never resolved", c.body, 1, true)
    -- delivered again under another id: answered the same, said no more
    local n_card = #card.comments
    local code2, doc2 = approve(s, "d-3", number, markers)
    assert.equal(200, code2)
    assert.equal("ignored", doc2.outcome)
    assert.matches("conflict markers never resolved", doc2.reason, 1, true)
    _, card = state(dir, "F-1")
    assert.equal(n_card, #card.comments)
    for _ = 1, 10 do
      orket.sleep(100)
      assert.equal(comments_before + 1, #comments(forge))
    end
    assert.equal(0, s.stop())
    if backends.name() == "sqlite" then
      local journal = webhook_journal(dir)
      assert.equal(0, journal.status, journal.stderr)
      assert.equal(1, select(2, journal.stdout:gsub("conflict markers never resolved", "")), journal.stdout)
    end
    no_merge_asked(forge)
  end)

  it("that conflict, the run killed: the merge with markers approved, then merged on the forge: each said truly", function()
    local dir, markers, number = killed_in_conflict()
    assert.equal("code_review", (state(dir, "F-1")))
    local main_before = local_head(dir, "main")
    local comments_before = #comments(forge)
    local s = serve(dir)
    assert.equal("ignored", select(2, approve(s, "d-2", number, markers)).outcome)
    local _, card = state(dir, "F-1")
    local said = card_comment(card, "approval by alice of commit " .. markers .. " was not applied")
    assert.truthy(said, cjson.encode(card.comments))
    -- the card goes back to work at its next run: not said to stay as it is
    assert.matches("it is not merged, and the card goes back to work at its next run", said.body, 1, true)
    assert.is_nil(said.body:find("stays as it is", 1, true), said.body)
    assert.matches("Main is unchanged.", said.body, 1, true)
    -- alice merges the pull request on the forge: the forge's main changed, Orket's did not
    local merged = fixture("gitea_pull_request_closed.json"):gsub('"number": 1', '"number": ' .. number)
      :gsub('("ref": "orket/F%-1", "sha": )"0+"', '%1"' .. markers .. '"')
    local code, doc = gitea(s, "pull_request", "d-3", merged)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("the forge's merge is not taken into Orket's main, nor the card finished", doc.reason, 1, true)
    _, card = state(dir, "F-1")
    said = card_comment(card, "The forge's merge by alice was not applied")
    assert.truthy(said, cjson.encode(card.comments))
    assert.is_nil(said.body:find("stays as it is", 1, true), said.body)
    assert.is_nil(said.body:find("it is not merged", 1, true), said.body)
    assert.is_nil(said.body:find("and main is unchanged", 1, true), said.body)
    assert.matches("Orket's main is unchanged (the forge's holds the pull request's merge).", said.body, 1, true)
    local c = H.wait_for(function()
      local all = comments(forge)
      return #all >= comments_before + 2 and all[#all]
    end, "the comments on the pull request")
    assert.matches("^Orket did not finish the card on this merge%. The forge's merge by alice", c.body)
    assert.equal(0, s.stop())
    assert.equal(main_before, local_head(dir, "main"))
    assert.equal("code_review", (state(dir, "F-1")))
  end)

  it("merged on the forge while a take-in was verified: the card is held, not left waiting on a merged pull request", function()
    local dir = reviewed(forge, 'verify = { command = { "true" } }\n')
    local bob, number = bob_then_changes(forge, dir, "bob.txt", "bob's fix\n")
    killed_at(dir, "after_take_in:1")
    assert.equal("ready_for_testing", (state(dir, "F-1")))
    -- bob merges the pull request on the forge meanwhile
    H.fetch { url = forge.url .. "/__merge?repo=acme/notes&number=" .. number .. "&sha=" .. bob, method = "POST" }
    local r = run_once(dir)
    local st, card = state(dir, "F-1")
    assert.are_not.equal("waiting_for_developer", st, r.stdout)
    assert.equal("blocked", st, r.stdout)
    local said = card_comment(card, "The pull request #" .. number .. " was merged on the forge")
    assert.truthy(said, cjson.encode(card.comments))
    assert.is_nil(r.stdout:find('"waiting":true', 1, true), r.stdout)
  end)

  it("a take-in refused because the card moved is no forge failure: the next hand-in is not skipped", function()
    local dir = reviewed(forge)
    local before = local_head(dir, "orket/F-1")
    person(dir).commit("bob.txt", "bob's fix\n")
    -- the hand-in's job run in this process, on a board where a webhook moved the card to
    -- in_progress while its branch was fetched (the job read it in code_review)
    local db = assert(require("orket.project").open_store(dir, false))
    local board = require("orket.board").open(db)
    local moved = setmetatable({
      get = function(_, id)
        local c = board:get(id)
        c.status = "code_review"
        return c
      end,
      status = function() return "in_progress" end,
    }, { __index = board })
    local git = assert(require("orket.engine.gitwork").open(dir .. "/workspace", dir .. "/.orket/worktrees"))
    local evs = {}
    local r = { db = db, board = moved, git = git, run_id = 0, check_lease = function() end,
      emit = function(_, ev) evs[#evs + 1] = ev end,
      settings = { git = { remote = "file://" .. dir .. "/remote.git" }, review = { human = true }, verify = {} } }
    require("orket.engine.pull_request").run(r, { forge = true, card_id = "F-1", head = before })
    git.repo:close()
    db:close()
    assert.is_nil(r.forge_failed and r.forge_failed["F-1"], cjson.encode(evs))
    local said
    for _, ev in ipairs(evs) do
      if ev.code == "EMOVED" and tostring(ev.error):find("not in code_review", 1, true) then said = ev end
    end
    assert.truthy(said, cjson.encode(evs))
    assert.equal(before, local_head(dir, "orket/F-1"))
  end)
  -- a card with checks back in code_review after bob's push, its hand-in's job run in this
  -- process -> {dir=, db=, board=, git=, move(to, actor), hand_in([board]) -> run, events,
  -- take_ins() -> how many take_in events, close()}
  local function taking_in()
    local dir = reviewed(forge, 'verify = { command = { "true" } }\n')
    person(dir).commit("bob.txt", "bob's fix\n")
    local t = { dir = dir }
    t.db = assert(require("orket.project").open_store(dir, false))
    t.board = require("orket.board").open(t.db)
    function t.move(to, actor)
      assert(t.db:tx(function() return t.board:transition("F-1", to, { actor = actor, note = "test" }) end))
    end
    -- alice took the card back to review (as a review's delivery does), before any hand-in
    t.move("code_review", { seat = "alice", roles = { "integrity_guard" }, by = "person" })
    t.git = assert(require("orket.engine.gitwork").open(dir .. "/workspace", dir .. "/.orket/worktrees"))
    function t.hand_in(board)
      local evs = {}
      local r = { db = t.db, board = board or t.board, git = t.git, run_id = 0, check_lease = function() end,
        emit = function(_, ev) evs[#evs + 1] = ev end,
        settings = { git = { remote = "file://" .. dir .. "/remote.git" }, review = { human = true },
          verify = { command = { "true" } } } }
      require("orket.engine.pull_request").run(r, { forge = true, card_id = "F-1", head = t.git.repo:head("orket/F-1") })
      return r, evs
    end
    function t.take_ins()
      return #assert(t.db:rows("SELECT id FROM events WHERE card_id = 'F-1' AND kind = 'take_in'"))
    end
    function t.close()
      t.git.repo:close()
      t.db:close()
    end
    return t
  end

  -- taking_in's card whose take-in merge failed once with a change left in its directory
  -- (EDIRTY), verified on the head it had and back in code_review -> t, that file's path
  local function failed_dirty()
    local t = taking_in()
    local wt = t.dir .. "/.orket/worktrees/F-1/a.txt"
    H.write(wt, "changed by hand\n")
    local r1, evs1 = t.hand_in()
    assert.equal("ready_for_testing", t.board:status("F-1"), cjson.encode(evs1))
    assert.matches("into the card's branch failed", r1.forge_failed["F-1"], 1, true)
    t.move("code_review", require("orket.board").ENGINE)
    return t, wt
  end

  it("a take-in whose merge fails is not merged nor verified again on the same heads", function()
    local t = taking_in()
    local dir, db, board, move, hand_in, take_ins = t.dir, t.db, t.board, t.move, t.hand_in, t.take_ins
    local git = t.git
    local board_mod = require("orket.board")
    -- a change left in the card's directory: the take-in's merge refuses it (EDIRTY)
    local wt = dir .. "/.orket/worktrees/F-1/a.txt"
    H.write(wt, "changed by hand\n")
    local head = git.repo:head("orket/F-1")
    local r1, evs1 = hand_in()
    -- the first failure: the card goes to verification on the head it has, said
    assert.equal("ready_for_testing", board:status("F-1"), cjson.encode(evs1))
    assert.truthy(r1.forge_failed and r1.forge_failed["F-1"], cjson.encode(evs1))
    assert.matches("into the card's branch failed", r1.forge_failed["F-1"], 1, true)
    assert.equal(1, take_ins())
    assert.truthy(card_comment(H.card_json(dir, "F-1"), "The next hand-in does not try this merge again"))
    assert.equal(head, git.repo:head("orket/F-1"))
    -- its verification passes (the engine's move), and the next hand-in finds the same heads
    move("code_review", board_mod.ENGINE)
    local r2, evs2 = hand_in()
    assert.equal("code_review", board:status("F-1"), cjson.encode(evs2))
    assert.equal(1, take_ins())
    local said = r2.forge_failed and r2.forge_failed["F-1"]
    assert.truthy(said, cjson.encode(evs2))
    assert.matches("failed before on these same heads", said, 1, true)
    assert.matches("nor the card verified again", said, 1, true)
    -- the remote's branch moves (and the card's directory is clean): taken in again
    H.write(wt, "first\n")
    local p = dir .. "/person"
    sh("git -C " .. H.quote(p) .. " -c user.name=bob -c user.email=bob@example.invalid commit -q --allow-empty -m more")
    sh("git -C " .. H.quote(p) .. " push -q origin orket/F-1")
    local r3, evs3 = hand_in()
    assert.is_nil(r3.forge_failed and r3.forge_failed["F-1"], cjson.encode(evs3))
    assert.equal("ready_for_testing", board:status("F-1"), cjson.encode(evs3))
    assert.equal(2, take_ins())
    t.close()
  end)

  it("a take-in that failed on a directory's uncommitted changes is tried again once they are gone, no push", function()
    local t, wt = failed_dirty()
    local failure = assert(require("orket.store.forge").last_take_in_failure(t.db, "F-1"))
    assert.equal("EDIRTY", failure.code)
    assert.truthy(card_comment(H.card_json(t.dir, "F-1"), "or the card's directory holds no uncommitted changes"))
    -- still dirty: refused, saying what lets it be tried again
    local r2 = t.hand_in()
    assert.matches("or the card's directory is clean", r2.forge_failed["F-1"], 1, true)
    assert.equal(1, t.take_ins())
    -- the operator puts the file back: neither head moved, the merge is tried and taken in
    H.write(wt, "first\n")
    local r3, evs3 = t.hand_in()
    assert.is_nil(r3.forge_failed and r3.forge_failed["F-1"], cjson.encode(evs3))
    assert.equal(2, t.take_ins())
    assert.equal("ready_for_testing", t.board:status("F-1"), cjson.encode(evs3))
    assert.equal("bob's fix\n", H.read(t.dir .. "/.orket/worktrees/F-1/bob.txt"))
    t.close()
  end)

  it("an approval of commits whose take-in failed on the same heads says the hand-in does not take them in", function()
    local t = failed_dirty()
    local failure = assert(require("orket.store.forge").last_take_in_failure(t.db, "F-1"))
    local bob = failure.from
    t.close()
    local number = pr_number(forge)
    local s = serve(t.dir)
    local code, doc = approve(s, "d-1", number, bob)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("has commits Orket did not push", doc.reason, 1, true)
    -- what the next hand-in does: not this take-in, until a head moves or the directory is clean
    assert.matches("failed before on these same heads", doc.reason, 1, true)
    assert.matches("the card's directory holds no uncommitted changes (commit or remove them), or a person moves "
      .. "the card.", doc.reason, 1, true)
    assert.is_nil(doc.reason:find("taken into the card's branch at its next hand-in", 1, true), doc.reason)
    local said = card_comment(H.card_json(t.dir, "F-1"), "was not applied")
    assert.truthy(said)
    assert.matches("failed before on these same heads", said.body, 1, true)
    H.wait_for(function() return #comments(forge) == 1 end, "the comment on the pull request")
    assert.matches("failed before on these same heads", comments(forge)[1].body, 1, true)
    assert.equal(0, s.stop())
  end)

  it("an approval of commits whose take-in failed, on a card with no checks now: the hand-in takes them in", function()
    -- (the hand-in skips a take-in failed on the same heads only for a card with acceptance
    -- checks: without, it tries again, and the refusal says so)
    local t = failed_dirty()
    local bob = assert(require("orket.store.forge").last_take_in_failure(t.db, "F-1")).from
    t.close()
    local text = H.read(t.dir .. "/orket.lua")
    local plain = text:gsub('verify = { command = { "true" } }\n', "")
    assert.not_equal(text, plain)
    H.write(t.dir .. "/orket.lua", plain)
    local s = serve(t.dir)
    local code, doc = approve(s, "d-1", pr_number(forge), bob)
    assert.equal(200, code)
    assert.matches("taken into the card's branch at its next hand-in", doc.reason, 1, true)
    assert.is_nil(doc.reason:find("failed before on these same heads", 1, true), doc.reason)
    assert.equal(0, s.stop())
  end)

  it("a take-in that failed on something else is tried again once a person moves the card after it", function()
    local t = taking_in()
    local board_mod = require("orket.board")
    -- a lock left on the card's branch (a crashed git): the merge cannot move it
    local lock = t.dir .. "/workspace/.git/refs/heads/orket/F-1.lock"
    H.write(lock, "")
    local r1, evs1 = t.hand_in()
    assert.matches("into the card's branch failed", r1.forge_failed["F-1"], 1, true)
    local failure = assert(require("orket.store.forge").last_take_in_failure(t.db, "F-1"))
    assert.are_not.equal("EDIRTY", failure.code)
    assert.equal("ready_for_testing", t.board:status("F-1"), cjson.encode(evs1))
    assert.truthy(card_comment(H.card_json(t.dir, "F-1"), "or a person moves the card after fixing the cause"))
    t.move("code_review", board_mod.ENGINE)
    -- the lock removed by hand: not enough on its own (nothing says it is gone)
    os.remove(lock)
    local r2 = t.hand_in()
    assert.matches("failed before on these same heads", r2.forge_failed["F-1"], 1, true)
    assert.matches("or a person moves the card", r2.forge_failed["F-1"], 1, true)
    assert.equal(1, t.take_ins())
    -- a person sends it to verification, which passes: its next hand-in tries the merge again
    t.move("ready_for_testing", { seat = "alice", roles = { "integrity_guard" }, by = "person" })
    t.move("code_review", board_mod.ENGINE)
    local r3, evs3 = t.hand_in()
    assert.is_nil(r3.forge_failed and r3.forge_failed["F-1"], cjson.encode(evs3))
    assert.equal(2, t.take_ins())
    assert.equal("ready_for_testing", t.board:status("F-1"), cjson.encode(evs3))
    t.close()
  end)

  it("a take-in that failed, the card moved by a webhook during the fetch: EMOVED, not a failure", function()
    local t = failed_dirty()
    local moved = setmetatable({ status = function() return "in_progress" end }, { __index = t.board })
    local r, evs = t.hand_in(moved)
    assert.is_nil(r.forge_failed and r.forge_failed["F-1"], cjson.encode(evs))
    local said
    for _, ev in ipairs(evs) do
      if ev.code == "EMOVED" and tostring(ev.error):find("not in code_review", 1, true) then said = ev end
    end
    assert.truthy(said, cjson.encode(evs))
    assert.equal(1, t.take_ins())
    t.close()
  end)
end)
