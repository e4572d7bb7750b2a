-- orket.project: where a project's files are (docs/store.md): the store lives at
-- DIR/.orket/orket.db. Shared by the commands that open a project's board.
local store = require "orket.store"

local M = {}

-- In the current directory the path is written as the user would (.orket/orket.db): it
-- is what error messages show.
function M.db_path(dir)
  if dir == nil or dir == "." then return ".orket/orket.db" end
  return dir .. "/.orket/orket.db"
end

--- open_store(dir, create) -> db | nil, msg, CODE. Without create, a missing store is an
--- error that says to import first (reading commands never create files).
function M.open_store(dir, create)
  local path = M.db_path(dir)
  local home = path:match("^(.*)/[^/]+$")
  local st = require("luv").fs_stat(home)
  if st and st.type ~= "directory" then
    -- SQLite would only say "unable to open database file", or we "not found"
    return nil, string.format("%s is not a directory (the board lives in %s); move the file away", home, path),
      "ENOTDIR"
  end
  local db, err, code = store.open(path, { create = create })
  if not db and code == "ENOENT" then
    -- no orket.lua either: not a project at all, and importing would not help
    local f = io.open((dir or ".") .. "/orket.lua", "rb")
    if f then f:close() end
    local advice = f and "run 'orket import' first" or "no orket.lua here either: 'orket init' creates a project"
    return nil, string.format("no board in %s (%s not found); %s", dir or ".", path, advice), code
  end
  return db, err, code
end

return M
