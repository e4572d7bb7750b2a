-- orket.serve.localuse: who may write before any API key exists. Reads stay open to
-- loopback (orket.serve.auth checks the Host); a write needs this user's unix socket
-- (.orket/serve.sock, mode 0600, its peers' uid checked by httpd.c: remote "unix") or the
-- local token (.orket/serve.token, mode 0600, made at each start) as a Bearer token or the
-- web board's cookie (set from the URL printed at start). Uses orket.c.crypto and luv.
local crypto = require "orket.c.crypto"
local uv = require "luv"
local cookie = require "orket.serve.cookie"
local audit_chain = require "orket.audit.chain"

local M = {}

M.TOKEN_FILE = ".orket/serve.token"
M.SOCKET = ".orket/serve.sock"
M.COOKIE = "orket_local"

local TOKEN_BYTES = 32
local SAFE = { GET = true, HEAD = true, OPTIONS = true }

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

--- create_token(dir) -> token | nil, msg: a fresh token, written to DIR/.orket/serve.token
--- with mode 0600 (a new file renamed over the old one: never a moment readable by others)
function M.create_token(dir)
  local token = "ort_" .. hex(crypto.random_bytes(TOKEN_BYTES))
  uv.fs_mkdir(dir .. "/.orket", 448) -- on PostgreSQL nothing else may have made it
  local path = dir .. "/" .. M.TOKEN_FILE
  local tmp = path .. ".new"
  os.remove(tmp)
  local fd, err = uv.fs_open(tmp, "wx", 384) -- 0600, exclusive
  if not fd then return nil, "cannot write " .. tmp .. ": " .. tostring(err) end
  local ok, werr = uv.fs_write(fd, token .. "\n", 0)
  uv.fs_close(fd)
  if not ok then
    os.remove(tmp)
    return nil, "cannot write " .. tmp .. ": " .. tostring(werr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, tostring(rerr)
  end
  return token
end

--- remove_token(dir, token): removes the token file if it is still this server's (another
--- server started since in the same project wrote its own)
function M.remove_token(dir, token)
  local path = dir .. "/" .. M.TOKEN_FILE
  local f = io.open(path, "r")
  if not f then return end
  local text = f:read("a") or ""
  f:close()
  if crypto.equal(text, token .. "\n") then os.remove(path) end
end

local function cookie_of(req) return cookie.get(req, M.COOKIE) end

local function matches(given, token)
  return type(given) == "string" and token ~= nil and #given == #token and crypto.equal(given, token)
end

--- allows(req, token[, method]) -> whether a request may write in local use: a safe method,
--- this user's unix socket, or the token (Authorization: Bearer, or the web board's cookie)
function M.allows(req, token, method)
  if SAFE[method or req.method] or req.remote == "unix" then return true end
  local h = req.headers.authorization
  local bearer = h and h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(%S+) *$")
  return matches(bearer, token) or matches(cookie_of(req), token)
end

--- cookie(token) -> the Set-Cookie header that carries the token for the web board
function M.cookie(token)
  return string.format("Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Strict", M.COOKIE, token)
end

--- looks_like(s) -> whether s has the local token's shape ("ort_" and hex digits)
function M.looks_like(s) return type(s) == "string" and s:match("^ort_%x+$") ~= nil end

--- matches(given, token) -> whether given is the token (constant time)
M.matches = matches

--- operator() -> the actor a command run on this machine writes as: "local:" and the
--- user running it (docs/teams.md). Whoever can run orket here can read the store anyway;
--- the name says who it was, and that it was the local operator, not a signed-in person.
function M.operator()
  local pw = uv.os_get_passwd()
  local name = pw and pw.username or os.getenv("USER") or tostring(pw and pw.uid or "?")
  return "local:" .. tostring(name):gsub("[^%w._-]", "_")
end

--- as_operator() -> the actor of a command's write to cards: the local operator, a person
function M.as_operator() return { seat = M.operator(), roles = {}, by = "person" } end

--- audited(db, action, card, fn[, subject]) -> fn's results: fn() in one transaction with
--- an entry of the audit's hash chain naming the local operator (a command's write, as the
--- server's writes are audited: docs/audit.md); subject(a, b) -> whom a people or key
--- change was about, from fn's results (orket.audit.chain's subject)
function M.audited(db, action, card, fn, subject)
  local a, b, c, d
  local ok, e, code = db:tx(function()
    a, b, c, d = fn()
    if not a then return nil, b, c end
    if audit_chain.is_unchanged(a) then return true end -- it changed nothing: no entry
    audit_chain.record(db, { actor = M.operator(), action = action, card = card, route = "cli",
      subject = subject and subject(a, b) })
    -- whom else the change was about (another name of the same person), each its own entry
    for _, also in ipairs(type(a) == "table" and a.audit_also or {}) do
      audit_chain.record(db, { actor = M.operator(), action = action, card = card, route = "cli", subject = also })
    end
    return true
  end)
  if not ok and a then return nil, e, code end -- the audit failed: the write was rolled back with it
  -- the transaction failed without fn's word (it could not begin: a locked store; fn raised):
  -- the store's message, not fn's results that never were ("orket: nil")
  if not ok and b == nil then return nil, e, code end
  return a, b, c, d
end

return M
