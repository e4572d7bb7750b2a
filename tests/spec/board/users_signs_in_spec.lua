-- orket.store.users.list on the backend under test (SQLite, or PostgreSQL under
-- tests/with_pg.lua): how each person signs in, read from the hash column's mark
-- (orket.serve.identity), never the hash itself: what `orket users list` and GET /v1/users say.
local H = require "tests.helpers"
local B = require "tests.backends"

describe("users.list on " .. B.name(), function()
  after_each(H.cleanup)

  it("says whether each person signs in with a password, through oidc or through ldap", function()
    local db = B.open_store()
    local users = require "orket.store.users"
    local identity = require "orket.serve.identity"
    users.insert(db, "alice", "operator", "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA")
    users.insert(db, "bob", "viewer", identity.mark("oidc", "sub-1"))
    users.insert(db, "carol", "viewer", identity.mark("ldap", "uid=carol,dc=example"))
    local got = {}
    for _, u in ipairs(users.list(db)) do
      got[#got + 1] = u.name .. ":" .. u.signs_in
      assert.is_nil(u.hash)
    end
    assert.same({ "alice:password", "bob:oidc", "carol:ldap" }, got)
    assert.same({ "bob:oidc" }, (function()
      local page = {}
      for _, u in ipairs(users.list(db, "alice", 1)) do page[#page + 1] = u.name .. ":" .. u.signs_in end
      return page
    end)())
    db:close()
  end)
end)
