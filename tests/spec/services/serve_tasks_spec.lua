-- orket.serve's request tasks: one kept, once its request is done, for a request to come
-- (a task a request made a coroutine and its tables each time), a bounded few of them,
-- and those waiting ended when the server stops.
local serve = require "orket.serve"
local task = require "orket.task"
local rt = require "orket.c.runtime"
local H = require "tests.helpers"
local F = require "tests.fixtures"

describe("orket.serve's request tasks", function()
  after_each(function() H.cleanup() end)

  -- a server whose requests (handled in Lua: /health?x=1) note their coroutine, waiting
  -- wait_ms first
  local function server(wait_ms)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0 }
    -- the method is looked up at each request: the server's own field wins from now on
    local seen, handle = {}, srv._handle
    srv._handle = function(self, req)
      seen[#seen + 1] = coroutine.running()
      if wait_ms then rt.sleep(wait_ms) end
      return handle(self, req)
    end
    return srv, "http://127.0.0.1:" .. srv:port() .. "/health?x=1", seen, stop
  end

  it("handles requests one after another in one task", function()
    local srv, url, seen, stop = server()
    for _ = 1, 3 do assert.equal(200, (H.fetch { url = url })) end
    assert.equal(3, #seen)
    assert.is_true(seen[1] == seen[2] and seen[2] == seen[3])
    assert.equal(1, #srv.idle)
    stop()
  end)

  -- a request's headers carry its credentials: once answered, nothing of a waiting task
  -- keeps it (neither the task's first argument nor its last request)
  it("holds no request while it waits", function()
    local srv, url, _, stop = server()
    local kept = setmetatable({}, { __mode = "k" })
    local handle = srv._handle
    srv._handle = function(self, req)
      kept[req] = true
      return handle(self, req)
    end
    for _ = 1, 3 do assert.equal(200, (H.fetch { url = url })) end
    assert.equal(1, #srv.idle)
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(kept))
    stop()
  end)

  it("keeps at most MAX_IDLE tasks of a burst, and ends them when the server stops", function()
    local was = serve.MAX_IDLE
    serve.MAX_IDLE = 2
    local ok, err = pcall(function()
      local srv, url, seen, stop = server(50)
      local done = 0
      for _ = 1, 3 do
        task.spawn(function()
          assert.equal(200, (H.fetch { url = url }))
          done = done + 1
        end)
      end
      H.wait_for(function() return done == 3 end, "the three answers")
      assert.is_true(seen[1] ~= seen[2] and seen[2] ~= seen[3] and seen[1] ~= seen[3])
      local idle = { table.unpack(srv.idle) }
      assert.equal(2, #idle)
      stop()
      assert.equal(0, #srv.idle)
      for _, co in ipairs(idle) do assert.equal("dead", coroutine.status(co)) end
    end)
    serve.MAX_IDLE = was
    assert(ok, err)
  end)
end)
