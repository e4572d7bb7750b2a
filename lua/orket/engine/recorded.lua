-- orket.engine.recorded: what a run has already done, read back from the store so a resumed
-- run repeats nothing: the open turn of a card, a recorded model step, a recorded tool call.
-- Writes go through orket.store's record_* API and db:event (one transaction each); the
-- reads are orket.store.journal_reads's operations. Also what keeps a run from starting or resuming (in_the_way), asked
-- by every start and resume with the run's record and lease in one write transaction
-- (start, resume).
local cjson = require "cjson.safe"
local sj = require "orket.store.journal_reads"
local runs = require "orket.store.runs"
local restore_runs = require "orket.store.restore_runs"
local claims = require "orket.engine.claims"
local leases = require "orket.store.leases"
local runlease = require "orket.engine.runlease"
local store_turns = require "orket.store.turns"

local M = {}

--- turns(db, run, card) -> array of {turn=, phase=, seat=, role=, open=bool, outcome=, id=}
--- (id: the turn_begin event's, to compare with last_retry), and the kind of the card's last
--- merge mark ("merge_conflict", "merge_main" or nil), read with them for the turn's git
--- (orket.engine.gitwork.enter)
function M.turns(db, run, card)
  local list, by_n = {}, {}
  local marks, merge = sj.card_marks(db, run, card)
  for i = 1, #marks do -- the store's rows, without holes
    local ev = marks[i]
    if ev.kind == "turn_begin" then
      local t = { turn = ev.data.turn, phase = ev.data.phase, seat = ev.data.seat, role = ev.data.role, open = true,
        id = ev.id }
      list[#list + 1] = t
      by_n[t.turn] = t
    elseif ev.kind == "turn_end" and by_n[ev.data.turn] then
      by_n[ev.data.turn].open = false
      by_n[ev.data.turn].outcome = ev.data.outcome
      by_n[ev.data.turn].no_call = ev.data.no_call
    end
  end
  return list, merge
end

-- At most this many cards of one run with a turn half done are read (a run has as many as
-- it had turns in flight when it stopped: its concurrency, its workers'); a run with more
-- is in the way of every new run until resumed, as its cards past the count are not known.
M.OPEN_TURNS_MAX = 1000

--- open_turn_cards(db, run) -> the ids of the cards (sorted) on which a turn of run began,
--- recorded a step, and did not end, and whether there are more than OPEN_TURNS_MAX (the
--- list then holds that many)
function M.open_turn_cards(db, run)
  local cards = sj.open_turn_cards(db, run, M.OPEN_TURNS_MAX + 1)
  if #cards <= M.OPEN_TURNS_MAX then return cards, false end
  cards[#cards] = nil
  return cards, true
end

-- "X-1 is now under Y" (or "... has no parent now"): where card id went
local function now_under(board, id)
  local c = board:get(id)
  if c and c.parent then return string.format("%s is now under %s", id, c.parent) end
  return string.format("%s has no parent now", id)
end

--- unfinished_overlap(db, board, target[, going]) -> {id=, target=, status=}, message, live | nil:
--- the latest run that did not finish (killed, or stopped by a signal or a Ctrl-C) and left
--- a turn half done (begun, a step recorded, not ended), when target holds one of the cards
--- of those turns (claims.overlaps: the card itself, or its epic or rock now) or the run's
--- target overlaps target: a new run would ask the model and run the tools of that turn
--- again, where `orket resume` goes on from its journal. Card by card, as an import may
--- have moved the card out of the run's target since (the run's own resume finishes the
--- turn, then leaves the card to its new parent: orket.engine.run). A run stopped before
--- any turn began left nothing half done and is no obstacle. going: claims.going's runs (or
--- a function giving them, asked only of a run found in the way);
--- one of them (live true) is such a run going now, a turn of it on a card an import moved
--- under target: it finishes that turn. Ask it with the project's run lock held, so no
--- other run is still going unseen. message: what to tell whoever wanted the new run. A
--- store that cannot be read raises (its message): no answer is not "no such run".
function M.unfinished_overlap(db, board, target, going)
  local overlaps = claims.overlaps
  for _, r in ipairs(runs.unfinished(db)) do
    local cards, more = M.open_turn_cards(db, r.id)
    local card
    if cards[1] and not overlaps(board, target, r.target) then
      card = false
      for _, c in ipairs(cards) do
        if overlaps(board, target, c) then
          card = c
          break
        end
      end
      if not card and more then card = true end
    end
    if cards[1] and card ~= false then
      local live
      if card ~= nil and type(going) == "function" then going = going() end
      for _, g in ipairs(card ~= nil and type(going) == "table" and going or {}) do
        if g.id == r.id then live = g end
      end
      local why
      if live and card ~= nil then
        why = type(card) == "string" and string.format("run %d (%s) is finishing a turn on %s now, begun before an "
          .. "import moved it (%s): wait for it to end (it then leaves %s to its new parent); two runs never work the "
          .. "same card", r.id, r.target, card, now_under(board, card), card)
          or string.format("run %d (%s) is going with turns on more than %d cards, some of them maybe moved under %s "
          .. "by an import: wait for it to end; two runs never work the same card", r.id, r.target, M.OPEN_TURNS_MAX,
          target)
        live.target = r.target
        return live, why, true
      end
      local what = r.status == "running" and "it was killed" or "interrupted"
      if type(card) == "string" then
        why = string.format("run %d (%s) did not finish (%s) and left a turn on %s half done (%s: an import "
          .. "moved it): continue it with 'orket resume %d' (over the API: POST /v1/runs/%d/resume), which finishes "
          .. "that turn and leaves %s to its new parent; a new run would redo the work its turns left half done", r.id,
          r.target, what, card, now_under(board, card), r.id, r.id, card)
      elseif card then
        why = string.format("run %d (%s) did not finish (%s) and left turns half done on more than %d cards: "
          .. "continue it with 'orket resume %d' (over the API: POST /v1/runs/%d/resume); a new run would redo the "
          .. "work its turns left half done", r.id, r.target, what, M.OPEN_TURNS_MAX, r.id, r.id)
      else
        why = string.format("run %d (%s) did not finish (%s): continue it with 'orket resume %d' (over the API: "
          .. "POST /v1/runs/%d/resume); a new run would redo the work its turns left half done", r.id, r.target, what,
          r.id, r.id)
      end
      return r, why
    end
  end
  return nil
end

--- queued_overlap(db, board, target) -> {id=, target=}, message | nil: the oldest run left to
--- the workers (`orket serve --workers`, `orket worker --start`: recorded with data.workers,
--- not finished) whose cards overlap target's. Until a worker claims one of its cards it
--- holds no lease and no lock anywhere, so claims.conflict does not see it, and a second
--- run of the target was made beside it. Ask it in the write transaction that records the
--- new run (the store runs them one at a time), so two processes never both pass.
function M.queued_overlap(db, board, target)
  for _, r in ipairs(leases.queued(db)) do
    if claims.overlaps(board, target, r.target) then
      -- (the steps that work when no worker is left: a stop, then a resume hands it back to
      -- the workers and works it here as one of them)
      return r, string.format("run %d (%s) is left to the workers and not finished, on the same cards: "
        .. "the workers carry it on (orket worker); to end it, 'orket runs stop %d' or POST /v1/runs/%d/stop, "
        .. "after which 'orket resume %d' works it here with the workers", r.id, r.target, r.id, r.id, r.id)
    end
  end
  return nil
end

--- in_the_way(dir, db, board, target[, {resuming=, own_run_lock=, prune=, except=}]) -> other, message, kind |
--- nil: what keeps a run of target from starting or resuming, whichever process asks
--- (orket run, resume, worker --start, serve's starts and resumes, the REPL's turn): a live
--- run on overlapping cards (claims.conflict, kind "conflict"), a killed run's half-done
--- turn on target's cards (unfinished_overlap, kind "unfinished"; kind "conflict" for a live
--- run's turn on a card an import moved under target; not asked for a resume, which is how
--- such a turn is carried on), a run left to the workers and not finished (queued_overlap, kind
--- "conflict"; asked for a resume too, the resumed run itself included: the workers carry
--- it on, and a resume beside them would work its cards twice). own_run_lock: the caller
--- holds the project's run lock. prune = false: the caller is outside the folder's claim
--- section (claims.conflict). except: a live run that is not in the way (the run a server
--- carries on after its store came back holds its own lock and maybe its lease). Kind
--- "busy": the project's run lock is held for something that is not a run (a command
--- changing cards, an `orket run` before it tagged the lock): no overlap, and soon over. Ask
--- it in the write transaction that records the run or takes its lease (start, resume
--- below), so two processes of one store never both pass.
function M.in_the_way(dir, db, board, target, o)
  o = o or {}
  local other, why = claims.conflict(dir, db, board, target,
    { own_run_lock = o.own_run_lock, prune = o.prune, except = o.except })
  if other then return other, why, other.id == nil and "busy" or "conflict" end
  if not o.resuming then
    local live
    -- (which runs go is asked only of a run found in the way: claims.going reads lock files)
    other, why, live = M.unfinished_overlap(db, board, target, function()
      return (claims.going(dir, db, { own_run_lock = o.own_run_lock, prune = false }))
    end)
    if other then return other, why, live and "conflict" or "unfinished" end
  end
  other, why = M.queued_overlap(db, board, target)
  if other then return other, why, "conflict" end
  return nil
