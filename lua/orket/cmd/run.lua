-- orket run EPIC|ROCK|CARD: runs the team over the board (orket.engine). JSON Lines events
-- with --json or when stdout is not a terminal, else a short live line per event. Exit:
-- 0 done, 1 failed, 2 usage, 3 stalled or waiting for input, 130 interrupted.
local uv = require "luv"
local task = require "orket.task"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local jsonout = require "orket.jsonout"

local USAGE = "orket run EPIC|ROCK|CARD [--model M] [--json] [--concurrency N] [-C DIR]"
local cmd = { summary = "run the team on an epic, a rock or a card", usage = USAGE }
cmd.help = [[
Works every issue under the target to done: each card gets turns from the seat routing
chooses, review by a seat holding integrity_guard, escalation after repeated rejections.
Every model response and tool call is journaled in .orket/orket.db; a run stopped by
Ctrl-C, SIGTERM or a crash continues with 'orket resume'. --model overrides every seat's
model (as ORKET_MODEL does). Edits to roles/, tools/, policies/ and routing.lua are
reloaded while the run goes on (from each card's next turn; a broken edit is reported and
the old version kept). Exit status: 0 done, 1 failed, 3 stalled or waiting for
input (the reasons are printed), 130 interrupted.]]

local function human(ev)
  local t = ev.type
  if t == "turn_start" then
    return string.format("%-8s %-22s %s (%s) turn %d", ev.card, ev.seat, ev.phase, ev.role, ev.turn)
  elseif t == "turn_end" then
    return string.format("%-8s %-22s -> %s (%s)", ev.card, ev.seat, ev.status, ev.outcome)
  elseif t == "tool" then
    return string.format("%-8s %-22s %s %s", ev.card, ev.seat, ev.tool, ev.ok and "ok" or ("failed " .. tostring(ev.code)))
  elseif t == "card_blocked" then
    return string.format("%-8s blocked (%s): %s", ev.card, ev.reason, ev.detail)
  elseif t == "model_retry" then
    return string.format("%-8s model %s, retry %d in %d ms", ev.card, ev.class, ev.attempt, ev.delay_ms)
  elseif t == "stall" then
    local out = { "stuck cards:" }
    for _, s in ipairs(ev.cards) do out[#out + 1] = string.format("  %-8s %s", s.card, s.reason) end
    return table.concat(out, "\n")
  elseif t == "run_start" then
    return string.format("run %d: %s (concurrency %d)", ev.run_id, ev.target, ev.concurrency)
  elseif t == "reload" then
    return "reloaded scripts: " .. table.concat(ev.files, ", ")
  elseif t == "reload_error" then
    return "reload refused, keeping the old scripts: " .. tostring(ev.error)
  elseif t == "run_end" then
    return string.format("run %d %s (%d tokens)", ev.run_id, ev.status, ev.tokens or 0)
  end
  return nil
end

local function emitter(json)
  return function(ev)
    local line
    if json then
      local ok, s = pcall(jsonout.encode, ev)
      line = ok and s or nil
    else
      line = human(ev)
    end
    if line then
      io.stdout:write(line, "\n")
      io.stdout:flush()
    end
  end
end

--- parse(args, cli, allow_target) -> opts | nil, status
function cmd.parse(args, cli, c)
  local o = { dir = "." }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--json" then o.json = true
    elseif a == "--model" or a == "--concurrency" or a == "-C" then
      i = i + 1
      local v = args[i]
      if not v then return nil, cli.usage_error(c, "%s needs a value", a) end
      if a == "--model" then o.model = v
      elseif a == "-C" then o.dir = v
      else
        o.concurrency = math.tointeger(tonumber(v))
        if not o.concurrency or o.concurrency < 1 then return nil, cli.usage_error(c, "--concurrency needs a positive integer") end
      end
    elseif a:match("^%-") then return nil, cli.usage_error(c, "unknown option '%s'", a)
    elseif o.target then return nil, cli.usage_error(c, "give one target")
    else o.target = a end
    i = i + 1
  end
  if o.json == nil and uv.guess_handle(1) ~= "tty" then o.json = true end
  return o
end

local EXIT = { done = 0, failed = 1, stalled = 3, interrupted = 130 }

--- execute(o, cli, run_id_or_nil) -> exit status: starts (or resumes) a run in a task,
--- stopping gracefully on SIGINT/SIGTERM.
function cmd.execute(o, cli, resume_id)
  local e, err = setup.open(o.dir, { model = o.model, concurrency = o.concurrency, emit = emitter(o.json) })
  if not e then
    cli.err("%s", err)
    return 1
  end
  -- Edits to roles/, tools/, policies/ and routing.lua apply from the next turn on.
  local watcher = reload.watch(e)
  local status
  local t = task.spawn(function()
    local id = resume_id
    if not id then
      local rid, serr = e:start(o.target, { concurrency = o.concurrency, model = o.model })
      if not rid then
        cli.err("%s", serr)
        return
      end
      id = rid
    end
    status = e:execute(id)
  end)
  local signals = {}
  for _, name in ipairs { "sigint", "sigterm" } do
    local h = uv.new_signal()
    h:start(name, function() e:stop() end)
    signals[#signals + 1] = h
  end
  local ok, terr = t:join()
  for _, h in ipairs(signals) do h:close() end
  watcher:close()
  require("orket.c.runtime").run("nowait")
  e.close_all()
  cli.flush_unhandled()
  if not ok then
    cli.err("%s", terr)
    return 1
  end
  if not status then return 1 end
  return EXIT[status] or 1
end

function cmd.run(args, cli)
  local o, st = cmd.parse(args, cli, cmd)
  if not o then return st end
  if not o.target then return cli.usage_error(cmd, "run needs an epic, rock or card id") end
  return cmd.execute(o, cli, nil)
end

return cmd
