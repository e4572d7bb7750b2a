-- GET /v1/runs a page at a time, as the API's other lists: ?after=ID gives the runs older
-- than ID, newest first, and a full page carries next, the ?after= of the one after it; so
-- every run is reached, not the newest 200 alone. ?state= pages the same way.
local H = require "tests.helpers"

local call = H.api

-- runs(dir, statuses) -> the ids of runs recorded in the project's store, one per status
-- given ("running" left so), oldest first
local function runs(dir, statuses)
  local db = assert(require("orket.project").open_store(dir, false))
  local ids = {}
  for i, status in ipairs(statuses) do
    ids[i] = assert(db:record_run { target = "API", kind = "epic" })
    if status ~= "running" then assert(db:finish_run(ids[i], status)) end
  end
  db:close()
  return ids
end

-- ids(list) -> the runs' ids
local function ids_of(doc)
  local out = {}
  for i, r in ipairs(doc.runs) do out[i] = math.tointeger(r.id) end
  return out
end

describe("GET /v1/runs pages", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("reaches every run through next and ?after=, newest first, with or without ?state=", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "look", "viewer")
    local made = runs(dir, { "done", "failed", "done", "done", "failed", "done", "done" })
    local s = H.serve(dir)
    -- 7 runs, 3 a page: 7 6 5 | 4 3 2 | 1, each full page with its next
    local seen, after, pages = {}, nil, 0
    repeat
      local st, doc = call(s, "GET", "/v1/runs?limit=3" .. (after and "&after=" .. after or ""), viewer)
      assert.equal(200, st)
      pages = pages + 1
      for _, id in ipairs(ids_of(doc)) do seen[#seen + 1] = id end
      after = doc.next and math.tointeger(doc.next)
      if after then assert.equal(seen[#seen], after) end
    until not after or pages > 5
    assert.same({ made[7], made[6], made[5], made[4], made[3], made[2], made[1] }, seen)
    assert.equal(3, pages)
    -- a page of fewer than ?limit= is the last: no next
    local st, doc = call(s, "GET", "/v1/runs?limit=3&after=" .. made[2], viewer)
    assert.same({ 200, { made[1] } }, { st, ids_of(doc) })
    assert.is_nil(doc.next)
    -- ?state= pages the same way, over the runs of that state alone
    st, doc = call(s, "GET", "/v1/runs?state=done&limit=2", viewer)
    assert.same({ 200, { made[7], made[6] }, made[6] }, { st, ids_of(doc), math.tointeger(doc.next) })
    st, doc = call(s, "GET", "/v1/runs?state=done&limit=2&after=" .. made[6], viewer)
    assert.same({ 200, { made[4], made[3] }, made[3] }, { st, ids_of(doc), math.tointeger(doc.next) })
    st, doc = call(s, "GET", "/v1/runs?state=done&limit=2&after=" .. made[3], viewer)
    assert.same({ 200, { made[1] } }, { st, ids_of(doc) })
    assert.is_nil(doc.next)
    st, doc = call(s, "GET", "/v1/runs?state=failed&after=" .. made[5], viewer)
    assert.same({ 200, { made[2] } }, { st, ids_of(doc) })
    -- after the oldest: none; digits past an integer: after every run, so all of them
    st, doc = call(s, "GET", "/v1/runs?after=" .. made[1], viewer)
    assert.same({ 200, 0 }, { st, #doc.runs })
    st, doc = call(s, "GET", "/v1/runs?after=99999999999999999999999", viewer)
    assert.same({ 200, 7 }, { st, #doc.runs })
    -- a cursor that is no run id is refused, naming the parameter
    for _, bad in ipairs { "", "abc", "-1", "1.5" } do
      local bst, bdoc = call(s, "GET", "/v1/runs?after=" .. bad, viewer)
      assert.same({ 400, "bad_query" }, { bst, bdoc.error.code }, bad)
      assert.matches("?after=", bdoc.error.message, 1, true)
    end
    -- the document declares it
    local _, api = call(s, "GET", "/v1/openapi.json", viewer)
    local names = {}
    for _, p in ipairs(api.paths["/v1/runs"].get.parameters) do names[p.name] = p.schema.type end
    assert.same({ state = "string", after = "integer", limit = "integer" }, names)
    assert.is_table(api.paths["/v1/runs"].get.responses["200"].content["application/json"].schema.properties.next)
    assert.equal(0, s.stop())
  end)

  it("ends a ?state= page that read its cap of runs short, with the next to go on from", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "look", "viewer")
    -- the one done run below 10,001 failed ones: past the 10,000 a page reads
    local db = assert(require("orket.project").open_store(dir, false))
    local first
    assert(db:tx(function()
      for i = 1, 10002 do
        local id = assert(db:record_run { target = "API", kind = "epic" })
        first = first or id
        assert(db:finish_run(id, i == 1 and "done" or "failed"))
      end
      return true
    end))
    db:close()
    local s = H.serve(dir)
    local st, doc = call(s, "GET", "/v1/runs?state=done&limit=5", viewer)
    assert.same({ 200, 0, first + 2 }, { st, #doc.runs, math.tointeger(doc.next) })
    st, doc = call(s, "GET", "/v1/runs?state=done&limit=5&after=" .. (first + 2), viewer)
    assert.same({ 200, { first } }, { st, ids_of(doc) })
    assert.is_nil(doc.next)
    assert.equal(0, s.stop())
  end)
end)
