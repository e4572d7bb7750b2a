-- orket.serve.people: the people API (docs/teams.md). A person's own keys under /v1/me/keys
-- (any person signed in); for the server's admins, the people with their projects, roles
-- and keys under /v1/users: add, disable and enable (ending their sessions at once), grant
-- and revoke a role in a project, create and revoke their keys. The work is
-- orket.serve.accounts, orket.serve.keys and orket.serve.team, which the CLI calls too;
-- every change is journaled and audited under the caller's name. A new key is in the
-- answer once, nowhere else.
local cjson = require "cjson"
local jsonout = require "orket.jsonout"
local accounts = require "orket.serve.accounts"
local audit_chain = require "orket.audit.chain"
local keys = require "orket.serve.keys"
local team = require "orket.serve.team"
local admin = require "orket.serve.admin"
local routes = require "orket.serve.routes"
local oa = require "orket.serve.openapi"
local sp = require "orket.store.projects"
local projects = require "orket.serve.projects"
local sk = require "orket.store.keys"
local users = require "orket.store.users"

local M = {}

local err = routes.err

-- the person a /v1/me route is about | nil, status, doc. A server key (or the local token)
-- is a valid caller with no person: refused as any caller the route is not for (403), the
-- request itself being well-formed
local function me(ctx)
  if not ctx.who.user then
    return nil, err(403, "forbidden", "only a person has personal keys: this caller is not one (a server key, or "
      .. "local use)", "sign in as a person (POST /v1/session), or use a personal key; the server's keys are "
      .. "managed under /v1/keys (docs/teams.md#keys)")
  end
  return ctx.who.user
end

local function key_create(ctx, user)
  local rst, rdoc = admin.name_refused(ctx)
  if rst then return rst, rdoc end
  local key, info, code = admin.in_tx(ctx, "key_create", function(by)
    return keys.create(ctx.db, ctx.dir, ctx.body.name, ctx.body.role, by, user)
  end, keys.subject)
  if not key then return admin.refused(info, code) end
  return 201, { id = info.id, name = info.name, role = info.role, user = user, key = key }
end

