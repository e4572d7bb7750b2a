-- orket.store.runs: reads of the runs table (one row per `orket run`; written by the
-- store's record_run and finish_run, and reopen below) as named operations op(db, ...) -> plain Lua values;
-- a failing read raises, with the store's message (a damaged file: orket.cli names it).
-- Written once for both backends (orket.store.dialect).
local one = require("orket.store.backend").row
local costs = require "orket.store.costs"
local cjson = require "cjson.safe"
local statement = require("orket.store.dialect").statement

local M = {}

--- STATUSES: every status a run's row is stored with, the one list of them: running (record_run;
--- a run handed back to the workers), then its ENDS, which db:finish_run takes (and no other):
--- done, failed, stalled, interrupted (orket.engine.run; a stop; a run found killed) and stopped
--- (a REPL turn that left its card unfinished: orket.terminal.console). The API's run states
--- (orket.serve.runs) are these and those only shown (killed, queued: orket.project.run_state).
M.ENDS = { "done", "failed", "stalled", "interrupted", "stopped" }
M.STATUSES = { "running", table.unpack(M.ENDS) }
M.ENDED = {}
for _, s in ipairs(M.ENDS) do M.ENDED[s] = true end

-- every column, times as ISO text and data as its JSON text on either backend
local function all(d)
  return "id, target, kind, status, " .. d.time("started_at") .. ", " .. d.time("ended_at") .. ", " .. d.json("data")
    .. ", untagged_upto"
end

--- get(db, id) -> the run's row (every column) | nil
function M.get(db, id)
  return one(db, "SELECT " .. all(db.dialect) .. " FROM runs WHERE id = ?", id)
end

local STATUS_AND_END = "SELECT (SELECT status FROM runs WHERE id = ?) AS status, "
  .. "(SELECT COALESCE(max(id), 0) FROM events) AS last"

--- status_and_end(db, id) -> the run's status (nil: no such run), the journal's end (the
--- newest event's id, 0 when empty), read in one statement: one snapshot on either backend,
--- so no commit lands between the two (a worker's check of a run it opened:
--- orket.engine.runset)
function M.status_and_end(db, id)
  local r = one(db, STATUS_AND_END, id)
  return r.status, math.tointeger(tonumber(r.last))
end

--- end_reason(db, run) -> the reason its last run_end journaled (text: why it failed or
--- stalled, the stuck cards' lines) | nil
local END_REASON = statement(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE run_id = ? AND kind = 'run_end' ORDER BY id DESC LIMIT 1"
end)
function M.end_reason(db, run)
  local r = one(db, END_REASON(db), run)
  local data = r and cjson.decode(r.data)
  return type(data) == "table" and type(data.reason) == "string" and data.reason or nil
end

--- stops_between(db, from, to) -> {{id=, run=}} the run_end events with id in (from, to]
--- that ended their run interrupted (a stop: `orket runs stop`, POST /v1/runs/ID/stop),
--- oldest first
function M.stops_between(db, from, to)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id, run_id FROM events WHERE id > ? AND id <= ? AND kind = 'run_end' AND "
    .. db.dialect.json_text("data", "status") .. " = 'interrupted' ORDER BY id", from, to))) do
    out[#out + 1] = { id = math.tointeger(tonumber(r.id)), run = math.tointeger(tonumber(r.run_id)) }
  end
  return out
end

--- recent(db, limit) -> up to limit rows (every column), newest first
function M.recent(db, limit)
  return assert(db:rows("SELECT " .. all(db.dialect) .. " FROM runs ORDER BY id DESC LIMIT ?", limit))
end

--- older(db, before, limit) -> up to limit rows (every column) of the runs whose id is below
--- before (nil: every run), newest first: a page of GET /v1/runs
function M.older(db, before, limit)
  if before == nil then return M.recent(db, limit) end
  return assert(db:rows("SELECT " .. all(db.dialect) .. " FROM runs WHERE id < ? ORDER BY id DESC LIMIT ?", before,
    limit))
end

--- running(db) -> up to 1,000 runs stored as running {id, status, target, kind, started_at, data}
function M.running(db)
  local d = db.dialect
  return assert(db:rows("SELECT id, status, target, kind, " .. d.time("started_at") .. ", " .. d.json("data")
    .. " FROM runs WHERE status = 'running' LIMIT 1000"))
end

--- unfinished(db) -> array of {id=, target=, status=} of the runs still marked running or
--- interrupted, newest first (raises on a store error: an empty list would let a new run
--- redo the turns such a run left half done)
function M.unfinished(db)
  return assert(db:rows("SELECT id, target, status FROM runs WHERE status IN ('running', 'interrupted') ORDER BY id DESC"))
end


--- not_done(db, limit) -> the newest runs that are not done ({id, status} each), newest
--- first, at most limit; raises on a store error. A row a restore wrote to keep a dropped
--- run's id (orket.store.restore_runs: its data's restore) never ran here and is left out in
--- the statement: a restore that dropped more runs than limit left only such rows newest.
local NOT_DONE = statement(function(d)
  return "SELECT id, status FROM runs WHERE (status IS NULL OR status <> 'done') AND " .. d.json_text("data", "restore")
    .. " IS NULL ORDER BY id DESC LIMIT ?"
end)
function M.not_done(db, limit)
  return assert(db:rows(NOT_DONE(db), limit))
end

--- latest_id(db) -> the newest run's id | nil (no run); raises on a store error
function M.latest_id(db)
  return assert(db:row("SELECT max(id) AS id FROM runs")).id
end

--- reopen(db, id): run id, resumed by this process, is running again (its end cleared) until
--- it ends; one running already is left as it is. Inside the resume's transaction.
function M.reopen(db, id)
  assert(db:run("UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ? AND status <> 'running'", id))
end

--- any(db) -> true when a run was ever recorded; raises on a store error
function M.any(db)
  return one(db, "SELECT 1 AS x FROM runs LIMIT 1") ~= nil
end

--- trace_ids(db) -> {[run id] = its data's trace_id (text as stored; nil: none)}, every
--- run (orket runs --json shows them beside summaries; raises on a store error)
local TRACE_IDS = statement(function(d)
  return "SELECT id, " .. d.json_text("data", "trace_id") .. " AS trace_id FROM runs"
end)
function M.trace_ids(db)
  local out = {}
  for _, r in ipairs(assert(db:rows(TRACE_IDS(db)))) do
    local id = math.tointeger(tonumber(r.id))
    if id and type(r.trace_id) == "string" then out[id] = r.trace_id end
  end
  return out
end

--- summaries(db) -> every run, newest first: {id, target, kind, status, started_at,
--- ended_at, steps (turns rows), tokens (prompt + completion, of its charged model failures
--- too, as journal_reads.run_tokens counts them)} (raises on a store error)
function M.summaries(db)
  local d = db.dialect
  return assert(db:rows("SELECT r.id, r.target, r.kind, r.status, " .. d.time("r.started_at", "started_at") .. ", "
    .. d.time("r.ended_at", "ended_at") .. [[, (SELECT count(*) FROM turns t WHERE t.run_id = r.id) AS steps,
    (SELECT ]] .. d.integer("COALESCE(SUM(COALESCE(prompt_tokens,0) + COALESCE(completion_tokens,0)), 0)")
    .. " FROM turns t WHERE t.run_id = r.id) + (SELECT "
    .. d.integer("COALESCE(SUM(" .. costs.charged_tokens(d, "e.data") .. "), 0)")
    .. " FROM events e WHERE e.run_id = r.id AND e.kind = 'model_failure') AS tokens FROM runs r ORDER BY r.id DESC"))
end

return M
