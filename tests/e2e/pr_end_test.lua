-- Pull requests end: when Orket merges a card its pull request is merged through the forge's
-- API (only while its head is the commit Orket pushed), else marked merged (Gitea) or closed
-- with a comment naming Orket's merge commit (GitHub); when a person merges on the forge (a
-- push to main holding the card's branch) the card is done once; deliveries for what is not
-- Orket's change nothing.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN
local WHO = { name = "carol", email = "carol@example.invalid" }

local SCRIPT = F.writer_script {
  { card = "F-1", path = "a.txt", content = "first\n" },
  { card = "F-2", path = "c.txt", content = "two\n" },
  { card = "F-3", path = "d.txt", content = "three\n" },
}

local function project(forge_name, forge_url, human)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "prs"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
git = { remote = %q, forge = %q, repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = %s }
]], dir .. "/remote.git", forge_name, forge_url, tostring(human)))
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "PRs", description = "Merged.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" },
      { id = "F-2", summary = "Write c.txt", seat = "senior_developer" },
      { id = "F-3", summary = "Write d.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function get(url)
  local status, text = H.fetch { url = url, total_timeout_ms = 10000 }
  assert.equal(200, status)
  return cjson.decode(text)
end

local function prs(forge)
  local out = {}
  for _, pr in ipairs(get(forge.url .. "/__prs")) do out[pr.head.ref] = pr end
  return out
end

local function state(dir, id)
  local c = H.card_json(dir, id)
  return c.card.status, c
end

local function head(dir, branch)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:head(branch)
end

local function remote_main(dir) return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/main"] end

local function ends(dir)
  local db <close> = assert(require("orket.project").open_store(dir))
  local out = {}
  for _, r in ipairs(db:rows("SELECT card_id, data FROM events WHERE kind = 'pull_request_end' ORDER BY id") or {}) do
    out[#out + 1] = { card = r.card_id, data = cjson.decode(r.data) }
  end
  return out
end

local function hook(s, event, delivery, body)
  local st, text = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST", total_timeout_ms = 30000,
    headers = { "Content-Type: application/json", "X-Gitea-Event-Type: " .. event, "X-Gitea-Delivery: " .. delivery,
      "X-Gitea-Signature: " .. crypto.hmac_sha256(SECRET, body) }, body = body }
  return st, cjson.decode(text)
end

-- Gitea's approval of card's pull request, given to the head Orket pushed (dir's branch)
local function approval(number, card, dir)
  return (assert(H.read(H.ROOT .. "/tests/fixtures/forge/gitea_review_approved.json"))
    :gsub('"number": 1', '"number": ' .. number):gsub("orket/F%-1", "orket/" .. card)
    :gsub('("ref": "orket/[^"]+", "sha": )"0+"', '%1"' .. head(dir, "orket/" .. card) .. '"'))
end

local function push_body(ref, after, repo)
  return cjson.encode { ref = ref, before = string.rep("0", 40), after = after,
    repository = { full_name = repo or "acme/notes" }, pusher = { login = "carol", username = "carol" },
    sender = { login = "carol" } }
end

describe("pull requests end", function()
  local forge
  before_each(function() forge = H.fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("merges through the API, marks merged when the head moved, and finishes a person's merge once (Gitea)", function()
    local dir = project("gitea", forge.url, true)
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    local open = prs(forge)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } })
    -- F-1: the forge's head is the commit Orket pushed: merged through the API, sha-guarded
    local n1 = math.tointeger(open["orket/F-1"].number)
    get(forge.url .. "/__head?repo=acme/notes&number=" .. n1 .. "&sha=" .. head(dir, "orket/F-1"))
    local st, doc = hook(s, "pull_request_review_approved", "d-1", approval(n1, "F-1", dir))
    assert.equal(200, st)
    assert.equal("done", doc.outcome)
    H.wait_for(function() return prs(forge)["orket/F-1"].merged end, "F-1's pull request merged")
    local merge = nil
    for _, req in ipairs(get(forge.url .. "/__log")) do
      if req.path:match("/pulls/" .. n1 .. "/merge$") then merge = req end
    end
    assert.equal(head(dir, "orket/F-1"), cjson.decode(merge.body).head_commit_id)
    -- F-2: someone force-pushed its branch on the forge back to a commit main holds: the head
    -- differs, the forge refuses the merge, and the pull request is marked merged by Orket's
    -- merge commit instead (a head main does not hold is closed: forge_branch_test.lua)
    local n2 = math.tointeger(open["orket/F-2"].number)
    get(forge.url .. "/__head?repo=acme/notes&number=" .. n2 .. "&sha=" .. head(dir, "main"))
    st, doc = hook(s, "pull_request_review_approved", "d-2", approval(n2, "F-2", dir))
    assert.equal("done", doc.outcome)
    local pr2 = H.wait_for(function() local p = prs(forge)["orket/F-2"]; return p.merged and p end, "F-2 marked merged")
    local _, card2 = state(dir, "F-2")
    assert.equal(card2.git.merged, pr2.merge_commit_sha)
    H.wait_for(function() return #ends(dir) == 2 end, "both ends journaled")
    local how = {}
    for _, e in ipairs(ends(dir)) do how[e.card] = e.data.how end
    assert.same({ ["F-1"] = "merged", ["F-2"] = "marked_merged" }, how)
    H.wait_for(function() return remote_main(dir) == head(dir, "main") end, "main pushed")

    -- F-3: a person merges its branch into the forge's main and pushes; the push webhook
    -- moves main forward and the card to done, once
    -- (a copy of the workspace's repository stands for the person's clone)
    local pdir = dir .. "/person"
    os.execute("cp -a " .. H.quote(dir .. "/workspace") .. " " .. H.quote(pdir))
    local person <close> = assert(G.open(pdir))
    assert(person:fetch_main(dir .. "/remote.git"))
    assert(person:merge_remote_to_main(WHO))
    assert(person:merge_to_main("F-3", WHO))
    assert.equal(person:head("main"), person:push(dir .. "/remote.git", "main"))
    local theirs = person:head("main")
    -- a force-push to an orket/ branch by someone else, and a push of another repository: ignored
    st, doc = hook(s, "push", "p-0", push_body("refs/heads/orket/F-3", string.rep("b", 40)))
    assert.equal(200, st)
    assert.equal("ignored", doc.outcome)
    assert.matches("not to main", doc.reason)
    local other = push_body("refs/heads/main", theirs, "acme/other")
    st, doc = hook(s, "push", "p-00", other)
    assert.equal("ignored", doc.outcome)
    assert.matches("unknown repository", doc.reason)
    assert.equal("waiting_for_developer", (state(dir, "F-3")))
    st, doc = hook(s, "push", "p-1", push_body("refs/heads/main", theirs))
    assert.equal(200, st, cjson.encode(doc))
    assert.equal("done", doc.outcome)
    assert.same({ "F-3" }, doc.cards)
    local st3, card3 = state(dir, "F-3")
    assert.equal("done", st3)
    assert.equal("three\n", H.read(dir .. "/workspace/d.txt"))
    assert.equal("carol", card3.forge.reviews[#card3.forge.reviews].reviewer)
    -- local main holds the person's merge: moved forward, not redone
    local repo <close> = assert(G.open(dir .. "/workspace"))
    assert.is_true(repo:contains("refs/heads/main", theirs))
    -- the same push under another delivery id, and the pull request's closed+merged event:
    -- nothing is done twice
    st, doc = hook(s, "push", "p-2", push_body("refs/heads/main", theirs))
    assert.equal("duplicate", doc.outcome)
    local n3 = math.tointeger(open["orket/F-3"].number)
    local closed = assert(H.read(H.ROOT .. "/tests/fixtures/forge/gitea_pull_request_closed.json"))
      :gsub('"number": 1', '"number": ' .. n3):gsub("orket/F%-1", "orket/F-3")
    st, doc = hook(s, "pull_request", "p-3", closed)
    assert.equal("ignored", doc.outcome)
    assert.matches("done already", doc.reason)
    -- a pull request for a branch that names no card of this board
    local stranger = closed:gsub('"number": ' .. n3, '"number": 999'):gsub("orket/F%-3", "orket/GONE-1")
    st, doc = hook(s, "pull_request", "p-4", stranger)
    assert.equal("ignored", doc.outcome)
    assert.matches("names no card", doc.reason)
    H.wait_for(function() return #ends(dir) == 3 end, "F-3's end journaled")
    assert.equal("merged_on_forge", ends(dir)[3].data.how)
    H.wait_for(function() return remote_main(dir) == head(dir, "main") end, "main pushed")
    local _, again = state(dir, "F-3")
    local done, merges = 0, 0
    for _, h in ipairs(again.history) do
      if h.kind == "transition" and type(h.data) == "table" and h.data.to == "done" then done = done + 1 end
      if h.kind == "merge" then merges = merges + 1 end
    end
    assert.equal(1, done, cjson.encode(again.history))
    assert.equal(1, merges)
    assert.equal(0, s.stop())
    assert.is_true(repo:check())
  end)

  it("finishes the cards a push to main merged though the board refuses one of them", function()
    local dir = project("gitea", forge.url, true)
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } })
    -- a person merges F-2's and F-3's branches on the forge and pushes main in one push
    local pdir = dir .. "/person"
    os.execute("cp -a " .. H.quote(dir .. "/workspace") .. " " .. H.quote(pdir))
    local person <close> = assert(G.open(pdir))
    assert(person:fetch_main(dir .. "/remote.git"))
    assert(person:merge_remote_to_main(WHO))
    assert(person:merge_to_main("F-2", WHO))
    assert(person:merge_to_main("F-3", WHO))
    assert.equal(person:head("main"), person:push(dir .. "/remote.git", "main"))
    -- meanwhile someone pushed a commit onto the remote's orket/F-2, which Orket last fetched:
    -- the board refuses to finish F-2 without it or with it unreviewed
    local ws = dir .. "/workspace"
    local f2 = head(dir, "orket/F-2")
    local p = io.popen("git -C " .. H.quote(ws) .. " commit-tree " .. f2 .. "^{tree} -p " .. f2 .. " -m theirs")
    local theirs = p:read("l")
    p:close()
    assert(os.execute("git -C " .. H.quote(ws) .. " update-ref refs/remotes/orket-branches/orket/F-2 " .. theirs))
    local st, doc = hook(s, "push", "p-1", push_body("refs/heads/main", person:head("main")))
    assert.equal(200, st, cjson.encode(doc))
    -- F-3 is finished all the same; F-2 is said, on the card and in the answer
    assert.equal("done", doc.outcome, cjson.encode(doc))
    assert.same({ "F-3" }, doc.cards)
    assert.equal("F-2", doc.refused[1].card)
    assert.matches("has commits Orket did not push", doc.refused[1].reason, 1, true)
    assert.equal("done", (state(dir, "F-3")))
    local st2, card2 = state(dir, "F-2")
    assert.equal("waiting_for_developer", st2)
    local said = false
    for _, c in ipairs(card2.comments or {}) do
      said = said or c.body:find("The forge's merge by carol was not applied", 1, true) ~= nil
    end
    assert.is_true(said, cjson.encode(card2.comments))
    -- the same push again: nothing done twice
    st, doc = hook(s, "push", "p-2", push_body("refs/heads/main", person:head("main")))
    assert.equal("duplicate", doc.outcome)
    assert.equal(0, s.stop())
  end)

  it("ends a pull request the forge could not end at the merge when the next run starts", function()
    local dir = project("gitea", forge.url, true)
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    get(forge.url .. "/__remote?path=" .. dir .. "/remote.git")
    local n = math.tointeger(prs(forge)["orket/F-1"].number)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET, FORGE_TOKEN = TOKEN } })
    -- the forge fails the next calls: the server's follow-up cannot end the pull request (its
    -- read of it is asked three times)
    get(forge.url .. "/__fail?status=503&times=3")
    local st, doc = hook(s, "pull_request_review_approved", "d-1", approval(n, "F-1", dir))
    assert.equal("done", doc.outcome)
    H.wait_for(function()
      for _, req in ipairs(get(forge.url .. "/__log")) do
        if req.path:match("/pulls/" .. n .. "$") then return true end
      end
    end, "the failed call")
    -- said in the server's log: nobody waits for the follow-up, and the pull request stays
    -- open on the forge while the card is done
    local line = H.wait_for(function() return s.log():match('[^\n]*"event":"after_merge"[^\n]*') end,
      "the follow-up's failure in the log")
    assert.matches('"card":"F-1"', line, 1, true)
    assert.matches('"code":"failed"', line, 1, true)
    assert.matches('"step":"pull_request"', line, 1, true)
    assert.matches("503", line, 1, true)
    assert.equal(0, s.stop())
    assert.is_false(prs(forge)["orket/F-1"].merged)
    assert.equal(0, #ends(dir))
    -- the next run ends it first, through the API
    r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    assert.is_true(prs(forge)["orket/F-1"].merged)
    assert.equal(1, #ends(dir))
    assert.equal("merged", ends(dir)[1].data.how)
    -- and never twice
    r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(1, #ends(dir))
  end)

  it("closes the pull request with a comment naming the merge when GitHub refuses the merge", function()
    local dir = project("github", forge.url, false)
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches('"action":"pull_request_end","card":"F%-1"', r.stdout)
    -- the fake forge's heads are not the commits pushed: GitHub refuses each merge (409), and
    -- cannot be told a pull request was merged elsewhere, so each is closed with a comment
    local comments = get(forge.url .. "/__comments")
    for _, id in ipairs { "F-1", "F-2", "F-3" } do
      local _, card = state(dir, id)
      assert.equal("done", card.card.status)
      local pr = prs(forge)["orket/" .. id]
      assert.equal("closed", pr.state)
      local found = false
      for _, c in ipairs(comments) do
        if math.tointeger(c.number or c.issue) == math.tointeger(pr.number) or c.body:find("orket/" .. id, 1, true) then
          found = found or c.body:find(card.git.merged, 1, true) ~= nil
        end
      end
      assert.is_true(found, id .. ": " .. cjson.encode(comments))
    end
    local how = {}
    for _, e in ipairs(ends(dir)) do how[e.card] = e.data.how end
    assert.same({ ["F-1"] = "closed", ["F-2"] = "closed", ["F-3"] = "closed" }, how)
    assert.equal(head(dir, "main"), remote_main(dir))
    -- a later run ends nothing twice
    r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal(3, #ends(dir))
  end)
end)

describe("check results on the forge", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("posts each verification as a status on the branch head, and a failure's tail on the pull request", function()
    local forge = H.fake_forge()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    assert(G.init_bare(dir .. "/remote.git"))
    H.write(dir .. "/orket.lua", string.format([[
name = "checks"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1, turns_per_card = 2 }
git = { remote = %q, forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true, escalate_after = 5, requirements_review_after = 5 }
verify = { command = { "sh", "-c", "if [ -f bad.txt ]; then echo 'line one'; echo 'bad.txt must not exist' >&2; exit 4; fi" } }
]], dir .. "/remote.git", forge.url))
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "C-1", run = 2, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "bad.txt", content = "no\n" }) } } },
  { role = "coder", card = "C-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "good.txt", content = "yes\n" }) } } },
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    H.write(dir .. "/epics/c.json", cjson.encode { id = "C", name = "Checks", description = "Checked.",
      issues = { { id = "C-1", summary = "Write good.txt", seat = "senior_developer" } } })
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run C --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    local first = head(dir, "orket/C-1")
    local statuses = get(forge.url .. "/__statuses")
    assert.equal(1, #statuses, cjson.encode(statuses))
    assert.equal(first, statuses[1].sha)
    assert.equal("success", statuses[1].state)
    assert.equal("orket/verify", statuses[1].context)
    assert.matches("^command %(sh %-c .*%): exit 0", statuses[1].description)
    -- changes requested: the rework writes bad.txt, its check fails: a failure status on the
    -- new head, and the output's tail on the pull request
    local number = math.tointeger(prs(forge)["orket/C-1"].number)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    local rejected = assert(H.read(H.ROOT .. "/tests/fixtures/forge/gitea_review_rejected.json"))
      :gsub('"number": 1', '"number": ' .. number):gsub("orket/F%-1", "orket/C-1")
    local st, doc = hook(s, "pull_request_review_rejected", "r-1", rejected)
    assert.equal(200, st)
    assert.equal("in_progress", doc.outcome)
    assert.equal(0, s.stop())
    r = H.orket("run C --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.matches('"action":"status"', r.stdout)
    statuses = get(forge.url .. "/__statuses")
    local failed
    for _, x in ipairs(statuses) do if x.state == "failure" then failed = x end end
    assert.truthy(failed, cjson.encode(statuses))
    assert.is_not.equal(first, failed.sha)
    assert.matches("exit 4", failed.description)
    local comments = get(forge.url .. "/__comments")
    local body = comments[#comments].body
    assert.matches("Orket's verification failed at " .. failed.sha:sub(1, 12), body)
    assert.matches("bad%.txt must not exist", body)
    assert.matches("````text\n", body)
    -- the branch head the status names is on the remote
    assert.equal(failed.sha, assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/orket/C-1"])
    forge.stop()
  end)
end)

describe("a run against the forge", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  for _, name in ipairs { "github", "gitea" } do
    it("ends with every pull request merged through the API and its statuses posted (" .. name .. ")", function()
      local forge = H.fake_forge()
      local dir = project(name, forge.url, false)
      H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. 'verify = { command = { "true" } }\n')
      -- the fake forge hosts the remote: its pull requests' heads are the branches' tips
      get(forge.url .. "/__remote?path=" .. dir .. "/remote.git")
      local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
      assert.equal(0, r.status, r.stderr .. r.stdout)
      local statuses = get(forge.url .. "/__statuses")
      for _, id in ipairs { "F-1", "F-2", "F-3" } do
        local pr = prs(forge)["orket/" .. id]
        assert.is_true(pr.merged, id)
        local posted = false
        for _, st in ipairs(statuses) do posted = posted or (st.sha == pr.head.sha and st.state == "success") end
        assert.is_true(posted, id .. ": " .. cjson.encode(statuses))
      end
      local how = {}
      for _, e in ipairs(ends(dir)) do how[e.card] = e.data.how end
      assert.same({ ["F-1"] = "merged", ["F-2"] = "merged", ["F-3"] = "merged" }, how)
      assert.equal(head(dir, "main"), remote_main(dir))
      forge.stop()
    end)
  end
end)
