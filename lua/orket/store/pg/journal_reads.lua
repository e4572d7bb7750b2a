-- orket.store.pg.journal_reads: orket.store.journal_reads's operations on PostgreSQL (same names and
-- shapes; orket.store.backend picks this twin for a PostgreSQL store). jsonb's ->> stands
-- for json_extract; ids in event data are cast to bigint to join turns.
local cjson = require "cjson.safe"
local iso = require("orket.store.pgdb").iso
local one = require("orket.store.backend").row
local costs = require "orket.store.costs"

local M = {}

function M.card_marks(db, run, card)
  return M.split_marks(assert(db:rows([[SELECT id, kind, data::text AS data FROM events WHERE card_id = $1
    AND ((run_id = $2 AND kind IN ('turn_begin', 'turn_end')) OR kind IN ('merge_conflict', 'merge_main'))
    ORDER BY id]], card, run)))
end

M.split_marks = require("orket.store.journal_reads").split_marks

function M.open_turn_cards(db, run, limit)
  local out = {}
  for i, r in ipairs(assert(db:rows([[SELECT c.card_id AS card FROM (SELECT card_id FROM turns WHERE run_id = $1
      UNION SELECT card_id FROM events WHERE run_id = $1 AND kind = 'model_failure') c
    WHERE c.card_id IS NOT NULL AND EXISTS (SELECT 1 FROM events b WHERE b.card_id = c.card_id AND b.run_id = $1
      AND b.kind = 'turn_begin' AND NOT EXISTS (SELECT 1 FROM events t WHERE t.card_id = b.card_id AND t.run_id = $1
        AND t.kind = 'turn_end' AND t.id > b.id AND (t.data->'turn') = (b.data->'turn')))
    ORDER BY c.card_id COLLATE "C" LIMIT $2]], run, limit))) do
    out[i] = r.card
  end
  return out
end

function M.recorded_step(db, run, card, turn, step)
  return one(db, [[SELECT t.id, t.response::text AS response FROM events e JOIN turns t
    ON t.id = (e.data->>'id')::bigint
    WHERE e.card_id = $2 AND e.run_id = $1 AND e.kind = 'turn' AND t.turn = $3
    AND (t.data->>'step')::numeric = $4 ORDER BY t.id LIMIT 1]], run, card, turn, step)
end

local CARD_TOKENS_SINCE = [[WITH r AS (SELECT COALESCE(MAX(id), 0) AS retry FROM events
    WHERE card_id = $2 AND kind = 'retry' AND id > $3),
  s AS (SELECT e.id, e.kind, e.data FROM events e WHERE e.card_id = $2 AND e.run_id = $1
    AND e.kind IN ('turn', 'model_failure') AND e.id > GREATEST($3, (SELECT retry FROM r)))
  SELECT (SELECT retry FROM r) AS retry,
    ((SELECT COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0)
      FROM s JOIN turns t ON t.id = (s.data->>'id')::bigint WHERE s.kind = 'turn')
    + (SELECT COALESCE(SUM(]] .. costs.charged_tokens(require("orket.store.dialect").pg, "s.data") .. [[), 0) FROM s
      WHERE s.kind = 'model_failure'))::int8 AS n,
    (SELECT COALESCE(MAX(id), 0) FROM s) AS mark]]
function M.card_tokens_since(db, run, card, mark)
  local r = one(db, CARD_TOKENS_SINCE, run, card, mark)
  if not r then error("the card's tokens could not be read", 0) end
  return r.n, r.retry > 0, math.max(mark, r.retry, r.mark)
end

function M.turns_called_tools(db, run, card, review, after)
  return one(db, [[SELECT 1 AS x FROM events e JOIN turns t ON t.id = (e.data->>'id')::bigint
    WHERE e.card_id = $2 AND e.run_id = $1 AND e.kind = 'turn' AND e.id > $3
    AND ((t.data->>'phase') = 'review') = $4
    AND (EXISTS (SELECT 1 FROM tool_calls c WHERE c.turn_id = t.id)
      OR EXISTS (SELECT 1 FROM gate_decisions g WHERE g.turn_id = t.id)) LIMIT 1]], run, card, after,
    review and true or false) ~= nil
end

function M.last_handin(db, card)
  local r = one(db, [[SELECT max(id) AS id FROM events WHERE card_id = $1 AND kind = 'transition'
    AND (data->>'from') = 'in_progress']], card)
  return r and r.id or 0
end

function M.run_moves(db, run)
  local rows = assert(db:rows("SELECT " .. iso("at") .. [[, card_id, actor, data::text AS data FROM events
      WHERE kind = 'transition' AND (run_id = $1 OR (run_id IS NULL AND id <= $2::int8 AND at >= $3::timestamptz
      AND ($4::timestamptz IS NULL OR at <= $4::timestamptz))) ORDER BY id]],
    run.id, run.untagged_upto, run.started_at, run.ended_at))
  for _, m in ipairs(rows) do m.data = cjson.decode(m.data) or {} end
  return rows
end

function M.model_exchanges(db, run)
  return assert(db:rows([[SELECT e.kind, e.card_id, e.actor, e.data::text AS data, t.seat, t.role, t.turn,
      t.request::text AS request, t.data::text AS tdata FROM events e
      LEFT JOIN turns t ON e.kind = 'turn' AND t.id = (e.data->>'id')::bigint
      WHERE e.run_id = $1 AND e.kind IN ('turn', 'model_failure') ORDER BY e.id]], run))
end

function M.api_writes(db, after, limit, actor, key, signs_of)
  local rows = assert(db:rows("SELECT id, " .. iso("at") .. [[, card_id AS card, actor, data::text AS data FROM events
    WHERE kind = 'api_write' AND id > $1 AND ($3::text = '' OR actor = $3::text)
      AND ($4::text = '' OR data->>'key' = $4::text)
      AND ($5::text = '' OR COALESCE(data->>'action', '') NOT IN ('sign_in', 'sign_out') OR actor = $5::text)
      AND ($5::text = '' OR actor NOT IN ('ldap', 'oidc'))
      ORDER BY id LIMIT $2]], after, limit, actor or "", key or "", signs_of or ""))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

function M.sign_ins(db, actor, after, limit)
  local rows = assert(db:rows("SELECT id, " .. iso("at") .. [[, card_id AS card, actor, data::text AS data FROM events
    WHERE kind = 'api_write' AND actor = $1 AND id > $2 AND data->>'action' IN ('sign_in', 'sign_out')
      ORDER BY id LIMIT $3]], actor, after, limit))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

function M.last_cancel(db, card)
  return one(db, [[SELECT actor, data->>'note' AS note FROM events WHERE card_id = $1
    AND kind = 'transition' AND (data->>'to') = 'canceled' ORDER BY id DESC LIMIT 1]], card)
end

function M.turn_calls(db, run, card, lo, hi, seen, limit)
  return assert(db:rows([[SELECT c.id, t.turn, c.tool, length(c.arguments::text) AS alen,
    substr(c.arguments::text, 1, $5::int) AS args, c.ok, c.error_code, CASE WHEN NOT c.ok AND c.result->>'denied' = 'true'
      THEN c.result->>'verdict' END AS refused
    FROM events e JOIN turns t ON t.id = (e.data->>'id')::bigint
    JOIN tool_calls c ON c.turn_id = t.id
    WHERE e.card_id = $1 AND e.run_id = $2 AND e.kind = 'turn' AND t.turn >= $3 AND t.turn <= $4
    ORDER BY c.id LIMIT $6]], card, run, lo, hi, seen, limit))
end

return M
