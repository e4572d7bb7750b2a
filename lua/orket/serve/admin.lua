-- orket.serve.admin: the admin role's routes: list, create and revoke API keys over HTTP.
-- The keys themselves are orket.serve.keys (the same functions `orket keys` calls); each
-- change journals key_create / key_revoke with the admin key's id, and an api_write in the
-- same transaction, which GET /v1/audit lists. A new key is in the answer once, nowhere else.
local audit_chain = require "orket.audit.chain"
local keys = require "orket.serve.keys"
local routes = require "orket.serve.routes"
local sk = require "orket.store.keys"
local writes = require "orket.serve.writes"

local M = {}

local err = routes.err

--- refused(msg, code) -> a keys or people refusal as an answer
local STATUS = { EUSAGE = 400, EEXIST = 409, ENOENT = 404, EALREADY = 409, ELASTADMIN = 409, ESERVERADMIN = 409,
  EFOLLOWS = 409 }
local CODES = { EUSAGE = "bad_request", EEXIST = "conflict", ENOENT = "not_found", EALREADY = "conflict",
  ELASTADMIN = "conflict", ESERVERADMIN = "conflict", EFOLLOWS = "conflict" }
-- each refusal's own remedy: the conflict code's general one ("read it again and retry")
-- would only get the same answer again
local REMEDY = {
  EEXIST = "choose another name (a key's is free again once the key that has it is revoked)",
  EALREADY = "nothing to do: it was done already",
  -- a role set here is a local account's only: a provider's or directory's person's follows
  -- their groups; a new local account is the way when nobody else can be one (the message
  -- names the ways that work for the people there are)
  ELASTADMIN = "make another person a server admin first (PUT /v1/users/NAME/role {\"role\": \"admin\"} for a local "
    .. "account; POST /v1/users {\"name\", \"role\": \"admin\", \"password\"} for a new one; a person of a provider "
    .. "or directory by a group sign_in.roles maps to admin, at their next sign-in), then do this again "
    .. "(docs/teams.md#people-the-api)",
  ESERVERADMIN = "take the server admin role away first (PUT /v1/users/NAME/role {\"role\": \"operator\"}), "
    .. "or leave them: they are an admin of every project (docs/teams.md#roles)",
  EFOLLOWS = "change the person's groups at the provider or directory, or sign_in.roles and "
    .. "sign_in.project_roles in orket.lua (docs/teams.md#the-settings)",
}
function M.refused(msg, code)
  local remedy = REMEDY[code]
  -- only a key's name is freed by a revocation: a person's, a project's, a folder's is not
  if code == "EEXIST" and not tostring(msg):find("^a key named") then remedy = "choose another name" end
  if STATUS[code] then return err(STATUS[code], CODES[code], msg, remedy) end
  return err(500, "internal", msg)
end

