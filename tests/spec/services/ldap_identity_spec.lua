-- orket.serve.identity for a directory's people: bound to their entry's entryUUID (a move
-- keeps it, a newcomer given a leaver's DN has another), people bound by their DN before
-- moved to it while the DN still matches, a name handed to the entry that has it now
-- (hand_over: the old subject's keys, sessions and memberships gone), and a sign-in whose
-- groups give no role disabling the person it vouched for. Against a store.
local H = require "tests.helpers"
local B = require "tests.backends"
local identity = require "orket.serve.identity"
local keys = require "orket.store.keys"
local projects = require "orket.store.projects"
local users = require "orket.store.users"

local UUID, OTHER = "0a1b2c3d-0000-1111-2222-333344445555", "99999999-8888-7777-6666-555544443333"
local DN = "uid=alice,ou=people,dc=x"

-- the directory's answer for alice: {name, role, dn, uuid, groups, groups_known}
local function alice(o)
  local a = { name = "alice", role = "operator", dn = DN, uuid = UUID, groups = { "devs" }, groups_known = true }
  for k, v in pairs(o or {}) do a[k] = v end
  return a
end

-- federated as the server calls it for a directory's answer
local function vouch(db, who, route)
  local subject, legacy = identity.ldap_subject(who)
  who.legacy = legacy
  return identity.federated(db, who, "ldap", subject, nil, route)
end

describe("a directory's person", function()
  local db
  before_each(function() db = B.open_store() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("is bound to their entry's entryUUID, else its DN", function()
    assert.same({ "entryUUID:" .. UUID, DN }, { identity.ldap_subject(alice()) })
    assert.same({ DN }, { identity.ldap_subject(alice { uuid = false }) })
    assert(vouch(db, alice()))
    assert.equal(identity.mark("ldap", "entryUUID:" .. UUID), users.get(db, "alice").hash)
    -- moved to another OU: the same entryUUID, the same person
    assert(vouch(db, alice { dn = "uid=alice,ou=eng,ou=people,dc=x" }))
    -- a newcomer given her DN (or her name) has another entryUUID: refused, said which refusal
    local no, why, code, kind = vouch(db, alice { uuid = OTHER })
    assert.same({ nil, "the name 'alice' belongs to another ldap subject", "EAUTH", "subject" }, { no, why, code, kind })
    -- bound to an entryUUID, told apart from a DN's binding: an answer with none (the
    -- search's bind no longer reads it) cannot confirm her, and is the directory's failure
    assert.matches("^!ldap:u%x+$", users.get(db, "alice").hash)
    assert.matches("^!ldap:%x+$", identity.mark("ldap", DN))
    no, why, code, kind = vouch(db, alice { uuid = false })
    assert.same({ nil, "EUNAVAILABLE", "unconfirmed" }, { no, code, kind })
    assert.matches("the directory gave no entryUUID for this person's entry, and they are bound to one", why, 1, true)
    assert.is_nil(identity.unroled(db, "alice", alice { uuid = false, role = false, groups = {} }))
    assert.is_nil(users.get(db, "alice").disabled_at)
  end)

  it("bound by their DN before is moved to their entryUUID while the DN still matches, at a sign-in or a blind "
    .. "look", function()
    assert(db:tx(function()
      users.insert(db, "alice", "operator", identity.mark("ldap", DN))
      users.insert(db, "bob", "viewer", identity.mark("ldap", "uid=bob,dc=x"))
      users.insert(db, "carl", "viewer", identity.mark("ldap", "uid=carl,dc=x"))
      return true
    end))
    assert(vouch(db, alice()))
    assert.equal(identity.mark("ldap", "entryUUID:" .. UUID), users.get(db, "alice").hash)
    -- a look that reads no group (its roles kept) migrates too
    assert(vouch(db, { name = "bob", dn = "uid=bob,dc=x", uuid = OTHER, groups = {}, keep_roles = true }, "directory"))
    assert.equal(identity.mark("ldap", "entryUUID:" .. OTHER), users.get(db, "bob").hash)
    -- moved before it was migrated: its DN is not the one it was bound to, so it is another
    -- subject (a server admin hands the name over: hand_over)
    local no, _, _, kind = vouch(db, { name = "carl", role = "viewer", dn = "uid=carl,ou=eng,dc=x",
      uuid = "11111111-2222-3333-4444-555555555555", groups = {} })
    assert.same({ nil, "subject" }, { no, kind })
    assert.equal(identity.mark("ldap", "uid=carl,dc=x"), users.get(db, "carl").hash)
  end)

  it("is handed to the entry that has their name now: the old subject's keys, sessions and memberships go, "
    .. "and that entry's next sign-in binds it", function()
    assert(vouch(db, alice()))
    assert(db:tx(function()
      keys.insert(db, "k1", "alice-ci", "viewer", "h1", "alice")
      keys.insert(db, "k2", "alice-old", "viewer", "h2", "alice")
      keys.revoke(db, "k2")
      users.session_insert(db, "s1", "alice", os.time() + 3600)
      projects.set_role(db, "web", "alice", "developer")
      return true
    end))
    assert(require("orket.serve.accounts").set_disabled(db, "alice", true, "root"))
    local res = assert(identity.hand_over(db, "alice", { actor = "local:root", audit_actor = "local:root", route = "cli" }))
    -- the name starts from the least role: the newcomer's groups give theirs at their sign-in
    assert.same({ "alice", "viewer", { { id = "k1", name = "alice-ci", role = "viewer" } }, 0,
      { { project = "default", role = "developer" }, { project = "web", role = "developer" } } },
      { res.name, res.role, res.keys, res.sessions, res.projects })
    local row = users.get(db, "alice")
    assert.same({ identity.HANDED, nil, "viewer" }, { row.hash, row.disabled_at, row.role })
    assert.is_not_nil(keys.get(db, "k1").revoked_at)
    assert.same({}, projects.of_user(db, "alice"))
    local audit = {}
    for _, r in ipairs(db:rows("SELECT action, detail FROM audit_log WHERE actor = 'local:root' ORDER BY seq")) do
      audit[#audit + 1] = r.action .. " " .. r.detail
    end
    assert.same({ "key_revoke key=alice-ci keyid=k1 person=alice role=viewer",
      "member_revoke person=alice project=default", "member_revoke person=alice project=web",
      "user_enable keys=1 newsubject=yes person=alice role=viewer was=operator" }, audit)
    -- the newcomer (another entryUUID) signs in as alice, with their groups' role
    local id = assert(vouch(db, alice { uuid = OTHER, role = "viewer", groups = { "everyone" } }))
    assert.same({ "alice", "viewer" }, { id.name, id.role })
    assert.equal(identity.mark("ldap", "entryUUID:" .. OTHER), users.get(db, "alice").hash)
    -- and the leaver's entry, come back, is another subject now
    local no, _, _, kind = vouch(db, alice())
    assert.same({ nil, "subject" }, { no, kind })
    -- a leaver who was the last enabled server admin: the newcomer is no admin for it (a
    -- sign-in never lowers the last enabled admin, so a kept role would have stayed theirs)
    assert(db:tx(function()
      users.insert(db, "zed", "admin", identity.mark("ldap", "entryUUID:" .. UUID:gsub("^.", "f")))
      return true
    end))
    assert.equal(0, users.other_admins(db, "zed"))
    assert(identity.hand_over(db, "zed", { actor = "local:root", audit_actor = "local:root", route = "cli" }))
    local z = assert(vouch(db, { name = "zed", role = "viewer", dn = "uid=zed,dc=x", uuid = OTHER:gsub("^.", "e"),
      groups = { "everyone" }, groups_known = true }))
    assert.same({ "zed", "viewer" }, { z.name, z.role })
    -- only a directory's person is handed over
    assert(db:tx(function()
      users.insert(db, "olga", "viewer", identity.mark("oidc", "iss sub"))
      return true
    end))
    local none, msg, code = identity.hand_over(db, "olga", { actor = "x", audit_actor = "x", route = "cli" })
    assert.same({ nil, "EUSAGE" }, { none, code })
    assert.matches("olga signs in through oidc: --new-subject", msg, 1, true)
    none, _, code = identity.hand_over(db, "nobody", { actor = "x", audit_actor = "x", route = "cli" })
    assert.same({ nil, "ENOENT" }, { none, code })
  end)

  it("is disabled by a sign-in whose groups, read with authority, give no role; not by one that read none",
    function()
    assert(vouch(db, alice()))
    assert(vouch(db, { name = "bob", role = "viewer", dn = "uid=bob,dc=x", uuid = OTHER, groups = { "x" },
      groups_known = true }))
    -- bound as herself her sign-in could read no group's members: nothing is told
    assert.matches("^not disabled: ", identity.unroled(db, "alice", alice { role = false, groups = {},
      groups_known = false }))
    assert.is_nil(users.get(db, "alice").disabled_at)
    -- a newcomer given bob's DN (another entryUUID) with no role says nothing of bob
    assert.is_nil(identity.unroled(db, "bob", { name = "bob", dn = "uid=bob,dc=x", uuid = UUID, groups = {},
      groups_known = true }))
    assert.is_nil(users.get(db, "bob").disabled_at)
    -- alice, in no group with a role
    assert.equal("alice was disabled here", identity.unroled(db, "alice", alice { role = false, groups = {} }))
    assert.is_not_nil(users.get(db, "alice").disabled_at)
    local entry = assert(db:row("SELECT actor, route, detail FROM audit_log WHERE action = 'user_disable'"))
    assert.same({ "ldap", "directory", "person=alice role=operator why=no-role" }, { entry.actor, entry.route,
      entry.detail })
    -- disabled already: nothing more
    assert.is_nil(identity.unroled(db, "alice", alice { role = false, groups = {} }))
    -- the last enabled server admin is not kept: a leaver, said so
    assert(vouch(db, { name = "boss", role = "admin", dn = "uid=boss,dc=x", groups = { "admins" }, groups_known = true }))
    local said = identity.unroled(db, "boss", { name = "boss", dn = "uid=boss,dc=x", groups = { "leavers" },
      groups_known = true })
    assert.matches("^boss was disabled here, the last enabled server admin %(a leaver is never kept%); no enabled "
      .. "server admin is left", said)
  end)
end)
