-- orket.actions.approvals: the gate's "ask" verdict held for a developer. A call a policy
-- asks about becomes a request in the store's approvals table and its card waits; `orket
-- answer --approve|--deny` decides it; an approved request lets exactly that call (same card,
-- tool and argument digest) through the ask level once. Uses the board, orket.c.crypto and
-- orket.store.approvals (the rows). Contract: docs/policies.md ("ask") and docs/store.md
-- (approvals).
local inert = require "orket.inert"
local cjson = require "cjson.safe"
local crypto = require "orket.c.crypto"
local sa = require "orket.store.approvals"
local common = require "orket.llm.common"
local jsonout = require "orket.jsonout"
local budget_wait = require "orket.actions.budget_wait"

local M = {}

M.ARGS_MAX = 16384 -- bytes of argument JSON kept for the developer to read (the digest covers all)
M.SHOW_MAX = 200   -- bytes of argument JSON in comments and reports
local DEVELOPER = { seat = "developer", roles = {} }

-- Canonical JSON: object keys sorted at every level, so the digest of the same call does not
-- depend on the order a decoder filled a table in. Tool arguments passed the schema's
-- depth cap before they reach here; the cap below only keeps a direct caller honest.
local function canon(v, out, depth)
  local t = type(v)
  if depth > 64 then error("approvals: arguments nest deeper than 64 levels", 0) end
  if t == "table" then
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if n > 0 and n == count then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        canon(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local entries = {}
      for k, val in pairs(v) do entries[#entries + 1] = { tostring(k), val } end
      table.sort(entries, function(a, b) return a[1] < b[1] end)
      out[#out + 1] = "{"
      for i, kv in ipairs(entries) do
        if i > 1 then out[#out + 1] = "," end
        canon(kv[1], out, depth + 1)
        out[#out + 1] = ":"
        canon(kv[2], out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then
    -- cjson writes "/" as "\/"; paths read better without (still valid JSON)
    out[#out + 1] = jsonout.plain(assert(cjson.encode(v)))
  elseif t == "number" then
    -- every digit: lua-cjson writes 14, so 100000000000001 and ...002 were one digest (an
    -- approval of one let the other run), as were 0.3 and 0.30000000000000004. A number
    -- 14 digits say exactly is written as before, so earlier digests hold.
    local short = assert(cjson.encode(v))
    if tonumber(short) ~= v then
      local whole = jsonout.encode(v) -- every digit of a whole number, else 17 significant ones
      short = whole:find("^%-?%d+$") and whole or string.format("%.17g", v)
    end
    out[#out + 1] = short
  elseif t == "boolean" then
    out[#out + 1] = assert(cjson.encode(v))
  else
    out[#out + 1] = "null" -- nil and cjson.null
  end
  return out
end

--- canonical(args) -> JSON text with sorted keys
function M.canonical(args) return table.concat(canon(args, {}, 0)) end

-- The arguments as people read them: the same JSON, its fields shortest first (a path, a
-- mode, an argv before a file's content), those of one length in key order. Sorted by key,
-- "content" came before "path", and every view that clips a request (a comment, orket
-- card, orket answer's line) showed 200 bytes of a file and not where it goes.
local function shown(args)
  if type(args) ~= "table" or (#args > 0 and next(args, #args) == nil) or next(args) == nil then
    return M.canonical(args)
  end
  local fields = {}
  for k, v in pairs(args) do
    fields[#fields + 1] = { table.concat(canon(tostring(k), {}, 1)), table.concat(canon(v, {}, 1)) }
  end
  table.sort(fields, function(a, b)
    if #a[2] ~= #b[2] then return #a[2] < #b[2] end
    return a[1] < b[1]
  end)
  local out = {}
  for i, kv in ipairs(fields) do out[i] = kv[1] .. ":" .. kv[2] end
  return "{" .. table.concat(out, ",") .. "}"
end

--- digest(tool, args) -> hex BLAKE2b of the tool name and its canonical arguments
function M.digest(tool, args)
  if type(tool) ~= "string" then error("bad argument #1 to 'digest' (string expected, got " .. type(tool) .. ")", 2) end
  return crypto.hash(tool .. "\0" .. M.canonical(args))
end

-- What is stored and shown: bearer tokens and sk- keys masked, clipped. A clipped copy says
-- the call's whole size and where to read it whole: a person deciding on 16 KiB of a 20 KiB
-- file would otherwise approve a tail they never saw.
-- the command that shows run's calls whole ("orket log RUN --full" when the run is not known)
local function log_command(run)
  return "orket log " .. (run and tostring(math.tointeger(run) or run) or "RUN") .. " --full"
end

local function stored_args(args, run)
  local text = common.redact(shown(args))
  if #text > M.ARGS_MAX then
    text = string.format("%s...(clipped: %d bytes in all; '%s' shows the call whole)", inert.cut(text, M.ARGS_MAX),
      #text, log_command(run))
  end
  return text
end

--- clipped(row) -> size, where | nil: for a request whose stored arguments were clipped,
--- the size in bytes of the call's whole arguments and the command that shows them whole
--- (size nil for a row clipped before the size was kept)
function M.clipped(row)
  local a = row.arguments or ""
  local n, where = a:match("%.%.%.%(clipped: (%d+) bytes in all; '([^']+)' shows the call whole%)$")
  if n then return math.tointeger(tonumber(n)), where end
  if a:sub(-12) == "...(clipped)" then
    return nil, log_command(row.run)
  end
  return nil
end

--- describe(row) -> "delete_file {"path":"old.txt"}": the call in one line for people (a
--- clipped one with its whole size and where it is whole)
function M.describe(row)
  local a = row.arguments or ""
  local size, where = M.clipped(row)
  if where then
    return string.format("%s %s... (%s, clipped; '%s' shows the call whole)", row.tool, inert.cut(a, M.SHOW_MAX),
      size and (size .. " bytes") or "over " .. M.ARGS_MAX .. " bytes", where)
  end
  return row.tool .. " " .. inert.clip(a, M.SHOW_MAX)
end

--- command(card, id) -> "orket answer CARD --request N": what decides request #N (add
--- --approve or --deny "reason"). Every hint names the request: without it a decision is
--- refused once the card has had more than one request, with it it is always taken.
function M.command(card, id)
  return string.format("orket answer %s --request %d", card, id)
end

--- pending(db, card) -> the card's undecided request | nil
M.pending = sa.pending

--- held(db, c, not_what) -> the request card c (a row) waits on, and the refusal of what
--- else was asked of it ("C waits for approval of CALL (request #N), which is decided, not
--- NOT_WHAT") | nil: a waiting card with an undecided request is decided, never retried or
--- moved (orket.actions.retry, orket.actions.move)
function M.held(db, c, not_what)
  local p = c.status == "waiting_for_developer" and sa.pending(db, c.id)
  if not p then return nil end
  return p, string.format("%s waits for approval of %s (request #%d), which is decided, not %s", c.id, M.describe(p),
    p.id, not_what)
end

--- list(db, card) -> every request of the card, oldest first
M.list = sa.list

--- get(db, id) -> request | nil
M.get = sa.get

--- approved(db, card, tool, digest) -> the oldest approved, unused request for exactly
--- this call | nil
M.approved = sa.approved

--- refused(db, card, tool, digest) -> the latest denied request for this call | nil
M.refused = sa.refused

--- request(db, board, r) -> request row | nil, msg, CODE
--- r: {run=, card=, seat=, turn=, turn_id=, tool=, args=, rule=, reason=, actor=}. In one
--- transaction: the row, an "approval_requested" event, a comment saying what is asked and
--- why, and the card's move to waiting_for_developer (reason "input", the developer's
--- input; the pending row says it is an approval). Fails (nothing written) when the card
--- cannot wait from its status or already has an undecided request.
function M.request(db, board, r)
  if type(r) ~= "table" or type(r.card) ~= "string" or type(r.tool) ~= "string" then
    error("bad argument #3 to 'request' ({card=string, tool=string, ...} expected)", 2)
  end
  local digest = M.digest(r.tool, r.args)
  local args = stored_args(r.args, r.run)
  return db:tx(function()
    local id, err, code = sa.insert(db, { run = r.run, card = r.card, seat = r.seat, turn = r.turn,
      turn_id = r.turn_id, tool = r.tool, arguments = args, digest = digest, rule = r.rule, reason = r.reason })
    if not id then
      if code == "ECONSTRAINT" and tostring(err):find("UNIQUE", 1, true) then
        return nil, string.format("approvals: %s already waits for a decision", r.card), "EEXIST"
      end
      return nil, err, code
    end
    local row = M.get(db, id)
    local what = M.describe(row)
    db:event { kind = "approval_requested", card = r.card, run = r.run, actor = r.seat,
      data = { id = id, tool = r.tool, arguments = row.arguments, digest = digest, rule = r.rule, reason = r.reason } }
    local before = M.refused(db, r.card, r.tool, digest)
    local body = string.format("Approval needed (request #%d): %s. Policy: %s.%s Answer with "
      .. "'%s --approve' or --deny \"reason\".", id, what, tostring(r.reason or r.rule or "ask"),
      before and string.format(" The developer refused this call before (request #%d: %s).", before.id,
        tostring(before.note)) or "", M.command(r.card, id))
    local c, cerr, ccode = board:comment(r.card, { author = "orket", body = body })
    if not c then return nil, cerr, ccode end
    local t, terr, tcode = board:transition(r.card, "waiting_for_developer",
      { actor = r.actor or { seat = r.seat or "orket", roles = {} }, reason = "input",
        note = "approval #" .. id .. ": " .. r.tool })
    if not t then return nil, terr, tcode end
    return row
  end)
end

--- use(db, row, {turn_id=, run=, seat=}) -> true: marks an approved request used (call it in
--- the transaction that records the tool call) with an "approval_used" event
function M.use(db, row, at)
  return db:tx(function()
    if not sa.mark_used(db, row.id, at.turn_id) then return nil, "approvals: request #" .. row.id .. " is not an unused approval", "ESTATE" end
    db:event { kind = "approval_used", card = row.card, run = at.run, actor = at.seat,
      data = { id = row.id, tool = row.tool } }
    return true
  end)
end

-- "request #2 was already refused by local:root at T (keep tmp.txt)": a decided request, said
-- to the person whose decision came second
local function decided(r)
  return string.format("request #%d was already %s by %s at %s%s", r.id,
    r.decision == "approve" and (r.used_at and "approved (and used)" or "approved") or "refused",
    tostring(r.decided_by), tostring(r.decided_at), r.note and (" (" .. inert.clip(r.note, M.SHOW_MAX) .. ")") or "")
end

-- What the card waits on now, after the request a person named was decided by another.
local function now_waits(c, p)
  if p and c.status == "waiting_for_developer" then
    return string.format("#%d now waits: %s", p.id, M.describe(p))
  elseif budget_wait.waits_on(c) then
    return c.id .. " now waits on a money budget"
  elseif c.status == "waiting_for_developer" then
    return c.id .. " now waits for an answer to a question"
  end
  return string.format("nothing waits on %s now (it is %s)", c.id, c.status)
end

-- Whether decision d may go to request p (the card's undecided one, or nil) of card c:
-- nil | msg, CODE, detail. A decision names the request the person was shown (d.approval);
-- one that does not may decide the pending request only as d.unnamed allows: "none" (never:
-- the MCP tool), "sole" (when it is the card's only request ever, so that no other could
-- have been the one shown: the HTTP API, the CLI), nil (the pending one: the REPL).
local function misnamed(db, c, p, d)
  local n = d.approval and math.tointeger(d.approval)
  if n ~= nil then
    if p and p.id == n and c.status == "waiting_for_developer" then return nil end
    local r = M.get(db, n)
    if not r or r.card ~= c.id then
      return string.format("%s has no approval request #%s", c.id, tostring(n)), "EINVAL"
    end
    if r.decision then
      return string.format("%s; %s", decided(r), now_waits(c, p)), "ESTATE", { approval = p, card = c.id, decided = r }
    end
    return nil -- undecided, but the card does not wait for it: the caller's state refusal
  end
  if not p or c.status ~= "waiting_for_developer" or d.unnamed == nil then return nil end
  local count = #M.list(db, c.id)
  if d.unnamed == "sole" and count == 1 then return nil end
  return string.format("%s waits for approval of %s (request #%d%s); a decision names the request it decides",
    c.id, M.describe(p), p.id, count > 1 and string.format("; the card has had %d requests", count) or ""),
    "EUSAGE", { approval = p, card = c.id, unnamed = true }
end

-- Why a card that has no request waiting cannot be decided -> msg, CODE, detail.
local function not_waiting(db, c)
  local state = c.status .. (c.wait_reason and (" (" .. c.wait_reason .. ")") or "")
  if c.status == "waiting_for_developer" then
    return string.format("%s is %s waiting for an answer to a question, not for an approval; "
      .. "answer it with 'orket answer %s \"text\"'", c.id, state, c.id), "ESTATE",
      { question = true, card = c.id, state = state }
  end
  -- the second of two decisions at once is told the first was made, and by whom
  local all = M.list(db, c.id)
  local last = all[#all]
  return string.format("%s is %s, not waiting for an approval%s", c.id, state,
    last and last.decision and ("; " .. decided(last)) or ""), "ESTATE", { card = c.id, decided = last }
end

-- The decision of request p on card c, in the caller's transaction -> the request now.
local function record_decision(db, board, c, p, decision, note, person)
  local by = person.seat
  sa.set_decision(db, p.id, decision, by, note)
  db:event { kind = "approval_decided", card = c.id, run = p.run, actor = by,
    data = { id = p.id, tool = p.tool, decision = decision, note = note } }
  local what = M.describe(p)
  local body
  if decision == "approve" then
    body = string.format("Approved request #%d: %s%s. Make exactly this call again to run it; it is "
      .. "allowed once.", p.id, what, note and (" (" .. note .. ")") or "")
  else
    body = string.format("Refused request #%d: %s. Reason: %s. Do not make this call again; do the "
      .. "work another way or say in a comment why it cannot be done.", p.id, what, note)
  end
  local cm, cerr, ccode = board:comment(c.id, { author = by, body = body })
  if not cm then return nil, cerr, ccode end
  local t, terr, tcode = board:transition(c.id, "ready", { actor = person,
    note = (decision == "approve" and "approved #" or "refused #") .. p.id })
  if not t then return nil, terr, tcode end
  return M.get(db, p.id)
end

--- decide(db, board, card, {decision="approve"|"deny", note=, by=, approval=, unnamed=}) ->
--- request row | {card=, scope=} (a money budget's wait approved: orket.actions.budget_wait)
--- | nil, msg, CODE, detail
--- The card must wait for an approval or on a money budget (ESTATE otherwise, naming the
--- card and its state, and the last decision of its requests; a budget's is approved, never
--- denied: EUSAGE). approval: the request decided (the one the person was shown); one
--- decided already is refused (ESTATE, saying by whom and what waits now), as is a decision
--- naming none where d.unnamed forbids it (EUSAGE: misnamed). detail: {card=, approval= the
--- pending request, decided= the request decided before, unnamed=true, question=true}. In
--- one transaction: the decision, an "approval_decided" event (in the request's run), a
--- comment telling the model what to do, and the card's move back to ready.
function M.decide(db, board, card_id, d)
  if type(card_id) ~= "string" then error("bad argument #3 to 'decide' (card id expected)", 2) end
  if type(d) ~= "table" or (d.decision ~= "approve" and d.decision ~= "deny") then
    error("bad argument #4 to 'decide' ({decision=\"approve\"|\"deny\"} expected)", 2)
  end
  if d.note ~= nil and type(d.note) ~= "string" then error("bad argument #4 to 'decide' (note must be a string)", 2) end
  if d.approval ~= nil and not math.tointeger(d.approval) then
    error("bad argument #4 to 'decide' (approval must be a request's number)", 2)
  end
  local note = d.note and d.note:find("%S") and d.note or nil
  if d.decision == "deny" and not note then
    return nil, "a refusal needs a reason the model can act on", "EINVAL"
  end
  local by = d.by or "developer"
  local person = { seat = by, roles = {}, by = "person" } -- (the card's move back to ready is theirs)
  local detail
  local res, rerr, rcode = db:tx(function()
    local c, gerr, gcode = board:get(card_id)
    if not c then return nil, gerr, gcode end
    local p = M.pending(db, c.id)
    local merr, mcode, mdetail = misnamed(db, c, p, d)
    if merr then detail = mdetail; return nil, merr, mcode end
    if not p and budget_wait.waits_on(c) then
      if d.decision == "deny" then return nil, budget_wait.no_deny(c), "EUSAGE" end
      return budget_wait.approve(db, board, c, note, person)
    end
    if not p or c.status ~= "waiting_for_developer" then
      local nerr, ncode
      nerr, ncode, detail = not_waiting(db, c)
      return nil, nerr, ncode
    end
    return record_decision(db, board, c, p, d.decision, note, person)
  end)
  if res then return res end
  return nil, rerr, rcode, detail
end

--- on_ask(e, job, turn_id, call, card, decision) -> decision [, held result]
--- The engine's hook for an "ask" verdict, inside the transaction that records the call. An
--- approved, unused request for exactly this call turns the verdict into allow (recorded as a
--- gate decision with code APPROVED) and is marked used. Otherwise the call is held: a
--- request is stored, the card waits, and the result to record says so (held = true ends the
--- turn). When the card cannot wait (a review turn), the ask goes back to the model as before.
function M.on_ask(e, job, turn_id, call, card, decision)
  local db = e.db
  local digest = M.digest(call.name, call.arguments)
  local ok_row = M.approved(db, card.id, call.name, digest)
  if ok_row then
    assert(M.use(db, ok_row, { turn_id = turn_id, run = job.run, seat = job.seat }))
    -- the approval's comment says "make exactly this call again"; every later brief of the
    -- card carries it, and a model that read it there made the call again (a new request).
    -- Written with the use, in its transaction, so neither a stop nor a crash loses it; kept
    -- out of this turn's history (orket.engine.turn), where it came right after the call's
    -- result, between the model and what it asked for.
    local note = assert(e.board:comment(card.id, { author = "orket", body = string.format("Request #%d was used: its "
      .. "approved call ran in turn %s (%s). Do not make it again for that approval; the same call again asks the "
      .. "developer again.", ok_row.id, tostring(job.turn or "?"), M.describe(ok_row)) }))
    job.quiet_comments = job.quiet_comments or {}
    job.quiet_comments[note.id] = true
    local reason = string.format("approved by %s (request #%d)%s", tostring(ok_row.decided_by), ok_row.id,
      ok_row.note and (": " .. ok_row.note) or "")
    assert(db:record_gate_decision { turn = turn_id, tool = call.name, verdict = "allow", code = "APPROVED",
      reason = reason, run = job.run, card = job.card_id, seat = job.seat })
    return { verdict = "allow", code = "APPROVED", reason = reason, rule = decision.rule, approval = ok_row.id }
  end
  local row, err = M.request(db, e.board, {
    run = job.run, card = card.id, seat = job.seat, turn = job.turn, turn_id = turn_id, tool = call.name,
    args = call.arguments, rule = decision.code, reason = decision.reason, actor = job.actor,
  })
  if not row then
    return decision, { ok = false, denied = true, verdict = "ask", code = decision.code,
      error = "needs a developer's approval, which cannot be asked for now (" .. tostring(err) .. "): "
        .. tostring(decision.reason or decision.code), remedy = decision.remedy }
  end
  return decision, { ok = false, denied = true, verdict = "ask", code = decision.code, held = true, approval = row.id,
    error = string.format("held for a developer's approval (request #%d): %s", row.id,
      tostring(decision.reason or decision.code)),
    remedy = "Your turn ends here; the decision will be in the comments of your next turn." }
end

return M
