-- orket.store.pg.runs: orket.store.runs' operations on PostgreSQL (same names and shapes:
-- times as ISO text, data as its JSON text).
local iso = require("orket.store.pgdb").iso

local M = {}

local ALL = "id, target, kind, status, " .. iso("started_at") .. ", " .. iso("ended_at")
  .. ", data::text AS data, untagged_upto"

function M.get(db, id)
  return db:row("SELECT " .. ALL .. " FROM runs WHERE id = $1", id)
end

function M.recent(db, limit)
  return db:rows("SELECT " .. ALL .. " FROM runs ORDER BY id DESC LIMIT $1", limit)
end

function M.running(db)
  return db:rows("SELECT id, status, target, kind, " .. iso("started_at")
    .. ", data::text AS data FROM runs WHERE status = 'running' LIMIT 1000")
end

function M.unfinished(db)
  return db:rows("SELECT id, target, status FROM runs WHERE status IN ('running', 'interrupted') ORDER BY id DESC") or {}
end

function M.latest_not_done(db)
  return db:row("SELECT id, status FROM runs WHERE status IS NULL OR status <> 'done' ORDER BY id DESC LIMIT 1")
end

function M.latest_id(db)
  return (db:row("SELECT max(id) AS id FROM runs") or {}).id
end

function M.any(db)
  return db:row("SELECT 1 AS x FROM runs LIMIT 1") ~= nil
end

function M.summaries(db)
  return assert(db:rows([[SELECT r.id, r.target, r.kind, r.status, ]] .. iso("r.started_at") .. ", "
    .. iso("r.ended_at") .. [[, (SELECT count(*) FROM turns t WHERE t.run_id = r.id) AS steps,
    (SELECT COALESCE(SUM(COALESCE(prompt_tokens,0) + COALESCE(completion_tokens,0)), 0)::int8 FROM turns t
      WHERE t.run_id = r.id) AS tokens
    FROM runs r ORDER BY r.id DESC]]))
end

return M
