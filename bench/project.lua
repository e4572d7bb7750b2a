-- bench.project: the epic the engine and worker benchmarks run: n issues (every tenth
-- depends on the one before), two seats whose models each answer with one
-- update_issue_status call (the coder hands in, the reviewer approves), in a new folder
-- under /tmp. The caller imports it (as a library or through the command line).
local uv = require "luv"
local cjson = require "cjson"

local M = {}

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- make(n, base_url, opts) -> dir. opts.model: the fake model's options put before the
--- tool's ("chunks=1,nolog,first_byte_ms=20,"); opts.description: each issue gets one;
--- opts.extra: more orket.lua text (a store URL); opts.coder: the coder's tool settings instead
--- of the hand-in alone (bench/gitscale.lua: a file written, then the hand-in); opts.parent:
--- the directory it is made in (/tmp unless given).
function M.make(n, base_url, opts)
  opts = opts or {}
  local dir = io.popen("mktemp -d " .. (opts.parent or "/tmp") .. "/orket-bench.XXXXXX"):read("l")
  uv.fs_mkdir(dir .. "/epics", 493)
  local issues = {}
  for i = 1, n do
    issues[i] = { id = "B-" .. i, summary = "Issue " .. i, seat = "senior_developer",
      description = opts.description and ("Benchmark issue number " .. i .. ".") or nil,
      depends_on = (i % 10 == 0) and { "B-" .. (i - 1) } or nil }
  end
  write(dir .. "/epics/bench.json", cjson.encode { id = "B", name = "Bench", issues = issues })
  local model = opts.model or ""
  write(dir .. "/orket.lua", string.format([[
name = "bench"
models = { default = "fake:chunks=1",
  providers = { fake = { kind = "openai", base_url = %q, max_concurrency = 64, retry = { max_attempts = 1 } } } }
team = {
  senior_developer = { roles = { "coder" }, model = "fake:%s%s" },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:%stool=update_issue_status,arg_status=done" },
}
budgets = { turns_per_card = 4 }
limits = { calls_run = %d }  -- two tool calls per issue; the default allows 1,000 a run
%s]], base_url, model, opts.coder or "tool=update_issue_status,arg_status=code_review", model, 4 * n,
    opts.extra or ""))
  return dir
end

return M
