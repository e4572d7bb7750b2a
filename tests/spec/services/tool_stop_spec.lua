-- A tool whose own answer is a host fault's code (a project tool's `return nil, "full",
-- "ENOSPC"`) stops the run as a full disk does (orket.engine.turn's call_stop), but the stop
-- names the tool and says it reported it, in the git event and the run's reason, and says
-- that a resume runs the call again: the repository was never at fault, and the operator
-- looking at its disk found nothing (Run:git_broken).
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

describe("a tool that reports a host fault's code itself", function()
  after_each(H.cleanup)

  -- tools whose write_file answers failure (code, in its own words) while tools.failing is set
  local function failing_tools(code, words)
    local tools = F.tools()
    tools.failing = true
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      if self.failing then return { ok = false, error = words, code = code } end
      return { ok = true, result = { path = args.path, bytes = #args.content } }
    end
    return tools
  end

  -- a model that writes a file at every step
  local function writer(b)
    local client = F.llm(b, {})
    function client:chat(req)
      self.requests[#self.requests + 1] = req
      return { content = "", finish_reason = "tool_calls", model = "fake:model",
        tool_calls = { { id = "w" .. #self.requests, name = "write_file", arguments = { path = "a.txt", content = "x" },
          raw_arguments = "{}" } },
        usage = { prompt_tokens = 100, completion_tokens = 10 } }
    end
    return client
  end

  local function stops(code, words)
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools = failing_tools(code, words)
    local e, events = F.engine(db, b, { llm = writer(b), tools = tools })
    local id = assert(e:start("E"))
    local status, report = e:execute(id)
    assert.equal("failed", status)
    local stop
    for _, ev in ipairs(events) do
      assert.is_false(ev.type == "card_blocked", tostring(ev.detail))
      if ev.type == "git" then stop = ev end
    end
    return id, tostring(report.reason), stop, { db = db, b = b, tools = tools }
  end

  it("(ENOSPC) names the tool in the stop's event and reason, not the repository, and says what resume does", function()
    local id, reason, stop, t = stops("ENOSPC", "full")
    assert.equal("tool write_file reported ENOSPC (full), which stops the run as a full disk does; once there is room, "
      .. "'orket resume " .. id .. "' runs that call again (and stops again if the tool reports it again)", reason)
    assert.is_nil(reason:find("repository", 1, true))
    assert.equal("disk_full", stop.action)
    assert.equal("write_file", stop.tool)
    assert.equal("tool write_file reported ENOSPC: full", stop.error)
    -- resume runs the call again: once the tool answers, the run finishes
    local before = #t.tools.calls
    t.tools.failing = false
    local e2 = F.engine(t.db, t.b, { llm = F.llm(t.b, {}), tools = t.tools })
    assert.equal("done", (e2:execute(id)))
    assert.equal("write_file", t.tools.calls[before + 1])
    t.db:close()
  end)

  it("(another host fault's code) says it as the host's, with its remedy, and names the tool", function()
    local id, reason, stop, t = stops("EMFILE", "out of handles")
    assert.equal("host_fault", stop.action)
    assert.equal("write_file", stop.tool)
    assert.matches("^tool write_file reported EMFILE: out of handles; this process may open no more files", stop.error)
    assert.matches("^tool write_file reported EMFILE %(out of handles; this process may open no more files: raise its "
      .. "limit, ulimit %-n or systemd LimitNOFILE=%), which stops the run as a fault of the host's does; once that is "
      .. "fixed, 'orket resume " .. id .. "' runs that call again", reason)
    t.db:close()
  end)

  it("says a workspace failure the tool passed on as the workspace's, naming the tool in the event", function()
    local id, reason, stop, t = stops("ENOSPC", "workspace: write: no space left on device: a.txt")
    assert.equal("the workspace could not be written (workspace: write: no space left on device: a.txt); once there is "
      .. "room on its disk, 'orket resume " .. id .. "' carries on", reason)
    assert.equal("write_file", stop.tool)
    assert.equal("workspace: write: no space left on device: a.txt", stop.error)
    t.db:close()
  end)
end)
