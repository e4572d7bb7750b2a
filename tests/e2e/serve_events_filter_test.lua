-- The event streams' filters checked as the rest of the API checks what a request names:
-- /v1/events?card= and ?run=, and /v1/runs/{id}/events?card=, refuse an empty value (400
-- bad_query) and answer a card or run the project does not have with 404 naming it, as
-- /v1/board?root= and /v1/runs/{id}/events do; a stream filtered on a typo (a lowercase id:
-- ids are case-sensitive) stayed open and delivered nothing, forever.
local H = require "tests.helpers"

local call = H.api

-- opens(s, path, key) -> the stream's status once it answers (then closed)
local function opens(s, path, k)
  local st = H.stream { url = s.url .. path, headers = { "Authorization: Bearer " .. k }, total_timeout_ms = 5000 }
  local status = st.status
  st.close()
  return status
end

describe("the event streams' filters", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuse an empty card or run, and answer one the project lacks with 404 naming it", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    assert.equal(0, H.orket("projects add " .. other .. " --name notes", { cwd = dir }).status)
    local adm = H.api_key(dir, "adm", "admin")
    local db = assert(require("orket.project").open_store(dir, false))
    local run = assert(db:record_run { target = "API", kind = "epic" })
    assert(db:finish_run(run, "done"))
    db:close()
    local s = H.serve(dir)
    -- what is there streams
    for _, path in ipairs { "/v1/events?card=API-1", "/v1/events?run=" .. run, "/v1/events?card=API-1&run=" .. run,
      "/v1/runs/" .. run .. "/events?card=API-1", "/v1/projects/notes/events?card=NOTES-1" } do
      assert.equal(200, opens(s, path, adm), path)
    end
    -- empty: 400 naming the parameter
    for path, name in pairs { ["/v1/events?card="] = "?card=", ["/v1/events?run="] = "?run=",
      ["/v1/runs/" .. run .. "/events?card="] = "?card=" } do
      local st, doc = call(s, "GET", path, adm)
      assert.same({ 400, "bad_query" }, { st, doc and doc.error.code }, path)
      assert.matches(name, doc.error.message, 1, true)
    end
    -- not there (a lowercase id, another project's card or run): 404 naming it
    for path, what in pairs { ["/v1/events?card=api-1"] = 'no card "api-1"', ["/v1/events?card=NOPE-1"] = 'no card "NOPE-1"',
      ["/v1/events?run=99999"] = "no run 99999", ["/v1/runs/" .. run .. "/events?card=NOPE-1"] = 'no card "NOPE-1"',
      ["/v1/projects/notes/events?card=API-1"] = 'no card "API-1"',
      ["/v1/projects/notes/events?run=" .. run] = "no run " .. run } do
      local st, doc = call(s, "GET", path, adm)
      assert.same({ 404, "not_found" }, { st, doc and doc.error.code }, path)
      assert.matches(what, doc.error.message, 1, true)
    end
    -- the violations' filter on a card alike (it answered empty lists, as for a card with none)
    local st, doc = call(s, "GET", "/v1/violations?card=", adm)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    assert.matches("?card=", doc.error.message, 1, true)
    st, doc = call(s, "GET", "/v1/violations?card=NOPE-1", adm)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    assert.matches('no card "NOPE-1"', doc.error.message, 1, true)
    assert.equal(200, (call(s, "GET", "/v1/violations?card=API-1", adm)))
    assert.equal(0, s.stop())
  end)
end)
