-- orket.store.pg.forge: orket.store.forge's operations on PostgreSQL (same names and
-- shapes: times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

function M.pull_request(db, card)
  return db:row("SELECT card_id, forge, repo, number, url, head, " .. iso("created_at") .. ", " .. iso("updated_at")
    .. " FROM pull_requests WHERE card_id = $1", card)
end

function M.save_pull_request(db, card, forge, repo, number, url, head)
  assert(db:run([[INSERT INTO pull_requests (card_id, forge, repo, number, url, head, created_at, updated_at)
    VALUES ($1, $2, $3, $4::int8, $5::text, $6, now(), now())
    ON CONFLICT (card_id) DO UPDATE SET number = coalesce($4::int8, pull_requests.number),
    url = coalesce($5::text, pull_requests.url), head = $6, updated_at = now()]], card, forge, repo, number, url, head))
end

function M.card_of_pull_request(db, number, repo)
  local r = db:row("SELECT card_id FROM pull_requests WHERE number = $1 AND (repo IS NULL OR repo = $2::text)",
    number, repo)
  return r and r.card_id or nil
end

function M.review_cycles(db, card)
  return db:rows("SELECT cycle, pr_number, decision, reviewer, body, " .. iso("opened_at") .. ", " .. iso("decided_at")
    .. " FROM review_cycles WHERE card_id = $1 ORDER BY cycle", card) or {}
end

function M.open_cycle(db, card, cycle, pr_number, head)
  assert(db:run([[INSERT INTO review_cycles (card_id, cycle, pr_number, head, opened_at)
    VALUES ($1, $2, $3, $4, now())]], card, cycle, pr_number, head))
end

function M.decide_cycle(db, id, decision, reviewer, body, delivery)
  assert(db:run([[UPDATE review_cycles SET decision = $1, reviewer = $2, body = $3, delivery = $4,
    decided_at = now() WHERE id = $5]], decision, reviewer, body, delivery, id))
end

function M.add_decided_cycle(db, card, cycle, pr_number, decision, reviewer, body, delivery)
  assert(db:run([[INSERT INTO review_cycles (card_id, cycle, pr_number, opened_at, decision, reviewer, body,
    delivery, decided_at) VALUES ($1, $2, $3, now(), $4, $5, $6, $7, now())]], card, cycle, pr_number,
    decision, reviewer, body, delivery))
end

function M.record_delivery(db, forge, delivery, event, card, outcome, identity)
  assert(db:run([[INSERT INTO webhook_deliveries (forge, delivery, event, card_id, outcome, at, identity)
    VALUES ($1, $2, $3, $4, $5, now(), $6)]], forge, delivery, event, card, outcome, identity))
end

return M
