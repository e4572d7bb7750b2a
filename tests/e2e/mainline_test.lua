-- main on the remote is main: a run with git.remote pushes main after each merge; a remote
-- main that moved ahead (a person merged on the forge) is fetched and merged, never
-- overwritten; a remote that is down is retried, journaled and pushed by the next run;
-- merges a webhook makes are pushed too, and a conflict with the remote's main becomes a
-- rework of the card.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN
local WHO = { name = "person", email = "person@example.invalid" }

local SCRIPT = F.writer_script {
  { card = "F-1", path = "a.txt", content = "first\n" },
  { card = "F-2", path = "c.txt", content = "two\n" },
}

-- project(git) -> dir: two cards, each written by the coder and merged by the reviewer seat
-- (or by people, with git naming a forge); REMOTE in git is the project's remote.git
local function project(git)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", [[
name = "mainline"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
]] .. git:gsub("REMOTE", dir .. "/remote.git"))
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Mainline", description = "Pushed.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" },
      { id = "F-2", summary = "Write c.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function remote_head(dir)
  return (assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/main"])
end

local function local_head(dir)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:head("main")
end

local function state(dir, id)
  local c = H.card_json(dir, id)
  return c.card.status, c
end

-- person(dir, path, text) -> the commit a person pushes to the remote's main (from a clone
-- of their own: the remote's main merged in, then a change to path)
local function person(dir, path, text)
  local pdir = dir .. "/person"
  os.execute("mkdir -p " .. H.quote(pdir))
  local repo <close> = assert(G.init(pdir, WHO))
  if repo:fetch_main(dir .. "/remote.git") then assert(repo:merge_remote_to_main(WHO)) end
  local card = "P" .. tostring(math.random(1, 1e9))
  assert(repo:worktree(card, dir .. "/person-wt/" .. card))
  H.write(dir .. "/person-wt/" .. card .. "/" .. path, text)
  assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = "a person's change" }))
  assert(repo:merge_to_main(card, WHO))
  assert.equal(repo:head("main"), repo:push(dir .. "/remote.git", "main"))
  return repo:head("main")
end

-- ancestor(dir, id): id is in local main's history
local function in_main(dir, id)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  for _, c in ipairs(assert(repo:log("main", 1000))) do
    if c.id == id then return true end
  end
  return false
end

