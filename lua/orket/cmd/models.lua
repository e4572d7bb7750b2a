-- orket models: lists the configured providers and the default model, and checks each
-- HTTP endpoint's health (its model list) concurrently. Exit 1 when an endpoint the
-- project uses (the default model's, a seat's, a role's, an experiment's) fails; a built-in
-- provider nothing uses may be down or keyless without failing the check.
local uv = require "luv"
local llm = require "orket.llm"
local task = require "orket.task"
local inert = require "orket.inert"
local config = require "orket.config"
local cmdline = require "orket.cmdline"
local roles = require "orket.engine.roles"

local cmd = { name = "models", args = {
  { "--no-check", help = "list the providers without asking them for their models" },
  cmdline.DIR,
} }

-- The providers' model names the project asks for: provider -> { model = true }. Every
-- place a model is named (llm.models_named); roles that do not load name none here (orket
-- validate says why).
local function used_models(cfg, s, dir)
  local set = roles.load(roles.dirs(dir), dir)
  local used = {}
  for _, model in ipairs(llm.models_named(cfg.models, s.team, set and set.by_name, s.experiments)) do
    local p, m = model:match("^([^:]+):(.+)$")
    if p then
      used[p] = used[p] or {}
      used[p][m] = true
    end
  end
  return used
end

-- Asks every provider for its model list at once: name -> { ok, r } | { ok = false, msg, class }.
local function check_all(client, names)
  local tasks, results = {}, {}
  for _, name in ipairs(names) do
    tasks[name] = task.spawn(function() return client:health(name) end)
  end
  for _, name in ipairs(names) do
    local _, r, msg, class = tasks[name]:join()
    results[name] = r and { ok = true, r = r } or { ok = false, msg = msg, class = class }
  end
  return results
end

-- What a provider's check adds to its line -> text, failed (a provider the project uses).
local function health_text(res, wanted)
  if res.ok and res.r.offline then return "  ok (offline)", false end
  if res.ok then
    local r = res.r
    local line = string.format("  ok (%d ms, %d model%s%s)", math.floor(r.ms + 0.5), #r.models,
      #r.models == 1 and "" or "s",
      #r.models > 0 and (": " .. table.concat(r.models, ", ", 1, math.min(5, #r.models))) or "")
    -- a model the project uses that the server does not list would fail every turn
    local missing = llm.missing(r.models, wanted)
    if #missing == 0 then return line, false end
    return line .. "\n" .. string.format("%-10s FAILED: not served here: %s", "", table.concat(missing, ", ")), true
  end
  if wanted then return "  FAILED " .. tostring(res.class) .. ": " .. tostring(res.msg), true end
  return "  unavailable (not used here) " .. tostring(res.class) .. ": " .. tostring(res.msg), false
end

-- One provider's line: name, kind, where, key, and its check's result.
local function provider_line(client, name, res, wanted)
  local d = client:describe(name)
  local where = d.base_url or (d.file and ("file " .. d.file)) or "(offline)"
  local line = string.format("%-10s %-8s %s", name, d.kind, where)
  -- where the key comes from, never the key (docs/secrets.md)
  local from = d.key_env and d.key_secret and (d.key_env .. " or secret:" .. d.key_secret)
    or d.key_env or (d.key_secret and "secret:" .. d.key_secret)
  if from then line = line .. string.format("  key: %s%s", from, d.key_set and "" or " (not set)") end
  local failed = false
  if res then
    local more
    more, failed = health_text(res, wanted)
    line = line .. more
  end
  return line, failed
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local stat = uv.fs_stat(o.dir)
  if not stat then return cli.usage_error(cmd, "-C %s: no such directory", config.shown(o.dir)) end
  if stat.type ~= "directory" then return cli.usage_error(cmd, "-C %s: not a directory", config.shown(o.dir)) end
  -- The engine's sections too (budgets.turn = 4 is refused here as by run and validate).
  local cfg, s = cli.project_settings(o.dir, true)
  if not cfg then return 1 end
  local client, lerr = llm.open(cfg)
  if not client then
    cli.err("%s", lerr)
    return 1
  end
  local names, used = client:provider_names(), used_models(cfg, s, o.dir)
  local results = o.no_check and {} or check_all(client, names)
  io.stdout:write("default: ", tostring(cfg.models.default), "\n")
  local failed = 0
  for _, name in ipairs(names) do
    local line, bad = provider_line(client, name, results[name], used[name])
    if bad then failed = failed + 1 end
    -- model names and error bodies come from the servers: inert on a terminal
    io.stdout:write(inert.text(line), "\n")
  end
  return failed > 0 and 1 or 0
end

cmd.summary = "list configured models and check each endpoint"
cmd.help = "Reads orket.lua in the current directory (or DIR), else the built-in providers\n" ..
  "(ollama at OLLAMA_HOST, openai at OPENAI_BASE_URL); inside a project's own folders\n" ..
  "(its workspace/, epics/, ...) it names that project, to give with -C, instead.\n" ..
  "Applies ORKET_MODEL, and asks every HTTP provider for its model list. Keys are\n" ..
  "taken from the environment.\n" ..
  "Exits 1 when a provider the project uses (the default model's, a seat's, a role's,\n" ..
  "an experiment's; not one only routing.lua chooses, known at a turn) fails,\n" ..
  "or does not list a model the project asks it for;\n" ..
  "a provider nothing uses is shown as unavailable without failing the check."

return cmd
