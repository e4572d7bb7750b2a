-- orket.actions.sandbox_checks: the shape of a card's sandbox_checks (docs/sandbox.md,
-- *Acceptance checks*): each HTTP or browser check checked field by field and filled with
-- its defaults, for the importer (an epic file's cards) and for the checks' runner
-- (orket.sandboxes.accept). Pure data: it runs nothing.
local cjson = require "cjson.safe"
local nearest = require "orket.nearest"
local jsonout = require "orket.jsonout"

local M = {}

M.MAX_CHECKS = 32           -- checks of one card
M.MAX_SENT = 65536          -- bytes of a request's body
M.TIMEOUT_MS = 10000        -- a check's default time
M.MAX_TIMEOUT_MS = 120000
M.METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true, OPTIONS = true }

-- ---- the checks -------------------------------------------------------------------

local HTTP_FIELDS = { name = true, method = true, path = true, body = true, headers = true, status = true, json = true,
  contains = true, timeout_ms = true, service = true }
local BROWSER_FIELDS = { name = true, path = true, selector = true, text = true, console_errors = true,
  screenshot = true, timeout_ms = true, service = true }
local HTTP_LIST = "name, method, path, body, headers, status, json, contains, timeout_ms, service"
local BROWSER_LIST = "name, path, selector, text, console_errors, screenshot, timeout_ms, service"

