-- orket.mcp.client against a misbehaving server (tests/mcp/hostile_server.lua, run under the
-- confinement helper like any stdio server): every misbehaviour is a clear error, nothing
-- hangs, and the connection's process goes with it. Also orket.settings.mcp' checks.
local H = require "tests.helpers"
local task = require "orket.task"
local client = require "orket.mcp.client"
local settings = require "orket.settings"
local cjson = require "cjson.safe"

local SERVER = H.ROOT .. "/tests/mcp/hostile_server.lua"

-- A sanitizer build of orket (the test server here) reserves terabytes of shadow memory,
-- which no data limit allows: under one, the server runs without it.
local LIMITS = H.BIN:find("asan", 1, true) and { cpu_seconds = 600, memory = 0 } or nil
if LIMITS then client.LIMITS = LIMITS end -- every connection of this process, the managers' too

local function in_task(fn) local ok, err = task.spawn(fn):join() assert(ok, err) end

-- getenv: the connection's (a secret "NAME" of env is read through it: ORKET_SECRET_NAME)
local function connect(mode, timeout, env, getenv)
  local logs = {}
  local c = client.new({ name = "h", transport = "stdio", command = { H.BIN, "lua", SERVER, mode },
    read_only = { H.ROOT }, timeout_ms = 10000, env = env }, { cwd = H.tmpdir(), env = getenv,
    log = function(f) logs[#logs + 1] = f end })
  local ok, err, code = c:start()
  c.spec.timeout_ms = timeout or 5000 -- the calls' (starting a confined process takes longer)
  return c, ok, err, code, logs
end

local function alive(pid) return require("luv").kill(pid, 0) == 0 end

describe("orket.mcp.client", function()
  after_each(H.cleanup)

  it("calls a tool and shapes its result; isError is a failed result", function()
    in_task(function()
      local c, ok, err = connect("good")
      assert.is_true(ok, err)
      assert.equal("2025-11-25", c.version)
      assert.equal("ok", c.tools[1].name)
      local r = c:call("ok", { m = "hi" })
      assert.is_true(r.ok)
      assert.equal("got hi", r.result.text)
      assert.equal("hi", r.result.structured.m)
      local e = c:call("ok", { m = "error" })
      assert.is_false(e.ok)
      assert.equal("EMCP_TOOL", e.code)
      assert.equal("it broke", e.error)
      c:close()
    end)
  end)

  it("refuses hostile schemas by name and keeps the rest", function()
    in_task(function()
      local c, ok, err = connect("schemas")
      assert.is_true(ok, err)
      assert.equal(1, #c.tools)
      local why = {}
      for _, r in ipairs(c.refused) do why[r.name] = r.why end
      assert.matches("deeper", why.deep)
      assert.matches("more than 5000 values", why.huge)
      assert.matches("%$ref", why.loop)
      assert.matches("name", why["bad name!"])
      c:close()
    end)
  end)

  it("times out a call that is never answered, and one answered under another id", function()
    in_task(function()
      local c, ok, err = connect("good", 300)
      assert.is_true(ok, err)
      local t0 = require("luv").now()
      local r = c:call("ok", { m = "silent" })
      assert.equal("ETIMEDOUT", r.code)
      assert.matches("no answer in 300 ms", r.error)
      local w = c:call("ok", { m = "wrong_id" })
      assert.equal("ETIMEDOUT", w.code)
      assert.is_true(require("luv").now() - t0 < 3000)
      assert.is_true(c.bad >= 1) -- the stray answer was counted
      c:close()
    end)
  end)

  it("disconnects a server that floods answers to ids it never got", function()
    in_task(function()
      local c, ok, err = connect("good")
      assert.is_true(ok, err)
      local pid = c.pid
      local r = c:call("ok", { m = "flood" })
      assert.is_false(r.ok)
      assert.equal("EDOWN", r.code)
      assert.matches("broke the protocol", r.error)
      assert.equal("closed", c.state)
      H.wait_for(function() return not alive(pid) end, "the server's process to end", 500)
    end)
  end)

  it("fails a start on malformed JSON-RPC with the reason", function()
    in_task(function()
      local _, ok, err, code = connect("garbage")
      assert.is_nil(ok)
      assert.equal("EDOWN", code)
      assert.matches("broke the protocol", err)
    end)
  end)

  it("refuses a 50 MB result without holding it", function()
    in_task(function()
      local c, ok, err = connect("good", 20000)
      assert.is_true(ok, err)
      local r = c:call("ok", { m = "big" })
      assert.equal("ETOOLARGE", r.code)
      assert.matches("larger than", r.error)
      -- the server took the call: said as EDOWN says a lost session's, so a write is not blindly sent again
      assert.matches("it had taken the request, so whether it ran is unknown; check its effect before calling it again", r.error, 1, true)
      -- still usable afterwards
      assert.equal("got again", c:call("ok", { m = "again" }).result.text)
      c:close()
    end)
  end)

  it("reads past a flood of notifications, and reports a server that dies", function()
    in_task(function()
      local c, ok, err = connect("good")
      assert.is_true(ok, err)
      assert.equal("after the flood", c:call("ok", { m = "notify" }).result.text)
      local r = c:call("ok", { m = "die" })
      assert.equal("EDOWN", r.code)
      assert.matches("exited", r.error)
    end)
  end)

  it("answers a server's requests within bounds and disconnects one that floods them", function()
    in_task(function()
      local c, ok, err = connect("good")
      assert.is_true(ok, err)
      assert.equal("after the pings", c:call("ok", { m = "pings" }).result.text) -- a few are answered
      assert.equal(0, c.bad)
      local pid = c.pid
      local r = c:call("ok", { m = "pingflood" })
      assert.equal("EDOWN", r.code)
      assert.matches("broke the protocol", r.error)
      assert.matches("requests from the server", r.error)
      H.wait_for(function() return not alive(pid) end, "the server's process to end", 500)
    end)
  end)

  it("over HTTP, answers a stream of the server's requests with a few connections at once, then disconnects it", function()
    local uv = require "luv"
    local open, most, posts = 0, 0, 0
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", 0))
    local port = srv:getsockname().port
    -- initialize: an event stream of 2000 pings, then the result; any other POST (the
    -- answers) is held 200 ms before its 202, so that answers sent together overlap
    srv:listen(64, function()
      local sock = uv.new_tcp()
      srv:accept(sock)
      local buf = ""
      sock:read_start(function(_, data)
        if not data then sock:close() return end
        buf = buf .. data
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local len = tonumber(buf:sub(1, head_end):lower():match("content%-length:%s*(%d+)") or "0")
        if #buf < head_end + 3 + len then return end
        sock:read_stop()
        local body = buf:sub(head_end + 4, head_end + 3 + len)
        if body:find('"initialize"', 1, true) then
          local ev = {}
          for i = 1, 2000 do ev[i] = 'data: {"jsonrpc":"2.0","id":"p' .. i .. '","method":"ping"}\n\n' end
          ev[#ev + 1] = 'data: {"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}\n\n'
          local text = table.concat(ev)
          sock:write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " .. #text
            .. "\r\nConnection: close\r\n\r\n" .. text, function() sock:close() end)
        else
          posts, open = posts + 1, open + 1
          most = math.max(most, open)
          local t = uv.new_timer()
          t:start(200, 0, function()
            t:close()
            open = open - 1
            sock:write("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", function() sock:close() end)
          end)
        end
      end)
    end)
    in_task(function()
      local c = client.new({ name = "hh", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 5000 },
        { log = function() end })
      local ok, err = c:start()
      assert.is_nil(ok)
      assert.matches("broke the protocol", err)
      assert.is_true(most <= client.MAX_ANSWERS_OUT, "answers at once: " .. most)
      assert.is_true(posts <= client.SERVER_REQUESTS_PER_S, "answers: " .. posts)
      H.wait_for(function() require("orket.c.runtime").sleep(20) return open == 0 end, "the answers to end", 200)
    end)
    srv:close()
  end)

  it("over HTTP, says what came instead of an answer to initialize: a redirect, a page, no answer", function()
    local answer
    local srv, here = H.raw_http(function() return answer end)
    local url = here .. "/mcp"
    local page = "<html><body>Sign in</body></html>"
    local function redirect(to, said)
      return { "HTTP/1.1 307 Temporary Redirect\r\nLocation: " .. to .. "\r\nContent-Length: 0\r\n",
        "mcp.hh: initialize: HTTP 307: a redirect to " .. said .. ", not followed (if that is the server, its url)", "EHTTP" }
    end
    for _, case in ipairs {
      -- by its origin only: a path, query or user info may carry the key
      redirect("https://mcp.example/mcp/ak-9f8e7d6c?api_key=abcdef0123", "https://mcp.example"),
      redirect("https://u:pw@mcp.example:8443/k#frag", "https://mcp.example:8443"),
      redirect(here .. "/mcp/?api_key=abcdef0123", "another path on this server (" .. here .. ")"),
      redirect("/login?key=abcdef0123", "another path on this server (" .. here .. ")"),
      -- relative, a URL in its query: no scheme of its own, nothing of it shown
      redirect("/mcp/ak-9f8e7d6c?next=https://x.example/cb", "another path on this server (" .. here .. ")"),
      redirect("https://u:p@ssw0rd@mcp.example/k", "https://mcp.example"),
      redirect("//other.example/k?api_key=abcdef0123", "another host"),
      { "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: " .. #page .. "\r\n",
        "mcp.hh: initialize: HTTP 200 with Content-Type text/html; charset=utf-8, not application/json or text/event-stream", "EPROTO", page },
      -- JSON, but no answer in it: initialize said once
      { "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n",
        "mcp.hh: initialize: the server answered without a response", "EPROTO", "{}" },
    } do
      answer = case[1] .. "Connection: close\r\n\r\n" .. (case[4] or "")
      in_task(function()
        local c = client.new({ name = "hh", transport = "http", url = url, timeout_ms = 5000 }, { log = function() end })
        local ok, err, code = c:start()
        assert.is_nil(ok)
        assert.equal(case[2], err)
        assert.equal(case[3], code)
      end)
    end
    srv:close()
  end)

  it("over HTTP, reads a JSON body whatever its Content-Type, and logs nothing for a notification's answer", function()
    local uv = require "luv"
    local seen = {}
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", 0))
    srv:listen(8, function()
      local sock = uv.new_tcp()
      srv:accept(sock)
      local buf = ""
      sock:read_start(function(_, data)
        if not data then sock:close() return end
        buf = buf .. data
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local len = tonumber(buf:sub(1, head_end):lower():match("content%-length:%s*(%d+)") or "0")
        if #buf < head_end + 3 + len then return end
        sock:read_stop()
        local msg = cjson.decode(buf:sub(head_end + 4, head_end + 3 + len))
        seen[#seen + 1] = msg.method
        local ctype, body = "text/plain", "ok" -- a notification's answer: 200, not 202
        -- or JSON that is no message of the protocol (some servers answer every POST so)
        if msg.method == "notifications/cancelled" then ctype, body = "application/json", "{}" end
        if msg.method == "notifications/roots/list_changed" then ctype, body = "application/json", '{"ok":true}' end
        if msg.method == "initialize" then
          body = cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25", capabilities = {} } }
        elseif msg.method == "tools/list" then
          ctype, body = "application/octet-stream", '{"jsonrpc":"2.0","id":' .. msg.id .. ',"result":{"tools":[]}}'
        end
        sock:write("HTTP/1.1 200 OK\r\nContent-Type: " .. ctype .. "\r\nContent-Length: " .. #body
          .. "\r\nConnection: close\r\n\r\n" .. body, function() sock:close() end)
      end)
    end)
    local logged = {}
    in_task(function()
      local c = client.new({ name = "hh", transport = "http", url = "http://127.0.0.1:" .. srv:getsockname().port .. "/mcp",
        timeout_ms = 5000 }, { log = function(f) logged[#logged + 1] = f.event .. ": " .. tostring(f.message) end })
      local ok, err = c:start()
      assert.is_true(ok, err)
      assert.equal(0, #c.tools)
      c:notify("notifications/cancelled", { requestId = 9, reason = "test" })
      c:notify("notifications/roots/list_changed")
      H.wait_for(function() require("orket.c.runtime").sleep(20) return #seen >= 5 end, "the notifications", 200)
      require("orket.c.runtime").sleep(200) -- their answers read
      c:close()
    end)
    srv:close()
    assert.same({ "initialize", "notifications/initialized", "tools/list", "notifications/cancelled",
      "notifications/roots/list_changed" }, seen)
    assert.same({}, logged)
  end)

  -- A Streamable HTTP server in this process: initialize and tools/list answered as JSON, any
  -- tools/call with the event stream body(m) gives for the call's message m
  local function sse_server(body)
    local uv = require "luv"
    -- the client hangs up while this writes: that must not end the test's process
    local sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    local srv, socks = uv.new_tcp(), {}
    assert(srv:bind("127.0.0.1", 0))
    srv:listen(64, function()
      local sock = uv.new_tcp()
      srv:accept(sock)
      socks[#socks + 1] = sock
      local buf = ""
      sock:read_start(function(_, data)
        if not data then sock:close() return end
        buf = buf .. data
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local len = tonumber(buf:sub(1, head_end):lower():match("content%-length:%s*(%d+)") or "0")
        if #buf < head_end + 3 + len then return end
        sock:read_stop()
        local msg = require("cjson").decode(buf:sub(head_end + 4, head_end + 3 + len))
        local function send(head, text)
          -- a client that stopped reading closes its end: the write then fails, the socket goes
          sock:write(head .. "Connection: close\r\n\r\n" .. text, function() if not sock:is_closing() then sock:close() end end)
        end
        local function json(result)
          send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
            require("cjson").encode { jsonrpc = "2.0", id = msg.id, result = result })
        end
        if msg.id == nil then
          send("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n", "")
        elseif msg.method == "initialize" then
          json { protocolVersion = "2025-11-25", capabilities = { tools = {} }, serverInfo = { name = "s", version = "1" } }
        elseif msg.method == "tools/list" then
          json { tools = { { name = "ok", inputSchema = { type = "object" } } } }
        else
          local b = body(msg.params.arguments.m, msg.id)
          if type(b) == "string" then
            send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", b)
          else -- a function: given a write(text) -> false once the client is gone, it streams
            sock:write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            b(function(text)
              if sock:is_closing() then return false end
              sock:write(text, function(e) if e and not sock:is_closing() then sock:close() end end)
              return true
            end)
            sock:read_start(function(_, d) if not d and not sock:is_closing() then sock:close() end end)
          end
        end
      end)
    end)
    -- a write still queued on a socket is dropped with it (not left to fail after the test)
    return { close = function()
      for _, sock in ipairs(socks) do if not sock:is_closing() then sock:close() end end
      srv:close()
      sigpipe:close()
    end }, srv:getsockname().port
  end

  it("over HTTP, refuses an event stream's event past 4 MiB at once, without holding the loop, and reads one under it", function()
    local uv = require "luv"
    local MB = 1024 * 1024
    local srv, port = sse_server(function(m, id)
      if m == "huge" then return "data: " .. string.rep("x", 8 * MB) end -- never ended by a blank line
      -- legal, just under the cap: one event of 3.5 MiB split over data lines
      local text = string.rep("y", math.floor(3.5 * MB))
      return ": a comment\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":" .. id
        .. ",\r\ndata: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" .. text .. "\"}]}}\r\n\r\n"
    end)
    in_task(function()
      local c = client.new({ name = "big", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 20000 },
        { log = function() end })
      local ok, err = c:start()
      assert.is_true(ok, err)
      -- another timer ticks while the call is read: the loop is never held for long
      local ticks, longest, last = 0, 0, uv.hrtime()
      local t = uv.new_timer()
      t:start(10, 10, function()
        local at = uv.hrtime()
        longest, last, ticks = math.max(longest, (at - last) / 1e6), at, ticks + 1
      end)
      local t0, c0 = uv.hrtime(), os.clock()
      local r = c:call("ok", { m = "huge" })
      local wall, cpu = (uv.hrtime() - t0) / 1e9, os.clock() - c0
      assert.is_false(r.ok)
      assert.equal("ETOOLARGE", r.code)
      assert.equal("mcp.big: the server sent a message larger than 4194304 bytes, not read: it had taken the request, "
        .. "so whether it ran is unknown; check its effect before calling it again", r.error)
      -- the old reading re-scanned what it held for every chunk: about a minute of CPU, the
      -- loop held throughout. Bounds an order of magnitude under that, and wide of what a
      -- loaded machine or a sanitizer build takes (a 606 ms gap was seen under both)
      assert.is_true(wall < 10 and cpu < 2, string.format("%.2f s wall, %.2f s CPU", wall, cpu))
      assert.is_true(longest < 3000, string.format("the loop was held %.0f ms", longest))
      -- a large legal event still reads, in one piece
      local g = c:call("ok", { m = "big" })
      t:stop()
      t:close()
      assert.is_true(g.ok, g.error)
      assert.equal(string.rep("y", 100), g.result.text:sub(1, 100)) -- shown capped (64 KiB)
      assert.is_true(ticks > 0)
      assert.equal("ready", c.state)
      c:close()
    end)
    srv:close()
  end)

  it("over HTTP, ends a call at timeout_ms while an event trickles in and never ends", function()
    local uv = require "luv"
    local srv, port = sse_server(function()
      return function(write)
        write("data: ")
        local t = uv.new_timer()
        t:start(0, 5, function()
          if not write(string.rep("z", 8 * 1024)) then t:stop() t:close() end
        end)
      end
    end)
    in_task(function()
      local c = client.new({ name = "slow", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 20000 },
        { log = function() end })
      assert.is_true(c:start())
      c.spec.timeout_ms = 1000
      local t0 = uv.hrtime()
      local r = c:call("ok", { m = "slow" })
      local wall = (uv.hrtime() - t0) / 1e9
      assert.is_false(r.ok)
      -- 8 KiB every 5 ms at most: under the cap after 1 s
      assert.equal("ETIMEDOUT", r.code, r.error)
      -- the call's own 1 s, not the transfer's 20 s (wide of a loaded machine's lateness)
      assert.is_true(wall < 8, string.format("%.2f s", wall))
      c:close()
    end)
    srv:close()
  end)

  it("gives a server env = { NAME = secret \"S\" } from the project's store, masked, or refuses to start", function()
    local KEY = "store-key-8d1e0b"
    local dir = H.tmpdir()
    assert(require("orket.store.secrets").set(dir, "S", KEY, function() return nil end))
    local sec = require "orket.settings.secret"
    local env = { HOSTILE_KEY = { secret = "S" }, OTHER = { secret = "MISSING" } }
    sec.bind_all(env, dir)
    in_task(function()
      local c, ok, err, code = connect("good", nil, { HOSTILE_KEY = env.HOSTILE_KEY })
      assert.is_true(ok, err)
      -- the server was given the value (it quotes it back), and what it says is masked
      local r = c:call("ok", { m = "rpc_error" })
      assert.equal("refused key [redacted]", r.error)
      c:close()
      c, ok, err, code = connect("good", nil, { OTHER = env.OTHER })
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      assert.matches("^mcp%.h: env%.OTHER: no secret named MISSING", err)
    end)
  end)

  -- the server's env given as secret "HK", its value through ORKET_SECRET_HK
  local function secret_env(key)
    return { HOSTILE_KEY = { secret = "HK" } }, function(v)
      if v == "ORKET_SECRET_HK" then return key end
      return os.getenv(v)
    end
  end

  it("reads a JSON-RPC error as EMCP_<code>, with the server's secret masked everywhere", function()
    local KEY = "hostile-key-5f2a9c"
    in_task(function()
      local c, ok, err, _, logs = connect("good", nil, secret_env(KEY))
      assert.is_true(ok, err)
      local r = c:call("ok", { m = "rpc_error" })
      assert.is_false(r.ok)
      -- lua-cjson decodes -32001 as a float: still the server's code, not a protocol error
      assert.equal("EMCP_-32001", r.code)
      assert.equal("refused key [redacted]", r.error)
      assert.equal(0, c.bad)
      local d = c:call("ok", { m = "leak_die" })
      assert.equal("EDOWN", d.code)
      assert.matches("bad key %[redacted%]", d.error)
      assert.is_nil(d.error:find(KEY, 1, true))
      assert.is_nil(c.why:find(KEY, 1, true))
      for _, f in ipairs(logs) do assert.is_nil(tostring(f.message):find(KEY, 1, true)) end
    end)
  end)

  it("masks the secret a server quotes in a successful result: text, structured content, resources", function()
    local KEY = "whoami-key-7c1d40"
    in_task(function()
      local c, ok, err = connect("good", nil, secret_env(KEY))
      assert.is_true(ok, err)
      local r = c:call("ok", { m = "whoami" })
      assert.is_true(r.ok, r.error)
      local enc = cjson.encode(r.result)
      assert.is_nil(enc:find(KEY, 1, true), enc)
      assert.matches("key=[redacted]", r.result.text, 1, true)
      assert.matches('"HOSTILE_KEY": "[redacted]"', r.result.text, 1, true)
      assert.equal("[redacted]", r.result.structured.env.HOSTILE_KEY)
      assert.is_true(r.result.structured["[redacted]"])
      assert.equal("cfg [redacted]", r.result.resources[1].text)
      -- a value written in orket.lua is no secret: a result keeps its words
      assert.equal("warn", r.result.structured.env.LOG)
      c:close()
    end)
  end)

  -- the result was capped first (64 KiB of text, 4096 bytes of an error, 512 of a uri) and
  -- masked after: a secret across the cut kept its prefix (review2 #4)
  it("masks a secret before a cap cuts it, so no prefix of it survives", function()
    local KEY = "whoami-key-7c1d40"
    in_task(function()
      local c, ok, err = connect("good", nil, secret_env(KEY))
      assert.is_true(ok, err)
      for _, part in ipairs { "text", "error", "uri" } do
        local r = c:call("ok", { m = "longleak", part = part })
        local enc = cjson.encode(r)
        assert.is_nil(enc:find("whoami", 1, true), part .. ": " .. enc:sub(-200))
      end
      local r = c:call("ok", { m = "longleak", part = "text" })
      assert.truthy(r.result.text:find("aaaa[redac", 1, true)) -- masked, then cut
      c:close()
    end)
  end)

  it("masks a numeric secret a server sends as a JSON number in structured content", function()
    in_task(function()
      local c, ok, err = connect("good", nil, secret_env("48151623"))
      assert.is_true(ok, err)
      local r = c:call("ok", { m = "pin" })
      assert.is_true(r.ok, r.error)
      assert.equal("pin [redacted]", r.result.text)
      assert.equal("[redacted]", r.result.structured.pin)
      assert.equal("[redacted]", r.result.structured.pins[1])
      assert.equal(7, r.result.structured.other)
      c:close()
    end)
  end)
end)

describe("orket.mcp.client's results", function()
  local cjson = require "cjson"

  it("cap the whole result, however many items carry it, with one note of what was left out", function()
    local function size(r) return #cjson.encode(r) end
    for _, item in ipairs {
      { type = "text", text = "x" }, { type = "image" }, { type = "audio", mimeType = "audio/wav", data = "AAAA" },
      { type = "resource_link", uri = "file:///a/b", name = "b" },
      { type = "resource", resource = { uri = "mem://r", mimeType = "text/plain", text = "hello" } },
    } do
      local content = {}
      for i = 1, 150000 do content[i] = item end
      local r = client.result_of { content = content }
      assert.is_true(r.ok)
      assert.is_true(size(r) < client.RESULT_CAP + 16384, item.type .. ": " .. size(r) .. " bytes")
      assert.matches("%d+ more content items omitted", r.result.text, 1)
    end
    -- a long text is cut with the bytes it lost, the items after it counted
    local r = client.result_of { content = { { type = "text", text = string.rep("y", 100000) }, { type = "text", text = "z" } } }
    assert.matches("%[%.%.%. %d+ more bytes omitted %.%.%.%]", r.result.text)
    assert.matches("1 more content items omitted", r.result.text, 1, true)
    -- what fits is as it was
    local small = client.result_of { content = { { type = "text", text = "a" }, { type = "image", mimeType = "image/png", data = "AA" } } }
    assert.equal("a\n[image content, image/png, 2 bytes of base64: not shown]", small.result.text)
  end)
end)

describe("orket.mcp.client's redaction", function()
  it("masks the values of a server's headers_env variables and secrets, bearer tokens and sk- keys", function()
    local c = client.new({ name = "w", transport = "http", url = "http://127.0.0.1:9/mcp",
      headers_env = { ["X-Api-Key"] = "W_KEY", Authorization = "W_AUTH" } },
      { env = function(v) return ({ W_KEY = "k3y-value-77", W_AUTH = "Token zz9-auth" })[v] end })
    assert.equal("bad [redacted] and [redacted]", c:redact("bad k3y-value-77 and Token zz9-auth"))
    assert.equal("Bearer [redacted] sk-[redacted]", c:redact("Bearer abc.def sk-live123"))
    local s = client.new({ name = "s", transport = "stdio", command = { "x" },
      env = { TOKEN = { secret = "TOK" }, LOG_LEVEL = "warn", PIN = { secret = "PIN" } } },
      { env = function(v) return ({ ORKET_SECRET_TOK = "stdio-secret-1", ORKET_SECRET_PIN = "pw" })[v] end })
    assert.is_true(s:_given())
    assert.equal("got [redacted]", s:redact("got stdio-secret-1"))
    assert.equal("plain words", s:redact("plain words"))
    -- a value written in orket.lua is no secret (masking it would garble every result that
    -- says "warn"); nor is one shorter than 4 bytes (docs/secrets.md)
    assert.equal("warn: pw", s:redact("warn: pw"))
  end)
end)

describe("orket.mcp.manager", function()
  after_each(H.cleanup)

  it("offers SERVER__TOOL, marks the tools unavailable while a dead server restarts, then has them back", function()
    in_task(function()
      local manager = require "orket.mcp.manager"
      local events = {}
      local m = manager.new(assert(require("orket.settings.mcp").section { servers = {
        h = { command = { H.BIN, "lua", SERVER, "good" }, read_only = { H.ROOT }, timeout_ms = 10000 } } }),
        { cwd = H.tmpdir(), log = function(f) events[#events + 1] = f.event end })
      assert.same({}, m:start())
      local d = assert(m:get("h__ok"))
      assert.equal("mcp", d.effect)
      assert.equal("[h] fine", d.spec.description)
      -- the registry the engine sees: the files' tools and these
      local reg = m:wrap(assert(require("orket.tools").load_dirs { H.ROOT .. "/tools" }))
      assert.equal(d, reg:get("h__ok"))
      assert.truthy(reg:get("write_file"))
      assert.equal(2, #reg:specs { "write_file", "h__ok" })
      assert.equal("unknown", (reg:recover("h__ok", {}, {})))
      assert.equal("got x", m:call("h__ok", { m = "x" }).result.text)
      assert.equal("EDOWN", m:call("h__ok", { m = "die" }).code)
      local r = m:call("h__ok", { m = "x" })
      assert.equal("EUNAVAILABLE", r.code)
      assert.matches("the MCP server h is", r.error)
      H.wait_for(function()
        require("orket.c.runtime").sleep(20)
        return m.servers.h.state == "ready"
      end, "the restart", 500)
      assert.equal("got back", m:call("h__ok", { m = "back" }).result.text)
      assert.truthy(table.concat(events, " "):find("mcp_down", 1, true))
      m:close()
      assert.equal("stopped", m:status()[1].state)
    end)
  end)
end)

-- A manager of the servers given as {name = hostile_server MODE or false (one that cannot start)}
local function manager_of(servers, events, timeout_ms)
  local manager = require "orket.mcp.manager"
  local src = {}
  for name, mode in pairs(servers) do
    src[name] = { command = mode and { H.BIN, "lua", SERVER, mode } or { "/nonexistent/server" }, read_only = { H.ROOT },
      timeout_ms = timeout_ms or 10000 }
  end
  return manager.new(assert(require("orket.settings.mcp").section { servers = src }), { cwd = H.tmpdir(),
    log = function(f) if events then events[#events + 1] = f end end })
end

describe("orket.mcp.manager's card processes", function()
  after_each(H.cleanup)

  -- the card's process was started (initialize and a paged tools/list, bounded only by 20
  -- times timeout_ms) before the call's timeout or the turn's wall budget applied at all
  it("counts starting a card's process against the turn's wall budget", function()
    in_task(function()
      local m = manager_of { h = "slowcard" }
      assert.same({}, m:start())
      local dir = H.tmpdir()
      H.write(dir .. "/card.marker", "")
      local t0 = require("luv").now()
      local r = m:call("h__ok", { m = "x" }, 2500, { key = "E-1", cwd = dir })
      local ms = require("luv").now() - t0
      assert.is_false(r.ok, "answered after " .. ms .. " ms")
      assert.equal("ETIMEDOUT", r.code, r.error)
      assert.matches("did not start in E-1's directory within the 2500 ms left of the turn's wall budget", r.error, 1, true)
      assert.matches("wall budget", r.remedy, 1, true)
      assert.is_true(ms < 5000, ms .. " ms")
      m:close()
    end)
  end)

  -- the card's process, which every call of a run goes to, was made without on_notify:
  -- a call that changed the server's tools left the model with the old ones
  it("lists a server's tools again when its card's process says they changed during a call", function()
    in_task(function()
      local m = manager_of { h = "listchange" }
      assert.same({}, m:start())
      assert.is_nil(m:get("h__added"))
      local where = { key = "E-1", cwd = H.tmpdir() }
      local r = m:call("h__ok", { m = "change" }, nil, where)
      assert.is_true(r.ok, r.error)
      assert.truthy(m:get("h__added")) -- before the model's next call
      local again = m:call("h__added", {}, nil, where)
      assert.is_true(again.ok, again.error)
      m:close()
    end)
  end)

  -- a card's process start took its listing as the server's, dropping the tool another
  -- card's running process had just listed: that card's call of it answered ENOENT (review2 #2)
  it("keeps a tool one card's process listed when another card's process starts", function()
    in_task(function()
      local m = manager_of { h = "listchange" }
      assert.same({}, m:start())
      local A, B = { key = "E-1", cwd = H.tmpdir() }, { key = "E-2", cwd = H.tmpdir() }
      assert.is_true(m:call("h__ok", { m = "change" }, nil, A).ok)
      assert.truthy(m:get("h__added"))
      assert.is_true(m:call("h__ok", { m = "x" }, nil, B).ok) -- B's process starts and lists
      assert.truthy(m:get("h__added"))
      local again = m:call("h__added", {}, nil, A)
      assert.is_true(again.ok, again.error)
      m:close()
    end)
  end)

  -- docs/mcp.md: a turn's tools are fixed when it begins; tools a card's process lists again
  -- are offered from the card's next turn (review2 #3)
  it("offers the tools a card's process listed again from the next turn, not within the turn", function()
    in_task(function()
      local m = manager_of { h = "listchange" }
      assert.same({}, m:start())
      local reg = m:wrap { get = function() return nil end, specs = function() return {} end }
      local order = { "h__ok", "h__added" }
      local function names(specs)
        local out = {}
        for _, sp in ipairs(specs) do out[#out + 1] = sp.name end
        return table.concat(out, ",")
      end
      local turn1 = reg:specs(order) -- as Run:turn_job builds job.tool_specs, once a turn
      assert.equal("h__ok", names(turn1))
      local where = { key = "E-1", cwd = H.tmpdir() }
      assert.is_true(m:call("h__ok", { m = "change" }, nil, where).ok)
      assert.equal("h__ok", names(turn1)) -- the turn's requests keep its specs
      m:release("E-1")
      assert.equal("h__ok,h__added", names(reg:specs(order))) -- the next turn's
      m:close()
    end)
  end)

  -- the start and the call shared the call's timeout_ms: a server taking 1.2 s to start and
  -- a tool taking 1.2 s failed the first call of every turn with timeout_ms 2000 (review2 #7)
  it("gives a card's process start its own bounds, not the call's timeout_ms", function()
    in_task(function()
      local m = manager_of({ h = "slowstart" }, nil, 2000)
      assert.same({}, m:start())
      local r = m:call("h__ok", { m = "nap" }, 60000, { key = "E-1", cwd = H.tmpdir() })
      assert.is_true(r.ok, r.error)
      assert.equal("napped", r.result.text)
      m:close()
    end)
  end)

  -- the relisting after a card's call waited up to 20 times timeout_ms with no wall budget
  -- (review2 #8): now at most timeout_ms, once for the list_changed received
  it("bounds the listing again after a card's call by timeout_ms", function()
    in_task(function()
      local events = {}
      local m = manager_of({ h = "changeslow" }, events, 1000)
      assert.same({}, m:start())
      local where = { key = "E-1", cwd = H.tmpdir() }
      local t0 = require("luv").now()
      local r = m:call("h__ok", { m = "change" }, nil, where)
      local ms = require("luv").now() - t0
      assert.is_true(r.ok, r.error)
      assert.is_true(ms < 3000, ms .. " ms") -- its 12 pages take 4.8 s
      -- once per list_changed: the next call does not list again
      t0 = require("luv").now()
      assert.is_true(m:call("h__ok", { m = "x" }, nil, where).ok)
      assert.is_true(require("luv").now() - t0 < 900)
      m:close()
    end)
  end)

  -- release sent SIGTERM and returned at once: the card's files were committed and judged
  -- (orket.engine.progwrites) while its server could still be writing them
  it("returns from release only once the card's process is gone", function()
    in_task(function()
      local uv = require "luv"
      local m = manager_of { h = "plain" }
      assert.same({}, m:start())
      assert.is_true(m:call("h__ok", { m = "x" }, nil, { key = "E-1", cwd = H.tmpdir() }).ok)
      local c = m.servers.h.cards["E-1"]
      local pid = c.pid
      m:release("E-1")
      assert.is_nil(m.servers.h.cards["E-1"])
      assert.is_table(c.exit, "release returned before the server's helper exited")
      assert.is_nil((uv.kill(pid, 0)))
      m:close()
    end)
  end)
end)

-- An in-process HTTP server: handle(msg, session id, answer(status, body, extra headers), head)
-- for each request (one a connection) -> server, port, its connections
local function http_server(handle)
  local uv = require "luv"
  local srv, socks = uv.new_tcp(), {}
  assert(srv:bind("127.0.0.1", 0))
  srv:listen(8, function()
    local sock = uv.new_tcp()
    srv:accept(sock)
    socks[#socks + 1] = sock
    local buf = ""
    sock:read_start(function(_, data)
      if not data then sock:close() return end
      buf = buf .. data
      local head_end = buf:find("\r\n\r\n", 1, true)
      if not head_end then return end
      local head = buf:sub(1, head_end):lower()
      local len = tonumber(head:match("content%-length:%s*(%d+)") or "0")
      if #buf < head_end + 3 + len then return end
      sock:read_stop()
      local function answer(status, body, extra)
        if sock:is_closing() then return end
        sock:write("HTTP/1.1 " .. status .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body
          .. "\r\n" .. (extra or "") .. "Connection: close\r\n\r\n" .. body, function() sock:close() end)
      end
      handle(cjson.decode(buf:sub(head_end + 4, head_end + 3 + len)) or {}, head:match("mcp%-session%-id:%s*(%S+)"),
        answer, head)
    end)
  end)
  return srv, srv:getsockname().port, socks
end

describe("orket.mcp.manager over Streamable HTTP", function()
  after_each(H.cleanup)

  -- the initialized notification was POSTed by a task of its own, raced by the listing's
  -- POST: a server that holds to MCP's order (the Python SDK's ServerSession) and takes a
  -- while over the notification refused the listing, and the server was marked down
  it("lists the tools only once the server has taken notifications/initialized", function()
    local uv = require "luv"
    local ready, order = {}, {}
    local srv, port = http_server(function(msg, sid, answer)
      order[#order + 1] = msg.method
      if msg.method == "initialize" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25",
          capabilities = { tools = {} } } }, "Mcp-Session-Id: s1\r\n")
      end
      if msg.method == "notifications/initialized" then
        local t = uv.new_timer() -- a proxy's or a slow server's time over it
        t:start(200, 0, function() t:close() ready[sid] = true answer("202 Accepted", "") end)
        return
      end
      if not msg.id then return answer("202 Accepted", "") end
      if not ready[sid] then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, error = { code = -32600,
          message = "Received request before initialization was complete" } })
      end
      answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { tools = { { name = "ok",
        inputSchema = { type = "object" } } } } })
    end)
    in_task(function()
      local c = client.new({ name = "strict", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp",
        timeout_ms = 5000 }, { log = function() end })
      local ok, err = c:start()
      assert.is_true(ok, err)
      assert.equal("ok", c.tools[1].name)
      assert.same({ "initialize", "notifications/initialized", "tools/list" }, { order[1], order[2], order[3] })
      c:close()
    end)
    srv:close()
  end)

  -- MCP's Streamable HTTP transport: a client answered 404 to a request with its
  -- Mcp-Session-Id "MUST start a new session" (a server restarted, or one that ends idle
  -- sessions); every later call used to be refused 404 (ESESSION) until the engine ended
  it("opens a new session when the server has forgotten its own", function()
    local uv = require "luv"
    local known, n, deleted = {}, 0, {}
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", 0))
    srv:listen(8, function()
      local sock = uv.new_tcp()
      srv:accept(sock)
      local buf = ""
      sock:read_start(function(_, data)
        if not data then sock:close() return end
        buf = buf .. data
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local head = buf:sub(1, head_end):lower()
        local len = tonumber(head:match("content%-length:%s*(%d+)") or "0")
        if #buf < head_end + 3 + len then return end
        sock:read_stop()
        local sid = head:match("mcp%-session%-id:%s*(%S+)")
        local function answer(status, body, extra)
          sock:write("HTTP/1.1 " .. status .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body
            .. "\r\n" .. (extra or "") .. "Connection: close\r\n\r\n" .. body, function() sock:close() end)
        end
        if head:match("^delete") then
          if sid then known[sid] = nil deleted[#deleted + 1] = sid end
          return answer("204 No Content", "")
        end
        local msg = cjson.decode(buf:sub(head_end + 4, head_end + 3 + len))
        if msg.method == "initialize" and not sid then
          n = n + 1
          known["s" .. n] = true
          return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25",
            capabilities = { tools = {} } } }, "Mcp-Session-Id: s" .. n .. "\r\n")
        end
        if not (sid and known[sid]) then return answer("404 Not Found", '{"error":"no such session"}') end
        if not msg.id then return answer("202 Accepted", "") end
        local result = msg.method == "tools/list" and { tools = { { name = "ok", inputSchema = { type = "object" } } } }
          or { content = { { type = "text", text = "called in " .. sid } } }
        answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = result })
      end)
    end)
    local events = {}
    in_task(function()
      local manager = require "orket.mcp.manager"
      local m = manager.new(assert(require("orket.settings.mcp").section { servers = { hs = {
        url = "http://127.0.0.1:" .. srv:getsockname().port .. "/mcp", timeout_ms = 5000 } } }),
        { log = function(f) events[#events + 1] = f end })
      assert.same({}, m:start())
      local r = m:call("hs__ok", {})
      assert.is_true(r.ok, r.error)
      assert.equal("called in s1", r.result.text)
      known = {} -- the server restarted
      local lost = m:call("hs__ok", {})
      assert.is_false(lost.ok)
      assert.equal("ESESSION", lost.code)
      local again = H.wait_for(function()
        local x = m:call("hs__ok", {})
        return x.ok and x
      end, "a call in a new session", 300)
      assert.equal("called in s2", again.result.text)
      assert.equal(2, n) -- one initialize more, for the new session
      assert.same({}, deleted) -- the forgotten session is not DELETEd
      m:close()
    end)
    srv:close()
  end)

  -- Each POST's answer comes on its own stream: a 404 to one call (a replica that lost the
  -- session, a server ending it while a long call runs) used to fail every call in flight
  -- EDOWN "a new one is opened", though the server ran them and answered: the model was
  -- invited to run a create or a send twice
  it("fails only the call answered 404; a call in flight in the lost session keeps its answer", function()
    local uv = require "luv"
    local ran, n, deleted, timers = {}, 0, {}, {}
    local srv, port, socks = http_server(function(msg, sid, answer, head)
      if head:match("^delete") then deleted[#deleted + 1] = sid return answer("204 No Content", "") end
      if msg.method == "initialize" then
        n = n + 1
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25",
          capabilities = { tools = {} } } }, "Mcp-Session-Id: s" .. n .. "\r\n")
      end
      if not msg.id then return answer("202 Accepted", "") end
      if msg.method == "tools/list" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { tools = { { name = "ok",
          inputSchema = { type = "object" } } } } })
      end
      local a = msg.params.arguments
      if a.gone then return answer("404 Not Found", "{}") end
      ran[#ran + 1] = a.tag .. "@" .. sid
      local t = uv.new_timer()
      timers[#timers + 1] = t
      t:start(a.ms or 0, 0, function()
        t:close()
        answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { content = { { type = "text",
          text = "done " .. a.tag } } } })
      end)
    end)
    local events = {}
    in_task(function()
      local manager = require "orket.mcp.manager"
      local m = manager.new(assert(require("orket.settings.mcp").section { servers = { hs = {
        url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 2500 } } }), { log = function(f) events[#events + 1] = f end })
      assert.same({}, m:start())
      local old = m.servers.hs.conn
      local slow, stopped
      local ta = task.spawn(function() slow = m:call("hs__ok", { tag = "A", ms = 300 }) end)
      local tb = task.spawn(function() stopped = m:call("hs__ok", { tag = "B", ms = 60000 }) end)
      H.wait_for(function() return #ran == 2 end, "A and B running", 2000)
      local lost = m:call("hs__ok", { gone = true })
      assert.equal("ESESSION", lost.code)
      assert.matches("HTTP 404", lost.error, 1, true)
      assert.matches("did not take this call", lost.error, 1, true)
      -- a new request on the lost connection is not sent, and says so
      local _, err, code = old:request("tools/list")
      assert.equal("ESESSION", code)
      assert.matches("not sent", err, 1, true)
      ta:join()
      assert.is_true(slow.ok, slow.error)
      assert.equal("done A", slow.result.text)
      -- the new session serves new calls meanwhile
      local again = H.wait_for(function()
        local x = m:call("hs__ok", { tag = "C" })
        return x.ok and x
      end, "a call in a new session", 300)
      assert.equal("done C", again.result.text)
      assert.equal("C@s2", ran[3])
      -- a call still in flight when the old connection ends cannot be said not run
      assert.is_nil(stopped)
      m:close()
      tb:join()
      assert.equal("EDOWN", stopped.code)
      assert.matches("whether it ran is unknown", stopped.error, 1, true)
      assert.is_nil(stopped.error:find("a new one is opened", 1, true))
    end)
    for _, t in ipairs(timers) do if not t:is_closing() then t:close() end end
    for _, sock in ipairs(socks) do if not sock:is_closing() then sock:close() end end
    srv:close()
    local said = {}
    for _, f in ipairs(events) do if f.event == "mcp_down" then said[#said + 1] = f.message end end
    assert.equal(1, #said)
    assert.matches("HTTP 404", said[1], 1, true)
    for _, sid in ipairs(deleted) do assert.not_equal("s1", sid) end
  end)

  -- a server that starts well and answers every call 404 reconnected each time after 500 ms,
  -- its failures back to 0 at each start, and nothing said it
  it("grows the backoff for a server that forgets every session, and says so once", function()
    local n = 0
    local srv, port = http_server(function(msg, _, answer, head)
      if head:match("^delete") then return answer("204 No Content", "") end
      if msg.method == "initialize" then
        n = n + 1
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25",
          capabilities = { tools = {} } } }, "Mcp-Session-Id: s" .. n .. "\r\n")
      end
      if not msg.id then return answer("202 Accepted", "") end
      if msg.method == "tools/list" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { tools = { { name = "ok",
          inputSchema = { type = "object" } } } } })
      end
      return answer("404 Not Found", "{}")
    end)
    local events = {}
    in_task(function()
      local manager = require "orket.mcp.manager"
      local saved = manager.BACKOFF_MS
      manager.BACKOFF_MS = { 10, 20, 40, 80 }
      local m = manager.new(assert(require("orket.settings.mcp").section { servers = { hs = {
        url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 5000 } } }), { log = function(f) events[#events + 1] = f end })
      assert.same({}, m:start())
      local waits = {}
      for _ = 1, 4 do
        H.wait_for(function() return m.servers.hs.state == "ready" end, "ready", 2000)
        assert.equal("ESESSION", m:call("hs__ok", {}).code)
        waits[#waits + 1] = m.servers.hs.next_try - require("luv").now()
      end
      manager.BACKOFF_MS = saved
      m:close()
      assert.is_true(waits[2] > waits[1] and waits[3] > waits[2] and waits[4] > waits[3], table.concat(waits, ","))
    end)
    srv:close()
    local said = 0
    for _, f in ipairs(events) do
      if f.event == "mcp_error" and f.message:find("forgotten its MCP session 3 times", 1, true) then said = said + 1 end
    end
    assert.equal(1, said)
  end)

  -- a 2025-03-26 server may answer a notification's POST with 200 and a batch: a request of
  -- its inside (a ping) was dropped unanswered, as the body was read for one message only
  it("answers a request inside a batch that answers a notification's POST (2025-03-26)", function()
    local pong
    local srv, port = http_server(function(msg, _, answer, head)
      if head:match("^delete") then return answer("204 No Content", "") end
      if msg.method == "initialize" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-03-26",
          capabilities = { tools = {} } } }, "Mcp-Session-Id: s1\r\n")
      end
      if msg.method == "notifications/initialized" then
        return answer("200 OK", '[{"jsonrpc":"2.0","id":"bp","method":"ping"}]')
      end
      if msg.id == "bp" then pong = msg return answer("202 Accepted", "") end
      if msg.method == "tools/list" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { tools = {} } })
      end
      return answer("202 Accepted", "")
    end)
    in_task(function()
      local c = client.new { name = "hs", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 3000 }
      assert(c:start())
      H.wait_for(function() return pong end, "the ping answered", 2000)
      assert.is_table(pong.result)
      c:close()
    end)
    srv:close()
  end)

  -- 2024-11-05's HTTP transport was another (HTTP+SSE): a server answering it over
  -- Streamable HTTP is refused, not spoken to in a transport it does not have
  it("refuses a server that answers 2024-11-05 over HTTP", function()
    local srv, port = http_server(function(msg, _, answer, head)
      if head:match("^delete") then return answer("204 No Content", "") end
      if msg.method == "initialize" then
        return answer("200 OK", cjson.encode { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2024-11-05",
          capabilities = { tools = {} } } })
      end
      return answer("202 Accepted", "")
    end)
    in_task(function()
      local c = client.new { name = "hs", transport = "http", url = "http://127.0.0.1:" .. port .. "/mcp", timeout_ms = 3000 }
      local ok, err, code = c:start()
      assert.is_nil(ok)
      assert.equal("EPROTO", code)
      assert.matches("speaks protocol 2024%-11%-05, not 2025%-11%-25, 2025%-06%-18 or 2025%-03%-26$", err)
    end)
    srv:close()
  end)
end)

describe("orket.mcp.manager's names across servers", function()
  after_each(H.cleanup)

  it("routes a name two servers' tools share to neither, and says so naming both", function()
    in_task(function()
      -- a's _b and a_'s b are both a___b: the first connected used to take every call
      local events = {}
      local m = manager_of({ a = "tool=_b", a_ = "tool=b", c = "good" }, events)
      assert.same({}, m:start())
      assert.is_nil(m:get("a___b"))
      assert.truthy(m:get("c__ok")) -- the others' tools are untouched
      local r = m:call("a___b", { m = "x" })
      assert.is_false(r.ok)
      assert.equal("ENOENT", r.code)
      local st = {}
      for _, e in ipairs(m:status()) do st[e.name] = e end
      assert.same({}, st.a.tools)
      assert.same({}, st.a_.tools)
      assert.equal("_b", st.a.refused[1].name)
      assert.matches("a___b is also a_'s tool b", st.a.refused[1].why, 1, true)
      assert.equal("b", st.a_.refused[1].name)
      assert.matches("a___b is also a's tool _b", st.a_.refused[1].why, 1, true)
      local said = {}
      for _, f in ipairs(events) do
        if f.event == "mcp_tool_refused" then said[#said + 1] = f.server .. ":" .. f.tool end
      end
      table.sort(said)
      assert.same({ "a:_b", "a_:b" }, said)
      m:close()
    end)
  end)

  it("holds a tool whose name may be a server's not listed yet; that server's calls are EUNAVAILABLE", function()
    in_task(function()
      local m = manager_of { a = "tool=_b", a_ = false }
      local failed = m:start()
      assert.truthy(failed.a_)
      assert.is_nil(m:get("a___b")) -- a___b may be a_'s b: a's _b does not take its calls
      local st = m:status()
      assert.matches("held: .*could be a tool of a_", st[1].refused[1].why)
      local reg = m:wrap(assert(require("orket.tools").load_dirs { H.ROOT .. "/tools" }))
      -- a tool of the server down since the start is an MCP tool to the gate, unavailable
      assert.equal("mcp", reg:get("a___b").effect)
      assert.equal("mcp", reg:get("a___other").effect)
      assert.equal(0, #reg:specs { "a___other" }) -- not offered to the model
      local r = m:call("a___other", {})
      assert.equal("EUNAVAILABLE", r.code)
      assert.matches("the MCP server a_ is down", r.error, 1, true)
      assert.matches("orket mcp list", r.remedy, 1, true)
      assert.is_nil(reg:get("zz__x")) -- a name of no server's stays unknown
      m:close()
    end)
  end)

  it("gives a down server's calls a remedy of its own, not the sandbox's", function()
    in_task(function()
      local m = manager_of { h = "good" }
      assert.same({}, m:start())
      assert.equal("EDOWN", m:call("h__ok", { m = "die" }).code)
      local r = m:call("h__ok", { m = "x" })
      assert.equal("EUNAVAILABLE", r.code)
      assert.matches("MCP server h", r.remedy, 1, true)
      assert.is_nil(r.remedy:find("sandbox", 1, true))
      m:close()
    end)
  end)
end)

describe("orket.mcp.client's requests", function()
  after_each(H.cleanup)

  -- MCP (2025-06-18 and after, basic/utilities/cancellation): "the initialize request MUST
  -- NOT be cancelled by clients"; any other request that times out or whose task ends is
  it("never cancel initialize, and cancel any other request that times out or is abandoned", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" }, timeout_ms = 50 }
    local sent = {}
    c._write = function(text)
      sent[#sent + 1] = cjson.decode(text)
      return true
    end
    in_task(function()
      local r, err, code = c:request("initialize", { protocolVersion = client.PROTOCOL, capabilities = {} }, 50)
      assert.is_nil(r)
      assert.equal("ETIMEDOUT", code, err)
      local l, _, lcode = c:request("tools/list", nil, 50)
      assert.is_nil(l)
      assert.equal("ETIMEDOUT", lcode)
    end)
    -- a task ended while its initialize waits (the engine closing) cancels nothing either
    local t = task.spawn(function() c:request("initialize", { protocolVersion = client.PROTOCOL }, 10000) end)
    t:cancel()
    local methods = {}
    for _, m in ipairs(sent) do
      methods[#methods + 1] = m.method .. (m.params and m.params.requestId and (" " .. math.tointeger(m.params.requestId)) or "")
    end
    assert.same({ "initialize", "tools/list", "notifications/cancelled 2", "initialize" }, methods)
  end)

  it("fail the request an unreadable answer is for at once, by its own id, not one inside its result", function()
    in_task(function()
      local c, ok, err = connect("good", 20000)
      assert.is_true(ok, err)
      local t0 = require("luv").now()
      for _, m in ipairs { "deep_tail", "latin1_tail", "latin1_error" } do
        local r = c:call("ok", { m = m })
        assert.equal("EPROTO", r.code, m .. ": " .. tostring(r.error))
        assert.matches("the server's answer could not be read", r.error)
      end
      assert.is_true(require("luv").now() - t0 < 5000)
      assert.equal("ready", c.state)
      c:close()
    end)
  end)

  -- servers of SDKs before 2025-06-18 answer initialize with their own version, as MCP lets
  -- them; the client may speak it: its messages are those of the later ones, and batches
  it("speak 2025-03-26 and 2024-11-05 with a stdio server that answers them, batches of the first included", function()
    in_task(function()
      for _, v in ipairs { "2025-03-26", "2024-11-05" } do
        local c, ok, err = connect("v=" .. v, 1500)
        assert.is_true(ok, err)
        assert.equal(v, c.version)
        local r = c:call("ok", { m = "hi" })
        assert.is_true(r.ok, r.error)
        assert.equal("got hi", r.result.text)
        local b = c:call("ok", { m = "batch" })
        if v == "2025-03-26" then
          assert.is_true(b.ok, b.error)
          assert.equal("in a batch", b.result.text)
          assert.equal(0, c.bad)
        else
          assert.equal("ETIMEDOUT", b.code) -- no batches before 2025-03-26: a protocol error
          assert.is_true(c.bad >= 1)
        end
        c:close()
      end
      local _, ok, err = connect("v=2024-01-01")
      assert.is_nil(ok)
      assert.matches("the server speaks protocol 2024%-01%-01", err)
    end)
  end)

  it("read every page of a paginated tools/list, however small its pages", function()
    in_task(function()
      local c, ok, err = connect("paged")
      assert.is_true(ok, err)
      assert.equal(30, #c.tools)
      assert.equal("t30", c.tools[30].name)
      assert.same({}, c.refused)
      c:close()
    end)
  end)

  -- A listing read page after page is bounded by what it brings: its tools, the bytes of its
  -- pages (all held to its end), its time in all, and a cursor given again; a listing cut
  -- short keeps the tools of the pages read and says so, once
  local function lister(page, timeout_ms)
    local c = client.new { name = "h", transport = "stdio", command = { "x" }, timeout_ms = timeout_ms or 2000 }
    local n, said = 0, {}
    c.request = function(_, method, params, ms)
      assert.equal("tools/list", method)
      n = n + 1
      return page(n, params and params.cursor, ms)
    end
    c.log = function(f) said[#said + 1] = f end
    return c, function() return n end, said
  end

  it("stops a listing whose pages pass MAX_LIST_BYTES, and says so once", function()
    local c, requests, said = lister(function(n)
      return { tools = { { name = "t" .. n, description = string.rep("d", 1024 * 1024), inputSchema = { type = "object" } } },
        nextCursor = string.rep("c", 65536) .. n }
    end)
    in_task(function() assert(c:list_tools()) assert(c:list_tools()) end)
    -- 8 MiB: 7 pages of a bit more than 1 MiB kept, the 8th read and dropped, each time
    assert.equal(16, requests())
    assert.equal(7, #c.tools)
    assert.equal(1, #said)
    assert.equal("mcp_protocol_error", said[1].event)
    assert.matches("tools/list stopped after 8 pages: its pages passed 8388608 bytes", said[1].message, 1, true)
  end)

  it("stops a listing of empty pages and fresh cursors at MAX_PAGES, and one past its time in all", function()
    local c, requests, said = lister(function(n) return { tools = {}, nextCursor = "c" .. n } end)
    in_task(function() assert(c:list_tools()) end)
    assert.equal(client.MAX_PAGES, requests())
    assert.matches("more than " .. client.MAX_PAGES .. " pages", said[1].message, 1, true)
    -- pages of 5 ms, timeout_ms 10: the listing has 200 ms in all (the old 20 pages' worst)
    local ms_seen = {}
    c, requests, said = lister(function(n, _, ms)
      ms_seen[#ms_seen + 1] = ms
      require("orket.c.runtime").sleep(5)
      return { tools = { { name = "t" .. n, inputSchema = { type = "object" } } }, nextCursor = "c" .. n }
    end, 10)
    in_task(function() assert(c:list_tools()) end)
    -- 514 pages of 5 ms without the bound; at most 40 in 200 ms (counted, not timed: a loaded
    -- machine's pages take longer, never more of them)
    assert.is_true(requests() < 60, "pages: " .. requests())
    assert.equal(requests(), #c.tools)
    for _, ms in ipairs(ms_seen) do assert.is_true(ms <= 10) end
    assert.equal(1, #said)
    assert.matches("it took more than 200 ms", said[1].message, 1, true)
  end)

  it("stops a listing at a cursor given before: the pages before are kept, and it is said once", function()
    local next_of = { [""] = "A", A = "B", B = "A" }
    local c, requests, said = lister(function(n, cursor)
      return { tools = { { name = "t" .. n, inputSchema = { type = "object" } } }, nextCursor = next_of[cursor or ""] }
    end)
    in_task(function() assert(c:list_tools()) assert(c:list_tools()) end)
    assert.equal(6, requests())
    assert.same({ "t4", "t5", "t6" }, { c.tools[1].name, c.tools[2].name, c.tools[3].name })
    assert.equal(3, #c.tools)
    assert.equal(1, #said)
    assert.matches('its cursor "A" came again', said[1].message, 1, true)
  end)

  -- A message that cannot be read fails the request it answers at once; a request of the
  -- server's (sampling, elicitation, ping) carries an id of the server's own, which is
  -- often a pending call's too: that call must not fail for it
  it("fails no call for an unreadable request of the server's with its id, nor for an id inside a result", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" }, timeout_ms = 2000 }
    local sent = {}
    c._write = function(text) sent[#sent + 1] = cjson.decode(text) return true end
    c.state = "ready"
    local res = {}
    local t1 = task.spawn(function() res[1] = table.pack(c:request("tools/call", { name = "a" }, 2000)) end)
    local t2 = task.spawn(function() res[2] = table.pack(c:request("tools/call", { name = "b" }, 2000)) end)
    local t3 = task.spawn(function() res[3] = table.pack(c:request("tools/call", { name = "c" }, 2000)) end)
    -- a request of the server's that is not UTF-8, with id 2; one with id 1 whose method is
    -- not a string; one too deep with id 3 first
    c:_line('{"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{"m":"caf\233"}}')
    c:_line('{"jsonrpc":"2.0","id":1,"method":{"x":1}}')
    c:_line('{"id":3,"jsonrpc":"2.0","method":"elicitation/create","params":' .. string.rep("[", 2000) .. string.rep("]", 2000) .. '}')
    -- the answer to 1, not UTF-8, holding 2's id in its result: 1 fails, not 2
    c:_line('{"result":{"structuredContent":{"id":2},"t":"caf\233"},"jsonrpc":"2.0","id":1}')
    c:_line('{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"b done"}]}}')
    c:_line('{"jsonrpc":"2.0","id":3,"result":{"content":[]}}')
    t1:join() t2:join() t3:join()
    assert.equal("EPROTO", res[1][3], tostring(res[1][2]))
    assert.matches("could not be read", res[1][2], 1, true)
    assert.equal("b done", res[2][1].content[1].text)
    assert.is_table(res[3][1])
  end)

  it("answers a ping inside a 2025-03-26 batch, and fails a call whose answer in a batch cannot be read", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" }, timeout_ms = 2000 }
    local sent = {}
    c._write = function(text) sent[#sent + 1] = cjson.decode(text) return true end
    c.state, c.version = "ready", "2025-03-26"
    local res
    local t = task.spawn(function() res = table.pack(c:request("tools/call", { name = "a" }, 2000)) end)
    c:_line('[{"jsonrpc":"2.0","id":"bp","method":"ping"},{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}]')
    t:join()
    assert.equal("EPROTO", res[3], tostring(res[2]))
    local pong
    for _, m in ipairs(sent) do if m.id == "bp" then pong = m end end
    assert.truthy(pong and pong.result, "the ping is answered")
    -- a batch that is not UTF-8 fails each call it answers at once, not by its timeout
    local r = {}
    local ta = task.spawn(function() r[1] = table.pack(c:request("tools/call", { name = "a" }, 2000)) end)
    local tb = task.spawn(function() r[2] = table.pack(c:request("tools/call", { name = "b" }, 2000)) end)
    local t0 = require("luv").now()
    c:_line('[{"jsonrpc":"2.0","id":2,"result":{"t":"caf\233"}},{"jsonrpc":"2.0","id":3,"result":{}}]')
    ta:join() tb:join()
    assert.is_true(require("luv").now() - t0 < 1000)
    assert.equal("EPROTO", r[1][3], tostring(r[1][2]))
    assert.equal("EPROTO", r[2][3], tostring(r[2][2]))
  end)
end)

describe("orket.mcp.client's errors", function()
  after_each(H.cleanup)

  it("name the server once", function()
    in_task(function()
      local _, ok, err = connect("listnever", nil)
      -- (connect's start waited 10 s at most for the listing)
      assert.is_nil(ok)
      assert.matches("^mcp%.h: tools/list got no answer", err)
      assert.is_nil(err:find("mcp.h", 2, true), err)
      local c, cok, cerr = connect("good", 20000)
      assert.is_true(cok, cerr)
      local big = c:call("ok", { m = "big" })
      assert.equal("ETOOLARGE", big.code)
      assert.matches("^mcp%.h: the server sent a message larger than", big.error)
      local d = c:call("ok", { m = "die" })
      assert.matches("^mcp%.h: the server exited", d.error)
      assert.is_nil(d.error:find("mcp.h", 2, true), d.error)
      assert.matches("^the server exited", c.why) -- said where the server is named already
    end)
  end)

  it("say that a command could not be run, naming it, rather than only its status 127", function()
    in_task(function()
      -- a typo in command[1], a program not on the server's PATH: the helper cannot exec it
      for _, prog in ipairs { "/nonexistent/orket-mcp-nosuch", "orket-mcp-nosuch-program" } do
        local c = client.new({ name = "h", transport = "stdio", command = { prog, "x" }, timeout_ms = 10000 },
          { cwd = H.tmpdir(), log = function() end })
        local ok, err = c:start()
        assert.is_nil(ok)
        assert.matches("^mcp%.h: ", err)
        assert.truthy(err:find("cannot run " .. prog .. ": no such file or directory", 1, true), err)
        assert.truthy(c.why:find("cannot run " .. prog .. ": no such file or directory", 1, true), c.why)
        c:close()
      end
    end)
  end)

  -- a server of resources or prompts only declares no tools and may not have tools/list:
  -- it was down ("tools/list: Method not found") and restarted without end
  it("take a server that declares no tools and has no tools/list as one of no tools; one that declares them is down", function()
    local dir = H.tmpdir()
    H.write(dir .. "/srv.lua", [[
local cjson = require "cjson"
local declares = arg[1] == "declares"
for line in io.lines() do
  local m = cjson.decode(line)
  local out
  if m.method == "initialize" then
    out = { result = { protocolVersion = "2025-11-25", serverInfo = { name = "r", version = "1" },
      capabilities = declares and { tools = {} } or { resources = {} } } }
  elseif m.id then
    out = { error = { code = -32601, message = "Method not found" } }
  end
  if out and m.id then out.jsonrpc, out.id = "2.0", m.id io.stdout:write(cjson.encode(out), "\n") io.stdout:flush() end
end
]])
    in_task(function()
      for _, mode in ipairs { "resources", "declares" } do
        local c = client.new({ name = "h", transport = "stdio", command = { H.BIN, "lua", dir .. "/srv.lua", mode },
          read_only = { H.ROOT, dir }, timeout_ms = 10000 }, { cwd = H.tmpdir(), log = function() end })
        local ok, err = c:start()
        if mode == "resources" then
          assert.is_true(ok, err)
          assert.same({}, c.tools)
        else
          assert.is_nil(ok)
          assert.equal("mcp.h: tools/list: Method not found", err)
        end
        c:close()
      end
    end)
  end)

  it("name the server in a result that cannot be read", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" } }
    c.request = function() return setmetatable({}, { __index = function() return nil end }) and "not a table" end
    local r = c:call("ok", {})
    assert.equal("EPROTO", r.code)
    assert.equal("mcp.h: tool ok: the server's result is not an object", r.error)
  end)

  it("refuse a result whose content is not an array, naming the server and the tool", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" } }
    for _, content in ipairs { "hello", { a = 1 }, 42, { { type = "text", text = "x" }, k = 1 } } do
      c.request = function() return { content = content } end
      local r = c:call("ok", {})
      assert.is_false(r.ok)
      assert.equal("EPROTO", r.code)
      assert.equal("mcp.h: tool ok: the content of the server's result is not an array", r.error)
    end
    -- an array (or no content: a result of no items) is read
    c.request = function() return { content = { { type = "text", text = "x" } } } end
    assert.equal("x", c:call("ok", {}).result.text)
    c.request = function() return { structuredContent = { a = 1 } } end
    assert.is_true(c:call("ok", {}).ok)
    -- a failed tool whose content is malformed: still the tool's failure for the model
    for _, content in ipairs { "boom", { a = 1 }, 42 } do
      c.request = function() return { isError = true, content = content } end
      local r = c:call("ok", {})
      assert.is_false(r.ok)
      assert.equal("EMCP_TOOL", r.code)
      assert.equal("the tool reported an error (its content, not an array, is not shown)", r.error)
    end
    -- null, as Go writes a nil slice (a handler that sets only structuredContent), is no items
    c.request = function() return { content = cjson.null, structuredContent = { a = 1 } } end
    local r = c:call("ok", {})
    assert.is_true(r.ok, r.error)
    assert.equal("", r.result.text)
    assert.same({ a = 1 }, r.result.structured)
  end)

  it("refuse a listing whose tools is not an array, rather than read it as no tools", function()
    local c = client.new { name = "h", transport = "stdio", command = { "x" } }
    for _, tools in ipairs { { a = 1 }, "x", 42, true } do
      c.request = function() return { tools = tools } end
      local ok, err, code = c:list_tools()
      assert.is_nil(ok)
      assert.equal("EPROTO", code)
      assert.equal("mcp.h: tools/list: the tools of the server's result are not an array", err)
    end
    -- null (a Go server's nil slice) and a missing tools are no tools, as before: the server is
    -- ready with none, not down and restarted without end
    for _, body in ipairs { '{"tools":null}', '{}' } do
      c.tools = { "stale" }
      c.request = function() return cjson.decode(body) end
      local ok, err = c:list_tools()
      assert.is_true(ok, err)
      assert.same({}, c.tools)
    end
    c.request = function() return 7 end
    local ok, err, code = c:list_tools()
    assert.is_nil(ok)
    assert.equal("EPROTO", code)
    assert.equal("mcp.h: tools/list: the server's result is not an object", err)
    c.request = function() return { tools = {} } end
    assert.is_true(c:list_tools())
    assert.equal(0, #c.tools)
  end)
end)

describe("orket.mcp.manager's listings", function()
  after_each(H.cleanup)

  it("lists again on tools/list_changed at most once an interval, and logs a refused tool once", function()
    in_task(function()
      local manager = require "orket.mcp.manager"
      local saved = manager.RELIST_MS
      manager.RELIST_MS = 300
      local refusals = 0
      local m = manager.new(assert(require("orket.settings.mcp").section { servers = {
        h = { command = { H.BIN, "lua", SERVER, "listloop" }, read_only = { H.ROOT }, timeout_ms = 10000 } } }),
        { cwd = H.tmpdir(), log = function(f) if f.event == "mcp_tool_refused" then refusals = refusals + 1 end end })
      assert.same({}, m:start())
      require("orket.c.runtime").sleep(1000)
      local n = tonumber(m:get("h__ok").description:match("listed (%d+)"))
      m:close()
      manager.RELIST_MS = saved
      assert.is_true(n >= 2 and n <= 5, "listings in a second: " .. n) -- the server asked for one after each
      assert.equal(1, refusals) -- "bad name!", as often as it was listed
    end)
  end)

  -- an unknown type made every call with that argument a denial ("expected nonsense"); a
  -- required that is not a list was skipped, so a call without the argument went through
  it("refuses a tool whose schema's type or required the gate cannot read, saying where", function()
    local cjson_ = require "cjson"
    local function schema(text) return cjson_.decode(text) end
    local kept, refused = client.tools_of {
      { name = "bad_type", inputSchema = schema('{"type":"object","properties":{"x":{"type":"nonsense"}}}') },
      { name = "bad_req", inputSchema = schema('{"type":"object","properties":{"x":{"type":"string"}},"required":"x"}') },
      { name = "bad_req_item", inputSchema = schema('{"type":"object","required":[5]}') },
      { name = "bad_items", inputSchema = schema('{"type":"object","properties":{"l":{"type":"array","items":{"type":7}}}}') },
      { name = "bad_props", inputSchema = schema('{"type":"object","properties":"x"}') },
      { name = "good", inputSchema = schema('{"type":"object","properties":{"x":{"type":["string","null"],"anyOf":[{"type":"zzz"}]},'
        .. '"l":{"type":"array","items":{"type":"integer"}}},"required":["x"],"additionalProperties":{"type":"number"}}') },
      { name = "empty", inputSchema = schema('{"type":"object","properties":{},"required":[]}') },
      -- null is a keyword not sent, as a Go server writes a nil slice or map
      { name = "nulls", inputSchema = schema('{"type":"object","properties":{"x":{"type":null}},"required":null}') },
      { name = "null_props", inputSchema = schema('{"type":"object","properties":null}') },
      -- a long type name and a long property key: cut, and marked cut
      { name = "long", inputSchema = schema('{"type":"object","properties":{"' .. ("k"):rep(70) .. '":{"type":"'
        .. ("t"):rep(50) .. '"}}}') },
    }
    assert.same({ "good", "empty", "nulls", "null_props" }, { kept[1] and kept[1].name, kept[2] and kept[2].name,
      kept[3] and kept[3].name, kept[4] and kept[4].name, kept[5] and kept[5].name })
    local why = {}
    for _, f in ipairs(refused) do why[f.name] = f.why end
    assert.equal("inputSchema.properties.x.type: unknown type 'nonsense'", why.bad_type)
    assert.equal("inputSchema.required must be a list of property names", why.bad_req)
    assert.equal("inputSchema.required[1] must be a string", why.bad_req_item)
    assert.equal("inputSchema.properties.l.items.type must be a type name or a list of them", why.bad_items)
    assert.equal("inputSchema.properties must be an object of schemas", why.bad_props)
    assert.equal("inputSchema.properties." .. ("k"):rep(64) .. "... (70 bytes).type: unknown type '" .. ("t"):rep(40)
      .. "... (50 bytes)'", why.long)
  end)

  -- which of a-b and a_b the name SERVER__a_b reached hung on the listing's order (which a
  -- relisting may change): both are refused, as two servers' tools of one name are
  it("refuses every tool of an Orket name several share (a - or . reads _), by name, whatever the order", function()
    local S = { type = "object" }
    for _, list in ipairs { { "a-b", "a_b", "c_d" }, { "a_b", "c_d", "a-b" } } do
      local tools = {}
      for i, n in ipairs(list) do tools[i] = { name = n, inputSchema = S } end
      local kept, refused = client.tools_of(tools)
      assert.same({ "c_d" }, { kept[1] and kept[1].name, kept[2] and kept[2].name })
      local why = {}
      for _, f in ipairs(refused) do why[f.name] = f.why end
      assert.matches("also that of a_b .*each of them is refused", why["a-b"])
      assert.matches("also that of a%-b .*each of them is refused", why["a_b"])
    end
    -- a tool refused for its schema blocks no other of its Orket name
    local kept, refused = client.tools_of { { name = "e-f", inputSchema = { type = "string" } }, { name = "e_f", inputSchema = S } }
    assert.same({ "e_f" }, { kept[1] and kept[1].name })
    assert.equal("e-f", refused[1].name)
  end)

  -- MCP 2025-11-25 (server/tools, "Tool names"): letters, digits, _, - and . ("admin.tools.list")
  it("takes a tool name with dots, as MCP allows: a . reads _, and the call reaches the tool by its own name", function()
    local S = { type = "object" }
    local kept, refused = client.tools_of { { name = "admin.tools.list", inputSchema = S },
      { name = "x.y", inputSchema = S }, { name = "x_y", inputSchema = S } }
    assert.same({ "admin.tools.list" }, { kept[1] and kept[1].name, kept[2] and kept[2].name })
    assert.same({ "x.y", "x_y" }, { refused[1].name, refused[2].name })
    assert.matches("also that of x_y", refused[1].why, 1, true)
    in_task(function()
      local m = manager_of { f = "tool=files.read" }
      assert.same({}, m:start())
      assert.truthy(m:get("f__files_read"))
      local r = m:call("f__files_read", { m = "x" })
      assert.is_true(r.ok, r.error)
      assert.equal("got x", r.result.text)
      m:close()
    end)
  end)

  it("shows a name that is not a string as the server sent it", function()
    local _, refused = client.tools_of { { name = 42, inputSchema = { type = "object" } },
      { name = 4.5, inputSchema = { type = "object" } }, { inputSchema = { type = "object" } },
      { name = false, inputSchema = { type = "object" } }, { name = cjson.null, inputSchema = { type = "object" } },
      { name = { "x" }, inputSchema = { type = "object" } } }
    -- false as sent, not taken for a missing name; a missing name is null
    assert.same({ "42", "4.5", "null", "false", "null", '["x"]' },
      { refused[1].name, refused[2].name, refused[3].name, refused[4].name, refused[5].name, refused[6].name })
    -- an entry that is not an object: its JSON, escaped and cut, not Lua's false
    local long = string.rep("\195\169", 40)
    _, refused = client.tools_of { 42, false, "a\27[31mb", cjson.null, long }
    assert.same({ "42", "false", '"a\\u001b[31mb"', "null" },
      { refused[1].name, refused[2].name, refused[3].name, refused[4].name })
    -- 64 bytes at most, on a character's start, and the cut marked with the whole length
    assert.equal('"' .. string.rep("\195\169", 31) .. "... (82 bytes)", refused[5].name)
    for _, r in ipairs(refused) do assert.equal("a tool must be an object", r.why) end
  end)

  it("cuts a description at its cap on a character's start, never inside one", function()
    for _, lead in ipairs { "", "a" } do -- the cap falls inside a character with one of them
      local d = lead .. string.rep("\195\169", client.MAX_DESCRIPTION)
      local kept = client.tools_of { { name = "t", description = d, inputSchema = { type = "object" } } }
      assert.truthy(utf8.len(kept[1].description), "the cut description is UTF-8")
      assert.is_true(#kept[1].description >= client.MAX_DESCRIPTION - 1 and #kept[1].description <= client.MAX_DESCRIPTION)
    end
  end)

  it("cuts a text at its cap on a character's start, never inside one", function()
    for _, lead in ipairs { "", "a" } do -- the cap falls inside a character with one of them
      local text = lead .. string.rep("\195\169", 40000) -- é, two bytes each
      local r = client.result_of { content = { { type = "text", text = text } } }
      assert.truthy(utf8.len(r.result.text), "the capped text is UTF-8")
      assert.matches("more bytes omitted", r.result.text)
    end
  end)
end)

describe("orket.lua's mcp section on a hot reload", function()
  after_each(H.cleanup)

  it("starts a server added to orket.lua, keeps it on a bad edit, stops one removed", function()
    in_task(function()
      local dir = H.tmpdir()
      os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
      local db = assert(require("orket.project").open_store(dir, true))
      assert(require("orket.import").import(db, dir))
      db:close()
      local reload = require "orket.engine.reload"
      local e = assert(require("orket.engine.setup").open(dir, {}))
      assert.is_nil(e.tools:get("h__ok"))
      local base = H.read(dir .. "/orket.lua")
      H.write(dir .. "/orket.lua", base .. string.format("\nmcp = { servers = { h = { command = { %q, \"lua\", %q, \"good\" }, read_only = { %q } } } }\n",
        H.BIN, SERVER, H.ROOT))
      assert(reload.apply(e, { ["orket.lua"] = true }))
      H.wait_for(function()
        require("orket.c.runtime").sleep(20)
        return e.tools:get("h__ok") ~= nil
      end, "the new server's tools", 500)
      assert.equal("got x", e.mcp:call("h__ok", { m = "x" }).result.text)
      -- a mistake: reported, the servers stay as they were
      H.write(dir .. "/orket.lua", base .. "\nmcp = { servers = { h = { url = 1 } } }\n")
      local ok, err = reload.apply(e, { ["orket.lua"] = true })
      assert.is_nil(ok)
      assert.matches("mcp.servers.h.url", err)
      assert.truthy(e.tools:get("h__ok"))
      -- removed: its tools go
      H.write(dir .. "/orket.lua", base)
      assert(reload.apply(e, { ["orket.lua"] = true }))
      assert.is_nil(e.tools:get("h__ok"))
      e.close_all()
    end)
  end)
end)

describe("orket.lua's mcp section", function()
  after_each(H.cleanup)
  local function check(mcp)
    local _, err = settings.resolve { team = { a = { roles = { "coder" } } }, mcp = mcp }
    return err
  end
  it("takes stdio and HTTP servers", function()
    local s = assert(settings.resolve { mcp = { servers = {
      fs = { command = { "node", "x.js" }, env = { A = "b" }, network = true },
      web = { url = "https://mcp.example/mcp", headers_env = { Authorization = "MCP_TOKEN" } } } } })
    assert.same({ "fs", "web" }, s.mcp.names)
    assert.equal("stdio", s.mcp.servers.fs.transport)
    assert.equal("http", s.mcp.servers.web.transport)
    -- a credential as secret "NAME" (docs/secrets.md), in env or headers
    s = assert(settings.resolve { mcp = { servers = {
      fs = { command = { "x" }, env = { TOKEN = { secret = "FS_TOKEN" } } },
      web = { url = "https://mcp.example/mcp", headers = { Authorization = { secret = "WEB" } } } } } })
    assert.equal("FS_TOKEN", s.mcp.servers.fs.env.TOKEN.secret)
    assert.equal("WEB", s.mcp.servers.web.headers.Authorization.secret)
  end)
  it("sends a header given as secret \"NAME\", masked in what the server says", function()
    local dir = H.tmpdir()
    assert(require("orket.store.secrets").set(dir, "WEB", "Bearer web-77f3", function() return nil end))
    local spec = { name = "w", transport = "http", url = "http://127.0.0.1:9/mcp", headers = { Authorization = { secret = "WEB" } } }
    require("orket.settings.secret").bind_all(spec, dir)
    local c = client.new(spec, { env = function() return nil end })
    assert.is_true(c:_given())
    local h = table.concat(c:_headers(), "\n")
    assert.matches("Authorization: Bearer web-77f3", h, 1, true)
    assert.equal("no [redacted] here", c:redact("no Bearer web-77f3 here"))
  end)
  it("names the field of each mistake", function()
    assert.matches("orket.lua: mcp.servers.x: needs command", check { servers = { x = {} } })
    -- which of the two: neither, or both
    assert.equal("orket.lua: mcp.servers.x: needs command (a stdio server) or url (HTTP): it has neither",
      check { servers = { x = {} } })
    assert.equal("orket.lua: mcp.servers.x: takes command (a stdio server) or url (HTTP), not both",
      check { servers = { x = { command = { "x" }, url = "http://h" } } })
    -- a path refused is quoted as it was given
    assert.equal([[orket.lua: mcp.servers.x.read_only[1]: must be an absolute path without '.', '..', '//' or a trailing '/', ]]
      .. [[and not "/" (got "relative/dir")]], check { servers = { x = { command = { "x" }, read_only = { "relative/dir" } } } })
    assert.matches([[read_only[2]: must be an absolute path without '.', '..', '//' or a trailing '/', and not "/" (got "/")]],
      check { servers = { x = { command = { "x" }, read_only = { "/a", "/" } } } }, 1, true)
    assert.matches("(got a number)", check { servers = { x = { command = { "x" }, read_only = { 7 } } } }, 1, true)
    -- escaped on one line, as a printed value is: a newline, ESC or bidi mark acts on nothing
    assert.equal([[orket.lua: mcp.servers.x.read_only[1]: must be an absolute path without '.', '..', '//' or a trailing '/', ]]
      .. [[and not "/" (got "rel\ndir\27[31m\u{202e}x")]],
      check { servers = { x = { command = { "x" }, read_only = { "rel\ndir\27[31m\u{202E}x" } } } })
    -- too long says so, with the start of it; the limit is the runner's own
    local long = "/" .. string.rep("a", 2047)
    assert.is_true(require("orket.c.proc").path_ok(long:sub(1, 2047)))
    assert.is_false(require("orket.c.proc").path_ok(long))
    assert.equal([[orket.lua: mcp.servers.x.read_only[1]: must be at most 2047 bytes (got 2048 bytes: "/]]
      .. string.rep("a", 63) .. [["...)]], check { servers = { x = { command = { "x" }, read_only = { long } } } })
    assert.is_nil(check { servers = { x = { command = { "x" }, read_only = { long:sub(1, 2047) } } } })
    -- the start is cut on a character's start: half of one would be shown as an escaped byte
    for _, ch in ipairs { "\u{e9}", "\u{20ac}", "\u{1f600}" } do
      local wide = "/" .. string.rep("a", 62) .. ch .. string.rep("b", 2047)
      assert.equal([[orket.lua: mcp.servers.x.read_only[1]: must be at most 2047 bytes (got ]] .. #wide
        .. [[ bytes: "/]] .. string.rep("a", 62) .. [["...)]], check { servers = { x = { command = { "x" }, read_only = { wide } } } })
    end
    local whole = "/" .. string.rep("a", 62) .. "\u{e9}" .. string.rep("b", 2047) -- a character ending on byte 64 is kept
    whole = whole:sub(2)
    assert.equal([[orket.lua: mcp.servers.x.read_only[1]: must be at most 2047 bytes (got ]] .. #whole
      .. [[ bytes: "]] .. string.rep("a", 62) .. "\u{e9}" .. [["...)]], check { servers = { x = { command = { "x" }, read_only = { whole } } } })
    assert.matches("mcp.servers.x.command", check { servers = { x = { command = "node" } } })
    assert.matches("mcp.servers.x.url", check { servers = { x = { url = "ftp://x" } } })
    assert.matches("mcp.servers.Bad", check { servers = { Bad = { command = { "x" } } } })
    assert.matches("mcp.servers.a__b", check { servers = { a__b = { command = { "x" } } } })
    assert.matches("mcp.servers.x.headers_env.Auth", check { servers = { x = { url = "http://h", headers_env = { Auth = "not a var" } } } })
    assert.matches("mcp.servers.x.env", check { servers = { x = { command = { "x" }, env = { ORKET_KEY = "1" } } } })
    assert.matches("mcp.servers.x.headers.Authorization: must be secret \"NAME\"",
      check { servers = { x = { url = "http://h", headers = { Authorization = "Bearer plain" } } } })
    assert.matches("mcp.servers.x.headers: goes with url", check { servers = { x = { command = { "x" }, headers = {} } } })
    assert.matches("mcp.servers.x.bogus: unknown setting", check { servers = { x = { command = { "x" }, bogus = 1 } } })
    assert.matches("mcp.other", check { other = 1 })
  end)
  it("has every problem of every server checked, by server name then field, the same each time", function()
    local src = { servers = {} }
    for i = 1, 12 do
      src.servers["s" .. string.format("%02d", i)] = { command = "node", timeout_ms = -1 }
    end
    src.servers.zz = { url = "ftp://x" }
    local want = {}
    for i = 1, 12 do
      local n = string.format("s%02d", i)
      want[#want + 1] = "mcp.servers." .. n .. ".command"
      want[#want + 1] = "mcp.servers." .. n .. ".timeout_ms"
    end
    want[#want + 1] = "mcp.servers.zz.url"
    local problems = settings.check { mcp = src }
    local got = {}
    for _, p in ipairs(problems) do got[#got + 1] = p:match("^orket%.lua: ([%w._]+):") end
    assert.same(want, got)
    -- resolve still stops at the first
    local _, err = settings.resolve { mcp = src }
    assert.matches("mcp.servers.s01.command", err, 1, true)
  end)
end)
