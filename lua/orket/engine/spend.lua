-- orket.engine.spend: the money side of model calls (docs/cost.md). After a call: its
-- tokens by kind and its cost from the provider's usage and the model's price (record),
-- or the charge of a call whose answer's usage was refused, billed all the same (refused).
-- Before a call: the money budgets (budgets.cost_per_card, _epic, _rock, _run, _day),
-- checked against what the scope spent plus the most the call may cost, so a run never
-- spends more than one call past a budget (check). A card's budget that would be passed
-- makes the card wait for a person, the run's or the day's ends the run, as the token
-- budgets do. Totals are read from the journal once per scope, then kept up to date before
-- each call by reading the calls every process recorded since (orket.store.costs.since: by
-- primary key, as many rows as were recorded since), so runs and workers sharing a scope
-- see each other's spending. A call in flight holds its estimate against its scopes until
-- its cost is committed, so turns of this process running at once (concurrency) cannot
-- each pass the check on the same room: a call that fits only once those in flight end
-- waits for them (wait_room). Another process's calls in flight are not seen. A card
-- waiting on its budget goes on once a person approves (orket.actions.budget_wait) or raises
-- the budget (release_raised).
local cost = require "orket.cost"
local settings = require "orket.settings"
local costs = require "orket.store.costs"
local common = require "orket.llm.common"
local sj = require "orket.store.journal_reads"
local board_mod = require "orket.board"
local task = require "orket.task"
local uv = require "luv"

local M = {}

-- the most tokens a call may answer with when budgets.max_output_tokens is 0 (the
-- provider's own limit, unknown here): what the estimate before a call assumes
M.DEFAULT_MAX_OUTPUT = 4096

M.SCOPES = { "card", "epic", "rock", "run", "day" }
-- each scope's budget's name in orket.lua, made once (check runs before every model call)
local BUDGET_KEYS = {}
for i, s in ipairs(M.SCOPES) do BUDGET_KEYS[i] = "cost_per_" .. s end


-- the scopes whose budget makes the card wait (the others end the run)
M.CARD_SCOPES = { card = true, epic = true, rock = true }

-- Each models.prices entry's price, by the entry (weak): the check and the record read it
-- at every call, and making it anew from its text cost more than either. A reload's entries
-- are new tables; the REPL may edit one in place, so the fields it was made from are kept
-- and compared at each read (a few fields against making the price again).
local kept_prices = setmetatable({}, { __mode = "k" })

local function same_fields(v, from)
  local n = 0
  for k, x in pairs(v) do
    if from[k] ~= x then return false end
    n = n + 1
  end
  return n == from.n_
end

local function fields_of(v)
  local from, n = {}, 0
  for k, x in pairs(v) do from[k], n = x, n + 1 end
  from.n_ = n
  return from
end

--- price(run, spec) -> the price of "provider:model" | nil (none set)
function M.price(run, spec)
  local models = run.settings.models
  local t = models and models.prices
  if type(t) ~= "table" or spec == nil then return nil end
  local v = t[spec]
  if type(v) ~= "table" then return nil end -- a table: checked when orket.lua was read
  local kept = kept_prices[v]
  if kept and same_fields(v, kept.from) then return kept.price end
  local p = cost.price(v, "models.prices")
  kept_prices[v] = { price = p, from = fields_of(v) }
  return p
end

--- release(run, job): the job's call in flight no longer holds its estimate (its cost is
--- committed, for the next check to read, or it failed); the turns waiting for room look
--- again. Idempotent.
-- the turns waiting for room look again
local function wake(run)
  local waiters = run.spend.waiters
  run.spend.waiters = {}
  for _, co in ipairs(waiters) do
    -- from the loop, not from inside the releasing task
    local timer = uv.new_timer()
    timer:start(0, 0, function()
      timer:close()
      if coroutine.status(co) == "suspended" then task.resume(co) end
    end)
  end
end

function M.release(run, job)
  local h = job.money_hold
  if not h then return end
  job.money_hold = nil
  for _, t in ipairs(h.totals) do t.held = t.held - h.amount end
  wake(run)
end

