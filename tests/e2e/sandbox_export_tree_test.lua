-- A sandbox's tree (and compose's deploy/src) is the exported commit's tree and nothing of
-- workspace/: not the branch a person has checked out there, nor an uncommitted
-- .gitattributes. libgit2's checkout took workspace/'s HEAD for what the new, empty folder
-- held, so a path HEAD held as another type (a folder where the commit has a link) was left
-- out with success, or the export failed ("null OID cannot exist"); and it read the
-- attributes (eol=crlf) of workspace/'s working tree and index, and its git config.
local H = require "tests.helpers"

local function git(dir, args)
  local status, out = H.sh("git -C " .. H.quote(dir .. "/workspace") .. " -c user.name=p -c user.email=p@x.invalid " .. args)
  assert.equal(0, status, args .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

local function commit(dir, message)
  H.commit_main(dir, message)
  return git(dir, "rev-parse HEAD")
end

-- compose --out OUT [--commit ID]: the exported tree is OUT/src
local function compose(dir, out, id)
  return H.orket("sandbox compose --out " .. H.quote(out) .. (id and " --commit " .. id or ""), { cwd = dir })
end

local function kind(path)
  local _, out = H.sh("stat -c %F " .. H.quote(path))
  return (out:gsub("%s+$", ""))
end

describe("a sandbox's exported tree", function()
  local dir
  before_each(function()
    dir = H.tmpdir() .. "/p"
    local r = H.orket("init " .. H.quote(dir) .. " --yes")
    assert.equal(0, r.status, r.stderr)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. '\nsandbox = { command = { "/usr/bin/python3", "-m", "http.server", "{port}" } }\n')
  end)
  after_each(H.cleanup)

  -- main's history: d a folder, then a link, then a folder again (HEAD); returns the first two
  local function history()
    local ws = dir .. "/workspace"
    os.execute("mkdir " .. H.quote(ws .. "/d") .. " && echo x > " .. H.quote(ws .. "/d/f"))
    local as_dir = commit(dir, "d a folder")
    os.execute("rm -r " .. H.quote(ws .. "/d") .. " && ln -s elsewhere " .. H.quote(ws .. "/d"))
    local as_link = commit(dir, "d a link")
    os.execute("rm " .. H.quote(ws .. "/d") .. " && mkdir " .. H.quote(ws .. "/d") .. " && echo y > " .. H.quote(ws .. "/d/g"))
    commit(dir, "d a folder again")
    return as_dir, as_link
  end

  it("is the commit's where workspace/'s HEAD holds a path as a folder and the commit a link", function()
    local _, as_link = history()
    local r = compose(dir, dir .. "/a", as_link)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("symbolic link", kind(dir .. "/a/src/d"))
    local _, target = H.sh("readlink " .. H.quote(dir .. "/a/src/d"))
    assert.equal("elsewhere\n", target)
  end)

  it("is the commit's where workspace/'s HEAD holds a path as a link and the commit a folder", function()
    local as_dir = history()
    local ws = dir .. "/workspace"
    os.execute("rm -r " .. H.quote(ws .. "/d") .. " && ln -s elsewhere " .. H.quote(ws .. "/d"))
    commit(dir, "d a link again")
    local r = compose(dir, dir .. "/b", as_dir)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("x\n", H.read(dir .. "/b/src/d/f"))
  end)

  it("is main's head while a person has another branch checked out in workspace/", function()
    local as_dir, as_link = history()
    local ws = dir .. "/workspace"
    os.execute("rm -r " .. H.quote(ws .. "/d") .. " && ln -s elsewhere " .. H.quote(ws .. "/d"))
    local head = commit(dir, "d a link again")
    git(dir, "checkout -q -b person " .. as_dir)
    local r = compose(dir, dir .. "/c")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches(head:sub(1, 12), r.stdout, 1, true)
    assert.equal("symbolic link", kind(dir .. "/c/src/d"))
    -- and an older commit of main's, through a tag of the person's
    git(dir, "tag old " .. as_link)
    r = compose(dir, dir .. "/t", "old")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("symbolic link", kind(dir .. "/t/src/d"))
  end)

  it("takes attributes from the commit, never an uncommitted .gitattributes", function()
    local ws = dir .. "/workspace"
    H.write(ws .. "/.gitattributes", "*.bat eol=crlf\n")
    H.write(ws .. "/app.py", "print(1)\n")
    H.write(ws .. "/run.bat", "echo run\r\n")
    -- before .gitattributes in checkout's order, so its rule comes from the commit's tree
    H.write(ws .. "/+first.bat", "echo first\r\n")
    os.execute("mkdir " .. H.quote(ws .. "/sub"))
    H.write(ws .. "/sub/.gitattributes", "*.txt eol=crlf\n")
    H.write(ws .. "/sub/a.txt", "a\r\n")
    commit(dir, "the app")
    -- a person's draft: not committed, not staged, then staged
    H.write(ws .. "/.gitattributes", "*.bat eol=crlf\n*.py eol=crlf\n")
    local r = compose(dir, dir .. "/a")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("print(1)\n", H.read(dir .. "/a/src/app.py"))
    -- the commit's own rule applies, as git archive applies it
    assert.equal("echo run\r\n", H.read(dir .. "/a/src/run.bat"))
    assert.equal("echo first\r\n", H.read(dir .. "/a/src/+first.bat"))
    assert.equal("a\r\n", H.read(dir .. "/a/src/sub/a.txt"))
    assert.equal("echo run\n", git(dir, "cat-file blob HEAD:run.bat") .. "\n")
    assert.equal("*.bat eol=crlf\n", H.read(dir .. "/a/src/.gitattributes"))
    git(dir, "add .gitattributes")
    r = compose(dir, dir .. "/b")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("print(1)\n", H.read(dir .. "/b/src/app.py"))
    -- nor a setting of workspace/'s git config
    git(dir, "reset -q")
    git(dir, "config core.autocrlf true")
    r = compose(dir, dir .. "/c")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("print(1)\n", H.read(dir .. "/c/src/app.py"))
  end)
end)
