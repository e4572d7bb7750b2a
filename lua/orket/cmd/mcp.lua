-- orket mcp serve | list: the Model Context Protocol. serve speaks MCP over stdio (one
-- JSON-RPC message per line on stdin and stdout, logs on stderr) with the board's tools and
-- resources (orket.serve.mcp_server); list shows the MCP servers orket.lua names (orket.mcp.client).
local uv = require "luv"
local task = require "orket.task"
local jsonout = require "orket.jsonout"
local rpc = require "orket.mcp.jsonrpc"
local linestream = require "orket.mcp.linestream"
local server = require "orket.serve.mcp_server"
local executor = require "orket.engine.executor"
local manager = require "orket.mcp.manager"
local inert = require "orket.inert"
local cmdline = require "orket.cmdline"
local logwriter = require "orket.serve.logwriter"
local localuse = require "orket.serve.localuse"

local client = require "orket.mcp.client"

-- why a tool past the cap on a server's tools is refused (orket.mcp.client.tools_of)
local OVER_CAP = client.OVER_CAP

local cmd = { name = "mcp", summary = "serve the board over MCP (stdio), list orket.lua's MCP servers" }
-- a reader of stdout gone is no failure of it (orket.cli output_checked)
cmd.outlives_reader = true
cmd.args = {
  usage = "orket mcp serve [--read-only] [-C DIR] | orket mcp list [--json] [-C DIR]",
  text = "a directory", extra = "mcp serve and mcp list take no other word",
  { "serve|list", key = "sub", missing = "mcp needs serve or list",
    check = cmdline.one_of({ "serve", "list" }, "unknown mcp command '%s'") },
  { "--read-only", help = "serve: the reading tools only" },
  { "--json", help = "list: the servers as JSON" },
  cmdline.DIR,
}
cmd.help = [[
serve: an MCP server on stdin/stdout for an MCP client that starts it (a desktop assistant,
an editor, an agent). Its tools read the board, cards and runs, file issues, comment,
answer, approve or deny, retry and start runs, as the HTTP API does (orket serve); its
resources are cards and run transcripts, with subscriptions. It acts as the local user;
--read-only allows the reading tools only. It ends when stdin closes; runs it started stop
(resumable with 'orket resume').
list: the MCP servers named in orket.lua (mcp.servers), started as a run would start them,
with their state and tools. See docs/mcp.md.]]

local function open_stream(fd)
  local kind = uv.guess_handle(fd)
  if kind == "file" then return linestream.file_stream(fd) end
  local s = kind == "tty" and uv.new_tty(fd, fd == 0) or uv.new_pipe(false)
  if kind ~= "tty" then
    local ok, err = s:open(fd)
    if not ok then
      s:close()
      return nil, err
    end
  end
  return s
end

-- Answers each line of stdin (a JSON-RPC message) on stdout until it ends; an overlong
-- message is refused, a read error logged.
local function answer_lines(reader, session, send, write_line, log)
  while true do
    local line, err = reader:next()
    if line then
      local out = session:handle_text(line)
      if out then write_line(out) end
    elseif err == "too_long" then
      send(rpc.error(nil, rpc.INVALID_REQUEST, "message longer than " .. rpc.MAX_MESSAGE .. " bytes"))
    else
      if err ~= "eof" then log { event = "error", message = "stdin: " .. tostring(err) } end
      return
    end
  end
end

-- write_line(text) on stdout, and the SIGPIPE guard to close at the end. A client that
-- closed its end of stdout (it exited, or crashed) is gone: the session ends as when stdin
-- closes (runs it started stop, resumable), rather than SIGPIPE killing this process in the
-- middle of them; nothing more is written.
local function stdout_writer(reader, log)
  local guard = uv.new_signal()
  guard:start("sigpipe", function() end)
  local gone = false
  return function(text)
    if gone then return end
    local ok, werr = io.stdout:write(text, "\n")
    if ok then ok, werr = io.stdout:flush() end
    if not ok then
      gone = true
      log { event = "error", message = "stdout: " .. tostring(werr) .. " (the client is gone): the session ends" }
      reader:close()
    end
  end, guard
end

