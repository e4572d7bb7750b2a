-- orket.serve.team: the server's projects and who is a member of which, with what role
-- (docs/teams.md): adding a project, granting and revoking a person's role in one. Each
-- change is journaled in the default project's store, named by its actor; the caller
-- audits it. `orket projects` and the people API (orket.serve.people) call these.
local sp = require "orket.store.projects"
local audit_chain = require "orket.audit.chain"
local users = require "orket.store.users"
local team_settings = require "orket.settings.team"
local config = require "orket.config"
local uv = require "luv"

local M = {}

M.ROLES = { viewer = true, developer = true, admin = true }

--- project_role(role) -> a project's role for an account's role (operator: developer)
function M.project_role(role) return role == "operator" and "developer" or role end

-- the change journaled, in the caller's transaction (the caller audits it: the API's
-- audit of its writes, or a command's: orket.serve.localuse.audited)
local function record(db, kind, actor, data)
  db:event { kind = kind, actor = actor, data = data }
end

--- resolve(base, dir, name) -> real dir, name | nil, msg, CODE (EUSAGE, EEXIST, ENOENT):
--- the project directory `orket projects add` names (an orket project: orket.lua or
--- .orket/) and its name, by default the directory's own
function M.resolve(base, dir, name)
  local real = uv.fs_realpath(dir:sub(1, 1) == "/" and dir or (base .. "/" .. dir))
  if not real or not (uv.fs_stat(real .. "/orket.lua") or uv.fs_stat(real .. "/.orket")) then
    return nil, dir .. " is not a project directory (no orket.lua or .orket/ there)", "ENOENT"
  end
  -- a folder of another project's tree (an orket.lua an agent wrote there) is never a project
  -- (in_tree looks above the path as named and above its real path, real)
  local tree = config.in_tree(dir:sub(1, 1) == "/" and dir or (base .. "/" .. dir))
  if tree then return nil, tree, "EUSAGE" end
  if real == uv.fs_realpath(base) then return nil, dir .. " is the default project, which the server serves already", "EEXIST" end
  name = name or real:match("([^/]+)$"):lower()
  local ok, nerr = team_settings.project_name(name)
  if not ok then return nil, nerr .. " (give one with --name)", "EUSAGE" end
  if name == team_settings.DEFAULT_PROJECT then return nil, "\"default\" names the server's own project", "EUSAGE" end
  return real, name
end

