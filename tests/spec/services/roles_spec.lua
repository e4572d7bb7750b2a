-- orket.engine.roles.messages: what a role script sees of ctx. The context is a fresh copy
-- except the tools' parameter schemas, which are read-only views of the registry's own.
local H = require "tests.helpers"
local cjson = require "cjson"
local roles = require "orket.engine.roles"
local tools = require "orket.tools"
local schemas = require "orket.engine.schemas"

local function registry()
  return assert(tools.load_dirs { require("orket.c.runtime").home() .. "/tools" })
end

local function role(src)
  local dir = H.tmpdir()
  H.write(dir .. "/r.lua", src)
  return assert(roles.load_file(dir .. "/r.lua"))
end

local function ctx(reg)
  return { card = { id = "E-1", summary = "s", depends_on = { "E-0" } }, deps = {}, comments = {},
    memory = {}, history = {}, seat = "dev", role = "r", phase = "work", turn = 1,
    tools = reg:specs { "write_file", "update_issue_status" }, project = { name = "p" } }
end

describe("roles.load_file", function()
  after_each(H.cleanup)

  it("lists a role's unknown fields with the misspelt one first", function()
    local dir = H.tmpdir()
    H.write(dir .. "/r.lua", 'return { intent = "x", tools = {}, system = "s", aaa = 1, sytem = "t", zzz = 2 }')
    local r, err, code, problems = roles.load_file(dir .. "/r.lua")
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    local fields = " (fields: name, intent, tools, model, dialect, system, build)"
    assert.same({ dir .. "/r.lua: unknown field 'sytem'" .. fields, dir .. "/r.lua: unknown field 'aaa'" .. fields,
      dir .. "/r.lua: unknown field 'zzz'" .. fields }, problems)
    assert.equal(problems[1], err)
  end)

  it("says a misspelt system prompt once, not again as a missing one; a missing one alone is said", function()
    local dir = H.tmpdir()
    local fields = " (fields: name, intent, tools, model, dialect, system, build)"
    H.write(dir .. "/r.lua", 'return { intent = "x", tools = {}, sytem = "t" }')
    local _, _, _, problems = roles.load_file(dir .. "/r.lua")
    assert.same({ dir .. "/r.lua: unknown field 'sytem'" .. fields }, problems)
    H.write(dir .. "/r.lua", 'return { intent = "x", tools = {}, prompt_text = "t" }')
    _, _, _, problems = roles.load_file(dir .. "/r.lua")
    assert.same({ dir .. "/r.lua: unknown field 'prompt_text'" .. fields,
      dir .. "/r.lua: give build(ctx) or system (the system prompt)" }, problems)
  end)

  it("refuses a name that is not the file's: another file cannot replace a role", function()
    local dir = H.tmpdir()
    H.write(dir .. "/tester.lua", 'return { name = "coder", intent = "x", tools = {}, system = "s" }')
    local r, err, code = roles.load_file(dir .. "/tester.lua")
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal(dir .. '/tester.lua: name "coder" differs from the file\'s name "tester": a role is named by its '
      .. "file (roles/coder.lua would add or replace the role coder); rename the file or the name", err)
    -- the name may be given when it is the file's, or left out
    H.write(dir .. "/coder.lua", 'return { name = "coder", intent = "x", tools = {}, system = "s" }')
    assert.equal("coder", assert(roles.load_file(dir .. "/coder.lua")).name)
  end)

  -- ipairs read { write_file = true, "read_file", [3] = "list_directory" } as { "read_file" }:
  -- the other two were refused at every call (ROLE_FORBIDDEN), never said at load
  it("refuses tools that are not a plain array of names", function()
    local dir = H.tmpdir()
    for _, tools_src in ipairs { '{ write_file = true, "read_file", [3] = "list_directory" }',
      '{ "read_file", nil, "list_directory" }', '{ [2] = "read_file" }', '{ [0] = "x", "read_file" }' } do
      H.write(dir .. "/r.lua", "return { intent = 'x', tools = " .. tools_src .. ", system = 's' }")
      local r, err, code = roles.load_file(dir .. "/r.lua")
      assert.is_nil(r, tools_src)
      assert.equal("EINVAL", code)
      assert.equal(dir .. "/r.lua: tools must be an array of tool names", err)
    end
    H.write(dir .. "/r.lua", "return { intent = 'x', tools = { 'read_file', 'write_file' }, system = 's' }")
    assert.same({ "read_file", "write_file" }, assert(roles.load_file(dir .. "/r.lua")).tools)
  end)
end)

