-- orket.serve.router: turns a request's raw path and query into a route and its
-- parameters. The server hands paths over still percent-encoded; this is the one place
-- that decodes them, and it refuses what could change which route or file is meant: NUL
-- and control bytes, "." and ".." segments (also encoded), backslashes, invalid escapes.
local inert = require "orket.inert"

local M = {}

local function unhex(h) return string.char(tonumber(h, 16)) end

--- decode(s [, plus]) -> text | nil: percent-decoding that refuses a bad escape, NUL and
--- other control bytes; with plus, '+' is a space (query strings).
function M.decode(s, plus)
  -- most text has nothing to undo or refuse: answered with one search
  if not s:find(plus and "[%%+%z\1-\31\127]" or "[%%%z\1-\31\127]") then return s end
  if s:find("%%%X") or s:find("%%%x%X") or s:find("%%.?$") then return nil end
  if plus then s = s:gsub("+", " ") end
  local out = s:gsub("%%(%x%x)", unhex)
  if out:find("[%z\1-\31\127]") then return nil end
  return out
end

--- plain(path) -> whether the path holds no escape, control byte or backslash: its
--- segments are then what it says, with nothing to decode or refuse but "." and ".."
--- (most paths; one search for the whole path instead of two per segment, each search
--- running the step-counted matcher, orket.c.pattern)
function M.plain(path)
  return not path:find("[%%%z\1-\31\127\\]")
end

M.MAX_PATH = 2048

