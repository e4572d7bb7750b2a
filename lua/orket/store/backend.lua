-- orket.store.backend: one set of named operations, two backends. Each operations module
-- (orket.store.X) ends with `return backend.twin("X", M)`; the table it returns has the
-- same functions, and each calls the PostgreSQL twin of the same name (orket.store.pg.X,
-- loaded at its first use) when the store it is given is a PostgreSQL one (db.backend ==
-- "pg") and the twin has it, else the module's own function, which both backends run
-- (orket.store.dialect). Callers keep require("orket.store.X") and never choose.
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
--- "pg" and that module has one, else f. An operation is written once, in SQLite's SQL with
--- what differs taken from db.dialect (orket.store.dialect); only one whose SQL differs
--- beyond that has a PostgreSQL twin. Other values are copied as they are. The specs check
--- that every twin stands for an operation of ops.
function M.twin(name, ops)
  local out = {}
  for k, f in pairs(ops) do
    if type(f) == "function" then
      out[k] = function(db, ...)
        if db.backend ~= "pg" then return f(db, ...) end
        return (pg_twin(name)[k] or f)(db, ...)
      end
    else
      out[k] = f
    end
  end
  return out
end

--- row(db, sql, ...) -> the first row | nil (no row); raises the store's message on a store
--- error, as the operations' reads do (a damaged file is then named by orket.cli): a read
--- that failed must not pass for one that found nothing
function M.row(db, sql, ...)
  local r, err = db:row(sql, ...)
  if r == nil and err ~= nil then
    -- kept for orket.cli, which says a store's failure in one line, not as a bug of Orket's
    M.last_failure = err
    error(err, 0)
  end
  return r
end

--- rows(db, sql, ...) -> the rows (an array, {} for none); raises as row does
function M.rows(db, sql, ...)
  local r, err = db:rows(sql, ...)
  if r == nil then
    M.last_failure = err
    error(err or "store: a read failed", 0)
  end
  return r
end

-- the operations modules that have a PostgreSQL twin (the specs check that each of its
-- functions stands for one of the module's)
M.MODULES = { "journal_reads", "turns", "memory", "cards", "metrics", "leases", "sandboxes" }

return M
