-- orket.serve.web: what orket serve answers before its API routes: the web board's files
-- (a fixed allow-list read from web/ beside lua/ in the install, never a path the client
-- names), OPTIONS (the Allow of the path's route, from the router), and CORS for the
-- origins orket.lua's serve.cors lists (preflights included).
local uv = require "luv"
local crypto = require "orket.c.crypto"
local localuse = require "orket.serve.localuse"
local config = require "orket.config"
local settings = require "orket.settings"
local router = require "orket.serve.router"
local errors = require "orket.errors"
local jsonout = require "orket.jsonout"

local M = {}

-- The only files served, by request path: anything else goes on to the API's router,
-- which refuses path tricks (orket.serve.router).
M.FILES = {
  ["/"] = "index.html", ["/index.html"] = "index.html", ["/app.js"] = "app.js", ["/app.css"] = "app.css",
  ["/icon.svg"] = "icon.svg",
}
local TYPES = {
  html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8", css = "text/css; charset=utf-8",
  svg = "image/svg+xml",
}
M.MAX_FILE = 1048576

-- Scripts and styles from this origin only: no inline script, nothing from elsewhere.
M.HEADERS = {
  "Content-Security-Policy: default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options: nosniff", "X-Frame-Options: DENY", "Referrer-Policy: no-referrer",
  -- revalidated on each load (the ETag makes that a 304), so an upgrade shows at once
  "Cache-Control: no-cache",
}

--- csp(branding) -> the Content-Security-Policy header: M.HEADERS' own, with images also
--- from the origin of the logo serve.branding names (an https address: orket.settings.team)
function M.csp(branding)
  local origin = branding and branding.logo and branding.logo:match("^(https://[%w.-]+[:%d]*)")
  if not origin then return M.HEADERS[1] end
  return (M.HEADERS[1]:gsub("default%-src 'self';", "default-src 'self'; img-src 'self' " .. origin .. ";"))
end

--- dir() -> the web board's directory: web/ in the Orket home (the repository, or the
--- install's share/orket), found as lua/ is
function M.dir() return package.orket_home .. "/web" end

--- read(dir, name) -> text | nil, msg: a regular file in dir, not a symbolic link (lstat,
--- then the opened file is checked to be the same one, so a swap in between is seen)
function M.read(dir, name)
  local path = dir .. "/" .. name
  local lst = uv.fs_lstat(path)
  if not lst or lst.type ~= "file" then return nil, path .. " is not a regular file" end
  if lst.size > M.MAX_FILE then return nil, path .. " is too large" end
  local fd, oerr = uv.fs_open(path, "r", 0)
  if not fd then return nil, tostring(oerr) end
  local st = uv.fs_fstat(fd)
  local data
  if st and st.ino == lst.ino and st.dev == lst.dev and st.type == "file" then
    data = uv.fs_read(fd, M.MAX_FILE, 0)
  end
  uv.fs_close(fd)
  if not data then return nil, path .. " changed while it was opened" end
  return data
end

--- settings(dir) -> the serve section of the project's orket.lua, checked (orket.settings)
--- | nil, msg. A project without a readable orket.lua gets the defaults.
function M.settings(dir)
  local data = config.read(dir)
  local s, serr = settings.resolve { serve = data and data.serve or nil, audit = data and data.audit or nil }
  if not s then return nil, serr end
  return s.serve, nil, s.audit
end

--- cors(dir) -> set of allowed origins | nil, msg: serve.cors of the project's orket.lua
function M.cors(dir)
  local s, serr = M.settings(dir)
  if not s then return nil, serr end
  local set = {}
  for _, o in ipairs(s.cors) do set[o] = true end
  return set
end

--- none_match(header, etag) -> whether If-None-Match's value matches etag (a strong tag,
--- quoted), so that the answer is a 304: "*", or a list of tags one of which is etag by
--- weak comparison (RFC 9110 13.1.2, 8.8.3.2: a W/ form is the same tag), as caches and
--- proxies send it
function M.none_match(header, etag)
  if type(header) ~= "string" then return false end
  if header:match("^%s*%*%s*$") then return true end
  -- an entity-tag's opaque part is quoted and holds no '"' (RFC 9110 8.8.3): each is found
  -- whole, a comma inside it included, and compared without the W/ before it
  for tag in header:gmatch('"[^"]*"') do
    if tag == etag then return true end
  end
  return false
end

local function static(req, ctx, name)
  ctx.route = "/" .. (name == "index.html" and "" or name)
  local body, rerr = M.read(M.dir(), name)
  if not body then
    ctx.status = 404
    ctx.server:_log { event = "error", route = ctx.route, message = "web board: " .. rerr }
    return req:respond(404, { "Content-Type: text/plain; charset=utf-8", table.unpack(M.HEADERS) }, "not found\n")
  end
  local etag = '"' .. crypto.hash(body, 16) .. '"'
  local headers = { "Content-Type: " .. TYPES[name:match("%.(%w+)$")], "ETag: " .. etag, table.unpack(M.HEADERS) }
  headers[3] = M.csp(ctx.server.branding) -- the logo's origin, when branding names one
  if M.none_match(req.headers["if-none-match"], etag) then
    ctx.status = 304
    -- the body is not sent with a 304; given, its length is the Content-Length, which must
    -- be the page's (RFC 9110 8.6), as a HEAD's is
    return req:respond(304, headers, body)
  end
  ctx.status = 200
  return req:respond(200, headers, body)
end

