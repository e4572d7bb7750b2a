-- orket serve's web board files, browser sessions and CORS end to end: the files from the
-- allow-list with their security headers and ETags, path tricks refused; a key traded for an
-- HttpOnly SameSite=Strict cookie that reads, writes only with the CSRF token, ends on sign
-- out and when its key is revoked, and is stored only as a hash; CORS headers for the
-- origins orket.lua lists and no others.
local H = require "tests.helpers"
local cjson = require "cjson"
local http = require "orket.c.http"
local uv = require "luv"

local wait_for = H.wait_for

-- req(s, method, path, {headers}, body) -> status, text, headers (lower-case name -> value)
local function req(s, method, path, headers, body)
  local status, text, hs = H.fetch { url = s.url .. path, method = method, headers = headers or {},
    body = body, total_timeout_ms = 20000 }
  return status, text, hs or {}
end

local function json(text) return text ~= "" and cjson.decode(text) or nil end

-- raw(port, text) -> the whole answer to a request sent byte for byte (no client library
-- would send "/../" or a NUL in a request line)
local function raw(port, text)
  local c = uv.new_tcp()
  local st = { data = {} }
  c:connect("127.0.0.1", port, function(err)
    if err then st.done = true return end
    c:write(text)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.done = true end
    end)
  end)
  wait_for(function() return st.done or table.concat(st.data):find("\r\n\r\n", 1, true) end, "an answer")
  c:close()
  return table.concat(st.data)
end

local key = H.api_key

local function sign_in(s, k)
  local st, text, h = req(s, "POST", "/v1/session", { "Content-Type: application/json" }, cjson.encode { key = k })
  return st, json(text), h
end

