-- People of a served project, as the e2e tests make and sign them in: accounts added with
-- `orket users add` under one known password, and a password sign-in's headers.
local H = require "tests.helpers"
local cjson = require "cjson"

local M = {}

M.PASS = "correct horse battery"
M.JSON = "Content-Type: application/json"

--- add(dir, name, role) -> the command's result: NAME added to dir's project with role, password PASS
function M.add(dir, name, role)
  return H.ok(H.orket("users add " .. name .. " --role " .. role .. " --password-env PW", { cwd = dir,
    env = { PW = M.PASS } }), "users add " .. name)
end

--- sign_in(s, user) -> {cookie header, csrf header, content type}: user signed in to server s
function M.sign_in(s, user)
  local status, text, h = H.fetch { url = s.url .. "/v1/session", method = "POST", headers = { M.JSON },
    body = cjson.encode { user = user, password = M.PASS }, total_timeout_ms = 20000 }
  assert(status == 200, "sign-in of " .. user .. ": " .. tostring(status))
  return { "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);"), "X-CSRF-Token: " .. cjson.decode(text).csrf,
    M.JSON }
end

return M
