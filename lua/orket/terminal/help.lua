-- orket.terminal.help: `help` and `help(x)` in `orket repl`. What is at hand (the REPL's
-- globals and their fields and methods), one line each, read from the contract comments
-- (`--- project:turn(...) -> ...`) of the modules that provide them, the same comments
-- docs/engine.md's REPL section is written from. orket.terminal.complete completes the
-- same names.
local fieldline = require "orket.fieldline"

local M = {}

-- The REPL's globals. `from` lists the modules whose contract comments describe the
-- global's members: {module, owner} reads the comments naming `owner.x` or `owner:x`;
-- {module} reads the module's own functions (`name(...)`, no owner).
M.TOPICS = {
  { name = "project", what = "the project of this folder (a folder with orket.lua): board, store, models, scripts",
    from = { { "orket.terminal.console", "project" } } },
  { name = "orket", what = "the runtime: version, clock, tasks, memory, json, pretty-printer",
    from = { { "orket", "orket" } } },
  { name = "llm", what = "the models of this folder's orket.lua: llm.chat{messages = {...}} streams a reply",
    from = { { "orket.terminal.chat", "llm" } } },
  { name = "help", what = "this list; help(x) says more about x: a global, a field or method (project.turn), a name (\"llm.chat\")",
    from = {} },
}

local WIDTH = 100 -- a summary line is cut here: the whole comment is one help(x) away

--- contracts(source_text[, owner]) -> list of {first=, lines={...}, bare=}: each block of
--- `---` comment lines; bare is the name of a module function the block opens with
--- (`name(`). A line opening with `owner.x` or `owner:x` starts a block of its own, so that
--- fields can be documented one a line.
function M.contracts(text, owner)
  local blocks, cur = {}, nil
  local opens = owner and ("^" .. owner .. "[.:][%a_]")
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    local body = line:match("^%s*%-%-%-(.*)$")
    if body and not body:match("^%-") then
      body = body:gsub("^ ", "")
      if not cur or (opens and body:match(opens)) then
        cur = { first = body, lines = {}, bare = body:match("^([%a_][%w_]*)[(%s{]") }
        blocks[#blocks + 1] = cur
      end
      cur.lines[#cur.lines + 1] = body
    else
      cur = nil
    end
  end
  return blocks
end

-- The names of owner's members a block documents: the first line opens with them, joined by
-- " / " (`project:approve(...) / project:deny(...)`); an `a.b` further on is prose.
local function documented(block, owner)
  local out = {}
  local head = block.first
  for part in (head .. " / "):gmatch("(.-) / ") do
    local o, n = part:match("^([%a_][%w_]*)[.:]([%a_][%w_]*)")
    if o == owner then out[#out + 1] = n end
  end
  return out
end

local function read_module(name)
  local path = package.searchpath(name, package.path)
  return path and fieldline.read(path)
end

--- members(topic) -> list of {name=, first=, text=, block=} in source order, each name once: what
--- the topic's contract comments document.
function M.members(topic)
  local out, seen = {}, {}
  for _, src in ipairs(topic.from) do
    local text = read_module(src[1])
    if text then
      for _, b in ipairs(M.contracts(text, src[2])) do
        local names = src[2] and documented(b, src[2]) or { b.bare }
        for _, n in ipairs(names) do
          if n and not seen[n] then
            seen[n] = true
            out[#out + 1] = { name = n, first = b.first, text = table.concat(b.lines, "\n"), block = b }
          end
        end
      end
    end
  end
  return out
end

local function cut(s)
  if #s <= WIDTH then return s end
  return s:sub(1, WIDTH - 3) .. "..."
end

-- A page of help: printed as its text by the REPL (not as a table).
local Page = { __name = "help page" }
Page.__index = Page
Page.__tostring = function(p) return p.text end

local function page(text) return setmetatable({ text = text }, Page) end

local function topic_named(name)
  for _, t in ipairs(M.TOPICS) do
    if t.name == name then return t end
  end
end

local function topic_text(t, present)
  local out = { t.name .. ": " .. t.what .. (present and "" or " (not opened here)") }
  local last
  for _, m in ipairs(M.members(t)) do
    if m.block ~= last then out[#out + 1] = "  " .. cut(m.first) end -- approve / deny: one line
    last = m.block
  end
  return table.concat(out, "\n")
end

--- overview(env) -> page: each global at hand with one line, and under it its
--- members, one line each (the first line of each contract comment).
function M.overview(env)
  local parts = { "At hand (help(x) shows all of x's comment; Tab completes names):" }
  for _, t in ipairs(M.TOPICS) do
    parts[#parts + 1] = topic_text(t, env[t.name] ~= nil)
  end
  parts[#parts + 1] = "Lua's own libraries (string, table, math, io, os) are here too; docs/engine.md, \"The REPL\"."
  return page(table.concat(parts, "\n"))
end

-- The member of a topic that x names: a value found by identity among the members at
-- hand (project.board, project.turn), or a name ("turn", "project:turn", "llm.chat").
local function find(env, x)
  if type(x) == "string" then
    local owner, name = x:match("^([%a_][%w_]*)[.:]([%a_][%w_]*)$")
    local t = topic_named(owner or x)
    if t and not name then return t end
    for _, topic in ipairs(M.TOPICS) do
      if not owner or topic.name == owner then
        for _, m in ipairs(M.members(topic)) do
          if m.name == (name or x) then return topic, m end
        end
      end
    end
    return nil
  end
  for _, t in ipairs(M.TOPICS) do
    if env[t.name] ~= nil and rawequal(env[t.name], x) then return t end
  end
  for _, t in ipairs(M.TOPICS) do
    local root = env[t.name]
    if root ~= nil then
      for _, m in ipairs(M.members(t)) do
        local ok, v = pcall(function() return root[m.name] end)
        if ok and v ~= nil and rawequal(v, x) then return t, m end
      end
    end
  end
end

--- about(env, x) -> page: the topic x is (its members, one line each) or the whole
--- contract comment of the member x is; for anything else, what it is and where to look.
function M.about(env, x)
  local t, m = find(env, x)
  if m then return page(m.text) end
  if t then return page(topic_text(t, env[t.name] ~= nil)) end
  local what = type(x) == "string" and string.format("%q", x) or ("this " .. type(x))
  return page("no help for " .. what .. "; help() lists what is at hand")
end

--- names(env, value) -> the member names the topics document for value (a global at
--- hand), or nil: what completion offers for objects whose fields a function looks up.
function M.names(env, value)
  for _, t in ipairs(M.TOPICS) do
    if env[t.name] ~= nil and rawequal(env[t.name], value) then
      local out = {}
      for i, m in ipairs(M.members(t)) do out[i] = m.name end
      return out
    end
  end
end

-- The `help` object: printed, it is the overview; called, it answers help(x).
local Help = { __name = "help" }

--- new(env) -> the REPL's `help` global, over the globals in env. `help` alone prints the
--- overview, help() returns it and help(x) says more about x.
function M.new(env)
  return setmetatable({}, {
    __name = Help.__name,
    help = Help,
    __call = function(_, ...)
      if select("#", ...) == 0 then return M.overview(env) end
      return M.about(env, (...))
    end,
    __tostring = function() return M.overview(env).text end,
  })
end

--- text_of(v) -> the text the REPL prints for v when v is `help` or one of its pages, else nil
function M.text_of(v)
  local mt = getmetatable(v)
  if mt == Page then return v.text end
  if type(mt) == "table" and rawget(mt, "help") == Help then return tostring(v) end
end

return M
