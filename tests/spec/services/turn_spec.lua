-- orket.engine.turn details the model sees: how a failed or denied call reads, a step's
-- results in the next step's messages, and the
-- model a turn names when routing leaves the choice to the client.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local turn = require "orket.engine.turn"
local calls = require "tests.calls"

describe("turn results", function()
  it("writes a failed or denied call with its keys sorted, as a result", function()
    local job = { role = { dialect = "native" } }
    local m = turn.result_message(job, { id = "c1", name = "read_file" },
      { ok = false, error = "denied: no", code = "PATH_ESCAPE", remedy = "use a relative path" })
    assert.equal('{"code":"PATH_ESCAPE","error":"denied: no","remedy":"use a relative path"}', m.content)
    m = turn.result_message({ role = { dialect = "json" } }, { id = "c1", name = "read_file" },
      { ok = false, error = "a/b missing", code = "ENOENT" })
    assert.equal('Result of read_file: {"code":"ENOENT","error":"a/b missing"}', m.content)
  end)
end)

describe("turn_start", function()
  after_each(H.cleanup)

  it("names the client's default model when routing chooses none", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local client = F.llm(b, {})
    client.default = "fake:default"
    local e, events = F.engine(db, b, { llm = client })
    local id = assert(e:start("E"))
    e:execute(id)
    local starts = 0
    for _, ev in ipairs(events) do
      if ev.type == "turn_start" then
        starts = starts + 1
        assert.equal("fake:default", ev.model)
      end
    end
    assert.is_true(starts > 0)
  end)
end)

