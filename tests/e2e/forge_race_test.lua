-- Deliveries that land while a run works the same card, or just after a rework: a late
-- "merged" of the head before a rework merges nothing of the rework (the card is blocked,
-- saying so); a merge on the forge while the card is back in work is said and blocks it
-- (its redelivery a duplicate of what was applied); a request for changes delivered while
-- the hand-in opens the pull request is not undone by the hand-in's last transaction.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN
local FIX = H.ROOT .. "/tests/fixtures/forge/"
local LIMITS = "webhook_max_age_s=1000000000" -- the fixtures' times are old

local function fixture(name) return cjson.decode((assert(H.read(FIX .. name), name))) end

local function github(s, event, delivery, doc)
  local body = cjson.encode(doc)
  local status, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = body,
    headers = { "Content-Type: application/json", "X-GitHub-Event: " .. event, "X-GitHub-Delivery: " .. delivery,
      "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(SECRET, body) }, total_timeout_ms = 30000 }
  return status, cjson.decode(text ~= "" and text or "null")
end

local function get(url)
  local status, text = H.fetch { url = url, total_timeout_ms = 10000 }
  assert.equal(200, status)
  return cjson.decode(text)
end

local SCRIPT = F.writer_script {
  { card = "F-1", path = "b.txt", content = "rework\n", run = 2 },
  { card = "F-1", path = "a.txt", content = "first\n" },
  { card = "F-2", path = "c.txt", content = "two\n" },
}

local function project(api_url)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "forge"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
git = { remote = %q, forge = "github", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], "file://" .. dir .. "/remote.git", api_url))
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Forge", description = "Reviewed by people.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" },
      { id = "F-2", summary = "Write c.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function run(dir, args)
  local r = H.orket((args or "run F") .. " --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
  if r.status == 3 and r.stdout:find("waiting for review on the forge", 1, true) then r.status = 0 end
  return r
end

local function state(dir, id)
  local c = H.card_json(dir, id)
  return c.card.status, c
end

local function head(dir, branch)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:head(branch)
end

local function remote_head(dir, branch)
  return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/" .. branch]
end

-- in main's history (the remote's or the workspace's)
local function holds(repo, ref, id)
  return os.execute(string.format("git -C %s merge-base --is-ancestor %s %s 2>/dev/null", H.quote(repo),
    id, ref)) == true
end

local function review(number, state_, sha, id, at)
  local doc = fixture("github_review_submitted.json")
  doc.review.id, doc.review.state, doc.review.commit_id = id, state_, sha
  doc.review.submitted_at = at or os.date("!%Y-%m-%dT%H:%M:%SZ")
  doc.pull_request.number, doc.pull_request.head.sha = number, sha
  doc.pull_request.head.repo, doc.pull_request.base.repo = { full_name = "acme/notes" }, { full_name = "acme/notes" }
  return doc
end

local function merged(number, branch, sha, by)
  local doc = fixture("github_pull_request_closed.json")
  local pr = doc.pull_request
  pr.number, pr.merged, pr.merged_by, pr.head.ref, pr.head.sha = number, true, { login = by }, branch, sha
  pr.merge_commit_sha = string.rep("e", 40)
  pr.updated_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  pr.head.repo, pr.base.repo = { full_name = "acme/notes" }, { full_name = "acme/notes" }
  return doc
end

local function comment_with(card, text)
  for _, c in ipairs(card.comments) do if c.body:find(text, 1, true) then return c end end
  return nil
end

describe("deliveries racing a run on a forge", function()
  local forge
  before_each(function() forge = H.fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("a late merge of the head before a rework merges nothing of the rework; a merge during work is said", function()
    local dir = project(forge.url)
    assert.equal(0, run(dir).status)
    local numbers = {}
    for _, pr in ipairs(get(forge.url .. "/__prs")) do numbers[pr.head.ref] = math.tointeger(pr.number) end
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, ORKET_SERVE_LIMITS = LIMITS } })
    local reviewed = head(dir, "orket/F-1")
    local code, doc = github(s, "pull_request_review", "cr-1", review(numbers["orket/F-1"], "changes_requested",
      reviewed, 81))
    assert.same({ 200, "in_progress" }, { code, doc.outcome })
    -- the rework is handed in and pushed for review
    assert.equal(0, run(dir).status)
    local rework = head(dir, "orket/F-1")
    assert.is_not.equal(reviewed, rework)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    -- a person had merged the reviewed head on the forge (its main holds it); the merge's
    -- delivery comes late, naming that head
    local ws = H.quote(dir .. "/workspace")
    assert(os.execute("git -C " .. ws .. " push -q " .. H.quote(dir .. "/remote.git") .. " " .. reviewed
      .. ":refs/heads/main"))
    local main_before = head(dir, "main")
    code, doc = github(s, "pull_request", "m-late", merged(numbers["orket/F-1"], "orket/F-1", reviewed, "carol"))
    assert.equal(200, code)
    assert.equal("blocked", doc.outcome, cjson.encode(doc))
    assert.matches("not at the card's head " .. rework, doc.reason, 1, true)
    -- the rework is in neither main
    assert.is_false(holds(dir .. "/workspace", "main", rework))
    assert.is_false(holds(dir .. "/remote.git", "main", rework))
    assert.equal(main_before, head(dir, "main"))
    assert.is_nil(H.read(dir .. "/workspace/b.txt"))
    local st, card = state(dir, "F-1")
    assert.equal("blocked", st)
    local said = comment_with(card, "was merged on the forge by carol at commit " .. reviewed)
    assert.truthy(said, cjson.encode(card.comments))
    assert.matches("Orket did not merge the card's branch into main, nor finish the card", said.body, 1, true)
    -- sent again: the same merge, applied once
    code, doc = github(s, "pull_request", "m-late", merged(numbers["orket/F-1"], "orket/F-1", reviewed, "carol"))
    assert.same({ 200, "duplicate" }, { code, doc.outcome })

    -- F-2: changes requested, then a person merges it on the forge before the rework runs:
    -- said on the card and blocked, not ignored without a word
    local f2 = head(dir, "orket/F-2")
    code, doc = github(s, "pull_request_review", "cr-2", review(numbers["orket/F-2"], "changes_requested", f2, 82))
    assert.same({ 200, "in_progress" }, { code, doc.outcome })
    local m2 = merged(numbers["orket/F-2"], "orket/F-2", f2, "dave")
    code, doc = github(s, "pull_request", "m-2", m2)
    assert.equal(200, code)
    assert.equal("blocked", doc.outcome, cjson.encode(doc))
    assert.matches("while the card was in_progress, not in review", doc.reason, 1, true)
    st, card = state(dir, "F-2")
    assert.equal("blocked", st)
    assert.truthy(comment_with(card, "was merged on the forge by dave while the card was in_progress"))
    -- GitHub's Redeliver (the same id): a duplicate of what was applied, nothing said again
    code, doc = github(s, "pull_request", "m-2", m2)
    assert.same({ 200, "duplicate" }, { code, doc.outcome })
    assert.is_nil(doc.card) -- (a duplicate names no card, however it was found)
    local _, again = state(dir, "F-2")
    assert.equal(#card.comments, #again.comments)
    assert.equal(#card.history, #again.history)
    -- the log tells a delivery with no signature from one with a wrong one
    local status = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = "{}",
      headers = { "X-GitHub-Event: ping", "X-GitHub-Delivery: nosig" }, total_timeout_ms = 10000 }
    assert.equal(401, status)
    H.wait_for(function() return s.log():find('"note":"NO_SIGNATURE"', 1, true) end, "the log line")
    assert.equal(0, s.stop())
  end)

  it("a request for changes delivered while the hand-in opens the pull request is not undone", function()
    local dir = project(forge.url)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, ORKET_SERVE_LIMITS = LIMITS } })
    -- the forge's API is slow: the hand-in waits on it with the branch pushed
    assert.equal(200, (H.fetch { url = forge.url .. "/__hold?until=unhold&times=1", method = "POST" }))
    os.execute(string.format("cd %s && { FORGE_TOKEN=%s %s run F-1 --json >run.out 2>run.err & echo $! >run.pid; "
      .. "wait $!; echo $? >run.rc; } &", H.quote(dir), H.quote(TOKEN), H.quote(H.BIN)))
    local ok, err = pcall(function()
      H.wait_for(function() return (state(dir, "F-1")) == "code_review" and remote_head(dir, "orket/F-1") end,
        "the hand-in to push", 3000)
      local code, doc = github(s, "pull_request_review", "cr-1", review(1, "changes_requested",
        remote_head(dir, "orket/F-1"), 91))
      assert.same({ 200, "in_progress" }, { code, doc.outcome })
      H.fetch { url = forge.url .. "/__unhold", method = "POST" }
      H.wait_for(function() return H.read(dir .. "/run.rc") end, "the run to end", 3000)
    end)
    H.fetch { url = forge.url .. "/__unhold", method = "POST" }
    H.end_started(dir, "run.pid", "run.rc", true)
    assert(ok, err)
    -- the hand-in left the card as the review did: the run reworked it in its next turn and
    -- handed that in to the same pull request (before, the card went back to waiting for a
    -- review of the head just rejected, and the run stalled)
    local out = H.read(dir .. "/run.out")
    assert.matches('"phase":"rework"', out, 1, true)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st, out)
    assert.equal(1, math.tointeger(card.forge.pull_request.number))
    assert.equal(1, #get(forge.url .. "/__prs"))
    local text = H.orket("card F-1", { cwd = dir }).stdout
    assert.is_nil(text:find("in_progress -> waiting_for_developer", 1, true), text)
    assert.matches("while its pull request was opened (a review on the forge): left as it is", out, 1, true)
    assert.equal(0, s.stop())
  end)
end)
