-- ?limit= on GET /v1/runs and GET /v1/violations is read as GET /v1/audit reads it (one
-- helper, orket.serve.routes.limit): a whole number from 1 to 200, a larger one (digits past
-- 64 bits too) taken as 200, and a refusal that names both bounds. They said "takes a whole
-- number from 1" and refused ?limit=99999999999999999999999 (docs/serve.md).
local H = require "tests.helpers"
local store = require "orket.store"
local router_mod = require "orket.serve.router"
local runs = require "orket.serve.runs"
local changes = require "orket.serve.changes"

-- the handler of the route named name, as the server adds it
local function handler(name)
  local r = router_mod.new()
  runs.add(r)
  changes.add(r)
  for _, rt in ipairs(r.routes) do if rt.name == name then return rt.handler end end
  error("no route " .. name)
end

describe("?limit= of the runs and the violations", function()
  local db, dir
  before_each(function()
    dir = H.tmpdir()
    db = assert(store.open(dir .. "/orket.db"))
    assert(db:tx(function()
      for i = 1, 201 do
        db:record_run { target = "E" .. i, kind = "epic" }
        db:record_violation { seat = "dev", rule = "PATH_ESCAPE", attempt = "write_file", detail = "no" }
      end
      return true
    end))
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  for _, case in ipairs { { "runs", "runs", 50 }, { "violations", "violations", 50 } } do
    local name, field, default = table.unpack(case)
    it(name .. ": from 1 to 200, a larger one taken as 200, the refusal naming both bounds", function()
      local h = handler(name)
      local function ask(limit) return h(nil, { db = db, dir = dir, params = {}, query = { limit = limit } }) end
      local st, doc = ask(nil)
      assert.same({ 200, default }, { st, doc[field] and #doc[field] })
      for _, limit in ipairs { "200", "201", "99999999999999999999999" } do
        st, doc = ask(limit)
        assert.same({ 200, 200 }, { st, doc[field] and #doc[field] }, limit)
      end
      st, doc = ask("7")
      assert.same({ 200, 7 }, { st, doc[field] and #doc[field] })
      for _, limit in ipairs { "0", "-1", "x", "1.5", "" } do
        st, doc = ask(limit)
        assert.same({ 400, "bad_query", "?limit= takes a whole number from 1 to 200 (" .. default .. " when absent)" },
          { st, doc.error.code, doc.error.message }, limit)
      end
    end)
  end
end)
