-- orket.mcp.client says what went wrong with a server, not a symptom of it: an answer whose
-- id is the request's as a string ("1" for 1) is refused at once, naming the ids, rather than
-- waited for until a timeout; a refused tool name cut at 64 bytes is marked cut; a stdio
-- server whose program or script lies outside its read_only gets a hint naming the setting.
local H = require "tests.helpers"
local task = require "orket.task"
local client = require "orket.mcp.client"
local manager = require "orket.mcp.manager"

-- A sanitizer build of orket (the test server here) reserves terabytes of shadow memory,
-- which no data limit allows: under one, the server runs without it.
local LIMITS = H.BIN:find("asan", 1, true) and { cpu_seconds = 600, memory = 0 } or nil
if LIMITS then client.LIMITS = LIMITS end

local function in_task(fn) local ok, err = task.spawn(fn):join() assert(ok, err) end

-- A stdio server in Lua, run by the orket binary: it answers every request, the ones whose
-- method is in retyped with the id as a string ("1" where 1 was sent).
local SERVER = [[
local cjson = require "cjson"
local retyped = {}
for m in (arg[1] or ""):gmatch("[^,]+") do retyped[m] = true end
for line in io.lines() do
  local m = cjson.decode(line)
  local r
  if m.method == "initialize" then
    r = { protocolVersion = "2025-11-25", capabilities = { tools = {} }, serverInfo = { name = "s", version = "1" } }
  elseif m.method == "tools/list" then
    r = { tools = { { name = "echo", inputSchema = { type = "object" } } } }
  elseif m.method == "tools/call" then
    r = { content = { { type = "text", text = "called" } } }
  end
  if r and m.id then
    local id = retyped[m.method] and tostring(math.tointeger(m.id)) or m.id
    io.stdout:write(cjson.encode { jsonrpc = "2.0", id = id, result = r }, "\n")
    io.stdout:flush()
  end
end
]]

local function server_file(dir)
  H.write(dir .. "/server.lua", SERVER)
  return dir .. "/server.lua"
end

-- timeout_ms is long: the refusal must come with the answer, not at the timeout
local function spec(dir, retyped)
  return { name = "s", transport = "stdio", command = { H.BIN, "lua", server_file(dir), retyped },
    read_only = { H.ROOT, dir }, timeout_ms = 60000 }
end

