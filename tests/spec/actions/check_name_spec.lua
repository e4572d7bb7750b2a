-- A check's default name (orket.actions.sandbox_checks), which begins each of its result lines
-- ("pass GET /items: ..."): one naming a service says it, as two checks of one path on two
-- services (the db's and the entry's GET /) read alike, the failing one not told apart.
local checks = require "orket.actions.sandbox_checks"
local accept = require "orket.sandboxes.accept"

describe("an acceptance check's default name", function()
  it("names the service the check runs against, when it names one", function()
    assert.equal("db: GET /", assert(checks.normalize { http = { service = "db", path = "/" } }).name)
    assert.equal("api: POST /items", assert(checks.normalize { http = { service = "api", method = "post", path = "/items" } }).name)
    assert.equal("web: browser / #app", assert(checks.normalize { browser = { service = "web", selector = "#app" } }).name)
    -- the entry's, as before; a name given is kept as given
    assert.equal("GET /", assert(checks.normalize { http = { path = "/" } }).name)
    assert.equal("browser / #app", assert(checks.normalize { browser = { selector = "#app" } }).name)
    assert.equal("the db", assert(checks.normalize { http = { name = "the db", service = "db", path = "/" } }).name)
    -- a bad service is still named as the field at fault, before any name is made of it
    local c, field = checks.normalize { http = { service = "../x", path = "/" } }
    assert.is_nil(c)
    assert.equal("http.service", field)
  end)

  it("begins the check's line in a run's report", function()
    local list = assert(checks.normalize_list {
      { http = { service = "db", path = "/" } }, { http = { path = "/" } } })
    local res = { ok = false, results = {
      { kind = "http", name = list[1].name, ok = false, detail = "GET /: Empty reply from server" },
      { kind = "http", name = list[2].name, ok = true, detail = "GET /: HTTP 200" } }, log = "[db] x" }
    assert.equal("FAIL db: GET /: GET /: Empty reply from server\npass GET /: GET /: HTTP 200\n"
      .. "the sandbox's last log lines:\n[db] x", accept.report(res))
  end)
end)
