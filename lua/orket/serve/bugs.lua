-- orket.serve.bugs: the bug-fix phase over HTTP (docs/serve.md): POST /v1/rocks/{id}/bugs
-- files a bug under a rock as the key's person (orket.actions.bugs.file_bug), audited
-- like every write; GET /v1/bugfix lists the phases (orket bugfix status --json's shape).
local jsonout = require "orket.jsonout"
local phase = require "orket.sandboxes.phase"
local bugs = require "orket.actions.bugs"
local writes = require "orket.serve.writes"
local routes = require "orket.serve.routes"
local card_view = require "orket.views.card"
local config = require "orket.config"
local err = routes.err

local M = {}

M.SCHEMA = { type = "object", additionalProperties = false, required = { "title" }, properties = {
  title = { type = "string", minLength = 1, maxLength = bugs.TITLE_MAX },
  body = { type = "string", maxLength = bugs.BODY_MAX },
  fingerprint = { type = "string", minLength = 1, maxLength = bugs.FINGERPRINT_MAX } } }

local function file(_, ctx)
  local rock, b = ctx.params.id, ctx.body
  local who = writes.principal(ctx).seat
  local db = ctx.db
  local id, dup, code = db:tx(function()
    local cid, d, c = bugs.file_bug(db, { rock = rock, title = b.title, body = b.body, fingerprint = b.fingerprint,
      author = who, source = "person" })
    if not cid then return nil, d, c end
    writes.audited(ctx, { card = cid, actor = who, action = "bug" })
    return cid, d
  end)
  if not id then
    local msg = (tostring(dup):gsub("^bug: ", ""))
    if code == "ENOENT" then return err(404, "not_found", msg) end
    if code == "EINVAL" then return err(400, "EINVAL", msg) end
    return err(409, code or "conflict", msg)
  end
  return dup and 200 or 201, { card = (card_view.json_doc(db, id)), duplicate = dup }
end

local function status(_, ctx)
  local cfg, s = config.settings(ctx.dir, true)
  if not cfg then return err(422, "bad_config", tostring(s)) end
  return 200, { phases = jsonout.array(phase.status(ctx.db, { settings = s })) }
end

local PHASE = { type = "object", required = { "rock", "status", "started_at", "bugs" }, additionalProperties = true,
  properties = { rock = { type = "string" }, status = { enum = { "open", "ended" } }, started_at = { type = "string" },
    bugs = { type = "integer" }, open_bugs = { type = "integer" }, ends_at = { type = "string" },
    next_rock = { type = "string" } } }

local FILED = { type = "object", required = { "card", "duplicate" }, properties = {
  card = require("orket.serve.openapi").CARD, duplicate = { type = "boolean" } } }

--- add(router): the bug routes
function M.add(router)
  router:add("POST", "/v1/rocks/{id}/bugs", { handler = file, role = "operator", body = "json", schema = M.SCHEMA,
    name = "bug", summary = "File a bug under a rock (its bug-fix phase); an open bug with the same fingerprint "
      .. "gets it as a comment (200, duplicate true)",
    responses = { [201] = { schema = FILED, description = "the bug's card" },
      [200] = { schema = FILED, description = "the open bug with the same fingerprint, commented" } } })
  router:add("GET", "/v1/bugfix", { handler = status, role = "viewer", name = "bugfix",
    summary = "The rocks' bug-fix phases: day, bugs, rate, end", errors = { 422 },
    responses = { [200] = { schema = { type = "object", required = { "phases" }, properties = {
      phases = { type = "array", items = PHASE } } } } } })
end

return M