describe("roles.messages", function()
  after_each(H.cleanup)

  it("lets a role read the tools' schemas through pairs, ipairs, # and nesting", function()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      local out = {}
      for _, t in ipairs(ctx.tools) do
        local keys = {}
        for k in pairs(t.parameters.properties) do keys[#keys + 1] = k end
        table.sort(keys)
        out[#out + 1] = t.name .. "=" .. table.concat(keys, ",") .. ";" .. #t.parameters.required
          .. ";" .. t.parameters.type
      end
      return { { role = "system", content = table.concat(out, " ") } }
    end }]])
    local msgs = assert(roles.messages(r, ctx(registry())))
    assert.equal("write_file=content,path;2;object update_issue_status=note,status,wait_reason;1;object",
      msgs[1].content)
  end)

  it("refuses writes to a schema and leaves the registry's untouched", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      ctx.tools[1].parameters.properties.path = nil
      return { { role = "system", content = "x" } }
    end }]])
    local msgs, err, code = roles.messages(r, ctx(reg))
    assert.is_nil(msgs)
    assert.matches("read%-only table", err)
    assert.equal("ERUNTIME", code)
    assert.is_table(reg:get("write_file").parameters.properties.path)
    -- rawset and setmetatable cannot get around it either
    for _, body in ipairs { "rawset(ctx.tools[1].parameters, 'type', 'x')",
      "setmetatable(ctx.tools[1].parameters, {})", "getmetatable(ctx.tools[1].parameters).__index = 1" } do
      local r2 = role("return { intent = 'x', tools = {}, build = function(ctx) " .. body
        .. " return { { role = 'system', content = 'x' } } end }")
      assert.is_nil((roles.messages(r2, ctx(reg))), body)
    end
    assert.equal("object", reg:get("write_file").parameters.type)
  end)

  it("reports a failing script as file:line: message, without the traceback", function()
    for _, src in ipairs {
      [[return { intent = "x", tools = {}, build = function(ctx)
        local t = nil
        return t.x
      end }]],
      [[return { intent = "x", tools = {}, system = function(ctx)
        error("no brief")
      end }]],
    } do
      local r = role(src)
      local msgs, err = roles.messages(r, ctx(registry()))
      assert.is_nil(msgs)
      assert.matches("r%.lua:%d+: ", err)
      assert.is_nil(err:find("\n", 1, true), err)
      assert.is_nil(err:find("traceback", 1, true), err)
    end
  end)

  -- a field JSON cannot name went on to fail the turn when the store wrote the request, as
  -- the engine's error naming Orket's own file
  it("refuses a message with a field whose name is no string, naming the role's file", function()
    local msgs, err = roles.messages(role([[return { intent = "x", tools = {},
      build = function(ctx) return { { role = "user", content = "a", [true] = 1 } } end }]]), ctx(registry()))
    assert.is_nil(msgs)
    assert.matches("r%.lua: message 1: a field's name must be a string %(got boolean%)$", err)
  end)

  it("names the role's file when what it raised is not a message", function()
    for _, src in ipairs {
      [[return { intent = "x", tools = {}, system = function(ctx) error({}) end }]],
      [[return { intent = "x", tools = {}, build = function(ctx) error(setmetatable({}, {})) end }]],
    } do
      local msgs, err = roles.messages(role(src), ctx(registry()))
      assert.is_nil(msgs)
      -- with the line the traceback has (it named the file alone)
      assert.matches("r%.lua:1: %(a table was raised, not a message%)$", err)
    end
  end)

  -- an error raised inside Orket's helper named the helper's file, with the machine's
  -- install path, which the card's comment then handed to the model
  it("names the role's own line for a helper it misused, and no file of Orket's", function()
    local home = require("orket.c.runtime").home()
    for src, want in pairs {
      ["local m = prompt.brief(5)\n return m"] = ":2: bad argument #1 to 'prompt.brief' (card table expected, got number)",
      ["local m = prompt.comments({ 1, 2 })\n return m"] =
        ":2: bad argument #1 to 'prompt.comments' (item 1: table expected, got number)",
      ["local m = prompt.messages(nil, 'x')\n return m"] =
        ":2: bad argument #1 to 'prompt.messages' (ctx table expected, got nil)",
      ["ctx.card = 7\n local m = prompt.messages(ctx, 'x')\n return m"] =
        ":3: bad argument #1 to 'prompt.messages' (ctx.card: card table expected, got number)",
      ["local m = prompt.memory({ { age_days = 'x' } })\n return m"] = ":2: bad argument #3 to 'format'",
      ["error('x', 3)"] = ":2: x",
      -- a tail call leaves no frame of the role's: the file, no line, and still none of Orket's
      ["return prompt.brief(5)"] = ": bad argument #1 to 'prompt.brief' (card table expected, got number)",
    } do
      local r = role("return { intent = 'x', tools = {}, build = function(ctx)\n " .. src .. "\n end }")
      local msgs, err = roles.messages(r, ctx(registry()))
      assert.is_nil(msgs)
      assert.equal(r.chunk .. want, err:sub(1, #r.chunk + #want), src)
      assert.is_nil(err:find(home .. "/", 1, true), err)
      assert.is_nil(err:find("lua/orket/", 1, true), err)
    end
  end)

  it("hands the model UTF-8: a byte that is not goes as \\xNN; a role's own system text that is not is refused", function()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      return { { role = "system", content = "ok" }, { role = "user", content = "bad \255 byte" } } end }]])
    local msgs = assert(roles.messages(r, ctx(registry())))
    assert.equal("ok", msgs[1].content)
    assert.equal("bad \\xff byte", msgs[2].content)
    local dir = H.tmpdir()
    H.write(dir .. "/r.lua", 'return { intent = "x", tools = {}, system = "bad \\254 role" }')
    local rr, err = roles.load_file(dir .. "/r.lua")
    assert.is_nil(rr)
    assert.equal(dir .. "/r.lua: system is not valid UTF-8 text (byte 5 is not): the model reads it as UTF-8", err)
  end)

  it("builds system(ctx)'s messages under the role's budget: what it left in ctx runs there", function()
    -- a trap left in ctx.card: 30 million loops (seconds) that, run by the
    -- host, would pass unbounded; under the budget the role fails with EBUDGET
    local r = role([[return { intent = "x", tools = {}, system = function(ctx)
      ctx.card = setmetatable({}, { __index = function() local n = 0 for i = 1, 3e7 do n = n + i end return n end })
      return "sys"
    end }]])
    local msgs, err, code = roles.messages(r, ctx(registry()))
    assert.is_nil(msgs)
    assert.equal("EBUDGET", code)
    assert.matches("r%.lua: building the messages from the ctx system%(ctx%) left: .*instruction budget", err)
    -- a plain system(ctx) still gives the default shape
    local ok = role([[return { intent = "x", tools = {}, system = function(ctx) return "hi " .. ctx.card.id end }]])
    local shaped = assert(roles.messages(ok, ctx(registry())))
    assert.matches("hi E%-1", cjson.encode(shaped))
  end)

  it("refuses messages that hand over more than 64 MiB of strings", function()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      local s, msgs = ("x"):rep(1024 * 1024), {}
      for i = 1, 100 do msgs[i] = { role = "user", content = s } end
      return msgs
    end }]])
    local msgs, err, code = roles.messages(r, ctx(registry()))
    -- (by the message first: a failing assert would print the whole messages)
    assert.matches("r%.lua: messages are not plain data: value%.64: more than 64 MiB of strings", tostring(err))
    assert.equal("EINVAL", code)
    assert.is_nil(msgs)
  end)

  it("gives a fresh copy of everything else, every call", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      local seen = ctx.card.summary .. "/" .. #ctx.tools .. "/" .. tostring(ctx.tools[1].mark)
      ctx.card.summary = "changed"
      ctx.card.depends_on[1] = "X"
      ctx.tools[1].mark = true
      ctx.tools[1].name = "renamed"
      table.insert(ctx.tools, { name = "more" })
      return { { role = "system", content = seen } }
    end }]])
    local c = ctx(reg)
    assert.equal("s/2/nil", assert(roles.messages(r, c))[1].content)
    assert.equal("s/2/nil", assert(roles.messages(r, c))[1].content)
    assert.equal("s", c.card.summary)
    assert.equal("E-0", c.card.depends_on[1])
    assert.equal("write_file", c.tools[1].name)
    assert.equal(2, #c.tools)
  end)

  it("writes the whole schema into the json dialect's tool instructions", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, dialect = "json", system = "sys" }]])
    local msgs = assert(roles.messages(r, ctx(reg)))
    -- keys sorted, the same bytes in every process (a prompt cache keeps them)
    local want = require("orket.jsonout").encode(reg:get("update_issue_status").parameters)
    assert.truthy(msgs[1].content:find(want, 1, true))
    assert.truthy(want:find('"required"', 1, true))
  end)

  it("schemas.plain rebuilds a part of a view and passes other values through", function()
    local reg = registry()
    local p = reg:get("update_issue_status").parameters
    local v = schemas.view(p)
    assert.equal(p, schemas.plain(v))
    assert.same(p.properties.status, schemas.plain(v.properties.status))
    local t = {}
    assert.equal(t, schemas.plain(t))
    assert.equal(3, schemas.plain(3))
  end)
