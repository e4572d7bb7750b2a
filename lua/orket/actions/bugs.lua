-- orket.actions.bugs: filing a bug under a rock, the one home of the rule (docs/sandbox.md,
-- *The bug-fix phase*): an issue in the rock's bugs epic, counted in its open bug-fix phase
-- (a phase that ended hands it to its phase-2 rock), or, with a fingerprint an open bug
-- has, a comment on that bug instead of a twin. People file them (orket bug, the API), and
-- so do the sandboxes' health checks and acceptance checks. Rows: orket.store.bugfix.
local clock_mod = require "orket.clock"
local board_mod = require "orket.board"
local cards = require "orket.store.cards"
local ops = require "orket.store.bugfix"
local inert = require "orket.inert"

local M = {}

M.TITLE_MAX = 500        -- characters of a bug's title (its card's summary)
M.BODY_MAX = 65536       -- characters of its body (the card's description)
M.FINGERPRINT_MAX = 256

local FINAL = board_mod.FINAL

--- iso(t) -> t (seconds) as an ISO 8601 UTC time | nil
function M.iso(t) return t and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) or nil end
local iso = M.iso

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

--- check_store(db, fname): raises bad argument #1 to fname unless db is a store
function M.check_store(db, fname)
  if type(db) ~= "table" or type(db.rows) ~= "function" then
    error(string.format("bad argument #1 to '%s' (store expected)", fname), 3)
  end
end

-- The rock bugs of `id` go to: the rock itself, or the phase-2 rock its ended phase handed
-- its open bugs to (and so on). nil, msg, CODE for an unknown card or one not a rock.
local function bug_rock(db, id)
  local c = cards.head(db, id)
  if not c then return nil, string.format("bug: no rock %q", id), "ENOENT" end
  if c.type ~= "rock" then
    return nil, string.format("bug: %s is an %s; bugs are filed under a rock", id, c.type), "EINVAL"
  end
  for _ = 1, 64 do
    local p = ops.get(db, id)
    if not (p and p.status == "ended" and p.next_rock) then return id, p end
    id = p.next_rock
  end
  return id, ops.get(db, id)
end

--- bug_rock(db, rock) -> the rock the bugs filed under rock go to (rock itself while it has
--- no ended phase, else the phase-2 rock its phase handed them to, and so on), its phase |
--- nil, msg, CODE for an unknown card or one not a rock
M.bug_rock = bug_rock

--- free_id(db, base [, keep [, sep]]) -> the first of base, base-2, base-3, ... (sep: "-")
--- that names no card, or that names a card keep(c) accepts, and whether it exists
function M.free_id(db, base, keep, sep)
  for n = 1, 1000 do
    local id = n == 1 and base or (base .. (sep or "-") .. n)
    local c = cards.head(db, id)
    if not c then return id, false end
    if keep and keep(c) then return id, true end
  end
  error("no free card id after " .. base .. "-1000")
end

--- new_card(db, card): a card of the bug-fix phase's making (a rock, an epic), journaled
function M.new_card(db, c)
  ops.insert_card(db, c)
  db:event { kind = "create", card = c.id, actor = "orket", data = { parent = c.parent, by = "bugfix" } }
end

-- The epic the rock's bugs go to now: an unfinished "ROCK-bugs" epic under it, else a new
-- one (a finished epic takes no new issue): ROCK-bugs.2, ... (its issues are ROCK-bugs-N).
local function bug_epic(db, rock, p)
  local id, exists = M.free_id(db, rock .. "-bugs", function(c)
    return c.type == "epic" and c.parent == rock and not FINAL[c.status]
  end, ".")
  if not exists then
    M.new_card(db, { id = id, type = "epic", parent = rock, name = "Bugs",
      summary = "Bugs found in " .. rock .. (p and "'s bug-fix phase" or "") })
  end
  if p and p.epic_id ~= id then ops.set_epic(db, p.id, id) end
  return id
end

--- file_bug(db, {rock=, title=, body=, fingerprint=, source=, author=, seat=, clock=})
---   -> card_id, duplicate | nil, msg, CODE
--- Files a bug under the rock (an issue in its bugs epic, ready for the team), counted in
--- the rock's bug-fix phase when one is open. A rock whose phase ended hands it to the
--- phase-2 rock. With a fingerprint, an open bug that has the same one gets the report as
--- a comment instead (duplicate = true). source: who found it ("person" by default,
--- "health", "acceptance"); author: the name its card and comments carry. EINVAL for an
--- empty or too long title, a too long body or fingerprint; ENOENT for an unknown rock.
function M.file_bug(db, o)
  M.check_store(db, "file_bug")
  if type(o) ~= "table" then error("bad argument #2 to 'file_bug' (table expected)", 2) end
  for _, f in ipairs { "rock", "title" } do
    if type(o[f]) ~= "string" then error(string.format("bad argument #2 to 'file_bug' (field '%s' must be a string)", f), 2) end
  end
  for _, f in ipairs { "body", "fingerprint", "source", "author", "seat" } do
    if o[f] ~= nil and type(o[f]) ~= "string" then
      error(string.format("bad argument #2 to 'file_bug' (field '%s' must be a string)", f), 2)
    end
  end
  local title = trim(o.title)
  if title == "" then return nil, "bug: a bug needs a title (what goes wrong)", "EINVAL" end
  -- (in characters, as POST /v1/bugs' schema counts them)
  local chars = inert.chars
  if chars(title) > M.TITLE_MAX then
    return nil, string.format("bug: the title is %d characters, more than %d; put the details in the body",
      chars(title), M.TITLE_MAX), "EINVAL"
  end
  local body = o.body and o.body:find("%S") and o.body or nil
  if body and chars(body) > M.BODY_MAX then
    return nil, string.format("bug: the body is %d characters, more than %d", chars(body), M.BODY_MAX), "EINVAL"
  end
  local fp = o.fingerprint and o.fingerprint:find("%S") and o.fingerprint or nil
  if fp and chars(fp) > M.FINGERPRINT_MAX then
    return nil, string.format("bug: the fingerprint is %d characters, more than %d", chars(fp), M.FINGERPRINT_MAX),
      "EINVAL"
  end
  local at = (o.clock or clock_mod.system()):now()
  local author = o.author or "orket"
  local b = board_mod.open(db)
  return db:tx(function()
    local rock, p, code = bug_rock(db, o.rock)
    if not rock then return nil, p, code end
    if fp then
      local same = ops.open_by_fingerprint(db, fp)
      if same then
        local c, cerr, ccode = b:comment(same.card_id, { author = author,
          body = "Seen again (" .. iso(at) .. "): " .. title .. (body and ("\n\n" .. body) or "") })
        if not c then return nil, cerr, ccode end
        ops.seen_again(db, same.card_id, at)
        return same.card_id, true
      end
    end
    local epic = bug_epic(db, rock, p)
    local card, cerr, ccode = b:create { parent = epic, summary = title, description = body, name = "bug",
      seat = o.seat or ops.last_seat(db, rock), actor = { seat = author } }
    if not card then return nil, cerr, ccode end
    local open = p and p.status == "open" and p or nil
    ops.insert_bug(db, { card = card.id, rock = rock, phase = open and open.id, source = o.source or "person",
      fingerprint = fp, at = at })
    db:event { kind = "bug_filed", card = card.id, actor = author, data = { rock = rock, phase = open and open.id,
      source = o.source or "person", fingerprint = fp } }
    return card.id, false
  end)
end

return M
