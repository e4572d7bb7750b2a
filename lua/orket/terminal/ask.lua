-- orket.terminal.ask: questions to a person at a terminal, for a command's wizard: a line
-- with a default, or one name of a few. A wrong answer is said and asked again; the end of
-- input (Ctrl-D) cancels. Reads and writes the files it is given (io.stdin, io.stdout).
local inert = require "orket.inert"

local M = {}

M.MAX_TRIES = 20 -- a wrong answer this many times over is a script at the keyboard: stop

local Ask = {}
Ask.__index = Ask

--- new(input, output) -> asker: input a file read by lines, output a file written to
function M.new(input, output) return setmetatable({ input = input, output = output }, Ask) end

--- asker:line(question, default, check) -> answer | nil (input ended, or MAX_TRIES wrong
--- answers): the line typed, spaces around it dropped; an empty line is default.
--- check(answer) -> true | nil, why: why is shown and the question asked again.
function Ask:line(question, default, check)
  for _ = 1, M.MAX_TRIES do
    self.output:write(question, default and default ~= "" and (" [" .. inert.text(default) .. "]") or "", ": ")
    self.output:flush()
    local got = self.input:read("l")
    if got == nil then
      self.output:write("\n")
      return nil
    end
    got = got:gsub("^%s+", ""):gsub("%s+$", "")
    if got == "" then got = default or "" end
    local ok, why = true, nil
    if check then ok, why = check(got) end
    if ok then return got end
    self.output:write("  ", inert.text(why or "not an answer"), "\n")
  end
  return nil
end

--- asker:choice(question, names, default) -> one of names | nil (as line): the list is
--- shown after the question; a name's unique beginning is enough.
function Ask:choice(question, names, default)
  local function pick(got)
    local found
    for _, n in ipairs(names) do
      if n == got then return n end
      if got ~= "" and n:sub(1, #got) == got then
        if found then return nil end
        found = n
      end
    end
    return found
  end
  local got = self:line(question .. " (" .. table.concat(names, "/") .. ")", default, function(a)
    if pick(a:lower()) then return true end
    return nil, "answer one of: " .. table.concat(names, ", ")
  end)
  return got and pick(got:lower())
end

return M