end)

describe("turn context", function()
  after_each(H.cleanup)

  it("reads the dependencies once per turn, again when they change", function()
    local F = require "tests.engine_fakes"
    local turn = require "orket.engine.turn"
    local _, b = F.fixture(H.tmpdir() .. "/o.db", {
      { id = "E-1", summary = "base" }, { id = "E-2", summary = "more" },
      { id = "E-3", summary = "top", depends_on = { "E-1" } } })
    assert(b:comment("E-1", { author = "dev", body = "base is built" }))
    local reads = 0
    local board = setmetatable({ comments = function(self, id)
      if id ~= "E-3" then reads = reads + 1 end
      return b.comments(b, id)
    end }, { __index = b })
    local e = { board = board, settings = assert(require("orket.settings").resolve {}) }
    local job = { seat = "dev", role = { name = "coder" }, phase = "work", turn = 1, tool_specs = {} }
    local card = b:get("E-3")
    local c1 = turn.context(e, job, card, {})
    local c2 = turn.context(e, job, card, {})
    assert.equal(1, reads)
    assert.same({ { id = "E-1", summary = "base", status = "ready", outcome = "base is built" } }, c2.deps)
    assert.same(c1.deps, c2.deps)
    card = { id = "E-3", summary = "top", depends_on = { "E-1", "E-2" } }
    local c3 = turn.context(e, job, card, {})
    assert.equal(3, reads)
    assert.equal("E-2", c3.deps[2].id)
    -- a new turn reads afresh
    local c4 = turn.context(e, { seat = "dev", role = { name = "coder" }, phase = "work", turn = 2, tool_specs = {} }, card, {})
    assert.equal(5, reads)
    assert.same(c3.deps, c4.deps)
  end)
end)
