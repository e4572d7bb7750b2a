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
-- (priority, transitive unfinished dependents, age), recomputed only when a card becomes
-- ready or a card with dependencies or dependents is finished or reopened; cards leaving
-- ready are skipped where they stand. An import rebuilds the view.
local View = {}
View.__index = View

--- view(board, target) -> view with :refresh() and :candidates(busy) -> iterator over the
--- cards candidates() would list, in the same order.
function M.view(board, target)
  local v = setmetatable({ board = board, db = board.db, target = target }, View)
  v:rebuild()
  return v
end

function View:rebuild()
  local db, target = self.db, self.target
  self.last = db:row("SELECT COALESCE(MAX(id), 0) AS id FROM events").id
  self.cards, self.order = {}, {}
  self.status, self.deps, self.dependents = {}, {}, {}
  self.review, self.working = {}, {}
  self.epics = {}
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
  self.ready, self.head, self.dirty = {}, 1, true
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
  if not self.cards[c.id] then self.order[#self.order + 1] = c.id end
  self.cards[c.id] = c
  self.status[c.id] = c.status
  self.review[c.id] = c.status == "code_review" or nil
  self.working[c.id] = c.status == "in_progress" or nil
end

local function unfinished(st) return st ~= nil and not FINAL[st] end

-- Reloads one card after an event; marks the ready order stale when the change can alter it.
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
    self.dirty = true
  end
  if self.cards[id] or (created and c.type == "issue" and self.epics[c.parent]) then
    self:put(c)
  elseif old ~= nil then
    self.status[id] = c.status
  else
    return
  end
  local new = c.status
  if new == "ready" and old ~= "ready" then self.dirty = true end
  if (FINAL[old] or false) ~= (FINAL[new] or false) or (old == "done") ~= (new == "done") then
    if self.deps[id] or self.dependents[id] then self.dirty = true end
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

-- board:ready's order over the cached cards: priority (high first), then unfinished
-- dependents (more first), then age. Cards are visited in age order and dropped into
-- buckets per (priority, dependents), so only the few distinct keys are sorted, not the
-- cards: a full table.sort of a 1,000-card epic at each finish was a tenth of a turn.
function View:order_ready()
  local buckets, prios = {}, {}
  local seen, stack = {}, {}
  for i, id in ipairs(self.order) do
    local c = self.cards[id]
    if c.status == "ready" then
      local ok = true
      for _, d in ipairs(self.deps[id] or {}) do
        if self.status[d] ~= "done" then ok = false break end
      end
      if ok then
        local n = 0
        if self.dependents[id] then
          -- seen[x] == i marks x as met in this card's walk (no table per card).
          seen[id], stack[1] = i, id
          local top = 1
          while top > 0 do
            local cur = stack[top]
            stack[top] = nil
            top = top - 1
            for _, src in ipairs(self.dependents[cur] or {}) do
              if seen[src] ~= i and unfinished(self.status[src]) then
                seen[src] = i
                n = n + 1
                top = top + 1
                stack[top] = src
              end
            end
          end
        end
        local p = c.priority
        local by_n = buckets[p]
        if not by_n then
          by_n = { counts = {} }
          buckets[p] = by_n
          prios[#prios + 1] = p
        end
        local list = by_n[n]
        if not list then
          list = {}
          by_n[n] = list
          by_n.counts[#by_n.counts + 1] = n
        end
        list[#list + 1] = id
      end
    end
  end
  table.sort(prios, function(a, b) return a > b end)
  local out = {}
  for _, p in ipairs(prios) do
    local by_n = buckets[p]
    table.sort(by_n.counts, function(a, b) return a > b end)
    for _, n in ipairs(by_n.counts) do
      for _, id in ipairs(by_n[n]) do out[#out + 1] = id end
    end
  end
  self.ready, self.head, self.dirty = out, 1, false
end

local function sorted_set(v, set, busy)
  local out = {}
  for id in pairs(set) do
    if not busy[id] then out[#out + 1] = v.cards[id] end
  end
  table.sort(out, by_priority)
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
  if self.dirty then self:order_ready() end
  local ready, cards = self.ready, self.cards
  while self.head <= #ready and cards[ready[self.head]].status ~= "ready" do self.head = self.head + 1 end
  local first = sorted_set(self, self.review, busy)
  for _, c in ipairs(sorted_set(self, self.working, busy)) do first[#first + 1] = c end
  local i, j = 0, self.head - 1
  return function()
    i = i + 1
    if first[i] then return first[i] end
    while true do
      j = j + 1
      local id = ready[j]
      if not id then return nil end
      local c = cards[id]
      if c.status == "ready" and not busy[id] then return c end
    end
  end
end

--- stuck(board, cards) -> array of {card=, status=, wait_reason=, reason=, waits_for=,
--- approval=} for every unfinished card; a card held for an approval has waits_for
--- "approval" and approval = the request's id (else waits_for "input" when it waits)
function M.stuck(board, cards)
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
        why = #waits > 0 and ("waits for " .. table.concat(waits, ", ")) or ("cannot be scheduled from " .. c.status)
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

function Waker:wait()
  if self.pending then
    self.pending = false
    return
  end
  self.co = coroutine.running()
  coroutine.yield()
  self.co = nil
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
