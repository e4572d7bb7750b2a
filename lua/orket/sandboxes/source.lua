-- orket.sandboxes.source: what a sandbox runs, main's tree at a recorded commit, written out
-- of the repository's objects (orket.c.gitexport) into a folder of its own; never a copy of
-- main's working tree (workspace/), which is a view for people and may hold their edits.
-- Uses orket.c.gitexport, orket.c.gitdiff, orket.sandboxes.plan, orket.workspace, orket.tree.
local uv = require "luv"
local gitexport = require "orket.c.gitexport"
local gitdiff = require "orket.c.gitdiff"
local plan_mod = require "orket.sandboxes.plan"
local workspace = require "orket.workspace"
local tree = require "orket.tree"

local M = {}

-- main's tree written for the app: the agents chose its size
M.CAPS = { files = 50000, bytes = 512 * 1024 * 1024 }

local scratch_n = 0

--- scratch(dir) -> a path under the project's .orket/sandboxes/ that does not exist yet
function M.scratch(dir)
  -- absolute: the export writes a tree's folders below it, which a relative path ("./")
  -- failed to open
  dir = uv.fs_realpath(dir) or dir
  -- (orket.cmd.sandbox refuses a folder with neither orket.lua nor .orket/ first, so only
  -- a project not run yet gets its .orket/ here)
  uv.fs_mkdir(dir .. "/.orket", 448)
  uv.fs_mkdir(dir .. "/.orket/sandboxes", 448)
  scratch_n = scratch_n + 1
  return string.format("%s/.orket/sandboxes/export.%d.%d.%d", dir, uv.os_getpid(), uv.hrtime() % 1000000, scratch_n)
end

--- of_main(dir, rev) -> id | nil, message, CODE: the commit rev names, one of main's history
--- (exported by that id, so a branch that moves meanwhile is not read again). A sandbox runs
--- main's tree; a person's branch in workspace/ (or a card's) named by --commit would be
--- listed, checked and used by the agents as main's.
function M.of_main(dir, rev)
  local repo, err, code = gitdiff.open(dir .. "/workspace")
  if not repo then return nil, "sandbox: " .. tostring(err), code end
  local id, rerr, rcode = repo:resolve(rev)
  local main = id and repo:resolve("refs/heads/main")
  local base = id and main and repo:merge_base(id, main)
  repo:close()
  if rerr then return nil, "sandbox: " .. tostring(rerr), rcode end
  if not id then return nil, string.format("sandbox: no commit %s in the repository", rev), "ENOENT" end
  if base ~= id then
    return nil, string.format("sandbox: %s is not a commit of main's history (a sandbox runs main's tree: "
      .. "merge it into main first, or name one of main's commits)", rev), "EINVAL"
  end
  return id
end

--- export(dir, rev, dest) -> commit, files | nil, message, CODE: the project's tree at rev (a
--- commit id, or "main" for main's head now) written into the new folder dest. A failure
--- removes what it wrote.
function M.export(dir, rev, dest)
  local named = rev
  if rev and rev ~= "main" then
    local err, ecode
    rev, err, ecode = M.of_main(dir, rev)
    if not rev then return nil, err, ecode end
  end
  local commit, files, code = gitexport.export(dir .. "/workspace", rev or "main", dest, M.CAPS)
  if not commit then
    if code ~= "EEXIST" then tree.remove(dest) end
    return nil, "sandbox: exporting main's tree at " .. tostring(named or "main") .. ": " .. tostring(files), code
  end
  return commit, files
end

--- plan_in(path, settings) -> plan | nil, message, CODE, reasons: what a sandbox would run
--- from the tree written at path (orket.sandboxes.plan.detect through the confined
--- workspace: the tree is the agents' work)
function M.plan_in(path, s)
  local ws, werr = workspace.open(path)
  if not ws then return nil, werr, "ENOENT" end
  local p, perr, pcode, why = plan_mod.detect(ws, s)
  ws:close()
  if not p then return nil, perr, pcode or "EINVAL", why end
  return p
end

--- plan(dir, settings [, rev]) -> plan, commit | nil, message, CODE, reasons: what a sandbox
--- of main at rev (default: main's head now) would run, and the commit it names
function M.plan(dir, s, rev)
  local path = M.scratch(dir)
  local commit, err, code = M.export(dir, rev, path)
  if not commit then return nil, err, code end
  local p, perr, pcode, why = M.plan_in(path, s)
  tree.remove(path)
  if not p then return nil, perr, pcode, why end
  return p, commit
end

return M
