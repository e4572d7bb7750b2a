-- orket.serve.writes: the API's writes to cards (create, move, comment, answer, approve, deny,
-- retry, cancel) and the audit of them. Each goes through the board and its state machine as
-- a person whose name is the key's id, through the card actions the CLI uses too
-- (orket.actions.answer, orket.actions.retry, orket.actions.approvals), and journals an
-- "api_write" event in the same
-- transaction, which GET /v1/audit pages through. Bodies are checked against each route's schema.
local cschema = require "orket.c.schema"
local errors = require "orket.errors"
local board_mod = require "orket.board"
local approvals = require "orket.actions.approvals"
local jsonout = require "orket.jsonout"
local setup = require "orket.engine.setup"
local rt = require "orket.c.runtime"
local answer_action = require "orket.actions.answer"
local retry_action = require "orket.actions.retry"
local move_action = require "orket.actions.move"
local aftermerge = require "orket.engine.aftermerge"
local sj = require "orket.store.journal_reads"
local openapi = require "orket.serve.openapi"
local audit_chain = require "orket.audit.chain"
local config = require "orket.config"
local settings = require "orket.settings"

local M = {}

local routes = require "orket.serve.routes"
local card_view = require "orket.views.card"
local err = routes.err

local TEXT = board_mod.NOTE_MAX -- a reason, a note, a summary
local LONG = board_mod.TEXT_MAX -- a description, a comment, an answer
-- (an epic file's card is held to the same limits: orket.import)

local function str(max) return { type = "string", minLength = 1, maxLength = max } end
-- the request a decision is about: the one the person was shown (GET /v1/cards/{id}'s
-- approvals[].id), so that a decision never lands on a call asked for after they looked
local APPROVAL = { type = "integer", minimum = 1, description = "the number of the request decided (approvals[].id "
  .. "of GET /v1/cards/{id}); a request decided already is refused (409 ESTATE). Without it the decision is refused "
  .. "when the card has had other requests (409 EUSAGE); over MCP it is refused whenever a request waits" }
local function obj(props, required)
  return { type = "object", properties = props, required = required, additionalProperties = false }
end

-- The request body schemas, by route name (kept here, next to the handlers; the OpenAPI
-- document reads them too).
M.SCHEMAS = {
  create = obj({ parent = str(128), summary = str(TEXT), description = str(LONG), seat = str(128),
    priority = {}, depends_on = { type = "array", items = str(128), maxItems = board_mod.DEPENDS_MAX },
    requirements = str(LONG), acceptance = str(LONG), note = str(TEXT), name = str(TEXT), id = str(128) },
    { "parent", "summary" }),
  move = obj({ to = str(64), reason = str(64), note = str(TEXT) }, { "to" }),
  comment = obj({ body = str(LONG) }, { "body" }),
  answer = obj({ text = str(LONG) }, { "text" }),
  approve = obj({ note = str(TEXT), approval = APPROVAL }),
  deny = obj({ reason = str(TEXT), approval = APPROVAL }, { "reason" }),
  retry = obj({ note = str(TEXT) }),
  cancel = obj({ reason = str(TEXT) }, { "reason" }),
}

-- What the OpenAPI document says of some fields beyond what the server's validator reads
-- (its subset has no oneOf and no pattern): the board checks these (orket.board.priority,
-- ID_RULE; the state machine, a move's to and reason) and says its own rule when it refuses
-- one, so the checked schemas above keep them loose. By route name, field -> its schema.
M.DESCRIBED = {
  create = {
    priority = { description = "0 to 10, or High (3), Medium (2), Low (1) in any case; 2 when absent",
      oneOf = { { type = "integer", minimum = board_mod.PRIORITY_MIN, maximum = board_mod.PRIORITY_MAX },
        { type = "string", pattern = "^([Hh][Ii][Gg][Hh]|[Mm][Ee][Dd][Ii][Uu][Mm]|[Ll][Oo][Ww])$" },
        { type = "null" } } },
    -- the pattern says its characters; '..' and a '.' or '.lock' at its end, the board refuses
    id = { type = "string", minLength = 1, maxLength = 100, pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
      description = "the card's id (absent: the epic's next, EPIC-N): " .. board_mod.ID_RULE },
  },
  move = {
    to = { type = "string", enum = board_mod.statuses(), description = "the status to move it to (the state "
      .. "machine decides whether it may from where it is)" },
    reason = { type = "string", enum = require("orket.c.statemachine").reasons(),
      description = "why it waits: blocked and waiting_for_developer take one" },
  },
}

-- The state machine's remedies are written for the model that made a tool call ("call
-- again with wait_reason", "end your turn", "create_issue"): a person sending these routes
-- gets the same advice in the API's words, where the model's would name a field the route
-- refuses or a tool they do not have (and ESTATE's names a command, not a route). Codes not
-- here keep orket.errors' remedy.
local REASONS = "resource, dependency, review, input or system"
M.PERSON_REMEDY = {
  ESAME = "nothing to do: the card has that status already",
  ETERMINAL = "the card is final: at most it may be archived; file new work as a new issue (POST /v1/cards)",
  EREASON_REQUIRED = "send the move again with reason set to why the card waits: " .. REASONS,
  EREASON_INVALID = "send the move again with reason set to one of " .. REASONS,
  EREASON_UNEXPECTED = "send the move again without reason: only blocked and waiting_for_developer take one",
  EDEPENDENCY = "finish the cards this one depends on first, or move it to blocked with reason dependency",
  EREVIEWER = "an issue reaches done by its review: a run's integrity_guard seat, or an approval or merge of "
    .. "its pull request on the forge (docs/serve.md, Writes to cards)",
  -- orket.errors' is the CLI's ("`orket card ID` shows where it stands"); {id}: the route's card
  ESTATE = "GET /v1/cards/{id} shows where it stands",
}

-- A code's PERSON_REMEDY with the card the refused route named in place of {id}: a route
-- the person can send as it is | nil
local function person_remedy(code, card_id)
  local r = M.PERSON_REMEDY[code]
  if r and card_id then r = r:gsub("{id}", function() return card_id end) end
  return r
end

-- A card action's refusal with detail (orket.actions.approvals, .answer, .retry: the request
-- that waits, one decided before, a question) -> msg, remedy in the API's words: routes, not
-- the CLI's commands | nil (the code's remedy).
local function decision_remedy(msg, detail)
  if type(detail) ~= "table" or not detail.card then return msg, nil end
  local route = "POST /v1/cards/" .. detail.card
  local p = detail.approval
  if detail.question then
    return string.format("%s is %s waiting for an answer to a question, not for an approval", detail.card,
      tostring(detail.state)), route .. '/answer with {"text": "..."} answers it'
  elseif detail.budget then
    return msg, route .. "/approve lets it go on, one budget's worth more"
  elseif p and (detail.unnamed or not detail.decided) then
    return msg, string.format('decide it by its number: %s/approve with {"approval": %d}, or %s/deny with '
      .. '{"approval": %d, "reason": "..."} (GET /v1/cards/%s shows the call)', route, p.id, route, p.id, detail.card)
  elseif p then
    return msg, string.format('GET /v1/cards/%s shows request #%d; decide it with {"approval": %d} if it is the '
      .. "one you mean", detail.card, p.id, p.id)
  end
  return msg, nil
end

-- A board refusal as an answer, with the status orket.errors gives its code: unknown card
-- 404 (the API's not_found), bad input 400, a card not in a state for that 409 with the
-- state machine's (or the board's) code. detail: a card action's (decision_remedy); card_id:
-- the route's card.
local function refused(msg, code, detail, card_id)
  msg = (tostring(msg):gsub("^board: ", ""))
  if code == "ENOENT" then return err(404, "not_found", msg) end
  if not code then return err(409, "conflict", msg) end
  local remedy
  msg, remedy = decision_remedy(msg, detail)
  return err(errors.status(code), code, msg, remedy or person_remedy(code, card_id))
end

-- The person a request acts as: its key's id (local use without keys: "local"; a command on
-- this machine that speaks the API, orket mcp serve, its local operator: "local:USER").
local function principal(ctx)
  local id = ctx.who and ctx.who.id or ctx.operator or "local"
  return { seat = id, roles = {}, by = "person" }
