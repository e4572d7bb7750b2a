-- orket card ID [--json]: one card in full, with its dependencies, comments and history.
local cost = require "orket.cost"
local jsonout = require "orket.jsonout"
local board_cmd = require "orket.cmd.board"
local view = require "orket.views.card"
local approvals = require "orket.actions.approvals"
local inert = require "orket.inert"

local USAGE = "orket card ID [--json] [-C DIR]"
local cmd = { summary = "show one card with comments and history", usage = USAGE }
cmd.help = "Shows every field of card ID, its comments and its event history (oldest first).\n"
  .. "--json prints the documented format (docs/store.md)."

function cmd.run(args, cli)
  local o, status = board_cmd.parse(args, { usage_error = function(_, ...) return cli.usage_error(cmd, ...) end },
    "card takes one card id")
  if not o then return status end
  if not o.id then return cli.usage_error(cmd, "card needs a card id") end
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local g, gerr = view.gather(db, o.id, o.dir)
  if not g then
    db:close()
    cli.err("%s", gerr)
    return 1
  end
  db:close()
  if o.json then
    io.stdout:write(jsonout.encode(view.doc_of(g)), "\n")
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
  if g.usage and g.usage.calls > 0 then line("model", (cost.usage_text(g.usage):gsub("^usage: ", ""))) end
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