describe("orket serve: the web board's files", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("serves the allow-listed files with their types and security headers, and nothing else", function()
    local dir = H.example("webapp")
    key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st, body, h = req(s, "GET", "/")
    assert.equal(200, st)
    assert.matches("<!doctype html>", body, 1, true)
    assert.equal("text/html; charset=utf-8", h["content-type"])
    assert.matches("^default%-src 'self';", h["content-security-policy"])
    assert.equal("nosniff", h["x-content-type-options"])
    assert.equal("no-cache", h["cache-control"])
    assert.equal(H.read(H.ROOT .. "/web/index.html"), body)
    -- no inline script: the page's one script is a file of the same origin
    assert.is_nil(body:find("<script>", 1, true))
    assert.is_nil(body:find("%son%a+="))
    assert.is_nil(body:find("https?://"))
    -- revalidation: the same ETag gets a 304 without the body
    local st304, b304, h304 = req(s, "GET", "/", { "If-None-Match: " .. h.etag })
    assert.equal(304, st304)
    assert.equal("", b304)
    -- its Content-Length, when it has one, is the page's (RFC 9110 8.6), never a 0 of its own
    assert.equal(tostring(#body), h304["content-length"])
    for path, ctype in pairs { ["/app.js"] = "text/javascript; charset=utf-8", ["/app.css"] = "text/css; charset=utf-8",
      ["/icon.svg"] = "image/svg+xml", ["/index.html"] = "text/html; charset=utf-8" } do
      local fst, fbody, fh = req(s, "GET", path)
      assert.equal(200, fst, path)
      assert.equal(ctype, fh["content-type"], path)
      assert.equal(H.read(H.ROOT .. "/web" .. path), fbody, path)
    end
    -- nothing from the internet
    assert.is_nil(H.read(H.ROOT .. "/web/app.js"):find("https?://"))
    assert.is_nil(H.read(H.ROOT .. "/web/app.css"):find("https?://"))
    -- the files need no key; the API still does
    assert.equal(401, (req(s, "GET", "/v1/board")))
    -- anything else is the API's: not found, or refused as a path trick
    for _, p in ipairs { "/web/app.js", "/app.js.bak", "/APP.JS", "/%61pp.js", "/lua/orket/serve/web.lua",
      "/orket.lua", "/.orket/orket.db" } do
      local pst, pbody = req(s, "GET", p)
      assert.equal(404, pst, p)
      assert.equal("not_found", json(pbody).error.code, p)
    end
    for _, p in ipairs { "/%2e%2e/web/app.js", "/%2E%2E/%2E%2E/etc/passwd", "/app.js%00", "/app.js%00.png",
      "/..%2fapp.js", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/.%2e/app.js", "/app.js%2f.." } do
      local pst, pbody = req(s, "GET", p)
      assert.equal(400, pst, p)
      assert.equal("bad_path", json(pbody).error.code, p)
    end
    for _, line in ipairs { "GET /../web/app.js HTTP/1.1", "GET /../../etc/passwd HTTP/1.1", "GET /./app.js HTTP/1.1",
      "GET //etc/passwd HTTP/1.1", "GET /etc/passwd HTTP/1.1", "GET http://x/../app.js HTTP/1.1" } do
      local answer = raw(s.port, line .. "\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      local code = tonumber(answer:match("^HTTP/1%.1 (%d+)"))
      assert.is_true(code == 400 or code == 404, line .. ": " .. answer:sub(1, 40))
      assert.is_nil(answer:find("root:", 1, true), line)
      assert.is_nil(answer:find("use strict", 1, true), line)
    end
    -- the files are read, never written: other methods are the API's
    assert.equal(404, (req(s, "POST", "/app.js", { "Content-Type: application/json" }, "{}")))
    assert.equal(0, s.stop())
  end)
end)

describe("orket serve: sessions", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("trades a key for a cookie that reads, and writes only with the CSRF token", function()
    local dir = H.example("webapp")
    local op = key(dir, "ops", "operator")
    local viewer = key(dir, "ci", "viewer")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=6,auth_fail_rate=0.01" } })
    -- not JSON (what a form on another site could send), a bad body, then a wrong key
    local st = req(s, "POST", "/v1/session", { "Content-Type: text/plain" }, cjson.encode { key = op })
    assert.equal(415, st)
    local doc
    -- a body no sign-in needs is refused undecoded: the route takes no key before it
    local big = cjson.encode { user = "x", password = "y", pad = ("k"):rep(5000) }
    local bst, bdoc = req(s, "POST", "/v1/session", { "Content-Type: application/json" }, big)
    assert.same({ 413, "too_large" }, { bst, cjson.decode(bdoc).error.code })
    st, doc = req(s, "POST", "/v1/session", { "Content-Type: application/json" }, "{}")
    assert.equal(400, st)
    st, doc = sign_in(s, op:sub(1, -2) .. (op:sub(-1) == "0" and "1" or "0"))
    assert.equal(401, st)
    assert.equal("unauthorized", doc.error.code)
    local h
    st, doc, h = sign_in(s, op)
    assert.equal(200, st)
    assert.equal("operator", doc.role)
    assert.equal("ops", doc.key.name)
    assert.matches("^%x+$", doc.csrf)
    local cookie = h["set-cookie"]
    local token = cookie:match("^orket_session=(ors_%x+);")
    assert.is_string(token)
    assert.matches("; Path=/;", cookie, 1, true)
    assert.matches("; HttpOnly;", cookie, 1, true)
    assert.matches("; SameSite=Strict;", cookie, 1, true)
    assert.matches("; Max%-Age=%d+", cookie)
    assert.is_nil(cookie:find("Secure", 1, true)) -- plain http, no proxy
    local jar = "Cookie: theme=dark; orket_session=" .. token
    local csrf = doc.csrf

    -- reads with the cookie alone, as the key's principal
    st, doc = req(s, "GET", "/v1/board", { jar })
    assert.equal(200, st)
    st, doc = req(s, "GET", "/v1/session", { jar })
    assert.equal(200, st)
    assert.equal(csrf, json(doc).csrf)
    assert.equal("operator", json(doc).role)
    -- the event stream (EventSource sends the cookie, no header)
    local ev <close> = assert(http.request { url = s.url .. "/v1/events?after=0", headers = { jar }, framing = "sse",
      total_timeout_ms = 20000 })
    assert.equal(200, (ev:headers()))
    local first = ev:read()
    assert.is_table(first)
    ev:close()

    -- a write needs the token: none, a wrong one, then the right one
    local body = cjson.encode { body = "From the board." }
    st, doc = req(s, "POST", "/v1/cards/API-1/comments", { jar, "Content-Type: application/json" }, body)
    assert.equal(403, st)
    assert.matches("X%-CSRF%-Token", json(doc).error.message)
    -- its log line says whose valid session the refused write rode (the key's id)
    local kid = op:match("^ork_(%x+)_")
    H.wait_for(function() return s.log():find('"auth":"csrf","key":"' .. kid .. '"', 1, true) end,
      "the CSRF refusal's log line with the session's key")
    st = req(s, "POST", "/v1/cards/API-1/comments", { jar, "Content-Type: application/json",
      "X-CSRF-Token: " .. csrf:sub(1, -2) .. (csrf:sub(-1) == "0" and "1" or "0") }, body)
    assert.equal(403, st)
    st = req(s, "POST", "/v1/cards/API-1/comments", { jar, "Content-Type: application/json", "X-CSRF-Token: " .. csrf }, body)
    assert.equal(200, st)
    local c = json(select(2, req(s, "GET", "/v1/cards/API-1", { jar })))
    assert.equal(op:match("^ork_(%x+)_"), c.comments[#c.comments].author) -- as the key's person
    -- a Bearer key needs no CSRF token (a page cannot send one cross-origin)
    st = req(s, "POST", "/v1/cards/API-1/comments", { "Authorization: Bearer " .. op, "Content-Type: application/json" }, body)
    assert.equal(200, st)

    -- a viewer's session reads but may not write, CSRF token or not
    local _, vdoc, vh = sign_in(s, viewer)
    local vjar = "Cookie: " .. vh["set-cookie"]:match("^(orket_session=ors_%x+);")
    st = req(s, "POST", "/v1/cards/API-1/comments", { vjar, "Content-Type: application/json", "X-CSRF-Token: " .. vdoc.csrf }, body)
    assert.equal(403, st)

    -- the store keeps a hash of the token, never the token; nor do the log and the journal
    local db <close> = assert(require("orket.project").open_store(dir))
    local rows = db:rows("SELECT hash, key_id, expires FROM sessions")
    assert.equal(2, #rows)
    for _, r in ipairs(rows) do
      assert.is_nil(r.hash:find(token:sub(5), 1, true))
      assert.is_true(r.expires > os.time())
    end
    local p1 = db.backend == "pg" and "$1" or "?" -- each backend's placeholder
    assert.equal(0, assert(db:row("SELECT count(*) AS n FROM events WHERE CAST(data AS TEXT) LIKE " .. p1,
      "%" .. token:sub(5, 20) .. "%")).n)
    assert.is_nil(s.log():find(token:sub(5), 1, true))
    assert.is_nil(s.log():find(op, 1, true))

    -- a forged, a malformed and a stale cookie
    for _, bad in ipairs { "ors_" .. string.rep("a", 64), "ors_xyz", "x" } do
      st = req(s, "GET", "/v1/board", { "Cookie: orket_session=" .. bad })
      assert.equal(401, st, bad)
    end

    -- signing out is a write (CSRF), then the cookie is worthless
    st = req(s, "DELETE", "/v1/session", { jar })
    assert.equal(403, st)
    st, doc, h = req(s, "DELETE", "/v1/session", { jar, "X-CSRF-Token: " .. csrf })
    assert.equal(200, st)
    assert.matches("^orket_session=; .*Max%-Age=0", h["set-cookie"])
    assert.equal(401, (req(s, "GET", "/v1/board", { jar })))
    -- the journal says who signed in and out, by key id: the operator in and out, the
    -- viewer in; never a key or a token
    local op_id = op:match("^ork_(%x+)_")
    local ev_rows = db:rows("SELECT kind, actor, data FROM events WHERE kind IN ('session_start', 'session_end') ORDER BY id")
    local seen = {}
    for _, r in ipairs(ev_rows) do
      seen[#seen + 1] = r.kind .. " " .. r.actor
      assert.is_nil(r.data:find(token:sub(5, 20), 1, true))
      assert.is_nil(r.data:find(op:sub(5), 1, true))
      assert.is_nil(r.data:find(viewer:sub(5), 1, true))
    end
    assert.same({ "session_start " .. op_id, "session_start " .. vdoc.key.id, "session_end " .. op_id }, seen)
    assert.equal("ops", cjson.decode(ev_rows[1].data).name)
    -- and audited as writes, in the journal (GET /v1/audit's api_write) and the chain, with
    -- the key, the way and the session (the start of its stored hash, never its token), never
    -- the client's address (the request log has it); the wrong key above is in neither
    local function subject(id, name, sess)
      return { key = name, keyid = id, via = "key", session = sess }
    end
    local aw = {}
    for _, r in ipairs(db:rows("SELECT actor, data FROM events WHERE kind = 'api_write' ORDER BY id")) do
      local d = cjson.decode(r.data)
      if d.action == "sign_in" or d.action == "sign_out" then
        assert.equal("/v1/session", d.route)
        aw[#aw + 1] = { r.actor, d.action, d.subject }
      end
    end
    assert.equal(3, #aw)
    local op_sess, v_sess = aw[1][3].session, aw[2][3].session
    assert.same({ { op_id, "sign_in", subject(op_id, "ops", op_sess) }, { vdoc.key.id, "sign_in",
      subject(vdoc.key.id, "ci", v_sess) }, { op_id, "sign_out", subject(op_id, "ops", op_sess) } }, aw)
    -- the session is named by its stored hash (the viewer's is still open)
    local v_row = assert(db:row("SELECT hash FROM sessions WHERE key_id = " .. p1, vdoc.key.id))
    assert.equal(v_row.hash:sub(1, 16), v_sess)
    assert.is_nil(token:find(op_sess, 1, true))
    assert.is_nil(csrf:find(op_sess, 1, true))
    local chain = {}
    for _, r in ipairs(db:rows("SELECT actor, action, route, detail FROM audit_log "
      .. "WHERE action IN ('sign_in', 'sign_out') ORDER BY seq")) do
      chain[#chain + 1] = table.concat({ r.actor, r.action, r.route, r.detail }, " ")
    end
    assert.same({ op_id .. " sign_in /v1/session key=ops keyid=" .. op_id .. " session=" .. op_sess
      .. " via=key", vdoc.key.id .. " sign_in /v1/session key=ci keyid=" .. vdoc.key.id
      .. " session=" .. v_sess .. " via=key", op_id .. " sign_out /v1/session key=ops keyid="
      .. op_id .. " session=" .. op_sess .. " via=key" }, chain)

    -- revoking a key ends its sessions at once
    assert.equal(200, (req(s, "GET", "/v1/board", { vjar })))
    assert.equal(0, H.orket("keys revoke ci", { cwd = dir }).status)
    assert.equal(401, (req(s, "GET", "/v1/board", { vjar })))
    assert.equal(0, assert(db:row("SELECT count(*) AS n FROM sessions WHERE key_id = " .. p1, vdoc.key.id)).n)
    -- wrong keys are limited like wrong Bearer keys: six failures so far empty the bucket (6);
    -- a valid key still signs in, as it still acts (docs/serve.md, Limits)
    st, doc, h = sign_in(s, op:sub(1, -2) .. (op:sub(-1) == "0" and "1" or "0"))
    assert.equal(429, st)
    assert.is_string(h["retry-after"])
    assert.equal(200, (sign_in(s, op)))
    assert.equal(0, s.stop())
  end)

  it("keeps a key's 20 newest sessions, however many sign-ins come in one second", function()
    local dir = H.example("webapp")
    local op = key(dir, "ops", "operator")
    local s = H.serve(dir)
    local jars = {}
    for i = 1, 22 do
      local st, _, h = sign_in(s, op)
      assert.equal(200, st)
      jars[i] = "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);")
    end
    for i = 1, 22 do
      assert.equal(i <= 2 and 401 or 200, (req(s, "GET", "/v1/board", { jars[i] })), "sign-in " .. i)
    end
    assert.equal(0, s.stop())
  end)

  it("takes a token of the key's own limit for each sign-in with it: none past the limit is audited", function()
    local dir = H.example("webapp")
    local ro = key(dir, "ro", "viewer")
    -- the address's limit out of the way: the key's alone answers
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=0.01,key_burst=3" } })
    local n200, n429 = 0, 0
    for _ = 1, 8 do
      local st, doc, h = sign_in(s, ro)
      if st == 200 then n200 = n200 + 1
      else
        assert.same({ 429, "rate_limited" }, { st, doc.error.code })
        assert.matches("with this key", doc.error.message, 1, true)
        assert.matches("^%d+$", h["retry-after"])
        n429 = n429 + 1
      end
    end
    assert.same({ 3, 5 }, { n200, n429 })
    -- the same bucket as the key's other requests: it has nothing left for them either
    assert.equal(429, (req(s, "GET", "/v1/board", { "Authorization: Bearer " .. ro })))
    assert.equal(0, s.stop())
    -- a refused sign-in opened no session and wrote nothing in the journal or the chain
    local db <close> = assert(require("orket.project").open_store(dir))
    assert.equal(3, db:row("SELECT count(*) AS n FROM sessions").n)
    assert.equal(3, db:row("SELECT count(*) AS n FROM events WHERE kind = 'session_start'").n)
    assert.equal(3, db:row("SELECT count(*) AS n FROM events WHERE kind = 'api_write'").n)
    assert.equal(3, db:row("SELECT count(*) AS n FROM audit_log WHERE action = 'sign_in'").n)
  end)

  it("holds off a name's failed password sign-ins whatever the address, on every server of the store, "
    .. "known names and unknown alike, its right password too", function()
    local dir = H.example("webapp")
    local PW = "correct horse battery"
    for _, n in ipairs { "alice", "bob" } do
      H.ok(H.orket("users add " .. n .. " --role operator --password-env PW", { cwd = dir, env = { PW = PW } }), "users add")
    end
    -- the address's own limit out of the way: only the name's is tried here (one address
    -- stands for a guesser's many)
    local env = { ORKET_SERVE_LIMITS = "auth_fail_burst=1000,auth_fail_rate=100,account_fail_burst=3,account_fail_rate=0.001" }
    local a = H.serve(dir, { env = env })
    local b = H.serve(dir, { env = env })
    local function try(s, user, password)
      local st, text, h = req(s, "POST", "/v1/session", { "Content-Type: application/json" },
        cjson.encode { user = user, password = password })
      return st, json(text), h
    end
    -- three wrong passwords, over both servers: counted together
    assert.equal(401, (try(a, "alice", "wrong 1")))
    assert.equal(401, (try(b, "alice", "wrong 2")))
    assert.equal(401, (try(a, "Alice", "wrong 3"))) -- the name as accounts are looked up: lower case
    -- the right password is refused now, on either server, whatever the name's case
    local st, doc, h = try(b, "alice", PW)
    assert.equal(429, st)
    assert.equal("rate_limited", doc.error.code)
    assert.matches("too many failed sign%-ins for this name; retry after %d+ s", doc.error.message)
    assert.matches("^%d+$", h["retry-after"])
    assert.is_true(tonumber(h["retry-after"]) >= 1)
    assert.equal(429, (try(a, "ALICE", PW)))
    -- another name from the same address is not held off
    st, doc = try(a, "bob", PW)
    assert.equal(200, st)
    assert.equal("bob", doc.user.name)
    -- a name with no account is held off the same way: the answers do not tell which exist
    for i = 1, 3 do assert.equal(401, (try(i % 2 == 0 and a or b, "ghost", "wrong " .. i))) end
    local gst, gdoc, gh = try(a, "ghost", PW)
    assert.equal(429, gst)
    assert.equal("rate_limited", gdoc.error.code)
    assert.matches("too many failed sign%-ins for this name", gdoc.error.message)
    assert.truthy(gh["retry-after"])
    -- keys are not names: a key's sign-in from the address still goes through
    assert.equal(200, (sign_in(a, key(dir, "ops", "operator"))))
    assert.equal(0, a.stop())
    assert.equal(0, b.stop())
  end)

  it("answers no more guesses at a name than it has tokens, whatever guesses run at once on one server or "
    .. "several: the token taken before the password is checked", function()
    local dir = H.example("webapp")
    local env = { ORKET_SERVE_LIMITS = "auth_fail_burst=1000,auth_fail_rate=100,account_fail_burst=2,account_fail_rate=0.0001" }
    -- twelve wrong guesses at name sent at once, spread over servers -> {status = count}
    local function at_once(name, servers)
      assert.equal(401, (req(servers[1], "POST", "/v1/session", { "Content-Type: application/json" },
        cjson.encode { user = name, password = "wrong 0" })))
      local tmp = H.tmpdir()
      local cmds = {}
      for i = 1, 12 do
        cmds[#cmds + 1] = string.format("curl -s -o /dev/null -w '%%{http_code}\\n' -H 'Content-Type: application/json' "
          .. "-d '{\"user\":\"%s\",\"password\":\"wrong %d\"}' %s/v1/session >> %s/codes &", name, i,
          servers[i % #servers + 1].url, tmp)
      end
      os.execute(table.concat(cmds, " ") .. " wait")
      local codes = {}
      for c in (H.read(tmp .. "/codes") or ""):gmatch("%d+") do codes[c] = (codes[c] or 0) + 1 end
      return codes
    end
    -- one token left: one guess answered, the others refused before their password was
    -- checked (the server checks two at a time: all twelve were waiting for a check before)
    local a = H.serve(dir, { env = env })
    assert.same({ ["401"] = 1, ["429"] = 11 }, at_once("ghost", { a }))
    assert.equal(0, a.stop())
    local log = a.log() -- (read once it stopped: every line written)
    assert.is_nil(log:find("limited after the check", 1, true), log)
    local _, checked = log:gsub('"auth":"unknown"', "")
    assert.equal(2, checked, log)
    -- two servers of one store: the token is taken in one statement, never by both (past
    -- local use: a second server of the folder serves without the unix socket)
    H.api_key(dir, "reader", "viewer")
    a = H.serve(dir, { env = env })
    local b = H.serve(dir, { env = env })
    assert.same({ ["401"] = 1, ["429"] = 11 }, at_once("phantom", { a, b }))
    assert.equal(0, a.stop())
    assert.equal(0, b.stop())
  end)

  it("lets an admin lift a name's lockout at once, on the running server: orket users unlock, "
    .. "POST /v1/users/NAME/unlock, a new password; each audited", function()
    local dir = H.example("webapp")
    local PW, NEW = "correct horse battery", "another good password"
    H.ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PW } }), "users add")
    local env = { ORKET_SERVE_LIMITS = "auth_fail_burst=1000,auth_fail_rate=100,account_fail_burst=2,account_fail_rate=0.001" }
    local s = H.serve(dir, { env = env })
    local root = key(dir, "root", "admin")
    local function try(user, password)
      return (req(s, "POST", "/v1/session", { "Content-Type: application/json" },
        cjson.encode { user = user, password = password }))
    end
    local function lock(user, password)
      for i = 1, 2 do assert.equal(401, try(user, "wrong " .. i)) end
      assert.equal(429, try(user, password))
    end
    local function api(method, path, body)
      local st, text = req(s, method, path, { "Authorization: Bearer " .. root, "Content-Type: application/json" },
        body and cjson.encode(body))
      return st, json(text)
    end
    -- the command, on the server's machine, which the refusal names
    lock("alice", PW)
    local _, text = req(s, "POST", "/v1/session", { "Content-Type: application/json" },
      cjson.encode { user = "alice", password = PW })
    assert.matches("orket users unlock NAME", json(text).error.remedy, 1, true)
    local r = H.ok(H.orket("users unlock alice", { cwd = dir }), "unlock")
    assert.matches("unlocked alice", r.stdout, 1, true)
    assert.equal(200, try("alice", PW))
    r = H.ok(H.orket("users unlock alice", { cwd = dir }), "unlock again")
    assert.matches("nothing to unlock", r.stdout, 1, true)
    -- a name with no account yet (a directory's person before their first sign-in) too
    lock("ghost", PW)
    H.ok(H.orket("users unlock ghost", { cwd = dir }), "unlock ghost")
    assert.equal(401, try("ghost", PW))
    r = H.orket("users unlock Bad.Name", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("lowercase letters", r.stderr, 1, true)
    -- the API, next to disable and enable
    lock("alice", PW)
    local st, doc = api("POST", "/v1/users/alice/unlock")
    assert.same({ 200, { name = "alice", cleared = true } }, { st, doc })
    assert.equal(200, try("alice", PW))
    st, doc = api("POST", "/v1/users/alice/unlock")
    assert.same({ 200, { name = "alice", cleared = false } }, { st, doc })
    st, doc = api("POST", "/v1/users/ALICE/unlock")
    assert.same({ 400, "bad_request" }, { st, doc.error.code })
    -- a new password, the API's and the command's, lets the person in at once
    lock("alice", PW)
    assert.equal(200, (api("PUT", "/v1/users/alice/password", { password = NEW })))
    assert.equal(200, try("alice", NEW))
    lock("alice", NEW)
    H.ok(H.orket("users passwd alice --password-env PW", { cwd = dir, env = { PW = PW } }), "passwd")
    assert.equal(200, try("alice", PW))
    local _, listed = api("GET", "/v1/audit?limit=200")
    local api_unlocks = 0
    for _, e in ipairs(listed.entries) do
      if e.action == "user_unlock" then api_unlocks = api_unlocks + 1 end
    end
    assert.equal(1, api_unlocks)
    assert.equal(0, s.stop())
    -- each unlock that forgot sign-ins in the audit's chain, naming whom: the two commands'
    -- and the API's one; an unlock with nothing counted changed nothing, and is in neither
    -- the chain nor the journal (docs/audit.md: a change that changes nothing)
    local unlocks = {}
    for l in H.ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "user_unlock" then unlocks[#unlocks + 1] = e.detail end
    end
    assert.same({ "person=alice", "person=ghost", "person=alice" }, unlocks)
    H.ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("marks the cookie Secure behind a proxy on this machine that says https", function()
    local dir = H.example("webapp")
    local op = key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st, _, h = req(s, "POST", "/v1/session", { "Content-Type: application/json", "X-Forwarded-Proto: https" },
      cjson.encode { key = op })
    assert.equal(200, st)
    assert.matches("; Secure$", h["set-cookie"])
    assert.equal(0, s.stop())
  end)

  it("before any key, tells the page it is local use and refuses writes from other origins", function()
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local st, text = req(s, "GET", "/v1/session")
    assert.equal(200, st)
    assert.same({ role = "operator", ["local"] = true }, json(text))
    -- with no key to check, a write a page of another site sends is refused by its Origin
    local body, ct = cjson.encode { body = "hello" }, "Content-Type: application/json"
    st = req(s, "POST", "/v1/cards/API-1/comments", { ct, "Origin: https://evil.example" }, body)
    assert.equal(403, st)
    st = req(s, "POST", "/v1/cards/API-1/comments", { ct, "Origin: http://127.0.0.1:" .. s.port }, body)
    assert.equal(200, st)
    st = req(s, "POST", "/v1/cards/API-1/comments", { ct }, body) -- not a browser
    assert.equal(200, st)
    assert.equal(200, (req(s, "GET", "/v1/board", { "Origin: https://evil.example" }))) -- reads: CORS keeps the answer from the page
    assert.equal(0, s.stop())
  end)
end)

describe("orket serve: CORS", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("answers the origins orket.lua lists, and gives others no CORS headers", function()
    local dir = H.example("webapp")
    -- appended: on PostgreSQL the project's orket.lua names its database (tests.backends)
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. 'serve = { cors = { "https://board.example", "http://127.0.0.1:9" } }\n')
    local op = key(dir, "ops", "operator")
    local s = H.serve(dir)
    local auth = "Authorization: Bearer " .. op
    -- a preflight from a listed origin
    local st, _, h = req(s, "OPTIONS", "/v1/cards/API-1/comments", { "Origin: https://board.example",
      "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, content-type" })
    assert.equal(204, st)
    assert.equal("https://board.example", h["access-control-allow-origin"])
    assert.matches("POST", h["access-control-allow-methods"])
    assert.matches("Authorization", h["access-control-allow-headers"])
    assert.is_nil(h["access-control-allow-credentials"]) -- keys, never cookies, cross-origin
    -- every method a route takes, as the OpenAPI document lists them (PUT /v1/users/{name}/role, ...)
    local allowed = {}
    for m in h["access-control-allow-methods"]:gmatch("[A-Z]+") do allowed[m] = true end
    local _, doc = req(s, "GET", "/v1/openapi.json", { auth })
    for path, ops in pairs(json(doc).paths) do
      for m in pairs(ops) do
        if m ~= "parameters" then assert.is_true(allowed[m:upper()] == true, m:upper() .. " " .. path) end
      end
    end
    -- and from another
    st, _, h = req(s, "OPTIONS", "/v1/board", { "Origin: https://evil.example", "Access-Control-Request-Method: GET" })
    assert.equal(204, st)
    assert.is_nil(h["access-control-allow-origin"])
    assert.is_nil(h["access-control-allow-methods"])
    -- the answers themselves, errors included
    st, _, h = req(s, "GET", "/v1/board", { auth, "Origin: https://board.example" })
    assert.equal(200, st)
    assert.equal("https://board.example", h["access-control-allow-origin"])
    assert.matches("Origin", h["vary"])
    st, _, h = req(s, "GET", "/v1/board", { "Origin: https://board.example" })
    assert.equal(401, st)
    assert.equal("https://board.example", h["access-control-allow-origin"])
    for _, o in ipairs { "https://evil.example", "https://board.example.evil", "http://board.example", "null" } do
      st, _, h = req(s, "GET", "/v1/board", { auth, "Origin: " .. o })
      assert.equal(200, st)
      assert.is_nil(h["access-control-allow-origin"], o)
    end
    -- /mcp from a listed origin's page (docs/mcp.md): the MCP transport's own headers pass
    -- the preflight, and the session's id is one the page may read
    st, _, h = req(s, "OPTIONS", "/mcp", { "Origin: https://board.example", "Access-Control-Request-Method: POST",
      "Access-Control-Request-Headers: authorization, content-type, mcp-protocol-version, mcp-session-id" })
    assert.equal(204, st)
    local allowed = {}
    for name in h["access-control-allow-headers"]:gmatch("[^,%s]+") do allowed[name:lower()] = true end
    for _, name in ipairs { "authorization", "content-type", "mcp-protocol-version", "mcp-session-id", "last-event-id" } do
      assert.is_true(allowed[name] == true, name)
    end
    local init = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
      .. '"capabilities":{},"clientInfo":{"name":"page","version":"1"}}}'
    st, _, h = req(s, "POST", "/mcp", { auth, "Origin: https://board.example", "Content-Type: application/json",
      "Accept: application/json, text/event-stream" }, init)
    assert.equal(200, st)
    assert.is_string(h["mcp-session-id"])
    assert.matches("Mcp-Session-Id", h["access-control-expose-headers"], 1, true)
    -- the event stream too
    local ev <close> = assert(http.request { url = s.url .. "/v1/events", framing = "sse", total_timeout_ms = 20000,
      headers = { auth, "Origin: http://127.0.0.1:9" } })
    local est, ehs = ev:headers()
    assert.equal(200, est)
    assert.equal("http://127.0.0.1:9", ehs["access-control-allow-origin"])
    ev:close()
    assert.equal(0, s.stop())
  end)

  it("refuses to start with a bad serve.cors, naming the field", function()
    local dir = H.example("webapp")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. 'serve = { cors = { "https://board.example/app" } }\n')
    local r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('orket.lua: serve.cors%[1%]: must be an origin: http%(s%)://host%[:port%], no path or wildcard', r.stderr)
    assert.matches('"https://board.example/app"', r.stderr, 1, true)
    r = H.orket("validate", { cwd = dir })
    assert.matches("serve.cors[1]", r.stdout .. r.stderr, 1, true)
  end)
end)
