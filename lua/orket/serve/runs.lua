-- orket.serve.runs: runs over the API (POST /v1/runs, list, get, transcript, stop, resume).
-- The runs execute inside the server (orket.engine.executor, on its loop, each with an
-- engine of its own); these routes say its answers over HTTP. Every write is journaled as an
-- api_write event with the key's id as actor (orket.serve.writes). Contract: docs/serve.md,
-- "Runs".
local cjson = require "cjson.safe"
local jsonout = require "orket.jsonout"
local executor = require "orket.engine.executor"
local setup = require "orket.engine.setup"
local claims = require "orket.engine.claims"
local routes = require "orket.serve.routes"
local runs_store = require "orket.store.runs"
local log_view = require "orket.views.log"
local writes = require "orket.serve.writes"
local board = require "orket.board"
local oa = require "orket.serve.openapi"
local settings = require "orket.settings"
local costs = require "orket.store.costs"
local errors = require "orket.errors"
local otel = require "orket.otel"
local store_projects = require "orket.store.projects"

local M = {}
local err, whole = routes.err, routes.whole

M.LIST_MAX = 200

--- registry(db) -> the live runs of the server using store db (orket.engine.executor)
M.registry = executor.registry

local null = cjson.null
local function or_null(v) if v == nil then return null end return v end

-- The store's own id, read once a store (no restore changes it), for the trace ids of runs
-- recorded before runs kept theirs; false: a store that cannot say it
local store_ids = setmetatable({}, { __mode = "k" })
local function store_id(db)
  if store_ids[db] == nil then
    local ok, id = pcall(store_projects.store_id, db)
    store_ids[db] = ok and type(id) == "string" and id or false
  end
  return store_ids[db] or nil
end

-- The run's trace id (orket.otel.run_trace_id): its data's, else one made of the store's id
-- for a run recorded before runs kept theirs (the store read only then)
local function trace_id(db, data, id)
  return otel.run_trace_id(type(data) == "table" and data.trace_id or nil, nil, id)
    or otel.run_trace_id(nil, store_id(db), id)
end

--- doc(db, dir, row) -> RUN: a runs row as the API shows it; live: this server executes it
function M.doc(db, dir, row)
  local data = cjson.decode(row.data or "{}") or {}
  local entry = M.registry(db).live[row.id]
  local live = entry ~= nil and not entry.ended
  -- (a run whose engine ended here shows its stored end: its lock is held until it is let go)
  local state = live and "running" or (entry and row.status ~= "running" and row.status)
    or claims.state(dir, db, row.status, row.id, data.workers == true)
  -- a resumed run's row keeps the end of its interruption until it ends again
  return { id = row.id, target = row.target, kind = row.kind, state = state, started_at = row.started_at,
    ended_at = state ~= "running" and or_null(row.ended_at) or null, model = or_null(type(data.model) == "string"
      and data.model or nil), concurrency = or_null(math.tointeger(data.concurrency)), live = live,
    trace_id = or_null(trace_id(db, data, row.id)) }
end

local row_of = runs_store.get

-- The run a path names: row | nil, status, doc
local function named(ctx)
  local id = whole(ctx.params.id)
  local row = id and row_of(ctx.db, id)
  if not row then return nil, err(404, "not_found", "no run " .. ctx.params.id) end
  return row
end

-- The write's audit record (orket.serve.writes: GET /v1/audit lists it).
local function audit(ctx, action, row)
  assert(ctx.db:tx(function()
    writes.audited(ctx, { card = row.target, run = row.id, actor = writes.principal(ctx).seat, action = action })
    return true
  end))
end

