-- A sandbox's app on an origin of its own (docs/serve.md, "Apps on their own origins"):
-- orket serve answers a Host of ID.sandbox.localhost with that sandbox's app, reached only
-- through the single-use ticket the board hands over; the app's cookie is its host's only,
-- bound to the person and the sandbox; the app's own cookies, redirects and posts cross as
-- deployed, Orket's never; and nothing from the app's side acts on the API with the board's
-- session. Over HTTP here (curl sends the Host a browser would); in Chromium, with a page
-- whose script tries the API, in a second test. Needs network and user namespaces and node.
local H = require "tests.helpers"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local WD = require "tests.webdriver"

local SERVER = [[
const mark = process.argv[2];
require('http').createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.url === '/cookies') {
      res.setHeader('Set-Cookie', ['theme=dark; Path=/; Expires=Thu, 01 Jan 2037 00:00:00 GMT',
        'wide=1; Domain=localhost; Path=/', 'orket_session=stolen; Path=/']);
      return res.end('set');
    }
    if (req.url === '/broken') return req.socket.end('NOT HTTP\r\n\r\n');
    if (req.url === '/go') {
      res.writeHead(302, { Location: 'http://' + req.headers.host + '/landed' });
      return res.end();
    }
    if (req.url === '/page') {
      res.setHeader('Content-Type', 'text/html');
      return res.end('<!doctype html><title>app</title><p id="hello">app ' + mark + '</p>');
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ mark: mark, url: req.url, method: req.method, body: body, host: req.headers.host,
      cookie: req.headers.cookie || null, authorization: req.headers.authorization || null,
      ctype: req.headers['content-type'] || null, clen: req.headers['content-length'] || null }));
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local function lower(h)
  local out = {}
  for k, v in pairs(h or {}) do out[tostring(k):lower()] = v end
  return out
end

