-- Orket's MCP client end to end: a scripted team uses the published reference server
-- (@modelcontextprotocol/server-everything from npm, tests.npm) through orket.lua's mcp
-- section, confined like agent code, to a done card; `orket mcp list` shows it. Skipped, with
-- the reason, only when npm cannot install the server. Also a misbehaving stdio
-- server (tests/mcp/hostile_server.lua) whose error quotes the secret it was given.
local H = require "tests.helpers"
local F = require "tests.fixtures"
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

  -- the key is given as secret "HK" (ORKET_SECRET_HK); the server quotes it in an error and
  -- in a successful result (whoami), and neither reaches the model, the journal or the log
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
mcp = { servers = { hostile = { command = { %q, "lua", %q, "good" }, read_only = { %q }, env = { HOSTILE_KEY = secret "HK" } } } }
]], bin, H.ROOT .. "/tests/mcp/hostile_server.lua", H.ROOT))
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
    call("hostile__ok", { m = "whoami" }) } } },
  { role = "coder", match = "key=%[redacted%]", reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir, env = { ORKET_SECRET_HK = KEY } }).status)
    local r = H.orket("run E", { cwd = dir, env = { ORKET_SECRET_HK = KEY } })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "E-1").card.status, r.stdout)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("refused key [redacted]", log, 1, true)
    assert.matches("key=[redacted]", log, 1, true)
    for what, text in pairs { stdout = r.stdout, stderr = r.stderr, log = log } do
      assert.is_nil(text:find(KEY, 1, true), what)
    end
    assert.is_nil(H.store_file_holding(dir, KEY))
  end)

  -- a server listing 600 tools in one page: 256 kept, 256 refused, the rest never read. The
  -- list printed 256 lines of refusals and nothing of the 88 tools not read; a server whose
  -- command cannot be run said only "the server exited (status 127)"
  it("orket mcp list says a listing cut short in one line each, and a command that cannot be run", function()
    local dir = H.tmpdir()
    local bin, why = F.mcp_lua_server(dir, "many", { tools =
      "(function() local t = {} for i = 1, 600 do t[i] = { name = 't' .. i, inputSchema = { type = 'object' } } end return t end)()" })
    if not bin then return pending(why) end
    H.write(dir .. "/orket.lua", string.format([[
name = "mcpmany"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
mcp = { servers = {
  many = { command = { %q, "lua", %q }, read_only = { %q, %q } },
  typo = { command = { "orket-mcp-no-such-server", "x" } },
} }
]], bin, dir .. "/srv/many.lua", dir .. "/srv", H.ROOT))
    H.write(dir .. "/script.lua", "return { rules = {} }\n")
    local l = H.orket("mcp list", { cwd = dir })
    assert.equal(1, l.status, l.stdout) -- typo is down
    assert.matches("many             stdio  ready, 256 tools\n", l.stdout, 1, true)
    assert.matches("\n  refused 256 more tools (t257 to t512): more than 256 tools\n", l.stdout, 1, true)
    assert.is_nil(l.stdout:find("refused t300", 1, true), l.stdout)
    assert.matches("\n  tools/list stopped after 1 page: more than 512 tools; the listing is the 512 tools read before that, "
      .. "any later ones are left out\n", l.stdout, 1, true)
    assert.matches("typo             stdio  down: cannot run orket-mcp-no-such-server: no such file or directory (ENOENT)\n", l.stdout, 1, true)
    local j = cjson.decode(H.orket("mcp list --json", { cwd = dir }).stdout)
    local many = j.servers[1].name == "many" and j.servers[1] or j.servers[2]
    assert.equal(256, #many.refused)
    assert.matches("^tools/list stopped after 1 page: more than 512 tools", many.listing)
  end)

  -- a role naming a tool the server lists but Orket refuses (its schema): validate said only
  -- "no tool named", and nothing of the refusal
  it("orket validate says why a tool a role names is refused, and warns of each refused tool", function()
    local dir = H.tmpdir()
    local bin, why = F.mcp_lua_server(dir, "odd", { tools = "{ { name = 'fine', inputSchema = { type = 'object' } }, "
      .. "{ name = 'bad-one', inputSchema = { type = 'object', properties = { x = { type = 'nonsense' } } } } }" })
    if not bin then return pending(why) end
    os.execute("mkdir -p " .. H.quote(dir .. "/roles"))
    H.write(dir .. "/orket.lua", string.format([[
name = "mcpodd"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = { odd = { command = { %q, "lua", %q }, read_only = { %q, %q } } } }
]], bin, dir .. "/srv/odd.lua", dir .. "/srv", H.ROOT))
    H.write(dir .. "/script.lua", "return { rules = {} }\n")
    H.write(dir .. "/roles/coder.lua", [[
return { intent = "Call the tools.", tools = { "update_issue_status", "odd__fine", "odd__bad_one" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
    local v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status, v.stdout)
    assert.matches('roles/coder.lua:1: tools[3]: no tool named "odd__bad_one"; the MCP server odd lists bad-one, but it '
      .. "is refused: inputSchema.properties.x.type: unknown type 'nonsense'\n", v.stdout, 1, true)
    assert.matches("warning: orket.lua:%d+: mcp.servers.odd: its tool bad%-one is refused: inputSchema%.properties%.x%.type",
      v.stdout)
    assert.is_nil(v.stdout:find("odd__fine", 1, true), v.stdout)
  end)

  it("a name two servers' tools share is refused in both and said everywhere; a server down at the start is EUNAVAILABLE", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
    local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
    local exe = io.open(bin, "rb")
    if not exe then return pending("the server fixture needs the release build, " .. bin .. " (make)") end
    exe:close()
    local function srv(mode)
      return string.format("{ command = { %q, \"lua\", %q, %q }, read_only = { %q } }", bin,
        H.ROOT .. "/tests/mcp/hostile_server.lua", mode, H.ROOT)
    end
    -- a's _b and a_'s b are both a___b; c lists a name with a newline; down never starts
    H.write(dir .. "/orket.lua", string.format([[
name = "mcpnames"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = {
  a = %s,
  a_ = %s,
  c = %s,
  down = { command = { "/nonexistent/server" } },
} }
]], srv("tool=_b"), srv("tool=b"), srv("tool=x\\ny")))
    H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Names", "issues": [ { "id": "E-1", "summary": "Call", '
      .. '"seat": "senior_developer" } ] }')
    H.write(dir .. "/roles/coder.lua", [[
return { intent = "Call the tools, then hand in.", tools = { "update_issue_status", "a___b", "down__x" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("a___b", { m = "x" }) } } },
  { role = "coder", match = "TOOL_UNKNOWN", reply = { tool_calls = { call("down__x", {}) } } },
  { role = "coder", match = "EUNAVAILABLE.*the MCP server down is down.*orket mcp list", reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    -- mcp list: both refused, each naming the other; the newline shown escaped, on its line
    local l = H.orket("mcp list", { cwd = dir })
    assert.equal(1, l.status, l.stdout) -- down is down
    assert.matches("\n  refused _b: its Orket name a___b is also a_'s tool b", l.stdout, 1, true)
    assert.matches("\n  refused b: its Orket name a___b is also a's tool _b", l.stdout, 1, true)
    assert.matches("\n  refused x\\ny: the name must be", l.stdout, 1, true)
    assert.is_nil(l.stdout:find("\n  a___b\n", 1, true), l.stdout)
    assert.is_nil(l.stdout:find("\ny", 1, true), l.stdout) -- no line of the server's making
    -- validate warns of both, and of the pair of names
    local v = H.orket("validate", { cwd = dir })
    assert.matches("warning: orket.lua:%d+: mcp.servers.a: its tool _b is refused: its Orket name a___b", v.stdout)
    assert.matches("warning: orket.lua:%d+: mcp.servers.a_: its tool b is refused", v.stdout)
    assert.matches("warning: orket.lua:%d+: mcp.servers.a_: its tools' Orket names", v.stdout)
    -- a run: a___b reaches neither server; down's tool is EUNAVAILABLE, with the MCP remedy
    local r = H.orket("run E --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "E-1").card.status, r.stdout)
    assert.matches('"event":"mcp_tool_refused"[^\n]*"server":"a_"', r.stdout)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.is_nil(log:find("got x", 1, true), log) -- no server answered a___b
  end)

  it("a stdio server's scratch dir an Orket killed outright left is removed by the next Orket's start", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
    local exe = io.open(bin, "rb")
    if not exe then return pending("the server fixture needs the release build, " .. bin .. " (make)") end
    exe:close()
    local function config(mode)
      H.write(dir .. "/orket.lua", string.format([[
name = "mcpsweep"
mcp = { servers = { h = { command = { %q, "lua", %q, %q }, read_only = { %q }, timeout_ms = 60000 } } }
]], bin, H.ROOT .. "/tests/mcp/hostile_server.lua", mode, H.ROOT))
    end
    -- the server never answers its listing: mcp list waits with its scratch dir made
    config("listnever")
    os.execute(string.format("cd %s && { %s mcp list >out 2>err & echo $! >pid; wait $!; echo $? >rc; } 2>/dev/null &",
      H.quote(dir), H.quote(H.BIN)))
    finally(function() H.end_started(dir, "pid", "rc", true) end)
    local pid = H.wait_for(function() return tonumber((H.read(dir .. "/pid") or ""):match("^%d+")) end, "mcp list's pid")
    local function left()
      local d = uv.fs_scandir("/tmp")
      while d do
        local name = uv.fs_scandir_next(d)
        if not name then return nil end
        if name:match("^orket%-mcp%-" .. pid .. "%-%d+%-") then return "/tmp/" .. name end
      end
    end
    local scratch = H.wait_for(left, "the server's scratch dir")
    H.end_started(dir, "pid", "rc") -- SIGKILL: nothing of its own removes it
    -- (the test pool runs other files at once, and an Orket of theirs that starts a server in
    -- this window sweeps it first, by the same rule: then this run shows only that the next
    -- start copes; whenever nothing raced, as alone, it shows the sweep itself)
    if uv.fs_stat(scratch) == nil then print("  note: another test's Orket swept " .. scratch .. " first") end
    -- the next Orket that starts a server removes it: its process is gone
    config("good")
    local r = H.orket("mcp list", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.is_nil(uv.fs_stat(scratch), scratch .. " is still there")
  end)

  it("a stdio server's scratch dir is removed too when its killed Orket is a zombie its parent has not reaped", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
    local exe = io.open(bin, "rb")
    if not exe then return pending("the server fixture needs the release build, " .. bin .. " (make)") end
    exe:close()
    local function config(mode)
      H.write(dir .. "/orket.lua", string.format([[
name = "mcpzombie"
mcp = { servers = { h = { command = { %q, "lua", %q, %q }, read_only = { %q }, timeout_ms = 60000 } } }
]], bin, H.ROOT .. "/tests/mcp/hostile_server.lua", mode, H.ROOT))
    end
    config("listnever")
    -- its parent becomes sleep, which never reaps it: killed, it stays a zombie
    local inner = string.format("echo $$ >holder; %s mcp list >out 2>err & echo $! >pid; exec sleep 300", H.quote(H.BIN))
    os.execute(string.format("cd %s && { sh -c %s & } >/dev/null 2>&1", H.quote(dir), H.quote(inner)))
    local function num(f) return tonumber((H.read(dir .. "/" .. f) or ""):match("^%d+")) end
    local pid = H.wait_for(function() return num("pid") end, "mcp list's pid")
    local holder = H.wait_for(function() return num("holder") end, "its parent's pid")
    finally(function()
      os.execute("kill -KILL " .. pid .. " " .. holder .. " 2>/dev/null")
    end)
    local function left()
      local d = uv.fs_scandir("/tmp")
      while d do
        local name = uv.fs_scandir_next(d)
        if not name then return nil end
        if name:match("^orket%-mcp%-" .. pid .. "%-%d+%-") then return "/tmp/" .. name end
      end
    end
    local scratch = H.wait_for(left, "the server's scratch dir")
    os.execute("kill -KILL " .. pid)
    H.wait_for(function()
      local f = io.open("/proc/" .. pid .. "/stat")
      local st = f and f:read("a")
      if f then f:close() end
      return st and st:match("^%d+ %b() (%a)") == "Z"
    end, "the killed Orket a zombie")
    assert.truthy(uv.fs_stat(scratch), "left by the killed process")
    config("good")
    local r = H.orket("mcp list", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.is_nil(uv.fs_stat(scratch), scratch .. " is still there")
  end)

  it("orket validate reports every problem of mcp.servers, each with its line, in the file's order", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", [[
name = "mcpbad"
mcp = { servers = {
  zeta = { url = "ftp://x" },
  alpha = { command = "node",
            timeout_ms = -1 },
  mid = { command = { "x" }, env = { ORKET_X = "1" } },
} }
]])
    local first
    for _ = 1, 3 do -- the same every time (it followed hash order)
      local v = H.orket("validate", { cwd = dir })
      assert.equal(1, v.status)
      local got = {}
      for file_line, field in v.stdout:gmatch("(orket%.lua:%d+): (mcp%.servers%.[%w_.]+):") do
        got[#got + 1] = file_line .. " " .. field
      end
      assert.same({ "orket.lua:3 mcp.servers.zeta.url", "orket.lua:4 mcp.servers.alpha.command",
        "orket.lua:5 mcp.servers.alpha.timeout_ms", "orket.lua:6 mcp.servers.mid.env" }, got, v.stdout)
      first = first or v.stdout
      assert.equal(first, v.stdout)
    end
  end)
end)
