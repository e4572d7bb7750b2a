-- A directory's people as `orket serve` keeps them, against Debian's slapd (tests.slapd):
-- someone taken out of every group is disabled by their own refused sign-in, and by the
-- server's look when its bind reads the groups; an entry moved to another OU stays the same
-- person (bound to its entryUUID, not its DN); a leaver's DN given to a newcomer is another
-- person, whose name a server admin hands over with `orket users enable NAME --new-subject`
-- (the leaver's keys revoked), where a plain enable says which keys it brings back; and a
-- bind_dn with no password is refused before the server starts.
local H = require "tests.helpers"
local cjson = require "cjson"
local slapd = require "tests.slapd"

local JSON = "Content-Type: application/json"
local ok, req = H.ok, H.request

-- orket.lua's sign_in through the directory d (the service bound as the rootdn, which reads
-- every group), with extra fields in its ldap table
local function project(d, extra)
  local dir = H.example("webapp")
  local base = H.read(dir .. "/orket.lua") or ""
  H.write(dir .. "/orket.lua", base .. string.format([[

sign_in = {
  ldap = { url = %q, base_dn = %q, group_base_dn = %q, timeout_ms = 2000,
    bind_dn = %q, bind_password_env = "LDAP_PW", %s },
  roles = { devs = "operator", admins = "admin", everyone = "viewer" },
}
]], d.url, slapd.PEOPLE, slapd.GROUPS, slapd.ADMIN_DN, extra or ""))
  -- a local server admin besides: no directory person here is the last one
  ok(H.orket("users add root --role admin --password-env PW", { cwd = dir, env = { PW = "local password" } }), "add")
  return dir
end

local function serve(dir) return H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } }) end

-- signed_in(s, user, pw[, role]) -> their session's headers (cookie, CSRF), their new key's
-- headers, the key's id
local function signed_in(s, user, pw, role)
  local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw })
  assert.same({ 200, role or "viewer" }, { st, doc.role }, user)
  local session = { JSON, "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)"), "X-CSRF-Token: " .. doc.csrf }
  local kst, kdoc = req(s, "POST", "/v1/me/keys", session, { name = user .. "-ci", role = "viewer" })
  assert.equal(201, kst, user)
  return session, { "Authorization: Bearer " .. kdoc.key }, kdoc.id
end

local function sign_in(s, user, pw) return req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw }) end

-- who is disabled among the project's people: name -> true | false
local function disabled_of(dir)
  local people = cjson.decode(ok(H.orket("users list --json", { cwd = dir }), "users list").stdout).users
  local out = {}
  for _, u in ipairs(people) do out[u.name] = u.disabled_at ~= nil end
  return out
end

