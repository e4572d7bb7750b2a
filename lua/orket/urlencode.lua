-- orket.urlencode: percent-encoding (RFC 3986) for what orket sends: a URL's path segment,
-- a query, an application/x-www-form-urlencoded body. Decoding what it receives is
-- orket.serve.router's, which also refuses what could change a route.
local M = {}

--- encode(s) -> s percent-encoded but for RFC 3986's unreserved characters
function M.encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- unescape(s) -> s with each %XX read as its byte, and any other "%" left as it is: how
--- libpq and OpenTelemetry's variables read their values (a route's path is decoded
--- strictly, refusing what could change it: orket.serve.router's decode)
function M.unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- form(fields) -> "a=1&b=2": fields (name -> string) encoded as a query or a form body,
--- in name order
function M.form(fields)
  local names, parts = {}, {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do parts[i] = M.encode(k) .. "=" .. M.encode(fields[k]) end
  return table.concat(parts, "&")
end

--- without_userinfo(url) -> url without the "user:password@" its authority may carry, what a
--- message or a command may show: the user part ends at the authority's last "@" (a
--- password may hold one), as core/gitrepo/remote.c cuts it. Anything not SCHEME://... is
--- returned as it is.
function M.without_userinfo(url)
  local s = tostring(url)
  local scheme, rest = s:match("^(%a[%w+.-]*://)(.*)$")
  if not scheme then return s end
  local stop = rest:find("[/?#]") or #rest + 1
  local host = rest:sub(1, stop - 1):match("^.*@(.*)$")
  return host and (scheme .. host .. rest:sub(stop)) or s
end

return M
