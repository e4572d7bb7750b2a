-- orket.serve.webhooks: POST /v1/webhooks/gitea and /v1/webhooks/github, a forge telling
-- the board what people decided on a card's pull request. No API key: the delivery's
-- HMAC-SHA256 signature over the raw body (orket.c.crypto.verify_webhook, constant time)
-- under the secret in the variable orket.lua's git.webhook_secret_env names is checked
-- before the body is parsed; no secret, no delivery. Each delivery id and the event's own
-- identity from the signed body (orket.forge.identity) are recorded in the transaction of the
-- board change it makes, so a redelivery, or the same body under a new delivery id (the id
-- is not signed), finds it and changes nothing; an event older than webhook_max_age_s by its
-- own timestamp is refused (422).
-- Events are read by orket.forge; what a review does to the card is orket.engine.forgereview's
-- (the reviewer acting as a person holding integrity_guard), what follows a merge
-- orket.engine.aftermerge's. Rows: orket.store.forge. Contract: docs/git.md, docs/serve.md.
local crypto = require "orket.c.crypto"
local cjson = require "cjson.safe"
local board_mod = require "orket.board"
local forge = require "orket.forge"
local G = require "orket.c.gitrepo"
local aftermerge = require "orket.engine.aftermerge"
local sf = require "orket.store.forge"
local sj = require "orket.store.journal_reads"
local gitdiff = require "orket.c.gitdiff"
local audit_chain = require "orket.audit.chain"
local forgereview = require "orket.engine.forgereview"
local config = require "orket.config"
local body = require "orket.serve.body"
local openapi = require "orket.serve.openapi"
local secret_setting = require "orket.settings.secret"
local task = require "orket.task"
local verify = require "orket.engine.verify"

local M = {}

local on_push -- a push event (below)

local err = require("orket.serve.routes").err

-- The project's git settings and all its settings, read for each delivery (orket.lua may
-- change while serving).
local function git_settings(dir)
  local cfg, s = config.settings(dir)
  if not cfg then return nil, s end
  local g = s.git or {}
  g.backoff_ms = s.budgets.backoff_ms -- a push of main that fails is tried again after it
  return g, nil, s
end

-- The signature header in the forge's own form: GitHub's "sha256=<hex>", Gitea's and
-- Forgejo's bare hex; anything else (sha1=, another scheme) is refused before the MAC.
local function signature_form(name, sig)
  if type(sig) ~= "string" then return nil end
  if name == "github" then return sig:match("^sha256=") and sig or nil end
  return not sig:find("=", 1, true) and sig or nil
end

-- An ignored delivery keeps its id only: it changed nothing, so the same event sent again
-- later (the card now in review) is read afresh.
local function record(db, name, d, card, outcome)
  local ignored = outcome:find("^ignored") ~= nil
  sf.record_delivery(db, name, d.id, tostring(d.event), card, outcome, not ignored and d.identity or nil, d.event_at)
  -- the rows no longer needed go as each delivery is kept (a range of an index, most often empty)
  if d.prune_before then sf.prune_deliveries(db, d.prune_before) end
end

-- A look-alike's identity (orket.forge.identity's scoped: a body naming nothing of the
-- event's own, as Gitea's reviews) with the card's latest review cycle: the same look in a
-- cycle opened since (a request for changes again, the rework's hand-in leaving the same
-- head) is a person's new decision, not the earlier one sent again. Read again inside each
-- transaction that records it: a hand-in may open a cycle meanwhile.
local function qualify(db, d, card)
  if d.scoped and d.own_identity and card then
    d.identity = d.own_identity .. "@cycle:" .. sf.latest_cycle(db, card)
  end
end

-- How old an event may be by its own timestamp (orket.forge.event_time) unless
-- ORKET_SERVE_LIMITS' webhook_max_age_s says otherwise: three days, as long as GitHub
-- keeps a delivery for redelivery. An event without a timestamp is taken.
M.MAX_AGE_S = 3 * 86400
-- A delivery's row is what refuses the same event again until the event is stale by its own
-- time; it is deleted once the event is older than this or webhook_max_age_s, the larger:
-- a window widened later than the row's deletion still finds the rows of the last 30 days.
M.KEEP_S = 30 * 86400

-- A card the forge's person moved, in the audit's hash chain as every write through the
-- server is (docs/audit.md): the actor is the forge's login under the forge's name
-- ("github:alice"), a namespace of its own, never taken for a person or a key of this
-- server's; in the caller's transaction, the checkpoint signed once the request is answered.
local function audited(ctx, name, login, card, kind)
  audit_chain.record(ctx.db, { actor = name .. ":" .. tostring(login), action = "webhook_" .. kind, card = card,
    route = ctx.route })
  ctx.audited = true
end

