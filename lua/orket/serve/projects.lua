-- orket.serve.projects: one server, many projects (docs/teams.md). The project orket serve
-- runs in is "default" (its routes are /v1/... as before); the others come from its
-- orket.lua's serve.projects and from `orket projects add` (orket.store.projects). Every
-- route is also served under /v1/projects/{p}/..., on that project's store, directory and
-- journal; a project is visible only to its members (role_in), and a project that does
-- not exist answers as one the caller may not see.
local team = require "orket.settings.team"
local sp = require "orket.store.projects"
local users = require "orket.store.users"
local keys = require "orket.serve.keys"
local serve_team = require "orket.serve.team"
local jsonout = require "orket.jsonout"
local cjson = require "cjson"
local uv = require "luv"
local project = require "orket.project"
local pgurl = require "orket.store.pgurl"

local M = {}

M.DEFAULT = team.DEFAULT_PROJECT

-- a directory as the server names it: relative ones from the default project's
local function absolute(base, dir)
  if dir:sub(1, 1) == "/" then return dir end
  return (uv.fs_realpath(base .. "/" .. dir) or (base .. "/" .. dir))
end

--- named(db, base, configured) -> array of {name, dir}, by name | nil, msg: the projects
--- besides the default one (orket.lua's serve.projects, then those added to the store)
function M.named(db, base, configured)
  local by, list = {}, {}
  for name, dir in pairs(configured or {}) do by[name] = absolute(base, dir) end
  for _, r in ipairs(sp.list(db)) do
    if by[r.name] and by[r.name] ~= r.dir then
      return nil, "project '" .. r.name .. "' is named both in orket.lua's serve.projects and by 'orket projects add'"
    end
    by[r.name] = r.dir
  end
  for name, dir in pairs(by) do list[#list + 1] = { name = name, dir = dir } end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

--- open(dir[, reading]) -> db | nil, msg, CODE: a hosted project's store: its own SQLite file
--- or its orket.lua's store.url (ORKET_DATABASE_URL names the default project's, never another's)
function M.open(dir, reading)
  return project.open_store(dir, false, reading, function(name)
    if name ~= pgurl.ENV then return os.getenv(name) end
  end)
end

-- words for a project's store in a message
local function kind_of(db) return db.backend == "pg" and "the same PostgreSQL database" or "the same SQLite file" end

--- one_store(list) -> nil | msg: list of {name, dir, db} (their stores open); the message
--- names the first two projects that are one store. Two projects on one store would each
--- show and write the other's board, journal, audit and runs to the other's members. Told by
--- the store itself, not its path or URL (host aliases, users, a database named twice): a
--- word written through each project is read back through every one; a project that reads
--- another's word is the same store (a copy of a store never is). A store that cannot be
--- written (read-only) is left out.
function M.one_store(list)
  local whose = {}
  for i, p in ipairs(list) do
    local word = string.format("%s/%d/%d/%d", uv.os_gethostname() or "", uv.os_getpid(), uv.hrtime(), i)
    if pcall(sp.probe, p.db, word) then whose[word] = i end
  end
  for i, p in ipairs(list) do
    local ok, word = pcall(sp.probe, p.db)
    local k = ok and whose[word]
    if k and k ~= i then
      local a, b = list[math.min(i, k)], list[math.max(i, k)]
      return string.format("projects '%s' (%s) and '%s' (%s) are one store (%s): each project needs a store of its "
        .. "own (its own store.url database); stop hosting one (orket projects remove NAME, or orket.lua's serve.projects)",
        a.name, a.dir, b.name, b.dir, kind_of(p.db))
    end
  end
  return nil
end

--- rebound_text(r) -> what a project's rebinding (orket.serve.team.rebind) did, in words
function M.rebound_text(r)
  return string.format("project '%s' names another store than before (store id %s, was %s): its %d earlier "
    .. "membership(s) were dropped; grant its people again (orket projects grant)", r.name, r.to, r.from, r.members)
end

--- mark_stored(db, p) -> p, with stored: whether it was added with `orket projects add`
--- (changed compares it later)
function M.mark_stored(db, p)
  p.stored = sp.get(db, p.name) ~= nil
  return p
end

--- opened(db, p) -> p ({name, dir, db}, the server's own store db), with what changed
--- compares later: stored (added with `orket projects add`) and store_id (its store's)
function M.opened(db, p)
  M.mark_stored(db, p)
  p.store_id = sp.store_id(p.db)
  return p
end

--- changed(db, p) -> nil | why: whether the store still names what a running server opened
--- at its start for project p ({name, dir, stored, store_id}: stored, added with `orket
--- projects add`; store_id, its store's). A project removed, or removed and added again from
--- another folder or store, is not served on: its old store would be served under the name,
--- and grants to the name (which mean the new one) would reach the old one's content.
-- change_of(db, p) -> nil | kind ("removed", "readded", "rebound"), why: changed's, in parts
local function change_of(db, p)
  local now = sp.serving(db, p.name)
  if p.stored and not now.dir then return "removed", "was removed (orket projects remove)" end
  if p.stored and now.dir ~= p.dir then return "readded", "was removed and added again from another folder" end
  if now.store_id and p.store_id and not sp.same_store(now.store_id, p.store_id) then
    return "rebound", "was pointed at another store (orket.lua's serve.projects)"
  end
end

local function changed_text(name, why)
  return string.format("project '%s' %s since this server started: it serves the project no more, nor grants "
    .. "roles in it, until it is restarted", name, why)
end

function M.changed(db, p)
  local kind, why = change_of(db, p)
  return kind and changed_text(p.name, why) or nil
end

--- scope(segs) -> project name, the segments of the route inside it, those of the route
--- outside /v1 it may be (nil when REST starts with v1) | nil: a path of the form
--- /v1/projects/{p}/REST is REST's route (under /v1 first, else as it is: /mcp)
function M.scope(segs)
  if segs[1] ~= "v1" or segs[2] ~= "projects" or #segs < 4 then return nil end
  local rest = { "v1" }
  for i = 4, #segs do rest[#rest + 1] = segs[i] end
  -- only the routes outside /v1 are taken as they are: /v1/projects/P/v1/board was else
  -- a second path to P's board, which no document names
  local bare = segs[4] ~= "v1" and { table.unpack(segs, 4) } or nil
  return segs[3], rest, bare
end

--- scoped_pattern(pattern) -> a route's pattern as a project's request names it (the log
--- line's route, a proxy tally's, an MCP tool's audit): "/v1/x" -> "/v1/projects/{p}/x",
--- "/mcp" -> "/v1/projects/{p}/mcp", as scope reads such a path
function M.scoped_pattern(pattern)
  return "/v1/projects/{p}" .. (pattern:gsub("^/v1", ""))
end

--- server_admin(db, who) -> whether the identity may act on every project and on people
function M.server_admin(db, who)
  -- local use (before any key or person) keeps the operator's role, as before projects:
  -- its first key or person is made on the command line
  if who.local_use then return false end
  if who.user then
    local row = users.get(db, who.user)
    return row ~= nil and row.role == "admin" and not row.disabled_at
  end
  return who.role == "admin" -- a key of the server's own (no person): as before, its role
end

--- strongest(db, who, user, known) -> the highest role person user (as identity who) holds:
--- admin for a server admin, else their strongest in a project named in known (a set of
--- names; a developer's is an operator key's) | nil for none. A membership left of a project
--- no longer hosted (taken out of serve.projects, not removed) reaches nothing, so it allows
--- no stronger key either. A key's stored role is what it would act with the day its person
--- were promoted, so every way of making a person's key holds it to this.
function M.strongest(db, who, user, known)
  if M.server_admin(db, who) then return "admin" end
  local best
  for _, m in ipairs(sp.of_user(db, user)) do
    -- a running server's project (its entry, not a name) that changed since it started
    -- (removed, pointed elsewhere) grants nothing there: nor a key here
    local p = known[m.project]
    local held = p and not (type(p) == "table" and m.project ~= M.DEFAULT and change_of(db, p))
    if held and (not best or keys.RANK[m.role] > keys.RANK[best]) then best = m.role end
  end
  return best
end

--- hosted(db, dir) -> the set of project names a server of dir would host (the default one,
--- orket.lua's serve.projects, those added to the store) | nil, msg
function M.hosted(db, dir)
  local web = require "orket.serve.web" -- lazy: the settings loader, only the command line's asking
  local list, err = M.named(db, uv.fs_realpath(dir) or dir, (web.settings(dir) or {}).projects)
  if not list then return nil, err end
  local set = { [M.DEFAULT] = true }
  for _, p in ipairs(list) do set[p.name] = true end
  return set
end

--- server_role(db, who) -> the identity's role on the server's own routes (people, keys,
--- projects): admin for a server admin, else viewer; a personal key never above its own
function M.server_role(db, who)
  local role = M.server_admin(db, who) and "admin" or "viewer"
  return who.cap and M.lower(role, who.cap) or role
end

--- role_in(db, who, project) -> the identity's role in the project | nil (not a member).
--- Local use acts as the operator everywhere; a server admin is admin everywhere; a key
--- without a person acts in the default project only, with its own role; a person has the
--- role their membership gives, and a personal key never more than its own role.
function M.role_in(db, who, project)
  if who.local_use then return "operator" end
  if M.server_admin(db, who) then return who.cap and M.lower(who.cap, "admin") or "admin" end
  if not who.user then return project == M.DEFAULT and who.role or nil end
  local role = sp.role_of(db, project, who.user)
  if role and who.cap then role = M.lower(role, who.cap) end
  return role
end

--- refusal(db, who, role, need[, project[, signin]]) -> message, remedy: the 403 of an
--- identity whose role (in project, or on the server's own routes when project is nil) is
--- below need; it says what the caller is and who can change that, which "a key of that
--- role" alone did not. signin: the sign_in settings (a role that follows sign-in groups)
function M.refusal(db, who, role, need, project, signin)
  local want = project and need == "operator" and "developer" or need
  local msg = project and string.format("this needs the %s role in project '%s'; you act there as %s", want, project,
      role == "operator" and "developer" or role)
    or "this is for the server's admins, and this request does not act as one"
  if who.cap and not keys.allows(who.cap, need) then
    -- one remedy whatever the person's own roles: the holder of a weaker key (one that
    -- leaked) learns no more of its person than GET /v1/session shows them
    return msg, "this " .. who.cap .. " key (or a session opened with it) acts with no more than " .. who.cap
      .. ", whatever its person's roles: use a key of that role or the session of a sign-in, whose person "
      .. "holds the role (docs/teams.md#keys)"
  end
  if who.user and project then
    local why = serve_team.follows(users.get(db, who.user), project, signin)
    if why then return msg, why .. " (docs/teams.md#the-settings)" end
    return msg, string.format("a server admin grants it (PUT /v1/users/%s/projects/%s {\"role\": \"%s\"}, or "
      .. "'orket projects grant %s %s %s') (docs/teams.md#roles)", who.user, project, want, project, who.user, want)
  elseif who.user then
    -- these routes manage people, keys and projects: a project's role is no way in
    return msg, string.format("people, keys and projects are managed by the server's admins alone: ask one to do "
      .. "it, or, if you are to manage them, to make you one (PUT /v1/users/%s/role {\"role\": \"admin\"}, or "
      .. "'orket users role %s admin') (docs/teams.md#roles)", who.user, who.user)
  end
  return msg, "use a key of that role or higher ('orket keys create NAME --role " .. need .. "') (docs/serve.md)"
end

--- lower(a, b) -> the lesser of two roles
function M.lower(a, b)
  return (keys.RANK[a] or 0) <= (keys.RANK[b] or 0) and a or b
end

local function added_text(name)
  return string.format("project '%s' was added since this server started: it is served from the server's next start",
    name)
end

--- added_since(srv, name) -> why | nil: the name is a project stored (orket projects add)
--- since the server started, which it does not serve until restarted: said so, where a
--- grant in it was else refused as a project that does not exist
function M.added_since(srv, name)
  if type(name) ~= "string" or name == M.DEFAULT or srv.projects[name] or srv.unavailable[name] then return nil end
  return sp.get(srv.db, name) and added_text(name) or nil
end

-- GET /v1/projects: the caller's projects as the store names them now, not as the server
-- opened them at its start: one removed since is left out, and one added (a rename's new
-- name), added again from another folder or pointed at another store is listed with
-- changed, why it is served only from the server's next start (its routes answer 409 or
-- 404 until then)
local function list(_, ctx)
  local srv, who = ctx.server, ctx.who
  local out, seen = {}, {}
  local function listed(name, role, changed)
    -- a project's roles by their names (viewer, developer, admin): a key's "operator" (a
    -- server key, local use) is a developer's there, as a person's membership says it
    out[#out + 1] = { name = name, role = role == "operator" and "developer" or role, default = name == M.DEFAULT,
      changed = changed }
  end
  for _, name in ipairs(srv.project_names) do
    seen[name] = true
    -- the caller's role first: a project they may not see is not read about at all
    local role = M.role_in(srv.db, who, name)
    local p = role and name ~= M.DEFAULT and (srv.projects[name] or srv.unavailable[name])
    local kind, why
    if p then kind, why = change_of(srv.db, p) end
    if role and kind ~= "removed" then listed(name, role, kind and changed_text(name, why) or nil) end
  end
  for _, r in ipairs(sp.list(srv.db)) do
    local role = not seen[r.name] and M.role_in(srv.db, who, r.name)
    if role then
      listed(r.name, role, added_text(r.name))
    end
  end
  table.sort(out, function(a, b)
    if a.default ~= b.default then return a.default end
    return a.name < b.name
  end)
  return 200, { format = "orket.projects/1", projects = jsonout.array(out) }
end

local PROJECT = { type = "object", additionalProperties = false, required = { "name", "role", "default" },
  properties = { name = { type = "string" }, role = { enum = { "viewer", "developer", "admin" } },
    default = { type = "boolean" }, changed = { type = "string", description = "the name names another project "
      .. "than this server serves (added, or added again, since its start): served from its next start" } } }

-- GET /v1/branding: what the sign-in page shows before anyone signs in
local function branding(_, ctx)
  local b = ctx.server.branding or {}
  return 200, { name = b.name or "Orket", logo = b.logo or cjson.null, colors = b.colors or {} } -- {} is an object
end

local COLOR = { type = "string", pattern = "^#[0-9a-f]{3}([0-9a-f]{3})?$" }

--- add(router): GET /v1/projects, the caller's projects; GET /v1/branding
function M.add(router)
  router:add("GET", "/v1/branding", { handler = branding, server = true, name = "branding",
    summary = "The server's name, logo and colours (serve.branding), for the sign-in page: needs no key",
    responses = { [200] = { schema = { type = "object", additionalProperties = false, required = { "name", "logo", "colors" },
      properties = { name = { type = "string" }, logo = { type = { "string", "null" } },
        colors = { type = "object", additionalProperties = false,
          properties = { accent = COLOR, background = COLOR, text = COLOR } } } } } } })
  router:add("GET", "/v1/projects", { handler = list, role = "viewer", server = true, name = "projects",
    summary = "The projects this caller is a member of, with their role in each",
    responses = { [200] = { schema = { type = "object", additionalProperties = false, required = { "format", "projects" },
      properties = { format = { enum = { "orket.projects/1" } }, projects = { type = "array", items = PROJECT } } } } } })
end

return M