describe("orket.mcp.client, given an answer whose id is the request's as a string", function()
  after_each(H.cleanup)

  it("refuses it at once, naming both ids, and logs the stray id as a protocol error", function()
    in_task(function()
      local dir = H.tmpdir()
      local logs = {}
      local c = client.new(spec(dir, "initialize"), { log = function(f) logs[#logs + 1] = f end })
      local ok, err, code = c:start()
      assert.is_nil(ok)
      assert.equal("EPROTO", code, err)
      assert.equal('mcp.s: initialize: the server answered request 1 with the id "1" (a string); JSON-RPC 2.0 '
        .. "requires the id as sent (1, a number), so the answer is refused", err)
      assert.equal("closed", c.state)
      local said
      for _, f in ipairs(logs) do if f.event == "mcp_protocol_error" then said = f.message end end
      assert.equal('a response to id "1" (a string), where request 1 (a number) waits', said)
    end)
  end)

  it("fails the tool call it answers at once, and the connection stays", function()
    in_task(function()
      local dir = H.tmpdir()
      local c = client.new(spec(dir, "tools/call"), { log = function() end })
      local ok, err = c:start()
      assert.is_true(ok, err)
      local r = c:call("echo", {})
      assert.is_false(r.ok)
      assert.equal("EPROTO", r.code, r.error)
      assert.matches('^mcp%.s: tools/call: the server answered request %d+ with the id "%d+" %(a string%)', r.error)
      assert.equal("ready", c.state)
      c:close()
    end)
  end)

  it("over HTTP too: said as it is, not as an answer without a response", function()
    local body = '{"jsonrpc":"2.0","id":"1","result":{"protocolVersion":"2025-11-25","capabilities":{}}}'
    local srv, base = H.raw_http(function()
      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body
        .. "\r\nConnection: close\r\n\r\n" .. body
    end)
    local url = base .. "/mcp"
    in_task(function()
      local c = client.new({ name = "hh", transport = "http", url = url, timeout_ms = 60000 }, { log = function() end })
      local ok, err, code = c:start()
      assert.is_nil(ok)
      assert.equal("EPROTO", code, err)
      assert.equal('mcp.hh: initialize: the server answered request 1 with the id "1" (a string); JSON-RPC 2.0 '
        .. "requires the id as sent (1, a number), so the answer is refused", err)
    end)
    srv:close()
  end)

  it("leaves an answer to an id never sent a protocol error only (the request still waits)", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" }, timeout_ms = 60000 }
    local logs = {}
    c.log = function(f) logs[#logs + 1] = f end
    c._write = function() return true end
    local t = task.spawn(function() return c:request("tools/list") end)
    -- "2" and "01" are no request's id as a string: 1 is the one waiting
    c:_line('{"jsonrpc":"2.0","id":"2","result":{}}')
    c:_line('{"jsonrpc":"2.0","id":"01","result":{}}')
    assert.is_not_nil(c.pending[1])
    assert.equal(2, #logs)
    assert.matches("which was never sent or already ended", logs[1].message, 1, true)
    c:_line('{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}')
    local ok, r = t:join()
    assert.is_true(ok)
    assert.same({ tools = {} }, r)
  end)
end)

describe("orket.mcp.client's refused tool names", function()
  it("mark a name cut at 64 bytes as cut, with its whole length", function()
    local long = string.rep("a", 100)
    local _, refused = client.tools_of { { name = long, inputSchema = { type = "object" } },
      { name = string.rep("b", 64), inputSchema = { type = "object" } },
      { name = string.rep("c", 65), inputSchema = { type = "object" } },
      { name = string.rep("\1", 70), inputSchema = { type = "object" } } }
    assert.equal(string.rep("a", 64) .. "... (100 bytes)", refused[1].name)
    assert.equal(string.rep("c", 64) .. "... (65 bytes)", refused[2].name)
    -- escaped, then marked: the mark is never taken for the name's own text
    assert.equal(string.rep("\\x01", 64) .. "... (70 bytes)", refused[3].name)
    assert.equal(3, #refused) -- 64 bytes of b are a name
    -- an entry that is not an object, shown as JSON: cut on a character's start, marked
    _, refused = client.tools_of { string.rep("\195\169", 40) }
    assert.equal('"' .. string.rep("\195\169", 31) .. "... (82 bytes)", refused[1].name)
  end)
end)

describe("orket.mcp.client's start of a stdio server outside its view", function()
  after_each(H.cleanup)

  local function view_offered()
    local p = require("orket.c.proc").probe()
    return p.view or p.landlock
  end

  it("names the path outside read_only and the setting to change", function()
    if not view_offered() then return pending("the kernel offers neither the view nor Landlock here: the server sees every file") end
    local dir = H.tmpdir()
    local script = server_file(dir)
    local s = spec(dir, "")
    s.read_only = { H.ROOT } -- the script's directory left out
    in_task(function()
      local c = client.new(s, { log = function() end })
      local ok, err, code = c:start()
      assert.is_nil(ok)
      assert.equal("EDOWN", code, err)
      assert.matches("^mcp%.s: initialize: the server exited %(status %d+%): ", err)
      assert.matches("; " .. script .. " is outside what the server sees of this machine (the system's directories and "
        .. 'its read_only): add "' .. dir .. '" to mcp.servers.s.read_only in orket.lua (docs/mcp.md)', err, 1, true)
      assert.equal(err, "mcp.s: initialize: " .. c.why) -- what orket mcp list says
    end)
    -- the program itself: it could not be run
    local prog = dir .. "/bin/server"
    os.execute("mkdir -p " .. H.quote(dir .. "/bin") .. " && cp " .. H.quote(H.BIN) .. " " .. H.quote(prog))
    in_task(function()
      local c = client.new({ name = "p", transport = "stdio", command = { prog, "lua", "x.lua" }, read_only = { H.ROOT },
        timeout_ms = 60000 }, { log = function() end })
      local ok, err = c:start()
      assert.is_nil(ok)
      assert.matches("^mcp%.p: initialize: cannot run ", err)
      assert.matches('add "' .. dir .. '/bin" to mcp.servers.p.read_only', err, 1, true)
    end)
  end)

  -- The server runs in a directory of its own, so a script named relative to the project
  -- was never found there; the server's "no such file" was all that was said.
  it("names a relative script found in the project's folder, with the absolute path to give", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/srv"))
    H.write(dir .. "/srv/server.sh", "echo never run\n")
    local path = require("luv").fs_realpath(dir .. "/srv/server.sh")
    local function started(read_only)
      local err
      in_task(function()
        local c = client.new({ name = "r", transport = "stdio", command = { "/bin/sh", "srv/server.sh" },
          read_only = read_only, timeout_ms = 60000 }, { log = function() end, project_dir = dir })
        local ok
        ok, err = c:start()
        assert.is_nil(ok)
      end)
      return err
    end
    local err = started(nil)
    assert.matches("^mcp%.r: initialize: the server exited %(status %d+%)", err)
    assert.matches('; srv/server.sh is a relative path, and the server runs in a directory of its own, where there is '
      .. 'no such file: give it as "' .. path .. '" in mcp.servers.r.command, and add "' .. path:match("^(.+)/")
      .. '" to its read_only (docs/mcp.md)', err, 1, true)
    -- its folder already in read_only: the path alone
    err = started({ (path:match("^(.+)/")) })
    assert.matches('give it as "' .. path .. '" in mcp.servers.r.command (docs/mcp.md)', err, 1, true)
    -- not in the project either: the command's own mistake, no hint
    assert.equal("", client.new({ name = "n", transport = "stdio", command = { "/bin/sh", "srv/none.sh" } },
      { project_dir = dir }):_view_hint())
  end)

  it("gives no hint when the paths are in its view, and none for a server that ran", function()
    local dir = H.tmpdir()
    server_file(dir)
    -- a shell script, not orket itself: a sanitizer build cannot run confined (LeakSanitizer
    -- under the helper's ptrace-like limits), and its exit would not be the script's
    H.write(dir .. "/exits.sh", "exit 3\n")
    in_task(function()
      local c = client.new({ name = "e", transport = "stdio", command = { "/bin/sh", dir .. "/exits.sh" },
        read_only = { dir }, timeout_ms = 60000 }, { log = function() end })
      local ok, err = c:start()
      assert.is_nil(ok)
      assert.equal("mcp.e: initialize: the server exited (status 3)", err)
    end)
    -- a path of the command that does not exist here is the command's own mistake
    assert.equal("", client.new({ name = "n", transport = "stdio", command = { "python3", dir .. "/none.py" } }):_view_hint())
    assert.equal("", client.new({ name = "n", transport = "stdio", command = { "/usr/bin/env", "x" } }):_view_hint())
  end)

  it("is said by orket mcp list's probe, as the server's reason for being down", function()
    if not view_offered() then return pending("the kernel offers neither the view nor Landlock here: the server sees every file") end
    local dir = H.tmpdir()
    local script = server_file(dir)
    local status = assert(manager.probe { names = { "s" }, servers = { s = { name = "s", transport = "stdio",
      command = { H.BIN, "lua", script }, read_only = { H.ROOT }, timeout_ms = 60000 } } })
    assert.equal(1, #status)
    assert.matches('add "' .. dir .. '" to mcp.servers.s.read_only in orket.lua', status[1].why, 1, true)
  end)
end)

describe("orket.mcp.manager's unavailable calls", function()
  after_each(H.cleanup)

  -- the reason a server is down reaches the model cut at 300 bytes: marked as cut
  it("mark the server's reason cut, with its whole length", function()
    local prog = "/nonexistent/" .. string.rep("d", 400)
    local m = manager.new { names = { "x" }, servers = { x = { name = "x", transport = "stdio", command = { prog },
      timeout_ms = 60000 } } }
    in_task(function()
      m:start()
      local r = m:call("x__t", {})
      assert.equal("EUNAVAILABLE", r.code)
      local why = m:status()[1].why
      assert.is_true(#why > 300, why)
      assert.matches("(" .. require("orket.inert").clip(why, 300) .. ")", r.error, 1, true)
      assert.matches("... (" .. #why .. " bytes))", r.error, 1, true)
      m:close()
    end)
  end)
end)

describe("orket.settings.mcp's command", function()
  -- its example names the script by its absolute path: a server runs in a directory of its
  -- own, where a relative "server.js" is missing
  it("is refused when it is no argv array, with an example whose script is absolute", function()
    local ok, err = pcall(require("orket.settings.mcp").section, { servers = { files = { command = {} } } })
    assert.is_false(ok)
    assert.equal('orket.lua: mcp.servers.files.command: must be an argv array, e.g. {"node", "/opt/mcp/server.js"} '
      .. "(the server runs in a directory of its own: a script by its absolute path)", err.settings_error)
  end)
end)

describe("orket.c.proc.system_dirs", function()
  -- the view's own list (core/confine.c), which the read_only hint names: one list, in C
  it("lists the system's directories every confined view holds", function()
    local dirs = require("orket.c.proc").system_dirs()
    assert.equal("/usr", dirs[1])
    for _, d in ipairs { "/bin", "/sbin", "/lib", "/lib64" } do
      local found = false
      for _, x in ipairs(dirs) do found = found or x == d end
      assert.is_true(found, d)
    end
  end)
end)
