-- orket.serve.identity: a person of a provider or a directory and their subject. A
-- provider's subject an admin disabled stays refused whatever name it brings next (a
-- provider whose preferred_username the person may change), and disabling one of its names
-- disables the others (added when its name changed), each audited. A directory's entry whose login changed still
-- signs in under its new login (the directory's own look disabled the old one), and a
-- login now another entry's is refused, never taken for that entry's person. A name
-- another subject holds is still refused.
local H = require "tests.helpers"
local B = require "tests.backends"
local identity = require "orket.serve.identity"
local users = require "orket.store.users"

local function names(db)
  local out = {}
  for _, u in ipairs(users.list(db)) do out[#out + 1] = u.name .. (u.disabled_at and " (disabled)" or "") end
  return out
end

describe("a federated person is their subject", function()
  local db
  before_each(function() db = B.open_store() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("keeps a disabled provider's person out under a new name, and disables their other names", function()
    local accounts = require "orket.serve.accounts"
    local id = assert(identity.federated(db, { name = "zed", role = "operator" }, "oidc", "subject-1"))
    assert.equal("zed", id.name)
    assert(accounts.set_disabled(db, "zed", true, "root", true))
    local no, why, code = identity.federated(db, { name = "zed2", role = "operator" }, "oidc", "subject-1")
    assert.same({ nil, "this person was disabled", "EAUTH" }, { no, why, code })
    assert.same({ "zed (disabled)" }, names(db))
    -- a second name an older orket added for the same subject goes out with the first
    assert(accounts.set_disabled(db, "zed", false, "root", true))
    assert(db:tx(function()
      users.insert(db, "zed3", "operator", identity.mark("oidc", "subject-1"))
      return true
    end))
    assert(identity.federated(db, { name = "zed3", role = "operator" }, "oidc", "subject-1"))
    assert(accounts.set_disabled(db, "zed", true, "root", true))
    assert.same({ "zed (disabled)", "zed3 (disabled)" }, names(db))
    no, why = identity.federated(db, { name = "zed3", role = "operator" }, "oidc", "subject-1")
    assert.same({ nil, "this person was disabled" }, { no, why })
    -- the last enabled admin among those other names is kept by the people API, as any is
    assert(db:tx(function()
      users.insert(db, "bob", "admin", identity.mark("oidc", "subject-2"))
      users.insert(db, "robert", "admin", identity.mark("oidc", "subject-2"))
      return true
    end))
    assert(accounts.set_disabled(db, "bob", false, "root", true))
    local refused, rwhy, rcode = accounts.set_disabled(db, "bob", true, "robert", true)
    assert.is_nil(refused)
    assert.equal("ELASTADMIN", rcode)
    assert.matches("would leave no enabled server admin", rwhy)
    assert.same({ "bob", "robert", "zed (disabled)", "zed3 (disabled)" }, names(db))
    -- on the server's machine a leaver is never kept: both go, and it says so
    local r = assert(accounts.set_disabled(db, "bob", true, "local:root"))
    assert.is_true(r.no_admin_left)
  end)

  it("audits each name of a provider's person that a disable takes with it", function()
    local accounts = require "orket.serve.accounts"
    local localuse = require "orket.serve.localuse"
    -- the provider renamed the person: a second row for the same subject
    assert(identity.federated(db, { name = "hana", role = "operator" }, "oidc", "subject-9"))
    assert(identity.federated(db, { name = "hanna", role = "operator" }, "oidc", "subject-9"))
    assert.same({ "hana", "hanna" }, names(db))
    local function disables()
      local out = {}
      for _, r in ipairs(db:rows("SELECT actor, detail FROM audit_log WHERE action = 'user_disable' ORDER BY seq")) do
        out[#out + 1] = r.actor .. " " .. r.detail
      end
      return out
    end
    -- a command's disable of one name: both are in the audit, the other naming the one asked
    assert(localuse.audited(db, "user_disable", nil, function()
      return accounts.set_disabled(db, "hanna", true, "root")
    end, accounts.subject))
    assert.same({ "hana (disabled)", "hanna (disabled)" }, names(db))
    local op = localuse.operator()
    assert.same({ op .. " person=hanna role=operator", op .. " person=hana role=operator with=hanna" }, disables())
    -- the provider's word that the person has no role: the same, said why
    assert(accounts.set_disabled(db, "hana", false, "root"))
    assert(accounts.set_disabled(db, "hanna", false, "root"))
    assert(identity.gone(db, "hanna", { source = "oidc", reason = "no-role", route = "sign_in", say_why = true }))
    local got = disables()
    assert.same({ "oidc person=hanna role=operator why=no-role", "oidc person=hana role=operator why=no-role with=hanna" },
      { got[3], got[4] })
  end)

  it("lets a directory entry whose login changed sign in under its new login, and refuses a login now "
    .. "another entry's", function()
    local accounts = require "orket.serve.accounts"
    assert(identity.federated(db, { name = "dsmith", role = "operator" }, "ldap", "uid=dsmith,dc=x"))
    assert(identity.federated(db, { name = "dana", role = "viewer" }, "ldap", "uid=dana,dc=x"))
    -- the login renamed at the directory (the same entry): its look disables the old login
    assert(accounts.set_disabled(db, "dsmith", true, "ldap"))
    local id = assert(identity.federated(db, { name = "dave.smith", role = "operator" }, "ldap", "uid=dsmith,dc=x"))
    assert.equal("dave.smith", id.name)
    -- the old login now names another entry: refused, never that entry's person
    local no, why = identity.federated(db, { name = "dsmith", role = "operator" }, "ldap", "uid=dana,dc=x")
    assert.is_nil(no)
    assert.equal("the name 'dsmith' belongs to another ldap subject", why)
  end)

  it("refuses a name another subject holds, and adds a new subject under a free name", function()
    assert(identity.federated(db, { name = "ann", role = "viewer" }, "oidc", "subject-a"))
    local no, why = identity.federated(db, { name = "ann", role = "viewer" }, "oidc", "subject-b")
    assert.is_nil(no)
    assert.equal("the name 'ann' belongs to another oidc subject", why)
    local id = assert(identity.federated(db, { name = "bea", role = "viewer" }, "oidc", "subject-b"))
    assert.equal("bea", id.name)
    -- the same subject through another source is another person
    id = assert(identity.federated(db, { name = "cid", role = "viewer" }, "ldap", "subject-a"))
    assert.equal("cid", id.name)
    assert.same({ "ann", "bea", "cid" }, names(db))
  end)

  it("keeps the last enabled server admin an admin whatever their groups give, and says why", function()
    local roles = { web = { devs = "developer" } }
    assert(identity.federated(db, { name = "boss", role = "admin", groups = { "ops" } }, "oidc", "subject-b", roles))
    -- the provider moved them out of the admins' group: the last admin stays one
    local id = assert(identity.federated(db, { name = "boss", role = "operator", groups = { "devs" } }, "oidc",
      "subject-b", roles))
    assert.same({ "admin", "operator" }, { id.role, id.groups_role })
    -- the remedy works for a provider's person too: `orket users role` refuses their role
    assert.equal("boss is the last enabled server admin: kept an admin though their groups give operator; to take "
      .. "it away, make another person an admin first (by their groups, or a local account: orket users add NAME "
      .. "--role admin), or disable them on the server's machine (orket users disable boss)", id.kept)
    assert.is_nil(id.kept:find("orket users role", 1, true))
    assert.equal("admin", users.get(db, "boss").role)
    assert.equal("admin", require("orket.store.projects").role_of(db, "default", "boss"))
    -- their other memberships still follow their groups
    assert.equal("developer", require("orket.store.projects").role_of(db, "web", "boss"))
    -- with another admin, their groups win again
    assert(identity.federated(db, { name = "deputy", role = "admin" }, "ldap", "uid=deputy,dc=x"))
    id = assert(identity.federated(db, { name = "boss", role = "operator", groups = { "devs" } }, "oidc", "subject-b",
      roles))
    assert.same({ "operator", nil }, { id.role, id.kept })
    assert.equal("operator", users.get(db, "boss").role)
    -- and the deputy, the last one now, is kept by the directory's groups the same way
    id = assert(identity.federated(db, { name = "deputy", role = "viewer" }, "ldap", "uid=deputy,dc=x"))
    assert.same({ "admin", "viewer" }, { id.role, id.groups_role })
    assert.equal("admin", users.get(db, "deputy").role)
  end)

  it("asks again in the sign-in's transaction whether the person is the last admin", function()
    assert(identity.federated(db, { name = "ann", role = "admin" }, "oidc", "subject-a"))
    assert(identity.federated(db, { name = "bea", role = "admin" }, "ldap", "uid=bea,dc=x"))
    -- ann's groups demote her; bea's demotion commits after ann's read without a write and
    -- before ann's transaction: of the two, the second to commit is the last admin
    local tx = db.tx
    db.tx = function(self, fn)
      db.tx = tx
      assert(identity.federated(db, { name = "bea", role = "viewer" }, "ldap", "uid=bea,dc=x"))
      return tx(self, fn)
    end
    local id = assert(identity.federated(db, { name = "ann", role = "operator" }, "oidc", "subject-a"))
    db.tx = tx
    assert.same({ "viewer", "admin", "admin" }, { users.get(db, "bea").role, users.get(db, "ann").role, id.role })
    assert.equal("operator", id.groups_role)
  end)

  it("refuses an admin's grant or revoke that the person's next sign-in would undo", function()
    local team = require "orket.serve.team"
    local accounts = require "orket.serve.accounts"
    local roles = { web = { devs = "developer" } }
    local signin = { oidc = { issuer = "https://id.example" }, project_roles = roles }
    local known = { default = true, web = true, other = true }
    assert(identity.federated(db, { name = "fed", role = "operator", groups = { "devs" } }, "oidc", "subject-f", roles))
    for _, call in ipairs {
      function() return team.revoke(db, "default", "fed", "root", signin) end,
      function() return team.revoke(db, "web", "fed", "root", signin) end,
      function() return team.grant(db, known, "web", "fed", "viewer", "root", signin) end,
      function() return team.grant(db, known, "default", "fed", "viewer", "root", signin) end,
    } do
      local no, why, code = call()
      assert.is_nil(no)
      assert.equal("EFOLLOWS", code)
      assert.matches("fed signs in through oidc: their role in '%l+' follows their groups", why)
    end
    -- a project the map does not name keeps what an admin grants and takes away
    assert(team.grant(db, known, "other", "fed", "viewer", "root", signin))
    assert(team.revoke(db, "other", "fed", "root", signin))
    -- with no provider set up any more, nothing sets their roles again: an admin's to change
    assert(team.revoke(db, "default", "fed", "root", { project_roles = roles }))
    assert(team.grant(db, known, "web", "fed", "viewer", "root", nil))
    -- a local account's default membership is the admin's to take away
    local hash = assert(accounts.hash("loc", "viewer", "correct horse battery 1"))
    assert(accounts.add(db, "loc", "viewer", hash, "root"))
    assert(team.revoke(db, "default", "loc", "root", signin))
  end)
end)

-- A refusal's time must not tell which names are accounts: every refusal of a name and
-- password costs one Argon2id check, against the account's hash or else the decoy's, made
-- at the server's start. Wall time is not measured (it would be flaky): the checks are.
describe("every refusal of a name and password costs one Argon2id check", function()
  local crypto = require "orket.c.crypto"
  local ldap = require "orket.auth.ldap"
  local accounts = require "orket.serve.accounts"
  local db, checked, hashed, real_verify, real_hash, real_ldap
  before_each(function()
    db = B.open_store()
    checked, hashed = {}, 0
    real_verify, real_hash, real_ldap = crypto.password_verify, crypto.password_hash, ldap.verify
    crypto.password_verify = function(hash, password)
      checked[#checked + 1] = hash
      return real_verify(hash, password)
    end
    crypto.password_hash = function(password)
      hashed = hashed + 1
      return real_hash(password)
    end
  end)
  after_each(function()
    crypto.password_verify, crypto.password_hash, ldap.verify = real_verify, real_hash, real_ldap
    db:close()
    H.cleanup()
  end)

  it("makes the decoy at prepare, not at the first unknown name", function()
    package.loaded["orket.serve.accounts"] = nil -- a fresh module: no decoy yet
    local fresh = require "orket.serve.accounts"
    package.loaded["orket.serve.accounts"] = accounts
    fresh.prepare()
    local decoy = fresh.decoy_hash() -- waits for prepare's
    assert.equal(1, hashed)
    assert.same({ nil, "unknown" }, { fresh.verify(db, "nosuch", "wrong password") })
    assert.equal(1, hashed)
    assert.same({ decoy }, checked)
  end)

  it("checks a provider's or a directory's person against the decoy", function()
    local decoy = accounts.decoy_hash()
    checked = {}
    for _, source in ipairs { "oidc", "ldap" } do
      local name = "fed" .. source
      assert(identity.federated(db, { name = name, role = "viewer" }, source, "subject-" .. source))
      local no, why = identity.verify(db, nil, name, "wrong password")
      assert.same({ nil, "signs in with " .. source }, { no, why })
    end
    assert.same({ decoy, decoy }, checked)
  end)

  it("checks a name the directory refuses against the decoy, as a local account's refusal costs a check", function()
    local decoy = accounts.decoy_hash()
    checked = {}
    local asked = 0
    ldap.verify = function()
      asked = asked + 1
      return nil, "invalid credentials", "EAUTH"
    end
    local signin = { ldap = { url = "ldapi:///nowhere" }, roles = {} }
    assert.is_nil(identity.verify(db, signin, "dan", "wrong password"))
    assert.same({ 1, { decoy } }, { asked, checked })
    -- the directory down is no refusal of the person (502): no check spent
    ldap.verify = function() return nil, "cannot connect", "EUNAVAILABLE" end
    local no, _, code = identity.verify(db, signin, "dan", "wrong password")
    assert.same({ nil, "EUNAVAILABLE", 1 }, { no, code, #checked })
  end)
end)

-- The people API's changes, whoever signs in how: the last admin's refusal names what works
-- for the people there are, a change that changes nothing is marked so (journaled and
-- audited nowhere, as a grant of the role held), the people listing shows each person's
-- first keys and their count, and the projects listing reads nothing of a project the
-- caller may not see.
describe("the people API's changes", function()
  local accounts = require "orket.serve.accounts"
  local audit_chain = require "orket.audit.chain"
  local db
  before_each(function() db = B.open_store() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  -- a local account, its hash a stand-in (no password is checked here)
  local function local_person(name, role)
    assert(db:tx(function()
      users.insert(db, name, role, "$argon2id$stand-in")
      return true
    end))
  end

  local function events(kind)
    return math.tointeger(assert(db:row("SELECT count(*) AS n FROM events WHERE kind = ?", kind)).n)
  end

  it("says how to make another admin in the way that works for the people there are", function()
    local errors = require "orket.errors"
    local_person("boss", "admin")
    -- nobody else: a new local account, on the machine or over the API; the groups' way
    -- where people sign in so (the store cannot tell whether the server's sign_in is set)
    local _, why, code = accounts.set_role(db, "boss", "viewer", "root")
    assert.equal("ELASTADMIN", code)
    local groups = "where people sign in through a provider or directory, one of theirs by a group that "
      .. "sign_in.roles maps to admin (at their next sign-in, or the directory's next look)"
    local new = "or a new local account with 'orket users add NAME --role admin' (POST /v1/users with role admin)"
    assert.equal("boss is the last enabled server admin; before taking boss's role away, make another person a "
      .. "server admin: " .. groups .. "; " .. new, why)
    -- a directory's person only: their role follows their groups, `orket users role` would refuse it
    assert(identity.federated(db, { name = "dave", role = "operator" }, "ldap", "uid=dave,dc=x"))
    _, why = accounts.set_disabled(db, "boss", true, "root", true)
    assert.equal("boss is the last enabled server admin; before disabling boss, make another person a server "
      .. "admin: " .. groups .. "; " .. new, why)
    -- a local person besides: the command and the route, for them
    local_person("ann", "viewer")
    local here = "a local account with 'orket users role NAME admin' (PUT /v1/users/NAME/role); "
    _, why = accounts.set_role(db, "boss", "operator", "root")
    assert.equal("boss is the last enabled server admin; before taking boss's role away, make another person a "
      .. "server admin: " .. here .. groups .. "; " .. new, why)
    -- the same ways once nobody is left, with who manages people meanwhile: a server key of
    -- role admin still does (it is not counted as an admin)
    assert.equal("no enabled server admin is left: until one is made, people and keys are managed on this machine "
      .. "(or with a server key of role admin, if one is kept); to make one: " .. here .. groups .. "; " .. new,
      accounts.none_left(db, "boss", "this machine"))
    -- the code's remedy, and the API's, name the groups' way and a new local account over the API
    local _, answer = require("orket.serve.admin").refused(why, code)
    for _, remedy in ipairs { errors.CODES.ELASTADMIN.remedy, answer.error.remedy } do
      assert.matches("sign_in.roles", remedy, 1, true)
      assert.matches("POST /v1/users", remedy, 1, true)
    end
  end)

  it("marks a role they hold already, and an enable or disable that changes nothing, as unchanged", function()
    local_person("boss", "admin")
    local_person("ann", "viewer")
    local res = assert(accounts.set_role(db, "ann", "viewer", "root"))
    assert.same({ true, false }, { audit_chain.is_unchanged(res), res.changed })
    assert.equal(0, events("user_role"))
    res = assert(accounts.set_disabled(db, "ann", false, "root", true))
    assert.same({ true, false }, { audit_chain.is_unchanged(res), res.changed })
    res = assert(accounts.set_disabled(db, "ann", true, "root", true))
    assert.is_false(audit_chain.is_unchanged(res))
    -- a disable of someone disabled already ends nothing either: a session row of theirs
    -- (refused at its next use anyway) is left to that use, not deleted by a no-op
    assert(db:tx(function()
      users.session_insert(db, "session-of-ann", "ann", os.time() + 3600)
      return true
    end))
    res = assert(accounts.set_disabled(db, "ann", true, "root", true))
    assert.same({ true, false }, { audit_chain.is_unchanged(res), res.changed })
    assert.same({ 1, 0 }, { events("user_disable"), events("user_enable") })
    assert.is_not_nil(users.session_lookup(db, "session-of-ann"))
    -- the admin role, held already: unchanged
    res = assert(accounts.set_role(db, "boss", "admin", "root"))
    assert.is_true(audit_chain.is_unchanged(res))
    -- a change is one, as before
    local_person("cid", "viewer")
    res = assert(accounts.set_role(db, "cid", "operator", "root"))
    assert.same({ false, true, 1 }, { audit_chain.is_unchanged(res), res.changed, events("user_role") })
  end)

  it("refuses a disabled person's leftover session at its use, and ends it then", function()
    local session = require "orket.serve.session"
    local crypto = require "orket.c.crypto"
    local_person("boss", "admin")
    local_person("ann", "viewer")
    assert(accounts.set_disabled(db, "ann", true, "root", true))
    -- a session of ann's the disable did not end (a no-op disable after it ends none): it is
    -- refused at its next use, which ends it
    local token = "ors_" .. string.rep("ab", 32)
    local h = crypto.hash(token, 32)
    assert(db:tx(function()
      users.session_insert(db, h, "ann", os.time() + 3600)
      return true
    end))
    assert(accounts.set_disabled(db, "ann", true, "root", true))
    assert.is_not_nil(users.session_lookup(db, h))
    local who, st, _, _, why = session.check(db, { method = "GET", headers = { cookie = "orket_session=" .. token } })
    assert.same({ nil, 401, "disabled" }, { who, st, why })
    assert.is_nil(users.session_lookup(db, h))
  end)

  it("makes no session for a person disabled between the sign-in's check and its transaction", function()
    local session = require "orket.serve.session"
    local sk = require "orket.store.keys"
    local_person("boss", "admin")
    local_person("ann", "viewer")
    assert(db:tx(function()
      sk.insert(db, string.format("%016x", 7), "ann-key", "viewer", "h7", "ann")
      return true
    end))
    -- the disable (the CLI's, another server's) commits after the check and before the
    -- transaction that would insert the session
    local function disabled_before_next_tx()
      local tx = db.tx
      db.tx = function(self, fn)
        db.tx = tx
        assert(accounts.set_disabled(db, "ann", true, "root", true))
        return tx(self, fn)
      end
      return function() db.tx = tx end
    end
    local function count(sql) return math.tointeger(assert(db:row(sql)).n) end
    -- with her password (or a provider's, a directory's look)
    assert.is_nil(users.get(db, "ann").disabled_at)
    local restore = disabled_before_next_tx()
    local req, ctx = { headers = {} }, { db = db }
    local token = session.start_person(req, ctx, accounts.identity("ann", "viewer"))
    restore()
    assert.is_nil(token)
    assert.is_not_nil(users.get(db, "ann").disabled_at)
    assert.equal(0, count("SELECT count(*) AS n FROM user_sessions"))
    -- with her personal key, as accounts.of_key gave it before the disable
    assert(accounts.set_disabled(db, "ann", false, "root", true))
    local who = assert(accounts.of_key(db, { id = string.format("%016x", 7), name = "ann-key", role = "viewer",
      user = "ann" }))
    restore = disabled_before_next_tx()
    token = session.start_key(req, ctx, who)
    restore()
    assert.is_nil(token)
    assert.equal(0, count("SELECT count(*) AS n FROM sessions"))
    -- no sign-in journaled; enabled again, she signs in both ways
    assert.equal(0, events("session_start"))
    assert(accounts.set_disabled(db, "ann", false, "root", true))
    assert(session.start_person(req, ctx, accounts.identity("ann", "viewer")))
    assert(session.start_key(req, ctx, who))
    assert.same({ 1, 1, 2 }, { count("SELECT count(*) AS n FROM user_sessions"),
      count("SELECT count(*) AS n FROM sessions"), events("session_start") })
  end)

  it("lists each person's first keys and how many they have, in one read", function()
    local keys = require "orket.serve.keys"
    local sk = require "orket.store.keys"
    local_person("ann", "viewer")
    local_person("bea", "viewer")
    assert(db:tx(function()
      for i = 1, 7 do sk.insert(db, string.format("%016x", i), "k" .. i, "viewer", "h" .. i, "ann") end
      sk.insert(db, string.format("%016x", 99), "only", "viewer", "h99", "bea")
      return true
    end))
    local by = keys.of_users(db, "", "bea", 3)
    assert.same({ 7, 7, 3 }, { by.ann.count, by.ann.live, #by.ann.keys })
    assert.same({ "k1", "k2", "k3" }, { by.ann.keys[1].name, by.ann.keys[2].name, by.ann.keys[3].name })
    assert.same({ 1, 1, "only" }, { by.bea.count, #by.bea.keys, by.bea.keys[1].name })
    -- those not revoked first: the people page revokes those it shows
    assert(db:tx(function()
      sk.revoke(db, string.format("%016x", 1))
      return true
    end))
    by = keys.of_users(db, "", "ann", 3)
    assert.same({ 7, 6, "k2", "k3", "k4" },
      { by.ann.count, by.ann.live, by.ann.keys[1].name, by.ann.keys[2].name, by.ann.keys[3].name })
    -- the keys listing pages them all, as every listing of keys does
    assert.equal(7, #keys.list_doc(db, "ann").keys)
    local page = keys.list_doc(db, "ann", string.format("%016x", 5), 10)
    assert.same({ "k6", "k7" }, { page.keys[1].name, page.keys[2].name })
    -- a start after a key without a page is refused, not ignored
    assert.error_matches(function() keys.list_doc(db, "ann", string.format("%016x", 5)) end, "after needs a limit")
  end)

  it("reads nothing of a project the caller may not see when listing the projects", function()
    local projects = require "orket.serve.projects"
    local sp = require "orket.store.projects"
    local_person("ann", "viewer")
    assert(db:tx(function()
      sp.set_role(db, "default", "ann", "viewer")
      return true
    end))
    local handler
    projects.add { add = function(_, method, pattern, spec)
      if method == "GET" and pattern == "/v1/projects" then handler = spec.handler end
    end }
    local read, serving = {}, sp.serving
    sp.serving = function(d, name)
      read[#read + 1] = name
      return serving(d, name)
    end
    local ok, st, doc = pcall(handler, nil, { who = { user = "ann" }, server = { db = db,
      project_names = { "default", "notes", "web" }, unavailable = {},
      projects = { notes = { name = "notes", dir = "/nowhere/notes", stored = true },
        web = { name = "web", dir = "/nowhere/web", stored = true } } } })
    sp.serving = serving
    assert(ok, st)
    assert.equal(200, st)
    assert.same({ "default" }, { doc.projects[1].name, doc.projects[2] })
    assert.same({}, read)
  end)
end)
