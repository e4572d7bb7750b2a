-- orket models: lists the configured providers and the default model, and checks each
-- HTTP endpoint's health (its model list) concurrently. Exit 1 when an endpoint the
-- project uses (the default model's, a seat's) fails; a built-in provider nothing uses
-- may be down or keyless without failing the check.
local uv = require "luv"
local llm = require "orket.llm"
local task = require "orket.task"
local inert = require "orket.inert"
local USAGE = "orket models [--no-check] [-C DIR]"

local function run(args, cli)
  local check, dir = true, "."
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--no-check" then
      check = false
    elseif a == "-C" then
      dir = args[i + 1]
      if not dir then return cli.usage_error({ usage = USAGE }, "-C needs a directory") end
      i = i + 1
    else
      return cli.usage_error({ usage = USAGE }, "unknown argument '%s'", a)
    end
    i = i + 1
  end
  local st = uv.fs_stat(dir)
  if not st then return cli.usage_error({ usage = USAGE }, "-C %s: no such directory", dir) end
  if st.type ~= "directory" then return cli.usage_error({ usage = USAGE }, "-C %s: not a directory", dir) end
  -- The engine's sections too (budgets.turn = 4 is refused here as by run and validate).
  local cfg, s = cli.project_settings(dir, true)
  if not cfg then return 1 end
  local client, lerr = llm.open(cfg)
  if not client then
    cli.err("%s", lerr)
    return 1
  end
  local names = client:provider_names()
  local used = {} -- provider -> the model names the project asks it for
  local function use(model)
    if type(model) ~= "string" then return end
    local p, m = model:match("^([^:]+):(.+)$")
    if p then
      used[p] = used[p] or {}
      used[p][m] = true
    end
  end
  use(cfg.models.default)
  for _, seat in pairs(s.team or {}) do use(seat.model) end
  local results = {}
  if check then
    local tasks = {}
    for _, name in ipairs(names) do
      tasks[name] = task.spawn(function() return client:health(name) end)
    end
    for _, name in ipairs(names) do
      local _, r, msg, class = tasks[name]:join()
      results[name] = r and { ok = true, r = r } or { ok = false, msg = msg, class = class }
    end
  end
  io.stdout:write("default: ", tostring(cfg.models.default), "\n")
  local failed = 0
  for _, name in ipairs(names) do
    local d = client:describe(name)
    local where = d.base_url or (d.file and ("file " .. d.file)) or "(offline)"
    local line = string.format("%-10s %-8s %s", name, d.kind, where)
    if d.key_env then line = line .. string.format("  key: %s%s", d.key_env, d.key_set and "" or " (not set)") end
    local res = results[name]
    if res then
      if res.ok and res.r.offline then
        line = line .. "  ok (offline)"
      elseif res.ok then
        line = line .. string.format("  ok (%d ms, %d models%s)", math.floor(res.r.ms + 0.5), #res.r.models,
          #res.r.models > 0 and (": " .. table.concat(res.r.models, ", ", 1, math.min(5, #res.r.models))) or "")
        -- a model the project uses that the server does not list would fail every turn
        local served = {}
        for _, m in ipairs(res.r.models) do
          served[m] = true
          served[(m:gsub(":latest$", ""))] = true -- Ollama's "llama3" is "llama3:latest"
        end
        local missing = {}
        for m in pairs(used[name] or {}) do
          if #res.r.models > 0 and not served[m] then missing[#missing + 1] = m end
        end
        table.sort(missing)
        if #missing > 0 then
          line = line .. "\n" .. string.format("%-10s FAILED: not served here: %s", "", table.concat(missing, ", "))
          failed = failed + 1
        end
      elseif used[name] then
        line = line .. "  FAILED " .. tostring(res.class) .. ": " .. tostring(res.msg)
        failed = failed + 1
      else
        line = line .. "  unavailable (not used here) " .. tostring(res.class) .. ": " .. tostring(res.msg)
      end
    end
    -- model names and error bodies come from the servers: inert on a terminal
    io.stdout:write(inert.text(line), "\n")
  end
  return failed > 0 and 1 or 0
end

return {
  summary = "list configured models and check each endpoint",
  usage = USAGE,
  help = "Reads orket.lua in the current directory (or DIR), else the built-in providers\n" ..
      "(ollama at OLLAMA_HOST, openai at OPENAI_BASE_URL), applies ORKET_MODEL, and asks\n" ..
      "every HTTP provider for its model list. Keys are taken from the environment.\n" ..
      "Exits 1 when a provider the project uses (the default model's, a seat's) fails,\n" ..
      "or does not list a model the project asks it for;\n" ..
      "a provider nothing uses is shown as unavailable without failing the check.",
  run = run,
}
