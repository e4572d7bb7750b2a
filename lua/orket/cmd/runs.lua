-- orket runs: the runs of this project with their state, newest first.
local cjson = require "cjson"
local jsonout = require "orket.jsonout"
local inert = require "orket.inert"
local store_runs = require "orket.store.runs"
local lease = require "orket.engine.lease"
local claims = require "orket.engine.claims"
local cmdline = require "orket.cmdline"
local costs = require "orket.store.costs"
local cost = require "orket.cost"
local recorded = require "orket.engine.recorded"
local localuse = require "orket.serve.localuse"
local clock = require "orket.clock"
local otel = require "orket.otel"
local store_projects = require "orket.store.projects"

local cmd = { name = "runs", summary = "list runs and their state; end a run left to the workers", args = {
  usage = "orket runs [--json] | runs stop RUN  [-C DIR]",
  { "stop", key = "sub", optional = true, check = cmdline.one_of({ "stop" },
    -- as every command names a stray word (a flag given a value, --json=yes, leaves one)
    "unknown argument '%s' (runs takes stop RUN, or no word)") },
  { "RUN", key = "words", many = true },
  { "--json", help = "print the runs as one JSON document (orket.runs/1, docs/store.md)" },
  cmdline.DIR,
} }
cmd.help = [[
Lists the runs, newest first, with their state and the cards workers work now (each with
its worker and when its lease ends: a killed worker's runs out unrenewed), the workers of
this folder that have a run open between cards, and how to give a worker to a run that
none of them has. stop RUN ends a run left to the workers
(orket worker, orket serve --workers) that no worker works now, interrupted, as a stopped
run ends ('orket resume RUN' carries it on): a run whose workers are gone holds its cards
against every overlapping run until it ends. One a worker works now is refused, naming the
worker: stop that worker, then the run. POST /v1/runs/RUN/stop does the same. See
docs/workers.md.]]

-- the live leases on the runs' cards, by run (any folder's workers): else an operator
-- beside several workers could not tell which works which card
local function leases_by_run(db)
  local held = {}
  for _, l in ipairs(lease.ops(db).live(db)) do
    held[l.run] = held[l.run] or {}
    table.insert(held[l.run], { worker = l.worker, card = l.card, expires_at = l.expires_at, holder = l.holder })
  end
  return held
end

