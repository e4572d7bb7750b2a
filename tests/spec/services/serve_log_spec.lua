-- orket serve's log: a background task's failure (the event stream's read, the bug-fix
-- phase's tick), most often the store's raised through assert(), carried the source
-- position of Orket's own library (".../lua/orket/store/journal_reads.lua:238: pg: ..."),
-- every 5 s of an outage; docs/store.md says a store failure is said without them.
local H = require "tests.helpers"
local serve = require "orket.serve"

describe("orket serve's log", function()
  after_each(H.cleanup)

  it("says a background task's failure without the source positions of Orket's library", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local lines = {}
    local srv = assert(serve.new { dir = dir, db = db, host = "127.0.0.1", port = 0,
      log = function(line) lines[#lines + 1] = require("cjson").decode(line) end })
    local lib = package.orket_home .. "/lua/orket/"
    srv:_log { event = "error", message = lib .. "store/journal_reads.lua:238: pg: cannot connect: FATAL: too many" }
    srv:_log { event = "error", message = "bug-fix phase: " .. lib .. "store/bugfix.lua:34: pg: connecting: timed out" }
    -- a request's internal error keeps its place, for its report
    srv:_log { event = "error", route = "GET /v1/board", message = lib .. "serve/routes.lua:9: boom" }
    local task = require "orket.task"
    local running = task.spawn(srv.run, srv)
    task.spawn(srv.stop, srv):join()
    running:join()
    db:close()
    assert.equal("pg: cannot connect: FATAL: too many", lines[1].message)
    assert.equal("bug-fix phase: pg: connecting: timed out", lines[2].message)
    assert.equal(lib .. "serve/routes.lua:9: boom", lines[3].message)
  end)
end)
