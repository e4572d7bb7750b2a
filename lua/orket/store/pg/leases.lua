-- orket.store.pg.leases: the PostgreSQL twin of orket.store.leases (same names, arguments
-- and shapes). q is a pool transaction (pgpool's tx) or a connection: claim() must run
-- inside the caller's transaction. Claimers skip each other's cards with
-- FOR UPDATE SKIP LOCKED on the cards rows, and the lease is written by an upsert whose
-- WHERE re-reads the newest lease row, so two workers never both hold one card even when
-- one commits its claim while the other's statement runs. Contract: docs/workers.md.
local json = require "cjson"

local M = {}

local name_of = require("orket.store.leases").name_of

M.WORKABLE = require("orket.store.leases").WORKABLE

local function check_ttl(ttl_ms, fname)
  if math.type(ttl_ms) ~= "integer" or ttl_ms < 1 then
    error("bad argument to '" .. fname .. "' (ttl_ms: positive integer expected)", 3)
  end
end

local AT = [[to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')]]

--- claim(q, {worker=, run=, ids=, limit=, ttl_ms=}) -> array of {card=, taken_from=}, in
--- the order of ids (see orket.store.leases.claim)
function M.claim(q, o)
  if type(o) ~= "table" or type(o.worker) ~= "string" or type(o.ids) ~= "table" then
    error("bad argument #2 to 'claim' ({worker=, run=, ids=, limit=, ttl_ms=} expected)", 2)
  end
  check_ttl(o.ttl_ms, "claim")
  if #o.ids == 0 then return {} end
  local rows = assert(q:query([[
    WITH want AS (
      SELECT c.id, u.ord, l.worker AS holder
      FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS u(id, ord)
      JOIN cards c ON c.id = u.id
      LEFT JOIN leases l ON l.card_id = c.id
      WHERE c.status IN ('ready', 'in_progress', 'code_review', 'ready_for_testing')
        AND (l.card_id IS NULL OR l.expires_at <= now() OR l.worker = $2)
        AND EXISTS (SELECT 1 FROM runs r WHERE r.id = $3) -- (a run restored away claims nothing)
      ORDER BY u.ord
      LIMIT $4
      FOR UPDATE OF c SKIP LOCKED),
    put AS ( -- (clock_timestamp(): dated from this statement, as orket.store.leases' LEASE_END says why)
      INSERT INTO leases (card_id, worker, run_id, acquired_at, expires_at)
      SELECT id, $2, $3, now(), clock_timestamp() + $5 * interval '1 millisecond' FROM want
      ON CONFLICT (card_id) DO UPDATE SET worker = EXCLUDED.worker, run_id = EXCLUDED.run_id,
        acquired_at = CASE WHEN leases.worker = EXCLUDED.worker THEN leases.acquired_at
                           ELSE EXCLUDED.acquired_at END,
        expires_at = EXCLUDED.expires_at
      WHERE leases.expires_at <= now() OR leases.worker = EXCLUDED.worker
      RETURNING card_id)
    SELECT want.id, want.ord, want.holder FROM want JOIN put ON put.card_id = want.id ORDER BY want.ord]],
    json.encode(o.ids), o.worker, o.run, o.limit or #o.ids, o.ttl_ms))
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { card = r.id, taken_from = (r.holder and r.holder ~= o.worker) and name_of(r.holder) or nil }
  end
  return out
end

-- The journal's advisory lock (pgevents.LOCK), which every write transaction holds from
-- its BEGIN (orket.store.pgdb)
local JOURNAL_LOCK = require("orket.store.pgevents").LOCK

--- renew(q, worker, ttl_ms[, cards]) -> set {card_id = true} of the cards worker still
--- holds (of cards when given), lapsed leases whose row still names worker too (see
--- orket.store.leases.renew). A taker's upsert that committed first renamed the row, which
--- this UPDATE re-reads after its wait, so it is not renewed. Called outside a transaction
--- (orket.engine.lease: renew), its two statements each commit on the server whole, even
--- when the worker stalls before it reads the answer: nothing stays locked across a stall.
--- The first waits for the write transactions open now (the journal's lock taken and let go
--- at once): a card claimed in one not yet committed when the UPDATE read its snapshot was
--- not found, and was said lost. The UPDATE takes the journal's lock before it locks a row
--- (FROM lk), as the writers around it do: else it and a scheduling round's claim could each
--- lock a lease row the other wants next (a deadlock, one of them aborted).
function M.renew(q, worker, ttl_ms, cards)
  check_ttl(ttl_ms, "renew")
  if cards ~= nil and type(cards) ~= "table" then
    error("bad argument #4 to 'renew' (array of card ids or nil expected)", 2)
  end
  local held = {}
  if cards and #cards == 0 then return held end
  assert(q:query("SELECT pg_advisory_xact_lock($1)", JOURNAL_LOCK))
  for _, r in ipairs(assert(q:query([[UPDATE leases SET expires_at = clock_timestamp() + $2 * interval '1 millisecond'
      FROM (SELECT pg_advisory_xact_lock($4)) AS lk
      WHERE worker = $1 AND ($3::jsonb IS NULL OR card_id IN (SELECT jsonb_array_elements_text($3::jsonb)))
      RETURNING card_id]], worker, ttl_ms, cards and json.encode(cards) or nil, JOURNAL_LOCK))) do
    held[r.card_id] = true
  end
  return held
end

--- holds(q, card, worker) -> true when card's lease row names worker, live or lapsed (see
--- orket.store.leases.holds). Inside a step's transaction it locks the lease row (FOR
--- SHARE), so a takeover waits for the step.
function M.holds(q, card, worker)
  local rows = assert(q:query([[SELECT 1 AS y FROM leases WHERE card_id = $1 AND worker = $2 FOR SHARE]],
    card, worker))
  return rows[1] ~= nil
end

--- release(q, worker[, card]) -> number of leases dropped
function M.release(q, worker, card)
  local _, n = assert(q:query("DELETE FROM leases WHERE worker = $1 AND ($2::text IS NULL OR card_id = $2)",
    worker, card))
  return n
end

--- live(q[, run]) -> array of {card=, worker=, holder=, run=, acquired_at=, expires_at=}, by
--- card id (as orket.store.leases.live)
function M.live(q, run)
  local out = {}
  for _, r in ipairs(assert(q:query("SELECT card_id, worker, run_id, " .. AT:format("acquired_at")
      .. " AS acquired_at, " .. AT:format("expires_at") .. [[ AS expires_at FROM leases
      WHERE expires_at > now() AND ($1::bigint IS NULL OR run_id = $1) ORDER BY card_id]], run))) do
    out[#out + 1] = { card = r.card_id, worker = name_of(r.worker), holder = r.worker, run = r.run_id,
      acquired_at = r.acquired_at, expires_at = r.expires_at }
  end
  return out
end

--- others(q, run, worker) -> how many live leases on run's cards other workers hold
function M.others(q, run, worker)
  return assert(q:query([[SELECT COUNT(*)::int8 AS n FROM leases WHERE run_id = $1 AND worker <> $2
    AND expires_at > now()]], run, worker))[1].n
end

--- namesakes(q, worker) -> how many live leases other holders of worker's name hold
function M.namesakes(q, worker)
  return assert(q:query([[SELECT COUNT(*)::int8 AS n FROM leases WHERE expires_at > now() AND worker <> $1
    AND length(worker) = length($2) + 17 AND left(worker, length($2) + 1) = $2 || '#']], worker, name_of(worker)))[1].n
end

--- queued(q) -> array of {id=, target=} of the runs left to the workers, oldest first
function M.queued(q)
  return assert(q:query([[SELECT id, target FROM runs WHERE status = 'running'
    AND (data->>'workers')::boolean ORDER BY id]]))
end

--- requeue(q, id) -> whether run id, left to the workers and ended interrupted, stalled or
--- failed, is left to them again (running, its end cleared)
function M.requeue(q, id)
  return assert(q:query([[UPDATE runs SET status = 'running', ended_at = NULL WHERE id = $1
    AND status IN ('interrupted', 'stalled', 'failed') AND (data->>'workers')::boolean RETURNING id]], id))[1] ~= nil
end

--- queued_for(q, target) -> id of the unfinished run of target left to the workers | nil
function M.queued_for(q, target)
  local r = assert(q:query([[SELECT id FROM runs WHERE status = 'running' AND target = $1
    AND (data->>'workers')::boolean ORDER BY id LIMIT 1]], target))[1]
  return r and r.id
end

--- run_take(q, run, owner, ttl_ms[, over]) -> nil | {owner=} (see orket.store.leases):
--- one upsert whose WHERE re-reads the row, so two processes never both take one run
function M.run_take(q, run, owner, ttl_ms, over)
  check_ttl(ttl_ms, "run_take")
  local rows = assert(q:query([[INSERT INTO run_leases (run_id, owner, acquired_at, expires_at)
    VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond')
    ON CONFLICT (run_id) DO UPDATE SET owner = EXCLUDED.owner, acquired_at = EXCLUDED.acquired_at,
      expires_at = EXCLUDED.expires_at
    WHERE run_leases.expires_at <= now() OR run_leases.owner = EXCLUDED.owner OR run_leases.owner = $4::text
    RETURNING run_id]], run, owner, ttl_ms, over))
  if rows[1] then return nil end
  local h = assert(q:query("SELECT owner FROM run_leases WHERE run_id = $1", run))[1]
  return { owner = h and h.owner or "?" }
end

--- run_renew(q, owner, ttl_ms, runs) -> set {run_id = true} of runs (an array of run ids)
--- that owner still holds (its lapsed leases nobody took too); only those (see
--- orket.store.leases)
function M.run_renew(q, owner, ttl_ms, runs)
  check_ttl(ttl_ms, "run_renew")
  if type(runs) ~= "table" then error("bad argument #4 to 'run_renew' (array of run ids expected)", 2) end
  local held = {}
  if #runs == 0 then return held end
  for _, r in ipairs(assert(q:query([[UPDATE run_leases SET expires_at = now() + $2 * interval '1 millisecond'
      WHERE owner = $1 AND run_id IN (SELECT jsonb_array_elements_text($3::jsonb)::bigint) RETURNING run_id]],
      owner, ttl_ms, json.encode(runs)))) do
    held[r.run_id] = true
  end
  return held
end

--- run_fence(q, run, owner, ttl_ms) -> whether owner still holds run's lease, renewed; the
--- row stays locked until the caller's transaction ends, so a take waits for the step
function M.run_fence(q, run, owner, ttl_ms)
  check_ttl(ttl_ms, "run_fence")
  return assert(q:query([[UPDATE run_leases SET expires_at = now() + $3 * interval '1 millisecond'
      WHERE run_id = $1 AND owner = $2 RETURNING run_id]], run, owner, ttl_ms))[1] ~= nil
end

--- run_drop(q, run, owner) -> number of leases dropped
function M.run_drop(q, run, owner)
  local _, n = assert(q:query("DELETE FROM run_leases WHERE run_id = $1 AND owner = $2", run, owner))
  return n
end

--- run_holders(q) -> array of {run=, owner=} of the live run leases, by run id
function M.run_holders(q)
  local out = {}
  for _, r in ipairs(assert(q:query("SELECT run_id, owner FROM run_leases WHERE expires_at > now() ORDER BY run_id"))) do
    out[#out + 1] = { run = r.run_id, owner = r.owner }
  end
  return out
end

return M
