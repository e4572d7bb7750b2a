-- orket.tree: a scratch folder Orket made, removed with everything in it (replay's folder,
-- an MCP server's temp dir), and a tree the agents wrote copied for a sandbox to run. A link
-- inside is removed or copied as a link, never followed. Uses luv.
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

--- copy(src, dst, caps) -> files, bytes | nil, message, CODE: copies the tree at src into
--- the new folder dst: folders, regular files (with their mode) and symbolic links (as
--- links: what they point at is the reader's business, and a confined reader sees only its
--- view). Skipped: each name in caps.skip (at any depth, e.g. ".git"), FIFOs, sockets and
--- devices. caps = {files=, bytes=} (ETOOLARGE past either: the tree is the agents' work,
--- so its size is theirs to choose).
function M.copy(src, dst, caps)
  local files, bytes = 0, 0
  local skip = caps.skip or {}
  local function walk(from, to)
    local ok, err = uv.fs_mkdir(to, 493)
    if not ok then return nil, to .. ": " .. tostring(err), "EIO" end
    local h, serr = uv.fs_scandir(from)
    if not h then return nil, from .. ": " .. tostring(serr), "EIO" end
    local names = {}
    while true do -- read to the end: luv frees a listing's entries only as they are read
      local name = uv.fs_scandir_next(h)
      if not name then break end
      names[#names + 1] = name
    end
    for _, name in ipairs(names) do
      local a, b = from .. "/" .. name, to .. "/" .. name
      local st = not skip[name] and uv.fs_lstat(a)
      if st and st.type == "directory" then
        local wok, werr, wcode = walk(a, b)
        if not wok then return nil, werr, wcode end
      elseif st and (st.type == "file" or st.type == "link") then
        files, bytes = files + 1, bytes + st.size
        if files > caps.files or bytes > caps.bytes then
          return nil, string.format("%s: more than %d files or %d bytes", src, caps.files, caps.bytes), "ETOOLARGE"
        end
        local cok, cerr
        if st.type == "link" then
          local target, rerr = uv.fs_readlink(a)
          if target then cok, cerr = uv.fs_symlink(target, b) else cok, cerr = nil, rerr end
        else
          cok, cerr = uv.fs_copyfile(a, b)
          if cok then uv.fs_chmod(b, st.mode & 493) end
        end
        if not cok then return nil, b .. ": " .. tostring(cerr), "EIO" end
      end
    end
    return true
  end
  local ok, err, code = walk(src, dst)
  if not ok then return nil, err, code end
  return files, bytes
end

return M