end
M.principal = principal

--- audited(ctx, e): the write e {card=, run=, actor=, action=, subject=} journaled (an
--- api_write event) and appended to the audit's hash chain (orket.audit.chain), in the
--- caller's transaction; the server signs a checkpoint once the request is answered.
--- subject: whom a people or key change was about ({person=, project=, role=, key=,
--- keyid=}), which the chain's hash then covers. e.who: who acted, when not the request's
--- identity (a sign-in: the request had none yet).
function M.audited(ctx, e)
  local db = ctx.db
  -- a person acting through one of their keys (or a session opened with one) is named as
  -- the person; the key's id beside it tells which key, so that a key that leaked can be
  -- traced and revoked without ending the person's other keys
  local who = e.who or ctx.who
  local key = who and who.user and who.key_id or nil
  -- A card's write: the chain's entry first, the journal's row naming it (chain=), and the
  -- entry saying a row was written with it (journal=), so that orket audit verify matches
  -- the two and names a row reattributed, removed or made up (orket.audit.journal), as
  -- orket card's history and GET /v1/audit read the row. decision: what the write decided
  -- (orket.audit.chain's decision), in the hashed entry and the row alike. (The people and
  -- session writes, with no card, are not linked yet: their rows' shape is as it was.)
  local linked = e.card ~= nil
  local row = audit_chain.record(db, { actor = e.actor, action = e.action, card = e.card, route = ctx.route,
    subject = e.subject, decision = e.decision, journal = linked and "api_write" or nil })
  db:event { kind = "api_write", card = e.card, run = e.run, actor = e.actor,
    data = { action = e.action, route = ctx.route, subject = e.subject, key = key, decision = e.decision,
      chain = linked and row.seq or nil } }
  ctx.audited = true
end

local function card_doc(ctx, id)
  return (card_view.json_doc(ctx.db, id))
end

-- do_write(ctx, action, card_id, fn, locked) -> status, doc: fn(board, actor) -> result |
-- nil, msg, CODE runs in one transaction with the audit event; locked: take the run lock
-- first, as the CLI does (a run moves cards on its own). Another process's short hold of it
-- (a cancel, another server's write) is waited for with a sleep that yields to the loop, so
-- the server's other requests go on meanwhile; outside a task (nothing to yield to) it is
-- not waited for. The refusal is worded for the API's client (setup.holder_words).
local function do_write(ctx, action, card_id, fn, locked)
  local lock
  if locked then
    local lerr, lcode
    lock, lerr, lcode = setup.lock(ctx.dir, { db = ctx.db, what = "serve", http = true,
      sleep = coroutine.isyieldable() and rt.sleep or false })
    if lcode == "ELOCKED" then return err(409, lcode, lerr) end
    if not lock then -- the lock's file cannot be had: the server's failure, its path for the log only
      ctx.note = "the run lock: " .. tostring(lerr)
      return err(500, "internal", "the server failed; its log says why")
    end
  end
  local db, actor = ctx.db, principal(ctx)
  local b = board_mod.open(db)
  local detail
  local res, msg, code = db:tx(function()
    -- a move's status before it, for the chain's entry (read in the write's transaction)
    local from = action == "move" and card_id and (b:get(card_id) or {}).status or nil
    local r, m, c, d = fn(b, actor)
    if not r then detail = d; return nil, m, c end
    M.audited(ctx, { card = (type(r) == "table" and r.id and action == "create") and r.id or card_id,
      actor = actor.seat, action = action, decision = audit_chain.card_decision(action, ctx.body, r, from) })
    return r
  end)
  if lock then lock:release() end
  -- ETX: the transaction's function raised or a statement failed (a store that cannot be
  -- read or written): the server's failure, raised to the dispatch, which logs it and
  -- answers 500, never a 409 as though the card's state refused the write
  if not res and code == "ETX" then error(msg, 0) end
  if not res then
    if ctx.metrics then ctx.metrics:refused(code, ctx.project) end -- orket_state_machine_refusals_total
    return refused(msg, code, detail, card_id)
  end
  return 200, res
end

local function create(_, ctx)
  local spec = {}
  for k, v in pairs(ctx.body) do spec[k] = v end
  if spec.seat ~= nil then
    -- the board refuses a seat the team lacks (it would fail at the card's first turn)
    local cfg, s = config.settings(ctx.dir, true)
    if not cfg then return err(409, "project_error", "seat: the project's team cannot be read: " .. tostring(s)) end
    spec.seats = settings.seats(s)
  end
  local st, r = do_write(ctx, "create", nil, function(b, actor)
    spec.actor = actor
    if spec.priority ~= nil then
      local _, perr = board_mod.priority(spec.priority)
      if perr then return nil, perr, "EINVAL" end
    end
    return b:create(spec)
  end)
  if st ~= 200 then return st, r end
  return 201, card_doc(ctx, r.id)
end

local function card_action(action, locked, fn)
  return function(_, ctx)
    local id = ctx.params.id
    local st, r = do_write(ctx, action, id, function(b, actor) return fn(b, actor, id, ctx.body, ctx) end, locked)
    if st ~= 200 then return st, r end
    return 200, card_doc(ctx, id)
  end
end

-- A move to done finishes the card as the engine does (orket.actions.move: its branch merged
-- into main, the remote's main fetched first; a conflict sending it back: 409 ECONFLICT, the
-- card in in_progress), then what follows a merge (orket.engine.aftermerge: the pull
-- request, main pushed, a sandbox).
local function move(_, ctx)
  local id, body = ctx.params.id, ctx.body
  local remote = body.to == "done" and aftermerge.fetch_main { dir = ctx.dir } and true or nil
  local st, r = do_write(ctx, "move", id, function(b, actor)
    return move_action.move { db = ctx.db, board = b, card = id, to = body.to, workspace = ctx.dir .. "/workspace",
      opts = { actor = actor, reason = body.reason, note = body.note }, remote = remote, event_actor = actor.seat }
  end, true)
  if st ~= 200 then return st, r end
  if r.code == "merge_conflict" or r.code == "work_lost" then return err(409, "ECONFLICT", r.why) end
  if r.code == "done" then
    aftermerge.later { owner = ctx.server, dir = ctx.dir, db = ctx.db, card = id, merge_id = r.merge and r.merge.id,
      say = ctx.server and function(fields) ctx.server:_log(fields) end }
  end
  return 200, card_doc(ctx, id)
end

local comment = card_action("comment", false, function(b, actor, id, body)
  return b:comment(id, { author = actor.seat, body = body.body })
end)

local answer = card_action("answer", false, function(b, actor, id, body, ctx)
  return answer_action.answer(ctx.db, b, id, body.text, actor)
end)

-- A decision names its request ({"approval": N}); without it, one is taken only when the
-- card has had no other request, so that no other could have been the one shown (clients
-- written before the field keep working), and never over MCP: an agent deciding for a
-- person reads the card first and names what it read.
local function decide(decision, field)
  return card_action(decision, false, function(b, actor, id, body, ctx)
    return approvals.decide(ctx.db, b, id, { decision = decision, note = body[field], by = actor.seat,
      approval = body.approval, unnamed = ctx.mcp and "none" or "sole" })
  end)
end

local retry = card_action("retry", true, function(b, actor, id, body, ctx)
  return retry_action.retry(ctx.db, b, id, actor, body.note)
end)

local cancel = card_action("cancel", true, function(b, actor, id, body)
  return b:cancel(id, { actor = actor, reason = body.reason })
end)

local AUDIT_MAX = 200

-- The actors GET /v1/audit's entries have (principal, the sessions' audited, the directory's
-- and the provider's changes: orket.serve.identity's audited), said alike by its refusals of
-- ?actor= and by its OpenAPI parameter. local:USER, the local operator's: orket mcp serve's
-- writes are the journal's too; a CLI command's are in the audit chain alone.
local ACTORS = "user:NAME for a person (through any of their keys or sessions), the id of a key of no person "
  .. "(16 hex digits), local for the server's no-key mode, ldap and oidc for what the directory and the provider "
  .. "changed of a person (at a sign-in, or a directory's look: for the server's admins only), local:USER for "
  .. "orket mcp serve run on the server's machine by USER (its other commands' writes are in the audit chain "
  .. "alone: orket audit export, as a forge's person acting through its webhook, FORGE:LOGIN, is)"

-- the actors of the changes a sign-in's provider or directory made (orket.serve.identity)
local FEDERATED = { ldap = true, oidc = true }

-- GET /v1/audit[?after=ID][&limit=N][&actor=A][&key=ID]: the writes made through the API, oldest first.
local function audit(_, ctx)
  local after, limit, bad = routes.page(ctx.query.after, ctx.query.limit, AUDIT_MAX)
  if not after then return limit, bad end
  -- one actor's writes (ACTORS), or those made through one person's key (?key=ID: its
  -- person is the actor, the key is `key`)
  local actor, key = ctx.query.actor, ctx.query.key
  if actor and (actor == "" or #actor > 200) then
    return err(400, "bad_query", "?actor= takes an actor as the entries name it, 1 to 200 bytes: " .. ACTORS,
      "for the writes made through a person's key, ?key=ID (docs/serve.md)")
  end
  -- every actor but local use's "local" and a key's id has its kind before a colon: a bare
  -- name (?actor=alice) matched nothing and read as "alice wrote nothing"; refused for any
  -- name alike, so the answer does not tell whether a person of that name exists
  if actor and not actor:find(":", 1, true) and actor ~= "local" and not FEDERATED[actor]
    and not (#actor == 16 and actor:match("^%x+$")) then
    return err(400, "bad_query", string.format("?actor= takes an actor as the entries name it (user:%s?): %s",
      actor:sub(1, 64), ACTORS), "for the writes made through a person's key, ?key=ID (docs/serve.md)")
  end
  -- a kind before a colon: user: and local: (orket mcp serve's) are the ones the journal's
  -- entries have (a forge's FORGE:LOGIN is the audit chain's alone), and any other, or one
  -- with no name, matched nothing and read as "they wrote nothing". Refused by its kind
  -- alone, whatever the name, so that the answer does not tell which names exist either
  local kind = actor and actor:match("^([^:]*):")
  if kind and ((kind ~= "user" and kind ~= "local") or actor == kind .. ":") then
    return err(400, "bad_query", string.format("?actor= takes an actor as the entries name it, and %s: %s",
      (kind == "user" or kind == "local") and (kind .. ": needs a name after it") or ("no entry's actor is of the kind '"
        .. kind:sub(1, 32) .. ":'"), ACTORS),
      "for a person's writes ?actor=user:NAME, for local:USER's and FORGE:LOGIN's orket audit export on the "
        .. "server's machine (docs/audit.md)")
  end
  if key and (key == "" or #key > 200) then
    return err(400, "bad_query", "?key= takes the id of a person's key, 1 to 200 bytes")
  end
  local out = {}
  -- whom a people change was about is the server's admins' to read, as the journal's
  -- rows about people are (docs/teams.md, "Visible only to members"); so is which of a
  -- person's keys they acted through, but for the person's own entries
  local people = routes.people_reader(ctx.server, ctx.who)
  local me = ctx.who and ctx.who.user and ctx.who.id
  -- the directory's and the provider's changes are about people, and most are made at a
  -- sign-in, which they would date: the server's admins' alone (left out of another
  -- caller's list, below). Asked for by name, refused rather than answered with nothing,
  -- which would read as "they changed nothing"
  if actor and FEDERATED[actor] and not people then
    return err(403, "forbidden", "?actor=" .. actor .. ": the changes the directory (ldap) and the provider (oidc) "
      .. "made to people are the server's admins' to read", "a server admin reads them (GET /v1/audit?actor="
      .. actor .. ", or orket audit export on the server's machine: docs/audit.md)")
  end
  -- a sign-in's or sign-out's actor is whom it is about: those rows (even their actor and
  -- time) are the server's admins' and that person's or key's alone, else any viewer could
  -- tell who uses the server and when, members of other projects too; the directory's and
  -- the provider's changes are left out with them (sj.api_writes)
  -- and ?key= is the same knowledge as the field: asked by anyone else, each id tried told
  -- whose entries went through it. Their own entries' keys a person reads (?key= keeps
  -- their own entries alone); of anyone else's, and to a caller who is no person, refused
  if key and not people then
    local whose = "which key a person's writes were made through is the server's admins' to read, and the "
      .. "person's on their own entries"
    if not me then
      return err(403, "forbidden", "?key=: " .. whose, "a server admin reads it (GET /v1/audit?key=ID); the writes "
        .. "of a key of no person are listed by its id as the actor (?actor=ID)")
    end
    if actor and actor ~= me then
      return err(403, "forbidden", "?key= with another's ?actor=: " .. whose, "leave ?actor= out, or give your own ("
        .. "?actor=" .. me .. "), to list your own writes through one of your keys; a server admin reads anyone's")
    end
    actor = me
  end
  local signs_of = not people and (ctx.who and ctx.who.id or "") or nil
  for _, r in ipairs(sj.api_writes(ctx.db, after, limit, actor, key, signs_of)) do
    local d = r.data
    out[#out + 1] = { id = r.id, at = r.at, card = r.card, actor = r.actor, action = d.action, route = d.route,
      key = (people or r.actor == me) and d.key or nil, subject = people and d.subject or nil }
  end
  return 200, { entries = jsonout.array(out), next = #out == limit and out[#out].id or nil }
end

local SUMMARIES = {
  create = "File a new issue under an epic", move = "Move a card (the state machine decides)",
  comment = "Comment on a card", answer = "Answer a card waiting for input",
  approve = "Approve the tool call a card waits on, or a card a money budget stopped going on",
  deny = "Refuse the tool call a card waits on",
  retry = "Get a blocked or waiting card moving again", cancel = "Cancel a card (and what is under it)",
}

local AUDIT = { type = "object", additionalProperties = true, required = { "entries" }, properties = {
  entries = { type = "array", items = { type = "object", additionalProperties = true, required = { "id", "at", "actor", "action", "route" },
    properties = { id = { type = "integer" }, at = { type = "string" }, card = { type = "string" },
      actor = { type = "string" }, action = { type = "string" }, route = { type = "string" },
      key = { type = "string", description = "the id of the person's key (or of the key whose session) it was made "
        .. "with; for the server's admins and the person alone" },
      subject = { type = "object", description = "whom a people or key change was about: person, project, role, key, "
        .. "keyid; a sign-in's or sign-out's (action sign_in, sign_out) also via, session",
        additionalProperties = { type = "string" } } } } },
  next = { type = "integer" } } }

--- add(router): the write routes (operator) and the audit (viewer)
function M.add(router)
  local card_schema = openapi.CARD
  local function w(method, pattern, name, handler, status)
    router:add(method, pattern, { handler = handler, role = "operator", body = "json", schema = M.SCHEMAS[name],
      described = M.DESCRIBED[name], name = name, summary = SUMMARIES[name],
      responses = { [status or 200] = { schema = card_schema, description = "the card now" } } })
  end
  w("POST", "/v1/cards", "create", create, 201)
  w("POST", "/v1/cards/{id}/move", "move", move)
  w("POST", "/v1/cards/{id}/comments", "comment", comment)
  w("POST", "/v1/cards/{id}/answer", "answer", answer)
  w("POST", "/v1/cards/{id}/approve", "approve", decide("approve", "note"))
  w("POST", "/v1/cards/{id}/deny", "deny", decide("deny", "reason"))
  w("POST", "/v1/cards/{id}/retry", "retry", retry)
  w("POST", "/v1/cards/{id}/cancel", "cancel", cancel)
  router:add("GET", "/v1/audit", { handler = audit, role = "viewer", name = "audit",
    summary = "The writes made through the API, oldest first",
    query = { { name = "after", type = "integer", description = "entries after this id" },
      { name = "limit", type = "integer", description = "at most this many (100; 200 at most)" },
      { name = "actor", type = "string", description = "only the writes of this actor, as entries spell it: " .. ACTORS },
      { name = "key", type = "string", description = "only the writes made through this person's key (its id, "
        .. "an entry's key): any person's for the server's admins; for another person, their own writes alone (with "
        .. "another's ?actor=, 403), and for a key of no person 403" } },
    responses = { [200] = { schema = AUDIT } } })
end

--- check(route, body) -> true | nil, msg: the body against the route's schema
function M.check(route, body)
  if not route.schema then return true end
  if type(body) ~= "table" then return nil, "the body must be a JSON object" end
  local ok, msg = cschema.validate(route.schema, body)
  if not ok then
    -- the validator speaks of a tool's arguments (its first use); a body has fields
    msg = tostring(msg):gsub("^args", "body"):gsub("unknown argument; this tool accepts only the parameters its schema "
      .. "lists", "unknown field; this route takes only the fields GET /v1/openapi.json lists for it")
      :gsub("required argument is missing", "a required field is missing")
    return nil, msg
  end
  return true
end

return M