-- The executor's refusal as an answer: kind -> its status. starting: another process held
-- the project's start of a run past its wait (ESTARTING), which passes: a client told to
-- come back (Retry-After), where 409 conflict is an overlap that lasts. ENOSPC: the disk
-- failed the write, no conflict (the vocabulary's status, orket.errors).
local STATUS = { stopping = 503, bad_request = 400, project_error = 409, conflict = 409, starting = 503,
  ENOSPC = errors.status("ENOSPC") }
M.STARTING_RETRY_S = 1
-- a start's conflict lasts until the run or state the message names ends: the vocabulary's
-- remedy ("read it again and retry") would only get the same answer. The start's, and a
-- resume's that overlaps a live run; a stop or resume refused for the run asked for itself
-- has its own (refusal_remedy, below).
M.CONFLICT_REMEDY = "the message names the run or state in the way: asked again before that changes, the answer is "
  .. "the same (GET /v1/runs lists the runs going; POST /v1/runs/{id}/stop ends one this server executes)"
-- refused(kind, msg, ctx[, remedy]): remedy, else the vocabulary's for the kind
local function refused(kind, msg, ctx, remedy)
  if kind == "starting" and ctx and ctx.headers then
    table.insert(ctx.headers, "Retry-After: " .. M.STARTING_RETRY_S)
  end
  return err(STATUS[kind] or 409, STATUS[kind] and kind or tostring(kind), tostring(msg), remedy)
end

-- The remedy of a stop or resume refused 409 for the run asked for, by its state now (as GET
-- /v1/runs/{id} shows it): the vocabulary's ("read it again and retry") would only get the
-- same answer. An ended run has nothing to stop, a done one nothing to resume; a run going
-- is stopped where it goes (the message says where); a resume that overlaps a live run
-- waits for that one, as a start does (M.CONFLICT_REMEDY).
local function refusal_remedy(db, dir, row, action)
  local fresh = row_of(db, row.id) or row
  local state = M.doc(db, dir, fresh).state
  local id = row.id
  if state == "done" then
    return string.format("nothing to do: run %d ended done; start a new run with POST /v1/runs", id)
  end
  if runs_store.ENDED[state] or state == "killed" then
    if action == "resume" then return M.CONFLICT_REMEDY end
    return string.format("nothing to do: run %d ended %s; POST /v1/runs/%d/resume continues it, or start a new run "
      .. "with POST /v1/runs", id, state, id)
  end
  if action == "resume" then
    return string.format("nothing to do: run %d is %s already; to resume it later, stop it first (POST "
      .. "/v1/runs/%d/stop to the server that executes it)", id, state, id)
  end
  return string.format("stop it where it goes, as the message says (this server cannot); asked here again, the "
    .. "answer is the same until run %d ends", id)
end

-- POST /v1/runs {target, model?, concurrency?}
local function start(_, ctx)
  local body = ctx.body
  if M.registry(ctx.db).closing then return refused("stopping", "the server is stopping") end
  local target, model = body.target, body.model ~= "" and body.model or nil
  if not board.open(ctx.db):get(target) then return err(404, "not_found", 'no card "' .. target .. '"') end
  local id, go, msg = executor.start { dir = ctx.dir, db = ctx.db, target = target, model = model,
    concurrency = body.concurrency }
  if not id then return refused(go, msg, ctx, go == "conflict" and M.CONFLICT_REMEDY or nil) end
  local row = row_of(ctx.db, id)
  audit(ctx, "run", row)
  if go then go() end -- (else the server's workers, orket.serve.workers, take it up)
  return 201, { run = M.doc(ctx.db, ctx.dir, row) }
end

-- POST /v1/runs/{id}/resume
local function resume(_, ctx)
  if M.registry(ctx.db).closing then return refused("stopping", "the server is stopping") end
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  local tok, terr, tcode = setup.resumable(ctx.dir) -- the team, as a new run's (orket.engine.setup)
  if not tok then return refused(tcode, terr, ctx) end
  local id, go, msg = executor.resume { dir = ctx.dir, db = ctx.db, row = row }
  if not id then
    return refused(go, msg, ctx, go == "conflict" and refusal_remedy(ctx.db, ctx.dir, row, "resume") or nil)
  end
  audit(ctx, "resume", row)
  if go then go() end -- (else the server's workers take it up again)
  return 202, { run = M.doc(ctx.db, ctx.dir, row_of(ctx.db, id)) }
end

-- POST /v1/runs/{id}/stop
local function stop(_, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  local ok, kind, msg = executor.stop(ctx.dir, ctx.db, row)
  if not ok then
    return refused(kind, msg, nil, kind == "conflict" and refusal_remedy(ctx.db, ctx.dir, row, "stop") or nil)
  end
  audit(ctx, "stop", row)
  -- (read again: a run left to the workers that none worked has ended, interrupted)
  return 202, { run = M.doc(ctx.db, ctx.dir, row_of(ctx.db, row.id) or row) }
end

-- A run's document with its model calls' tokens by kind and cost (docs/cost.md): for the
-- API's reads of runs, not for /metrics' states, which needs no sums.
local function with_usage(db, d)
  d.usage = costs.totals(db, { run = d.id })
  return d
end

local function get(_, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  local d = with_usage(ctx.db, M.doc(ctx.db, ctx.dir, row))
  -- why it ended so (failed, stalled: the stuck cards' lines), as its run_end journaled it
  if d.state ~= "running" then d.reason = runs_store.end_reason(ctx.db, row.id) or null end
  return 200, { run = d }
end

-- GET /v1/runs/{id}/transcript[?after=EVENT]: a page of the run's transcript, its texts cut
-- (orket.views.log.served: one run's whole document was 236 MB, built in memory per request)
local function transcript(_, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  local after, ast, adoc = routes.after(ctx.query.after)
  if not after then return ast, adoc end
  return 200, assert(log_view.served(ctx.db, ctx.dir, row.id, after))
end

-- the states a run is shown in (M.doc; orket.project.run_state), in the order the docs give them:
-- every status it is stored with (orket.store.runs, the one list), and those only shown:
-- killed (stored as running, its process gone) and queued (left to workers, none working it)
M.STATES = { table.unpack(runs_store.STATUSES) }
M.STATES[#M.STATES + 1] = "killed"
M.STATES[#M.STATES + 1] = "queued"
M.SHOWN = {}
for _, s in ipairs(M.STATES) do M.SHOWN[s] = true end

-- A page of a state's runs reads at most this many rows (each one's state is worked out,
-- which may read its claims): past it the page ends short, its next where the read stopped
M.STATE_SCAN = 10000
local SCAN_BATCH = 500

-- ?after=ID: the runs older than ID (a page's next); absent: from the newest -> id | nil
-- (absent) | false, status, doc (not a whole number). Digits past an integer: after every run.
local function older_than(s)
  if s == nil then return nil end
  local n = routes.whole_or_most(s)
  if n then return n end
  return false, err(400, "bad_query", "?after= takes a run's id, the page's next: the runs older than it (absent: "
    .. "from the newest)")
end

-- GET /v1/runs[?state=][&after=][&limit=]: newest first, a page at a time; next: the
-- ?after= of the next page, on a full page (or, with ?state=, on one that stopped at
-- STATE_SCAN rows read)
local function list(_, ctx)
  local limit, lst, ldoc = routes.limit(ctx.query.limit, 50, M.LIST_MAX)
  if not limit then return lst, ldoc end
  local after, ast, adoc = older_than(ctx.query.after)
  if after == false then return ast, adoc end
  local want = ctx.query.state
  -- a state no run can be in is refused, not answered with an empty list: a typo
  -- (?state=runing) would read as "no run is going"
  if want and not M.SHOWN[want] then
    return err(400, "bad_query", "?state= takes one of " .. table.concat(M.STATES, ", "))
  end
  local out, next_id, read = {}, nil, 0
  -- a state filter reads on in batches: the shown state is worked out per run
  local batch = want and SCAN_BATCH or limit
  repeat
    local rows = runs_store.older(ctx.db, after, batch)
    for _, r in ipairs(rows) do
      read, after = read + 1, r.id
      local d = M.doc(ctx.db, ctx.dir, r)
      if not want or d.state == want then out[#out + 1] = with_usage(ctx.db, d) end
      if #out >= limit then next_id = r.id break end
    end
    local more = #rows == batch
    if not next_id and more and read >= M.STATE_SCAN then next_id = after end
  until next_id or not more or not want
  return 200, { runs = jsonout.array(out), next = next_id }
end

--- shown_states(db, dir) -> {[stored status] = {[shown state] = n}} for the runs whose
--- shown state differs from the stored one (live here or elsewhere, killed): /metrics
--- counts runs by what they are now.
function M.shown_states(db, dir)
  local out, seen = {}, {}
  local function note(row)
    if seen[row.id] then return end
    seen[row.id] = true
    local shown = M.doc(db, dir, row).state
    if shown ~= row.status then
      out[row.status] = out[row.status] or {}
      out[row.status][shown] = (out[row.status][shown] or 0) + 1
    end
  end
  for _, row in ipairs(runs_store.running(db)) do
    note(row)
  end
  for id in pairs(M.registry(db).live) do
    local row = row_of(db, id)
    if row then note(row) end
  end
  for _, r in ipairs(claims.live(dir)) do
    local row = row_of(db, r.id)
    if row then note(row) end
  end
  return out
end

-- Schemas (orket.serve.openapi describes them; tests check answers against them).
local function str(max) return { type = "string", minLength = 1, maxLength = max } end
M.SCHEMAS = {
  run = { type = "object", additionalProperties = false, required = { "target" }, properties = {
    target = str(128), model = { type = "string", maxLength = 256, description = "provider:model; empty: each seat's" },
    concurrency = { type = "integer", minimum = 1, maximum = settings.CONCURRENCY_MAX } } },
}
local NSTR = { "string", "null" }
M.RUN = { type = "object", additionalProperties = false,
  required = { "id", "target", "kind", "state", "started_at", "ended_at", "model", "concurrency", "live", "trace_id" },
  properties = { id = { type = "integer" }, target = { type = "string" },
    kind = { type = "string", description = "the kind of run (of an epic, a rock, a card)" },
    state = { type = "string", enum = M.STATES },
    started_at = { type = "string" }, ended_at = { type = NSTR, description = "a time, or null while it goes" },
    model = { type = NSTR, description = "the model it was started with (null: each seat's)" },
    concurrency = { type = { "integer", "null" }, minimum = 1,
      description = "turns at once it was started with (null: orket.lua's)" },
    live = { type = "boolean", description = "this server executes it now" },
    trace_id = { type = NSTR, description = "its OpenTelemetry trace id (32 hex digits), the same at every start of "
      .. "it; search a tracing backend by it (orket.run.id restarts at 1 in every project). null: a store that cannot "
      .. "say its id, for a run recorded before runs kept theirs" },
    usage = { type = "object", additionalProperties = oa.USAGE.additionalProperties, required = oa.USAGE.required,
      properties = oa.USAGE.properties, description = "its model calls (GET only): calls, priced (with a cost), "
      .. "input, cached and output tokens, cost {CURRENCY = micro-units} (docs/cost.md)" },
    reason = { type = NSTR, description = "why it ended so, as its end journaled it (GET of an ended run only; null: "
      .. "none said): a failure's cause, a stall's stuck cards with each one's reason and next command" } } }
local ONE = { type = "object", additionalProperties = false, required = { "run" }, properties = { run = M.RUN } }
local MANY = { type = "object", additionalProperties = false, required = { "runs" },
  properties = { runs = { type = "array", items = M.RUN }, next = { type = "integer", description = "the ?after= of "
    .. "the next page (absent on the last): on a full page, or with ?state= on one that stopped after "
    .. M.STATE_SCAN .. " runs read (which may hold fewer than ?limit=, even none)" } } }
local LOG = { type = "object", additionalProperties = true, required = { "format", "run", "events", "transitions" },
  properties = { format = { type = "string", enum = { "orket.log/1" } }, run = { type = "object" },
    events = { type = "array" }, transitions = { type = "array" },
    field_max = { type = "integer", description = "the bytes each text was cut at (an event's cut lists its texts cut)" },
    next = { type = "integer", description = "the ?after= of the next page (absent on the last)" } } }

--- add(router): the run routes
function M.add(router)
  local conflict = { schema = oa.ERROR, description = "its cards overlap a live run, or the run is not in a state for that" }
  local stopping = { schema = oa.ERROR, description = "the server is stopping, or (`starting`, with Retry-After) "
    .. "another process holds the project's start of a run: try again" }
  router:add("POST", "/v1/runs", { handler = start, role = "operator", body = "json", schema = M.SCHEMAS.run,
    name = "run_start", summary = "Start a run of an epic, a rock or a card",
    responses = { [201] = { schema = ONE, description = "the run, started" }, [503] = stopping } })
  router:add("GET", "/v1/runs", { handler = list, role = "viewer", name = "runs", summary = "Runs, newest first",
    query = { { name = "state", enum = M.STATES, description = "only runs in this state" },
      { name = "after", type = "integer", description = "the runs older than this run id (a page's next; absent: from "
        .. "the newest)" },
      { name = "limit", type = "integer", description = "at most this many (50; 200 at most)" } },
    responses = { [200] = { schema = MANY } } })
  router:add("GET", "/v1/runs/{id}", { handler = get, role = "viewer", name = "run", summary = "One run",
    responses = { [200] = { schema = ONE } } })
  router:add("GET", "/v1/runs/{id}/transcript", { handler = transcript, role = "viewer", name = "run_transcript",
    summary = "A run's transcript (orket log RUN --json), a page at a time, each text cut at "
      .. log_view.FIELD_MAX .. " bytes",
    query = { { name = "after", type = "integer", description = "the events after this event id (a page's next; "
      .. "0: from the first)" } },
    responses = { [200] = { schema = LOG } } })
  router:add("POST", "/v1/runs/{id}/stop", { handler = stop, role = "operator", name = "run_stop",
    summary = "Stop a run this server executes, or end one left to the workers that no worker works now (resumable)",
    responses = { [202] = { schema = ONE, description = "the run, stopping (or, left to the workers, ended)" },
      [409] = conflict } })
  router:add("POST", "/v1/runs/{id}/resume", { handler = resume, role = "operator", name = "run_resume",
    summary = "Continue an interrupted, stalled or killed run in this server (one left to the workers, on a server "
      .. "started with --workers: handed back to its workers)",
    responses = { [202] = { schema = ONE,
      description = "the run, going again (here, or left to the workers: not live)" },
      [409] = conflict, [503] = stopping } })
end

return M