-- A delivery that was not applied: the repository busy (503: the forge delivers it again),
-- or refused for good, which is recorded (with also(msg) in the same transaction) and
-- answered 200, so that it is not delivered again. card: recorded against; answered: the
-- card the answer names (nil: none).
local function refusal(ctx, name, d, card, oerr, ocode, also, answered)
  -- the store failed the transaction (a read or write that raised): not the board's word, so
  -- nothing is recorded; raised to the dispatch, which logs it and answers 500, and the forge
  -- delivers again (recorded as refused, its redelivery would be a duplicate: the person's
  -- decision lost)
  if ocode == "ETX" then error(oerr, 0) end
  if ocode == "EAGAIN" or ocode == "ELOCKED" then
    return err(503, "busy", "the repository is busy; deliver again: " .. tostring(oerr))
  end
  local msg = tostring(oerr):gsub("^board: ", "")
  ctx.note = "refused: " .. msg
  ctx.db:tx(function()
    qualify(ctx.db, d, card)
    record(ctx.db, name, d, card, "refused: " .. msg)
    if also then also(msg) end
    return true
  end)
  return 200, { delivery = d.id, outcome = "refused", reason = msg, card = answered }
end

-- What follows a merge (orket.engine.aftermerge, in a task of its own so the forge's delivery
-- is answered at once): the card's pull request ends (by_person: merged on the forge), main
-- is pushed (one push at a time for the server), a sandbox of main is deployed (deploy =
-- false: not for this card).
-- A review's event as a card's comment names it: "approval by alice of commit 1a2b...",
-- "merge by bob", "request for changes by carol", "close by dave"
local function event_words(ev)
  if ev.kind == "approved" then return string.format("approval by %s of commit %s", ev.reviewer, tostring(ev.commit)) end
  if ev.kind == "merged" then return "merge by " .. tostring(ev.reviewer) end
  if ev.kind == "closed" then return "close by " .. tostring(ev.reviewer) end
  return "request for changes by " .. tostring(ev.reviewer)
end

local function after_merge(ctx, settings, card, ev, deploy)
  aftermerge.later { owner = ctx.server, dir = ctx.dir, db = ctx.db, settings = settings, card = card,
    merge_id = ev.merge_id, by_person = ev.kind == "merged", deploy = deploy,
    say = ctx.server and function(fields) ctx.server:_log(fields) end }
end

-- The remote's main fetched before the transaction of an event that may merge: finish
-- merges it into main first, so what people merged on the forge is kept. -> true | false |
-- nil (no remote)
local function remote_main(ctx, g)
  if not g.remote then return nil end
  return aftermerge.fetch_main { g = g, dir = ctx.dir } and true or false
end

-- Whether the remote's main, fetched now, holds commit id (a card's head) -> true | false
-- (or the remote has no main) | nil, msg (no remote or repository, or the fetch failed)
local function forge_main_holds(ctx, g, id)
  if not g.remote then return nil, "no git.remote" end
  local repo = G.open(ctx.dir .. "/workspace")
  if not repo then return nil, "the project has no repository" end
  local _ <close> = setmetatable({}, { __close = function() repo:close() end })
  local rid, ferr = aftermerge.fetch_main { g = g, repo = repo }
  if rid == nil then return nil, ferr end
  return rid ~= false and repo:contains("refs/remotes/orket/main", id) == true
end

-- An approval of a commit that is not the card's head, and not in the history of a head
-- Orket pushed for the card's review (its pull request's recorded head, a review cycle's):
-- the pull request's head has commits Orket did not push (a person's, on top or rewriting
-- the branch, or taken into the card's branch and not pushed yet). Never merged on an
-- approval: a forge's webhook may name the head when it was sent, not the commit the
-- reviewer reviewed (Gitea's does), so such a commit may have been reviewed by nobody. ->
-- true | false (an older head: a head Orket pushed came after it) | nil (no repository)
local function foreign_head(ctx, card, ev)
  if type(ev.commit) ~= "string" or not ev.commit:match("^%x+$") or #ev.commit ~= 40 then return true end
  local g = gitdiff.open(ctx.dir .. "/workspace")
  if not g then return nil end
  local _ <close> = g
  for _, head in ipairs(sf.pushed_heads(ctx.db, card)) do
    if g:merge_base(ev.commit, head) == ev.commit then return false end
  end
  return true
end

-- A refusal's pull request comment is claimed in the journal inside the transaction that
-- decides to post it (a "forge_comment" event, state "posting"), so a delivery of the same
-- review, on this server or another on the same store (write transactions are serialised),
-- does not post it again while it is in flight; the post's end is journaled too ("posted",
-- or "failed": owed, posted by the review's next delivery; or "refused": the forge refused it
-- for good, never posted again). A claim older than COMMENT_CLAIM_S, longer than the forge's
-- calls take with their retries, is taken as failed: its server stopped before saying how
-- the post ended. A claim names its repository: one that is no longer git.repo is not
-- posted (its pull request's number names another's there).
M.COMMENT_CLAIM_S = 300

