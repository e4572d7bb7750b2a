-- orket.store.forge: pull requests, review cycles and webhook deliveries (the git forge's
-- tables) as named operations op(db, ...) -> plain Lua values; a failing write raises.
-- Used by orket.engine.pull_request (opening) and orket.serve.webhooks (people's decisions).
-- Written once for both backends (orket.store.dialect); times as ISO text. A read that
-- fails raises too: answered as "none", a forge's delivery read as not seen was applied
-- again, and a pull request read as naming no card had its review recorded as ignored, so
-- the forge's own redelivery was then a duplicate and the person's decision was lost.
local cjson = require "cjson.safe"
local backend = require "orket.store.backend"
local one, all = backend.row, backend.rows

local M = {}

--- pull_request(db, card) -> the card's pull_requests row (every column) | nil
function M.pull_request(db, card)
  local d = db.dialect
  return one(db, "SELECT card_id, forge, repo, number, url, head, " .. d.time("created_at") .. ", " .. d.time("updated_at")
    .. " FROM pull_requests WHERE card_id = ?", card)
end

--- last_take_in(db, card) -> the id of the card's last "take_in" event, 0 when none
function M.last_take_in(db, card)
  local r = one(db, "SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'take_in'", card)
  return r and tonumber(r.id) or 0
end

-- The card's events of kind (and the SQL condition more, with its parameters), oldest first,
-- each {id=, actor=, data=} with data decoded (nil when it is not an object): the reads below
-- all walk one card's events of one kind by the card's index.
local function card_events(db, card, kind, more, ...)
  local out = {}
  for _, r in ipairs(all(db, "SELECT id, actor, " .. db.dialect.json("data") .. " FROM events WHERE card_id = ? "
    .. "AND kind = ?" .. (more or "") .. " ORDER BY id", card, kind, ...)) do
    local d = cjson.decode(r.data)
    out[#out + 1] = { id = tonumber(r.id), actor = r.actor, data = type(d) == "table" and d or nil }
  end
  return out
end

--- last_take_in_failure(db, card) -> the data {from=, head=, error=, code=} of the card's
--- last "take_in_failed" event (a take-in whose merge failed: the remote's head and the
--- card's), with event = that event's id | nil
function M.last_take_in_failure(db, card)
  local r = one(db, "SELECT id, " .. db.dialect.json("data") .. " FROM events WHERE card_id = ? "
    .. "AND kind = 'take_in_failed' ORDER BY id DESC LIMIT 1", card)
  local d = r and cjson.decode(r.data)
  if type(d) ~= "table" then return nil end
  d.event = tonumber(r.id)
  return d
end

--- moved_by_person_since(db, card, id) -> true when a person moved the card (a "transition"
--- event by = "person") after the event id
function M.moved_by_person_since(db, card, id)
  for _, e in ipairs(card_events(db, card, "transition", " AND id > ?", id)) do
    if e.data and e.data.by == "person" then return true end
  end
  return false
end

-- The data of the card's events of kind by reviewer (the actor) about that refusal (its
-- identity, orket.forge.identity, and reason), oldest first
local function refusal_events(db, card, kind, identity, reviewer, reason)
  local out = {}
  for _, e in ipairs(card_events(db, card, kind, " AND actor = ?", reviewer)) do
    local d = e.data
    if d and d.identity == identity and d.reason == reason then
      d.event = e.id
      out[#out + 1] = d
    end
  end
  return out
end

--- refusal_said(db, card, identity, reviewer, reason) -> true when a "webhook" event of the
--- card says that review (its identity, orket.forge.identity), by that reviewer (the event's
--- actor), was refused for that reason already. The reviewer is matched too: a Gitea review
--- has no id, and its identity (pull request, head, type, text) is the same for two people
--- approving the same head with the same text, each of whom is told.
function M.refusal_said(db, card, identity, reviewer, reason)
  if not identity or not reviewer then return false end
  return #refusal_events(db, card, "webhook", identity, reviewer, reason) > 0
end

--- refusal_comment(db, card, identity, reviewer, reason) -> the data of the last
--- "forge_comment" event of that refusal's pull request comment (as refusal_said matches it:
--- {state = "posting" | "posted" | "failed", at = os.time() of the claim, delivery, number,
--- text, ...}), with event = its id | nil when none
function M.refusal_comment(db, card, identity, reviewer, reason)
  if not identity or not reviewer then return nil end
  local list = refusal_events(db, card, "forge_comment", identity, reviewer, reason)
  return list[#list]
end

--- delivery_comments(db, forge, delivery) -> {{card=, reviewer=, identity=, reason=}...}:
--- the refusals whose pull request comment a "forge_comment" event claimed for that delivery
--- (its id), each once. Read through the card its webhook_deliveries row names (a claim is
--- recorded with its delivery, on the refused card): every duplicate delivery asks, and the
--- events' kind has no index.
function M.delivery_comments(db, forge, delivery)
  local out, seen = {}, {}
  local dr = one(db, "SELECT card_id FROM webhook_deliveries WHERE forge = ? AND delivery = ?", forge, delivery)
  if not dr or dr.card_id == nil then return out end
  for _, e in ipairs(card_events(db, dr.card_id, "forge_comment")) do
    local d = e.data
    if d and d.forge == forge and d.delivery == delivery then
      local key = table.concat({ tostring(e.actor), tostring(d.identity), tostring(d.reason) }, "\n")
      if not seen[key] then
        seen[key] = true
        out[#out + 1] = { card = dr.card_id, reviewer = e.actor, identity = d.identity, reason = d.reason }
      end
    end
  end
  return out
end

--- pushed_heads(db, card) -> the heads Orket pushed for the card's review: its pull
--- request's recorded head and each review cycle's ({sha...}, no duplicates)
function M.pushed_heads(db, card)
  local out = {}
  for _, r in ipairs(all(db, "SELECT head FROM pull_requests WHERE card_id = ? AND head IS NOT NULL UNION "
    .. "SELECT head FROM review_cycles WHERE card_id = ? AND head IS NOT NULL", card, card)) do
    out[#out + 1] = r.head
  end
  return out
end

--- pull_request_link(db, card) -> {number=, url=, head=, repo=} of the card's pull request | nil
function M.pull_request_link(db, card)
  return one(db, "SELECT number, url, head, repo FROM pull_requests WHERE card_id = ?", card)
end

--- save_pull_request(db, card, forge, repo, number, url, head): the card's row, added or
--- updated (a nil number or url keeps the one stored)
function M.save_pull_request(db, card, forge, repo, number, url, head)
  local now = db.dialect.now
  -- the casts: PostgreSQL cannot tell a parameter's type from coalesce with a NULL
  assert(db:run([[INSERT INTO pull_requests (card_id, forge, repo, number, url, head, created_at, updated_at)
    VALUES (?1, ?2, ?3, CAST(?4 AS BIGINT), CAST(?5 AS TEXT), ?6, ]] .. now .. ", " .. now .. [[)
    ON CONFLICT (card_id) DO UPDATE SET number = coalesce(CAST(?4 AS BIGINT), pull_requests.number),
    url = coalesce(CAST(?5 AS TEXT), pull_requests.url), head = ?6, updated_at = ]] .. now,
    card, forge, repo, number, url, head))
end

--- forget_pull_request(db, card): the card's pull request is over (number and url cleared)
function M.forget_pull_request(db, card)
  assert(db:run("UPDATE pull_requests SET number = NULL, url = NULL WHERE card_id = ?", card))
end

--- card_of_pull_request(db, number, repo) -> the card whose pull request has that number in
--- repo (or in no recorded repo) | nil
function M.card_of_pull_request(db, number, repo)
  local r = one(db, "SELECT card_id FROM pull_requests WHERE number = ? AND (repo IS NULL OR repo = CAST(? AS TEXT))",
    number, repo)
  return r and r.card_id or nil
end

--- review_cycles(db, card) -> the card's cycles {cycle, pr_number, decision, reviewer, body,
--- opened_at, decided_at}, oldest first
function M.review_cycles(db, card)
  local d = db.dialect
  return all(db, "SELECT cycle, pr_number, decision, reviewer, body, " .. d.time("opened_at") .. ", "
    .. d.time("decided_at") .. " FROM review_cycles WHERE card_id = ? ORDER BY cycle", card)
end

--- next_cycle(db, card) -> the number the card's next review cycle takes (1 for the first)
function M.next_cycle(db, card)
  return one(db, "SELECT coalesce(max(cycle), 0) + 1 AS n FROM review_cycles WHERE card_id = ?", card).n
end

--- open_cycle(db, card, cycle, pr_number, head): a review cycle opened now, undecided
function M.open_cycle(db, card, cycle, pr_number, head)
  assert(db:run([[INSERT INTO review_cycles (card_id, cycle, pr_number, head, opened_at)
    VALUES (?, ?, ?, ?, ]] .. db.dialect.now .. ")", card, cycle, pr_number, head))
end

--- latest_cycle(db, card) -> the number of the card's latest review cycle, decided or not
--- (0 when none)
function M.latest_cycle(db, card)
  local n = one(db, "SELECT coalesce(max(cycle), 0) AS n FROM review_cycles WHERE card_id = ?", card).n
  return math.tointeger(tonumber(n)) or 0
end

--- undecided_cycle(db, card) -> the id of the card's latest undecided review cycle | nil
function M.undecided_cycle(db, card)
  local r = one(db, [[SELECT id FROM review_cycles WHERE card_id = ? AND decision IS NULL
    ORDER BY cycle DESC LIMIT 1]], card)
  return r and r.id or nil
end

--- decide_cycle(db, id, decision, reviewer, body, delivery): the cycle decided now
function M.decide_cycle(db, id, decision, reviewer, body, delivery)
  assert(db:run([[UPDATE review_cycles SET decision = ?, reviewer = ?, body = ?, delivery = ?,
    decided_at = ]] .. db.dialect.now .. " WHERE id = ?", decision, reviewer, body, delivery, id))
end

--- add_decided_cycle(db, card, cycle, pr_number, decision, reviewer, body, delivery): a
--- cycle opened and decided now
function M.add_decided_cycle(db, card, cycle, pr_number, decision, reviewer, body, delivery)
  local now = db.dialect.now
  assert(db:run([[INSERT INTO review_cycles (card_id, cycle, pr_number, opened_at, decision, reviewer, body,
    delivery, decided_at) VALUES (?, ?, ?, ]] .. now .. ", ?, ?, ?, ?, " .. now .. ")", card, cycle, pr_number,
    decision, reviewer, body, delivery))
end

--- delivery_seen(db, forge, delivery[, identity]) -> true when a delivery was recorded under
--- that delivery id or that event identity (orket.forge.identity)
function M.delivery_seen(db, forge, delivery, identity)
  local row = one(db, "SELECT delivery FROM webhook_deliveries WHERE forge = ? AND (delivery = ? OR identity = ?)",
    forge, delivery, identity)
  return row ~= nil
end

--- record_delivery(db, forge, delivery, event, card, outcome[, identity, event_at]): received
--- now; event_at: the event's own time (Unix seconds), when its body has one
function M.record_delivery(db, forge, delivery, event, card, outcome, identity, event_at)
  assert(db:run([[INSERT INTO webhook_deliveries (forge, delivery, event, card_id, outcome, at, identity, event_at)
    VALUES (?, ?, ?, ?, ?, ]] .. db.dialect.now .. ", ?, ?)", forge, delivery, event, card, outcome, identity,
    event_at))
end

--- prune_deliveries(db, before) -> how many: deletes the deliveries whose event's own time is
--- before `before` (Unix seconds); those without one are kept
function M.prune_deliveries(db, before)
  return (assert(db:run("DELETE FROM webhook_deliveries WHERE event_at < ?", before)))
end

return M
