-- orket.serve.openapi: GET /v1/openapi.json, the API described as OpenAPI 3.1, built from
-- the router's own route table: each route carries its summary, query parameters, body
-- schema and response schemas (kept next to its handler), so what is described is what is
-- served. Schemas are the JSON-schema subset orket.c.schema.validate checks.
local jsonout = require "orket.jsonout"
local sm = require "orket.c.statemachine"
local cjson = require "cjson"

local M = {}

M.ERROR = { type = "object", required = { "error" }, additionalProperties = false, properties = {
  error = { type = "object", required = { "code", "message" }, additionalProperties = false,
    properties = { code = { type = "string" }, message = { type = "string" }, remedy = { type = "string" } } } } }

-- Shorthands: a type, the same or null (a value absent from the store is null in the
-- documents: docs/store.md, JSON output)
local STR, INT, BOOL = { type = "string" }, { type = "integer" }, { type = "boolean" }
local NSTR, NINT = { type = { "string", "null" } }, { type = { "integer", "null" } }
local function list(of) return { type = "array", items = of } end
-- fields(props[, open[, optional]]) -> an object whose every listed field is there but those
-- named in optional, others allowed unless open is false: a document with a `format` may
-- gain fields within its version (docs/serve.md, "Documents and their versions")
local function fields(props, open, optional)
  local skip, req = {}, {}
  for _, k in ipairs(optional or {}) do skip[k] = true end
  for k in pairs(props) do
    if not skip[k] then req[#req + 1] = k end
  end
  table.sort(req)
  -- (none required: no list, which would be written as {})
  return { type = "object", additionalProperties = open ~= false, required = req[1] and req or nil, properties = props }
end
M.fields = fields
-- or_null(words) -> the words and JSON null: an enum of a field that may be null
function M.or_null(words)
  local out = { table.unpack(words) }
  out[#out + 1] = cjson.null
  return out
end

--- STATUSES, TYPES, REASONS: a card's, as the state machine knows them (the store's CHECKs)
M.STATUSES, M.TYPES, M.REASONS = sm.statuses(), sm.types(), sm.reasons()

--- USAGE: model calls summed (orket.store.costs.totals; docs/cost.md): a run's, a card's
M.USAGE = fields({ calls = INT, priced = { type = "integer", description = "the calls with a known cost" },
  input = { type = "integer", description = "prompt tokens, cached ones too" }, cached = INT, output = INT,
  estimated = { type = "integer", description = "the calls whose token counts were estimated from the text (the "
    .. "provider sent none or not all)" },
  cost = { type = "object", additionalProperties = { type = "integer" },
    description = "micro-units by currency ({\"USD\": 1200}); {} when no call is priced" } })
M.USAGE.description = "model calls summed: calls, priced (with a cost), input, cached and output tokens, estimated "
  .. "(calls counted from the text), cost "
  .. "(docs/cost.md)"

--- CARD_FIELDS: a card as orket.board/1 and orket.card/1 give it (orket.views.board: every
--- field there, null when the store has none)
M.CARD_FIELDS = fields({ id = STR, type = { type = "string", enum = M.TYPES }, parent = NSTR, name = NSTR,
  summary = NSTR, description = NSTR, note = NSTR, requirements = NSTR, acceptance = NSTR,
  priority = { type = { "number", "null" }, description = "0 to 10 (3 high, 2 medium, 1 low), a whole number as the "
    .. "API and import write it; null: a hand-edited value JSON cannot hold" },
  seat = NSTR, department = NSTR, status = { type = "string", enum = M.STATUSES },
  wait_reason = { type = { "string", "null" }, enum = M.or_null(M.REASONS),
    description = "why it waits (blocked, waiting_for_developer); null otherwise" },
  retries = INT, worked_by = NSTR, source = NSTR, created_at = STR, updated_at = STR,
  depends_on = list(STR) })

-- A card's request for a developer's approval: id is the number POST /v1/cards/{id}/approve
-- and /deny name ({"approval": N}), so that a decision is of the call the person was shown.
local APPROVAL = fields({ id = { type = "integer", description = "the request's number, which a decision names (approval)" },
  tool = STR, run = NINT, seat = NSTR, turn = NINT,
  arguments = { description = "the call's arguments (JSON, keys sorted); over 16 KiB, the text kept, ending "
    .. "\"...(clipped: N bytes in all; 'orket log RUN --full' shows the call whole)\"" },
  clipped = { type = "boolean", description = "arguments is the stored text, cut" }, digest = STR,
  rule = NSTR, reason = NSTR, requested_at = STR,
  decision = { type = { "string", "null" }, enum = { "approve", "deny", cjson.null },
    description = "null while it waits, then approve or deny" },
  decided_at = NSTR, decided_by = NSTR, note = NSTR,
  used_at = { type = { "string", "null" }, description = "null, or when the approved call ran (it runs once)" } })

-- The card document's parts (orket.views.card.doc_of)
local HISTORY = fields({ id = INT, at = STR, kind = STR, actor = NSTR, run = NINT,
  data = { description = "the event's data as the journal holds it (an object as orket writes it)" } })
local COMMENT = fields({ id = INT, author = STR, body = STR, created_at = STR })
local VIOLATION = fields({ id = INT, created_at = STR, seat = NSTR, rule = STR,
  attempt = { type = { "string", "null" }, description = "the tool and its arguments, cut at 500 bytes" },
  reason = NSTR, remedy = NSTR })
local VERIFICATION = fields({ id = INT, at = STR, run = NINT, passed = BOOL, command = STR, reason = STR,
  code = { type = { "integer", "null" }, description = "the exit status; null: a signal ended it, or it did not start" },
  signal = NSTR, wall_ms = NINT, output = STR, layers = { type = "string", description = "the layers run, as stored" } })
local EXPERIMENT_ARM = fields({ experiment = STR, arm = { type = "string", enum = { "control", "variant" } },
  model = { type = "string", description = "a variant's model at the card's first turn (absent: its seat's)" },
  role = { type = "string", description = "a variant's role at the card's first turn (absent: none)" } }, true,
  { "model", "role" })
local SEAT_USAGE = fields({ seat = { type = "string", description = "the seat that made the calls (- when none)" } }, false)
for k, v in pairs(M.USAGE.properties) do SEAT_USAGE.properties[k] = v end
SEAT_USAGE.required = { "cached", "calls", "cost", "input", "output", "priced", "seat" }
-- (the store's rows leave out what they lack: those fields are absent, not null)
local GIT = fields({ branch = STR, merged = { type = { "string", "null" }, description = "the commit of its last merge into main" },
  lost = { type = "string", description = "main no longer holds that merge: what happened and what to do" },
  commits = list(fields({ id = STR, turn = INT, run = INT, seat = STR }, true, { "turn", "run", "seat" })) }, true,
  { "lost" })
GIT.description = "its branch (absent: no branch in workspace/)"
local FORGE = fields({
  pull_request = fields({ number = INT, url = STR, head = STR, repo = STR }, true, { "number", "url", "head", "repo" }),
  reviews = list(fields({ cycle = INT, pr_number = INT, decision = STR, reviewer = STR, body = STR, opened_at = STR,
    decided_at = STR }, true, { "pr_number", "decision", "reviewer", "body", "opened_at", "decided_at" })) }, true,
  { "pull_request" })
FORGE.description = "its pull request and review cycles (absent: none)"

-- Documents the routes hand back: their own formats are described in store.md.
M.CARD = fields({ format = { type = "string", enum = { "orket.card/1" } }, card = M.CARD_FIELDS,
  comments = list(COMMENT), history = list(HISTORY),
  children = { type = "array", items = STR, description = "the ids of the cards under it" },
  approvals = list(APPROVAL), violations = list(VIOLATION), verifications = list(VERIFICATION),
  experiments = { type = "array", items = EXPERIMENT_ARM, description = "its arm in each experiment ([] before its "
    .. "first turn, or in none)" },
  usage = M.USAGE, usage_by_seat = { type = "array", items = SEAT_USAGE, description = "its usage by the seat that "
    .. "made the calls" },
  git = GIT, forge = FORGE }, true, { "git", "forge" })
M.STATUS = { type = "object", additionalProperties = true, required = { "format", "main", "diverged" },
  properties = { format = { type = "string", enum = { "orket.status/1" } }, main = { type = "string" },
    diverged = { type = "array", items = { type = "object", required = { "path", "main", "view", "take_main", "keep_view" },
      properties = { path = { type = "string" }, main = { type = "object" }, view = { type = "object" },
        take_main = { type = "array" }, keep_view = { type = "array" }, keep_warning = { type = "string" },
        no_commands = { type = "string", description = "a path that is not UTF-8: why its commands are left out" } } } },
    merging = { type = "string", description = "a person's git merge under way in workspace/: the keep commands wait for it" } } }
M.BOARD = fields({ format = { type = "string", enum = { "orket.board/1" } },
  root = { type = { "string", "null" }, description = "the ?root= asked for, or null: the whole board" },
  cards = { type = "array", items = M.CARD_FIELDS, description = "in tree order: each rock, its epics, each epic's "
    .. "issues; then the cards whose parent is not shown" } })
-- an experiment's report (docs/cost.md, "Experiments"): its variant against its control
local ARM = { type = "object", additionalProperties = true, required = { "cards", "done", "rejections", "turns", "tokens", "cost", "wall" },
  properties = { cards = { type = "integer" }, done = { type = "integer" }, rejections = { type = "integer" },
    turns = { type = "integer" }, tokens = { type = "object" }, cost = { type = "object" }, wall = { type = "object" },
    models = { type = "array", items = { type = "string" } } } }
M.EXPERIMENT = { type = "object", additionalProperties = true, required = { "format", "experiment", "arms" },
  properties = { format = { type = "string", enum = { "orket.experiment/1" } }, experiment = { type = "string" },
    configured = { type = "object" },
    arms = { type = "object", required = { "control", "variant" }, properties = { control = ARM, variant = ARM } } } }

local ERRORS = {
  [400] = "bad path, query (a parameter the route does not list, too) or body", [401] = "no valid API key", [403] = "the key's role may not",
  [404] = "no such route or card", [405] = "another method", [408] = "the body came too slowly",
  [409] = "the card is not in a state for that (the state machine's code)", [413] = "the body is too large",
  [429] = "rate limited, by the caller's address (every route) or key (Retry-After)", [500] = "the server failed",
  [415] = "the body is not sent as the route's media type", [431] = "the request line and headers are too large",
  [422] = "the request is well-formed but cannot be done (the error's code says why)",
  [507] = "the disk under the store is full (ENOSPC): nothing was written; free space, then send it again",
  [502] = "a server this one depends on failed (the forge, a sandbox)", [503] = "busy or unavailable; try again later: "
    .. "EBUSY (the store's lock, Retry-After), busy (the bodies in flight are at the server's cap), unavailable (the "
    .. "store cannot be read), project_unavailable (its store did not open)",
}

-- The error statuses a route may answer, from what the router knows about it: 429 on
-- every route (the address's limit comes before the route), 503 where a key is read (the
-- store unreadable, a project that did not open) or a body taken (the server's cap on the
-- bodies in flight; a card write's EBUSY).
local function error_statuses(r)
  local s = { 400, 404, 405, 429, 431, 500 }
  if r.media then s[#s + 1] = 415 end
  if r.role then
    for _, x in ipairs { 401, 403 } do s[#s + 1] = x end
  end
  if r.body then
    for _, x in ipairs { 408, 413 } do s[#s + 1] = x end
  end
  if r.role or r.body then s[#s + 1] = 503 end
  if r.role == "operator" and r.body then
    for _, x in ipairs { 409, 507 } do s[#s + 1] = x end
  end
  for _, x in ipairs(r.errors or {}) do s[#s + 1] = x end -- others the route names itself
  table.sort(s)
  return s
end

-- The first two segments of the server's own routes (route.server: not a project's, so
-- not served under /v1/projects/{p}/), each once, sorted: the document's description
-- names them from the routes themselves, so that a route added is named too
local function server_prefixes(router)
  local seen, out = {}, {}
  for _, r in ipairs(router.routes) do
    local prefix = r.server and r.pattern:match("^/[^/]+/[^/]+")
    if prefix and not seen[prefix] then seen[prefix], out[#out + 1] = true, prefix end
  end
  table.sort(out)
  return out
end
M.server_prefixes = server_prefixes

local function content(media, schema) return { [media] = { schema = schema } } end

-- A request body's schema as clients may send it: an optional member may also be null,
-- which the server takes as absent (orket.serve.body.without_nulls); the server checks
-- the body against the route's own schema once those are dropped.
local function nullable_optional(schema)
  if type(schema) ~= "table" or schema.type ~= "object" or not schema.properties then return schema end
  local required = {}
  for _, k in ipairs(schema.required or {}) do required[k] = true end
  local props = {}
  for k, p in pairs(schema.properties) do
    if required[k] or type(p.type) ~= "string" then
      props[k] = p -- required, or any type already (null included)
    else
      local q = {}
      for pk, pv in pairs(p) do q[pk] = pv end
      q.type = { p.type, "null" }
      props[k] = q
    end
  end
  local out = {}
  for k, v in pairs(schema) do out[k] = v end
  out.properties = props
  return out
end
M.nullable_optional = nullable_optional

-- described(schema, fields) -> the body schema with the route's described fields in place of
-- its checked ones (route.described: what the server's validator cannot read, a oneOf or a
-- pattern, which the handler checks)
local function described(schema, fields)
  if not fields or not schema.properties then return schema end
  local props, out = {}, {}
  for k, p in pairs(schema.properties) do props[k] = fields[k] or p end
  for k, v in pairs(schema) do out[k] = v end
  out.properties = props
  return out
end

--- document(router) -> the OpenAPI 3.1 document as a table
function M.document(router)
  local paths = {}
  for _, r in ipairs(router.routes) do
    local p = paths[r.pattern] or {}
    paths[r.pattern] = p
    local op = { summary = r.summary or r.pattern, operationId = r.name or (r.method:lower() .. r.pattern:gsub("[^%w]+", "_")) }
    local params = {}
    for _, part in ipairs(r.parts) do
      if type(part) == "table" then
        params[#params + 1] = { name = part.param, ["in"] = "path", required = true, schema = { type = "string" } }
      end
    end
    for _, q in ipairs(r.query or {}) do
      params[#params + 1] = { name = q.name, ["in"] = q["in"] or "query", required = q.required or false, description = q.description,
        schema = { type = q.type or "string", enum = q.enum } }
    end
    if #params > 0 then op.parameters = params end
    if r.schema then
      op.requestBody = { required = true, content = content("application/json",
        nullable_optional(described(r.schema, r.described))) }
    elseif r.request then -- described only: the handler reads it (a webhook's signed body)
      op.requestBody = { required = true, content = content("application/json", r.request) }
    end
    op.security = r.role and { { bearer = jsonout.array {} }, { session = jsonout.array {} } } or jsonout.array {}
    if r.role then op["x-orket-role"] = r.role end
    -- a query parameter not listed above is refused (400 bad_query) but on these routes,
    -- whose query is someone else's (an app's, an identity provider's, a monitor's)
    if r.any_query then op["x-orket-any-query"] = true end
    local responses = {}
    -- a status, or "default" (what the route passes on from elsewhere); no schema: no body
    for status, resp in pairs(r.responses or {}) do
      responses[tostring(status)] = { description = resp.description or "ok",
        content = resp.schema ~= nil and content(resp.media or "application/json", resp.schema) or nil }
    end
    for _, st in ipairs(error_statuses(r)) do
      -- OpenAPI requires a description: a status a route names that the table lacks still has one
      responses[tostring(st)] = responses[tostring(st)] or { description = ERRORS[st] or "an error (its code says which)",
        content = content("application/json", M.ERROR) }
    end
    op.responses = responses
    p[r.method:lower()] = op
  end
  local own = server_prefixes(router)
  local n = #own
  own = n > 1 and table.concat(own, ", ", 1, n - 1) .. " and " .. own[n] or own[1] or "none"
  return {
    openapi = "3.1.0",
    info = { title = "orket serve", version = "1", description = "The HTTP API of an Orket server (docs/serve.md). Each route of a project "
      .. "(all but the server's own: " .. own .. ", and the routes under them) is "
      .. "also served as /v1/projects/{p}/... for project p, to its members only (docs/teams.md). A query parameter a route does "
      .. "not list is refused (400 bad_query), but on the routes marked x-orket-any-query, whose query is "
      .. "someone else's." },
    paths = paths,
    components = { securitySchemes = { bearer = { type = "http", scheme = "bearer",
      description = "an API key: ork_<id>_<secret> (orket keys create)" },
      session = { type = "apiKey", ["in"] = "cookie", name = "orket_session",
        description = "the web board's session (POST /v1/session); writes also need X-CSRF-Token" } } },
  }
end

--- add(router): GET /v1/openapi.json
function M.add(router)
  router:add("GET", "/v1/openapi.json", { role = "viewer", server = true, name = "openapi", summary = "This document (OpenAPI 3.1)",
    responses = { [200] = { schema = { type = "object", required = { "openapi", "paths" } } } },
    handler = function() return 200, M.document(router) end })
end

return M
