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
end)
