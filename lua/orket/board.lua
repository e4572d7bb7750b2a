-- orket.board: cards (rock > epic > issue) over the store. Every status change goes through
-- the C state machine (orket.c.statemachine) and writes its journal event in the same
-- transaction. Cards returned are plain tables (see docs/board.md for the fields).
-- board:get answers from a cache of cards stamped with the connection's change counters
-- (store cards_stamp): any change to cards by another connection or outside this board,
-- and any rollback, empties it; this board's own writes evict just the card they change.
-- board.run: the run working the board (set by the engine around a run, nil otherwise);
-- every event the board writes carries it, so a run's transcript is found by run id.
local sm = require "orket.c.statemachine"
local card_value = require "orket.card"
local cards = require "orket.store.cards"
local imports = require "orket.store.imports"
local comments = require "orket.store.comments"
local sj = require "orket.store.journal_reads"
local ready = require "orket.ready"
local json = require "cjson.safe"
local inert = require "orket.inert"

local M = {}
local Board = {}
Board.__index = Board

M.PRIORITY = { high = 3, medium = 2, low = 1 }
-- the most characters a person's long text on a card may have (a description, a comment, an
-- answer), as orket serve's writes (their schemas count code points, at most 4 bytes each),
-- orket comment and an epic file take it
M.TEXT_MAX = 65536
M.NOTE_MAX = 4096 -- characters of a reason or a note (a cancel's, a refusal's, a retry's, an approval's)
-- the most cards one card may depend on, as a new card's POST /v1/cards and an epic file's
-- card take it (orket.import): each is in the card's every view and model request
M.DEPENDS_MAX = 100
M.PRIORITY_MIN, M.PRIORITY_MAX = 0, 10

--- ID_RULE: what a card id may be, said by every refusal of one. The work of card ID lives
--- on the git branch orket/ID, so the id keeps git's branch-name rules (check-ref-format)
--- as well: no "..", and no "." or ".lock" at its end; and at most 100 bytes, ASCII, as the
--- repository's layer takes a card (core/gitrepo: gitrepo_card_valid, the same rule).
M.ID_RULE = "a letter or digit, then letters, digits, '_', '.', '-' (ASCII, 100 at most), without '..' "
  .. "and not ending in '.' or '.lock' (it names the card's git branch)"

