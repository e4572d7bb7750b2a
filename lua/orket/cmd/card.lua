-- orket card ID [--json]: one card in full, with its dependencies, comments and history.
local cost = require "orket.cost"
local jsonout = require "orket.jsonout"
local board_cmd = require "orket.cmd.board"
local cmdline = require "orket.cmdline"
local view = require "orket.views.card"
local approvals = require "orket.actions.approvals"
local inert = require "orket.inert"
local board_mod = require "orket.board"

local cmd = { name = "card", summary = "show one card with comments and history", args = {
  extra = "card takes one card id",
  { "ID", missing = "card needs a card id" },
  { "--json", help = "print the documented format (docs/store.md)" },
  cmdline.DIR,
} }
cmd.help = "Shows every field of card ID, its comments and its event history (oldest first).\n"
  .. "--json prints the documented format (docs/store.md)."

-- Every field may hold an agent's text: one-line fields stay on their line, long text
-- keeps its lines, indented; all of it inert on a terminal. Each section below appends
-- its lines to w.
local function line(w, k, v)
  if v ~= nil and v ~= "" then w[#w + 1] = string.format("%-13s %s", k ~= "" and (k .. ":") or "", inert.line(v)) end
end
local function body(v, pad) return inert.indented(tostring(v), pad) end

-- Its branch and last merge; a merge main no longer holds (a person's reset dropped it) is
-- not claimed as in main, and what to do is said (views.card merge_lost).
local function branch(w, git)
  local merged = git.merged and (git.lost and (" (merged as " .. git.merged:sub(1, 12) .. ", no longer in main)")
    or (" (merged into main: " .. git.merged:sub(1, 12) .. ")")) or ""
  line(w, "branch", git.branch .. merged)
  line(w, "", git.lost)
end

-- deps(db, c) -> each dependency's id and status, and its epic's (with of = the epic), which
-- hold an issue back as its own do (orket.ready): read for these lines only
local function deps_of(db, c)
  local b, deps = board_mod.open(db), {}
  for i, d in ipairs(c.depends_on or {}) do
    local dc = b:get(d)
    deps[i] = { id = d, status = dc and dc.status or "missing" }
  end
  local parent = c.type == "issue" and c.parent and b:get(c.parent)
  for _, d in ipairs(parent and parent.depends_on or {}) do
    local dc = b:get(d)
    deps[#deps + 1] = { id = d, status = dc and dc.status or "missing", of = parent.id }
  end
  return deps
end

-- Its dependencies, each with its status, and what a ready card waits for: the scheduler
-- passes it over until they, and its epic's, are done; a ready card's bare ids did not say so
local function dependencies(w, c, deps)
  local own, waits = {}, {}
  for _, d in ipairs(deps or {}) do
    if not d.of then own[#own + 1] = inert.line(d.id) .. " (" .. d.status .. ")" end
    if d.status ~= "done" then
      waits[#waits + 1] = inert.line(d.id) .. (d.of and (" (" .. inert.line(d.of) .. " depends on it)") or "")
    end
  end
  line(w, "depends on", #own > 0 and table.concat(own, ", ") or nil)
  if c.status == "ready" and #waits > 0 then
    line(w, "waits for", table.concat(waits, ", ") .. " to be done before a run can start it")
  end
end

-- The card's own fields, one a line.
local function fields(w, g)
  local c, asks, git = g.card, g.asks, g.git
  line(w, "id", c.id)
  line(w, "type", c.type)
  line(w, "parent", c.parent)
  line(w, "name", c.name)
  line(w, "summary", c.summary)
  local pending = asks[#asks] and not asks[#asks].decision and asks[#asks] or nil
  line(w, "status", c.status .. (c.wait_reason and (" (waiting: " .. (pending and c.status == "waiting_for_developer"
    and ("approval #" .. pending.id) or c.wait_reason) .. ")") or ""))
  line(w, "priority", string.format("%s (%g)", board_cmd.priority_name(c.priority), c.priority))
  line(w, "seat", c.seat)
  line(w, "worked by", c.worked_by)
  if g.usage and g.usage.calls > 0 then line(w, "model", (cost.usage_text(g.usage):gsub("^usage: ", ""))) end
  -- the same by seat, when more than one seat made them: what the coder's and the
  -- reviewer's calls each cost
  if g.seats and #g.seats > 1 then
    for _, t in ipairs(g.seats) do line(w, "", t.seat .. ": " .. cost.usage_text(t):gsub("^usage: ", "")) end
  end
  -- its arms: a variant's model and role are orket.lua's experiment's, not the seat's
  for _, a in ipairs(g.arms or {}) do
    local what = {}
    if a.model then what[#what + 1] = "model " .. a.model end
    if a.role then what[#what + 1] = "role " .. a.role end
    line(w, "experiment", a.experiment .. ": " .. a.arm .. (#what > 0 and (" (" .. table.concat(what, ", ")
      .. " at its first turn; orket.lua's experiments." .. a.experiment .. " decides its work turns)") or ""))
  end
  line(w, "retries", c.retries > 0 and c.retries or nil)
  dependencies(w, c, g.deps)
  if #g.kids > 0 then
    local ch = {}
    for _, k in ipairs(g.kids) do ch[#ch + 1] = inert.line(k.id) .. " (" .. k.status .. ")" end
    line(w, "children", table.concat(ch, ", "))
  end
  if git then branch(w, git) end
end

-- Its pull request and reviews on the forge, where and when it was made, and its long texts.
local function forge_and_texts(w, g)
  local c, f = g.card, g.forge
  if f and f.pull_request then
    local pr = f.pull_request
    line(w, "pull request", (pr.number and ("#" .. pr.number .. (pr.url and (" " .. pr.url) or "")) or "(pushed only)")
      .. (pr.head and (" at " .. pr.head:sub(1, 12)) or ""))
  end
  for _, rv in ipairs(f and f.reviews or {}) do
    line(w, "review " .. rv.cycle, (rv.decision or "waiting") .. (rv.reviewer and (" by " .. rv.reviewer) or "")
      .. (rv.decided_at and (" at " .. rv.decided_at) or ""))
  end
  line(w, "source", c.source)
  line(w, "created", c.created_at)
  line(w, "updated", c.updated_at)
  for _, k in ipairs { "description", "requirements", "acceptance", "note" } do
    if c[k] and c[k] ~= "" then w[#w + 1] = "\n" .. k .. ":\n  " .. body(c[k], "  ") end
  end
end

local function comments_and_checks(w, g)
  if #g.comments > 0 then
    w[#w + 1] = "\ncomments:"
    for _, m in ipairs(g.comments) do
      w[#w + 1] = string.format("  %s %s: %s", m.created_at, inert.line(m.author), body(m.body, "      "))
    end
  end
  if #g.verifications > 0 then
    w[#w + 1] = "\nverifications:"
    for _, v in ipairs(g.verifications) do
      w[#w + 1] = string.format("  %s run %s %s: %s: %s%s (%d ms)", v.at, tostring(v.run_id or "-"),
        v.passed == 1 and "passed" or "FAILED", inert.line(v.command), v.reason, v.code and (" " .. v.code) or
        (v.signal and (" " .. v.signal) or ""), v.wall_ms or 0)
      w[#w + 1] = "      layers: " .. (v.layers ~= "" and v.layers or "(none: not run)")
    end
  end
end

local function violations(w, g)
  if #g.violations == 0 then return end
  w[#w + 1] = "\npolicy violations:"
  for _, v in ipairs(g.violations) do
    -- the attempt is the call's arguments as the gate wrote them (cjson: "\/" for "/")
    w[#w + 1] = string.format("  %s %s %s: %s", v.created_at, inert.line(v.seat or "-"), inert.line(v.rule),
      inert.line(jsonout.plain(v.attempt or "")))
    if v.detail then w[#w + 1] = "      why: " .. body(v.detail, "           ") end
    if v.remedy then w[#w + 1] = "      fix: " .. body(v.remedy, "           ") end
  end
end

local function approvals_and_commits(w, g)
  if #g.asks > 0 then
    w[#w + 1] = "\napprovals:"
    -- an undecided request is answered only while its card waits for it (orket answer refuses otherwise)
    local open = g.card.status == "waiting_for_developer"
    for _, a in ipairs(g.asks) do
      local state = not a.decision and (open and "pending" or "unanswered, the card is " .. g.card.status)
        or (a.decision == "approve" and (a.used_at and "approved, used" or "approved, not used yet") or "refused")
      w[#w + 1] = string.format("  #%d %s %s: %s", a.id, a.requested_at, state, inert.line(approvals.describe(a)))
      w[#w + 1] = "      asked by " .. inert.line(a.seat) .. ": " .. inert.line(a.reason or a.rule)
      if a.decision then
        w[#w + 1] = string.format("      %s by %s at %s%s", a.decision == "approve" and "approved" or "refused",
          inert.line(a.decided_by), a.decided_at, a.note and (": " .. body(a.note, "        ")) or "")
      elseif open then
        w[#w + 1] = string.format("      answer: %s --approve [\"note\"] | --deny \"reason\"",
          approvals.command(inert.line(g.card.id), a.id))
      end
    end
  end
  if g.git and #g.git.commits > 0 then
    w[#w + 1] = "\ncommits:"
    for _, k in ipairs(g.git.commits) do
      w[#w + 1] = string.format("  %s run %s turn %s by %s", inert.line(k.id), tostring(k.run), tostring(k.turn),
        inert.line(k.seat or "-"))
    end
  end
end

-- One event of the card's history as a line's text.
local function event_text(e)
  -- a hand-edited event's data may be JSON null or a string: shown as it is
  if e.data ~= nil and type(e.data) ~= "table" then
    local ok, text = pcall(jsonout.encode, e.data)
    return string.format("%s (data: %s)", e.kind, ok and text or "?")
  end
  local d = e.data or {}
  if e.kind == "transition" then
    return string.format("%s -> %s%s%s", d.from, d.to, d.reason and (" (" .. d.reason .. ")") or "",
      d.note and (": " .. inert.line(d.note)) or "")
  elseif e.kind == "import" then
    return d.created and ("imported from " .. tostring(d.source)) or ("re-imported: " .. table.concat(d.changed or {}, ", ") .. " changed")
  elseif e.kind == "sandbox_check" then
    -- a run of its acceptance checks against a sandbox (docs/sandbox.md)
    local failed, skipped = {}, {}
    for _, r in ipairs(d.results or {}) do
      if r.skipped then skipped[#skipped + 1] = string.format("%s (%s)", tostring(r.name), tostring(r.skipped))
      elseif not r.ok then failed[#failed + 1] = tostring(r.name) end
    end
    -- a check journaled with no sandbox: none started (a plan refused, a start failed first)
    local where = d.sandbox ~= nil and ("on sandbox " .. tostring(math.tointeger(d.sandbox) or d.sandbox))
      or ("with no sandbox (none started" .. (type(d.commit) == "string" and ("; commit " .. d.commit:sub(1, 12))
      or "") .. ")")
    return string.format("sandbox checks %s %s%s%s%s", d.passed and "passed" or "FAILED", where,
      #failed > 0 and (": " .. table.concat(failed, ", ")) or "",
      #skipped > 0 and ("; skipped (could not run here): " .. table.concat(skipped, ", ")) or "",
      d.followup and ("; follow-up " .. tostring(d.followup)) or "")
  end
  return e.kind
end

local function history(w, g)
  w[#w + 1] = "\nhistory:"
  for _, e in ipairs(g.history) do
    w[#w + 1] = string.format("  %s %-16s %s", e.at, inert.line(e.actor or "-"), inert.line(event_text(e)))
  end
end

function cmd.run(args, cli)
  local o, status = cli.parse(cmd, args)
  if not o then return status end
  local db = cli.open_store(o.dir, false, true, true)
  if not db then return 1 end
  local g, gerr = view.gather(db, o.id, o.dir)
  if g and not o.json then g.deps = deps_of(db, g.card) end
  db:close()
  if not g then
    cli.err("%s", gerr)
    return 1
  end
  if o.json then
    io.stdout:write(jsonout.encode(view.doc_of(g)), "\n")
    return 0
  end
  local w = {}
  for _, section in ipairs { fields, forge_and_texts, comments_and_checks, violations, approvals_and_commits, history } do
    section(w, g)
  end
  -- the net for a field the lines above forget
  io.stdout:write(inert.text(table.concat(w, "\n")), "\n")
  return 0
end

return cmd
