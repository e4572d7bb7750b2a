-- orket.tree: a scratch folder Orket made, removed with everything in it (replay's folder,
-- an MCP server's temp dir, a sandbox's tree); a folder's names listed. A link is removed as a link, never
-- followed: path itself too, since what ran in the folder may have put one in its place.
-- Uses luv.
local uv = require "luv"

local M = {}

--- names(dir) -> the names in dir ({} when it cannot be read), read to the end: luv frees a
--- listing's entries only as they are read, so a loop that stops early would leak the rest
function M.names(dir)
  local out = {}
  local h = uv.fs_scandir(dir)
  while h do
    local name = uv.fs_scandir_next(h)
    if not name then break end
    out[#out + 1] = name
  end
  return out
end

--- remove(path): removes path's files and folders, then path itself; what cannot be
--- removed stays (a scratch folder is best effort). A path that is a link (or any other
--- file) is unlinked, whatever it leads to.
function M.remove(path)
  local st = uv.fs_lstat(path)
  if not st then return end
  if st.type ~= "directory" then
    uv.fs_unlink(path)
    return
  end
  local h = uv.fs_scandir(path)
  while h do -- read to the end: luv frees a listing's entries only as they are read
    local name, ty = uv.fs_scandir_next(h)
    if not name then break end
    local sub = path .. "/" .. name
    -- the listing's type is the entry's own (a link says "link"); a file system that gives
    -- none is asked with lstat in the call below
    if ty == "directory" or ty == nil or ty == "unknown" then M.remove(sub) else uv.fs_unlink(sub) end
  end
  uv.fs_rmdir(path)
end

return M
