-- orket.store.leases: which worker (`orket worker`) works which card, as named operations
-- op(db, ...) on the SQLite store (the leases table, migration 14). A lease is live until
-- its expires_at; the worker renews it while it works and checks it in each step's
-- transaction. Once it lapses another worker may take the card over (its claim writes its
-- own name in the row), and from then on the first worker writes nothing more for the card.
-- A lapsed row that still names the worker was taken by nobody: renewal and the check keep
-- it the worker's (a wall clock stepped forward past the lease, NTP or a VM resumed, lapses
-- every lease at once). Operations never open a transaction of their own:
-- claim() must run inside the caller's (BEGIN IMMEDIATE serializes claimers on SQLite, as
-- FOR UPDATE SKIP LOCKED does in the PostgreSQL twin, store/pg/leases.lua).
-- Contract: docs/workers.md.
local cjson = require "cjson"

local M = {}

-- The statuses a turn works: a card in any other status needs no lease.
M.WORKABLE = { ready = true, in_progress = true, code_review = true, ready_for_testing = true }

-- now + ms in the store's time format (orket_now(): the transaction's time)
local EXPIRES = "strftime('%Y-%m-%dT%H:%M:%fZ', orket_now(), printf('%+.3f seconds', ?/1000.0))"
-- A card's lease ends ms from the statement that claims or renews it ('now': the clock as
-- the statement runs), not from the transaction's time: that can be taken long before (a
-- scheduling round's claims come after its earlier cards' preparation), and the worker
-- dates its own deadline (orket.engine.lease) from just before the statement. Dated from
-- the transaction, the store's end came before the worker's, which started an effect on a
-- card another worker had already taken over and recovered: the effect ran twice.
local LEASE_END = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('%+.3f seconds', ?/1000.0))"

