-- A stdio MCP server that writes files (tests/mcp/file_server.lua) used by a scripted team:
-- during a card's turn it runs in the card's directory, so the file it writes is the card's
-- change (committed with the turn, merged with the card), and main's view (workspace/) is
-- never its directory.
local H = require "tests.helpers"
local cjson = require "cjson"

local SERVER = H.ROOT .. "/tests/mcp/file_server.lua"

-- A sanitizer build of orket (the server here) reserves terabytes of shadow memory, which
-- the data limit of a confined server does not allow
local ASAN = H.BIN:find("asan", 1, true) and "a sanitizer build cannot run as a confined MCP server (its shadow memory)"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("files__write_file", { path = "from_server.txt", content = "written by the MCP server\n" }) } } },
  { role = "coder", match = "wrote from_server.txt", reply = { tool_calls = {
    call("files__where_am_i", {}) } } },
  { role = "coder", match = "cwd=", reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
  H.write(dir .. "/orket.lua", string.format([[
name = "mcpfiles"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = { files = { command = { %q, "lua", %q }, read_only = { %q } } } }
]], H.BIN, SERVER, H.ROOT))
  H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Files", "issues": [ { "id": "E-1", "summary": "Write a file", '
    .. '"seat": "senior_developer" } ] }')
  H.write(dir .. "/roles/coder.lua", [[
return { intent = "Use the MCP tools, then hand in.",
  tools = { "update_issue_status", "files__write_file", "files__where_am_i" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  require("tests.backends").project(dir)
  assert(H.orket("import", { cwd = dir }).status == 0)
  return dir
end

local function git(dir, args)
  local p = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " " .. args .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

describe("an MCP server that writes files", function()
  after_each(H.cleanup)

  it("writes into the card's directory during its turn: the file is the card's change, merged", function()
    if ASAN then return pending(ASAN) end
    local dir = project()
    local r = H.orket("run E", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    -- where the server ran: the card's directory, not main's view
    local log = H.orket("log 1", { cwd = dir }).stdout
    local where = log:match("%[result%] files__where_am_i ok [^\n]*cwd=([^\"]*)")
    assert.is_string(where, log)
    where = where:gsub("\\/", "/") -- (JSON may escape a slash)
    local ws = require("luv").fs_realpath(dir .. "/workspace")
    assert.not_equal(ws, where)
    assert.is_nil(where:find(ws .. "/", 1, true))
    -- the file is in a commit of the card's turn, on its branch, and in main after the merge
    assert.matches("E%-1: turn 1", git(dir, "log --format=%s orket/E-1 -- from_server.txt"))
    assert.equal("written by the MCP server\n", git(dir, "show main:from_server.txt"))
    -- main's view holds main's version (the merge's refresh), as main's, not as an untracked file
    assert.equal("written by the MCP server\n", H.read(dir .. "/workspace/from_server.txt"))
    assert.equal("", git(dir, "status --porcelain -- from_server.txt"))
  end)
end)
