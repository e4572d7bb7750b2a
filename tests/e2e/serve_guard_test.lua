-- orket serve's guards end to end: closed event streams freed at once, every error as JSON,
-- the local token and unix socket that stand in for a key before one exists, webhooks
-- deduplicated by their content and refused when stale. The binary on 127.0.0.1.
local H = require "tests.helpers"
local cjson = require "cjson"

local wait_for = H.wait_for

local function gauge(s, key)
  local headers = key and { "Authorization: Bearer " .. key } or nil
  local st, text = H.fetch { url = s.url .. "/metrics", headers = headers, total_timeout_ms = 20000 }
  assert(st == 200, text)
  return tonumber(text:match("\norket_sse_clients (%d+)"))
end

describe("orket serve's guards", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("frees a closed event stream at once: 50 closed, 50 reopened from one address, the gauge right", function()
    local dir = H.example("webapp")
    -- heartbeats far away: only the socket's close can free a slot in time
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "heartbeat_ms=60000,addr_burst=1000,addr_rate=1000" } })
    local function open_all()
      local list = {}
      for i = 1, 50 do
        list[i] = H.stream { url = s.url .. "/v1/events", total_timeout_ms = 60000 }
      end
      return list
    end
    local first = open_all()
    for _, st in ipairs(first) do assert.equal(200, st.status) end
    wait_for(function() return gauge(s) == 50 end, "50 clients counted")
    for _, st in ipairs(first) do st.close() end
    local second = open_all() -- at once: 50 old ones still counted would pass the 64 per address
    local ok = 0
    for _, st in ipairs(second) do if st.status == 200 then ok = ok + 1 end end
    assert.equal(50, ok)
    wait_for(function() return gauge(s) == 50 end, "the gauge back at 50", 200)
    for _, st in ipairs(second) do st.close() end
    wait_for(function() return gauge(s) == 0 end, "the gauge at 0", 200)
    assert.equal(0, s.stop())
  end)

  -- docs/serve.md: a client that falls behind (its queue past max_stream_queue) is
  -- disconnected rather than buffered without bound, and reconnecting with Last-Event-ID
  -- loses nothing. The client here reads nothing (a 4 KB receive buffer) while 7 MB of
  -- events are written, more than the queue and the sockets' buffers hold; then it reads
  -- what arrived, sees the end, and asks again after the last whole event.
  it("disconnects a stream that falls behind, and its Last-Event-ID reconnect loses and repeats nothing", function()
    local uv = require "luv"
    local dir = H.example("webapp")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "max_stream_queue=65536,heartbeat_ms=600000" } })
    local db = assert(require("orket.project").open_store(dir, false))
    local first = tonumber(db:row("SELECT coalesce(max(id), 0) AS n FROM events").n)
    local c = uv.new_tcp("inet")
    c:recv_buffer_size(4096)
    local got, ended, connected = {}, false, false
    c:connect("127.0.0.1", s.port, function(err)
      assert(not err, err)
      c:write("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:" .. s.port .. "\r\n\r\n")
      connected = true
    end)
    wait_for(function() return connected end, "the connection")
    wait_for(function() return gauge(s) == 1 end, "the subscriber counted")
    local N = 1200
    assert(db:tx(function()
      for i = 1, N do db:event { kind = "comment", card = "API-2", actor = "test", data = { i = i, pad = ("p"):rep(6000) } } end
      return true
    end))
    db:close()
    wait_for(function() return gauge(s) == 0 end, "the slow stream dropped", 3000)
    c:read_start(function(_, d) if d then got[#got + 1] = d else ended = true end end)
    wait_for(function() return ended end, "the dropped stream's end")
    c:close()
    -- the ids of its whole events (the last may have been cut off)
    local EVENT = "id: (%d+)\nevent: [^\n]*\ndata: [^\n]*\n\n"
    local ids = {}
    for id in table.concat(got):gmatch(EVENT) do ids[#ids + 1] = tonumber(id) end
    local last = ids[#ids] or first
    assert.is_true(last < first + N, "the stream was not dropped before its end")
    local again = H.stream { url = s.url .. "/v1/events", headers = { "Last-Event-ID: " .. last }, total_timeout_ms = 60000 }
    -- the last event whole, its data line ended too (a 6 KB line may come in parts)
    wait_for(function() return again.text():find("\nid: " .. (first + N) .. "\nevent: [^\n]*\ndata: [^\n]*\n\n") end,
      "the rest of the events")
    again.close()
    for id in again.text():gmatch(EVENT) do ids[#ids + 1] = tonumber(id) end
    for i, id in ipairs(ids) do assert.equal(first + i, id) end
    assert.equal(N, #ids)
    assert.equal(0, s.stop())
  end)

  -- HEAD on an event stream sent the chunked body's empty last chunk after its headers: a
  -- client keeping the connection read "0\r\n\r\n" as its next answer (Node's parser
  -- failed the next request; curl warned of excess bytes)
  it("answers HEAD on an event stream with its headers alone, no chunk a next request would read", function()
    local uv = require "luv"
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local c = uv.new_tcp("inet")
    local got, ended, connected = {}, false, false
    c:connect("127.0.0.1", s.port, function(err)
      assert(not err, err)
      local host = "Host: 127.0.0.1:" .. s.port .. "\r\n"
      c:write("HEAD /v1/events HTTP/1.1\r\n" .. host .. "\r\nGET /health HTTP/1.1\r\n" .. host .. "\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d else ended = true end end)
      connected = true
    end)
    wait_for(function() return connected end, "the connection")
    -- the HEAD's answer ends the connection (its length unknown) or the next answer follows
    wait_for(function() return ended or table.concat(got):find("\r\n\r\n.*\r\n\r\n") end, "the answers", 5000)
    c:close()
    local text = table.concat(got)
    local head, rest = text:match("^(HTTP/1%.%d 200 [^\r]*\r\n.-\r\n\r\n)(.*)$")
    assert(head, text)
    assert.matches("[Cc]ontent%-[Tt]ype: text/event%-stream", head)
    assert.is_nil(head:lower():find("transfer-encoding: chunked", 1, true), head)
    assert.is_true(rest == "" or rest:sub(1, 5) == "HTTP/", "bytes after the HEAD's headers: " .. rest)
    -- nothing left counted, and the server answers on
    wait_for(function() return gauge(s) == 0 end, "the gauge at 0")
    assert.equal(200, (H.fetch { url = s.url .. "/health" }))
    assert.equal(0, s.stop())
  end)

  it("answers every error as JSON: 431, 413 declared and streamed, 415 for a form's sign-in", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "max_body_bytes=1000" } })
    local function json_error(st, body, headers, status, code)
      assert.equal(status, st, body)
      assert.matches("^application/json", headers["content-type"])
      assert.equal(code, cjson.decode(body).error.code)
    end
    -- headers over the 16 KiB cap, and four times over (past libmicrohttpd's own memory)
    local st, body, headers = H.fetch { url = s.url .. "/health", headers = { "X-Big: " .. ("a"):rep(20000) } }
    json_error(st, body, headers, 431, "too_large")
    st, body, headers = H.fetch { url = s.url .. "/v1/board", headers = { "X-A: " .. ("a"):rep(16000),
      "X-B: " .. ("b"):rep(16000), "X-C: " .. ("c"):rep(16000) } }
    json_error(st, body, headers, 431, "too_large")
    assert.equal(200, (H.fetch { url = s.url .. "/health" })) -- and it keeps serving
    -- a body over the cap, declared, then streamed (chunked)
    local auth = { "Authorization: Bearer " .. op, "Content-Type: application/json" }
    st, body, headers = H.fetch { url = s.url .. "/v1/cards/API-2/comments", method = "POST", headers = auth,
      body = cjson.encode { body = ("x"):rep(5000) } }
    json_error(st, body, headers, 413, "too_large")
    st, body, headers = H.fetch { url = s.url .. "/v1/cards/API-2/comments", method = "POST",
      headers = { auth[1], auth[2], "Transfer-Encoding: chunked" }, body = cjson.encode { body = ("x"):rep(5000) } }
    json_error(st, body, headers, 413, "too_large")
    -- a form-encoded sign-in: 415 before the body is read
    st, body, headers = H.fetch { url = s.url .. "/v1/session", method = "POST",
      headers = { "Content-Type: application/x-www-form-urlencoded" }, body = "key=" .. op }
    json_error(st, body, headers, 415, "unsupported_media_type")
    -- the media type whole, not a prefix of another; its parameters aside
    st, body, headers = H.fetch { url = s.url .. "/v1/session", method = "POST",
      headers = { "Content-Type: application/jsonx" }, body = cjson.encode { key = op } }
    json_error(st, body, headers, 415, "unsupported_media_type")
    st = H.fetch { url = s.url .. "/v1/session", method = "POST",
      headers = { "Content-Type: Application/JSON; charset=utf-8" }, body = cjson.encode { key = "ork_wrong" } }
    assert.not_equal(415, st)
    assert.equal(0, s.stop())
  end)

  it("runs the move example of docs/serve.md as written", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local doc = assert(H.read(H.ROOT .. "/docs/serve.md"))
    local path, body = doc:match("\npost (/v1/cards/[%w%-]+/move) '([^']+)'")
    assert.truthy(path, "the move example")
    local st, answer, text = H.api(s, "POST", path, op, body)
    assert.equal(200, st, text)
    assert.equal(cjson.decode(body).to, answer.card.status)
    -- an issue's move to done is its reviewer's, as the page says: an operator's is refused
    assert.matches("a key's\n#   move of an issue to done is refused %(409 EREVIEWER%)", doc)
    for _, to in ipairs { "in_progress", "code_review" } do
      st, answer, text = H.api(s, "POST", "/v1/cards/API-1/move", op, { to = to })
      assert.equal(200, st, text)
    end
    st, answer = H.api(s, "POST", "/v1/cards/API-1/move", op, { to = "done" })
    assert.equal(409, st)
    assert.equal("EREVIEWER", answer.error.code)
    assert.equal(0, s.stop())
  end)

  it("describes the webhook routes' bodies and signature headers in the OpenAPI document", function()
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local st, text = H.fetch { url = s.url .. "/v1/openapi.json" }
    assert.equal(200, st)
    local api = cjson.decode(text)
    for forge, sig in pairs { github = "X-Hub-Signature-256", gitea = "X-Gitea-Signature" } do
      local op = assert(api.paths["/v1/webhooks/" .. forge].post, forge)
      local names = {}
      for _, p in ipairs(op.parameters or {}) do if p["in"] == "header" then names[p.name] = p end end
      assert.truthy(names[sig], forge .. " " .. sig)
      assert.truthy(op.requestBody and op.requestBody.content["application/json"].schema, forge .. " body")
    end
    assert.equal(0, s.stop())
  end)

  it("takes a webhook's event once, whatever its delivery id, and refuses a stale one", function()
    local crypto = require "orket.c.crypto"
    local dir = H.example("webapp")
    -- appended: on PostgreSQL the file already names the test's database
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. '\ngit = { remote = "file:///nowhere.git", forge = "github", repo = "acme/notes", '
      .. 'api_url = "http://forge.invalid", token_env = "FORGE_TOKEN", webhook_secret_env = "HOOK_SECRET" }\n')
    local s = H.serve(dir, { env = { HOOK_SECRET = "s3cret" } })
    local function closed(updated)
      return cjson.encode { action = "closed", repository = { full_name = "acme/notes" }, sender = { login = "bob" },
        pull_request = { number = 7, merged = false, updated_at = updated, user = { login = "orket-bot" },
          base = { ref = "main" }, head = { ref = "orket/API-2", sha = ("ab"):rep(20), repo = { full_name = "acme/notes" } } } }
    end
    local function deliver(body, id)
      local st, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = body,
        headers = { "X-GitHub-Event: pull_request", "X-GitHub-Delivery: " .. id,
          "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256("s3cret", body) } }
      return st, cjson.decode(text)
    end
    local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
    local body = closed(now)
    local st, doc = deliver(body, "d-1")
    assert.equal(200, st, cjson.encode(doc))
    assert.equal("blocked", doc.outcome)
    local history = #H.card_json(dir, "API-2").history
    -- the same signed body under another delivery id: the id is not signed, the event is
    st, doc = deliver(body, "d-2")
    assert.equal(200, st)
    assert.equal("duplicate", doc.outcome)
    assert.equal(history, #H.card_json(dir, "API-2").history)
    -- an event older than the window by its own timestamp: refused, nothing recorded
    local old = closed(os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 4 * 86400)):gsub('"closed"', '"reopened"')
    st, doc = deliver(old, "d-3")
    assert.equal(422, st)
    assert.equal("stale", doc.error.code)
    assert.matches("older than", doc.error.message)
    assert.equal(history, #H.card_json(dir, "API-2").history)
    assert.equal(0, s.stop())
    -- a window set wider takes it (and reads it: a reopened pull request is ignored)
    os.remove(dir .. "/serve.out")
    s = H.serve(dir, { env = { HOOK_SECRET = "s3cret", ORKET_SERVE_LIMITS = "webhook_max_age_s=864000" } })
    st, doc = deliver(old, "d-3")
    assert.equal(200, st)
    assert.equal("ignored", doc.outcome)
    assert.equal(0, s.stop())
  end)

  it("without keys, writes only with the local token or over this user's unix socket", function()
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local token = assert(s.token, "the token in the printed URL")
    local st_file = assert(require("luv").fs_stat(dir .. "/.orket/serve.token"))
    assert.equal(384, st_file.mode & 511) -- 0600
    assert.equal(token .. "\n", H.read(dir .. "/.orket/serve.token"))
    local summary = H.card_json(dir, "API-2").card.summary
    -- what any local process could send: text/plain, no Origin, no token (a raw client:
    -- the test helper would add the token)
    local function post(headers)
      local cmd = "curl -s -o /dev/null -w '%{http_code}' -X POST " .. s.url .. "/v1/cards/API-2/comments "
      for _, h in ipairs(headers) do cmd = cmd .. "-H " .. H.quote(h) .. " " end
      local p = io.popen(cmd .. "--data-binary " .. H.quote('{"body":"written"}'))
      local code = tonumber(p:read("a"))
      p:close()
      return code
    end
    assert.equal(401, post { "Content-Type: text/plain" })
    assert.equal(401, post { "Content-Type: application/json", "Authorization: Bearer ort_" .. ("0"):rep(64) })
    assert.equal(401, post { "Content-Type: application/json", "Cookie: orket_local=" .. token:sub(1, -2) .. "x" })
    assert.equal(0, #H.card_json(dir, "API-2").comments)
    -- (a request's log line is written once its answer is sent: waited for)
    H.wait_for(function() return s.log():find('"auth":"token"', 1, true) end, "the refused requests' log line")
    -- reads stay open on loopback
    assert.equal(200, (H.fetch { url = s.url .. "/v1/board", headers = { "Cookie: none=1" } }))
    -- the token as a Bearer token, and as the web board's cookie
    assert.equal(200, post { "Content-Type: application/json", "Authorization: Bearer " .. token })
    assert.equal(200, post { "Content-Type: application/json", "Cookie: orket_local=" .. token })
    -- (a body read as JSON is sent as JSON, whoever sends it: 415 with the token too)
    assert.equal(415, post { "Content-Type: text/plain", "Cookie: orket_local=" .. token })
    assert.equal(2, #H.card_json(dir, "API-2").comments)
    assert.equal(summary, H.card_json(dir, "API-2").card.summary)
    -- the printed URL sets the cookie and leaves the address bar; another token is refused
    local st, _, h = H.fetch { url = s.url .. "/?token=" .. token, headers = { "Cookie: none=1" } }
    assert.equal(303, st)
    assert.equal("/", h.location)
    assert.equal("orket_local=" .. token .. "; Path=/; HttpOnly; SameSite=Strict", h["set-cookie"])
    assert.equal(403, (H.fetch { url = s.url .. "/?token=ort_" .. ("1"):rep(64), headers = { "Cookie: none=1" } }))
    -- the unix socket: mode 0600, this user's requests write without a token
    local sock = dir .. "/.orket/serve.sock"
    local sst = assert(require("luv").fs_stat(sock))
    assert.equal("socket", sst.type)
    assert.equal(384, sst.mode & 511)
    local p = io.popen("curl -s -o /dev/null -w '%{http_code}' --unix-socket " .. H.quote(sock)
      .. " -X POST -H 'Content-Type: application/json' --data-binary '{\"body\":\"over the socket\"}' "
      .. "http://localhost/v1/cards/API-2/comments")
    assert.equal(200, tonumber(p:read("a")))
    p:close()
    assert.equal(3, #H.card_json(dir, "API-2").comments)
    -- another user's process gets nothing, even with the file opened to all
    local as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    if io.popen("id -u"):read("a"):match("^0\n") then
      os.execute("chmod 666 " .. H.quote(sock) .. " && chmod 755 " .. H.quote(dir .. "/.orket") .. " " .. H.quote(dir))
      -- the file is open to that user (else the kernel, not the server, would refuse)
      local reach = os.execute(as_nobody .. "/bin/sh -c " .. H.quote("test -w " .. H.quote(sock)))
      if not reach then pending("the test directory is closed to other users") return end
      p = io.popen("setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -o /dev/null -w '%{http_code}' "
        .. "--unix-socket " .. H.quote(sock) .. " -X POST -H 'Content-Type: text/plain' --data-binary '{\"body\":\"x\"}' "
        .. "http://localhost/v1/cards/API-2/comments")
      assert.equal(0, tonumber(p:read("a")))
      p:close()
      assert.equal(3, #H.card_json(dir, "API-2").comments)
    end
    -- the token and the socket go with the server
    assert.equal(0, s.stop())
    assert.is_nil(H.read(dir .. "/.orket/serve.token"))
    assert.is_nil(require("luv").fs_stat(sock))
  end)

  it("leaves at its stop a socket and a token that are no longer its own", function()
    -- a second orket serve is refused (serve_second_test.lua); what took the path since (a
    -- file put there by hand, another program) is left alone all the same
    local uv = require "luv"
    local dir = H.example("notes")
    local sock = dir .. "/.orket/serve.sock"
    local a = H.serve(dir)
    local first = assert(uv.fs_stat(sock))
    os.remove(sock)
    local other = uv.new_pipe(false)
    assert(other:bind(sock))
    local second = assert(uv.fs_stat(sock))
    assert.are_not.equal(first.ino, second.ino)
    H.write(dir .. "/.orket/serve.token", "ort_00\n")
    assert.equal(0, a.stop())
    local st = uv.fs_stat(sock)
    assert.truthy(st, "the other socket was removed by the server's stop")
    assert.equal(second.ino, st.ino)
    assert.equal("ort_00\n", H.read(dir .. "/.orket/serve.token"))
    other:close()
  end)

  it("exits 0 when a second SIGTERM comes a few ms after the first", function()
    -- the second one lands while the server ends: before, its default action came back as
    -- the signal handles closed, and most of these runs ended with 143
    local dir = H.example("notes")
    for i = 1, 12 do
      for _, f in ipairs { "serve.out", "serve.pid", "serve.rc" } do os.remove(dir .. "/" .. f) end
      local s = H.serve(dir)
      os.execute(string.format("kill -TERM %d; sleep 0.00%d; kill -TERM %d 2>/dev/null", s.pid, i % 4, s.pid))
      local rc = H.wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server to exit")
      assert.equal("0", rc, "run " .. i)
    end
  end)
end)
