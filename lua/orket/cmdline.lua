-- orket.cmdline: the one parser of command-line words, fed a command's declaration (data:
-- its options and positionals, each with its help), and the usage line and option list
-- that `orket COMMAND --help` shows, made from the same declaration. Pure (but for a
-- directory's look at the file system: whether two are one, whether one is a file): it
-- returns errors as messages; orket.cli prints them.
--
-- A declaration is a list of entries:
--   { "--json", help = "..." }                          a flag: opts.json = true
--   { "--model", value = "M", help = "..." }            an option with a value: opts.model
--   { "--role", value = "ROLE", many = true }           repeatable: opts.role = { ... }
--   { "-C", value = "DIR", key = "dir", default = "." } key names the field, default its value
--   { "RUN", optional = true }                          a positional word: opts.run
--   { "ARGS", many = true, rest = true }                the words left; rest: taken as they
--                                                       are, options included (a script's)
-- An option with last = true ends the options: every word after its value is positional
-- (a positional with last = true, a subcommand's name, ends them after it likewise);
-- alias = "-j" is another name of it. Any entry may carry check = fn(value[, name]) -> value | nil,
-- message (a message naming the argument, as a usage error; name: an option's name as the
-- person gave it, the alias or its own, for that message), and `what` (the missing-value
-- error: "-C needs a directory"), and once = fn(earlier, value) -> true | message: a second
-- value for its field (given twice, or by two entries of one key) is refused unless fn
-- takes it, where the later one would silently win. An option with a value and no once,
-- given twice with two values, is refused naming it (one_value's), unless it is many.
-- A negative number ("-1") where a positional whose check takes numbers is next (log's RUN)
-- is refused as that positional's bad value, not as an unknown option. Positionals are required unless optional or many (missing
-- = the error when one is not given); an option is when required = true. An empty word
-- ("") is refused for an option's value and for a positional (never a directory, an id or
-- a number: `orket init ""` would make "/" the project), unless the entry has empty = true
-- (free text that may be empty) or is rest (a script's words are its own).
-- The declaration's own fields:
--   text  = "a note"  what free text is called in the unknown-option error ("put -- before it")
--   extra = "give one run number, not '%s' as well"   a word no positional takes (%s: it)
--   none  = "version takes no arguments"              any word at all, when nothing is declared
--   usage = "..."     the usage line when the generated one would not say enough
local M = {}

--- one_dir(a, b) -> true | message: whether two directories a command was given (-C A and
--- -C B, `orket -C A CMD -C B`, `orket import A -C B`) are one, however spelled (p, ./p/, its
--- absolute path); two different ones are refused naming both, as neither can be guessed.
function M.one_dir(a, b)
  if a == b then return true end
  local uv = require "luv" -- lazy: only a command given two directories looks at them
  local ra, rb = uv.fs_realpath(a), uv.fs_realpath(b)
  if ra and ra == rb then return true end
  -- a folder that does not exist (yet) is compared by its spelling, "./p/" as "p": the
  -- command says it is missing, not that two were given
  local function plain(p) return (p:gsub("/+", "/"):gsub("/%./", "/"):gsub("^%./", ""):gsub("(.)/$", "%1")) end
  if not (ra and rb) and plain(a) == plain(b) then return true end
  return nil, string.format("two different directories given, '%s' and '%s': a command works in one; give one -C DIR", a, b)
end

--- one_value(name) -> a `once` for an option whose second, different value must not silently
--- win over the first (a key's --role: `--role viewer --role admin` would make an admin key):
--- both are refused, named; the same value twice is one.
function M.one_value(name)
  return function(a, b)
    if a == b then return true end
    return nil, string.format("%s given twice, '%s' and '%s': give it once", name, tostring(a), tostring(b))
  end
end

--- a_dir(name[, must_exist]) -> a check taking a directory, or a path that does not exist
--- (the command says it is missing, as it says so of a project); a file is refused naming
--- it ("-C x: not a directory"), where commands said "orket.lua: cannot read: Not a
--- directory". must_exist: a missing one is refused too ("-C x: no such directory"). The
--- option is named as the person gave it (an alias: --workspace x), else as name. The value
--- is the directory fixed as the command starts (orket.config.fixed_dir: "../p" made
--- absolute, so that nothing later goes through the working directory).
function M.a_dir(name, must_exist)
  return function(v, given)
    local st = require("luv").fs_stat(v) -- lazy: as one_dir's
    local shown = (given or name) and ((given or name) .. " ") or ""
    if not st and must_exist then return nil, string.format("%s%s: no such directory", shown, v) end
    if st and st.type ~= "directory" then return nil, string.format("%s%s: not a directory", shown, v) end
    if not ("/" .. v .. "/"):find("/%.%./") then return v end -- (kept as typed: orket.config.fixed_dir)
    -- lazy: only a name with ".." needs it, and orket.config loads the settings with it
    return require("orket.config").fixed_dir(v)
  end
end

-- -C DIR, which most commands take: the project's directory.
M.DIR = { "-C", value = "DIR", key = "dir", default = ".", what = "a directory", once = M.one_dir, check = M.a_dir("-C"),
  help = "the project's directory (default: the current one)" }

--- integer(word) -> the integer a word of decimal digits (with an optional '-') says, or nil:
--- not Lua's tonumber, which takes 1e3, 0x10 and " 5" too
function M.integer(v)
  return type(v) == "string" and v:match("^%-?%d+$") and math.tointeger(tonumber(v)) or nil
end

--- dir_args(name) -> the declaration of a command whose only argument is the project's
--- directory, given as DIR or as every other command's -C DIR
function M.dir_args(name)
  return { extra = name .. " takes at most one directory",
    { "DIR", optional = true, key = "dir", default = ".", what = "a directory", once = M.one_dir, check = M.a_dir() },
    M.DIR }
end

--- at_least(min, message) -> a check taking an integer of at least min, refusing
--- anything else with message.
function M.at_least(min, message)
  return function(v)
    local n = M.integer(v)
    if not n or n < min then return nil, message end
    return n
  end
end

--- one_of(choices, message) -> a check taking one of the words in choices, refusing any
--- other with message (%s: the word), as a subcommand's.
function M.one_of(choices, message)
  return function(v)
    for _, c in ipairs(choices) do if c == v then return v end end
    -- a typo of one is named with it, as an option's is (secrets lst: did you mean 'list'?)
    local near = #v > 1 and require("orket.nearest").nearest(v, choices) -- lazy: only for a bad word
    return nil, string.format(message, v) .. (near and ("; did you mean '" .. near .. "'?") or "")
  end
end

local function is_option(e) return e[1]:sub(1, 1) == "-" end

-- What a numeric positional names, for the error a negative number gets, by its name.
local NUMBERS = { RUN = "a run number as 'orket runs' lists them" }

-- "-1" where the next positional p takes numbers (its check takes the word and gives the
-- number back): an error naming p, where "unknown option '-1'" would name no argument.
-- nil when p takes no numbers (free text, where "-1" still needs -- before it).
local function negative_positional(p, a)
  if not (p and p.check and not p.rest) then return nil end
  local got, msg = p.check(a)
  if not got then return msg end
  if M.integer(tostring(got)) ~= M.integer(a) then return nil end
  return string.format("%s must be %s, not %s", p[1], p.what or NUMBERS[p[1]] or "a number of 0 or more", a)
end

-- The field an entry's value is kept under: "--lease-ms" -> lease_ms, "RUN" -> run.
function M.key(e)
  return e.key or e[1]:gsub("^%-+", ""):gsub("[-|]", "_"):lower()
end

local function index(decl)
  local opts, pos = {}, {}
  for _, e in ipairs(decl) do
    if is_option(e) then
      opts[e[1]] = e
      if e.alias then opts[e.alias] = e end
    else
      pos[#pos + 1] = e
    end
  end
  return opts, pos
end

-- Applies an entry's check, then stores the value (appended when the entry repeats).
-- name: the option as given (-C, or --workspace for its alias), for the empty-word error.
local function store(o, e, v, name)
  if v == "" and not e.empty and not e.rest then
    if name then return nil, string.format("%s needs %s, not an empty word", name, e.what or e.value) end
    return nil, string.format("%s is an empty word%s", e[1], e.what and ("; give " .. e.what) or "")
  end
  if e.check then
    local got, msg = e.check(v, name)
    if not got then return nil, msg end
    v = got
  end
  local k = M.key(e)
  -- an option's second value would silently win over the first (--tool a --tool b)
  local once = e.once or (not e.many and e.value and is_option(e) and M.one_value(name or e[1]))
  if once and o[k] ~= nil then
    local same, msg = once(o[k], v)
    if not same then return nil, msg end
  end
  if e.many then
    o[k] = o[k] or {}
    table.insert(o[k], v)
  else
    o[k] = v
  end
  return true
end

-- The positional a word goes to: the next one not yet filled, or one that takes many.
local function next_positional(pos, filled)
  local e = pos[filled + 1]
  if e then return e, filled + 1 end
  local last = pos[#pos]
  if last and last.many then return last, filled end
  return nil, filled
end

local function unknown_option(decl, a)
  if decl.none then return decl.none end
  -- a typo of one of the command's options is named with it (--jsn: did you mean '--json'?)
  local names = {}
  for _, e in ipairs(decl) do
    if is_option(e) then names[#names + 1] = e[1] end
  end
  local near = #a > 2 and require("orket.nearest").nearest(a, names) -- lazy: only for a bad word
  local hint = near and ("; did you mean '" .. near .. "'?") or ""
  if decl.text then return string.format("unknown option '%s' (%s, put -- before it)%s", a, decl.text, hint) end
  return string.format("unknown option '%s'%s", a, hint)
end

-- Fills defaults and checks that every required positional was given.
local function finish(decl, o, pos, filled)
  for i = filled + 1, #pos do
    local e = pos[i]
    if not e.optional and not e.many then
      return nil, e.missing or string.format("%s is required", e[1])
    end
  end
  for _, e in ipairs(decl) do
    local k = M.key(e)
    if o[k] == nil and e.required then return nil, string.format("%s is required", e[1]) end
    if o[k] == nil and e.default ~= nil then o[k] = e.default end
  end
  return o
end

--- parse(decl, args) -> opts | nil, message: args (a command's words, "--name=value"
--- already split by orket.cli, args.attached marking the values so split) read against decl. After "--" every word is positional.
--- A value option takes the next word whatever it is; a missing one is an error naming it.
function M.parse(decl, args)
  local opts, pos = index(decl)
  local o, filled, options = {}, 0, true
  local i = 1
  while i <= #args do
    local a = args[i]
    local e = options and opts[a]
    if options and a == "--" then
      options = false
    elseif e and e.value then
      local v = args[i + 1]
      if v == nil then return nil, string.format("%s needs %s", a, e.what or e.value) end
      local ok, msg = store(o, e, v, a)
      if not ok then return nil, msg end
      i = i + 1
      if e.last then options = false end
    elseif e then
      -- "--json=1", split by orket.cli into two words: the 1 is no positional of its own
      if args.attached and args.attached[i + 1] then
        return nil, string.format("unknown argument '%s': %s takes no value", args[i + 1], a)
      end
      local ok, msg = store(o, e, true)
      if not ok then return nil, msg end
    elseif options and a:match("^%-.") then
      local bad = a:match("^%-%d+$") and negative_positional((next_positional(pos, filled)), a)
      return nil, bad or unknown_option(decl, a)
    else
      local p
      p, filled = next_positional(pos, filled)
      if not p then return nil, decl.none or string.format(decl.extra or "unknown argument '%s'", a) end
      if p.rest then
        for j = i, #args do
          local ok, msg = store(o, p, args[j])
          if not ok then return nil, msg end
        end
        break
      end
      local ok, msg = store(o, p, a)
      if not ok then return nil, msg end
      if p.last then options = false end
    end
    i = i + 1
  end
  return finish(decl, o, pos, filled)
end

-- One entry as the usage line writes it: [--json], --tool TOOL, [RUN], [ARGS...].
local function usage_word(e)
  local w = e.value and (e[1] .. " " .. e.value) or e[1]
  if e.many then w = w .. "..." end
  if is_option(e) then return e.required and w or "[" .. w .. "]" end
  return (e.optional or e.many) and "[" .. w .. "]" or w
end

--- usage(name, decl) -> "orket NAME POSITIONALS [OPTIONS]": decl.usage when it has one.
function M.usage(name, decl)
  if decl.usage then return decl.usage end
  local t = { "orket " .. name }
  for _, e in ipairs(decl) do if not is_option(e) then t[#t + 1] = usage_word(e) end end
  for _, e in ipairs(decl) do if is_option(e) then t[#t + 1] = usage_word(e) end end
  return table.concat(t, " ")
end

--- options_help(decl) -> text | nil: one aligned line per entry that has help
--- ("  --json            print JSON"), continuation lines indented under it.
function M.options_help(decl)
  local rows, w = {}, 0
  for _, e in ipairs(decl) do
    if e.help then
      local left = e.value and (e[1] .. " " .. e.value) or e[1]
      -- a short alias first (-d, --detach); a long one after (-C DIR, --workspace DIR)
      if e.alias and #e.alias < #e[1] then left = e.alias .. ", " .. left
      elseif e.alias then left = left .. ", " .. e.alias .. (e.value and (" " .. e.value) or "") end
      rows[#rows + 1] = { left, e.help }
      w = math.max(w, #left)
    end
  end
  if #rows == 0 then return nil end
  local out = {}
  for _, r in ipairs(rows) do
    local pad = string.rep(" ", w + 4)
    local help = r[2]:gsub("\n", "\n" .. pad)
    out[#out + 1] = string.format("  %-" .. w .. "s  %s", r[1], help)
  end
  return table.concat(out, "\n")
end

return M
