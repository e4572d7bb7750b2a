-- Cookies sent on several Cookie lines (what an HTTP/2 client sends as separate fields, or a
-- front end that does not join them): read as one list joined with "; " (RFC 6265 5.4, RFC
-- 9113 8.2.3), so that Orket's own cookies (orket_app, orket_session, orket_local) are
-- found on whatever line they came, and never reach the app. Joined with ", ", as other
-- repeated fields are, the app got "theme=dark, orket_app=TOKEN" (the person's app session)
-- as its own cookie, and with orket_app first the person was refused (its value read as
-- "TOKEN,").
local httpd = require "orket.c.httpd"
local ops = require "orket.store.sandboxes"
local crypto = require "orket.c.crypto"
local grants = require "orket.store.app_grants"
local task = require "orket.task"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

-- the app's cookies as it got them: the Cookie lines of a request's head
local function cookies_of(head)
  local out = {}
  for v in head:gmatch("\r\n[Cc][Oo][Oo][Kk][Ii][Ee]:[ \t]*([^\r]*)") do out[#out + 1] = v end
  return out
end

describe("repeated Cookie lines", function()
  after_each(function() H.cleanup() end)

  it("are joined with '; ' in a request's headers, other repeated fields with ', '", function()
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local seen
    task.spawn(function()
      local req = srv:accept()
      seen = { cookie = req.headers.cookie, accept = req.headers.accept }
      req:respond(200, { "Content-Type: text/plain" }, "ok")
      req:close()
    end)
    local st = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/", headers = { "Cookie: a=1",
      "Cookie: orket_session=S; b=2", "Cookie: c=3", "Accept: text/plain", "Accept: text/html" } }
    assert.equal(200, st)
    assert.same({ cookie = "a=1; orket_session=S; b=2; c=3", accept = "text/plain, text/html" }, seen)
    srv:close()
    -- and read so: each line's cookie is found, none other than its own value
    local cookie = require "orket.serve.cookie"
    local function get(c, name) return cookie.get({ headers = { cookie = c } }, name) end
    assert.equal("S", get("a=1; orket_session=S; b=2; c=3", "orket_session"))
    assert.equal("S", get("orket_session=S; theme=dark", "orket_session"))
    assert.equal("3", get("a=1;b=2;c=3", "c"))
    assert.equal("", get("a=; b=2", "a"))
    assert.is_nil(get("theme=dark, orket_session=S", "orket_session")) -- one cookie, named theme
    assert.is_nil(get("x=a orket_session=S", "orket_session")) -- an app's value holding a name
    -- a hostile header's runs of spaces are read in one pass (no search backtracks over them)
    local sp = (" "):rep(7000)
    assert.equal("x" .. sp .. "y", get("a=" .. sp .. "x" .. sp .. "y" .. sp, "a"))
    assert.is_nil(get(sp .. sp, "a"))
    assert.is_nil(get("a" .. sp .. "b=1", "a"))
  end)

  describe("on an app's own origin", function()
    -- an app answering each request with the head it got
    local function echo_app()
      local sock = H.tmpdir() .. "/app.sock"
      local app = uv.new_pipe(false)
      assert(app:bind(sock))
      app:listen(16, function()
        local c = uv.new_pipe(false)
        app:accept(c)
        local got = ""
        c:read_start(function(_, d)
          if not d then return end
          got = got .. d
          local head = got:match("^(.-\r\n)\r\n")
          if not head then return end
          c:read_stop()
          c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #head .. "\r\n\r\n" .. head,
            function() c:close() end)
        end)
      end)
      return app, sock
    end

    -- a local-use server with one healthy sandbox at sock and a person's app session for it
    -- -> request(lines) -> status, body; the session's token; the stop
    local function server(sock)
      local dir = H.tmpdir()
      os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
      local db = require("tests.backends").open_store()
      local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0 }
      local pid = uv.os_getpid()
      local id = ops.insert(db, { target = "main", port = 0, socket = sock, command = "[]", owner_pid = pid,
        owner_start = require("orket.sandboxes.service").start_time(pid) })
      ops.set_status(db, id, "healthy")
      local token = crypto.random_id(32)
      grants.insert(db, crypto.hash(token, 32), "session", { sandbox = math.tointeger(id), local_use = true,
        role = "operator", expires_s = os.time() + 3600 })
      local host = "Host: " .. math.tointeger(id) .. ".sandbox.localhost:" .. srv:port()
      return function(lines)
        local hs = { host }
        for _, l in ipairs(lines) do hs[#hs + 1] = l end
        return H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/echo", total_timeout_ms = 20000, headers = hs }
      end, token, stop
    end

    it("signs the person in from any line and passes the app its cookies alone", function()
      local app, sock = echo_app()
      local request, T, stop = server(sock)
      local ok, e = pcall(function()
        local cases = {
          -- Cookie lines sent -> the app's Cookie lines
          { { "Cookie: theme=dark", "Cookie: orket_app=" .. T }, { "theme=dark" } },
          { { "Cookie: orket_app=" .. T, "Cookie: theme=dark" }, { "theme=dark" } },
          { { "Cookie: a=1", "Cookie: orket_app=" .. T .. "; orket_session=S", "Cookie: orket_local=L; b=2" },
            { "a=1; b=2" } },
          { { "Cookie: orket_local=L", "Cookie: list=a,b; orket_app=" .. T, "Cookie: orket_session=S" },
            { "list=a,b" } },
          { { "Cookie: orket_app=" .. T, "Cookie: orket_session=S" }, {} },
          -- one line a front end joined with ", " (RFC 9110's way for other fields): Orket's
          -- part of it is not passed either, the app's is
          { { "Cookie: orket_app=" .. T .. "; theme=dark, orket_session=S, x=1" }, { "theme=dark, x=1" } },
          { { "Cookie: orket_app=" .. T, "Cookie: orket_session=S, theme=dark" }, { "theme=dark" } },
          -- runs of spaces, as a hostile client sends them, read in one pass
          { { "Cookie: orket_app=" .. T .. ";" .. (" "):rep(6000) .. "theme=dark" .. (" "):rep(6000) }, { "theme=dark" } },
        }
        for i, c in ipairs(cases) do
          local st, body = request(c[1])
          assert.equal(200, st, "case " .. i .. ": " .. tostring(body))
          assert.same(c[2], cookies_of(body), "case " .. i)
          for _, secret in ipairs { T, "orket_", "=S", "=L" } do
            assert.is_nil(body:find(secret, 1, true), "case " .. i .. " passed " .. secret)
          end
        end
        -- without orket_app on any line: refused, as before
        assert.equal(401, (request { "Cookie: theme=dark", "Cookie: orket_session=S" }))
      end)
      stop()
      app:close()
      assert(ok, e)
    end)
  end)
end)
