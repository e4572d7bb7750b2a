-- orket.actions.acceptance: a card's sandbox checks' result on the board (docs/sandbox.md,
-- *Acceptance checks*). Each result is journaled (sandbox_check); a failure after a deploy
-- goes back to the card with the checks' output and the sandbox's last log lines: a card
-- still open is sent back to in_progress; a done one (final) becomes a bug of its rock's
-- bug-fix phase when the rock has one (orket.actions.bugs), else a follow-up issue in
-- its epic (a finished one's: in a follow-ups epic next to it), either carrying the same
-- checks. The answer is data. Uses orket.board and orket.store.imports (the follow-up's
-- checks).
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local bugfix_rows = require "orket.store.bugfix"
local bugs = require "orket.actions.bugs"
local cjson = require "cjson.safe"
local verifications = require "orket.store.verifications"
local sandbox_checks = require "orket.actions.sandbox_checks"

local M = {}

M.FOLLOWUP = "Sandbox checks fail for %s" -- the follow-up issue's summary (found again by it)
M.FOLLOWUPS_EPIC = "%s-followups" -- a finished epic's follow-ups go to this epic (EPIC-followups.2, ...)
M.LOG_TAIL = 4000 -- bytes of the sandbox log in a comment
M.EVENT_LOG = 2000 -- in the journal

local FINAL = { done = true, canceled = true, archived = true }

local function clip(s, n)
  s = s or ""
  if #s > n then return "[...]" .. s:sub(-n) end
  return s
end

--- text(res, sandbox_id [, commit]) -> the failure as a comment: each check's line, then the log's tail
function M.text(res, sandbox_id, commit)
  local skipped = #sandbox_checks.skipped(res)
  local lines = { string.format("%s%s: acceptance checks %s%s.", sandbox_id and ("Sandbox " .. tostring(sandbox_id))
    or "The sandbox",
    commit and (" (commit " .. commit:sub(1, 12) .. ")") or "", res.ok and "passed" or "failed",
    skipped > 0 and string.format(", %d skipped: they could not run here", skipped) or "") }
  for _, r in ipairs(res.results or {}) do
    lines[#lines + 1] = string.format("- %s %s: %s%s", sandbox_checks.verdict(r), r.name, r.detail or "",
      r.screenshot and (" (screenshot " .. r.screenshot .. ")") or "")
  end
  if not res.ok and res.log and res.log ~= "" then
    lines[#lines + 1] = "\nThe sandbox's last log lines:\n```text\n" .. clip(res.log, M.LOG_TAIL) .. "\n```"
  end
  return table.concat(lines, "\n")
end

-- the event's data: each check's outcome, the log's tail on a failure
local function event_data(res, sandbox_id, extra)
  local results = {}
  for i, r in ipairs(res.results or {}) do
    results[i] = { kind = r.kind, name = r.name, ok = r.ok, skipped = r.skipped, detail = r.detail, status = r.status,
      screenshot = r.screenshot, ms = r.ms }
  end
  local d = { sandbox = sandbox_id, passed = res.ok, results = results,
    log = not res.ok and clip(res.log, M.EVENT_LOG) or nil }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

-- the rock above card when it has a bug-fix phase (open, or ended: file_bug hands an ended
-- one's bugs to its phase-2 rock) | nil
local function phase_rock(db, board, card)
  local c = board:ancestor(card, "rock")
  if c and bugfix_rows.get(db, c.id) then return c.id end
  return nil
end

-- an open follow-up of the card in its epic (the same summary), so a second failure adds
-- to it rather than filing another
local function open_followup(board, epic, card_id)
  local want = string.format(M.FOLLOWUP, card_id)
  for _, c in ipairs(board:list { type = "issue", epic = epic } or {}) do
    if c.summary == want and not FINAL[c.status] then return c end
  end
  return nil
end

-- The epic a done card's follow-up goes to: its own while it takes issues; a finished epic
-- takes none, and with deploy = "epic" (or the merge that finishes the epic) the checks
-- run only once it is done, so its failures went nowhere but a comment on a done card: an
-- unfinished follow-ups epic next to it (under the same rock), made when there is none
local function followup_epic(db, board, card)
  local epic = board:get(card.parent)
  if not (epic and FINAL[epic.status]) then return card.parent end
  local id, exists = bugs.free_id(db, string.format(M.FOLLOWUPS_EPIC, card.parent), function(c)
    return c.type == "epic" and c.parent == epic.parent and not FINAL[c.status]
  end, ".")
  if not exists then
    bugfix_rows.insert_card(db, { id = id, type = "epic", parent = epic.parent, name = "Follow-ups",
      summary = string.format("Follow-ups of %s: acceptance checks that fail after it was done", card.parent) })
    db:event { kind = "create", card = id, actor = "orket", data = { parent = epic.parent, by = "acceptance" } }
  end
  return id
end

--- record{db=, board=, card=, sandbox=, commit=, result=, run_id=, send_back=bool} (commit:
--- what the sandbox runs, named in the event and the comment)
--- -> {code = "passed" | "recorded" | "sent_back" | "bug" | "followup" | "commented", card=,
---     followup= (the bug or follow-up issue), duplicate= (a bug already open: commented),
---     skipped= (checks that could not run here, {{name=, why=}...}: never a failure; with
---     send_back, said in a comment on the card)}
---  | nil, msg, CODE. In one transaction: a sandbox_check event; with send_back, a failure's
--- comment on the card and then: an open card moved to in_progress (by the engine), a done
--- one a bug of its rock's bug-fix phase when there is one, else a follow-up issue in its
--- epic, or in EPIC-followups when the epic is finished (or a comment on the open follow-up
--- there), with the card's checks; "commented" (the comment alone, why said) only when
--- no follow-up could be filed.
function M.record(o)
  local db, board, res, id = o.db, o.board, o.result, o.card
  return db:tx(function()
    local card = board:get(id)
    if not card then return nil, "board: no card " .. tostring(id), "ENOENT" end
    local out = { code = res.ok and "passed" or "recorded", card = id, skipped = sandbox_checks.skipped(res) }
    if res.ok and o.send_back and #out.skipped > 0 then
      -- checks that could not run (no browser here) are no failure of the card, and no bug:
      -- the card says which were left unchecked, and why
      assert(board:comment(id, { author = "orket", body = M.text(res, o.sandbox, o.commit) }))
    end
    if not res.ok and o.send_back then
      local body = M.text(res, o.sandbox, o.commit)
      assert(board:comment(id, { author = "orket", body = body }))
      if not FINAL[card.status] and board:check_transition(id, "in_progress", { actor = board_mod.ENGINE }) then
        local t, terr, tcode = board:transition(id, "in_progress", { actor = board_mod.ENGINE,
          note = "sandbox checks failed" })
        if not t then return nil, terr, tcode end
        out.code = "sent_back"
      elseif phase_rock(db, board, card) then
        -- the rock is in (or past) its bug-fix phase: the failure is one of its bugs, filed
        -- once while it is open (the same fingerprint again is a comment on it)
        local rock = phase_rock(db, board, card)
        local bug, dup, bcode = bugs.file_bug(db, { rock = rock, title = string.format(M.FOLLOWUP, id),
          body = body, fingerprint = "sandbox_check:" .. id, source = "acceptance", seat = card.seat })
        if not bug then return nil, dup, bcode end
        if not dup then
          -- the bug carries the card's checks, so its own merge runs them again
          local spec = verifications.checks(db, id)
          imports.set_verification(db, bug, cjson.encode { sandbox_checks = spec and spec.sandbox_checks })
        end
        out.code, out.followup, out.duplicate = "bug", bug, dup
      elseif card.parent then
        local epic = followup_epic(db, board, card)
        local f = open_followup(board, card.parent, id) or (epic ~= card.parent and open_followup(board, epic, id))
        if f then
          assert(board:comment(f.id, { author = "orket", body = body }))
          out.code, out.followup = "followup", f.id
        else
          local made, merr = board:create { parent = epic, summary = string.format(M.FOLLOWUP, id),
            description = string.format("%s is done and merged, but its acceptance checks fail on the sandbox "
              .. "deployed from main. Fix main so they pass; they run again on the next deploy.\n\n%s", id, body),
            requirements = card.requirements, acceptance = card.acceptance, seat = card.seat, actor = board_mod.ENGINE }
          if made then
            -- the follow-up carries the card's checks, so its own merge runs them again
            local spec = verifications.checks(db, id)
            imports.set_verification(db, made.id, cjson.encode { sandbox_checks = spec and spec.sandbox_checks })
            out.code, out.followup = "followup", made.id
          else
            out.code, out.why = "commented", merr
          end
        end
      else
        out.code = "commented"
      end
    end
    db:event { kind = "sandbox_check", card = id, run = o.run_id, actor = "orket",
      data = event_data(res, o.sandbox, { commit = o.commit, outcome = out.code, followup = out.followup, why = out.why }) }
    return out
  end)
end

return M
