-- orket serve's admin routes end to end: keys listed, created and revoked over HTTP by the
-- admin role only (viewer and operator get 403), each journaled and audited as the CLI's
-- are, a created key usable at once and a revoked one refused at once, no secret kept.
local H = require "tests.helpers"
local cjson = require "cjson"

local call = H.api

describe("orket serve admin routes", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("lists, creates and revokes keys for admins only, journaled and audited, secrets shown once", function()
    local dir = H.example("webapp")
    local admin, admin_id = H.api_key(dir, "boss", "admin")
    local op = H.api_key(dir, "ops", "operator")
    local viewer = H.api_key(dir, "ci", "viewer")
    local s = H.serve(dir)
    -- roles: only admin
    for _, k in ipairs { viewer, op } do
      assert.equal(403, (call(s, "GET", "/v1/keys", k)))
      assert.equal(403, (call(s, "POST", "/v1/keys", k, { name = "x", role = "viewer" })))
      assert.equal(403, (call(s, "DELETE", "/v1/keys/ci", k)))
      assert.equal(403, (call(s, "POST", "/v1/keys/ci/revoke", k)))
    end
    assert.equal(401, (call(s, "GET", "/v1/keys", nil)))
    -- the list: as `orket keys list --json`, never a hash or secret
    local st, doc, text = call(s, "GET", "/v1/keys", admin)
    assert.equal(200, st)
    assert.equal("orket.keys/1", doc.format)
    assert.same(cjson.decode(H.orket("keys list --json", { cwd = dir }).stdout), doc)
    assert.same({ "boss", "ops", "ci" }, { doc.keys[1].name, doc.keys[2].name, doc.keys[3].name })
    assert.equal(cjson.null, doc.keys[1].revoked_at)
    for _, k in ipairs { admin, op, viewer } do assert.is_nil(text:find(k:match("_(%x+)$"), 1, true)) end
    -- bad bodies and names
    assert.equal(400, (call(s, "POST", "/v1/keys", admin, { name = "x", role = "root" })))
    assert.equal(400, (call(s, "POST", "/v1/keys", admin, { name = "bad name", role = "viewer" })))
    assert.equal(400, (call(s, "POST", "/v1/keys", admin, { name = "x" })))
    st, doc = call(s, "POST", "/v1/keys", admin, { name = "ops", role = "viewer" })
    assert.equal(409, st)
    assert.equal("conflict", doc.error.code)
    -- create, then use at once
    st, doc = call(s, "POST", "/v1/keys", admin, { name = "deploy", role = "operator" })
    assert.equal(201, st, cjson.encode(doc))
    assert.equal("deploy", doc.name)
    assert.equal("operator", doc.role)
    local new_key, new_id = doc.key, doc.id
    assert.equal(new_id, new_key:match("^ork_(%x+)_%x+$"))
    st = call(s, "POST", "/v1/cards/API-1/comments", new_key, { body = "from the new key" })
    assert.equal(200, st)
    assert.equal(403, (call(s, "GET", "/v1/keys", new_key)))
    st, doc = call(s, "GET", "/v1/keys", admin)
    assert.equal("deploy", doc.keys[4].name)
    assert.is_nil(cjson.encode(doc):find(new_key:match("_(%x+)$"), 1, true))
    -- revoke (by id, with DELETE), then refused at once; again is a conflict; unknown 404
    st, doc = call(s, "DELETE", "/v1/keys/" .. new_id, admin)
    assert.equal(200, st, cjson.encode(doc))
    assert.same({ id = new_id, name = "deploy", role = "operator", revoked = true }, doc)
    assert.equal(401, (call(s, "GET", "/v1/board", new_key)))
    assert.equal(409, (call(s, "POST", "/v1/keys/" .. new_id .. "/revoke", admin)))
    assert.equal(404, (call(s, "DELETE", "/v1/keys/nope", admin)))
    -- the POST form, by name
    st, doc = call(s, "POST", "/v1/keys/ci/revoke", admin)
    assert.equal(200, st)
    assert.equal(401, (call(s, "GET", "/v1/board", viewer)))
    assert.equal(409, (call(s, "DELETE", "/v1/keys/ci", admin))) -- by name too: revoked already
    st, doc = call(s, "GET", "/v1/keys", admin)
    assert.is_string(doc.keys[4].revoked_at)
    assert.is_string(doc.keys[3].revoked_at)
    -- the audit names the admin's key id for each change
    st, doc = call(s, "GET", "/v1/audit", admin)
    local acts = {}
    for _, e in ipairs(doc.entries) do
      if e.action:match("^key_") then
        acts[#acts + 1] = e.action
        assert.equal(admin_id, e.actor)
      end
    end
    assert.same({ "key_create", "key_revoke", "key_revoke" }, acts)
    -- the journal has the CLI's events, with the admin as actor
    local ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { "Authorization: Bearer " .. admin } }
    local seen
    H.wait_for(function()
      seen = {}
      for data in ev.text():gmatch("\ndata: ([^\n]+)") do
        local e = cjson.decode(data)
        if (e.kind == "key_create" or e.kind == "key_revoke") and e.actor == admin_id then seen[#seen + 1] = e.kind end
      end
      return #seen >= 3
    end, "the key events")
    ev.close()
    assert.same({ "key_create", "key_revoke", "key_revoke" }, seen)
    -- described in the OpenAPI document with the admin role
    local _, api = call(s, "GET", "/v1/openapi.json", admin)
    for _, m in ipairs { { "/v1/keys", "get" }, { "/v1/keys", "post" }, { "/v1/keys/{id}", "delete" },
      { "/v1/keys/{id}/revoke", "post" } } do
      assert.equal("admin", api.paths[m[1]][m[2]]["x-orket-role"], m[1])
    end
    assert.is_table(api.paths["/v1/keys"].post.responses["201"])
    assert.equal(0, s.stop())
    -- the new secret is in no log nor the store
    local secret = new_key:match("_(%x+)$")
    for _, f in ipairs { "serve.err", "serve.out", ".orket/orket.db" } do
      local t = H.read(dir .. "/" .. f) or ""
      assert.is_nil(t:find(secret, 1, true), f)
    end
  end)
  -- a second folder of one store made by init has no pepper: every key was "mistyped, cut
  -- short or revoked", where the pepper was what the folder lacked
  it("says, in a folder with no pepper, that it cannot check keys and which file it lacks", function()
    local dir = H.example("notes")
    local key = H.api_key(dir, "ops", "operator")
    assert(os.rename(dir .. "/.orket/keys.pepper", dir .. "/.orket/keys.pepper.kept"))
    local s = H.serve(dir)
    local st, doc = H.api(s, "GET", "/v1/board", key)
    assert.equal(401, st)
    assert.matches("this server cannot check API keys: its folder has no ", doc.error.message, 1, true)
    assert.matches("copy .orket/keys.pepper (mode 0600) from the folder where the keys were made", doc.error.remedy, 1, true)
    assert.equal(0, s.stop())
  end)

  -- a pepper that is there but readable by others or cut short: the server started without a
  -- word and told every key holder its folder "has no" pepper
  it("says at its start, in the 401 and in its log line why a pepper that is there cannot be used", function()
    local dir = H.example("notes")
    local key = H.api_key(dir, "ops", "operator")
    local pepper = ".orket/keys.pepper" -- as the server names it, from its folder
    assert(os.execute("chmod 644 " .. H.quote(dir .. "/" .. pepper)))
    local s = H.serve(dir)
    local st, doc = H.api(s, "GET", "/v1/board", key)
    assert.equal(401, st)
    -- the cause is the operator's (the log): a caller is told no file's mode
    assert.equal("this server cannot check API keys: its key pepper cannot be used", doc.error.message)
    assert.matches("the server's operator has the cause and its fix in the server's log", doc.error.remedy, 1, true)
    assert.is_nil(cjson.encode(doc):find("644", 1, true))
    assert.equal(0, s.stop())
    local out = s.log() -- (the log: one JSON object a line on stderr)
    local warned, logged
    for line in out:gmatch("[^\n]+") do
      local ok, e = pcall(cjson.decode, line)
      if ok and type(e) == "table" then
        if e.event == "warning" and e.message == pepper .. " may be read by others (mode 644); run chmod 600 " .. pepper then
          warned = true
        end
        if e.status == 401 and e.auth == "pepper: " .. pepper .. " may be read by others (mode 644)" then logged = true end
      end
    end
    assert.is_true(warned, out)
    assert.is_true(logged, out)
    -- cut short: damaged, with the fix keys.pepper gives
    assert(os.execute("cd " .. H.quote(dir) .. " && chmod 600 " .. pepper .. " && truncate -s 10 " .. pepper))
    s = H.serve(dir)
    st, doc = H.api(s, "GET", "/v1/board", key)
    assert.equal(401, st)
    assert.equal("this server cannot check API keys: its key pepper cannot be used", doc.error.message)
    assert.equal(0, s.stop())
    local damaged
    for line in s.log():gmatch("[^\n]+") do
      local ok, e = pcall(cjson.decode, line)
      if ok and type(e) == "table" and e.event == "warning"
        and e.message == pepper .. " is damaged (not 32 bytes); revoke every key, delete the file and create keys again" then
        damaged = true
      end
    end
    assert.is_true(damaged, s.log())
  end)

  it("sees another process's revocation at the very next request of a key it answered from its kept reads", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "boss", "admin")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- answered twice, the second from what the server kept; no request in between writes
    for _ = 1, 2 do assert.equal(200, (call(s, "GET", "/v1/board", op))) end
    for _ = 1, 2 do assert.equal(200, (call(s, "GET", "/v1/keys", admin))) end
    local r = H.orket("keys revoke ops", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(401, (call(s, "GET", "/v1/board", op)))
    -- the same key in another header form is not a way around it
    local st = H.request(s, "GET", "/v1/board", { "Authorization: bearer   " .. op .. "  " })
    assert.equal(401, st)
    assert.equal(200, (call(s, "GET", "/v1/keys", admin)))
    assert.equal(0, s.stop()) -- stopped, not killed: it removes what it made
  end)
end)
