-- bench.prompt_wire: each model call of an orket command as a local server's chat template
-- lays it out, and what a prompt cache keeps of it. Run in a project's directory as
--   orket lua bench/prompt_wire.lua OUT [comment=CARD@STEP] COMMAND ARGS...
-- it runs the command in this process with the scripted provider's chat wrapped: each call's
-- card, seat, turn, step, messages and tools (their JSON text, as sent) go to OUT, one JSON
-- document a line. comment=CARD@STEP adds a person's comment on CARD before that card's
-- call of that step (a comment made during a turn). Required as a module, it gives the
-- measures over such a file (bench/prompt_cache.lua prints them).
local cjson = require "cjson"

local M = {}

-- The prompt as a template renders it (ChatML with tools, as Qwen's and Hermes' templates,
-- and Ollama's for them, do): the first system message, then the tools, then every other
-- message in order. Returns the text and the index of each message's start.
function M.render(call)
  local parts, msgs = {}, call.messages
  local first = 1
  if msgs[1] and msgs[1].role == "system" then
    parts[#parts + 1] = "<|system|>" .. (msgs[1].content or "")
    first = 2
  end
  if call.tools then parts[#parts + 1] = "<|tools|>" .. call.tools end
  for i = first, #msgs do
    local m = msgs[i]
    parts[#parts + 1] = "<|" .. m.role .. "|>" .. (m.content or "") .. (m.calls or "")
  end
  return table.concat(parts)
end

local function common_start(a, b)
  local n, i = math.min(#a, #b), 0
  while i < n and a:byte(i + 1) == b:byte(i + 1) do i = i + 1 end
  return i
end
M.common_start = common_start

local function key(m) return m.role .. "\0" .. (m.content or "") .. "\0" .. (m.calls or "") end

local SUMMARY = "^Summary of your earlier steps"

--- measure(calls) -> figures: chars (all prompts), one-slot prefix (each call against the
--- call just before), per-conversation prefix (the call before on its card and seat), the
--- floor (what is new in each call: the first call of a card and seat whole, later ones the
--- messages no earlier call of it had as often, a summary of earlier steps excepted) and
--- per call uncached/floor ratios, and moves: the calls whose summary of earlier steps
--- was new or changed.
function M.measure(calls)
  local out = { calls = #calls, chars = 0, slot = 0, conv = 0, floor = 0, ratios = {}, moves = 0 }
  local prev_text, conv = nil, {}
  for _, c in ipairs(calls) do
    local text = M.render(c)
    local n = #text
    out.chars = out.chars + n
    if prev_text then out.slot = out.slot + common_start(prev_text, text) end
    prev_text = text
    local k = c.card .. "/" .. c.seat
    local st = conv[k]
    local floor, kept
    if not st then
      floor, kept = n, 0
      st = { seen = {} }
      conv[k] = st
    else
      kept, floor = common_start(st.text, text), 0
      local count = {}
      for _, m in ipairs(c.messages) do
        local k = key(m)
        count[k] = (count[k] or 0) + 1
        -- new: more copies than any call before had (a tool may answer alike twice)
        if count[k] > (st.seen[k] or 0) and not (m.content or ""):find(SUMMARY) then
          floor = floor + #(m.content or "") + #(m.calls or "")
        end
      end
    end
    local count, summary = {}, nil
    for _, m in ipairs(c.messages) do
      local k = key(m)
      count[k] = (count[k] or 0) + 1
      st.seen[k] = math.max(st.seen[k] or 0, count[k])
      if (m.content or ""):find(SUMMARY) then summary = m.content end
    end
    -- a move of the summary: the prefix changed at a chosen point (docs/cost.md)
    if summary and summary ~= st.summary then out.moves = out.moves + 1 end
    st.summary = summary
    st.text = text
    out.conv = out.conv + kept
    out.floor = out.floor + floor
    if floor > 0 then out.ratios[#out.ratios + 1] = (n - kept) / floor end
  end
  return out
end

function M.load(path)
  local calls = {}
  for line in io.lines(path) do calls[#calls + 1] = cjson.decode(line) end
  return calls
end

local function record(out, comment, argv)
  if out == "-" then -- no record: the command's CPU time alone
    return M.run(argv)
  end
  local f = assert(io.open(out, "w"))
  local scripted = require "orket.llm.scripted"
  local common = require "orket.llm.common"
  local chat = scripted.chat
  local ccard, cstep = nil, nil
  if comment then ccard, cstep = comment:match("^comment=([^@]+)@(%d+)$") end
  scripted.chat = function(s, pname, model, req)
    local meta = req.meta or {}
    if ccard and meta.card == ccard and meta.step == tonumber(cstep) then
      local db = assert(require("orket.project").open_store(".", false))
      assert(require("orket.board").open(db):comment(ccard, { author = "ops",
        body = "Please also keep the notes in the order they were saved." }))
      db:close()
      ccard = nil
    end
    local msgs = {}
    for i, m in ipairs(req.messages) do
      local calls
      if m.tool_calls and #m.tool_calls > 0 then
        local cs = {}
        for j, tc in ipairs(m.tool_calls) do cs[j] = tc.name .. (tc.raw_arguments or "") end
        calls = table.concat(cs, ";")
      end
      msgs[i] = { role = m.role, content = m.content, calls = calls }
    end
    local list, text = common.wire_tools(req)
    f:write(cjson.encode { card = meta.card, seat = meta.seat, turn = meta.turn, step = meta.step,
      messages = msgs, tools = text or (list and cjson.encode(list)) }, "\n")
    f:flush()
    return chat(s, pname, model, req)
  end
  local status = M.run(argv)
  f:close()
  return status
end

--- run(argv) -> status: runs the orket command argv in this process and writes its CPU
--- time ("bench cpu SECONDS", from the process's clock, in microseconds) to stderr
function M.run(argv)
  local cli = require "orket.cli"
  -- the command runs inside `orket lua`'s loop, which then finishes what it left running:
  -- the command's own turn of the loop at its end would be a second one
  local rt = require "orket.c.runtime"
  local run = rt.run
  rt.run = function(mode) if mode ~= "nowait" then return run(mode) end end
  local t0 = os.clock()
  local status = cli.main(argv)
  io.stderr:write(string.format("bench cpu %.6f\n", os.clock() - t0))
  rt.run = run
  return status
end

if arg and tostring(arg[0]):match("prompt_wire%.lua$") and arg[1] then
  local argv, first = {}, 2
  local comment = arg[2] and arg[2]:match("^comment=") and arg[2]
  if comment then first = 3 end
  for i = first, #arg do argv[#argv + 1] = arg[i] end
  argv[0] = "orket"
  os.exit(record(arg[1], comment, argv))
end

return M
