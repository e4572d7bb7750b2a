-- orket.serve.directory: when a signed-in person of the directory is looked at again, and
-- what a request gets while a look is under way, after one was cancelled, and while the
-- directory is down (within the grace, then after it). The directory here is a stand-in
-- whose lookup waits until the test lets it answer "cannot be reached"; the e2e test
-- (tests/e2e/signin_test.lua) runs the same against slapd. Against a store: the audit of a
-- look's changes, what a person it disables is told (a name now another entry's: not to
-- enable them plainly), and when no group listed is the directory's word.
local semaphore = require "orket.semaphore"
local task = require "orket.task"
local uv = require "luv"

local fake = { calls = 0, wait = true }
local answers = semaphore.new(0)
function fake.lookup()
  fake.calls = fake.calls + 1
  if fake.wait then answers:acquire() end
  return nil, "cannot reach the directory", "EUNAVAILABLE"
end
package.loaded["orket.auth.ldap"] = fake
local directory = require "orket.serve.directory"

-- a directory whose last look at erin was long ago
local function stale(grace_s)
  local d = directory.new { ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 1, grace_s = grace_s } }
  d:seen("erin")
  d.people.erin.at = uv.now() - 10000
  return d
end

local ERIN = { user = "erin" }

describe("the directory's people looked at again", function()
  before_each(function() fake.calls, fake.wait = 0, true end)

  it("answers a person's other requests from the last look while one is under way, and is not left busy by a "
    .. "cancelled one", function()
    local d = stale(3600)
    local first = task.spawn(d.check, d, nil, ERIN)
    assert.equal(1, fake.calls)
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    assert.equal(1, fake.calls)
    first:cancel()
    assert.is_false(d.people.erin.busy)
    -- the next request looks again; the directory down, the last answer stands within the grace
    local again = task.spawn(d.check, d, nil, ERIN)
    assert.equal(2, fake.calls)
    answers:release()
    assert.same({ true, true }, { again:join() })
  end)

  it("answers from the last look while one is under way even when grace_s is below recheck_s, and refuses "
    .. "while one is under way after one that ended the grace", function()
    local d = stale(0)
    local first = task.spawn(d.check, d, nil, ERIN)
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    answers:release()
    local ok, fine, status = first:join()
    assert.same({ true, nil, 502 }, { ok, fine, status })
    -- the last look ended the grace: a request during the next one is refused too
    local again = task.spawn(d.check, d, nil, ERIN)
    ok, fine, status = task.spawn(d.check, d, nil, ERIN):join()
    assert.same({ true, nil, 502 }, { ok, fine, status })
    answers:release()
    again:join()
  end)

  it("does not wait for the directory again at each request after a look found it unreachable", function()
    fake.wait = false
    local d = directory.new { ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 60, grace_s = 3600 } }
    d:seen("erin")
    d.people.erin.at = uv.now() - 61000
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    assert.equal(1, fake.calls)
    -- a while later it is asked again
    d.people.erin.failed = uv.now() - directory.RETRY_S * 1000
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    assert.equal(2, fake.calls)
  end)

  it("refuses the person once the directory has been down past the grace", function()
    fake.wait = false
    local d = stale(5)
    local ok, fine, status, code = task.spawn(d.check, d, nil, ERIN):join()
    assert.same({ true, nil, 502, "provider_unavailable" }, { ok, fine, status, code })
    -- a recent look needs none
    d:seen("erin")
    assert.same({ true, true }, { task.spawn(d.check, d, nil, ERIN):join() })
    assert.equal(1, fake.calls)
  end)

  it("says in the log, once, that a look whose groups would demote the last server admin kept them one", function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local users = require "orket.store.users"
    local db = B.open_store()
    local boss = { name = "boss", dn = "uid=boss,dc=x" }
    assert(identity.federated(db, { name = "boss", role = "admin" }, "ldap", boss.dn))
    local lines, lookup = {}, fake.lookup
    fake.lookup = function() return { name = "boss", role = "operator", groups = { "devs" }, dn = boss.dn } end
    local d = directory.new({ ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 1 } },
      function(line) lines[#lines + 1] = line end)
    local ok, err = pcall(function()
      for _ = 1, 2 do
        d:seen("boss")
        d.people.boss.at = uv.now() - 10000
        assert.same({ true, true, true }, { task.spawn(d.check, d, db, { user = "boss" }):join() })
      end
      assert.equal("admin", users.get(db, "boss").role)
      assert.equal(1, #lines)
      assert.same({ "directory", "boss" }, { lines[1].event, lines[1].user })
      assert.matches("^boss is the last enabled server admin: kept an admin though their groups give operator",
        lines[1].message)
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)

  it("says in the audit and the log why a look disabled the last server admin, whose groups give no role", function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local users = require "orket.store.users"
    local db = B.open_store()
    local boss = { name = "boss", dn = "uid=boss,dc=x" }
    assert(identity.federated(db, { name = "boss", role = "admin" }, "ldap", boss.dn))
    local lines, lookup = {}, fake.lookup
    fake.lookup = function() return { name = "boss", groups = { "leavers" }, dn = boss.dn } end
    local d = directory.new({ ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 1 } },
      function(line) lines[#lines + 1] = line end)
    local ok, err = pcall(function()
      d:seen("boss")
      d.people.boss.at = uv.now() - 10000
      -- a leaver is never kept, the last admin included: disabled, and said so
      local done, fine, status = task.spawn(d.check, d, db, { user = "boss" }):join()
      assert.same({ true, nil, 401 }, { done, fine, status })
      assert.is_not_nil(users.get(db, "boss").disabled_at)
      local entry = assert(db:row("SELECT actor, route, detail FROM audit_log WHERE action = 'user_disable'"))
      assert.same({ "ldap", "directory", "lastadmin=yes person=boss role=admin why=no-role" },
        { entry.actor, entry.route, entry.detail })
      assert.equal(1, #lines)
      assert.same({ "directory", "boss" }, { lines[1].event, lines[1].user })
      assert.equal("boss, the last enabled server admin, was disabled: none of this person's groups has a role on "
        .. "this server (a leaver is never kept); no enabled server admin is left: until one is made, people and "
        .. "keys are managed on the server's machine (or with a server key of role admin, if one is kept); to make "
        .. "one: where people sign in through a provider or directory, one of theirs by a group that sign_in.roles "
        .. "maps to admin (at their next sign-in, or the directory's next look); or a new local account with 'orket "
        .. "users add NAME --role admin' (POST /v1/users with role admin)", lines[1].message)
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)

  it("audits the changes a look makes to a person's roles with the route directory, as its disable, and a "
    .. "sign-in's with sign_in", function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local db = B.open_store()
    local lara = { name = "lara", dn = "uid=lara,dc=x" }
    local project_roles = { default = { webdevs = "developer", everyone = "viewer" } }
    -- her sign-in: in webdevs and everyone
    assert(identity.federated(db, { name = "lara", role = "operator", groups = { "webdevs", "everyone" } }, "ldap",
      lara.dn, project_roles))
    local lookup = fake.lookup
    -- then taken out of webdevs: the look finds her a viewer
    fake.lookup = function() return { name = "lara", role = "viewer", groups = { "everyone" }, dn = lara.dn } end
    local d = directory.new { ldap = { url = "ldap://x", base_dn = "dc=x", group_base_dn = "dc=x", recheck_s = 1 },
      roles = { webdevs = "operator", everyone = "viewer" }, project_roles = project_roles }
    local ok, err = pcall(function()
      d:seen("lara")
      d.people.lara.at = uv.now() - 10000
      assert.same({ true, true, true }, { task.spawn(d.check, d, db, { user = "lara" }):join() })
      local rows = {}
      for _, r in ipairs(db:rows("SELECT actor, action, route, detail FROM audit_log WHERE kind = 'write' ORDER BY seq")) do
        rows[#rows + 1] = table.concat({ r.actor, r.action, r.route, r.detail }, " ")
      end
      assert.same({ "ldap user_add sign_in person=lara role=operator",
        "ldap member_grant sign_in person=lara project=default role=developer",
        "ldap user_role directory person=lara role=viewer",
        "ldap member_grant directory person=lara project=default role=viewer" }, rows)
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)

  it("takes no group listed for the directory's word when its bind reads some group's members, and keeps the "
    .. "roles of one that reads none", function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local users = require "orket.store.users"
    local db = B.open_store()
    assert(identity.federated(db, { name = "boss", role = "admin" }, "ldap", "uid=boss,dc=x"))
    for _, n in ipairs { "erin", "fay" } do
      assert(identity.federated(db, { name = n, role = "viewer" }, "ldap", "uid=" .. n .. ",dc=x"))
    end
    local lines, lookup = {}, fake.lookup
    local known = { erin = true, fay = false }
    fake.lookup = function(_, _, name)
      return { name = name, groups = {}, groups_known = known[name], dn = "uid=" .. name .. ",dc=x" }
    end
    local d = directory.new({ ldap = { url = "ldap://x", base_dn = "dc=x", group_base_dn = "dc=x", recheck_s = 1 },
      roles = { everyone = "viewer" } }, function(line) lines[#lines + 1] = line end)
    local ok, err = pcall(function()
      for _, n in ipairs { "erin", "fay" } do
        d:seen(n)
        d.people[n].at = uv.now() - 10000
      end
      -- erin: the bind reads others' members, and lists none of hers: out of every group
      local done, fine, status, _, _, why = task.spawn(d.check, d, db, { user = "erin" }):join()
      assert.same({ true, nil, 401, "ldap gone: none of this person's groups has a role on this server" },
        { done, fine, status, why })
      assert.is_not_nil(users.get(db, "erin").disabled_at)
      -- fay: the bind reads no group's members: her roles stay, said once
      assert.same({ true, true, false }, { task.spawn(d.check, d, db, { user = "fay" }):join() })
      assert.same({ "viewer", nil }, { users.get(db, "fay").role, users.get(db, "fay").disabled_at })
      assert.equal(1, #lines)
      assert.matches("lists no group of this person, and its bind can read no group's members", lines[1].message, 1,
        true)
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)

  it("tells whoever meets a name now another entry's that a plain enable would be undone, and what is not",
    function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local db = B.open_store()
    assert(identity.federated(db, { name = "boss", role = "admin" }, "ldap", "uid=boss,dc=x"))
    local uuid = "0a1b2c3d-0000-1111-2222-333344445555"
    assert(identity.federated(db, { name = "dan", role = "viewer" }, "ldap", "entryUUID:" .. uuid))
    local lookup = fake.lookup
    -- a newcomer given dan's DN: another entryUUID
    fake.lookup = function()
      return { name = "dan", role = "viewer", groups = { "everyone" }, dn = "uid=dan,dc=x",
        uuid = "99999999-8888-7777-6666-555544443333" }
    end
    local d = directory.new { ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 1, grace_s = 5 } }
    local ok, err = pcall(function()
      d:seen("dan")
      d.people.dan.at = uv.now() - 10000
      local done, fine, status, _, _, why, remedy = task.spawn(d.check, d, db, { user = "dan" }):join()
      assert.same({ true, nil, 401, "ldap gone: the name 'dan' belongs to another ldap subject" },
        { done, fine, status, why })
      assert.equal(directory.TAKEN_REMEDY, remedy)
      assert.matches("a plain enable would be undone at the next look", remedy, 1, true)
      assert.matches("orket users enable NAME --new-subject", remedy, 1, true)
      -- an answer with no entryUUID cannot confirm dan, bound to one: the last answer stands
      -- within the grace (past it here: refused, 502), nobody is disabled
      assert(require("orket.serve.accounts").set_disabled(db, "dan", false, "root"))
      fake.lookup = function()
        return { name = "dan", role = "viewer", groups = { "everyone" }, dn = "uid=dan,ou=eng,dc=x" }
      end
      d.people.dan.at = uv.now() - 10000
      done, fine, status, _, _, why = task.spawn(d.check, d, db, { user = "dan" }):join()
      assert.same({ true, nil, 502 }, { done, fine, status })
      assert.matches("the directory gave no entryUUID for this person's entry", why, 1, true)
      assert.is_nil(require("orket.store.users").get(db, "dan").disabled_at)
      -- a move (the same entryUUID, another DN) is the same person
      fake.lookup = function()
        return { name = "dan", role = "viewer", groups = { "everyone" }, dn = "uid=dan,ou=eng,dc=x", uuid = uuid }
      end
      d.people.dan = nil
      d:seen("dan")
      d.people.dan.at = uv.now() - 10000
      assert.same({ true, true, true }, { task.spawn(d.check, d, db, { user = "dan" }):join() })
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)

  it("tells a person the look has just disabled who can set it right, not to send a key", function()
    local B = require "tests.backends"
    local H = require "tests.helpers"
    local identity = require "orket.serve.identity"
    local db = B.open_store()
    local dan = { name = "dan", dn = "uid=dan,dc=x" }
    assert(identity.federated(db, { name = "boss", role = "admin" }, "ldap", "uid=boss,dc=x"))
    assert(identity.federated(db, { name = "dan", role = "viewer" }, "ldap", dan.dn))
    local lookup = fake.lookup
    -- dan taken out of his only group that gives a role
    fake.lookup = function() return { name = "dan", groups = { "leavers" }, dn = dan.dn } end
    local d = directory.new { ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 1, grace_s = 5 } }
    local ok, err = pcall(function()
      d:seen("dan")
      d.people.dan.at = uv.now() - 10000
      local done, fine, status, code, msg, why, remedy = task.spawn(d.check, d, db, { user = "dan" }):join()
      assert.same({ true, nil, 401, "unauthorized", "the directory no longer gives this person a role here; they were "
        .. "disabled", "ldap gone: none of this person's groups has a role on this server" },
        { done, fine, status, code, msg, why })
      assert.equal("the directory's answer disabled them: if it is wrong, the directory's admin puts them back (their "
        .. "entry under base_dn, in a group sign_in.roles maps to a role), then a server admin enables them again "
        .. "(orket users enable NAME, or POST /v1/users/NAME/enable); the server's log has what the directory "
        .. "answered (docs/teams.md#offboarding)", remedy)
    end)
    fake.lookup = lookup
    db:close()
    H.cleanup()
    assert(ok, err)
  end)
end)
