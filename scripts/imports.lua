-- The import graph of orket's Lua library, read statically from lua/orket/: each module's
-- requires (top level or inside functions), the layer rules, cycles and forbidden edges.
-- Used by tests/spec/tree/imports_spec.lua; run it to see the report:
--   build/orket lua scripts/imports.lua [ROOT]   cycles (of modules and of folders), forbidden edges and unexplained lazy
--                                                requires (exit 1 if any), ROOT default: orket's home
-- a Lua string's end, as the error-line search reads it (one scan of quoted text)
local quoted_end = require("orket.fieldline").quoted_end

local M = {}

-- The layers, top to bottom (docs/architecture.md draws the same table; the spec checks its order). A module may
-- require modules of its own layer or of lower ones, never of a higher one. The first
-- pattern that matches a module's name gives its layer; patterns are anchored Lua patterns.
M.LAYERS = {
  { name = "commands", doc = "the CLI, the REPL and what a terminal shows: parse words, render results in the CLI's words",
    match = { "^orket%.cmd$", "^orket%.cmd%.", "^orket%.cli$", "^orket%.cmdline$", "^orket%.terminal%.", "^orket%.validate$" } },
  { name = "services", doc = "long-lived drivers: the HTTP server, the engine and its runs, MCP, sandboxes, and the documents they give",
    match = { "^orket%.serve$", "^orket%.serve%.", "^orket%.engine$", "^orket%.engine%.",
              "^orket%.mcp%.", "^orket%.sandboxes%.", "^orket%.views%.", "^orket$", "^orket%.auth%." } },
  { name = "actions", doc = "what can be done to a card or the project, each rule once with its result as data; the project's configuration and its outside world",
    match = { "^orket%.actions%.", "^orket%.tools$", "^orket%.toolcalls$", "^orket%.import$",
              "^orket%.llm$", "^orket%.llm%.", "^orket%.forge$", "^orket%.updates$", "^orket%.project$", "^orket%.config$",
              "^orket%.gate$", "^orket%.policy$", "^orket%.profile$", "^orket%.otel$",
              "^orket%.memory$", "^orket%.settings$", "^orket%.settings%.", "^orket%.audit%." } },
  { name = "board", doc = "the board and its store: cards, their order, persistence, the workspace",
    match = { "^orket%.board$", "^orket%.ready$", "^orket%.store$", "^orket%.store%.", "^orket%.workspace$", "^orket%.card$" } },
  { name = "base", doc = "plain helpers over the runtime: tasks, clocks, text, script environments, the error vocabulary",
    match = { "^orket%.task$", "^orket%.clock$", "^orket%.handles$", "^orket%.inert$", "^orket%.jsonout$", "^orket%.jsonwhy$",
              "^orket%.fieldline$", "^orket%.nearest$", "^orket%.pretty$", "^orket%.scriptenv$",
              "^orket%.scriptfile$", "^orket%.tree$", "^orket%.semaphore$", "^orket%.errors$", "^orket%.cost$",
              "^orket%.urlencode$", "^orket%.stopsignals$", "^orket%.sourcepos$" } },
  { name = "core", doc = "the C bindings",
    match = { "^orket%.c%." } },
}

-- Edges a layer rule forbids that are still there, each a known debt with why.
-- key: "from -> to"; value: the reason it stays for now. The test fails on an entry that
-- names no forbidden edge any more, so the list only shrinks. Empty: every debt is paid.
M.ALLOWED = {}

-- Edges between folders that still close a loop of folders (engine -> mcp -> serve ->
-- engine once did), each a known debt with why; key: "engine -> mcp" (folder names, the
-- first name under orket.). The test fails on an entry no loop needs any more, so the
-- list only shrinks. Empty: no folder imports one that imports it back.
M.FOLDER_ALLOWED = {}

---------------------------------------------------------------------------------------
-- Reading requires

-- The long bracket opening at i ("[", "=" * level, "["): its level, or nil.
local function long_open(src, i)
  local eq = src:match("^%[(=*)%[", i)
  return eq and #eq
end

