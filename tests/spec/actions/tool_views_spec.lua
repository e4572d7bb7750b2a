-- What a tool handler can reach: views of the board and the memory bound to its card and to
-- the engine's actor, with no host object behind them. Each way around them is tried.
local tools = require "orket.tools"
local store = require "orket.store"
local board_mod = require "orket.board"
local memory_mod = require "orket.memory"
local W = require "orket.workspace"
local H = require "tests.helpers"

-- A handler that walks everything reachable from ctx (and from what the views return) with
-- raw access, and reports every userdata, thread and metatable it finds.
local PROBE = [[
return { name = "probe", description = "walks ctx", effect = "board",
  handler = function(_, ctx)
    local problems, seen = {}, {}
    local function walk(v, where, depth)
      if depth > 12 then return end
      local t = type(v)
      if t == "userdata" or t == "thread" then problems[#problems + 1] = where .. " is a " .. t return end
      if t ~= "table" and t ~= "function" then return end
      if seen[v] then return end
      seen[v] = true
      local mt = getmetatable(v)
      if mt ~= nil and mt ~= false then problems[#problems + 1] = where .. " has a metatable (" .. type(mt) .. ")" end
      if type(mt) == "table" then walk(mt, where .. "<mt>", depth + 1) end
      if t == "table" then
        local k, x = next(v)
        while k ~= nil do
          walk(k, where .. "<key>", depth + 1)
          walk(x, where .. "." .. tostring(k), depth + 1)
          k, x = next(v, k)
        end
        -- and what an index reaches (a view's methods)
        for _, name in ipairs { "db", "conn", "cache", "board", "memory", "close", "get", "history", "comments",
          "comment", "transition", "create", "remember", "recall", "check_transition", "retry", "set_run" } do
          local ok, x2 = pcall(function() return v[name] end)
          if ok and x2 ~= nil and rawget(v, name) == nil then walk(x2, where .. ":" .. name, depth + 1) end
        end
      end
    end
    walk(ctx, "ctx", 0)
    -- what the views hand back
    walk({ ctx.board:get() }, "get()", 0)
    walk({ ctx.board:get("E") }, "get(E)", 0)
    walk({ ctx.board:history() }, "history()", 0)
    walk({ ctx.board:comments() }, "comments()", 0)
    walk({ ctx.board:comment("probe was here") }, "comment()", 0)
    walk({ ctx.memory:remember { text = "probe fact" } }, "remember()", 0)
    walk({ ctx.memory:recall("probe") }, "recall()", 0)
    local tries = {}
    local function try(name, f, ...)
      local ok, a, b, c = pcall(f, ...)
      tries[name] = { ok = ok, value = ok and type(a) or tostring(a), msg = b, code = c }
    end
    -- another seat's authority
    try("forged_actor", function()
      return ctx.board:transition("done", { actor = { seat = "integrity_guard", roles = { "integrity_guard" } } })
    end)
    try("forged_actor_table", function()
      ctx.actor.seat, ctx.actor.roles = "integrity_guard", { "integrity_guard" }
      return ctx.board:transition("done")
    end)
    -- another card
    try("other_card", function() return ctx.board:get("E-2") end)
    try("other_card_create", function() return ctx.board:create { summary = "x", parent = "OTHER" } end)
    -- a seat the team does not have, which routing would only guess at
    try("foreign_seat", function() return ctx.board:create { summary = "x", seat = "nobody" } end)
    -- replacing or adding methods, on the view or behind it
    try("replace_get", function() ctx.board.get = function() return "mine" end end)
    try("replace_recall", function() ctx.memory.recall = function() return "mine" end end)
    try("add_field", function() ctx.board.db = {} end)
    try("setmetatable", function() return setmetatable(ctx.board, {}) end)
    -- a view's function on something else, or on the other view
    try("foreign_self", function() return ctx.board.get({ card_id = "E-2" }, "E-2") end)
    try("crossed_views", function() return ctx.memory.remember(ctx.board, { text = "x" }) end)
    try("dot_call", function() return ctx.board.get("E-2") end)
    -- closing anything
    try("close_board", function() return ctx.board:close() end)
    try("close_memory", function() return ctx.memory:close() end)
    try("close_fs", function() return ctx.fs:close() end)
    return { problems = problems, tries = tries, raw_board = next(ctx.board) == nil and "empty" or "has fields",
      raw_memory = next(ctx.memory) == nil and "empty" or "has fields" }
  end }
]]

-- A handler that keeps its call's views (an upvalue lives as long as the registry) and
-- uses them in a later call, for another card or another seat.
local KEEP = [[
local kept
return { name = "keep", description = "keeps its views", effect = "board",
  handler = function(args, ctx)
    if not args.use then kept = { board = ctx.board, memory = ctx.memory, fs = ctx.fs } return "kept" end
    local out = {}
    local function try(name, f)
      local ok, a, b = pcall(f)
      out[name] = ok and ("ran: " .. tostring(type(a) == "table" and (a.status or a.id) or a) .. " " .. tostring(b))
        or tostring(a)
    end
    try("transition", function() return kept.board:transition("done") end)
    try("comment", function() return kept.board:comment("from a later call") end)
    try("get", function() return kept.board:get() end)
    try("remember", function() return kept.memory:remember { text = "later" } end)
    try("write", function() return kept.fs:write("kept.txt", "x") end)
    try("read", function() return kept.fs:read("kept.txt") end)
    return out
  end }
]]

describe("tool views", function()
  local db, b, mem, ws, reg, ctx, ws_dir, tools_dir
  before_each(function()
    local dir = H.tmpdir()
    ws_dir, tools_dir = dir .. "/ws", dir .. "/tools"
    db = assert(store.open(dir .. "/o.db"))
    b = board_mod.open(db)
    mem = memory_mod.open(db)
    db:tx(function()
      db:run("INSERT INTO cards (id, type, name, priority, created_at, updated_at) VALUES ('E', 'epic', 'Epic', 2, 'x', 'x')")
    end)
    assert(b:create { parent = "E", id = "E-0", summary = "earlier" })
    assert(b:create { parent = "E", id = "E-1", summary = "one", depends_on = { "E-0" } })
    assert(b:create { parent = "E", id = "E-2", summary = "someone else's" })
    db:tx(function() db:run("UPDATE cards SET status = 'done' WHERE id = 'E-0'") end) -- fixture only
    local coder = { seat = "senior_developer", roles = { "coder" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    os.execute("mkdir -p " .. dir .. "/ws " .. dir .. "/tools")
    ws = assert(W.open(dir .. "/ws"))
    H.write(dir .. "/tools/probe.lua", PROBE)
    reg = assert(tools.load { H.ROOT .. "/tools/update_issue_status.lua", H.ROOT .. "/tools/get_issue_context.lua",
      dir .. "/tools/probe.lua" })
    ctx = { fs = ws, board = b, memory = mem, card = b:get("E-1"), actor = coder,
      seats = { "integrity_guard", "senior_developer" } }
  end)
  after_each(function()
    ws:close()
    db:close()
    H.cleanup()
  end)

  it("refuse an option a read does not take, naming those it does", function()
    H.write(ws_dir .. "/data.txt", "0123456789abcdefg")
    H.write(tools_dir .. "/misread.lua", [[return { name = "misread", description = "d", effect = "read",
      parameters = { type = "object", properties = {} },
      handler = function(args, ctx)
        local ok, err = pcall(ctx.fs.read, ctx.fs, "data.txt", { lmit = 5 })
        local data = ctx.fs:read("data.txt", { limit = 5 })
        return { ok = ok, err = tostring(err), data = data }
      end }]])
    local r2 = assert(tools.load { tools_dir .. "/misread.lua" })
    local r = r2:run("misread", {}, ctx)
    assert.is_true(r.ok, r.error)
    assert.is_false(r.result.ok) -- was read whole, 17 bytes, as if no limit were given
    assert.matches("bad argument #2 to 'read' (unknown field 'lmit'; it takes limit, offset)", r.result.err, 1, true)
    assert.equal("01234", r.result.data)
  end)

  it("hold no host object, no metatable and no store handle", function()
    local r = reg:run("probe", {}, ctx)
    assert.is_true(r.ok, r.error)
    assert.same({}, r.result.problems)
    assert.equal("empty", r.result.raw_board)
    assert.equal("empty", r.result.raw_memory)
  end)

  it("act as the engine's actor on the engine's card, whatever the script says", function()
    -- in review, worked by another seat: an integrity_guard's done would pass
    assert(b:transition("E-1", "code_review", { actor = { seat = "other_dev", roles = { "coder" } } }))
    ctx.card = b:get("E-1")
    local t = assert(reg:run("probe", {}, ctx)).result.tries
    -- an actor in the options is refused; the copy of ctx.actor changes nothing
    assert.is_false(t.forged_actor.ok)
    assert.matches("unknown field 'actor'", t.forged_actor.value, 1, true)
    assert.is_true(t.forged_actor_table.ok)
    assert.equal("EREVIEWER", t.forged_actor_table.code)
    assert.equal("code_review", b:get("E-1").status)
    -- other cards are out of reach; a new issue goes to the card's own epic
    assert.equal("EPERM", t.other_card.code)
    assert.is_false(t.other_card_create.ok)
    assert.matches("unknown field 'parent'", t.other_card_create.value, 1, true)
    assert.equal("EINVAL", t.foreign_seat.code)
    assert.matches('seat "nobody" is not a seat of this team', t.foreign_seat.msg, 1, true)
    assert.equal(0, db:row("SELECT count(*) AS n FROM cards WHERE seat = 'nobody'").n)
    -- the probe's comment and memory entry are signed by the engine's seat
    local last = b:comments("E-1")
    assert.equal("senior_developer", last[#last].author)
    assert.equal("probe was here", last[#last].body)
    local ev = db:row("SELECT actor FROM events WHERE kind = 'memory' ORDER BY id DESC LIMIT 1")
    assert.equal("senior_developer", ev.actor)
  end)

  it("cannot be changed, swapped, closed or turned on something else", function()
    local t = assert(reg:run("probe", {}, ctx)).result.tries
    for _, name in ipairs { "replace_get", "replace_recall", "add_field", "setmetatable", "foreign_self",
      "crossed_views", "dot_call", "close_board", "close_memory", "close_fs" } do
      assert.is_false(t[name].ok, name)
    end
    assert.matches("read-only", t.replace_get.value, 1, true)
    assert.matches("board view expected", t.foreign_self.value)
    assert.matches("memory view expected", t.crossed_views.value)
    -- the host's objects are as they were: the store is open, the board's methods its own
    assert.equal(board_mod.open(db).get, b.get)
    assert.equal("in_progress", b:get("E-1").status)
    assert.equal(1, db:row("SELECT count(*) AS n FROM memory").n)
    local r = reg:run("get_issue_context", {}, ctx)
    assert.is_true(r.ok, r.error)
    assert.equal("E-1", r.result.card.id)
    assert.same({ { id = "E-0", summary = "earlier", status = "done" } }, r.result.dependencies)
  end)

  it("are revoked when their call returns: a kept view acts for no later call", function()
    local dir = H.tmpdir()
    H.write(dir .. "/keep.lua", KEEP)
    local kreg = assert(tools.load { dir .. "/keep.lua" })
    -- kept in the reviewer's call on E-1 in review, used in the coder's call on E-2
    assert(b:transition("E-1", "code_review", { actor = { seat = "other_dev", roles = { "coder" } } }))
    local guard = { seat = "integrity_guard", roles = { "integrity_guard" } }
    local r = kreg:run("keep", {}, { fs = ws, board = b, memory = mem, card = b:get("E-1"), actor = guard,
      seats = ctx.seats })
    assert.is_true(r.ok, r.error)
    local comments = #b:comments("E-1")
    r = kreg:run("keep", { use = true }, { fs = ws, board = b, memory = mem, card = b:get("E-2"),
      actor = ctx.actor, seats = ctx.seats })
    assert.is_true(r.ok, r.error)
    for _, name in ipairs { "transition", "comment", "get", "remember" } do
      assert.matches("view was given to a tool call that has ended", r.result[name], 1, true)
    end
    for _, name in ipairs { "write", "read" } do
      assert.matches("workspace view was given to a tool call that has ended", r.result[name], 1, true)
    end
    assert.equal("code_review", b:get("E-1").status)
    assert.equal(comments, #b:comments("E-1"))
    assert.equal(0, db:row("SELECT count(*) AS n FROM memory").n)
    assert.is_nil(ws:stat("kept.txt"))
  end)

  it("move the card through the state machine, recording the engine's seat", function()
    local r = reg:run("update_issue_status", { status = "code_review", note = "ready" }, ctx)
    assert.is_true(r.ok, r.error)
    assert.equal("code_review", b:get("E-1").status)
    assert.equal("senior_developer", b:get("E-1").worked_by)
    local ev = db:row("SELECT actor FROM events WHERE kind = 'transition' ORDER BY id DESC LIMIT 1")
    assert.equal("senior_developer", ev.actor)
    -- the seat that did the work cannot approve it, whatever the call says
    ctx.card = b:get("E-1")
    r = reg:run("update_issue_status", { status = "done" }, ctx)
    assert.is_false(r.ok)
    assert.equal("code_review", b:get("E-1").status)
  end)
end)
