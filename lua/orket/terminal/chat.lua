-- orket.terminal.chat: `llm.chat{...}` at the REPL's prompt: a model client built on first
-- use from a folder's orket.lua (else the built-in providers), tokens streamed to standard
-- output as they arrive. The client and the folder are the session's; orket.llm keeps none.
local config = require "orket.config"
local llm = require "orket.llm"

local M = {}

--- new([dir]) -> session {chat = function(req), reset = function(), use_dir = function(dir)}:
--- chat is client:chat with the configuration of dir (default the current directory); a
--- mistake in that orket.lua is nil, msg, "bad_request". Without on_delta, tokens stream to
--- standard output and the streamed text ends its line however the call ends.
function M.new(dir)
  local s = { dir = dir or "." }
  local client

  --- llm.chat{messages = {...}[, model=, tools=, on_delta=]} -> a reply from the folder's models
  --- (or nil, msg, CLASS). Without on_delta its tokens stream to standard output as they
  --- come; model defaults to orket.lua's models.default.
  function s.chat(req)
    llm.check_request(req) -- here, so a mistake is blamed on the caller (a REPL line), not on this file
    if not client then
      local cfg, err = config.load_or_defaults(s.dir)
      local c
      if cfg then c, err = llm.open(cfg) end
      -- a mistake in the user's orket.lua is a message, not a traceback; messages name files
      -- as orket.lua does ("orket.lua:3:"): say which folder's, if not the current one
      if not c then
        return nil, "llm.chat: " .. (s.dir ~= "." and ("in " .. s.dir .. ": ") or "") .. err, "bad_request"
      end
      client = c
    end
    local r = {}
    for k, v in pairs(req) do r[k] = v end
    local res, open_line
    if r.on_delta == nil then
      local print_delta = llm.printer(io.stdout)
      r.on_delta = function(ev)
        if ev.type == "content" and ev.text ~= "" then open_line = ev.text:sub(-1) ~= "\n" end
        if ev.type == "retry" then open_line = false end
        print_delta(ev)
      end
    end
    -- the streamed text ends its line however the call ends (a failure, or Ctrl-C raising
    -- through here), so what the REPL prints next starts on a line of its own
    local _ <close> = setmetatable({}, { __close = function()
      if req.on_delta == nil and (res or open_line) then io.stdout:write("\n") end
    end })
    local err, class
    res, err, class = client:chat(r)
    if res then return res end -- the result alone: an expression in the REPL prints just it
    return nil, err, class
  end

  --- llm.reset(): forget the client chat built (after editing orket.lua)
  function s.reset() client = nil end

  --- llm.use_dir(dir): chat reads DIR's orket.lua from now on; nil goes back to the current directory
  function s.use_dir(d)
    s.dir = d or "."
    client = nil
  end

  return s
end

--- global([dir]) -> the REPL's `llm`: orket.llm's functions, with chat, reset and use_dir
--- those of a new session of dir.
function M.global(dir)
  local s = M.new(dir)
  return setmetatable({ chat = s.chat, reset = s.reset, use_dir = s.use_dir }, { __index = llm })
end

return M
