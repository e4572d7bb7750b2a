-- orket.sandboxes.recheck: the acceptance checks run again while a rock's bug-fix phase is
-- open (docs/sandbox.md, *The bug-fix phase*). Every bug_fix.recheck_interval_ms of the
-- phase's clock, the rock's done issues that have sandbox_checks are checked against the
-- newest healthy sandbox of main of the project's folder (orket.sandboxes.deploy's
-- accept_after, as after a deploy); a failure becomes a bug of the phase, one per card
-- while it is open (a failure seen again is a comment on it: orket.actions.acceptance).
-- Each pass is journaled on the rock
-- (bugfix_recheck). orket.sandboxes.phase's tick calls it through its `recheck` option, so
-- that the phase does not depend on the checks that depend on it.
local board_mod = require "orket.board"
local sj = require "orket.store.journal_reads"
local sandboxes = require "orket.store.sandboxes"
local sv = require "orket.store.verifications"
local deploy = require "orket.sandboxes.deploy"
local checks = require "orket.actions.sandbox_checks"
local service = require "orket.sandboxes.service"
local uv = require "luv"

local M = {}

M.CARDS_MAX = 64 -- a rock's cards checked in one pass (the oldest first)

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- when the rock's checks last ran (a pass, or the phase's start) on the phase's clock
local function last_pass(db, p)
  local passes = sj.card_event_data(db, p.rock_id, "bugfix_recheck")
  local last = passes[#passes]
  return math.max(p.started_at, last and tonumber(last.t) or 0)
end

-- the newest healthy sandbox of main of the folder dir: {id=, socket=, home=, commit=} | nil.
-- Only dir's: a store several folders share holds each folder's sandboxes, which run their
-- own checkout (the agents' tools pick the same way: orket.engine.sandboxtool).
local function serving(db, dir)
  local real = uv.fs_realpath(dir or ".") or dir or "."
  local r = service.pick(sandboxes.list(db, false), real, true)
  local home = r and service.dir_of(r)
  if not home then return nil end
  return { id = r.id, socket = r.socket, home = home, commit = r.commit_id, services = service.sockets(r) }
end

-- the rock's done issues with sandbox_checks, oldest first, at most CARDS_MAX
local function checked_cards(db, board, rock)
  local out = {}
  for _, c in ipairs(board:list { type = "issue", rock = rock } or {}) do
    if c.status == "done" and sv.sandbox_checks(db, c.id) then out[#out + 1] = c.id end
    if #out >= M.CARDS_MAX then break end
  end
  return out
end

--- due(db, phases, {settings=bug_fix, clock=, now=, filed=, project=, dir=}) -> {{rock=, sandbox=,
--- cards=, failing=, skipped={{card=, name=, why=}...} (checks that could not run here)}...}: for each open phase whose pass is due, the checks of its rock's
--- done issues against the newest healthy sandbox of main of the project's folder dir (nil:
--- the current directory); what they filed is added to filed
--- ({card=, duplicate=, rock=, source="acceptance"}). A phase with no healthy sandbox or no
--- checked card waits (its health checks speak for it). Runs in a task; raises on a store
--- error.
function M.due(db, phases, o)
  local every = o.settings and o.settings.recheck_interval_ms
  local out = {}
  if not every or every <= 0 then return out end
  local board = board_mod.open(db)
  for _, p in ipairs(phases) do
    if o.now >= last_pass(db, p) + every / 1000 then
      local sb = serving(db, o.dir)
      local ids = sb and checked_cards(db, board, p.rock_id) or {}
      if #ids > 0 then
        local res = deploy.accept_after { db = db, board = board, settings = o.project or {}, sandbox = sb, cards = ids,
          send_back = true }
        local failing, skipped = {}, {}
        for _, r in ipairs(res) do
          if not (r.result and r.result.ok) then failing[#failing + 1] = r.card end
          for _, k in ipairs(checks.skipped(r.result)) do
            skipped[#skipped + 1] = { card = r.card, name = k.name, why = k.why }
          end
          if r.outcome == "bug" and r.followup then
            o.filed[#o.filed + 1] = { card = r.followup, duplicate = r.duplicate and true or false, rock = p.rock_id,
              source = "acceptance" }
          end
        end
        db:event { kind = "bugfix_recheck", card = p.rock_id, actor = "orket", data = { t = o.now, at = iso(o.now),
          sandbox = sb.id, cards = ids, failing = failing } }
        out[#out + 1] = { rock = p.rock_id, sandbox = sb.id, cards = ids, failing = failing, skipped = skipped }
      end
    end
  end
  return out
end

return M
