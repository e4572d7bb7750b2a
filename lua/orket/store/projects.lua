-- orket.store.projects: the projects and project_members tables (one server, many
-- projects: docs/teams.md) as named operations op(db, ...) -> plain Lua values; a store
-- error raises. They live in the store of the project `orket serve` runs in, beside the
-- people (orket.store.users). Written once for both backends (orket.store.dialect).
local crypto = require "orket.c.crypto"

local M = {}

--- list(db) -> array of {name, dir, added_at}, by name: the projects added with `orket projects add`
function M.list(db)
  return assert(db:rows("SELECT name, dir, " .. db.dialect.time("added_at") .. " FROM projects ORDER BY name"))
end

--- get(db, name) -> {name, dir} | nil
function M.get(db, name) return db:row("SELECT name, dir FROM projects WHERE name = ?", name) end

--- by_dir(db, dir) -> {name, dir} | nil
function M.by_dir(db, dir) return db:row("SELECT name, dir FROM projects WHERE dir = ?", dir) end

--- insert(db, name, dir): a project added now
function M.insert(db, name, dir)
  assert(db:run("INSERT INTO projects (name, dir, added_at) VALUES (?, ?, " .. db.dialect.now .. ")", name, dir))
end

--- store_id(db) -> the store's own id, made with it (store_identity) | nil: what its
--- identity keys off (a project's binding, so its members; a server's check of its projects;
--- the trace of a run recorded without one). Its data carries it: a copy of a SQLite file, a
--- PostgreSQL dump restored, a cluster moved, a database made from another as a template and
--- `orket restore` keep it, so a backup restored keeps its members (docs/teams.md); two such
--- copies hosted at once are told apart by the probe. The word a restore adds is left out.
function M.store_id(db)
  return M.lasting(M.journal_store_id(db))
end

--- journal_store_id(db) -> the store's id with the word `orket restore` adds (renew) | nil:
--- the store whose journal an event id is of, for the board's `store` and /v1/events?store=
--- only. A restore replaces the journal whole, so a client holding an id of the old one is
--- told to start over. Nothing else wants it: what keys off the store's identity reads
--- store_id.
function M.journal_store_id(db)
  local r = db:row("SELECT id FROM store_identity LIMIT 1")
  return r and r.id
end

-- An id made with a store: 32 hex digits (migration 27 on both backends). Only a word after
-- it, as renew writes it, is cut: an id of another shape is taken whole.
local MADE = "^(" .. string.rep("%x", 32) .. ")%-%x+$"

--- lasting(id) -> the part of a store id that no copy or restore changes: the id made with
--- the store, without the `-` and word a restore added after its 32 hex digits
function M.lasting(id)
  if type(id) ~= "string" then return id end
  return id:match(MADE) or id
end

--- renew(db): the store's id made anew, inside the caller's transaction: its lasting part
--- kept, a new random word after it. A restore does it, as the journal is replaced whole.
--- has: whether the store has the table (a backup older than it does not: its migration
--- draws a new id); with it, a failed read or write raises, never a restore said renewed.
function M.renew(db, has)
  if not has then return end
  local r, err = db:row("SELECT id FROM store_identity LIMIT 1")
  if err ~= nil then error("reading the store's id: " .. tostring(err), 0) end
  if not r then error("the store has no id (store_identity is empty)", 0) end
  assert(db:run("UPDATE store_identity SET id = ?", M.lasting(r.id) .. "-" .. crypto.random_id(8)))
end

--- same_store(bound, id) -> whether a project_stores binding names store id: the same
--- lasting id (either given whole, a restore's word after it), or "ID:OID" as PostgreSQL
--- stores were bound before (the database's oid was part of it)
function M.same_store(bound, id)
  if bound == id then return true end
  if type(bound) ~= "string" or type(id) ~= "string" then return false end
  local own = M.lasting(id)
  return M.lasting(bound) == own or bound:match("^(.*):%d+$") == own
end

--- probe(db[, word]) -> the probe word the store holds now (word written first, in a
--- transaction of its own)
function M.probe(db, word)
  if word then assert(db:tx(function() return db:run("UPDATE store_identity SET probe = ?", word) end)) end
  local r = db:row("SELECT probe FROM store_identity LIMIT 1")
  return r and r.probe
end

--- delete(db, name) -> changes: the added project is no longer hosted
function M.delete(db, name) return (assert(db:run("DELETE FROM projects WHERE name = ?", name))) end

--- clear_members(db, project) -> changes: nobody is a member of the project any more
function M.clear_members(db, project)
  return (assert(db:run("DELETE FROM project_members WHERE project = ?", project)))
end

--- bound(db, project) -> the store id the project's name was last served with | nil
function M.bound(db, project)
  local r = db:row("SELECT store_id FROM project_stores WHERE project = ?", project)
  return r and r.store_id
end

--- serving(db, project) -> {dir, store_id}, each nil when absent: what the store says the
--- name is now (its added project's folder, the store it was last bound to), in one query,
--- for a running server to compare with what it opened (orket.serve.projects.changed). A
--- failed read raises: it must not read as a project removed.
function M.serving(db, project)
  local r, err = db:row("SELECT (SELECT dir FROM projects WHERE name = ?) AS dir, "
    .. "(SELECT store_id FROM project_stores WHERE project = ?) AS store_id", project, project)
  if r == nil and err ~= nil then error(err, 0) end
  return r or {}
end

--- bind(db, project, store_id): the project's name names that store now (nil: no store)
function M.bind(db, project, store_id)
  assert(db:run("DELETE FROM project_stores WHERE project = ?", project))
  if store_id then
    assert(db:run("INSERT INTO project_stores (project, store_id, bound_at) VALUES (?, ?, " .. db.dialect.now .. ")",
      project, store_id))
  end
end

--- role_of(db, project, user) -> the person's role in the project | nil
function M.role_of(db, project, user)
  local r = db:row("SELECT role FROM project_members WHERE project = ? AND user_name = ?", project, user)
  return r and r.role
end

--- of_user(db, user) -> array of {project, role}, by project
function M.of_user(db, user)
  return assert(db:rows("SELECT project, role FROM project_members WHERE user_name = ? ORDER BY project", user))
end

--- of_users(db, after, last) -> array of {project, user_name, role}, by person then project:
--- the memberships of the people named after `after` ("": from the first) up to last, in the
--- order the people are listed (orket.store.users.list): a page of them in one read
function M.of_users(db, after, last)
  return assert(db:rows("SELECT project, user_name, role FROM project_members WHERE user_name > ? AND user_name <= ? "
    .. "ORDER BY user_name, project", after, last))
end

--- members(db) -> array of {project, user_name, role}, by person then project
function M.members(db)
  return assert(db:rows("SELECT project, user_name, role FROM project_members ORDER BY user_name, project"))
end

--- set_role(db, project, user, role): the person's role in the project, added or changed
function M.set_role(db, project, user, role)
  assert(db:run("DELETE FROM project_members WHERE project = ? AND user_name = ?", project, user))
  assert(db:run("INSERT INTO project_members (project, user_name, role) VALUES (?, ?, ?)", project, user, role))
end

--- remove(db, project, user) -> changes: the person is no longer a member
function M.remove(db, project, user)
  return (assert(db:run("DELETE FROM project_members WHERE project = ? AND user_name = ?", project, user)))
end

return M
