-- orket.engine.verify: the verification step that gates review. A card handed in with
-- acceptance checks (its epic file's `verification`, else orket.lua's verify.command) waits
-- in ready_for_testing while the engine runs them in the confined runner (orket.c.proc, no
-- model): pass -> code_review, fail -> in_progress (a rejection), each with a comment, the
-- result row and the move in one transaction. Rows: orket.store.verifications. Contract:
-- docs/verify.md.
local board_mod = require "orket.board"
local sv = require "orket.store.verifications"
local sj = require "orket.store.journal_reads"
local sf = require "orket.store.forge"
local checks = require "orket.actions.checks"
local forge = require "orket.forge"
local mainline = require "orket.actions.mainline"
local prbranch = require "orket.actions.prbranch"
local gitwork = require "orket.engine.gitwork"
local uv = require "luv"
local proc = require "orket.c.proc"
local fault = require "orket.engine.fault"
local runlimits = require "orket.settings.runlimits"

local M = {}

M.TAIL = 2000 -- bytes of output kept in the comment and the journal

-- The checks of an issue as stored (import.lua's normal form) or the project default:
-- {steps = {{name=, command=, expect_exit=}...}, timeout_ms=} | nil.
function M.checks(run, card)
  local spec = sv.checks(run.db, card.id)
  local v = run.settings.verify or {}
  -- an issue with sandbox checks only (they run on its deployed sandbox, docs/sandbox.md)
  -- has no verification of its own: the project's default applies
  if spec and not spec.command and not spec.scenarios then spec = nil end
  if not spec then
    -- the default is for the work the epic files define, not for cards filed during runs
    -- (requirements reviews, create_issue): those would fail it forever
    if not v.command or not card.source then return nil end
    spec = { command = v.command }
  end
  local steps = {}
  if spec.command then
    steps[1] = { name = "command", command = spec.command, expect_exit = spec.expect_exit or 0 }
  end
  for i, s in ipairs(spec.scenarios or {}) do
    steps[#steps + 1] = { name = s.name or ("scenario " .. i), command = s.command, expect_exit = s.expect_exit or 0 }
  end
  if #steps == 0 then return nil end
  return { steps = steps, timeout_ms = spec.timeout_ms or v.timeout_ms or 120000 }
end

--- cwd(run, card_id) -> the directory the checks run in: the card's workspace root as its
--- turns' ctx.fs sees it (the one place that asks): its git worktree when the workspace is a
--- repository (docs/git.md), else the workspace itself. nil, msg when there is none.
function M.cwd(run, card_id)
  if run.git then
    local path, err = gitwork.worktree(run, card_id)
    if not path then return nil, err end
    gitwork.forget(run, card_id) -- a program run there may change any file
    return uv.fs_realpath(path)
  end
  local d = run.workspace_dir
  if not d then return nil, "the engine has no workspace directory to run the checks in" end
  return uv.fs_realpath(d)
end

-- a is b or lies under it
local function under(a, b) return a == b or a:sub(1, #b + 1) == b .. "/" end

-- p with its symbolic links resolved: its deepest existing ancestor's real path and the
-- rest as given (p is absolute and clean: orket.lua's check), so a path not made yet and
-- one reached through a link compare with the real paths they would reach
local function real(p)
  local r = uv.fs_realpath(p)
  if r then return r end
  local parent, base = p:match("^(.*)/([^/]+)$")
  if not parent or parent == "" then return p end
  return (real(parent):gsub("/$", "")) .. "/" .. base
end

--- run_opts(run, v, cwd, tool) -> the confinement fields of a proc.run request for the
--- project's verify settings v (layers, require, the view's extra paths, unix sockets, and
--- the limits: verify.limits, with tool's own from verify.tool_limits over them; tool nil
--- for the acceptance checks), or nil, msg
--- when an extra path would show the project's .orket (its store, keys and other cards'
--- worktrees) to agent code: a path inside it or holding it is refused at run time, since
--- orket.lua's check cannot know where the project lies. run_command, run_tests and the
--- verification all build their runs here.
function M.run_opts(run, v, cwd, tool)
  local o = { require = v.require and #v.require > 0 and v.require or nil, layers = v.layers,
    read_only = v.read_only, read_write = v.read_write, unix_sockets = v.unix_sockets or nil,
    limits = runlimits.limits(v, tool) }
  -- real paths on both sides: run.dir is as the command was given it ("." from `cd proj &&
  -- orket run`, a relative -C, a link), which no absolute path of orket.lua's would match;
  -- and .orket itself a link (to another disk) is its target
  local dot = run.dir and real((uv.fs_realpath(run.dir) or run.dir) .. "/.orket")
  for _, k in ipairs { "read_only", "read_write" } do
    for i, p in ipairs(v[k] or {}) do
      local rp = real(p)
      if dot and (under(rp, dot) or under(dot, rp)) then
        return nil, string.format("orket.lua: verify.%s[%d]: %s would show the project's .orket to agent code", k, i, p)
      end
      if under(cwd, rp) and k == "read_write" then
        -- a writable parent of the workspace would let agent code replace its .git
        return nil, string.format("orket.lua: verify.%s[%d]: %s holds the workspace; extra writable paths lie beside it", k, i, p)
      end
    end
  end
  return o
end

--- layers_text(r) -> "session fds ... (missing: view: why; ...)": what held of a run and
--- what the kernel refused or the project switched off, as the journal and `orket card` keep it.
function M.layers_text(r)
  local text = table.concat(r.layers or {}, " ")
  local names = {}
  for n in pairs(r.missing or {}) do names[#names + 1] = n end
  table.sort(names)
  local miss = {}
  for _, n in ipairs(names) do miss[#miss + 1] = n .. ": " .. tostring(r.missing[n]) end
  if r.layer_note then miss[#miss + 1] = "note: " .. r.layer_note end
  if #miss > 0 then text = text .. " (missing " .. table.concat(miss, "; ") .. ")" end
  return text
end

--- prepare(run, card) -> job | nil, card. Inside the scheduling round's transaction. A card
--- in ready_for_testing with checks gives a verification job; without checks it goes on to
--- code_review. A card a worker moved straight to code_review is sent to ready_for_testing
--- first when it has checks. Otherwise the card is returned as it now is.
function M.prepare(run, card)
  local st = card.status
  if st ~= "ready_for_testing" and st ~= "code_review" then return nil, card end
  local held = rawget(run, "verify_held")
  if held and held[card.id] then return nil, card, held[card.id] end
  local checks = M.checks(run, card)
  if st == "code_review" then
    local m = checks and sj.last_transition(run.db, card.id)
    if not (m and m.from == "in_progress" and m.to == "code_review") then return nil, card end
    local moved, err = run.board:transition(card.id, "ready_for_testing", { actor = board_mod.ENGINE,
      note = "acceptance checks run before review" })
    if not moved then return nil, card, err end
    card = moved
  end
  if not checks then
    local moved, err = run.board:transition(card.id, "code_review", { actor = board_mod.ENGINE,
      note = "handed in for testing; no acceptance checks, on to review" })
    if not moved then return nil, card, err end
    return nil, moved
  end
  -- a take-in's conflict merge at the head (its send-back never committed: a kill, a lost
  -- lease): its markers are never verified, nor pushed with the result; the card goes back
  -- with the files named, in this transaction
  local stuck, paths
  if run.git then stuck, paths = prbranch.unresolved(run.git.repo, card.id) end
  if stuck then
    local back, berr = prbranch.send_back(run.board, card.id, { unresolved = true, id = stuck, paths = paths })
    if not back then return nil, card, berr end
    run:emit { type = "git", card = card.id, action = "take_pushed", kind = "conflict", id = stuck, unresolved = true,
      paths = paths }
    return nil, back
  end
  -- the hand-in being checked: the last move out of in_progress; after it, a head that took
  -- in a person's commits (orket.engine.pull_request) is checked as a hand-in of its own,
  -- named by its move back here
  local handin = sj.last_handin(run.db, card.id)
  if sf.last_take_in(run.db, card.id) > handin then
    local m = sj.last_transition(run.db, card.id)
    if m and m.to == "ready_for_testing" and tonumber(m.id) > handin then handin = tonumber(m.id) end
  end
  return { verify = true, card_id = card.id, checks = checks, handin = handin, run = run.run_id }
end

local function tail(s, n)
  if #s <= n then return s end
  return "[...]" .. s:sub(-n)
end

local function argv_text(a)
  local out = {}
  for i, s in ipairs(a) do out[i] = s:find("[%s'\"]") and string.format("%q", s) or s end
  return table.concat(out, " ")
end

-- Runs the steps in order until one fails: {passed=, step=, reason=, code=, signal=, wall_ms=,
-- output=, layers=} or nil, msg, CODE when a run could not start for want of a layer.
local function run_steps(run, job)
  local v = run.settings.verify or {}
  local total, res = 0, nil
  local cwd, cerr = M.cwd(run, job.card_id)
  if not cwd then return nil, "verification: " .. tostring(cerr), "ESPAWN" end
  local o, oerr = M.run_opts(run, v, cwd)
  if not o then return nil, "verification: " .. oerr, "ESPAWN" end
  o.cwd, o.timeout_ms, o.output_cap = cwd, job.checks.timeout_ms, v.output_cap or 65536
  for _, s in ipairs(job.checks.steps) do
    o.argv = s.command
    local r, err, code = proc.run(o)
    if not r then
      if code == "ELAYER" or code == "ESPAWN" then return nil, err, code end
      -- no such program: the work did not produce what the check runs
      return { passed = false, step = s, reason = "not run", output = tostring(err), layers = "", wall_ms = total }
    end
    total = total + (r.wall_ms or 0)
    local out = (r.stdout or "") .. (r.stderr ~= "" and r.stderr and ("\n" .. r.stderr) or "")
    res = { step = s, reason = r.reason, code = r.code, signal = r.signal, wall_ms = total, output = out,
      layers = M.layers_text(r) }
    res.passed = r.reason == "exit" and r.code == s.expect_exit
    if not res.passed then return res end
  end
  return res
end

-- With a forge, the result goes to the branch head as a commit status (and a failure's
-- output to the pull request): orket.actions.checks. A forge failure is emitted, not fatal.
local function report(run, job, res)
  local g = run.settings.git
  if not run.git or not g or not g.forge then return end
  local token, terr = forge.token(g)
  local out, err
  if token then
    local s = res.step
    out, err = checks.report { db = run.db, repo = run.git.repo, g = g, token = token,
      auth = mainline.auth(g), card = job.card_id,
      passed = res.passed, what = string.format("%s (%s)", s.name, argv_text(s.command)),
      outcome = res.reason == "exit" and ("exit " .. tostring(res.code)) or (res.reason .. (res.signal and (" " .. res.signal) or "")),
      output = res.output }
  else
    err = terr
  end
  token = nil
  run:emit { type = "git", card = job.card_id, action = "status", state = out and out.state, id = out and out.sha,
    commented = out and out.commented or nil, error = err }
end

--- run(run, job): runs the checks of job (from prepare) outside any transaction, then
--- records the result, its comment and the move in one. A required layer missing blocks the
--- card (system) with the runner's message naming it.
function M.run(run, job)
  run:emit { type = "verify_start", card = job.card_id, steps = #job.checks.steps }
  local res, err = run_steps(run, job)
  fault.hit("mid_verify")
  if run.stopping then return end
  local ok, werr = run.db:tx(function()
    -- a worker that lost the card meanwhile records nothing for it (another works it now)
    run:check_lease(job)
    local c = run.board:get(job.card_id)
    if not c or c.status ~= "ready_for_testing" then return true end
    if not res then
      -- fail closed: the card is not reviewed; it waits in ready_for_testing and this run
      -- leaves it (prepare), so a resume on a machine that has the layer checks it again
      assert(run.board:comment(job.card_id, { author = "orket", body = "Verification could not run: " .. err }))
      return true
    end
    local s = res.step
    local what = string.format("%s (%s)", s.name, argv_text(s.command))
    local outcome = res.reason == "exit" and ("exit " .. tostring(res.code)) or
      (res.reason .. (res.signal and (" " .. res.signal) or ""))
    local body
    if res.passed then
      body = string.format("Verification passed: %d check%s, last %s: %s.", #job.checks.steps,
        #job.checks.steps == 1 and "" or "s", what, outcome)
    else
      body = string.format("Verification failed: %s: %s (expected exit %d).\n%s", what, outcome, s.expect_exit,
        tail(res.output, M.TAIL))
    end
    sv.insert(run.db, { card = job.card_id, run = run.run_id, handin = job.handin, passed = res.passed,
      command = argv_text(s.command), reason = res.reason, code = res.code, signal = res.signal,
      wall_ms = math.floor(res.wall_ms or 0), output = tail(res.output, M.TAIL), layers = res.layers })
    run.db:event { kind = "verification", card = job.card_id, run = run.run_id, actor = "orket", data = { passed = res.passed,
      command = argv_text(s.command), step = s.name, reason = res.reason, code = res.code, signal = res.signal,
      handin = job.handin, layers = res.layers, output = not res.passed and tail(res.output, 400) or nil } }
    assert(run.board:comment(job.card_id, { author = "orket", body = body }))
    local t, terr, tcode = run.board:transition(job.card_id, res.passed and "code_review" or "in_progress",
      { actor = board_mod.ENGINE, note = res.passed and "verification passed" or "verification failed" })
    if not t then return nil, terr, tcode end
    return true
  end)
  run:emit { type = "verify_end", card = job.card_id, passed = res and res.passed or false,
    error = (not ok and tostring(werr)) or (not res and err) or nil }
  if not res or not ok then
    run.verify_held = run.verify_held or {}
    run.verify_held[job.card_id] = "verification could not run: " .. tostring(err or werr)
  end
  if not ok then run:journal_broken(job.card_id) end
  if ok and res then report(run, job, res) end
  fault.hit("after_transition")
end

--- last(db, card_id) -> the card's latest verification row | nil
M.last = sv.last

--- results(db, card_id) -> the card's verification rows, oldest first.
M.results = sv.results

return M
