-- orket.store.pg.imports: orket.store.imports' operations on PostgreSQL (same names and
-- shapes); run them inside the import's one transaction. A card's created_at is
-- clock_timestamp(), not the transaction's now(): there is no rowid to order the cards of
-- one import by, and the clock moves between its statements, so ordering by created_at
-- keeps the order they were written in.
local M = {}

function M.insert_card(db, c)
  assert(db:run([[INSERT INTO cards (id, type, parent, name, summary, description, note, requirements,
    acceptance, priority, seat, department, source, created_at, updated_at) VALUES
    ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, clock_timestamp(), now())]],
    c.id, c.type, c.parent, c.name, c.summary, c.description, c.note, c.requirements,
    c.acceptance, c.priority, c.seat, c.department, c.source))
end

function M.update_card(db, c)
  assert(db:run([[UPDATE cards SET parent = $1, name = $2, summary = $3, description = $4, note = $5,
    requirements = $6, acceptance = $7, priority = $8, seat = $9, department = $10, source = $11,
    updated_at = now() WHERE id = $12]], c.parent, c.name, c.summary, c.description,
    c.note, c.requirements, c.acceptance, c.priority, c.seat, c.department, c.source, c.id))
end

function M.add_dependency(db, card, depends_on, position)
  assert(db:run([[INSERT INTO dependencies (card_id, depends_on, position) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING]], card, depends_on, position))
end

function M.set_verification(db, card, json_text)
  assert(db:run("UPDATE cards SET verification = $1::jsonb WHERE id = $2", json_text, card))
end

function M.replace_files(db, files)
  assert(db:run("DELETE FROM imported_files"))
  for _, f in ipairs(files) do
    assert(db:run("INSERT INTO imported_files (path, digest, imported_at) VALUES ($1, $2, now())", f.rel, f.digest))
  end
end

return M
