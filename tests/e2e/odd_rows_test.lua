-- Hand-edited store rows that the schema lets through: a priority that is NaN or an
-- infinity (the API refuses them on input), an event whose data is JSON null. The board,
-- the card and the run's transcript still answer, in the CLI and over HTTP, the odd value
-- shown as null (or left out of a line), never an internal error for the whole view. On
-- the backend under test (tests.backends: PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local cjson = require "cjson"
local project_mod = require "orket.project"

local function get(url)
  return H.fetch { url = url, total_timeout_ms = 20000 }
end

describe("odd rows", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("a NaN or infinite priority and an event with null data leave the views answering", function()
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/webapp/epics") .. " " .. H.quote(dir))
    H.write(dir .. "/orket.lua", 'name = "odd"\n')
    B.project(dir)
    local r = H.orket("import", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local db = assert(project_mod.open_store(dir, false))
    local run = assert(db:record_run { target = "API", kind = "epic" })
    assert(db:tx(function()
      -- SQLite keeps no NaN (it stores NULL): an infinity there; both on PostgreSQL
      if db.backend == "pg" then
        assert(db:run("UPDATE cards SET priority = 'NaN' WHERE id = 'API-1'"))
        assert(db:run("UPDATE cards SET priority = '-Infinity' WHERE id = 'WEB-1'"))
      else
        assert(db:run("UPDATE cards SET priority = 9e999 WHERE id = 'API-1'"))
      end
      assert(db:run("INSERT INTO events (at, kind, card_id, run_id, actor, data) VALUES (" .. db.dialect.now
        .. ", 'transition', 'API-2', ?, 'x', 'null')", run))
      return true
    end))
    db:close()
    for _, cmd in ipairs { "card API-2", "card API-2 --json", "card API-1 --json", "log " .. run, "log " .. run .. " --json",
        "board", "board --json" } do
      r = H.orket(cmd, { cwd = dir })
      assert.equal(0, r.status, cmd .. ": " .. r.stderr)
      assert.equal("", r.stderr, cmd)
    end
    assert.matches("x +transition %(data: null%)", H.orket("card API-2", { cwd = dir }).stdout)
    for _, c in ipairs(cjson.decode(H.orket("board --json", { cwd = dir }).stdout).cards) do
      if c.id == "API-1" then assert.equal(cjson.null, c.priority) end
    end
    local s = H.serve(dir, { args = "--workers 0" })
    local st, body = get(s.url .. "/v1/board")
    assert.equal(200, st, body)
    local by = {}
    for _, c in ipairs(cjson.decode(body).cards) do by[c.id] = c end
    assert.equal(cjson.null, by["API-1"].priority)
    assert.equal("number", type(by["API-2"].priority))
    for _, path in ipairs { "/v1/cards/API-2", "/v1/cards/API-1", "/v1/runs/" .. run .. "/transcript" } do
      st, body = get(s.url .. path)
      assert.equal(200, st, path .. ": " .. tostring(body))
    end
    st, body = get(s.url .. "/v1/cards/API-1")
    assert.equal(cjson.null, cjson.decode(body).card.priority)
    s.stop()
  end)
end)
