-- orket.c.gitdiff: a branch's change as files and unified diffs, within caps, binary files
-- named and never shown; the merge base and parents that choose what to compare against.
-- Repositories are made with the git command, as a person's would be.
local H = require "tests.helpers"
local gitdiff = require "orket.c.gitdiff"

local function git(dir, args)
  local cmd = string.format("git -C %s -c user.name=T -c user.email=t@example.com %s 2>&1", H.quote(dir), args)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  assert(f:close(), cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

-- main: a.txt, old.txt; branch orket/X from it: a.txt edited, b.bin (binary) added,
-- old.txt renamed to new.txt, big.txt (2 MiB of text) added; then main moves on (c.txt).
local function repo()
  local dir = H.tmpdir()
  git(dir, "init -q -b main")
  H.write(dir .. "/a.txt", "one\ntwo\nthree\n")
  H.write(dir .. "/old.txt", string.rep("a line that stays the same\n", 20))
  git(dir, "add -A")
  git(dir, "commit -q -m start")
  local start = git(dir, "rev-parse HEAD")
  git(dir, "checkout -q -b orket/X")
  H.write(dir .. "/a.txt", "one\n2\nthree\nfour\n")
  H.write(dir .. "/b.bin", "\0\1\2binary\0\255")
  git(dir, "mv old.txt new.txt")
  git(dir, "add -A")
  git(dir, "commit -q -m turn1")
  H.write(dir .. "/big.txt", string.rep("0123456789abcdef\n", 2 * 1024 * 1024 // 17 + 1))
  git(dir, "add -A")
  git(dir, "commit -q -m turn2")
  git(dir, "checkout -q main")
  H.write(dir .. "/c.txt", "main's own\n")
  git(dir, "add -A")
  git(dir, "commit -q -m main-moves")
  return dir, start
end

local function by_path(d)
  local t = {}
  for _, f in ipairs(d.files) do t[f.path] = f end
  return t
end

describe("orket.c.gitdiff", function()
  after_each(H.cleanup)

  it("lists what the branch changed against where it left main, with diffs, binaries named", function()
    local dir, start = repo()
    local g = assert(gitdiff.open(dir))
    local tip = assert(g:resolve("refs/heads/orket/X"))
    assert.matches("^%x+$", tip)
    assert.equal(40, #tip)
    assert.equal(start, g:merge_base("refs/heads/main", tip))
    local d = assert(g:diff(start, tip))
    local f = by_path(d)
    assert.equal(4, d.changed)
    assert.is_false(d.truncated)
    assert.is_nil(f["c.txt"]) -- main's later work is not the branch's
    assert.equal("M", f["a.txt"].status)
    assert.equal(2, f["a.txt"].additions)
    assert.equal(1, f["a.txt"].deletions)
    assert.matches("^diff %-%-git a/a.txt b/a.txt\n", f["a.txt"].patch)
    assert.matches("\n%-two\n%+2\n three\n%+four\n", f["a.txt"].patch)
    assert.equal("A", f["b.bin"].status)
    assert.is_true(f["b.bin"].binary)
    assert.is_nil(f["b.bin"].patch)
    assert.equal("R", f["new.txt"].status)
    assert.equal("old.txt", f["new.txt"].old_path)
    -- over the size a text diff is made for: named as binary
    assert.is_true(f["big.txt"].binary)
    assert.is_nil(f["big.txt"].patch)
    assert.equal(#f["a.txt"].patch + #(f["new.txt"].patch or ""), d.bytes)
    -- parents, in order
    assert.same({ start }, g:parents(git(dir, "rev-parse orket/X~1")))
    g:close()
  end)

  it("keeps to its caps: files beyond max_files unlisted, diffs beyond max_bytes named", function()
    local dir, start = repo()
    local g = assert(gitdiff.open(dir))
    local d = assert(g:diff(start, "refs/heads/orket/X", { max_files = 2 }))
    assert.equal(2, #d.files)
    assert.equal(4, d.changed)
    assert.is_true(d.truncated)
    d = assert(g:diff(start, "refs/heads/orket/X", { max_bytes = 10 }))
    local f = by_path(d)
    assert.is_true(f["a.txt"].omitted)
    assert.is_nil(f["a.txt"].patch)
    assert.equal(2, f["a.txt"].additions) -- still counted
    assert.is_true(d.truncated)
    assert.equal(0, d.bytes)
    g:close()
  end)

  it("answers nil for no such commit, nil, msg, CODE for a failure, and raises on misuse", function()
    local dir = repo()
    local g = assert(gitdiff.open(dir))
    assert.is_nil(g:resolve("refs/heads/nope"))
    assert.is_nil(g:resolve("not a name"))
    local ok, err, code = g:diff("refs/heads/nope", "refs/heads/main")
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("no commit refs/heads/nope", err)
    assert.same({ nil, "no commit refs/heads/nope", "ENOENT" }, { g:parents("refs/heads/nope") })
    assert.has_error(function() g:diff("refs/heads/main") end, "bad argument #2 to 'diff' (string expected, got no value)")
    assert.has_error(function() g:diff("refs/heads/main", "refs/heads/main", { max_files = 0 }) end,
      "bad argument #3 to 'diff' (field 'max_files' must be a whole number from 1 to 5000)")
    assert.matches("^gitdiff %(open%)$", tostring(g))
    g:close()
    g:close() -- idempotent
    assert.matches("^gitdiff %(closed%)$", tostring(g))
    assert.has_error(function() g:resolve("main") end, "calling 'resolve' on bad self (repository is closed)")
    local none, merr, mcode = gitdiff.open(H.tmpdir())
    assert.is_nil(none)
    assert.equal("ENOENT", mcode)
    assert.matches("is not a git repository", merr)
    do
      local scoped <close> = assert(gitdiff.open(dir))
      assert.is_string(scoped:resolve("main"))
    end
  end)
end)
