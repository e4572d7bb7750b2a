-- main left unpushed is said where people look: the live view notes a push_main event whose
-- outcome is not "pushed" (once per reason, its commands naming this run's target) and
-- repeats it in the final summary while no later push went; a push that put back commits a
-- person had dropped from the remote's main is noted too. orket status (its document, as
-- --json and GET /v1/status give it) says main against the remote's main as last fetched or
-- pushed: the same, ahead, behind, or diverged with the commands that merge them.
local liveview = require "orket.terminal.liveview"
local mainline = require "orket.actions.mainline"
local status_view = require "orket.views.status"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local MF = require "tests.mainline_fixture"
local WHO, sh = MF.WHO, MF.sh

local function view()
  local term = { out = {} }
  term.view = liveview.new { write = function(s) term.out[#term.out + 1] = s end, now = function() return 0 end,
    plain = true, scope = function() return { { id = "E-1", status = "done" } } end }
  function term.text() return (table.concat(term.out):gsub("\r", "")) end
  return term
end

describe("the live view", function()
  it("says main NOT pushed when it diverged, with the commands and this run's target, and again at the end", function()
    local t = view()
    t.view:event { type = "run_start", run_id = 5, target = "E", concurrency = 1 }
    local err = "git: merging the remote's main into main conflicts in: notes.txt; "
      .. mainline.by_hand_text("/srv/remote.git", { "notes.txt" })
    for _, card in ipairs { "E-1", "E-2" } do
      t.view:event { type = "git", action = "push_main", card = card, outcome = "diverged", error = err,
        paths = { "notes.txt" } }
    end
    t.view:event { type = "run_end", run_id = 5, status = "done", tokens = 0 }
    local text = t.text()
    local note = "main NOT pushed to the remote (it diverged): git: merging the remote's main into main conflicts in: "
      .. "notes.txt; merge them by hand, in the project's folder: git -C workspace pull --no-rebase /srv/remote.git "
      .. "main, resolve the conflicts it leaves (edit the files, then git -C workspace add -- notes.txt), git -C "
      .. "workspace commit --no-edit; then 'orket run E' (any run, or 'orket resume') pushes main"
    local _, n = text:gsub(note:gsub("%p", "%%%0"), "")
    assert.equal(2, n, text) -- once as it happened (not again for E-2), once in the summary
    assert.matches("run 5 E done", text, 1, true)
  end)

  it("says a push that failed, and nothing more once a later push went", function()
    local t = view()
    t.view:event { type = "run_start", run_id = 6, target = "E", concurrency = 1 }
    t.view:event { type = "git", action = "push_main", outcome = "failed",
      error = "git: the remote refused refs/heads/main (pre-receive hook declined)" }
    t.view:event { type = "git", action = "push_main", card = "E-1", outcome = "pushed", id = string.rep("a", 40) }
    t.view:event { type = "run_end", run_id = 6, status = "done", tokens = 0 }
    local text = t.text()
    local _, n = text:gsub("main NOT pushed to the remote: git: the remote refused refs/heads/main %(pre%-receive hook declined%)", "")
    assert.equal(1, n, text)
  end)

  it("notes a push that put back what a person dropped from the remote's main", function()
    local t = view()
    t.view:event { type = "run_start", run_id = 7, target = "E", concurrency = 1 }
    t.view:event { type = "git", action = "push_main", outcome = "pushed", id = string.rep("b", 40),
      rewound = { note = "the remote's main had moved back past commits pushed before (from aaa to bbb, which lacks "
        .. "them): pushed again, with them" } }
    t.view:event { type = "run_end", run_id = 7, status = "done", tokens = 0 }
    assert.matches("main pushed to the remote: the remote's main had moved back past commits pushed before",
      t.text(), 1, true)
  end)
end)

describe("orket status's remote", function()
  local dir, repo
  before_each(function()
    dir = H.tmpdir()
    sh("mkdir -p " .. H.quote(dir .. "/workspace"))
    H.write(dir .. "/workspace/a.txt", "a\n")
    repo = assert(G.init(dir .. "/workspace", WHO))
    assert(G.init_bare(dir .. "/remote.git"))
    H.write(dir .. "/orket.lua", string.format("name = 'x'\ngit = { remote = %q }\n", dir .. "/remote.git"))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function merge(card, path, text)
    assert(repo:worktree(card, dir .. "/wt/" .. card))
    H.write(dir .. "/wt/" .. card .. "/" .. path, text)
    assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card }))
    return assert(repo:merge_to_main(card, WHO)).id
  end

  local function remote()
    local doc = assert(status_view.of_project(dir))
    return status_view.as_json(doc).remote
  end

  it("is unknown, the same, ahead, behind, then diverged with the commands", function()
    assert.equal("unknown", remote().state)
    assert(repo:push(dir .. "/remote.git", "main"))
    local r = remote()
    assert.same({ state = "same", url = dir .. "/remote.git", main = repo:head("main") }, r)
    merge("C-1", "c.txt", "c\n")
    assert.equal("ahead", remote().state)
    assert(repo:push(dir .. "/remote.git", "main"))
    -- a person pushes on top; Orket fetched it, not merged yet
    sh("git clone -q " .. H.quote(dir .. "/remote.git") .. " " .. H.quote(dir .. "/person") .. " && cd "
      .. H.quote(dir .. "/person") .. " && echo theirs > a.txt && git -c user.name=p -c user.email=p@x commit -qam p"
      .. " && git push -q origin main")
    assert(repo:fetch_main(dir .. "/remote.git"))
    assert.equal("behind", remote().state)
    merge("C-2", "a.txt", "ours\n")
    r = remote()
    assert.equal("diverged", r.state)
    assert.same({ { "git", "-C", "workspace", "pull", "--no-rebase", dir .. "/remote.git", "main" },
      { "git", "-C", "workspace", "commit", "--no-edit" } }, r.commands)
    -- orket status says it, with the commands as a person types them
    local out = H.orket("status -C " .. H.quote(dir))
    assert.equal(0, out.status, out.stderr)
    assert.matches("main and the remote's main (" .. dir .. "/remote.git, at ", out.stdout, 1, true)
    assert.matches("\n  git -C workspace pull --no-rebase " .. dir .. "/remote.git main\n", out.stdout, 1, true)
    assert.matches("\n  git -C workspace commit --no-edit\n", out.stdout, 1, true)
    assert.matches("(the commands below run in the project's folder: cd ", out.stdout, 1, true)
  end)

  it("leaves the machine's folders out for a client elsewhere (GET /v1/status)", function()
    assert(repo:push(dir .. "/remote.git", "main"))
    local doc = status_view.hide_folders(assert(status_view.of_project(dir)))
    assert.same({ state = "same", main = repo:head("main") }, doc.remote)
    H.write(dir .. "/orket.lua", "name = 'x'\ngit = { remote = 'https://forge.example/acme/x.git' }\n")
    doc = status_view.hide_folders(assert(status_view.of_project(dir)))
    assert.equal("https://forge.example/acme/x.git", doc.remote.url)
  end)

  it("hides the credentials an http(s) URL carries", function()
    H.write(dir .. "/orket.lua", "name = 'x'\ngit = { remote = 'https://orket:s3cret@forge.example/acme/x.git' }\n")
    local r = remote()
    assert.equal("https://forge.example/acme/x.git", r.url)
    assert.equal("unknown", r.state)
    -- a password holding '@': the user part ends at the authority's last one, as the C side cuts it
    local mainline = require "orket.actions.mainline"
    assert.equal("https://forge.example/acme/x.git", mainline.shown_url("https://orket:p@ss@forge.example/acme/x.git"))
    assert.equal("https://forge.example/a@b?c=@d", mainline.shown_url("https://u:p@forge.example/a@b?c=@d"))
    assert.equal("/srv/x.git", mainline.shown_url("/srv/x.git"))
  end)

  it("is left out without git.remote", function()
    H.write(dir .. "/orket.lua", "name = 'x'\n")
    assert.is_nil(remote())
  end)
end)
