-- An account's role change reaches what the person may do (docs/serve.md, Local accounts):
-- `orket users role NAME viewer` and PUT /v1/users/NAME/role set the person's role in the
-- default project as `orket users add` does at creation (operator: developer), in the same
-- transaction, so a demoted person's live session and key are refused a write at once;
-- their roles in other projects stay as granted, and one who is no member of the default
-- project is not made one. A person of a directory is refused (their role follows their
-- groups). Re-adding a disabled person's name points at `orket users enable`.
local H = require "tests.helpers"

local people = require "tests.people"

local PASS, JSON = people.PASS, people.JSON
local ok, req = H.ok, H.request
local add, sign_in = people.add, people.sign_in

-- the person's role in project, as the store holds it
local function member_role(dir, project, name)
  local db = assert(require("orket.project").open_store(dir, false))
  local role = require("orket.store.projects").role_of(db, project, name)
  db:close()
  return role
end

local function comment(s, who, body)
  return (req(s, "POST", "/v1/cards/API-2/comments", who, { body = body }))
end

describe("an account's role change", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("sets the default project's role too, at once for live sessions and keys, other projects as granted", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    add(dir, "boss", "admin")
    add(dir, "dave", "operator")
    add(dir, "alice", "operator")
    ok(H.orket("projects grant notes dave developer", { cwd = dir }), "grant notes")
    local s = H.serve(dir)
    local boss, dave, alice = sign_in(s, "boss"), sign_in(s, "dave"), sign_in(s, "alice")
    local st, key = req(s, "POST", "/v1/me/keys", dave, { name = "ci", role = "operator" })
    assert.equal(201, st)
    local dkey = { "Authorization: Bearer " .. key.key, JSON }
    assert.equal(200, comment(s, dave, "before"))
    assert.equal(200, comment(s, dkey, "before, by key"))

    -- on the server's machine: the answer says what changed in the default project
    local r = ok(H.orket("users role dave viewer", { cwd = dir }), "users role")
    assert.matches("dave is viewer now (was operator); in the default project: viewer now (was developer); "
      .. "their roles in other projects stay as granted", r.stdout, 1, true)
    assert.equal("viewer", member_role(dir, "default", "dave"))
    assert.equal("developer", member_role(dir, "notes", "dave"))
    -- the live session and the key are refused a write at once; reading goes on
    assert.equal(403, comment(s, dave, "after"))
    assert.equal(403, comment(s, dkey, "after, by key"))
    assert.equal(200, (req(s, "GET", "/v1/board", dave)))
    -- in the project whose role was granted, the grant stands
    assert.equal(200, (req(s, "POST", "/v1/projects/notes/cards/" .. "NOTES-1" .. "/comments", dkey, { body = "x" })))

    -- the same again changes nothing
    r = ok(H.orket("users role dave viewer", { cwd = dir }), "users role again")
    assert.matches("dave is viewer already: nothing changed, their roles in projects included", r.stdout, 1, true)
    -- a grant made in the default project since stands when the account's role is restated:
    -- a script's idempotent call must not raise (or cut) what an admin set there
    ok(H.orket("projects grant default dave developer", { cwd = dir }), "grant default")
    ok(H.orket("users role dave viewer", { cwd = dir }), "users role restated")
    assert.equal("developer", member_role(dir, "default", "dave"))
    ok(H.orket("projects grant default dave viewer", { cwd = dir }), "grant default back")

    -- through the API: alice demoted, her live session refused a write at once
    assert.equal(200, comment(s, alice, "before"))
    local doc
    st, doc = req(s, "PUT", "/v1/users/alice/role", boss, { role = "viewer" })
    assert.same({ 200, true, "viewer", "operator" }, { st, doc.changed, doc.role, doc.was })
    assert.equal("viewer", member_role(dir, "default", "alice"))
    assert.equal(403, comment(s, alice, "after"))
    -- promoted to operator again: a developer of the default project, as users add makes one
    st, doc = req(s, "PUT", "/v1/users/alice/role", boss, { role = "operator" })
    assert.same({ 200, true }, { st, doc.changed })
    assert.equal("developer", member_role(dir, "default", "alice"))
    assert.equal(200, comment(s, alice, "again"))

    -- admin as users add --role admin makes one (admin of the default project), and back
    ok(H.orket("users role dave admin", { cwd = dir }), "users role admin")
    assert.equal("admin", member_role(dir, "default", "dave"))
    r = ok(H.orket("users role dave operator", { cwd = dir }), "users role operator")
    assert.matches("dave is operator now (was admin); in the default project: developer now (was admin)", r.stdout,
      1, true)
    assert.equal("developer", member_role(dir, "default", "dave"))

    -- a demotion left half done by an older orket (account viewer, developer in the
    -- default project): restating the role changes nothing (as for a grant made since);
    -- the project's grant finishes it
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:tx(function()
      require("orket.store.users").set_role(db, "alice", "viewer")
      return true
    end))
    db:close()
    st, doc = req(s, "PUT", "/v1/users/alice/role", boss, { role = "viewer" })
    assert.same({ 200, false, true }, { st, doc.changed, doc.unchanged })
    assert.equal("developer", member_role(dir, "default", "alice"))
    ok(H.orket("projects grant default alice viewer", { cwd = dir }), "grant default alice")
    assert.equal("viewer", member_role(dir, "default", "alice"))

    -- each change journaled as a grant in the default project, and the chain still verifies
    assert.equal(0, s.stop())
    db = assert(require("orket.project").open_store(dir, false))
    local n = assert(db:row("SELECT count(*) AS n FROM events WHERE kind = 'member_grant' AND data LIKE '%\"default\"%'"))
      .n
    db:close()
    -- five role changes, three grants
    assert.equal(8, n)
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("leaves one who is no member of the default project out of it, and refuses a directory's person", function()
    local dir = H.example("webapp")
    add(dir, "bob", "operator")
    ok(H.orket("projects revoke default bob", { cwd = dir }), "revoke")
    local r = ok(H.orket("users role bob viewer", { cwd = dir }), "users role")
    assert.matches("bob is viewer now (was operator); no member of the default project, left so", r.stdout, 1, true)
    assert.is_nil(member_role(dir, "default", "bob"))
    r = ok(H.orket("users role bob admin", { cwd = dir }), "users role admin")
    assert.is_nil(member_role(dir, "default", "bob"))
    -- a person of a directory: their role follows their groups, refused as before
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:tx(function()
      require("orket.store.users").insert(db, "dora", "operator", "!ldap:test")
      require("orket.store.projects").set_role(db, "default", "dora", "developer")
      return true
    end))
    db:close()
    r = H.orket("users role dora viewer", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("dora signs in through the directory (LDAP): their role is the provider's", r.stderr, 1, true)
    assert.equal("developer", member_role(dir, "default", "dora"))
  end)

  it("points a disabled person's name at orket users enable", function()
    local dir = H.example("webapp")
    add(dir, "dave", "operator")
    ok(H.orket("users disable dave", { cwd = dir }), "disable")
    local r = H.orket("users add dave --role operator --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(1, r.status)
    assert.matches("a person named 'dave' exists already, disabled: to let them sign in again, "
      .. "'orket users enable dave'", r.stderr, 1, true)
    -- an enabled person's name says only that it is taken
    add(dir, "erin", "viewer")
    r = H.orket("users add erin --role operator --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(1, r.status)
    assert.matches("a person named 'erin' exists already", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("enable", 1, true))
  end)
end)
