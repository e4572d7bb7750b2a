-- orket.updates: whether a newer release of Orket is out, from the releases of the
-- repository orket.lua's updates section names, over orket.forge. Only `orket version
-- --check` calls it: nothing else asks a forge about Orket, and never a run.
-- docs/guide/deploying.md, "Update checks".
local forge = require "orket.forge"
local secret = require "orket.settings.secret"

local M = {}

--- parse(s) -> {major, minor, patch} | nil: "v1.2.3" or "1.2.3"; anything else (a
--- pre-release suffix, another tag) is no release
function M.parse(s)
  if type(s) ~= "string" or #s > 64 then return nil end
  local a, b, c = s:match("^v?(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return { tonumber(a), tonumber(b), tonumber(c) }
end

--- newer(a, b) -> a is a later version than b (both parse's)
function M.newer(a, b)
  for i = 1, 3 do
    if a[i] ~= b[i] then return a[i] > b[i] end
  end
  return false
end

-- A release's page as the forge gave it, printed only when it is a plain URL.
local function page(url)
  if type(url) == "string" and #url <= 500 and url:match("^https?://[%w%-._~:/?#%[%]@!$&'()*+,;=%%]+$") then return url end
end

--- check(u, current[, getenv]) -> {latest = {tag=, url=} | nil, newer = bool} | nil, msg, CODE
--- u: the updates section (forge, api_url, repo, token_env, token); current: this Orket's version.
--- Drafts and pre-releases are passed over; latest is the highest version released.
function M.check(u, current, getenv)
  local cur = M.parse(current)
  if not cur then return nil, "updates: this orket's version " .. tostring(current) .. " is not MAJOR.MINOR.PATCH", "EINVAL" end
  local token, terr, tcode = secret.value(u.token, u.token_env, getenv)
  if terr then return nil, "updates.token: " .. terr, tcode end
  if not token and u.token_env then
    return nil, "updates: the environment variable " .. u.token_env .. " (updates.token_env) is not set", "EINVAL"
  end
  local list, err, code = forge.releases(u, token)
  if not list then return nil, err, code end
  local best
  for _, r in ipairs(list) do
    local v = type(r) == "table" and not r.draft and not r.prerelease and M.parse(r.tag_name)
    if v and (not best or M.newer(v, best.v)) then best = { v = v, tag = r.tag_name, url = page(r.html_url) } end
  end
  return { latest = best and { tag = best.tag, url = best.url }, newer = best ~= nil and M.newer(best.v, cur) }
end

return M