-- The functions below take s, orket serve (H.serve) or a proxy in front of it: {url=, port=,
-- base= the apps' base name (default sandbox.localhost), board= the board's Host (default
-- the address's)}.

-- app(s, id, path, o) -> status, text, headers: a request to sandbox id's origin on server s
local function app(s, id, path, o)
  o = o or {}
  local headers = { "Host: " .. id .. "." .. (s.base or "sandbox.localhost") .. ":" .. s.port }
  for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
  if o.cookie then headers[#headers + 1] = "Cookie: " .. o.cookie end
  local st, text, h = H.fetch { url = s.url .. path, method = o.method, body = o.body, headers = headers,
    total_timeout_ms = 20000 }
  return st, text, lower(h)
end

-- absolute(s, target, headers) -> status, text: a GET whose request target is written as
-- given, in absolute form ("http://host/path", RFC 9112 3.2.2), which clients send to a
-- proxy rather than to a server, and curl only to a proxy
local function absolute(s, target, headers)
  local text = "GET " .. target .. " HTTP/1.1\r\n" .. table.concat(headers, "\r\n") .. "\r\nConnection: close\r\n\r\n"
  local p = assert(io.popen("python3 -c " .. H.quote("import socket,sys\n"
    .. "c = socket.create_connection(('127.0.0.1', " .. s.port .. "))\n"
    .. "c.sendall(bytes.fromhex('" .. text:gsub(".", function(ch) return string.format("%02x", ch:byte()) end) .. "'))\n"
    .. "c.settimeout(10); out = b''\n"
    .. "while True:\n    d = c.recv(65536)\n    if not d: break\n    out += d\n"
    .. "sys.stdout.write(out.decode('latin-1'))\n")))
  local answer = p:read("a")
  p:close()
  return tonumber(answer:match("^HTTP/1%.1 (%d+)")), answer:match("\r\n\r\n(.*)$")
end

-- signed_in(s, key) -> the board's cookie and CSRF token for key
local function signed_in(s, key)
  local st, text, h = H.fetch { url = s.url .. "/v1/session", method = "POST", body = cjson.encode { key = key },
    headers = { "Content-Type: application/json", s.board and ("Host: " .. s.board) or nil }, total_timeout_ms = 10000 }
  assert.equal(200, st, text)
  return lower(h)["set-cookie"]:match("^([^;]+)"), cjson.decode(text).csrf
end

-- opened(s, id, board_cookie) -> the app's cookie ("orket_app=..."), the redirect's headers
local function opened(s, id, board)
  local st, text, h = H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/open",
    headers = { "Cookie: " .. board, s.board and ("Host: " .. s.board) or nil }, total_timeout_ms = 10000 }
  assert.equal(303, st, text)
  local loc = lower(h).location
  local t = loc:match("^http://" .. id .. "%." .. (s.base or "sandbox.localhost"):gsub("%.", "%%.") .. ":" .. s.port
    .. "/__orket/ticket%?t=(%x+)$")
  assert.truthy(t, loc)
  local rst, rtext, rh = app(s, id, "/__orket/ticket?t=" .. t)
  assert.equal(303, rst, rtext)
  assert.equal("/", rh.location)
  -- once only
  assert.equal(403, (app(s, id, "/__orket/ticket?t=" .. t)))
  return rh["set-cookie"]:match("^([^;]+)"), rh
end

describe("a sandbox's app on an origin of its own", function()
  local skip
  setup(function()
    if not H.sandbox_offered("node") then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is reached through the board's ticket only, with a cookie of its host bound to the person and the sandbox", function()
    if skip then return pending(skip) end
    local mark = "sba" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local op = H.api_key(dir, "op", "operator")
    local viewer = H.api_key(dir, "v", "viewer")
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local other = math.tointeger(doc.sandbox.id)

    -- no ticket, no key: the origin takes neither a key nor the board's cookie
    local board, csrf = signed_in(s, op)
    assert.equal(401, (app(s, id, "/")))
    assert.equal(401, (app(s, id, "/", { headers = { "Authorization: Bearer " .. op } })))
    assert.equal(401, (app(s, id, "/", { cookie = board })))
    assert.equal(403, (app(s, id, "/__orket/ticket?t=" .. string.rep("a", 64))))

    -- one key's share of the waiting tickets (each used up as it is redeemed): 16, then
    -- 429, so that no key fills the server's and keeps everyone else from opening apps
    local function ticket()
      local tst, ttext, th = H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/open", total_timeout_ms = 10000,
        headers = { "Cookie: " .. board } }
      return tst, ttext, lower(th)
    end
    local waiting = {}
    for i = 1, 16 do
      local tst, ttext, th = ticket()
      assert.equal(303, tst, ttext)
      waiting[i] = th.location:match("t=(%x+)$")
    end
    local tst, ttext, th = ticket()
    assert.equal(429, tst, ttext)
    assert.equal("60", th["retry-after"])
    assert.equal(303, (H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/open", total_timeout_ms = 10000,
      headers = { "Authorization: Bearer " .. viewer } })) -- another key's share is its own
    assert.equal(303, (app(s, id, "/__orket/ticket?t=" .. waiting[1])))
    assert.equal(303, (ticket())) -- one redeemed, one more may wait
    assert.equal(303, (app(s, id, "/__orket/ticket?t=" .. waiting[2])))
    local cookie, rh = opened(s, id, board)
    local set = rh["set-cookie"]
    assert.matches("^orket_app=%x+; Path=/; HttpOnly; SameSite=Lax; Max%-Age=%d+$", set)
    assert.is_nil(set:find("Domain", 1, true)) -- its host's only
    assert.is_nil(set:find(board:match("=(.*)$"), 1, true)) -- never the board's session

    -- the app as deployed: its Host, its cookies, never Orket's cookies or a key
    local ast, atext = app(s, id, "/echo/a%20b?x=1%262", { cookie = cookie .. "; theme=light; " .. board,
      headers = { "Authorization: Bearer " .. op } })
    assert.equal(200, ast, atext)
    local echo = cjson.decode(atext)
    assert.equal(mark, echo.mark)
    assert.equal("/echo/a%20b?x=1%262", echo.url)
    -- a form's GET as a browser sends it: "+" for a space, an empty field, in its order
    ast, atext = app(s, id, "/echo?q=hello+world&e=&x=1", { cookie = cookie })
    assert.equal(200, ast, atext)
    assert.equal("/echo?q=hello+world&e=&x=1", cjson.decode(atext).url)
    -- checkboxes of one name: every value, in the order sent (only the first reached it)
    ast, atext = app(s, id, "/echo?tag=a&x=1&tag=b+c&tag=", { cookie = cookie })
    assert.equal(200, ast, atext)
    assert.equal("/echo?tag=a&x=1&tag=b+c&tag=", cjson.decode(atext).url)
    -- an upload past the server's body cap: refused, saying the cap and what sets it. Only
    -- its headers are sent (the refusal comes before the body is read; a body the server
    -- never reads may reset the connection before the client reads the answer)
    local raw = assert(io.popen("python3 -c " .. H.quote("import socket,sys\n"
      .. "c = socket.create_connection(('127.0.0.1', " .. s.port .. "))\n"
      .. "c.sendall(b'POST /echo HTTP/1.1\\r\\nHost: " .. id .. ".sandbox.localhost:" .. s.port .. "\\r\\nCookie: "
      .. cookie .. "\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: 1048577\\r\\n\\r\\n')\n"
      .. "c.settimeout(10); out = b''\n"
      .. "while b'\\r\\n\\r\\n' not in out or not out.rstrip().endswith(b'.'):\n"
      .. "    d = c.recv(65536)\n    if not d: break\n    out += d\n"
      .. "sys.stdout.write(out.decode('latin-1'))\n")))
    local answer = raw:read("a")
    raw:close()
    assert.matches("^HTTP/1.1 413 ", answer)
    assert.matches("at most 1048576 bytes: ORKET_SERVE_LIMITS max_body_bytes", answer, 1, true)
    assert.equal(id .. ".sandbox.localhost:" .. s.port, echo.host)
    assert.equal("theme=light", echo.cookie)
    assert.equal(cjson.null, echo.authorization)
    -- its own paths, /v1 included, are the app's: nothing there reaches the API
    ast, atext = app(s, id, "/v1/board", { cookie = cookie })
    assert.equal(200, ast)
    assert.equal("/v1/board", cjson.decode(atext).url)
    ast, atext = app(s, id, "/v1/cards/START-1/comments", { cookie = cookie, method = "POST", body = '{"body":"x"}',
      headers = { "Content-Type: application/json", "X-CSRF-Token: " .. csrf } })
    assert.equal(200, ast)
    assert.equal(mark, cjson.decode(atext).mark)
    -- a target in absolute form: its host decides the origin, never a Host header beside it
    -- (RFC 9112 3.2.2); the app is told the host its target named
    local own, api = id .. ".sandbox.localhost:" .. s.port, "127.0.0.1:" .. s.port
    -- (a query argument named host is the app's own, never the target's host)
    ast, atext = absolute(s, "http://" .. own .. "/echo/abs?host=mine&x=1", { "Host: " .. api, "Cookie: " .. cookie })
    assert.equal(200, ast, atext)
    echo = cjson.decode(atext)
    assert.equal(mark, echo.mark)
    assert.equal("/echo/abs?host=mine&x=1", echo.url)
    assert.equal(own, echo.host)
    ast, atext = absolute(s, "http://" .. api .. "/v1/board", { "Host: " .. own, "Cookie: " .. cookie,
      "Authorization: Bearer " .. op })
    assert.equal(200, ast, atext)
    assert.equal("orket.board/1", cjson.decode(atext).format) -- the API's, not the app's
    -- its cookies cross, host-only, and never one of Orket's names
    local _, _, ch = app(s, id, "/cookies", { cookie = cookie })
    assert.matches("theme=dark; Path=/; Expires=Thu, 01 Jan 2037 00:00:00 GMT", ch["set-cookie"], 1, true)
    assert.matches("wide=1; Path=/", ch["set-cookie"], 1, true)
    assert.is_nil(ch["set-cookie"]:find("Domain", 1, true))
    assert.is_nil(ch["set-cookie"]:find("orket_session", 1, true))
    assert.is_nil(ch["content-security-policy"]) -- a page of its own origin, not an opaque one
    assert.equal(tostring(id), ch["x-orket-sandbox"])
    -- the same app through the API's proxy: an opaque origin, none of its cookies; each way
    -- keeps its own answer lines (orket.serve.sandboxes' kept options, by socket and way)
    local pst, _, ph = H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/app/cookies", total_timeout_ms = 10000,
      headers = { "Authorization: Bearer " .. op } }
    assert.equal(200, pst)
    assert.matches("^sandbox allow%-scripts", ph["content-security-policy"])
    assert.is_nil(ph["set-cookie"])
    _, _, ch = app(s, id, "/cookies", { cookie = cookie })
    assert.is_nil(ch["content-security-policy"])
    assert.matches("theme=dark", ch["set-cookie"], 1, true)
    -- a redirect it builds from its Host stays on its origin
    local gst, _, gh = app(s, id, "/go", { cookie = cookie })
    assert.equal(302, gst)
    assert.equal("http://" .. id .. ".sandbox.localhost:" .. s.port .. "/landed", gh.location)
    -- a post
    ast, atext = app(s, id, "/notes", { cookie = cookie, method = "POST", body = "text=hi",
      headers = { "Content-Type: application/x-www-form-urlencoded" } })
    assert.equal(200, ast, atext)
    assert.equal("text=hi", cjson.decode(atext).body)
    assert.equal("application/x-www-form-urlencoded", cjson.decode(atext).ctype)
    -- the app is told no type the client did not send, and no body a DELETE did not have
    ast, atext = app(s, id, "/notes/1", { cookie = cookie, method = "DELETE" })
    assert.equal(200, ast, atext)
    echo = cjson.decode(atext)
    assert.equal("DELETE", echo.method)
    assert.equal(cjson.null, echo.ctype)
    assert.equal(cjson.null, echo.clen)
    ast, atext = app(s, id, "/notes", { cookie = cookie, method = "POST", body = '{"a":1}', headers = { "Content-Type:" } })
    assert.equal(200, ast, atext)
    echo = cjson.decode(atext)
    assert.equal('{"a":1}', echo.body)
    assert.equal(cjson.null, echo.ctype)
    assert.equal("7", echo.clen)
    -- an answer that is not HTTP: 502, and what libcurl made of it in the log, not the answer
    local bst, btext = app(s, id, "/broken", { cookie = cookie })
    assert.equal(502, bst)
    assert.matches("gave no answer that could be passed on", btext, 1, true)
    assert.is_nil(btext:lower():find("http/0.9", 1, true))
    -- (a request's log line is written once its answer is sent: waited for)
    H.wait_for(function() return s.log():match('"note":"sandbox ' .. id .. ': [^"]+","route":"%(app%)","status":502') end,
      "the request's log line")
    -- a method the proxy does not pass is refused as one, not as the server's failure
    local mst, _, mh = app(s, id, "/x", { cookie = cookie, method = "PROPFIND" })
    assert.equal(405, mst)
    assert.equal("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", mh.allow)

    -- bound to the sandbox: not another's origin
    assert.equal(401, (app(s, other, "/", { cookie = cookie })))
    -- bound to the person: a viewer reads and does not write
    local vboard = signed_in(s, viewer)
    local vcookie = opened(s, id, vboard)
    assert.equal(200, (app(s, id, "/", { cookie = vcookie })))
    assert.equal(403, (app(s, id, "/notes", { cookie = vcookie, method = "POST", body = "x" })))
    -- the board's session cannot be used from a page of the app's site
    local from_app = { "Cookie: " .. board, "Origin: http://" .. id .. ".sandbox.localhost:" .. s.port,
      "Sec-Fetch-Site: same-site", "Sec-Fetch-Mode: cors" }
    local fst, fbody = H.fetch { url = s.url .. "/v1/board", headers = from_app, total_timeout_ms = 10000 }
    assert.equal(403, fst)
    -- said for this refusal, to the person: the session is the board page's; the app is not
    -- invited to get a credential of its own
    local remedy = cjson.decode(fbody).error.remedy
    assert.matches("^open the board itself, at this server's own address", remedy)
    assert.is_nil(remedy:find("key", 1, true))
    local w = { "Content-Type: application/json", "X-CSRF-Token: " .. csrf }
    for _, x in ipairs(from_app) do w[#w + 1] = x end
    assert.equal(403, (H.fetch { url = s.url .. "/v1/cards/START-1/comments", method = "POST",
      body = '{"body":"from the app"}', headers = w, total_timeout_ms = 10000 }))
    assert.equal(0, #H.card_json(dir, "START-1").comments)
    -- nor open another app from there
    assert.equal(403, (H.fetch { url = s.url .. "/v1/sandboxes/" .. other .. "/open", headers = from_app,
      total_timeout_ms = 10000 }))
    -- the board's own page still may
    assert.equal(200, (H.fetch { url = s.url .. "/v1/board", total_timeout_ms = 10000,
      headers = { "Cookie: " .. board, "Sec-Fetch-Site: same-origin", "Sec-Fetch-Mode: cors" } }))

    -- signing out of the board ends the app's session made from it
    assert.equal(200, (H.fetch { url = s.url .. "/v1/session", method = "DELETE",
      headers = { "Cookie: " .. board, "X-CSRF-Token: " .. csrf }, total_timeout_ms = 10000 }))
    assert.equal(401, (app(s, id, "/", { cookie = cookie })))
    -- a stopped sandbox's origin answers 409
    assert.equal(200, (H.api(s, "POST", "/v1/sandboxes/" .. id .. "/stop", op, {})))
    assert.equal(409, (app(s, id, "/", { cookie = vcookie })))
    -- nothing of the app's cookies, tickets or the board's session in the log
    local log = s.log()
    assert.is_nil(log:find(cookie:match("=(.*)$"), 1, true))
    assert.is_nil(log:find(board:match("=(.*)$"), 1, true))
    assert.equal(0, s.stop())
  end)

  it("before any key: a ticket from the board with the local token writes, one without only reads", function()
    if skip then return pending(skip) end
    local mark = "sbl" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    local s = H.serve(dir)
    assert.truthy(s.token)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", s.token, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local with_token = opened(s, id, "orket_local=" .. s.token)
    local without = opened(s, id, "other=1")
    local post = { method = "POST", body = "x", headers = { "Content-Type: text/plain" } }
    post.cookie = with_token
    assert.equal(200, (app(s, id, "/notes", post)))
    post.cookie = without
    assert.equal(403, (app(s, id, "/notes", post)))
    assert.equal(200, (app(s, id, "/", { cookie = without })))
    -- a page of another origin reads nothing of the API either
    assert.equal(403, (H.fetch { url = s.url .. "/v1/board", total_timeout_ms = 10000,
      headers = { "Sec-Fetch-Site: same-site", "Sec-Fetch-Mode: cors", "Origin: http://" .. id .. ".sandbox.localhost:" .. s.port } }))
    assert.equal(200, (H.fetch { url = s.url .. "/v1/board", total_timeout_ms = 10000 }))
    -- a person added (as a key made): local use, and the app sessions and tickets it made, end
    local _, _, th = H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/open", total_timeout_ms = 10000,
      headers = { "Cookie: orket_local=" .. s.token } }
    local waiting = lower(th).location:match("t=(%x+)$")
    local r = H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = "correct horse battery" } })
    assert.equal(0, r.status, r.stderr)
    assert.equal(401, (app(s, id, "/", { cookie = with_token })))
    assert.equal(403, (app(s, id, "/__orket/ticket?t=" .. waiting)))
    assert.equal(0, s.stop())
  end)

  -- behind nginx and Caddy as docs/serve.md configures them (plain HTTP on a loopback port
  -- here, the names under localhost: board.localhost, ID.apps.localhost)
  local function nginx_conf(dir, port, upstream)
    local loc = string.format([[
    location / {
      proxy_pass http://127.0.0.1:%d;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_read_timeout 130s;
      client_max_body_size 1m;
    }]], upstream)
    local tmp = dir .. "/tmp"
    return string.format([[
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  map "$host $http_host" $host_disagrees {
    "~*^(?<h>[^ ]+) \k<h>(:[0-9]+)?$" 0;
    default 1;
  }
  server {
    listen 127.0.0.1:%d;
    server_name board.localhost;
    if ($host_disagrees) { return 400; }
%s
  }
  server {
    listen 127.0.0.1:%d;
    server_name ~^[0-9]+\.apps\.localhost$;
    if ($host_disagrees) { return 400; }
%s
  }
}
]], dir, dir, tmp, tmp, tmp, tmp, tmp, port, loc, port, loc)
  end

  local function caddy_conf(port, upstream)
    return string.format([[
{
  admin off
  auto_https off
}
http://board.localhost:%d {
  reverse_proxy 127.0.0.1:%d {
    flush_interval -1
  }
}
http://*.apps.localhost:%d {
  reverse_proxy 127.0.0.1:%d {
    flush_interval -1
  }
}
]], port, upstream, port, upstream)
  end

  for _, front in ipairs { "nginx", "caddy" } do
    it("behind " .. front .. " as docs/serve.md sets it up", function()
      if skip then return pending(skip) end
      if not os.execute("command -v " .. front .. " >/dev/null 2>&1") then
        return pending(front .. " is not installed (scripts/deps.sh --test installs it)")
      end
      local mark = "sbp" .. math.random(1, 1e9)
      local dir = H.node_project(SERVER, mark)
      local pport = H.free_port()
      H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
        .. string.format('\nserve = { app_origin = "http://{id}.apps.localhost:%d" }\n', pport))
      local op = H.api_key(dir, "op", "operator")
      local s = H.serve(dir)
      local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
      assert.equal(201, st, text)
      local id = math.tointeger(doc.sandbox.id)
      local pdir = H.tmpdir()
      local pid = H.front(front, pdir, front == "nginx" and nginx_conf(pdir, pport, s.port) or caddy_conf(pport, s.port))
      local ok, err = pcall(function()
        local f = { url = "http://127.0.0.1:" .. pport, port = pport, base = "apps.localhost", board = "board.localhost:" .. pport }
        H.wait_for(function()
          return H.fetch { url = f.url .. "/health", headers = { "Host: " .. f.board }, total_timeout_ms = 2000 } == 200
        end, front .. " to pass requests on (" .. tostring(H.read(pdir .. "/out")) .. ")", 2000)
        local board, csrf = signed_in(f, op)
        local cookie = opened(f, id, board)
        local ast, atext = app(f, id, "/echo?x=1", { cookie = cookie .. "; theme=light" })
        assert.equal(200, ast, atext)
        local echo = cjson.decode(atext)
        assert.equal(mark, echo.mark)
        assert.equal(id .. ".apps.localhost:" .. pport, echo.host)
        assert.equal("theme=light", echo.cookie)
        local gst, _, gh = app(f, id, "/go", { cookie = cookie })
        assert.equal(302, gst)
        assert.equal("http://" .. id .. ".apps.localhost:" .. pport .. "/landed", gh.location)
        ast, atext = app(f, id, "/notes", { cookie = cookie, method = "POST", body = "text=hi",
          headers = { "Content-Type: application/x-www-form-urlencoded" } })
        assert.equal(200, ast, atext)
        assert.equal("text=hi", cjson.decode(atext).body)
        assert.equal(401, (app(f, id, "/", { cookie = board })))
        -- the board's session from the app's page, through the proxy: refused
        local hdr = { "Host: " .. f.board, "Cookie: " .. board, "X-CSRF-Token: " .. csrf, "Content-Type: application/json",
          "Origin: http://" .. id .. ".apps.localhost:" .. pport, "Sec-Fetch-Site: same-site", "Sec-Fetch-Mode: cors" }
        assert.equal(403, (H.fetch { url = f.url .. "/v1/board", headers = hdr, total_timeout_ms = 10000 }))
        assert.equal(403, (H.fetch { url = f.url .. "/v1/cards/START-1/comments", method = "POST", body = '{"body":"x"}',
          headers = hdr, total_timeout_ms = 10000 }))
        -- and from the board's own page, allowed
        assert.equal(200, (H.fetch { url = f.url .. "/v1/board", total_timeout_ms = 10000,
          headers = { "Host: " .. f.board, "Cookie: " .. board, "Sec-Fetch-Site: same-origin", "Sec-Fetch-Mode: cors" } }))
        -- a target in absolute form (RFC 9112 3.2.2): the front end chose its server block by
        -- the target's host, and orket routes by the Host the front end passes on, so the two
        -- must agree. Caddy passes the target's host on as Host; nginx, as configured, refuses
        -- a Host that names another host than its target (it would pass $http_host on).
        local own = id .. ".apps.localhost:" .. pport
        ast, atext = absolute(f, "http://" .. own .. "/echo/abs?host=mine", { "Host: " .. own, "Cookie: " .. cookie })
        assert.equal(200, ast, atext)
        assert.equal("/echo/abs?host=mine", cjson.decode(atext).url)
        ast, atext = absolute(f, "http://" .. own .. "/echo/abs", { "Host: " .. f.board, "Cookie: " .. cookie })
        if front == "nginx" then
          assert.equal(400, ast, atext)
        else
          assert.equal(200, ast, atext)
          assert.equal(own, cjson.decode(atext).host) -- the app's, as its server block was
        end
        ast, atext = absolute(f, "http://" .. f.board .. "/v1/board", { "Host: " .. own, "Cookie: " .. cookie,
          "Authorization: Bearer " .. op })
        if front == "nginx" then
          assert.equal(400, ast, atext)
        else
          assert.equal(200, ast, atext)
          assert.equal("orket.board/1", cjson.decode(atext).format) -- the API's, as its server block was
        end
      end)
      os.execute("kill " .. pid .. " 2>/dev/null")
      H.wait_for(function() return not H.alive(pid) end, front .. " to end")
      if not ok then error(err, 0) end
      assert.equal(0, s.stop())
    end)
  end

  it("in Chromium: the board's link opens the app on its origin, whose script the API refuses", function()
    if skip then return pending(skip) end
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local mark = "sbc" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local op = H.api_key(dir, "op", "operator")
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    -- the board on sandbox.localhost: the app's host, ID.sandbox.localhost, is then of the
    -- same site (for Chromium, localhost itself is a site apart), so the board's SameSite
    -- cookie goes with its script's requests, and only the server's own checks stand
    -- between that script and the API
    local board = "http://sandbox.localhost:" .. s.port
    local origin = "http://" .. id .. ".sandbox.localhost:" .. s.port
    WD.with({ width = 1024, height = 800 }, function(wd)
      wd:sign_in(board, op)
      local link = '#sandbox-list li[data-sandbox="' .. id .. '"] a.sandbox-app'
      wd:wait(link, "the sandbox's link on the board")
      local href = wd:js("return document.querySelector(arguments[0]).getAttribute('href')", link)
      assert.equal("/v1/sandboxes/" .. id .. "/open", href)
      wd:go(board .. href .. "?path=/page")
      wd:wait("#hello", "the app's page on its own origin")
      assert.equal("app " .. mark, wd:text_of("#hello"))
      assert.equal(origin, wd:js("return location.origin"))
      assert.equal("", wd:js("return document.cookie")) -- its session cookie is HttpOnly
      -- the app's script tries the API with the person's session: the browser sends the
      -- board's cookie (same site), and the server refuses
      local got = wd:js_async([[
        const api = arguments[0], done = arguments[arguments.length - 1];
        const status = (p) => p.then((r) => r.status, (e) => 'failed: ' + e.name);
        Promise.all([
          status(fetch(api + '/v1/board', { credentials: 'include' })),
          status(fetch(api + '/v1/cards/START-1/comments', { method: 'POST', credentials: 'include',
            headers: { 'Content-Type': 'text/plain' }, body: '{"body":"from the app"}' })),
          status(fetch(api + '/v1/cards/START-1/comments', { method: 'POST', credentials: 'include', mode: 'no-cors',
            headers: { 'Content-Type': 'text/plain' }, body: '{"body":"from the app"}' })),
          fetch('/v1/board').then((r) => r.json()).then((j) => j.mark + ' ' + j.url),
        ]).then(done);]], board)
      -- the answers are the API's, which the page may not read (no CORS for its origin)
      assert.equal("failed: TypeError", got[1])
      assert.equal("failed: TypeError", got[2])
      assert.equal(0, got[3]) -- opaque
      assert.equal(mark .. " /v1/board", got[4]) -- its own /v1 is its own
      assert.equal(0, #H.card_json(dir, "START-1").comments)
      -- (the server writes a request's line once its answer is sent, and may be writing one
      -- as its log is read: a line not yet whole is no line yet)
      local function refused()
        local n = 0
        for line in s.log():gmatch("[^\n]+") do
          local e = cjson_safe.decode(line)
          if type(e) == "table" and (e.route == "/v1/board" or e.route == "/v1/cards/{id}/comments") and e.status == 403
              and e.auth == "origin" then
            n = n + 1
          end
        end
        return n
      end
      H.wait_for(function() return refused() >= 3 end, "the refused requests' log lines")
      assert.equal(3, refused(), s.log())
    end)
    assert.equal(0, s.stop())
  end)

  it("opens an app for a person signed in with a password, and ends it when they are disabled or leave", function()
    if skip then return pending(skip) end
    local mark = "sbp" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local op = H.api_key(dir, "op", "operator")
    local r = H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = "correct horse battery" } })
    assert.equal(0, r.status, r.stderr)
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local function person_board()
      local pst, ptext, ph = H.fetch { url = s.url .. "/v1/session", method = "POST", total_timeout_ms = 20000,
        body = cjson.encode { user = "alice", password = "correct horse battery" }, headers = { "Content-Type: application/json" } }
      assert.equal(200, pst, ptext)
      return lower(ph)["set-cookie"]:match("^([^;]+)")
    end
    local cookie = opened(s, id, person_board())
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie })))
    -- disabled: the app's session ends at once, as the board's
    assert.equal(0, H.orket("users disable alice", { cwd = dir }).status)
    assert.equal(401, (app(s, id, "/echo", { cookie = cookie })))
    assert.equal(0, H.orket("users enable alice", { cwd = dir }).status)
    cookie = opened(s, id, person_board())
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie })))
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie, method = "POST", body = "a=1" })))
    -- made a viewer of the project: the app's session opened before reads and writes no more
    assert.equal(0, H.orket("projects grant default alice viewer", { cwd = dir }).status)
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie })))
    assert.equal(403, (app(s, id, "/echo", { cookie = cookie, method = "POST", body = "a=2" })))
    -- an operator again: the session writes again (never above the role it was opened with)
    assert.equal(0, H.orket("projects grant default alice operator", { cwd = dir }).status)
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie, method = "POST", body = "a=3" })))
    -- no longer a member of the project the sandbox is of: the same
    assert.equal(0, H.orket("projects revoke default alice", { cwd = dir }).status)
    assert.equal(401, (app(s, id, "/echo", { cookie = cookie })))
    assert.equal(0, s.stop())
  end)

  it("ends an app opened with a provider's person's key when the key passes its lifetime, as the API does", function()
    if skip then return pending(skip) end
    local mark = "sbo" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local root = H.api_key(dir, "root", "admin")
    -- a person of an OpenID Connect provider, as a sign-in through it keeps them
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.users").insert(db, "olivia", "operator", require("orket.serve.identity").mark("oidc", "iss\0o"))
    db:close()
    assert.equal(0, H.orket("projects grant default olivia operator", { cwd = dir }).status)
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/users/olivia/keys", root, { name = "olivia-ci", role = "operator" })
    assert.equal(201, st, text)
    local key, key_id = doc.key, doc.id
    st, doc, text = H.api(s, "POST", "/v1/sandboxes", root, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local cookie = opened(s, id, (signed_in(s, key)))
    assert.equal(200, (app(s, id, "/echo", { cookie = cookie })))
    db = assert(require("orket.project").open_store(dir, false))
    assert(db:run("UPDATE api_keys SET created_at = ? WHERE id = ?",
      os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() - 31 * 86400), key_id))
    db:close()
    assert.equal(401, (H.api(s, "GET", "/v1/session", key)))
    assert.equal(401, (app(s, id, "/echo", { cookie = cookie })))
    assert.equal(0, s.stop())
  end)
end)
