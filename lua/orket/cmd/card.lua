-- orket card ID [--json]: one card in full, with its dependencies, comments and history.
local jsonout = require "orket.jsonout"
local board_mod = require "orket.board"
local board_cmd = require "orket.cmd.board"
local cjson = require "cjson"
local approvals = require "orket.engine.approvals"
local inert = require "orket.inert"

local USAGE = "orket card ID [--json] [-C DIR]"
local cmd = { summary = "show one card with comments and history", usage = USAGE }
cmd.help = "Shows every field of card ID, its comments and its event history (oldest first).\n"
  .. "--json prints the documented format (docs/store.md)."

-- The parts of a card the text and the JSON show alike.
-- dir: the project's folder, for the card's branch and its commits not on main yet
-- (docs/git.md), when its workspace is a repository.
local function gather(db, id, dir)
  local b = board_mod.open(db)
  local c, gerr = b:get(id)
  if not c then return nil, gerr end
  local git
  local repo = require("orket.c.gitrepo").open((dir or ".") .. "/workspace")
  if repo then
    git = require("orket.engine.gitwork").info(db, repo, c.id)
    repo:close()
  end
  return { card = c, verifications = require("orket.engine.verify").results(db, id), comments = b:comments(id), history = b:history(id), kids = b:children(id),
    violations = db:violations(id), asks = approvals.list(db, c.id), git = git,
    forge = require("orket.engine.pullreq").info(db, c.id) }
end

-- The orket.card/1 document of gathered parts.
local function doc_of(g)
  local c, comments, history, kids, violations, asks = g.card, g.comments, g.history, g.kids, g.violations, g.asks
  local hist = {}
  for i, e in ipairs(history) do
    -- a move's roles are a list, empty for orket's own moves (an epic rolled up)
    if e.kind == "transition" and type(e.data.roles) == "table" then e.data.roles = jsonout.array(e.data.roles) end
    -- a violation's attempt holds the call's arguments as the gate encoded them ("\/")
    if e.kind == "violation" and type(e.data.attempt) == "string" then e.data.attempt = jsonout.plain(e.data.attempt) end
    hist[i] = { id = e.id, at = e.at, kind = e.kind, actor = e.actor or cjson.null,
      run = e.run or cjson.null, data = e.data }
  end
  local cm = {}
  for i, m in ipairs(comments) do cm[i] = { id = m.id, author = m.author, body = m.body, created_at = m.created_at } end
  local ch = {}
  for i, k in ipairs(kids) do ch[i] = k.id end
  local vs = {}
  for i, v in ipairs(violations) do
    vs[i] = { id = v.id, created_at = v.created_at, seat = v.seat or cjson.null, rule = v.rule,
      attempt = v.attempt and jsonout.plain(v.attempt) or cjson.null, reason = v.detail or cjson.null, remedy = v.remedy or cjson.null }
  end
  local as = {}
  for i, a in ipairs(asks) do
    as[i] = { id = a.id, run = a.run or cjson.null, seat = a.seat or cjson.null, turn = a.turn or cjson.null,
      tool = a.tool, arguments = cjson.decode(a.arguments) or a.arguments, digest = a.digest,
      rule = a.rule or cjson.null, reason = a.reason or cjson.null, requested_at = a.requested_at,
      decision = a.decision or cjson.null, decided_at = a.decided_at or cjson.null,
      decided_by = a.decided_by or cjson.null, note = a.note or cjson.null, used_at = a.used_at or cjson.null }
  end
  local vf = {}
  for i, v in ipairs(g.verifications) do
    vf[i] = { id = v.id, at = v.at, run = v.run_id or cjson.null, passed = v.passed == 1, command = v.command,
      reason = v.reason, code = v.code or cjson.null, signal = v.signal or cjson.null, wall_ms = v.wall_ms or cjson.null,
      output = v.output, layers = v.layers }
  end
  local git = g.git
  return { format = "orket.card/1", card = board_cmd.card_json(c),
    children = jsonout.array(ch), comments = jsonout.array(cm), history = jsonout.array(hist),
    violations = jsonout.array(vs), approvals = jsonout.array(as), verifications = jsonout.array(vf), git = git and {
      branch = git.branch, merged = git.merged or cjson.null, commits = jsonout.array(git.commits) } or nil,
    forge = g.forge and { pull_request = g.forge.pull_request, reviews = jsonout.array(g.forge.reviews) } or nil }
end

--- json_doc(db, id [, dir]) -> the orket.card/1 document (what --json prints) | nil, msg
function cmd.json_doc(db, id, dir)
  local g, gerr = gather(db, id, dir)
  if not g then return nil, gerr end
  return doc_of(g)
end

