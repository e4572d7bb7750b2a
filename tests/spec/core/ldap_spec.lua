-- orket.c.ldap and orket.auth.ldap against Debian's slapd (tests.slapd): a person found and
-- bound with their password, their groups mapped to a role, and each refusal named: a wrong
-- password, an empty one, no such person, a filter injected through the name, the
-- directory down.
local H = require "tests.helpers"
local ldap = require "orket.c.ldap"
local auth_ldap = require "orket.auth.ldap"
local slapd = require "tests.slapd"
local task = require "orket.task"

describe("LDAP sign-in", function()
  local s, why
  setup(function() s, why = slapd.start() end)
  teardown(function()
    if s then s.stop() end
    H.cleanup()
  end)

  local function opts(over)
    local o = { url = s.url, base_dn = slapd.PEOPLE, group_base_dn = slapd.GROUPS, timeout_ms = 5000 }
    for k, v in pairs(over or {}) do o[k] = v end
    return o
  end
  local ROLES = { devs = "operator", admins = "admin" }

  it("binds a person with their password and lists their groups", function()
    if not s then return pending(why) end
    local who = assert(ldap.verify(opts(), "alice", "alice-pw"))
    assert.equal("uid=alice," .. slapd.PEOPLE, who.dn)
    assert.same({ "devs" }, who.groups)
    -- a service bind first, as a directory that refuses anonymous searches wants
    local bob = assert(ldap.verify(opts { bind_dn = slapd.ADMIN_DN, bind_password = slapd.ADMIN_PW }, "bob", "bob-pw"))
    assert.same({ "admins" }, bob.groups)
  end)

  it("looks a person up without their password, as the service sees them, with the directory's own spelling",
    function()
    if not s then return pending(why) end
    local who = assert(ldap.lookup(opts(), "alice"))
    assert.same({ "uid=alice," .. slapd.PEOPLE, { "devs" } }, { who.dn, who.groups })
    -- uid=Dave, found as dave, in the posixGroup that lists memberUid Dave
    who = assert(ldap.lookup(opts { bind_dn = slapd.ADMIN_DN, bind_password = slapd.ADMIN_PW }, "dave"))
    assert.same({ "uid=Dave," .. slapd.PEOPLE, { "admins" } }, { who.dn, who.groups })
    local none, msg, code = ldap.lookup(opts(), "nobody")
    assert.same({ nil, "EAUTH" }, { none, code })
    assert.matches("no such person", msg)
    assert.equal("admin", assert(auth_ldap.lookup(opts(), { admins = "admin" }, "dave")).role)
    -- a base_dn the directory does not hold is its failure, not the person's absence
    none, msg, code = ldap.lookup(opts { base_dn = "ou=nobody," .. slapd.SUFFIX }, "alice")
    assert.same({ nil, "EUNAVAILABLE" }, { none, code })
    assert.matches("No such object", msg)
    -- a person found in no group: no role, told apart from no person
    local carol = assert(auth_ldap.lookup(opts(), ROLES, "carol"))
    assert.same({ "uid=carol," .. slapd.PEOPLE, {} }, { carol.dn, carol.groups })
    assert.is_nil(carol.role)
  end)

  it("binds as the service with a password from the secret store (secret \"NAME\")", function()
    if not s then return pending(why) end
    local dir = H.tmpdir()
    local no_env = function() return nil end
    assert(require("orket.store.secrets").set(dir, "LDAP_BIND", slapd.ADMIN_PW, no_env))
    local data = { ldap = { url = s.url, base_dn = slapd.PEOPLE, group_base_dn = slapd.GROUPS,
      bind_dn = slapd.ADMIN_DN, bind_password = { secret = "LDAP_BIND" } } }
    require("orket.settings.secret").bind_all(data, dir)
    assert.equal("admin", assert(auth_ldap.verify(data.ldap, ROLES, "bob", "bob-pw")).role)
    -- the wrong one in the store: the service's bind is refused, and no one is signed in
    assert(require("orket.store.secrets").set(dir, "LDAP_BIND", "not-the-password", no_env))
    assert.is_nil((auth_ldap.verify(data.ldap, ROLES, "bob", "bob-pw")))
  end)

  it("maps groups to roles, and refuses a person in no group with a role", function()
    if not s then return pending(why) end
    local cfg = { url = s.url, base_dn = slapd.PEOPLE, group_base_dn = slapd.GROUPS }
    assert.equal("operator", assert(auth_ldap.verify(cfg, ROLES, "alice", "alice-pw")).role)
    assert.equal("admin", assert(auth_ldap.verify(cfg, ROLES, "bob", "bob-pw")).role)
    local who, msg, code = auth_ldap.verify(cfg, ROLES, "carol", "carol-pw")
    assert.is_nil(who)
    assert.equal("EAUTH", code)
    assert.matches("groups has a role", msg)
    cfg.default_role = "viewer"
    assert.equal("viewer", assert(auth_ldap.verify(cfg, ROLES, "carol", "carol-pw")).role)
  end)

  it("refuses a wrong password, an empty one and an unknown person", function()
    if not s then return pending(why) end
    local who, msg, code = ldap.verify(opts(), "alice", "bob-pw")
    assert.is_nil(who)
    assert.equal("EAUTH", code)
    assert.matches("wrong password", msg)
    -- an empty password would be an unauthenticated bind, which a directory accepts
    who, msg, code = ldap.verify(opts(), "alice", "")
    assert.is_nil(who)
    assert.equal("EINVAL", code)
    assert.matches("empty password", msg)
    who, msg, code = ldap.verify(opts(), "mallory", "x")
    assert.is_nil(who)
    assert.equal("EAUTH", code)
    assert.matches("no such person", msg)
  end)

  it("escapes the name: a filter injected through it matches nobody", function()
    if not s then return pending(why) end
    -- unescaped, (uid=al*) would find alice, and her password would sign "al*" in as her
    for _, name in ipairs { "al*", "*", "alice)(uid=*", "alice)(|(uid=*", "\\61lice", "alice\0" } do
      local who, msg, code = ldap.verify(opts(), name, "alice-pw")
      assert.is_nil(who, name)
      assert.is_true(code == "EAUTH" or code == "EINVAL", name .. ": " .. tostring(code))
      assert.is_truthy(msg)
    end
  end)

  it("waits for a directory that does not answer without holding up the loop, then says it is down", function()
    if not s then return pending(why) end
    -- a socket that takes connections into its backlog and never answers: the bind waits
    -- for its timeout, whatever the machine's load (a stopped slapd could be raced)
    local uv = require "luv"
    local path = H.tmpdir() .. "/mute"
    local mute = uv.new_pipe(false)
    assert(mute:bind(path))
    assert(mute:listen(8, function() end))
    local done, who, msg, code = false, nil, nil, nil
    local t = task.spawn(function()
      who, msg, code = ldap.verify(opts { url = slapd.url_of(path), timeout_ms = 300 }, "alice", "alice-pw")
      done = true
    end)
    -- the check runs on the thread pool: this task goes on while it waits
    local ticks = 0
    while not done and ticks < 5 do
      orket.sleep(10)
      ticks = ticks + 1
    end
    t:join()
    mute:close()
    local said = string.format("who=%s msg=%s code=%s", tostring(who and who.dn), tostring(msg), tostring(code))
    assert.equal(5, ticks, "the loop stood still while the directory was asked: " .. said)
    assert.is_nil(who, said)
    assert.equal("EUNAVAILABLE", code, said)
    assert.is_truthy(msg)
  end)

  it("says the directory is down, and refuses bad arguments", function()
    if not s then return pending(why) end
    local who, msg, code = ldap.verify(opts { url = slapd.url_of(s.dir .. "/nothing-here") }, "alice", "alice-pw")
    assert.is_nil(who)
    assert.equal("EUNAVAILABLE", code)
    assert.is_truthy(msg)
    assert.has_error(function() ldap.verify(opts { user_attr = "uid=x)(" }, "alice", "alice-pw") end,
      "bad argument #1 to 'verify' (user_attr must be an attribute name)")
    assert.has_error(function() ldap.verify({}, "alice", "x") end, "bad argument #1 to 'verify' (url must be a string)")
    assert.has_error(function() ldap.lookup({}, "alice") end, "bad argument #1 to 'lookup' (url must be a string)")
  end)
end)
