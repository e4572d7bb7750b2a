-- orket.engine.scheduler: which cards get a turn next, and the wait for a free slot. Cards
-- in review go first (finishing work unblocks most; a card handed in for testing counts as
-- in review), then cards in progress, then the ready order (orket.ready: priority, critical
-- path, age). Cards agents create are seen on the
-- next pass because the scope is read from the board each time.
local uv = require "luv"
local task = require "orket.task"
local approvals = require "orket.actions.approvals"
local review = require "orket.engine.review"
local ready = require "orket.ready"
local comments = require "orket.store.comments"
local sj = require "orket.store.journal_reads"

local M = {}

local board_mod = require "orket.board"
local FINAL = board_mod.FINAL

--- scope(board, target) -> issues under target (target itself when it is an issue)
function M.scope(board, target)
  if target.type == "issue" then return { assert(board:get(target.id)) } end
  local q = target.type == "epic" and { epic = target.id, type = "issue" } or { rock = target.id, type = "issue" }
  return board:list(q)
end

-- A parent whose work a person ended: canceling takes its unfinished children along, archiving
-- does not (the state machine archives from any status), so what is left under an archived
-- epic or rock would be worked and merged under a parent that says it is over.
local OVER = { archived = true, canceled = true }

--- ended_parent(board, card [, seen]) -> the epic or rock above card that is archived or
--- canceled | nil. seen: parent id -> its card (or false), kept by a caller asking of many cards
function M.ended_parent(board, card, seen)
  local id, guard = card.parent, 0
  while id and guard < 8 do -- (the board is three levels deep)
    local p = seen and seen[id]
    if p == nil then
      p = board:get(id) or false
      if seen then seen[id] = p end
    end
    if not p then return nil end
    if OVER[p.status] then return p end
    id, guard = p.parent, guard + 1
  end
  return nil
end

-- The way to end an issue left under an ended parent: `orket cancel EPIC` is refused for an
-- archived one (only archiving is left), so each issue is canceled, or archived as its parent was
local function end_each(id)
  return string.format("orket cancel %s \"reason\" (or archive it: POST /v1/cards/%s/move {\"to\":\"archived\"})", id, id)
end

