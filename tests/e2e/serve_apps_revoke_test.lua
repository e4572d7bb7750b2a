-- An app on its own origin (docs/serve.md, "Apps on their own origins") whose person loses
-- the right to it while a request is under way: a write whose body was still arriving
-- went through, and a streamed answer kept flowing, though the app's session had ended
-- (the API's own requests are asked again: serve_revoke_inflight_test,
-- serve_stream_revoke_test). Needs network and user namespaces and node.
local H = require "tests.helpers"
local cjson = require "cjson"

local SERVER = [[
require('http').createServer((req, res) => {
  if (req.url === '/slow') { res.write('first'); return; } // held open: a stream
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => res.end('got ' + body));
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local PASS = "correct horse battery"

local function lower(h)
  local out = {}
  for k, v in pairs(h or {}) do out[tostring(k):lower()] = v end
  return out
end

-- the app's cookie for alice, through the board's ticket
local function opened(s, id)
  local st, text, h = H.fetch { url = s.url .. "/v1/session", method = "POST", total_timeout_ms = 20000,
    body = cjson.encode { user = "alice", password = PASS }, headers = { "Content-Type: application/json" } }
  assert.equal(200, st, text)
  local board = lower(h)["set-cookie"]:match("^([^;]+)")
  st, text, h = H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/open", headers = { "Cookie: " .. board },
    total_timeout_ms = 10000 }
  assert.equal(303, st, text)
  local t = lower(h).location:match("/__orket/ticket%?t=(%x+)$")
  st, text, h = H.fetch { url = s.url .. "/__orket/ticket?t=" .. t, total_timeout_ms = 10000,
    headers = { "Host: " .. id .. ".sandbox.localhost:" .. s.port } }
  assert.equal(303, st, text)
  return lower(h)["set-cookie"]:match("^([^;]+)")
end

describe("an app on its own origin whose person is disabled meanwhile", function()
  local skip
  setup(function()
    if not H.sandbox_offered("node") then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("ends its streamed answer and refuses its write whose body came after", function()
    if skip then return pending(skip) end
    local dir = H.node_project(SERVER, "x")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local op = H.api_key(dir, "op", "operator")
    local r = H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(0, r.status, r.stderr)
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    H.wait_for(function() return select(2, H.api(s, "GET", "/v1/sandboxes/" .. id, op)).sandbox.status == "healthy" end,
      "healthy", 3000)
    local cookie = opened(s, id)
    local host = "Host: " .. id .. ".sandbox.localhost:" .. s.port
    local stream = H.stream { url = s.url .. "/slow", headers = { host, "Cookie: " .. cookie }, total_timeout_ms = 60000 }
    H.wait_for(function() return stream.text():find("first", 1, true) end, "the app's first bytes")
    -- a write whose headers came before the disable and its body after
    local out = H.tmpdir() .. "/post.out"
    local req = "POST /echo HTTP/1.1\r\n" .. host .. "\r\nCookie: " .. cookie
      .. "\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
    os.execute("python3 -c " .. H.quote("import socket,sys,time\n"
      .. "c = socket.create_connection(('127.0.0.1', " .. s.port .. "))\n"
      .. "c.sendall(bytes.fromhex('" .. req:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
      .. "') + b'abc')\ntime.sleep(4)\nc.sendall(b'defghij')\nc.settimeout(10); out = b''\n"
      .. "while True:\n    d = c.recv(65536)\n    if not d: break\n    out += d\n"
      .. "open(sys.argv[1], 'wb').write(out)\n") .. " " .. H.quote(out) .. " &")
    -- (the server must have read the write's headers first: a sanitizer build under load
    -- took more than half a second to, and the disable came before them, a plain 401)
    orket.sleep(1500)
    assert.equal(0, H.orket("users disable alice", { cwd = dir }).status)
    H.wait_for(stream.done, "the app's stream to end", 500)
    stream.close()
    H.wait_for(function() return (H.read(out) or "") ~= "" end, "the write's answer", 6000)
    local answer = H.read(out)
    assert.matches("^HTTP/1%.1 403", answer)
    assert.no_match("got abc", answer, 1, true)
    assert.equal(0, s.stop())
  end)
end)
