-- People reviewing on a forge: a card handed in is pushed to a bare repository (the remote)
-- and its pull request opened on a fake forge API on loopback; signed webhook deliveries
-- (payload fixtures in the forges' documented shapes) send it back or make it done and
-- merged; bad deliveries are refused before the body is read as JSON; a redelivery changes
-- nothing.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN
local FIX = H.ROOT .. "/tests/fixtures/forge/"

local function fixture(name) return assert(H.read(FIX .. name), name) end

-- post(s, path, headers, body) -> status, decoded answer
local function post(s, path, headers, body)
  local status, text = H.fetch { url = s.url .. path, method = "POST", headers = headers, body = body,
    total_timeout_ms = 30000 }
  return status, cjson.decode(text ~= "" and text or "null")
end

local function get(url)
  local status, text = H.fetch { url = url, total_timeout_ms = 10000 }
  assert.equal(200, status)
  return cjson.decode(text)
end

local function gitea(s, event, delivery, body, sig)
  return post(s, "/v1/webhooks/gitea", { "Content-Type: application/json", "X-Gitea-Event: pull_request",
    "X-Gitea-Event-Type: " .. event, "X-Gitea-Delivery: " .. delivery,
    "X-Gitea-Signature: " .. (sig or crypto.hmac_sha256(SECRET, body)) }, body)
end

local function github(s, event, delivery, body, sig)
  return post(s, "/v1/webhooks/github", { "Content-Type: application/json", "X-GitHub-Event: " .. event,
    "X-GitHub-Delivery: " .. delivery,
    "X-Hub-Signature-256: " .. (sig or ("sha256=" .. crypto.hmac_sha256(SECRET, body))) }, body)
end

-- raw(port, text) -> what the server sent back before it closed the connection
local function raw(port, text)
  local uv = require "luv"
  -- the server closes while the rest is still being written: EPIPE, not a SIGPIPE that kills us
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end)
  local c = uv.new_tcp()
  local st = { data = {}, closed = false }
  c:connect("127.0.0.1", port, function(err)
    if err then st.closed = true return end
    c:write(text, function() end)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.closed = true end
    end)
  end)
  H.wait_for(function() return st.closed or table.concat(st.data):find("\r\n\r\n") end, "the answer")
  if not c:is_closing() then c:close() end
  pipe:close()
  return table.concat(st.data)
end

local fake_forge = H.fake_forge

local function state(dir, id)
  local c = H.card_json(dir, id)
  return c.card.status, c
end

local SCRIPT = F.writer_script {
  { card = "F-1", path = "b.txt", content = "rework\n", run = 2 },
  { card = "F-1", path = "a.txt", content = "first\n" },
  { card = "F-2", path = "c.txt", content = "two\n" },
}

