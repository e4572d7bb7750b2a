-- A shallow clone in workspace/ (`git clone --depth N`): libgit2, which Orket's merges use,
-- knows nothing of .git/shallow, so the first merge whose base search reached the clone's
-- boundary failed ("merge base: object not found"), each review turn handed that to the
-- model until the card was blocked with "raise the budget". `orket init` refuses to adopt
-- one and a run's start refuses to work in one, naming it and `git -C workspace fetch
-- --unshallow`; init takes away what it made, as for its other refusals.
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

-- origin: a repository of three commits on main, as a team's remote
local function origin(root)
  local o = root .. "/origin"
  sh("mkdir -p " .. H.quote(o) .. " && cd " .. H.quote(o) .. " && git init -q -b main && git config user.email a@b"
    .. " && git config user.name A && for i in 1 2 3; do echo $i > f$i.c && git add -A && git commit -qm c$i; done")
  return o
end

local function listing(dir)
  local p = io.popen("cd " .. H.quote(dir) .. " && find . | sort")
  local out = p:read("a")
  p:close()
  return out
end

describe("a shallow clone in workspace/", function()
  after_each(function() H.cleanup() end)

  it("is refused by init, which removes what it made; adopted once unshallowed", function()
    local root = H.tmpdir()
    local o = origin(root)
    local dir = root .. "/p"
    sh("git clone -q --depth 1 file://" .. o .. " " .. H.quote(dir .. "/workspace"))
    local before = listing(dir)
    local r = H.orket("init --yes .", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("is a shallow clone", r.stderr, 1, true)
    assert.matches("git -C workspace fetch --unshallow", r.stderr, 1, true)
    assert.matches("init removed what it had created", r.stderr, 1, true)
    assert.equal(before, listing(dir)) -- nothing of init's left, nothing written into .git
    -- from elsewhere, the command names workspace/ as seen from there
    r = H.orket("init --yes p", { cwd = root })
    assert.equal(1, r.status)
    assert.matches("git -C p/workspace fetch --unshallow", r.stderr, 1, true)
    sh("git -C " .. H.quote(dir .. "/workspace") .. " fetch -q --unshallow")
    r = H.orket("init --yes .", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  it("stops a run at its start, naming it, until it is unshallowed", function()
    local root = H.tmpdir()
    local o = origin(root)
    local dir = root .. "/p"
    local ws = dir .. "/workspace"
    sh("git clone -q file://" .. o .. " " .. H.quote(ws))
    sh("mkdir -p " .. H.quote(dir .. "/epics") .. " && cp " .. H.quote(H.ROOT .. "/templates/project/epics/start.json")
      .. " " .. H.quote(dir .. "/epics/"))
    assert.equal(0, H.orket("init --yes .", { cwd = dir }).status)
    -- made shallow afterwards (a person's `git fetch --depth 1`)
    sh("git -C " .. H.quote(ws) .. " fetch -q --depth 1 origin main")
    assert.truthy(H.read(ws .. "/.git/shallow"))
    local r = H.orket("run START", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("is a shallow clone", r.stdout .. r.stderr, 1, true)
    assert.matches("git -C workspace fetch --unshallow", r.stdout .. r.stderr, 1, true)
    assert.equal("", git(ws, "branch --list 'orket/*'")) -- no card was begun
    sh("git -C " .. H.quote(ws) .. " fetch -q --unshallow origin")
    r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("Hello", git(ws, "show main:hello.txt"))
  end)
end)
