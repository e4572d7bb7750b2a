-- orket.project: where a project's files are (docs/store.md): the store lives at
-- DIR/.orket/orket.db. Shared by the commands that open a project's board.
local store = require "orket.store"

local M = {}

function M.db_path(dir)
  return (dir or ".") .. "/.orket/orket.db"
end

--- open_store(dir, create) -> db | nil, msg, CODE. Without create, a missing store is an
--- error that says to import first (reading commands never create files).
function M.open_store(dir, create)
  local path = M.db_path(dir)
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