-- The log on stderr, one JSON object a line, written by a thread (orket.serve.logwriter)
-- with io.stderr's other lines (the runs', the leases'): a stderr reader that stopped held
-- the loop, the session's answers and the runs it started -> log(fields), writer (to be
-- closed: the real io.stderr back on a raise)
local function open_log()
  local w, werr = logwriter.open { as_stderr = true, dropped_line = logwriter.dropped_event }
  local function log(fields)
    fields.t = os.date("!%Y-%m-%dT%H:%M:%SZ")
    w:line(jsonout.encode(fields))
  end
  if werr then log { event = "warning", message = werr } end
  return log, w
end

local function serve(dir, read_only, cli)
  local db = cli.open_store(dir, false, read_only)
  if not db then return 1 end
  local input, ierr = open_stream(0)
  if not input then
    db:close()
    cli.err("stdin: %s (mcp serve reads a pipe)", tostring(ierr))
    return 1
  end
  local log, logw <close> = open_log()
  local reader = linestream.reader(input, rpc.MAX_MESSAGE)
  local write_line, pipe_guard = stdout_writer(reader, log)
  local function send(msg) write_line(rpc.encode(msg)) end
  local session = server.new { db = db, dir = dir, send = send, log = log, read_only = read_only,
    -- its writes named as the CLI's are: the user running it (local:USER, docs/teams.md)
    who = { role = read_only and "viewer" or "admin", operator = localuse.operator() } }
  executor.registry(db).log = log
  local sig = uv.new_signal()
  sig:start("sigterm", function() reader:close() end)
  local ok, terr = task.spawn(answer_lines, reader, session, send, write_line, log):join()
  reader:close()
  sig:close()
  pipe_guard:close()
  session:close()
  executor.stop_all(db)
  executor.wait_all(db)
  db:close()
  task.spawn(logw.close, logw):join() -- (what it queued written; the real io.stderr back)
  cli.flush_unhandled()
  if not ok then
    cli.err("%s", terr)
    return 1
  end
  return 0
end

-- One server's lines of `orket mcp list`. What a server sent (a refused tool's name, why it
-- went down with its stderr) is shown inert, its newlines escaped, so it cannot make lines of
-- its own. The tools past the cap are one line, not one each (a server may list thousands),
-- and a listing stopped before its end says so: the tools shown are not all it has.
local function print_server(e)
  io.stdout:write(string.format("%-16s %-6s %s\n", e.name, e.transport, e.why and ("down: " .. inert.line(tostring(e.why)))
    or string.format("ready, %d tool%s", #e.tools, #e.tools == 1 and "" or "s")))
  for _, t in ipairs(e.tools) do io.stdout:write("  ", inert.line(t), "\n") end
  local over = {}
  for _, r in ipairs(e.refused) do
    if r.why == OVER_CAP then over[#over + 1] = r.name
    else io.stdout:write("  refused ", inert.line(r.name), ": ", inert.line(r.why), "\n") end
  end
  if #over > 0 then
    io.stdout:write(string.format("  refused %d more tools (%s%s): %s\n", #over, inert.line(over[1]),
      #over > 1 and (" to " .. inert.line(over[#over])) or "", OVER_CAP))
  end
  if e.listing then io.stdout:write("  ", inert.line(e.listing), "\n") end
end

-- list: each server started as a run starts it, then stopped.
local function list(dir, json, cli)
  local cfg, s = cli.project_settings(dir, false)
  if not cfg then return 1 end
  local status, perr = manager.probe(s.mcp, dir)
  if not status then
    cli.err("%s", perr)
    return 1
  end
  if json then
    for _, e in ipairs(status) do
      e.tools = jsonout.array(e.tools)
      local refused = jsonout.array()
      for _, r in ipairs(e.refused) do refused[#refused + 1] = { name = r.name, why = r.why } end
      e.refused = refused
      e.state = e.why and "down" or "ready"
    end
    io.stdout:write(jsonout.encode { format = "orket.mcp_list/1", servers = jsonout.array(status) }, "\n")
  elseif #status == 0 then
    io.stdout:write("no MCP servers in orket.lua (mcp = { servers = { ... } }: docs/mcp.md)\n")
  end
  local failed = 0
  for _, e in ipairs(status) do
    if e.why then failed = failed + 1 end
    if not json then print_server(e) end
  end
  return failed > 0 and 1 or 0
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  if o.sub == "serve" then
    if o.json then return cli.usage_error(cmd, "--json goes with mcp list") end
    return serve(o.dir, o.read_only, cli)
  end
  if o.read_only then return cli.usage_error(cmd, "--read-only goes with mcp serve") end
  return list(o.dir, o.json, cli)
end

return cmd
