-- End to end: a person rewrote the remote's main so that it conflicts with main (a forced
-- push over notes.txt). The next run ends done, exit 0, as before, but its terminal says main
-- was NOT pushed, with the commands that merge the two; orket status (text and --json) says
-- main and the remote's main diverged, with the same commands; those commands, run as
-- printed, then the run again, push main.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")
-- the person's git: an identity of their own, none of the machine's settings
local GIT_ENV = "env GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=person "
  .. "GIT_AUTHOR_EMAIL=person@example.invalid GIT_COMMITTER_NAME=person GIT_COMMITTER_EMAIL=person@example.invalid "

local function sh(cmd)
  local rc, out = H.sh(GIT_ENV .. "sh -c " .. H.quote(cmd))
  return rc, out
end

local function must(cmd)
  local rc, out = sh(cmd)
  assert(rc == 0, cmd .. ": " .. out)
  return out
end

local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", string.format([[
name = "unpushed"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
git = { remote = %q }
]], dir .. "/remote.git"))
  H.write(dir .. "/script.lua", F.writer_script {
    { card = "E-1", path = "notes.txt", content = "orket's notes\n" },
    { card = "F-1", path = "f.txt", content = "f\n" },
  })
  for _, e in ipairs { "E", "F" } do
    H.write(dir .. "/epics/" .. e .. ".json", cjson.encode { id = e, name = e, description = "d.",
      issues = { { id = e .. "-1", summary = "Write", seat = "senior_developer" } } })
  end
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  assert(G.init_bare(dir .. "/remote.git"))
  return dir
end

local function pty(dir, args, expects)
  local steps = {}
  for _, e in ipairs(expects) do steps[#steps + 1] = "expect " .. e end
  H.write(dir .. "/steps", table.concat(steps, "\n") .. "\n")
  local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 60 -- %s %s <steps 2>&1",
    H.quote(dir), H.quote(PTY), H.quote(H.BIN), args))
  local out = p:read("a")
  p:close()
  return out
end

local function heads(dir)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:head("main"), assert(G.ls_remote(dir .. "/remote.git"))["refs/heads/main"]
end

describe("main left unpushed", function()
  after_each(H.cleanup)

  it("is said on the terminal and by orket status, whose commands merge it, and the next run pushes", function()
    local dir = project()
    local r = H.orket("run E --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    local mine, theirs = heads(dir)
    assert.equal(mine, theirs)
    -- a person rewrites the remote's main: notes.txt of their own, forced over Orket's
    must("git clone -q " .. H.quote(dir .. "/remote.git") .. " " .. H.quote(dir .. "/person") .. " && cd "
      .. H.quote(dir .. "/person") .. " && git reset -q --hard HEAD~1 && echo 'the team notes' > notes.txt"
      .. " && git add notes.txt && git commit -qm 'person: notes' && git push -qf origin main")
    local remote = dir .. "/remote.git"
    local out = pty(dir, "run F", { "main NOT pushed to the remote (it diverged)", "run 2 F done in " })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    local flat = out:gsub("\27%[[%d;]*[A-Za-z]", ""):gsub("[\r\n]", "")
    assert.matches("conflicts in: notes.txt; merge them by hand, in the project's folder: git -C workspace pull "
      .. "--no-rebase " .. remote .. " main", flat, 1, true)
    assert.matches("then 'orket run F' (any run, or 'orket resume') pushes main", flat, 1, true)
    -- orket status, in words and as data
    r = H.orket("status", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("main and the remote's main (" .. remote .. ", at ", r.stdout, 1, true)
    local doc = cjson.decode(H.orket("status --json", { cwd = dir }).stdout)
    assert.equal("diverged", doc.remote.state)
    -- the commands, as orket status prints them
    local cmds = {}
    for l in r.stdout:gmatch("[^\n]+") do
      if l:match("^  git ") then cmds[#cmds + 1] = l:sub(3) end
    end
    assert.same({ "git -C workspace pull --no-rebase " .. remote .. " main", "git -C workspace commit --no-edit" }, cmds)
    local rc = sh("cd " .. H.quote(dir) .. " && " .. cmds[1])
    assert.equal(1, rc) -- the conflict it leaves for a person
    H.write(dir .. "/workspace/notes.txt", "orket's notes and the team notes\n")
    must("cd " .. H.quote(dir) .. " && git -C workspace add -- notes.txt && " .. cmds[2])
    r = H.orket("run F --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches('"action":"push_main","id":"%x+","outcome":"pushed"', r.stdout)
    mine, theirs = heads(dir)
    assert.equal(mine, theirs)
    assert.equal("orket's notes and the team notes\n", H.read(dir .. "/workspace/notes.txt"))
    assert.matches("the remote's main %(.-%) is main", H.orket("status", { cwd = dir }).stdout)
  end)
end)
