-- The project the sandbox benchmarks serve (bench/sandbox.lua, bench/proxycount.lua): a node
-- app answering every path with a small JSON document, committed to main, run as the
-- project's sandbox. Not a benchmark of its own (bench/run.sh runs it, and it returns).
local uv = require "luv"

local M = {}

M.APP = [[
const http = require('http');
http.createServer((req, res) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ ok: true, path: req.url }));
}).listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
]]

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- commit_main(dir): dir's workspace/ as main's first commit
function M.commit_main(dir)
  assert(os.execute("cd '" .. dir .. "/workspace' && git init -q -b main && git add -A && "
    .. "git -c user.name=bench -c user.email=bench@localhost commit -qm bench"))
end

--- project(prefix, name) -> dir, db, settings: a new project in /tmp/PREFIX.XXXXXX serving
--- the app as its sandbox
function M.project(prefix, name)
  local dir = io.popen("mktemp -d /tmp/" .. prefix .. ".XXXXXX"):read("l")
  uv.fs_mkdir(dir .. "/workspace", 493)
  M.write(dir .. "/workspace/server.js", M.APP)
  M.commit_main(dir)
  M.write(dir .. "/orket.lua", string.format([[
name = %q
sandbox = { command = { "node", "server.js" },
  health = { http = "/health", interval_ms = 100, timeout_ms = 1000, start_timeout_ms = 20000 } }
]], name))
  local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
  local _, s = assert(require("orket.config").settings(dir, true))
  return dir, db, s
end

return M