-- the audit's entries of action (one of actions), "ACTOR ROUTE DETAIL"
local function audited(dir, actions)
  local out = {}
  for line in ok(H.orket("audit export", { cwd = dir }), "audit export").stdout:gmatch("[^\n]+") do
    local e = cjson.decode(line)
    if actions[e.action] then out[#out + 1] = e.action .. " " .. e.actor .. " " .. e.route .. " " .. tostring(e.detail) end
  end
  return out
end

local ERIN = [[
dn: uid=erin,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: erin
cn: Erin
sn: E
userPassword: erin-pw

dn: cn=everyone,ou=groups,dc=example,dc=org
changetype: add
objectClass: groupOfNames
cn: everyone
member: uid=erin,ou=people,dc=example,dc=org
member: uid=alice,ou=people,dc=example,dc=org
]]

local ERIN_OUT = [[
dn: cn=everyone,ou=groups,dc=example,dc=org
changetype: modify
delete: member
member: uid=erin,ou=people,dc=example,dc=org
]]

describe("a directory's person taken out of every group", function()
  local d, why
  before_each(function() d, why = slapd.start() end)
  after_each(function()
    H.kill_servers()
    if d then d.stop() end
    H.cleanup()
  end)

  it("is disabled by their own sign-in that the directory refuses: sessions and keys end, no key is made", function()
    if not d then return pending(why) end
    d.modify(ERIN)
    -- no look between: the sign-in alone must end her access
    local dir = project(d, "recheck_s = 3600,")
    local s = serve(dir)
    local session, key = signed_in(s, "erin", "erin-pw")
    d.modify(ERIN_OUT)
    local st, doc = sign_in(s, "erin", "erin-pw")
    assert.same({ 401, "the name or password is not valid" }, { st, doc.error.message })
    assert.matches("ldap: none of this person's groups has a role on this server; erin was disabled here", s.log(), 1,
      true)
    assert.equal(401, (req(s, "GET", "/v1/session", session)))
    assert.equal(401, (req(s, "GET", "/v1/board", key)))
    assert.equal(401, (req(s, "POST", "/v1/me/keys", session, { name = "after-removal", role = "viewer" })))
    assert.same({ erin = true, root = false }, disabled_of(dir))
    s.stop()
    assert.same({ "user_disable ldap directory person=erin role=viewer why=no-role" },
      audited(dir, { user_disable = true }))
  end)

  it("is disabled by the server's look when its bind reads the groups, and kept by one that reads none", function()
    if not d then return pending(why) end
    d.modify(ERIN)
    local dir = project(d, "recheck_s = 1, grace_s = 600,")
    local s = serve(dir)
    local _, key = signed_in(s, "erin", "erin-pw")
    local _, alice_key = signed_in(s, "alice", "alice-pw", "operator")
    d.modify(ERIN_OUT)
    orket.sleep(1100) -- recheck_s since the sign-ins
    local st, doc = req(s, "GET", "/v1/board", key)
    assert.same({ 401, "the directory no longer gives this person a role here; they were disabled" },
      { st, doc.error and doc.error.message })
    assert.equal(200, (req(s, "GET", "/v1/board", alice_key)))
    assert.same({ alice = false, erin = true, root = false }, disabled_of(dir))
    assert.is_nil(s.log():find("lists no group of this person", 1, true))
    s.stop()
    assert.same({ "user_disable ldap directory person=erin role=viewer" }, audited(dir, { user_disable = true }))
  end)
end)

describe("a directory's person whose entry moves to another OU", function()
  local d, why
  before_each(function() d, why = slapd.start() end)
  after_each(function()
    H.kill_servers()
    if d then d.stop() end
    H.cleanup()
  end)

  it("stays the same person: their keys and sessions go on, they sign in, nothing is disabled", function()
    if not d then return pending(why) end
    local dir = project(d, "recheck_s = 1, grace_s = 600,")
    local s = serve(dir)
    local session, key = signed_in(s, "alice", "alice-pw", "operator")
    local uuid = d.uuid_of("uid=alice," .. slapd.PEOPLE)
    d.move("uid=alice," .. slapd.PEOPLE, "uid=alice,ou=eng," .. slapd.PEOPLE, [[
dn: ou=eng,ou=people,dc=example,dc=org
changetype: add
objectClass: organizationalUnit
ou: eng

dn: cn=devs,ou=groups,dc=example,dc=org
changetype: modify
replace: member
member: uid=alice,ou=eng,ou=people,dc=example,dc=org
]])
    assert.equal(uuid, d.uuid_of("uid=alice,ou=eng," .. slapd.PEOPLE))
    orket.sleep(1100) -- recheck_s: the look finds her under her new DN
    local st, doc = req(s, "GET", "/v1/session", key)
    assert.same({ 200, "viewer" }, { st, doc.role }, doc.error and doc.error.message)
    st, doc = req(s, "GET", "/v1/session", session)
    assert.same({ 200, "operator" }, { st, doc.role })
    st, doc = sign_in(s, "alice", "alice-pw")
    assert.same({ 200, "operator" }, { st, doc.role })
    assert.same({ alice = false, root = false }, disabled_of(dir))
    s.stop()
    assert.same({}, audited(dir, { user_disable = true }))
  end)
end)

describe("a leaver's DN given to a newcomer", function()
  local d, why
  before_each(function() d, why = slapd.start() end)
  after_each(function()
    H.kill_servers()
    if d then d.stop() end
    H.cleanup()
  end)

  it("is another person: a plain enable says which keys come back and is undone; --new-subject hands the name "
    .. "over, revoking the leaver's keys", function()
    if not d then return pending(why) end
    local dir = project(d, "recheck_s = 1, grace_s = 600,")
    local s = serve(dir)
    local _, key, key_id = signed_in(s, "dave", "dave-pw", "admin")
    -- dave leaves; later a newcomer is given his DN (admins lists memberUid Dave still)
    d.modify([[
dn: uid=Dave,ou=people,dc=example,dc=org
changetype: delete
]])
    orket.sleep(1100)
    assert.equal(401, (req(s, "GET", "/v1/board", key)))
    d.modify([[
dn: uid=Dave,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: Dave
cn: New Dave
sn: D
userPassword: new-dave-pw
]])
    local st = sign_in(s, "dave", "new-dave-pw")
    assert.equal(401, st)
    assert.matches("the name 'dave' belongs to another ldap subject; if this entry is the person", s.log(), 1, true)
    assert.matches("orket users enable dave --new-subject", s.log(), 1, true)

    -- a plain enable brings the leaver's key back, and says so; the next look undoes it
    local r = ok(H.orket("users enable dave", { cwd = dir }), "enable")
    assert.matches("enabled dave (admin)\n1 key of theirs works again: dave-ci (" .. key_id .. ", viewer)\n", r.stdout,
      1, true)
    assert.matches("'orket users enable dave --new-subject' hands the name to that entry instead", r.stdout, 1, true)
    orket.sleep(1100)
    local doc
    st, doc = req(s, "GET", "/v1/board", key)
    assert.same({ 401, "the directory no longer gives this person a role here; they were disabled" },
      { st, doc.error and doc.error.message })
    assert.matches("a plain enable would be undone at the next look", doc.error.remedy, 1, true)
    assert.matches("orket users enable NAME --new-subject", doc.error.remedy, 1, true)

    -- handed over: the leaver's key is revoked, the newcomer signs in as dave
    r = ok(H.orket("users enable dave --new-subject", { cwd = dir }), "enable --new-subject")
    assert.matches("handed dave to the directory's entry that has the name now: its next sign-in takes it, with the "
      .. "role its groups give; the old subject's 1 key revoked (dave-ci (" .. key_id .. ")), 0 sessions ended", r.stdout,
      1, true)
    assert.equal(401, (req(s, "GET", "/v1/board", key)))
    local sdoc
    st, sdoc = sign_in(s, "dave", "new-dave-pw")
    assert.same({ 200, "admin" }, { st, sdoc.role })
    orket.sleep(1100) -- and the look keeps them
    st = sign_in(s, "dave", "new-dave-pw")
    assert.equal(200, st)
    assert.equal(401, (req(s, "GET", "/v1/board", key)))
    assert.same({ dave = false, root = false }, disabled_of(dir))
    s.stop()
    local entries = audited(dir, { key_revoke = true, user_enable = true })
    assert.equal(3, #entries)
    assert.matches("^user_enable local:%S+ cli person=dave role=admin$", entries[1])
    assert.equal("key_revoke", entries[2]:match("^%S+"))
    assert.matches("keyid=" .. key_id .. " person=dave role=viewer", entries[2], 1, true)
    assert.matches("^user_enable local:%S+ cli keys=1 newsubject=yes person=dave role=viewer was=admin$", entries[3])
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("refuses --new-subject for a person who does not sign in through the directory", function()
    if not d then return pending(why) end
    local dir = project(d)
    local r = H.orket("users enable root --new-subject", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("root signs in with a password here: --new-subject hands a directory's (LDAP) person's name to the "
      .. "entry that has it now", r.stderr, 1, true)
    r = H.orket("users disable root --new-subject", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("--new-subject goes with users enable", r.stderr, 1, true)
  end)
end)

describe("a bind_dn with no password", function()
  local d, why
  before_each(function() d, why = slapd.start() end)
  after_each(function()
    H.kill_servers()
    if d then d.stop() end
    H.cleanup()
  end)

  -- a project whose ldap section has bind_dn, and ldap_extra; -> dir, the line of `ldap = {`
  local function bare(ldap_extra)
    local dir = H.example("adder") -- a project orket validate finds nothing else wrong with
    local base = H.read(dir .. "/orket.lua") or ""
    local _, lines = base:gsub("\n", "")
    H.write(dir .. "/orket.lua", base .. string.format([[

sign_in = {
  ldap = { url = %q, base_dn = %q,
    bind_dn = %q, %s },
  roles = { admins = "admin" },
}
]], d.url, slapd.PEOPLE, slapd.ADMIN_DN, ldap_extra or ""))
    return dir, lines + 3
  end

  it("is refused by orket validate and at the server's start, naming the field", function()
    if not d then return pending(why) end
    local dir, line = bare()
    local said = "orket.lua:" .. line .. ": sign_in.ldap.bind_password: is required with bind_dn"
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches(said, r.stdout, 1, true)
    r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches(said, r.stderr, 1, true)
  end)

  it("from a bind_password_env that is unset or empty is refused by orket validate and at the server's start",
    function()
    if not d then return pending(why) end
    local dir, line = bare('bind_password_env = "LDAP_PW",')
    for _, env in ipairs { {}, { LDAP_PW = "" }, { LDAP_PW = "  " } } do
      -- placed at the line that sets bind_password_env (bind_dn's)
      local said = "orket.lua:" .. line + 1 .. ": sign_in.ldap.bind_password_env: LDAP_PW is unset or empty, and bind_dn "
        .. "needs its password"
      local r = H.orket("validate", { cwd = dir, env = env })
      assert.equal(1, r.status, r.stdout)
      assert.matches(said, r.stdout, 1, true)
      r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, env = env })
      assert.equal(1, r.status, r.stderr)
      assert.matches(said, r.stderr, 1, true)
    end
    -- set, it is fine
    assert.equal(0, H.orket("validate", { cwd = dir, env = { LDAP_PW = slapd.ADMIN_PW } }).status)
  end)
end)
