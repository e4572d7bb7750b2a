-- Starts tests/fake_model_server.lua as a child process for specs and benchmarks:
--   local fake = require("fake_server").start([{models = {NAME, ...}}]) -> {url=, port=, pid=, log=fn,
--   reset=fn, stop=fn} (models: what its model lists name, fake-model unless given)
-- Must run inside a task (it waits for the server to print its port).
local M = {}

local root = package.orket_home
local bin = os.getenv("ORKET_BIN") or (root .. "/build/orket")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function M.start(opts)
  local dir = io.popen("mktemp -d /tmp/orket-fake.XXXXXX"):read("l")
  local out = dir .. "/out"
  local models = opts and opts.models and (" 0 " .. q(table.concat(opts.models, ","))) or ""
  local p = io.popen(string.format("cd %s && exec %s lua tests/fake_model_server.lua%s >%s 2>&1 & echo $!", q(root), q(bin),
    models, q(out)))
  local pid = tonumber(p:read("l"))
  p:close()
  local port
  for _ = 1, 500 do
    local f = io.open(out)
    local s = f and f:read("a")
    if f then f:close() end
    port = s and s:match("listening http://127%.0%.0%.1:(%d+)")
    if port then break end
    orket.sleep(10)
  end
  assert(port, "the fake model server did not start")
  local json = require "cjson.safe"
  local s = { pid = pid, port = tonumber(port), url = "http://127.0.0.1:" .. port }
  local function call(method, path)
    local status, text = require("tests.helpers").fetch { url = s.url .. path, method = method,
      body = method == "POST" and "" or nil }
    return status, text
  end
  --- log() -> every request the server saw: {t=, path=, model=, stream=, authorization=, request=}
  function s.log()
    local _, body = call("GET", "/__log")
    return json.decode(body)
  end
  --- requests(model) -> how many requests the server saw for that model name
  function s.requests(model)
    local n = 0
    for _, e in ipairs(s.log()) do if e.model == model then n = n + 1 end end
    return n
  end
  function s.reset() call("POST", "/__reset") end
  function s.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.execute("rm -rf " .. q(dir))
  end
  --- one_issue(orket_lua) -> dir: a project with that orket.lua and one epic M holding one
  --- issue M-1 for senior_developer, imported
  function s.one_issue(orket_lua)
    local H = require "tests.helpers"
    local pdir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(pdir .. "/epics"))
    H.write(pdir .. "/orket.lua", orket_lua)
    H.write(pdir .. "/epics/m.json", [[
{ "id": "M", "name": "Model", "issues": [ { "id": "M-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
    assert(H.orket("import", { cwd = pdir }).status == 0, "the project did not import")
    return pdir
  end
  --- run_events(dir [, target]) -> events of `orket run TARGET --json` (default M) by type
  --- ({type = array of events}), and the command's result
  function s.run_events(dir, target)
    local H = require "tests.helpers"
    local r = H.orket("run " .. (target or "M") .. " --json", { cwd = dir })
    local out = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = require("cjson").decode(line)
      out[ev.type] = out[ev.type] or {}
      table.insert(out[ev.type], ev)
    end
    return out, r
  end
  return s
end

return M
