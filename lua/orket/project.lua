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
    return nil, string.format("no board in %s (%s not found); run 'orket import' first", dir or ".", path), code
  end
  return db, err, code
end

return M