end

local function leased(db, id)
  local holder = runlease.take(db, id)
  if holder then return nil, string.format("run %d is going in another process of this store (%s)", id, holder) end
  return id
end

--- start(dir, e, target[, {concurrency=, model=, own_run_lock=, prune=}]) -> run id | nil, message,
--- CODE, kind: a run of target executed by this process (engine e): in_the_way asked, the
--- run recorded (e:start) and its lease in the store taken, in one write transaction, which
--- the store runs one at a time (SQLite's BEGIN IMMEDIATE, the journal's lock on
--- PostgreSQL). The folder's claim section (claims.enter) is passed at once by processes of
--- the store in other folders: asked apart, two of them made two runs of one target. A
--- refusal (kind as in_the_way's, no CODE) or a failure rolls everything back.
function M.start(dir, e, target, o)
  o = o or {}
  local kind
  local id, msg, code = e.db:tx(function()
    local other, why, k = M.in_the_way(dir, e.db, e.board, target, { own_run_lock = o.own_run_lock, prune = o.prune })
    if other then
      kind = k
      return nil, why
    end
    local r, rerr, rcode = e:start(target, { concurrency = o.concurrency, model = o.model })
    if not r then return nil, rerr, rcode end
    -- its lease in the store, so processes of the store in other folders see it live too
    local lid, lerr = leased(e.db, r)
    if not lid then kind = "conflict" end
    return lid, lerr
  end)
  if id then return id end
  return nil, msg, code, kind
end

--- resume(dir, db, board, id[, {own_run_lock=, held=, expect=}]) -> id | nil, message, CODE, kind: run id
--- (interrupted, stalled or killed) to be carried on by this process, its row running again: in_the_way asked for
--- its target (resuming) and its lease taken in one write transaction, as start does. A
--- resume asked apart from its lease went beside a run of overlapping cards started at the
--- same time in another folder of the store. held: this process holds the run's lock (and
--- maybe its lapsed lease) already, as a server carrying its run on after its store came
--- back (orket.engine.executor): the run is not in its own way. expect: the set of
--- statuses the run may have ({running = true, ...}); another is refused, kind "ended" (a
--- run that another process finished or stopped meanwhile is not carried on). A store that
--- fails while it is asked: nil, its message, its CODE, no kind.
function M.resume(dir, db, board, id, o)
  o = o or {}
  local kind
  local rid, msg, code = db:tx(function()
    local row = runs.get(db, id)
    if not row then return nil, string.format("no run %d", id), "ENOENT" end
    if restore_runs.kept(row) then
      kind = "ended"
      return nil, string.format("run %d never ran in this store: its id was kept by a restore; nothing to resume", id)
    end
    if o.expect and not o.expect[row.status] then
      kind = "ended"
      return nil, string.format("run %d is %s now (another process ended or stopped it meanwhile)", id,
        tostring(row.status))
    end
    local other, why, k = M.in_the_way(dir, db, board, row.target, { resuming = true, own_run_lock = o.own_run_lock,
      except = o.held and id or nil })
    if other then
      kind = k
      return nil, why
    end
    local lid, lerr = leased(db, id)
    if not lid then
      kind = "conflict"
      return nil, lerr
    end
    -- (held: a server's carry-on after its store came back, the run never killed)
    M.reopen(db, row, o.held and "stopped by the store's loss" or nil)
    return lid
  end)
  if rid then return rid end
  return nil, msg, code, kind
end

--- reopen(db, row): a resumed run, worked again, shown running (and killed, should its process
--- die) until it ends, never as the end it had before (orket.store.runs.reopen). One begun for
--- the workers keeps its end: running, it would be left to the workers again (orket resume
--- hands those to them: cmd.resume). Inside the resume's write transaction.
--- The resume is journaled (run_resumed, with the status it had: killed when still running,
--- its process gone), so that `orket log` shows where the run stopped and was carried on:
--- its transcript read as one uninterrupted run.
function M.reopen(db, row, was)
  local to_workers = M.left_to_workers { status = "running", data = row.data }
  if not to_workers then runs.reopen(db, row.id) end
  db:event { kind = "run_resumed", run = row.id,
    data = { was = was or (row.status == "running" and not to_workers and "killed" or row.status) } }
end

--- left_to_workers(row) -> whether a runs row is a run left to the workers and not finished
--- (recorded with data.workers, still running)
function M.left_to_workers(row)
  if not row or row.status ~= "running" then return false end
  local data = cjson.decode(row.data or "{}")
  return type(data) == "table" and data.workers == true
end

--- stop_queued(db, id) -> true | nil, kind, message: ends run id, left to the workers
--- and worked by none now, as a stopped run ends (interrupted, its run_end journaled by
--- db:finish_run; `orket resume` carries it on), in one write transaction. A run nobody
--- works (its workers scaled to 0 or gone) held its cards for ever (queued_overlap), and
--- has no process to stop it. kind "conflict" when a worker works a turn of it now (a live
--- lease on one of its cards, in any folder): its turns are not cut from here, it is named
--- instead. A worker that has the run open between turns stops it once it sees it ended
--- (runset:stop_ended). kind "not_queued": the run is not one left to the workers and
--- unfinished.
function M.stop_queued(db, id)
  return db:tx(function()
    if not M.left_to_workers(runs.get(db, id)) then
      return nil, "not_queued", string.format("run %d is not left to the workers and unfinished", id)
    end
    local held = leases.live(db, id)[1]
    if held then
      -- (one worker stopped hands its cards to the store's other workers, another server's
      -- too: the run is stopped only once none of them works it)
      return nil, "conflict", string.format("run %d is worked by worker %s now (card %s): stop that worker "
        .. "(SIGTERM; with orket serve --workers, the server), which leaves the run to the workers, then stop the "
        .. "run again; while other workers of the store are up (another server's --workers too), they take its "
        .. "cards up: stop them all first", id, held.worker, held.card)
    end
    local ok, st, code = db:finish_run(id, "interrupted", { running = true })
    if ok == false then
      return nil, "not_queued", string.format("run %d ended meanwhile (%s)", id, tostring(st))
    end
    if not ok then return nil, code or "store", st end
    return true
  end)
end

--- last_retry(db, card) -> the id of the card's last "retry" event (board:retry: a
--- developer put it back to ready), 0 when none: its turn and token budgets count from there.
M.last_retry = sj.last_retry

