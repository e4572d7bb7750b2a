-- A view behind main "catches up at the next 'orket resume'": with every run done, `orket
-- resume` still refreshes it as a run's start does (recover, under the run lock), says what
-- it did, and exits 1 as "no run to resume" does. It exited before any refresh.
local H = require "tests.helpers"
local backends = require "tests.backends"

describe("orket resume with every run done", function()
  after_each(function() H.cleanup() end)

  it("refreshes main's view, and says whether it caught up", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = backends.project(root .. "/p")
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    local ws = H.quote(dir .. "/workspace")
    -- a refresh that fails (git's split index, which libgit2 cannot read): the view is left behind
    assert(os.execute("git -C " .. ws .. " update-index --split-index"))
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("workspace/ is behind main", H.orket("status", { cwd = dir }).stdout, 1, true)

    -- not settled yet: the resume says it could not catch up, and why
    r = H.orket("resume", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("^orket: no run to resume %(every run is done%); workspace/ is still behind main: [^\n]*"
      .. "update%-index %-%-no%-split%-index", r.stderr)

    -- settled as the message says: the resume catches it up
    assert(os.execute("git -C " .. ws .. " update-index --no-split-index"))
    local before = io.popen("git -C " .. ws .. " status --short"):read("a")
    assert.are_not.equal("", before) -- main's newer files, shown as changes of the person's
    r = H.orket("resume -C p", { cwd = root })
    assert.equal(1, r.status)
    assert.equal("orket: no run to resume (every run is done); workspace/ caught up with main\n", r.stderr)
    local s = H.orket("status", { cwd = dir })
    assert.equal(0, s.status, s.stderr)
    assert.is_nil(s.stdout:find("behind main", 1, true), s.stdout)
    assert.equal("", io.popen("git -C " .. ws .. " status --short"):read("a"))
  end)

  it("leaves the view alone while the run lock is held, and says so", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = backends.project(root .. "/p")
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    assert.equal(0, H.orket("run START", { cwd = dir }).status)
    local lock = assert(require("orket.c.lockfile").acquire(dir .. "/.orket/run.lock"))
    local r = H.orket("resume", { cwd = dir })
    lock:release()
    assert.equal(1, r.status)
    assert.matches("^orket: no run to resume %(every run is done%); workspace/ was not refreshed: another orket run "
      .. "is working on this project", r.stderr)
  end)
end)
