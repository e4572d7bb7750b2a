-- orket.sandboxes.deploy: a sandbox started on its own after a merge, by sandbox.deploy
-- (docs/sandbox.md): "merge" after each merged card, "epic" once the card's epic has every
-- issue done, "rock" once its rock has, "manual" never. The new sandbox replaces the live
-- one of main and is owned by a process of its own (`orket sandbox up --replace` in the
-- background), so it outlives the run that merged. A merge that finishes a rock also
-- opens its bug-fix phase (orket.sandboxes.phase). Uses orket.sandboxes.plan and service.
local source = require "orket.sandboxes.source"
local service = require "orket.sandboxes.service"
local accept = require "orket.sandboxes.accept"
local acceptance = require "orket.actions.acceptance"
local checks = require "orket.actions.checks"
local sv = require "orket.store.verifications"
local phase = require "orket.sandboxes.phase"
local forge = require "orket.forge"
local ops = require "orket.store.sandboxes"
local sj = require "orket.store.journal_reads"
local rt = require "orket.c.runtime"
local gitdiff = require "orket.c.gitdiff"
local tree = require "orket.tree"
local uv = require "luv"

local M = {}

-- every issue under the epic or rock is done
local function all_done(board, scope, kind)
  local q = { type = "issue" }
  q[kind] = scope.id
  local issues = board:list(q) or {}
  if #issues == 0 then return false end
  for _, c in ipairs(issues) do
    if c.status ~= "done" then return false end
  end
  return true
end

--- due(mode, board, card_id) -> the reason a sandbox is due now (text) | nil
function M.due(mode, board, card_id)
  if mode == "merge" then return card_id .. " merged" end
  if mode ~= "epic" and mode ~= "rock" then return nil end
  local card = board:get(card_id)
  local scope = card and board:ancestor(card, mode)
  if scope and all_done(board, scope, mode) then return string.format("%s %s done", mode, scope.id) end
  return nil
end

-- main's head exported and planned -> plan, commit | nil, message, commit (the plan refused
-- that commit's tree; nil when the export itself failed)
local function plan_head(dir, s)
  local path = source.scratch(dir)
  local commit, err = source.export(dir, nil, path)
  if not commit then return nil, err end
  local p, perr = source.plan_in(path, s)
  tree.remove(path)
  if not p then return nil, perr, commit end
  return p, commit
end

--- refusal_is_cards(db, message) -> whether the plan's refusal of main's tree goes back to
--- the cards a deploy brings: not when it names orket.lua (the operator's settings against
--- the tree), nor nothing to run while no sandbox ever ran here (a project with none set up),
--- the rule `orket sandbox up --card` keeps for a start that failed for no card's change
function M.refusal_is_cards(db, message)
  message = tostring(message)
  if message:find("^orket%.lua:") then return false end
  if message:find("nothing to run", 1, true) and #ops.list(db, true) == 0 then return false end
  return true
end

