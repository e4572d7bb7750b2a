-- the store's file watched while orket serve runs (docs/serve.md). A SQLite store's file
-- removed or replaced under a running server (a cleanup script's rm, a mistaken mv): the
-- server went on reading and writing the file it had open, unlinked, /ready said ready and
-- every write was answered 200, and all of it was gone when the process ended. Each
-- project's file is looked at on a timer; the first one found gone or replaced is said to
-- the caller, which stops the server (orket.cmd.serve). PostgreSQL stores have no file.
local uv = require "luv"
local project = require "orket.project"

local M = {}

M.EVERY_MS = 2000

-- the file at path as the kernel names it -> "dev:ino" | nil (none there)
local function identity(path)
  local st = uv.fs_stat(path)
  return st and (tostring(st.dev) .. ":" .. tostring(st.ino)) or nil
end

--- start(projects, gone) -> {close = fn}: every EVERY_MS, each SQLite project's store file
--- (projects: name -> {dir=, db=}) is compared with the one there when it started; gone(name,
--- message) is called once, for the first one removed or replaced.
function M.start(projects, gone)
  local watched = {}
  for name, p in pairs(projects) do
    if p.db and p.db.dialect and p.db.dialect.name == "sqlite" then
      local path = project.db_path(p.dir)
      local id = identity(path)
      if id then watched[#watched + 1] = { name = name, path = path, id = id } end
    end
  end
  if #watched == 0 then return { close = function() end } end
  local timer = uv.new_timer()
  local function close() if not timer:is_closing() then timer:close() end end
  timer:start(M.EVERY_MS, M.EVERY_MS, function()
    for _, w in ipairs(watched) do
      local now = identity(w.path)
      if now ~= w.id then
        close()
        gone(w.name, string.format("the store's file %s was %s under the server: what it writes now would be lost "
          .. "with the file it has open; stopping (put the store back, or restore a backup, then start it again)",
          w.path, now and "replaced by another file" or "removed"))
        return
      end
    end
  end)
  return { close = close }
end

return M