-- the forge's refusals worth trying again later (orket.forge's codes): any other (EAUTH: the
-- token may not comment; ENOTFOUND: the pull request is gone; EINVAL: it is locked; EFORGE)
-- would be refused again on every later delivery
local TEMPORARY = { EUNAVAILABLE = true, ERATELIMIT = true }

local function comment_owed(c, now, g)
  return c ~= nil and type(c.repo) == "string" and c.repo:lower() == (g.repo or ""):lower()
    and (c.state == "failed" or c.state == "posting" and now - (tonumber(c.at) or 0) > M.COMMENT_CLAIM_S)
end

-- claims the comment (in the deciding transaction) -> the claim's data
local function claim_comment(db, card, reviewer, c)
  c = { forge = c.forge, repo = c.repo, number = c.number, reason = c.reason, identity = c.identity,
    delivery = c.delivery, text = c.text, state = "posting", at = os.time() }
  db:event { kind = "forge_comment", card = card, actor = reviewer, data = c }
  return c
end

-- Says on the pull request why a review was not applied (in a task of its own: the delivery
-- is answered at once), then journals how the post ended, however it ended (a raised error
-- included: the claim is not left in flight); a comment that cannot be posted is logged.
local function tell_pull_request(db, g, card, reviewer, c)
  task.spawn(function()
    local ran, ok, cerr, ccode = pcall(function()
      local token, terr = forge.token(g)
      if not token then return false, terr end -- (owed: set, it is posted by a later delivery)
      return forge.comment(g, token, c.number, c.text)
    end)
    if not ran then ok, cerr, ccode = false, ok, nil end
    if not ok then
      io.stderr:write(string.format("webhooks: the comment on pull request #%s could not be posted: %s\n",
        tostring(c.number), tostring(cerr)))
    end
    local done = {}
    for k, v in pairs(c) do done[k] = v end
    done.state, done.at = ok and "posted" or (ccode and not TEMPORARY[ccode]) and "refused" or "failed", os.time()
    done.code = not ok and ccode or nil
    -- (a store gone away: the claim stays "posting", and a delivery after COMMENT_CLAIM_S
    -- posts the comment again, rather than losing it)
    local jok, jerr = pcall(function()
      assert(db:tx(function()
        db:event { kind = "forge_comment", card = card, actor = reviewer, data = done }
        return true
      end))
    end)
    if not jok then
      io.stderr:write(string.format("webhooks: the comment on pull request #%s: its end could not be journaled: %s\n",
        tostring(c.number), tostring(jerr)))
    end
  end)
end