--- ended_why(parent, id) -> why issue id, under parent (ended_parent's), gets no turn, and
--- the command that ends it
function M.ended_why(parent, id)
  return string.format("%s is %s: its issues are not worked", parent.id, parent.status), end_each(id)
end

--- ended_target(board, target [, cards]) -> message | nil: a run of target has nothing it may
--- work because its unfinished issues (at least one) are all under an archived or canceled
--- epic or rock (the target itself, say); the message names the parent and how to end them.
--- cards: the target's scope, read already.
function M.ended_target(board, target, cards)
  if target.type == "issue" then
    if FINAL[target.status] then return nil end
    local p = M.ended_parent(board, target)
    if not p then return nil end
    return string.format("%s is %s: its issues are not worked; end %s with %s", p.id, p.status, target.id,
      end_each(target.id))
  end
  local parents, names, ids, left, seen = {}, {}, {}, 0, {}
  for _, c in ipairs(cards or M.scope(board, target)) do
    if not FINAL[c.status] then
      local p = OVER[target.status] and target or M.ended_parent(board, c, seen)
      if not p then return nil end
      left = left + 1
      if left <= 5 then ids[left] = c.id end
      if not parents[p.id] then
        parents[p.id] = true
        names[#names + 1] = p.id .. " is " .. p.status
      end
    end
  end
  if left == 0 then return nil end
  return string.format("%s: the %d unfinished issue%s under %s not worked; end each (%s%s) with %s",
    table.concat(names, ", "), left, left == 1 and "" or "s", (#names == 1 and "it" or "them") .. (left == 1 and " is"
    or " are"), table.concat(ids, ", "), left > #ids and string.format(" and %d more", left - #ids) or "", end_each("ID"))
end

local function by_priority(a, b)
  if a.priority ~= b.priority then return a.priority > b.priority end
  if a.created_at ~= b.created_at then return a.created_at < b.created_at end
  return a.id < b.id
end

--- candidates(board, target, cards, busy [, order]) -> cards to start, in order (busy: id ->
--- true). order: for an issue target, an orket.ready order of its epic, refreshed, which
--- answers whether the issue is runnable (else the epic's ready order is built to ask).
function M.candidates(board, target, cards, busy, order)
  local review, working = {}, {}
  for _, c in ipairs(cards) do
    if not busy[c.id] then
      if c.status == "code_review" or c.status == "ready_for_testing" then review[#review + 1] = c
      elseif c.status == "in_progress" then working[#working + 1] = c end
    end
  end
  table.sort(review, by_priority)
  table.sort(working, by_priority)
  local out = {}
  for _, c in ipairs(review) do out[#out + 1] = c end
  for _, c in ipairs(working) do out[#out + 1] = c end
  local runnable
  if target.type == "issue" and order then
    runnable = {}
    if order:runnable(target.id) then
      -- (the issue is the scope the caller read: cards[1])
      runnable[1] = cards[1] and cards[1].id == target.id and cards[1] or assert(board:get(target.id))
    end
  elseif target.type == "issue" then
    runnable = {}
    -- the epic the issue is under now (an import may have moved it since target was read)
    local now = board:get(target.id)
    for _, c in ipairs(board:ready(now and now.parent)) do
      if c.id == target.id then runnable[1] = c end
    end
  else
    runnable = board:ready(target.id)
  end
  for _, c in ipairs(runnable) do
    if not busy[c.id] then out[#out + 1] = c end
  end
  return out
end

-- ---- the incremental view -------------------------------------------------------------
-- A run's scheduling passes ask the same question again and again after small changes: the
-- ready part is orket.ready's order (board:ready's too), followed through the journal; the
-- view adds the cards in review and in progress, kept from the same reloads.
local View = {}
View.__index = View

--- view(board, target) -> view with :refresh() and :candidates(busy) -> iterator over the
--- cards candidates() would list, in the same order.
function M.view(board, target)
  local v = setmetatable({ board = board, target = target, review = {}, working = {}, cards = {}, earlier = {} },
    View)
  if target.type ~= "issue" then
    v.order = ready.new(board, target, function(c)
      v.cards[c.id] = c
      -- a card handed in for testing is moved on to review by the engine (prepare)
      v.review[c.id] = (c.status == "code_review" or c.status == "ready_for_testing") or nil
      v.working[c.id] = c.status == "in_progress" or nil
    end, function()
      -- an import rebuilds the order: the sets start over from the cards still in the
      -- scope. A card it moved to another epic is reloaded no more, so kept here it stayed
      -- as last seen (in review, say) and was given turns out of scope, and after it was
      -- done, until its budget ran out. What was in the scope is kept for left().
      for id in pairs(v.cards) do v.earlier[id] = true end
      v.cards, v.review, v.working = {}, {}, {}
    end)
  else
    -- an issue's run asks each pass only whether the issue is runnable: its epic's order
    -- (the whole board's without one) is kept and followed through the journal, where
    -- board:ready built the epic's whole order again every pass
    v:follow_issue()
    v.issue = nil -- (read again by the pass's refresh)
  end
  return v
end

-- An issue's run follows the issue: its epic's order is built for the epic the issue is
-- under now. An import that moved it to another epic rebuilt the old epic's order without
-- it, and the issue, back to ready (a retry), read as not runnable: the run ended stalled.
-- -> whether the order was built anew (it then starts at the journal's latest event). The
-- card read is kept for this pass's candidates, so the issue is read once a pass.
function View:follow_issue()
  local c = self.board:get(self.target.id)
  self.issue = c
  local parent = c and c.parent
  if self.issue_order and parent == self.issue_parent then return false end
  self.issue_parent = parent
  local p = parent and self.board:get(parent)
  self.issue_order = ready.new(self.board, p or nil)
  return true
end

--- view:refresh(): applies the journal's events since the last refresh
function View:refresh()
  if self.order then self.order:refresh() end
  -- the issue's epic first: an order built anew for the epic it moved to is up to date,
  -- where refreshing the old one first rebuilt it for the import, only to be dropped
  if self.issue_order and not self:follow_issue() then self.issue_order:refresh() end
end

--- under(board, target, id) -> whether card id is under card target (or is it) on the board now
local function under(board, target, id)
  local c, guard = board:get(id), 0
  while c and guard < 8 do -- (the board is three levels deep)
    if c.id == target then return true end
    c, guard = c.parent and board:get(c.parent), guard + 1
  end
  return false
end

M.under = under

-- The statuses a carried turn goes on from: those a turn is given in (candidates)
local CARRIED = { ready = true, in_progress = true, code_review = true, ready_for_testing = true }

--- view:carry(ids): of ids, the cards on which the run left a turn half done (a killed or
--- stopped run, resumed: recorded.open_turn_cards), those an import moved out of the target
--- meanwhile: each is given the rest of that turn (first, in candidates) and nothing more,
--- as a turn in flight when an import moves its card ends as it would have (docs/engine.md),
--- and is one of the cards left() names. Passed over, the turn stayed open for good, and a
--- run of the card's new parent redid it.
function View:carry(ids)
  for _, id in ipairs(ids) do
    if not under(self.board, self.target.id, id) then
      self.carried = self.carried or {}
      self.carried_all = self.carried_all or {}
      self.carried[id] = true
      self.carried_all[#self.carried_all + 1] = id
      self.earlier[id] = true
    end
  end
end

--- view:is_carried(id) -> whether card id is one carry() took whose turn is not given yet
function View:is_carried(id)
  return self.carried ~= nil and self.carried[id] == true
end

--- view:carried_done(id): card id's carried turn is given (or it has none open any more)
function View:carried_done(id)
  if self.carried then self.carried[id] = nil end
end

--- view:carried_cards() -> the ids carry() took, in its order ({} when none)
function View:carried_cards()
  return self.carried_all or {}
end

-- The carried cards to give a turn this pass (not busy, in a status a turn is given in),
-- read from the board now. One an import moved back under the target is the scope's again.
local function carried_now(v, busy)
  local out = {}
  for id in pairs(v.carried) do
    if not busy[id] then
      if under(v.board, v.target.id, id) then
        v.carried[id] = nil
      else
        local c = v.board:get(id)
        if c and CARRIED[c.status] then out[#out + 1] = c end
      end
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

--- view:left() -> array of {id=, parent=} (sorted by id), the cards that were in the scope
--- earlier in the run and are no longer: an import moved them to another epic or rock
--- (parent: where they are now), those carried (carry) too.
function View:left()
  local out = {}
  for id in pairs(self.earlier) do
    if not self.cards[id] then
      local c = self.board:get(id)
      out[#out + 1] = { id = id, parent = c and c.parent }
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

local function sorted_set(v, set, busy)
  local out = {}
  for id in pairs(set) do
    if not busy[id] then out[#out + 1] = v.cards[id] end
  end
  if #out > 1 then table.sort(out, by_priority) end
  return out
end

-- View:candidates' iterator (for c in f, s): s = {first=, i=, order=, j=, busy=}
local function next_candidate(s)
  local i = s.i + 1
  s.i = i
  local c = s.first[i]
  if c then return c end
  local j = s.j
  if not j then return nil end
  j, c = s.order:next_after(j, s.busy)
  s.j = j
  return c
end

--- view:candidates(busy) -> iterator, state over cards to start: review, then in progress, then
--- ready (for c in view:candidates(busy); called by hand: it(state))
function View:candidates(busy)
  if not self.order then
    -- (the issue as refresh read it, in the same transaction; taken once: a view asked
    -- again without a refresh reads it anew)
    local scope = self.issue and { self.issue } or M.scope(self.board, self.target)
    self.issue = nil
    local list = M.candidates(self.board, self.target, scope, busy, self.issue_order)
    if self.carried and next(self.carried) then
      local first = carried_now(self, busy)
      list = table.move(list, 1, #list, #first + 1, first)
    end
    local i = 0
    return function()
      i = i + 1
      return list[i]
    end
  end
  local first = sorted_set(self, self.review, busy)
  local working = sorted_set(self, self.working, busy)
  for i = 1, #working do first[#first + 1] = working[i] end -- sorted_set's list, without holes
  if self.carried and next(self.carried) then
    local carried = carried_now(self, busy)
    first = table.move(first, 1, #first, #carried + 1, carried)
  end
  -- one state table for the walk, no closures: first, then the order's (the cached card: a
  -- card started in this pass is still ready here, busy says it is not)
  return next_candidate, { first = first, i = 0, order = self.order, j = 0, busy = busy }
end

-- Words of the comment the engine blocks a card with when its turns ran out without one
-- tool call (run.lua): a bigger budget would not help there.
M.NO_TOOL = "in which the model called no tool"

-- Words of that comment when the provider cut the model's answers (run.lua): the output
-- limit, not tool calling, is what to change
M.CUT = "as the provider ended its answers"
-- ... and when its content filter stopped them: the card's text or the model, not a limit
M.FILTERED = "as the provider's content filter stopped its answers"

-- Whether the engine's last word on a card blocked for a budget is that its model called no
-- tool -> true, and "cut" or "filtered" when the provider ended its answers so | false
local function called_no_tool(board, id)
  local cs = board:comments(id)
  local last = cs[#cs]
  local said = last ~= nil and last.author == "orket" and last.body:find(M.NO_TOOL, 1, true) ~= nil
  if not said then return false end
  return true, last.body:find(M.CUT, 1, true) and "cut" or last.body:find(M.FILTERED, 1, true) and "filtered" or nil
end

-- The card's move to blocked, when it is its last transition: {by=, note=} (the data)
local function block_move(board, id)
  local m = sj.last_transition(board.db, id)
  return m and m.to == "blocked" and m.data or {}
end

local function for_budget(d)
  if d.by then return d.by == "engine" end
  local note = type(d.note) == "string" and d.note or ""
  return note:find("^Turn stopped: ") ~= nil or note:find("^Stopped after %d") ~= nil
end

--- blocked_for_budget(board, id) -> whether a card blocked with reason resource was
--- blocked by the engine for a budget (its turns, steps, tool calls, tokens or wall clock:
--- the engine blocks for nothing else with that reason), not by an agent or a person
--- waiting for something. An agent's move is journaled without `by`, the engine's with
--- "engine"; its words say it too (a board from before `by` was journaled).
function M.blocked_for_budget(board, id)
  return for_budget(block_move(board, id))
end

-- Words of the engine's block when the calls of the turns that spent a budget were all
-- refused by the gate, or one call made again and again (run.lua): more of the budget would
-- be spent the same way. The note then says "... would not help: FIX; then 'orket retry ..."
M.REFUSED = "was refused by the gate"
M.REPEATED = "made one call again and again"
M.TOOL_FAILED = "failed in the tool itself"
M.NOT_HELPED = "would not help: "

-- What the block of a budget spent in vain says would help, and its words | nil
local function wasted_fix(note)
  if type(note) ~= "string" then return nil end
  local fix = note:match(M.NOT_HELPED .. "(.-); then 'orket retry ")
  if not fix then return nil end
  if note:find(M.REFUSED, 1, true) then return fix, "blocked: a budget ran out on calls the gate refused" end
  if note:find(M.REPEATED, 1, true) then return fix, "blocked: a budget ran out on one call repeated" end
  if note:find(M.TOOL_FAILED, 1, true) then return fix, "blocked: a budget ran out on calls that failed in the tool" end
  return nil
end

-- The note of an agent's or a person's block (its move's), its first line cut to 200 bytes | nil
local function resource_note(note)
  if type(note) ~= "string" or not note:find("%S") then return nil end
  note = note:match("^%s*([^\n]*)"):gsub("%s+$", "")
  if #note > 200 then note = note:sub(1, 200):gsub("[\128-\191]*$", ""):gsub("[\192-\255]$", "") .. "..." end
  return note
end

-- The card's last comment of orket's ("" when none): what says why a system block came,
-- the turn's own failure ("The turn failed: ...": a role's, a tool's, a script's) or the
-- model's ("The model failed (CLASS): ...")
local function last_orket_comment(board, id)
  local all = comments.of_card(board.db, id)
  for i = #all, 1, -1 do
    if all[i].author == "orket" then return all[i].body end
  end
  return ""
end

-- The classes of a model failure that pass with time (the engine asks again for them:
-- orket.engine.turn's RETRYABLE): a card one of them blocked is taken back by a resume
-- of its run (taken_back).
M.PASSING = { transient = true, rate_limited = true, timeout = true }

--- model_blocked(board, id) -> the class of the model failure the engine blocked the card
--- for, when its last move was that block and the class passes with time (PASSING) | nil.
--- Read from the block's own note ("The model failed (CLASS): ..."), not from comments a
--- person may have added since.
function M.model_blocked(board, id)
  local d = block_move(board, id)
  if d.by ~= "engine" or d.reason ~= "system" or type(d.note) ~= "string" then return nil end
  local class = d.note:match("^The model failed %((%a[%w_]*)%)")
  return M.PASSING[class] and class or nil
end

--- role_blocked(board, id) -> the role's file ("roles/coder.lua") whose error in a turn the
--- engine blocked the card for, when its last move was that block | nil. A role is the
--- operator's script, hot reloaded: one bad save blocked every card of the role at once, in
--- the same second and before any model call, and each needed its own retry once fixed.
function M.role_blocked(board, id)
  local d = block_move(board, id)
  if d.by ~= "engine" or d.reason ~= "system" or type(d.note) ~= "string" then return nil end
  return d.note:match("^The turn failed: (roles/[%w_%-]+%.lua):%d+: ")
end

--- take_back(board, target, run_id) -> {{card=, class=, role=}, ...}: moves back to ready, as
--- the engine's move, each card under target that model_blocked names (class: the failure's),
--- or role_blocked (class "role", role: its file), its note saying so and that its budgets go
--- on (no retry event: its turns and tokens so far still count). Inside the caller's
--- transaction (a resume's start: Run:take_back).
function M.take_back(board, target, run_id)
  local moved = {}
  for _, c in ipairs(M.scope(board, target)) do
    local blocked = c.status == "blocked" and c.wait_reason == "system"
    local class = blocked and M.model_blocked(board, c.id)
    local role = blocked and not class and M.role_blocked(board, c.id)
    if class or role then
      local note = role and string.format("taken back by the resume of run %d: it was blocked when its role's script "
        .. "failed (%s), which its file decides; its budgets go on as they were", run_id, role)
        or string.format("taken back by the resume of run %d: it was blocked when the model failed (%s), "
        .. "which passes with time; its budgets go on as they were", run_id, class)
      -- (refused: another process moved it first; it is no longer blocked)
      if board:transition(c.id, "ready", { actor = board_mod.ENGINE, note = note }) then
        moved[#moved + 1] = { card = c.id, class = class or "role", role = role or nil }
      end
    end
  end
  return moved
end

-- What gets a card blocked by the model's failure moving, by the failure's class (the
-- engine's comment "The model failed (CLASS): ...", last: the card's last comment of
-- orket's): waiting mends a server that is down or busy, not a key it refuses nor a request
-- it cannot take. A failure that passes with time: a resume of the run takes the card back
-- with its budgets as they are (resume: the command, "orket resume RUN").
local function after_model_failure(last, id, resume)
  local class = last:match("^The model failed %((%a[%w_]*)%)")
  if M.PASSING[class] and resume then
    return string.format("once the model answers again, %s takes it back (orket retry %s also starts its budgets over)",
      resume, id)
  end
  if class == "auth" then
    return string.format("check the key of the model's provider (its api_key_env or api_key in orket.lua; the "
      .. "card's last comment names the server), then orket retry %s", id)
  elseif class == "bad_request" then
    return string.format("fix what the card's last comment names (the model's name, base_url, a request the server "
      .. "refuses), then orket retry %s", id)
  end
  return string.format("once the model answers again, orket retry %s", id)
end

-- What a card that does not move waits for, in words, and the command that gets it
-- moving: a blocked card is retried (after its cause is fixed), a waiting one answered,
-- a card handed in for testing retried (on to review).
local function unstick(board, c, resume)
  local id = c.id
  if c.status == "waiting_for_developer" then
    local p = approvals.pending(board.db, id)
    if p then return "waiting for approval", approvals.command(id, p.id) .. " --approve (or --deny \"reason\")" end
    if c.wait_reason == "budget" then
      return "waiting for a person: a money budget would be passed (its comment gives the amounts)",
        string.format("orket answer %s --approve to approve one budget more, or raise it in orket.lua", id)
    end
    if c.wait_reason == "review" then
      return "waiting for review on the forge", "review its pull request (orket card " .. id .. "); the forge's webhook moves it"
    end
    -- a requirements review's answer is the reviewed card's (orket answer takes either)
    return "waiting for the developer", string.format("orket answer %s \"your answer\"",
      c.wait_reason == "input" and review.reviewed_card(board.db, id) or id)
  elseif c.status == "blocked" then
    local last = c.wait_reason == "system" and last_orket_comment(board, id)
    if last and last:find("^The turn failed: merging orket/") then
      return "blocked: its merge into main failed", string.format("put workspace/'s repository right as the card's "
        .. "last comment says, then orket retry %s", id)
    elseif last and last:find("^The turn's files were not committed: ") then
      return "blocked: its files could not be committed", string.format("fix what the card's last comment names in "
        .. "its files (orket card %s), then orket retry %s", id, id)
    elseif last and last:find("^The turn failed") then
      local role = resume and M.role_blocked(board, id)
      if role then
        return "blocked: its role's script failed", string.format("fix %s, then %s takes it back (orket retry %s also "
          .. "starts its budgets over)", role, resume, id)
      end
      return "blocked: the turn failed", string.format("fix what the card's last comment names (a role, a tool or "
        .. "a script), then orket retry %s", id)
    elseif last then
      return "blocked: the model or a role failed", after_model_failure(last, id, resume)
    end
    local no_tool, cut = false, false
    if c.wait_reason == "resource" then no_tool, cut = called_no_tool(board, id) end
    if cut == "filtered" then
      return "blocked: the provider's content filter stopped the model's answers",
        string.format("reword the card or give the seat another model (see the card's last comment), then orket retry "
          .. "%s", id)
    elseif cut then
      return "blocked: the model's answers were cut at the output limit",
        string.format("raise budgets.max_output_tokens (or give the seat a model with more room), then orket retry %s", id)
    elseif no_tool then
      return "blocked: the model called no tool",
        string.format("orket retry %s once the model calls tools (see the card's last comment)", id)
    end
    local move = c.wait_reason == "resource" and block_move(board, id)
    if move and for_budget(move) then
      -- more of a budget spent on refused or repeated calls would go the same way
      local fix, words = wasted_fix(move.note)
      if fix then return words, string.format("%s, then orket retry %s", fix, id) end
      return "blocked: a budget ran out", string.format("raise the budget in orket.lua, then orket retry %s", id)
    elseif move then
      -- an agent's (or a person's) block: what it waits for is in its note
      local note = resource_note(move.note)
      return "blocked: waits for a resource" .. (note and (": " .. note) or ""),
        string.format("orket retry %s once the resource is there", id)
    end
    return "blocked (" .. tostring(c.wait_reason) .. ")", "orket retry " .. id
  elseif c.status == "ready_for_testing" then
    return "handed in for testing", "orket retry " .. id
  elseif c.status == "canceled" or c.status == "archived" then
    return "it will never be done", nil
  elseif c.status == "ready" or c.status == "in_progress" or c.status == "code_review" then
    return "not finished", "orket run " .. (c.parent or id)
  end
  return c.status, nil
end

-- A card's dependencies, its own then its epic's (an issue waits for those too). epics:
-- the report's epic id -> its depends_on, so each epic is read once however many cards it has.
local function deps_of(board, c, epics)
  local deps = { table.unpack(c.depends_on or {}) }
  if c.parent then
    local eds = epics[c.parent]
    if eds == nil then
      local epic = board:get(c.parent)
      eds = epic and epic.depends_on or false
      epics[c.parent] = eds
    end
    for _, d in ipairs(eds or {}) do deps[#deps + 1] = d end
  end
  return deps
end

-- The command that gets a card moving, following a ready card's unfinished dependencies
-- (and its epic's) to the first one a command moves. Depth first without recursion (a
-- chain of 100,000 cards is one path), each card's answer kept in r.moves (false: none)
-- for the whole report: dependencies are acyclic (import and create refuse a cycle), so a
-- card's answer is the same from every dependent, and a chain of n cards is walked once,
-- not n times (seen only guards against a cycle the board should never hold).
local function first_move(board, c, seen, r)
  local moves = r.moves
  if moves[c.id] ~= nil then return moves[c.id] or nil end
  local stack = { { card = c, deps = c.status == "ready" and deps_of(board, c, r.epics) or {}, i = 0 } }
  local found
  while true do
    local f, down = stack[#stack], nil
    while not found and f.i < #f.deps do
      f.i = f.i + 1
      local d = f.deps[f.i]
      if not seen[d] then
        seen[d] = true
        if moves[d] ~= nil then
          found = moves[d] or nil
        else
          local dc = board:get(d)
          if dc and dc.status ~= "done" then
            down = dc
            break
          end
        end
      end
    end
    if down then
      stack[#stack + 1] = { card = down, deps = down.status == "ready" and deps_of(board, down, r.epics) or {}, i = 0 }
    else
      if not found then found = select(2, unstick(board, f.card, r.resume)) end
      moves[f.card.id] = found or false
      stack[#stack] = nil
      if #stack == 0 then return found end
    end
  end
end

-- At most this many unfinished dependencies are named in a card's reason, then "and N more"
-- (a card may depend on a thousand: its reason is one line of the live view and the stall)
local WAITS_SHOWN = 10

--- stuck(board, cards [, why]) -> array of {card=, status=, wait_reason=, reason=, next=,
--- waits_for=, approval=} for every unfinished card; next: the command that gets it moving
--- (for a card waiting for a dependency, the dependency's); a card held for an approval has
--- waits_for "approval" and approval = the request's id, one stopped by a money budget
--- waits_for "budget" (docs/cost.md), else waits_for "input" when it waits. why: what the run knows, {skipped = {id = the reason the card was skipped},
--- halted = the run budget that ended the run, run = the run's id}, so a card that could
--- have taken a turn says why it did not; and pause = a function called before each card
--- (the report of tens of thousands of cards takes a second or more: the caller lets its
--- loop run meanwhile), whose true ends the report: stuck then returns nil.
function M.stuck(board, cards, why_run)
  why_run = why_run or {}
  local skipped = why_run.skipped or {}
  local resume = why_run.run and ("orket resume " .. why_run.run) or "orket resume"
  local out = {}
  -- what the report has learnt of the board: epics' depends_on, cards' first moves
  -- (a run of the workers too: its resume requeues it, and that start takes the card back)
  local r = { epics = {}, moves = {}, parents = {}, resume = why_run.run and resume or nil }
  local pause = why_run.pause
  for _, c in ipairs(cards) do
    if pause and pause() then return nil end
    if not FINAL[c.status] then
      local why, waits_for, pending, next_step
      -- under a parent a person archived (or canceled) a card gets no turn whatever it
      -- waits for: an answer or a retry would not move it (Run:prepare)
      local over = M.ended_parent(board, c, r.parents)
      if over then
        why, next_step = M.ended_why(over, c.id)
      elseif c.status == "waiting_for_developer" then
        pending = approvals.pending(board.db, c.id)
        waits_for = pending and "approval" or (c.wait_reason == "review" or c.wait_reason == "budget") and c.wait_reason or "input"
        why = (not pending and c.wait_reason == "review") and "waiting for review on the forge" or pending and string.format("waiting for approval of %s (request #%d): %s; answer with "
          .. "'%s --approve' or --deny \"reason\"", approvals.describe(pending), pending.id,
          tostring(pending.reason or pending.rule), approvals.command(c.id, pending.id)) or "waiting for input from a person"
        local words
        words, next_step = unstick(board, c, r.resume)
        if waits_for == "budget" then why = words end
      elseif c.status == "blocked" then
        why = "blocked (" .. tostring(c.wait_reason) .. ")"
        local words
        words, next_step = unstick(board, c, r.resume)
        -- an agent's resource block says what it waits for in its note, not in a comment
        local note = c.wait_reason == "resource" and words:match("^blocked: waits for a resource: (.*)$")
        if note then why = why .. ": " .. note end
      else
        -- its own dependencies, then its epic's; the first WAITS_SHOWN named, the others counted
        local waits, unfinished = {}, 0
        for _, d in ipairs(deps_of(board, c, r.epics)) do
          local dc = board:get(d)
          if dc and dc.status ~= "done" then
            unfinished = unfinished + 1
            if unfinished <= WAITS_SHOWN then
              local what = unstick(board, dc, r.resume)
              waits[#waits + 1] = d .. " (" .. dc.status .. (what ~= dc.status and (", " .. what) or "") .. ")"
            end
            if dc.status == "canceled" or dc.status == "archived" then
              -- a card made on the board (the API, a tool) has no depends_on in a file to drop
              next_step = next_step or (c.source and string.format("orket cancel %s \"reason\", or drop %s from its "
                .. "depends_on in %s and orket import", c.id, d, c.source) or string.format("orket cancel %s \"reason\" "
                .. "(it was made on the board: its dependencies are kept), and file its work again without %s", c.id, d))
            else
              next_step = next_step or first_move(board, dc, { [c.id] = true, [d] = true }, r)
            end
          end
        end
        if #waits > 0 then
          why = "waits for " .. table.concat(waits, ", ")
            .. (unfinished > #waits and string.format(" and %d more", unfinished - #waits) or "")
        elseif skipped[c.id] then
          why = "skipped in " .. c.status .. ": " .. skipped[c.id]
          next_step = "fix that, then " .. resume
        elseif why_run.halted then
          why = "stopped in " .. c.status .. ": " .. why_run.halted
          next_step = resume
        elseif c.status == "ready_for_testing" then
          why = "handed in for testing"
          _, next_step = unstick(board, c, r.resume)
        else
          why = "cannot be scheduled from " .. c.status
          next_step = resume
        end
      end
      next_step = next_step or resume
      -- (not for a card waiting for review on the forge: its last comment is of an earlier
      -- cycle, a request for changes or a closed pull request, which it no longer waits on;
      -- read only for the cards it is added to: a chain of ready cards makes no query each)
      if not pending and not over and (c.status == "blocked" or c.status == "waiting_for_developer")
          and not (c.status == "waiting_for_developer" and c.wait_reason == "review") then
        local cs = board:comments(c.id)
        local last = cs[#cs]
        if last then why = why .. ": " .. last.body end
      end
      out[#out + 1] = { card = c.id, status = c.status, wait_reason = c.wait_reason, reason = why, next = next_step,
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