-- the person's key that which names: its id, else the name of a key of theirs not revoked
-- (unique among those), as `orket keys revoke` and /v1/keys take either. 16 hex digits are
-- an id only: a key named so by an older orket is revoked by its id (docs/teams.md#keys),
-- and another person's key of that name is never theirs. -> row | nil
local function their_key(db, user, which)
  local row = sk.get(db, which)
  if row and row.user_name == user then return row end
  if #which == 16 and which:match("^%x+$") then return nil end
  for _, k in ipairs(sk.active_named(db, which)) do
    if k.user_name == user then return k end
  end
  return nil
end

-- listing: the route that lists the keys which was looked among, for the 404's remedy
local function key_revoke(ctx, user, which, listing)
  local row = their_key(ctx.db, user, which)
  if not row then
    return err(404, "not_found", string.format("%s has no key with the id '%s', nor one not revoked named so", user,
      which), "GET " .. listing .. " lists the keys' ids and names (docs/teams.md#keys)")
  end
  local info, msg, code = admin.in_tx(ctx, "key_revoke", function(by) return keys.revoke(ctx.db, row.id, by) end,
    keys.subject)
  if not info then return admin.refused(msg, code) end
  return 200, { id = info.id, name = info.name, role = info.role, revoked = true }
end

local function my_keys(_, ctx)
  local user, st, doc = me(ctx)
  if not user then return st, doc end
  return admin.list_page(ctx, user)
end

local function my_key_create(_, ctx)
  local user, st, doc = me(ctx)
  if not user then return st, doc end
  local want = ctx.body.role
  local rst, rdoc = admin.maker_refused(ctx, want)
  if rst then return rst, rdoc end
  -- nor a person one stronger than they are anywhere: a key's stored role is what it
  -- would act with the day its person were promoted
  local top = projects.strongest(ctx.db, ctx.who, user, ctx.server.projects)
  if not top then
    -- no role to ask within: the grant comes first
    return err(403, "forbidden", "your strongest role is none (a member of no project): a key of yours would reach "
      .. "nothing", "a server admin grants you a role in a project first (orket projects grant PROJECT " .. user
      .. " ROLE, or PUT /v1/users/" .. user .. "/projects/PROJECT {role}); then make the key (docs/teams.md#roles)")
  end
  if not keys.allows(top, want) then
    return err(403, "forbidden", string.format("your strongest role is %s: a key of yours may be %s", top,
      keys.cap_words(top, want)),
      "ask for a role no stronger than your strongest; a stronger one is an admin's to grant (docs/teams.md#roles)")
  end
  return key_create(ctx, user)
end

-- POST /v1/users/{name}/keys: an admin's key for a person is held to the person's strongest
-- role as their own is; else a CI key made "admin" for a developer would become a server
-- admin's key the day they were promoted, wherever it had been pasted meanwhile
local function user_key_create(_, ctx)
  local user, want = ctx.params.name, ctx.body.role
  -- (the maker's own limits first: an admin's own name here was the way round them)
  local rst, rdoc = admin.maker_refused(ctx, want)
  if rst then return rst, rdoc end
  if not accounts.exists(ctx.db, user) then return err(404, "not_found", users.unknown(ctx.db, user)) end
  local top = projects.strongest(ctx.db, { user = user }, user, ctx.server.projects)
  -- a project's role is the grant to name: a project's admin may have an admin key, and a
  -- server admin (who manages people) is far more than a key needs
  local how = "PUT /v1/users/" .. user .. "/projects/PROJECT {\"role\": \"ROLE\"}"
  local grant = keys.grant_words(user, want, how, not top)
  if not top then
    return err(403, "forbidden", user .. " is a member of no project: a key of theirs would reach nothing", grant)
  end
  if not keys.allows(top, want) then
    return err(403, "forbidden", string.format("%s's strongest role is %s: a key of theirs may be %s", user, top,
      keys.cap_words(top, want)), grant)
  end
  return key_create(ctx, user)
end

-- a key (or a session opened with one) revokes itself or keys of its role or lower, as it
-- makes them: else a leaked viewer key could revoke its person's CI and admin keys
local function revoke_refused(ctx, user)
  local cap, row = ctx.who.cap, their_key(ctx.db, user, ctx.params.id)
  if not cap or not row or row.id == ctx.who.key_id or keys.allows(cap, row.role) then return nil end
  return err(403, "forbidden", (cap == "viewer" and "a " or "an ") .. cap .. " key revokes itself or keys of its "
    .. "role or lower; this key is " .. row.role, "revoke it with a key of that role or higher, or with the "
    .. "session of a sign-in (docs/teams.md#keys)")
end

local function my_key_revoke(_, ctx)
  local user, st, doc = me(ctx)
  if not user then return st, doc end
  local rst, rdoc = revoke_refused(ctx, user)
  if rst then return rst, rdoc end
  return key_revoke(ctx, user, ctx.params.id, "/v1/me/keys")
end

--- KEYS_SHOWN: how many of a person's keys GET /v1/users shows, as first_keys (those not
--- revoked first, which the people page can revoke, then the oldest); key_count and
--- live_key_count say how many they have, and GET /v1/users/{name}/keys pages them all. A
--- person with thousands of keys (a CI that makes one per job) would make each page of
--- people unbounded
M.KEYS_SHOWN = 5

--- FORMAT: GET /v1/users's document. /2: `keys` (every key of the person) became
--- first_keys (at most KEYS_SHOWN); a field that changes its meaning is a new format, so a
--- client of /1 that reads `keys` as every key finds none rather than too few
M.FORMAT = "orket.users/2"

