-- orket log [RUN]: the transcript of a run from the journal: turns, each model step's last
-- message and response, tool calls with gate decisions and results, transitions, usage.
local cjson = require "cjson.safe"
local inert = require "orket.inert"
local jsonout = require "orket.jsonout"
local runs = require "orket.store.runs"
local view = require "orket.views.log"
local cost = require "orket.cost"

local cmd = { summary = "print the transcript of a run", usage = "orket log [RUN] [--full] [--json] [--cache] [-C DIR]" }
cmd.help = "Prints run RUN (the latest run when RUN is left out) from the journal: each turn, the\n"
  .. "last message and the response of every model step (clipped to 400 characters; --full\n"
  .. "prints every message in full), tool calls with results, token usage and the board\n"
  .. "moves the run made (transitions). --json prints the same as one JSON document\n"
  .. "(orket.log/1), as GET /v1/runs/RUN/transcript answers. --cache prints, per model call,\n"
  .. "how much of its prompt repeated the start of the call before on the same card and seat\n"
  .. "(what a prompt cache reuses), and where the history's summary moved."

-- Cut at n bytes, backed off to the start of a UTF-8 character (a cut inside one would
-- show as stray bytes); made inert for the terminal, its continuation lines indented under
-- the item they belong to.
local PAD = "      "
local function clip(s, n)
  s = tostring(s or "")
  if n and #s > n then
    local cut = n
    while cut > 0 and (s:byte(cut + 1) or 0) & 0xc0 == 0x80 do cut = cut - 1 end
    s = s:sub(1, cut) .. "..."
  end
  return inert.indented(s, PAD)
end

-- A value that must stay on its line (an id, a seat, a tool name), made inert.
local function one(v) return inert.line(tostring(v)) end

-- JSON for reading: lua-cjson writes "/" as "\/", which makes paths hard to read
local function plain(json_text)
  return json_text and jsonout.plain(tostring(json_text)) or json_text
end

-- ids read back from JSON are floats: print 1, not 1.0
local function num(v) return tostring(math.tointeger(v) or v) end

