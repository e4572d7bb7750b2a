-- orket.store.pg.verifications: orket.store.verifications' operations on PostgreSQL (same
-- names and shapes: passed as 0/1, times as ISO text).
local json = require "cjson.safe"
local iso = require("orket.store.pgdb").iso

local M = {}

local ALL = "id, card_id, run_id, handin, passed::int AS passed, command, reason, code, signal, wall_ms, output, layers, "
  .. iso("at")

function M.checks(db, card_id)
  local row = db:row("SELECT verification::text AS verification FROM cards WHERE id = $1", card_id)
  return row and row.verification and json.decode(row.verification) or nil
end

function M.sandbox_checks(db, card_id)
  local spec = M.checks(db, card_id)
  local list = type(spec) == "table" and spec.sandbox_checks
  return type(list) == "table" and next(list) ~= nil and list or nil
end

function M.insert(db, v)
  local _, id = assert(db:run([[INSERT INTO verifications (card_id, run_id, handin, passed, command, reason, code, signal,
    wall_ms, output, layers, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, clock_timestamp()) RETURNING id]],
    v.card, v.run, v.handin, v.passed and true or false, v.command, v.reason, v.code, v.signal, v.wall_ms, v.output,
    v.layers))
  return id
end

function M.last(db, card_id)
  return db:row("SELECT " .. ALL .. " FROM verifications WHERE card_id = $1 ORDER BY id DESC LIMIT 1", card_id)
end

function M.results(db, card_id)
  return db:rows("SELECT " .. ALL .. " FROM verifications WHERE card_id = $1 ORDER BY id", card_id) or {}
end

return M