-- the service a check runs against (nil: the sandbox's entry): a compose service's name
local function service_of(t)
  local v = t.service
  if v == nil or v == cjson.null then return true, nil end
  if type(v) ~= "string" or not v:match("^[%w][%w_.-]*$") or #v > 64 then
    return false, "must be a service's name (letters, digits, '_', '.', '-'; at most 64 bytes)"
  end
  return true, v
end

-- how a check's default name begins: the service it runs against, when it names one ("db:
-- GET /"), so that two checks of one path on two services read apart
local function on(c)
  return c.service and (c.service .. ": ") or ""
end

-- a path on the app: absolute, no scheme or host, nothing a request line cannot hold
local function bad_path(p)
  if type(p) ~= "string" then return "must be a string starting with /" end
  if p:sub(1, 1) ~= "/" or p:sub(1, 2) == "//" then return "must start with / (a path on the app, never a URL)" end
  if #p > 2048 then return "is longer than 2048 bytes" end
  if p:find("[%c%s]") then return "must not hold blanks or control characters" end
  return nil
end
M.bad_path = bad_path

--- M.is_array(t) -> whether t is a table with only the keys 1..#t (orket.jsonout's)
M.is_array = jsonout.is_array

-- header name and value: the name a token, the value one line
local function bad_headers(h)
  if type(h) ~= "table" or (next(h) ~= nil and M.is_array(h)) then return nil, "must be an object {\"Name\": \"value\"}" end
  local n = 0
  for k, v in pairs(h) do
    n = n + 1
    if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      return tostring(k), "is not a header name"
    end
    if type(v) ~= "string" or v:find("[\r\n%z]") or #v > 4096 then
      return k, "must be a string of one line (at most 4096 bytes)"
    end
    local low = k:lower()
    if low == "host" or low == "content-length" or low == "transfer-encoding" or low == "connection" then
      return k, "is set by Orket"
    end
  end
  if n > 32 then return nil, "has more than 32 headers" end
  return nil
end

local function timeout_of(v, field)
  if v == nil or v == cjson.null then return M.TIMEOUT_MS end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v < 1 or v > M.MAX_TIMEOUT_MS then
    return nil, field, "must be an integer between 1 and " .. M.MAX_TIMEOUT_MS
  end
  return math.tointeger(v)
end

local function unknown(t, known, list)
  local keys = {}
  for k in pairs(t) do
    if not known[k] then keys[#keys + 1] = tostring(k) end
  end
  -- a misspelt one first, the same each time
  if keys[1] then return nearest.ordered(keys, list)[1], "unknown field (fields: " .. list .. ")" end
end

local function opt_str(t, k, max)
  local v = t[k]
  if v == nil or v == cjson.null then return true, nil end
  if type(v) ~= "string" or #v > max then return false, string.format("must be a string of at most %d bytes", max) end
  if not utf8.len(v) then return false, "is not valid UTF-8" end
  if v == "" then return false, "must not be empty (leave it out for none)" end
  return true, v
end

local function normalize_http(h)
  local f, why = unknown(h, HTTP_FIELDS, HTTP_LIST)
  if f then return nil, f, why end
  local c = { kind = "http" }
  local method = h.method == nil and "GET" or h.method
  if type(method) ~= "string" or not M.METHODS[method:upper()] then
    return nil, "method", "must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
  end
  c.method = method:upper()
  local perr = bad_path(h.path)
  if perr then return nil, "path", perr end
  c.path = h.path
  if h.body ~= nil and h.body ~= cjson.null then
    if type(h.body) == "string" then
      c.body = h.body
    else
      local text = cjson.encode(h.body)
      if not text then return nil, "body", "must be a string or JSON" end
      c.body, c.body_json = text, true
    end
    if #c.body > M.MAX_SENT then return nil, "body", "is longer than " .. M.MAX_SENT .. " bytes" end
  end
  if h.headers ~= nil and h.headers ~= cjson.null then
    local k, herr = bad_headers(h.headers)
    if herr then return nil, k and ("headers." .. k) or "headers", herr end
    c.headers = h.headers
  end
  if h.status ~= nil and h.status ~= cjson.null then
    if math.type(h.status) ~= "integer" and not (type(h.status) == "number" and h.status == math.floor(h.status))
      or h.status < 100 or h.status > 599 then
      return nil, "status", "must be an HTTP status between 100 and 599"
    end
    c.status = math.tointeger(h.status)
  end
  if h.json ~= nil and h.json ~= cjson.null then
    if type(h.json) ~= "table" or (next(h.json) ~= nil and M.is_array(h.json)) then
      return nil, "json", "must be an object {\"dotted.path\": expected value}"
    end
    for k in pairs(h.json) do
      -- an empty step ("a..b", ".a") names no member: such a check could never pass
      if type(k) ~= "string" or k == "" or #k > 256 or k:find("^%.") or k:find("%.%.") or k:find("%.$") then
        return nil, "json", "its keys must be dotted paths (\"a.b.0\"), without an empty step"
      end
    end
    c.json = h.json
  end
  local ok, v = opt_str(h, "contains", 4096)
  if not ok then return nil, "contains", v end
  c.contains = v
  ok, v = service_of(h)
  if not ok then return nil, "service", v end
  c.service = v
  ok, v = opt_str(h, "name", 200)
  if not ok then return nil, "name", v end
  c.name = v or (on(c) .. c.method .. " " .. c.path)
  local t, tf, terr = timeout_of(h.timeout_ms, "timeout_ms")
  if not t then return nil, tf, terr end
  c.timeout_ms = t
  return c
end

local function normalize_browser(b)
  local f, why = unknown(b, BROWSER_FIELDS, BROWSER_LIST)
  if f then return nil, f, why end
  local c = { kind = "browser" }
  local perr = bad_path(b.path == nil and "/" or b.path)
  if perr then return nil, "path", perr end
  c.path = b.path or "/"
  local ok, v = opt_str(b, "selector", 1024)
  if not ok then return nil, "selector", v end
  if not v or v == "" then return nil, "selector", "is required: the CSS selector of an element the page must show" end
  c.selector = v
  ok, v = opt_str(b, "text", 4096)
  if not ok then return nil, "text", v end
  c.text = v
  for _, k in ipairs { "console_errors", "screenshot" } do
    if b[k] ~= nil and b[k] ~= cjson.null and type(b[k]) ~= "boolean" then return nil, k, "must be true or false" end
  end
  c.console_errors = b.console_errors == true -- false (the default): any console error fails the check
  c.screenshot = b.screenshot ~= false
  ok, v = service_of(b)
  if not ok then return nil, "service", v end
  c.service = v
  ok, v = opt_str(b, "name", 200)
  if not ok then return nil, "name", v end
  c.name = v or (on(c) .. "browser " .. c.path .. " " .. c.selector)
  local t, tf, terr = timeout_of(b.timeout_ms, "timeout_ms")
  if not t then return nil, tf, terr end
  c.timeout_ms = t
  return c
end

--- normalize(check) -> the check in its normal form ({kind="http"|"browser", name=, ...,
--- timeout_ms=}) | nil, field (relative to the check: "http.status"), message. A check is
--- {http = {...}} or {browser = {...}} (docs/sandbox.md); anything else is named.
function M.normalize(check)
  if type(check) ~= "table" or M.is_array(check) and next(check) ~= nil then
    return nil, "", "must be an object {\"http\": {...}} or {\"browser\": {...}}"
  end
  local kinds = {}
  for k in pairs(check) do kinds[#kinds + 1] = tostring(k) end
  table.sort(kinds)
  if #kinds ~= 1 or (kinds[1] ~= "http" and kinds[1] ~= "browser") then
    return nil, "", string.format("a check is an object with one key, http or browser (this one has %s)",
      #kinds == 0 and "none" or table.concat(kinds, ", "))
  end
  local kind = kinds[1]
  local body = check[kind]
  if type(body) ~= "table" or (next(body) ~= nil and M.is_array(body)) then
    return nil, kind, "must be an object"
  end
  local c, f, why
  if kind == "http" then c, f, why = normalize_http(body) else c, f, why = normalize_browser(body) end
  if not c then return nil, kind .. "." .. f, why end
  return c
end

--- normalize_list(list) -> checks | nil, index (1-based, nil for the list), field, message
function M.normalize_list(list)
  if not M.is_array(list) then return nil, nil, "", "must be an array of checks" end
  if #list > M.MAX_CHECKS then return nil, nil, "", "holds more than " .. M.MAX_CHECKS .. " checks" end
  local out = {}
  for i, check in ipairs(list) do
    local c, f, why = M.normalize(check)
    if not c then return nil, i, f, why end
    out[i] = c
  end
  return out
end

-- ---- a result ------------------------------------------------------------------

--- verdict(r) -> a check's result in a word: "pass", "skip" (it could not run here, r.skipped
--- says why: no browser, no network namespace; never the app's failure) or "FAIL"
function M.verdict(r)
  return r.ok and "pass" or r.skipped and "skip" or "FAIL"
end

--- skipped(res) -> the checks of a run's result (or a journaled one's results) that could
--- not run: {{name=, why=}...}
function M.skipped(res)
  local out = {}
  for _, r in ipairs(res and res.results or {}) do
    if r.skipped then out[#out + 1] = { name = r.name, why = r.skipped } end
  end
  return out
end

--- skipped_text(list) -> "name (why); name (why)" of skipped(...)'s list, one line
function M.skipped_text(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = string.format("%s (%s)", tostring(s.name), tostring(s.why)) end
  return table.concat(parts, "; ")
end

return M
