-- orket.tree: a scratch folder Orket made, removed with everything in it (replay's folder,
-- an MCP server's temp dir, a sandbox's tree). A link inside is removed as a link, never
-- followed. Uses luv.
local uv = require "luv"

local M = {}

--- remove(path): removes path's files and folders, then path itself; what cannot be
--- removed stays (a scratch folder is best effort)
function M.remove(path)
  local h = uv.fs_scandir(path)
  while h do -- read to the end: luv frees a listing's entries only as they are read
    local name, ty = uv.fs_scandir_next(h)
    if not name then break end
    local sub = path .. "/" .. name
    if ty == "directory" then M.remove(sub) else uv.fs_unlink(sub) end
  end
  uv.fs_rmdir(path)
end

return M
