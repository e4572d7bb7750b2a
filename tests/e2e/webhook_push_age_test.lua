-- A push's age is the push's, not its head commit's (orket.forge.event_time). A card's
-- branch that waited in review for days and was then fast-forwarded into main reached
-- Orket as a push whose head commit is that old: judged by the commit's date, the delivery
-- was refused as stale (422), for good (a redelivery carries the same date), and the card
-- was never finished. GitHub's push payload carries repository.pushed_at (Unix seconds);
-- a push without it has no time of its own and is taken (its identity refuses a replay).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"
local forge = require "orket.forge"

local SECRET = F.FORGE_SECRET
local DAY = 86400

local function iso(t, offset)
  if offset then return os.date("!%Y-%m-%dT%H:%M:%S", t - 9000) .. "-02:30" end -- (the same instant)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- a push of main in GitHub's shape: head commit made at commit_at, pushed at pushed_at
-- (nil: left out, as Gitea/Forgejo leave it)
local function push(after, commit_at, pushed_at)
  return cjson.encode { ref = "refs/heads/main", before = ("0"):rep(40), after = after,
    repository = { full_name = "acme/notes", pushed_at = pushed_at }, sender = { login = "alice" },
    pusher = { name = "alice" }, head_commit = { id = after, timestamp = iso(commit_at, true) } }
end

describe("a push webhook's age", function()
  after_each(H.cleanup)

  it("is the push's own time, never its head commit's", function()
    local now = os.time()
    local old = now - 10 * DAY
    local function at(body) return forge.event_time(cjson.decode(body)) end
    assert.equal(now, at(push(("1"):rep(40), old, now)))
    -- pushed_at as ISO 8601, as GitHub's other events give a repository's
    assert.equal(now, forge.event_time { ref = "refs/heads/main", after = ("1"):rep(40),
      repository = { pushed_at = iso(now) }, head_commit = { timestamp = iso(old) } })
    -- none: no time, whatever its head commit says
    assert.is_nil(at(push(("1"):rep(40), old, nil)))
    assert.is_nil(forge.event_time { ref = "refs/heads/main", after = ("1"):rep(40),
      repository = { pushed_at = 1.5 }, head_commit = { timestamp = iso(old) } })
    -- a review's and a pull request's own times, as before
    assert.equal(old, forge.event_time { review = { submitted_at = iso(old) }, repository = { pushed_at = now } })
    assert.equal(old, forge.event_time { pull_request = { updated_at = iso(old) }, repository = { pushed_at = now } })
  end)

  it("takes a push of a 10-day-old commit made now, and refuses a push made 10 days ago", function()
    local dir = H.tmpdir()
    assert(G.init_bare(dir .. "/remote.git"))
    assert.equal(0, H.orket("init --yes " .. H.quote(dir .. "/p")).status)
    dir = dir .. "/p"
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format([[

git = { remote = %q, forge = "github", repo = "acme/notes", api_url = "http://127.0.0.1:9", token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
]], "file://" .. dir .. "/../remote.git"))
    require("tests.backends").project(dir)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = "x" } })
    local stopped = false
    finally(function() if not stopped then s.stop() end end)
    local function deliver(id, body)
      local status, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST",
        headers = { "Content-Type: application/json", "X-GitHub-Event: push", "X-GitHub-Delivery: " .. id,
          "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(SECRET, body) }, body = body, total_timeout_ms = 30000 }
      return status, cjson.decode(text)
    end
    local now = os.time()
    -- the card's commit waited 10 days in review; main was fast-forwarded to it now. (The
    -- scratch remote has no main, so the push is then ignored: past the age check.)
    local code, doc = deliver("d1", push(("1"):rep(40), now - 10 * DAY, now))
    assert.equal(200, code, cjson.encode(doc))
    assert.equal("ignored", doc.outcome)
    -- a forge that sends no push time: taken too
    code, doc = deliver("d2", push(("2"):rep(40), now - 10 * DAY, nil))
    assert.equal(200, code, cjson.encode(doc))
    -- a push that itself is older than webhook_max_age_s (3 days) is still refused
    code, doc = deliver("d3", push(("3"):rep(40), now - 10 * DAY, now - 10 * DAY))
    assert.same({ 422, "stale" }, { code, doc.error and doc.error.code })
    stopped = true
    assert.equal(0, s.stop())
  end)
end)