--- add_project(db, base, dir, name, actor) -> {name, dir} | nil, msg, CODE (as resolve's):
--- a project this server hosts from its next start
function M.add_project(db, base, dir, name, actor)
  local real, rname, rcode = M.resolve(base, dir, name)
  if not real then return nil, rname, rcode end
  name = rname
  return db:tx(function()
    if sp.get(db, name) then return nil, "a project named '" .. name .. "' exists already", "EEXIST" end
    local same = sp.by_dir(db, real)
    if same then return nil, real .. " is served already, as project '" .. same.name .. "'", "EEXIST" end
    sp.insert(db, name, real)
    record(db, "project_add", actor, { name = name, dir = real })
    return { name = name, dir = real }
  end)
end

--- remove_project(db, name, configured, actor) -> {name, dir, members} | nil, msg, CODE
--- (EUSAGE, ENOENT): a project added with `orket projects add` is not hosted from the
--- server's next start, and its memberships go with it (members: how many), so a project
--- added later under the name starts with none. configured: orket.lua's serve.projects,
--- whose projects are removed there.
function M.remove_project(db, name, configured, actor)
  if name == team_settings.DEFAULT_PROJECT then return nil, "\"default\" is the server's own project", "EUSAGE" end
  return db:tx(function()
    local row = sp.get(db, name)
    if not row then
      if (configured or {})[name] then
        return nil, "project '" .. name .. "' is named in orket.lua's serve.projects: remove it there", "EUSAGE"
      end
      return nil, "no project named '" .. tostring(name) .. "' was added", "ENOENT"
    end
    sp.delete(db, name)
    sp.bind(db, name, nil)
    local n = sp.clear_members(db, name)
    record(db, "project_remove", actor, { name = name, dir = row.dir, members = n })
    return { name = name, dir = row.dir, members = n }
  end)
end

--- rebind(db, name, store_id, actor, route) -> nil | {name, from, to, members}: the project name
--- is served on store store_id (orket.store.projects.store_id) now. Its memberships were
--- granted for the store it named before: when that was another store (orket.lua's
--- serve.projects pointed elsewhere, or the name reused), they are dropped (members: how
--- many), journaled and audited, so the old members get nothing of the new project. A name served for
--- the first time is bound to its store; the same store restored from a backup (its id
--- is in its data) keeps them. route: where it was found ("serve" at a server's start, "cli").
function M.rebind(db, name, store_id, actor, route)
  if not store_id then return nil end
  local out
  assert(db:tx(function()
    local was = sp.bound(db, name)
    if was == store_id then return true end
    sp.bind(db, name, store_id)
    if was and not sp.same_store(was, store_id) then
      out = { name = name, from = was, to = store_id, members = sp.clear_members(db, name) }
      record(db, "project_rebound", actor, out)
      -- memberships taken away are an audited change, as a revoke is (docs/audit.md)
      audit_chain.record(db, { actor = actor, action = "project_rebound", route = route, subject = { project = name } })
    end
    return true
  end))
  return out
end

-- A person of a provider or a directory whose membership of project their sign-ins set:
-- the default project's (their account's role, or the groups' when project_roles names
-- it) and each project sign_in.project_roles names. A grant or a revoke there would say it
-- was done and come undone at their next sign-in or directory look. -> the refusal | nil
local function follows(row, project, signin)
  local source = row and row.hash and row.hash:match("^!(%l+):")
  -- their way of signing in no longer set up here: nothing sets their roles again
  if not source or not (signin and signin[source]) then return nil end
  local project_roles = signin.project_roles
  if project ~= team_settings.DEFAULT_PROJECT and not (project_roles and project_roles[project] ~= nil) then return nil end
  return string.format("%s signs in through %s: their role in '%s' follows their groups at each sign-in "
    .. "(sign_in.roles, sign_in.project_roles); change their groups there", row.name, source, project)
end
M.follows = follows

--- no_project(name, known) -> the refusal of a project name no hosted project has, naming
--- those there are (known: a set of names), so a mistyped name is answered with the right
--- one. Said only to whoever manages projects: an admin, the server's machine.
function M.no_project(name, known)
  local names = {}
  for n in pairs(known or {}) do names[#names + 1] = n end
  table.sort(names)
  return string.format("no project named '%s' (the projects hosted: %s)", tostring(name), table.concat(names, ", "))
end

--- grant(db, known, project, user, role, actor[, signin]) -> {project, user, role,
--- unchanged, server_admin} | nil, msg, CODE: the person's role in the project (server_admin:
--- they are one, and act as admin there while they are; unchanged: they held that
--- role there already, and nothing is journaled; the result is marked so, by
--- orket.audit.chain's unchanged, and the caller audits nothing either) (known: set of project names this
--- server hosts; signin: the sign_in settings, whose provider or directory sets a federated
--- person's roles in the default project and those project_roles names: EFOLLOWS)
function M.grant(db, known, project, user, role, actor, signin)
  role = M.project_role(role)
  if not M.ROLES[role] then return nil, "unknown role '" .. tostring(role) .. "': use viewer, developer or admin", "EUSAGE" end
  if not known[project] then return nil, M.no_project(project, known), "ENOENT" end
  return db:tx(function()
    local row = users.get(db, user)
    if not row then return nil, users.unknown(db, user), "ENOENT" end
    local why = follows(row, project, signin)
    if why then return nil, why, "EFOLLOWS" end
    -- a server admin acts as admin in every project whatever the grant: said to the granter
    -- (the role is kept, theirs once they are no server admin)
    local admin = row.role == "admin" or nil
    -- a grant of the role held is no change: journaled again it would read as one
    if sp.role_of(db, project, user) == role then
      return audit_chain.unchanged { project = project, user = user, role = role, unchanged = true, server_admin = admin }
    end
    sp.set_role(db, project, user, role)
    record(db, "member_grant", actor, { project = project, name = user, role = role })
    return { project = project, user = user, role = role, server_admin = admin }
  end)
end

--- revoke(db, project, user, actor[, signin[, known]]) -> {project, user} | nil, msg, CODE
--- (ENOENT, EFOLLOWS: as grant's,
--- ESERVERADMIN: a server admin is an admin of every project, member or not, so taking
--- them out of one would change nothing but say it did). known: the set of project names
--- hosted; a membership of a project no longer hosted is taken out too (it would come back
--- with the project), and with no such row a name not in known is said to be no project.
function M.revoke(db, project, user, actor, signin, known)
  return db:tx(function()
    local row = users.get(db, user)
    -- named as grant names it, not as "not a member", which sends one looking for a grant
    if not row then return nil, users.unknown(db, user), "ENOENT" end
    if row.role == "admin" then
      return nil, string.format("%s is a server admin, an admin of every project whatever their memberships: "
        .. "take that away first ('orket users role %s operator')", user, user), "ESERVERADMIN"
    end
    local why = follows(row, project, signin)
    if why then return nil, why, "EFOLLOWS" end
    if sp.remove(db, project, user) == 0 then
      if known and not known[project] then return nil, M.no_project(project, known), "ENOENT" end
      return nil, "'" .. tostring(user) .. "' is not a member of '" .. tostring(project) .. "'", "ENOENT"
    end
    record(db, "member_revoke", actor, { project = project, name = user })
    return { project = project, user = user }
  end)
end

return M
