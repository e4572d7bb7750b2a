-- A tool's workspace view follows its declared effect: only effect = "write" may change the
-- workspace (the gate counts those writes and the engine journals them before they run),
-- and the errors its helpers raise read at the script's line, with no file of Orket's or
-- directory of the machine in them, also when the script catches them.
local tools = require "orket.tools"
local store = require "orket.store"
local board_mod = require "orket.board"
local memory_mod = require "orket.memory"
local W = require "orket.workspace"
local H = require "tests.helpers"

-- A tool of the given effect whose handler tries every operation of ctx.fs, each caught.
local function changer(effect)
  return ([[
return { name = "changer", description = "tries every change", effect = %q,
  handler = function(_, ctx)
    local out = {}
    local function try(name, f)
      local ok, a, b, c = pcall(f)
      out[name] = ok and { ran = true, value = tostring(a), msg = b, code = c } or { ran = false, err = tostring(a) }
    end
    -- (not tail calls: a tail call leaves no line of the script to name)
    try("write", function() local a, b, c = ctx.fs:write("w.txt", "x") return a, b, c end)
    try("append", function() local a, b, c = ctx.fs:append("a.txt", "x") return a, b, c end)
    try("mkdir", function() local a, b, c = ctx.fs:mkdir("d") return a, b, c end)
    try("delete", function() local a, b, c = ctx.fs:delete("keep.txt") return a, b, c end)
    try("move", function() local a, b, c = ctx.fs:move("keep.txt", "moved.txt") return a, b, c end)
    try("read", function() local a, b, c = ctx.fs:read("keep.txt") return a, b, c end)
    try("list", function() local a = #ctx.fs:list(".") return a end)
    try("stat", function() local a = ctx.fs:stat("keep.txt").size return a end)
    return out
  end }
]]):format(effect)
end

describe("a tool's workspace view", function()
  local dir, ws
  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/ws " .. dir .. "/tools")
    ws = assert(W.open(dir .. "/ws"))
    assert(ws:write("keep.txt", "kept"))
  end)
  after_each(function()
    ws:close()
    H.cleanup()
  end)

  for _, effect in ipairs { "read", "board", "process", "sandbox" } do
    it("of a tool declared effect = \"" .. effect .. "\" only reads: each change is refused, naming the tool", function()
      H.write(dir .. "/tools/changer.lua", changer(effect))
      local reg = assert(tools.load({ dir .. "/tools/changer.lua" }, dir))
      local r = reg:run("changer", {}, { fs = ws })
      assert.is_true(r.ok, r.error)
      for _, op in ipairs { "write", "append", "mkdir", "delete", "move" } do
        local t = r.result[op]
        assert.is_false(t.ran, op)
        assert.matches("^tools/changer%.lua:%d+: changer: ctx%.fs:" .. op .. " is refused: the tool is declared "
          .. 'effect = "' .. effect .. '"', t.err)
        assert.matches('declares effect = "write"', t.err, 1, true)
      end
      -- nothing changed
      assert.is_nil(ws:stat("w.txt"))
      assert.is_nil(ws:stat("a.txt"))
      assert.is_nil(ws:stat("d"))
      assert.is_nil(ws:stat("moved.txt"))
      assert.equal("kept", (ws:read("keep.txt")))
      -- reading still works
      assert.same({ ran = true, value = "kept" }, { ran = r.result.read.ran, value = r.result.read.value })
      assert.is_true(r.result.list.ran)
      assert.equal("4", r.result.stat.value)
    end)
  end

  it("of a tool declared effect = \"write\" changes the workspace", function()
    H.write(dir .. "/tools/changer.lua", changer("write"))
    local reg = assert(tools.load({ dir .. "/tools/changer.lua" }, dir))
    local r = reg:run("changer", {}, { fs = ws })
    assert.is_true(r.ok, r.error)
    for _, op in ipairs { "write", "append", "mkdir" } do assert.is_true(r.result[op].ran, op) end
    assert.equal("x", (ws:read("w.txt")))
    assert.equal("x", (ws:read("a.txt")))
    assert.equal("directory", ws:stat("d").type)
    -- deleted before the move tried it
    assert.is_nil(ws:stat("keep.txt"))
  end)

  it("refuses a change uncaught too: the call fails at the script's line", function()
    H.write(dir .. "/tools/probe.lua", [[
return { name = "probe", description = "declared read-only", effect = "read",
  handler = function(args, ctx)
    local w = ctx.fs:write("big.bin", ("x"):rep(100))
    return { wrote = w }
  end }
]])
    local reg = assert(tools.load({ dir .. "/tools/probe.lua" }, dir))
    local r = reg:run("probe", {}, { fs = ws })
    assert.is_false(r.ok)
    assert.equal("ETOOL", r.code)
    assert.matches('^probe: the tool failed: tools/probe%.lua:3: probe: ctx%.fs:write is refused: the tool is declared '
      .. 'effect = "read"', r.error)
    assert.is_nil(ws:stat("big.bin"))
  end)
end)

