-- orket.ready: the board's ready order, the one implementation behind board:ready and the
-- scheduler. Runnable: an issue in `ready` whose dependencies, and its epic's, are all
-- done. Order: priority (high first), then the unfinished cards that depend on it directly
-- or transitively (more first: unblocking the most work), then age (creation order).
--
-- A run asks the same question again and again after small changes, so an order keeps the
-- scope's issues and the dependency graph in memory and follows the journal: every status
-- change and every new card writes an event in the same transaction (board.lua), so the
-- events after the last one seen tell exactly which cards to reload, whoever changed them.
-- A change moves only the entries whose place it can alter (the card, its dependents when
-- it finishes or reopens, the dependencies whose dependent count it changes, the issues of
-- an epic that waits for it). A card leaving the order is only marked dead where it stands,
-- one coming in is put in place by a binary search, and the dead are swept out once they
-- are half the array. An import rebuilds the order. board:ready builds one and reads it.
local M = {}

local card_value = require "orket.card"
local cards_op = require "orket.store.cards"
local sj = require "orket.store.journal_reads"

local FINAL = card_value.FINAL

local Order = {}
Order.__index = Order

--- new(board, scope [, on_put [, on_rebuild]]) -> order. scope: an epic's or a rock's card
--- (a table with id and type), or nil for the whole board. on_put(card), when given, is
--- called with every scope card as it is loaded or reloaded (the scheduler keeps its own
--- sets from it), and the order then keeps whole cards; without it, light ones (see each).
--- on_rebuild(), when given, is called as each build begins (an import's included), before
--- on_put is called again for every card then in the scope: a card the import moved out of
--- the scope is put no more, nor reloaded after, so a set kept from on_put must start over.
function M.new(board, scope, on_put, on_rebuild)
  local o = setmetatable({ board = board, db = board.db, scope = scope, on_put = on_put, on_rebuild = on_rebuild },
    Order)
  o:rebuild()
  return o
end

local function unfinished(st) return st ~= nil and not FINAL[st] end

-- Does entry a go before entry b? Entries are {id=, p=priority, n=unfinished dependents,
-- s=creation order, live=}; only one card's entries share keys.
local function precedes(a, b)
  if a.p ~= b.p then return a.p > b.p end
  if a.n ~= b.n then return a.n > b.n end
  return a.s < b.s
end

-- The scope's issues, in creation order (whole cards). The board keeps them in its cache
-- too: a run reads each of them through the board as it first works it.
function Order:issues()
  local scope = self.scope
  if scope == nil then return self.board:list({ type = "issue" }, true) end
  if scope.type == "epic" then return self.board:list({ epic = scope.id, type = "issue" }, true) end
  return self.board:list({ rock = scope.id, type = "issue" }, true)
end

-- What the order reads of a card: a light card (cards_op.light). An order without on_put
-- keeps these (its list() reads the whole cards of what it lists); one with on_put keeps
-- whole cards.

function Order:rebuild()
  local db, scope = self.db, self.scope
  if self.on_rebuild then self.on_rebuild() end
  self.last = sj.latest_id(db)
  self.cards, self.order, self.seq = {}, {}, {}
  self.status, self.deps, self.dependents, self.children = {}, {}, {}, {}
  self.ready, self.entry, self.dead, self.head = {}, {}, 0, 1
  self.mark, self.walk = {}, 0
  self.epics = nil -- nil: every epic (the whole board)
  -- One read of every card's few fields and one of every edge: the rest is done in tables
  -- (a board of 10,000 cards is two queries, not one join per question).
  local light = cards_op.light(db)
  local status_of = {}
  for _, c in ipairs(light) do status_of[c.id] = c.status end
  if scope ~= nil then
    self.epics = {}
    if scope.type == "epic" then
      self.epics[scope.id] = true
    else
      for _, c in ipairs(light) do
        if c.type == "epic" and c.parent == scope.id then self.epics[c.id] = true end
      end
    end
  end
  if self.on_put then
    for _, c in ipairs(self:issues()) do
      if c.type == "issue" then self:put(c) end
    end
  else
    -- the scope's issues as Order:issues() finds them (a rock's: under it or its epics);
    -- put() inlined: this loop runs once per card of the board
    local epics, rock = self.epics, scope and scope.type == "rock" and scope.id
    local cards, order, seq, status, children = self.cards, self.order, self.seq, self.status, self.children
    local n = 0
    for _, c in ipairs(light) do
      local parent = c.parent
      if c.type == "issue" and (epics == nil or epics[parent] or (rock and parent == rock)) and not cards[c.id] then
        local id = c.id
        n = n + 1
        order[n], seq[id], cards[id], status[id] = id, n, c, c.status
        if parent then
          local l = children[parent]
          if not l then children[parent] = { id } else l[#l + 1] = id end
        end
      end
    end
  end
  -- Every edge of the board: dependents outside the scope count too, and an epic's
  -- dependencies hold back its issues. (The table's key makes each edge unique.)
  local status, deps, dependents = self.status, self.deps, self.dependents
  for _, d in ipairs(cards_op.dependencies(db)) do
    local from, to = d.card_id, d.depends_on
    local l = deps[from]
    if not l then deps[from] = { to } else l[#l + 1] = to end
    l = dependents[to]
    if not l then dependents[to] = { from } else l[#l + 1] = from end
    if status[from] == nil then status[from] = status_of[from] end
    if status[to] == nil then status[to] = status_of[to] end
  end
  -- One sort of the runnable cards; from here on each change moves only what it affects.
  local ready, entry, cards, seq = self.ready, self.entry, self.cards, self.seq
  for _, id in ipairs(self.order) do
    if self:runnable(id) then
      local e = { id = id, p = cards[id].priority, n = self:count(id), s = seq[id], live = true }
      ready[#ready + 1] = e
      entry[id] = e
    end
  end
  table.sort(ready, precedes)
end

function Order:edge(from, to)
  local l = self.deps[from]
  if not l then l = {}; self.deps[from] = l end
  for _, x in ipairs(l) do if x == to then return end end
  l[#l + 1] = to
  local r = self.dependents[to]
  if not r then r = {}; self.dependents[to] = r end
  r[#r + 1] = from
end

-- Records a scope card's current state (new or reloaded).
function Order:put(c)
  if not self.cards[c.id] then
    self.order[#self.order + 1] = c.id
    self.seq[c.id] = #self.order -- creation order: the age tie-break
    if c.parent then
      local l = self.children[c.parent]
      if not l then l = {}; self.children[c.parent] = l end
      l[#l + 1] = c.id
    end
  end
  self.cards[c.id] = c
  self.status[c.id] = c.status
  if self.on_put then self.on_put(c) end
end

local function all_done(self, id)
  local deps = self.deps[id]
  if not deps then return true end
  local status = self.status
  for i = 1, #deps do
    if status[deps[i]] ~= "done" then return false end
  end
  return true
end

--- order:runnable(id) -> a scope card that is ready with its dependencies and its epic's done
function Order:runnable(id)
  local c = self.cards[id]
  if not c or c.status ~= "ready" then return false end
  return all_done(self, id) and (c.parent == nil or all_done(self, c.parent))
end

-- Unfinished cards that depend on id, directly or through other unfinished cards.
function Order:count(id)
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
    local srcs = dependents[cur]
    for i = 1, srcs and #srcs or 0 do
      local src = srcs[i]
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

-- Puts card id (runnable) into the order: the first place whose entry does not go before it.
function Order:insert(id)
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

-- Sweeps the dead entries out once they are half of the array.
function Order:sweep()
  local ready = self.ready
  if self.dead < 32 or self.dead * 2 < #ready then return end
  local out = {}
  for _, e in ipairs(ready) do
    if e.live then out[#out + 1] = e end
  end
  self.ready, self.dead, self.head = out, 0, 1
end

-- Brings card id's place up to date: out when it is not runnable, in (with its dependent
-- count recomputed) when it is, moved when its keys changed.
function Order:update(id)
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
function Order:update_upstream(id)
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

function Order:in_scope(c)
  return c.type == "issue" and (self.epics == nil or self.epics[c.parent] ~= nil)
end

-- Reloads one card after an event and moves what its change moves.
function Order:reload(id, created)
  local old = self.status[id]
  -- a moved card outside the graph changes nothing here: known without its copy
  if not created and old == nil and not self.cards[id] and not self.children[id] then return end
  local c = self.board:get(id)
  if not c then return end
  if created then
    for _, d in ipairs(c.depends_on or {}) do
      self:edge(c.id, d)
      if self.status[d] == nil then
        local dc = self.board:get(d)
        self.status[d] = dc and dc.status
      end
    end
  end
  if self.cards[id] or (created and self:in_scope(c)) then
    self:put(c)
    self:update(id)
  elseif old ~= nil or (created and self.deps[id]) or self.children[id] then
    -- outside the scope's issues, but in the graph: a dependent, a dependency, an epic
    self.status[id] = c.status
  else
    return
  end
  local new = c.status
  if created or (FINAL[old] or false) ~= (FINAL[new] or false) then self:update_upstream(id) end
  if (old == "done") ~= (new == "done") then
    for _, src in ipairs(self.dependents[id] or {}) do
      self:update(src)
      -- an epic that waits for this card: its issues may start now, or no longer
      for _, child in ipairs(self.children[src] or {}) do self:update(child) end
    end
  end
end

--- order:refresh(): applies the journal's events since the last refresh
function Order:refresh()
  -- (the events that move it, and the newest for the mark)
  local rows = sj.order_events_after(self.db, self.last)
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

--- order:next_after(j [, busy]) -> j, card, dependents | nil: the first runnable card in
--- order after place j (0: from the start) that busy (id -> true) does not hold; the cached
--- card, as each gives it. A caller walking the order keeps j instead of a closure.
function Order:next_after(j, busy)
  local ready, cards = self.ready, self.cards
  if j == 0 then
    local head = self.head
    while ready[head] and not ready[head].live do head = head + 1 end
    self.head = head
    j = head - 1
  end
  while true do
    j = j + 1
    local e = ready[j]
    if not e then return nil end
    local c = cards[e.id]
    if e.live and c.status == "ready" and not (busy and busy[e.id]) then return j, c, e.n end
  end
end

--- order:each() -> iterator over the runnable cards in order (the cached cards: read them,
--- never change them; whole cards when the order has an on_put, else cards of id, type,
--- parent, priority and status), with their dependents' count
function Order:each()
  local j = 0
  return function()
    if j == nil then return nil end -- done: asked again, still done
    local c, n
    j, c, n = self:next_after(j)
    if j == nil then return nil end
    return c, n
  end
end

--- order:list() -> array of copies of the runnable cards in order (whole cards, as
--- board:get gives them), each with `dependents` (the count the order used)
function Order:list()
  local ids, counts = {}, {}
  for c, n in self:each() do
    ids[#ids + 1] = c.id
    counts[#ids] = n
  end
  local whole = {}
  if self.on_put then
    for i, id in ipairs(ids) do whole[i] = self.cards[id] end
  elseif #ids > 0 then
    -- the listed cards in one read (the order itself keeps light cards), with the
    -- dependencies the order holds (the store's, in their order: an edge never changes)
    local by_id, deps = {}, self.deps
    for _, c in ipairs(cards_op.some(self.db, ids)) do
      c.depends_on = deps[c.id] or {}
      by_id[c.id] = c
    end
    for i, id in ipairs(ids) do whole[i] = by_id[id] end
  end
  local out = {}
  for i = 1, #ids do
    local c = whole[i]
    if c == nil then goto gone end -- deleted since the order last looked
    local copy = card_value.copy(c)
    copy.dependents = counts[i]
    out[#out + 1] = copy
    ::gone::
  end
  return out
end

return M
