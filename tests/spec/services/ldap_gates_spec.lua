-- orket.auth.ldap's gates: the server's looks at people signed in do not wait behind
-- sign-ins, which anyone can queue. The directory here is a stand-in: its sign-ins hang
-- until the test lets them go, its lookups answer at once.
local semaphore = require "orket.semaphore"
local task = require "orket.task"

local go = semaphore.new(0)
local fake = { verifying = 0 }
function fake.verify()
  fake.verifying = fake.verifying + 1
  go:acquire()
  return nil, "refused", "EAUTH"
end
function fake.lookup(_, name) return { dn = "uid=" .. name .. ",dc=x", groups = { "devs" } } end
package.loaded["orket.c.ldap"] = fake
package.loaded["orket.auth.ldap"] = nil
local ldap = require "orket.auth.ldap"

local CFG = { url = "ldap://x", base_dn = "dc=x", timeout_ms = 200 }

describe("the directory's checks in flight", function()
  it("lets a look at a person signed in through while sign-ins hang and more queue behind them", function()
    local waiting = {}
    for i = 1, 4 do waiting[i] = task.spawn(ldap.verify, CFG, {}, "someone" .. i, "pw") end
    assert.equal(ldap.IN_FLIGHT, fake.verifying)
    local ok, person, err = task.spawn(ldap.lookup, CFG, { devs = "operator" }, "erin"):join()
    assert.same({ true, "operator" }, { ok, person and person.role }, err)
    for _ = 1, 4 do go:release() end
    for _, t in ipairs(waiting) do t:join() end
  end)
end)
