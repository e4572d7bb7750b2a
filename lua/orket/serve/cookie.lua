-- orket.serve.cookie: a named cookie of a request's Cookie header, for the sign-in session
-- (orket.serve.session) and the local token (orket.serve.localuse).
local M = {}

--- get(req, name) -> the value of the first cookie of that name | nil. Pairs are split on ";"
--- alone (RFC 6265 5.4; the server joins repeated Cookie lines with "; "), each "name=value"
--- with the spaces around both dropped. A value is never searched for another pair: an
--- app's cookie whose value holds " orket_app=..." or ", orket_app=..." (a part that
--- orket.serve.apps keeps from the app all the same) sets none of Orket's.
function M.get(req, name)
  local c = req.headers.cookie
  if type(c) ~= "string" then return nil end
  for pair in c:gmatch("[^;]+") do
    local k, value = M.pair(pair)
    if k == name then return value end
  end
  return nil
end

--- pair(text) -> name, value of one "name=value" (spaces around both dropped) | nil for
--- text without "=" or a name. Searches that run once over the text, whatever it holds
--- (a trim by "^%s*(.-)%s*$" is quadratic in a run of spaces: a hostile header's)
function M.pair(text)
  local k, value = text:match("^%s*([^=%s]+)%s*=(.*)$")
  if not k then return nil end
  local at = value:find("%S")
  return k, at and value:match("^.*%S", at) or ""
end

return M