--- committed(run, job): the job's call is in the store now (its turns row, or its charged
--- failure), for the next check's read to count. Its hold goes at once unless a check is in
--- flight: on PostgreSQL that check's reads wait, and one that began before the commit does
--- not see the row, so the hold stays until a catch-up that began after now has read it
--- (catch_up releases it then); the waiting turns look again, and their next check's read
--- is such a one.
function M.committed(run, job)
  local h = job.money_hold
  if not h then return end
  if (run.money_checking or 0) == 0 then return M.release(run, job) end
  job.money_hold = nil
  local d = run.money_deferred or {}
  d[#d + 1] = { hold = h, after = run.money_reads or 0 }
  run.money_deferred = d
  wake(run)
end

-- The holds committed before the catch-up numbered n began: counted in its read, released.
local function settle(run, n)
  local d = run.money_deferred
  if not d then return end
  local keep = {}
  for _, e in ipairs(d) do
    if e.after < n then
      for _, t in ipairs(e.hold.totals) do t.held = t.held - e.hold.amount end
    else
      keep[#keep + 1] = e
    end
  end
  run.money_deferred = #keep > 0 and keep or nil
end

--- wait_room(run): suspends the calling turn until a call in flight releases its hold.
--- When a hold committed meanwhile is kept for a read (committed, during a check: on
--- PostgreSQL the check that found no room may be the one it was committed under), it
--- returns at once: that hold goes at the next check's read, which nothing else may make
--- (the call's turn may have ended), and the wake its commit gave came before this turn
--- waited, so waiting would be for ever.
function M.wait_room(run)
  if run.money_deferred then return end
  local w = run.spend.waiters
  w[#w + 1] = coroutine.running()
  coroutine.yield()
end

local CHECKING = { __close = function(c) c.run.money_checking = c.run.money_checking - 1 end }

--- guard(run, job) -> a to-be-closed value releasing the job's hold when the turn ends in any
--- way (returned, raised, or its task cancelled while the call was in flight)
local GUARD = { __close = function(g)
  M.aborted(g.run, g.job)
  M.release(g.run, g.job)
end } -- one for every turn
function M.guard(run, job)
  return setmetatable({ run = run, job = job }, GUARD)
end

-- A call's cost recorded: its hold covers it until its transaction commits (then the
-- store has it, and the next check reads it), at least the cost when that is more than the
-- estimate.
local function hold_cost(job, micros)
  local h = job.money_hold
  if not (h and micros and micros > h.amount) then return end
  for _, t in ipairs(h.totals) do t.held = t.held + (micros - h.amount) end
  h.amount = micros
end

-- (estimate_tokens, below)
local estimate_tokens, escapes

--- record(run, job, usage, req) -> {cached_tokens=, cost=, currency=}: what a turns row's
--- data holds of a call's money (cost nil: no price); the call's hold stays until the row
--- commits (release, by the caller). A priced call whose provider reported no usage, or not all of it (usage.estimated:
--- its counts absent or no counts, "abc", null), was billed all the same: it is charged as
--- a refused usage is, at the estimate before the call (the one its hold took), or the
--- counts that came when they are more; usage.note says so.
function M.record(run, job, usage, req)
  local price = M.price(run, job.model)
  local micros = cost.of(price, usage)
  if price and usage and usage.estimated and req then
    local prompt, out = estimate_tokens(req)
    prompt = math.max(prompt, math.tointeger(usage.prompt_tokens) or 0)
    out = math.max(out, math.tointeger(usage.completion_tokens) or 0)
    micros = cost.estimate(price, prompt, out)
    local why = string.format("the provider reported no usage or only part of it: charged at the estimate "
      .. "before the call (%d prompt tokens uncached, %d output tokens), %s", prompt, out, cost.format(micros, price.currency))
    usage.note = usage.note and (usage.note .. "; " .. why) or why
  end
  hold_cost(job, micros)
  return { cached_tokens = usage and usage.cached_tokens, cost = micros, currency = micros and price.currency or nil }
end

-- The cards a scope's total covers, as a set, and the scope's id for this card (read only
-- for an epic's or a rock's scope: the others need its id alone).
local function scope_of(run, scope, card_id)
  if scope == "card" then return card_id end
  if scope == "run" then return run.run_id end
  if scope == "day" then return run.spend.day end -- the store's UTC day (state, catch_up)
  local card = assert(run.board:get(card_id))
  local parent = card.parent and run.board:get(card.parent)
  if scope == "epic" then return parent and parent.type == "epic" and parent.id or nil end
  if parent and parent.type == "rock" then return parent.id end
  local grand = parent and parent.parent and run.board:get(parent.parent)
  return grand and grand.type == "rock" and grand.id or nil
end

-- The scope's running total, counting from mark {turns id, events id}: read once up to the
-- ids the run has caught up to (catch_up adds what is recorded after them), filed by scope
-- and id for catch_up.
local NO_MARK = { 0, 0 }
local function total(run, scope, id, mark, currency)
  local sp = run.spend
  local key = string.format("%s:%s@%d:%s", scope, tostring(id), mark[1], currency)
  local t = sp.totals[key]
  if t then return t, key end
  local f = { after_turn = mark[1], after_event = mark[2], upto_turn = sp.turn, upto_event = sp.event }
  if scope == "day" then f.since = id .. "T00:00:00.000Z" else f[scope] = id end
  local micros = costs.totals(run.db, f).cost[currency] or 0
  -- on PostgreSQL the read waits, and another turn may have made the total meanwhile:
  -- that one is kept, or each turn would hold its estimate on a total of its own; and
  -- catch_up may have gone past the ids read to meanwhile: the total reads up to them too
  t = sp.totals[key]
  if t then return t, key end
  while f.upto_turn ~= sp.turn or f.upto_event ~= sp.event do
    f.after_turn, f.after_event = math.max(mark[1], f.upto_turn), math.max(mark[2], f.upto_event)
    f.upto_turn, f.upto_event = sp.turn, sp.event
    micros = cost.plus(micros, costs.totals(run.db, f).cost[currency] or 0)
    if sp.totals[key] then return sp.totals[key], key end
  end
  t = { micros = micros, held = 0, currency = currency, mark = mark, scope = scope, id = id }
  sp.totals[key] = t
  local by = sp.by[scope][id]
  if not by then
    by = {}
    sp.by[scope][id] = by
  end
  by[#by + 1] = t
  return t, key
end

-- The totals a recorded call r (orket.store.costs.since's row) counts in, by its scopes.
local function count_in(list, r, src, day)
  if not list then return end
  for _, t in ipairs(list) do
    if t.currency == r.currency and r.id > (src == "t" and t.mark[1] or t.mark[2])
      and (t.scope ~= "day" or t.id ~= day or r.in_day == 1) then
      t.micros = cost.plus(t.micros, r.spent)
    end
  end
end

-- The store's count of rolled-back transactions that wrote, on SQLite (nil elsewhere)
local function undone(run)
  local conn = run.db and run.db.conn
  return type(conn) == "userdata" and conn:rollbacks() or nil
end

-- On SQLite a read made inside a transaction since rolled back (a failed step) counted rows
-- that are gone and left the marks past ids the next rows take again: every total is then
-- summed again from its own mark up to the journal's heads now (SQLite's reads do not wait,
-- so no other turn's catch-up runs meanwhile). PostgreSQL gives no id twice: there an
-- undone call stays counted until the run's next start, erring on the side of spending less.
local function reread(run, sp)
  local turn, event = costs.heads(run.db)
  for _, t in pairs(sp.totals) do
    local f = { after_turn = t.mark[1], after_event = t.mark[2], upto_turn = turn, upto_event = event }
    if t.scope == "day" then f.since = t.id .. "T00:00:00.000Z" else f[t.scope] = t.id end
    t.micros = costs.totals(run.db, f).cost[t.currency] or 0
  end
  sp.turn, sp.event = turn, event
end

-- The store's day moved on (UTC midnight passed in a run, or a worker's run that goes on
-- for days): the days before it are checked no more, so their totals and warnings go, or a
-- run of many days would keep one more of each a day, each counting every later call.
-- Only earlier days (YYYY-MM-DD compares in date order): a read that names an earlier day
-- after a later one (PostgreSQL's pooled reads ending out of order, the store's clock
-- stepped back) must not drop the later day's total, its holds and its warning mark.
local function forget_days(sp, day)
  for d in pairs(sp.by.day) do
    if d < day then sp.by.day[d] = nil end
  end
  for key, t in pairs(sp.totals) do
    if t.scope == "day" and t.id < day then
      sp.totals[key] = nil
      sp.warned[key] = nil
    end
  end
end

-- Before a check: the calls every process (this one too) recorded since the run last
-- looked join the totals they count in, so runs and workers sharing a scope see each
-- other's spending. One read by primary keys of what was recorded since; the same read
-- gives the store's day (sp.day), by the clock that dated the rows. -> the day
local function catch_up(run)
  local sp = run.spend
  local u = undone(run)
  if u ~= sp.undone then
    reread(run, sp)
    sp.undone = u
  end
  local n = (run.money_reads or 0) + 1 -- (committed: a hold waits for a read begun after it)
  run.money_reads = n
  local rows = costs.since(run.db, sp.turn, sp.event)
  local day -- the store's day: the "e" row's, read first (last, as the statement lists it)
  for i = #rows, 1, -1 do
    if rows[i].src == "e" then
      day = rows[i].currency
      break
    end
  end
  if day and sp.day and day > sp.day then forget_days(sp, day) end -- (forward only)
  -- on PostgreSQL the read waits: another turn's catch-up may have counted some rows
  -- meanwhile (ids are visible in order, so those are the ones up to its ids)
  local turn, event = sp.turn, sp.event
  local by = sp.by
  for _, r in ipairs(rows) do
    local src = r.src
    if src == "e" then
      if r.id > sp.event then sp.event = r.id end
    elseif r.id > (src == "t" and turn or event) then
      if src == "t" and r.id > sp.turn then sp.turn = r.id end
      if r.spent then
        local card, parent = r.card_id, r.parent
        count_in(by.card[card], r, src, day)
        count_in(by.run[r.run_id], r, src, day)
        count_in(by.epic[card], r, src, day)
        if parent then count_in(by.epic[parent], r, src, day) end
        count_in(by.rock[card], r, src, day)
        if parent then count_in(by.rock[parent], r, src, day) end
        if r.grand then count_in(by.rock[r.grand], r, src, day) end
        for _, list in pairs(by.day) do count_in(list, r, src, day) end
      end
    end
  end
  settle(run, n)
  sp.day = day
  return day
end

-- The run's money state: its totals, read at its first check from the journal's ids then,
-- and the store's day then (sp.day: the day budget's day is the store's clock's, which
-- dates the rows it sums, not this process's: on PostgreSQL the server's).
-- the run's money state before its first priced check reads the store (state() below)
local function fresh()
  return { totals = {}, warned = {}, waiters = {} }
end

local function state(run)
  local sp = run.spend
  if sp and sp.turn then return sp, true end
  local u = undone(run) -- (before the heads: a rollback after them reads again)
  local turn, event, day = costs.heads(run.db)
  sp = run.spend -- (another turn may have made it while the read waited)
  if sp and sp.turn then return sp, true end
  sp = sp or fresh()
  sp.by = { card = {}, epic = {}, rock = {}, run = {}, day = {} }
  sp.turn, sp.event, sp.day, sp.undone = turn, event, day, u
  run.spend = sp
  return sp, false
end

-- The most tokens the request may use: its prompt (estimated from its bytes) and its
-- whole allowance of output.
function estimate_tokens(req)
  local n = common.messages_chars(req.messages) + common.tools_chars(req)
  return common.estimate_tokens(n), req.max_tokens or M.DEFAULT_MAX_OUTPUT
end

-- The most the request may cost: its whole prompt uncached and its whole allowance of
-- output.
local function estimate(price, req)
  return cost.estimate(price, estimate_tokens(req))
end

--- refused(run, job, req, counts) -> nil (counts nil) | the charge of a call whose answer's
--- usage was refused (counts: its storable counts, orket.cost.storable_usage): the provider
--- billed it, so it is charged as what the call may have cost before it was sent (the
--- estimate its hold took), or its counts that may be counts when they come to more:
--- {prompt_tokens=, completion_tokens=, cost= (nil: no price), currency=, refused_usage=
--- counts}. The call's hold goes as the charge joins the running totals of its money and
--- token budgets; the journal's model_failure event keeps it for later sums
--- (orket.store.costs, the token budgets' reads).
-- The charge of a call billed with no usage to price it by: the estimate, or counts that
-- come to more. Its hold goes as it joins the running totals.
local function charge(run, job, req, counts)
  local prompt, out = estimate_tokens(req)
  prompt = math.max(prompt, cost.plausible(counts.prompt_tokens))
  out = math.max(out, cost.plausible(counts.completion_tokens))
  local price = M.price(run, job.model)
  local micros = cost.estimate(price, prompt, out)
  hold_cost(job, micros)
  run:add_tokens(prompt + out, job.card_id)
  -- the model and its provider apart, as an answered call's row keeps them (its model
  -- column, its response's provider): the sums by model (orket.store.costs, /metrics) then
  -- count the charge on the row of the model's answered calls, not on one of its own
  local provider, name = settings.split_model(job.model)
  return { model = name or job.model, provider = name and provider or nil, prompt_tokens = prompt,
    completion_tokens = out, cost = micros, currency = micros and price.currency or nil }
end

function M.refused(run, job, req, counts)
  if type(counts) ~= "table" then return nil end
  local c = charge(run, job, req, counts)
  c.refused_usage = counts
  return c
end

--- aborted(run, job): the job's turn ends with its call in flight (job.calling, its
--- request): when the run's stop (a budget's, run.halted; a person's: Ctrl-C, SIGTERM, the
--- stop route; the only way a turn's task is cancelled) cancelled it after its whole
--- request reached the server (req.sent_whole, orket.llm.transport), which bills it, the
--- call is kept in run.spend.aborted for the run to charge and journal once its turns are
--- stopped (orket.engine.turn.record_aborted): the turn's task is being closed, where the
--- store's writes cannot wait. A call not yet sent whole is not charged.
function M.aborted(run, job)
  local req = job.calling
  job.calling = nil
  if not (req and req.sent_whole and (run.halted or run.stopping)) then return end
  req.sent_whole = nil
  local sp = run.spend
  if not sp then
    sp = fresh()
    run.spend = sp
  end
  sp.aborted = sp.aborted or {}
  sp.aborted[#sp.aborted + 1] = { job = job, req = req }
end

--- taken_aborted(run) -> the calls aborted() kept ({job=, req=}), each at most once
function M.taken_aborted(run)
  local list = run.spend and run.spend.aborted or {}
  if run.spend then run.spend.aborted = nil end
  return list
end

--- abort_charge(run, job, req) -> the charge of a call the run's stop aborted after it was
--- sent (aborted): at its estimate, the hold it took, as a call billed with no usage is
--- ({..., aborted = true}; as refused's otherwise).
function M.abort_charge(run, job, req)
  local c = charge(run, job, req, {})
  c.aborted = true
  return c
end

--- cut(run, job, req) -> the charge of a call whose answer began and then failed (the
--- stream cut, an error event mid-way: failure.delivered): the provider billed what it
--- generated, which no usage counts, so it is charged as a call without usage is, at the
--- estimate before it was sent ({..., cut = true}; as refused's otherwise).
function M.cut(run, job, req)
  local c = charge(run, job, req, {})
  c.cut = true
  return c
end

-- what a budget_warning event and a card's budget_reached outcome say of the scope
local function money_of(s, id, t, est, budget, price)
  return { scope = s, id = id, spent = t.micros, estimate = est, budget = budget.micros, currency = price.currency }
end

-- Says once per model in a run (a `budget_unpriced` event, journaled as budget_warning is,
-- so runs started by `orket serve` show it too) that its calls count against none of the
-- money budgets set: it has no price in models.prices (a typo in the key, a model added
-- later), or its price bills in a currency no budget is in. Silent, such calls made a
-- budget an operator counts on stop nothing. What was said is kept in the run's money state
-- (run.spend.unpriced): a resumed run, or another process's share of it, says it again.
function escapes(run, job, b, currency)
  if currency then
    for i = 1, #BUDGET_KEYS do
      local budget = b[BUDGET_KEYS[i]]
      if budget and budget.currency == currency then return end
    end
  end
  local sp = run.spend
  if not sp then -- (state() fills in the rest at the first priced check)
    sp = fresh()
    run.spend = sp
  end
  sp.unpriced = sp.unpriced or {}
  local model = tostring(job.model)
  if sp.unpriced[model] then return end
  sp.unpriced[model] = true
  local why = currency and string.format("its price in models.prices bills in %s, and no money budget is in %s",
    currency, currency) or "it has no price in models.prices"
  local message = string.format("%s: %s, so its calls count against no money budget (budgets.cost_per_*)", model, why)
  assert(run.db:tx(function()
    run.db:event { kind = "budget_unpriced", card = job.card_id, run = run.run_id,
      data = { model = model, seat = job.seat, message = message } }
    return true
  end))
  run:emit { type = "budget_unpriced", card = job.card_id, seat = job.seat, model = model, message = message }
end

--- check(run, job, req) -> nil | outcome {ended = "budget", detail=, money = {scope=, id=,
--- spent=, estimate=, budget=, currency=}} for a card's scope, or {ended = "canceled"}
--- when the run's or the day's budget would be passed (e.halted says why), or {room =
--- true} when the call fits only once the calls in flight end (wait_room, then check
--- again). nil: the call may go, and holds its estimate until release. Emits a
--- budget_warning event once per scope when 80% of it is spent.
function M.check(run, job, req)
  local b = run.settings.budgets
  -- by index, stopping at the first: this runs before every model call
  local any = false
  for i = 1, #BUDGET_KEYS do
    if b[BUDGET_KEYS[i]] ~= nil then
      any = true
      break
    end
  end
  if not any then return nil end
  local price = M.price(run, job.model)
  if not price then -- an unpriced call's cost is unknown: no money budget counts it
    escapes(run, job, b, nil)
    return nil
  end
  escapes(run, job, b, price.currency)
  -- in flight until it returns (committed: a call committed meanwhile keeps its hold)
  run.money_checking = (run.money_checking or 0) + 1
  local _ <close> = setmetatable({ run = run }, CHECKING)
  local card_id = job.card_id
  assert(run.board:status(card_id)) -- the card is there (its copy is read only where needed)
  -- what every process spent since the last check (at the first, the totals read it all)
  local sp, known = state(run)
  local day = known and catch_up(run) or sp.day -- the store's UTC day
  -- the card's last approvals, one per scope (an approval restarts only the budget that
  -- was reached), read once and only for a card's, an epic's or a rock's budget: the
  -- run's and the day's count from no mark
  local marks
  local est = estimate(price, req)
  local held, limits, passes, room = {}, {}, {}, false
  local scopes = M.SCOPES
  for i = 1, #scopes do
    local s = scopes[i]
    local budget = b[BUDGET_KEYS[i]]
    local id = budget and budget.currency == price.currency and (s == "day" and day or scope_of(run, s, card_id))
    if id then
      local from = NO_MARK
      if M.CARD_SCOPES[s] then
        marks = marks or costs.approved_marks(run.db, card_id)
        from = marks[s]
      end
      local t, key = total(run, s, id, from, price.currency)
      if t.micros * 5 >= budget.micros * 4 and not run.spend.warned[key] then
        run.spend.warned[key] = true
        local money = money_of(s, id, t, est, budget, price)
        assert(run.db:tx(function()
          run.db:event { kind = "budget_warning", card = card_id, run = run.run_id, data = money }
          return true
        end))
        run:emit { type = "budget_warning", card = card_id, seat = job.seat, scope = s, id = id, spent = t.micros,
          budget = budget.micros, currency = price.currency }
      end
      -- a person approved going on past this budget and nothing was spent since: the call
      -- goes even when its estimate alone passes the whole budget. Stopped, it would make
      -- the card wait again at once, every approval spending a turn and letting no call go.
      local approved = from[2] > 0 and t.micros == 0
      if t.micros + est > budget.micros and not approved then
        -- a day is the store's UTC day (docs/cost.md), said so: read as local, a day's stop
        -- seemed to come hours early or late
        local named = s == "day" and (tostring(id) .. " (UTC; the next begins at 00:00 UTC)") or tostring(id)
        local detail = string.format("money budget: the %s %s spent %s of its %s (budgets.cost_per_%s); the next call may cost up to %s",
          s, named, cost.format(t.micros, price.currency), cost.format(budget.micros, price.currency), s,
          cost.format(est, price.currency))
        if est > budget.micros then
          -- no call fits the budget whatever was spent: say what bounds the estimate
          detail = detail .. string.format(", more than the whole budget (%s; budgets.max_output_tokens bounds "
            .. "the estimate's output)", M.CARD_SCOPES[s] and "each approval lets one such call go"
            or "raise it")
        end
        run:emit { type = "budget_reached", card = card_id, seat = job.seat, scope = s, id = id, spent = t.micros,
          estimate = est, budget = budget.micros, currency = price.currency }
        if not M.CARD_SCOPES[s] then
          if not run.halted then
            run.halted = detail
            run.spend.halt = { scope = s, id = id, spent = t.micros, currency = price.currency }
          end
          return { ended = "canceled", detail = detail }
        end
        return { ended = "budget", detail = detail, money = money_of(s, id, t, est, budget, price) }
      end
      held[#held + 1] = t
      limits[#held] = budget.micros
      passes[#held] = approved
    end
  end
  -- decided here, after the last read or write that may wait (on PostgreSQL): the holds
  -- other turns took meanwhile count, and taking this one does not wait. An approved
  -- budget nothing was spent from lets one call go: with none in flight, this one.
  for i, t in ipairs(held) do
    room = room or (t.micros + t.held + est > limits[i] and not (passes[i] and t.held == 0))
  end
  if room then return { room = true } end
  if #held > 0 then
    for _, t in ipairs(held) do t.held = t.held + est end
    job.money_hold = { totals = held, amount = est }
  end
  return nil
end

--- halted_now(run) -> run.halted, saying what the scope had spent when the run ended when
--- that is more than when its budget stopped it: the calls in flight then went on to be
--- recorded (or charged, aborted), and a reason naming only the first amount disagreed
--- with the run's usage. Read once the run's turns are stopped.
function M.halted_now(run)
  local h = run.spend and run.spend.halt
  if not h or not run.halted then return run.halted end
  local f = {}
  if h.scope == "day" then f.since = h.id .. "T00:00:00.000Z" else f[h.scope] = h.id end
  local ok, sums = pcall(costs.totals, run.db, f)
  local now = ok and sums.cost[h.currency]
  if not (now and now > h.spent) then return run.halted end
  -- a day's total counts every run's calls of that day, not only this run's in flight
  if h.scope == "day" then
    return string.format("%s; the day %s has spent %s since (this run's calls then in flight, and any other run's)",
      run.halted, tostring(h.id), cost.format(now, h.currency))
  end
  return string.format("%s; with the calls then in flight, the %s %s spent %s", run.halted, h.scope, tostring(h.id),
    cost.format(now, h.currency))
end

-- The cards under target (itself for an issue) that wait on a money budget.
local function waiting_on_budget(run, target)
  local list = { target }
  if target.type ~= "issue" then
    list = assert(run.board:list { status = "waiting_for_developer", type = "issue", [target.type] = target.id })
  end
  local out = {}
  for _, c in ipairs(list) do
    if c.status == "waiting_for_developer" and c.wait_reason == "budget" then out[#out + 1] = c end
  end
  return out
end

--- release_raised(run, target) -> ids of the cards moved back to ready: each card under
--- target waiting on a money budget whose budget orket.lua has since raised or removed
--- (the scope and amount its last budget_reached event recorded), in one transaction.
--- A raise is a person's approval given in orket.lua; the next check measures it again.
function M.release_raised(run, target)
  local b, moved = run.settings.budgets, {}
  assert(run.db:tx(function()
    for _, c in ipairs(waiting_on_budget(run, target)) do
      local evs = sj.card_event_data(run.db, c.id, "budget_reached")
      local last = evs[#evs]
      local now = last and type(last.scope) == "string" and b["cost_per_" .. last.scope]
      if last and type(last.budget) == "number"
        and (not now or now.currency ~= last.currency or now.micros > last.budget) then
        -- what orket.lua says now: raised, removed, or another currency (which no call of
        -- the one reached counts against)
        local was = cost.format(last.budget, tostring(last.currency))
        local note = not now and string.format("budgets.cost_per_%s (%s) was removed: going on", last.scope, was)
          or now.currency ~= last.currency and string.format("budgets.cost_per_%s is now %s (it was %s): going on",
            last.scope, cost.format(now.micros, now.currency), was)
          or string.format("budgets.cost_per_%s was raised from %s to %s: going on", last.scope, was,
            cost.format(now.micros, now.currency))
        -- another worker opening a run may have moved it first: then it is not waiting
        if run.board:transition(c.id, "ready", { actor = board_mod.ENGINE, note = note }) then moved[#moved + 1] = c.id end
      end
    end
    return true
  end))
  return moved
end

return M
