-- A stdio MCP server that writes files (tests/mcp/file_server.lua) used by a scripted team:
-- during a card's turn it runs in the card's directory, so the file it writes is the card's
-- change (committed with the turn, merged with the card), and main's view (workspace/) is
-- never its directory; a sandbox of main then serves that file, not a person's edit of it.
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

-- An app that serves the files of the tree it runs in (a sandbox's), at /NAME.
local APP = [[
const http = require('http'), fs = require('fs');
http.createServer((req, res) => {
  try { res.end(fs.readFileSync('.' + req.url.replace(/\.\./g, ''))); } catch (e) { res.statusCode = 404; res.end('missing'); }
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local function project(extra)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
  H.write(dir .. "/orket.lua", string.format([[
name = "mcpfiles"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = { files = { command = { %q, "lua", %q }, read_only = { %q } } } }
]], H.BIN, SERVER, H.ROOT) .. (extra or ""))
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

  it("its file is what a sandbox of main serves, whatever a person's edit in workspace/ says", function()
    if ASAN then return pending(ASAN) end
    local offered = require("orket.c.proc").probe()
    if not (offered.netns and offered.userns and os.execute("command -v node >/dev/null 2>&1")) then
      return pending("the kernel offers no network namespace here, or node is missing")
    end
    local dir = project('sandbox = { command = { "node", "app.js" }, health = { http = "/app.js", interval_ms = 200 } }\n')
    -- the app is main's from the start: the run makes the repository of what workspace/ holds
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace"))
    H.write(dir .. "/workspace/app.js", APP)
    local r = H.orket("run E", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    -- a person edits the merged file in main's view, without committing it
    H.write(dir .. "/workspace/from_server.txt", "a person's draft\n")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local row = H.sandboxes(dir)[1]
    local http = require "orket.c.http"
    local req = assert(http.request { url = "http://sandbox/from_server.txt", unix_socket = row.socket,
      total_timeout_ms = 10000 })
    assert.equal(200, req:headers())
    local body = {}
    while true do
      local ev = req:read()
      if not ev then break end
      for _, x in ipairs(ev) do body[#body + 1] = x end
    end
    req:close()
    assert.equal("written by the MCP server\n", table.concat(body))
    assert.equal("a person's draft\n", H.read(dir .. "/workspace/from_server.txt"))
    assert.equal(0, H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir }).status)
  end)
end)
