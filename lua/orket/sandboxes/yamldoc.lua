-- orket.sandboxes.yamldoc: a YAML document of the tree (a compose file) read through
-- LibYAML's event parser (Debian's lua-yaml, module "yaml") into plain Lua tables that
-- keep, for each mapping, the line of every key, so an error names the file and line.
-- The file is the agents' work: its size, its nodes and its depth are capped, and an
-- alias is the node it names (shared, never copied), so no document grows by expansion.
-- Scalars stay strings (the reader converts what it expects: a port, a count).
local yaml = require "yaml"

local M = {}

M.MAX_BYTES = 256 * 1024
M.MAX_NODES = 20000
M.MAX_DEPTH = 64

-- the line (1-based) a key of mapping t was on, or its own line
local LINES = setmetatable({}, { __mode = "k" })

--- line(t [, key]) -> the line of key in mapping t (of item key in list t; or of t itself), 1-based | nil
function M.line(t, key)
  local l = LINES[t]
  if not l then return nil end
  if key ~= nil and l.keys[key] then return l.keys[key] end
  return l.at
end

--- is_map(v), is_list(v): what a node of the document is
function M.is_map(v) return type(v) == "table" and LINES[v] ~= nil and LINES[v].kind == "map" end
function M.is_list(v) return type(v) == "table" and LINES[v] ~= nil and LINES[v].kind == "list" end

--- keys(t) -> a mapping's keys in the document's order
function M.keys(t)
  local l = LINES[t]
  return l and l.order or {}
end

--- parse(text, name) -> the document's root node | nil, "name:LINE: message"
function M.parse(text, name)
  if #text > M.MAX_BYTES then return nil, string.format("%s: larger than %d bytes", name, M.MAX_BYTES) end
  local ok, nxt = pcall(yaml.parser, text)
  if not ok then return nil, string.format("%s: %s", name, tostring(nxt)) end
  local anchors, nodes, root = {}, 0, nil
  -- the open containers: {node=, key=pending key of a mapping}
  local stack = {}
  local function fail(ev, msg)
    local line = ev and ev.start_mark and ev.start_mark.line
    return nil, string.format("%s:%s: %s", name, line and tostring(line + 1) or "?", msg)
  end
  local function add(v, ev)
    local top = stack[#stack]
    if not top then
      if root ~= nil then return false, "more than one document" end
      root = v
      return true
    end
    local l = LINES[top.node]
    if l.kind == "list" then
      top.node[#top.node + 1] = v
      -- each item's line too, so an error names the item's own (line(list, i))
      l.keys[#top.node] = ev.start_mark.line + 1
    elseif top.key == nil then
      if type(v) ~= "string" then return false, "a mapping's key must be a plain value" end
      -- a key a merge brought in may be given once more, explicitly: that one wins
      if l.keys[v] and not (l.merged and l.merged[v]) then return false, string.format("the key %q is there twice", v) end
      top.key, top.key_line = v, ev.start_mark.line + 1
    else
      if top.key == "<<" then
        -- a merge key: the named mapping's entries (or, for a list of mappings, each one's,
        -- the earlier first), where this one has none: an explicit key wins wherever it
        -- stands, as YAML's merge says
        if not M.is_list(v) and not M.is_map(v) then return false, "<< merges a mapping or a list of mappings only" end
        local from = M.is_map(v) and { v } or v
        for _, m in ipairs(from) do
          if not M.is_map(m) then return false, "<< merges a mapping or a list of mappings only" end
        end
        l.merged = l.merged or {}
        for _, m in ipairs(from) do
          for _, k in ipairs(M.keys(m)) do
            if top.node[k] == nil then
              top.node[k] = m[k]
              l.keys[k] = LINES[m].keys[k]
              l.order[#l.order + 1] = k
              l.merged[k] = true
            end
          end
        end
      else
        if top.node[top.key] == nil then l.order[#l.order + 1] = top.key end
        top.node[top.key] = v
        l.keys[top.key] = top.key_line
        if l.merged then l.merged[top.key] = nil end
      end
      top.key = nil
    end
    return true
  end
  while true do
    local okp, ev = pcall(nxt)
    if not okp then
      -- LibYAML's "MESSAGE at document: 1, line: L, column: C\n...": the file's line first
      local msg = tostring(ev)
      local line = msg:match("line: (%d+)")
      msg = msg:match("^(.-) at document") or msg:match("^[^\n]*")
      -- LibYAML's reader says a byte that is not UTF-8 with no place: found here
      local valid, bad = utf8.len(text)
      if not line and not valid then
        line = select(2, text:sub(1, bad):gsub("\n", "")) + 1
        msg = string.format("%s (byte 0x%02X; a compose file is UTF-8)", msg, text:byte(bad))
      end
      return nil, string.format("%s:%s: %s", name, line or "?", msg)
    end
    if not ev then break end
    local t = ev.type
    if t == "SCALAR" or t == "MAPPING_START" or t == "SEQUENCE_START" then
      nodes = nodes + 1
      if nodes > M.MAX_NODES then return fail(ev, "more than " .. M.MAX_NODES .. " nodes") end
    end
    if t == "SCALAR" then
      local v = ev.value
      if ev.anchor then anchors[ev.anchor] = v end
      local added, why = add(v, ev)
      if not added then return fail(ev, why) end
    elseif t == "MAPPING_START" or t == "SEQUENCE_START" then
      if #stack >= M.MAX_DEPTH then return fail(ev, "nested deeper than " .. M.MAX_DEPTH) end
      local node = {}
      LINES[node] = { kind = t == "MAPPING_START" and "map" or "list", at = ev.start_mark.line + 1, keys = {}, order = {} }
      if ev.anchor then anchors[ev.anchor] = node end
      -- the container is the value of its parent's pending key, added once complete so a
      -- merge key sees its entries
      stack[#stack + 1] = { node = node, ev = ev }
    elseif t == "MAPPING_END" or t == "SEQUENCE_END" then
      local done = table.remove(stack)
      local added, why = add(done.node, done.ev)
      if not added then return fail(done.ev, why) end
    elseif t == "ALIAS" then
      local v = anchors[ev.anchor]
      if v == nil then return fail(ev, string.format("the alias *%s names no anchor", tostring(ev.anchor))) end
      local added, why = add(v, ev)
      if not added then return fail(ev, why) end
    end
  end
  return root
end

return M
