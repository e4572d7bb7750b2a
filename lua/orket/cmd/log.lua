-- orket log [RUN]: the transcript of a run from the journal: turns, each model step's last
-- message and response, tool calls with gate decisions and results, transitions, usage.
local cjson = require "cjson.safe"
local inert = require "orket.inert"
local jsonout = require "orket.jsonout"
local runs = require "orket.store.runs"
local view = require "orket.views.log"
local cost = require "orket.cost"
local cmdline = require "orket.cmdline"
local turn = require "orket.engine.turn"
local config = require "orket.config"

local cmd = { name = "log", summary = "print the transcript of a run" }
cmd.help = "Prints run RUN (the latest run when RUN is left out) from the journal: each turn, the\n"
  .. "last message and the response of every model step (clipped to 400 bytes, marked\n"
  .. "'... (N bytes)' with the whole length; --full prints every message in full), tool calls\n"
  .. "with results, token usage and the board\n"
  .. "moves the run made (transitions). --json prints the same as one JSON document\n"
  .. "(orket.log/1), as GET /v1/runs/RUN/transcript answers, each text cut at 64 KiB (an\n"
  .. "event's cut lists them; --json --full: every text whole). --cache prints, per model call,\n"
  .. "how much of its prompt repeated the start of the call before on the same card and seat\n"
  .. "(what a prompt cache reuses), and where the history's summary moved."

-- Cut at n bytes, backed off to the start of a UTF-8 character (a cut inside one would
-- show as stray bytes); made inert for the terminal, its continuation lines indented under
-- the item they belong to.
local PAD = "      "
local function clip(s, n)
  s = tostring(s or "")
  if n then s = inert.clip(s, n) end
  return inert.indented(s, PAD)
end

-- A value that must stay on its line (an id, a seat, a tool name), made inert.
local function one(v) return inert.line(tostring(v)) end

-- JSON for reading: lua-cjson writes "/" as "\/", which makes paths hard to read
local function plain(json_text)
  return json_text and jsonout.plain(tostring(json_text)) or json_text
end

-- A tool call's result as the model read it (orket.engine.turn's encode_result: keys sorted,
-- an empty table an empty list, which the journal's JSON writes {}); text that does not
-- decode (a cut one) as it is
local function result_text(json_text)
  local v = json_text and cjson.decode(tostring(json_text))
  if type(v) ~= "table" then return plain(json_text) end
  return turn.encode_result(v)
end

-- ids read back from JSON are floats: print 1, not 1.0
local function num(v) return tostring(math.tointeger(v) or v) end

