-- orket.engine.pull_request: a card handed in for review, on a project with a remote (orket.lua's
-- git section): its branch is pushed (orket.c.gitrepo, libgit2) and, with a forge, a pull
-- request is opened or found (orket.forge); with review.human the card then waits for
-- people (waiting_for_developer, reason review) and a new review cycle starts. The network
-- part runs as a job of its own, outside the scheduling round's transaction; its records
-- are written in one transaction after it. A failure skips the card for the rest of the run
-- with the error as the reason: the next run (or resume) tries again. Rows:
-- orket.store.forge. Contract: docs/git.md.
local forge = require "orket.forge"
local sf = require "orket.store.forge"
local fault = require "orket.engine.fault"
local board_mod = require "orket.board"
local prbranch = require "orket.actions.prbranch"
local finish = require "orket.actions.finish"
local sj = require "orket.store.journal_reads"
local gitwork = require "orket.engine.gitwork"
local verify = require "orket.engine.verify"
local inert = require "orket.inert"

local M = {}

M.PR_BODY_MAX = 4000

local function git_settings(run)
  local g = run.settings and run.settings.git
  if not run.git or not g or not g.remote then return nil end
  return g
end

--- row(db, card_id) -> the card's pull_requests row | nil
M.row = sf.pull_request

--- prepare(run, card) -> job {forge=true, card_id=} | nil, why-skipped | nil, nil, true (wait:
--- another hand-in is being published) | nil (nothing to do): whether a card in code_review
--- must be pushed (and its pull request opened) before anything else happens to it: with
--- review.human always, else when its branch moved since the last push, or when the remote's
--- orket/<card>, as last fetched, holds commits someone pushed on top of Orket's
--- (orket.actions.finish.branch_pushed: the review's move to done is refused for them): the
--- hand-in takes them in and the card is reviewed again. One hand-in is
--- published at a time: pushes of main from two threads at once would race on the remote.
function M.prepare(run, card)
  local g = git_settings(run)
  if not g or card.status ~= "code_review" or card.type ~= "issue" then return nil end
  local failed = run.forge_failed and run.forge_failed[card.id]
  if failed then return nil, failed end
  local head = run.git.repo:head("orket/" .. card.id)
  if not head then return nil end
  local pr = M.row(run.db, card.id)
  if run.settings.review.human or not pr or pr.head ~= head or finish.branch_pushed(run.db, run.git.repo, card.id) then
    if run.forge_publishing then return nil, nil, true end
    run.forge_publishing = true
    return { forge = true, card_id = card.id, head = head }
  end
  return nil
end

-- (the description cut on a character's start: half a character is invalid UTF-8 in the
-- JSON request, which a strict forge refuses)
local function pr_text(card)
  local title = string.format("%s: %s", card.id, card.summary or card.name or "")
  local body = string.format("Orket card %s.\n\n%s\n\nOrket-Card: %s", card.id,
    inert.cut(card.description or "", M.PR_BODY_MAX), card.id)
  return title, body
end

-- Journaled in its own transaction (a remote_branch event, and a comment when given): what
-- a hand-in did to the remote's orket/<card> that a person must be able to find in `orket
-- log` and `orket card`, not only in the run's output. -> true | nil, msg
local function journal_branch(run, job, card, data, comment)
  return run.db:tx(function()
    run:check_lease(job)
    run.db:event { kind = "remote_branch", card = card, run = run.run_id, actor = "orket", data = data }
    if comment then assert(run.board:comment(card, { author = "orket", body = comment })) end
    return true
  end)
end

-- Commits a person pushed on top of Orket's head, taken into the card's branch (got:
-- take_pushed's "taken"); pushed: the head Orket had pushed. On a card with checks the
-- take_in event's comment said it already.
local function journal_taken(run, job, card, got, pushed, checks)
  local why = not checks and string.format("Commits pushed to orket/%s on the remote after Orket's last push (up to "
    .. "%s, on top of %s) were taken into the card's branch (%s, now %s): it is pushed and reviewed again, so what "
    .. "merges into main is what was reviewed.", card, tostring(got.from), tostring(pushed), tostring(got.kind),
    tostring(got.id)) or nil
  return journal_branch(run, job, card, { kind = "taken", from = got.from, pushed = pushed, id = got.id,
    how = got.kind }, why)
end

-- The remote's orket/<card> at from, not on top of anything Orket pushed (someone's own
-- branch of that name, or one rewritten), about to be replaced by the hand-in's forced push
-- of head: said once per replaced head (a hand-in tried again finds it again), before the
-- push, so a kill after it still leaves the record. The fetch kept it in workspace/'s
-- repository as the tracking ref, until the branch is read again (then in that ref's reflog).
local function journal_replaced(run, job, card, from, head)
  for _, d in ipairs(sj.card_event_data(run.db, card, "remote_branch")) do
    if d.kind == "replaced" and d.from == from then return true end
  end
  local kept = "refs/remotes/orket-branches/orket/" .. card
  local why = string.format("The remote's orket/%s was at %s, not on top of anything Orket pushed for this card "
    .. "(someone's own branch of that name, or one rewritten): the hand-in replaces it with the card's branch (%s), "
    .. "a forced push. That commit is kept in workspace/'s repository as %s until the branch is read again (then in "
    .. "that ref's reflog); get it back with: git -C workspace branch replaced/%s %s", card, from, tostring(head), kept,
    card, from)
  return journal_branch(run, job, card, { kind = "replaced", from = from, head = head, kept = kept }, why)
end

-- The network part: push main (so the pull request has its base; a remote main that moved
-- ahead, because the forge merged something, is left as it is) and the card's branch
-- (forced only over a branch it replaces: orket.actions.prbranch.push), then open or find the pull request. Commits a person
-- pushed to the card's branch on top of what Orket last pushed are taken into the card's
-- branch first (orket.actions.prbranch), never pushed over; a conflict with them sends the
-- card back (-> nil, nil, {paths=, id=}). A head they make, on a card with acceptance checks,
-- is verified before it is pushed for review (-> nil, nil, {verify=true, id=}): the card goes
-- code_review -> ready_for_testing in the transaction that journals the "take_in" event,
-- before the merge, so it never waits for review (where an approval of the head merges it)
-- with a head nobody checked. A run killed before the merge costs one verification of the
-- head it had; its next hand-in takes the commits in again. A take-in refused because the
-- card left code_review -> nil, msg, {code="EMOVED"}; a recorded pull request merged or
-- closed on the forge -> nil, nil, {over=(forge.get_pr's answer), number=}: nothing pushed.
local function publish(run, g, card, token, job)
  local repo = run.git.repo
  local auth = token and { token = token, user = g.forge == "github" and "x-access-token" or "orket" } or {}
  local ok, err, code = repo:push(g.remote, "main", auth)
  if not ok and code ~= "EREJECTED" then return nil, err end
  local row = M.row(run.db, card.id)
  local checks = verify.checks(run, card)
  -- refused: why the take-in did not start; started: the merge is under way
  -- moved: the refusal is the card's having left code_review (its new status has its own flow)
  local refused, started, moved
  -- the two heads the take-in's merge joins (the remote's, the card's), kept for its failure
  local merging
  local function taking(from)
    local at = repo:head("orket/" .. card.id)
    -- a merge that failed on these same heads would fail again while its cause stands: it is
    -- not tried, and the card's checks are not run (nor paid) again for it
    local before = checks and sf.last_take_in_failure(run.db, card.id)
    if before and before.from == from and before.head == at then
      -- a card a webhook moved during the fetch is that (EMOVED), not this refusal
      local now = run.board:status(card.id)
      if now ~= "code_review" then
        moved = true
        refused = "the card is " .. tostring(now) .. " now, not in code_review"
        return nil, refused
      end
      -- its cause may be gone without either head moving: uncommitted changes in the card's
      -- directory are looked at again (cheap), and any cause once a person moved the card
      -- after the failure (who fixed it by hand); either tries the merge again
      local clean = false
      if before.code == "EDIRTY" then
        local dirty = repo:status(card.id)
        clean = type(dirty) == "table" and #dirty == 0
      end
      if not clean and not sf.moved_by_person_since(run.db, card.id, before.event) then
        refused = string.format("taking the remote's head %s into the card's head %s failed before on these same "
          .. "heads (%s), so it is not tried again, nor the card verified again for it, until either moves (a push "
          .. "to the pull request's branch, or the card's work), %s", tostring(from), tostring(at),
          tostring(before.error), before.code == "EDIRTY" and "or the card's directory is clean"
          or "or a person moves the card after fixing the cause (to ready_for_testing: verified and handed in again)")
        return nil, refused
      end
    end
    -- written before the merge: true whether or not the merge is done when it is read
    local why = string.format("Commits pushed to orket/%s on the remote (%s) are being taken into the card's branch by "
      .. "its hand-in; the engine sent the card to ready_for_testing, and its checks run on the card's head before "
      .. "anything is pushed for review (a conflict with the card's work sends it back to in_progress instead).",
      card.id, tostring(from))
    local ok, terr = run.db:tx(function()
      run:check_lease(job)
      -- the fetch may take long: a webhook may have moved the card meanwhile (merged, sent
      -- back, blocked), and its branch is then no hand-in's to merge into
      local now = run.board:status(card.id)
      if now ~= "code_review" then
        moved = true
        return nil, "the card is " .. tostring(now) .. " now, not in code_review"
      end
      if not checks then return true end
      run.db:event { kind = "take_in", card = card.id, run = run.run_id, actor = "orket",
        data = { from = from, pushed = row and row.head } }
      assert(run.board:comment(card.id, { author = "orket", body = why }))
      local t, merr, mcode = run.board:transition(card.id, "ready_for_testing", { actor = board_mod.ENGINE,
        note = "the remote's commits taken in: verified before review" })
      if not t then return nil, merr, mcode end
      return true
    end)
    if not ok then refused = tostring(terr) else started, merging = true, { from = from, head = at } end
    if ok and checks then fault.hit("before_take_in_merge") end
    return ok, terr
  end
  local got, terr, tcode = prbranch.take_pushed { repo = repo, g = g, auth = auth, card = card.id,
    pushed = row and row.head, attach = function() return gitwork.worktree(run, card.id) end, taking = taking }
  if not got and refused then
    -- EMOVED: not a failure of the forge's (the card is not skipped for the rest of the run)
    return nil, "the commits pushed to the remote's orket/" .. card.id .. " were not taken into the card's branch, "
      .. "and nothing was pushed: " .. refused, moved and { code = "EMOVED" } or nil
  end
  if not got and started then
    -- remembered by its heads (a take_in_failed event): the card's checks now run on the head
    -- it has, once; the next hand-in on the same heads does not merge nor verify again
    if checks then
      local ok2, werr = run.db:tx(function()
        run:check_lease(job)
        run.db:event { kind = "take_in_failed", card = card.id, run = run.run_id, actor = "orket",
          data = { from = merging.from, head = merging.head, error = tostring(terr), code = tcode } }
        assert(run.board:comment(card.id, { author = "orket", body = string.format("Taking the commits pushed to "
          .. "orket/%s on the remote (%s) into the card's branch (at %s) failed: %s. Nothing was pushed; the card's "
          .. "checks run on the head it has. The next hand-in does not try this merge again, nor verify the card "
          .. "again for it, until the remote's branch or the card's moves, %s.", card.id, tostring(merging.from),
          tostring(merging.head), tostring(terr), tcode == "EDIRTY"
          and "or the card's directory holds no uncommitted changes (commit or remove them)"
          or "or a person moves the card after fixing the cause (to ready_for_testing: verified and handed in "
          .. "again)") }))
        return true
      end)
      if not ok2 then terr = tostring(terr) .. " (and its failure could not be recorded: " .. tostring(werr) .. ")" end
    end
    return nil, "merging the commits pushed to the remote's orket/" .. card.id .. " into the card's branch failed, "
      .. "and nothing was pushed" .. (checks and " (the card's checks run on the head it has)" or "") .. ": "
      .. tostring(terr)
  end
  if not got then
    return nil, "the remote's orket/" .. card.id .. " could not be read, so it is not pushed over: " .. tostring(terr)
  end
  if got.code == "taken" or got.code == "conflict" then
    gitwork.forget(run, card.id) -- its directory changed under the turns' notes
    run:emit { type = "git", card = card.id, action = "take_pushed", kind = got.kind or "conflict", id = got.id,
      from = got.from, paths = got.paths }
    if got.code == "conflict" then
      fault.hit("after_take_in_conflict")
      return nil, nil, got
    end
    job.head = got.id
    local jok, jerr = journal_taken(run, job, card.id, got, row and row.head, checks)
    if not jok then return nil, "the commits pushed to the remote's orket/" .. card.id .. " were taken into the card's "
      .. "branch, but that could not be recorded, so nothing was pushed: " .. tostring(jerr) end
    if checks then run:emit { type = "git", card = card.id, action = "take_pushed", verify = true, id = got.id } end
    fault.hit("after_take_in")
    if checks then return nil, nil, { verify = true, id = got.id } end
  end
  -- a take-in's conflict merge still at the head: its send-back never committed (a kill, a
  -- lost lease); its markers are never pushed for review, the card goes back now
  local stuck, paths = prbranch.unresolved(repo, card.id)
  if stuck then
    run:emit { type = "git", card = card.id, action = "take_pushed", kind = "conflict", id = stuck, unresolved = true,
      paths = paths }
    return nil, nil, { id = stuck, unresolved = true, paths = paths }
  end
  -- the pull request a review cycle would be opened on must still be open: a person may have
  -- merged or closed it on the forge while the card was not in review (a take-in's
  -- verification), and that delivery changed nothing then (orket.engine.forgereview). Only
  -- the forge's answer that it is over stops the hand-in: with its API failing while its git
  -- answers, the hand-in goes on (said); a number recorded for another repository (git.repo
  -- changed) is not looked up in this one.
  local existing = g.forge and M.row(run.db, card.id)
  if existing and existing.number and (existing.repo == nil or existing.repo == g.repo) then
    local now, nerr = forge.get_pr(g, token, math.tointeger(existing.number) or existing.number)
    if now and (now.merged or now.state ~= "open") then return nil, nil, { over = now, number = existing.number } end
    if not now then
      run:emit { type = "git", card = card.id, action = "pull_request", number = existing.number,
        note = "its state could not be read (" .. tostring(nerr) .. "); the card's head is pushed to it all the same" }
    end
  end
  if got.code == "rewritten" then
    local jok, jerr = journal_replaced(run, job, card.id, got.id, job.head)
    if not jok then return nil, "the remote's orket/" .. card.id .. " (at " .. tostring(got.id) .. ") is not Orket's, "
      .. "and its replacement could not be recorded, so it is not pushed over: " .. tostring(jerr) end
    run:emit { type = "git", card = card.id, action = "take_pushed", kind = "rewritten", from = got.id,
      kept = "refs/remotes/orket-branches/orket/" .. card.id }
  end
  ok, err = prbranch.push { repo = repo, g = g, auth = auth, card = card.id, got = got }
  if not ok then return nil, err end
  fault.hit("after_git_push")
  if not g.forge then return {} end
  if existing and existing.number then return { number = existing.number, url = existing.url } end
  local title, body = pr_text(card)
  local pr, perr = forge.open_pr(g, token, { branch = "orket/" .. card.id, title = title, body = body })
  return pr, perr
end

-- A failure: emitted, and remembered so the card is skipped for the rest of the run.
local function failed(run, job, msg)
  run.forge_failed = run.forge_failed or {}
  run.forge_failed[job.card_id] = msg
  run:emit { type = "git", card = job.card_id, action = "pull_request", error = msg }
end

-- The remote's commits on the card's branch conflict with its work: merged with conflict
-- markers (the card's branch holds them), the card goes back to in_progress with the files
-- named, as a conflict with main does (orket.actions.finish.send_back); nothing is pushed.
local function send_back(run, job, card, c)
  local ok, werr = run.db:tx(function()
    run:check_lease(job)
    return prbranch.send_back(run.board, card.id, c)
  end)
  if not ok then return failed(run, job, werr) end
end

-- The pull request was merged or closed on the forge while the card was not in review (a
-- take-in's verification): no review cycle is opened on it. The card is held (blocked,
-- reason review) with a comment saying so: a merge on the forge is a person's decision, and
-- whether the card's head (verified after it) goes into main is theirs too. Either way that
-- pull request is over and forgotten, as a close delivered in review is: a retried card's
-- next hand-in opens a new one.
local function pr_over(run, job, card, o)
  local pr = o.over
  local why
  if pr.merged then
    why = string.format("The pull request #%s was merged on the forge%s while the card was not in review, so that "
      .. "merge did not finish the card. "
      .. "The card's head %s was not pushed for review; the engine blocked the card for a person to decide: "
      .. "retry it to have its head reviewed on a new pull request, or close it.", tostring(o.number),
      pr.merge_commit and (" as " .. pr.merge_commit) or "", tostring(job.head))
  else
    why = string.format("The pull request #%s was closed on the forge without being merged while the card was not in "
      .. "review; the engine blocked the card, and nothing was pushed for review.", tostring(o.number))
  end
  local ok, werr = run.db:tx(function()
    run:check_lease(job)
    assert(run.board:comment(card.id, { author = "orket", body = why }))
    local t, terr, tcode = run.board:transition(card.id, "blocked", { actor = board_mod.ENGINE, reason = "review",
      note = why })
    if not t then return nil, terr, tcode end
    sf.forget_pull_request(run.db, card.id)
    return true
  end)
  if not ok then return failed(run, job, werr) end
  run:emit { type = "git", card = card.id, action = "pull_request", number = o.number, merged = pr.merged or false,
    state = pr.state, blocked = true }
end

local function publish_and_record(run, job)
  local g = git_settings(run)
  local card = run.board:get(job.card_id)
  local function fail(msg) return failed(run, job, msg) end
  if not card or card.status ~= "code_review" then return end
  local token
  if g.forge then
    local terr
    token, terr = forge.token(g)
    if not token then return fail(terr) end
  end
  local pr, err, conflict = publish(run, g, card, token, job)
  token = nil
  -- taken in on a card with checks: it is in ready_for_testing already (publish's take-in),
  -- and verification runs on the new head
  if conflict and conflict.verify then return end
  if conflict and conflict.code == "EMOVED" then
    return run:emit { type = "git", card = job.card_id, action = "pull_request", error = err, code = "EMOVED" }
  end
  if conflict and conflict.over then return pr_over(run, job, card, conflict) end
  if conflict then return send_back(run, job, card, conflict) end
  if not pr then return fail(err) end
  fault.hit("after_pull_request")
  local human = run.settings.review.human
  local moved
  local ok, werr = run.db:tx(function()
    local db = run.db
    -- a worker that lost the card meanwhile records nothing for it (another works it now)
    run:check_lease(job)
    -- read again under the write lock: a review delivered while the pull request was opened
    -- (changes requested, an approval) moved the card already, and is left as it decided.
    -- The pull request is still recorded, for the rework's hand-in (or its end, done);
    -- not after a close or a merge on the forge, which blocked the card and forgot it
    local now = run.board:get(card.id)
    moved = now and now.status ~= "code_review" and now.status or nil
    if moved == "blocked" or moved == "canceled" or moved == "archived" then return true end
    sf.save_pull_request(db, card.id, g.forge, g.repo, pr.number, pr.url, job.head)
    db:event { kind = "pull_request", card = card.id, run = run.run_id,
      data = { number = pr.number, url = pr.url, head = job.head, remote = g.forge and g.repo or nil } }
    if human and not moved then
      sf.open_cycle(db, card.id, sf.next_cycle(db, card.id), pr.number, job.head)
      local t, terr, tcode = run.board:transition(card.id, "waiting_for_developer", { actor = board_mod.ENGINE,
        reason = "review", note = "review by people on the forge" .. (pr.url and (": " .. pr.url) or "") })
      if not t then return nil, terr, tcode end
    end
    return true
  end)
  if not ok then return fail(werr) end
  run:emit { type = "git", card = card.id, action = "pull_request", number = pr.number, url = pr.url, id = job.head,
    waiting = (human and not moved) or nil, note = moved and ("the card was moved to " .. moved
      .. " while its pull request was opened (a review on the forge): left as it is") or nil }
end

--- info(db, card_id) -> {pull_request = {number=, url=, head=} | nil, reviews = {{cycle=,
--- decision=, reviewer=, body=, opened_at=, decided_at=}...}} | nil: what `orket card` shows
function M.info(db, card_id)
  local pr = sf.pull_request_link(db, card_id)
  local reviews = sf.review_cycles(db, card_id)
  if not pr and #reviews == 0 then return nil end
  return { pull_request = pr, reviews = reviews }
end

--- run(run, job): the job prepare made: publish, then record (and, with review.human, hand
--- the card to people) in one transaction. Errors are emitted and remembered for the run.
function M.run(run, job)
  local ok, err = pcall(publish_and_record, run, job)
  run.forge_publishing = nil
  if not ok then failed(run, job, tostring(err)) end
end

return M

