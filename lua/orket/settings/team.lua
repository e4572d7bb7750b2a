-- orket.settings.team: the parts of orket.lua's serve section that make one server many
-- projects' (docs/teams.md): serve.projects, the other projects this server hosts, and
-- serve.branding, the name, logo and colours the web board and its sign-in page show.
--   serve = { projects = { web = "../web-app" },
--             branding = { name = "Acme", logo = "https://acme.example/logo.svg",
--                          colors = { accent = "#0a7", background = "#fff", text = "#111" } } }
-- Checked as every other setting: a bad one names its field and nothing is served.
local M = {}

M.DEFAULT_PROJECT = "default" -- the project `orket serve` runs in: /v1/... and /v1/projects/default/...
M.MAX_PROJECTS = 256
M.COLORS = { accent = true, background = true, text = true }

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

local function shown(v) return type(v) == "string" and string.format("%q", v) or type(v) end

--- project_name(name) -> true | nil, msg: a project's name as routes carry it
function M.project_name(name)
  if type(name) ~= "string" or #name > 40 or not name:match("^[a-z][a-z0-9_-]*$") then
    return nil, "a project's name is 1 to 40 ASCII characters: lowercase letters, digits, '_' or '-', starting with a "
      .. "letter"
  end
  return true
end

--- projects(src) -> name -> directory (as written; relative to the default project); raises
function M.projects(src)
  local out, n = {}, 0
  if src == nil then return out end
  if type(src) ~= "table" then fail("serve.projects", "must be a table of name = \"directory\"") end
  for k, v in pairs(src) do
    local p = "serve.projects." .. tostring(k)
    local ok, nerr = M.project_name(k)
    if not ok then fail(p, "%s", nerr) end
    if k == M.DEFAULT_PROJECT then fail(p, "\"default\" is the project orket serve runs in; name this one otherwise") end
    if type(v) ~= "string" or v == "" or #v > 4096 or v:find("[%z\1-\31]") then
      fail(p, "must be a project's directory (got %s)", shown(v))
    end
    n = n + 1
    if n > M.MAX_PROJECTS then fail("serve.projects", "holds more than %d projects", M.MAX_PROJECTS) end
    out[k] = v
  end
  return out
end

-- a colour as CSS takes it, of the few forms that cannot carry anything else: #rgb, #rrggbb
local function color(v, p)
  if type(v) ~= "string" or not (v:match("^#%x%x%x$") or v:match("^#%x%x%x%x%x%x$")) then
    fail(p, "must be a colour #rgb or #rrggbb (got %s)", shown(v))
  end
  return v:lower()
end

--- branding(src) -> {name=, logo=|nil, colors={...}}; raises
function M.branding(src)
  local out = { name = "Orket", colors = {} }
  if src == nil then return out end
  if type(src) ~= "table" then fail("serve.branding", "must be a table (fields: name, logo, colors)") end
  for k, v in pairs(src) do
    local p = "serve.branding." .. tostring(k)
    if k == "name" then
      if type(v) ~= "string" or not utf8.len(v) or utf8.len(v) < 1 or utf8.len(v) > 60 or v:find("[%z\1-\31<>]") then
        fail(p, "must be 1 to 60 characters of one line, without < or > (got %s)", shown(v))
      end
      out.name = v
    elseif k == "logo" then
      -- an https address, or a path on this server: never a data: or javascript: URL
      if type(v) ~= "string" or #v > 2048 or v:find("[%s\"'<>\\]")
        or not (v:match("^https://[%w.-]+[:/]?") or (v:match("^/[%w._/-]+$") and not v:find("^//"))) then
        fail(p, "must be an https:// address or an absolute path on this server (got %s)", shown(v))
      end
      out.logo = v
    elseif k == "colors" then
      if type(v) ~= "table" then fail(p, "must be a table (fields: accent, background, text)") end
      for ck, cv in pairs(v) do
        if not M.COLORS[ck] then fail(p .. "." .. tostring(ck), "unknown colour (known: accent, background, text)") end
        out.colors[ck] = color(cv, p .. "." .. ck)
      end
    else
      fail(p, "unknown setting (known: name, logo, colors)")
    end
  end
  return out
end

return M
