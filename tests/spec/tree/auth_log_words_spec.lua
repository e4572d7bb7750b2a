-- The request log's `auth` values are documented (docs/serve.md, the log's fields): a log
-- pipeline maps them, and one the docs leave out (`local token`, `app_ticket`) goes unmapped.
local H = require "tests.helpers"

local function read(path)
  local f = assert(io.open(H.ROOT .. "/" .. path))
  local s = f:read("a")
  f:close()
  return s
end

-- the words set through a function's why (orket.serve.auth, keys, accounts, session, apps,
-- signin, directory), not as ctx.auth = "..." literals
local RETURNED = { "missing", "malformed", "unknown", "wrong", "revoked", "disabled", "key_expired", "local token",
  "no pepper", "pepper: ", "host", "session_malformed", "session_unknown", "session_expired", "csrf", "origin",
  "token", "signs in with ", "ldap: ", "ldap gone: ", "jwt: ", "store: ", "app_missing", "app_unknown",
  "app_expired", "app_board_ended", "app_local_ended", "not_member" }

describe("the request log's auth values", function()
  it("are each in docs/serve.md, every ctx.auth literal of lua/orket/serve/ with them", function()
    local doc = read("docs/serve.md")
    local para = doc:match("`auth` says why authentication failed(.-)`note`, when present")
    assert(para, "docs/serve.md: the log's `auth` paragraph")
    local words = {}
    for _, w in ipairs(RETURNED) do words[w] = "(returned)" end
    local p = io.popen("ls " .. H.quote(H.ROOT .. "/lua/orket/serve"))
    for f in p:lines() do
      if f:match("%.lua$") then
        for w in read("lua/orket/serve/" .. f):gmatch('ctx%.auth = "([^"]*)"') do words[w] = f end
      end
    end
    p:close()
    assert.truthy(words["app_ticket"], "the scan found ctx.auth literals")
    local missing = {}
    for w, from in pairs(words) do
      if not para:find("`" .. w .. "`", 1, true) then missing[#missing + 1] = w .. " (" .. from .. ")" end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)
end)
