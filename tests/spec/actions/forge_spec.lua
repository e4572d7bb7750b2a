-- The forge pieces on their own: orket.lua's git section and review.human, a branch pushed
-- to a bare repository (repo:push), and webhook payloads read by orket.forge.
local settings = require "orket.settings"
local forge = require "orket.forge"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
teardown(function() H.cleanup() end)
local cjson = require "cjson"

local GOOD = { remote = "file:///srv/r.git", forge = "gitea", repo = "acme/notes", api_url = "https://gitea.example/",
  token_env = "FORGE_TOKEN", webhook_secret_env = "HOOK_SECRET" }

local function with(over)
  local g = {}
  for k, v in pairs(GOOD) do g[k] = v end
  for k, v in pairs(over) do g[k] = v ~= false and v or nil end
  return g
end

describe("orket.lua's git section", function()
  it("resolves a forge, trimming the API URL, and GitHub's API by default", function()
    local s = assert(settings.resolve { git = GOOD, review = { human = true } })
    assert.equal("https://gitea.example", s.git.api_url)
    assert.is_true(s.review.human)
    assert.equal(2, s.review.escalate_after)
    s = assert(settings.resolve { git = with { forge = "github", api_url = false } })
    assert.equal("https://api.github.com", s.git.api_url)
    assert.is_false(s.review.human)
    -- a remote alone: pushes, no pull requests
    s = assert(settings.resolve { git = { remote = "/srv/r.git" } })
    assert.is_nil(s.git.forge)
    assert.is_nil(assert(settings.resolve {}).git)
  end)

  it("refuses what cannot work, naming the field", function()
    for _, c in ipairs {
      { with { forge = "gitlab" }, "orket.lua: git.forge: must be \"gitea\" or \"github\" (got gitlab)" },
      { with { repo = "notes" }, "orket.lua: git.repo: must be \"owner/name\" (got \"notes\")" },
      { with { token_env = "my token" }, "orket.lua: git.token_env: must name an environment variable" },
      { with { token_env = false }, "orket.lua: git.token_env: is needed with git.forge" },
      { with { remote = false }, "orket.lua: git.remote: is needed with git.forge" },
      { with { api_url = false }, "orket.lua: git.api_url: is needed with git.forge = \"gitea\"" },
      { with { api_url = "ftp://x" }, "orket.lua: git.api_url: must be an http:// or https:// URL" },
      { with { token = "abc" }, "orket.lua: git.token: must be secret \"NAME\" (the value is kept with 'orket secrets set NAME'" },
      { with { tokne = "abc" }, "orket.lua: git.tokne: unknown setting (known: api_url, forge, remote, repo, token, token_env, webhook_secret, webhook_secret_env)" },
      { { remote = "/r", repo = "a/b" }, "orket.lua: git.forge: is needed with git.repo" },
    } do
      local s, err, code = settings.resolve { git = c[1] }
      assert.is_nil(s)
      assert.equal("EINVAL", code)
      assert.equal(c[2], err:sub(1, #c[2]))
    end
    local s, err = settings.resolve { review = { human = "yes" } }
    assert.is_nil(s)
    assert.equal("orket.lua: review.human: must be true or false", err)
    s, err = settings.resolve { review = { human = true } }
    assert.is_nil(s)
    assert.matches("^orket.lua: review.human: needs git.forge", err)
  end)
end)

describe("repo:push", function()
  after_each(H.cleanup)

  it("pushes a branch to a bare repository, forced or not, and says why it cannot", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/ws"))
    assert.is_true(G.init_bare(dir .. "/remote.git"))
    assert.is_true(G.init_bare(dir .. "/remote.git")) -- idempotent
    H.write(dir .. "/ws/a.txt", "a\n")
    local repo <close> = assert(G.init(dir .. "/ws", { name = "o", email = "o@x" }))
    assert(repo:worktree("C1", dir .. "/wt/C1"))
    H.write(dir .. "/wt/C1/b.txt", "b\n")
    local first = assert(repo:commit("C1", { name = "o", email = "o@x", message = "one" }))
    assert.equal(repo:head("main"), repo:push(dir .. "/remote.git", "main")) -- the commit it pushed
    assert.equal(first, repo:push("file://" .. dir .. "/remote.git", "orket/C1"))
    local function remote(b) return assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/" .. b] end
    assert.equal(first, remote("orket/C1"))
    assert.equal(repo:head("main"), remote("main"))
    -- another repository's orket/C1 forced onto the remote: ours is no fast-forward of it,
    -- so without force the remote refuses the ref
    os.execute("mkdir -p " .. H.quote(dir .. "/other"))
    H.write(dir .. "/other/x.txt", "x\n")
    local other <close> = assert(G.init(dir .. "/other", { name = "p", email = "p@x" }))
    assert(other:worktree("C1", dir .. "/owt/C1"))
    H.write(dir .. "/owt/C1/y.txt", "y\n")
    assert(other:commit("C1", { name = "p", email = "p@x", message = "theirs" }))
    assert.is_string(other:push(dir .. "/remote.git", "orket/C1", { force = true }))
    H.write(dir .. "/wt/C1/b.txt", "b2\n")
    local second = assert(repo:commit("C1", { name = "o", email = "o@x", message = "two" }))
    local ok, err, code = repo:push(dir .. "/remote.git", "orket/C1")
    assert.is_nil(ok)
    assert.equal("EREJECTED", code)
    assert.matches("^git: pushing orket/C1: ", err)
    -- libgit2's own words name no remote: which one, and where it is set, is said
    assert.matches("(the remote " .. dir .. "/remote.git: orket.lua's git.remote)", err, 1, true)
    -- a URL's user and password are not in it
    local _, uerr = repo:push("http://bob:hunter2@127.0.0.1:1/x.git", "orket/C1")
    assert.matches("(the remote http://127.0.0.1:1/x.git: orket.lua's git.remote)", uerr, 1, true)
    assert.is_nil(uerr:find("hunter2", 1, true))
    assert.is_string(repo:push(dir .. "/remote.git", "orket/C1", { force = true }))
    assert.equal(second, remote("orket/C1"))
    ok, err, code = repo:push(dir .. "/remote.git", "orket/NOPE")
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    ok, err, code = repo:push(dir .. "/missing.git", "main")
    assert.is_nil(ok)
    assert.equal("EREMOTE", code)
    -- a path not there is named, and said so (libgit2 said "unsupported URL protocol")
    assert.equal("git: pushing main: the remote " .. dir .. "/missing.git is no folder here: a remote given as a path is a "
      .. "repository's folder (git.remote), else give its URL", err)
    ok, err, code = repo:push("", "main")
    assert.equal("EINVAL", code)
    -- the push runs on the thread pool: other tasks run meanwhile, and a task cancelled
    -- while its push runs leaves the push to finish and nothing behind (ASan)
    local task = require "orket.task"
    local pushed
    local pusher = task.spawn(function() pushed = repo:push(dir .. "/remote.git", "orket/C1", { force = true, token = "t" }) end)
    assert.is_nil(pushed) -- the task waits: the push is not done on this thread
    pusher:join()
    assert.equal(repo:head("orket/C1"), pushed)
    -- main moves on this thread while a push of it waits on the pool: the push answers what
    -- the remote got, whichever of the two it read
    local before = repo:head("main")
    local mover = task.spawn(function() return repo:push(dir .. "/remote.git", "main") end)
    assert.equal("fastforward", assert(repo:merge_to_main("C1", { name = "o", email = "o@x" })).kind)
    assert.are_not.equal(before, repo:head("main"))
    local done, sent = mover:join()
    assert.is_true(done)
    assert.equal(remote("main"), sent)
    assert.is_true(sent == before or sent == repo:head("main"))
    local base = orket.stats().left_running
    local t = task.spawn(function() return repo:push(dir .. "/remote.git", "main") end)
    t:cancel()
    -- the cancelled push finishes on the pool, counted as left running until it has: the
    -- remote has main then (when the push above read the merged main, the remote had it
    -- already, and waiting for the remote alone let the cleanup below remove the
    -- repositories under the running push: libgit2 leaked on the paths that failed)
    -- To see that leak under ASan: push to a bare remote whose objects/pack is a file; libgit2
    -- 1.5.1's git_indexer_new leaves its 40-byte oid map behind when it cannot write the pack.
    assert.equal(base + 1, orket.stats().left_running)
    H.wait_for(function() return orket.stats().left_running == base end, "the cancelled push to finish")
    assert.equal(repo:head("main"), remote("main"))
    ok, err, code = G.ls_remote(dir .. "/missing.git")
    assert.is_nil(ok)
    assert.equal("EREMOTE", code)
    assert.has_error(function() G.ls_remote() end, "bad argument #1 to 'ls_remote' (string expected, got no value)")
    assert.has_error(function() repo:push(dir .. "/remote.git") end, "bad argument #2 to 'push' (string expected, got no value)")
    assert.has_error(function() repo:push(dir .. "/remote.git", "main", { token = 5 }) end,
      "bad argument #3 to 'push' (field 'token' must be a string)")
  end)
end)

describe("forge webhook payloads", function()
  local function fixture(name) return cjson.decode((assert(H.read(H.ROOT .. "/tests/fixtures/forge/" .. name)))) end

  it("reads Gitea's reviews and pull request events", function()
    local ev = assert(forge.event("gitea", "pull_request_review_rejected", fixture("gitea_review_rejected.json")))
    assert.same({ kind = "changes_requested", repo = "acme/notes", number = 1, branch = "orket/F-1", author = "orket-bot",
      reviewer = "alice", body = "Please write b.txt as well.", commit = string.rep("0", 40), base = "main" }, ev)
    ev = assert(forge.event("gitea", "pull_request_review_approved", fixture("gitea_review_approved.json")))
    assert.equal("approved", ev.kind)
    ev = assert(forge.event("gitea", "pull_request", fixture("gitea_pull_request_closed.json")))
    assert.equal("merged", ev.kind)
    assert.equal("alice", ev.reviewer)
    local comment = fixture("gitea_review_rejected.json")
    assert.same({ nil, "event pull_request_review_comment is not acted on" },
      { forge.event("gitea", "pull_request_review_comment", comment) })
    -- Forgejo's own headers come first; GitHub's, which Gitea sends too, are not read
    local d = forge.delivery("gitea", { ["x-gitea-delivery"] = "g", ["x-forgejo-delivery"] = "f",
      ["x-gitea-event-type"] = "pull_request_review_approved", ["x-forgejo-signature"] = "ab",
      ["x-hub-signature-256"] = "sha256=cd", ["x-github-delivery"] = "h" })
    assert.same({ id = "f", event = "pull_request_review_approved", signature = "ab" }, d)
  end)

  it("reads GitHub's reviews and pull request events", function()
    local doc = fixture("github_review_submitted.json")
    local ev = assert(forge.event("github", "pull_request_review", doc))
    assert.same({ kind = "changes_requested", repo = "acme/notes", number = 1, branch = "orket/F-1", author = "orket-bot",
      reviewer = "bob", body = "Please also handle the empty note.", commit = string.rep("0", 40), base = "main",
      association = "COLLABORATOR" }, ev)
    doc.review.state = "APPROVED"
    assert.equal("approved", forge.event("github", "pull_request_review", doc).kind)
    doc.review.state = "commented"
    assert.is_nil((forge.event("github", "pull_request_review", doc)))
    doc.action = "dismissed"
    assert.is_nil((forge.event("github", "pull_request_review", doc)))
    ev = assert(forge.event("github", "pull_request", fixture("github_pull_request_closed.json")))
    assert.equal("closed", ev.kind)
    assert.equal("bob", ev.reviewer)
    assert.same({ nil, "not a pull request event (push)" }, { forge.event("github", "push", { ref = "refs/heads/main" }) })
    assert.same({ nil, "the body is not a JSON object" }, { forge.event("github", "pull_request", "x") })
  end)

  -- Any GitHub account that can see a pull request may approve it; Orket merges with its
  -- own token's rights, past branch protection
  it("acts on a GitHub review only by someone with access to the repository", function()
    local fr = require "orket.engine.forgereview"
    local A = string.rep("a", 40)
    local doc = fixture("github_review_submitted.json")
    doc.review.state, doc.review.commit_id = "approved", A
    local c = { id = "F-1", status = "waiting_for_developer", wait_reason = "review" }
    for _, who in ipairs { "OWNER", "MEMBER", "COLLABORATOR" } do
      doc.review.author_association = who
      local ev = assert(forge.event("github", "pull_request_review", doc))
      ev.card_head = A
      assert.same({ "approve" }, { fr.action_for(c, ev) }, who)
    end
    for _, state in ipairs { "approved", "changes_requested" } do
      doc.review.state = state
      for _, who in ipairs { "NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "READ_ONLY" } do
        doc.review.author_association = who
        local ev = assert(forge.event("github", "pull_request_review", doc))
        ev.card_head = A
        assert.same({ nil, "bob is not a member or collaborator of the repository (author_association " .. who
          .. "): only a review by someone with access to it is acted on", "no_access" }, { fr.action_for(c, ev) })
        -- whatever the card's state: no other reason, which a comment on the card would say
        local testing = { id = "F-1", status = "ready_for_testing" }
        assert.equal("no_access", select(3, fr.action_for(testing, ev)))
      end
      doc.review.author_association = nil -- GitHub says it on every review: none said is none
      assert.equal("NONE", assert(forge.event("github", "pull_request_review", doc)).association)
    end
  end)

  it("takes a pull request by its branch only from the repository's own branch into main", function()
    local fr = require "orket.engine.forgereview"
    local B = require "tests.backends"
    local db = B.open_store()
    assert(db:tx(function()
      local imports = require "orket.store.imports"
      imports.insert_card(db, { id = "F", type = "epic", priority = 2 })
      imports.insert_card(db, { id = "F-2", type = "issue", parent = "F", priority = 2 })
      return true
    end))
    local g = { forge = "github", repo = "acme/notes" }
    local doc = fixture("github_pull_request_closed.json")
    doc.pull_request.number, doc.pull_request.head.ref = 99, "orket/F-2"
    local function card(d) return fr.card_of(db, g, assert(forge.event("github", "pull_request", d))) end
    doc.pull_request.head.repo = nil -- GitHub names none once a fork is deleted: no card
    assert.is_nil(card(doc))
    doc.pull_request.head.repo = { full_name = "ACME/notes" }
    assert.equal("F-2", card(doc))
    doc.pull_request.head.repo = { full_name = "stranger/notes" } -- a fork's branch of that name
    assert.is_nil(card(doc))
    doc.pull_request.head.repo = { full_name = "acme/notes" }
    doc.pull_request.base.ref = "release-1.0" -- a backport is no merge into main
    assert.is_nil(card(doc))
    -- by its recorded number too: a store whose hand-in took a fork's pull request for the
    -- card's (before find_pr checked its head) does not finish the card on that one's merge
    assert(db:tx(function()
      require("orket.store.forge").save_pull_request(db, "F-2", "github", "acme/notes", 99, "u", nil)
      return true
    end))
    doc.pull_request.head.ref, doc.pull_request.base.ref = "feature/x", "main"
    assert.equal("F-2", card(doc))
    doc.pull_request.head.repo = nil -- (the fixtures name none: taken by the number)
    assert.equal("F-2", card(doc))
    doc.pull_request.head.repo = { full_name = "stranger/notes" }
    assert.is_nil(card(doc))
    doc.pull_request.head.repo, doc.pull_request.base.ref = { full_name = "acme/notes" }, "release-1.0"
    assert.is_nil(card(doc))
    -- the review cycle a look-alike delivery's identity is scoped to (orket.serve.webhooks)
    local sf = require "orket.store.forge"
    assert.equal(0, sf.latest_cycle(db, "F-2"))
    assert(db:tx(function()
      sf.open_cycle(db, "F-2", 1, 99, nil)
      sf.decide_cycle(db, sf.undecided_cycle(db, "F-2"), "changes_requested", "alice", "x", "g-1")
      sf.open_cycle(db, "F-2", 2, 99, nil)
      return true
    end))
    assert.equal(2, sf.latest_cycle(db, "F-2"))
    db:close()
  end)

  it("tells a pull request's merge from its close on the same head (closed, reopened, merged)", function()
    local doc = fixture("github_pull_request_closed.json")
    doc.pull_request.merged = false
    local closed = assert(forge.identity(doc))
    doc.pull_request.merged = true
    assert.are_not.equal(closed, assert(forge.identity(doc)))
  end)

  -- a decision that looks like an earlier one is a new one when the body says so (its
  -- updated_at); what names nothing of its own is scoped by the caller to the card's cycle
  it("tells a close again on the same head by its time, and marks what names nothing of its own", function()
    local doc = fixture("github_pull_request_closed.json")
    doc.pull_request.merged = false
    local bare, scoped = forge.identity(doc)
    assert.is_true(scoped)
    doc.pull_request.updated_at = "2026-03-01T10:00:00Z"
    local first, scoped1 = forge.identity(doc)
    assert.is_false(scoped1)
    doc.pull_request.updated_at = "2026-03-01T10:05:00Z"
    local again = forge.identity(doc)
    assert.are_not.equal(first, again)
    assert.are_not.equal(bare, first)
    -- Gitea's review has no id nor a time of its own: scoped
    assert.is_true(select(2, forge.identity(fixture("gitea_review_rejected.json"))))
    assert.is_false(select(2, forge.identity(fixture("github_review_submitted.json"))))
  end)

  it("reads the commit a review was given to, and approves only the head Orket pushed", function()
    local fr = require "orket.engine.forgereview"
    local A, B = string.rep("a", 40), string.rep("b", 40)
    -- GitHub: the review's commit_id (the pull request's head may have moved since), lower case
    local doc = fixture("github_review_submitted.json")
    doc.review.state, doc.review.commit_id, doc.pull_request.head.sha = "approved", A:upper(), B
    local ev = assert(forge.event("github", "pull_request_review", doc))
    assert.equal(A, ev.commit)
    doc.review.commit_id = nil
    assert.is_nil(assert(forge.event("github", "pull_request_review", doc)).commit)
    doc.review.commit_id = "not a sha"
    assert.is_nil(assert(forge.event("github", "pull_request_review", doc)).commit)
    -- Gitea names no commit in the review: its pull request's head
    doc = fixture("gitea_review_approved.json")
    doc.pull_request.head.sha = B
    assert.equal(B, assert(forge.event("gitea", "pull_request_review_approved", doc)).commit)
    doc.pull_request.head.sha = nil
    assert.is_nil(assert(forge.event("gitea", "pull_request_review_approved", doc)).commit)
    -- an approval merges only the card's head, which a merge would take
    local c = { id = "F-1", status = "waiting_for_developer", wait_reason = "review" }
    local function act(e) return { fr.action_for(c, e) } end
    assert.same({ "approve" }, act { kind = "approved", reviewer = "alice", commit = A, card_head = A })
    local out = act { kind = "approved", reviewer = "alice", commit = B, card_head = A }
    assert.is_nil(out[1])
    assert.matches("approval is of commit " .. B .. ", not of the card's head " .. A, out[2], 1, true)
    out = act { kind = "approved", reviewer = "alice", card_head = A }
    assert.is_nil(out[1])
    assert.matches("names no commit", out[2])
    out = act { kind = "approved", reviewer = "alice", commit = A }
    assert.is_nil(out[1])
    assert.matches("has no branch", out[2])
    -- a person's merge finishes the card when it merged the card's head, or the forge's
    -- main holds it all the same; of another head (a rework since) or while the card is in
    -- work it blocks the card; changes requested are not tied to a commit
    assert.same({ "approve" }, act { kind = "merged", reviewer = "alice", commit = A, card_head = A })
    assert.same({ "approve" }, act { kind = "merged", reviewer = "alice", commit = B, card_head = A, main_holds = true })
    assert.same({ "merged_elsewhere" }, act { kind = "merged", reviewer = "alice", commit = B, card_head = A })
    assert.same({ "merged_elsewhere" }, act { kind = "merged", reviewer = "alice", card_head = A })
    assert.same({ "approve" }, act { kind = "merged", reviewer = "alice" }) -- a push to main (no head named)
    c.status = "in_progress"
    assert.same({ "merged_elsewhere" }, act { kind = "merged", reviewer = "alice", commit = A, card_head = A })
    c.status = "blocked"
    assert.is_nil(act { kind = "merged", reviewer = "alice", commit = A, card_head = A }[1])
    c.status = "waiting_for_developer"
    -- a review whose state is null is said so, never as "nil"
    local nostate = fixture("github_review_submitted.json")
    nostate.review.state = nil
    assert.same({ nil, "the review names no state (review.state)" },
      { forge.event("github", "pull_request_review", nostate) })
    -- a pull request's close names the head it merged, and the merge's commit
    local closed = fixture("github_pull_request_closed.json")
    closed.pull_request.merged, closed.pull_request.head.sha, closed.pull_request.merge_commit_sha = true, A:upper(), B
    local mev = assert(forge.event("github", "pull_request", closed))
    assert.same({ "merged", A, B }, { mev.kind, mev.commit, mev.merge_commit })
    assert.same({ "changes" }, act { kind = "changes_requested", reviewer = "alice", commit = B, card_head = A })
  end)

  it("fetches the remote's main and merges it into main: fast-forward, a merge, a conflict, none", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/ws") .. " " .. H.quote(dir .. "/other"))
    assert.is_true(G.init_bare(dir .. "/remote.git"))
    local who = { name = "o", email = "o@x" }
    H.write(dir .. "/ws/a.txt", "a\n")
    local repo <close> = assert(G.init(dir .. "/ws", who))
    -- a remote without main: false, and nothing to merge
    assert.is_false(repo:fetch_main(dir .. "/remote.git"))
    local ok, err, code = repo:merge_remote_to_main(who)
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.is_string(repo:push(dir .. "/remote.git", "main"))
    -- another clone moves the remote's main ahead (a person merging on the forge)
    H.write(dir .. "/other/a.txt", "a\n")
    local other <close> = assert(G.init(dir .. "/other", { name = "p", email = "p@x" }))
    assert(other:fetch_main(dir .. "/remote.git"))
    -- histories of their own (each made its first commit): joined by a merge commit
    assert.equal("merged", assert(other:merge_remote_to_main(who)).kind)
    assert(other:worktree("P1", dir .. "/owt/P1"))
    H.write(dir .. "/owt/P1/p.txt", "p\n")
    assert(other:commit("P1", { name = "p", email = "p@x", message = "theirs" }))
    assert(other:merge_to_main("P1", who))
    assert.is_string(other:push(dir .. "/remote.git", "main"))
    local theirs = other:head("main")
    assert.equal(theirs, repo:fetch_main("file://" .. dir .. "/remote.git"))
    local m = assert(repo:merge_remote_to_main(who))
    assert.equal("fastforward", m.kind)
    assert.equal(theirs, repo:head("main"))
    assert.equal("p\n", H.read(dir .. "/ws/p.txt"))
    assert.equal("uptodate", assert(repo:merge_remote_to_main(who)).kind)
    -- both moved: a merge commit, whose push the remote takes as a fast-forward
    assert(repo:worktree("C1", dir .. "/wt/C1"))
    H.write(dir .. "/wt/C1/c.txt", "c\n")
    assert(repo:commit("C1", { name = "o", email = "o@x", message = "ours" }))
    assert(repo:merge_to_main("C1", who))
    assert(other:worktree("P2", dir .. "/owt/P2"))
    H.write(dir .. "/owt/P2/a.txt", "changed\n")
    assert(other:commit("P2", { name = "p", email = "p@x", message = "theirs 2" }))
    assert(other:merge_to_main("P2", who))
    assert.is_string(other:push(dir .. "/remote.git", "main"))
    ok, err, code = repo:push(dir .. "/remote.git", "main")
    assert.equal("EREJECTED", code)
    assert(repo:fetch_main(dir .. "/remote.git"))
    m = assert(repo:merge_remote_to_main(who))
    assert.equal("merged", m.kind)
    assert.equal("changed\n", H.read(dir .. "/ws/a.txt"))
    assert.equal("c\n", H.read(dir .. "/ws/c.txt"))
    assert.is_string(repo:push(dir .. "/remote.git", "main"))
    assert.equal(repo:head("main"), assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/main"])
    -- a conflict: nothing written, the paths named
    assert(repo:worktree("C2", dir .. "/wt/C2"))
    H.write(dir .. "/wt/C2/a.txt", "ours\n")
    assert(repo:commit("C2", { name = "o", email = "o@x", message = "ours 2" }))
    assert(repo:merge_to_main("C2", who))
    local before = repo:head("main")
    assert(other:fetch_main(dir .. "/remote.git"))
    assert(other:merge_remote_to_main(who))
    assert(other:worktree("P3", dir .. "/owt/P3"))
    H.write(dir .. "/owt/P3/a.txt", "theirs\n")
    assert(other:commit("P3", { name = "p", email = "p@x", message = "theirs 3" }))
    assert(other:merge_to_main("P3", who))
    assert.is_string(other:push(dir .. "/remote.git", "main"))
    assert(repo:fetch_main(dir .. "/remote.git"))
    local paths
    ok, err, code, paths = repo:merge_remote_to_main(who)
    assert.is_nil(ok)
    assert.equal("ECONFLICT", code)
    assert.equal("git: merging the remote's main into main conflicts in: a.txt", err)
    assert.same({ "a.txt" }, paths)
    assert.equal(before, repo:head("main"))
    ok, err, code = repo:fetch_main(dir .. "/missing.git")
    assert.is_nil(ok)
    assert.equal("EREMOTE", code)
    assert.matches("^git: fetching main: the remote .*/missing.git is no folder here", err)
    assert.is_true(repo:check())
  end)
end)
