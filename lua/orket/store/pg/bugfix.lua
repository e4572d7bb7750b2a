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

function M.unstarted(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id FROM cards WHERE type = 'rock' AND status = 'done' AND id NOT IN "
    .. "(SELECT rock_id FROM bugfix_phases) ORDER BY created_at, id"))) do
    out[#out + 1] = r.id
  end
  return out
end

function M.sandbox_events(db, after, limit)
  return assert(db:rows("SELECT id, kind, data::text AS data FROM events WHERE id > $1 AND kind IN "
    .. "('sandbox_unhealthy', 'sandbox_exit') ORDER BY id LIMIT $2", after, limit))
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