--- segments(path) -> array of decoded segments | nil, why
function M.segments(path)
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then return nil, "the path must start with /" end
  if #path > M.MAX_PATH then return nil, "the path is longer than " .. M.MAX_PATH .. " bytes" end
  local segs = {}
  local plain = M.plain(path)
  for raw in path:sub(2):gmatch("[^/]*") do
    local seg = plain and raw or M.decode(raw)
    if not seg then return nil, "the path has an invalid escape or a control character" end
    if seg == "." or seg == ".." or (not plain and seg:find("[/\\]")) then
      return nil, "the path may not hold '.', '..', '/' or '\\' in a segment"
    end
    segs[#segs + 1] = seg
  end
  -- "/a/" and "/a" are the same route; "//" inside is not
  if #segs > 1 and segs[#segs] == "" then segs[#segs] = nil end
  for i, s in ipairs(segs) do
    if s == "" and not (i == 1 and #segs == 1) then return nil, "the path has an empty segment" end
  end
  return segs
end

--- query(raw) -> decoded name -> value | nil, name of the bad one (raw: the server's
--- still-encoded query table; an empty one, most requests', is its own answer: nothing to
--- decode, and no table made)
function M.query(raw)
  if raw ~= nil and next(raw) == nil then return raw end
  local out = {}
  for k, v in pairs(raw or {}) do
    local dk, dv = M.decode(k, true), M.decode(v, true)
    if not dk or not dv then return nil, dk or "?" end
    out[dk] = dv
  end
  return out
end

--- WRITES: the methods that write; JSON_MEDIA: the media type of a body read as JSON
M.WRITES = { POST = true, PUT = true, PATCH = true, DELETE = true }
M.JSON_MEDIA = "application/json"

--- new() -> router; router:add(method, pattern, spec) with pattern "/v1/cards/{id}" and
--- spec a table (handler, role, ...) kept as the route
local Router = {}
Router.__index = Router

-- Routes are kept in a tree of their segments (a literal's child by name, one child for
-- any parameter, the routes ending at a node or taking the rest of the path from it), so
-- a match looks at the few routes that share the path, not at every route. Where several
-- match, the one added first wins, as in a list.
local function node() return { lit = {} } end

function M.new() return setmetatable({ routes = {}, root = node() }, Router) end

function Router:add(method, pattern, spec)
  local parts = {}
  local at = self.root
  for p in pattern:sub(2):gmatch("[^/]+") do
    local name = p:match("^{(.+)}$")
    -- {name*}, last: the rest of the path, none or more segments joined by "/" (a proxy's)
    local rest = name and name:match("^(.+)%*$")
    parts[#parts + 1] = name and { param = rest or name, rest = rest and true or nil } or p
    if rest then
      at.rest = at.rest or {}
      at.rest[#at.rest + 1] = spec
      at = nil
    elseif at then
      if name then
        at.param = at.param or node()
        at = at.param
      else
        at.lit[p] = at.lit[p] or node()
        at = at.lit[p]
      end
    else
      error("a route's {name*} must be its last part: " .. pattern, 2)
    end
  end
  if at then
    at.ends = at.ends or {}
    at.ends[#at.ends + 1] = spec
  end
  spec.method, spec.pattern, spec.parts = method, pattern:gsub("%*}", "}"), parts
  -- a body the server reads as JSON (a route's own, or the {} a write that takes none
  -- allows) comes as JSON: its media type, which orket.serve checks (415) and the OpenAPI
  -- document declares; a route that reads its own body (body = "raw") checks its own
  if spec.media == nil and (spec.body == "json" or (spec.body == nil and M.WRITES[method])) then
    spec.media = M.JSON_MEDIA
  end
  -- the query parameters the route takes: those its query names, but for the headers
  -- described there (in = "header"); any other is refused (unknown_query)
  local names, known = {}, {}
  for _, q in ipairs(spec.query or {}) do
    if (q["in"] or "query") == "query" then names[#names + 1], known[q.name] = q.name, true end
  end
  spec.query_names, spec.query_known = names, known
  self.routes[#self.routes + 1] = spec
  spec.order = #self.routes
  return spec
end

-- the longest name an answer repeats back (a name is the caller's text)
local SHOWN = 64
local function shown(name)
  return "?" .. inert.clip(name, SHOWN) .. "="
end

--- unknown_query(route, query) -> nil | message: the query's parameters (decoded names) the
--- route does not take, named with those it does. An undeclared parameter is refused, not
--- ignored: a typo (?actr=, ?limt=) would otherwise answer something else than was asked.
--- A route with any_query takes any: its query is someone else's (an app's behind the
--- proxy, an identity provider's callback), each such route saying why.
function M.unknown_query(route, query)
  if route.any_query or next(query) == nil then return nil end
  local known, bad = route.query_known or {}, nil
  for name, value in pairs(query) do
    -- a stray "&" ("?&root=X") reads as an empty name without a value: no parameter is meant
    if not known[name] and not (name == "" and value == "") then
      bad = bad or {}
      bad[#bad + 1] = name
    end
  end
  if not bad then return nil end
  table.sort(bad)
  local names = {}
  for i = 1, math.min(#bad, 5) do names[i] = shown(bad[i]) end
  if #bad > 5 then names[#names + 1] = "and " .. (#bad - 5) .. " more" end
  local takes = {}
  for i, name in ipairs(route.query_names or {}) do takes[i] = shown(name) end
  return string.format("unknown query parameter%s %s: %s", #bad > 1 and "s" or "", table.concat(names, ", "),
    #takes > 0 and "this route takes " .. table.concat(takes, ", ") or "this route takes no query parameters")
end

-- the routes matching segs from node n at segment i, appended to out
local function collect(n, segs, i, out)
  if n.rest then
    for _, r in ipairs(n.rest) do out[#out + 1] = r end
  end
  if i > #segs then
    if n.ends then
      for _, r in ipairs(n.ends) do out[#out + 1] = r end
    end
    return
  end
  local child = n.lit[segs[i]]
  if child then collect(child, segs, i + 1, out) end
  if n.param then collect(n.param, segs, i + 1, out) end
end

local function by_order(a, b) return a.order < b.order end

--- router:match(method, segs) -> route, params | nil, 404 or 405, allowed methods
function Router:match(method, segs)
  if #segs == 1 and segs[1] == "" then segs = {} end
  local found = {}
  collect(self.root, segs, 1, found)
  -- one node's routes come in order already (a proxy's every method): sorted only when
  -- several nodes' routes interleave
  for i = 2, #found do
    if found[i].order < found[i - 1].order then
      table.sort(found, by_order)
      break
    end
  end
  for _, r in ipairs(found) do
    if r.method == method or (method == "HEAD" and r.method == "GET") then
      local params = {}
      for i, p in ipairs(r.parts) do
        if type(p) == "table" then params[p.param] = p.rest and table.concat(segs, "/", i) or segs[i] end
      end
      return r, params
    end
  end
  if #found == 0 then return nil, 404 end
  local allowed = {} -- only for a 405: no table on a match
  for i, r in ipairs(found) do allowed[i] = r.method end
  return nil, 405, allowed
end

return M