describe("a tool's helpers' errors", function()
  local dir, ws, db, b, mem
  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/ws " .. dir .. "/tools")
    ws = assert(W.open(dir .. "/ws"))
    assert(ws:write("x", "data"))
    db = assert(store.open(dir .. "/o.db"))
    b = board_mod.open(db)
    mem = memory_mod.open(db)
    db:tx(function()
      db:run("INSERT INTO cards (id, type, name, priority, created_at, updated_at) VALUES ('E', 'epic', 'Epic', 2, 'x', 'x')")
    end)
    assert(b:create { parent = "E", id = "E-1", summary = "one" })
  end)
  after_each(function()
    ws:close()
    db:close()
    H.cleanup()
  end)

  local function run(handler_body)
    H.write(dir .. "/tools/probe.lua", ([[
return { name = "probe", description = "p", effect = "write",
  handler = function(args, ctx)
%s
  end }
]]):format(handler_body))
    local reg = assert(tools.load({ dir .. "/tools/probe.lua" }, dir))
    return reg:run("probe", {}, { fs = ws, board = b, memory = mem, card = b:get("E-1"),
      actor = { seat = "senior_developer", roles = { "coder" } } })
  end

  it("name ctx.fs:read's option by field and argument number", function()
    local r = run([[    local r = ctx.fs:read("x", { limit = "a" }) return r]])
    assert.is_false(r.ok)
    assert.equal("probe: the tool failed: tools/probe.lua:3: bad argument #2 to 'read' (field 'limit': number "
      .. "expected, got string)", r.error)
    r = run([[    local r = ctx.fs:read("x", { offset = 1.5 }) return r]])
    assert.equal("probe: the tool failed: tools/probe.lua:3: bad argument #2 to 'read' (field 'offset': number "
      .. "has no integer representation)", r.error)
    -- the workspace's own callers read the same
    local ok, err = pcall(function() local r = ws:read("x", { limit = {} }) return r end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'read' (field 'limit': number expected, got table)", err, 1, true)
  end)

  it("caught by the script, hold no file of Orket's nor a directory of the machine", function()
    local r = run([[
    local out = {}
    out[1] = select(2, pcall(ctx.fs.read, ctx.fs, "x", { offset = -5 }))
    out[2] = select(2, pcall(ctx.memory.recall, ctx.memory, "x", { limit = 1000 }))
    out[3] = select(2, pcall(function() local r = ctx.fs:read("x", { limit = "a" }) return r end))
    out[4] = select(2, pcall(function() local r = ctx.memory:recall("x", { limit = 0 }) return r end))
    out[5] = select(2, pcall(function() local r = ctx.fs:write("y", {}) return r end))
    return out]])
    assert.is_true(r.ok, r.error)
    local home = H.ROOT
    for i, msg in ipairs(r.result) do
      assert.is_nil(msg:find(home, 1, true), msg)
      assert.is_nil(msg:find("lua/orket", 1, true), msg)
      assert.is_nil(msg:find("tools.lua", 1, true), msg)
      assert.is_nil(msg:find(dir, 1, true), msg)
      assert.matches("bad argument", msg, 1, true, i)
    end
    assert.equal("bad argument #2 to 'read' (offset must be >= 0)", r.result[1])
    assert.equal("bad argument #2 to 'recall' (limit must be an integer from 1 to 100)", r.result[2])
    -- called from the script's own function: its line
    assert.equal("tools/probe.lua:6: bad argument #2 to 'read' (field 'limit': number expected, got string)",
      r.result[3])
    assert.equal("tools/probe.lua:7: bad argument #2 to 'recall' (limit must be an integer from 1 to 100)",
      r.result[4])
  end)
end)