-- every method a route takes (the people API's PUTs, an app's PUT and PATCH): a preflight
-- that left one out kept a listed origin's page from calling that route with its key
local METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
-- every answer's, and with an allowed origin's (also given to /health's answer in C,
-- orket.serve and core/health.c)
M.VARY = "Vary: Origin"
-- (Mcp-Session-Id: a page of a listed origin may use /mcp, docs/mcp.md; unexposed, its MCP
-- client could not read the session it made, and every call after initialize was refused)
M.EXPOSE = "Access-Control-Expose-Headers: Retry-After, WWW-Authenticate, Mcp-Session-Id"
-- the request headers a page of a listed origin may send: the API's, and the MCP transport's
M.ALLOW_HEADERS = "Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID, Mcp-Session-Id, "
  .. "MCP-Protocol-Version"

--- allow(methods) -> the Allow list of a route's methods (the router's, in its order): HEAD
--- with a GET (served as one) and OPTIONS (answered here) added. OPTIONS and a 405 say it.
function M.allow(methods)
  local takes, has = {}, {}
  for _, m in ipairs(methods) do takes[#takes + 1], has[m] = m, true end
  if has.GET and not has.HEAD then takes[#takes + 1] = "HEAD" end
  if not has.OPTIONS then takes[#takes + 1] = "OPTIONS" end
  return table.concat(takes, ", ")
end

local FILE_ALLOW = M.allow { "GET" }

--- not_scoped(route) -> the 404's message of a server's own route (route.server: keys,
--- people, sign-in, this API's document) asked under a project's prefix, where it is not
--- served; the same for every project name, so that it tells none's existence
function M.not_scoped(route)
  return "this route is the server's, not a project's: it is served at " .. route.pattern
    .. " only (without /v1/projects/{p})"
end

-- The Allow of OPTIONS on path: the methods of its route (RFC 9110 9.3.7, 10.2.1), and for
-- "*" the server's (every method a route takes) | nil: no route (the router answers 404,
-- or 400 for a bad path) | nil, route: a server's own route under a project's prefix
local function allow_of(server, path)
  if path == "*" then return METHODS .. ", OPTIONS" end
  if M.FILES[path] then return FILE_ALLOW end
  local segs = router.segments(path)
  if not segs then return nil end
  -- no route takes OPTIONS: the router's 405 names the methods of the path's routes
  local _, st, allowed = server:_route({ method = "OPTIONS" }, segs)
  if st ~= 405 then return nil end
  local route, _, _, scoped = server:_route({ method = allowed[1] }, segs)
  if scoped and route.server then return nil, route end
  return M.allow(allowed)
end

-- OPTIONS: its Allow, and a listed origin's preflight its CORS answer (cookies are
-- SameSite=Strict: other origins send keys, never cookies). A path no route takes is left
-- to the router (false), whose 404 or 400 it gets as any method would.
local function options(server, req, ctx, path, origin, listed)
  local allow, own = allow_of(server, path)
  if own then
    ctx.route, ctx.status = "OPTIONS", 404
    local h = { "Content-Type: application/json; charset=utf-8", "Cache-Control: no-store",
      "X-Content-Type-Options: nosniff", table.unpack(ctx.headers) }
    local _, doc = errors.answer(404, "not_found", M.not_scoped(own))
    req:respond(404, h, jsonout.encode(doc) .. "\n")
    return true
  end
  if not allow then return false end
  ctx.route, ctx.status = "OPTIONS", 204
  local h = { "Allow: " .. allow, M.VARY }
  if listed then
    -- every method a route takes, whichever this path's: the page then reads the route's
    -- own 405, where a method left out here would be a CORS failure it cannot read
    for _, x in ipairs { "Access-Control-Allow-Origin: " .. origin, "Access-Control-Allow-Methods: " .. METHODS,
      M.ALLOW_HEADERS, "Access-Control-Max-Age: 600" } do
      h[#h + 1] = x
    end
  end
  req:respond(204, h, "")
  return true
end

--- front(server, req, ctx[, headers, method, path]) -> true when answered here (a file, a
--- preflight); else it has put the request's CORS headers in ctx.headers for the answer to
--- come. headers, method, path: the request's, read already (each read is a call into C)
function M.front(server, req, ctx, headers, method, path)
  method, path = method or req.method, path or req.path
  local origin = (headers or req.headers).origin
  local listed = origin and server.cors[origin]
  ctx.headers = { M.VARY }
  if listed then
    ctx.headers[#ctx.headers + 1] = "Access-Control-Allow-Origin: " .. origin
    ctx.headers[#ctx.headers + 1] = M.EXPOSE
  end
  if method == "OPTIONS" then return options(server, req, ctx, path, origin, listed) end
  local name = M.FILES[path]
  if name and (method == "GET" or method == "HEAD") then
    -- the URL orket serve prints before any key exists: its token becomes the page's cookie
    -- (HttpOnly, SameSite=Strict) and leaves the address bar at once
    local given = name == "index.html" and type(req.query) == "table" and req.query.token
    if given then given = tostring(given):match("^ort_%x+$") or "" end
    if given then
      ctx.route = "/"
      local token = server.auth.token
      if not (token and localuse.matches(given, token) and not server.auth.keyed) then
        ctx.status = 403
        req:respond(403, { "Content-Type: application/json; charset=utf-8", "Cache-Control: no-store" },
          '{"error":{"code":"forbidden","message":"not this server\'s local token (it changes at each start)"}}\n')
        return true
      end
      ctx.status = 303
      req:respond(303, { "Location: /", localuse.cookie(token), "Cache-Control: no-store", "Referrer-Policy: no-referrer" }, "")
      return true
    end
    static(req, ctx, name)
    return true
  end
  return false
end

return M
