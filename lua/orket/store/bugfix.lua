-- orket.store.bugfix: the bug-fix phases (one per rock) and the bugs filed in them, as named
-- operations op(db, ...) -> plain Lua values for orket.sandboxes.phase. Times are
-- orket.clock's seconds, given by the caller (a clock tests move). Also the few card
-- writes a phase makes that the board has no verb for: a rock or an epic filed by the
-- phase, and an issue moved to another epic. A failing statement raises. Written once for
-- both backends (orket.store.dialect).
local M = {}

-- a bug is open while its card is not in one of these
local FINAL = "('done', 'canceled', 'archived')"

--- start(db, rock, at, seen_event) -> the new phase's id | nil when the rock has one already
function M.start(db, rock, at, seen_event)
  local n, id = assert(db:run("INSERT INTO bugfix_phases (rock_id, status, started_at, seen_event) "
    .. "VALUES (?, 'open', ?, ?) ON CONFLICT (rock_id) DO NOTHING" .. db.dialect.returning_id, rock, at, seen_event))
  if n == 0 then return nil end
  return id
end

--- get(db, rock) -> the rock's phase | nil
function M.get(db, rock)
  return db:row("SELECT * FROM bugfix_phases WHERE rock_id = ?", rock)
end

--- list(db, open_only) -> the phases, oldest first
function M.list(db, open_only)
  if open_only then return assert(db:rows("SELECT * FROM bugfix_phases WHERE status = 'open' ORDER BY id")) end
  return assert(db:rows("SELECT * FROM bugfix_phases ORDER BY id"))
end

--- unstarted(db) -> the ids of the rocks that are done and have no phase yet
function M.unstarted(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id FROM cards WHERE type = 'rock' AND status = 'done' AND id NOT IN "
    .. "(SELECT rock_id FROM bugfix_phases) ORDER BY created_at, " .. db.dialect.order))) do
    out[#out + 1] = r.id
  end
  return out
end

--- last_event(db) -> the journal's newest event id (0 when empty)
function M.last_event(db)
  return assert(db:row("SELECT coalesce(max(id), 0) AS n FROM events")).n
end

--- set_epic(db, phase, epic): the epic the phase's bugs are filed under from now on
function M.set_epic(db, phase, epic)
  assert(db:run("UPDATE bugfix_phases SET epic_id = ? WHERE id = ?", epic, phase))
end

--- take_events(db, phase, from, to) -> true when the phase's seen_event moved from `from` to
--- `to` here (false: another process took them first)
function M.take_events(db, phase, from, to)
  return assert(db:run("UPDATE bugfix_phases SET seen_event = ? WHERE id = ? AND seen_event = ?", to, phase, from)) > 0
end

--- finish(db, phase, at, reason, next_rock) -> true when this call ended the open phase
function M.finish(db, phase, at, reason, next_rock)
  return assert(db:run("UPDATE bugfix_phases SET status = 'ended', ended_at = ?, reason = ?, next_rock = ? "
    .. "WHERE id = ? AND status = 'open'", at, reason, next_rock, phase)) > 0
end

--- sandbox_events(db, after, limit) -> the journal's sandbox_unhealthy and sandbox_exit
--- events after that id, oldest first ({id, kind, data (JSON text)})
function M.sandbox_events(db, after, limit)
  return assert(db:rows("SELECT id, kind, " .. db.dialect.json("data") .. " FROM events WHERE id > ? AND kind IN "
    .. "('sandbox_unhealthy', 'sandbox_exit') ORDER BY id LIMIT ?", after, limit))
end

--- insert_bug(db, b): b = {card=, rock=, phase= (or nil), source=, fingerprint=, at=}
function M.insert_bug(db, b)
  assert(db:run("INSERT INTO bugs (card_id, rock_id, phase_id, source, fingerprint, filed_at, seen_at) "
    .. "VALUES (?, ?, ?, ?, ?, ?, ?)", b.card, b.rock, b.phase, b.source, b.fingerprint, b.at, b.at))
end

--- open_by_fingerprint(db, fingerprint) -> the oldest open bug with it {card_id, rock_id,
--- seen} | nil
function M.open_by_fingerprint(db, fingerprint)
  return db:row("SELECT b.card_id, b.rock_id, b.seen FROM bugs b JOIN cards c ON c.id = b.card_id "
    .. "WHERE b.fingerprint = ? AND c.status NOT IN " .. FINAL .. " ORDER BY b.filed_at, b.card_id LIMIT 1", fingerprint)
end

--- seen_again(db, card, at): one more sighting of the bug
function M.seen_again(db, card, at)
  assert(db:run("UPDATE bugs SET seen = seen + 1, seen_at = ? WHERE card_id = ?", at, card))
end

--- times(db, phase) -> the times the phase's bugs were filed, oldest first
function M.times(db, phase)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT filed_at FROM bugs WHERE phase_id = ? ORDER BY filed_at", phase))) do
    out[#out + 1] = r.filed_at
  end
  return out
end

--- bugs(db, phase) -> the phase's bugs with their card's status and parent, oldest first
--- {card_id, rock_id, source, fingerprint, filed_at, seen, status, parent}
function M.bugs(db, phase)
  return assert(db:rows("SELECT b.card_id, b.rock_id, b.source, b.fingerprint, b.filed_at, b.seen, c.status, "
    .. "c.parent FROM bugs b JOIN cards c ON c.id = b.card_id WHERE b.phase_id = ? ORDER BY b.filed_at, b.card_id",
    phase))
end

--- open_cards(db, rock) -> the ids of the rock's issues that are not finished, in creation
--- order (bugs or not: at a phase's end every open issue under the rock moves on)
function M.open_cards(db, rock)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id FROM cards WHERE type = 'issue' AND status NOT IN " .. FINAL
    .. " AND parent IN (SELECT id FROM cards WHERE parent = ? AND type = 'epic') ORDER BY created_at, "
    .. db.dialect.order, rock))) do
    out[#out + 1] = r.id
  end
  return out
end

--- insert_card(db, c): a rock or an epic the phase files, created now, status ready.
--- c: {id, type, parent, name, summary, description, seat}
function M.insert_card(db, c)
  assert(db:run("INSERT INTO cards (id, type, parent, name, summary, description, priority, seat, created_at, "
    .. "updated_at) VALUES (?, ?, ?, ?, ?, ?, 2, ?, " .. db.dialect.created .. ", " .. db.dialect.now .. ")", c.id, c.type, c.parent, c.name,
    c.summary, c.description, c.seat))
end

--- move_card(db, id, parent): the card now sits under parent (its id and history kept)
function M.move_card(db, id, parent)
  assert(db:run("UPDATE cards SET parent = ?, updated_at = " .. db.dialect.now .. " WHERE id = ?", parent, id))
end

--- last_seat(db, rock) -> the seat of the newest issue under the rock that has one | nil
function M.last_seat(db, rock)
  local r = db:row("SELECT seat FROM cards WHERE type = 'issue' AND seat IS NOT NULL AND parent IN "
    .. "(SELECT id FROM cards WHERE parent = ? AND type = 'epic') ORDER BY created_at DESC, " .. db.dialect.order
    .. " DESC LIMIT 1", rock)
  return r and r.seat
end

return M
