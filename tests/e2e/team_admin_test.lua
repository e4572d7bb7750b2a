-- A team's administration as its people do it, through the API and the commands
-- (docs/teams.md): revoking a key by the name its person gave it, what the key refusals
-- say in the key roles' own words, and the people API's refusals naming their field.
local H = require "tests.helpers"

local people = require "tests.people"

local PASS = people.PASS
local ok, req = H.ok, H.request
local add, sign_in = people.add, people.sign_in

describe("a team's administration", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("revokes a person's key by the name they gave it, theirs only, as orket keys revoke does", function()
    local dir = H.example("webapp")
    add(dir, "root", "admin")
    add(dir, "alice", "operator")
    add(dir, "bob", "operator")
    local s = H.serve(dir)
    local root, alice, bob = sign_in(s, "root"), sign_in(s, "alice"), sign_in(s, "bob")
    -- alice and bob each name a key "ci"
    local st, a1 = req(s, "POST", "/v1/me/keys", alice, { name = "ci", role = "viewer" })
    assert.equal(201, st)
    local b1
    st, b1 = req(s, "POST", "/v1/me/keys", bob, { name = "ci", role = "viewer" })
    assert.equal(201, st)
    -- alice revokes hers by its name: bob's of that name is not touched
    local doc
    st, doc = req(s, "DELETE", "/v1/me/keys/ci", alice)
    assert.same({ 200, a1.id, "ci", true }, { st, doc.id, doc.name, doc.revoked })
    assert.equal(401, (req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. a1.key })))
    assert.equal(200, (req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. b1.key })))
    -- revoked: no key of hers not revoked has the name, and the 404 says where they are listed
    st, doc = req(s, "DELETE", "/v1/me/keys/ci", alice)
    assert.equal(404, st)
    assert.equal("alice has no key with the id 'ci', nor one not revoked named so", doc.error.message)
    assert.matches("GET /v1/me/keys lists", doc.error.remedy, 1, true)
    -- another person's key's id is not hers, by id as by name
    st, doc = req(s, "DELETE", "/v1/me/keys/" .. b1.id, alice)
    assert.equal(404, st)
    -- a server admin revokes a person's key by its name too, under /v1/users/NAME/keys
    st, doc = req(s, "DELETE", "/v1/users/bob/keys/ci", root)
    assert.same({ 200, b1.id }, { st, doc.id })
    assert.equal(401, (req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. b1.key })))
    st, doc = req(s, "DELETE", "/v1/users/bob/keys/ci", root)
    assert.equal(404, st)
    assert.matches("GET /v1/users/bob/keys lists", doc.error.remedy, 1, true)
    -- a name in capitals is no person's, and said so as everywhere else
    st, doc = req(s, "DELETE", "/v1/users/Bob/keys/" .. b1.id, root)
    assert.same({ 404, "no person named 'Bob' (a person's name is lower case: 'bob')" }, { st, doc.error.message })
    -- each revocation audited under who did it, naming the key
    st, doc = req(s, "GET", "/v1/audit?limit=200", root)
    local revoked = {}
    for _, e in ipairs(doc.entries) do
      if e.action == "key_revoke" then revoked[#revoked + 1] = e.actor .. " " .. e.subject.keyid end
    end
    assert.same({ "user:alice " .. a1.id, "user:root " .. b1.id }, revoked)
    assert.equal(0, s.stop())
  end)

  it("says a key's limit in a key's roles: a developer's key is an operator key", function()
    local dir = H.example("webapp")
    add(dir, "alice", "operator")
    add(dir, "bob", "viewer")
    local s = H.serve(dir)
    local alice, bob = sign_in(s, "alice"), sign_in(s, "bob")
    -- alice develops in the default project: an operator key, named so, never an admin's
    local st, doc = req(s, "POST", "/v1/me/keys", alice, { name = "k", role = "admin" })
    assert.same({ 403, "your strongest role is developer: a key of yours may be operator (a developer's) or lower, "
      .. "not admin" }, { st, doc.error.message })
    assert.equal(201, (req(s, "POST", "/v1/me/keys", alice, { name = "k", role = "operator" })))
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "k", role = "operator" })
    assert.same({ 403, "your strongest role is viewer: a key of yours may be viewer or lower, not operator" },
      { st, doc.error.message })
    assert.equal(0, s.stop())
    -- the command names the project role the grant gives (developer), not the key's
    local r = H.orket("keys create bob-ci --role operator --for bob", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("grant bob the developer role in a project first (orket projects grant PROJECT bob developer)",
      r.stderr, 1, true)
    -- a person of no project: the grant is the one way, no weaker role would do
    ok(H.orket("projects revoke default bob", { cwd = dir }), "revoke")
    r = H.orket("keys create bob-ro --role viewer --for bob", { cwd = dir })
    assert.same({ 1, "orket: bob is a member of no project: a key of theirs would reach nothing; grant bob the viewer "
      .. "role in a project first (orket projects grant PROJECT bob viewer) (docs/teams.md#keys)\n" },
      { r.status, r.stderr })
  end)

  it("says what a grant gives: a server admin acts as admin whatever it; a project name that is none is answered "
    .. "with the projects there are, on the command line and the API", function()
    local dir, other = H.example("webapp"), H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    add(dir, "root", "admin")
    add(dir, "alice", "operator")
    -- a grant to a server admin is kept, and said to be theirs only once they are no admin
    local r = ok(H.orket("projects grant notes root viewer", { cwd = dir }), "grant root")
    assert.equal("notes: root is viewer now\nroot is a server admin, and acts as admin in notes while one; the viewer "
      .. "role is theirs there once they are not ('orket users role root operator')\n", r.stdout)
    r = ok(H.orket("projects grant notes alice viewer", { cwd = dir }), "grant alice")
    assert.equal("notes: alice is viewer now\n", r.stdout)
    r = H.orket("projects grant note alice viewer", { cwd = dir })
    assert.same({ 1, "orket: projects: no project named 'note' (the projects hosted: default, notes)\n" },
      { r.status, r.stderr })
    -- taking out of it says the same, as the API does, not that alice is no member of it
    r = H.orket("projects revoke note alice", { cwd = dir })
    assert.same({ 1, "orket: projects: no project named 'note' (the projects hosted: default, notes)\n" },
      { r.status, r.stderr })
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    local st, doc = req(s, "PUT", "/v1/users/alice/projects/note", root, { role = "viewer" })
    assert.same({ 404, "no project named 'note' (the projects hosted: default, notes)" }, { st, doc.error.message })
    -- adding a person names the field, and adds no one
    st, doc = req(s, "POST", "/v1/users", root, { name = "dora", role = "viewer", password = PASS, project = "note" })
    assert.same({ 404, "body.project: no project named 'note' (the projects hosted: default, notes)" },
      { st, doc.error.message })
    st, doc = req(s, "DELETE", "/v1/users/alice/projects/note", root)
    assert.same({ 404, "no project named 'note' (the projects hosted: default, notes)" }, { st, doc.error.message })
    st, doc = req(s, "GET", "/v1/users", root)
    for _, u in ipairs(doc.users) do assert.is_not.equal("dora", u.name) end
    assert.equal(0, s.stop())
  end)
end)
