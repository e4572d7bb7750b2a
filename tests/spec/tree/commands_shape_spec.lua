-- The commands' shape: every command's words are read by the one parser (orket.cmdline,
-- through cli.parse or cli.words) from its declaration, never walked by hand, and no
-- function in a command file grows past LIMIT lines. Each check is first fed a made-up
-- command, so that it is seen to fail.
local home = package.orket_home
local cli = require "orket.cli"

local LIMIT = 40

-- Commands exempt from the hand-parsing check, by name (none: every command reads its words
-- with orket.cmdline; a new exemption needs a reason beside it).
local OWN_PARSER = {}

-- Functions not yet split into steps, each with the length it may not exceed: the list may
-- only shrink (a function split below LIMIT must leave it, which the last test checks).
local LONG = {
}

local function read(path) return assert(require("orket.fieldline").read(path)) end

local function lines_of(src)
  local t = {}
  for l in (src .. "\n"):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- Code without its comments (a comment may speak of arg[0]).
local function code_of(line) return (line:gsub("%-%-.*$", "")) end

--- hand_parsing(src) -> { "LINE: text" }: the lines that walk a command's words themselves
--- (args[i], #args, ipairs(args), the global arg) instead of declaring them.
local function hand_parsing(src)
  local found = {}
  for n, l in ipairs(lines_of(src)) do
    local c = code_of(l)
    if c:find("%f[%w_]args%s*%[") or c:find("#%s*args%f[^%w_]") or c:find("pairs%s*%(%s*args%s*%)")
        or c:find("%f[%w_.]arg%s*%[") then
      found[#found + 1] = n .. ": " .. l
    end
  end
  return found
end

--- long_functions(src) -> { {name, first line, length} }: every function (nested ones
--- inside their own) longer than LIMIT lines, found by its opening line and the "end" at
--- the same indentation (the code's style: one statement a line, two-space indents).
local function long_functions(src)
  local t, found = lines_of(src), {}
  for i, l in ipairs(t) do
    local c = code_of(l)
    local ind, name = c:match("^(%s*)local%s+function%s+([%w_]+)")
    if not ind then ind, name = c:match("^(%s*)function%s+[%w_]+[.:]([%w_]+)") end
    if not ind then ind, name = c:match("^(%s*)function%s+([%w_]+)") end
    if not ind then ind, name = c:match("^(%s*)[%w_.]-([%w_]+)%s*=%s*function%s*%(") end
    local one_line = c:find("function%s*[%w_.:]*%s*%b().*%f[%w]end%f[^%w]")
    if ind and not one_line then
      for j = i + 1, #t do
        if t[j]:match("^" .. ind .. "end[%s,)}]*$") then
          if j - i + 1 > LIMIT then found[#found + 1] = { name, i, j - i + 1 } end
          break
        end
      end
    end
  end
  return found
end

local function command_files()
  local files = {}
  for _, name in ipairs(cli.COMMANDS) do files[name] = home .. "/lua/orket/cmd/" .. name .. ".lua" end
  return files
end

describe("the checks of a command's shape", function()
  it("see a made-up command that walks its words by hand", function()
    local made_up = table.concat({
      "local cmd = { name = 'x', summary = 'x' }",
      "function cmd.run(args, cli)",
      "  -- arg[0] in a comment is no parsing",
      "  for i = 1, #args do",
      "    if args[i] == '--json' then end",
      "  end",
      "  for _, a in ipairs(args) do end",
      "  local script = arg[1]",
      "end",
    }, "\n")
    local found = hand_parsing(made_up)
    assert.same({ "4:   for i = 1, #args do", "5:     if args[i] == '--json' then end",
      "7:   for _, a in ipairs(args) do end", "8:   local script = arg[1]" }, found)
    assert.same({}, hand_parsing("local o, st = cli.parse(cmd, args)\nlocal t = task_args[1]\n"))
  end)

  it("see a made-up command function longer than the limit, and not one at it", function()
    local function body(n)
      local t = { "function cmd.run(args, cli)" }
      for i = 1, n - 2 do t[#t + 1] = "  local x" .. i .. " = " .. i end
      t[#t + 1] = "end"
      return table.concat(t, "\n")
    end
    assert.same({}, long_functions(body(LIMIT)))
    assert.same({ { "run", 1, LIMIT + 1 } }, long_functions(body(LIMIT + 1)))
    -- nested and local functions, and one closed on its own line, each on its own
    local src = "local function outer()\n  local f = function(v) return v end\n  " .. body(LIMIT + 5):gsub("\n", "\n  ")
      .. "\nend"
    local found = long_functions(src)
    assert.equal(2, #found)
    assert.same({ "outer", 1, LIMIT + 8 }, found[1])
    assert.same({ "run", 3, LIMIT + 5 }, found[2])
  end)
end)

describe("every command", function()
  it("reads its words with the one parser, from its declaration", function()
    for name, path in pairs(command_files()) do
      if not OWN_PARSER[name] then
        local found = hand_parsing(read(path))
        assert(#found == 0, path .. " parses its arguments itself:\n" .. table.concat(found, "\n"))
      end
    end
  end)

  it("has no function over " .. LIMIT .. " lines, but the few not split yet, none grown", function()
    local seen = {}
    for _, path in pairs(command_files()) do
      local file = path:match("[^/]+$")
      for _, f in ipairs(long_functions(read(path))) do
        local key = file .. ":" .. f[1]
        seen[key] = true
        assert(LONG[key], string.format("%s:%d: %s is %d lines (at most %d; split it into named steps)",
          path, f[2], f[1], f[3], LIMIT))
        assert(f[3] <= LONG[key], string.format("%s:%d: %s grew to %d lines (was %d; split it into named steps)",
          path, f[2], f[1], f[3], LONG[key]))
      end
    end
    for key in pairs(LONG) do
      assert(seen[key], key .. " is within the limit now: take it off the list of long functions")
    end
  end)

  it("with a declaration makes its usage and help from it", function()
    local cmdline = require "orket.cmdline"
    local n = 0
    for _, name in ipairs(cli.COMMANDS) do
      local cmd = cli.load_command(name)
      if cmd.args then
        n = n + 1
        assert.is_nil(cmd.usage, name .. ": a hand-written usage beside its declaration")
        local help = cli.help_text(name)
        assert.equal("usage: " .. cmdline.usage(name, cmd.args) .. "\n", help:sub(1, #cmdline.usage(name, cmd.args) + 8))
        for _, e in ipairs(cmd.args) do
          if e.help then assert(help:find("\n  " .. e[1], 1, true), name .. ": help lacks " .. e[1]) end
        end
      end
    end
    assert.is_true(n >= 21, "commands with a declaration: " .. n)
  end)

  -- log listed only -C DIR, worker's --model said nothing, status had its summary alone
  it("lists every option of log, worker and status with what it does", function()
    for _, name in ipairs { "log", "worker", "status" } do
      local help = cli.help_text(name)
      local usage = help:match("^usage: ([^\n]*)")
      for opt in usage:gmatch("%[(%-%-?[%w-]+)") do
        assert(help:find("\n  " .. opt .. " ", 1, true), name .. ": help lacks " .. opt)
      end
    end
  end)
end)
