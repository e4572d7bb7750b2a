-- tests.fixtures: the project set-ups several end-to-end files share, written once: a
-- project `orket init` made; the scripted team (a coder and a reviewer played by script.lua),
-- and its script that writes a file per card and hands it in (the forge files); the appender
-- team (a role and a tool whose effect, a line per card, shows when it is applied twice); the
-- forge's test secrets; a request to a sandbox's app through its socket; a server run in
-- the test's own process; a server roomy enough for a browser's many requests, and the
-- cards its board shows.
local H = require "tests.helpers"

local F = {}

--- initialized([folders]) -> dir: a project made by `orket init p` in a fresh temp dir (the
--- command checked), with the named folders of it made too ({ "roles", "tools" }).
--- model_server(teardown) -> fake: the fake model server (tests/fake_server.lua) for the
--- calling file, stopped when the file ends, with the servers and temp trees it left
--- (teardown: the file's own, which busted gives each file's environment)
function F.model_server(teardown)
  local fake = require("tests.fake_server").start()
  teardown(function()
    fake.stop()
    H.kill_servers()
    H.cleanup()
  end)
  return fake
end

--- note_tool(dir, description): writes dir/note.lua, a read tool "note" with that
--- description; writing it again with another is a hot reload's edit of a tool
function F.note_tool(dir, description)
  H.write(dir .. "/note.lua", string.format([[
return { name = "note", description = %q, effect = "read",
  parameters = { type = "object", properties = { text = { type = "string" } }, required = { "text" } },
  handler = function(args) return { ok = true } end }
]], description))
end

--- mcp_lua_server(dir, name[, {tools=, string_ids=}]) -> bin, path | nil, why (the test is
--- pending): a stdio MCP server in Lua at dir/srv/NAME.lua, to be run by bin (the orket
--- binary: the release build under a sanitizer build, whose shadow memory fits no rlimit),
--- answering initialize and tools/list with the tools the Lua expression tools makes (one
--- tool t by default); string_ids: each answer's id as a string ("1" for 1)
function F.mcp_lua_server(dir, name, o)
  o = o or {}
  local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
  local exe = io.open(bin, "rb")
  if not exe then return nil, "the server fixture needs the release build, " .. bin .. " (make)" end
  exe:close()
  os.execute("mkdir -p " .. H.quote(dir .. "/srv"))
  local path = dir .. "/srv/" .. name .. ".lua"
  H.write(path, string.format([[
local cjson = require "cjson"
for line in io.lines() do
  local m = cjson.decode(line)
  local r
  if m.method == "initialize" then
    r = { protocolVersion = "2025-11-25", capabilities = { tools = {} }, serverInfo = { name = %q, version = "1" } }
  elseif m.method == "tools/list" then
    r = { tools = %s }
  end
  local id = m.id
  if %s and id then id = tostring(math.tointeger(id)) end
  if r and id then io.stdout:write(cjson.encode { jsonrpc = "2.0", id = id, result = r }, "\n") io.stdout:flush() end
end
]], name, o.tools or "{ { name = 't', inputSchema = { type = 'object' } } }", tostring(o.string_ids == true)))
  return bin, path
end

function F.initialized(folders)
  local dir = H.tmpdir()
  local r = H.orket("init p", { cwd = dir })
  assert(r.status == 0, r.stderr)
  local p = dir .. "/p"
  for _, f in ipairs(folders or {}) do os.execute("mkdir -p " .. H.quote(p .. "/" .. f)) end
  return p
end

--- append(path, text): text added at the end of the file.
function F.append(path, text)
  local f = assert(io.open(path, "ab"))
  f:write(text)
  f:close()
end

-- The scripted team: a coder and a reviewer seat, both played by the model file script.lua.
F.SCRIPTED_TEAM = [[
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]]

