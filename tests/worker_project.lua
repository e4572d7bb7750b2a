-- tests.worker_project: the board that orket worker's end-to-end files run, written once.
-- Epics of appender issues (tests.fixtures: a project tool appends the card's id to a file
-- of its own, so an effect applied twice shows as a second line) worked through the fake
-- model server, each issue two calls of its coder and one of its reviewer; the workers that
-- work it; and the board's state as the journal tells it, to compare runs.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local project_mod = require "orket.project"

local M = {}

--- project(url, {epics = {{id =, n =}, ...}, rocks =, slow =, store_url =, name =, retry =})
--- -> dir: the project on the fake model server at url; each epic of n issues ID-1..ID-n
--- (every tenth depends on the one before); rocks: each epic in a rock of its own, R<ID>;
--- slow: every answer's first byte waits that many ms; store_url: the store (else the
--- project's own SQLite one); retry: the provider's retry table as Lua text (default one
--- attempt); timeouts: its timeouts table as Lua text. Imported (the command checked).
function M.project(url, o)
  local dir = H.tmpdir()
  os.execute(string.format("mkdir -p %s/epics %s/roles %s/tools", dir, dir, dir))
  local total = 0
  for _, e in ipairs(o.epics) do
    local issues = {}
    for i = 1, e.n do
      issues[i] = { id = e.id .. "-" .. i, summary = "Issue " .. i, seat = "senior_developer",
        depends_on = (i % 10 == 0) and { e.id .. "-" .. (i - 1) } or nil }
    end
    total = total + e.n
    H.write(dir .. "/epics/" .. e.id:lower() .. ".json", cjson.encode { id = e.id, name = "Epic " .. e.id, issues = issues })
    if o.rocks then
      H.write(dir .. "/epics/r" .. e.id:lower() .. ".json",
        cjson.encode { id = "R" .. e.id, type = "rock", name = "Rock " .. e.id, epics = { e.id } })
    end
  end
  H.write(dir .. "/roles/appender.lua", F.APPENDER_ROLE)
  -- an effect outside the store that shows when it is applied twice: a second append is a
  -- second line in the card's file; a process stopped after the append: the line is there,
  -- the call is done
  H.write(dir .. "/tools/append_line.lua", (F.APPEND_LINE_TOOL:gsub("\n}\n$", [[

  recover = function(args, ctx)
    if (ctx.fs:read(ctx.card.id .. ".line") or "") ~= "" then return { appended = ctx.card.id } end
    return nil
  end,
}
]])))
  local extra = o.slow and (",first_byte_ms=" .. o.slow) or ""
  H.write(dir .. "/orket.lua", string.format([[
name = %q
models = { default = "fake:chunks=1",
  providers = { fake = { kind = "openai", base_url = %q, max_concurrency = 64, retry = %s%s } } }
team = {
  senior_developer = { roles = { "appender" },
    model = "fake:chunks=1,nolog,tool=append_line,arg_note=x,then=update_issue_status,then_arg_status=code_review%s" },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:chunks=1,nolog,tool=update_issue_status,arg_status=done%s" },
}
budgets = { turns_per_card = 4 }
limits = { calls_run = %d }
]], o.name or "workers", url .. "/v1", o.retry or "{ max_attempts = 1 }", o.timeouts and (", timeouts = " .. o.timeouts) or "",
    extra, extra, 10 * total))
  if o.store_url then
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nstore = { url = %q }\n", o.store_url))
  end
  local r = H.orket("import", { cwd = dir })
  assert(r.status == 0, r.stderr)
  return dir
end

--- start_worker(dir, k, {start =, lease_ms =, env =}) -> pid: `orket worker --drain` in dir
--- in the background, its output appended to wK.out and wK.err; start: the target it records
--- a run of (or joins the one another worker started); env: a "K=V ..." prefix (a fault).
function M.start_worker(dir, k, o)
  local p = io.popen(string.format("cd %s && %s exec %s worker %s--drain --lease-ms %d >>%s/w%d.out 2>>%s/w%d.err & echo $!",
    H.quote(dir), o.env or "", H.quote(H.BIN), o.start and ("--start " .. o.start .. " ") or "", o.lease_ms,
    H.quote(dir), k, H.quote(dir), k))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

--- stopped(pid) -> whether process pid is stopped (a fault's SIGSTOP)
function M.stopped(pid)
  local st = H.read("/proc/" .. pid .. "/stat") or ""
  return st:match("^%d+ %b() (%a)") == "T"
end

--- events(dir, k, kind) -> the events of type kind worker k printed (its wK.out), in order
function M.events(dir, k, kind)
  local out = {}
  for line in (H.read(dir .. "/w" .. k .. ".out") or ""):gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" and ev.type == kind then out[#out + 1] = ev end
  end
  return out
end

--- side_by_side(text) -> the most runs one worker had turns of in flight at once, read from
--- its JSON Lines (a worker_start begins a new process: what the one before left open is
--- dropped)
function M.side_by_side(text)
  local open, most = {}, 0
  for line in text:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" then
      -- (a turn cancelled or whose lease was lost says no turn_end; its run's end closes it)
      if ev.type == "worker_start" then open = {} end
      if ev.type == "run_end" then open[ev.run_id] = nil end
      if ev.type == "lease_lost" and ev.run_id and open[ev.run_id] then open[ev.run_id][ev.card] = nil end
      if ev.type == "turn_start" or ev.type == "turn_end" then
        local runs = open[ev.run_id] or {}
        open[ev.run_id] = runs
        runs[ev.card] = ev.type == "turn_start" or nil
        local n = 0
        for _, cards in pairs(open) do if next(cards) then n = n + 1 end end
        most = math.max(most, n)
      end
    end
  end
  return most
end

--- board_state(dir) -> {ID = {status, worked_by, retries, turns, done}}: each issue's
--- status, worker seat and retries, its recorded turns (number and outcome of each
--- turn_end) and how often it was moved to done; the card's journal lines are its
--- metatable's `lines` (said when a comparison fails).
function M.board_state(dir)
  local db = assert(project_mod.open_store(dir, false))
  local out = {}
  for _, c in ipairs(require("orket.board").open(db):list { type = "issue" }) do
    out[c.id] = { status = c.status, worked_by = c.worked_by, retries = c.retries, turns = {}, done = 0 }
  end
  local after = 0
  while true do
    local evs = db:events { after = after, limit = 5000 }
    if #evs == 0 then break end
    for _, e in ipairs(evs) do
      after = e.id
      local c = e.card and out[e.card]
      if c and e.kind == "turn_end" then c.turns[#c.turns + 1] = e.data.turn .. ":" .. e.data.outcome end
      if c then
        local log = getmetatable(c) or { lines = {} }
        log.lines[#log.lines + 1] = string.format("%s %s %s", e.kind, e.worker or "", cjson.encode(e.data or {}))
        setmetatable(c, log)
      end
      if c and e.kind == "transition" and e.data.to == "done" then c.done = c.done + 1 end
    end
  end
  db:close()
  return out
end

return M
