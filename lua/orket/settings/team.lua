-- orket.settings.team: the parts of orket.lua's serve section that make one server many
-- projects' (docs/teams.md): serve.projects, the other projects this server hosts, and
-- serve.branding, the name, logo and colours the web board and its sign-in page show.
--   serve = { projects = { web = "../web-app" },
--             branding = { name = "Acme", logo = "https://acme.example/logo.svg",
--                          colors = { accent = "#075", background = "#fff", text = "#111" } } }
-- Checked as every other setting: a bad one names its field and nothing is served; colours
-- that leave text under 4.5:1 or the focus ring under 3:1 on the page are refused so.
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

-- ---- contrast (WCAG 2: docs/serve.md promises text 4.5:1 and the focus ring 3:1) ----------

-- the colours web/app.css draws the branding colours with or on, which branding leaves as they are
M.PAGE = { panel = "#ffffff", chosen = "#eef3f8", muted = "#5b6776", ring = "#a86e00",
  accent = "#2f5d8a", background = "#f4f6f9", text = "#1d2733" }

local function luminance(hex)
  local h = hex:sub(2)
  if #h == 3 then h = h:gsub("%x", "%0%0") end
  local sum = 0
  for i, w in ipairs { 0.2126, 0.7152, 0.0722 } do
    local c = tonumber(h:sub(2 * i - 1, 2 * i), 16) / 255
    sum = sum + w * (c <= 0.03928 and c / 12.92 or ((c + 0.055) / 1.055) ^ 2.4)
  end
  return sum
end

--- contrast(a, b) -> WCAG 2's contrast ratio of two colours #rgb or #rrggbb (1 to 21)
function M.contrast(a, b)
  local x, y = luminance(a), luminance(b)
  return (math.max(x, y) + 0.05) / (math.min(x, y) + 0.05)
end

-- the pairs the page draws, per colour set: {field, other colour, what it is, at least}; a
-- pair of two branding colours is said of the one set (text, when both are).
-- (The header's focus ring is picked by the page against the accent, web/app.js brand.)
local function pairs_of(c, set)
  local on_bg = set.text and { "text", c.background, "colors.background " .. c.background, 4.5 }
    or { "background", c.text, "the text " .. c.text .. " drawn on it", 4.5 }
  return {
    { "accent", M.PAGE.panel, "the white text drawn on it (the header, buttons) and the white it is text on", 4.5 },
    { "text", M.PAGE.panel, "the panels' white " .. M.PAGE.panel .. " it is drawn on", 4.5 },
    { "text", M.PAGE.chosen, "the chosen card's " .. M.PAGE.chosen .. " it is drawn on", 4.5 },
    on_bg,
    { "background", M.PAGE.muted, "the hints' grey " .. M.PAGE.muted .. " drawn on it", 4.5 },
    { "background", M.PAGE.ring, "the focus ring's " .. M.PAGE.ring .. " drawn on it", 3 },
  }
end

-- check_contrast(set): raises, naming the field and the ratio, when the colours set make
-- text or the focus ring unreadable on the page (the defaults, web/app.css's, pass)
local function check_contrast(set)
  local c = {}
  for k in pairs(M.COLORS) do c[k] = set[k] or M.PAGE[k] end
  for _, t in ipairs(pairs_of(c, set)) do
    local field, other, what, least = t[1], t[2], t[3], t[4]
    local r = M.contrast(c[field], other)
    if r < least and set[field] then
      fail("serve.branding.colors." .. field, "%s has %.2f:1 contrast with %s; %s:1 at least is needed (WCAG %s): "
        .. "choose a %s colour", shown(c[field]), math.floor(r * 100) / 100, what, least == 3 and "3" or "4.5",
        least == 3 and "1.4.11" or "1.4.3", field == "background" and "lighter" or "darker")
    end
  end
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
      check_contrast(out.colors)
    else
      fail(p, "unknown setting (known: name, logo, colors)")
    end
  end
  return out
end

return M
