-- A person's key (or a session opened with one) revokes only itself or keys of its own
-- role or lower, as it makes only those: a leaked viewer key cannot revoke its person's CI
-- and admin keys (DELETE /v1/me/keys/{id}, docs/teams.md#keys).
local H = require "tests.helpers"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

describe("a key revoking its person's keys", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("revokes itself and keys no stronger, never a stronger one", function()
    local dir = H.example("webapp")
    ok(H.orket("users add boss --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local function key(name, role)
      local k = ok(H.orket("keys create " .. name .. " --role " .. role .. " --for boss", { cwd = dir }), "key").stdout
      k = k:gsub("\n$", "")
      return k, k:match("^ork_(%x+)_")
    end
    local admin, admin_id = key("ka", "admin")
    local op, op_id = key("ko", "operator")
    local view = key("kv", "viewer")
    local view2 = key("kv2", "viewer")
    local s = H.serve(dir)
    -- a viewer key: not the admin key, by id or by name, nor the operator key
    local st, doc = H.api(s, "DELETE", "/v1/me/keys/" .. admin_id, view)
    assert.equal(403, st)
    assert.matches("viewer key revokes itself or keys of its role or lower", doc.error.message, 1, true)
    assert.equal(403, (H.api(s, "DELETE", "/v1/me/keys/ka", view)))
    assert.equal(403, (H.api(s, "DELETE", "/v1/me/keys/" .. op_id, view)))
    assert.equal(200, (H.api(s, "GET", "/v1/users", admin))) -- still valid
    -- a session opened with the viewer key is held to the same
    local sst, sdoc, sh = H.request(s, "POST", "/v1/session", { JSON }, { key = view })
    assert.equal(200, sst)
    local cookie = { "Cookie: " .. sh["set-cookie"]:match("^(orket_session=ors_%x+);"), "X-CSRF-Token: " .. sdoc.csrf }
    assert.equal(403, (H.request(s, "DELETE", "/v1/me/keys/ko", cookie)))
    -- another viewer key, and itself, it may revoke
    assert.equal(200, (H.api(s, "DELETE", "/v1/me/keys/kv2", view)))
    assert.equal(401, (H.api(s, "GET", "/v1/board", view2)))
    -- the operator key revokes the viewer key, not the admin one; the admin key any
    assert.equal(403, (H.api(s, "DELETE", "/v1/me/keys/ka", op)))
    assert.equal(200, (H.api(s, "DELETE", "/v1/me/keys/kv", op)))
    assert.equal(200, (H.api(s, "DELETE", "/v1/me/keys/ko", admin)))
    assert.equal(200, (H.api(s, "DELETE", "/v1/me/keys/ka", admin)))
    assert.equal(401, (H.api(s, "GET", "/v1/board", admin)))
  end)
end)