-- A delivery already recorded (its id again: GitHub's "Redeliver" keeps it) says nothing
-- again, but posts the pull request comment of its refusal that is owed (the forge's API
-- failed when it was posted) -> true | nil, error
local function post_owed(db, g, name, delivery)
  if g.forge ~= name then return true end
  local function owed()
    local out, now = {}, os.time()
    for _, r in ipairs(sf.delivery_comments(db, name, delivery)) do
      local c = sf.refusal_comment(db, r.card, r.identity, r.reviewer, r.reason)
      if comment_owed(c, now, g) then out[#out + 1] = { card = r.card, reviewer = r.reviewer, c = c } end
    end
    return out
  end
  -- read first, outside any transaction (through the delivery's card): most duplicates owe
  -- nothing, and take no write lock; one that looks owed is read again under it
  local rok, first = pcall(owed)
  if not rok then return nil, tostring(first) end
  if #first == 0 then return true end
  local due = {}
  local ok, terr = db:tx(function()
    due = {}
    for _, o in ipairs(owed()) do
      o.c.delivery = delivery
      due[#due + 1] = { card = o.card, reviewer = o.reviewer, c = claim_comment(db, o.card, o.reviewer, o.c) }
    end
    return true
  end)
  if not ok then return nil, terr end
  for _, t in ipairs(due) do tell_pull_request(db, g, t.card, t.reviewer, t.c) end
  return true
end

-- A forge's login: a person's, or an app's ("github-merge-queue[bot]", "mergify[bot]": a
-- merge queue or an auto-merge a team set up, which merges with the rights it was given)
local function login(v)
  return type(v) == "string" and #v <= 100 and (v:match("^[%w][%w._%-]*$") or v:match("^[%w][%w._%-]*%[bot%]$"))
    and v or nil
end

-- A push to the forge's main (a person merged there, on the forge or by pushing): the
-- remote's main is fetched, and every card waiting for review whose branch tip it holds is
-- finished as merged by the pusher (main moves forward; the card is done once: a later
-- pull_request closed event finds it done). A push to another ref (an orket/ branch
-- force-pushed by someone else included) changes nothing.
on_push = function(ctx, name, d, doc, g, settings)
  local db = ctx.db
  local repo_name = type(doc.repository) == "table" and doc.repository.full_name or nil
  local sender = type(doc.sender) == "table" and login(doc.sender.login) or nil
  local pusher = type(doc.pusher) == "table" and (login(doc.pusher.login) or login(doc.pusher.username)
    or login(doc.pusher.name)) or nil
  local why
  if g.forge ~= name then why = "this project's forge is " .. tostring(g.forge or "not set")
  elseif type(repo_name) ~= "string" then why = "the event names no repository (repository.full_name)"
  elseif repo_name:lower() ~= (g.repo or ""):lower() then
    why = "unknown repository " .. repo_name
  elseif doc.ref ~= "refs/heads/main" then why = "a push to " .. tostring(doc.ref) .. ", not to main"
  elseif not g.remote then why = "no git.remote to fetch main from"
  elseif not (sender or pusher) then why = "the event names no person (a forge login)" end
  local function ignored(reason)
    ctx.note = "ignored: " .. reason
    local rok, rerr = db:tx(function()
      if not sf.delivery_seen(db, name, d.id, d.identity) then record(db, name, d, nil, "ignored: " .. reason) end
      return true
    end)
    if not rok then return err(500, "internal", rerr) end
    return 200, { delivery = d.id, outcome = "ignored", reason = reason }
  end
  if why then return ignored(why) end
  local repo = G.open(ctx.dir .. "/workspace")
  if not repo then return ignored("the project has no repository") end
  local _ <close> = setmetatable({}, { __close = function() repo:close() end })
  local rid, ferr = aftermerge.fetch_main { g = g, repo = repo }
  if rid == nil then
    return err(503, "busy", "the remote's main could not be fetched; deliver again: " .. tostring(ferr))
  end
  if rid == false then return ignored("the remote has no main") end
  local board = board_mod.open(db)
  local found = {}
  for _, c in ipairs(board:list { status = { "waiting_for_developer", "code_review" }, type = "issue" } or {}) do
    local head = repo:head("orket/" .. c.id)
    if head and repo:contains("refs/remotes/orket/main", head) then found[#found + 1] = c.id end
  end
  if #found == 0 then return ignored("main holds no branch of a card in review") end
  local who = sender or pusher
  local actor = { seat = who, roles = { "integrity_guard" }, by = "person" }
  local evs, refused = {}, {}
  local outcome, oerr, ocode = db:tx(function()
    if sf.delivery_seen(db, name, d.id, d.identity) then return "duplicate" end
    evs, refused = {}, {} -- (the transaction may be run again)
    local outs = {}
    for _, id in ipairs(found) do
      local c = board:get(id)
      local row = sf.pull_request(db, id)
      local ev = { kind = "merged", reviewer = who, remote_main = true, number = row and math.tointeger(row.number) }
      if forgereview.action_for(c, ev) then
        -- each card in a savepoint of its own: one the board refuses (its branch holds
        -- commits Orket did not push, say) is said on it and left, and the others the push
        -- merged are still finished; a busy repository or a failed store fails the whole
        -- delivery, which the forge sends again
        local out, ferr2, fcode = db:tx(function()
          return forgereview.apply("approve", { db = db, dir = ctx.dir, board = board, card = c,
            ev = ev, actor = actor, delivery = d.id })
        end)
        if not out and (fcode == "ETX" or fcode == "EAGAIN" or fcode == "ELOCKED") then
          return nil, id .. ": " .. tostring(ferr2), fcode
        end
        if out then
          db:event { kind = "webhook", card = id, actor = who,
            data = { forge = name, delivery = d.id, event = "push", number = ev.number, outcome = out } }
          audited(ctx, name, who, id, "push")
          outs[#outs + 1] = id .. " " .. out
          if out == "done" then evs[#evs + 1] = { id, ev } end
        else
          local msg = tostring(ferr2):gsub("^board: ", "")
          assert(board:comment(id, { author = "orket", body = string.format("The forge's %s was not applied: %s",
            event_words(ev), msg) }))
          outs[#outs + 1] = id .. " refused: " .. msg
          refused[#refused + 1] = { card = id, reason = msg }
        end
      end
    end
    record(db, name, d, found[1], "push: " .. table.concat(outs, ", "))
    return "done"
  end)
  if not outcome then return refusal(ctx, name, d, found[1], oerr, ocode) end
  ctx.note = outcome
  if outcome == "duplicate" then return 200, { delivery = d.id, outcome = "duplicate" } end
  local cards_done = {}
  for i, pair in ipairs(evs) do
    cards_done[#cards_done + 1] = pair[1]
    -- main moved: a sandbox of it may be due (sandbox.deploy), once for the push
    after_merge(ctx, settings, pair[1], pair[2], i == #evs)
  end
  local reason = #cards_done == 0 and (#refused > 0 and refused[1].card .. ": " .. refused[1].reason
    or "no card in review could be finished") or nil
  return 200, { delivery = d.id, outcome = #cards_done > 0 and "done" or #refused > 0 and "refused" or "ignored",
    cards = cards_done, card = cards_done[1], reason = reason, refused = #refused > 0 and refused or nil }
end

-- A delivery's headers, its signature in the forge's form and its body, read -> d, sig,
-- text | nil, status, doc (the refusal). before(): a refusal due before the body is read
-- (status, doc), or nil.
local function read_delivery(name, req, before)
  local d = forge.delivery(name, req.headers)
  local sig = signature_form(name, d.signature)
  if not sig then
    -- none at all is told apart (its remedy: the forge's webhook has no secret set)
    local form = name == "github" and "X-Hub-Signature-256: sha256=<hex>" or "X-Gitea-Signature: <hex>"
    return nil, err(401, "bad_signature", d.signature == nil and ("the delivery has no signature header (" .. form .. ")")
      or ("the delivery's signature is not in this forge's form (" .. form .. ")"))
  end
  if before then
    local status, doc = before()
    if status then return nil, status, doc end
  end
  local text, berr, bcode = req:body()
  if not text then return nil, err(body.failure(bcode, berr)) end
  return d, sig, text
end

--- mismatch() -> status, doc: the refusal of a delivery whose signature does not match
local function mismatch() return err(401, "bad_signature", "the signature does not match the body") end
M.mismatch = mismatch

--- stand_in(name) -> the handler of forge name's webhook under the prefix of a project that
--- does not exist (or did not open): it answers as a project's webhook answers a delivery
--- whose signature does not match, after the same kind of work (the signature's form, the
--- body read, the settings read, an HMAC over the body under a secret of no one's), so that
--- a project's name cannot be probed through it (docs/teams.md; tests/e2e/teams_test.lua
--- compares the answers)
function M.stand_in(name)
  return function(req, ctx)
    ctx.note = "no such project"
    local d, sig, text = read_delivery(name, req)
    if not d then return sig, text end
    git_settings(ctx.dir)
    crypto.verify_webhook(crypto.random_id(32), text, sig)
    return mismatch()
  end
end

local function handle(name)
  return function(req, ctx)
    local g, gerr, settings, secret, serr
    -- the settings and the secret before the body: with no secret every delivery is refused,
    -- and a body that needs no key to send is not held for nothing. Not under a project's
    -- prefix, where a refusal must cost what a stand-in's does (the body read): there the
    -- HMAC says NO_SECRET and the answer is a mismatch's
    local d, sig, text = read_delivery(name, req, function()
      g, gerr, settings = git_settings(ctx.dir)
      if not g then return err(500, "internal", gerr) end
      -- git.webhook_secret_env's variable, else git.webhook_secret's (orket.settings.secret)
      secret, serr = secret_setting.value(g.webhook_secret, g.webhook_secret_env)
      if serr then
        -- the server's fault, said whole in its log only: the store's words name its files
        ctx.note = secret_setting.unopened("git.webhook_secret", secret_setting.name_of(g.webhook_secret), serr)
        return err(503, "unavailable", "the server cannot check deliveries just now",
          "deliver again later; the server's operator finds the cause in its log")
      end
      if (secret == nil or secret == "") and not ctx.scoped_hook then
        ctx.note = "NO_SECRET"
        return err(401, "no_secret", "webhooks are refused: no secret is set (git.webhook_secret or git.webhook_secret_env in orket.lua)")
      end
    end)
    if not d then
      -- the log tells a delivery with no signature from one with a wrong one (BAD_SIGNATURE)
      if sig == 401 and not ctx.note and forge.delivery(name, req.headers).signature == nil then
        ctx.note = "NO_SIGNATURE"
      end
      return sig, text -- the refusal's status and document
    end
    local ok, verr, vcode = crypto.verify_webhook(secret, text, sig)
    secret = nil
    if not ok then
      ctx.note = vcode
      return mismatch()
    end
    -- signed: now the body may be read
    if not d.id or #d.id > 200 or not d.id:match(forge.DELIVERY_ID) then
      return err(400, "bad_request", "the delivery has no usable delivery id header")
    end
    local doc, jerr, deep = nil, nil, nil
    if utf8.len(text) then doc, jerr, deep = body.decode(text) end
    if doc == nil and (deep or not utf8.len(text)) then
      return err(400, "bad_json", "the body is not UTF-8 JSON of reasonable depth")
    end
    if doc == nil then return err(400, "bad_json", tostring(jerr)) end -- body.decode's own words
    -- cjson decodes [] and {} alike (an empty table): an array is told by its first byte,
    -- so every JSON value that is not an object is refused the same way
    if type(doc) ~= "table" or not text:match("^[ \t\r\n]*{") then
      return err(400, "bad_json", "the body must be a JSON object (the forge's event), not an array, a string, "
        .. "a number, true, false or null")
    end
    local db = ctx.db
    d.own_identity, d.scoped = forge.identity(doc)
    d.identity = d.own_identity
    local function duplicate()
      ctx.note = "duplicate"
      local pok, perr = post_owed(db, g, name, d.id)
      if not pok then return err(500, "internal", perr) end
      return 200, { delivery = d.id, outcome = "duplicate" }
    end
    -- (a look-alike's identity is known with its card's review cycle: below)
    if sf.delivery_seen(db, name, d.id, not d.scoped and d.identity or nil) then return duplicate() end
    local max_age = ctx.server and ctx.server.limits.webhook_max_age_s or M.MAX_AGE_S
    d.event_at = forge.event_time(doc)
    d.prune_before = os.time() - math.max(max_age, M.KEEP_S)
    local at = d.event_at
    if at and os.time() - at > max_age then
      ctx.note = "stale"
      return err(422, "stale", string.format("the event is from %s, older than this server takes (%d s: "
        .. "webhook_max_age_s); nothing changed", os.date("!%Y-%m-%dT%H:%M:%SZ", at), max_age))
    end
    if d.event == "push" then return on_push(ctx, name, d, doc, g, settings) end
    local ev, why = forge.event(name, d.event, doc)
    local card
    if ev and g.forge ~= name then why, ev = "this project's forge is " .. tostring(g.forge or "not set"), nil end
    -- forges treat owner/name case-insensitively
    -- (what the body leaves out is said so, not as "nil": the reason is the forge's delivery log's)
    if ev and not ev.repo then why, ev = "the event names no repository (repository.full_name)", nil end
    if ev and ev.repo:lower() ~= (g.repo or ""):lower() then why, ev = "unknown repository " .. ev.repo, nil end
    if ev then
      card = forgereview.card_of(db, g, ev, ctx.dir)
      if not card then
        why, ev = ev.number and ("pull request " .. ev.number .. " names no card")
          or "the pull request names no card (and no number: pull_request.number)", nil
      end
    end
    if card and d.scoped then
      qualify(db, d, card)
      if sf.delivery_seen(db, name, d.id, d.identity) then return duplicate() end
    end
    local board = board_mod.open(db)
    local c = card and board:get(card)
    local fn, other, refused
    -- an app's login (NAME[bot]) counts for a merge or a close, which it made with the
    -- rights it was given, never for a review: no association sorts the bots out on Gitea
    local function person()
      local who = login(ev.reviewer)
      return who ~= nil and (ev.kind == "merged" or ev.kind == "closed" or not who:find("%[bot%]$"))
    end
    if ev and c and ev.kind == "merged" and ev.card_head and ev.commit ~= ev.card_head
      and (c.status == "code_review" or c.status == "waiting_for_developer") then
      -- the forge merged another head than the card's branch's: the card in review is
      -- finished only when the forge's main holds the card's head (fetched first; the
      -- remote unreachable: deliver again)
      local holds, ferr = forge_main_holds(ctx, g, ev.card_head)
      if holds == nil and g.remote then
        return err(503, "busy", "the remote's main could not be fetched; deliver again: " .. tostring(ferr))
      end
      ev.main_holds, ev.remote_main = holds, holds or nil
    end
    if ev then
      fn, why, other = forgereview.action_for(c, ev)
      -- a review while the card's new head is verified: commits pushed to its branch taken
      -- in (orket.engine.pull_request), or a rework's hand-in. That head is not the one
      -- reviewed, and it is pushed for a review of its own once verified; said, not dropped
      -- without a word
      if not fn and c.status == "ready_for_testing" and (ev.kind == "approved" or ev.kind == "changes_requested")
        and person() then
        refused = (sf.last_take_in(db, card) > sj.last_handin(db, card)
          and "commits pushed to the pull request's branch are being taken in and verified"
          or "the card's new work is being verified") .. " (the card is ready_for_testing): the review must be "
          .. "given again on the head Orket pushes for review once its checks pass"
      end
      -- the approved commit is not the card's head: refused, said on the card and the pull
      -- request, so the reviewer knows the approval did nothing. A person's commit: the card's
      -- next hand-in takes it in for a new review; an older head of the card's: the head
      -- pushed after it waits for a review of its own
      local foreign
      if other == "other_head" and person() then foreign = foreign_head(ctx, card, ev) end
      if foreign then
        -- a take-in that failed on these same heads is not tried again by the hand-in of a
        -- card with acceptance checks (orket.engine.pull_request) until a head moves or its
        -- cause is seen gone: said so, not that the next hand-in takes the commits in
        local failed = verify.checks({ db = db, settings = settings or {} }, c) and sf.last_take_in_failure(db, card)
        if failed and type(ev.commit) == "string" and tostring(failed.from):lower() == ev.commit:lower()
          and tostring(failed.head):lower() == tostring(ev.card_head)
          and not sf.moved_by_person_since(db, card, failed.event) then
          refused = string.format("the pull request's head %s has commits Orket did not push (the card's branch "
            .. "is at %s). Taking them into the card's branch failed before on these same heads: %s. The card's "
            .. "next hand-in does not try that again, nor verify the card again for it, until the pull request's "
            .. "branch or the card's moves, %s. Request changes to send the card back to work; a head pushed after "
            .. "them needs its own review: an approval merges only a head Orket pushed", ev.commit,
            tostring(ev.card_head), (tostring(failed.error):gsub("%.$", "")), failed.code == "EDIRTY"
            and "the card's directory holds no uncommitted changes (commit or remove them), or a person moves the card"
            or "or a person moves the card after fixing the cause (to ready_for_testing, where it is verified and "
              .. "handed in again)")
        else
          refused = string.format("the pull request's head %s has commits Orket did not push (the card's branch is "
            .. "at %s). Commits pushed on top of Orket's head are taken into the card's branch at its next hand-in "
            .. "(request changes to send the card back to work; a rewritten history is replaced), and that new head "
            .. "needs its own review: an approval merges only a head Orket pushed", ev.commit, tostring(ev.card_head))
        end
      elseif foreign == false then
        refused = string.format("commit %s is an older head of the pull request: commits came after it, and "
          .. "the current head %s needs its own review: an approval merges only the head it names", ev.commit,
          tostring(ev.card_head))
      end
      if refused then why = why .. ". " .. refused end
      -- the card's head is a take-in's merge with conflict markers never resolved: said too,
      -- so the person who approved or merged learns why nothing happened
      if other == "unresolved" and person() then refused = why end
      if fn and not person() then
        fn, why = nil, "the event names no person (a forge login)"
      end
    end
    if not fn then
      ctx.note = "ignored: " .. why
      local what = ev and event_words(ev)
      -- what is left as it was: a markers refusal's reason says where the card goes, and a
      -- merge on the forge changed the forge's main (not Orket's)
      local kept = other ~= "unresolved" and "The card stays as it is and main is unchanged."
        or ev.kind == "merged" and "Orket's main is unchanged (the forge's holds the pull request's merge)."
        or "Main is unchanged."
      local said = refused and string.format("The forge's %s was not applied: %s. %s", what, refused, kept)
      -- the pull request's comment: posted with the refusal said, or later while it is owed
      -- (comment_owed: its post failed), claimed first (claim_comment)
      local comment = said and g.forge == name and ev.number and {
        forge = name, repo = g.repo, number = ev.number, reason = refused, identity = d.identity, delivery = d.id,
        text = (ev.kind == "approved" and "Orket did not merge this pull request. "
          or ev.kind == "merged" and "Orket did not finish the card on this merge. "
          or "Orket did not send the card back for this review. ") .. said }
      local claimed
      local rok, rerr = db:tx(function()
        claimed = nil
        qualify(db, d, card)
        if sf.delivery_seen(db, name, d.id, d.identity) then return true end
        record(db, name, d, card, "ignored: " .. why)
        -- said once per review: the same review delivered again (a redelivery under a new
        -- delivery id, its identity the same) is answered as refused, and nothing is said twice
        if said and not sf.refusal_said(db, card, d.identity, ev.reviewer, refused) then
          assert(board:comment(card, { author = "orket", body = said }))
          db:event { kind = "webhook", card = card, actor = ev.reviewer,
            data = { forge = name, delivery = d.id, event = ev.kind, number = ev.number, outcome = "ignored",
              reason = refused, identity = d.identity } }
          if comment then claimed = claim_comment(db, card, ev.reviewer, comment) end
        elseif comment then
          local c = sf.refusal_comment(db, card, d.identity, ev.reviewer, refused)
          if comment_owed(c, os.time(), g) then
            c.delivery = d.id
            claimed = claim_comment(db, card, ev.reviewer, c)
          end
        end
        return true
      end)
      if not rok then return err(500, "internal", rerr) end
      if claimed then tell_pull_request(db, g, card, ev.reviewer, claimed) end
      return 200, { delivery = d.id, outcome = "ignored", reason = why, card = card }
    end
    local actor = { seat = ev.reviewer, roles = { "integrity_guard" }, by = "person" }
    if fn == "approve" and ev.remote_main == nil then ev.remote_main = remote_main(ctx, g) end
    local outcome, oerr, ocode = db:tx(function()
      qualify(db, d, card)
      if sf.delivery_seen(db, name, d.id, d.identity) then
        return "duplicate"
      end
      local out, ferr, fcode = forgereview.apply(fn, { db = db, dir = ctx.dir, board = board, card = board:get(card),
        ev = ev, actor = actor, delivery = d.id, settings = settings })
      if not out then return nil, ferr, fcode end
      -- recorded with the cycle it decided (one added when none was open: its redelivery
      -- is known in it)
      qualify(db, d, card)
      record(db, name, d, card, out)
      db:event { kind = "webhook", card = card, actor = ev.reviewer,
        data = { forge = name, delivery = d.id, event = ev.kind, number = ev.number, outcome = out } }
      audited(ctx, name, ev.reviewer, card, ev.kind)
      return out
    end)
    if not outcome then
      -- the board refused (a self-review, a state it cannot leave that way): said once, kept
      return refusal(ctx, name, d, card, oerr, ocode, function(msg)
        assert(board:comment(card, { author = "orket", body = string.format("The forge's %s was not applied: %s",
          event_words(ev), msg) }))
      end, card)
    end
    ctx.note = outcome
    if outcome == "done" then after_merge(ctx, settings, card, ev) end
    -- (a merge on the forge that did not finish the card says why)
    -- (a duplicate names no card, however it was found: as duplicate() answers)
    if outcome == "duplicate" then return 200, { delivery = d.id, outcome = outcome } end
    return 200, { delivery = d.id, outcome = outcome, card = card, reason = ev.said }
  end
end

local REPLY = { type = "object", additionalProperties = false, required = { "delivery", "outcome" }, properties = {
  delivery = { type = "string" }, card = { type = "string" }, reason = { type = "string" },
  cards = { type = "array", items = { type = "string" }, description = "a push to main: the cards it finished" },
  refused = { type = "array", description = "a push to main: the cards it held that the board refused to finish, "
    .. "each said on its card (the others are finished all the same)", items = { type = "object",
      additionalProperties = false, required = { "card", "reason" },
      properties = { card = { type = "string" }, reason = { type = "string" } } } },
  outcome = { type = "string", description = "done, in_progress, waiting_for_input (sent back once too often: "
    .. "its requirements wait for a person), blocked, merge_conflict, work_lost (neither the card's branch "
    .. "nor main holds its last commit: sent back to in_progress), duplicate, ignored or refused" } } }

-- What the OpenAPI document says a delivery carries: each forge's headers, and the body's
-- fields Orket reads (orket.forge.event, identity, event_time); forges send many more.
local HEADERS = {
  github = {
    { "X-Hub-Signature-256", "sha256=<hex>: HMAC-SHA256 of the raw body under the webhook secret", true },
    { "X-GitHub-Delivery", "the delivery's id (a redelivery keeps it)", true },
    { "X-GitHub-Event", "pull_request, pull_request_review or push (others are ignored)", true },
  },
  gitea = {
    { "X-Gitea-Signature", "<hex>: HMAC-SHA256 of the raw body (or X-Forgejo-Signature)", true },
    { "X-Gitea-Delivery", "the delivery's id (or X-Forgejo-Delivery)", true },
    { "X-Gitea-Event-Type", "pull_request, push, pull_request_review_approved or pull_request_review_rejected "
      .. "(or X-Forgejo-Event-Type)", true },
  },
}

local USER = { type = "object", properties = { login = { type = "string" } } }
local STAMP = { type = "string", description = "ISO 8601; older than webhook_max_age_s: refused (422)" }
local BODY = { type = "object", description = "the forge's event; the fields Orket reads", properties = {
  action = { type = "string", description = "submitted (a review), closed (a pull request), ..." },
  repository = { type = "object", properties = { full_name = { type = "string" },
    pushed_at = { type = { "integer", "string" }, description = "a push's time: Unix seconds (GitHub's push) or "
      .. "ISO 8601; older than webhook_max_age_s: refused (422)" } } },
  sender = USER,
  pull_request = { type = "object", properties = { number = { type = "integer" }, merged = { type = "boolean" },
    updated_at = STAMP, user = USER, merged_by = USER,
    head = { type = "object", properties = { ref = { type = "string" }, sha = { type = "string" } } } } },
  review = { type = "object", properties = { id = { type = "integer" }, state = { type = "string" },
    body = { type = "string" }, content = { type = "string" }, submitted_at = STAMP, user = USER } },
  ref = { type = "string" }, after = { type = "string" },
} }

--- add(router): the two webhook routes (no role: the signature is their authentication)
function M.add(router)
  local ERROR = openapi.ERROR
  for _, name in ipairs { "gitea", "github" } do
    local query = {}
    for _, h in ipairs(HEADERS[name]) do
      query[#query + 1] = { name = h[1], ["in"] = "header", description = h[2], required = h[3] }
    end
    router:add("POST", "/v1/webhooks/" .. name, { handler = handle(name), name = "webhook_" .. name, body = "raw",
      summary = "A " .. (name == "gitea" and "Gitea/Forgejo" or "GitHub")
        .. " webhook delivery (HMAC-SHA256 signed; docs/git.md)",
      query = query, request = BODY,
      responses = { [200] = { schema = REPLY, description = "acted on, or ignored (see outcome)" },
        [401] = { schema = ERROR, description = "no secret set, or a bad signature" },
        [413] = { schema = ERROR, description = "the body is too large" },
        [422] = { schema = ERROR, description = "stale: the event is older than webhook_max_age_s by its own timestamp" },
        [503] = { schema = ERROR, description = "the repository is busy, or the webhook secret cannot be read (the "
          .. "server's log says why): deliver again" } } })
  end
end

return M