function cmd.run(args, cli)
  local o, status = board_cmd.parse(args, { usage_error = function(_, ...) return cli.usage_error(cmd, ...) end },
    "card takes one card id")
  if not o then return status end
  if not o.id then return cli.usage_error(cmd, "card needs a card id") end
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local g, gerr = gather(db, o.id, o.dir)
  if not g then
    db:close()
    cli.err("%s", gerr)
    return 1
  end
  db:close()
  if o.json then
    io.stdout:write(jsonout.encode(doc_of(g)), "\n")
    return 0
  end
  local c, comments, history, kids, violations, asks, git = g.card, g.comments, g.history, g.kids, g.violations, g.asks, g.git
  local w = {}
  -- Every field may hold an agent's text: one-line fields stay on their line, long text
  -- keeps its lines, indented; all of it inert on a terminal.
  local function line(k, v) if v ~= nil and v ~= "" then w[#w + 1] = string.format("%-13s %s", k .. ":", inert.line(v)) end end
  local function body(v, pad) return inert.indented(tostring(v), pad) end
  line("id", c.id)
  line("type", c.type)
  line("parent", c.parent)
  line("name", c.name)
  line("summary", c.summary)
  local pending = asks[#asks] and not asks[#asks].decision and asks[#asks] or nil
  line("status", c.status .. (c.wait_reason and (" (waiting: " .. (pending and c.status == "waiting_for_developer"
    and ("approval #" .. pending.id) or c.wait_reason) .. ")") or ""))
  line("priority", string.format("%s (%g)", board_cmd.priority_name(c.priority), c.priority))
  line("seat", c.seat)
  line("worked by", c.worked_by)
  line("retries", c.retries > 0 and c.retries or nil)
  line("depends on", #c.depends_on > 0 and table.concat(c.depends_on, ", ") or nil)
  if #kids > 0 then
    local ch = {}
    for _, k in ipairs(kids) do ch[#ch + 1] = inert.line(k.id) .. " (" .. k.status .. ")" end
    line("children", table.concat(ch, ", "))
  end
  if git then
    line("branch", git.branch .. (git.merged and (" (merged into main: " .. git.merged:sub(1, 12) .. ")") or ""))
  end
  local f = g.forge
  if f and f.pull_request then
    local pr = f.pull_request
    line("pull request", (pr.number and ("#" .. pr.number .. (pr.url and (" " .. pr.url) or "")) or "(pushed only)")
      .. (pr.head and (" at " .. pr.head:sub(1, 12)) or ""))
  end
  for _, rv in ipairs(f and f.reviews or {}) do
    line("review " .. rv.cycle, (rv.decision or "waiting") .. (rv.reviewer and (" by " .. rv.reviewer) or "")
      .. (rv.decided_at and (" at " .. rv.decided_at) or ""))
  end
  line("source", c.source)
  line("created", c.created_at)
  line("updated", c.updated_at)
  for _, k in ipairs { "description", "requirements", "acceptance", "note" } do
    if c[k] and c[k] ~= "" then w[#w + 1] = "\n" .. k .. ":\n  " .. body(c[k], "  ") end
  end
  if #comments > 0 then
    w[#w + 1] = "\ncomments:"
    for _, m in ipairs(comments) do
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
  if #violations > 0 then
    w[#w + 1] = "\npolicy violations:"
    for _, v in ipairs(violations) do
      -- the attempt is the call's arguments as the gate wrote them (cjson: "\/" for "/")
      w[#w + 1] = string.format("  %s %s %s: %s", v.created_at, inert.line(v.seat or "-"), inert.line(v.rule),
        inert.line(jsonout.plain(v.attempt or "")))
      if v.detail then w[#w + 1] = "      why: " .. body(v.detail, "           ") end
      if v.remedy then w[#w + 1] = "      fix: " .. body(v.remedy, "           ") end
    end
  end
  if #asks > 0 then
    w[#w + 1] = "\napprovals:"
    for _, a in ipairs(asks) do
      local state = not a.decision and "pending" or (a.decision == "approve" and (a.used_at and "approved, used" or "approved, not used yet") or "refused")
      w[#w + 1] = string.format("  #%d %s %s: %s", a.id, a.requested_at, state, inert.line(approvals.describe(a)))
      w[#w + 1] = "      asked by " .. inert.line(a.seat) .. ": " .. inert.line(a.reason or a.rule)
      if a.decision then
        w[#w + 1] = string.format("      %s by %s at %s%s", a.decision == "approve" and "approved" or "refused",
          inert.line(a.decided_by), a.decided_at, a.note and (": " .. body(a.note, "        ")) or "")
      else
        w[#w + 1] = string.format("      answer: orket answer %s --approve [\"note\"] | --deny \"reason\"", inert.line(c.id))
      end
    end
  end
  if git and #git.commits > 0 then
    w[#w + 1] = "\ncommits:"
    for _, k in ipairs(git.commits) do
      w[#w + 1] = string.format("  %s run %s turn %s by %s", inert.line(k.id), tostring(k.run), tostring(k.turn),
        inert.line(k.seat or "-"))
    end
  end
  w[#w + 1] = "\nhistory:"
  for _, e in ipairs(history) do
    local d = e.data or {}
    local what = e.kind
    if e.kind == "transition" then
      what = string.format("%s -> %s%s%s", d.from, d.to, d.reason and (" (" .. d.reason .. ")") or "",
        d.note and (": " .. inert.line(d.note)) or "")
    elseif e.kind == "import" then
      what = d.created and ("imported from " .. tostring(d.source)) or ("re-imported: " .. table.concat(d.changed or {}, ", ") .. " changed")
    elseif e.kind == "sandbox_check" then
      -- a run of its acceptance checks against a sandbox (docs/sandbox.md)
      local failed = {}
      for _, r in ipairs(d.results or {}) do
        if not r.ok then failed[#failed + 1] = tostring(r.name) end
      end
      what = string.format("sandbox checks %s on sandbox %s%s%s", d.passed and "passed" or "FAILED",
        tostring(math.tointeger(d.sandbox) or d.sandbox), #failed > 0 and (": " .. table.concat(failed, ", ")) or "",
        d.followup and ("; follow-up " .. tostring(d.followup)) or "")
    end
    w[#w + 1] = string.format("  %s %-16s %s", e.at, inert.line(e.actor or "-"), inert.line(what))
  end
  -- the net for a field the lines above forget
  io.stdout:write(inert.text(table.concat(w, "\n")), "\n")
  return 0
end

return cmd
