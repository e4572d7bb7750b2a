-- A tool name or a tool's fixed status holding a NUL byte or another control character is
-- refused where it is read in, not at the gate's first check of a call: an MCP server's
-- tools/list, a role's tool list, a tool file's status (docs/mcp.md, docs/roles.md,
-- docs/policies.md). Such text is shown escaped, never raw.
local H = require "tests.helpers"
local task = require "orket.task"
local client = require "orket.mcp.client"
local roles = require "orket.engine.roles"
local tools = require "orket.tools"

local S = { type = "object" }
local CONTROLS = { "a\0b", "a\nb", "a\27[31mb", "a\127b", "a\tb" }

local function raw_control(s) return s:find("%c") ~= nil end

describe("an MCP server's tool named with a control character", function()
  it("is refused at the listing, shown escaped, with its place in the listing", function()
    for _, name in ipairs(CONTROLS) do
      local kept, refused = client.tools_of { { name = "ok", inputSchema = S }, { name = "fine", inputSchema = S },
        { name = name, inputSchema = S } }
      assert.same({ "ok", "fine" }, { kept[1].name, kept[2].name, kept[3] and kept[3].name })
      assert.equal(1, #refused)
      assert.is_false(raw_control(refused[1].name), refused[1].name)
      assert.equal(require("orket.inert").line(name), refused[1].name)
      assert.equal("the name must be letters, digits, _, - or . (64 at most); this one holds a control character, "
        .. "shown escaped (tool 3 of the server's tools/list)", refused[1].why)
    end
    -- a name refused for another character says its place too, without the control's words
    local _, refused = client.tools_of { { name = "a b", inputSchema = S } }
    assert.equal("the name must be letters, digits, _, - or . (64 at most) (tool 1 of the server's tools/list)",
      refused[1].why)
  end)

  it("is logged and listed escaped, naming the server, when a live server lists it", function()
    local SERVER = H.ROOT .. "/tests/mcp/hostile_server.lua"
    -- a sanitizer build of orket (the test server here) reserves terabytes of shadow memory,
    -- which no data limit allows: under one, the server runs without it (as mcp_client_spec)
    local limits = client.LIMITS
    if H.sanitized() then client.LIMITS = { cpu_seconds = 600, memory = 0 } end
    finally(function() client.LIMITS = limits end)
    local logs = {}
    local ok, err = task.spawn(function()
      local c = client.new({ name = "h", transport = "stdio", command = { H.BIN, "lua", SERVER, "tool=get\1sum" },
        read_only = { H.ROOT }, timeout_ms = 10000 }, { cwd = H.tmpdir(), log = function(f) logs[#logs + 1] = f end })
      assert(c:start())
      assert.same({}, c.tools)
      assert.equal("get\\x01sum", c.refused[1].name)
      c:close()
    end):join()
    assert(ok, err)
    H.cleanup()
    local said
    for _, f in ipairs(logs) do if f.event == "mcp_tool_refused" then said = f end end
    assert(said, "an mcp_tool_refused event")
    assert.equal("h", said.server)
    assert.equal("get\\x01sum", said.tool)
    assert.matches("control character, shown escaped (tool 1 of the server's tools/list)", said.message, 1, true)
  end)
end)

describe("a role naming a tool with a control character", function()
  after_each(H.cleanup)

  local function load(tools_src)
    local dir = H.tmpdir()
    H.write(dir .. "/r.lua", "return { intent = 'x', system = 's', tools = " .. tools_src .. " }")
    return dir .. "/r.lua", roles.load_file(dir .. "/r.lua")
  end

  it("is refused when the role loads, the name escaped, its place and its server said", function()
    local file, r, err, code, problems = load [[{ "read_file", "everything__get\0sum" }]]
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal(file .. [[: tools[2]: the tool name "everything__get\x00sum" holds a control character (shown ]]
      .. "escaped), which no tool's name has: a tool of the MCP server everything is named everything__TOOL, TOOL in "
      .. "letters, digits and _", err)
    assert.same({ err }, problems)
    for _, src in ipairs { [["write\nfile"]], [["a\27[2Jb"]], [["x\127"]] } do
      file, r, err = load("{ " .. src .. " }")
      assert.is_nil(r)
      assert.matches(": tools%[1%]: the tool name \"[^\"]+\" holds a control character %(shown escaped%), which no "
        .. "tool's name has: a tool's name is letters, digits and _$", err)
      assert.is_false(raw_control(err), err)
    end
  end)

  it("is said once by a half-read role, not again as a tool that is not there", function()
    local _, r, _, _, problems, half = load [[{ "ok_tool", "bad\0name", 42 }]]
    assert.is_nil(r)
    assert.equal(2, #problems)
    assert.same({ "ok_tool", false, 42 }, half.tools)
  end)
end)

describe("a tool file whose status holds a control character", function()
  after_each(H.cleanup)

  it("is refused when the tools load, not at the gate's first check of a call", function()
    local dir = H.tmpdir()
    H.write(dir .. "/hold.lua", [[
return { name = "hold", description = "d", effect = "board", status = "waiting_for_developer\0done",
  wait_reason = "input", handler = function() return {} end }
]])
    local reg, err, code = tools.load { dir .. "/hold.lua" }
    assert.is_nil(reg)
    assert.equal("EINVAL", code)
    assert.equal(dir .. [[/hold.lua: status "waiting_for_developer\x00done" holds a control character (shown escaped): ]]
      .. [[a status is a card status's name, as "waiting_for_developer"]], err)
    H.write(dir .. "/hold.lua", [[
return { name = "hold", description = "d", effect = "board", status = "waiting_for_developer",
  wait_reason = "input", handler = function() return {} end }
]])
    assert(tools.load { dir .. "/hold.lua" })
  end)
end)
