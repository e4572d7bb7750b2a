-- Orket's MCP client end to end: a scripted team uses the published reference server
-- (@modelcontextprotocol/server-everything from npm, tests.npm) through orket.lua's mcp
-- section, confined like agent code, to a done card; `orket mcp list` shows it. Skipped, with
-- the reason, only when npm cannot install the server. Also a misbehaving stdio
-- server (tests/mcp/hostile_server.lua) whose error quotes the secret it was given.
local H = require "tests.helpers"
local cjson = require "cjson"
local npm = require "tests.npm"

local function everything()
  local dir, why = npm.ensure()
  -- a skip, counted as one, with the reason (pending ends the test here)
  if not dir then pending("server-everything from npm: " .. why) end
  return dir .. "/node_modules/@modelcontextprotocol/server-everything/dist/index.js", dir
end

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("everything__get_sum", { a = 20, b = 22 }) } } },
  { role = "coder", match = "Echo: the sum is 42", reply = { tool_calls = {
    call("write_file", { path = "sum.txt", content = "42\n" }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", match = "is 42", reply = { tool_calls = {
    call("everything__echo", { message = "the sum is 42" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project(server, extra, mcp_line)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
  H.write(dir .. "/orket.lua", string.format([[
name = "mcpteam"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
%s
]], mcp_line or string.format(
    -- the server runs in agent code's view of the machine: its installation is listed to be read
    'mcp = { servers = { everything = { command = { "node", %q, "stdio" }, read_only = { %q } } } }',
    server, server:match("^(.*)/node_modules/"))) .. (extra or ""))
  H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Sum", "issues": [ { "id": "E-1", "summary": "Add 20 and 22", '
    .. '"seat": "senior_developer" } ] }')
  H.write(dir .. "/roles/coder.lua", [[
return { intent = "Use the MCP tools, then hand in.",
  tools = { "write_file", "update_issue_status", "everything__echo", "everything__get_sum" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  require("tests.backends").project(dir)
  assert(H.orket("import", { cwd = dir }).status == 0)
  return dir
end

describe("orket's MCP client with server-everything", function()
  after_each(H.cleanup)

  it("a scripted team calls its tools through the gate to a done card, journaled", function()
    local server = everything()
    local dir = project(server)
    local r = H.orket("run E", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    assert.equal("42\n", H.read(dir .. "/workspace/sum.txt"))
    local log = H.orket("log 1", { cwd = dir }).stdout
    -- the result's line (its members in any order: the journal's JSON keeps no order)
    local line = log:match("%[result%] everything__get_sum ok ([^\n]*)")
    assert.is_string(line, log)
    assert.matches('"result":{"text":"The sum of 20 and 22 is 42."}', line, 1, true)
    assert.matches('"ok":true', line, 1, true)
    assert.matches("Echo: the sum is 42", log, 1, true)
  end)

  it("a policy's ask holds the MCP call for approval like any tool", function()
    local server = everything()
    local dir = project(server)
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/mcp.lua", [[
ask { tool = "everything__get_*", reason = "this server's getters need a person", remedy = "Wait for approval." }
]])
    local r = H.orket("run E", { cwd = dir })
    local card = H.card_json(dir, "E-1")
    assert.equal("waiting_for_developer", card.card.status, r.stderr .. r.stdout)
    assert.equal("everything__get_sum", card.approvals[1].tool)
  end)

  it("orket mcp list shows the server and its tools", function()
    local server = everything()
    local dir = project(server)
    local r = H.orket("mcp list --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local doc = cjson.decode(r.stdout)
    local s = doc.servers[1]
    assert.equal("everything", s.name)
    assert.equal("ready", s.state)
    local names = {}
    for _, t in ipairs(s.tools) do names[t] = true end
    assert.is_true(names.everything__echo and names.everything__get_sum)
  end)

  it("a server that cannot start is reported, and a role naming an unknown server is refused", function()
    local dir = project("/nonexistent/server.js")
    local r = H.orket("mcp list", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("everything%s+stdio%s+down:", r.stdout)
    H.write(dir .. "/roles/coder.lua", [[
return { intent = "x", tools = { "update_issue_status", "nosuch__echo" }, system = function() return "x" end }
]])
    local v = H.orket("run E", { cwd = dir })
    assert.not_equal(0, v.status)
    assert.matches('roles/coder.lua:%d+: tools%[2%]: no tool named "nosuch__echo"', v.stderr)
  end)

  it("reaches a Streamable HTTP server (event-stream answers) and a team uses it", function()
    local server = everything()
    -- A port picked at random below the ephemeral range may still be taken by a test running
    -- beside this one: the server then prints "listening" all the same, says it failed and
    -- exits. So it must still be alive, not have failed, and take a connection; else another
    -- port is tried.
    local port, pid, dir
    -- the server's HTTP sessions use the global crypto, which Node before 19 (Debian 12 has
    -- 18) has only behind a flag (node -e cannot tell: it makes every core module a global)
    local p = io.popen("node -p process.versions.node")
    local flag = (tonumber((p:read("a") or ""):match("^(%d+)")) or 99) < 19 and "--experimental-global-webcrypto" or ""
    p:close()
    for _ = 1, 5 do
      port = 20000 + math.random(0, 12000)
      dir = H.tmpdir()
      os.execute(string.format("cd %s && { PORT=%d exec node %s %s streamableHttp >ev.log 2>&1 & echo $! >ev.pid; } >/dev/null 2>&1",
        H.quote(dir), port, flag, H.quote(server)))
      pid = H.wait_for(function() return H.read(dir .. "/ev.pid") end, "the server's pid"):match("%d+")
      H.wait_for(function() return (H.read(dir .. "/ev.log") or ""):find("listening on port", 1, true) end, "node to listen", 2000)
      if os.execute(string.format("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null", port))
        and os.execute("kill -0 " .. pid .. " 2>/dev/null")
        and not (H.read(dir .. "/ev.log") or ""):find("Failed to start", 1, true) then
        break
      end
      os.execute("kill " .. pid .. " 2>/dev/null")
      pid = nil
    end
    assert(pid, "no port served by node after 5 tries: " .. tostring(H.read(dir .. "/ev.log")))
    local ok, err = pcall(function()
      local proj = project(server, nil, string.format('mcp = { servers = { everything = { url = "http://127.0.0.1:%d/mcp" } } }', port))
      local l = H.orket("mcp list --json", { cwd = proj })
      assert.equal(0, l.status, l.stdout .. l.stderr)
      local s = cjson.decode(l.stdout).servers[1]
      assert.equal("http", s.transport)
      assert.equal("ready", s.state)
      local r = H.orket("run E", { cwd = proj })
      assert.equal(0, r.status, r.stderr)
      assert.equal("done", H.card_json(proj, "E-1").card.status)
      assert.matches("The sum of 20 and 22 is 42.", H.orket("log 1", { cwd = proj }).stdout, 1, true)
    end)
    os.execute("kill " .. pid)
    assert(ok, err)
  end)

  it("a server's JSON-RPC error reaches the model as EMCP_<code>, the secret it quotes masked everywhere", function()
    local KEY = "hostile-secret-" .. math.random(1e6, 9e6)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
    -- the server is a fixture run by the release build: a sanitizer build reserves terabytes
    -- of shadow memory, which the data limit of a confined server does not allow
    local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
    local exe = io.open(bin, "rb")
    if not exe then return pending("the server fixture needs the release build, " .. bin .. " (make)") end
    exe:close()
    H.write(dir .. "/orket.lua", string.format([[
name = "mcpleak"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = { hostile = { command = { %q, "lua", %q, "good" }, read_only = { %q }, env = { HOSTILE_KEY = %q } } } }
]], bin, H.ROOT .. "/tests/mcp/hostile_server.lua", H.ROOT, KEY))
    H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Leak", "issues": [ { "id": "E-1", "summary": "Call it", '
      .. '"seat": "senior_developer" } ] }')
    H.write(dir .. "/roles/coder.lua", [[
return { intent = "Call the tool, then hand in.", tools = { "update_issue_status", "hostile__ok" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
    -- the model goes on only if it read the error as the server's code, with the key masked
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("hostile__ok", { m = "rpc_error" }) } } },
  { role = "coder", match = "EMCP_%-32001.*refused key %[redacted%]", reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run E", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "E-1").card.status, r.stdout)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("refused key [redacted]", log, 1, true)
    for what, text in pairs { stdout = r.stdout, stderr = r.stderr, log = log } do
      assert.is_nil(text:find(KEY, 1, true), what)
    end
    assert.is_nil(H.store_file_holding(dir, KEY))
  end)
end)
