-- orket.serve.cookie: a named cookie of a request's Cookie header, for the sign-in session
-- (orket.serve.session) and the local token (orket.serve.localuse).
local M = {}

--- get(req, name) -> the cookie's value | nil
function M.get(req, name)
  local c = req.headers.cookie
  if type(c) ~= "string" then return nil end
  for k, value in c:gmatch("([^=;%s]+)=([^;%s]*)") do
    if k == name then return value end
  end
  return nil
end

return M