describe("a turn whose run stops", function()
  after_each(H.cleanup)

  it("asks the model no more once its run stopped during a step, and stays open", function()
    -- as a full disk met by a tool stops the run (Run:git_broken) from inside the turn, which
    -- waits on nothing then: the task's cancel cannot end it where it waits
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools, e = F.tools(), nil
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name == "write_file" then e:stop() end
      return run_tool(self, name, args, ctx)
    end
    local client = F.llm(b, {})
    e = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    assert.equal("interrupted", (e:execute(id)))
    assert.equal(1, #client.requests)
    assert.equal("in_progress", b:get("E-1").status)
    db:close()
  end)

  it("runs no later call of the reply once a call stopped it; resume runs it once, from the recorded reply", function()
    -- a stop raised inside one of the step's own calls (as the mover's git_broken): the
    -- reply's next call must wait for the resumed turn, not land in the stopped run
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools, e, stopped = F.tools(), nil, false
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name == "write_file" and not stopped then
        stopped = true
        e:stop()
      end
      return run_tool(self, name, args, ctx)
    end
    local client = F.llm(b, {})
    local inner = client.chat
    function client:chat(req)
      local m = req.meta
      if m.card == "E-1" and m.role ~= "integrity_guard" and m.phase ~= "escalation" and m.step == 1 then
        self.requests[#self.requests + 1] = req
        return { content = "", finish_reason = "tool_calls", model = "fake:model",
          usage = { prompt_tokens = 100, completion_tokens = 10 },
          tool_calls = { { id = "w1", name = "write_file", arguments = { path = "a.txt", content = "x" }, raw_arguments = "{}" },
            { id = "w2", name = "add_issue_comment", arguments = { body = "wrote a.txt" }, raw_arguments = "{}" } } }
      end
      return inner(self, req)
    end
    e = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    assert.equal("interrupted", (e:execute(id)))
    assert.same({}, b:comments("E-1"))
    local asked = #client.requests
    local e2 = F.engine(db, b, { llm = client, tools = tools })
    assert.equal("done", (e2:execute(id)))
    for i = asked + 1, #client.requests do
      local m = client.requests[i].meta
      assert.is_false(m.card == "E-1" and m.role ~= "integrity_guard" and m.phase ~= "escalation" and m.step == 1,
        "the model was asked the stopped step again")
    end
    local bodies = {}
    for _, c in ipairs(b:comments("E-1")) do bodies[#bodies + 1] = c.body end
    assert.equal(1, #bodies)
    assert.equal("wrote a.txt", bodies[1])
    assert.equal(1, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'add_issue_comment'").n)
    db:close()
  end)
end)

-- A full disk met inside a tool call (a file written into the card's directory, a commit a
-- tool makes) is the run's, as when the engine's own commit meets it (Run:git_broken): the
-- run ends failed, for `orket resume` once there is room, and the model is not asked to try
-- again until the turn's steps run out and its card is blocked for them (`resource`).
describe("a tool call that meets a full disk", function()
  after_each(H.cleanup)

  -- a model that writes a file at every step, whatever the answer
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

  for _, code in ipairs { "ENOSPC", "EDQUOT" } do
    it("(" .. code .. ") ends the run failed, for resume, blocking nothing and asking the model no more", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
      local tools = F.tools()
      local run_tool = tools.run
      function tools:run(name, args, ctx)
        if name ~= "write_file" then return run_tool(self, name, args, ctx) end
        self.calls[#self.calls + 1] = name
        return { ok = false, error = "workspace: write: no space left on device: a.txt", code = code }
      end
      local client = writer(b)
      local e, events = F.engine(db, b, { llm = client, tools = tools })
      local id = assert(e:start("E"))
      local status, report = e:execute(id)
      assert.equal(1, #client.requests)
      assert.equal("failed", status)
      assert.matches("^the workspace could not be written %(workspace: write: no space left on device: a%.txt%); "
        .. "once there is room on its disk, 'orket resume " .. id .. "' carries on", tostring(report.reason))
      assert.equal("in_progress", b:get("E-1").status)
      local full = 0
      for _, ev in ipairs(events) do
        assert.is_false(ev.type == "card_blocked", tostring(ev.detail))
        if ev.type == "git" and ev.action == "disk_full" then full = full + 1 end
      end
      assert.equal(1, full)
      db:close()
    end)
  end

  -- tools whose write_file meets a full disk while tools.full is set, run in the step's
  -- transaction or (effect) as a "write" effect between two, idempotent as the built-in one
  local function full_tools(effect)
    local tools = F.tools()
    tools.full, tools.written = true, {}
    local get, run_tool = tools.get, tools.run
    function tools:get(name)
      if name == "write_file" and effect then return { name = name, effect = "write", idempotent = true } end
      return get(self, name)
    end
    function tools:recover(name) return name == "write_file" and effect and "rerun" or "unknown", "not idempotent" end
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      if self.full then return { ok = false, error = "workspace: write: no space left on device: a.txt", code = "ENOSPC" } end
      self.written[#self.written + 1] = args.path
      return { ok = true, result = { path = args.path, bytes = #args.content } }
    end
    return tools
  end

  -- a coder whose first step writes a file, then says so; the rest as the fake's
  local function write_then_say(b)
    local client = F.llm(b, {})
    local inner = client.chat
    function client:chat(req)
      local m = req.meta
      if m.role ~= "integrity_guard" and m.phase ~= "escalation" and m.step == 1 then
        self.requests[#self.requests + 1] = req
        return { content = "", finish_reason = "tool_calls", model = "fake:model",
          usage = { prompt_tokens = 100, completion_tokens = 10 },
          tool_calls = { { id = "w1", name = "write_file", arguments = { path = "a.txt", content = "x" }, raw_arguments = "{}" },
            { id = "w2", name = "add_issue_comment", arguments = { body = "wrote a.txt" }, raw_arguments = "{}" } } }
      end
      return inner(self, req)
    end
    return client
  end

  for _, effect in ipairs { false, true } do
    local how = effect and "a write effect's call" or "an in-store call"
    it("leaves " .. how .. " open and its response's later calls unrun; resume runs them, the model never told",
      function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
      local tools = full_tools(effect)
      local client = write_then_say(b)
      local e, events = F.engine(db, b, { llm = client, tools = tools })
      local id = assert(e:start("E"))
      assert.equal("failed", (e:execute(id)))
      assert.equal(1, #client.requests)
      -- the comment that would claim the file was not made; the write has no result recorded
      assert.same({}, b:comments("E-1"))
      assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE error_code = 'ENOSPC'").n)
      assert.equal(effect and 1 or 0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
      -- the open call's event, then the stop, once the step is durable
      local order = {}
      for _, ev in ipairs(events) do
        if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.code) .. ":" .. tostring(ev.open) end
        if ev.type == "git" then order[#order + 1] = ev.action end
      end
      assert.same({ "write_file:ENOSPC:true", "disk_full" }, order)
      -- room again: the resume writes the file, then comments, and asks the model no more for step 1
      tools.full = false
      local e2 = F.engine(db, b, { llm = client, tools = tools })
      assert.equal("done", (e2:execute(id)))
      assert.same({ "a.txt" }, tools.written)
      for i = 2, #client.requests do
        local r = client.requests[i]
        assert.is_false(r.meta.card == "E-1" and r.meta.role ~= "integrity_guard" and r.meta.step == 1)
        for _, msg in ipairs(r.messages) do
          assert.is_nil(tostring(msg.content):find("ENOSPC", 1, true), "the model was shown the failed write")
        end
      end
      local bodies = {}
      for _, c in ipairs(b:comments("E-1")) do bodies[#bodies + 1] = c.body end
      assert.equal("wrote a.txt", bodies[1])
      assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE error_code = 'ENOSPC'").n)
      db:close()
    end)
  end

  it("met in a turn's last step leaves the card open; resume writes the file, then the steps run out", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools = full_tools(true)
    local client = writer(b)
    local config = { budgets = { steps_per_turn = 1 } }
    local e, events = F.engine(db, b, { llm = client, tools = tools, config = config })
    local id = assert(e:start("E"))
    assert.equal("failed", (e:execute(id)))
    assert.equal("in_progress", b:get("E-1").status)
    for _, ev in ipairs(events) do assert.is_false(ev.type == "card_blocked", tostring(ev.detail)) end
    -- with room, as an uninterrupted run: the write lands, the step budget ends the turn
    tools.full = false
    local e2 = F.engine(db, b, { llm = client, tools = tools, config = config })
    e2:execute(id)
    assert.same({ "a.txt" }, tools.written)
    assert.equal(1, #client.requests)
    assert.same({ "blocked", "resource" }, { b:get("E-1").status, b:get("E-1").wait_reason })
    db:close()
  end)

  -- A project tool whose move to done meets a full disk in the mover's commit (the mover
  -- calls Run:git_broken: the run stops), and which answers with a code of its own (its
  -- script's), none, or as a success. Before, the call was recorded with that answer and
  -- the resumed model read it; the move was never made again.
  for _, answer in ipairs { "EFINISH", "none", "ok" } do
    it("leaves open a project tool whose move stopped the run, answered " .. answer .. "; resume redoes it",
      function()
      local gitwork = require "orket.engine.gitwork"
      local real_mover, real_commit = gitwork.mover, gitwork.commit
      local full, moves = true, {}
      -- the real mover, made as with a card's worktree; its commit meets the full disk
      gitwork.mover = function(run, job)
        local eng, fs = run.engine, job.fs
        local g = rawget(eng, "git")
        rawset(eng, "git", {})
        job.fs = {}
        local m = real_mover(run, job)
        rawset(eng, "git", g)
        job.fs = fs
        -- with room again, the move stands for the merge (no repository here)
        return function(id, to, opts)
          if full then return m(id, to, opts) end
          return { id = id, status = to }
        end
      end
      gitwork.commit = function()
        if full then return nil, "git: commit: no space left on device", "ENOSPC" end
        return true
      end
      local _ <close> = setmetatable({}, { __close = function() gitwork.mover, gitwork.commit = real_mover, real_commit end })
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
      b.check_transition = function() return true end -- the move itself is not what is tested
      local tools = F.tools()
      local run_tool = tools.run
      function tools:run(name, args, ctx)
        if name ~= "write_file" then return run_tool(self, name, args, ctx) end
        self.calls[#self.calls + 1] = name
        local c, err = ctx.move(ctx.card.id, "done", {})
        moves[#moves + 1] = c and "moved" or "failed"
        if answer == "ok" then return { ok = true, result = { finished = c ~= nil } } end
        if not c then return { ok = false, error = "finish: " .. tostring(err), code = answer == "none" and "EFAIL" or answer } end
        return { ok = true, result = { finished = true } }
      end
      local client = write_then_say(b)
      local e, events = F.engine(db, b, { llm = client, tools = tools })
      local id = assert(e:start("E"))
      assert.equal("failed", (e:execute(id)))
      assert.same({ "failed" }, moves)
      assert.same({}, b:comments("E-1"))
      assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
      local order = {}
      for _, ev in ipairs(events) do
        if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.open) end
        if ev.type == "git" then order[#order + 1] = ev.action end
      end
      assert.same({ "write_file:true", "disk_full" }, order)
      -- room again: the resume makes the move, and the model never read the failed one
      full = false
      local e2 = F.engine(db, b, { llm = client, tools = tools })
      e2:execute(id)
      assert.same({ "failed", "moved" }, moves)
      for i = 2, #client.requests do
        for _, msg in ipairs(client.requests[i].messages) do
          assert.is_nil(tostring(msg.content):find("no space left", 1, true), "the model was shown the failed move")
        end
      end
      db:close()
    end)
  end

  -- The mover's other side: its commit went through, the merge into main (orket.actions.
  -- finish) met the full disk. The call is left open as for the commit's.
  it("leaves open a project tool whose move's merge met a full disk; resume redoes it", function()
    local gitwork = require "orket.engine.gitwork"
    local finish = require "orket.actions.finish"
    local real_mover, real_commit, real_finish = gitwork.mover, gitwork.commit, finish.finish
    local full, moves = true, {}
    gitwork.mover = function(run, job)
      local eng, fs = run.engine, job.fs
      local g = rawget(eng, "git")
      rawset(eng, "git", { repo = {} })
      job.fs = {}
      local m = real_mover(run, job)
      rawset(eng, "git", g)
      job.fs = fs
      return function(id, to, opts)
        rawset(eng, "git", { repo = {} })
        local c, err, code = m(id, to, opts)
        rawset(eng, "git", g)
        return c, err, code
      end
    end
    gitwork.commit = function() return true end
    finish.finish = function(o)
      if full then return nil, "git: merge: no space left on device", "ENOSPC" end
      return { card = assert(o.board:get(o.card)) }
    end
    local _ <close> = setmetatable({}, { __close = function()
      gitwork.mover, gitwork.commit, finish.finish = real_mover, real_commit, real_finish
    end })
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    b.check_transition = function() return true end
    local tools = F.tools()
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      local c, err = ctx.move(ctx.card.id, "done", {})
      moves[#moves + 1] = c and "moved" or "failed"
      if not c then return { ok = false, error = "finish: " .. tostring(err), code = "EFINISH" } end
      return { ok = true, result = { finished = true } }
    end
    local client = write_then_say(b)
    local e, events = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    assert.equal("failed", (e:execute(id)))
    assert.same({ "failed" }, moves)
    assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
    local order = {}
    for _, ev in ipairs(events) do
      if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.open) end
      if ev.type == "git" then order[#order + 1] = ev.action end
    end
    assert.same({ "write_file:true", "disk_full" }, order)
    full = false
    local e2 = F.engine(db, b, { llm = client, tools = tools })
    e2:execute(id)
    assert.same({ "failed", "moved" }, moves)
    for i = 2, #client.requests do
      for _, msg in ipairs(client.requests[i].messages) do
        assert.is_nil(tostring(msg.content):find("no space left", 1, true), "the model was shown the failed merge")
      end
    end
    db:close()
  end)

  -- A store that failed under a tool's board write (its file full, an I/O error): the run
  -- stops (journal_broken), and the call's failure, whatever code the tool gave it, was
  -- recorded (when the store took the record) and read by the resumed model.
  it("leaves open a call whose failure met the store failing; the run stops at once and resume redoes it", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local broken, met, written = false, false, 0
    local journal_error = db.journal_error
    db.journal_error = function(self, ...)
      if broken then return "disk I/O error", "EIO" end
      return journal_error(self, ...)
    end
    local tools = F.tools()
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      if not met then
        broken, met = true, true -- the handler's write into the store met the failure, and said so its own way
        return { ok = false, error = "notes: could not save: disk I/O error", code = "ESAVE" }
      end
      written = written + 1
      return { ok = true, result = { path = args.path } }
    end
    local client = write_then_say(b)
    local e, events = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    local status, report = e:execute(id)
    assert.equal("failed", status)
    assert.matches("^the journal could not be written %(disk I/O error%)", tostring(report.reason))
    assert.equal(1, #client.requests)
    assert.same({}, b:comments("E-1"))
    assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
    local order = {}
    for _, ev in ipairs(events) do
      if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.open) end
      if ev.type == "journal_error" then order[#order + 1] = "journal_error" end
    end
    assert.same({ "write_file:true", "journal_error" }, order)
    -- the store back: the resume writes, then comments, and the model never read the failure
    broken = false
    local e2 = F.engine(db, b, { llm = client, tools = tools })
    local st2, rep2 = e2:execute(id)
    assert.equal("done", st2, tostring(rep2.reason))
    assert.equal(1, written)
    for i = 2, #client.requests do
      for _, msg in ipairs(client.requests[i].messages) do
        assert.is_nil(tostring(msg.content):find("ESAVE", 1, true), "the model was shown the failure")
      end
    end
    assert.equal("wrote a.txt", b:comments("E-1")[1].body)
    db:close()
  end)

  -- A project's process tool whose handler (it only builds the request) meets a full disk:
  -- no program ran. Before, the call's intent was committed before the handler ran, so the
  -- resume found it without a result and, the tool neither idempotent nor recoverable,
  -- answered EINTERRUPTED instead of running it.
  it("redoes a process tool whose handler met a full disk before its program ran", function()
    local proctool = require "orket.engine.proctool"
    local real_run = proctool.run
    local programs = {}
    proctool.run = function(_, _, name, req)
      programs[#programs + 1] = name .. ":" .. req.steps[1].command[1]
      return { ok = true, result = { exit = 0, stdout = "ok" } }
    end
    local _ <close> = setmetatable({}, { __close = function() proctool.run = real_run end })
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools = F.tools()
    local get, run_tool = tools.get, tools.run
    local full = true
    function tools:get(name)
      if name == "write_file" then return { name = name, effect = "process" } end
      return get(self, name)
    end
    function tools:recover() return "unknown", "not idempotent" end
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      -- the script writes what it will run first, and that write meets the full disk
      if full then return { ok = false, error = "workspace: write: no space left on device: run.sh", code = "ENOSPC" } end
      return { ok = true, result = { steps = { { command = { "sh", "run.sh" } } } } }
    end
    local client = write_then_say(b)
    -- (sh: a program the project allows, as a project's process tool's steps must run)
    local config = { verify = { commands = { "sh" } } }
    local e, events = F.engine(db, b, { llm = client, tools = tools, config = config })
    local id = assert(e:start("E"))
    assert.equal("failed", (e:execute(id)))
    assert.same({}, programs)
    assert.same({}, b:comments("E-1"))
    -- neither a result nor an intent: the call is as before a kill ahead of it
    assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
    local order = {}
    for _, ev in ipairs(events) do
      if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.code) .. ":" .. tostring(ev.open) end
      if ev.type == "git" then order[#order + 1] = ev.action end
    end
    assert.same({ "write_file:ENOSPC:true", "disk_full" }, order)
    full = false
    local e2 = F.engine(db, b, { llm = client, tools = tools, config = config })
    assert.equal("done", (e2:execute(id)))
    assert.same({ "write_file:sh" }, programs)
    for i = 2, #client.requests do
      for _, msg in ipairs(client.requests[i].messages) do
        local text = tostring(msg.content)
        assert.is_nil(text:find("EINTERRUPTED", 1, true), "the model read EINTERRUPTED")
        assert.is_nil(text:find("ENOSPC", 1, true), "the model read the full disk")
      end
    end
    assert.equal("wrote a.txt", b:comments("E-1")[1].body)
    db:close()
  end)

  -- The same for a tool that reaches the live sandbox: its handler only shapes the request
  -- (sandboxtool does it). Before, it ran after the call's intent, so one that met a full
  -- disk left the intent without a result and the resume answered EINTERRUPTED.
  it("redoes a sandbox tool whose handler met a full disk before the sandbox was asked", function()
    local sandboxtool = require "orket.engine.sandboxtool"
    local real_run = sandboxtool.run
    local asked = {}
    sandboxtool.run = function(_, _, name, req)
      asked[#asked + 1] = name .. ":" .. req.op
      return { ok = true, result = { status = "healthy" } }
    end
    local _ <close> = setmetatable({}, { __close = function() sandboxtool.run = real_run end })
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools = F.tools()
    local get, run_tool = tools.get, tools.run
    local full = true
    function tools:get(name)
      if name == "write_file" then return { name = name, effect = "sandbox" } end
      return get(self, name)
    end
    function tools:recover() return "unknown", "not idempotent" end
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      if full then return { ok = false, error = "workspace: write: no space left on device: req.json", code = "ENOSPC" } end
      return { ok = true, result = { op = "status", lines = 10 } }
    end
    local client = write_then_say(b)
    local e, events = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    assert.equal("failed", (e:execute(id)))
    assert.same({}, asked)
    assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE tool = 'write_file'").n)
    local order = {}
    for _, ev in ipairs(events) do
      if ev.type == "tool" then order[#order + 1] = ev.tool .. ":" .. tostring(ev.code) .. ":" .. tostring(ev.open) end
      if ev.type == "git" then order[#order + 1] = ev.action end
    end
    assert.same({ "write_file:ENOSPC:true", "disk_full" }, order)
    full = false
    local e2 = F.engine(db, b, { llm = client, tools = tools })
    assert.equal("done", (e2:execute(id)))
    assert.same({ "write_file:status" }, asked)
    for i = 2, #client.requests do
      for _, msg in ipairs(client.requests[i].messages) do
        local text = tostring(msg.content)
        assert.is_nil(text:find("EINTERRUPTED", 1, true), "the model read EINTERRUPTED")
        assert.is_nil(text:find("ENOSPC", 1, true), "the model read the full disk")
      end
    end
    db:close()
  end)

  -- A move to done that merged, in a call then left open (the store failed under the tool's
  -- next write): the store rolls the move back with the call, so what follows a merge (its
  -- pull request ended, main pushed, a deploy: gitwork.after_merge) is not due. Before, it
  -- ran for a card the store still had in progress, and again after the resume's move.
  it("runs what follows a merge only for a move the store kept, once across the resume", function()
    local gitwork = require "orket.engine.gitwork"
    local finish = require "orket.actions.finish"
    local real_mover, real_commit, real_after, real_finish = gitwork.mover, gitwork.commit, gitwork.after_merge,
      finish.finish
    local after = {}
    gitwork.mover = function(run, job)
      local eng, fs = run.engine, job.fs
      local g = rawget(eng, "git")
      rawset(eng, "git", { repo = {} })
      job.fs = {}
      local m = real_mover(run, job)
      rawset(eng, "git", g)
      job.fs = fs
      -- (the mover reads the repository when it moves: one with none to read, here)
      return function(id, to, opts)
        rawset(eng, "git", { repo = {} })
        local c, err, code = m(id, to, opts)
        rawset(eng, "git", g)
        return c, err, code
      end
    end
    gitwork.commit = function() return true end
    -- the merge into main succeeds (no repository here; the move itself is not what is tested)
    finish.finish = function(o) return { card = assert(o.board:get(o.card)), merge = { id = "m1" } } end
    gitwork.after_merge = function(_, card, merge) after[#after + 1] = card .. ":" .. merge.id end
    local _ <close> = setmetatable({}, { __close = function()
      gitwork.mover, gitwork.commit, gitwork.after_merge, finish.finish = real_mover, real_commit, real_after, real_finish
    end })
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    b.check_transition = function() return true end
    local broken, met = false, false
    local journal_error = db.journal_error
    db.journal_error = function(self, ...)
      if broken then return "disk I/O error", "EIO" end
      return journal_error(self, ...)
    end
    local tools = F.tools()
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      self.calls[#self.calls + 1] = name
      local c, err = ctx.move(ctx.card.id, "done", {})
      if not c then return { ok = false, error = tostring(err), code = "EFINISH" } end
      if not met then
        -- the tool's next write into the store meets its failure
        broken, met = true, true
        return { ok = false, error = "notes: could not save: disk I/O error", code = "ESAVE" }
      end
      return { ok = true, result = { finished = true } }
    end
    local client = write_then_say(b)
    local e, events = F.engine(db, b, { llm = client, tools = tools })
    local id = assert(e:start("E"))
    local st, rep = e:execute(id)
    assert.equal("failed", st, tostring(rep.reason))
    local open = false
    for _, ev in ipairs(events) do open = open or (ev.type == "tool" and ev.tool == "write_file" and ev.open) end
    assert.is_true(open)
    assert.same({}, after)
    broken = false
    local e2 = F.engine(db, b, { llm = client, tools = tools })
    e2:execute(id)
    assert.same({ "E-1:m1" }, after)
    db:close()
  end)

  -- The store's rule is the call's own: a busy store (another connection held the lock:
  -- SQLite's EBUSY) is not its failure, and an effect run between two transactions keeps
  -- its result whatever the process's store met meanwhile (another run's). Before, both
  -- left the call open: its failure was lost, and the effect's resume read EINTERRUPTED.
  for _, case in ipairs { { "an in-store call's failure met a busy store", false, "database is locked", "EBUSY" },
    { "an effect's failure met the store failing elsewhere", true, "disk I/O error", "EIO" } } do
    it("records " .. case[1] .. " as its answer, not left open", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
      local broken = false
      local journal_error = db.journal_error
      db.journal_error = function(self, ...)
        if broken then return case[3], case[4] end
        return journal_error(self, ...)
      end
      local tools = F.tools()
      local get, run_tool = tools.get, tools.run
      function tools:get(name)
        if name == "write_file" and case[2] then return { name = name, effect = "write" } end
        return get(self, name)
      end
      function tools:recover() return "unknown", "not idempotent" end
      function tools:run(name, args, ctx)
        if name ~= "write_file" then return run_tool(self, name, args, ctx) end
        self.calls[#self.calls + 1] = name
        broken = true -- met while the call ran, not by its own record
        return { ok = false, error = "remote: refused", code = "EREMOTE" }
      end
      local client = write_then_say(b)
      local e, events = F.engine(db, b, { llm = client, tools = tools })
      local id = assert(e:start("E"))
      e:execute(id)
      local row = db:row("SELECT ok, error_code FROM tool_calls WHERE tool = 'write_file'")
      assert.is_not_nil(row, "the call's result was not recorded")
      assert.equal(0, row.ok)
      assert.equal("EREMOTE", row.error_code)
      for _, ev in ipairs(events) do
        if ev.type == "tool" then assert.is_not_true(ev.open, ev.tool .. " left open") end
      end
      db:close()
    end)
  end

  it("leaves any other error of the call to the model", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools = F.tools()
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      if name ~= "write_file" then return run_tool(self, name, args, ctx) end
      return { ok = false, error = "workspace: write: permission denied: a.txt", code = "EACCES" }
    end
    local client = writer(b)
    local e = F.engine(db, b, { llm = client, tools = tools, config = { budgets = { steps_per_turn = 3 } } })
    local id = assert(e:start("E"))
    e:execute(id)
    assert.equal(3, #client.requests)
    assert.equal("blocked", b:get("E-1").status)
    assert.equal("resource", b:get("E-1").wait_reason)
    db:close()
  end)
end)

describe("a turn's brief", function()
  after_each(H.cleanup)

  it("keeps the comments it started with; a comment made during the turn joins the history at its end", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local e = F.engine(db, b, {})
    local function comment(author, body)
      assert(db:tx(function() return b:comment("E-1", { author = author, body = body }) end))
    end
    comment("dev", "first")
    local card = assert(b:get("E-1"))
    local job = { role = { name = "coder" }, seat = "dev", phase = "work", turn = 1 }
    local history = {}
    local c1 = turn.context(e, job, card, history)
    assert.equal(1, #c1.comments)
    comment("pm", "second")
    local c2 = turn.context(e, job, card, history)
    -- the brief (a prompt cache's prefix) is as the turn's first step saw it
    assert.same(c1.comments, c2.comments)
    assert.equal(1, #history)
    assert.same({ role = "user", content = "A new comment on E-1 from pm:\nsecond" }, c2.history[#c2.history])
    turn.context(e, job, card, history)
    assert.equal(1, #history) -- said once
    comment("dev", "mine") -- the seat's own comment: in the history as its tool call already
    turn.context(e, job, card, history)
    assert.equal(1, #history)
  end)
end)

describe("what a turn hands to a tool", function()
  after_each(H.cleanup)

  -- The card a call's handler gets is the board's copy for that step, handed over without
  -- another copy: whatever the handler does to it (and keeps doing to what it kept) must
  -- never reach the gate's facts for the next call, the board, or another card's turn.
  it("is the handler's own: changing the card it got changes no later decision nor the board", function()
    local function run(spoil)
      local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
      local tools, kept = F.tools(), {}
      local run_tool = tools.run
      function tools:run(name, args, ctx)
        local r = run_tool(self, name, args, ctx)
        -- after its work: the card it got, and every one it kept from earlier calls
        if spoil and ctx.card then
          kept[#kept + 1] = ctx.card
          for _, c in ipairs(kept) do
            c.id, c.status, c.type, c.worked_by, c.depends_on = "E-4", "done", "epic", "nobody", { "NOPE" }
          end
        end
        return r
      end
      local seen = {}
      local function gate(input)
        local c = input.card or {}
        seen[#seen + 1] = string.format("%s %s %s %s", input.tool, tostring(c.id), tostring(c.status), tostring(c.type))
        return F.gate(input)
      end
      -- bounded: a spoiled board could leave the run with nothing it can do
      local e = F.engine(db, b, { tools = tools, gate = gate, config = { budgets = { wall_ms_per_run = 20000 } } })
      local id = assert(e:start("E"))
      assert.equal("done", (e:execute(id)))
      local state = F.board_state(b)
      db:close()
      table.sort(seen) -- cards' turns interleave in any order (PostgreSQL's reads wait)
      return state, table.concat(seen, "\n")
    end
    local state, seen = run(false)
    local spoiled_state, spoiled_seen = run(true)
    assert.equal(state, spoiled_state)
    assert.equal(seen, spoiled_seen)
  end)
end)

describe("a step's results in the next step's messages", function()
  after_each(H.cleanup)

  local function call(name, args, id) return { id = id, name = name, arguments = args, raw_arguments = "{}" } end

  -- the coder's turn takes three steps (two calls, one call, the hand-in); the reviewer
  -- approves. stop_at: the model request that stops the run instead (then it is resumed).
  -- -> the coder's requests' messages as roles and tool call ids, by step
  local function coder_steps(stop_at)
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local seen, n, e = {}, 0, nil
    local function client()
      local c = { requests = {} }
      function c:chat(req)
        n = n + 1
        self.requests[#self.requests + 1] = req
        if n == stop_at then
          e:stop()
          return nil, "canceled", "canceled"
        end
        local m, reply = req.meta, nil
        if m.role == "integrity_guard" then
          reply = m.step == 1 and { call("update_issue_status", { status = "done" }, "r1") } or nil
        else
          local shape = {}
          for _, msg in ipairs(req.messages) do shape[#shape + 1] = msg.role .. (msg.tool_call_id and (":" .. msg.tool_call_id) or "") end
          seen[m.step] = table.concat(shape, " ")
          if m.step == 1 then
            reply = { call("add_issue_comment", { body = "one" }, "c1"), call("write_file", { path = "a.txt", content = "x" }, "c2") }
          elseif m.step == 2 then
            reply = { call("add_issue_comment", { body = "two" }, "c3") }
          elseif m.step == 3 then
            reply = { call("update_issue_status", { status = "code_review" }, "c4") }
          end
        end
        return { content = reply and "" or "finished", tool_calls = reply or {}, finish_reason = reply and "tool_calls" or "stop",
          usage = { prompt_tokens = 100, completion_tokens = 10 }, model = "fake:model" }
      end
      return c
    end
    e = F.engine(db, b, { llm = client() })
    local id = assert(e:start("E"))
    if stop_at then
      assert.equal("interrupted", (e:execute(id)))
      e = F.engine(db, b, { llm = client() })
    end
    assert.equal("done", (e:execute(id)))
    assert.equal("done", b:get("E-1").status)
    db:close()
    return seen
  end

  it("follow its calls in order, in a turn run through and in one resumed after two recorded steps", function()
    local whole
    -- written for the model only when a next step asks it: the coder's first three results,
    -- not its hand-in's nor the reviewer's (each turn ends on that call)
    assert.equal(3, calls(require "orket.jsonout", "encode", function() whole = coder_steps() end))
    assert.equal("system user assistant tool:c1 tool:c2", whole[2])
    assert.equal("system user assistant tool:c1 tool:c2 assistant tool:c3", whole[3])
    -- stopped at the third step's request: the first two steps are read back from the
    -- journal on resume, the third asked again with the same history
    local resumed = coder_steps(3)
    assert.same(whole, resumed)
  end)
  it("writes a result holding a long whole number as the journal gives it back on resume", function()
    local cjson = require "cjson.safe"
    local records = require "orket.store.records"
    for _, v in ipairs { { id = 123456789012345, n = 7 }, { list = { 12345678901234567, "x" } }, { id = 99 },
      { big = 2 ^ 53, neg = -(2 ^ 53) - 2, ns = 1700000000123456789 }, { odd = 9007199254740993 },
      { odd = -9007199254740993 } } do
      local first = turn.encode_result(v)
      local resumed = turn.encode_result(cjson.decode(records.encode_exact(v, "a result")))
      assert.equal(first, resumed)
    end
    -- up to 2^53 a whole number reaches the model with every digit (it was rounded to 14:
    -- 123456789012345 as 123456789012340)
    assert.equal('{"id":123456789012345,"n":1234567890123456}',
      turn.encode_result { id = 123456789012345, n = 1234567890123456 })
    -- a number from 2^53 on changes alone, not every number of the result
    assert.equal('{"a":123456789012345,"b":9.007199254741e+15,"c":[]}',
      turn.encode_result { a = 123456789012345, b = 2 ^ 53, c = {} })
  end)
end)

describe("a turn whose block meets its run's stop", function()
  after_each(H.cleanup)

  -- E-1's turn, one model step allowed: its step's calls done, the next step is over the
  -- budget, so the turn ends blocked (resource) unless the run stopped. stop(run) is called
  -- by the coder's write_file (the step's last call), or not when nil.
  local function one_step_turn(stop, opts)
    opts = opts or {}
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local tools, e = F.tools(), nil
    local run_tool = tools.run
    function tools:run(name, args, ctx)
      local res = run_tool(self, name, args, ctx)
      if name == "write_file" and stop then stop(e.current) end
      return res
    end
    local events
    e, events = F.engine(db, b, { tools = tools, config = { budgets = { steps_per_turn = 1 } } })
    local id = assert(e:start("E"))
    local status = e:execute(id)
    return db, b, id, status, events
  end

  local function blocked_events(events)
    local n = 0
    for _, ev in ipairs(events) do if ev.type == "card_blocked" then n = n + 1 end end
    return n
  end

  local function journal_ends(db)
    return db:row("SELECT count(*) AS n FROM events WHERE kind = 'turn_end' AND card_id = 'E-1'").n
  end

  it("blocks the card with its card_blocked event when the run goes on", function()
    local db, b, _, status, events = one_step_turn(nil)
    assert.equal("blocked", b:get("E-1").status)
    assert.equal(1, blocked_events(events))
    assert.is_truthy(status)
    db:close()
  end)

  it("records no block while its run stops for a full disk, and the resumed run blocks the card with its event", function()
    -- the stop comes from inside the turn (a tool's write meeting a full disk, Run:git_broken):
    -- the card is left for resume, as every card of a stopped run is, not blocked in the
    -- store without the card_blocked event the run never emitted
    local db, b, id, status, events = one_step_turn(function(run)
      run:git_broken("E-1", "git: No space left on device", "ENOSPC")
    end)
    assert.equal("failed", status)
    assert.equal("in_progress", b:get("E-1").status)
    assert.equal(0, blocked_events(events))
    assert.equal(0, journal_ends(db))
    -- the resumed run takes up the open turn, whose next step is still over the budget
    local e2, events2 = F.engine(db, b, { config = { budgets = { steps_per_turn = 1 } } })
    e2:execute(id)
    assert.equal("blocked", b:get("E-1").status)
    assert.equal(1, blocked_events(events2))
    assert.equal(1, journal_ends(db))
    db:close()
  end)

  it("records no block while its run stops for a signal", function()
    local db, b, _, status, events = one_step_turn(function(run) run:stop() end)
    assert.equal("interrupted", status)
    assert.equal("in_progress", b:get("E-1").status)
    assert.equal(0, blocked_events(events))
    assert.equal(0, journal_ends(db))
    db:close()
  end)

  it("records no block when the turn's own commit meets a full disk", function()
    local gitwork = require "orket.engine.gitwork"
    local commit = gitwork.commit
    finally(function() gitwork.commit = commit end)
    function gitwork.commit() return nil, "git: No space left on device", "ENOSPC" end
    local db, b, _, status, events = one_step_turn(nil)
    assert.equal("failed", status)
    assert.equal("in_progress", b:get("E-1").status)
    assert.equal(0, blocked_events(events))
    assert.equal(0, journal_ends(db))
    db:close()
  end)

  it("emits the card_blocked event of a block recorded before the run stopped", function()
    -- the turn's end (its block) committed, then the run stopped before finish_turn: the
    -- store holds the block, so the run says so
    local run_turn = turn.run
    finally(function() turn.run = run_turn end)
    function turn.run(run, job)
      local out = run_turn(run, job)
      run:git_broken(job.card_id, "git: No space left on device", "ENOSPC")
      return out
    end
    local db, b, _, status, events = one_step_turn(nil)
    assert.equal("failed", status)
    assert.equal("blocked", b:get("E-1").status)
    assert.equal(1, blocked_events(events))
    assert.equal(1, journal_ends(db))
    db:close()
  end)

  it("emits no card_blocked when the end's transaction is rolled back by a broken journal", function()
    -- no step allowed: the turn ends (budget) in finish_turn's own transaction, which the
    -- journal fails to commit; the block went with it, so no card_blocked is said
    local Run = require("orket.engine.run").Run
    local end_records = Run.end_turn_records
    finally(function() Run.end_turn_records = end_records end)
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local failing = false
    function Run:end_turn_records(job, out)
      end_records(self, job, out)
      failing = true
      error("disk I/O error", 0)
    end
    local journal_error = db.journal_error
    db.journal_error = function(self, ...)
      if failing then return "disk I/O error", "EIO" end
      return journal_error(self, ...)
    end
    local e, events = F.engine(db, b, { config = { budgets = { steps_per_turn = 0 } } })
    local id = assert(e:start("E"))
    assert.equal("failed", (e:execute(id)))
    assert.equal(0, blocked_events(events))
    assert.equal("ready", b:get("E-1").status)
    for _, ev in ipairs(events) do
      if ev.type == "turn_end" then assert.equal("journal_error", ev.outcome) end
    end
    assert.equal(0, journal_ends(db))
    db:close()
  end)

  it("leaves open a turn whose end, in finish_turn's own transaction, meets the run's stop", function()
    -- no step allowed: the turn would end blocked (budget) before its first step, but the
    -- run stopped as it began; nothing of the turn is written nor said (no turn_end event)
    local run_turn = turn.run
    finally(function() turn.run = run_turn end)
    function turn.run(run, job)
      run:stop()
      return run_turn(run, job)
    end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local e, events = F.engine(db, b, { config = { budgets = { steps_per_turn = 0 } } })
    local id = assert(e:start("E"))
    assert.equal("interrupted", (e:execute(id)))
    assert.equal("ready", b:get("E-1").status)
    assert.equal(0, blocked_events(events))
    for _, ev in ipairs(events) do assert.are_not.equal("turn_end", ev.type) end
    assert.equal(0, db:row("SELECT count(*) AS n FROM events WHERE kind IN ('turn_begin', 'turn_end') AND card_id = 'E-1'").n)
    db:close()
  end)

  -- E-1's first run stops as the turn that would block it ends (outcome.stop(out) says
  -- which); the resumed run blocks it. -> db, board, the first run's and the resume's events
  local function stopped_then_resumed(summary, config, llm_of, stop)
    local run_turn = turn.run
    finally(function() turn.run = run_turn end)
    function turn.run(run, job)
      local out = run_turn(run, job)
      if stop(job, out) then run:stop() end
      return out
    end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = summary } })
    local e, events = F.engine(db, b, { llm = llm_of(b), config = config })
    local id = assert(e:start("E"))
    assert.equal("interrupted", (e:execute(id)))
    turn.run = run_turn
    local e2, events2 = F.engine(db, b, { llm = llm_of(b), config = config })
    e2:execute(id)
    return db, b, events, events2
  end

  local function journaled(db, kind)
    return db:row("SELECT count(*) AS n FROM events WHERE kind = ? AND card_id = 'E-1'", kind).n
  end

  it("writes a money budget's end left open by a stop once, on resume", function()
    -- the first call's estimate (its 4096 tokens of output allowed) passes the budget
    local config = { budgets = { cost_per_card = "0.01 USD" }, models = { default = "ollama:m", prices = {
      ["ollama:m"] = { input = "1", cached_input = "1", output = "10", currency = "USD" } } } }
    local db, b, events, events2 = stopped_then_resumed("design", config, F.llm,
      function(_, out) return out.money ~= nil end)
    assert.equal(0, blocked_events(events))
    assert.equal(1, blocked_events(events2))
    assert.equal("waiting_for_developer", b:get("E-1").status)
    assert.equal("budget", b:get("E-1").wait_reason)
    assert.equal(1, journaled(db, "budget_reached"))
    assert.equal(1, journal_ends(db))
    db:close()
  end)

  it("writes an escalation's end left open by a stop once, its escalated mark with it, on resume", function()
    -- rejected once, E-1 goes to the architect, whose model fails: the card would be blocked
    local function llm_of(b)
      local client = F.llm(b)
      local chat = client.chat
      function client:chat(req)
        if req.meta.phase == "escalation" then return nil, "model refused the request", "bad_request" end
        return chat(self, req)
      end
      return client
    end
    local config = { review = { escalate_after = 1, requirements_review_after = 2 } }
    local db, b, events, events2 = stopped_then_resumed("design [reject]", config, llm_of,
      function(job, out) return job.phase == "escalation" and out.ended == "model_error" end)
    assert.equal(0, blocked_events(events))
    assert.equal(1, blocked_events(events2))
    assert.equal("blocked", b:get("E-1").status)
    assert.equal(1, journaled(db, "escalated"))
    db:close()
  end)
end)

-- An import may add a dependency to a card that is still `ready` on the board while its
-- turn's first model call is in flight (the claim is written with the first step). The
-- state machine refuses the claim then: the turn must end without running the reply's calls
-- or blocking the card (system), its call charged, and the card wait for its dependency.
describe("a turn whose card may no longer start when its reply comes", function()
  after_each(H.cleanup)

  it("runs none of the reply's calls, charges the call, blocks nothing, and the card waits", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", {
      { id = "E-1", summary = "design", priority = 3 }, { id = "E-2", summary = "build" } })
    local client = F.llm(b, {})
    local chat, added = client.chat, false
    function client:chat(req)
      local m = req.meta
      if m.card == "E-1" and not added then
        -- as `orket import` adding "depends_on": ["E-2"] to E-1 does, from another process
        added = true
        assert(db:tx(function()
          require("orket.store.imports").add_dependency(db, "E-1", "E-2", 1)
          -- another process's write empties the board's cache; this connection's must say so
          assert(db:run("UPDATE cards SET priority = priority WHERE id = 'E-1'"))
          db:event { kind = "import", card = "E-1", data = { source = "epics/e.json", changed = { "depends_on" } } }
          return true
        end))
      end
      return chat(self, req)
    end
    local e, events = F.engine(db, b, { llm = client, concurrency = 1 })
    local id = assert(e:start("E"))
    assert.equal("done", (e:execute(id)))
    for _, ev in ipairs(events) do assert.are_not.equal("card_blocked", ev.type) end
    local first
    for _, ev in ipairs(events) do
      if ev.type == "turn_end" and ev.card == "E-1" and not first then first = ev end
    end
    assert.equal("not_started", first.outcome)
    assert.equal("ready", first.status)
    -- E-2 was worked (and done) before E-1's next turn
    local order = {}
    for _, ev in ipairs(events) do
      if ev.type == "turn_end" and ev.outcome == "handed_in" then order[#order + 1] = ev.card .. ":" .. ev.status end
    end
    assert.same({ "E-2:code_review", "E-2:done", "E-1:code_review", "E-1:done" }, order)
    -- the call of the turn that did not start is journaled and counted
    local r = db:row("SELECT count(*) AS n, sum(prompt_tokens + completion_tokens) AS t FROM turns "
      .. "WHERE card_id = 'E-1' AND turn = 1")
    assert.equal(1, tonumber(r.n))
    assert.equal(110, tonumber(r.t))
    -- none of its tool calls ran: E-1's one comment is its second turn's
    local bodies = {}
    for _, c in ipairs(b:comments("E-1")) do bodies[#bodies + 1] = c.body end
    assert.same({ "work on E-1 turn 2" }, bodies)
    local ended = db:row("SELECT data FROM events WHERE kind = 'turn_end' AND card_id = 'E-1' ORDER BY id LIMIT 1")
    local d = require("cjson").decode(ended.data)
    assert.equal("not_started", d.outcome)
    assert.matches("the card could not start: .*E%-1: the issue cannot start while a card it depends on is not done", d.detail)
    assert.matches("the reply's 2 tool calls were not run", d.detail, 1, true)
    assert.is_nil(d.detail:find(".lua:", 1, true))
    db:close()
  end)

  it("says a turn's own failure on the card without the place in Orket's source", function()
    local run_turn = turn.run
    finally(function() turn.run = run_turn end)
    function turn.run()
      error(package.orket_home .. "/lua/orket/engine/turn.lua:695: board: E-1: it broke", 0)
    end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local e = F.engine(db, b)
    local id = assert(e:start("E"))
    e:execute(id)
    assert.equal("system", b:get("E-1").wait_reason)
    local bodies = {}
    for _, c in ipairs(b:comments("E-1")) do bodies[#bodies + 1] = c.body end
    assert.same({ "The turn failed: board: E-1: it broke" }, bodies)
    db:close()
  end)
end)

-- A project's process tool that takes its program from another argument than argv (or
-- makes one up): the gate's program check reads argv, so any program ran unasked
describe("a project's process tool's steps", function()
  it("run only the program the gate judged (args.argv[1]) or one verify.commands lists", function()
    local proctool = require "orket.engine.proctool"
    local rt = require "orket.c.runtime"
    local run = { settings = { verify = { commands = { "make" } } } }
    local mine = { name = "probe", effect = "process", file = "/p/tools/probe.lua" }
    local steps = { steps = { { command = { "sh", "-c", "id" } } } }
    assert.equal('steps[1] runs "sh", which the gate did not judge (it reads args.argv) and verify.commands does not '
      .. "list: a project's process tool runs only programs the project allows",
      proctool.unjudged(run, mine, { program = "sh" }, steps))
    assert.is_nil(proctool.unjudged(run, mine, { argv = { "sh" } }, steps))
    assert.is_nil(proctool.unjudged(run, mine, {}, { steps = { { command = { "make", "test" } } } }))
    -- a second step's program is held to it too
    assert.matches("^steps%[2%] runs \"rm\"", proctool.unjudged(run, mine, { argv = { "sh" } },
      { steps = { { command = { "sh" } }, { command = { "rm", "-rf", "x" } } } }))
    -- Orket's own (run_tests runs the project's own checks) are not held to it
    local own = { name = "run_tests", effect = "process", file = rt.home() .. "/tools/run_tests.lua" }
    assert.is_nil(proctool.unjudged(run, own, {}, steps))
  end)
end)

describe("a turn's step budget", function()
  after_each(H.cleanup)

  -- the budget's last step hands the card in: it was blocked all the same ("raise the budget"),
  -- the work done and committed, the run failed
  it("allows its last step: a card handed in on it goes on to review", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "design" } })
    local client = F.llm(b, {}) -- writes on step 1, hands in on step 2
    local e, events = F.engine(db, b, { llm = client, config = { budgets = { steps_per_turn = 2 } } })
    local id = assert(e:start("E"))
    assert.equal("done", (e:execute(id)))
    assert.equal("done", b:get("E-1").status)
    for _, ev in ipairs(events) do assert.is_false(ev.type == "card_blocked", tostring(ev.detail)) end
    db:close()
  end)
end)
