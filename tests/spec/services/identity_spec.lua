-- orket.serve.identity: a person of a provider or a directory is their subject. A disabled
-- person's subject stays refused whatever name it brings next (a provider whose
-- preferred_username the person may change, a directory entry with several uid values),
-- and a person whose name changed at the provider signs in as the one they were added as,
-- never as a second person. A name another subject holds is still refused.
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

  for _, source in ipairs { "oidc", "ldap" } do
    it("keeps a disabled " .. source .. " person out under a new name", function()
      local id = assert(identity.federated(db, { name = "zed", role = "operator" }, source, "subject-1"))
      assert.equal("zed", id.name)
      assert(db:tx(function() return users.set_disabled(db, "zed", true) end))
      local no, why, code = identity.federated(db, { name = "zed2", role = "operator" }, source, "subject-1")
      assert.same({ nil, "this person was disabled", "EAUTH" }, { no, why, code })
      assert.same({ "zed (disabled)" }, names(db))
      -- enabled again, the new name signs them in as who they are here
      assert(db:tx(function() return users.set_disabled(db, "zed", false) end))
      id = assert(identity.federated(db, { name = "zed2", role = "operator" }, source, "subject-1"))
      assert.same({ "zed", "user:zed" }, { id.name, id.id })
      assert.same({ "zed" }, names(db))
    end)
  end

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
