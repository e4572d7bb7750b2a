-- orket.store.backend: one set of named operations, two backends. Each SQLite operations
-- module (orket.store.X) ends with `return backend.twin("X", M)`; the table it returns
-- has the same functions, and each calls the PostgreSQL twin (orket.store.pg.X, loaded
-- at its first use) when the store it is given is a PostgreSQL one (db.backend == "pg"),
-- else the SQLite function. Callers keep require("orket.store.X") and never choose.
local M = {}

local twins = {} -- name -> the loaded orket.store.pg.<name>

local function pg_twin(name)
  local t = twins[name]
  if not t then
    t = require("orket.store.pg." .. name)
    twins[name] = t
  end
  return t
end

--- twin(name, ops) -> ops dispatched by backend: every function f(db, ...) of ops becomes
--- one that calls orket.store.pg.<name>'s function of the same name when db.backend is
--- "pg". Other values are copied as they are. A twin missing a function raises at the
--- call, naming both (the store_ops spec checks every module has all of them).
function M.twin(name, ops)
  local out = {}
  for k, f in pairs(ops) do
    if type(f) == "function" then
      out[k] = function(db, ...)
        if db.backend ~= "pg" then return f(db, ...) end
        local g = pg_twin(name)[k]
        if not g then error("orket.store.pg." .. name .. " has no " .. k .. " (orket.store." .. name .. " has)", 2) end
        return g(db, ...)
      end
    else
      out[k] = f
    end
  end
  return out
end

-- the operations modules that have a PostgreSQL twin (the specs check each is complete)
M.MODULES = { "journal", "runs", "turns", "approvals", "memory", "cards", "verifications", "forge",
  "keys", "sessions", "metrics", "imports", "comments", "leases", "sandboxes", "bugfix" }

return M
