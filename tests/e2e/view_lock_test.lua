-- main's repository (workspace/.git) is a person's too. A run's or a resume's start never takes
-- a lock of their git's: a `git commit` whose editor is open holds index.lock, and with it
-- taken their commit failed ("unable to write new_index file") and left their index a staged
-- revert of itself. While the lock is there the view waits and says which file it is and
-- what to do; a run killed inside its own write there still recovers on its own.
local H = require "tests.helpers"

-- the starter project `orket init` makes, in a folder of its own
local function starter()
  local root = H.tmpdir()
  assert.equal(0, H.orket("init p --yes", { cwd = root }).status)
  return root .. "/p"
end

local function gitdir_names(dir)
  local p = io.popen("ls -a " .. H.quote(dir .. "/workspace/.git"))
  local out = p:read("a")
  p:close()
  return out
end

local function git(dir, args)
  local p = io.popen(string.format("git -C %s/workspace %s 2>&1", H.quote(dir), args))
  local out = p:read("a")
  p:close()
  return out
end

-- A person's `git commit` of path in workspace/ whose editor stays open for secs seconds (git
-- holds .git/index.lock meanwhile); returns once the lock is there, with wait() -> the
-- commit's exit status and output once it has ended.
local function commit_with_editor_open(dir, path, secs)
  local out = H.tmpdir()
  local editor = string.format([[sh -c 'sleep %d; echo "my change" > "$1"' --]], secs)
  os.execute(string.format("cd %s/workspace && { GIT_EDITOR=%s git -c user.name=p -c user.email=p@p commit -- %s "
    .. ">%s/out 2>&1; echo $? >%s/rc; } &", H.quote(dir), H.quote(editor), H.quote(path), out, out))
  H.wait_for(function() return H.read(dir .. "/workspace/.git/index.lock") or H.read(out .. "/rc") end,
    "git's index lock")
  assert.is_nil(H.read(out .. "/rc"), H.read(out .. "/out"))
  return function()
    H.wait_for(function() return (H.read(out .. "/rc") or ""):match("%d+") end, "the person's commit to end", 3000)
    return tonumber(H.read(out .. "/rc"):match("%d+")), H.read(out .. "/out")
  end
end

describe("main's repository's locks in a run", function()
  after_each(function() H.cleanup() end)

  it("leaves a person's live git commit its index.lock at a run's and a resume's start", function()
    local dir = starter()
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    H.write(dir .. "/workspace/README.md", "mine\n")
    local wait = commit_with_editor_open(dir, "README.md", 4)
    finally(function() wait() end) -- (a failed assertion leaves no git behind)
    local lock = dir .. "/workspace/.git/index.lock"
    local resumed = H.orket("resume", { cwd = dir }) -- every run is done: it only recovers
    assert.matches("no run to resume", resumed.stderr .. resumed.stdout, 1, true)
    assert.truthy(H.read(lock), "the resume took the person's git's lock")
    local again = H.orket("run START", { cwd = dir })
    assert.equal(0, again.status, again.stderr)
    assert.truthy(H.read(lock), "the run took the person's git's lock")
    local rc, out = wait()
    assert.equal(0, rc, out)
    -- their commit landed whole: nothing staged or changed after it
    assert.equal("", git(dir, "status --porcelain"))
    assert.matches("my change", git(dir, "log -1 --format=%B main"), 1, true)
  end)

  it("waits while a person's git holds main's index, naming the file and what to do, then catches up", function()
    local dir = starter()
    local lock = dir .. "/workspace/.git/index.lock"
    H.write(lock, "") -- a person's git at work in workspace/
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"status":"done"', r.stdout)
    assert.matches('"action":"view_stale"', r.stdout, 1, true)
    assert.equal("", H.read(lock))
    local s = H.orket("status", { cwd = dir })
    assert.equal(0, s.status, s.stderr)
    assert.matches("workspace/ is behind main", s.stdout, 1, true)
    assert.matches("workspace/.git/index.lock is there", s.stdout, 1, true)
    assert.matches("rm workspace/.git/index.lock", s.stdout, 1, true)
    -- their git ended: the next resume catches up
    os.remove(lock)
    local resumed = H.orket("resume", { cwd = dir })
    assert.matches("workspace/ caught up with main", resumed.stderr .. resumed.stdout, 1, true)
    assert.equal("", git(dir, "status --porcelain"))
    assert.is_nil(H.orket("status", { cwd = dir }).stdout:find("behind", 1, true))
  end)

  -- killed right where libgit2 renames the lock into place (an LD_PRELOAD shim's rename)
  it("recovers on its own from a run killed inside its write of main's index or main's ref", function()
    local shimdir = H.tmpdir()
    H.write(shimdir .. "/shim.c", [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void maybe_die(const char *from) {
  const char *at = getenv("ORKET_TEST_KILL_AT");
  size_t n = at ? strlen(at) : 0, f = from ? strlen(from) : 0;
  if (n && f >= n && strcmp(from + f - n, at) == 0) kill(getpid(), SIGKILL);
}
int rename(const char *from, const char *to) {
  maybe_die(from);
  return ((int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename"))(from, to);
}
int link(const char *from, const char *to) {
  maybe_die(from);
  return ((int (*)(const char *, const char *))dlsym(RTLD_NEXT, "link"))(from, to);
}
]])
    if not os.execute(string.format("cc -shared -fPIC -o %s/shim.so %s/shim.c -ldl 2>/dev/null", H.quote(shimdir),
      H.quote(shimdir))) then
      return pending("no C compiler here")
    end
    local preload = shimdir .. "/shim.so"
    if H.sanitized() then -- a sanitizer build's runtime must come first among preloaded libraries
      local l = io.popen("ldd " .. H.quote(H.BIN) .. " 2>/dev/null")
      local asan = l:read("a"):match("=> (%S*libasan%S*)")
      l:close()
      if not asan then return pending("a sanitizer build whose runtime ldd does not name") end
      preload = asan .. ":" .. preload
    end
    for _, at in ipairs { "/workspace/.git/index.lock", "/workspace/.git/refs/heads/main.lock" } do
      local dir = starter()
      local killed = H.orket("run START", { cwd = dir, env = { LD_PRELOAD = preload, ORKET_TEST_KILL_AT = at } })
      assert.equal(137, killed.status, at .. ": " .. tostring(killed.stderr))
      assert.truthy(H.read(dir .. at), at .. ": no lock left by the kill")
      assert.matches("orket%-write%.%d+", gitdir_names(dir))
      local r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, at .. ": " .. tostring(r.stderr))
      assert.matches('"status":"done"', r.stdout)
      assert.is_nil(H.read(dir .. at), at)
      assert.not_matches("orket%-write", gitdir_names(dir))
      assert.equal("", git(dir, "status --porcelain"), at)
      assert.not_matches("behind", H.orket("status", { cwd = dir }).stdout, at)
    end
  end)
end)
