-- End-to-end: a run's temp dir ($TMPDIR, /tmp/orket-run-PID-NS-XXXXXX on the host) is removed
-- whole however deep its program made it, at the run's end and by the next process's sweep,
-- and the removal follows no link and enters no mount point inside it (core/proc.c).
-- A stale dir this file plants is one every Orket process of this user in its PID namespace
-- may rightly sweep (docs/verify.md), the other test files' running beside it too: where it
-- can (root), it is planted for a PID namespace of the sweeping process's own, so that no
-- other process's sweep takes it first (one that did removed the mount point the last test
-- looks for, or the directory before the bind mount was made on it).
local H = require "tests.helpers"

local DEPTH = 3000 -- far past any fixed depth, and past PATH_MAX as a path

-- python3 code that makes DEPTH nested folders under the directory it is given (the last
-- holding a file) and a link to outside at depths 2 and 2000; chdir by name, as a path
-- that long cannot be opened whole
local function deep_tree_py(outside)
  return string.format([[
import os, sys
os.chdir(sys.argv[1])
for i in range(%d):
    os.mkdir("d"); os.chdir("d")
    if i in (2, 2000): os.symlink(%q, "out")
open("f", "w").write("x" * 4096)
]], DEPTH, outside)
end

-- A folder outside the tree with a file in it: what a removal that follows a link would empty.
local function outside_dir()
  local dir = H.tmpdir()
  H.write(dir .. "/keep", "kept\n")
  return dir
end

-- Runs `orket lua` on a script that runs argv once under the process runner (the first run of
-- the process sweeps /tmp first) in a fresh workspace; -> the run's stdout
local function run_once(argv, wrap)
  local root = H.tmpdir()
  assert(os.execute("mkdir -p " .. H.quote(root .. "/workspace") .. " " .. H.quote(root .. "/.orket")))
  H.write(root .. "/orket.lua", "return {}\n")
  local script = root .. "/run.lua"
  local words = {}
  for i, a in ipairs(argv) do words[i] = string.format("%q", a) end
  H.write(script, string.format([[
local proc = require "orket.c.proc"
local r = assert(proc.run { argv = { %s }, cwd = %q, timeout_ms = 60000 })
io.write(r.stdout, r.stderr)
os.exit(r.code == 0 and 0 or 3)
]], table.concat(words, ", "), root .. "/workspace"))
  local r = H.orket("lua " .. H.quote(script), { wrap = wrap })
  assert.equal(0, r.status, (r.stdout or "") .. (r.stderr or ""))
  return r.stdout
end

local function exists(path)
  return os.execute("test -e " .. H.quote(path)) == true
end

local function pid_ns()
  local p = io.popen("readlink /proc/self/ns/pid")
  local ns = p:read("a"):match("%[(%d+)%]")
  p:close()
  return ns
end

-- Whether a process can be started in a PID namespace (and mount namespace) of its own.
local function own_pidns_ok()
  return H.sh("unshare -m -p -f --mount-proc true") == 0
end