-- What a merge's event says main's view kept of a person's (docs/git.md, *main's view*):
-- appended to its line, with the paths the event names (capped where it was written); its
-- 'orket status' names the project as this log was given it (at: config.at's " -C DIR").
local function view_kept(d, n, at)
  local out = ""
  if type(d.stale) == "string" then out = "\n   [git] workspace/ could not follow: " .. clip(d.stale, n) end
  local count = math.tointeger(d.diverged)
  if not count or count <= 0 then return out end
  local names = {}
  for i, p in ipairs(type(d.diverged_paths) == "table" and d.diverged_paths or {}) do names[i] = one(p) end
  return out .. string.format("\n   [git] workspace/ kept your version of %d path%s: %s%s; 'orket status%s' shows both",
    count, count == 1 and "" or "s", clip(table.concat(names, ", "), n), count > #names and ", ..." or "", at or "")
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

-- A run number: an integer, else the usage error RUN's, pointing to where run numbers are
-- listed, and for a card's id to the command that shows a card's history.
local function run_number(v)
  local id = cmdline.integer(v)
  if id then return id end
  if type(v) == "string" and v:match("^%u[%w_]*%-%d+$") then
    return nil, string.format("RUN must be a run number (see 'orket runs'), not the card %s: 'orket card %s' shows "
      .. "its history", v, v)
  end
  return nil, "RUN must be a run number (see 'orket runs')"
end

cmd.args = { extra = "give one run number, not '%s' as well",
  { "RUN", optional = true, check = run_number },
  { "--full", help = "every message in full, not clipped to 400 bytes (with --json: not cut at 64 KiB)" },
  { "--json", help = "the transcript as one JSON document (orket.log/1)" },
  { "--cache", help = "per model call, how much of its prompt a prompt cache could reuse" }, cmdline.DIR,
}

-- ---- the transcript: one line maker per kind of event --------------------------------
-- Each is fn(ev, d, n, st) -> nil, appending to st.out: ev the event, d its data, n the
-- characters of a message shown (nil: whole), st the transcript's state (out, full, and
-- the open turn of each card).

local function list_of(t)
  local names = {}
  for i, p in ipairs(type(t) == "table" and t or {}) do names[i] = one(p) end
  return names
end

-- A list of paths, each as a shell word ($'...' for a newline, quotes for a space or a comma):
-- joined bare, one name with ", " or a literal "\n" in it read as two
local function paths_of(t)
  local names = {}
  for i, p in ipairs(type(t) == "table" and t or {}) do names[i] = inert.shell_word(tostring(p)) end
  return table.concat(names, ", ")
end

local function add(st, line) st.out[#st.out + 1] = line end

-- A model step's call as the model wrote it: its arguments, or the text the gate refused.
local function call_line(c, n)
  if c.arguments_error then
    -- the model's own text, which the gate refused (clipped even with --full: it can be huge)
    return "   [call] " .. one(c.name) .. " " .. clip(c.raw_arguments, n or 4000) .. "  (" .. clip(c.arguments_error) .. ")"
  end
  -- (jsonout: every digit of a whole number, as the journal keeps it; lua-cjson wrote
  -- 123456789012345 as 1.2345678901234e+14)
  local ok, text = pcall(jsonout.encode, c.arguments or {})
  return "   [call] " .. one(c.name) .. " " .. clip(ok and text or plain(cjson.encode(c.arguments or {})), n)
end

local function model_step(ev, _, n, st)
  local t = ev.turn
  local resp, msgs = t.response, t.messages
  local last = msgs[#msgs]
  -- counts the provider did not send are estimated from the text, and such a call is
  -- charged at the estimate before it (docs/cost.md): the line says so, or its cost reads
  -- as a price of its counts
  local usage = type(resp.usage) == "table" and resp.usage or {}
  add(st, string.format("-- step %s, model %s, provider %s, %s+%s tokens%s%s%s",
    num(t.step), one(t.model), one(t.provider or "?"), tostring(t.prompt_tokens),
    tostring(t.completion_tokens), usage.estimated == true and " (estimated)" or "",
    t.cached_tokens and string.format(" (%d cached)", t.cached_tokens) or "",
    t.cost and (", " .. cost.format(t.cost, t.currency)) or ""))
  if type(usage.note) == "string" and usage.note ~= "" then add(st, "   [usage] " .. clip(usage.note, 400)) end
  if st.full then
    for _, m in ipairs(msgs) do add(st, "   [" .. one(m.role) .. "] " .. clip(m.content, n)) end
  elseif last then
    add(st, "   [" .. one(last.role) .. "] " .. clip(last.content, n))
  end
  if resp.content and resp.content ~= "" then add(st, "   [assistant] " .. clip(resp.content, n)) end
  for _, c in ipairs(resp.tool_calls or {}) do add(st, call_line(c, n)) end
end

local function turn_end(ev, d, n, st)
  -- with why (a role's "roles/x.lua:3: ..." for role_error), journaled beside the outcome
  add(st, string.format("   turn ended: %s%s", one(d.outcome),
    type(d.detail) == "string" and d.detail ~= "" and (": " .. clip(d.detail, n)) or ""))
  if type(d.git_error) == "string" then add(st, "   [git] not committed: " .. clip(d.git_error, n)) end
  if type(d.git_skipped) == "table" then
    add(st, "   [git] left out: " .. clip(table.concat(list_of(d.git_skipped), ", "), n))
  end
  st.open_turn[ev.card] = nil
end

local function push_failed(_, d, n, st)
  local paths = type(d.paths) == "table" and d.paths or {}
  -- the commands a sync's error carries (orket.actions.mainline); a review's merge (finish)
  -- journals the conflict alone
  local how = type(d.error) == "string" and d.error:match("; (merge them by hand.*)$")
  local tries = math.tointeger(d.attempts) or 1
  add(st, #paths > 0 and string.format("\n** main NOT pushed: the remote's main conflicts with it in: %s; %s",
    paths_of(d.paths), how and clip(how, n) or "merge them by hand")
    or string.format("\n** main NOT pushed%s: %s (the next merge or run tries again)",
      tries > 1 and string.format(" after %s tries", num(tries)) or "", clip(d.error, n)))
end

local function verification(ev, d, n, st)
  add(st, string.format("\n** %s verification %s: %s: %s: %s%s", one(ev.card),
    d.passed and "passed" or "FAILED", one(d.step), clip(d.command, n), one(d.reason),
    d.code and (" " .. num(d.code)) or (d.signal and (" " .. one(d.signal)) or "")))
  if d.output and d.output ~= "" then add(st, "   [output] " .. clip(d.output, n)) end
end

local function sandbox_check(ev, d, n, st)
  -- (a check journaled with no sandbox: none started, a plan refused or a start failed first)
  local where = d.sandbox ~= nil and ("on sandbox " .. num(d.sandbox)) or ("with no sandbox (none started"
    .. (type(d.commit) == "string" and ("; commit " .. one(d.commit:sub(1, 12))) or "") .. ")")
  add(st, string.format("\n** %s sandbox checks %s %s%s", one(ev.card),
    d.passed and "passed" or "FAILED", where, d.followup and ("; follow-up " .. one(d.followup))
    or (d.outcome == "sent_back" and "; sent back to in_progress" or "")))
  for _, r in ipairs(d.results or {}) do
    add(st, string.format("   %s %s: %s", r.ok and "pass" or r.skipped and "skip" or "FAIL", one(r.name),
      clip(r.detail, n)))
  end
  if d.log and d.log ~= "" then add(st, "   [log] " .. clip(d.log, n)) end
end

-- kind -> the lines of an event of that kind (turn_begin's header is the turn's own)
local EVENT = {
  turn = model_step,
  turn_end = turn_end,
  push_failed = push_failed,
  verification = verification,
  sandbox_check = sandbox_check,
  gate_decision = function(_, d, _, st)
    if d.verdict ~= "allow" or d.code == "APPROVED" then
      add(st, string.format("   [gate] %s %s: %s", one(d.tool), one(d.verdict), one(d.code)))
    end
  end,
  approval_requested = function(ev, d, n, st)
    add(st, string.format("   [ask] %s waits for approval #%s: %s %s (%s)", one(ev.card), num(d.id),
      one(d.tool), clip(plain(d.arguments), n), clip(d.reason or d.rule)))
  end,
  approval_decided = function(ev, d, n, st)
    add(st, string.format("\n** %s %s %s approval #%s (%s)%s", ev.at, one(ev.actor),
      d.decision == "approve" and "approved" or "refused", num(d.id), one(d.tool),
      d.note and (": " .. clip(d.note, n)) or ""))
  end,
  approval_used = function(_, d, _, st)
    add(st, string.format("   [approved] %s runs as approved in #%s", one(d.tool), num(d.id)))
  end,
  tool_call = function(ev, d, n, st)
    add(st, string.format("   [result] %s %s %s", one(d.tool), d.ok and "ok" or "failed", clip(result_text(ev.result), n)))
  end,
  model_failure = function(_, d, n, st)
    -- a call billed though it failed (its usage refused, or cut after it began) says what
    -- it was charged, as the run's usage line counts it
    local cost_micros = math.tointeger(d.cost)
    local charged = math.tointeger(d.prompt_tokens) and string.format(" (charged %s+%s tokens%s)",
      num(d.prompt_tokens), num(d.completion_tokens or 0),
      cost_micros and type(d.currency) == "string" and (", " .. cost.format(cost_micros, d.currency)) or "") or ""
    add(st, string.format("   [model failed] step %s: %s: %s%s", num(d.step), one(d.class), clip(d.error, n), charged))
  end,
  violation = function(_, d, _, st)
    add(st, string.format("   [violation] %s: %s", one(d.rule), clip(d.detail)))
  end,
  commit = function(_, d, _, st)
    add(st, string.format("   [git] commit %s on %s%s", one(d.id), one(d.branch),
      d.kind == "exists" and " (made before a restart)" or ""))
  end,
  merge = function(ev, d, n, st)
    add(st, string.format("\n** %s merged %s into main (%s, %s)", one(ev.card), one(d.branch), one(d.kind),
      one(d.id)) .. view_kept(d, n, st.at))
  end,
  merge_conflict = function(ev, d, _, st)
    add(st, string.format("\n** %s conflicts with main in: %s; sent back to in_progress", one(ev.card),
      paths_of(d.paths)))
  end,
  merge_main = function(ev, d, _, st)
    add(st, string.format("\n** main merged into orket/%s (%s, %s)", one(ev.card), one(d.kind), one(d.id)))
  end,
  push = function(_, d, n, st)
    add(st, string.format("\n** main pushed to the remote (%s)%s", one(d.id),
      (math.tointeger(d.attempts) or 1) > 1 and string.format(" after %s tries", num(d.attempts)) or ""))
    -- a person had moved the remote's main back past commits pushed before: this push put them back
    if type(d.rewound) == "table" and type(d.rewound.note) == "string" then add(st, "   " .. clip(d.rewound.note, n)) end
  end,
  merge_remote = function(_, d, n, st)
    add(st, string.format("\n** the remote's main merged into main (%s, %s)", one(d.kind), one(d.id))
      .. view_kept(d, n, st.at))
  end,
  pull_request = function(ev, d, _, st)
    add(st, string.format("\n** %s pushed (%s)%s", one(ev.card), one(d.head),
      d.number and string.format("; pull request #%s %s", num(d.number), one(d.url)) or ""))
  end,
  remote_branch = function(ev, d, _, st)
    local card, from = one(ev.card), one(d.from)
    if d.kind == "taken" then
      add(st, string.format("\n** %s: commits pushed to the remote's orket/%s (up to %s) taken into its branch (%s, %s); "
        .. "pushed for review again", card, card, from, one(d.how), one(d.id)))
    elseif d.kind == "replaced" then
      add(st, string.format("\n** %s: the remote's orket/%s at %s (not on top of anything Orket pushed) replaced by the "
        .. "push of %s; kept as %s: git -C workspace branch replaced/%s %s", card, card, from, one(d.head), one(d.kept),
        card, from))
    elseif d.kind == "left_out" then
      add(st, string.format("\n** %s: commits pushed to the remote's orket/%s during its review (up to %s) are NOT in "
        .. "main (the card merged as %s): git -C workspace merge %s", card, card, from, one(d.merge), from))
    end
  end,
  reload = function(_, d, _, st)
    add(st, "\n** scripts reloaded: " .. table.concat(list_of(d.files or {}), ", "))
    if type(d.unapplied) == "table" and #d.unapplied > 0 then
      add(st, "   orket.lua: " .. table.concat(list_of(d.unapplied), ", ") .. " changed; not applied to this run")
    end
  end,
  reload_error = function(_, d, _, st)
    add(st, "\n** reload refused, old scripts kept: " .. clip(d.error))
    for i = 2, type(d.problems) == "table" and #d.problems or 0 do add(st, "\n   also: " .. clip(d.problems[i])) end
  end,
  watch_error = function(_, d, _, st) add(st, "\n** hot reload: " .. clip(d.error)) end,
  reload_held = function(_, d, _, st) add(st, "\n** hot reload: " .. clip(d.message)) end,
  run_end = function(_, d, _, st) add(st, "\nrun " .. one(d.status) .. (d.reason and (": " .. clip(d.reason)) or "")) end,
  run_resumed = function(ev, d, _, st)
    add(st, string.format("\n** %s run resumed (it was %s)", one(ev.at), one(d.was)))
  end,
}

-- A turn's header: at its turn_begin, and again before a step of a card other than the
-- last header's (turns of several cards run at once and their steps interleave in the
-- journal).
local function header(ev, st)
  local d = ev.data
  if ev.kind == "turn_begin" then
    st.open_turn[ev.card] = d
    st.shown = ev.card
    add(st, string.format("\n== %s turn %d: %s as %s (%s)", one(ev.card), d.turn, one(d.seat), one(d.role),
      one(d.phase)))
  elseif TURN_PART[ev.kind] and ev.card and ev.card ~= st.shown and st.open_turn[ev.card] then
    local t = st.open_turn[ev.card]
    st.shown = ev.card
    add(st, string.format("\n== %s turn %d (continued): %s as %s (%s)", one(ev.card), t.turn, one(t.seat),
      one(t.role), one(t.phase)))
  end
end

--- transcript(doc, full, dir) -> the text of run doc (orket.log/1) for the terminal; dir:
--- the project as the command was given it (its hints name it with -C)
local function transcript(doc, full, dir)
  local run = doc.run
  local n = not full and 400 or nil -- characters of a message shown; --full shows them whole
  local st = { full = full, open_turn = {}, shown = nil, at = config.at(dir), out = {
    string.format("run %d: %s %s, %s, started %s", run.id, run.kind, one(run.target), run.state, run.started_at),
    cost.usage_text(doc.usage) } }
  for _, ev in ipairs(doc.events) do
    header(ev, st)
    local f = EVENT[ev.kind]
    if f then f(ev, ev.data, n, st) end
  end
  if #doc.transitions > 0 then
    add(st, "\ntransitions:")
    for _, m in ipairs(doc.transitions) do
      add(st, string.format("  %s %-8s %s -> %s by %s", m.at, one(m.card), one(m.from), one(m.to), one(m.actor)))
    end
  end
  return table.concat(st.out, "\n")
end

--- document(dir, id, cli, cap) -> doc | nil: run id (nil: the latest) of dir's journal as
--- orket.log/1, each text cut at cap bytes (nil: whole); the failure said
local function document(dir, id, cli, cap)
  local db = cli.open_store(dir, false, true, true)
  if not db then return nil end
  if not id then
    -- the newest run; a store that cannot be read says so, not "no runs yet"
    local recent, rerr = runs.recent(db, 1)
    id = recent and recent[1] and recent[1].id
    if not id then
      db:close()
      cli.err("%s", rerr or "no runs yet; start one with 'orket run EPIC'")
      return nil
    end
  end
  local doc, derr = view.json_doc(db, dir, id, { cap = cap })
  db:close()
  if not doc then cli.err("%s", derr) end
  return doc
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  -- --json's texts are cut as the API's are; the text and --cache read the whole (a clip
  -- says a message's whole length; a prompt's prefix is counted on all of it)
  local doc = document(o.dir, o.run, cli, o.json and not o.full and not o.cache and view.FIELD_MAX or nil)
  if not doc then return 1 end
  if o.cache then return cache_report(doc, o.json) end
  if o.json then
    io.stdout:write(jsonout.encode(doc), "\n")
    return 0
  end
  -- everything above is inert already; this is the net for what a later edit forgets
  io.stdout:write(inert.text(transcript(doc, o.full, o.dir)), "\n")
  return 0
end

return cmd