-- What a merge's event says main's view kept of a person's (docs/git.md, *main's view*):
-- appended to its line, with the paths the event names (capped where it was written).
local function view_kept(d, n)
  local out = ""
  if type(d.stale) == "string" then out = "\n   [git] workspace/ could not follow: " .. clip(d.stale, n) end
  local count = math.tointeger(d.diverged)
  if not count or count <= 0 then return out end
  local names = {}
  for i, p in ipairs(type(d.diverged_paths) == "table" and d.diverged_paths or {}) do names[i] = one(p) end
  return out .. string.format("\n   [git] workspace/ kept your version of %d path%s: %s%s; 'orket status' shows both",
    count, count == 1 and "" or "s", clip(table.concat(names, ", "), n), count > #names and ", ..." or "")
end

-- The events that belong to a card's turn, printed under its header.
local TURN_PART = { turn = true, gate_decision = true, approval_requested = true, approval_used = true,
  tool_call = true, model_failure = true, violation = true, turn_end = true }

-- orket log --cache: each call's prompt against the call before on its card and seat
local function cache_report(doc, json)
  local rows, total = view.cache(doc)
  if json then
    io.stdout:write(jsonout.encode { format = "orket.log.cache/1", run = doc.run.id, calls = jsonout.array(rows),
      total = total }, "\n")
    return 0
  end
  local function pct(a, b) return b > 0 and string.format("%.1f%%", 100 * a / b) or "-" end
  local out = { string.format("run %d: each call's prompt against the call before on its card and seat", doc.run.id),
    string.format("%-12s %-18s %4s %4s %9s %9s %6s  %s", "CARD", "SEAT", "TURN", "STEP", "PROMPT", "PREFIX", "SHARE", "NOTE") }
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format("%-12s %-18s %4s %4s %9d %9d %6s  %s", one(r.card), one(r.seat), num(r.turn or "-"),
      num(r.step or "-"), r.chars, r.prefix, pct(r.prefix, r.chars),
      r.moved and string.format("summary moved (%d steps)", r.summarized) or "")
  end
  out[#out + 1] = string.format("total: %s of the prompt characters of %d calls after a card and seat's first repeated the call before",
    pct(total.prefix, total.chars), total.calls)
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

-- The words -> dir, full, id, json, cache | nil, exit status (the usage error said)
local function words(args, cli)
  local dir, full, id, json, cache = ".", false, nil, false, false
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--full" then full = true
    elseif a == "--json" then json = true
    elseif a == "--cache" then cache = true
    elseif a == "-C" then
      dir = args[i + 1]
      if not dir then return nil, cli.usage_error(cmd, "-C needs a directory") end
      i = i + 1
    elseif a:match("^%-") then return nil, cli.usage_error(cmd, "unknown option '%s'", a)
    elseif id then return nil, cli.usage_error(cmd, "give one run number, not '%s' as well", a)
    else id = math.tointeger(tonumber(a)) if not id then return nil, cli.usage_error(cmd, "RUN must be a run number") end end
    i = i + 1
  end
  return dir, full, id, json, cache
end

function cmd.run(args, cli)
  local dir, full, id, json, cache = words(args, cli)
  if not dir then return full end
  local db = cli.open_store(dir, false, true)
  if not db then return 1 end
  id = id or runs.latest_id(db)
  if not id then
    db:close()
    cli.err("no runs yet; start one with 'orket run EPIC'")
    return 1
  end
  local doc, derr = view.json_doc(db, dir, id)
  db:close()
  if not doc then
    cli.err("%s", derr)
    return 1
  end
  if cache then return cache_report(doc, json) end
  if json then
    io.stdout:write(jsonout.encode(doc), "\n")
    return 0
  end
  local run = doc.run
  local n = 400 -- characters of a message shown; --full shows them whole
  if full then n = nil end
  local out = { string.format("run %d: %s %s, %s, started %s", run.id, run.kind, one(run.target), run.state,
    run.started_at), cost.usage_text(doc.usage) }
  -- the open turn of each card (its turn_begin's data), and the card whose header is last
  local open_turn, shown = {}, nil
  for _, ev in ipairs(doc.events) do
    local d = ev.data
    if ev.kind == "turn_begin" then
      open_turn[ev.card] = d
      shown = ev.card
      out[#out + 1] = string.format("\n== %s turn %d: %s as %s (%s)", one(ev.card), d.turn, one(d.seat), one(d.role),
        one(d.phase))
    elseif TURN_PART[ev.kind] and ev.card and ev.card ~= shown and open_turn[ev.card] then
      -- turns of several cards run at once and their steps interleave in the journal: a
      -- step of another card than the last header's gets its card's header again
      local t = open_turn[ev.card]
      shown = ev.card
      out[#out + 1] = string.format("\n== %s turn %d (continued): %s as %s (%s)", one(ev.card), t.turn, one(t.seat),
        one(t.role), one(t.phase))
    end
    if ev.kind == "turn_begin" then
      -- printed above
    elseif ev.kind == "turn" then
      local t = ev.turn
      local resp = t.response
      local msgs = t.messages
      local last = msgs[#msgs]
      out[#out + 1] = string.format("-- step %s, model %s, provider %s, %s+%s tokens%s%s",
        num(t.step), one(t.model), one(t.provider or "?"), tostring(t.prompt_tokens),
        tostring(t.completion_tokens), t.cached_tokens and string.format(" (%d cached)", t.cached_tokens) or "",
        t.cost and (", " .. cost.format(t.cost, t.currency)) or "")
      if full then
        for _, m in ipairs(msgs) do out[#out + 1] = "   [" .. one(m.role) .. "] " .. clip(m.content, n) end
      elseif last then
        out[#out + 1] = "   [" .. one(last.role) .. "] " .. clip(last.content, n)
      end
      if resp.content and resp.content ~= "" then out[#out + 1] = "   [assistant] " .. clip(resp.content, n) end
      for _, c in ipairs(resp.tool_calls or {}) do
        if c.arguments_error then
          -- the model's own text, which the gate refused (clipped even with --full: it can be huge)
          out[#out + 1] = "   [call] " .. one(c.name) .. " " .. clip(c.raw_arguments, n or 4000)
            .. "  (" .. clip(c.arguments_error) .. ")"
        else
          out[#out + 1] = "   [call] " .. one(c.name) .. " " .. clip(plain(cjson.encode(c.arguments or {})), n)
        end
      end
    elseif ev.kind == "gate_decision" then
      if d.verdict ~= "allow" or d.code == "APPROVED" then
        out[#out + 1] = string.format("   [gate] %s %s: %s", one(d.tool), one(d.verdict), one(d.code))
      end
    elseif ev.kind == "approval_requested" then
      out[#out + 1] = string.format("   [ask] %s waits for approval #%s: %s %s (%s)", one(ev.card), num(d.id),
        one(d.tool), clip(plain(d.arguments), n), clip(d.reason or d.rule))
    elseif ev.kind == "approval_decided" then
      out[#out + 1] = string.format("\n** %s %s %s approval #%s (%s)%s", ev.at, one(ev.actor),
        d.decision == "approve" and "approved" or "refused", num(d.id), one(d.tool),
        d.note and (": " .. clip(d.note, n)) or "")
    elseif ev.kind == "approval_used" then
      out[#out + 1] = string.format("   [approved] %s runs as approved in #%s", one(d.tool), num(d.id))
    elseif ev.kind == "tool_call" then
      out[#out + 1] = string.format("   [result] %s %s %s", one(d.tool), d.ok and "ok" or "failed",
        clip(plain(ev.result), n))
    elseif ev.kind == "model_failure" then
      out[#out + 1] = string.format("   [model failed] step %s: %s: %s", num(d.step), one(d.class),
        clip(d.error, n))
    elseif ev.kind == "violation" then
      out[#out + 1] = string.format("   [violation] %s: %s", one(d.rule), clip(d.detail))
    elseif ev.kind == "turn_end" then
      out[#out + 1] = string.format("   turn ended: %s", one(d.outcome))
      if type(d.git_error) == "string" then out[#out + 1] = "   [git] not committed: " .. clip(d.git_error, n) end
      if type(d.git_skipped) == "table" then
        local notes = {}
        for i, p in ipairs(d.git_skipped) do notes[i] = one(p) end
        out[#out + 1] = "   [git] left out: " .. clip(table.concat(notes, ", "), n)
      end
      open_turn[ev.card] = nil
    elseif ev.kind == "commit" then
      out[#out + 1] = string.format("   [git] commit %s on %s%s", one(d.id), one(d.branch),
        d.kind == "exists" and " (made before a restart)" or "")
    elseif ev.kind == "merge" then
      out[#out + 1] = string.format("\n** %s merged %s into main (%s, %s)", one(ev.card), one(d.branch), one(d.kind),
        one(d.id)) .. view_kept(d, n)
    elseif ev.kind == "merge_conflict" then
      local paths = {}
      for i, p in ipairs(d.paths or {}) do paths[i] = one(p) end
      out[#out + 1] = string.format("\n** %s conflicts with main in: %s; sent back to in_progress", one(ev.card),
        table.concat(paths, ", "))
    elseif ev.kind == "merge_main" then
      out[#out + 1] = string.format("\n** main merged into orket/%s (%s, %s)", one(ev.card), one(d.kind), one(d.id))
    elseif ev.kind == "push" then
      out[#out + 1] = string.format("\n** main pushed to the remote (%s)%s", one(d.id),
        (math.tointeger(d.attempts) or 1) > 1 and string.format(" after %s tries", num(d.attempts)) or "")
    elseif ev.kind == "push_failed" then
      local paths = {}
      for i, p in ipairs(type(d.paths) == "table" and d.paths or {}) do paths[i] = one(p) end
      out[#out + 1] = #paths > 0 and string.format("\n** main NOT pushed: the remote's main conflicts with it in: %s; "
        .. "merge them by hand", table.concat(paths, ", "))
        or string.format("\n** main NOT pushed after %s tries: %s (the next merge or run tries again)",
          num(d.attempts or 1), clip(d.error, n))
    elseif ev.kind == "merge_remote" then
      out[#out + 1] = string.format("\n** the remote's main merged into main (%s, %s)", one(d.kind), one(d.id))
        .. view_kept(d, n)
    elseif ev.kind == "pull_request" then
      out[#out + 1] = string.format("\n** %s pushed (%s)%s", one(ev.card), one(d.head),
        d.number and string.format("; pull request #%s %s", num(d.number), one(d.url)) or "")
    elseif ev.kind == "verification" then
      out[#out + 1] = string.format("\n** %s verification %s: %s: %s: %s%s", one(ev.card),
        d.passed and "passed" or "FAILED", one(d.step), clip(d.command, n), one(d.reason),
        d.code and (" " .. num(d.code)) or (d.signal and (" " .. one(d.signal)) or ""))
      if d.output and d.output ~= "" then out[#out + 1] = "   [output] " .. clip(d.output, n) end
    elseif ev.kind == "sandbox_check" then
      out[#out + 1] = string.format("\n** %s sandbox checks %s on sandbox %s%s", one(ev.card),
        d.passed and "passed" or "FAILED", num(d.sandbox), d.followup and ("; follow-up " .. one(d.followup))
        or (d.outcome == "sent_back" and "; sent back to in_progress" or ""))
      for _, r in ipairs(d.results or {}) do
        out[#out + 1] = string.format("   %s %s: %s", r.ok and "pass" or r.skipped and "skip" or "FAIL", one(r.name),
          clip(r.detail, n))
      end
      if d.log and d.log ~= "" then out[#out + 1] = "   [log] " .. clip(d.log, n) end
    elseif ev.kind == "reload" then
      local files = {}
      for i, f in ipairs(d.files or {}) do files[i] = one(f) end
      out[#out + 1] = "\n** scripts reloaded: " .. table.concat(files, ", ")
    elseif ev.kind == "reload_error" then
      out[#out + 1] = "\n** reload refused, old scripts kept: " .. clip(d.error)
    elseif ev.kind == "run_end" then
      out[#out + 1] = "\nrun " .. one(d.status)
    end
  end
  if #doc.transitions > 0 then
    out[#out + 1] = "\ntransitions:"
    for _, m in ipairs(doc.transitions) do
      out[#out + 1] = string.format("  %s %-8s %s -> %s by %s", m.at, one(m.card), one(m.from), one(m.to), one(m.actor))
    end
  end
  -- everything above is inert already; this is the net for what a later edit forgets
  io.stdout:write(inert.text(table.concat(out, "\n")), "\n")
  return 0
end

return cmd
