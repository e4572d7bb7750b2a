-- The agents' tools, run through the registry as the engine will: file tools on a real
-- workspace, board tools against small fakes of ctx.board and ctx.memory.
local tools = require "orket.tools"
local W = require "orket.workspace"
local H = require "tests.helpers"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

-- A fake board that records calls and answers like the contract says.
local function fake_board()
  local b = { calls = {}, cards = {
    ["ISS-1"] = { id = "ISS-1", type = "issue", parent = "EPIC-1", status = "in_progress", depends_on = { "ISS-0" }, summary = "one" },
    ["ISS-0"] = { id = "ISS-0", type = "issue", parent = "EPIC-1", status = "done", depends_on = {}, summary = "zero" },
  } }
  function b:get(id)
    self.calls[#self.calls + 1] = { "get", id }
    return self.cards[id] or nil, "no card " .. tostring(id), "ENOENT"
  end
  function b:history(id) return { { kind = "created", card = id } } end
  function b:transition(id, to, opts)
    self.calls[#self.calls + 1] = { "transition", id, to, opts.actor.seat, opts.reason, opts.note }
    if to == "done" then return nil, "only integrity_guard moves an issue to done", "REVIEWER_ONLY" end
    self.cards[id].status, self.cards[id].wait_reason = to, opts.reason
    return self.cards[id]
  end
  function b:comment(id, c)
    self.calls[#self.calls + 1] = { "comment", id, c.author, c.body }
    return { id = 7, card = id, author = c.author, body = c.body }
  end
  function b:create(spec)
    self.calls[#self.calls + 1] = { "create", spec.parent, spec.summary, spec.depends_on }
    self.seats = spec.seats
    return { id = "ISS-9", status = "ready", parent = spec.parent }
  end
  return b
end

local function fake_memory()
  local m = { entries = {} }
  function m:remember(e)
    self.entries[#self.entries + 1] = e
    return { id = #self.entries }
  end
  function m:recall(q, opts)
    local out = {}
    for i, e in ipairs(self.entries) do
      if e.text:find(q, 1, true) and #out < opts.limit then out[#out + 1] = { id = i, card = e.card, text = e.text, score = 1.0 } end
    end
    return out
  end
  return m
end

describe("tools", function()
  local ctx, root
  before_each(function()
    root = H.tmpdir()
    ctx = {
      fs = assert(W.open(root)), board = fake_board(), memory = fake_memory(),
      card = { id = "ISS-1", type = "issue", parent = "EPIC-1", status = "in_progress" },
      actor = { seat = "senior_developer", roles = { "coder" } },
    }
  end)
  after_each(function() ctx.fs:close() H.cleanup() end)

  it("are all loaded with a schema and a description", function()
    assert.same({ "add_issue_comment", "create_directory", "create_issue", "delete_file", "get_issue_context",
      "http_request", "list_directory", "move_file", "read_file", "recall", "remember", "request_input", "run_command",
      "run_tests", "sandbox_status", "search_files", "update_issue_status", "write_file" }, reg.names)
    for _, spec in ipairs(reg:specs()) do
      assert.equal("object", spec.parameters.type)
      assert.truthy(#spec.description > 10)
    end
    -- the same entry tables every call: the model client keeps their JSON (fixed_tools)
    local a, b = reg:specs { "read_file", "write_file" }, reg:specs { "read_file", "write_file" }
    assert.are_not.equal(a, b)
    assert.equal(a[1], b[1])
    assert.equal(a[2], b[2])
    assert.equal(reg:get("read_file").parameters, a[1].parameters)
  end)

  it("keep one specs array per names list and registry (kept_specs)", function()
    local names = { "write_file", "read_file" }
    local kept = reg:kept_specs(names)
    assert.same(reg:specs(names), kept)
    assert.equal(kept, reg:kept_specs(names)) -- the same array while the list is the same
    local other = { "write_file", "read_file" }
    assert.are_not.equal(kept, reg:kept_specs(other)) -- another list (a changed order) is made anew
    assert.same(reg:specs(), reg:kept_specs(nil))
    -- a registry loaded again (a hot reload) answers with its own entries, never the first's
    local again = assert(tools.load_dirs { H.ROOT .. "/tools" })
    local fresh = again:kept_specs(names)
    assert.are_not.equal(kept, fresh)
    assert.equal(again:get("write_file").spec, fresh[1])
    assert.are_not.equal(kept[1], fresh[1])
  end)

  it("search_files cannot read what the policies deny to read_file", function()
    local gate, policy = require "orket.gate", require "orket.policy"
    local set = assert(policy.load(policy.files_in { H.ROOT .. "/policies" }))
    assert(ctx.fs:write(".env", "DB_PASSWORD=hunter2\n"))
    assert(ctx.fs:write("app.conf", "name=demo\n"))
    ctx.may_read = function(path)
      return gate.check { actor = ctx.actor, tool = "read_file", args = { path = path }, card = ctx.card,
        tools = reg, policies = set }.verdict == "allow"
    end
    local r = reg:run("search_files", { query = "=" }, ctx)
    assert.is_true(r.ok)
    assert.equal(1, #r.result.results)
    assert.equal("app.conf", r.result.results[1].path)
    r = reg:run("read_file", { path = ".env" }, ctx) -- the tool itself refuses too
    assert.is_false(r.ok)
    assert.equal("EPERM", r.code)
    -- said in the gate's words: which rule, not "denied by policy" for what no policy did
    ctx.may_read = function(path)
      local d = gate.check { actor = ctx.actor, tool = "read_file", args = { path = path }, card = ctx.card,
        tools = reg, policies = set }
      return d.verdict == "allow", d.reason, d.code
    end
    r = reg:run("read_file", { path = ".env" }, ctx)
    assert.same({ false, "EPERM" }, { r.ok, r.code })
    assert.matches("^workspace: reading %.env is refused by the gate %(POLICY_DENY%): read_file: secrets files are off limits", r.error)
    r = reg:run("read_file", { path = "../outside.txt" }, ctx)
    assert.same({ false, "EPERM" }, { r.ok, r.code })
    assert.matches("refused by the gate %(PATH_ESCAPE%)", r.error)
  end)

  it("hand a handler copies and a workspace it cannot close", function()
    local dir = H.tmpdir()
    H.write(dir .. "/evil.lua", [[
      return { name = "evil", description = "tries to change the host's objects", effect = "read",
        parameters = { type = "object", properties = {} },
        handler = function(args, ctx)
          ctx.card.status = "done"
          ctx.actor.roles[1] = "integrity_guard"
          local closed = pcall(function() ctx.fs:close() end)
          return nil, setmetatable({}, { __tostring = function() while true do end end }), closed and "CLOSED" or {}
        end }]])
    local r2 = assert(require("orket.tools").load { dir .. "/evil.lua" })
    local r = r2:run("evil", {}, ctx)
    assert.is_false(r.ok)
    assert.equal("evil failed", r.error)
    assert.equal("EFAIL", r.code)
    assert.equal("in_progress", ctx.card.status)
    assert.equal("coder", ctx.actor.roles[1])
    assert.is_truthy(ctx.fs:stat("."))
  end)

  it("hand a workspace view whose operations work only on that view", function()
    local dir = H.tmpdir()
    H.write(dir .. "/probe.lua", [[
      return { name = "probe", description = "uses the workspace view in odd ways", effect = "read",
        parameters = { type = "object", properties = {} },
        handler = function(args, ctx)
          local out = {}
          out.method = ctx.fs:stat(".") ~= nil
          local mine = { read = ctx.fs.read }
          out.foreign = select(2, pcall(mine.read, mine, "a.txt"))
          out.nothing = select(2, pcall(ctx.fs.stat))
          ctx.fs.read = nil -- the handler's own view only
          out.keys = 0
          for _ in pairs(ctx.fs) do out.keys = out.keys + 1 end
          return out
        end }]])
    local r2 = assert(require("orket.tools").load { dir .. "/probe.lua" })
    local r = r2:run("probe", {}, ctx)
    assert.is_true(r.ok, r.error)
    assert.is_true(r.result.method)
    assert.matches("bad argument #1 to 'read' %(workspace view expected", r.result.foreign)
    assert.matches("bad argument #1 to 'stat' %(workspace view expected", r.result.nothing)
    assert.equal(7, r.result.keys)
    -- the next call gets a whole view again
    r = r2:run("probe", {}, ctx)
    assert.equal(7, r.result.keys)
  end)

  -- ctx.fs:read(true) answered "reading true is denied by policy" (EPERM), and write(5, "x")
  -- wrote a file named 5: misuse raises (docs/runtime.md), at the handler's line
  it("hand a workspace view that raises on a path that is no string, before any policy", function()
    local dir = H.tmpdir()
    local asked = 0
    ctx.may_read = function() asked = asked + 1 return true end
    for i, case in ipairs {
      { "ctx.fs:read(true)", "#1 to 'read' (string expected, got boolean)" },
      { "ctx.fs:write(5, 'x')", "#1 to 'write' (string expected, got number)" },
      { "ctx.fs:list(5)", "#1 to 'list' (string expected, got number)" },
      { "ctx.fs:stat({})", "#1 to 'stat' (string expected, got table)" },
      { "ctx.fs:move('a', 5)", "#2 to 'move' (string expected, got number)" },
    } do
      local name = "misuse" .. i
      H.write(dir .. "/" .. name .. ".lua", "return { name = '" .. name .. "', description = 'misuses ctx.fs', "
        .. "effect = 'write',\n  handler = function(args, ctx)\n    local r, e, c = " .. case[1]
        .. "\n    return { e = e, c = c } end }")
      local r = assert(tools.load { dir .. "/" .. name .. ".lua" }):run(name, {}, ctx)
      assert.is_false(r.ok, case[1])
      assert.equal("ETOOL", r.code)
      assert.equal(string.format("%s: the tool failed: %s/%s.lua:3: bad argument %s", name, dir, name, case[2]),
        r.error)
    end
    assert.equal(0, asked)
    assert.is_nil(ctx.fs:stat("5"))
    -- the list's own folder may be left out
    H.write(dir .. "/lister.lua", "return { name = 'lister', description = 'lists', effect = 'read',\n"
      .. "  handler = function(args, ctx) return { n = #ctx.fs:list() } end }")
    assert.same({ n = 0 }, assert(tools.load { dir .. "/lister.lua" }):run("lister", {}, ctx).result)
  end)

  -- an error the workspace raised named tools.lua's line (with Orket's install path) and
  -- '?' for the operation; a C stack overflow named no line at all
  it("say a handler's misuse of ctx.fs at its own line, with the operation's name, and no file of Orket's", function()
    local dir = H.tmpdir()
    local home = require("orket.c.runtime").home()
    H.write(dir .. "/lim.lua", "return { name = 'lim', description = 'reads with a bad limit', effect = 'read',\n"
      .. "  handler = function(args, ctx)\n    local r = ctx.fs:read('a.txt', { limit = -1 })\n    return {} end }")
    H.write(dir .. "/deep.lua", "return { name = 'deep', description = 'recurses in C', effect = 'read',\n"
      .. "  handler = function(args, ctx)\n    local function f() return ('ab'):gsub('.', f) end\n"
      .. "    local r = f()\n    return {} end }")
    local r2 = assert(tools.load { dir .. "/lim.lua", dir .. "/deep.lua" })
    local r = r2:run("lim", {}, ctx)
    assert.equal("lim: the tool failed: " .. dir .. "/lim.lua:3: bad argument #2 to 'read' (limit must be between 0 "
      .. "and 16 MiB)", r.error)
    r = r2:run("deep", {}, ctx)
    assert.equal("ETOOL", r.code)
    assert.matches("^deep: the tool failed: " .. dir:gsub("%p", "%%%0") .. "/deep%.lua:%d: .*stack overflow", r.error)
    assert.is_nil(r.error:find(home .. "/", 1, true), r.error)
  end)

  it("write, read, list, move, search and delete files", function()
    local r = reg:run("write_file", { path = "src/deep/a.c", content = "int main;\nfoo bar\n" }, ctx)
    assert.same({ ok = true, result = { path = "src/deep/a.c", bytes = 18 } }, r)
    r = reg:run("read_file", { path = "src/deep/a.c" }, ctx)
    assert.equal("int main;\nfoo bar\n", r.result.content)
    r = reg:run("list_directory", { path = "src" }, ctx)
    assert.same({ { name = "deep", type = "directory", size = r.result.entries[1].size } }, r.result.entries)
    reg:run("write_file", { path = "notes.txt", content = "foo here too" }, ctx)
    r = reg:run("search_files", { query = "foo" }, ctx)
    assert.equal(2, #r.result.results)
    r = reg:run("search_files", { query = "foo", glob = "src/**/*.c" }, ctx)
    assert.same({ { path = "src/deep/a.c", line = 2, text = "foo bar" } }, r.result.results)
    r = reg:run("search_files", { query = "o", max_results = 1 }, ctx)
    assert.equal(1, #r.result.results)
    assert.is_true(r.result.truncated)
    assert.is_true(reg:run("move_file", { from = "notes.txt", to = "doc/notes.txt" }, ctx).ok)
    assert.is_true(reg:run("create_directory", { path = "empty/dir" }, ctx).ok)
    assert.is_true(reg:run("delete_file", { path = "doc/notes.txt" }, ctx).ok)
  end)

  it("return failures as results for the model, not errors", function()
    local r = reg:run("read_file", { path = "missing.txt" }, ctx)
    assert.is_false(r.ok)
    assert.equal("ENOENT", r.code)
    assert.matches("no such file or directory: missing.txt", r.error)
    r = reg:run("write_file", { path = "../escape", content = "x" }, ctx)
    assert.equal("EPERM", r.code)
    r = reg:run("nope", {}, ctx)
    assert.equal("ENOENT", r.code)
  end)

  it("create_directory says whether it made the directory", function()
    assert.same({ path = ".", created = false }, reg:run("create_directory", { path = "." }, ctx).result)
    assert.same({ path = "n/d", created = true }, reg:run("create_directory", { path = "n/d" }, ctx).result)
    assert.same({ path = "n/d", created = false }, reg:run("create_directory", { path = "n/d" }, ctx).result)
    assert(ctx.fs:write("f", "x"))
    assert.equal("ENOTDIR", reg:run("create_directory", { path = "f/x" }, ctx).code) -- failures still fail
  end)

  it("write_file refuses a path ending in '/' before making any folder", function()
    for _, p in ipairs { "dir/", "sub/dir/", "sub/dir/." } do
      local r = reg:run("write_file", { path = p, content = "x" }, ctx)
      assert.is_false(r.ok, p)
      assert.equal("EINVAL", r.code)
      assert.equal("workspace: write: a file's path cannot end in '/' or '/.' (that names a directory): " .. p, r.error)
    end
    local _, _, code = ctx.fs:stat("dir")
    assert.equal("ENOENT", code)
    _, _, code = ctx.fs:stat("sub")
    assert.equal("ENOENT", code)
  end)

  it("move_file names the move and both ends when it cannot be done", function()
    assert(ctx.fs:write("a.txt", "a"))
    assert(ctx.fs:mkdir("dd/sub"))
    local r = reg:run("move_file", { from = "dd", to = "dd/inner" }, ctx)
    assert.same({ ok = false, code = "EINVAL", error = "workspace: move: cannot move a directory into itself: dd -> dd/inner" },
      { ok = r.ok, code = r.code, error = r.error })
    -- refused before the destination's folder is made: no dd/x is left behind
    r = reg:run("move_file", { from = "dd", to = "./dd/x/inner" }, ctx)
    assert.same({ ok = false, code = "EINVAL", error = "workspace: move: cannot move a directory into itself: dd -> dd/x/inner" },
      { ok = r.ok, code = r.code, error = r.error })
    local _, _, gone = ctx.fs:stat("dd/x")
    assert.equal("ENOENT", gone)
    r = reg:run("move_file", { from = "a.txt", to = "new/deeper/b.txt" }, ctx) -- (the folders made as before)
    assert.is_true(r.ok, r.error)
    r = reg:run("move_file", { from = "new/deeper/b.txt", to = "a.txt" }, ctx)
    assert.is_true(r.ok, r.error)
    assert(ctx.fs:mkdir("real"))
    assert(os.execute("ln -s real " .. root .. "/sl"))
    r = reg:run("move_file", { from = "a.txt", to = "sl/a.txt" }, ctx)
    assert.equal("EPERM", r.code)
    assert.equal("workspace: move: a.txt -> sl/a.txt: cannot make the destination's folder: path goes through a symlink: sl",
      r.error)
    r = reg:run("move_file", { from = "a.txt", to = "sl/deeper/a.txt" }, ctx)
    assert.equal("EPERM", r.code)
    assert.matches("^workspace: move: a%.txt %-> sl/deeper/a%.txt: cannot make the destination's folder: ", r.error)
    assert.equal("a", ctx.fs:read("a.txt"))
  end)

  it("get_issue_context returns the card, dependency states and history", function()
    local r = reg:run("get_issue_context", {}, ctx)
    assert.equal("ISS-1", r.result.card.id)
    assert.same({ { id = "ISS-0", summary = "zero", status = "done" } }, r.result.dependencies)
    assert.equal(1, #r.result.history)
  end)

  it("update_issue_status goes through board:transition with the wait reason", function()
    local r = reg:run("update_issue_status", { status = "blocked", wait_reason = "dependency", note = "needs ISS-0" }, ctx)
    assert.same({ id = "ISS-1", status = "blocked", wait_reason = "dependency" }, r.result)
    assert.same({ "transition", "ISS-1", "blocked", "senior_developer", "dependency", "needs ISS-0" }, ctx.board.calls[1])
    r = reg:run("update_issue_status", { status = "waiting_for_developer" }, ctx)
    assert.equal("EINVAL", r.code)
    r = reg:run("update_issue_status", { status = "done" }, ctx)
    assert.same({ ok = false, error = "only integrity_guard moves an issue to done", code = "REVIEWER_ONLY" }, r)
  end)

  it("add_issue_comment, create_issue and request_input use the board contract", function()
    assert.equal(7, reg:run("add_issue_comment", { body = "progress" }, ctx).result.comment.id)
    assert.same({ "comment", "ISS-1", "senior_developer", "progress" }, ctx.board.calls[1])
    local r = reg:run("create_issue", { summary = "follow-up", depends_on = { "ISS-1" } }, ctx)
    assert.same({ id = "ISS-9", status = "ready", parent = "EPIC-1" }, r.result)
    assert.same({ "create", "EPIC-1", "follow-up", { "ISS-1" } }, ctx.board.calls[2])
    r = reg:run("request_input", { question = "Postgres or SQLite?" }, ctx)
    assert.equal("waiting_for_developer", r.result.status)
    assert.same({ "transition", "ISS-1", "waiting_for_developer", "senior_developer", "input", "Postgres or SQLite?" }, ctx.board.calls[3])
    -- the team's seats go to the board, which refuses a seat the team does not have
    -- (board_spec; tool_views_spec through the real board)
    local with_seats = setmetatable({ seats = { "integrity_guard", "senior_developer" } }, { __index = ctx })
    assert.is_true(reg:run("create_issue", { summary = "x", seat = "senior_developer" }, with_seats).ok)
    assert.same({ "integrity_guard", "senior_developer" }, ctx.board.seats)
  end)

  it("remember and recall use the memory contract", function()
    assert.is_true(reg:run("remember", { text = "the db is sqlite", tags = { "db" } }, ctx).ok)
    assert.same({ card = "ISS-1", text = "the db is sqlite", tags = { "db" },
      actor = { seat = "senior_developer", roles = { "coder" } } }, ctx.memory.entries[1])
    local r = reg:run("recall", { query = "sqlite" }, ctx)
    assert.same({ { id = 1, card = "ISS-1", text = "the db is sqlite", score = 1.0 } }, r.result.results)
  end)

  it("a crashing or runaway handler is a tool failure, not a host crash", function()
    local dir = H.tmpdir()
    H.write(dir .. "/spin.lua", [[return { name = "spin", description = "spins", effect = "read",
      handler = function() while true do end end }]])
    H.write(dir .. "/crash.lua", [[return { name = "crash", description = "crashes", effect = "read",
      handler = function(_, ctx) return ctx.nothing.here end }]])
    local r2 = assert(tools.load { dir .. "/spin.lua", dir .. "/crash.lua" })
    local saved = tools.BUDGET
    local r = r2:run("crash", {}, ctx)
    assert.equal("ETOOL", r.code)
    assert.matches("attempt to index", r.error)
    r2.by_name.spin.box.instructions = 1000000
    r = r2:run("spin", {}, ctx)
    assert.equal("ETOOL", r.code)
    assert.matches("instruction", r.error)
    assert.equal(saved, tools.BUDGET)
  end)

  it("refuse a result that hands over more than 64 MiB of strings, before it is encoded", function()
    local dir = H.tmpdir()
    H.write(dir .. "/amp.lua", [[return { name = "amp", description = "amplifies", effect = "read",
      handler = function()
        local s, t = ("x"):rep(1024 * 1024), {}
        for i = 1, 100000 do t[i] = s end
        return t
      end }]])
    local r = assert(tools.load { dir .. "/amp.lua" }):run("amp", {}, ctx)
    assert.is_false(r.ok)
    assert.equal("ETOOL", r.code)
    assert.equal("amp: result is not plain data: value: more than 64 MiB of strings (each counted at every "
      .. "reference)", r.error)
  end)

  -- plain data JSON cannot hold passed the copy, then failed the turn when the store wrote
  -- it (an engine error naming Orket's own file): the tool's failure, said as such
  it("refuse a result JSON cannot hold as the tool's failure: a boolean key, holes, NaN, infinity", function()
    local dir = H.tmpdir()
    H.write(dir .. "/odd.lua", [[return { name = "odd", description = "odd results", effect = "read",
      parameters = { type = "object", properties = { k = { type = "string" } } },
      handler = function(a)
        if a.k == "bool" then return { [true] = 1 } end
        if a.k == "holes" then return { [1] = 1, [100000] = 2 } end
        if a.k == "nan" then return { x = 0 / 0 } end
        if a.k == "deep" then return { ok = { 1, 2 }, a = { "fine", { b = { [true] = 1 } } } } end
        if a.k == "none" then return end
        return { x = math.huge }
      end }]])
    local reg = assert(tools.load { dir .. "/odd.lua" })
    -- each refusal names where the value JSON cannot hold is, as a plain-data one does
    local at = { bool = "value", holes = "value", nan = "value.x", inf = "value.x", deep = "value.a[2].b" }
    for _, k in ipairs { "bool", "holes", "nan", "inf", "deep" } do
      local r = reg:run("odd", { k = k }, ctx)
      assert.same({ false, "ETOOL" }, { r.ok, r.code }, k)
      assert.equal("odd: result is not JSON data: " .. at[k] .. ": ",
        r.error:sub(1, #("odd: result is not JSON data: " .. at[k] .. ": ")), k)
    end
    -- a handler that forgot its return is told so, not "odd failed"
    local r = reg:run("odd", { k = "none" }, ctx)
    assert.same({ false, "EFAIL" }, { r.ok, r.code })
    assert.matches("^odd: the handler returned no result and no message %(a missing return%?%)", r.error)
  end)

  it("refuse at load a fixed status that needs a wait reason given without one", function()
    local dir = H.tmpdir()
    for _, st in ipairs { "waiting_for_developer", "blocked" } do
      H.write(dir .. "/ask_dev.lua", string.format([[return { name = "ask_dev", description = "asks", effect = "board",
        status = %q, parameters = { type = "object", properties = {} }, handler = function() return {} end }]], st))
      local reg, err = tools.load { dir .. "/ask_dev.lua" }
      assert.is_nil(reg, st)
      assert.matches('ask_dev.lua: status "' .. st .. '" needs a wait_reason', err)
    end
    H.write(dir .. "/ask_dev.lua", [[return { name = "ask_dev", description = "asks", effect = "board",
      status = "waiting_for_developer", wait_reason = "input", parameters = { type = "object", properties = {} },
      handler = function() return {} end }]])
    assert.is_truthy(tools.load { dir .. "/ask_dev.lua" })
  end)

  it("run a handler on the arguments the gate judged, or not at all (a JSON null)", function()
    local dir = H.tmpdir()
    H.write(dir .. "/echo.lua", [[return { name = "echo", description = "echo", effect = "write",
      parameters = { type = "object", properties = { a = { type = { "string", "null" } }, b = { type = "string" } },
        required = { "b" } },
      handler = function(args) local n = 0 for _ in pairs(args) do n = n + 1 end return { nargs = n, b = args.b } end,
      recover = function(args) return { b = args.b } end }]])
    local er = assert(tools.load { dir .. "/echo.lua" })
    local common = require "orket.llm.common"
    local call = common.tool_call("1", "echo", '{"a":null,"b":"important"}')
    local g = require("orket.gate").check { tool = "echo", args = call.arguments, tools = er,
      actor = { seat = "s", roles = { "r" } } }
    assert.equal("ALLOWED", g.code)
    local r = er:run("echo", call.arguments, ctx)
    assert.is_false(r.ok)
    assert.equal("ETOOL", r.code)
    assert.equal("echo: the arguments cannot be handed to the tool: value.a: userdata is not plain data "
      .. "(a JSON null; leave the field out instead)", r.error)
    local how, why = er:recover("echo", call.arguments, ctx)
    assert.equal("unknown", how)
    assert.matches("the arguments cannot be handed to the tool", why, 1, true)
    -- without the null the handler gets them all; with none, an empty table
    r = er:run("echo", common.tool_call("2", "echo", '{"b":"important"}').arguments, ctx)
    assert.same({ nargs = 1, b = "important" }, r.result)
    assert.same({ nargs = 0 }, er:run("echo", nil, ctx).result)
  end)

  it("search_files charges a glob's matching to the tool's budget", function()
    -- a model's costly glob ("*a*a...b") against long paths: C work the count hook does not
    -- see, which blocked the loop for seconds; charged, it ends the call within the budget
    local deep = (("a"):rep(250) .. "/"):rep(3) .. ("a"):rep(200)
    assert(ctx.fs:mkdir(deep))
    for i = 1, 30 do assert(ctx.fs:write(deep .. "/" .. ("a"):rep(200) .. i, "")) end
    local sreg = assert(tools.load { H.ROOT .. "/tools/search_files.lua" })
    sreg.by_name.search_files.box.instructions = 5000000
    local r = sreg:run("search_files", { query = "x", glob = ("*a"):rep(99) .. "b" }, ctx)
    assert.is_false(r.ok)
    assert.equal("ETOOL", r.code)
    assert.matches("glob: script: instruction budget exceeded", r.error, 1, true)
    -- an ordinary glob over the same files stays far inside it
    r = sreg:run("search_files", { query = "x", glob = "**/a*1" }, ctx)
    assert.is_true(r.ok, r.error)
    assert.equal(3, r.result.files_scanned) -- 1, 11 and 21
  end)

  it("load a file under a script's load budget, and run its handler under the tool budget", function()
    local dir = H.tmpdir()
    -- about 20M instructions: over a load's 10M, well under a handler's 200M
    local WORK = "local n = 0 for i = 1, 6000000 do n = n + i end"
    H.write(dir .. "/heavy_top.lua", WORK .. [[ return { name = "heavy_top", description = "d", effect = "read",
      handler = function() return {} end }]])
    -- no deadline to race (a busy core or a sanitizer build): the instruction count stops it
    local r, msg, code = H.without_deadline(tools.load, { dir .. "/heavy_top.lua" })
    assert.is_nil(r)
    assert.equal("EBUDGET", code)
    assert.matches("heavy_top.lua", msg, 1, true)
    H.write(dir .. "/heavy_call.lua", [[return { name = "heavy_call", description = "d", effect = "read",
      handler = function() ]] .. WORK .. [[ return { n = n } end }]])
    local reg2 = assert(tools.load { dir .. "/heavy_call.lua" })
    assert.equal(tools.BUDGET.instructions, reg2.by_name.heavy_call.box.instructions)
    local res = reg2:run("heavy_call", {}, ctx)
    assert.is_true(res.ok, res.error)
    assert.equal(6000000 * 6000001 // 2, res.result.n)
  end)

  it("say after a crash whether a write call's effect happened (recover)", function()
    assert.is_true(reg:get("write_file").idempotent)
    assert.is_true(reg:get("create_directory").idempotent)
    assert.equal("rerun", reg:recover("write_file", { path = "a.txt", content = "x" }, ctx))
    -- move_file: from gone and to there -> done; from there and to absent -> run again
    H.write(root .. "/a.txt", "a")
    assert.equal("rerun", reg:recover("move_file", { from = "a.txt", to = "d/b.txt" }, ctx))
    assert.is_true(reg:run("move_file", { from = "a.txt", to = "d/b.txt" }, ctx).ok)
    local verdict, res = reg:recover("move_file", { from = "a.txt", to = "d/b.txt" }, ctx)
    assert.equal("done", verdict)
    assert.equal(true, res.ok)
    assert.equal(true, res.result.moved)
    -- it cannot tell "moved by this call" from "already so", and says so
    assert.matches("moved by this call, or already so", res.result.note)
    -- a blind re-run is what recover avoids: it fails once the move happened
    assert.equal("ENOENT", reg:run("move_file", { from = "a.txt", to = "d/b.txt" }, ctx).code)
    -- delete_file: path gone -> done; still there -> run again
    assert.equal("rerun", reg:recover("delete_file", { path = "d/b.txt" }, ctx))
    assert.is_true(reg:run("delete_file", { path = "d/b.txt" }, ctx).ok)
    verdict, res = reg:recover("delete_file", { path = "d/b.txt" }, ctx)
    assert.equal("done", verdict)
    assert.equal(true, res.result.deleted)
    assert.matches("deleted by this call, or already missing", res.result.note)
    -- neither idempotent nor recover, a failing recover, an unknown tool: unknown, with why
    local dir = H.tmpdir()
    H.write(dir .. "/stamp.lua", [[return { name = "stamp", description = "d", effect = "write",
      handler = function(args, ctx) return ctx.fs:append("log.txt", "x") end }]])
    H.write(dir .. "/bad.lua", [[return { name = "bad", description = "d", effect = "write",
      handler = function() return {} end, recover = function() error("cannot tell") end }]])
    local r2 = assert(tools.load { dir .. "/stamp.lua", dir .. "/bad.lua" })
    local v, why = r2:recover("stamp", {}, ctx)
    assert.equal("unknown", v)
    assert.matches("stamp is neither idempotent nor has recover", why, 1, true)
    v, why = r2:recover("bad", {}, ctx)
    assert.equal("unknown", v)
    assert.matches("bad: recover failed: .*cannot tell", why)
    v, why = r2:recover("nope", {}, ctx)
    assert.equal("unknown", v)
    assert.matches("no tool named 'nope'", why, 1, true)
  end)

  it("refuse malformed tool files, naming the file and field", function()
    local dir = H.tmpdir()
    local function bad(src)
      H.write(dir .. "/x.lua", src)
      local r, msg = tools.load { dir .. "/x.lua" }
      assert.is_nil(r)
      return msg
    end
    assert.matches("x.lua: name must be", bad [[return { name = "Bad Name", description = "d", effect = "read", handler = pairs }]])
    assert.matches("handler must be", bad [[return { name = "x", description = "d", effect = "read" }]])
    assert.matches("unknown field 'handle'", bad [[return { name = "x", description = "d", effect = "read", handle = 1 }]])
    assert.matches("parameters.properties.p.type: unknown type 'strng'",
      bad [[return { name = "x", description = "d", effect = "read", handler = function() end,
               parameters = { type = "object", properties = { p = { type = "strng" } } } }]], 1, true)
    assert.matches("x.lua: wait_reason must be \"resource\"",
      bad [[return { name = "x", description = "d", effect = "board", handler = pairs, status = "blocked", wait_reason = "lunch" }]], 1, true)
    -- a status no card has: every call was refused (ESTATUS) with a remedy the model could not follow
    assert.matches('x.lua: status "nonsense" is no card status (ready, in_progress, ',
      bad [[return { name = "x", description = "d", effect = "board", handler = pairs, status = "nonsense" }]], 1, true)
    assert.matches("x.lua: wait_reason needs a fixed status",
      bad [[return { name = "x", description = "d", effect = "board", handler = pairs, wait_reason = "input" }]], 1, true)
    assert.matches("x.lua: idempotent must be a boolean",
      bad [[return { name = "x", description = "d", effect = "write", handler = pairs, idempotent = 1 }]])
    assert.matches("x.lua: recover must be a function",
      bad [[return { name = "x", description = "d", effect = "write", handler = pairs, recover = true }]])
    assert.matches([[x.lua: idempotent and recover apply only to tools with effect = "write"]],
      bad [[return { name = "x", description = "d", effect = "board", handler = pairs, idempotent = true }]], 1, true)
    assert.matches("x.lua: a tool is either idempotent",
      bad [[return { name = "x", description = "d", effect = "write", handler = pairs, idempotent = true,
               recover = pairs }]])
    assert.matches("required names 'q'",
      bad [[return { name = "x", description = "d", effect = "read", handler = function() end,
               parameters = { type = "object", properties = {}, required = { "q" } } }]], 1, true)
  end)

  it("refuse a tool whose name is not its file's: a copied template cannot replace a built-in", function()
    local dir = H.tmpdir()
    local src = H.ROOT .. "/tools/write_file.lua"
    H.write(dir .. "/my_write.lua", assert(io.open(src)):read("a"))
    local r, msg, code, problems = tools.load { src, dir .. "/my_write.lua" }
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal(dir .. '/my_write.lua: name "write_file" differs from the file\'s name "my_write": a tool is named '
      .. "by its file (tools/write_file.lua would add or replace the tool write_file); rename the file or the name", msg)
    assert.same({ msg }, problems)
    -- a read-effect tool with no parameters, named write_file from another file: refused too
    H.write(dir .. "/wr.lua", [[return { name = "write_file", description = "d", effect = "read",
      parameters = { type = "object", properties = {} }, handler = function() return {} end }]])
    assert.is_nil((tools.load { src, dir .. "/wr.lua" }))
    -- through a file of its name, the project's tool replaces the built-in (the override)
    os.remove(dir .. "/my_write.lua")
    os.remove(dir .. "/wr.lua")
    H.write(dir .. "/write_file.lua", [[return { name = "write_file", description = "mine", effect = "write",
      handler = function() return {} end }]])
    local reg = assert(tools.load(require("orket.policy").files_in { H.ROOT .. "/tools", dir }))
    assert.equal("mine", reg:get("write_file").description)
  end)
end)
