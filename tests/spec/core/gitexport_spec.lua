-- orket.c.gitexport: a commit's tree written into a new directory from the repository's
-- objects: what main holds there, never what its working tree holds; argument errors, the
-- nil, msg, CODE failures, the caps, and names and links kept as they are.
local X = require "orket.c.gitexport"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("orket.c.gitexport", function()
  local base, ws, repo, first
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    sh("mkdir -p " .. ws .. "/sub")
    H.write(ws .. "/hello.txt", "main's\n")
    H.write(ws .. "/sub/a.txt", "nested\n")
    H.write(ws .. "/run.sh", "#!/bin/sh\necho run\n")
    sh("chmod 755 " .. ws .. "/run.sh && ln -s sub/a.txt " .. ws .. "/link")
    repo = assert(G.init(ws, WHO))
    first = assert(repo:head("main"))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  it("raises on misuse", function()
    assert.has_error(function() X.export() end, "bad argument #1 to 'export' (string expected, got no value)")
    assert.has_error(function() X.export(ws, "main") end, "bad argument #3 to 'export' (string expected, got no value)")
    assert.has_error(function() X.export(ws, "main", base .. "/o", { files = 0 }) end,
      "bad argument #4 to 'export' (field 'files' must be a positive integer)")
    assert.has_error(function() X.export(ws, "main", base .. "/o", "x") end)
  end)

  it("writes main's tree, not the working tree's edits", function()
    -- a person's edit and a new file in the working tree: neither is main's
    H.write(ws .. "/hello.txt", "a person's draft\n")
    H.write(ws .. "/untracked.txt", "mine\n")
    local commit, files, bytes = X.export(ws, "main", base .. "/out")
    assert.equal(first, commit)
    assert.equal(4, files)
    assert.is_true(bytes > 0)
    assert.equal("main's\n", H.read(base .. "/out/hello.txt"))
    assert.equal("nested\n", H.read(base .. "/out/sub/a.txt"))
    assert.is_nil(io.open(base .. "/out/untracked.txt"))
    assert.is_nil(io.open(base .. "/out/.git"))
    -- the link stays a link, the executable bit stays
    local p = io.popen("stat -c '%F %a' " .. base .. "/out/link " .. base .. "/out/run.sh")
    local st = p:read("a")
    p:close()
    assert.matches("symbolic link", st, 1, true)
    assert.matches("regular file 755", st, 1, true)
    -- the working tree is as the person left it
    assert.equal("a person's draft\n", H.read(ws .. "/hello.txt"))
  end)

  it("exports a named commit, also from the git directory", function()
    local wt = assert(repo:worktree("C-1", base .. "/wt"))
    H.write(wt .. "/hello.txt", "changed\n")
    assert(repo:commit("C-1", { name = WHO.name, email = WHO.email, message = "C-1: change" }))
    assert(repo:merge_to_main("C-1", WHO))
    local second = assert(repo:head("main"))
    assert.not_equal(first, second)
    assert.equal(first, (X.export(ws .. "/.git", first, base .. "/old")))
    assert.equal("main's\n", H.read(base .. "/old/hello.txt"))
    assert.equal(second, (X.export(ws, second, base .. "/new")))
    assert.equal("changed\n", H.read(base .. "/new/hello.txt"))
  end)

  it("fails with a code: no repository, revision or room; past a cap before writing", function()
    local _, msg, code = X.export(base .. "/none", "main", base .. "/o1")
    assert.equal("ENOENT", code)
    assert.matches("no repository", msg, 1, true)
    _, msg, code = X.export(ws, "nope", base .. "/o2")
    assert.equal("ENOENT", code)
    assert.matches("no branch nope", msg, 1, true)
    _, _, code = X.export(ws, string.rep("0", 40), base .. "/o3")
    assert.equal("ENOENT", code)
    _, _, code = X.export(ws, "../x", base .. "/o4")
    assert.equal("EINVAL", code)
    sh("mkdir " .. base .. "/o5")
    _, _, code = X.export(ws, "main", base .. "/o5")
    assert.equal("EEXIST", code)
    _, msg, code = X.export(ws, "main", base .. "/o6", { files = 3 })
    assert.equal("ETOOLARGE", code)
    assert.matches("more than 3 files", msg, 1, true)
    assert.is_nil(io.open(base .. "/o6"))
    _, _, code = X.export(ws, "main", base .. "/o7", { bytes = 4 })
    assert.equal("ETOOLARGE", code)
  end)
end)
