-- orket.store.pg.bugfix: orket.store.bugfix's operations on PostgreSQL (same names and
-- shapes; the phase's times are orket.clock's seconds, as on SQLite).
local M = {}

local FINAL = "('done', 'canceled', 'archived')"

function M.start(db, rock, at, seen_event)
  local n, id = assert(db:run("INSERT INTO bugfix_phases (rock_id, status, started_at, seen_event) "
    .. "VALUES ($1, 'open', $2, $3) ON CONFLICT (rock_id) DO NOTHING RETURNING id", rock, at, seen_event))
  if n == 0 then return nil end
  return id
end

function M.get(db, rock)
  return db:row("SELECT * FROM bugfix_phases WHERE rock_id = $1", rock)
end

function M.list(db, open_only)
  if open_only then return assert(db:rows("SELECT * FROM bugfix_phases WHERE status = 'open' ORDER BY id")) end
  return assert(db:rows("SELECT * FROM bugfix_phases ORDER BY id"))
end

function M.unstarted(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id FROM cards WHERE type = 'rock' AND status = 'done' AND id NOT IN "
    .. "(SELECT rock_id FROM bugfix_phases) ORDER BY created_at, id"))) do
    out[#out + 1] = r.id
  end
  return out
end

function M.last_event(db)
  return assert(db:row("SELECT coalesce(max(id), 0)::bigint AS n FROM events")).n
end

function M.set_epic(db, phase, epic)
  assert(db:run("UPDATE bugfix_phases SET epic_id = $1 WHERE id = $2", epic, phase))
end

function M.take_events(db, phase, from, to)
  return assert(db:run("UPDATE bugfix_phases SET seen_event = $1 WHERE id = $2 AND seen_event = $3", to, phase,
    from)) > 0
end

function M.finish(db, phase, at, reason, next_rock)
  return assert(db:run("UPDATE bugfix_phases SET status = 'ended', ended_at = $1, reason = $2, next_rock = $3 "
    .. "WHERE id = $4 AND status = 'open'", at, reason, next_rock, phase)) > 0
end

function M.sandbox_events(db, after, limit)
  return assert(db:rows("SELECT id, kind, data::text AS data FROM events WHERE id > $1 AND kind IN "
    .. "('sandbox_unhealthy', 'sandbox_exit') ORDER BY id LIMIT $2", after, limit))
end

function M.insert_bug(db, b)
  assert(db:run("INSERT INTO bugs (card_id, rock_id, phase_id, source, fingerprint, filed_at, seen_at) "
    .. "VALUES ($1, $2, $3, $4, $5, $6, $7)", b.card, b.rock, b.phase, b.source, b.fingerprint, b.at, b.at))
end

function M.open_by_fingerprint(db, fingerprint)
  return db:row("SELECT b.card_id, b.rock_id, b.seen FROM bugs b JOIN cards c ON c.id = b.card_id "
    .. "WHERE b.fingerprint = $1 AND c.status NOT IN " .. FINAL .. " ORDER BY b.filed_at, b.card_id LIMIT 1",
    fingerprint)
end

function M.seen_again(db, card, at)
  assert(db:run("UPDATE bugs SET seen = seen + 1, seen_at = $1 WHERE card_id = $2", at, card))
end

function M.times(db, phase)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT filed_at FROM bugs WHERE phase_id = $1 ORDER BY filed_at", phase))) do
    out[#out + 1] = r.filed_at
  end
  return out
end

function M.bugs(db, phase)
  return assert(db:rows("SELECT b.card_id, b.rock_id, b.source, b.fingerprint, b.filed_at, b.seen, c.status, "
    .. "c.parent FROM bugs b JOIN cards c ON c.id = b.card_id WHERE b.phase_id = $1 ORDER BY b.filed_at, b.card_id",
    phase))
end

function M.open_cards(db, rock)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id FROM cards WHERE type = 'issue' AND status NOT IN " .. FINAL
    .. " AND parent IN (SELECT id FROM cards WHERE parent = $1 AND type = 'epic') ORDER BY created_at, id", rock))) do
    out[#out + 1] = r.id
  end
  return out
end

function M.insert_card(db, c)
  assert(db:run("INSERT INTO cards (id, type, parent, name, summary, description, priority, seat, created_at, "
    .. "updated_at) VALUES ($1, $2, $3, $4, $5, $6, 2, $7, clock_timestamp(), now())", c.id, c.type, c.parent, c.name,
    c.summary, c.description, c.seat))
end

function M.move_card(db, id, parent)
  assert(db:run("UPDATE cards SET parent = $1, updated_at = now() WHERE id = $2", parent, id))
end

function M.last_seat(db, rock)
  local r = db:row("SELECT seat FROM cards WHERE type = 'issue' AND seat IS NOT NULL AND parent IN "
    .. "(SELECT id FROM cards WHERE parent = $1 AND type = 'epic') ORDER BY created_at DESC, id DESC LIMIT 1", rock)
  return r and r.seat
end

return M