-- A wrap (H.orket's) that starts orket in a PID namespace of its own, there renames the
-- directory building to /tmp/orket-run-2147483000-NS-TAG (NS the new namespace's inode: a
-- name only a sweep in that namespace takes), writes that path to note, runs then (shell
-- words, "$stale" the new path) and execs orket. The pid is above any pid_max: no process
-- has it, so the name is stale.
local function own_pidns_wrap(building, tag, note, ...)
  local script = table.concat({
    'ns=$(readlink /proc/self/ns/pid) && ns=${ns#pid:[} && ns=${ns%]}',
    'stale=/tmp/orket-run-2147483000-$ns-' .. tag,
    'mv ' .. H.quote(building) .. ' "$stale"',
    'echo "$stale" >' .. H.quote(note),
    ..., -- (none, or more)
  }, " && ")
  return "unshare -m -p -f --mount-proc --propagation private sh -c " .. H.quote(script .. ' && exec "$0" "$@"')
end

describe("a run's temp dir", function()
  after_each(H.cleanup)

  it("is removed at the run's end however deep its program made it, and no link in it is followed", function()
    local outside = outside_dir()
    local out = run_once { "sh", "-c", 'python3 -c "$1" "$TMPDIR" && echo "tmp=$TMPDIR"', "sh", deep_tree_py(outside) }
    local tmp = out:match("tmp=(/tmp/orket%-run%-[^\n]+)")
    assert.is_string(tmp, out)
    assert.is_false(exists(tmp), tmp .. " is left")
    assert.equal("kept\n", H.read(outside .. "/keep"))
  end)

  it("left by a killed process is removed whole by the next process's sweep", function()
    local ns = pid_ns()
    if not ns then return pending("no /proc/self/ns/pid here") end
    local outside = outside_dir()
    local tag = string.format("e2e%d", math.random(100000, 999999))
    -- made under a name no sweep takes, then given the stale one: any orket process sweeps
    -- (the other test files' too), and one could start on it while it is being made
    local building = "/tmp/orket-test-making-" .. tag
    assert(os.execute("mkdir -m 700 " .. H.quote(building)))
    local made = H.sh("python3 -c " .. H.quote(deep_tree_py(outside)) .. " " .. H.quote(building))
    assert.equal(0, made)
    local stale, tries
    if own_pidns_ok() then
      -- named for the run's own PID namespace: its sweep alone may take it, and has, by the
      -- time the run is over
      local note = H.tmpdir() .. "/stale"
      local ok, err = pcall(run_once, { "true" }, own_pidns_wrap(building, tag, note))
      stale = (H.read(note) or ""):match("[^\n]+")
      if not stale then os.execute("rm -rf " .. H.quote(building)) end
      assert(ok, err)
      assert.is_string(stale, "the wrap did not rename " .. building)
      tries = 0
    else
      -- (without a namespace of its own, named for the shared one: another process's sweep at
      -- the same time may still be removing it, and is waited for)
      stale = string.format("/tmp/orket-run-2147483000-%s-%s", ns, tag)
      assert(os.rename(building, stale))
      run_once { "true" }
      tries = 500
    end
    local left = not pcall(H.wait_for, function() return not exists(stale) end, "the stale temp dir's removal", tries)
    if left then os.execute("rm -rf " .. H.quote(stale)) end
    assert.is_false(left, stale .. " is left")
    assert.equal("kept\n", H.read(outside .. "/keep"))
  end)

  it("is removed around a mount point inside it, which it does not enter", function()
    if not own_pidns_ok() then
      return pending("cannot make mount and PID namespaces here (unshare -m -p needs root)")
    end
    local outside = outside_dir()
    local tag = string.format("e2e%d", math.random(100000, 999999))
    -- (made under a name no sweep takes, and named for the sweeping process's own PID
    -- namespace, as above: another process's sweep, in the shared mount namespace where there
    -- is no mount point, would remove it whole)
    local building = "/tmp/orket-test-making-" .. tag
    assert(os.execute("mkdir -p " .. H.quote(building .. "/a/b/mnt") .. " " .. H.quote(building .. "/a/c/d")))
    H.write(building .. "/a/c/d/f", "x")
    -- the bind mount lives only in the namespace of the process that sweeps
    local note = H.tmpdir() .. "/stale"
    local ok, err = pcall(run_once, { "true" }, own_pidns_wrap(building, tag, note,
      "mount --bind " .. H.quote(outside) .. ' "$stale/a/b/mnt"'))
    local stale = (H.read(note) or ""):match("[^\n]+")
    if not stale then
      os.execute("rm -rf " .. H.quote(building))
      assert(ok, err)
      error("the wrap did not rename " .. building)
    end
    local kept = H.read(outside .. "/keep")
    local rest = exists(stale .. "/a/c")
    -- (its parent may have been moved up the tree on the way: looked for by name)
    local _, mountpoint = H.sh("find " .. H.quote(stale) .. " -name mnt -type d")
    os.execute("rm -rf " .. H.quote(stale))
    assert(ok, err)
    assert.equal("kept\n", kept)
    assert.is_false(rest, "what is beside the mount point is left")
    assert.matches("/mnt\n$", mountpoint, nil, false, "the mount point was removed")
  end)
end)