--- in_tx(ctx, action, fn[, subject]) -> fn's results: fn() runs in one transaction with
-- the audit event (its journal event is nested in it, so both or neither are kept);
-- subject(a, b) -> whom the change was about, from fn's results, for the audit; a result
-- marked unchanged (orket.audit.chain's unchanged) changed nothing, and is not audited
function M.in_tx(ctx, action, fn, subject)
  local db, by = ctx.db, writes.principal(ctx).seat
  local a, b, c
  local ok, e, code = db:tx(function()
    a, b, c = fn(by)
    if not a then return nil, b, c end
    if audit_chain.is_unchanged(a) then return true end
    writes.audited(ctx, { actor = by, action = action, subject = subject and subject(a, b) })
    -- whom else the change was about (another name of the same person), each its own entry
    for _, also in ipairs(type(a) == "table" and a.audit_also or {}) do
      writes.audited(ctx, { actor = by, action = action, subject = also })
    end
    return true
  end)
  if not ok then return nil, e, code end
  return a, b
end

--- list_page(ctx, user) -> status, doc: a page of the keys (every one's when user is nil,
--- else the person's), as GET /v1/users pages its people (orket.serve.routes' named_page):
--- ?limit=N and ?after=ID, the keys listed after that one (a page's next)
function M.list_page(ctx, user)
  -- a key of this listing only: another's id would say it exists, and where it sorts
  local function ours(after)
    local row = #after == 16 and after:match("^%x+$") and sk.get(ctx.db, after) or nil
    return row ~= nil and (not user or row.user_name == user)
  end
  local paged, st, bad = routes.named_page(ctx.query, ours, "the id of a key of this listing")
  if not paged then return st, bad end
  local doc = keys.list_doc(ctx.db, user, paged.after, paged.limit)
  doc.next = routes.next_of(doc.keys, paged.limit, "id")
  return 200, doc
end

--- PAGING: the query a keys listing takes
M.PAGING = routes.named_query("the keys after the key of this id")

local function list(_, ctx) return M.list_page(ctx, nil) end

--- maker_refused(ctx, want) -> status, doc | nil: whether the caller may make a key of role
--- want at all, whoever it is for (their own, a person's, the server's). A provider's person
--- makes keys only with a sign-in's session or the provider's token: their key ends
--- sign_in.oidc.key_lifetime_days after it was made, and a key it made would renew it
--- forever, the provider never asked again (any route that makes keys would do). And a key
--- makes no key stronger than itself: a viewer key cannot mint an operator key.
function M.maker_refused(ctx, want)
  if ctx.who.source == "oidc" and ctx.who.key_id then
    return err(403, "forbidden", "a person of the identity provider makes keys with a session of a sign-in or the "
      .. "provider's token, not with a key or its session (keys last sign_in.oidc.key_lifetime_days)",
      "sign in through the provider, or send its token (Authorization: Bearer), and make the key with that "
        .. "(docs/teams.md#keys)")
  end
  local cap = ctx.who.cap
  if cap and not keys.allows(cap, want) then
    return err(403, "forbidden", (cap == "viewer" and "a " or "an ") .. cap .. " key makes keys of its role or lower",
      "ask for a role no stronger than " .. cap .. ", or make the key with a key of that role or higher "
        .. "(docs/teams.md#keys)")
  end
  return nil
end

--- name_refused(ctx) -> status, doc | nil: the body's key name checked by the one rule
--- (orket.serve.keys.name_problem), named as every other body error is, body.name
function M.name_refused(ctx)
  local why = keys.name_problem(ctx.body.name)
  if why then return err(400, "bad_request", "body.name: " .. why) end
  return nil
end

local function create(_, ctx)
  local rst, rdoc = M.maker_refused(ctx, ctx.body.role)
  if not rst then rst, rdoc = M.name_refused(ctx) end
  if rst then return rst, rdoc end
  local key, info, code = M.in_tx(ctx, "key_create", function(by)
    return keys.create(ctx.db, ctx.dir, ctx.body.name, ctx.body.role, by)
  end, keys.subject)
  if not key then return M.refused(info, code) end
  return 201, { id = info.id, name = info.name, role = info.role, user = info.user, key = key }
end

local function revoke(_, ctx)
  local info, msg, code = M.in_tx(ctx, "key_revoke", function(by)
    return keys.revoke(ctx.db, ctx.params.id, by)
  end, keys.subject)
  if not info then return M.refused(msg, code) end
  return 200, { id = info.id, name = info.name, role = info.role, revoked = true }
end

M.KEY = { type = "object", additionalProperties = false, required = { "id", "name", "role", "created_at", "revoked_at" },
  properties = { id = { type = "string" }, name = { type = "string" }, role = { enum = { "viewer", "operator", "admin" } },
    user = { type = { "string", "null" }, description = "the person of a personal key (docs/teams.md)" }, created_at = { type = "string" }, revoked_at = { type = { "string", "null" } } } }
M.LIST = { type = "object", additionalProperties = false, required = { "format", "keys" },
  properties = { format = { type = "string", enum = { "orket.keys/1" } }, keys = { type = "array", items = M.KEY },
    next = { type = "string", description = "when the page is full: the ?after= of the next page" } } }
M.CREATED = { type = "object", additionalProperties = false, required = { "id", "name", "role", "key" },
  properties = { id = { type = "string" }, name = { type = "string" }, role = { type = "string" }, user = { type = "string" },
    key = { type = "string", description = "ork_<id>_<secret>: shown this once, never again" } } }
M.REVOKED = { type = "object", additionalProperties = false, required = { "id", "name", "role", "revoked" },
  properties = { id = { type = "string" }, name = { type = "string" }, role = { type = "string" },
    revoked = { type = "boolean" } } }

M.SCHEMA = { type = "object", additionalProperties = false, required = { "name", "role" }, properties = {
  name = keys.NAME_SCHEMA, role = { type = "string", enum = { "viewer", "operator", "admin" } } } }

--- add(router): the key routes (admin role)
function M.add(router)
  router:add("GET", "/v1/keys", { handler = list, role = "admin", server = true, name = "keys_list", query = M.PAGING,
    summary = "The API keys, a page at a time: id, name, role, created, revoked (never a secret)",
    responses = { [200] = { schema = M.LIST } } })
  router:add("POST", "/v1/keys", { handler = create, role = "admin", server = true, body = "json", schema = M.SCHEMA, name = "keys_create",
    errors = { 409 },
    summary = "Create an API key (shown once, in this answer)",
    responses = { [201] = { schema = M.CREATED, description = "the new key, shown once" } } })
  for _, r in ipairs { { "DELETE", "/v1/keys/{id}", "keys_delete" }, { "POST", "/v1/keys/{id}/revoke", "keys_revoke" } } do
    router:add(r[1], r[2], { handler = revoke, role = "admin", server = true, name = r[3], errors = { 409 },
      summary = "Revoke an API key (by id or name), at once", responses = { [200] = { schema = M.REVOKED,
        description = "the key revoked" } } })
  end
end

return M
