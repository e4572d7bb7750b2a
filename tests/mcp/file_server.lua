-- An MCP file server on stdio for the tests, run with `orket lua file_server.lua`: its tool
-- write_file writes a file beneath its working directory (where Orket starts it), and
-- where_am_i answers that directory ("cwd=PATH"). Enough of MCP for Orket's client: initialize,
-- tools/list, tools/call.
local cjson = require "cjson"
local uv = require "luv"

local function send(t) io.stdout:write(cjson.encode(t), "\n") io.stdout:flush() end

local TOOLS = {
  { name = "write_file", description = "Writes a file beneath the server's directory.",
    inputSchema = { type = "object", required = { "path", "content" },
      properties = { path = { type = "string" }, content = { type = "string" } } } },
  { name = "where_am_i", description = "The server's working directory.", inputSchema = { type = "object" } },
}

local function text(id, s, is_error)
  send { jsonrpc = "2.0", id = id, result = { content = { { type = "text", text = s } }, isError = is_error or false } }
end

for line in io.lines() do
  local msg = cjson.decode(line)
  if msg.method == "initialize" then
    send { jsonrpc = "2.0", id = msg.id, result = { protocolVersion = "2025-11-25", capabilities = { tools = {} },
      serverInfo = { name = "files", version = "1" } } }
  elseif msg.method == "tools/list" then
    send { jsonrpc = "2.0", id = msg.id, result = { tools = TOOLS } }
  elseif msg.method == "tools/call" then
    local a = msg.params.arguments or {}
    if msg.params.name == "where_am_i" then
      text(msg.id, "cwd=" .. uv.cwd())
    elseif type(a.path) ~= "string" or a.path:find("^/") or a.path:find("%.%.") then
      text(msg.id, "refused: a relative path beneath the directory", true)
    else
      local f, err = io.open(a.path, "w")
      if f then
        f:write(a.content or "")
        f:close()
        text(msg.id, "wrote " .. a.path)
      else
        text(msg.id, "cannot write: " .. tostring(err), true)
      end
    end
  elseif msg.id then
    send { jsonrpc = "2.0", id = msg.id, error = { code = -32601, message = "not supported" } }
  end
end