-- A script.lua for the scripted team: the coder hands each card in, the reviewer marks it done.
F.HAND_IN_SCRIPT = [[return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

--- scripted_project{name =, script =, epics = {FILE = json text}, settings = orket.lua text}
--- -> dir: a project of the scripted team (script: the text of its script.lua), its epics
--- imported (the command checked), on the test's backend (tests.backends).
function F.scripted_project(o)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/orket.lua", string.format("name = %q\n", o.name) .. F.SCRIPTED_TEAM .. (o.settings or ""))
  H.write(dir .. "/script.lua", o.script)
  for file, text in pairs(o.epics) do H.write(dir .. "/epics/" .. file, text) end
  require("tests.backends").project(dir)
  local r = H.orket("import", { cwd = dir })
  assert(r.status == 0, r.stderr)
  return dir
end

--- server_copy(dir) -> a copy of the project in dir, in a temp dir of its own, for another
--- `orket serve` on the same store (H.serve writes its serve.* files in the directory).
function F.server_copy(dir)
  local copy = H.tmpdir()
  os.execute("cp -R " .. H.quote(dir .. "/.") .. " " .. H.quote(copy) .. " && rm -f " .. H.quote(copy) .. "/serve.*")
  return copy
end

--- card(dir, id) -> the card as `orket card --json` shows it, with its comments and history.
function F.card(dir, id)
  local doc = H.card_json(dir, id)
  doc.card.comments, doc.card.history = doc.comments, doc.history
  return doc.card
end

-- What the forge files sign their deliveries with and the token their fake forge expects.
F.FORGE_SECRET = "s3cret-for-tests"
F.FORGE_TOKEN = "forge-token-for-tests"

F.APPENDER_ROLE = [[
return {
  intent = "Append the issue's line, then hand it in.",
  tools = { "append_line", "update_issue_status" },
  system = function(ctx) return "You are " .. ctx.seat .. ". Append your line, then hand the issue in." end,
}
]]

F.APPEND_LINE_TOOL = [[
return {
  name = "append_line",
  description = "Append this issue's id to its file.",
  effect = "write",
  parameters = { type = "object", properties = { note = { type = "string" } } },
  handler = function(args, ctx)
    local n, err, code = ctx.fs:append(ctx.card.id .. ".line", ctx.card.id .. "\n")
    if not n then return nil, err, code end
    return { appended = ctx.card.id }
  end,
}
]]

-- The team of the appender: the fake model server's calls to append_line then hand in, and
-- a reviewer that passes everything.
F.APPENDER_TEAM = [[
team = {
  senior_developer = { roles = { "appender" },
    model = "fake:chunks=1,nolog,tool=append_line,arg_note=x,then=update_issue_status,then_arg_status=code_review" },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:chunks=1,nolog,tool=update_issue_status,arg_status=done" },
}
]]

--- appender(dir, fake_url, name) : DIR's epics/, roles/, tools/ and workspace/, the appender
--- role and its tool, and an orket.lua (project NAME) whose team is the appender's on the
--- fake model server at fake_url; the caller appends its own sections and epics.
function F.appender(dir, fake_url, name)
  os.execute(string.format("mkdir -p %s/epics %s/roles %s/tools %s/workspace", H.quote(dir), H.quote(dir),
    H.quote(dir), H.quote(dir)))
  H.write(dir .. "/roles/appender.lua", F.APPENDER_ROLE)
  H.write(dir .. "/tools/append_line.lua", F.APPEND_LINE_TOOL)
  H.write(dir .. "/orket.lua", string.format([[
name = %q
models = { default = "fake:chunks=1", providers = { fake = { kind = "openai", base_url = %q } } }
]], name, fake_url .. "/v1") .. F.APPENDER_TEAM)
end

--- writer_script(writes) -> the text of a scripted model file (script.lua): the coder of
--- each card writes { card =, path =, content = [, run = N] } (run: only in that run, put
--- first) and hands it in; the reviewer seat passes it.
function F.writer_script(writes)
  local t = { "local function call(name, args) return { name = name, arguments = args } end", "local rules = {" }
  for _, w in ipairs(writes) do
    t[#t + 1] = string.format('  { role = "coder", card = %q,%s match = "^Issue ", reply = { tool_calls = {', w.card,
      w.run and (" run = " .. w.run .. ",") or "")
    t[#t + 1] = string.format("    call(\"write_file\", { path = %q, content = %q }) } } },", w.path, w.content)
  end
  t[#t + 1] = [[  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },]]
  t[#t + 1] = [[  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },]]
  t[#t + 1] = "}"
  t[#t + 1] = 'return { rules = rules, default = { content = "Nothing more to do." } }'
  return table.concat(t, "\n") .. "\n"
end

--- sandbox_request(sock, path [, {method =, body =}]) -> status, text | nil, err: one
--- exchange with a sandbox's app through its socket (body: a table sent as JSON).
function F.sandbox_request(sock, path, o)
  o = o or {}
  local http = require "orket.c.http"
  local r, err = http.request { url = "http://sandbox" .. (path or "/"), unix_socket = sock, method = o.method,
    headers = o.body and { "Content-Type: application/json" } or nil,
    body = o.body and require("cjson").encode(o.body) or nil, total_timeout_ms = 10000 }
  if not r then return nil, err end
  local guard <close> = r
  local status, herr = r:headers()
  if not status then return nil, herr end
  local parts = {}
  while true do
    local ev = r:read()
    if not ev then break end
    for _, x in ipairs(ev) do parts[#parts + 1] = x end
  end
  return status, table.concat(parts)
end

--- stream_at_once(req, total, char): answers an orket.c.httpd request with total bytes of
--- char, streamed as fast as its client takes them (a queue of 256 KiB at most)
function F.stream_at_once(req, total, char)
  local s = assert(req:stream(200, {}))
  local piece = string.rep(char, 16 * 1024)
  for _ = 1, total // #piece do
    if s:queued() > 256 * 1024 and s:drain(128 * 1024) then return end
    if not s:send(piece) then return end
  end
  s:close()
end

--- sandbox_list(dir [, all]) -> `orket sandbox list --json`'s rows, the command checked.
function F.sandbox_list(dir, all)
  local r = H.orket("sandbox list --json" .. (all and " --all" or ""), { cwd = dir })
  assert(r.status == 0, r.stderr)
  return require("cjson").decode(r.stdout)
end

--- marked_procs(mark) -> the /proc/PID/environ paths of the processes whose environment
--- holds MARK=mark (orket.lua's sandbox.env gives it to each service of a sandbox)
function F.marked_procs(mark)
  local out = {}
  local p = io.popen("grep -l " .. H.quote("MARK=" .. mark) .. " /proc/[0-9]*/environ 2>/dev/null")
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

--- ROOMY: H.serve's options for a server a browser test asks many times from one address in
--- a few seconds: the rate limits out of the way (each page load without a session asks
--- once and is refused, so failed authentications too)
--- served(o) -> server, stop: orket.serve.new(o) running in a task of this process;
--- stop() stops it, waits for its run to end and closes o.db
function F.served(o)
  local task = require "orket.task"
  local srv = assert(require("orket.serve").new(o))
  local running = task.spawn(srv.run, srv)
  return srv, function()
    task.spawn(srv.stop, srv):join()
    running:join()
    o.db:close()
  end
end

F.ROOMY = { env = { ORKET_SERVE_LIMITS = "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000,"
  .. "auth_fail_rate=100,auth_fail_burst=1000" } }

--- sandbox_detect(files[, sandbox]) -> plan.detect's answer for a tree holding files ({name =
--- text}, folders made as needed) under orket.lua's sandbox section sandbox (default none)
function F.sandbox_detect(files, sandbox)
  local dir = H.tmpdir()
  for name, text in pairs(files) do
    os.execute("mkdir -p " .. H.quote(dir .. "/" .. (name:match("^(.*)/") or ".")))
    H.write(dir .. "/" .. name, text)
  end
  local ws = assert(require("orket.workspace").open(dir))
  local p, err, code, why = require("orket.sandboxes.plan").detect(ws, require("orket.settings.sandbox").sandbox {
    sandbox = sandbox })
  ws:close()
  return p, err, code, why
end

--- board_cards(wd) -> "ID ID ...": the cards the web board's tree shows in browser session wd
function F.board_cards(wd)
  return wd:js("return [...document.querySelectorAll('#tree li[data-card]')].map(e => e.dataset.card).join(' ')")
end

return F
