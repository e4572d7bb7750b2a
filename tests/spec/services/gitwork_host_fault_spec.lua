-- orket.engine.gitwork.host_fault: which failures are the host's (they stop the run, for
-- `orket resume` once fixed) and which stay a tool's error the model reads. Too many open
-- files (the process's, the system's), a read-only file system and an I/O error are the
-- host's, by the C library's words in the workspace's or git's message; a refused access
-- only where a place Orket writes may not be written, never inside the card's own work.
local G = require "orket.c.gitrepo"
local gitwork = require "orket.engine.gitwork"
local H = require "tests.helpers"

local WHO = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }
local ROOT = io.popen("id -u"):read("l") == "0"

describe("orket.engine.gitwork.host_fault", function()
  local base, repo, run
  before_each(function()
    base = H.tmpdir()
    assert(os.execute("mkdir -p " .. base .. "/ws " .. base .. "/state"))
    H.write(base .. "/ws/README", "hello\n")
    repo = assert(G.init(base .. "/ws", WHO))
    assert(repo:attach("C1", base .. "/cards/C1", base .. "/state/C1"))
    run = { git = { repo = repo, dir = base .. "/cards", state = base .. "/state" } }
  end)
  after_each(function()
    os.execute("chmod -R u+rwX " .. H.quote(base))
    repo:close()
    H.cleanup()
  end)

  it("names the limits, a read-only and a failing disk, with their remedies", function()
    local f = gitwork.host_fault
    assert.equal("workspace: write: Too many open files: a.txt; this process may open no more files: raise its "
      .. "limit, ulimit -n or systemd LimitNOFILE=", f(run, "C1", "EIO", "workspace: write: Too many open files: a.txt"))
    assert.matches("Too many open files in system; the system may open no more files: raise sysctl fs.file-max",
      f(run, "C1", "EGIT", "git: could not open 'x': Too many open files in system"), 1, true)
    assert.matches("; the file system is mounted read-only: remount it read-write",
      f(run, "C1", "EIO", "git: cannot write /p/.git/x: Read-only file system"), 1, true)
    assert.matches("; the disk reported an I/O error: check it",
      f(run, "C1", "EIO", "workspace: read: Input/output error: a.txt"), 1, true)
    -- a project tool's own code for it
    assert.truthy(f(run, "C1", "EROFS", "cannot write"))
    -- what stays the tool's: an error of the system's that is none of them, a missing file
    -- (whatever its name says), a refusal by design, a bare EIO code
    assert.is_nil(f(run, "C1", "EIO", "workspace: write: Bad address: a.txt"))
    assert.is_nil(f(run, "C1", "ENOENT", "workspace: read: no such file or directory: Too many open files"))
    assert.is_nil(f(run, "C1", "EPERM", "workspace: read: path goes through a symlink: a"))
    assert.is_nil(f(run, "C1", "EIO", "cannot write"))
  end)

  it("leaves a refused access inside the card's work to the model, and stops for Orket's own places", function()
    local msg = "workspace: read: permission denied: secret.txt"
    assert.is_nil(gitwork.host_fault(run, "C1", "EACCES", msg))
    if ROOT then
      return pending("skipped: root may write whatever the modes say, so no place of Orket's can be refused to it")
    end
    -- the agent's own file, made unreadable by a program it ran: still the model's
    H.write(base .. "/cards/C1/secret.txt", "x")
    assert(os.execute("chmod 000 " .. H.quote(base .. "/cards/C1/secret.txt")))
    assert.is_nil(gitwork.host_fault(run, "C1", "EACCES", msg))
    -- main's .git made read-only under the project
    assert(os.execute("chmod a-w " .. H.quote(base .. "/ws/.git")))
    local host = gitwork.host_fault(run, "C1", "EIO", "git: cannot write " .. base .. "/ws/.git/x: Permission denied")
    assert.matches(base .. "/ws/.git (mode 0555) may not be written by this process, its owner's: give the project "
      .. "back its modes, chmod -R u+rwX", host, 1, true)
  end)
end)