--- after_merge_at(dir, settings, board, card_id [, run_id]) -> {reason=, commit=, owner_pid=,
--- error=, checks=} | nil: starts a sandbox of the project in dir when settings.sandbox.deploy
--- says one is due after card_id's merge (by a run, a worker, or `orket serve` on a forge's
--- webhook), of main's head now (commit); once healthy, its owner runs the acceptance checks
--- of the cards it brings (accept_after). A tree the plan refuses starts nothing: error says
--- why, and (refusal_is_cards) the cards get the failed check "the sandbox starts" as for a
--- failed start (start_failed's answer in checks).
function M.after_merge_at(dir, settings, board, card_id, run_id)
  -- the merge that finishes a rock opens its bug-fix phase, dir's sandboxes its own; a
  -- failure waits for the next tick (orket serve's, the next run's), which opens it too
  pcall(phase.after_done, board, card_id, { settings = settings and settings.bug_fix, dir = dir })
  local s = settings and settings.sandbox
  if not s or s.deploy == "manual" or not dir then return nil end
  local why = M.due(s.deploy, board, card_id)
  if not why then return nil end
  -- what would run is checked here, where the run can say so: the owner in the background
  -- has no one to tell
  local p, commit, refused = plan_head(dir, s)
  if not p then
    local out = { reason = why, error = "no sandbox started: " .. tostring(commit), commit = refused }
    -- a tree the plan refuses (an image-only service a card added) is the change of the
    -- cards the deploy brings, as a start that failed is: unsaid, their checks would pass
    -- later against the sandbox of an older commit
    if refused and M.refusal_is_cards(board.db, commit) then
      local ok, res = pcall(M.start_failed, { db = board.db, board = board, settings = settings, card = card_id,
        run_id = run_id, commit = refused, message = commit })
      if ok then out.checks = res else out.error = out.error .. "; its checks not recorded: " .. tostring(res) end
    end
    return out
  end
  -- the owner runs the commit checked here, whatever main holds by the time it starts.
  -- start_owner answers pid, the owner's output path | nil, message: only the latter is an error
  local pid, out = service.start_owner(dir, { replace = true, commit = commit, card = card_id, run = run_id })
  return { reason = why, commit = commit, owner_pid = pid, error = not pid and out or nil }
end

--- accepting(mode, board, card_id) -> the ids of the cards whose acceptance checks a deploy
--- after card_id's merge runs: the card itself ("merge", or by hand), every done issue of
--- its epic ("epic") or rock ("rock")
function M.accepting(mode, board, card_id)
  if mode ~= "epic" and mode ~= "rock" then return { card_id } end
  local card = board:get(card_id)
  local scope = card and board:ancestor(card, mode)
  if not scope then return { card_id } end
  local q = { type = "issue", status = "done" }
  q[mode] = scope.id
  local ids = {}
  for _, c in ipairs(board:list(q) or {}) do ids[#ids + 1] = c.id end
  return ids
end

-- the forge's status orket/sandbox on the commit the sandbox runs; a forge failure is said,
-- not fatal
local function post_status(settings, commit, passed, description)
  local g = settings.git
  if not g or not g.forge or not commit then return nil end
  local token, terr = forge.token(g)
  if not token then return { error = terr } end
  local out, err = checks.report_sandbox { g = g, token = token, sha = commit, passed = passed,
    description = description }
  return out or { error = err }
end

--- accept_after{db=, board=, settings=, sandbox={id=, socket=, home=, commit=, services=}, cards={ids},
--- run_id=, send_back=} -> {{card=, result=, outcome=, followup=, duplicate=, error=, status=}...}: the
--- acceptance checks of each card that has them, against the live sandbox
--- (orket.sandboxes.accept); each result journaled and, with send_back (a deploy), a
--- failure sent back to its card (orket.actions.acceptance) and, with a forge, the result
--- posted as the commit status orket/sandbox (status: {sha=, state=} or {error=}). The
--- cards' browser checks share one browser, ended with the last card's. Runs in a task.
function M.accept_after(o)
  local out = {}
  local passed, total, skipped, ok, failing = 0, 0, 0, true, {}
  local browsers = accept.browsers()
  local function accept_card(id, list)
    local res = accept.run { socket = o.sandbox.socket, home = o.sandbox.home, checks = list, browsers = browsers,
      services = o.sandbox.services or {}, card = id, sandbox = o.sandbox.id }
    local rec, err = acceptance.record { db = o.db, board = o.board, card = id, sandbox = o.sandbox.id,
      commit = o.sandbox.commit, result = res,
      run_id = o.run_id, send_back = o.send_back }
    for _, r in ipairs(res.results) do
      if r.ok then passed = passed + 1 elseif r.skipped then skipped = skipped + 1 end
    end
    total = total + #res.results
    if not res.ok then
      ok = false
      failing[#failing + 1] = id
    end
    out[#out + 1] = { card = id, result = res, outcome = rec and rec.code or nil, followup = rec and rec.followup,
      duplicate = rec and rec.duplicate, error = not rec and err or nil }
  end
  local done, raised = pcall(function()
    for _, id in ipairs(o.cards) do
      local list = sv.sandbox_checks(o.db, id)
      if list then accept_card(id, list) end
    end
  end)
  -- the shared browser ends even when a card's run raised: none is left running
  browsers.close()
  if not done then error(raised, 0) end
  -- one status for the commit: the cards of an epic or a rock share it, and one posted per
  -- card would let a later card's success hide an earlier one's failure
  if o.send_back and #out > 0 then
    local what = #out == 1 and out[1].card
      or string.format("%d cards%s", #out, #failing > 0 and (", failing " .. table.concat(failing, " ")) or "")
    local status = post_status(o.settings, o.sandbox.commit, ok,
      string.format("%s: %d of %d checks passed%s", what, passed, total,
        skipped > 0 and string.format(", %d skipped", skipped) or ""):sub(1, 140))
    for _, x in ipairs(out) do x.status = status end
  end
  return out
end

--- start_failed{db=, board=, settings=, card=, run_id=, sandbox=, commit=, message=, log=} ->
--- {{card=, outcome=, followup=, error=}...}: a deploy whose sandbox did not get healthy (a
--- service never healthy or ended, a seed that failed) is the failure of the cards it
--- brought, as a failed check is: each card whose checks it would have run (else the merged
--- card) gets the message and the log's tail (every service's lines), journaled and sent
--- back (orket.actions.acceptance). sandbox: its id, when it had one. code (optional): the
--- start's error code. A host's limit (host_limit) is journaled as the start skipped
--- (outcome "skipped"), nothing sent back.
function M.start_failed(o)
  local cards = {}
  for _, id in ipairs(M.accepting(o.settings.sandbox.deploy, o.board, o.card)) do
    if sv.sandbox_checks(o.db, id) then cards[#cards + 1] = id end
  end
  if #cards == 0 then cards = { o.card } end
  -- a limit of this host (the project's path too long for the sandbox's socket) is no
  -- fault of the cards: no change of theirs can fix it, and a bug or follow-up would only
  -- spend a seat's turns. Their checks are skipped, with why, so the run's end lists them
  -- (sandbox_check_skipped), as a browser check's profile path too long is.
  local host = M.host_limit(o.code, o.message)
  local res = host and { ok = true, results = { { kind = "start", name = "the sandbox starts", ok = false,
    skipped = tostring(o.message):sub(#service.HOST_LIMIT + 1) } } }
    or { ok = false, log = o.log, results = { { kind = "start", name = "the sandbox starts", ok = false,
    detail = o.message } } }
  local out = {}
  for _, id in ipairs(cards) do
    local rec, err = acceptance.record { db = o.db, board = o.board, card = id, sandbox = o.sandbox, commit = o.commit,
      result = res, run_id = o.run_id, send_back = not host }
    out[#out + 1] = { card = id, outcome = rec and (host and "skipped" or rec.code), followup = rec and rec.followup,
      error = not rec and err or nil }
  end
  return out
end

--- host_limit(code, message) -> whether a sandbox's start failure is this host's limit, not
--- the app's: its code (ENAMETOOLONG, a socket path too long; ENOPROG, a program the host
--- lacks) when the caller has it, else the message's start (service.HOST_LIMIT)
function M.host_limit(code, message)
  if code ~= nil then return code == "ENAMETOOLONG" or code == "ENOPROG" end
  return tostring(message):sub(1, #service.HOST_LIMIT) == service.HOST_LIMIT
end

--- brings(dir, db, card, commit) -> true | nil, why: whether main's commit holds the card's
--- last merge (a card never merged by Orket: true, nothing to compare). `orket sandbox check
--- --card` on a sandbox of an older commit would judge the card by a tree without its change.
function M.brings(dir, db, card, commit)
  local m = sj.last_merge(db, card)
  if not (m and type(m.id) == "string") then return true end
  local short = m.id:sub(1, 12)
  if not commit then return nil, string.format("%s was merged as %s; the sandbox names no commit", card, short) end
  if commit == m.id then return true end
  local repo, err = gitdiff.open(dir .. "/workspace")
  if not repo then return nil, string.format("%s's merge %s cannot be looked for: %s", card, short, tostring(err)) end
  local ok, base = pcall(repo.merge_base, repo, m.id, commit)
  repo:close()
  if ok and base == m.id then return true end
  return nil, string.format("%s was merged as %s, which commit %s does not hold", card, short, commit:sub(1, 12))
end

-- ---- a run's deploys, at its end --------------------------------------------------------

-- What a deploy's checks may take once its sandbox is healthy (a browser's start costs
-- seconds), beyond the start's own health.start_timeout_ms.
M.CHECKS_WAIT_MS = 60000

-- the sandbox the owner pid (a process of this machine) started (the newest of its rows)
-- | nil; another machine's rows may name the same pid
local function owned(db, pid)
  local row
  for _, r in ipairs(ops.list(db, true)) do
    if service.owned_by(r, pid) and (not row or r.id > row.id) then row = r end
  end
  return row
end

-- whether the cards' checks are journaled in run_id against sandbox id
local function journaled(db, run_id, cards, id)
  for _, card in ipairs(cards) do
    local found = false
    for _, data in ipairs(sj.event_data(db, run_id, card, "sandbox_check")) do
      if data.sandbox == id then found = true end
    end
    if not found then return false end
  end
  return true
end

-- whether deploy d ({card=, owner_pid=}) has nothing left to check: none of its cards has
-- checks, their checks are journaled, or its owner ended (a later deploy replaced its
-- sandbox, or it failed)
local function settled(db, board, mode, d, run_id)
  local cards = {}
  for _, id in ipairs(M.accepting(mode, board, d.card)) do
    if sv.sandbox_checks(db, id) then cards[#cards + 1] = id end
  end
  if #cards == 0 or not service.start_time(d.owner_pid) then return true end
  local row = owned(db, d.owner_pid)
  if not row then return false end
  -- a start that failed ends its row (exited, never healthy) before its owner journals the
  -- cards' failed or skipped check (start_failed), then exits: settled once they are
  -- journaled or its owner is gone (the summary missed them, at random, when read between)
  if row.status == "exited" and not row.healthy_at then
    return journaled(db, run_id, cards, row.id) or not service.start_time(d.owner_pid)
  end
  if not ops.LIVE[row.status] then return true end
  return row.status ~= "starting" and journaled(db, run_id, cards, row.id)
end

--- await_checks{db=, board=, settings=, deploys={{card=, owner_pid=}...}, run_id=} -> the
--- deploys whose checks had not ended within health.start_timeout_ms + CHECKS_WAIT_MS:
--- a run waits at its end for the acceptance checks of the sandboxes it deployed (their
--- owners run them in the background), so its summary can say what they skipped. Runs in a task.
function M.await_checks(o)
  local s = o.settings.sandbox
  local deadline = uv.now() + s.health.start_timeout_ms + M.CHECKS_WAIT_MS
  local left = {}
  for _, d in ipairs(o.deploys) do
    if d.owner_pid then left[#left + 1] = d end
  end
  while #left > 0 do
    local still = {}
    for _, d in ipairs(left) do
      if not settled(o.db, o.board, s.deploy, d, o.run_id) then still[#still + 1] = d end
    end
    left = still
    if #left == 0 or uv.now() >= deadline then break end
    rt.sleep(100)
  end
  return left
end

--- failed_of(db, cards, run_id) -> the acceptance runs journaled in run_id for the cards
--- that failed: {{card=, sandbox=, outcome= (acceptance.record's code: sent_back, bug,
--- followup, commented), followup=, failed = the names of the checks that failed}...}
function M.failed_of(db, cards, run_id)
  local out = {}
  for _, card in ipairs(cards) do
    for _, data in ipairs(sj.event_data(db, run_id, card, "sandbox_check")) do
      if data.passed == false then
        local names = {}
        for _, r in ipairs(data.results or {}) do
          if r.ok == false and not r.skipped then names[#names + 1] = tostring(r.name) end
        end
        out[#out + 1] = { card = card, sandbox = data.sandbox, outcome = data.outcome, followup = data.followup,
          failed = names }
      end
    end
  end
  return out
end

--- skipped_of(db, cards, run_id) -> the acceptance checks journaled in run_id for the cards
--- that could not run here (no browser): {{card=, name=, why=, sandbox=}...}, each once
function M.skipped_of(db, cards, run_id)
  local out, seen = {}, {}
  for _, card in ipairs(cards) do
    for _, data in ipairs(sj.event_data(db, run_id, card, "sandbox_check")) do
      for _, r in ipairs(data.results or {}) do
        local key = card .. "\0" .. tostring(r.name) .. "\0" .. tostring(r.skipped)
        if r.skipped and not seen[key] then
          seen[key] = true
          out[#out + 1] = { card = card, name = r.name, why = r.skipped, sandbox = data.sandbox }
        end
      end
    end
  end
  return out
end

return M
