-- orket sandbox plan|compose: what a sandbox of the project runs and why
-- (orket.sandboxes.plan), and the compose file (plus a Dockerfile when the tree has none)
-- for deploying the same service elsewhere (orket.sandboxes.compose). docs/sandbox.md.
local cjson = require "cjson"
local jsonout = require "orket.jsonout"
local plan_mod = require "orket.sandboxes.plan"
local compose = require "orket.sandboxes.compose"

local cmd = { summary = "what the project's sandbox runs (plan) and its compose file (compose)",
  usage = "orket sandbox plan [--json] [-C DIR] | orket sandbox compose [--out DIR] [--force] [-C DIR]" }
cmd.help = [[
plan      says what a sandbox would run from main's tree (workspace/): orket.lua's
          sandbox.command when it is set, else what was detected (a package.json script, a
          Python entry point and its framework, go.mod, a Makefile run/serve/start target),
          with the reasons, the port variable and the health check. --json for a program.
compose   writes compose.yaml (and a Dockerfile when the tree has none) for the same service
          into --out DIR (default: the project's deploy/), its build context the project's
          workspace/; existing files are not replaced without --force.]]

-- The project's sandbox settings and a confined view of main's tree: plan | nil (printed).
local function load(dir, cli)
  local cfg, s = cli.project_settings(dir, true)
  if not cfg then return nil end
  local ws, werr = require("orket.workspace").open(dir .. "/workspace")
  if not ws then cli.err("%s", werr) return nil end
  local p, perr, _, why = plan_mod.detect(ws, s.sandbox)
  ws:close()
  if not p then
    cli.err("%s", perr)
    for _, w in ipairs(why or {}) do io.stderr:write("  - ", w, "\n") end
    return nil
  end
  return p, s
end

local function plan(args, cli)
  local as_json = false
  local dir, pos = cli.words(cmd, args, { ["--json"] = function() as_json = true end }, "an argument")
  if not dir then return pos end
  if #pos > 0 then return cli.usage_error(cmd, "sandbox plan takes no argument ('%s')", pos[1]) end
  local p, s = load(dir, cli)
  if not p then return 1 end
  if as_json then
    io.stdout:write(cjson.encode {
      stack = p.stack, explicit = p.explicit or false, command = jsonout.array(p.command),
      install = p.install and jsonout.array(p.install) or cjson.null, port_env = p.port_env,
      health = { kind = p.health.kind, path = p.health.path or cjson.null, interval_ms = p.health.interval_ms,
        timeout_ms = p.health.timeout_ms, failures = p.health.failures, start_timeout_ms = p.health.start_timeout_ms },
      deploy = s.sandbox.deploy, network = s.sandbox.network, dockerfile = p.dockerfile,
      reasons = jsonout.array(p.reasons),
    }, "\n")
    return 0
  end
  local out = io.stdout
  out:write("stack:    ", p.stack, p.explicit and " (command from orket.lua)" or "", "\n")
  out:write("command:  ", table.concat(p.command, " "), "\n")
  if p.install then out:write("install:  ", table.concat(p.install, " "), "\n") end
  out:write("port:     $", p.port_env, " (Orket chooses it; {port} on the command line too)\n")
  out:write("health:   ", p.health.kind == "http" and ("HTTP GET " .. p.health.path) or "TCP connect",
    string.format(" every %d ms, %d ms timeout, unhealthy after %d failures\n", p.health.interval_ms,
      p.health.timeout_ms, p.health.failures))
  out:write("deploy:   ", s.sandbox.deploy, s.sandbox.deploy == "manual" and " (orket sandbox up)" or " (after each "
    .. (s.sandbox.deploy == "merge" and "merged card" or s.sandbox.deploy .. " done") .. ")", "\n")
  out:write("why:\n")
  for _, w in ipairs(p.reasons) do out:write("  - ", w, "\n") end
  return 0
end

-- Writes name in dir unless it exists (or force): true | nil (printed).
local function write(cli, dir, name, text, force)
  local path = dir .. "/" .. name
  if not force and io.open(path, "r") then
    cli.err("%s exists: not replaced (use --force)", path)
    return nil
  end
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then cli.err("%s", err) return nil end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp) cli.err("%s", rerr) return nil end
  io.stdout:write("wrote ", path, "\n")
  return true
end

-- relative(from, to) -> the path of directory `to` seen from directory `from` (both absolute)
local function relative(from, to)
  local a, b = {}, {}
  for part in from:gmatch("[^/]+") do a[#a + 1] = part end
  for part in to:gmatch("[^/]+") do b[#b + 1] = part end
  local i = 1
  while a[i] and a[i] == b[i] do i = i + 1 end
  local out = {}
  for _ = i, #a do out[#out + 1] = ".." end
  for j = i, #b do out[#out + 1] = b[j] end
  return #out == 0 and "." or table.concat(out, "/")
end

local function write_compose(args, cli)
  local force, out_dir = false, nil
  local dir, pos = cli.words(cmd, args, { ["--force"] = function() force = true end }, "an argument",
    { ["--out"] = { what = "a directory", set = function(v) out_dir = v end } })
  if not dir then return pos end
  if #pos > 0 then return cli.usage_error(cmd, "sandbox compose takes no argument ('%s')", pos[1]) end
  local p, s = load(dir, cli)
  if not p then return 1 end
  out_dir = out_dir or (dir .. "/deploy")
  local uv = require "luv"
  if not uv.fs_stat(out_dir) then
    local ok, err = uv.fs_mkdir(out_dir, tonumber("755", 8))
    if not ok then cli.err("%s: %s", out_dir, err) return 1 end
  end
  -- the build context is the tree; a Dockerfile Orket writes goes beside compose.yaml
  local ctx = relative(uv.fs_realpath(out_dir), uv.fs_realpath(dir .. "/workspace"))
  local text = compose.yaml(p, { name = s.name or "app", context = ctx,
    dockerfile = not p.dockerfile and relative(uv.fs_realpath(dir .. "/workspace"), uv.fs_realpath(out_dir)) .. "/Dockerfile" or nil })
  if not write(cli, out_dir, "compose.yaml", text, force) then return 1 end
  local df = compose.dockerfile(p)
  if df and not write(cli, out_dir, "Dockerfile", df, force) then return 1 end
  return 0
end

function cmd.run(args, cli)
  local sub = args[1]
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  if sub == "plan" then return plan(rest, cli) end
  if sub == "compose" then return write_compose(rest, cli) end
  if sub == nil then return cli.usage_error(cmd, "sandbox needs a subcommand: plan or compose") end
  return cli.usage_error(cmd, "unknown sandbox subcommand '%s' (plan, compose)", sub)
end

return cmd
