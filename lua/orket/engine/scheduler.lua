-- orket.engine.scheduler: which cards get a turn next, and the wait for a free slot. Cards
-- in review go first (finishing work unblocks most), then cards in progress, then the
-- board's ready order (priority, critical path, age). Cards agents create are seen on the
-- next pass because the scope is read from the board each time.
local uv = require "luv"
local task = require "orket.task"
local approvals = require "orket.engine.approvals"

local M = {}

local FINAL = { done = true, canceled = true, archived = true }
M.FINAL = FINAL

--- scope(board, target) -> issues under target (target itself when it is an issue)
function M.scope(board, target)
  if target.type == "issue" then return { assert(board:get(target.id)) } end
  local q = target.type == "epic" and { epic = target.id, type = "issue" } or { rock = target.id, type = "issue" }
  local out = {}
  for _, c in ipairs(board:list(q)) do
    if c.type == "issue" then out[#out + 1] = c end
  end
  return out
end

local function by_priority(a, b)
  if a.priority ~= b.priority then return a.priority > b.priority end
  if a.created_at ~= b.created_at then return a.created_at < b.created_at end
  return a.id < b.id
end

--- candidates(board, target, busy) -> cards to start, in order (busy: id -> true)
function M.candidates(board, target, cards, busy)
  local review, working = {}, {}
  for _, c in ipairs(cards) do
    if not busy[c.id] then
      if c.status == "code_review" then review[#review + 1] = c
      elseif c.status == "in_progress" then working[#working + 1] = c end
    end
  end
  table.sort(review, by_priority)
  table.sort(working, by_priority)
  local out = {}
  for _, c in ipairs(review) do out[#out + 1] = c end
  for _, c in ipairs(working) do out[#out + 1] = c end
  local ready
  if target.type == "issue" then
    ready = {}
    for _, c in ipairs(board:ready(target.parent)) do
      if c.id == target.id then ready[1] = c end
    end
  else
    ready = board:ready(target.id)
  end
  for _, c in ipairs(ready) do
    if not busy[c.id] then out[#out + 1] = c end
  end
  return out
end

-- ---- the incremental view -------------------------------------------------------------
-- A run's scheduling passes ask the same question again and again after small changes, so
-- the view keeps the target's issues and the dependency graph in memory and follows the
-- journal: every status change and every new card writes an event in the same transaction
-- (board.lua), so reading the events after the last one seen tells exactly which cards to
-- reload, whoever changed them (this run's tools, or `orket answer` in another process). A
-- pass then costs what changed, not the epic's size. The ready order is board:ready's
-- (priority, transitive unfinished dependents, age), kept as a sorted array of entries for
-- the runnable cards: a change moves only the cards whose place it can alter (the card
-- itself, its dependents when it finishes or reopens, and the dependencies whose dependent
-- count it changes). A card leaving the order is only marked dead where it stands (most
-- leave from the front, and shifting the array was the cost), one coming in is put in place
-- by a binary search, and the dead are swept out once they are half the array. Re-sorting
-- the whole epic whenever a card with dependencies finished was a fifth of a scheduling
-- pass at 300 cards and grew with the epic. An import rebuilds the view.
local View = {}
View.__index = View

--- view(board, target) -> view with :refresh() and :candidates(busy) -> iterator over the
--- cards candidates() would list, in the same order.
function M.view(board, target)
  local v = setmetatable({ board = board, db = board.db, target = target }, View)
  v:rebuild()
  return v
end

local function unfinished(st) return st ~= nil and not FINAL[st] end

-- Does entry a go before entry b in the ready order? Entries are {id=, p=priority,
-- n=unfinished dependents, s=creation order, live=}; only one card's entries share keys.
local function precedes(a, b)
  if a.p ~= b.p then return a.p > b.p end
  if a.n ~= b.n then return a.n > b.n end
  return a.s < b.s
end

function View:rebuild()
  local db, target = self.db, self.target
  self.last = db:row("SELECT COALESCE(MAX(id), 0) AS id FROM events").id
  self.cards, self.order, self.seq = {}, {}, {}
  self.status, self.deps, self.dependents = {}, {}, {}
  self.review, self.working = {}, {}
  self.epics = {}
  self.ready, self.entry, self.dead, self.head = {}, {}, 0, 1
  self.mark, self.walk = {}, 0
  if target.type == "issue" then return end -- one card: candidates() as it is
  if target.type == "epic" then
    self.epics[target.id] = true
  else
    for _, e in ipairs(assert(db:rows("SELECT id FROM cards WHERE parent = ? AND type = 'epic'", target.id))) do
      self.epics[e.id] = true
    end
  end
  for _, c in ipairs(M.scope(self.board, target)) do self:put(c) end
  -- Every edge of the board: board:ready counts dependents outside the scope too.
  for _, d in ipairs(assert(db:rows([[SELECT d.card_id, d.depends_on, s.status AS s_status, t.status AS t_status
      FROM dependencies d JOIN cards s ON s.id = d.card_id JOIN cards t ON t.id = d.depends_on
      ORDER BY d.card_id, d.position]]))) do
    self:edge(d.card_id, d.depends_on)
    self.status[d.card_id] = self.status[d.card_id] or d.s_status
    self.status[d.depends_on] = self.status[d.depends_on] or d.t_status
  end
  -- One sort of the runnable cards; from here on each change moves only what it affects.
  local ready = self.ready
  for _, id in ipairs(self.order) do
    if self:runnable(id) then
      local e = { id = id, p = self.cards[id].priority, n = self:count(id), s = self.seq[id], live = true }
      ready[#ready + 1] = e
      self.entry[id] = e
    end
  end
  table.sort(ready, precedes)
end

function View:edge(from, to)
  local l = self.deps[from]
  if not l then l = {}; self.deps[from] = l end
  for _, x in ipairs(l) do if x == to then return end end
  l[#l + 1] = to
  local r = self.dependents[to]
  if not r then r = {}; self.dependents[to] = r end
  r[#r + 1] = from
end

-- Records a scope card's current state (new or reloaded).
function View:put(c)
  if not self.cards[c.id] then
    self.order[#self.order + 1] = c.id
    self.seq[c.id] = #self.order -- creation order: the age tie-break
  end
  self.cards[c.id] = c
  self.status[c.id] = c.status
  self.review[c.id] = c.status == "code_review" or nil
  self.working[c.id] = c.status == "in_progress" or nil
end

-- A scope card that is ready with every dependency done.
function View:runnable(id)
  local c = self.cards[id]
  if not c or c.status ~= "ready" then return false end
  for _, d in ipairs(self.deps[id] or {}) do
    if self.status[d] ~= "done" then return false end
  end
  return true
end

-- Unfinished cards that depend on id, directly or through other unfinished cards.
function View:count(id)
  local dependents = self.dependents
  if not dependents[id] then return 0 end
  -- mark[x] == walk marks x as met in this walk (no table per walk).
  self.walk = self.walk + 1
  local walk, mark, status = self.walk, self.mark, self.status
  local stack, top, n = { id }, 1, 0
  mark[id] = walk
  while top > 0 do
    local cur = stack[top]
    stack[top] = nil
    top = top - 1
    for _, src in ipairs(dependents[cur] or {}) do
      if mark[src] ~= walk and unfinished(status[src]) then
        mark[src] = walk
        n = n + 1
        top = top + 1
        stack[top] = src
      end
    end
  end
  return n
end

-- Puts card id (runnable) into the ready order: the first place whose entry does not go
-- before it.
function View:insert(id)
  local e = { id = id, p = self.cards[id].priority, n = self:count(id), s = self.seq[id], live = true }
  local ready = self.ready
  local lo, hi = 1, #ready + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if precedes(ready[mid], e) then lo = mid + 1 else hi = mid end
  end
  table.insert(ready, lo, e)
  self.entry[id] = e
  if lo < self.head then self.head = lo end
end

-- Sweeps the dead entries out of the ready order once they are half of it.
function View:sweep()
  local ready = self.ready
  if self.dead < 32 or self.dead * 2 < #ready then return end
  local out = {}
  for _, e in ipairs(ready) do
    if e.live then out[#out + 1] = e end
  end
  self.ready, self.dead, self.head = out, 0, 1
end

-- Brings card id's place in the ready order up to date: out when it is not runnable, in
-- (with its dependent count recomputed) when it is, moved when its keys changed.
function View:update(id)
  local e = self.entry[id]
  if self:runnable(id) then
    if e then
      if e.p == self.cards[id].priority and e.n == self:count(id) then return end
    end
  elseif not e then
    return
  end
  if e then
    e.live = false
    self.entry[id] = nil
    self.dead = self.dead + 1
  end
  if self:runnable(id) then self:insert(id) end
  self:sweep()
end

-- The cards whose dependent count id's change can alter: its dependencies, and theirs
-- through unfinished cards (a count walks through unfinished cards only).
function View:update_upstream(id)
  local seen, stack = { [id] = true }, { id }
  while #stack > 0 do
    local cur = table.remove(stack)
    for _, d in ipairs(self.deps[cur] or {}) do
      if not seen[d] then
        seen[d] = true
        self:update(d)
        if unfinished(self.status[d]) then stack[#stack + 1] = d end
      end
    end
  end
end

-- Reloads one card after an event and moves what its change moves in the ready order.
function View:reload(id, created)
  local c = self.board:get(id)
  if not c then return end
  local old = self.status[id]
  if created then
    for _, d in ipairs(c.depends_on or {}) do
      self:edge(c.id, d)
      if self.status[d] == nil then
        local dc = self.board:get(d)
        self.status[d] = dc and dc.status
      end
    end
  end
  if self.cards[id] or (created and c.type == "issue" and self.epics[c.parent]) then
    self:put(c)
    self:update(id)
  elseif old ~= nil or (created and self.deps[id]) then
    -- outside the scope, but a dependent: board:ready counts it
    self.status[id] = c.status
  else
    return
  end
  local new = c.status
  if created or (FINAL[old] or false) ~= (FINAL[new] or false) then self:update_upstream(id) end
  if (old == "done") ~= (new == "done") then
    for _, src in ipairs(self.dependents[id] or {}) do self:update(src) end
  end
end

--- view:refresh(): applies the journal's events since the last refresh
function View:refresh()
  if self.target.type == "issue" then return end
  local rows = assert(self.db:rows("SELECT id, kind, card_id FROM events WHERE id > ? ORDER BY id", self.last))
  local rebuild = false
  for _, ev in ipairs(rows) do
    self.last = ev.id
    if ev.kind == "import" then
      rebuild = true
    elseif ev.card_id and (ev.kind == "transition" or ev.kind == "create") and not rebuild then
      self:reload(ev.card_id, ev.kind == "create")
    end
  end
  if rebuild then self:rebuild() end
end

local function sorted_set(v, set, busy)
  local out = {}
  for id in pairs(set) do
    if not busy[id] then out[#out + 1] = v.cards[id] end
  end
  if #out > 1 then table.sort(out, by_priority) end
  return out
end

--- view:candidates(busy) -> iterator over cards to start: review, then in progress, then ready
function View:candidates(busy)
  if self.target.type == "issue" then
    local list = M.candidates(self.board, self.target, M.scope(self.board, self.target), busy)
    local i = 0
    return function()
      i = i + 1
      return list[i]
    end
  end
  local ready, cards = self.ready, self.cards
  local head = self.head
  while ready[head] and not ready[head].live do head = head + 1 end
  self.head = head
  local first = sorted_set(self, self.review, busy)
  for _, c in ipairs(sorted_set(self, self.working, busy)) do first[#first + 1] = c end
  local i, j = 0, head - 1
  return function()
    i = i + 1
    if first[i] then return first[i] end
    while true do
      j = j + 1
      local e = ready[j]
      if not e then return nil end
      -- the cached card: a card started in this pass is still ready here, busy says it is not
      local c = cards[e.id]
      if e.live and c.status == "ready" and not busy[e.id] then return c end
    end
  end
end

--- stuck(board, cards [, why]) -> array of {card=, status=, wait_reason=, reason=, waits_for=,
--- approval=} for every unfinished card; a card held for an approval has waits_for
--- "approval" and approval = the request's id (else waits_for "input" when it waits).
--- why: what the run knows, {skipped = {id = the reason the card was skipped}, halted = the
--- run budget that ended the run}, so a card that could have taken a turn says why it did not.
function M.stuck(board, cards, why_run)
  why_run = why_run or {}
  local skipped = why_run.skipped or {}
  local out = {}
  for _, c in ipairs(cards) do
    if not FINAL[c.status] then
      local why, waits_for, pending
      if c.status == "waiting_for_developer" then
        pending = approvals.pending(board.db, c.id)
        waits_for = pending and "approval" or "input"
        why = pending and string.format("waiting for approval of %s (request #%d): %s; answer with "
          .. "'orket answer %s --approve' or --deny \"reason\"", approvals.describe(pending), pending.id,
          tostring(pending.reason or pending.rule), c.id) or "waiting for input"
      elseif c.status == "blocked" then
        why = "blocked (" .. tostring(c.wait_reason) .. ")"
      else
        local waits = {}
        for _, d in ipairs(c.depends_on or {}) do
          local dc = board:get(d)
          if dc and dc.status ~= "done" then
            local failed = dc.status == "blocked" or dc.status == "canceled" or dc.status == "waiting_for_developer"
            waits[#waits + 1] = d .. " (" .. dc.status .. (failed and ", failed dependency" or "") .. ")"
          end
        end
        if #waits > 0 then
          why = "waits for " .. table.concat(waits, ", ")
        elseif skipped[c.id] then
          why = "skipped in " .. c.status .. ": " .. skipped[c.id]
        elseif why_run.halted then
          why = "stopped in " .. c.status .. ": " .. why_run.halted
        else
          why = "cannot be scheduled from " .. c.status
        end
      end
      local cs = board:comments(c.id)
      local last = cs[#cs]
      if last and not pending and (c.status == "blocked" or c.status == "waiting_for_developer") then why = why .. ": " .. last.body end
      out[#out + 1] = { card = c.id, status = c.status, wait_reason = c.wait_reason, reason = why,
        waits_for = waits_for, approval = pending and pending.id or nil }
    end
  end
  return out
end

--- Waker: lets the scheduler's task sleep until a turn ends or a stop is asked for.
--- The resume happens from the loop (a zero timer), never nested inside the ending task.
local Waker = {}
Waker.__index = Waker

function M.waker() return setmetatable({ pending = false }, Waker) end

--- waker:wait() -> true when it waited on the loop, false when a wake was pending already
function Waker:wait()
  if self.pending then
    self.pending = false
    return false
  end
  self.co = coroutine.running()
  coroutine.yield()
  self.co = nil
  return true
end

function Waker:wake()
  if not self.co then
    self.pending = true
    return
  end
  local co, timer = self.co, uv.new_timer()
  self.co = nil
  timer:start(0, 0, function()
    timer:close()
    task.resume(co)
  end)
end

return M