--- tokens(src) -> array of { kind, text, line }: kind "name", "string" (text = contents,
--- escapes left as written), or "op" (one character). Comments are skipped.
function M.tokens(src)
  local toks, i, n, line = {}, 1, #src, 1
  local function advance_to(j)
    local _, nl = src:sub(i, j - 1):gsub("\n", "")
    line = line + nl
    i = j
  end
  while i <= n do
    local c = src:sub(i, i)
    if c:find("%s") then
      advance_to((src:find("%S", i) or n + 1))
    elseif c == "-" and src:sub(i + 1, i + 1) == "-" then
      local lvl = src:sub(i + 2, i + 2) == "[" and long_open(src, i + 2)
      if lvl then
        local close = "]" .. string.rep("=", lvl) .. "]"
        local _, e = src:find(close, i + 4 + lvl, true)
        advance_to((e or n) + 1)
      else
        advance_to(src:find("\n", i, true) or n + 1)
      end
    elseif c == '"' or c == "'" then
      local j = quoted_end(src, i)
      toks[#toks + 1] = { kind = "string", text = src:sub(i + 1, j - 1), line = line }
      advance_to(j + 1)
    elseif c == "[" and long_open(src, i) then
      local lvl = long_open(src, i)
      local close = "]" .. string.rep("=", lvl) .. "]"
      local s = i + 2 + lvl
      local e = src:find(close, s, true) or n + 1
      toks[#toks + 1] = { kind = "string", text = src:sub(s, e - 1), line = line }
      advance_to(e + #close)
    elseif c:find("[%a_]") then
      local j = src:find("[^%w_]", i) or n + 1
      toks[#toks + 1] = { kind = "name", text = src:sub(i, j - 1), line = line }
      i = j
    elseif c:find("%d") then
      local j = src:find("[^%w_.]", i) or n + 1
      i = j
    else
      toks[#toks + 1] = { kind = "op", text = c, line = line }
      i = i + 1
    end
  end
  return toks
end

-- Keywords that open a block closed by `end` (`while`/`for` open theirs with `do`).
local OPENS = { ["function"] = true, ["if"] = true, ["do"] = true }

--- requires(src) -> array of { name, line, inner }: each `require "x"`, `require("x")` or
--- `require 'x'` in the source; inner is true when it sits inside a function body.
function M.requires(src)
  local out, stack = {}, {}
  local toks = M.tokens(src)
  local function in_function()
    for k = #stack, 1, -1 do if stack[k] == "function" then return true end end
    return false
  end
  for k, t in ipairs(toks) do
    if t.kind == "name" then
      local prev = toks[k - 1]
      -- a name after "." or ":" is a field (x.end is not `end`); after ".." or "..." it is not
      local before = toks[k - 2]
      local field = prev and prev.kind == "op" and (prev.text == ":" or (prev.text == "."
        and not (before and before.kind == "op" and before.text == ".")))
      if field then
        -- not a keyword
      elseif OPENS[t.text] or t.text == "repeat" then
        stack[#stack + 1] = t.text
      elseif t.text == "end" or t.text == "until" then
        stack[#stack] = nil
      elseif t.text == "require" then
        local a, b = toks[k + 1], toks[k + 2]
        local lit = a and a.kind == "string" and a
          or (a and a.kind == "op" and a.text == "(" and b and b.kind == "string"
            and toks[k + 3] and toks[k + 3].text == ")" and b)
        if lit then out[#out + 1] = { name = lit.text, line = t.line, inner = in_function() } end
      end
    end
  end
  return out
end

---------------------------------------------------------------------------------------
-- The graph

--- read(path) -> the file's text (raises when it cannot be read)
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.read = read

--- modules(root) -> { [module name] = { file = path relative to root, requires = {...} } }
--- for every .lua file under root/lua/orket ("orket/x/init.lua" is module "orket.x").
function M.modules(root)
  local mods = {}
  local p = io.popen("cd '" .. root .. "' && find lua/orket -name '*.lua' | LC_ALL=C sort")
  for rel in p:lines() do
    local name = rel:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    mods[name] = { file = rel, requires = M.requires(read(root .. "/" .. rel)) }
  end
  p:close()
  return mods
end

--- edges(mods) -> sorted array of { from, to, line, inner } among orket modules (a module's
--- require of itself or of a library outside orket is left out; so are repeats).
function M.edges(mods)
  local out, seen = {}, {}
  for from, m in pairs(mods) do
    for _, r in ipairs(m.requires) do
      local key = from .. " -> " .. r.name
      if (r.name == "orket" or r.name:find("^orket%.")) and r.name ~= from and not seen[key] then
        seen[key] = true
        out[#out + 1] = { from = from, to = r.name, line = r.line, inner = r.inner }
      end
    end
  end
  table.sort(out, function(a, b) return a.from < b.from or (a.from == b.from and a.to < b.to) end)
  return out
end

--- layer_of(name, layers) -> index into layers (1 = top), or nil when no pattern matches.
function M.layer_of(name, layers)
  for i, l in ipairs(layers or M.LAYERS) do
    for _, pat in ipairs(l.match) do
      if name:find(pat) then return i end
    end
  end
  return nil
end

--- cycles(edges) -> array of cycles, each an array of names (first repeated last), one per
--- strongly connected component of more than one module. Sorted, so the output is stable.
function M.cycles(edges)
  local adj, names = {}, {}
  for _, e in ipairs(edges) do
    if not adj[e.from] then adj[e.from] = {}; names[#names + 1] = e.from end
    if not adj[e.to] then adj[e.to] = {}; names[#names + 1] = e.to end
    adj[e.from][#adj[e.from] + 1] = e.to
  end
  table.sort(names)
  for _, v in pairs(adj) do table.sort(v) end
  -- Tarjan's strongly connected components.
  local index, low, on, stack, comps, counter = {}, {}, {}, {}, {}, 0
  local function connect(v)
    counter = counter + 1
    index[v], low[v] = counter, counter
    stack[#stack + 1] = v
    on[v] = true
    for _, w in ipairs(adj[v]) do
      if not index[w] then
        connect(w)
        low[v] = math.min(low[v], low[w])
      elseif on[w] then
        low[v] = math.min(low[v], index[w])
      end
    end
    if low[v] == index[v] then
      local comp = {}
      repeat
        local w = table.remove(stack)
        on[w] = nil
        comp[w] = true
        comp[#comp + 1] = w
      until w == v
      if #comp > 1 then comps[#comps + 1] = comp end
    end
  end
  for _, v in ipairs(names) do if not index[v] then connect(v) end end
  -- One cycle through each component: from its least name, breadth first back to it.
  local out = {}
  for _, comp in ipairs(comps) do
    table.sort(comp)
    local start = comp[1]
    local prev, queue, found = { [start] = false }, { start }, nil
    local qi = 1
    while qi <= #queue and not found do
      local v = queue[qi]
      qi = qi + 1
      for _, w in ipairs(adj[v]) do
        if w == start then found = v; break end
        if comp[w] and prev[w] == nil then prev[w] = v; queue[#queue + 1] = w end
      end
    end
    local path, v = { start }, found
    while v and v ~= start do table.insert(path, 2, v); v = prev[v] end
    path[#path + 1] = start
    out[#out + 1] = path
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

--- violations(edges, layers, allowed) -> array of { from, to, line, why } for every edge
--- from a lower layer to a higher one not in allowed, and every module with no layer.
function M.violations(edges, layers, allowed)
  layers, allowed = layers or M.LAYERS, allowed or M.ALLOWED
  local out, unplaced = {}, {}
  for _, e in ipairs(edges) do
    local lf, lt = M.layer_of(e.from, layers), M.layer_of(e.to, layers)
    for _, n in ipairs { e.from, e.to } do
      if not M.layer_of(n, layers) and not unplaced[n] then
        unplaced[n] = true
        out[#out + 1] = { from = n, why = n .. " has no layer: add it to the layer table" }
      end
    end
    if lf and lt and lt < lf and not allowed[e.from .. " -> " .. e.to] then
      out[#out + 1] = { from = e.from, to = e.to, line = e.line,
        why = string.format("%s (%s) requires %s (%s), a higher layer", e.from, layers[lf].name,
          e.to, layers[lt].name) }
    end
  end
  return out
end

--- stale(edges, layers, allowed) -> the allowed entries that name no forbidden edge any more.
function M.stale(edges, layers, allowed)
  layers, allowed = layers or M.LAYERS, allowed or M.ALLOWED
  local live = {}
  for _, e in ipairs(edges) do live[e.from .. " -> " .. e.to] = true end
  local out = {}
  for key in pairs(allowed) do
    local from, to = key:match("^(.-) %-> (.+)$")
    local lf, lt = M.layer_of(from, layers), M.layer_of(to, layers)
    if not live[key] or not (lf and lt and lt < lf) then out[#out + 1] = key end
  end
  table.sort(out)
  return out
end

--- folder_of(name) -> the folder a module sits in: the first name under orket. ("engine"
--- for orket.engine.run and for orket.engine itself; "board" for orket.board), "orket" for
--- orket itself
function M.folder_of(name)
  return name:match("^orket%.([%w_]+)") or name
end

--- folder_edges(edges) -> the edges between folders, each once ({from=, to=, via = "a -> b",
--- one module edge that makes it})
function M.folder_edges(edges)
  local out, seen = {}, {}
  for _, e in ipairs(edges) do
    local a, b = M.folder_of(e.from), M.folder_of(e.to)
    local key = a .. " -> " .. b
    if a ~= b and not seen[key] then
      seen[key] = true
      out[#out + 1] = { from = a, to = b, via = e.from .. " -> " .. e.to }
    end
  end
  return out
end

--- folder_cycles(edges, allowed) -> the loops among folders (as cycles gives them) once the
--- allowed folder edges ("a -> b", default FOLDER_ALLOWED) are left out; and the allowed
--- entries that are stale (no such folder edge, or it closes no loop any more: remove them)
function M.folder_cycles(edges, allowed)
  allowed = allowed or M.FOLDER_ALLOWED
  local all, kept = M.folder_edges(edges), {}
  for _, fe in ipairs(all) do
    if not allowed[fe.from .. " -> " .. fe.to] then kept[#kept + 1] = fe end
  end
  local stale = {}
  for key in pairs(allowed) do
    -- it closes a loop when the edge is there and its head reaches its tail back
    local from, to = key:match("^(.-) %-> (.+)$")
    local exists, reach, todo = false, { [to] = true }, { to }
    while #todo > 0 do
      local v = table.remove(todo)
      for _, fe in ipairs(all) do
        if fe.from == v and not reach[fe.to] then reach[fe.to], todo[#todo + 1] = true, fe.to end
      end
    end
    for _, fe in ipairs(all) do if fe.from == from and fe.to == to then exists = true end end
    if not (exists and reach[from]) then stale[#stale + 1] = key end
  end
  table.sort(stale)
  return M.cycles(kept), stale
end

--- unexplained(root, mods) -> sorted array of { file, line, name }: each require inside a
--- function with no comment saying why it is lazy ("lazy" in a comment on its line or in
--- the comment lines just above). Requires belong at the top, where a reader sees them.
function M.unexplained(root, mods)
  local out = {}
  for _, m in pairs(mods) do
    local lines
    for _, r in ipairs(m.requires) do
      if r.inner then
        if not lines then
          lines = {}
          for l in (read(root .. "/" .. m.file) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
        end
        local said = (lines[r.line]:match("%-%-.*") or ""):find("lazy")
        local k = r.line - 1
        while not said and k >= 1 and lines[k]:match("^%s*%-%-") do
          said = lines[k]:find("lazy")
          k = k - 1
        end
        if not said then out[#out + 1] = { file = m.file, line = r.line, name = r.name } end
      end
    end
  end
  table.sort(out, function(a, b) return a.file < b.file or (a.file == b.file and a.line < b.line) end)
  return out
end

---------------------------------------------------------------------------------------
-- Run as a script: the report.

local MAIN = arg and arg[0] and arg[0]:match("imports%.lua$")
if MAIN then
  local args = { ... }
  local root = args[1] or package.orket_home or "."
  local mods = M.modules(root)
  local edges = M.edges(mods)
  local bad = 0
  for _, c in ipairs(M.cycles(edges)) do
    print("cycle: " .. table.concat(c, " -> "))
    bad = bad + 1
  end
  for _, v in ipairs(M.violations(edges)) do
    print("forbidden: " .. v.why .. (v.line and (" (" .. mods[v.from].file .. ":" .. v.line .. ")") or ""))
    bad = bad + 1
  end
  for _, key in ipairs(M.stale(edges)) do
    print("stale allow-list entry: " .. key)
    bad = bad + 1
  end
  local fcycles, fstale = M.folder_cycles(edges)
  for _, c in ipairs(fcycles) do
    print("folder loop: " .. table.concat(c, " -> "))
    bad = bad + 1
  end
  for _, key in ipairs(fstale) do
    print("stale folder allow-list entry: " .. key)
    bad = bad + 1
  end
  for _, u in ipairs(M.unexplained(root, mods)) do
    print(string.format("require inside a function, not said to be lazy: %s:%d %s", u.file, u.line, u.name))
    bad = bad + 1
  end
  os.exit(bad == 0 and 0 or 1)
end

return M