--- step(db, run, card, turn, step) -> {id=, response=} | nil
function M.step(db, run, card, turn, step)
  local row = sj.recorded_step(db, run, card, turn, step)
  if not row or not row.response then return nil end
  return { id = row.id, response = cjson.decode(row.response) }
end

--- tool_call(db, turn_id, call_key) -> {ok=, result=, error=, code=} | nil [, started_id]
--- nil plus the row id: the call's intent was recorded (start_tool_call) but not its
--- result, so the process stopped while its effect ran.
function M.tool_call(db, turn_id, key)
  local row = sj.tool_call(db, turn_id, key)
  if not row then return nil end
  if row.result == nil then return nil, row.id end
  return cjson.decode(row.result) or {}
end

--- effects(db, run, card, turn) -> the tool names (array, in order) of the calls of the
--- card's turn in the run that changed something outside the store (a tool_call_started
--- event: a file written, a program run, an MCP server's call) and recorded their result,
--- in the steps a resume replays (the first record of each step, as step reads them)
function M.effects(db, run, card, turn)
  local steps, last, n = {}, nil, 1
  while true do
    local row = sj.recorded_step(db, run, card, turn, n)
    if not row or not row.response then break end
    steps[row.id], last = true, row.id
    n = n + 1
  end
  local out = {}
  if not last then return out end
  -- (data.turn is the call's turns row; a float key of an integer's value finds the integer's)
  for _, d in ipairs(sj.event_data(db, run, card, "tool_call_started")) do
    if type(d.turn) == "number" and steps[d.turn] then out[#out + 1] = tostring(d.tool) end
  end
  -- a call whose effect was under way when the process stopped (its intent without a
  -- result: the newest intent, in the last step) is recovered by its tool, which looks at
  -- the directory as it is, not replayed
  local key = 1
  while #out > 0 do
    local res, started = M.tool_call(db, last, tostring(key))
    if started then table.remove(out) end
    if not res then break end
    key = key + 1
  end
  return out
end

--- tokens(db, run) -> prompt + completion tokens the run spent (it reads every turn of the
--- run: the engine keeps a running total instead of asking per step)
function M.tokens(db, run)
  return sj.run_tokens(db, run)
end

--- tokens_since(db, run, turn, event) -> n, turn', event': the run's tokens recorded by any
--- process after those turns and events ids, and the ids read up to (a worker's run budget)
function M.tokens_since(db, run, turn, event)
  return sj.run_tokens_since(db, run, turn, event)
end

--- card_tokens_since(db, run, card, mark) -> n, reset, mark': the run's tokens on the card
--- recorded by any process after events id `mark` and after the card's last retry (reset:
--- a retry after the mark, so n counts from it), and the id read up to (0: the card's whole
--- count since its last retry)
function M.card_tokens_since(db, run, card, mark)
  return sj.card_tokens_since(db, run, card, mark)
end

--- called_tools(db, run, card, review [, after]) -> true when the card's review turns
--- (review true) or work turns (false) in the run, journaled after event id `after`
--- (last_retry), made at least one tool call, allowed or denied: a model that never calls
--- one is not helped by more turns.
function M.called_tools(db, run, card, review, after)
  return sj.turns_called_tools(db, run, card, review, after or 0)
end

-- Only the arguments' first ARGS_SEEN bytes and length are read (orket.store.journal_reads'
-- turn_calls): a call repeated is told by those, and a write's whole content is not read for it
local ARGS_SEEN = 512

-- At most this many calls are judged: a budget spent on more says nothing of them (the
-- budget's own advice stands)
M.SPENT_CALLS_MAX = 2000

--- spent_calls(db, run, card, turns) -> {n=, refused=, codes={CODE={n=, id=}}, same={tool=, args=}|nil,
--- tool_failed=, tools= {names, sorted}, tool_id=} | nil:
--- the tool calls of the card's turns numbered in the list `turns` in the run (the turns
--- that used up a budget), read only when a budget stops a card: how many, how many the
--- gate refused (a deny, ARGS_MALFORMED, a policy's error: a call that asks a person is no
--- refusal, nor one a person approved that then failed in its tool), by code (id: the last
--- such call's tool_calls row), and the call when every one was the same (tool and
--- arguments text); how many failed in the tool itself (ETOOL: a handler that raised or
--- spent its budget, never a refusal), their tools and the last one's row. nil when there
--- are more than SPENT_CALLS_MAX.
function M.spent_calls(db, run, card, turns)
  local wanted, lo, hi = {}, math.huge, -math.huge
  for _, t in ipairs(turns) do
    wanted[t] = true
    lo, hi = math.min(lo, t), math.max(hi, t)
  end
  local out = { n = 0, refused = 0, codes = {}, tool_failed = 0, tools = {} }
  if lo > hi then return out end
  local rows = sj.turn_calls(db, run, card, lo, hi, ARGS_SEEN, M.SPENT_CALLS_MAX + 1)
  if #rows > M.SPENT_CALLS_MAX then return nil end
  local key, same, seen_tool = nil, nil, {}
  for _, r in ipairs(rows) do
    if wanted[r.turn] then
      out.n = out.n + 1
      -- (a call the gate let through, by a rule or a person's approval, and that then failed
      -- has no refusal recorded; one it held for a person is no refusal either: "ask")
      if r.refused == "deny" and r.error_code then
        out.refused = out.refused + 1
        local c = out.codes[r.error_code] or { n = 0 }
        c.n, c.id = c.n + 1, r.id
        out.codes[r.error_code] = c
      elseif r.error_code == "ETOOL" and (r.ok == 0 or r.ok == false) and type(r.refused) ~= "string" then
        out.tool_failed, out.tool_id = out.tool_failed + 1, r.id
        if not seen_tool[r.tool] then seen_tool[r.tool], out.tools[#out.tools + 1] = true, r.tool end
      end
      -- a call of long arguments is never taken for another: only ARGS_SEEN bytes are read
      local k = (r.alen or 0) <= ARGS_SEEN and (r.tool .. "\0" .. tostring(r.args)) or r.id
      if out.n == 1 then
        key, same = k, { tool = r.tool, args = r.args }
      elseif k ~= key then
        same = nil
      end
    end
  end
  out.same = same
  table.sort(out.tools)
  return out
end

--- call_result(db, id) -> the recorded result of tool_calls row id (decoded) | nil
function M.call_result(db, id)
  local text = store_turns.tool_call_result(db, id)
  local v = text and cjson.decode(text)
  return type(v) == "table" and v or nil
end

--- flag(db, run, card, kind, key) -> true when an event of kind with data.key exists
function M.flag(db, run, card, kind, key)
  for _, d in ipairs(sj.event_data(db, run, card, kind)) do
    if d.key == key then return true end
  end
  return false
end

return M