--- id_ok(id) -> whether id keeps ID_RULE: the one check of import's ids, explicit or
--- derived (a file name's too: a name of other letters gives an id no branch could take),
--- and of create's
function M.id_ok(id)
  return #id <= 100 and id:match("^[%w][%w_.%-]*$") ~= nil and not id:find("..", 1, true)
    and id:sub(-1) ~= "." and id:sub(-5) ~= ".lock"
end

--- CASE_RULE: why two card ids differing only in case (API-1, api-1) cannot both be made:
--- said by every refusal of one (create, import, orket validate).
M.CASE_RULE = "a card's id names its directory and git branch, which on a case-insensitive filesystem "
  .. "(macOS, Windows) would be one"

--- DEVICE_RULE: why an id that is a Windows device name (aux, COM1, nul.txt) cannot be
--- made: said by every refusal of one (create, import, orket validate).
M.DEVICE_RULE = "a card's id names its directory and git branch (orket/ID), and Windows can make no file or "
  .. "folder of a device's name (CON, PRN, AUX, NUL, COM1-9, LPT1-9; in any case, with any extension)"

--- device_name(id) -> the Windows device name id is ("AUX" for "aux" or "Aux.txt") | nil:
--- Windows takes the name before the first "." for the device, whatever the case. The
--- workspace's rule, which its writes refuse such names by (core/workspace.c ws_device_name).
M.device_name = require("orket.workspace").device_name

-- Up to this many ids are looked up one query each (create's one id); more, by one read of
-- every id (an import's new cards), so neither is quadratic.
local CASE_QUERIES = 8

--- case_twins(db, ids) -> {[id] = the id of a card on the board differing from it only in
--- case} for those of ids that have one (a card is no twin of itself). The one check of
--- CASE_RULE against the board: create's (an explicit id and a generated one) and import's.
--- Folded as Lua folds (ASCII, as id_ok's ids are), whatever the database's locale.
function M.case_twins(db, ids)
  local want, twins, n = {}, {}, 0
  for _, id in ipairs(ids) do
    local k = id:lower()
    if not want[k] then want[k], n = {}, n + 1 end
    table.insert(want[k], id)
  end
  local function seen(other)
    for _, id in ipairs(want[other:lower()] or {}) do
      if id ~= other and not twins[id] then twins[id] = other end
    end
  end
  if n == 0 then return twins end
  if n <= CASE_QUERIES then
    for k in pairs(want) do
      for _, r in ipairs(cards.case_fold(db, k)) do seen(r.id) end
    end
  else
    for _, r in ipairs(cards.ids(db)) do seen(r.id) end
  end
  return twins
end

--- priority(v) -> integer | nil, msg: whole numbers in [0, 10], or "High"/"Medium"/"Low"
--- (any case). A fraction is refused: the board shows a priority by its name (high, medium,
--- low) or its number, and 2.5 would read as "medium (2.5)", neither the one nor the other.
function M.priority(v)
  if type(v) == "number" then
    if v ~= v or v < M.PRIORITY_MIN or v > M.PRIORITY_MAX or v ~= math.floor(v) then
      -- a JSON 11 decodes as the float 11.0: said as the file has it
      return nil, string.format("priority must be a whole number from 0 to 10 (3 high, 2 medium, 1 low), not %s",
        math.tointeger(v) or v)
    end
    return math.tointeger(v)
  elseif type(v) == "string" then
    local p = M.PRIORITY[v:lower()]
    if p then return p end
    return nil, string.format("unknown priority %s; use High, Medium, Low or a number", inert.named(v))
  end
  return nil, "priority must be a number or High/Medium/Low, not a " .. type(v)
end

--- open(db) -> board
function M.open(db)
  if type(db) ~= "table" or type(db.rows) ~= "function" then error("bad argument #1 to 'open' (store expected)", 2) end
  -- the cache needs the connection's stamp (SQLite's); without one every get reads the card
  local conn = db.conn
  local stamped = type(conn) == "userdata" or (type(conn) == "table" and conn.cards_stamp ~= nil)
  return setmetatable({ db = db, cache = stamped and {} or nil, cached = 0 }, Board)
end

--- board:set_run(run_id | nil): the run whose work the board's next writes are; their
--- events carry its id (run_id) until set_run(nil).
function Board:set_run(id)
  if id ~= nil and math.type(id) ~= "integer" then
    error("bad argument #1 to 'set_run' (run id integer or nil expected, got " .. type(id) .. ")", 2)
  end
  self.run = id
end

local CACHE_MAX = 4096 -- cards kept; past it the cache starts over

-- Empties the cache unless the stamp is the one its cards were read under. false when
-- the store cannot stamp (then nothing is cached).
function Board:_fresh()
  if not self.cache then return false end
  local gen, dv = self.db.conn:cards_stamp()
  if not gen then return false end
  if gen ~= self.cache_gen or dv ~= self.cache_dv or self.cached >= CACHE_MAX then
    if type(gen) == "table" then
      -- PostgreSQL's stamp is the transaction (store/pgdb.lua): the boards working in it
      -- (the engine's, a tool's) share what it read under the same count of card writes
      local shared = gen.card_cache
      if not shared or shared.dv ~= dv then
        shared = { dv = dv, cards = {} }
        gen.card_cache = shared
      end
      self.cache, self.cached = shared.cards, 0
    else
      self.cache, self.cached = {}, 0
    end
    self.cache_gen, self.cache_dv = gen, dv
  end
  return true
end

-- After this board changed card id (and nothing else in cards since _fresh): drop that
-- card and take the new stamp, keeping the others.
function Board:_changed(id, fresh)
  if not self.cache then return end
  if fresh then
    self.cache[id] = nil
    self.cache_gen, self.cache_dv = self.db.conn:cards_stamp()
  else
    self.cache, self.cached, self.cache_gen = {}, 0, nil
  end
end

local copy_card = card_value.copy
-- copy_card(c) -> a copy of c with its own depends_on (the order's list hands out copies too)
M.copy_card = copy_card

local function check_id(id, fname)
  if type(id) ~= "string" then
    error(string.format("bad argument #1 to '%s' (card id string expected, got %s)", fname, type(id)), 3)
  end
end

local function not_found(id)
  return nil, string.format("board: no card %s", inert.named(id)), "ENOENT"
end

-- The card as stored (the cache's own table when cached): read it, never change it.
function Board:_peek(id)
  -- a card cached under the connection's current stamp: found without _fresh's call (the
  -- board's reads are most of a step's, and most are of cards it holds)
  local cache = self.cache
  if cache then
    local c = cache[id]
    if c then
      local gen, dv = self.db.conn:cards_stamp()
      if gen and gen == self.cache_gen and dv == self.cache_dv and self.cached < CACHE_MAX then return c, true end
    end
  end
  local fresh = self:_fresh()
  local c = fresh and self.cache[id]
  if not c then
    c = cards.get(self.db, id)
    if c and fresh then
      self.cache[id] = c
      self.cached = self.cached + 1
    end
  end
  return c, fresh
end

--- board:get(id) -> card | nil, msg, "ENOENT"
function Board:get(id)
  check_id(id, "get")
  local c = self:_peek(id)
  if not c then return not_found(id) end
  return copy_card(c)
end

--- board:ancestor(card, kind) -> the card of type kind that card is or is under (its epic,
--- its rock) | nil; the walk up stops after 8 parents (the board is three levels deep)
function Board:ancestor(card, kind)
  local c, guard = card, 0
  while c and c.type ~= kind and c.parent and guard < 8 do
    c, guard = self:get(c.parent), guard + 1
  end
  return c and c.type == kind and c or nil
end

--- board:status(id) -> the card's status | nil, msg, "ENOENT": as get(id).status, without
--- copying the card
function Board:status(id)
  check_id(id, "status")
  local c = self:_peek(id)
  if not c then return not_found(id) end
  return c.status
end

local function one_or_many(v, fname, field, valid)
  if v == nil then return nil end
  local list = type(v) == "table" and v or { v }
  for _, x in ipairs(list) do
    if type(x) ~= "string" then
      error(string.format("bad argument #1 to '%s' (field '%s' must be a string or strings)", fname, field), 3)
    end
    if valid and not valid[x] then return nil, x end
  end
  return list
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local STATUSES = set_of(sm.statuses())
local TYPES = set_of(sm.types())

-- Keeps a copy of each listed card not cached yet (the caller's tables are its own: a
-- board move changes its cached card in place), under the stamp taken before the read: a
-- change to cards after it moves the stamp, and the next get empties the cache. When the
-- stamp moved during the read already, nothing is copied for that. At most half the cache,
-- so that keeping them does not make it start over.
local function keep_listed(self, list, gen, dv)
  local gen2, dv2 = self.db.conn:cards_stamp()
  if gen2 ~= gen or dv2 ~= dv or gen ~= self.cache_gen or dv ~= self.cache_dv then return end
  local cache, n, max = self.cache, self.cached, CACHE_MAX // 2
  for i = 1, #list do
    if n >= max then break end
    local c = list[i]
    if cache[c.id] == nil then
      cache[c.id] = copy_card(c)
      n = n + 1
    end
  end
  self.cached = n
end

--- board:list{status=, epic=, rock=, type=} [, keep] -> array of cards (creation order)
---   | nil, msg, "ESTATUS"|"ETYPE". status and type take one name or an array of names;
---   epic= keeps the epic's issues, rock= the rock's epics and their issues. keep: the
---   cards read also fill get's cache (copies), for a caller that will get them next.
function Board:list(q, keep)
  if keep then
    -- the stamp before the read: a card read after a change it does not show is not kept
    local fresh = self:_fresh()
    local gen, dv = self.cache_gen, self.cache_dv
    local list, err, code = self:list(q)
    if list and fresh then keep_listed(self, list, gen, dv) end
    return list, err, code
  end
  q = q or {}
  if type(q) ~= "table" then error("bad argument #1 to 'list' (table expected)", 2) end
  local statuses, bad = one_or_many(q.status, "list", "status", STATUSES)
  if bad then return nil, string.format("board: unknown status %q", bad), "ESTATUS" end
  local types, badt = one_or_many(q.type, "list", "type", TYPES)
  if badt then return nil, string.format("board: unknown card type %q", badt), "ETYPE" end
  if q.epic ~= nil then check_id(q.epic, "list") end
  if q.rock ~= nil then check_id(q.rock, "list") end
  return cards.list(self.db, { status = statuses, type = types, epic = q.epic, rock = q.rock })
end

--- board:children(id) -> cards whose parent is id
function Board:children(id)
  check_id(id, "children")
  return cards.children(self.db, id)
end

--- board:ready([epic_or_rock_id]) -> array of runnable issues in scheduling order
---   | nil, msg, "ENOENT"|"EINVAL".
--- Runnable: status ready and every dependency done, and every dependency of its epic.
--- Order: priority (high first), then the number of unfinished cards that transitively
--- depend on it (more first), then age. The order is orket.ready's, the scheduler's too.
function Board:ready(scope_id)
  local scope
  if scope_id ~= nil then
    check_id(scope_id, "ready")
    scope = cards.head(self.db, scope_id)
    if not scope then return not_found(scope_id) end
    if scope.type == "issue" then
      return nil, string.format("board: %s is an issue; give an epic or a rock", scope_id), "EINVAL"
    end
  end
  return ready.new(self, scope):list()
end

local function check_actor(opts, fname)
  if type(opts) ~= "table" then error(string.format("bad argument #3 to '%s' (options table expected)", fname), 3) end
  local a = opts.actor
  if type(a) ~= "table" or type(a.seat) ~= "string" then
    error(string.format("bad argument #3 to '%s' (actor = {seat=string, roles={...}} expected)", fname), 3)
  end
  if a.roles ~= nil and type(a.roles) ~= "table" then
    error(string.format("bad argument #3 to '%s' (actor.roles must be a table)", fname), 3)
  end
  if a.by ~= nil and a.by ~= "agent" and a.by ~= "engine" and a.by ~= "person" then
    error(string.format("bad argument #3 to '%s' (actor.by must be \"agent\", \"engine\" or \"person\")", fname), 3)
  end
  return a
end

-- The runtime's own moves (a parent following its issues, a card it blocks or moves on).
M.ENGINE = { seat = "orket", roles = {}, by = "engine" }

-- How many of the cards that c waits for are not done: its own depends_on and, for an
-- issue, its epic's (an epic's dependencies hold back every issue in it).
function Board:open_deps(c)
  local parent = c.type == "issue" and c.parent and self:_peek(c.parent) or nil
  if #c.depends_on == 0 and (not parent or #parent.depends_on == 0) then return 0 end
  return cards.open_dependencies(self.db, c.id, parent and parent.id or c.id)
end

-- The state machine's deps_done for a move of c to `to`: only a start (to in_progress)
-- waits for dependencies, so a move to any other known status skips counting them (a
-- query for a card that has some). Anything else is counted as before: the state machine
-- reads `to` as a C string, so "in_progress\0x" is a start to it.
local function deps_done(self, c, to)
  return (to ~= "in_progress" and STATUSES[to] == true) or self:open_deps(c) == 0
end

-- Work is handed in by the seat that moves a card out of in_progress to one of these; that
-- seat is recorded as worked_by and may not approve the card.
local HANDS_IN = { ready_for_testing = true, code_review = true, waiting_for_developer = true, blocked = true }
-- Sent back for rework: counted in retries.
local REWORK_FROM = { code_review = true, ready_for_testing = true }

--- board:transition(id, to, {actor={seat=, roles={}}, reason=, note=})
---   -> card | nil, msg, CODE. CODE names the refused rule (see docs/board.md); msg says
---   how to fix it. The status change and its "transition" event commit together.
--- board:check_transition(id, to, opts) -> true | nil, msg, CODE: whether transition(id, to,
--- opts) would be allowed now (the same state machine check), without writing anything.
function Board:check_transition(id, to, opts)
  check_id(id, "check_transition")
  local actor = check_actor(opts, "check_transition")
  local c = self:_peek(id) -- only read: no copy
  if not c then return not_found(id) end
  local ok, msg, code = sm.check(c.type, c.status, to, actor.seat, actor.roles, actor.by, opts.reason, c.worked_by,
    deps_done(self, c, to))
  if not ok then return nil, string.format("board: %s: %s", id, msg), code end
  return true
end

local FINAL = card_value.FINAL
M.FINAL = FINAL
local FINAL_LIST = {}
for st in pairs(FINAL) do FINAL_LIST[#FINAL_LIST + 1] = st end
table.sort(FINAL_LIST) -- one statement text

-- Where a parent stands, from its children's statuses: nil while none has started (or it
-- has none), "in_progress" once one has, "done" when every child is finished and at least
-- one is done, "canceled" when every child was canceled or archived (nothing of its work
-- was done). A canceled child does not hold its parent back.
local function derived(rows)
  local total, closed, done, started = 0, 0, 0, false
  for _, r in ipairs(rows) do
    total = total + r.n
    if FINAL[r.status] then closed = closed + r.n end
    if r.status == "done" then done = done + r.n end
    if r.status ~= "ready" and r.status ~= "canceled" and r.status ~= "archived" then started = true end
  end
  if total == 0 then return nil end
  if closed == total then return done > 0 and "done" or "canceled" end
  return started and "in_progress" or nil
end

-- The moves that take a parent from one status to the derived one, through the table.
local PATHS = {
  ready = { in_progress = { "in_progress" }, done = { "in_progress", "done" }, canceled = { "canceled" } },
  in_progress = { done = { "done" }, canceled = { "canceled" } },
  code_review = { done = { "done" }, canceled = { "canceled" } },
}

--- board:follow(id) -> card: brings an epic or a rock in line with its children (see
--- derived above), each move through the state machine as the engine's and journaled like
--- any other; its own parent follows in turn. A move the state machine refuses (an epic
--- whose own dependencies are not done cannot start) is left undone. Issues are unchanged.
function Board:follow(id)
  check_id(id, "follow")
  return self.db:tx(function()
    self:_follow(id)
    return self:get(id)
  end)
end

-- from, to: the child's move that asks (nil: look in any case). Only a child leaving ready
-- or reaching a final status can change where its parent stands, unless the parent is
-- still ready (a board from before parents followed, or one held by its dependencies).
function Board:_follow(id, from, to)
  local p = self:_peek(id)
  if not p or p.type == "issue" or FINAL[p.status] then return end
  -- A parent past ready moves only when every child is final (PATHS): a child's move to a
  -- status that is not cannot move it, whatever the others are. Counting an epic's children
  -- (1,000 rows) on every claim was a third of a turn's transitions at 1,000 issues.
  if to and not FINAL[to] and p.status ~= "ready" then return end
  -- and a child's move to a final status moves it only when it was the last unfinished
  -- one: one child that is not final answers, where counting them all cost a done
  -- card about 130 us at 1,000 issues
  if to and p.status ~= "ready" and cards.has_child_outside(self.db, id, FINAL_LIST) then return end
  local want = derived(cards.child_statuses(self.db, id))
  local path = want and PATHS[p.status] and PATHS[p.status][want]
  if not path then return end
  for _, to in ipairs(path) do
    local note = to == "in_progress" and "its first child started" or to == "done" and "all its children are done"
      or "all its children were canceled"
    if not self:transition(id, to, { actor = M.ENGINE, note = note }) then return end
  end
end

-- transition's transaction: a function of the module with its values as arguments, not a
-- closure made per move
local function move(self, id, to, opts, actor)
  local db = self.db
  local c, fresh = self:_peek(id) -- current: no other writer inside the tx
  if not c then return not_found(id) end
  local before = fresh and self.cache[id] or nil
  local reason = opts.reason
  local ok, msg, code = sm.check(c.type, c.status, to, actor.seat, actor.roles, actor.by, reason, c.worked_by,
    deps_done(self, c, to))
  if not ok then return nil, string.format("board: %s: %s", id, msg), code end
  local from = c.status
  local worked_by = c.worked_by
  if from == "in_progress" and HANDS_IN[to] then worked_by = actor.seat end
  local retry = (to == "in_progress" and REWORK_FROM[from]) and 1 or 0
  -- the time written is the transaction's (conn:now() is what the store gave the row)
  cards.set_status(db, id, to, reason, worked_by, retry)
  self:_changed(id, fresh)
  db:event {
    kind = "transition", card = id, run = self.run, actor = actor.seat,
    data = { from = from, to = to, reason = reason, note = opts.note, roles = actor.roles,
      by = actor.by ~= "agent" and actor.by or nil },
  }
  -- the parent follows its children in the same transaction (a move that starts, ends or
  -- closes the last of them moves it)
  if c.parent then self:_follow(c.parent, from, to) end
  if not before then return self:get(id) end
  -- the card as the UPDATE left it, without reading it back: the cached table itself
  -- is updated (no reader holds it: get and transition hand out copies; a rollback
  -- changes the stamp, which empties the cache)
  before.status, before.wait_reason, before.worked_by, before.updated_at = to, reason, worked_by, db.conn:now()
  if before.retries ~= nil then before.retries = before.retries + retry end
  self.cache[id] = before
  return copy_card(before)
end

function Board:transition(id, to, opts)
  check_id(id, "transition")
  if type(to) ~= "string" then error("bad argument #2 to 'transition' (status string expected)", 2) end
  local actor = check_actor(opts, "transition")
  if opts.reason ~= nil and type(opts.reason) ~= "string" then
    error("bad argument #3 to 'transition' (reason must be a string)", 2)
  end
  if opts.note ~= nil and type(opts.note) ~= "string" then
    error("bad argument #3 to 'transition' (note must be a string)", 2)
  end
  return self.db:tx(move, self, id, to, opts, actor)
end

-- The statuses the scheduler never gives a turn to, and where a retry puts each: a
-- blocked or waiting card back to ready; a card handed in for testing on to review (until
-- verification exists nothing else takes it from there).
local RETRY_TO = { blocked = "ready", waiting_for_developer = "ready", ready_for_testing = "code_review" }
M.RETRY_TO = RETRY_TO

--- board:retry(id, {actor={seat=, roles={}}, note=}) -> card | nil, msg, CODE
--- Gets a card the scheduler cannot schedule moving again, in one transaction: the move
--- (blocked or waiting_for_developer -> ready, ready_for_testing -> code_review, through
--- the state machine like any other), the rework count (retries) back to 0, a "retry" event
--- that records what was reset ({from=, reason=, retries=}; the engine counts a card's turn
--- and token budgets from its last retry), the note as a comment by the actor, and any
--- requirements review filed for the card that is still open archived: the retry answers
--- it. ESTATE for a card in another status.
function Board:retry(id, opts)
  check_id(id, "retry")
  local actor = check_actor(opts, "retry")
  if opts.note ~= nil and type(opts.note) ~= "string" then
    error("bad argument #2 to 'retry' (note must be a string)", 2)
  end
  local db = self.db
  return db:tx(function()
    local c = self:_peek(id)
    if not c then return not_found(id) end
    local to = RETRY_TO[c.status]
    if not to then
      return nil, string.format("board: %s is %s; only a blocked, waiting or ready_for_testing card can be retried",
        id, c.status), "ESTATE"
    end
    local from, reason, retries = c.status, c.wait_reason, c.retries or 0
    local note = opts.note and opts.note:find("%S") and opts.note or nil
    if note then
      local _, cerr, ccode = self:comment(id, { author = actor.seat, body = note })
      if cerr then return nil, cerr, ccode end
    end
    local t, terr, tcode = self:transition(id, to, { actor = actor, note = note or "retry" })
    if not t then return nil, terr, tcode end
    if retries ~= 0 then
      local fresh = self:_fresh()
      cards.reset_retries(db, id)
      self:_changed(id, fresh)
    end
    db:event { kind = "retry", card = id, run = self.run, actor = actor.seat, data = { from = from, reason = reason, retries = retries } }
    for _, d in ipairs(sj.card_event_data(db, id, "requirements_review")) do
      local rr = type(d.issue) == "string" and self:_peek(d.issue)
      if rr and not FINAL[rr.status] then
        local moved, merr, mcode = self:transition(rr.id, "archived", { actor = { seat = actor.seat, roles = actor.roles,
          by = "person" }, note = "answered: " .. id .. " was retried" })
        if not moved then return nil, merr, mcode end
      end
    end
    return self:get(id)
  end)
end

--- board:cancel(id, {actor={seat=, by="person"}, reason=}) -> card | nil, msg, CODE
--- A person ends a card without review: a comment with the reason, the move to canceled
--- (journaled with the actor), and for an epic or a rock every unfinished card under it
--- canceled too, in one transaction. The state machine refuses it to anyone but a person
--- or the engine (EPERSON); EINVAL without a reason; ETERMINAL for a finished card.
function Board:cancel(id, opts)
  check_id(id, "cancel")
  local actor = check_actor(opts, "cancel")
  if type(opts.reason) ~= "string" then error("bad argument #2 to 'cancel' (reason string expected)", 2) end
  if not opts.reason:find("%S") then return nil, "board: a cancel needs a reason", "EINVAL" end
  local db = self.db
  return db:tx(function()
    local c = self:_peek(id)
    if not c then return not_found(id) end
    local t, terr, tcode = self:transition(id, "canceled", { actor = actor, note = opts.reason })
    if not t then return nil, terr, tcode end
    assert(self:comment(id, { author = actor.seat, body = "Canceled: " .. opts.reason }))
    local stack = { id }
    while #stack > 0 do
      local top = table.remove(stack)
      for _, child in ipairs(self:children(top)) do
        if child.type ~= "issue" then stack[#stack + 1] = child.id end
        if not FINAL[child.status] then
          local ok, err, code = self:transition(child.id, "canceled", { actor = actor, note = "its " .. t.type
            .. " " .. id .. " was canceled: " .. opts.reason })
          if not ok then return nil, err, code end
        end
      end
    end
    return self:get(id)
  end)
end

--- board:comment(id, {author=, body=}) -> comment {id, card, author, body, created_at}
---   | nil, msg, "ENOENT"|"EINVAL"
function Board:comment(id, c)
  check_id(id, "comment")
  if type(c) ~= "table" or type(c.author) ~= "string" or type(c.body) ~= "string" then
    error("bad argument #2 to 'comment' ({author=string, body=string} expected)", 2)
  end
  if not c.body:find("%S") then return nil, "board: a comment needs a body", "EINVAL" end
  if not c.author:find("%S") then return nil, "board: a comment needs an author", "EINVAL" end
  local db = self.db
  return db:tx(function()
    if not cards.exists(db, id) then return not_found(id) end
    local cid = comments.insert(db, id, c.author, c.body)
    db:event { kind = "comment", card = id, run = self.run, actor = c.author, data = { comment = cid } }
    return comments.get(db, cid)
  end)
end

--- board:comments(id) -> array of comments, oldest first
function Board:comments(id)
  check_id(id, "comments")
  return comments.of_card(self.db, id)
end

--- board:history(id) -> array of events {id, at, kind, card, run, actor, data}, oldest first
function Board:history(id)
  check_id(id, "history")
  return self.db:events { card = id }
end

-- Depth-first search for a cycle in graph (id -> array of ids), from each of nodes in turn.
-- Returns the cycle as an array of ids (first == last) or nil. Iterative, with its own
-- stack: a recursive walk overflowed Lua's C stack on a ring of 200,000 cards. Linear in
-- nodes and edges.
function M.find_cycle(graph, nodes)
  local color = {} -- nil: unseen, 1: on the path, 2: done
  local path, at = {}, {} -- the path from the root, and the next edge to try of each node on it
  local EMPTY = {}
  for _, root in ipairs(nodes) do
    if color[root] == nil then
      color[root] = 1
      path[1], at[1] = root, 1
      local top = 1
      while top > 0 do
        local n = path[top]
        local edges = graph[n] or EMPTY
        local i = at[top]
        local d = edges[i]
        if d == nil then
          color[n] = 2
          path[top], at[top] = nil, nil
          top = top - 1
        else
          at[top] = i + 1
          local cd = color[d]
          if cd == 1 then
            -- the path from d's place on it to here, and d again
            local from = top
            while path[from] ~= d do from = from - 1 end
            local cyc = table.move(path, from, top, 1, {})
            cyc[#cyc + 1] = d
            return cyc
          elseif cd == nil then
            color[d] = 1
            top = top + 1
            path[top], at[top] = d, 1
          end
        end
      end
    end
  end
  return nil
end

--- cycle_back(graph, from [, within]) -> a shortest cycle through from ({from, ..., from})
--- | nil: a breadth-first walk from from's edges back to it, through the nodes within(id)
--- keeps (all when nil)
function M.cycle_back(graph, from, within)
  local EMPTY = {}
  local prev, queue, head = { [from] = false }, { from }, 1
  while queue[head] do
    local v = queue[head]
    head = head + 1
    for _, w in ipairs(graph[v] or EMPTY) do
      if w == from then
        local back = { from }
        while v do
          back[#back + 1] = v
          v = prev[v]
        end
        local cyc = {}
        for i = #back, 1, -1 do cyc[#cyc + 1] = back[i] end
        return cyc
      end
      if prev[w] == nil and (not within or within(w)) then
        prev[w] = v
        queue[#queue + 1] = w
      end
    end
  end
  return nil
end

--- waits_for(cards) -> graph, via: what each card waits for, the edges a dependency cycle is
--- looked for in (find_cycle). cards: {{id=, type=, parent=, deps={ids}, status=}...}, every
--- card the edges may reach (status: the board's, nil for a card not on it yet). The rules
--- are the scheduler's and the state machine's (orket.ready runnable, Board:open_deps,
--- Board:_follow), so that what import and validate accept can run:
---   - a card waits for each card in its depends_on;
---   - an issue waits for each card its parent depends on (Guards 3), through a node of its
---     own, "(epic E)", so that a cycle names the epic whose depends_on closes it; a
---     finished issue waits for nothing more;
---   - an epic or a rock is done only when its children are, so it waits for each child
---     but a canceled or archived one, and a finished one waits for none.
--- via: such a node -> the id of the card whose depends_on it stands for.
local GONE = { canceled = true, archived = true }
function M.waits_for(list)
  local graph, via, by_id = {}, {}, {}
  for _, c in ipairs(list) do by_id[c.id] = c end
  for _, c in ipairs(list) do
    local p = c.type == "issue" and c.parent and by_id[c.parent]
    if p and #p.deps > 0 and not M.FINAL[c.status] then
      local key = "(" .. p.type .. " " .. p.id .. ")"
      if not via[key] then
        via[key] = p.id
        graph[key] = p.deps -- never added to: an issue holds no card
      end
      local out = table.move(c.deps, 1, #c.deps, 1, {})
      out[#out + 1] = key
      graph[c.id] = out
    elseif c.type == "issue" then
      graph[c.id] = c.deps -- the list's own array, never added to (no allocation per card on a large board)
    else
      graph[c.id] = table.move(c.deps, 1, #c.deps, 1, {})
    end
  end
  -- each epic or rock after its own dependencies, in the order of the list
  for _, c in ipairs(list) do
    local p = c.parent and by_id[c.parent]
    if p and p.type ~= "issue" and not GONE[c.status] and not M.FINAL[p.status] then
      local out = graph[p.id]
      out[#out + 1] = c.id
    end
  end
  return graph, via
end

--- cycle_text(cycle) -> the cycle find_cycle found as "A -> B -> A"; a long one shortened to
--- its first and last cards and how many are left out (a ring of 200,000 cards would make a
--- message of megabytes)
function M.cycle_text(cycle)
  local n = #cycle
  if n <= 24 then return table.concat(cycle, " -> ") end
  return string.format("%s -> ... (%d more) -> %s", table.concat(cycle, " -> ", 1, 12), n - 18,
    table.concat(cycle, " -> ", n - 5, n))
end

-- The cycle a new issue's dependencies would close among what the board's cards wait for
-- (waits_for: as import and validate check a file's cards), through the new card, or nil.
-- new: {id, parent, deps}. Reads the whole board: asked only for a card with dependencies
-- (a person's, or a turn's create_issue that names some).
local function cycle_with(db, new)
  local deps = {}
  for _, r in ipairs(imports.dependencies(db)) do
    local l = deps[r.card_id]
    if not l then l = {}; deps[r.card_id] = l end
    l[#l + 1] = r.depends_on
  end
  local list = {}
  for _, r in ipairs(imports.cards(db)) do
    list[#list + 1] = { id = r.id, type = r.type, parent = r.parent, deps = deps[r.id] or {}, status = r.status }
  end
  list[#list + 1] = { id = new.id, type = "issue", parent = new.parent, deps = new.deps, status = "ready" }
  local graph, via = M.waits_for(list)
  -- only through the new card's own dependencies: one through its epic's depends_on ran
  -- through the epic already, whatever this card does
  graph[new.id] = new.deps
  local cycle = M.cycle_back(graph, new.id)
  if not cycle then return nil end
  -- "(epic E)" stands for E's depends_on: said as E, once
  local out = {}
  for _, n in ipairs(cycle) do
    n = via[n] or n
    if out[#out] ~= n then out[#out + 1] = n end
  end
  return out
end

local TEXT_FIELDS = { "summary", "description", "note", "requirements", "acceptance", "seat", "name" }

--- board:create{parent=epic_id, summary=, description=, seat=, priority=, depends_on={...},
---   requirements=, acceptance=, note=, name=, id=, actor=, seats=} -> card | nil, msg, CODE
--- Files a new issue under an epic. id defaults to "<EPIC>-<n>" with the next free n; an id,
--- given or made so, keeps ID_RULE (EINVAL). seats: the team's seats, when the caller knows
--- them; a seat not among them is refused (EINVAL), naming the seats.
function Board:create(spec)
  if type(spec) ~= "table" then error("bad argument #1 to 'create' (table expected)", 2) end
  check_id(spec.parent, "create")
  if spec.seats ~= nil and type(spec.seats) ~= "table" then
    error("bad argument #1 to 'create' (field 'seats' must be an array of seats)", 2)
  end
  for _, f in ipairs(TEXT_FIELDS) do
    if spec[f] ~= nil and type(spec[f]) ~= "string" then
      error(string.format("bad argument #1 to 'create' (field '%s' must be a string)", f), 2)
    end
  end
  if spec.id ~= nil and type(spec.id) ~= "string" then error("bad argument #1 to 'create' (field 'id' must be a string)", 2) end
  local deps = spec.depends_on or {}
  if type(deps) ~= "table" then error("bad argument #1 to 'create' (field 'depends_on' must be an array of ids)", 2) end
  if not (spec.summary or ""):find("%S") then return nil, "board: a new card needs a summary", "EINVAL" end
  if spec.seat ~= nil and spec.seats then
    local known = false
    for _, seat in ipairs(spec.seats) do known = known or seat == spec.seat end
    -- a card for a seat nobody holds would go to routing's guess, or fail at its first turn
    if not known then
      return nil, string.format("board: seat %q is not a seat of this team (seats: %s)", tostring(spec.seat),
        table.concat(spec.seats, ", ")), "EINVAL"
    end
  end
  local priority = 2
  if spec.priority ~= nil then
    local p, perr = M.priority(spec.priority)
    if not p then return nil, "board: " .. perr, "EINVAL" end
    priority = p
  end
  local db = self.db
  return db:tx(function()
    local fresh = self:_fresh()
    local parent = cards.head(db, spec.parent)
    if not parent then return not_found(spec.parent) end
    if parent.type ~= "epic" then
      return nil, string.format("board: %s is %s %s; new issues go under an epic", spec.parent,
        parent.type == "issue" and "an" or "a", parent.type), "EINVAL"
    end
    -- a finished epic follows no new child: the work would run under an epic that says done
    if FINAL[parent.status] then
      return nil, string.format("board: epic %s is %s; file the issue under an epic that is not finished",
        spec.parent, parent.status), "EINVAL"
    end
    local id = spec.id
    if id then
      if not M.id_ok(id) then
        return nil, string.format("board: bad card id %q: an id is %s", id, M.ID_RULE), "EINVAL"
      end
      if cards.exists(db, id) then
        return nil, string.format("board: card %q already exists", id), "EEXIST"
      end
      local device = M.device_name(id)
      if device then
        return nil, string.format("board: card id %q is the Windows device name %s: %s; choose another id", id,
          device, M.DEVICE_RULE), "EINVAL"
      end
      local twin = M.case_twins(db, { id })[id]
      if twin then
        return nil, string.format("board: card id %q differs only in case from the card %q: %s; choose another id",
          id, twin, M.CASE_RULE), "EEXIST"
      end
    else
      local n = cards.child_count(db, spec.parent) + 1
      repeat
        id = spec.parent .. "-" .. n
        n = n + 1
      until not cards.exists(db, id) and not M.case_twins(db, { id })[id]
      -- a long epic id leaves no room for "-n" within ID_RULE's 100 bytes
      if not M.id_ok(id) then
        return nil, string.format("board: the new card's id %q would break the id rule (%s); give it an id",
          id, M.ID_RULE), "EINVAL"
      end
    end
    -- the new card's epic and that epic's rock: it waits for its dependencies, and they
    -- for their cards, so a dependency on one of them could never be met (as import refuses)
    local ancestors, up = {}, spec.parent
    while up and not ancestors[up] do
      local a = cards.head(db, up)
      if not a then break end
      ancestors[up] = a.type
      up = a.parent
    end
    for i, d in ipairs(deps) do
      local dc = type(d) == "string" and cards.head(db, d)
      if not dc then
        return nil, string.format("board: depends_on[%d]: unknown card %q", i - 1, tostring(d)), "ENOENT"
      end
      if ancestors[d] then
        return nil, string.format("board: depends_on[%d]: %q is the %s the new card belongs to; it could never "
          .. "start (depend on that %s's issues instead)", i - 1, d, ancestors[d], ancestors[d]), "EINVAL"
      end
      -- a dependency holds back a start until it is done, which a canceled card never is
      -- (as import refuses it: the run would stall on the new card)
      if GONE[dc.status] then
        return nil, string.format("board: depends_on[%d]: %s is %s, so the new card could never start (a dependency "
          .. "holds back a start until it is done): drop the dependency, or depend on the card that does its work "
          .. "now", i - 1, d, dc.status), "EINVAL"
      end
    end
    local cycle = #deps > 0 and cycle_with(db, { id = id, parent = spec.parent, deps = deps })
    if cycle then
      local at = 0 -- from 0, as a JSON body or a call's arguments count (the API, create_issue)
      for i, d in ipairs(deps) do if d == cycle[2] then at = i - 1 end end
      return nil, string.format("board: depends_on[%d]: dependency cycle: %s; the new card and %s would wait for "
        .. "each other for ever: drop the dependency", at, M.cycle_text(cycle), cycle[2]), "EINVAL"
    end
    cards.insert_issue(db, { id = id, parent = spec.parent, name = spec.name, summary = spec.summary,
      description = spec.description, note = spec.note, requirements = spec.requirements,
      acceptance = spec.acceptance, priority = priority, seat = spec.seat })
    for i, d in ipairs(deps) do cards.add_dependency(db, id, d, i) end
    self:_changed(id, fresh)
    local actor = type(spec.actor) == "table" and spec.actor.seat or nil
    db:event { kind = "create", card = id, run = self.run, actor = actor, data = { parent = spec.parent } }
    return self:get(id)
  end)
end

M.statuses = sm.statuses
M.json = json
return M
