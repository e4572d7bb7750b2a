-- orket runs: the runs of this project with their state, newest first.
local jsonout = require "orket.jsonout"
local inert = require "orket.inert"
local store_runs = require "orket.store.runs"
local lease = require "orket.engine.lease"
local claims = require "orket.engine.claims"
local cmdline = require "orket.cmdline"
local costs = require "orket.store.costs"
local cost = require "orket.cost"

local cmd = { name = "runs", summary = "list runs and their state", args = {
  { "--json", help = "print the runs as one JSON document (orket.runs/1)" },
  cmdline.DIR,
} }

-- Every run with its cost and the state to show (a run another folder's server executes
-- is live by its lease in the store)
local function summaries(dir, db)
  local rows = store_runs.summaries(db)
  for _, r in ipairs(rows) do
    local t = costs.totals(db, { run = r.id })
    -- tokens by kind and the cost by currency in micro-units (docs/cost.md); none known: no cost
    r.tokens_cached, r.cost = t.cached, next(t.cost) and t.cost or nil
  end
  local left = {} -- runs left to workers (orket worker)
  for _, r in ipairs(lease.ops(db).queued(db)) do left[r.id] = true end
  for _, r in ipairs(rows) do r.status = claims.state(dir, db, r.status, r.id, left[r.id]) end
  return rows
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local dir, json = o.dir, o.json
  local db = cli.open_store(dir, false, true)
  if not db then return 1 end
  local rows = summaries(dir, db)
  db:close()
  if json then
    io.stdout:write(jsonout.encode { format = "orket.runs/1", runs = jsonout.array(rows) }, "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write("no runs yet; start one with 'orket run EPIC'\n")
    return 0
  end
  -- a header names the columns; the target column is as wide as the widest target (an
  -- agent's card id may be long, and is inert like all text from the store)
  local w = 10
  for _, r in ipairs(rows) do
    r.target = inert.line(r.target)
    w = math.max(w, #r.target)
  end
  local fmt = "%4s  %-18s %-" .. w .. "s %-6s %6s %8s  %-24s  %s\n"
  local out = { string.format(fmt, "RUN", "STATE", "TARGET", "KIND", "STEPS", "TOKENS", "STARTED", "COST") }
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format(fmt, r.id, inert.line(r.status), r.target, inert.line(r.kind), r.steps, r.tokens,
      inert.line(r.started_at), r.cost and cost.text(r.cost) or "-")
  end
  io.stdout:write(table.concat(out))
  return 0
end

return cmd
