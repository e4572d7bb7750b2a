-- A write whose body is still arriving when its credential is revoked, its person disabled,
-- demoted or taken out of the project, does not run (orket.serve.init, Server:recheck): the
-- credential and role are asked again once the body is read. JSON routes, the bodiless
-- writes and /mcp's raw body alike; a slow write whose credential stands still goes through.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"

local sockets = {}
local function raw(port, text)
  local c = uv.new_tcp()
  sockets[#sockets + 1] = c
  local st = { data = {}, closed = false, connected = false }
  c:connect("127.0.0.1", port, function(e)
    if e then st.closed = true return end
    st.connected = true
    c:write(text)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.closed = true end
    end)
  end)
  H.wait_for(function() return st.connected or st.closed end, "a connection")
  return { write = function(s) c:write(s) end, got = function() return table.concat(st.data) end }
end

-- a request sent whole but for the body's last bytes: finish() sends them and returns the
-- answer's status and body
local function slow(s, path, headers, body)
  local head = "POST " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. s.port .. "\r\n" .. table.concat(headers, "\r\n")
    .. "\r\nContent-Length: " .. #body .. "\r\n\r\n"
  local c = raw(s.port, head .. body:sub(1, 3))
  orket.sleep(300) -- the headers checked, the body waited for
  return function()
    c.write(body:sub(4))
    local got = H.wait_for(function()
      local t = c.got()
      local len = tonumber(t:match("\r\n[Cc]ontent%-[Ll]ength: *(%d+)"))
      local at = t:find("\r\n\r\n", 1, true)
      return at and len and #t >= at + 3 + len and t or nil
    end, "the answer")
    return tonumber(got:match("^HTTP/1%.1 (%d+)")), got:match("\r\n\r\n(.*)$")
  end
end

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

local function sign_in(s, user)
  local st, doc, h = H.request(s, "POST", "/v1/session", { JSON }, { user = user, password = PASS })
  assert(st == 200, "sign-in of " .. user .. ": " .. tostring(st))
  return { "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);"), "X-CSRF-Token: " .. doc.csrf, JSON }
end

local function comments(dir)
  return ok(H.orket("card API-2", { cwd = dir }), "card").stdout
end

describe("a write in flight when its credential goes", function()
  local sigpipe
  setup(function()
    sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
  end)
  teardown(function() sigpipe:close() end)
  after_each(function()
    for _, c in ipairs(sockets) do if not c:is_closing() then c:close() end end
    sockets = {}
    H.kill_servers()
    H.cleanup()
  end)

  it("is refused after a key revoke, a disable, a demotion or a membership taken", function()
    local dir = H.example("webapp")
    for _, p in ipairs { { "alice", "operator" }, { "carl", "operator" }, { "dora", "operator" }, { "erin", "operator" },
        { "boss", "admin" } } do
      ok(H.orket("users add " .. p[1] .. " --role " .. p[2] .. " --password-env PW", { cwd = dir,
        env = { PW = PASS } }), "users add")
    end
    local key = ok(H.orket("keys create ak --role operator --for alice", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local ckey = ok(H.orket("keys create ck --role operator --for carl", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    local dora, erin, boss = sign_in(s, "dora"), sign_in(s, "erin"), sign_in(s, "boss")
    local function body(text) return cjson.encode { body = text } end
    local path = "/v1/cards/API-2/comments"

    -- a slow write whose credential stands goes through (the store unchanged, or changed
    -- by someone else's write)
    local fin = slow(s, path, { "Authorization: Bearer " .. key, JSON }, body("SLOW-BUT-FINE"))
    assert.equal(200, (fin()))
    fin = slow(s, path, { "Authorization: Bearer " .. key, JSON }, body("SLOW-OTHER-WRITE"))
    ok(H.orket("users add frank --role viewer --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    assert.equal(200, (fin()))

    -- the key revoked while its body came
    fin = slow(s, path, { "Authorization: Bearer " .. key, JSON }, body("AFTER-KEY-REVOKE"))
    ok(H.orket("keys revoke ak", { cwd = dir }), "keys revoke")
    local st = fin()
    assert.equal(401, st)

    -- the person taken out of the project
    fin = slow(s, path, { "Authorization: Bearer " .. ckey, JSON }, body("AFTER-MEMBER-REVOKE"))
    ok(H.orket("projects revoke default carl", { cwd = dir }), "projects revoke")
    assert.equal(404, (fin()))

    -- the person disabled, through the API, a session's write (with its CSRF token)
    fin = slow(s, path, dora, body("AFTER-DISABLE"))
    assert.equal(200, (H.request(s, "POST", "/v1/users/dora/disable", boss, {})))
    assert.equal(401, (fin()))

    -- made a viewer of the project: the write needs a developer
    fin = slow(s, path, erin, body("AFTER-DEMOTION"))
    ok(H.orket("projects grant default erin viewer", { cwd = dir }), "projects grant")
    local dst, dtext = fin()
    assert.equal(403, dst, dtext)

    -- a server admin disabled while the body making a new admin came
    local boss_key = ok(H.orket("keys create bk --role admin --for boss", { cwd = dir }), "key").stdout:gsub("\n$", "")
    fin = slow(s, "/v1/users", { "Authorization: Bearer " .. boss_key, JSON },
      cjson.encode { name = "backdoor", role = "admin", password = "backdoor-pass-1" })
    ok(H.orket("users disable boss", { cwd = dir }), "users disable")
    assert.equal(401, (fin()))
    assert.no_match("backdoor", ok(H.orket("users list", { cwd = dir }), "users list").stdout)

    local text = comments(dir)
    assert.matches("SLOW-BUT-FINE", text, 1, true)
    assert.matches("SLOW-OTHER-WRITE", text, 1, true)
    for _, w in ipairs { "AFTER-KEY-REVOKE", "AFTER-MEMBER-REVOKE", "AFTER-DISABLE", "AFTER-DEMOTION" } do
      assert.no_match(w, text, 1, true)
    end
  end)

  it("is refused on /mcp (its raw body) after a key revoke", function()
    local dir = H.example("webapp")
    ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local key = ok(H.orket("keys create ak --role operator --for alice", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    local hs = { "Authorization: Bearer " .. key, JSON, "Accept: application/json, text/event-stream" }
    local _, _, h = H.request(s, "POST", "/mcp", hs, { jsonrpc = "2.0", id = 1, method = "initialize",
      params = { protocolVersion = "2025-06-18", capabilities = {}, clientInfo = { name = "t", version = "1" } } })
    local sid = assert(h["mcp-session-id"])
    local call = cjson.encode { jsonrpc = "2.0", id = 2, method = "tools/call",
      params = { name = "comment", arguments = { id = "API-2", body = "MCP-AFTER-REVOKE" } } }
    local fin = slow(s, "/mcp", { hs[1], hs[2], hs[3], "Mcp-Session-Id: " .. sid }, call)
    ok(H.orket("keys revoke ak", { cwd = dir }), "keys revoke")
    local st = fin()
    assert.equal(401, st)
    assert.no_match("MCP-AFTER-REVOKE", comments(dir), 1, true)
  end)
end)