local function forge_project(forge)
  local dir = project(string.format([[
git = { remote = "REMOTE", forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], forge.url))
  assert(G.init_bare(dir .. "/remote.git"))
  -- the cards are handed in: pushed, their pull requests opened, waiting for people
  local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
  assert.equal(3, r.status, r.stderr .. r.stdout)
  assert.equal("waiting_for_developer", (state(dir, "F-1")))
  local status, text = H.fetch { url = forge.url .. "/__prs", total_timeout_ms = 10000 }
  assert.equal(200, status)
  local numbers = {}
  for _, pr in ipairs(cjson.decode(text)) do numbers[pr.head.ref] = math.tointeger(pr.number) end
  return dir, numbers
end

-- approve(s, dir, numbers, card, delivery) -> the answer to Gitea's approval of card's pull
-- request, given to the head Orket pushed (dir's branch)
local function approve(s, dir, numbers, card, delivery)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  local body = assert(H.read(H.ROOT .. "/tests/fixtures/forge/gitea_review_approved.json"))
    :gsub('"number": 1', '"number": ' .. numbers["orket/" .. card]):gsub("orket/F%-1", "orket/" .. card)
    :gsub('("ref": "orket/[^"]+", "sha": )"0+"', '%1"' .. repo:head("orket/" .. card) .. '"')
  local st, answer = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST", total_timeout_ms = 30000,
    headers = { "Content-Type: application/json", "X-Gitea-Event-Type: pull_request_review_approved",
      "X-Gitea-Delivery: " .. delivery, "X-Gitea-Signature: " .. crypto.hmac_sha256(SECRET, body) }, body = body }
  assert.equal(200, st, answer)
  return cjson.decode(answer)
end

local function events(dir, kind)
  local db <close> = assert(require("orket.project").open_store(dir))
  return db:rows("SELECT card_id, data FROM events WHERE kind = ? ORDER BY id", kind) or {}
end

describe("main on the remote", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is pushed after each merge of a run; a remote that moved ahead is merged, never overwritten", function()
    local dir = project('git = { remote = "REMOTE" }\n')
    assert(G.init_bare(dir .. "/remote.git"))
    -- a person pushed to the remote's main before the run
    local theirs = person(dir, "p.txt", "person\n")
    local r = H.orket("run F --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", (state(dir, "F-1")))
    assert.equal("done", (state(dir, "F-2")))
    assert.equal(local_head(dir), remote_head(dir))
    assert.is_true(in_main(dir, theirs))
    assert.equal("person\n", H.read(dir .. "/workspace/p.txt"))
    assert.equal("first\n", H.read(dir .. "/workspace/a.txt"))
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("%*%* the remote's main merged into main %(merged, %x+%)", log)
    assert.matches("%*%* main pushed to the remote %(" .. local_head(dir) .. "%)", log)
    -- the remote moves ahead again; the next run (nothing left to do) merges and pushes it
    theirs = person(dir, "q.txt", "again\n")
    local before = local_head(dir)
    r = H.orket("run F --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.is_true(in_main(dir, theirs))
    assert.is_true(in_main(dir, before))
    assert.equal(local_head(dir), remote_head(dir))
    assert.equal("again\n", H.read(dir .. "/workspace/q.txt"))
    local repo <close> = assert(G.open(dir .. "/workspace"))
    assert.is_true(repo:check())
  end)

  it("pushes merges a webhook makes; a conflict with the remote's main sends the card back", function()
    local forge = H.fake_forge()
    local dir, numbers = forge_project(forge)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } })
    -- approved: merged, and the server pushes main
    assert.equal("done", approve(s, dir, numbers, "F-2", "d-1").outcome)
    H.wait_for(function() return remote_head(dir) == local_head(dir) end, "main pushed after the webhook's merge")
    assert.equal("two\n", H.read(dir .. "/workspace/c.txt"))
    -- a person changed a.txt on the remote's main meanwhile: F-1's merge conflicts with it,
    -- so F-1 goes back to in_progress with a comment, and the person's main is kept
    local theirs = person(dir, "a.txt", "the person's\n")
    assert.equal("merge_conflict", approve(s, dir, numbers, "F-1", "d-2").outcome)
    local st, card = state(dir, "F-1")
    assert.equal("in_progress", st)
    assert.matches("conflicts in: a%.txt", card.comments[#card.comments].body)
    assert.is_true(in_main(dir, theirs))
    assert.equal("the person's\n", H.read(dir .. "/workspace/a.txt"))
    -- a redelivery does nothing twice
    assert.equal("duplicate", approve(s, dir, numbers, "F-1", "d-2").outcome)
    assert.equal(0, s.stop())
    forge.stop()
  end)

  it("retries a remote that is down, journals it, and the next run pushes it", function()
    local forge = H.fake_forge()
    local dir, numbers = forge_project(forge)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } })
    local pushes = #events(dir, "push")
    assert(os.rename(dir .. "/remote.git", dir .. "/remote.off"))
    assert.equal("done", approve(s, dir, numbers, "F-2", "d-1").outcome)
    local failed = H.wait_for(function() return events(dir, "push_failed")[1] end, "the failed push journaled")
    local d = cjson.decode(failed.data)
    assert.equal("F-2", failed.card_id)
    assert.equal(4, math.tointeger(d.attempts))
    assert.matches("^git: fetching main: the remote .*/remote.git is no folder here", d.error)
    assert.equal(pushes, #events(dir, "push"))
    assert.equal(0, s.stop())
    forge.stop()
    -- the remote is up again: the next run pushes what is pending first
    assert(os.rename(dir .. "/remote.off", dir .. "/remote.git"))
    assert.is_not.equal(local_head(dir), remote_head(dir))
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    assert.equal(local_head(dir), remote_head(dir))
    assert.matches("%*%* main pushed to the remote %(" .. local_head(dir) .. "%)", H.orket("log 2", { cwd = dir }).stdout)
  end)
end)