-- r.idle: the workers of this folder with run r open and no card of it leased (between
-- cards, or their cards waiting for a person; shown as nothing, they looked like no worker
-- at all). Matched by the lease's holder (NAME#TOKEN), not its name: a worker restarted
-- under the same --name, or two sharing one, is not hidden by the other's lease.
local function mark_idle(r, open, now)
  local busy = {}
  for _, l in ipairs(r.leases or {}) do
    busy[l.holder] = true
    l.holder = nil -- (not shown: its token is the keeper's)
  end
  for _, w in ipairs(open[r.id] or {}) do
    if not (w.holder and busy[w.holder]) then
      r.idle = r.idle or {}
      local since = w.since and (os.date("!%Y-%m-%dT%H:%M:%S", w.since)
        .. string.format(".%03dZ", (w.since_ns or 0) // 1000000))
      table.insert(r.idle, { worker = w.name or ("pid " .. tostring(w.pid)), pid = w.pid, since = since,
        open_s = w.since and math.max(0, now - w.since) })
    end
  end
end

-- Every run with its cost and the state to show (a run another folder's server executes
-- is live by its lease in the store)
local function summaries(dir, db)
  local rows = store_runs.summaries(db)
  for _, r in ipairs(rows) do
    local t = costs.totals(db, { run = r.id })
    -- tokens by kind and the cost by currency in micro-units (docs/cost.md); none known: no cost
    r.tokens_cached, r.cost, r.usage = t.cached, next(t.cost) and t.cost or nil, t
    -- calls of unknown cost (no price, no usage) beside a known cost: said, as orket log
    -- says them, or the column reads as the run's whole cost
    r.unpriced_calls = r.cost and t.calls > t.priced and t.calls - t.priced or nil
  end
  -- each run's trace id (orket.otel.run_trace_id: orket.run.id restarts in every project); the
  -- store's own id read only for a run recorded before runs kept theirs
  local traces, sid = store_runs.trace_ids(db), nil
  for _, r in ipairs(rows) do
    local id = math.tointeger(tonumber(r.id))
    r.trace_id = otel.run_trace_id(traces[id], nil, id)
    if not r.trace_id then
      if sid == nil then
        local ok, v = pcall(store_projects.store_id, db)
        sid = ok and type(v) == "string" and v or false
      end
      r.trace_id = otel.run_trace_id(nil, sid or nil, id)
    end
  end
  local left = {} -- runs left to workers (orket worker)
  for _, r in ipairs(lease.ops(db).queued(db)) do left[r.id] = true end
  local held, open, now = leases_by_run(db), claims.workers_open(dir), os.time()
  for _, r in ipairs(rows) do
    r.status = claims.state(dir, db, r.status, r.id, left[r.id], held[r.id] ~= nil)
    r.leases = held[r.id]
    mark_idle(r, open, now)
  end
  return rows
end

-- The runs as orket.runs/1 gives them. Beside the first names of this document (status,
-- tokens, tokens_cached) the run's state is also `state` and its calls' totals `usage`, as
-- orket.log/1 and GET /v1/runs name them, so one key reads the same in all three; a run
-- not ended has ended_at null, as there; trace_id as GET /v1/runs gives it.
local function as_json(rows)
  for _, r in ipairs(rows) do
    r.state, r.ended_at, r.trace_id = r.status, r.ended_at or cjson.null, r.trace_id or cjson.null
  end
  return jsonout.encode { format = "orket.runs/1", runs = jsonout.array(rows) }
end

-- The refusal's word for a worker killed (SIGKILL, its machine lost): it cannot be stopped,
-- and its lease holds the run until it ends. Without it, the operator was told to stop a
-- worker that no longer existed, and nothing said the refusal would end by itself.
local function dead_note(db, id)
  local ok, live = pcall(lease.ops(db).live, db, id)
  local last
  for _, l in ipairs(ok and live or {}) do
    if not last or l.expires_at > last then last = l.expires_at end
  end
  if not last then return "" end
  return string.format("; a worker that died (SIGKILL, its machine lost) holds its cards until its lease ends, "
    .. "by %s: then stop the run again", inert.line(last))
end

-- orket runs stop RUN: a run left to the workers that no worker works, ended (interrupted)
local function stop(o, cli)
  local words = o.words or {}
  if #words ~= 1 then return cli.usage_error(cmd, "runs stop needs one RUN (a run's number, from 'orket runs')") end
  local id = cmdline.integer(words[1])
  if not id or id < 1 then return cli.usage_error(cmd, "runs stop: RUN must be a run's number, not '%s'", words[1]) end
  if o.json then return cli.usage_error(cmd, "--json goes with the list of runs, not runs stop") end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local row = store_runs.get(db, id)
  if not row then
    db:close()
    cli.err("no run %d (RUN: 'orket runs' lists them)", id)
    return 1
  end
  local ok, kind, msg = localuse.audited(db, "stop", row.target, function() return recorded.stop_queued(db, id) end)
  if not ok and kind == "conflict" then msg = msg .. dead_note(db, id) end
  db:close()
  if not ok then
    -- stop_queued's refusals are (nil, kind, message); a transaction that failed is (nil,
    -- message, CODE): a locked store's message is said as it is
    if not (kind == "not_queued" or kind == "conflict" or kind == "store") then msg = kind end
    if kind == "not_queued" then
      msg = msg .. ": 'orket runs stop' ends only those; a run a process executes is stopped there (SIGINT "
        .. "'orket run', POST /v1/runs/" .. id .. "/stop to its server)"
    end
    cli.err("%s", msg)
    return 1
  end
  io.stdout:write(string.format("run %d stopped (interrupted); 'orket resume %d' carries it on\n", id, id))
  return 0
end

--- lease_words(expires_at, now) -> "lease ends in 23 s" | "lease ends in 10 min" | "lease
--- expired" | nil (a time not read): when a card's lease ends, by this machine's clock (now,
--- seconds). A killed worker's card was shown as worked until then with nothing to say so;
--- a live worker renews its leases as it works, so a countdown that goes on past that
--- tells a worker that may be gone. expires_at: the store's UTC time as both stores give
--- it, "YYYY-MM-DDTHH:MM:SS.fffZ" (clock.parse_time reads it, without the time zone
--- os.time would apply).
function cmd.lease_words(expires_at, now)
  local t = clock.parse_time(expires_at)
  if not t then return nil end
  local left = t - now
  if left <= 0 then return "lease expired" end
  if left < 120 then return string.format("lease ends in %d s", math.ceil(left)) end
  if left < 7200 then return string.format("lease ends in %d min", (left + 30) // 60) end
  return string.format("lease ends in %d h", (left + 1800) // 3600)
end

-- the lines under a run's row: who works it now, who has it open between cards, and how to
-- give a queued run a worker
local function worker_lines(out, r)
  if r.leases then
    local held = {}
    for i, l in ipairs(r.leases) do
      local ends = cmd.lease_words(l.expires_at, os.time())
      held[i] = inert.line(l.card) .. " (" .. inert.line(l.worker) .. (ends and (", " .. ends) or "") .. ")"
    end
    out[#out + 1] = "      worked now: " .. table.concat(held, ", ") .. "\n"
  end
  if r.idle then
    local idle = {}
    for i, w in ipairs(r.idle) do
      -- (since its join, the lock's time: not since its last card ended, which nothing records)
      idle[i] = inert.line(w.worker) .. (w.open_s and string.format(" (joined the run %ds ago)", w.open_s) or "")
    end
    out[#out + 1] = "      idle, between cards: " .. table.concat(idle, ", ") .. "\n"
  end
  -- (a worker of another folder or machine that holds a card of it: not waiting; one of
  -- them between its cards is not seen here, so this says what is known, not more)
  if r.status == "queued" and not r.leases and not r.idle then
    out[#out + 1] = "      no worker of this folder has it open and none holds a card of it: 'orket worker' "
      .. "in the project starts one ('orket serve --workers N' too)\n"
  end
end

-- the runs as a table: a header names the columns; the target column is as wide as the
-- widest target (an agent's card id may be long, and is inert like all text from the store)
local function text_table(rows)
  local w = 10
  for _, r in ipairs(rows) do
    r.target = inert.line(r.target)
    w = math.max(w, #r.target)
  end
  local fmt = "%4s  %-18s %-" .. w .. "s %-6s %6s %8s  %-24s  %s\n"
  local out = { string.format(fmt, "RUN", "STATE", "TARGET", "KIND", "STEPS", "TOKENS", "STARTED", "COST") }
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format(fmt, r.id, inert.line(r.status), r.target, inert.line(r.kind), r.steps, r.tokens,
      inert.line(r.started_at), r.cost and (cost.text(r.cost) .. (r.unpriced_calls and string.format(
        " + %d call%s of unknown cost", r.unpriced_calls, r.unpriced_calls == 1 and "" or "s") or "")) or "-")
    worker_lines(out, r)
  end
  return table.concat(out)
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  if o.sub == "stop" then return stop(o, cli) end
  if o.words and #o.words > 0 then return cli.usage_error(cmd, "runs takes no RUN unless it is runs stop RUN") end
  local dir, json = o.dir, o.json
  local db = cli.open_store(dir, false, true, true)
  if not db then return 1 end
  local rows = summaries(dir, db)
  db:close()
  if json then
    io.stdout:write(as_json(rows), "\n")
  elseif #rows == 0 then
    io.stdout:write("no runs yet; start one with 'orket run EPIC'\n")
  else
    io.stdout:write(text_table(rows))
  end
  return 0
end

return cmd