-- GET /v1/users[?after=NAME][&limit=N]: each person with their projects and first keys, a
-- page at a time by name (a team of thousands is not one answer), as the audit's listings
-- page: next, when the page is full, is the ?after= of the next one
local function list(_, ctx)
  local paged, st, bad = routes.named_page(ctx.query, accounts.check_name, "a person's name")
  if not paged then return st, bad end
  local after, limit = paged.after, paged.limit
  local db, out = ctx.db, {}
  local page = accounts.list(db, after, limit)
  -- the page's memberships and keys read at once (not two reads a person), by name
  local projs, their_keys = {}, {}
  if #page > 0 then
    for _, m in ipairs(sp.of_users(db, after or "", page[#page].name)) do
      projs[m.user_name] = projs[m.user_name] or {}
      table.insert(projs[m.user_name], { name = m.project, role = m.role })
    end
    their_keys = keys.of_users(db, after or "", page[#page].name, M.KEYS_SHOWN)
  end
  local none = { keys = {}, count = 0, live = 0 }
  for i, u in ipairs(page) do
    local theirs = their_keys[u.name] or none
    out[i] = { name = u.name, role = u.role, admin = u.role == "admin", signs_in = u.signs_in, created_at = u.created_at,
      disabled_at = u.disabled_at or cjson.null, projects = jsonout.array(projs[u.name] or {}),
      first_keys = jsonout.array(theirs.keys), key_count = theirs.count, live_key_count = theirs.live }
  end
  return 200, { format = M.FORMAT, users = jsonout.array(out), projects = jsonout.array(ctx.server.project_names),
    next = routes.next_of(out, limit, "name") }
end

-- answer(res, doc) -> 200, doc with unchanged: whether the change changed nothing (its
-- result marked by orket.audit.chain's unchanged, so neither journaled nor audited), the
-- one way a grant, a role and a disable or enable say so
local function answer(res, doc)
  doc.unchanged = audit_chain.is_unchanged(res)
  return 200, doc
end

local function refused(msg, code)
  if code == "EUSAGE" then return err(400, "bad_request", msg) end
  return admin.refused(msg, code)
end

local function add(_, ctx)
  local b = ctx.body
  local known = ctx.server.projects
  local changed = b.project and (ctx.server:changed(b.project) or projects.added_since(ctx.server, b.project))
  if changed then return err(409, "project_changed", changed) end
  if b.project and not known[b.project] then return err(404, "not_found", "body.project: " .. team.no_project(b.project, known)) end
  -- role is the account role: admin makes a server admin, of every project. Sent with
  -- another project it reads as "an admin of that project" and would give all of them
  if b.role == "admin" and b.project and b.project ~= projects.DEFAULT then
    return err(400, "bad_request", "body.role: admin makes a server admin (an admin of every project, who manages "
      .. "people), not an admin of '" .. b.project .. "' alone", "to make an admin of '" .. b.project .. "' only, add "
      .. "them as viewer or operator, then PUT /v1/users/NAME/projects/" .. b.project .. " {\"role\": \"admin\"}; "
      .. "for a server admin, leave out project (docs/teams.md#people-the-api)")
  end
  -- the field named, as the schema's own refusals name theirs
  local nok, nerr = accounts.check_name(b.name)
  if not nok then return err(400, "bad_request", "body.name: " .. nerr) end
  local pok, perr = accounts.check_password(b.password)
  if not pok then return err(400, "bad_request", "body.password: " .. perr) end
  -- hashed before the transaction, which cannot wait on the thread pool
  local hash, herr, hcode = accounts.hash(b.name, b.role, b.password)
  if not hash then return refused(herr, hcode) end
  local res, msg, code = admin.in_tx(ctx, "user_add", function(by)
    return accounts.add(ctx.db, b.name, b.role, hash, by, b.project)
  end, accounts.subject)
  -- a disabled person's name: no account is removed, so they come back by enable
  local taken = code == "EEXIST" and users.get(ctx.db, b.name)
  if taken and taken.disabled_at then
    return err(409, "conflict", msg, "POST /v1/users/" .. b.name .. "/enable lets them sign in again, with the "
      .. "projects and keys they kept (docs/teams.md#offboarding)")
  end
  if not res then return refused(msg, code) end
  return 201, { name = res.name, role = res.role }
end

local function set_disabled(disabled)
  return function(_, ctx)
    local res, msg, code = admin.in_tx(ctx, disabled and "user_disable" or "user_enable", function(by)
      return accounts.set_disabled(ctx.db, ctx.params.name, disabled, by, true)
    end, accounts.subject)
    if not res then return refused(msg, code) end
    local out = { name = res.name, role = res.role, disabled = disabled, changed = res.changed }
    if not disabled then
      -- an enable brings the person's keys back with them: which, so the admin sees what
      -- works again (a directory's name now another entry's is handed over by the CLI's
      -- users enable --new-subject, which revokes them instead: docs/teams.md#offboarding);
      -- at most five, as GET /v1/users lists a person's (a CI's person has one a job)
      local live, back = sk.live(ctx.db, res.name), setmetatable({}, cjson.array_mt)
      for i = 1, math.min(5, #live) do back[i] = { id = live[i].id, name = live[i].name, role = live[i].role } end
      out.first_keys, out.live_key_count = back, #live
    end
    return answer(res, out)
  end
end

-- POST /v1/users/{name}/unlock: the failed password sign-ins counted against the name
-- forgotten (orket.serve.session's per-name limit), so the person signs in at once
local function unlock(_, ctx)
  local res, msg, code = admin.in_tx(ctx, "user_unlock", function(by)
    return accounts.unlock(ctx.db, ctx.params.name, by)
  end, accounts.subject)
  if not res then return refused(msg, code) end
  return 200, { name = res.name, cleared = res.cleared }
end

-- PUT /v1/users/{name}/password: hashed before the transaction, as add's; the person's
-- other password sessions end (the caller's own is kept when it is theirs)
local function set_password(_, ctx)
  local name, who = ctx.params.name, ctx.who
  local hash, herr, hcode = accounts.hash_password(ctx.body.password)
  if not hash then return refused(hcode == "EUSAGE" and "body.password: " .. herr or herr, hcode) end
  local keep = who.user == name and not who.key_session and who.session or nil
  local res, msg, code = admin.in_tx(ctx, "user_password", function(by)
    return accounts.set_password(ctx.db, name, hash, by, keep)
  end, accounts.subject)
  if not res then return refused(msg, code) end
  return 200, { name = res.name, password_set = true }
end

local function set_role(_, ctx)
  local res, msg, code = admin.in_tx(ctx, "user_role", function(by)
    return accounts.set_role(ctx.db, ctx.params.name, ctx.body.role, by)
  end, accounts.subject)
  if not res then return refused(msg, code) end
  local dp = res.default_project
  return answer(res, { name = res.name, role = res.role, was = res.was, admin = res.role == "admin",
    changed = res.changed, default_project = dp and { role = dp.role, was = dp.was } or cjson.null })
end

local function grant(_, ctx)
  local p = ctx.params
  -- the name means the project now stored, which this server does not serve until restarted
  local changed = ctx.server:changed(p.project) or projects.added_since(ctx.server, p.project)
  if changed then return err(409, "project_changed", changed) end
  local res, msg, code = admin.in_tx(ctx, "member_grant", function(by)
    return team.grant(ctx.db, ctx.server.projects, p.project, p.name, ctx.body.role, by,
      ctx.server.signin)
  end, accounts.subject)
  if not res then return refused(msg, code) end
  return answer(res, { project = res.project, user = res.user, role = res.role })
end

local function revoke(_, ctx)
  local p = ctx.params
  -- a membership of a project no longer hosted is taken out too (it would come back with
  -- the project); with no such row, the project's absence is what to say
  local res, msg, code = admin.in_tx(ctx, "member_revoke", function(by)
    return team.revoke(ctx.db, p.project, p.name, by, ctx.server.signin, ctx.server.projects)
  end, accounts.subject)
  if not res then return refused(msg, code) end
  return 200, { project = res.project, user = res.user, revoked = true }
end

local function user_keys(_, ctx)
  if not accounts.exists(ctx.db, ctx.params.name) then
    return err(404, "not_found", users.unknown(ctx.db, ctx.params.name))
  end
  return admin.list_page(ctx, ctx.params.name)
end
local function user_key_revoke(_, ctx)
  -- a person who is none is said so (with the lower-case name there is), as the listing does
  if not accounts.exists(ctx.db, ctx.params.name) then
    return err(404, "not_found", users.unknown(ctx.db, ctx.params.name))
  end
  return key_revoke(ctx, ctx.params.name, ctx.params.id, "/v1/users/" .. ctx.params.name .. "/keys")
end

local ROLE = { type = "string", enum = { "viewer", "operator", "admin" } }
local PROJECT_ROLE = { type = "string", enum = { "viewer", "developer", "operator", "admin" } }
local KEY_BODY = { type = "object", additionalProperties = false, required = { "name", "role" }, properties = {
  name = keys.NAME_SCHEMA, role = ROLE } }
local PERSON = { type = "object", additionalProperties = false, required = { "name", "role", "admin", "signs_in",
  "created_at", "disabled_at", "projects", "first_keys", "key_count", "live_key_count" }, properties = {
  name = { type = "string" }, role = ROLE, admin = { type = "boolean" },
  signs_in = { type = "string", enum = { "password", "oidc", "ldap" }, description = "how they sign in: a password "
    .. "of theirs, or the identity provider (oidc) or directory (ldap) vouching for them (docs/teams.md)" },
  created_at = { type = "string" },
  disabled_at = { type = { "string", "null" } },
  projects = { type = "array", items = { type = "object", additionalProperties = false, required = { "name", "role" },
    properties = { name = { type = "string" }, role = PROJECT_ROLE } } },
  first_keys = { type = "array", items = admin.KEY, maxItems = M.KEYS_SHOWN, description = "at most " .. M.KEYS_SHOWN
    .. " of their keys, those not revoked first, oldest first: GET /v1/users/{name}/keys lists them all" },
  key_count = { type = "integer", description = "how many keys they have, revoked ones included" },
  live_key_count = { type = "integer", description = "how many of their keys are not revoked; when more than "
    .. "the ones first_keys holds, GET /v1/users/{name}/keys lists the rest" } } }
local USERS = { type = "object", additionalProperties = false, required = { "format", "users", "projects" }, properties = {
  format = { enum = { M.FORMAT } }, users = { type = "array", items = PERSON },
  projects = { type = "array", items = { type = "string" } },
  next = { type = "string", description = "when the page is full: the ?after= of the next page" } } }
local ADDED = { type = "object", additionalProperties = false, required = { "name", "role" },
  properties = { name = { type = "string" }, role = ROLE } }
local UNCHANGED = { type = "boolean", description = "the person was so already: nothing journaled or audited" }
local SWITCHED = { type = "object", additionalProperties = false, required = { "name", "role", "disabled", "changed",
  "unchanged" }, properties = { name = { type = "string" }, role = ROLE, disabled = { type = "boolean" },
  changed = { type = "boolean" }, unchanged = UNCHANGED,
  first_keys = { type = "array", maxItems = 5, description = "an enable's: at most five of the person's keys that "
    .. "work again (oldest first)", items = { type = "object", additionalProperties = false,
      required = { "id", "name", "role" }, properties = { id = { type = "string" }, name = { type = "string" },
        role = ROLE } } },
  live_key_count = { type = "integer", description = "an enable's: how many of the person's keys work again" } } }
local UNLOCKED = { type = "object", additionalProperties = false, required = { "name", "cleared" },
  properties = { name = { type = "string" }, cleared = { type = "boolean",
    description = "whether failed sign-ins were counted against the name" } } }
local PASSWORD_SET = { type = "object", additionalProperties = false, required = { "name", "password_set" },
  properties = { name = { type = "string" }, password_set = { type = "boolean" } } }
local ROLE_SET = { type = "object", additionalProperties = false,
  required = { "name", "role", "was", "admin", "changed", "unchanged", "default_project" }, properties = {
    name = { type = "string" },
    role = ROLE, was = ROLE, admin = { type = "boolean" }, changed = { type = "boolean" }, unchanged = UNCHANGED,
    default_project = { type = { "object", "null" }, additionalProperties = false, required = { "role", "was" },
      properties = { role = PROJECT_ROLE, was = PROJECT_ROLE }, description = "their role in the default project, "
        .. "which follows the account's (operator: developer), and the one before; null: no member of it, left so. "
        .. "Their roles in other projects stay as granted" } } }
local MEMBER = { type = "object", additionalProperties = false, required = { "project", "user" },
  properties = { project = { type = "string" }, user = { type = "string" }, role = PROJECT_ROLE, revoked = { type = "boolean" },
    unchanged = { type = "boolean", description = "a grant: the person held that role there already (nothing "
      .. "journaled or audited)" } } }

-- a password as the server takes one, so that a client checking against the document is
-- told: the schema's bounds count characters, orket.serve.accounts' bytes (add and
-- set_password check those too: up to 4 bytes a character)
local PASSWORD = { type = "string", minLength = accounts.MIN_PASSWORD, maxLength = accounts.MAX_PASSWORD,
  description = string.format("%d to %d characters", accounts.MIN_PASSWORD, accounts.MAX_PASSWORD) }

local function ok(schema, description) return { [200] = { schema = schema, description = description } } end
local function made(schema) return { [201] = { schema = schema, description = "the new key, shown once" } } end
-- a /v1/me route's answers: its 403 says who it refuses, which the generic one does not
local function mine(responses, refused)
  responses[403] = { schema = oa.ERROR, description = "forbidden: the caller is not a person (a server key, "
    .. "or local use)" .. (refused or "") }
  return responses
end

--- add(router): /v1/me/keys (a person) and /v1/users (the server's admins)
function M.add(router)
  local function r(method, pattern, spec)
    spec.server, spec.role = true, spec.role or "admin"
    router:add(method, pattern, spec)
  end
  r("GET", "/v1/me/keys", { handler = my_keys, role = "viewer", name = "my_keys", query = admin.PAGING,
    summary = "My personal API keys, a page at a time",
    responses = mine(ok(admin.LIST)) })
  r("POST", "/v1/me/keys", { handler = my_key_create, role = "viewer", body = "json", schema = KEY_BODY, name = "my_keys_create",
    errors = { 409 }, summary = "Create a personal API key, acting as me (shown once)", responses = mine(made(admin.CREATED),
      "; or the key asked for is stronger than the asking key or my strongest role, or a provider's person asks "
        .. "with a key") })
  r("DELETE", "/v1/me/keys/{id}", { handler = my_key_revoke, role = "viewer", name = "my_keys_delete", errors = { 409 },
    summary = "Revoke one of my keys, by its id or name", responses = mine(ok(admin.REVOKED)) })
  r("GET", "/v1/users", { handler = list, name = "users",
    summary = "The people: their projects, roles and keys, a page at a time by name",
    query = routes.named_query("the people after this name"),
    responses = ok(USERS) })
  r("POST", "/v1/users", { handler = add, body = "json", name = "users_create", errors = { 409 },
    schema = { type = "object", additionalProperties = false, required = { "name", "role", "password" }, properties = {
      name = { type = "string", minLength = 1, maxLength = 64 }, role = ROLE,
      password = PASSWORD, project = { type = "string", maxLength = 40 } } },
    summary = "Add a person (a member of project, default \"default\", with role)",
    responses = { [201] = { schema = ADDED, description = "the person added" } } })
  -- 409: the last enabled server admin is kept
  r("POST", "/v1/users/{name}/disable", { handler = set_disabled(true), name = "users_disable", errors = { 409 },
    summary = "Disable a person: their sessions end at once, their keys stop", responses = ok(SWITCHED) })
  r("POST", "/v1/users/{name}/enable", { handler = set_disabled(false), name = "users_enable",
    summary = "Enable a person again", responses = ok(SWITCHED) })
  r("POST", "/v1/users/{name}/unlock", { handler = unlock, name = "users_unlock",
    summary = "Lift a lockout: forget the failed password sign-ins counted against the name (docs/serve.md, Limits)",
    responses = ok(UNLOCKED) })
  r("PUT", "/v1/users/{name}/password", { handler = set_password, body = "json", name = "users_password",
    errors = { 409 }, schema = { type = "object", additionalProperties = false, required = { "password" },
      properties = { password = PASSWORD } },
    summary = "Set a person's password: the sessions they signed in to with it end",
    responses = ok(PASSWORD_SET) })
  r("PUT", "/v1/users/{name}/role", { handler = set_role, body = "json", name = "users_role", errors = { 409 },
    schema = { type = "object", additionalProperties = false, required = { "role" }, properties = { role = ROLE } },
    summary = "Set a person's account role: admin makes a server admin (the last one stays)",
    responses = ok(ROLE_SET) })
  -- 409: a project changed or added since the start (project_changed), a role that follows
  -- sign-in groups; and taking a server admin out of a project
  r("PUT", "/v1/users/{name}/projects/{project}", { handler = grant, body = "json", name = "users_grant", errors = { 409 },
    schema = { type = "object", additionalProperties = false, required = { "role" }, properties = { role = PROJECT_ROLE } },
    summary = "Give a person a role in a project", responses = ok(MEMBER) })
  r("DELETE", "/v1/users/{name}/projects/{project}", { handler = revoke, name = "users_revoke", errors = { 409 },
    summary = "Take a person out of a project", responses = ok(MEMBER) })
  r("GET", "/v1/users/{name}/keys", { handler = user_keys, name = "users_keys", query = admin.PAGING,
    summary = "A person's keys, a page at a time",
    responses = ok(admin.LIST) })
  r("POST", "/v1/users/{name}/keys", { handler = user_key_create, body = "json", schema = KEY_BODY, errors = { 409 },
    name = "users_keys_create", summary = "Create a key for a person (shown once)", responses = made(admin.CREATED) })
  r("DELETE", "/v1/users/{name}/keys/{id}", { handler = user_key_revoke, name = "users_keys_delete", errors = { 409 },
    summary = "Revoke a person's key, by its id or name", responses = ok(admin.REVOKED) })
end

return M