--- name_of(holder) -> the worker's name in a lease's holder: orket.engine.lease writes
--- "NAME#TOKEN" (16 hex digits, the keeper's own), so that two processes of one name are
--- two holders; events and listings show NAME
function M.name_of(holder)
  return holder and (holder:match("^(.*)#" .. ("%x"):rep(16) .. "$") or holder)
end

local function check_ttl(ttl_ms, fname)
  if math.type(ttl_ms) ~= "integer" or ttl_ms < 1 then
    error("bad argument to '" .. fname .. "' (ttl_ms: positive integer expected)", 3)
  end
end

--- claim(db, {worker=, run=, ids=, limit=, ttl_ms=}) -> array of {card=, taken_from=}:
--- up to limit of ids, in the order given (the engine's), that are in a workable status and
--- have no live lease of another worker, now leased to worker for run until ttl_ms from
--- now. A card worker holds already is renewed and listed; taken_from names the worker
--- whose expired lease was taken over (the card is resumed from the journal).
function M.claim(db, o)
  if type(o) ~= "table" or type(o.worker) ~= "string" or type(o.ids) ~= "table" then
    error("bad argument #2 to 'claim' ({worker=, run=, ids=, limit=, ttl_ms=} expected)", 2)
  end
  check_ttl(o.ttl_ms, "claim")
  local out, limit = {}, o.limit or #o.ids
  -- a run no longer in the store (restored from a backup taken before it) claims nothing:
  -- its lease would break the store's reference to it (the worker ends the run: runset)
  if o.run and #o.ids > 0 and not db:row("SELECT 1 AS x FROM runs WHERE id = ?", o.run) then return out end
  for _, id in ipairs(o.ids) do
    if #out >= limit then break end
    local r = db:row([[SELECT c.status, l.worker, l.expires_at > orket_now() AS live
      FROM cards c LEFT JOIN leases l ON l.card_id = c.id WHERE c.id = ?]], id)
    if r and M.WORKABLE[r.status] and (r.worker == nil or r.live == 0 or r.worker == o.worker) then
      assert(db:run([[INSERT INTO leases (card_id, worker, run_id, acquired_at, expires_at)
        VALUES (?1, ?2, ?3, orket_now(), ]] .. LEASE_END:gsub("%?", "?4") .. [[)
        ON CONFLICT (card_id) DO UPDATE SET worker = excluded.worker, run_id = excluded.run_id,
          acquired_at = CASE WHEN leases.worker = excluded.worker THEN leases.acquired_at
                             ELSE excluded.acquired_at END,
          expires_at = excluded.expires_at]], id, o.worker, o.run, o.ttl_ms))
      out[#out + 1] = { card = id, taken_from = (r.worker and r.worker ~= o.worker) and M.name_of(r.worker) or nil }
    end
  end
  return out
end

-- cards (an array of card ids, or nil: every card) as a JSON array for json_each
local function check_cards(cards, fname)
  if cards ~= nil and type(cards) ~= "table" then
    error("bad argument #4 to '" .. fname .. "' (array of card ids or nil expected)", 3)
  end
  return cards and cjson.encode(cards) or nil
end

--- renew(db, worker, ttl_ms[, cards]) -> set {card_id = true} of the cards worker still
--- holds (of cards, an array of ids, when given), each now leased until ttl_ms from now. A
--- lapsed lease whose row still names worker is renewed too: nobody took it over (a taker's
--- claim writes its own name), as run leases are (run_renew); a wall clock stepped past the
--- lease lost every card of a lone worker, whose model calls were charged and asked again.
--- cards: the keeper's own, so that a row it forgot (a release whose DELETE failed) lapses.
--- One statement, which the keeper runs outside any transaction (orket.engine.lease:
--- renew): it commits whole, so no stall of the worker's can keep the rows locked after it.
function M.renew(db, worker, ttl_ms, cards)
  check_ttl(ttl_ms, "renew")
  local list = check_cards(cards, "renew")
  local held = {}
  if cards and #cards == 0 then return held end
  for _, r in ipairs(assert(db:rows("UPDATE leases SET expires_at = " .. LEASE_END:gsub("%?", "?1")
      .. " WHERE worker = ?2 AND (?3 IS NULL OR card_id IN (SELECT value FROM json_each(?3))) RETURNING card_id",
      ttl_ms, worker, list))) do
    held[r.card_id] = true
  end
  return held
end

--- holds(db, card, worker) -> true when card's lease row names worker, live or lapsed:
--- nobody took a lapsed one over (renew says why), so a step written now is still the
--- worker's alone; a taker's claim, serialized with the step, renames the row first or after
function M.holds(db, card, worker)
  return db:row("SELECT 1 AS y FROM leases WHERE card_id = ? AND worker = ?", card, worker) ~= nil
end

--- release(db, worker[, card]) -> number of leases dropped (card's, or all of worker's)
function M.release(db, worker, card)
  if card then return (assert(db:run("DELETE FROM leases WHERE worker = ? AND card_id = ?", worker, card))) end
  return (assert(db:run("DELETE FROM leases WHERE worker = ?", worker)))
end

--- live(db[, run]) -> array of {card=, worker=, holder=, run=, acquired_at=, expires_at=}:
--- the live leases (of run), by card id; worker the holder's name, holder as stored
--- (NAME#TOKEN: one process of that name)
function M.live(db, run)
  local out = {}
  for _, r in ipairs(assert(db:rows([[SELECT card_id, worker, run_id, acquired_at, expires_at FROM leases
      WHERE expires_at > orket_now() AND (?1 IS NULL OR run_id = ?1) ORDER BY card_id]], run))) do
    out[#out + 1] = { card = r.card_id, worker = M.name_of(r.worker), holder = r.worker, run = r.run_id,
      acquired_at = r.acquired_at, expires_at = r.expires_at }
  end
  return out
end

--- others(db, run, worker) -> how many live leases on run's cards other workers hold
function M.others(db, run, worker)
  return db:row([[SELECT COUNT(*) AS n FROM leases WHERE run_id = ? AND worker <> ?
    AND expires_at > orket_now()]], run, worker).n
end

--- namesakes(db, worker) -> how many live leases other holders of worker's name hold
--- (worker: a keeper's "NAME#TOKEN"): another live process was given the same name
function M.namesakes(db, worker)
  local name = M.name_of(worker)
  return db:row([[SELECT COUNT(*) AS n FROM leases WHERE expires_at > orket_now() AND worker <> ?1
    AND length(worker) = length(?2) + 17 AND substr(worker, 1, length(?2) + 1) = ?2 || '#']], worker, name).n
end

--- queued(db) -> array of {id=, target=} of the runs left to the workers (recorded with
--- data.workers, still running), oldest first
function M.queued(db)
  return assert(db:rows([[SELECT id, target FROM runs WHERE status = 'running'
    AND json_extract(data, '$.workers') = 1 ORDER BY id]]))
end

--- queued_for(db, target) -> id of the unfinished run of target left to the workers | nil
function M.queued_for(db, target)
  local r = db:row([[SELECT id FROM runs WHERE status = 'running' AND target = ?
    AND json_extract(data, '$.workers') = 1 ORDER BY id LIMIT 1]], target)
  return r and r.id
end

--- requeue(db, id) -> whether run id, left to the workers (recorded with data.workers) and
--- ended interrupted, stalled or failed, is left to them again (running, its end cleared),
--- as when it was recorded: a resume hands it back to the workers, which join it as a new one
function M.requeue(db, id)
  return assert(db:rows([[UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?
    AND status IN ('interrupted', 'stalled', 'failed') AND json_extract(data, '$.workers') = 1 RETURNING id]], id))[1] ~= nil
end

-- Run leases (the run_leases table): the process executing a whole run (`orket serve`)
-- holds its run's row while it works, so every process of the store, whatever its folder,
-- sees the run live. Contract: docs/store.md, "Several servers".

--- run_take(db, run, owner, ttl_ms[, over]) -> nil | {owner=}: run leased to owner until
--- ttl_ms from now, unless another owner's lease on it is live (that holder is returned).
--- over: a holder known dead (its process is gone) whose live lease is taken all the same.
function M.run_take(db, run, owner, ttl_ms, over)
  check_ttl(ttl_ms, "run_take")
  local r = db:row("SELECT owner, expires_at > orket_now() AS live FROM run_leases WHERE run_id = ?", run)
  if r and r.live == 1 and r.owner ~= owner and r.owner ~= over then return { owner = r.owner } end
  assert(db:run([[INSERT INTO run_leases (run_id, owner, acquired_at, expires_at)
    VALUES (?1, ?2, orket_now(), ]] .. EXPIRES:gsub("%?", "?3") .. [[)
    ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at,
      expires_at = excluded.expires_at]], run, owner, ttl_ms))
  return nil
end

--- run_renew(db, owner, ttl_ms, runs) -> set {run_id = true} of runs (an array of run ids)
--- that owner still holds, each now leased until ttl_ms from now. A lapsed lease whose row
--- still names owner is renewed too: nobody took it (a resume elsewhere takes the row,
--- run_take, which names its owner). Only runs: a run the process gave up while the store
--- was away (its drop's DELETE failed) still names it, and renewing every row of the owner
--- kept that run live, with no engine, for as long as the process had another run.
function M.run_renew(db, owner, ttl_ms, runs)
  check_ttl(ttl_ms, "run_renew")
  if type(runs) ~= "table" then error("bad argument #4 to 'run_renew' (array of run ids expected)", 2) end
  local held = {}
  if #runs == 0 then return held end
  for _, r in ipairs(assert(db:rows("UPDATE run_leases SET expires_at = " .. EXPIRES
      .. " WHERE owner = ? AND run_id IN (SELECT value FROM json_each(?)) RETURNING run_id", ttl_ms, owner,
      cjson.encode(runs)))) do
    held[r.run_id] = true
  end
  return held
end

--- run_fence(db, run, owner, ttl_ms) -> whether owner still holds run's lease (renewed
--- until ttl_ms from now), in the caller's transaction: a step written after it is written
--- by the lease's holder (SQLite's BEGIN IMMEDIATE, PostgreSQL's row lock, keep a take out
--- until the step commits)
function M.run_fence(db, run, owner, ttl_ms)
  check_ttl(ttl_ms, "run_fence")
  return assert(db:rows("UPDATE run_leases SET expires_at = " .. EXPIRES:gsub("%?", "?3")
    .. " WHERE run_id = ?1 AND owner = ?2 RETURNING run_id", run, owner, ttl_ms))[1] ~= nil
end

--- run_drop(db, run, owner) -> number of leases dropped (owner's on run)
function M.run_drop(db, run, owner)
  return (assert(db:run("DELETE FROM run_leases WHERE run_id = ? AND owner = ?", run, owner)))
end

--- run_holders(db) -> array of {run=, owner=} of the live run leases, by run id
function M.run_holders(db)
  local out = {}
  for _, r in ipairs(assert(db:rows([[SELECT run_id, owner FROM run_leases WHERE expires_at > orket_now()
      ORDER BY run_id]]))) do
    out[#out + 1] = { run = r.run_id, owner = r.owner }
  end
  return out
end

return require("orket.store.backend").twin("leases", M)
