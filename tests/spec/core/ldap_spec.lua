-- orket.c.ldap and orket.auth.ldap against Debian's slapd (tests.slapd): a person found and
-- bound with their password, their entry's entryUUID, their groups mapped to a role (and
-- whether an empty list is the directory's word), and each refusal named: a wrong password,
-- an empty one, a service bind_dn with none, no such person, a filter injected through the
-- name, the directory down.
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

  it("gives the entry's entryUUID, which a move keeps and a new entry of the same DN does not", function()
    if not s then return pending(why) end
    local alice = assert(ldap.verify(opts(), "alice", "alice-pw"))
    local uuid = s.uuid_of("uid=alice," .. slapd.PEOPLE)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", uuid)
    assert.equal(uuid:lower(), alice.uuid)
    assert.equal(alice.uuid, assert(ldap.lookup(opts(), "alice")).uuid)
    -- alice moves to another OU: the same entryUUID under her new DN
    s.move("uid=alice," .. slapd.PEOPLE, "uid=alice,ou=eng," .. slapd.PEOPLE, [[
dn: ou=eng,ou=people,dc=example,dc=org
changetype: add
objectClass: organizationalUnit
ou: eng
]])
    local moved = assert(ldap.verify(opts(), "alice", "alice-pw"))
    assert.same({ "uid=alice,ou=eng," .. slapd.PEOPLE, alice.uuid }, { moved.dn, moved.uuid })
    -- and back, for the tests after
    s.move("uid=alice,ou=eng," .. slapd.PEOPLE, "uid=alice," .. slapd.PEOPLE)
    assert.equal(alice.uuid, assert(ldap.lookup(opts(), "alice")).uuid)
    -- gus leaves, and a newcomer is given his DN: another entryUUID
    local function gus(cn) return string.format([[
dn: uid=gus,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: gus
cn: %s
sn: G
userPassword: gus-pw
]], cn) end
    s.modify(gus("Gus"))
    local old = assert(ldap.lookup(opts(), "gus"))
    s.modify("dn: uid=gus,ou=people,dc=example,dc=org\nchangetype: delete\n\n" .. gus("New Gus"))
    local newcomer = assert(ldap.lookup(opts(), "gus"))
    assert.equal(old.dn, newcomer.dn)
    assert.is_truthy(newcomer.uuid)
    assert.are_not.equal(old.uuid, newcomer.uuid)
  end)

  it("says whether the groups' bind could read any group's members, so that no group listed is the directory's "
    .. "word", function()
    if not s then return pending(why) end
    -- carol is in no group; the bind reads the members of others: she is in none
    local carol = assert(ldap.lookup(opts(), "carol"))
    assert.same({ {}, true }, { carol.groups, carol.members_seen })
    assert.is_true(assert(auth_ldap.lookup(opts(), ROLES, "carol")).groups_known)
    -- a directory that shows members to people bound as themselves alone: the anonymous look
    -- at alice (in devs) lists nothing and says it could read nothing
    local hidden, hwhy = slapd.start { acl = slapd.MEMBERS_FOR_USERS }
    if not hidden then return pending(hwhy) end
    local ok, err = pcall(function()
      local o = opts { url = hidden.url }
      local blind = assert(ldap.lookup(o, "alice"))
      assert.same({ {}, false }, { blind.groups, blind.members_seen })
      assert.is_false(assert(auth_ldap.lookup(o, ROLES, "alice")).groups_known)
      -- her own sign-in reads them, as does carol's, bound as herself: she is in none
      assert.same({ "devs" }, assert(ldap.verify(o, "alice", "alice-pw")).groups)
      local c = assert(ldap.verify(o, "carol", "carol-pw"))
      assert.same({ {}, true }, { c.groups, c.members_seen })
      -- no group_base_dn: groups are not asked for, and none listed is the answer
      local cfg = { url = hidden.url, base_dn = slapd.PEOPLE, default_role = "viewer" }
      assert.is_true(assert(auth_ldap.lookup(cfg, ROLES, "alice")).groups_known)
    end)
    hidden.stop()
    assert(ok, err)
  end)

  it("answers a sign-in whose groups give no role with the directory's answer, for the server to act on", function()
    if not s then return pending(why) end
    local cfg = { url = s.url, base_dn = slapd.PEOPLE, group_base_dn = slapd.GROUPS }
    local who, msg, code, answer = auth_ldap.verify(cfg, ROLES, "carol", "carol-pw")
    assert.same({ nil, auth_ldap.NO_ROLE, "EAUTH" }, { who, msg, code })
    assert.same({ "carol", nil, "uid=carol," .. slapd.PEOPLE, {}, true },
      { answer.name, answer.role, answer.dn, answer.groups, answer.groups_known })
    -- a wrong password gives nothing of the entry
    who, msg, code, answer = auth_ldap.verify(cfg, ROLES, "carol", "wrong")
    assert.same({ nil, "EAUTH" }, { who, code })
    assert.is_nil(answer)
  end)

  it("never sends the service's bind with a DN and no password: an unauthenticated bind", function()
    if not s then return pending(why) end
    -- a directory that allows unauthenticated binds would search as anonymous; slapd's
    -- default refuses them ("unwilling to perform"), which says nothing of the password
    for _, o in ipairs { opts { bind_dn = slapd.ADMIN_DN }, opts { bind_dn = slapd.ADMIN_DN, bind_password = "" } } do
      local who, msg, code = ldap.verify(o, "alice", "alice-pw")
      assert.same({ nil, "EINVAL" }, { who, code })
      assert.equal("the service's bind: bind_dn has no password (an empty one would be an unauthenticated bind): none "
        .. "is sent", msg)
      who, msg, code = ldap.lookup(o, "alice")
      assert.same({ nil, "EINVAL" }, { who, code })
      assert.matches("bind_dn has no password", msg, 1, true)
    end
    -- sign_in.ldap's bind_password_env unset or blank: the directory is not asked, and the
    -- server takes it for the directory's failure (not the person's), naming the setting
    for _, value in ipairs { false, "", "  " } do
      local cfg = { url = s.url, base_dn = slapd.PEOPLE, bind_dn = slapd.ADMIN_DN,
        bind_password_env = "ORKET_TEST_LDAP_PW" }
      local getenv = os.getenv
      os.getenv = function(k) -- luacheck: ignore
        if k == "ORKET_TEST_LDAP_PW" then return value or nil end
        return getenv(k)
      end
      local ok, who, msg, code = pcall(auth_ldap.verify, cfg, ROLES, "alice", "alice-pw")
      os.getenv = getenv -- luacheck: ignore
      assert(ok, who)
      assert.same({ nil, "EUNAVAILABLE" }, { who, code })
      assert.equal(require("orket.settings.signin").NO_BIND_PASSWORD .. " (ORKET_TEST_LDAP_PW is unset or empty)", msg)
    end
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