-- A project whose cards are reviewed by people on forge (gitea or github) at api_url; git:
-- another git section (orket.lua text) and the reviewer seat instead of people.
local function project(forge, api_url, git)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "forge"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
git = { remote = %q, forge = %q, repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], "file://" .. dir .. "/remote.git", forge, api_url))
  if git then
    local text = H.read(dir .. "/orket.lua"):gsub("git = {.-}\nreview = { human = true }\n", "")
    H.write(dir .. "/orket.lua", text .. git:gsub("REMOTE", dir .. "/remote.git"))
  end
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Forge", description = "Reviewed by people.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" },
      { id = "F-2", summary = "Write c.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- a run that ends with the cards waiting for people stalls (exit 3), saying so
local function run(dir, args)
  local r = H.orket((args or "run F") .. " --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
  if r.status == 3 then
    assert.matches('"waits_for":"review"', r.stdout)
    assert.matches("waiting for review on the forge", r.stdout)
    r.status = 0
  end
  return r
end

local function remote_head(dir, branch)
  return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/" .. branch]
end

local function local_head(dir, branch)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:head(branch)
end

describe("reviews on a forge", function()
  local forge
  before_each(function() forge = fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("drives the human review loop on Gitea: PR opened, changes requested, rework pushed, approved and merged", function()
    local dir = project("gitea", forge.url)
    local r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    -- each card's branch is on the remote, its pull request open, the card waiting for people
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    assert.equal("review", card.card.wait_reason)
    assert.equal(local_head(dir, "orket/F-1"), remote_head(dir, "orket/F-1"))
    assert.equal(local_head(dir, "main"), remote_head(dir, "main"))
    local prs = get(forge.url .. "/__prs")
    assert.equal(2, #prs)
    local numbers = {}
    for _, pr in ipairs(prs) do numbers[pr.head.ref] = math.tointeger(pr.number) end
    assert.equal("main", prs[1].base.ref)
    assert.matches("Orket%-Card: F%-%d", prs[1].body)
    -- the token went to the forge in its header, and nowhere into the project
    for _, req in ipairs(get(forge.url .. "/__log")) do assert.equal("token " .. TOKEN, req.authorization) end
    local leak = io.popen("grep -rl " .. H.quote(TOKEN) .. " " .. H.quote(dir) .. " 2>/dev/null"):read("a")
    assert.equal("", leak)
    assert.equal(numbers["orket/F-1"], math.tointeger(card.forge.pull_request.number))
    assert.matches("%*%* F%-1 pushed %(%x+%); pull request #" .. numbers["orket/F-1"] .. " http://forge.invalid/",
      H.orket("log 1", { cwd = dir }).stdout)

    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    -- the fixture names pull request 1: make it F-1's
    local rejected = fixture("gitea_review_rejected.json"):gsub('"number": 1', '"number": ' .. numbers["orket/F-1"])
    -- Gitea's signature is bare hex: GitHub's form, upper case or another secret are refused
    local mac = crypto.hmac_sha256(SECRET, rejected)
    for _, sig in ipairs { "sha256=" .. mac, mac:upper(), crypto.hmac_sha256("other", rejected), mac:sub(1, 63) } do
      local code, doc = gitea(s, "pull_request_review_rejected", "d-0", rejected, sig)
      assert.equal(401, code, sig)
      assert.equal("bad_signature", doc.error.code)
    end
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    -- the store fails the delivery's transaction: 500, nothing recorded, so the forge's
    -- redelivery is applied once the store is back (not taken for a duplicate)
    local pdb = assert(require("orket.project").open_store(dir))
    assert(pdb:exec("ALTER TABLE review_cycles RENAME TO review_cycles_gone"))
    local code, doc = gitea(s, "pull_request_review_rejected", "d-1", rejected)
    assert.equal(500, code)
    assert.equal("internal", doc.error.code)
    assert(pdb:exec("ALTER TABLE review_cycles_gone RENAME TO review_cycles"))
    pdb:close()
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    code, doc = gitea(s, "pull_request_review_rejected", "d-1", rejected)
    assert.equal(200, code)
    assert.equal("in_progress", doc.outcome)
    st, card = state(dir, "F-1")
    assert.equal("in_progress", st)
    assert.equal(1, math.tointeger(card.card.retries))
    assert.equal("alice", card.comments[#card.comments].author)
    assert.matches("Please write b%.txt as well%.", card.comments[#card.comments].body)
    -- the person's move is in the audit's hash chain, under the forge's name for them
    local audit = H.orket("audit export", { cwd = dir }).stdout
    assert.matches('"action":"webhook_changes_requested","actor":"gitea:alice","at":"[^"]+","card":"F%-1"', audit)
    local verified = H.orket("audit verify", { cwd = dir })
    assert.equal(0, verified.status, verified.stdout .. verified.stderr)
    -- a redelivery: 2xx and nothing moves
    code, doc = gitea(s, "pull_request_review_rejected", "d-1", rejected)
    assert.equal(200, code)
    assert.equal("duplicate", doc.outcome)
    local _, again = state(dir, "F-1")
    assert.equal(#card.history, #again.history)
    assert.equal(1, math.tointeger(again.card.retries))

    -- the rework pushes to the same pull request and the card waits again
    local before = remote_head(dir, "orket/F-1")
    r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    st = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    local after = remote_head(dir, "orket/F-1")
    assert.is_not.equal(before, after, r.stdout)
    assert.equal(local_head(dir, "orket/F-1"), after)
    assert.equal(2, #get(forge.url .. "/__prs"))

    -- an approval of the head before the rework (delivered late), or naming no commit,
    -- merges nothing: the card waits for a review of the head Orket pushed
    local main_before = local_head(dir, "main")
    local function of_head(sha)
      return (fixture("gitea_review_approved.json"):gsub('"number": 1', '"number": ' .. numbers["orket/F-1"])
        :gsub('("ref": "orket/F%-1", "sha": )"0+"', '%1"' .. sha .. '"'))
    end
    for i, sha in ipairs { before, "" } do
      code, doc = gitea(s, "pull_request_review_approved", "d-old-" .. i, of_head(sha))
      assert.equal(200, code)
      assert.equal("ignored", doc.outcome, cjson.encode(doc))
      assert.matches(i == 1 and ("approval is of commit " .. before .. ", not of the card's head " .. after)
        or "approval names no commit", doc.reason, 1, true)
      assert.equal("waiting_for_developer", (state(dir, "F-1")))
      assert.equal(main_before, local_head(dir, "main"))
    end
    assert.equal(main_before, remote_head(dir, "main"))
    -- the card's branch moved on locally past the head pushed (a rework whose push failed, or
    -- a kill before its record): an approval of the pushed head would merge the unreviewed
    -- rework, so it merges nothing; back at that head, the same approval merges
    local ws = H.quote(dir .. "/workspace")
    local p = io.popen("git -C " .. ws .. " -c user.name=x -c user.email=x@x.invalid commit-tree " .. after
      .. "^{tree} -p " .. after .. " -m unpushed")
    local unpushed = p:read("l")
    p:close()
    assert(os.execute("git -C " .. ws .. " update-ref refs/heads/orket/F-1 " .. unpushed))
    code, doc = gitea(s, "pull_request_review_approved", "d-unpushed", of_head(after))
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome, cjson.encode(doc))
    assert.matches("approval is of commit " .. after .. ", not of the card's head " .. unpushed, doc.reason, 1, true)
    assert.equal(main_before, local_head(dir, "main"))
    assert(os.execute("git -C " .. ws .. " update-ref refs/heads/orket/F-1 " .. after))
    -- an app's approval (NAME[bot]) is no person's review, whatever the forge lets it send
    local by_bot = of_head(after):gsub('"login": "alice"', '"login": "helper[bot]"')
    code, doc = gitea(s, "pull_request_review_approved", "d-bot", by_bot)
    assert.equal(200, code)
    assert.same({ "ignored", "the event names no person (a forge login)" }, { doc.outcome, doc.reason })
    assert.equal(main_before, local_head(dir, "main"))
    -- approved: done and merged into main
    local approved = of_head(after:upper()) -- a forge's sha in capitals is the same commit
    -- from Forgejo: its own headers are read first (the Gitea ones it also sends say otherwise)
    code, doc = post(s, "/v1/webhooks/gitea", { "X-Forgejo-Event: pull_request_approved",
      "X-Forgejo-Event-Type: pull_request_review_approved", "X-Gitea-Event-Type: pull_request_review_comment",
      "X-Forgejo-Delivery: d-2", "X-Gitea-Delivery: d-1", "X-Forgejo-Signature: " .. crypto.hmac_sha256(SECRET, approved),
      "X-Gitea-Signature: " .. crypto.hmac_sha256("other", approved) }, approved)
    assert.equal(200, code)
    assert.equal("done", doc.outcome)
    st, card = state(dir, "F-1")
    assert.equal("done", st)
    assert.equal("first\n", H.read(dir .. "/workspace/a.txt"))
    assert.equal("rework\n", H.read(dir .. "/workspace/b.txt"))
    assert.truthy(card.git.merged)
    -- the review cycles are kept and shown
    local cycles = card.forge.reviews
    assert.equal(2, #cycles)
    assert.equal("changes_requested", cycles[1].decision)
    assert.equal("approved", cycles[2].decision)
    assert.equal("alice", cycles[2].reviewer)
    local text = H.orket("card F-1", { cwd = dir }).stdout
    assert.matches("pull request: #" .. numbers["orket/F-1"], text)
    assert.matches("review 2:%s+approved by alice", text)
    -- the PR merged on the forge afterwards changes nothing: the card is done already
    local merged = fixture("gitea_pull_request_closed.json"):gsub('"number": 1', '"number": ' .. numbers["orket/F-1"])
    code, doc = gitea(s, "pull_request", "d-3", merged)
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    -- F-2 merged on the forge without a review, by a merge queue's app: done and merged (an
    -- app's login, "NAME[bot]", was taken for no person, and the card waited for ever)
    -- (a merge names the head it merged: the card's)
    merged = fixture("gitea_pull_request_closed.json"):gsub('"number": 1', '"number": ' .. numbers["orket/F-2"])
      :gsub("orket/F%-1", "orket/F-2"):gsub('"login": "alice"', '"login": "merge-queue[bot]"')
      :gsub('("ref": "orket/F%-2", "sha": )"0+"', '%1"' .. local_head(dir, "orket/F-2") .. '"')
    code, doc = gitea(s, "pull_request", "d-4", merged)
    assert.equal(200, code)
    assert.equal("done", doc.outcome)
    assert.equal("two\n", H.read(dir .. "/workspace/c.txt"))
    assert.matches('"note":"ignored: the card is done already"', s.log())
    assert.equal(0, s.stop())
    local repo <close> = assert(G.open(dir .. "/workspace"))
    assert.is_true(repo:check())
  end)

  it("refuses bad deliveries before reading them, ignores what names no card, caps the body", function()
    local dir = project("github", forge.url)
    assert.equal(0, run(dir).status)
    -- the fixture's review was submitted on 2026-01-01: a window that takes it
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, ORKET_SERVE_LIMITS = "webhook_max_age_s=1000000000" } })
    local body = fixture("github_review_submitted.json")
    local mac = crypto.hmac_sha256(SECRET, body)
    local function hook(sig, b, id)
      local headers = { "X-GitHub-Event: pull_request_review", "X-GitHub-Delivery: " .. (id or "x-1") }
      if sig then headers[#headers + 1] = "X-Hub-Signature-256: " .. sig end
      return post(s, "/v1/webhooks/github", headers, b or body)
    end
    for _, sig in ipairs { false, "sha256=" .. mac:sub(1, 40), "sha256=" .. mac:upper(), "sha1=" .. mac:sub(1, 40),
        "sha256=" .. crypto.hmac_sha256("other", body), mac } do
      local code, doc = hook(sig or nil)
      assert.equal(401, code, tostring(sig))
      assert.equal("bad_signature", doc.error.code)
      -- none at all: the forge's webhook has no secret set; else either form of the
      -- project's secret may be the one that differs (the same words for every project)
      if not sig then
        assert.matches("has no signature header", doc.error.message, 1, true)
        assert.matches("set a secret in the forge's webhook settings", doc.error.remedy, 1, true)
      else
        assert.matches('`git.webhook_secret = secret \"NAME\"`', doc.error.remedy, 1, true)
        assert.matches("`git.webhook_secret_env`", doc.error.remedy, 1, true)
      end
    end
    -- a malformed body with a bad signature is refused for the signature: never parsed
    local code, doc = hook("sha256=" .. crypto.hmac_sha256("other", "{not json"), "{not json")
    assert.equal(401, code)
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, "{not json"), "{not json")
    assert.equal(400, code)
    assert.equal("bad_json", doc.error.code)
    -- a repository this project does not know, and a pull request naming no card
    local other = body:gsub("acme/notes", "acme/other")
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, other), other, "x-2")
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    assert.matches("unknown repository", doc.reason)
    local nocard = body:gsub('"number": 1,', '"number": 99,'):gsub("orket/F%-1", "feature/x")
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, nocard), nocard, "x-3")
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    assert.matches("names no card", doc.reason)
    -- (a request's log line is written once its answer is sent: waited for)
    H.wait_for(function() return s.log():find('"note":"ignored: pull request 99 names no card"', 1, true) end,
      "the request's log line")
    -- what the body leaves out is said so, not as "nil"
    local norepo = body:gsub('"full_name": "acme/notes"', '"full_name": 7')
    assert.is_not.equal(body, norepo)
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, norepo), norepo, "x-norepo")
    assert.same({ 200, "ignored", "the event names no repository (repository.full_name)" },
      { code, doc.outcome, doc.reason })
    local nonumber = nocard:gsub('"number": 99,', '')
    assert.is_not.equal(nocard, nonumber)
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, nonumber), nonumber, "x-nonumber")
    assert.same({ 200, "ignored", "the pull request names no card (and no number: pull_request.number)" },
      { code, doc.outcome, doc.reason })
    -- 30 MB, signed: 413 (over a plain socket: the server answers and closes while the
    -- client still sends, which an HTTP client reports as a reset)
    local big = string.rep("x", 30 << 20)
    local got = raw(s.port, "POST /v1/webhooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: pull_request\r\n"
      .. "X-GitHub-Delivery: x-4\r\nX-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(SECRET, big)
      .. "\r\nContent-Length: " .. #big .. "\r\n\r\n" .. big)
    assert.matches("^HTTP/1.1 413", got)
    -- the PR's author (the account that pushed the workers' work) cannot approve it
    local own = body:gsub('"login": "bob"', '"login": "orket-bot"', 1):gsub('"changes_requested"', '"approved"')
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, own), own, "x-5")
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    -- a reviewer whose login is the seat that did the work: the state machine refuses, once
    -- an approval of a commit that is not the head Orket pushed: ignored
    local stale = body:gsub('"login": "bob"', '"login": "carol"', 1):gsub('"changes_requested"', '"approved"')
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, stale), stale, "x-9")
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    assert.matches("approval is of commit 0000000000000000000000000000000000000000, not of the card's head "
      .. remote_head(dir, "orket/F-1"), doc.reason, 1, true)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    assert.matches("ignored: the approval is of commit", s.log(), 1, true)
    local seat = body:gsub('"login": "bob"', '"login": "senior_developer"', 1):gsub('"changes_requested"', '"approved"')
      :gsub('"commit_id": "0+"', '"commit_id": "' .. remote_head(dir, "orket/F-1") .. '"')
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, seat), seat, "x-8")
    assert.equal(200, code)
    assert.equal("refused", doc.outcome)
    assert.matches("did the work on this issue", doc.reason)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    assert.matches("was not applied", (card.comments[#card.comments] or {}).body or "", s.log() .. cjson.encode(card))
    code, doc = hook("sha256=" .. crypto.hmac_sha256(SECRET, seat), seat, "x-8")
    assert.equal("duplicate", doc.outcome)
    -- closed unmerged: blocked with a comment
    local closed = fixture("github_pull_request_closed.json")
    local cheaders = { "X-GitHub-Event: pull_request", "X-GitHub-Delivery: x-6",
      "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(SECRET, closed) }
    code, doc = post(s, "/v1/webhooks/github", cheaders, closed)
    assert.equal(200, code)
    assert.equal("blocked", doc.outcome)
    st, card = state(dir, "F-1")
    assert.equal("blocked", st)
    assert.matches("closed on the forge by bob without being merged", card.comments[#card.comments].body)
    assert.is_nil(card.forge.pull_request.number) -- the next hand-in opens a new one
    assert.equal(0, s.stop())
    -- without a secret every delivery is refused
    os.remove(dir .. "/serve.out") -- the first server's address must not be read again
    s = H.serve(dir)
    code, doc = hook("sha256=" .. mac, body, "x-7")
    assert.equal(401, code)
    assert.equal("no_secret", doc.error.code)
    -- before its body is read: a delivery declaring 1 MB that never sends it is answered at
    -- once (not after the body's 30 s deadline), and nothing of it is held
    local t0 = require("luv").hrtime()
    local got = raw(s.port, "POST /v1/webhooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: push\r\n"
      .. "X-GitHub-Delivery: x-8\r\nX-Hub-Signature-256: sha256=" .. mac .. "\r\nContent-Length: 1000000\r\n\r\n")
    assert.matches("^HTTP/1.1 401", got)
    assert.matches('"no_secret"', got, 1, true)
    assert.is_true((require("luv").hrtime() - t0) < 10e9)
    assert.equal(0, s.stop())
  end)

  it("keeps a delivery's row while its event may come again, then deletes it", function()
    local dir = project("github", forge.url)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, ORKET_SERVE_LIMITS = "webhook_max_age_s=86400" } })
    local sf = require "orket.store.forge"
    local now, DAY = os.time(), 86400
    local db = assert(require("orket.project").open_store(dir, false))
    sf.record_delivery(db, "github", "old", "pull_request_review", nil, "ignored: before", nil, now - 31 * DAY)
    sf.record_delivery(db, "github", "recent", "pull_request_review", nil, "ignored: before", nil, now - 29 * DAY)
    sf.record_delivery(db, "github", "timeless", "push", nil, "ignored: before")
    db:close()
    -- a review of another repository: ignored, and its id kept with its time
    local function review(at)
      return (fixture("github_review_submitted.json"):gsub("2026%-01%-01T00:00:00Z", os.date("!%Y-%m-%dT%H:%M:%SZ", at))
        :gsub("acme/notes", "acme/other"))
    end
    local fresh = review(now)
    local code, doc = github(s, "pull_request_review", "fresh", fresh)
    assert.same({ 200, "ignored" }, { code, doc.outcome })
    -- older than the window (a day), newer than the 30 days a row is kept: refused as stale
    code, doc = github(s, "pull_request_review", "late", review(now - 2 * DAY))
    assert.same({ 422, "stale" }, { code, doc.error.code })
    db = assert(require("orket.project").open_store(dir, false))
    local rows = assert(db:rows("SELECT delivery, event_at FROM webhook_deliveries ORDER BY delivery"))
    db:close()
    local kept = {}
    for _, r in ipairs(rows) do kept[#kept + 1] = r.delivery .. "=" .. tostring(r.event_at and r.event_at - now) end
    -- the 31-day-old event's row is gone; the 29-day-old one's and the one with no time stay
    assert.same({ "fresh=0", "recent=" .. (-29 * DAY), "timeless=nil" }, kept)
    code, doc = github(s, "pull_request_review", "fresh", fresh)
    assert.same({ 200, "duplicate" }, { code, doc.outcome })
    assert.equal(0, s.stop())
  end)

  -- A stranger's fork opens a pull request from its own orket/F-1 first: the hand-in opens
  -- the card's own, and the stranger's merged on the forge finishes nothing (its merge would
  -- have merged the card's unreviewed work into main and pushed it)
  it("never takes a fork's pull request of the card's branch name for the card's on Gitea", function()
    local dir = project("gitea", forge.url)
    local fork = H.fetch { url = forge.url .. "/__fork?repo=acme/notes&branch=orket/F-1", method = "POST",
      total_timeout_ms = 10000 }
    assert.equal(200, fork)
    assert.equal(0, run(dir).status)
    local st, card = state(dir, "F-1")
    assert.equal("waiting_for_developer", st)
    local own = math.tointeger(card.forge.pull_request.number)
    assert.is_not.equal(1, own)
    local by_number = {}
    for _, pr in ipairs(get(forge.url .. "/__prs")) do by_number[math.tointeger(pr.number)] = pr end
    assert.same({ "acme/notes", "orket-bot" }, { by_number[own].head.repo.full_name, by_number[own].user.login })
    local main_before = remote_head(dir, "main")
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    local merged = cjson.decode((fixture("gitea_pull_request_closed.json")))
    merged.pull_request.head.repo = { full_name = "stranger/notes" }
    merged.pull_request.head.sha = string.rep("f", 40)
    local code, doc = gitea(s, "pull_request", "fork-1", cjson.encode(merged))
    assert.same({ 200, "ignored" }, { code, doc.outcome })
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    assert.equal(main_before, remote_head(dir, "main"))
    assert.equal(0, s.stop())
  end)

  -- A person's decision that looks like an earlier one is a new decision, not a redelivery:
  -- closed, reopened and closed again on the same head (told by its updated_at); the stall
  -- reason of a card waiting for a first review of its reopened pull request names no old
  -- comment; a merge on the forge is said as one in the card's history
  it("takes a pull request closed again after a reopen, and says a merge as a merge", function()
    local dir = project("github", forge.url)
    assert.equal(0, run(dir).status)
    local numbers = {}
    for _, pr in ipairs(get(forge.url .. "/__prs")) do numbers[pr.head.ref] = math.tointeger(pr.number) end
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    local function closed(ago)
      local doc = cjson.decode((fixture("github_pull_request_closed.json")))
      doc.pull_request.number = numbers["orket/F-1"]
      doc.pull_request.updated_at = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - ago)
      return cjson.encode(doc)
    end
    local function set_state(st)
      local status = H.fetch { url = forge.url .. "/repos/acme/notes/pulls/" .. numbers["orket/F-1"], method = "PATCH",
        body = cjson.encode { state = st }, total_timeout_ms = 10000 }
      assert.equal(200, status)
    end
    set_state("closed")
    local code, doc = github(s, "pull_request", "c-1", closed(120))
    assert.same({ 200, "blocked" }, { code, doc.outcome })
    -- the person reopens it; the card's next hand-in finds it and waits for its review
    set_state("open")
    local r = H.orket("retry F-1", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    local st, card = state(dir, "F-1")
    assert.same({ "waiting_for_developer", numbers["orket/F-1"] }, { st, math.tointeger(card.forge.pull_request.number) })
    -- (the card's last comment says the pull request was closed: it no longer waits on that)
    assert.matches('"reason":"waiting for review on the forge"', r.stdout, 1, true)
    assert.is_nil(r.stdout:find("waiting for review on the forge: ", 1, true), r.stdout)
    -- closed again: a new decision, not the first close delivered again
    set_state("closed")
    local again = closed(60)
    code, doc = github(s, "pull_request", "c-2", again)
    assert.same({ 200, "blocked" }, { code, doc.outcome })
    assert.equal("blocked", (state(dir, "F-1")))
    -- that body again under another delivery id is the same close: a duplicate
    code, doc = github(s, "pull_request", "c-3", again)
    assert.same({ 200, "duplicate" }, { code, doc.outcome })
    -- F-2 merged on the forge by a person: its history says merged, never approved
    local merged = cjson.decode((fixture("github_pull_request_closed.json")))
    merged.pull_request.number, merged.pull_request.merged = numbers["orket/F-2"], true
    merged.pull_request.head.ref, merged.pull_request.merged_by = "orket/F-2", { login = "erin" }
    merged.pull_request.head.sha = local_head(dir, "orket/F-2") -- (the head merged: the card's)
    code, doc = github(s, "pull_request", "m-1", cjson.encode(merged))
    assert.same({ 200, "done" }, { code, doc.outcome })
    local text = H.orket("card F-2", { cwd = dir }).stdout
    assert.matches("waiting_for_developer %-> code_review: merged on the forge", text)
    assert.is_nil(text:find("approved on the forge", 1, true), text)
    assert.equal(0, s.stop())
  end)

  -- Gitea's review has no id nor a time of its own: the same request for changes on the
  -- same head (a rework that changed nothing) is a new decision once the card was handed in
  -- again, and the same delivery again within a cycle is a duplicate
  it("takes a request for changes again on the same head after a rework on Gitea", function()
    local dir = project("gitea", forge.url)
    -- every run of F-1 writes the same: its rework leaves its head as it was
    H.write(dir .. "/script.lua", F.writer_script { { card = "F-1", path = "a.txt", content = "first\n" },
      { card = "F-2", path = "c.txt", content = "two\n" } })
    assert.equal(0, run(dir).status)
    local head = remote_head(dir, "orket/F-1")
    local number
    for _, pr in ipairs(get(forge.url .. "/__prs")) do
      if pr.head.ref == "orket/F-1" then number = math.tointeger(pr.number) end
    end
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    local rejected = fixture("gitea_review_rejected.json"):gsub('"number": 1', '"number": ' .. number)
    local code, doc = gitea(s, "pull_request_review_rejected", "g-10", rejected)
    assert.same({ 200, "in_progress" }, { code, doc.outcome })
    code, doc = gitea(s, "pull_request_review_rejected", "g-10b", rejected)
    assert.same({ 200, "duplicate" }, { code, doc.outcome })
    local r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    assert.equal(head, remote_head(dir, "orket/F-1"))
    -- (its stall reason names no old request for changes: it waits for a review of this hand-in)
    assert.is_nil(r.stdout:find("waiting for review on the forge: ", 1, true), r.stdout)
    code, doc = gitea(s, "pull_request_review_rejected", "g-11", rejected)
    assert.same({ 200, "in_progress" }, { code, doc.outcome })
    local _, card = state(dir, "F-1")
    assert.equal(2, math.tointeger(card.card.retries))
    assert.same({ "changes_requested", "changes_requested" }, { card.forge.reviews[1].decision,
      card.forge.reviews[2].decision })
    code, doc = gitea(s, "pull_request_review_rejected", "g-12", rejected)
    assert.same({ 200, "duplicate" }, { code, doc.outcome })
    assert.equal(0, s.stop())
  end)

  it("resumes after kill -9 after a push and after a pull request is opened: one PR per card, nothing lost", function()
    for _, fault in ipairs { "after_git_push:1", "after_git_push:2", "after_pull_request:1", "after_pull_request:2" } do
      local f = fake_forge()
      local dir = project("gitea", f.url)
      local r = H.orket("run F", { cwd = dir, env = { FORGE_TOKEN = TOKEN, ORKET_FAULT = fault } })
      assert.equal(137, r.status, fault .. " was not killed: " .. r.stderr)
      r = run(dir, "resume")
      assert.equal(0, r.status, fault .. ": " .. r.stderr .. r.stdout)
      local prs = get(f.url .. "/__prs")
      f.stop()
      assert.equal(2, #prs, fault)
      for _, id in ipairs { "F-1", "F-2" } do
        local st, card = state(dir, id)
        assert.equal("waiting_for_developer", st, fault)
        assert.equal(local_head(dir, "orket/" .. id), remote_head(dir, "orket/" .. id), fault)
        assert.equal(1, #card.forge.reviews, fault)
      end
      local repo <close> = assert(G.open(dir .. "/workspace"))
      assert.is_true(repo:check())
    end
  end)

  it("pushes each hand-in and opens its pull request, then lets the reviewer seat decide without review.human", function()
    local dir = project("gitea", forge.url, string.format([[
git = { remote = "REMOTE", forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN" }
]], forge.url))
    local r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    for _, id in ipairs { "F-1", "F-2" } do
      local st, card = state(dir, id)
      assert.equal("done", st)
      assert.truthy(card.git.merged)
      assert.equal(local_head(dir, "orket/" .. id), remote_head(dir, "orket/" .. id))
      assert.is_number(card.forge.pull_request.number)
      assert.equal(0, #card.forge.reviews)
    end
    assert.equal(2, #get(forge.url .. "/__prs"))
    -- a remote alone: the branches are pushed, no forge is asked
    dir = project("gitea", forge.url, 'git = { remote = "REMOTE" }\n')
    r = run(dir)
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", (state(dir, "F-1")))
    assert.equal(local_head(dir, "orket/F-1"), remote_head(dir, "orket/F-1"))
    assert.equal(2, #get(forge.url .. "/__prs"))
  end)

  it("leaves a card in code_review when the forge fails, and hands it in on the next run", function()
    local dir = project("gitea", forge.url)
    -- the forge's error quotes the token it was sent: masked before anything prints it
    -- (three times: a passing failure of a read is asked again)
    get(forge.url .. "/__fail?status=500&times=3&echo=1")
    local r = run(dir)
    assert.equal("code_review", (state(dir, "F-1")) == "code_review" and "code_review" or (state(dir, "F-2")))
    assert.matches("HTTP 500: the fake forge fails on purpose %(token %[redacted%] was sent%)", r.stdout .. r.stderr)
    -- said after three calls, and the card's skip said once, not at every round
    assert.matches("%(after 3 calls%)", r.stdout)
    local skips = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = require("cjson.safe").decode(line)
      if type(ev) == "table" and ev.type == "card_skipped" then skips[ev.card] = (skips[ev.card] or 0) + 1 end
    end
    assert.is_true(next(skips) ~= nil, r.stdout)
    for card, n in pairs(skips) do assert.equal(1, n, card .. " was said skipped " .. n .. " times") end
    assert.is_false((r.stdout .. r.stderr):find(TOKEN, 1, true) ~= nil)
    assert.is_nil(H.store_file_holding(dir, TOKEN))
    r = run(dir, "run F")
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("waiting_for_developer", (state(dir, "F-1")))
    assert.equal("waiting_for_developer", (state(dir, "F-2")))
    assert.equal(2, #get(forge.url .. "/__prs"))
  end)
end)
