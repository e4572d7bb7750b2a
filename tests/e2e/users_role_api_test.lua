-- The people API's answers (docs/teams.md): PUT /v1/users/NAME/role says what the default
-- project's role became, and re-adding a disabled person's name gives enable as the remedy.
local H = require "tests.helpers"
local cjson = require "cjson"
local people = require "tests.people"

local PASS = people.PASS
local ok, req = H.ok, H.request
local add, sign_in = people.add, people.sign_in

describe("the people API's answers", function()
  after_each(function() H.kill_servers(); H.cleanup() end)
  it("says the default project's role, and enable for a disabled name", function()
    local dir = H.example("webapp")
    add(dir, "boss", "admin"); add(dir, "alice", "operator"); add(dir, "bob", "operator")
    ok(H.orket("projects revoke default bob", { cwd = dir }), "revoke")
    local s = H.serve(dir)
    local boss = sign_in(s, "boss")
    local st, doc = req(s, "PUT", "/v1/users/alice/role", boss, { role = "viewer" })
    assert.same({ 200, true, false, "viewer", "operator", { role = "viewer", was = "developer" } },
      { st, doc.changed, doc.unchanged, doc.role, doc.was, doc.default_project })
    st, doc = req(s, "PUT", "/v1/users/alice/role", boss, { role = "viewer" })
    assert.same({ 200, false, true, cjson.null }, { st, doc.changed, doc.unchanged, doc.default_project })
    st, doc = req(s, "PUT", "/v1/users/bob/role", boss, { role = "viewer" })
    assert.same({ 200, true, cjson.null }, { st, doc.changed, doc.default_project })
    st, doc = req(s, "POST", "/v1/users/alice/disable", boss)
    assert.equal(200, st)
    st, doc = req(s, "POST", "/v1/users", boss, { name = "alice", role = "operator", password = PASS })
    assert.same({ 409, "conflict" }, { st, doc.error.code })
    assert.matches("exists already, disabled: to let them sign in again, 'orket users enable alice'", doc.error.message,
      1, true)
    assert.matches("POST /v1/users/alice/enable lets them sign in again", doc.error.remedy, 1, true)
    st, doc = req(s, "POST", "/v1/users", boss, { name = "bob", role = "operator", password = PASS })
    assert.same({ 409, "choose another name" }, { st, doc.error.remedy })
    -- the document's schema holds the field
    st, doc = req(s, "GET", "/v1/openapi.json", boss)
    local schema = doc.paths["/v1/users/{name}/role"].put.responses["200"].content["application/json"].schema
    assert.is_table(schema.properties.default_project)
    assert.equal(0, s.stop())
  end)
end)
