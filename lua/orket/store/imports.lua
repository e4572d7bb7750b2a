-- orket.store.imports: the writes of `orket import` (cards defined by epics/ files, their
-- dependencies, acceptance checks and the record of the files read) as named operations
-- op(db, ...); run them inside the import's one transaction. A failing statement raises.
-- Written once for both backends (orket.store.dialect). A card's created time is the
-- dialect's `created`: on PostgreSQL the clock, not the transaction's time, so that the
-- cards of one import keep the order they were written in (it has no rowid to order by).
local M = {}

--- cards(db) -> every card {id, type, parent, status}
function M.cards(db)
  return assert(db:rows("SELECT id, type, parent, status FROM cards"))
end

--- verifications(db) -> {card id -> its acceptance checks' JSON text} of the cards that have
--- some (the text as the store gives it back: compare it decoded)
function M.verifications(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT id, " .. db.dialect.json("verification")
      .. " FROM cards WHERE verification IS NOT NULL"))) do
    out[r.id] = r.verification
  end
  return out
end

--- dependencies(db) -> every dependency {card_id, depends_on}, by card and position
function M.dependencies(db)
  return assert(db:rows("SELECT card_id, depends_on FROM dependencies ORDER BY card_id, position"))
end

--- insert_card(db, c): a card as its file defines it, created now. c: {id, type, parent,
--- name, summary, description, note, requirements, acceptance, priority, seat,
--- department, source}
function M.insert_card(db, c)
  assert(db:run("INSERT INTO cards (id, type, parent, name, summary, description, note, requirements, "
    .. "acceptance, priority, seat, department, source, created_at, updated_at) VALUES "
    .. "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " .. db.dialect.created .. ", " .. db.dialect.now .. ")",
    c.id, c.type, c.parent, c.name, c.summary, c.description, c.note, c.requirements,
    c.acceptance, c.priority, c.seat, c.department, c.source))
end

--- update_card(db, c): the defined fields of card c.id (as insert_card's) replaced, now;
--- status and history are kept
function M.update_card(db, c)
  assert(db:run("UPDATE cards SET parent = ?, name = ?, summary = ?, description = ?, note = ?, "
    .. "requirements = ?, acceptance = ?, priority = ?, seat = ?, department = ?, source = ?, "
    .. "updated_at = " .. db.dialect.now .. " WHERE id = ?", c.parent, c.name, c.summary, c.description,
    c.note, c.requirements, c.acceptance, c.priority, c.seat, c.department, c.source, c.id))
end

--- clear_dependencies(db, card): the card depends on nothing
function M.clear_dependencies(db, card)
  assert(db:run("DELETE FROM dependencies WHERE card_id = ?", card))
end

--- add_dependency(db, card, depends_on, position): kept when it exists already
function M.add_dependency(db, card, depends_on, position)
  assert(db:run("INSERT INTO dependencies (card_id, depends_on, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    card, depends_on, position))
end

--- set_verification(db, card, json_text): the issue's acceptance checks (nil: none)
function M.set_verification(db, card, json_text)
  assert(db:run("UPDATE cards SET verification = " .. db.dialect.json_param .. " WHERE id = ?", json_text, card))
end

--- replace_files(db, files): the record of the files read, {{rel=, digest=}...}, replaces
--- the last import's, read now
function M.replace_files(db, files)
  assert(db:run("DELETE FROM imported_files"))
  for _, f in ipairs(files) do
    assert(db:run("INSERT INTO imported_files (path, digest, imported_at) VALUES (?, ?, " .. db.dialect.now .. ")",
      f.rel, f.digest))
  end
end

--- files(db) -> {[path] = digest} of the last import's files, and whether there was any
function M.files(db)
  local known, any = {}, false
  for _, r in ipairs(assert(db:rows("SELECT path, digest FROM imported_files"))) do
    known[r.path] = r.digest
    any = true
  end
  return known, any
end

return M
